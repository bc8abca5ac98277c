//! Azure OpenAI request and response bodies: parse a request, and rebuild a
//! response (non-streamed JSON or SSE) into one normalised shape.
//!
//! OWNER: body helper. Public API below is the contract with `assemble`.

use crate::model::Usage;
use serde_json::Value;

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

/// Parses a request body. Never fails: unreadable input gives a mostly empty
/// result with `truncated` set.
pub fn parse_request(_text: &str) -> ParsedRequest {
    ParsedRequest::default()
}

/// Parses a response body: JSON (chat, completions, embeddings, Responses)
/// or SSE (chat/completions chunks, Responses API events). Never fails.
pub fn parse_response(_text: &str) -> ParsedResponse {
    ParsedResponse::default()
}

impl ParsedResponse {
    /// The equivalent non-streamed JSON body (what a non-streamed call would
    /// have returned), with `usage` replaced by the given one when present.
    pub fn to_json(&self, _usage: Option<&Usage>) -> Value {
        Value::Null
    }

    /// The first finish reason, and whether any choice was cut by a filter.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.iter().find_map(|c| c.finish_reason.as_deref())
    }
}
