//! The Responses API object (`"object": "response"`) read into one choice.

use serde_json::{Map, Value};

use super::json::arguments_text;
use super::read::nonempty_str;
use super::{Choice, ToolCall};

pub(super) fn status_of(m: &Map<String, Value>) -> Option<&str> {
    m.get("status").and_then(Value::as_str)
}

/// The output of a Responses object as one choice; `true` when it had any
/// text or tool call. Text parts of one message are joined as they are,
/// messages with a newline.
pub(super) fn responses_choice(m: &Map<String, Value>) -> (Choice, bool) {
    let mut ch = Choice {
        role: Some("assistant".into()),
        ..Choice::default()
    };
    let mut texts: Vec<String> = Vec::new();
    for item in m
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                if let Some(role) = nonempty_str(item.get("role")) {
                    ch.role = Some(role);
                }
                let text: String = item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("output_text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                texts.push(text);
            }
            Some("function_call") => ch.tool_calls.push(responses_tool_call(item)),
            _ => {}
        }
    }
    if texts.is_empty()
        && let Some(Value::String(s)) = m.get("output_text")
    {
        texts.push(s.clone());
    }
    ch.text = texts.join("\n");
    let has = !ch.text.is_empty() || !ch.tool_calls.is_empty();
    (ch, has)
}

pub(super) fn responses_tool_call(item: &Value) -> ToolCall {
    ToolCall {
        id: nonempty_str(item.get("call_id")).or_else(|| nonempty_str(item.get("id"))),
        kind: Some("function".into()),
        name: nonempty_str(item.get("name")),
        arguments: arguments_text(item.get("arguments")),
    }
}

/// A Responses `status` in the chat vocabulary, so `finish_reason` and
/// `content_filtered` mean the same for every API.
pub(super) fn responses_finish(m: &Map<String, Value>, has_tools: bool) -> Option<String> {
    match status_of(m)? {
        "completed" if has_tools => Some("tool_calls".into()),
        "completed" => Some("stop".into()),
        "incomplete" => {
            let reason = m
                .get("incomplete_details")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str);
            Some(match reason {
                Some("max_output_tokens") => "length".into(),
                Some(other) => other.into(),
                None => "incomplete".into(),
            })
        }
        _ => None,
    }
}
