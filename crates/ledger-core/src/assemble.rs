//! Builds the canonical record of one call from its fragments: keeps the
//! most complete copy of each body (`BodyCopy::rank`), stitches and
//! parses it, fills usage (reported or estimated) and cost, and
//! removes secrets.

use serde_json::{Value, json};

use crate::body::{self, ParsedRequest, ParsedResponse};
use crate::correlate::{PendingCall, Released};
use crate::cost::PriceTable;
use crate::model::{
    BodyKind, BodyPart, CallMeta, CallRecord, Fragment, Operation, Role, Usage, UsageSource,
};
use crate::{limits, operations, redact, tokens};

/// How records are built.
#[derive(Debug, Clone)]
pub struct AssembleOptions {
    pub prices: PriceTable,
    /// Mask e-mail addresses, phone and card numbers in prompt and response text.
    pub mask_pii: bool,
}

impl Default for AssembleOptions {
    fn default() -> Self {
        AssembleOptions {
            prices: PriceTable::builtin(),
            mask_pii: false,
        }
    }
}

/// Merge order of roles: the richest envelope first; first value wins.
pub const MERGE_ORDER: [Role; 6] = [
    Role::GatewayLog,
    Role::Whole,
    Role::Request,
    Role::Response,
    Role::Error,
    Role::LlmLog,
];

pub fn assemble(released: &Released, opts: &AssembleOptions) -> CallRecord {
    let call = &released.call;
    let mut warnings = Vec::new();
    let meta = merged_meta(call);
    let (partition, first, last) = sequence_span(call);
    let bodies = Bodies::read(call, &mut warnings);
    let (request, response) = (&bodies.request, &bodies.response);

    let model = nonempty(response.model.clone())
        .or_else(|| nonempty(meta.model.clone()))
        .or_else(|| nonempty(request.model.clone()));
    let tokenizer_model = model
        .clone()
        .or_else(|| meta.deployment.clone())
        .unwrap_or_default();
    let (operation, operation_id) = operation_and_id(&meta, response);
    let status_code = status_code(&meta, response);
    let succeeded = status_code.is_none_or(|s| (200..300).contains(&s)) && response.error.is_none();
    let (usage, usage_source) = usage(&meta, &bodies, &tokenizer_model, operation, succeeded);
    if usage_source == UsageSource::Estimated {
        warnings
            .push("usage estimated with the model's tokenizer: the service reported none".into());
    }
    let cost = if usage.is_empty() {
        None
    } else {
        opts.prices
            .cost(&tokenizer_model, &usage, meta.request_time)
    };
    let is_stream = request.stream || response.is_stream || meta.is_stream.unwrap_or(false);
    let text = Texts::of(&bodies, &usage, usage_source, opts.mask_pii);
    if !released.complete {
        warnings.push(missing_parts(released));
    }
    if let Some(n) = request
        .n
        .filter(|n| !(1..=limits::MAX_CHOICES as i64).contains(n))
    {
        warnings.push(format!(
            "request n = {n} is outside 1..={} (the choice limit)",
            limits::MAX_CHOICES
        ));
    }
    let (request_time, duration_ms) = timing(&meta);

    CallRecord {
        request_id: meta.request_id.clone().unwrap_or_else(|| call.key.clone()),
        correlation_id: meta.correlation_id.clone(),
        dialect: call.dialect,
        eh_partition: partition,
        eh_sequence_first: first,
        eh_sequence_last: last,
        request_time,
        response_time: meta.response_time,
        duration_ms,
        backend_time_ms: meta.backend_time_ms,
        model_time_ms: meta.model_time_ms,
        caller_ip: meta.caller_ip,
        subscription_id: meta.subscription_id,
        subscription_name: meta.subscription_name,
        subscription_key_hash: meta.subscription_key_hash,
        product_id: meta.product_id,
        user_id: meta.user_id,
        app_id: meta.app_id,
        end_user: request.user.clone(),
        service: meta.service,
        region: meta.region,
        api_id: meta.api_id,
        operation_id,
        operation,
        deployment: meta.deployment,
        api_version: meta.api_version,
        backend: meta.backend,
        method: meta.method,
        url: meta.url.as_deref().map(redact::scrub_url),
        model_key: model.as_deref().map(model_key),
        model,
        status_code,
        finish_reason: response.finish_reason().map(str::to_string),
        content_filtered: content_filtered(response),
        is_stream,
        error: meta
            .error
            .or(response.error.clone())
            .map(|e| redact::scrub_text(&e)),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
        cached_tokens: usage.cached_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        usage_source,
        currency: cost.as_ref().map(|c| c.1.clone()),
        cost: cost.map(|c| c.0),
        prompt_text: text.prompt,
        response_text: text.response,
        tool_calls: text.tool_calls,
        response_body: text.response_body,
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        n: request.n,
        complete: released.complete && !request_truncated_chunks(&warnings),
        request_truncated: bodies.request_truncated,
        response_truncated: bodies.response_truncated,
        warnings,
    }
}

/// The call's envelope fields, merged across its fragments in
/// [`MERGE_ORDER`] (first value wins).
fn merged_meta(call: &PendingCall) -> CallMeta {
    let mut meta = CallMeta::default();
    for role in MERGE_ORDER {
        for h in call.parts.iter().filter(|h| h.fragment.role == role) {
            merge(&mut meta, &h.fragment.meta);
        }
    }
    meta
}

/// The partition of the call's first event, and its first and last
/// sequence numbers.
fn sequence_span(call: &PendingCall) -> (String, i64, i64) {
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut partition = String::new();
    for h in &call.parts {
        if h.position.sequence < first {
            first = h.position.sequence;
            partition = h.position.partition.clone();
        }
        last = last.max(h.position.sequence);
    }
    (partition, first, last)
}

/// The call's request and response bodies, stitched from their parts and
/// parsed.
struct Bodies {
    request: ParsedRequest,
    response: ParsedResponse,
    request_truncated: bool,
    response_truncated: bool,
}

impl Bodies {
    /// Picks each body's most complete copy ([`copies`]), stitches and
    /// parses it; the response's warnings join `warnings`. Only the chosen
    /// copies are parsed.
    fn read(call: &PendingCall, warnings: &mut Vec<String>) -> Bodies {
        let request_body = chosen(
            copies(call, |f| {
                [
                    (Side::Client, f.request_body.as_ref()),
                    (Side::Backend, f.backend_request_body.as_ref()),
                ]
            }),
            "request",
            warnings,
        );
        let response_body = chosen(
            copies(call, |f| {
                [
                    (Side::Client, f.response_body.as_ref()),
                    (Side::Backend, f.backend_response_body.as_ref()),
                ]
            }),
            "response",
            warnings,
        );

        let request = match &request_body {
            Some((BodyKind::Http, text, _)) => body::parse_request(text),
            Some((BodyKind::Messages, text, _)) => ParsedRequest {
                messages: parse_messages(text),
                ..ParsedRequest::default()
            },
            None => ParsedRequest::default(),
        };
        let response = match &response_body {
            Some((BodyKind::Http, text, _)) => body::parse_response(text),
            Some((BodyKind::Messages, text, _)) => response_from_messages(text),
            None => ParsedResponse::default(),
        };
        warnings.extend(response.warnings.iter().cloned());
        Bodies {
            request_truncated: request.truncated || request_body.as_ref().is_some_and(|b| b.2),
            response_truncated: response.truncated || response_body.as_ref().is_some_and(|b| b.2),
            request,
            response,
        }
    }
}

/// The normalised operation, and APIM's operation id (the envelope's, else
/// the one the operation table gives).
fn operation_and_id(meta: &CallMeta, response: &ParsedResponse) -> (Operation, Option<String>) {
    let spec = operations::lookup(
        meta.operation_id.as_deref(),
        meta.url.as_deref(),
        response.object.as_deref(),
    );
    let operation = spec.map_or(Operation::Other, |s| s.operation);
    let operation_id = meta
        .operation_id
        .clone()
        .or_else(|| spec.and_then(|s| s.operation_id).map(str::to_string));
    (operation, operation_id)
}

/// The envelope's status, else 200 when the body carries an answer.
fn status_code(meta: &CallMeta, response: &ParsedResponse) -> Option<i32> {
    meta.status_code.or({
        if response.usage.is_some() || !response.choices.is_empty() || response.embeddings.is_some()
        {
            Some(200)
        } else {
            None
        }
    })
}

/// Usage: the body's report, completed by the envelope's; else, for a call
/// that succeeded, an estimate with the model's tokenizer.
fn usage(
    meta: &CallMeta,
    bodies: &Bodies,
    tokenizer_model: &str,
    operation: Operation,
    succeeded: bool,
) -> (Usage, UsageSource) {
    let reported = merge_usage(bodies.response.usage, meta.usage);
    match reported {
        Some(u) => (complete_total(u), UsageSource::Reported),
        None if succeeded => {
            match estimate(
                tokenizer_model,
                &bodies.request,
                &bodies.response,
                operation,
            ) {
                Some(u) => (u, UsageSource::Estimated),
                None => (Usage::default(), UsageSource::None),
            }
        }
        None => (Usage::default(), UsageSource::None),
    }
}

/// Whether a choice was stopped or flagged by a content filter.
fn content_filtered(response: &ParsedResponse) -> bool {
    response.choices.iter().any(|c| {
        c.finish_reason.as_deref() == Some("content_filter")
            || c.content_filter_results.as_ref().is_some_and(filtered)
    })
}

/// The text columns of a record, PII masked when asked.
struct Texts {
    prompt: Option<String>,
    response: Option<String>,
    tool_calls: Option<String>,
    response_body: Option<String>,
}

impl Texts {
    fn of(bodies: &Bodies, usage: &Usage, source: UsageSource, mask_pii: bool) -> Texts {
        let (request, response) = (&bodies.request, &bodies.response);
        let has_response = !response.choices.is_empty()
            || response.usage.is_some()
            || response.embeddings.is_some();
        let response_text = (!response.choices.is_empty()).then(|| {
            response
                .choices
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        });
        let tool_calls: Vec<Value> = response
            .choices
            .iter()
            .flat_map(|c| c.tool_calls.iter())
            .map(|t| json!({"id": t.id, "type": t.kind, "function": {"name": t.name, "arguments": t.arguments}}))
            .collect();
        let prompt = request
            .messages
            .as_ref()
            .or(request.prompt.as_ref())
            .or(request.input.as_ref());
        let mut texts = Texts {
            prompt: prompt.map(Value::to_string),
            response: response_text,
            tool_calls: (!tool_calls.is_empty()).then(|| Value::Array(tool_calls).to_string()),
            response_body: has_response.then(|| {
                let u = (source != UsageSource::None).then_some(usage);
                response.to_json(u).to_string()
            }),
        };
        if mask_pii {
            for t in [
                &mut texts.prompt,
                &mut texts.response,
                &mut texts.response_body,
            ]
            .into_iter()
            .flatten()
            {
                *t = redact::mask_pii(t);
            }
        }
        texts
    }
}

/// Request time and duration. One-event dialects log in the outbound
/// section: their time is the response's, less the duration when they
/// carry one.
fn timing(meta: &CallMeta) -> (Option<chrono::DateTime<chrono::Utc>>, Option<i64>) {
    let request_time = meta.request_time.or_else(|| {
        let t = meta.response_time?;
        // An absurd duration (hostile input) leaves the response time.
        chrono::Duration::try_milliseconds(meta.duration_ms.unwrap_or(0))
            .and_then(|d| t.checked_sub_signed(d))
            .or(Some(t))
    });
    let duration_ms = meta.duration_ms.or_else(|| {
        let (a, b) = (meta.request_time?, meta.response_time?);
        Some((b - a).num_milliseconds())
    });
    (request_time, duration_ms)
}

fn request_truncated_chunks(warnings: &[String]) -> bool {
    warnings.iter().any(|w| w.contains("chunks missing"))
}

fn missing_parts(r: &Released) -> String {
    partial_warning(r.call.parts.iter().map(|h| h.fragment.role))
}

/// How a partial record's warnings say which parts it was flushed with;
/// [`flushed_roles`] reads it back.
const PARTIAL_PREFIX: &str = "partial call: flushed with only [";

/// The warning of a call flushed partial with the parts of `roles`.
pub fn partial_warning(roles: impl Iterator<Item = Role>) -> String {
    let names: Vec<&str> = roles.map(role_name).collect();
    format!("{PARTIAL_PREFIX}{}]", names.join(", "))
}

/// Whether a warning is the one [`partial_warning`] writes.
pub fn is_partial_warning(warning: &str) -> bool {
    warning.starts_with(PARTIAL_PREFIX)
}

/// The parts a partial record was flushed with, as its warning names them.
pub fn flushed_roles(warnings: &[String]) -> Option<Vec<Role>> {
    let list = warnings
        .iter()
        .find_map(|w| w.strip_prefix(PARTIAL_PREFIX)?.strip_suffix(']'))?;
    Some(
        list.split(", ")
            .filter_map(|name| ALL_ROLES.into_iter().find(|r| role_name(*r) == name))
            .collect(),
    )
}

const ALL_ROLES: [Role; 6] = [
    Role::Request,
    Role::Response,
    Role::Error,
    Role::Whole,
    Role::GatewayLog,
    Role::LlmLog,
];

/// A role as warnings name it.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Request => "request",
        Role::Response => "response",
        Role::Error => "error",
        Role::Whole => "whole",
        Role::GatewayLog => "gateway-log",
        Role::LlmLog => "llm-log",
    }
}

fn filtered(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| (k == "filtered" && v == &Value::Bool(true)) || filtered(v)),
        Value::Array(a) => a.iter().any(filtered),
        _ => false,
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// The seed KQL's `modelkey`: the model name up to its second `-`, or ''
/// when it has fewer than two (as `substring(s, 0, -1)` yields).
pub fn model_key(model: &str) -> String {
    match model.match_indices('-').nth(1) {
        Some((i, _)) => model[..i].to_string(),
        None => String::new(),
    }
}

/// Which side of the gateway a copy was logged on, where a log keeps both.
/// The backend's is what the model saw (after inbound policies) and sent
/// (before outbound ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Backend,
    /// The client's side, or the one copy a dialect logs.
    Client,
}

/// One copy of a body: the pieces that fragments of one role carry for
/// one channel, in one kind, from one side (ledger/v1's request chunks are
/// one copy; the tf request event's `RequestBody` and the response event's
/// repeat of it are two; so are azure-monitor's `requestBody` and
/// `backendRequestBody`).
struct BodyCopy<'a> {
    role: Role,
    kind: BodyKind,
    side: Side,
    /// In index order, one piece per index.
    pieces: Vec<&'a BodyPart>,
    /// Chunks of `count` that never arrived.
    missing: Option<(u32, u32)>,
    /// The producer cut it, or chunks are missing.
    truncated: bool,
}

impl BodyCopy<'_> {
    fn new(role: Role, kind: BodyKind, side: Side) -> Self {
        BodyCopy {
            role,
            kind,
            side,
            pieces: Vec::new(),
            missing: None,
            truncated: false,
        }
    }

    /// Orders the pieces and keeps the most complete piece of each index
    /// (the same rule as between copies), whatever order they came in.
    fn settle(&mut self) {
        self.pieces.sort_by(|a, b| {
            a.index
                .cmp(&b.index)
                .then(a.truncated.cmp(&b.truncated))
                .then(b.text.len().cmp(&a.text.len()))
                .then_with(|| a.text.cmp(&b.text))
        });
        self.pieces.dedup_by_key(|p| p.index);
        if let Some(count) = self.pieces.iter().filter_map(|p| p.count).max() {
            let missing = limits::missing_chunks(self.pieces.iter().map(|p| p.index), count);
            self.missing = (missing > 0).then_some((missing, count));
        }
        self.truncated = self.missing.is_some() || self.pieces.iter().any(|p| p.truncated);
    }

    /// Lowest first: the most complete copy. An untruncated copy beats a
    /// truncated one (so the service's own messages beat a logged body
    /// that was cut); then an HTTP body, which carries the call's
    /// parameters and usage besides its text, beats messages; then the
    /// copy logged later beats the request event's, which is logged on the
    /// way in, before inbound policies may rewrite the body: the later copy
    /// is what the backend got; last, of one role's two sides, the
    /// backend's copy beats the client's. Copies are one per (role, kind,
    /// side), so the order is total and does not depend on arrival.
    fn rank(&self) -> (bool, u8, usize, Side) {
        let kind = match self.kind {
            BodyKind::Http => 0,
            BodyKind::Messages => 1,
        };
        let role = COPY_ORDER
            .iter()
            .position(|r| *r == self.role)
            .unwrap_or(COPY_ORDER.len());
        (self.truncated, kind, role, self.side)
    }

    fn text(&self) -> String {
        self.pieces.iter().map(|p| p.text.as_str()).collect()
    }

    /// Whether the pieces spell `text`, without joining them.
    fn spells(&self, text: &str) -> bool {
        let mut rest = text.as_bytes();
        for p in &self.pieces {
            match rest.strip_prefix(p.text.as_bytes()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }

    fn label(&self) -> String {
        let what = match self.kind {
            BodyKind::Http => "body",
            BodyKind::Messages => "messages",
        };
        let side = match self.side {
            Side::Backend => "backend ",
            Side::Client => "",
        };
        format!("the {} event's {side}{what}", role_name(self.role))
    }
}

/// Roles by preference among copies of a body that rank alike otherwise:
/// the copies logged after the backend call first, the request event's last.
const COPY_ORDER: [Role; 6] = [
    Role::Response,
    Role::Whole,
    Role::GatewayLog,
    Role::LlmLog,
    Role::Error,
    Role::Request,
];

/// The copies of one body channel (`channel` picks its pieces, by side,
/// from a fragment), the most complete first.
fn copies<'a, const N: usize>(
    call: &'a PendingCall,
    channel: impl Fn(&'a Fragment) -> [(Side, Option<&'a BodyPart>); N],
) -> Vec<BodyCopy<'a>> {
    let mut copies: Vec<BodyCopy<'a>> = Vec::new();
    for h in &call.parts {
        let role = h.fragment.role;
        for (side, piece) in channel(&h.fragment) {
            let Some(piece) = piece else {
                continue;
            };
            let at = match copies
                .iter()
                .position(|c| c.role == role && c.kind == piece.kind && c.side == side)
            {
                Some(at) => at,
                None => {
                    copies.push(BodyCopy::new(role, piece.kind, side));
                    copies.len() - 1
                }
            };
            copies[at].pieces.push(piece);
        }
    }
    for c in &mut copies {
        c.settle();
    }
    copies.sort_by_key(BodyCopy::rank);
    copies
}

/// The most complete copy's kind, text and truncation; a warning says
/// which copy was used when another one disagrees with it.
fn chosen(
    copies: Vec<BodyCopy<'_>>,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<(BodyKind, String, bool)> {
    let mut copies = copies.into_iter();
    let best = copies.next()?;
    if let Some((missing, count)) = best.missing {
        warnings.push(format!("{what} body: {missing} of {count} chunks missing"));
    }
    let text = best.text();
    for other in copies {
        // Copies of different kinds are two forms of one content: telling
        // them apart would take parsing both, so only a cut one is named.
        let differs = other.kind == best.kind && !other.spells(&text);
        if other.truncated && (differs || other.kind != best.kind) {
            warnings.push(format!(
                "{what} body: used {}; {} was cut",
                best.label(),
                other.label()
            ));
        } else if differs {
            warnings.push(format!(
                "{what} body: used {}; {} differs",
                best.label(),
                other.label()
            ));
        }
    }
    Some((best.kind, text, best.truncated))
}

/// azure-monitor LLM log messages: pieces of one JSON array of messages.
fn parse_messages(text: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(text.to_string())),
    }
}

fn response_from_messages(text: &str) -> ParsedResponse {
    let mut r = ParsedResponse {
        object: Some("chat.completion".into()),
        ..ParsedResponse::default()
    };
    let items = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a,
        Ok(v) => vec![v],
        Err(_) => {
            r.truncated = true;
            r.warnings
                .push("LLM log response messages are not valid JSON".into());
            return r;
        }
    };
    for (i, m) in items.iter().enumerate() {
        // Entries may be messages or choices wrapping a message.
        let msg = m.get("message").unwrap_or(m);
        let text = match msg.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        r.choices.push(body::Choice {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            role: msg.get("role").and_then(Value::as_str).map(str::to_string),
            text,
            finish_reason: m
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..body::Choice::default()
        });
    }
    r.cap_choices();
    r
}

fn merge_usage(body: Option<Usage>, envelope: Option<Usage>) -> Option<Usage> {
    let pick = |b: Option<Usage>| b.filter(|u| !u.is_empty());
    match (pick(body), pick(envelope)) {
        (None, None) => None,
        (Some(b), None) => Some(b),
        (None, Some(e)) => Some(e),
        (Some(b), Some(e)) => Some(Usage {
            prompt_tokens: b.prompt_tokens.or(e.prompt_tokens),
            completion_tokens: b.completion_tokens.or(e.completion_tokens),
            total_tokens: b.total_tokens.or(e.total_tokens),
            cached_tokens: b.cached_tokens.or(e.cached_tokens),
            reasoning_tokens: b.reasoning_tokens.or(e.reasoning_tokens),
        }),
    }
}

fn complete_total(mut u: Usage) -> Usage {
    if u.total_tokens.is_none() {
        u.total_tokens = match (u.prompt_tokens, u.completion_tokens) {
            (Some(p), Some(c)) => Some(p + c),
            (Some(p), None) => Some(p),
            _ => None,
        };
    }
    u
}

fn estimate(
    model: &str,
    req: &ParsedRequest,
    resp: &ParsedResponse,
    op: Operation,
) -> Option<Usage> {
    let prompt_src = req
        .messages
        .as_ref()
        .or(req.prompt.as_ref())
        .or(req.input.as_ref());
    let mut prompt = prompt_src.and_then(|p| tokens::estimate_prompt(model, p));
    if let (Some(p), Some(instr)) = (prompt.as_mut(), req.instructions.as_deref()) {
        *p += tokens::estimate_text(model, instr).unwrap_or(0);
    }
    if op == Operation::Embedding {
        let p = prompt?;
        return Some(Usage {
            prompt_tokens: Some(p),
            total_tokens: Some(p),
            ..Usage::default()
        });
    }
    // A body that says only `streaming` (or nothing) gives nothing to count.
    if resp.choices.is_empty() {
        return None;
    }
    let mut completion = 0i64;
    for c in &resp.choices {
        completion += tokens::estimate_text(model, &c.text)?;
        for t in &c.tool_calls {
            completion += tokens::estimate_text(model, t.name.as_deref().unwrap_or(""))?;
            completion += tokens::estimate_text(model, &t.arguments)?;
        }
    }
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: Some(completion),
        total_tokens: Some(prompt.unwrap_or(0) + completion),
        ..Usage::default()
    })
}

fn merge(into: &mut CallMeta, from: &CallMeta) {
    macro_rules! first {
        ($($f:ident),*) => { $( if into.$f.is_none() { into.$f = from.$f.clone(); } )* };
    }
    first!(
        request_id,
        correlation_id,
        request_time,
        response_time,
        duration_ms,
        backend_time_ms,
        model_time_ms,
        caller_ip,
        subscription_id,
        subscription_name,
        product_id,
        user_id,
        app_id,
        subscription_key_hash,
        service,
        region,
        api_id,
        operation_id,
        method,
        url,
        deployment,
        api_version,
        backend,
        model,
        status_code,
        is_stream,
        error
    );
    into.usage = merge_usage(into.usage, from.usage);
    for h in &from.request_headers {
        if !into.request_headers.contains(h) {
            into.request_headers.push(h.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_key_is_up_to_second_dash() {
        assert_eq!(model_key("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(model_key("gpt-35-turbo"), "gpt-35");
        assert_eq!(model_key("gpt-4o"), "");
    }

    #[test]
    fn a_copy_keeps_the_most_complete_piece_of_each_index_in_any_order() {
        let piece = |index, text: &str, truncated| BodyPart {
            index,
            count: Some(2),
            truncated,
            ..BodyPart::whole(text)
        };
        let (cut, whole, tail) = (
            piece(0, "ab", true),
            piece(0, "abc", false),
            piece(1, "d", false),
        );
        for order in [
            [&cut, &whole, &tail],
            [&tail, &whole, &cut],
            [&whole, &cut, &tail],
        ] {
            let mut c = BodyCopy::new(Role::Response, BodyKind::Http, Side::Client);
            c.pieces.extend(order);
            c.settle();
            assert_eq!(
                (c.text().as_str(), c.truncated, c.missing),
                ("abcd", false, None)
            );
            assert!(c.spells("abcd") && !c.spells("abc") && !c.spells("abcde"));
        }
    }
}
