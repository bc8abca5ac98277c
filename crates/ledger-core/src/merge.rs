//! One call, one row: merges records of one call that were committed apart
//! (a half that arrived after the other was flushed as partial, or halves
//! read from different partitions) into one record, by the rule assembly
//! uses: the most complete copy of each part wins, and the call is
//! complete once the parts its dialect promises are all there.
//!
//! Sinks call it: the lake merges a late half into its earlier row in the
//! same Delta commit, a relational sink merges it into the existing row.
//!
//! ```
//! use ledger_core::{CallRecord, merge};
//! use ledger_core::assemble::partial_warning;
//! use ledger_core::Role;
//!
//! let request = CallRecord {
//!     request_id: "r1".into(),
//!     prompt_text: Some("[]".into()),
//!     warnings: vec![partial_warning([Role::Request].into_iter())],
//!     ..Default::default()
//! };
//! let response = CallRecord {
//!     request_id: "r1".into(),
//!     status_code: Some(200),
//!     response_text: Some("hi".into()),
//!     warnings: vec![partial_warning([Role::Response].into_iter())],
//!     ..Default::default()
//! };
//! let one = merge::merge(&request, &response);
//! assert!(one.complete);
//! assert_eq!((one.prompt_text.as_deref(), one.response_text.as_deref()), (Some("[]"), Some("hi")));
//! assert_eq!(one, merge::merge(&response, &request));
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use crate::assemble::{MERGE_ORDER, flushed_roles, is_partial_warning, partial_warning};
use crate::correlate::roles_complete;
use crate::model::{CallRecord, Dialect, Role, UsageSource};

/// What makes records one call: the dialect and the request id.
pub fn identity(r: &CallRecord) -> (Dialect, &str) {
    (r.dialect, r.request_id.as_str())
}

/// The parts a record was built from: those its partial warning names, or
/// every part for a complete record (and for a partial one that names
/// none, which only an older writer could have left).
fn roles(r: &CallRecord) -> Vec<Role> {
    match flushed_roles(&r.warnings) {
        Some(roles) if !r.complete => roles,
        _ => MERGE_ORDER.to_vec(),
    }
}

/// A record's place in the envelope order: the one holding the richest
/// envelope part ([`MERGE_ORDER`], first value wins) comes first; ties go
/// to the complete one, then to the earlier events, so the order never
/// depends on which record is passed first.
fn envelope_order(a: &CallRecord, b: &CallRecord) -> Ordering {
    let rank = |r: &CallRecord| {
        let roles = roles(r);
        MERGE_ORDER
            .iter()
            .position(|m| roles.contains(m))
            .unwrap_or(MERGE_ORDER.len())
    };
    rank(a)
        .cmp(&rank(b))
        .then(b.complete.cmp(&a.complete))
        .then_with(|| a.eh_partition.cmp(&b.eh_partition))
        .then(a.eh_sequence_first.cmp(&b.eh_sequence_first))
        .then(a.eh_sequence_last.cmp(&b.eh_sequence_last))
        .then_with(|| a.warnings.cmp(&b.warnings))
}

/// The more complete copy of one body: a present copy beats a missing
/// one, an untruncated one a cut one, then the envelope order decides.
fn body_order(
    a: &CallRecord,
    b: &CallRecord,
    present: fn(&CallRecord) -> bool,
    truncated: fn(&CallRecord) -> bool,
) -> Ordering {
    present(b)
        .cmp(&present(a))
        .then(truncated(a).cmp(&truncated(b)))
        .then_with(|| envelope_order(a, b))
}

/// `a` unless `order` puts `b` first.
fn pick<'a>(a: &'a CallRecord, b: &'a CallRecord, order: Ordering) -> &'a CallRecord {
    match order {
        Ordering::Greater => b,
        _ => a,
    }
}

fn usage_rank(r: &CallRecord) -> u8 {
    match r.usage_source {
        UsageSource::Reported => 0,
        UsageSource::Estimated => 1,
        UsageSource::None => 2,
    }
}

/// Two records of one call (same [`identity`]) as one. Commutative: the
/// result does not depend on the argument order.
pub fn merge(a: &CallRecord, b: &CallRecord) -> CallRecord {
    let first = pick(a, b, envelope_order(a, b));
    let second = if std::ptr::eq(first, a) { b } else { a };
    // The base is the envelope's first record; every missing field is
    // then filled from the other.
    let mut out = first.clone();
    let other = second;
    macro_rules! fill {
        ($($f:ident),+ $(,)?) => { $( if out.$f.is_none() { out.$f = other.$f.clone(); } )+ };
    }
    fill!(
        correlation_id,
        backend_time_ms,
        model_time_ms,
        caller_ip,
        subscription_id,
        subscription_name,
        subscription_key_hash,
        product_id,
        user_id,
        app_id,
        service,
        region,
        api_id,
        operation_id,
        deployment,
        api_version,
        backend,
        method,
        url,
        status_code,
        error,
    );
    if out.operation == crate::model::Operation::Other {
        out.operation = other.operation;
    }

    // The request's copy: prompt and parameters travel together.
    let req = pick(
        a,
        b,
        body_order(a, b, |r| r.prompt_text.is_some(), |r| r.request_truncated),
    );
    out.prompt_text = req.prompt_text.clone();
    out.request_truncated = req.request_truncated;
    out.end_user = req.end_user.clone().or(other.end_user.clone());
    out.max_tokens = req.max_tokens.or(first.max_tokens).or(other.max_tokens);
    out.temperature = req.temperature.or(first.temperature).or(other.temperature);
    out.n = req.n.or(first.n).or(other.n);

    // The response's copy: its texts and how it ended travel together.
    let resp = pick(
        a,
        b,
        body_order(
            a,
            b,
            |r| r.response_body.is_some() || r.response_text.is_some(),
            |r| r.response_truncated,
        ),
    );
    out.response_text = resp.response_text.clone();
    out.tool_calls = resp.tool_calls.clone();
    out.response_body = resp.response_body.clone();
    out.finish_reason = resp.finish_reason.clone().or(other.finish_reason.clone());
    // The response reports the model it ran; the model key follows it.
    if let Some(m) = [resp, first, other].into_iter().find(|r| r.model.is_some()) {
        out.model = m.model.clone();
        out.model_key = m.model_key.clone();
    }
    out.response_truncated = resp.response_truncated;
    out.content_filtered = a.content_filtered || b.content_filtered;
    out.is_stream = a.is_stream || b.is_stream;

    merge_usage(&mut out, a, b, req, resp);
    merge_timing(&mut out, a, b);
    merge_span(&mut out, other);

    let mut roles = roles(a);
    roles.extend(roles_of_other(b, &roles));
    out.complete =
        a.complete || b.complete || roles_complete(out.dialect, |r| roles.contains(&r), true);
    out.warnings = merged_warnings(first, other, &out, &roles);
    out
}

fn roles_of_other(r: &CallRecord, seen: &[Role]) -> Vec<Role> {
    roles(r).into_iter().filter(|x| !seen.contains(x)).collect()
}

/// Token counts, their source and the cost travel together: reported
/// counts beat estimated ones. Two estimates (neither half saw a usage
/// report) each counted their own half: the request's copy gives the
/// prompt tokens, the response's copy the output tokens.
fn merge_usage(
    out: &mut CallRecord,
    a: &CallRecord,
    b: &CallRecord,
    req: &CallRecord,
    resp: &CallRecord,
) {
    let best = pick(
        a,
        b,
        usage_rank(a)
            .cmp(&usage_rank(b))
            .then_with(|| envelope_order(a, b)),
    );
    out.prompt_tokens = best.prompt_tokens;
    out.completion_tokens = best.completion_tokens;
    out.total_tokens = best.total_tokens;
    out.cached_tokens = best.cached_tokens;
    out.reasoning_tokens = best.reasoning_tokens;
    out.usage_source = best.usage_source;
    out.cost = best.cost;
    out.currency = best.currency.clone();
    let both_estimated = a.usage_source == UsageSource::Estimated
        && b.usage_source == UsageSource::Estimated
        && !std::ptr::eq(req, resp);
    if both_estimated {
        let prompt = req.prompt_tokens.filter(|t| *t > 0).or(resp.prompt_tokens);
        let completion = resp
            .completion_tokens
            .filter(|t| *t > 0)
            .or(req.completion_tokens);
        out.prompt_tokens = prompt;
        out.completion_tokens = completion;
        out.reasoning_tokens = resp.reasoning_tokens.or(req.reasoning_tokens);
        out.cached_tokens = req.cached_tokens.or(resp.cached_tokens);
        out.total_tokens = match (prompt, completion) {
            (None, None) => None,
            (p, c) => Some(p.unwrap_or(0).saturating_add(c.unwrap_or(0))),
        };
        out.cost = match (req.cost, resp.cost) {
            (Some(x), Some(y)) if req.currency == resp.currency => x.checked_add(y),
            (x, y) => x.or(y),
        };
        out.currency = req.currency.clone().or(resp.currency.clone());
    }
}

/// The request time is the earlier of the two (a response half without
/// one derives it from its own time), the response time the later; the
/// duration is the envelope's, else the time between them.
fn merge_timing(out: &mut CallRecord, a: &CallRecord, b: &CallRecord) {
    let earlier = |x: Option<_>, y: Option<_>| match (x, y) {
        (Some(x), Some(y)) => Some(std::cmp::min(x, y)),
        (x, y) => x.or(y),
    };
    let later = |x: Option<_>, y: Option<_>| match (x, y) {
        (Some(x), Some(y)) => Some(std::cmp::max(x, y)),
        (x, y) => x.or(y),
    };
    out.request_time = earlier(a.request_time, b.request_time);
    out.response_time = later(a.response_time, b.response_time);
    out.duration_ms = out.duration_ms.or(a.duration_ms).or(b.duration_ms).or({
        match (out.request_time, out.response_time) {
            (Some(q), Some(s)) => Some((s - q).num_milliseconds()),
            _ => None,
        }
    });
}

/// The base's partition; on one partition, the span of both.
fn merge_span(out: &mut CallRecord, other: &CallRecord) {
    if other.eh_partition == out.eh_partition {
        out.eh_sequence_first = out.eh_sequence_first.min(other.eh_sequence_first);
        out.eh_sequence_last = out.eh_sequence_last.max(other.eh_sequence_last);
    }
}

/// Both records' warnings, once each, less their partial-call lines; a
/// merged call still partial says which parts it now has, and the merge
/// itself is noted with where the other copy's events were.
fn merged_warnings(
    first: &CallRecord,
    other: &CallRecord,
    out: &CallRecord,
    roles: &[Role],
) -> Vec<String> {
    let mut warnings: Vec<String> = Vec::new();
    for w in first.warnings.iter().chain(&other.warnings) {
        if !is_partial_warning(w) && !is_merge_note(w) && !warnings.contains(w) {
            warnings.push(w.clone());
        }
    }
    if !out.complete {
        let ordered = MERGE_ORDER.iter().copied().filter(|r| roles.contains(r));
        warnings.push(partial_warning(ordered));
    }
    let mut spans: Vec<String> = [first, other]
        .iter()
        .flat_map(|r| match merge_note_spans(r) {
            Some(spans) => spans,
            None => vec![span(r)],
        })
        .collect();
    spans.sort();
    spans.dedup();
    warnings.push(format!("{MERGE_PREFIX}{}", spans.join("; ")));
    warnings
}

const MERGE_PREFIX: &str = "merged from copies committed apart: ";

fn is_merge_note(w: &str) -> bool {
    w.starts_with(MERGE_PREFIX)
}

/// The spans an earlier merge noted, so a third copy adds to them.
fn merge_note_spans(r: &CallRecord) -> Option<Vec<String>> {
    let note = r
        .warnings
        .iter()
        .find_map(|w| w.strip_prefix(MERGE_PREFIX))?;
    Some(note.split("; ").map(str::to_string).collect())
}

fn span(r: &CallRecord) -> String {
    format!(
        "partition {} events {}..{}",
        r.eh_partition, r.eh_sequence_first, r.eh_sequence_last
    )
}

/// Merges every group of records of one call in `records` into one,
/// keeping the order of each group's first record. A record alone in its
/// group is passed through as it is, not copied.
pub fn merge_all<'a>(
    records: impl IntoIterator<Item = &'a CallRecord>,
) -> Vec<Cow<'a, CallRecord>> {
    let mut out: Vec<Cow<'a, CallRecord>> = Vec::new();
    let mut at: HashMap<(Dialect, &'a str), usize> = HashMap::new();
    for r in records {
        match at.get(&identity(r)) {
            Some(&i) => out[i] = Cow::Owned(merge(&out[i], r)),
            None => {
                at.insert(identity(r), out.len());
                out.push(Cow::Borrowed(r));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use rust_decimal::Decimal;

    use super::*;

    fn half(role: Role, partition: &str, seq: i64) -> CallRecord {
        CallRecord {
            request_id: "r1".into(),
            eh_partition: partition.into(),
            eh_sequence_first: seq,
            eh_sequence_last: seq,
            warnings: vec![partial_warning([role].into_iter())],
            ..Default::default()
        }
    }

    fn request() -> CallRecord {
        CallRecord {
            request_time: Some(Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()),
            caller_ip: Some("10.0.0.1".into()),
            prompt_text: Some(r#"[{"role":"user","content":"hi"}]"#.into()),
            max_tokens: Some(50),
            prompt_tokens: Some(8),
            total_tokens: Some(8),
            usage_source: UsageSource::Estimated,
            cost: Some(Decimal::new(8, 6)),
            currency: Some("USD".into()),
            ..half(Role::Request, "0", 10)
        }
    }

    fn response() -> CallRecord {
        CallRecord {
            request_time: Some(Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 2).unwrap()),
            response_time: Some(Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 2).unwrap()),
            status_code: Some(200),
            response_text: Some("hello".into()),
            prompt_tokens: Some(9),
            completion_tokens: Some(2),
            total_tokens: Some(11),
            usage_source: UsageSource::Reported,
            cost: Some(Decimal::new(13, 6)),
            currency: Some("USD".into()),
            warnings: vec![partial_warning([Role::Response].into_iter()), "odd".into()],
            ..half(Role::Response, "0", 90)
        }
    }

    #[test]
    fn halves_make_one_complete_call_in_either_order() {
        let one = merge(&request(), &response());
        assert_eq!(one, merge(&response(), &request()));
        assert!(one.complete);
        assert_eq!(one.caller_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(one.max_tokens, Some(50));
        assert_eq!(one.status_code, Some(200));
        assert_eq!(one.response_text.as_deref(), Some("hello"));
        // Reported usage beats the request half's estimate, cost with it.
        assert_eq!(
            (one.prompt_tokens, one.total_tokens, one.usage_source),
            (Some(9), Some(11), UsageSource::Reported)
        );
        assert_eq!(one.cost, Some(Decimal::new(13, 6)));
        assert_eq!(one.request_time, request().request_time);
        assert_eq!(one.duration_ms, Some(2000));
        assert_eq!((one.eh_sequence_first, one.eh_sequence_last), (10, 90));
        assert_eq!(
            one.warnings,
            vec![
                "odd".to_string(),
                format!("{MERGE_PREFIX}partition 0 events 10..10; partition 0 events 90..90")
            ]
        );
    }

    #[test]
    fn halves_of_two_partitions_keep_the_base_partition() {
        let mut resp = response();
        resp.eh_partition = "7".into();
        let one = merge(&resp, &request());
        assert_eq!(
            (
                one.eh_partition.as_str(),
                one.eh_sequence_first,
                one.eh_sequence_last
            ),
            ("0", 10, 10)
        );
        assert!(
            one.warnings
                .last()
                .unwrap()
                .contains("partition 7 events 90..90")
        );
    }

    #[test]
    fn two_requests_stay_partial_and_the_uncut_copy_wins() {
        let mut cut = request();
        cut.prompt_text = Some("[{\"role\":\"user\",\"content\":\"h".into());
        cut.request_truncated = true;
        cut.eh_sequence_first = 5;
        cut.eh_sequence_last = 5;
        let one = merge(&cut, &request());
        assert_eq!(one, merge(&request(), &cut));
        assert!(!one.complete);
        assert_eq!(one.prompt_text, request().prompt_text);
        assert!(!one.request_truncated);
        assert!(
            one.warnings
                .iter()
                .any(|w| w == &partial_warning([Role::Request].into_iter()))
        );
    }

    #[test]
    fn two_estimates_add_up_their_halves() {
        let mut resp = response();
        resp.usage_source = UsageSource::Estimated;
        resp.prompt_tokens = None;
        resp.total_tokens = Some(2);
        resp.cost = Some(Decimal::new(4, 6));
        let one = merge(&request(), &resp);
        assert_eq!(
            (one.prompt_tokens, one.completion_tokens, one.total_tokens),
            (Some(8), Some(2), Some(10))
        );
        assert_eq!(one.cost, Some(Decimal::new(12, 6)));
    }

    #[test]
    fn a_third_copy_adds_its_span_to_the_note() {
        let one = merge(&request(), &response());
        let mut dup = response();
        dup.eh_sequence_first = 120;
        dup.eh_sequence_last = 120;
        let again = merge(&one, &dup);
        assert!(again.complete);
        let note = again.warnings.iter().find(|w| is_merge_note(w)).unwrap();
        assert!(
            note.contains("10..10") && note.contains("90..90") && note.contains("120..120"),
            "{note}"
        );
        assert_eq!(
            again.warnings.iter().filter(|w| is_merge_note(w)).count(),
            1
        );
    }

    #[test]
    fn merge_all_folds_groups_and_keeps_order() {
        let other = CallRecord {
            request_id: "r2".into(),
            complete: true,
            ..Default::default()
        };
        let given = [request(), other.clone(), response()];
        let out = merge_all(&given);
        assert_eq!(out.len(), 2);
        assert!(out[0].complete);
        assert!(matches!(out[1], Cow::Borrowed(r) if *r == other));
    }
}
