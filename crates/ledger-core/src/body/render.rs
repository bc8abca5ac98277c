//! Rendering: the equivalent non-streamed JSON body of a parsed response,
//! and usage in the chat completion's JSON shape.

use serde_json::{Map, Value, json};

use super::{Choice, ParsedResponse};
use crate::model::Usage;

impl ParsedResponse {
    /// The equivalent non-streamed JSON body (what a non-streamed call would
    /// have returned), with `usage` replaced by the given one when present.
    ///
    /// Responses API bodies are rebuilt in the chat shape (`choices`, plus
    /// `output_text`) with usage under the chat names (`prompt_tokens`,
    /// `completion_tokens`, ...), so one query path such as
    /// `parse_json(body)['usage']['prompt_tokens']` reads every call.
    pub fn to_json(&self, usage: Option<&Usage>) -> Value {
        let usage = usage.copied().or(self.usage);
        let mut m = Map::new();
        if self.choices.is_empty()
            && usage.is_none()
            && self.embeddings.is_none()
            && let Some(e) = &self.error
        {
            m.insert("error".into(), json!({ "message": e }));
            return Value::Object(m);
        }
        let object = match self.object.as_deref() {
            Some(o) => o,
            None if self.embeddings.is_some() && self.choices.is_empty() => "list",
            None => "chat.completion",
        };
        if object == "list" {
            // Embeddings: the vectors are not worth keeping.
            m.insert("object".into(), "list".into());
            if let Some(model) = &self.model {
                m.insert("model".into(), model.as_str().into());
            }
            if let Some(u) = usage {
                m.insert("usage".into(), usage_json(&u));
            }
            return Value::Object(m);
        }
        if let Some(id) = &self.id {
            m.insert("id".into(), id.as_str().into());
        }
        m.insert("object".into(), object.into());
        if let Some(c) = self.created {
            m.insert("created".into(), c.into());
        }
        if let Some(model) = &self.model {
            m.insert("model".into(), model.as_str().into());
        }
        if object == "response" {
            let text: Vec<&str> = self.choices.iter().map(|c| c.text.as_str()).collect();
            m.insert("output_text".into(), text.join("\n").into());
        }
        let text_completion = object == "text_completion";
        let choices: Vec<Value> = self
            .choices
            .iter()
            .map(|c| choice_json(c, text_completion))
            .collect();
        m.insert("choices".into(), Value::Array(choices));
        if let Some(u) = usage {
            m.insert("usage".into(), usage_json(&u));
        }
        if let Some(p) = &self.prompt_filter_results {
            m.insert("prompt_filter_results".into(), p.clone());
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), json!({ "message": e }));
        }
        Value::Object(m)
    }
}

fn choice_json(c: &Choice, text_completion: bool) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), c.index.into());
    if text_completion {
        m.insert("text".into(), c.text.as_str().into());
    } else {
        let mut msg = Map::new();
        msg.insert(
            "role".into(),
            c.role.as_deref().unwrap_or("assistant").into(),
        );
        // As the service does: no text beside tool calls is `null`.
        let content = if c.text.is_empty() && !c.tool_calls.is_empty() {
            Value::Null
        } else {
            c.text.as_str().into()
        };
        msg.insert("content".into(), content);
        if !c.tool_calls.is_empty() {
            let calls: Vec<Value> = c
                .tool_calls
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "type": t.kind.as_deref().unwrap_or("function"),
                        "function": {"name": t.name, "arguments": t.arguments},
                    })
                })
                .collect();
            msg.insert("tool_calls".into(), Value::Array(calls));
        }
        m.insert("message".into(), Value::Object(msg));
    }
    m.insert(
        "finish_reason".into(),
        c.finish_reason.as_deref().map_or(Value::Null, Value::from),
    );
    if let Some(f) = &c.content_filter_results {
        m.insert("content_filter_results".into(), f.clone());
    }
    Value::Object(m)
}

/// Usage in the chat completion's JSON shape (details only when known).
pub(crate) fn usage_json(u: &Usage) -> Value {
    let mut m = Map::new();
    let fields = [
        ("prompt_tokens", u.prompt_tokens),
        ("completion_tokens", u.completion_tokens),
        ("total_tokens", u.total_tokens),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    if let Some(c) = u.cached_tokens {
        m.insert(
            "prompt_tokens_details".into(),
            json!({ "cached_tokens": c }),
        );
    }
    if let Some(r) = u.reasoning_tokens {
        m.insert(
            "completion_tokens_details".into(),
            json!({ "reasoning_tokens": r }),
        );
    }
    Value::Object(m)
}
