//! Dialect recognition and decoding: one raw event body → fragments.
//!
//! Each event's dialect is recognised by its shape (see `event-formats.md`);
//! field names are matched ignoring ASCII case. Decoders never panic and
//! never quote field values in their errors (values can be secrets).
//!
//! `DIALECTS` is the one table of dialects: detection, decoding, name and
//! completeness rule. A new dialect is its own file (with its `SPEC`), a
//! `mod` line and an entry here, and a variant of [`Dialect`].

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

impl Decoded {
    /// One fragment, nothing rejected.
    pub(crate) fn one(f: Fragment) -> Decoded {
        Decoded {
            fragments: vec![f],
            rejected: Vec::new(),
        }
    }
}

/// When the correlator may release a call of a dialect as whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completeness {
    /// One event carries the whole call.
    OneEvent,
    /// A request half, and a response or error half, each with all its
    /// body chunks.
    Halves,
    /// Never while events arrive (log records of one call come in any
    /// number); a call flushed by time is whole once its gateway log came.
    GatewayLogWhenFlushed,
}

/// One dialect: how it is recognised, decoded, named, and completed.
pub(crate) struct DialectSpec {
    /// The dialect; its name, which records carry, is `Dialect::as_str`.
    pub dialect: Dialect,
    /// Whether an event has the fields only this dialect has (tried in
    /// [`DIALECTS`] order: the first match decodes the event).
    pub detect: fn(Obj<'_>) -> bool,
    pub decode: fn(Obj<'_>, &Ctx<'_>) -> Result<Decoded, DecodeError>,
    pub completeness: Completeness,
}

/// Every dialect, in detection order.
pub(crate) const DIALECTS: &[DialectSpec] = &[
    ledger_v1::SPEC,
    azure_monitor::SPEC,
    enterprise_logging::SPEC,
    enterprise_logging_tf::SPEC,
    ai_gateway_2024::SPEC,
    chargeback::SPEC,
];

/// The spec of a dialect.
pub(crate) fn spec(dialect: Dialect) -> Option<&'static DialectSpec> {
    DIALECTS.iter().find(|s| s.dialect == dialect)
}

/// Where a dialect's APIM policy sends an event: by a partition key, or to
/// a fixed partition (see `event-formats.md`). `aoai-ledger send` replays
/// captures the same way, so halves land where APIM would put them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PolicyRoute {
    Key(String),
    Partition(u32),
}

/// The route of an event, from its first fragment: enterprise-logging to
/// partition 0, enterprise-logging-tf requests to 0 and responses to 1,
/// every other dialect by its call's id (ledger/v1: the request id).
pub fn policy_route(fragment: &Fragment) -> PolicyRoute {
    use crate::model::Role;
    match (fragment.dialect, fragment.role) {
        (Dialect::EnterpriseLogging, _) => PolicyRoute::Partition(0),
        (Dialect::EnterpriseLoggingTf, Role::Request) => PolicyRoute::Partition(0),
        (Dialect::EnterpriseLoggingTf, _) => PolicyRoute::Partition(1),
        _ => PolicyRoute::Key(fragment.key.clone()),
    }
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
    if body.len() > crate::limits::MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge {
            bytes: body.len(),
            limit: crate::limits::MAX_EVENT_BYTES,
        });
    }
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
    match DIALECTS.iter().find(|s| (s.detect)(o)) {
        Some(s) => (s.decode)(o, &ctx),
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
