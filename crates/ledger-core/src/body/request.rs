//! Reading a request body into the few fields the ledger keeps.

use serde_json::Value;

use super::ParsedRequest;
use super::json::{read_json, scan_string_field};
use super::read::{non_null, nonempty_str, text_of};
use crate::coerce;

/// Parses a request body. Never fails: unreadable input gives a mostly empty
/// result with `truncated` set.
pub fn parse_request(text: &str) -> ParsedRequest {
    let mut r = ParsedRequest::default();
    let (value, read) = read_json(text);
    r.truncated = read.damaged();
    let Some(Value::Object(m)) = value else {
        if r.truncated {
            r.model = scan_string_field(text, "model");
        }
        return r;
    };
    r.model = nonempty_str(m.get("model"));
    if r.model.is_none() && r.truncated {
        r.model = scan_string_field(text, "model");
    }
    r.messages = non_null(m.get("messages"));
    r.prompt = non_null(m.get("prompt"));
    r.input = non_null(m.get("input"));
    r.instructions = m.get("instructions").and_then(text_of);
    r.stream = m.get("stream").and_then(coerce::bool).unwrap_or(false);
    r.include_usage = m
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(coerce::bool)
        .unwrap_or(false);
    r.max_tokens = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| m.get(*k).and_then(coerce::int));
    r.temperature = m.get("temperature").and_then(coerce::float);
    r.n = m.get("n").and_then(coerce::int);
    r.user = m.get("user").and_then(text_of);
    r
}
