//! Dialect recognition and decoding: one raw event body → fragments.
//!
//! Each event's dialect is recognised by its shape (see `event-formats.md`);
//! field names are matched ignoring ASCII case. Decoders never panic and
//! never quote field values in their errors (values can be secrets).

mod ai_gateway_2024;
mod azure_monitor;
mod chargeback;
mod common;
mod enterprise_logging;
mod enterprise_logging_tf;
mod fields;
mod ledger_v1;

use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::model::{Dialect, Fragment};
use fields::Obj;

pub use common::DEFAULT_KEY_SALT;

/// A part of an event that could not be used while the rest could (an
/// azure-monitor record): it becomes a dead letter of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub reason: DecodeError,
    /// The part's own JSON.
    pub raw: Vec<u8>,
}

/// What one event decodes to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    pub fragments: Vec<Fragment>,
    pub rejected: Vec<Rejected>,
}

/// Decodes one event body: [`decode_event`] without the rejected parts.
pub fn decode(body: &[u8]) -> Result<Vec<Fragment>, DecodeError> {
    decode_event(body).map(|d| d.fragments)
}

/// Decodes one event body. An event may hold several calls' fragments
/// (azure-monitor `records`), and parts of it may be rejected while the
/// rest is used. Unknown shapes are an error (→ dead letter).
///
/// An event cut short by APIM's 200 KB limit is repaired as far as it can
/// be: the body that was cut is kept and flagged `truncated`.
pub fn decode_event(body: &[u8]) -> Result<Decoded, DecodeError> {
    decode_event_with(body, DEFAULT_KEY_SALT)
}

/// [`decode_event`] with the salt raw subscription keys are hashed with
/// (a deployment's own secret salt keeps the hashes from being matched
/// against guessed keys).
pub fn decode_event_with(body: &[u8], key_salt: &str) -> Result<Decoded, DecodeError> {
    let (value, cut_field) = parse(body)?;
    let Value::Object(map) = &value else {
        return Err(DecodeError::UnknownDialect(
            "none: the event is not a JSON object".into(),
        ));
    };
    let o = Obj(map);
    let ctx = Ctx {
        raw: body,
        cut_field,
        key_salt,
    };
    let one = |f: Fragment| Decoded {
        fragments: vec![f],
        rejected: Vec::new(),
    };
    match detect(o) {
        Some(Dialect::LedgerV1) => ledger_v1::decode(o, &ctx).map(one),
        Some(Dialect::AzureMonitor) => azure_monitor::decode(o, &ctx),
        Some(Dialect::EnterpriseLogging) => enterprise_logging::decode(o, &ctx).map(one),
        Some(Dialect::EnterpriseLoggingTf) => enterprise_logging_tf::decode(o, &ctx).map(one),
        Some(Dialect::Chargeback) => chargeback::decode(o, &ctx).map(one),
        Some(Dialect::AiGateway2024) => ai_gateway_2024::decode(o, &ctx).map(one),
        None => Err(DecodeError::UnknownDialect(key_list(map))),
    }
}

/// What a decoder knows about the event besides its fields.
pub(crate) struct Ctx<'a> {
    /// The event body as received (chargeback hashes it into its key).
    pub raw: &'a [u8],
    /// Top-level field (lowercased) whose value APIM's size limit cut.
    pub cut_field: Option<String>,
    /// Salt for hashing raw subscription keys.
    pub key_salt: &'a str,
}

impl Ctx<'_> {
    /// Whether the value of top-level field `name` was cut.
    pub fn cut(&self, name: &str) -> bool {
        self.cut_field
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(name))
    }
}

/// Recognises a dialect by the fields only it has.
fn detect(o: Obj<'_>) -> Option<Dialect> {
    if o.text("schema")
        .is_some_and(|s| s.eq_ignore_ascii_case("ledger/v1"))
    {
        return Some(Dialect::LedgerV1);
    }
    if o.get("records").is_some_and(Value::is_array) {
        return Some(Dialect::AzureMonitor);
    }
    if o.has("event-type") {
        return Some(Dialect::EnterpriseLogging);
    }
    let tf_type = o.text("Type").is_some_and(|t| {
        ["request", "response", "error"]
            .iter()
            .any(|k| t.eq_ignore_ascii_case(k))
    });
    if tf_type && o.has("RequestId") {
        return Some(Dialect::EnterpriseLoggingTf);
    }
    if o.has("apimRequestId") {
        return Some(Dialect::AiGateway2024);
    }
    if o.has("appSubscriptionKey")
        || (o.has("apiOperation") && (o.has("request") || o.has("response")))
    {
        return Some(Dialect::Chargeback);
    }
    None
}

/// Parses the body, repairing an event that ends early.
fn parse(body: &[u8]) -> Result<(Value, Option<String>), DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        // A cut can split a multi-byte character: drop the partial one.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&body[..e.valid_up_to()])
            .map_err(|_| DecodeError::NotJson("invalid UTF-8".into()))?,
        Err(e) => {
            return Err(DecodeError::NotJson(format!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            )));
        }
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok((v, None)),
        Err(e) if e.is_eof() && text.trim_start().starts_with('{') => {
            let s = crate::json_repair::close_event(text)
                .ok_or_else(|| DecodeError::NotJson(e.to_string()))?;
            let v = serde_json::from_str::<Value>(&s.text)
                .map_err(|_| DecodeError::NotJson(e.to_string()))?;
            tracing::debug!(cut_field = ?s.cut_key, "decoded an event that ends early");
            Ok((v, s.cut_key))
        }
        Err(e) => Err(DecodeError::NotJson(e.to_string())),
    }
}

/// Top-level key names for an unknown-dialect error (names only, never values).
fn key_list(map: &Map<String, Value>) -> String {
    const MAX_KEYS: usize = 12;
    let mut names: Vec<String> = map
        .keys()
        .take(MAX_KEYS)
        .map(|k| k.chars().take(40).collect())
        .collect();
    if map.len() > MAX_KEYS {
        names.push(format!("… {} more", map.len() - MAX_KEYS));
    }
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

pub(crate) fn missing(dialect: Dialect, field: &'static str) -> DecodeError {
    DecodeError::MissingField {
        dialect: dialect.as_str(),
        field,
    }
}

pub(crate) fn invalid(dialect: Dialect, field: &'static str, reason: &str) -> DecodeError {
    DecodeError::InvalidField {
        dialect: dialect.as_str(),
        field,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
