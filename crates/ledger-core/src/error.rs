use thiserror::Error;

/// Why an event could not be decoded. Messages never quote secret values.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("event is not valid UTF-8 JSON: {0}")]
    NotJson(String),
    #[error("event of {bytes} bytes is past the per-event limit of {limit} bytes: not decoded")]
    TooLarge { bytes: usize, limit: usize },
    #[error("event is JSON but matches no known dialect (top-level keys: {0})")]
    UnknownDialect(String),
    #[error("{dialect} event is missing required field `{field}`")]
    MissingField {
        dialect: &'static str,
        field: &'static str,
    },
    #[error("{dialect} event has an invalid `{field}`: {reason}")]
    InvalidField {
        dialect: &'static str,
        field: &'static str,
        reason: String,
    },
}
