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
use crate::{coerce, limits};

/// One choice being assembled from chunks, with its tool calls by index.
#[derive(Default)]
pub(super) struct ChoiceAcc {
    pub(super) choice: Choice,
    pub(super) tools: BTreeMap<i64, ToolCall>,
}

impl ChoiceAcc {
    /// The tool call at `index`; `None` (counted in `dropped`) for a new
    /// one past [`limits::MAX_TOOL_CALLS`].
    pub(super) fn tool(&mut self, index: i64, dropped: &mut usize) -> Option<&mut ToolCall> {
        if self.tools.len() >= limits::MAX_TOOL_CALLS && !self.tools.contains_key(&index) {
            *dropped += 1;
            return None;
        }
        Some(self.tools.entry(index).or_default())
    }
}

#[derive(Default)]
pub(super) struct ChatStream {
    pub(super) choices: BTreeMap<u32, ChoiceAcc>,
    pub(super) saw_delta: bool,
    pub(super) saw_text: bool,
    /// Deltas of choices and tool calls past the limits, dropped.
    pub(super) dropped_choices: usize,
    pub(super) dropped_tools: usize,
}

impl ChatStream {
    /// The choice at `index`; `None` (counted) for a new one past
    /// [`limits::MAX_CHOICES`].
    /// (Fields apart, so the stream's flags stay writable meanwhile.)
    pub(super) fn choice<'a>(
        choices: &'a mut BTreeMap<u32, ChoiceAcc>,
        dropped: &mut usize,
        index: u32,
    ) -> Option<&'a mut ChoiceAcc> {
        if choices.len() >= limits::MAX_CHOICES && !choices.contains_key(&index) {
            *dropped += 1;
            return None;
        }
        let acc = choices.entry(index).or_default();
        acc.choice.index = index;
        Some(acc)
    }

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
            let mut dropped_tools = 0;
            let Some(acc) = Self::choice(&mut self.choices, &mut self.dropped_choices, index)
            else {
                continue;
            };
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
                    if let Some(t) = acc.tool(ti, &mut dropped_tools) {
                        tool_fragment(t, to.get("id"), to.get("type"), to.get("function"));
                    }
                }
                // Deprecated `function_call`: kept as one tool call.
                if let Some(f) = delta.get("function_call").filter(|f| f.is_object())
                    && let Some(t) = acc.tool(-1, &mut dropped_tools)
                {
                    let kind = Value::from("function");
                    tool_fragment(t, None, Some(&kind), Some(f));
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
            self.dropped_tools += dropped_tools;
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
        if self.dropped_choices > 0 {
            r.warnings.push(limits::dropped(
                "stream choice deltas",
                self.dropped_choices,
                limits::MAX_CHOICES,
            ));
        }
        if self.dropped_tools > 0 {
            r.warnings.push(limits::dropped(
                "stream tool-call deltas",
                self.dropped_tools,
                limits::MAX_TOOL_CALLS,
            ));
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
