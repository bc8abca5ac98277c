//! Cost from a price table (per model family, per 1M tokens).
//!
//! OWNER: usage helper.

use crate::model::Usage;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

#[derive(Debug, Clone, Default)]
pub struct PriceTable {}

#[derive(Debug, thiserror::Error)]
#[error("invalid price table: {0}")]
pub struct PriceTableError(pub String);

impl PriceTable {
    /// The table shipped in `schemas/prices.json`.
    pub fn builtin() -> Self {
        PriceTable {}
    }

    /// A user's table (same format), replacing the built-in one.
    pub fn from_json(_text: &str) -> Result<Self, PriceTableError> {
        Ok(PriceTable {})
    }

    /// Cost of a call and its currency, or None when the model is unknown or
    /// usage is empty.
    pub fn cost(&self, _model: &str, _usage: &Usage, _at: Option<DateTime<Utc>>) -> Option<(Decimal, String)> {
        None
    }
}
