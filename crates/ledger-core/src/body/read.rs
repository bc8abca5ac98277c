//! Small readers shared by the JSON and the stream paths: metadata, usage,
//! error messages, content-filter merging (loose scalars are
//! [`crate::coerce`]'s).

use serde_json::{Map, Value};

use super::ParsedResponse;
use crate::coerce;
use crate::model::Usage;

/// Sets `id`, `model`, `created` from the first object that has them
/// non-empty (annotation chunks carry empty ones).
pub(super) fn first_meta(r: &mut ParsedResponse, m: &Map<String, Value>) {
    if r.id.is_none() {
        r.id = nonempty_str(m.get("id"));
    }
    if r.model.is_none() {
        r.model = nonempty_str(m.get("model"));
    }
    if r.created.is_none() {
        r.created = m
            .get("created")
            .or_else(|| m.get("created_at"))
            .and_then(coerce::int)
            .filter(|c| *c != 0);
    }
}

pub(super) fn normalise_object(o: &str) -> String {
    o.strip_suffix(".chunk").unwrap_or(o).to_string()
}

/// Usage under the chat names or the Responses names (`input_tokens`...).
/// From a repaired (cut) body, a usage without its total may be missing
/// counts, so it is dropped and left to estimation.
pub(super) fn usage_of(v: Option<&Value>, repaired: bool) -> Option<Usage> {
    let m = v?.as_object()?;
    let get = |keys: &[&str]| keys.iter().find_map(|k| m.get(*k).and_then(coerce::int));
    let detail = |keys: &[&str], field: &str| {
        keys.iter()
            .find_map(|k| m.get(*k)?.get(field).and_then(coerce::int))
    };
    let u = Usage {
        prompt_tokens: get(&["prompt_tokens", "input_tokens"]),
        completion_tokens: get(&["completion_tokens", "output_tokens"]),
        total_tokens: get(&["total_tokens"]),
        cached_tokens: detail(
            &["prompt_tokens_details", "input_tokens_details"],
            "cached_tokens",
        ),
        reasoning_tokens: detail(
            &["completion_tokens_details", "output_tokens_details"],
            "reasoning_tokens",
        ),
    };
    if repaired && u.total_tokens.is_none() {
        return None;
    }
    let any = u.prompt_tokens.is_some()
        || u.completion_tokens.is_some()
        || u.total_tokens.is_some()
        || u.cached_tokens.is_some()
        || u.reasoning_tokens.is_some();
    any.then_some(u)
}

pub(super) fn error_message(e: &Value) -> Option<String> {
    match e {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("message")
            .and_then(text_of)
            .filter(|s| !s.is_empty())
            .or_else(|| o.get("code").and_then(text_of))
            .or_else(|| Some(e.to_string())),
        other => Some(other.to_string()),
    }
}

pub(super) fn merge_prompt_filters(into: &mut Option<Value>, from: &Value) {
    match (into.as_mut(), from) {
        (_, Value::Null) => {}
        (None, _) => *into = Some(from.clone()),
        (Some(Value::Array(a)), Value::Array(b)) => a.extend(b.iter().cloned()),
        (Some(_), _) => {}
    }
}

/// Merges content-filter results so that a flag once raised stays raised
/// (`filtered`/`detected` are OR-ed, `severity` keeps the highest).
pub(super) fn merge_filters(into: &mut Option<Value>, from: &Value) {
    if from.is_null() {
        return;
    }
    match into {
        None => *into = Some(from.clone()),
        Some(existing) => merge_value(existing, from),
    }
}

pub(super) fn merge_value(into: &mut Value, from: &Value) {
    let (Value::Object(a), Value::Object(b)) = (&mut *into, from) else {
        *into = from.clone();
        return;
    };
    for (k, v) in b {
        let Some(old) = a.get_mut(k) else {
            a.insert(k.clone(), v.clone());
            continue;
        };
        match (k.as_str(), &*old, v) {
            ("filtered" | "detected", Value::Bool(x), Value::Bool(y)) => {
                *old = Value::Bool(*x || *y)
            }
            ("severity", Value::String(x), Value::String(y)) => {
                if severity_rank(y) > severity_rank(x) {
                    *old = v.clone();
                }
            }
            _ => merge_value(old, v),
        }
    }
}

pub(super) fn severity_rank(s: &str) -> u8 {
    match s {
        "safe" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        _ => 0,
    }
}

pub(super) fn non_null(v: Option<&Value>) -> Option<Value> {
    v.filter(|v| !v.is_null()).cloned()
}

pub(super) fn nonempty_str(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A string, or a number written as one.
pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn index_of(v: Option<&Value>) -> Option<u32> {
    v.and_then(coerce::int).and_then(|i| u32::try_from(i).ok())
}
