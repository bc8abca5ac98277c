//! The Responses API stream: accumulates `response.*` events into one
//! choice, the final object being authoritative when it carries the output.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::read::{error_message, first_meta, nonempty_str, usage_of};
use super::responses::{responses_choice, responses_finish, responses_tool_call, status_of};
use super::{Choice, ParsedResponse, ToolCall};
use crate::coerce;

/// Accumulates Responses API stream events.
#[derive(Default)]
pub(super) struct ResponsesStream {
    pub(super) seen: bool,
    role: Option<String>,
    /// Text per (output_index, content_index).
    pub(super) texts: BTreeMap<(i64, i64), String>,
    /// Function calls per output_index.
    pub(super) tools: BTreeMap<i64, ToolCall>,
    last: Option<Map<String, Value>>,
}

impl ResponsesStream {
    pub(super) fn event(&mut self, ty: &str, d: &Map<String, Value>, r: &mut ParsedResponse) {
        self.seen = true;
        let out = d.get("output_index").and_then(coerce::int).unwrap_or(0);
        match ty {
            "response.created" | "response.in_progress" | "response.queued" => {
                if let Some(resp) = d.get("response").and_then(Value::as_object) {
                    first_meta(r, resp);
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                let Some(item) = d.get("item") else { return };
                match item.get("type").and_then(Value::as_str) {
                    Some("function_call") => {
                        let new = responses_tool_call(item);
                        let t = self.tools.entry(out).or_default();
                        t.id = t.id.take().or(new.id);
                        t.kind = t.kind.take().or(new.kind);
                        t.name = t.name.take().or(new.name);
                        if !new.arguments.is_empty() {
                            t.arguments = new.arguments;
                        }
                    }
                    Some("message") => {
                        if let Some(role) = nonempty_str(item.get("role")) {
                            self.role = Some(role);
                        }
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" | "response.output_text.done" => {
                let part = d.get("content_index").and_then(coerce::int).unwrap_or(0);
                let text = self.texts.entry((out, part)).or_default();
                if ty.ends_with("delta") {
                    if let Some(Value::String(s)) = d.get("delta") {
                        text.push_str(s);
                    }
                } else if let Some(Value::String(s)) = d.get("text") {
                    *text = s.clone();
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(Value::String(s)) = d.get("delta") {
                    self.tools.entry(out).or_default().arguments.push_str(s);
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(Value::String(s)) = d.get("arguments") {
                    self.tools.entry(out).or_default().arguments = s.clone();
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                r.stream_complete = true;
                if let Some(resp) = d.get("response").and_then(Value::as_object) {
                    self.last = Some(resp.clone());
                }
            }
            "error" => {
                if let Some(e) = error_message(&Value::Object(d.clone())) {
                    r.error = Some(e);
                }
            }
            _ => {}
        }
    }

    pub(super) fn finish(self, r: &mut ParsedResponse, repaired_last: bool) {
        if !self.seen {
            return;
        }
        r.object.get_or_insert_with(|| "response".into());
        // Deltas: parts of one output item joined as they are, items by `\n`.
        let mut texts: Vec<String> = Vec::new();
        let mut current: Option<i64> = None;
        for ((out, _), t) in self.texts {
            if current == Some(out) {
                if let Some(last) = texts.last_mut() {
                    last.push_str(&t);
                }
            } else {
                texts.push(t);
                current = Some(out);
            }
        }
        let mut choice = Choice {
            role: self.role.or_else(|| Some("assistant".into())),
            text: texts.join("\n"),
            tool_calls: self.tools.into_values().collect(),
            ..Choice::default()
        };
        let mut has = !choice.text.is_empty() || !choice.tool_calls.is_empty();
        if let Some(last) = self.last {
            first_meta(r, &last);
            if let Some(u) = usage_of(last.get("usage"), repaired_last) {
                r.usage = Some(u);
            }
            if let Some(e) = last.get("error").and_then(error_message) {
                r.error = Some(e);
            }
            // The final object is authoritative when it carries the output.
            let (fin, fin_has) = responses_choice(&last);
            if fin_has {
                choice = fin;
                has = true;
            }
            choice.finish_reason = responses_finish(&last, !choice.tool_calls.is_empty());
            has |= matches!(status_of(&last), Some("completed" | "incomplete"));
        }
        if has {
            r.choices.push(choice);
        }
    }
}
