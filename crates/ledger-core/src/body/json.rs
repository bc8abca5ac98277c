//! Non-streamed JSON bodies: reading (and repairing) the text, then the
//! chat, completions and embeddings response objects.

use serde_json::{Map, Value};

use super::read::{
    error_message, index_of, merge_filters, merge_prompt_filters, nonempty_str, normalise_object,
    usage_of,
};
use super::responses::{responses_choice, responses_finish, status_of};
use super::{Choice, ParsedResponse, ToolCall};
use crate::coerce;
use crate::json_repair::repair;

/// How a JSON text read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    Empty,
    Whole,
    /// A whole value followed by something else (ignored).
    Trailing,
    /// Ended early: repaired.
    Cut,
    /// Not JSON (syntax error): repaired as far as it went.
    Invalid,
}

impl Read {
    pub(super) fn damaged(self) -> bool {
        matches!(self, Read::Cut | Read::Invalid)
    }
}

pub(super) fn read_json(text: &str) -> (Option<Value>, Read) {
    read_json_at(text, 0)
}

pub(super) fn read_json_at(text: &str, depth: u8) -> (Option<Value>, Read) {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.is_empty() {
        return (None, Read::Empty);
    }
    let mut values = serde_json::Deserializer::from_str(t).into_iter::<Value>();
    let (value, read) = match values.next() {
        Some(Ok(v)) => {
            let rest = t.get(values.byte_offset()..).unwrap_or("");
            (
                Some(v),
                if rest.trim().is_empty() {
                    Read::Whole
                } else {
                    Read::Trailing
                },
            )
        }
        Some(Err(e)) => (
            repair(t),
            if e.is_eof() { Read::Cut } else { Read::Invalid },
        ),
        None => (None, Read::Empty),
    };
    // A body written out as a JSON string (double-encoded): read it once more.
    if let Some(Value::String(s)) = &value
        && depth == 0
        && s.trim_start().starts_with('{')
    {
        return read_json_at(s, 1);
    }
    (value, read)
}

/// Reads a response object; `repaired` says it was rebuilt from a cut text,
/// so a usage missing its total is not trusted.
pub(super) fn read_response_object(m: &Map<String, Value>, r: &mut ParsedResponse, repaired: bool) {
    if let Some(e) = m.get("error").and_then(error_message) {
        r.error = Some(e);
    }
    r.id = nonempty_str(m.get("id"));
    r.model = nonempty_str(m.get("model"));
    r.created = m
        .get("created")
        .or_else(|| m.get("created_at"))
        .and_then(coerce::int);
    r.object = nonempty_str(m.get("object")).map(|o| normalise_object(&o));
    let is_responses = match r.object.as_deref() {
        Some(o) => o == "response",
        None => m.get("output").is_some_and(Value::is_array) && m.get("choices").is_none(),
    };
    if is_responses {
        r.object = Some("response".into());
        r.usage = usage_of(m.get("usage"), repaired);
        let (mut choice, has_output) = responses_choice(m);
        choice.finish_reason = responses_finish(m, !choice.tool_calls.is_empty());
        if has_output || matches!(status_of(m), Some("completed" | "incomplete")) {
            r.choices.push(choice);
        }
        return;
    }
    if let Some(p) = m
        .get("prompt_filter_results")
        .or_else(|| m.get("prompt_annotations"))
    {
        merge_prompt_filters(&mut r.prompt_filter_results, p);
    }
    let mut texts = false;
    if let Some(Value::Array(choices)) = m.get("choices") {
        texts = choices.iter().any(|c| c.get("text").is_some());
        r.choices = choices
            .iter()
            .enumerate()
            .filter_map(|(i, c)| read_choice(i, c))
            .collect();
    }
    if let Some(Value::Array(data)) = m.get("data") {
        let embedding_items = data
            .first()
            .and_then(|d| d.get("object"))
            .is_some_and(|o| o == "embedding");
        if r.object.as_deref() == Some("list") || embedding_items {
            r.embeddings = Some(data.len());
            r.object.get_or_insert_with(|| "list".into());
        }
    }
    r.usage = usage_of(m.get("usage"), repaired);
    if r.object.is_none() {
        r.object = infer_object(&r.choices, texts);
    }
}

pub(super) fn infer_object(choices: &[Choice], texts: bool) -> Option<String> {
    if choices.is_empty() {
        None
    } else if texts {
        Some("text_completion".into())
    } else {
        Some("chat.completion".into())
    }
}

/// One choice of a non-streamed body (a lone chunk's `delta` is read too).
pub(super) fn read_choice(pos: usize, c: &Value) -> Option<Choice> {
    let o = c.as_object()?;
    let mut ch = Choice {
        index: index_of(o.get("index")).unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX)),
        ..Choice::default()
    };
    if let Some(msg) = o
        .get("message")
        .or_else(|| o.get("delta"))
        .and_then(Value::as_object)
    {
        ch.role = nonempty_str(msg.get("role"));
        ch.text = content_text(msg.get("content"));
        if let Some(Value::Array(calls)) = msg.get("tool_calls") {
            ch.tool_calls = calls.iter().filter_map(read_tool_call).collect();
        }
        if let Some(f) = msg.get("function_call").filter(|f| f.is_object()) {
            ch.tool_calls.push(ToolCall {
                kind: Some("function".into()),
                name: nonempty_str(f.get("name")),
                arguments: arguments_text(f.get("arguments")),
                ..ToolCall::default()
            });
        }
    }
    if let Some(Value::String(t)) = o.get("text") {
        ch.text.push_str(t);
    }
    ch.finish_reason = nonempty_str(o.get("finish_reason"));
    if let Some(f) = o.get("content_filter_results") {
        merge_filters(&mut ch.content_filter_results, f);
    }
    Some(ch)
}

pub(super) fn read_tool_call(t: &Value) -> Option<ToolCall> {
    let o = t.as_object()?;
    let f = o.get("function");
    Some(ToolCall {
        id: nonempty_str(o.get("id")),
        kind: nonempty_str(o.get("type")),
        name: f.and_then(|f| nonempty_str(f.get("name"))),
        arguments: arguments_text(f.and_then(|f| f.get("arguments"))),
    })
}

/// Message content: a string, or an array of parts whose `text` is joined.
pub(super) fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect(),
        _ => String::new(),
    }
}

pub(super) fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The first `"key": "value"` in a text that is not valid JSON, when the
/// structural repair found nothing: a last resort for the model name.
pub(super) fn scan_string_field(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|t| t.find(&needle)) {
        let at = from + found;
        from = at + needle.len();
        // An escaped quote is inside a string, not a key.
        if at > 0 && text.as_bytes().get(at - 1) == Some(&b'\\') {
            continue;
        }
        let rest = text.get(from..)?.trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        if !rest.starts_with('"') {
            continue;
        }
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        if let Some(Ok(s)) = values.next()
            && !s.trim().is_empty()
        {
            return Some(s);
        }
    }
    None
}
