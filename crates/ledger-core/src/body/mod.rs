//! Azure OpenAI request and response bodies: parse a request, and rebuild a
//! response (non-streamed JSON or SSE) into one normalised shape.
//!
//! The public API here is what `assemble` uses. Each job has its file:
//! `request` reads a request; `json` a non-streamed response, `responses`
//! the Responses API object; `sse` frames an event stream and feeds
//! `chat_stream` (with its typed fast path, `chat_stream_fast`) or
//! `responses_stream`; `render` writes the equivalent non-streamed body.
//!
//! Nothing here panics on input: bodies arrive cut (APIM's 200 KB event
//! limit, the 8 KB diagnostic log limit), interrupted, or in odd dialects.
//! A cut JSON body is closed at the last point where it can be closed
//! (`json_repair`), so the fields before the cut are kept.

mod chat_stream;
mod chat_stream_fast;
mod json;
mod read;
mod render;
mod request;
mod responses;
mod responses_stream;
mod sse;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::limits;
use crate::model::Usage;

pub(crate) use render::usage_json;
pub use request::parse_request;

/// What the ledger needs from a request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedRequest {
    pub model: Option<String>,
    /// `messages` (chat) — kept as JSON.
    pub messages: Option<Value>,
    /// `prompt` (legacy completions).
    pub prompt: Option<Value>,
    /// `input` (embeddings, Responses API).
    pub input: Option<Value>,
    /// `instructions` (Responses API).
    pub instructions: Option<String>,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// `max_tokens`, or `max_completion_tokens` / `max_output_tokens`.
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub n: Option<i64>,
    /// The OpenAI `user` field.
    pub user: Option<String>,
    /// The body was not complete JSON (cut); what could be read is above.
    pub truncated: bool,
}

/// One tool call of a choice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// One choice of a completion, assembled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choice {
    pub index: u32,
    pub role: Option<String>,
    /// Message content (chat), text (completions) or output text (Responses).
    pub text: String,
    pub finish_reason: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// Merged `content_filter_results` seen for this choice.
    pub content_filter_results: Option<Value>,
}

/// A response body rebuilt into one shape, whatever form it arrived in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedResponse {
    pub id: Option<String>,
    /// `chat.completion`, `text_completion`, `list` (embeddings),
    /// `response` (Responses API); streamed chunks are reported under the
    /// non-streamed object name.
    pub object: Option<String>,
    pub model: Option<String>,
    pub created: Option<i64>,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
    /// The body was SSE.
    pub is_stream: bool,
    /// A streamed body reached its end (`[DONE]`, `response.completed`).
    pub stream_complete: bool,
    pub prompt_filter_results: Option<Value>,
    /// Number of embedding vectors (embeddings responses).
    pub embeddings: Option<usize>,
    /// `{"error": {...}}` body: the error message.
    pub error: Option<String>,
    /// The body was not complete (cut JSON, interrupted stream).
    pub truncated: bool,
    pub warnings: Vec<String>,
}

/// Parses a response body: JSON (chat, completions, embeddings, Responses)
/// or SSE (chat/completions chunks, Responses API events). Never fails.
/// Choices and tool calls past their [`limits`](crate::limits) are dropped
/// with a warning.
pub fn parse_response(text: &str) -> ParsedResponse {
    let mut r = parse_response_uncapped(text);
    r.cap_choices();
    r
}

fn parse_response_uncapped(text: &str) -> ParsedResponse {
    let mut r = ParsedResponse::default();
    // Only the start is trimmed: trailing spaces may belong to a cut string.
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.is_empty() {
        return r;
    }
    // The enterprise-logging-tf policy logs this word instead of an SSE body.
    if t.trim_end().eq_ignore_ascii_case("streaming") {
        r.is_stream = true;
        r.warnings.push(
            "response body logged as `streaming`: no completion text or usage was kept".into(),
        );
        return r;
    }
    if t.starts_with("data:") || t.starts_with("event:") || t.starts_with(':') {
        sse::parse_sse(t, &mut r);
        return r;
    }
    if !(t.starts_with('{') || t.starts_with('[') || t.starts_with('"')) {
        r.warnings
            .push("response body is neither JSON nor SSE".into());
        return r;
    }
    let (value, read) = json::read_json(t);
    match read {
        json::Read::Cut => r
            .warnings
            .push("response body is cut JSON: kept the fields before the cut".into()),
        json::Read::Invalid => r
            .warnings
            .push("response body is not valid JSON: kept what could be read".into()),
        json::Read::Trailing => r
            .warnings
            .push("response body has data after its JSON: ignored".into()),
        json::Read::Whole | json::Read::Empty => {}
    }
    r.truncated = read.damaged();
    let repaired = r.truncated;
    match value {
        Some(Value::Object(m)) => json::read_response_object(&m, &mut r, repaired),
        // A bare `choices` array, as some policies log it.
        Some(Value::Array(a))
            if a.iter()
                .any(|c| c.get("message").is_some() || c.get("text").is_some()) =>
        {
            r.choices = a
                .iter()
                .enumerate()
                .filter_map(|(i, c)| json::read_choice(i, c))
                .collect();
            r.object = json::infer_object(&r.choices, a.iter().any(|c| c.get("text").is_some()));
        }
        Some(_) => r
            .warnings
            .push("response body is JSON but not a response object".into()),
        None => {}
    }
    if r.truncated && r.model.is_none() {
        r.model = json::scan_string_field(t, "model");
    }
    r
}

impl ParsedResponse {
    /// Drops choices past [`limits::MAX_CHOICES`] and tool calls past
    /// [`limits::MAX_TOOL_CALLS`], with a warning for each kind.
    pub fn cap_choices(&mut self) {
        if self.choices.len() > limits::MAX_CHOICES {
            let n = self.choices.len() - limits::MAX_CHOICES;
            self.choices.truncate(limits::MAX_CHOICES);
            self.warnings
                .push(limits::dropped("choices", n, limits::MAX_CHOICES));
        }
        let mut tools = 0;
        for c in &mut self.choices {
            if c.tool_calls.len() > limits::MAX_TOOL_CALLS {
                tools += c.tool_calls.len() - limits::MAX_TOOL_CALLS;
                c.tool_calls.truncate(limits::MAX_TOOL_CALLS);
            }
        }
        if tools > 0 {
            self.warnings
                .push(limits::dropped("tool calls", tools, limits::MAX_TOOL_CALLS));
        }
    }

    /// The first finish reason, and whether any choice was cut by a filter.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.iter().find_map(|c| c.finish_reason.as_deref())
    }
}
