//! The chat/completions stream: accumulates `chat.completion.chunk` (and
//! legacy `text_completion`) chunks into choices, tool calls by index.
//! `chat_stream_fast` mirrors [`ChatStream::chunk`] without a `Value` tree.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::json::arguments_text;
use super::read::{
    error_message, first_meta, index_of, merge_filters, merge_prompt_filters, nonempty_str,
    normalise_object, usage_of,
};
use super::{Choice, ParsedResponse, ToolCall};
use crate::coerce;

/// One choice being assembled from chunks, with its tool calls by index.
#[derive(Default)]
pub(super) struct ChoiceAcc {
    pub(super) choice: Choice,
    pub(super) tools: BTreeMap<i64, ToolCall>,
}

#[derive(Default)]
pub(super) struct ChatStream {
    pub(super) choices: BTreeMap<u32, ChoiceAcc>,
    pub(super) saw_delta: bool,
    pub(super) saw_text: bool,
}

impl ChatStream {
    pub(super) fn chunk(&mut self, m: &Map<String, Value>, repaired: bool, r: &mut ParsedResponse) {
        if let Some(e) = m.get("error").and_then(error_message) {
            r.error = Some(e);
        }
        first_meta(r, m);
        if r.object.is_none() {
            r.object = nonempty_str(m.get("object")).map(|o| normalise_object(&o));
        }
        if let Some(p) = m
            .get("prompt_filter_results")
            .or_else(|| m.get("prompt_annotations"))
        {
            merge_prompt_filters(&mut r.prompt_filter_results, p);
        }
        for (pos, c) in m
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(o) = c.as_object() else { continue };
            let index = match index_of(o.get("index")) {
                Some(i) => i,
                // A cut chunk may have lost its index (Azure writes it after
                // `delta`): only the sole choice can own it then.
                None if repaired => match (self.choices.len(), self.choices.keys().next()) {
                    (0, _) => 0,
                    (1, Some(k)) => *k,
                    _ => continue,
                },
                None => u32::try_from(pos).unwrap_or(u32::MAX),
            };
            let acc = self.choices.entry(index).or_default();
            acc.choice.index = index;
            if let Some(delta) = o.get("delta").and_then(Value::as_object) {
                self.saw_delta = true;
                if let Some(role) = nonempty_str(delta.get("role")) {
                    acc.choice.role = Some(role);
                }
                if let Some(Value::String(s)) = delta.get("content") {
                    acc.choice.text.push_str(s);
                }
                for (tpos, t) in delta
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let Some(to) = t.as_object() else { continue };
                    let ti = to
                        .get("index")
                        .and_then(coerce::int)
                        .unwrap_or_else(|| i64::try_from(tpos).unwrap_or(i64::MAX));
                    tool_fragment(
                        acc.tools.entry(ti).or_default(),
                        to.get("id"),
                        to.get("type"),
                        to.get("function"),
                    );
                }
                // Deprecated `function_call`: kept as one tool call.
                if let Some(f) = delta.get("function_call").filter(|f| f.is_object()) {
                    let kind = Value::from("function");
                    tool_fragment(acc.tools.entry(-1).or_default(), None, Some(&kind), Some(f));
                }
            }
            if let Some(Value::String(s)) = o.get("text") {
                self.saw_text = true;
                acc.choice.text.push_str(s);
            }
            if let Some(f) = nonempty_str(o.get("finish_reason")) {
                acc.choice.finish_reason = Some(f);
            }
            if let Some(f) = o.get("content_filter_results") {
                merge_filters(&mut acc.choice.content_filter_results, f);
            }
        }
        if let Some(u) = usage_of(m.get("usage"), repaired) {
            r.usage = Some(u);
        }
    }

    pub(super) fn finish(self, r: &mut ParsedResponse) {
        if r.object.is_none() && (self.saw_delta || self.saw_text) {
            r.object = Some(
                if self.saw_text {
                    "text_completion"
                } else {
                    "chat.completion"
                }
                .into(),
            );
        }
        for (_, mut acc) in self.choices {
            acc.choice.tool_calls = acc.tools.into_values().collect();
            r.choices.push(acc.choice);
        }
    }
}

/// One fragment of a streamed tool call: `id`, `type`, `name` arrive once,
/// `arguments` in pieces.
pub(super) fn tool_fragment(
    t: &mut ToolCall,
    id: Option<&Value>,
    kind: Option<&Value>,
    function: Option<&Value>,
) {
    if t.id.is_none() {
        t.id = nonempty_str(id);
    }
    if t.kind.is_none() {
        t.kind = nonempty_str(kind);
    }
    if let Some(f) = function {
        if t.name.is_none() {
            t.name = nonempty_str(f.get("name"));
        }
        t.arguments.push_str(&arguments_text(f.get("arguments")));
    }
}
