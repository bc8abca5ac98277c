//! Token estimation with the model's real tokenizer (bundled, offline).
//!
//! OWNER: usage helper.

use serde_json::Value;

/// Estimated prompt tokens for a chat request's `messages`, with OpenAI's
/// per-message overhead; or for a `prompt` / `input` string or array.
pub fn estimate_prompt(_model: &str, _prompt: &Value) -> Option<i64> {
    None
}

/// Estimated tokens of a completion text.
pub fn estimate_text(_model: &str, _text: &str) -> Option<i64> {
    None
}
