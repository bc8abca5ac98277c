//! Small readers shared by the JSON and the stream paths: metadata, usage,
//! error messages, content-filter merging, loose scalars.

use serde_json::{Map, Value};

use super::ParsedResponse;
use crate::model::Usage;

// ---------------------------------------------------------------------------
// Shared readers

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
            .and_then(int_of)
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
    let get = |keys: &[&str]| keys.iter().find_map(|k| m.get(*k).and_then(int_of));
    let detail = |keys: &[&str], field: &str| {
        keys.iter()
            .find_map(|k| m.get(*k)?.get(field).and_then(int_of))
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
    v.and_then(int_of).and_then(|i| u32::try_from(i).ok())
}

/// A whole number, given as a JSON number or a string.
pub(super) fn int_of(v: &Value) -> Option<i64> {
    let whole =
        |f: f64| (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64);
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole))
        }
        _ => None,
    }
}

pub(super) fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

pub(super) fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}
