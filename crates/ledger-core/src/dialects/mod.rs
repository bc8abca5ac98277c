//! Dialect recognition and decoding: one raw event body → fragments.
//!
//! OWNER: dialects helper.

use crate::error::DecodeError;
use crate::model::Fragment;

/// Decodes one event body. An event may hold several calls' fragments
/// (azure-monitor `records`). Unknown shapes are an error (→ dead letter).
pub fn decode(_body: &[u8]) -> Result<Vec<Fragment>, DecodeError> {
    Err(DecodeError::UnknownDialect(String::new()))
}
