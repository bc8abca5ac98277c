//! Cost from a price table (per model family, per 1M tokens).
//!
//! The table is JSON (`schemas/prices.json` is the built-in one):
//!
//! ```json
//! {"currency": "USD", "unit": "per_1m_tokens",
//!  "models": [{"match": "gpt-4o-mini", "input": "0.15", "cached_input": "0.075",
//!              "output": "0.60", "effective": "2024-07-18"}]}
//! ```
//!
//! - `match` is a model-name prefix, case-insensitive; the longest one that
//!   matches at a name boundary wins (`gpt-4o-mini-2024-07-18` takes
//!   `gpt-4o-mini`, not `gpt-4o`; `gpt-4` never prices `gpt-4o` or `gpt-4.1`).
//! - entries sharing a `match` are a price history: a call is priced by the
//!   one with the latest `effective` date (UTC day) not after the call; a
//!   call before every date takes the earliest, a call without time the latest.
//! - prices are JSON numbers or strings, parsed as decimals from their text
//!   (never through f64 arithmetic); `cached_input` defaults to `input`;
//!   `currency` (ISO 4217) may be overridden per entry; `unit` is
//!   `per_1m_tokens` (default) or `per_1k_tokens`.

use std::str::FromStr;
use std::sync::LazyLock;

use crate::model::Usage;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

/// The built-in table, shipped with the source.
const BUILTIN_JSON: &str = include_str!("../../../schemas/prices.json");

const PER_MILLION: i64 = 1_000_000;

/// One row of the table: the prices of a model family from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    /// Lower-case model-name prefix.
    pub pattern: String,
    /// Per 1M prompt tokens not served from the prompt cache.
    pub input: Decimal,
    /// Per 1M cached prompt tokens; None bills them as `input`.
    pub cached_input: Option<Decimal>,
    /// Per 1M completion tokens (reasoning tokens included).
    pub output: Decimal,
    pub currency: String,
    /// First UTC day these prices apply; None means since always.
    pub effective: Option<NaiveDate>,
}

impl ModelPrice {
    /// Cost of `usage` at these prices, or None when usage is empty (or the
    /// arithmetic overflows on absurd token counts).
    ///
    /// Prompt tokens minus cached ones bill at `input`, cached ones at
    /// `cached_input`, completion tokens at `output`. A usage with only a
    /// total (some dialects report just that) bills the total as input.
    pub fn cost_of(&self, usage: &Usage) -> Option<Decimal> {
        let nonneg = |v: Option<i64>| v.map(|x| x.max(0));
        let (prompt, completion) = match (
            nonneg(usage.prompt_tokens),
            nonneg(usage.completion_tokens),
            nonneg(usage.total_tokens),
        ) {
            (None, None, None) => return None,
            (None, None, Some(total)) => (total, 0),
            (None, Some(c), Some(total)) => (total.saturating_sub(c).max(0), c),
            (None, Some(c), None) => (0, c),
            (Some(p), c, _) => (p, c.unwrap_or(0)),
        };
        let cached = nonneg(usage.cached_tokens).unwrap_or(0).min(prompt);
        let cached_price = self.cached_input.unwrap_or(self.input);
        let sum = Decimal::from(prompt - cached)
            .checked_mul(self.input)?
            .checked_add(Decimal::from(cached).checked_mul(cached_price)?)?
            .checked_add(Decimal::from(completion).checked_mul(self.output)?)?;
        Some(sum.checked_div(Decimal::from(PER_MILLION))?.normalize())
    }
}

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    /// Sorted by pattern, then effective date.
    entries: Vec<ModelPrice>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid price table: {0}")]
pub struct PriceTableError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    currency: Option<String>,
    unit: Option<String>,
    // Free-form documentation fields.
    #[serde(default, rename = "$schema")]
    _schema: Option<Value>,
    #[serde(default, rename = "source")]
    _source: Option<Value>,
    #[serde(default, rename = "note")]
    _note: Option<Value>,
    models: Vec<RawEntry>,
}

// Unknown fields are refused so that a typo (`cache_input`) is an error, not
// a silently ignored price.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(rename = "match")]
    pattern: String,
    input: Value,
    #[serde(default)]
    cached_input: Option<Value>,
    output: Value,
    #[serde(default)]
    effective: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default, rename = "note")]
    _note: Option<Value>,
}

static BUILTIN: LazyLock<PriceTable> =
    LazyLock::new(|| match PriceTable::from_json(BUILTIN_JSON) {
        Ok(t) => t,
        Err(e) => {
            // A test guards the shipped file; never take the process down for it.
            tracing::error!(error = %e, "built-in price table rejected; costs disabled");
            PriceTable::default()
        }
    });

impl PriceTable {
    /// The table shipped in `schemas/prices.json`.
    pub fn builtin() -> Self {
        BUILTIN.clone()
    }

    /// A user's table (same format), replacing the built-in one.
    pub fn from_json(text: &str) -> Result<Self, PriceTableError> {
        let raw: RawTable =
            serde_json::from_str(text).map_err(|e| PriceTableError(e.to_string()))?;
        let currency = match raw.currency {
            Some(c) => parse_currency(&c).map_err(|m| PriceTableError(format!("currency: {m}")))?,
            None => {
                return Err(PriceTableError(
                    "missing top-level \"currency\" (e.g. \"USD\")".into(),
                ));
            }
        };
        let scale = match raw.unit.as_deref().map(str::trim) {
            None | Some("per_1m_tokens") => Decimal::ONE,
            Some("per_1k_tokens") => Decimal::from(1000),
            Some(other) => {
                return Err(PriceTableError(format!(
                    "unit {other:?} is not supported (use \"per_1m_tokens\" or \"per_1k_tokens\")"
                )));
            }
        };
        if raw.models.is_empty() {
            return Err(PriceTableError("\"models\" is empty".into()));
        }
        let mut entries = Vec::with_capacity(raw.models.len());
        for (i, e) in raw.models.into_iter().enumerate() {
            let ctx = |m: String| PriceTableError(format!("models[{i}] ({:?}): {m}", e.pattern));
            let pattern = e.pattern.trim().to_ascii_lowercase();
            if pattern.is_empty() {
                return Err(ctx("\"match\" is empty".into()));
            }
            let price = |field: &str, v: &Value| -> Result<Decimal, PriceTableError> {
                let d = parse_price(v).map_err(|m| ctx(format!("{field}: {m}")))?;
                d.checked_mul(scale)
                    .ok_or_else(|| ctx(format!("{field}: {d} is too large")))
            };
            let input = price("input", &e.input)?;
            let output = price("output", &e.output)?;
            let cached_input = match &e.cached_input {
                None | Some(Value::Null) => None,
                Some(v) => Some(price("cached_input", v)?),
            };
            let effective = match e.effective.as_deref() {
                None => None,
                Some(s) => Some(
                    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                        .map_err(|_| ctx(format!("effective {s:?} is not a YYYY-MM-DD date")))?,
                ),
            };
            let currency = match &e.currency {
                None => currency.clone(),
                Some(c) => parse_currency(c).map_err(|m| ctx(format!("currency: {m}")))?,
            };
            entries.push(ModelPrice {
                pattern,
                input,
                cached_input,
                output,
                currency,
                effective,
            });
        }
        entries.sort_by(|a, b| (&a.pattern, a.effective).cmp(&(&b.pattern, b.effective)));
        if let Some(w) = entries
            .windows(2)
            .find(|w| w[0].pattern == w[1].pattern && w[0].effective == w[1].effective)
        {
            let when = w[0]
                .effective
                .map_or_else(|| "no date".to_string(), |d| d.to_string());
            return Err(PriceTableError(format!(
                "{:?} has two entries for {when}",
                w[0].pattern
            )));
        }
        Ok(PriceTable { entries })
    }

    /// All entries, sorted by pattern then effective date.
    pub fn entries(&self) -> &[ModelPrice] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry that prices `model` (response model name, or a deployment
    /// name as fallback) for a call at `at`.
    pub fn price(&self, model: &str, at: Option<DateTime<Utc>>) -> Option<&ModelPrice> {
        let name = model.trim().to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        let best = self
            .entries
            .iter()
            .filter(|e| prefix_matches(&name, &e.pattern))
            .map(|e| e.pattern.as_str())
            .max_by_key(|p| p.len())?;
        // Entries are sorted by date within a pattern.
        let history: Vec<&ModelPrice> = self.entries.iter().filter(|e| e.pattern == best).collect();
        match at.map(|t| t.date_naive()) {
            None => history.last().copied(),
            Some(day) => history
                .iter()
                .rev()
                .find(|e| e.effective.is_none_or(|d| d <= day))
                .or(history.first())
                .copied(),
        }
    }

    /// Cost of a call and its currency, or None when the model is unknown or
    /// usage is empty.
    pub fn cost(
        &self,
        model: &str,
        usage: &Usage,
        at: Option<DateTime<Utc>>,
    ) -> Option<(Decimal, String)> {
        if usage.is_empty() {
            return None;
        }
        let p = self.price(model, at)?;
        Some((p.cost_of(usage)?, p.currency.clone()))
    }
}

/// `pattern` is a prefix of `name` ending at a name boundary: `gpt-4` matches
/// `gpt-4-0613` but not `gpt-4o` or `gpt-4.1`.
fn prefix_matches(name: &str, pattern: &str) -> bool {
    name.strip_prefix(pattern).is_some_and(|rest| {
        rest.chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '.')
    })
}

fn parse_currency(c: &str) -> Result<String, String> {
    let c = c.trim();
    if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
        Ok(c.to_ascii_uppercase())
    } else {
        Err(format!("{c:?} is not a three-letter ISO 4217 code"))
    }
}

/// A price from a JSON number or string, via its decimal text.
fn parse_price(v: &Value) -> Result<Decimal, String> {
    let text = match v {
        // Without serde_json's arbitrary_precision the number went through
        // f64, but its shortest round-trip text is the literal written.
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => {
            return Err(format!(
                "expected a number or a numeric string, got {other}"
            ));
        }
    };
    let d = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text)
    } else {
        Decimal::from_str(&text)
    }
    .map_err(|_| format!("{text:?} is not a decimal number"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(format!("must not be negative, got {text}"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn usage(p: Option<i64>, c: Option<i64>, t: Option<i64>, cached: Option<i64>) -> Usage {
        Usage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: t,
            cached_tokens: cached,
            reasoning_tokens: None,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap())
    }

    #[test]
    fn builtin_parses_and_covers_the_listed_models() {
        let t = PriceTable::builtin();
        assert!(!t.is_empty());
        for m in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "gpt-4",
            "gpt-4-32k",
            "gpt-4-turbo",
            "gpt-35-turbo",
            "o1",
            "o1-mini",
            "o3",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "text-embedding-ada-002",
            "text-embedding-3-small",
            "text-embedding-3-large",
        ] {
            let p = t
                .price(m, None)
                .unwrap_or_else(|| panic!("no price for {m}"));
            assert_eq!(p.pattern, m);
            assert_eq!(p.currency, "USD");
        }
        for m in [
            "text-embedding-ada-002",
            "text-embedding-3-small",
            "text-embedding-3-large",
        ] {
            assert!(t.price(m, None).unwrap().output.is_zero());
        }
    }

    #[test]
    fn hand_computed_gpt_4o() {
        let t = PriceTable::builtin();
        // 1000 * 2.50 / 1M + 500 * 10.00 / 1M = 0.0025 + 0.005
        let (cost, cur) = t
            .cost(
                "gpt-4o-2024-08-06",
                &usage(Some(1000), Some(500), Some(1500), None),
                None,
            )
            .unwrap();
        assert_eq!(cost, dec("0.0075"));
        assert_eq!(cur, "USD");
        // Deployment-style names and casing work too.
        let (cost2, _) = t
            .cost(
                "GPT-4o-prod",
                &usage(Some(1000), Some(500), None, None),
                None,
            )
            .unwrap();
        assert_eq!(cost2, dec("0.0075"));
    }

    #[test]
    fn cached_tokens_discount() {
        let t = PriceTable::builtin();
        // 600 * 2.50 + 400 * 1.25 + 500 * 10 = 1500 + 500 + 5000 per 1M
        let (cost, _) = t
            .cost(
                "gpt-4o-2024-11-20",
                &usage(Some(1000), Some(500), None, Some(400)),
                None,
            )
            .unwrap();
        assert_eq!(cost, dec("0.007"));
        // No cached price: cached tokens bill as input.
        let (cost, _) = t
            .cost(
                "gpt-4-0613",
                &usage(Some(1000), Some(0), None, Some(400)),
                None,
            )
            .unwrap();
        assert_eq!(cost, dec("0.03"));
        // More cached than prompt tokens is clamped.
        let (cost, _) = t
            .cost("gpt-4o", &usage(Some(100), Some(0), None, Some(500)), None)
            .unwrap();
        assert_eq!(cost, dec("0.000125"));
    }

    #[test]
    fn total_only_is_input_and_embeddings() {
        let t = PriceTable::builtin();
        let (cost, _) = t
            .cost(
                "text-embedding-3-small",
                &usage(None, None, Some(1_000_000), None),
                None,
            )
            .unwrap();
        assert_eq!(cost, dec("0.02"));
        let (cost, _) = t
            .cost(
                "text-embedding-ada-002",
                &usage(Some(2000), None, Some(2000), None),
                None,
            )
            .unwrap();
        assert_eq!(cost, dec("0.0002"));
        // Missing prompt, known completion and total: the difference is input.
        let (cost, _) = t
            .cost("gpt-4o", &usage(None, Some(500), Some(1500), None), None)
            .unwrap();
        assert_eq!(cost, dec("0.0075"));
        assert_eq!(t.cost("gpt-4o", &Usage::default(), None), None);
    }

    #[test]
    fn unknown_model_is_none() {
        let t = PriceTable::builtin();
        let u = usage(Some(10), Some(10), Some(20), None);
        assert_eq!(t.cost("llama-3-70b", &u, None), None);
        assert_eq!(t.cost("", &u, None), None);
        // Look-alikes do not borrow a family's price.
        assert_eq!(t.cost("gpt-4.6", &u, None), None);
        assert_eq!(t.cost("gpt-45", &u, None), None);
        assert!(PriceTable::default().cost("gpt-4o", &u, None).is_none());
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::builtin();
        assert_eq!(
            t.price("gpt-4o-mini-2024-07-18", None).unwrap().pattern,
            "gpt-4o-mini"
        );
        assert_eq!(
            t.price("gpt-4o-2024-08-06", None).unwrap().pattern,
            "gpt-4o"
        );
        assert_eq!(t.price("gpt-4o-2024-05-13", None).unwrap().input, dec("5"));
        assert_eq!(
            t.price("gpt-4-32k-0613", None).unwrap().pattern,
            "gpt-4-32k"
        );
        assert_eq!(t.price("gpt-4-0613", None).unwrap().pattern, "gpt-4");
        assert_eq!(
            t.price("gpt-4.1-mini-2025-04-14", None).unwrap().pattern,
            "gpt-4.1-mini"
        );
        assert_eq!(
            t.price("o3-mini-2025-01-31", None).unwrap().pattern,
            "o3-mini"
        );
        let (mini, _) = t
            .cost(
                "gpt-4o-mini",
                &usage(Some(1000), Some(500), None, None),
                None,
            )
            .unwrap();
        // 1000 * 0.15 + 500 * 0.60 = 450 per 1M
        assert_eq!(mini, dec("0.00045"));
    }

    #[test]
    fn effective_date_selection() {
        let t = PriceTable::builtin();
        let u = usage(Some(1_000_000), Some(1_000_000), None, None);
        // o3: 10/40 from 2025-04-16, 2/8 from 2025-06-10.
        assert_eq!(t.cost("o3", &u, day(2025, 5, 1)).unwrap().0, dec("50"));
        assert_eq!(
            t.cost("o3-2025-04-16", &u, day(2025, 6, 10)).unwrap().0,
            dec("10")
        );
        assert_eq!(t.cost("o3", &u, None).unwrap().0, dec("10"));
        // Before the first date: the earliest entry.
        assert_eq!(t.cost("o3", &u, day(2024, 1, 1)).unwrap().0, dec("50"));

        let custom = PriceTable::from_json(
            r#"{"currency":"EUR","models":[
                {"match":"m","input":1,"output":1},
                {"match":"m","input":2,"output":2,"effective":"2025-01-01"}]}"#,
        )
        .unwrap();
        assert_eq!(
            custom.cost("m", &u, day(2024, 12, 31)).unwrap(),
            (dec("2"), "EUR".to_string())
        );
        assert_eq!(custom.cost("m", &u, day(2025, 1, 1)).unwrap().0, dec("4"));
    }

    #[test]
    fn prices_parse_exactly() {
        let t = PriceTable::from_json(
            r#"{"currency":"usd","unit":"per_1k_tokens","models":[
                {"match":"a","input":0.0001,"cached_input":"0.00005","output":1e-3,"currency":"gbp"}]}"#,
        )
        .unwrap();
        let p = t.price("a", None).unwrap();
        assert_eq!(p.input, dec("0.1"));
        assert_eq!(p.cached_input, Some(dec("0.05")));
        assert_eq!(p.output, dec("1"));
        assert_eq!(p.currency, "GBP");
        // 0.1 and 0.2 add up exactly, unlike f64.
        let t = PriceTable::from_json(
            r#"{"currency":"USD","models":[{"match":"x","input":0.1,"output":0.2}]}"#,
        )
        .unwrap();
        let (c, _) = t
            .cost(
                "x",
                &usage(Some(1_000_000), Some(1_000_000), None, None),
                None,
            )
            .unwrap();
        assert_eq!(c.to_string(), "0.3");
    }

    #[test]
    fn bad_tables_rejected() {
        let bad = [
            (
                r#"{"models":[{"match":"a","input":1,"output":1}]}"#,
                "currency",
            ),
            (
                r#"{"currency":"","models":[{"match":"a","input":1,"output":1}]}"#,
                "currency",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":-1,"output":1}]}"#,
                "negative",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":1,"output":"-0.5"}]}"#,
                "negative",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":"cheap","output":1}]}"#,
                "decimal",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":true,"output":1}]}"#,
                "number",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"","input":1,"output":1}]}"#,
                "empty",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":1}]}"#,
                "output",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":1,"output":1,"cache_input":1}]}"#,
                "cache_input",
            ),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":1,"output":1,"effective":"May 1"}]}"#,
                "effective",
            ),
            (
                r#"{"currency":"USD","unit":"per_token","models":[{"match":"a","input":1,"output":1}]}"#,
                "unit",
            ),
            (r#"{"currency":"USD","models":[]}"#, "empty"),
            (
                r#"{"currency":"USD","models":[{"match":"a","input":1,"output":1},{"match":"A","input":2,"output":2}]}"#,
                "two entries",
            ),
            ("not json", "expected"),
        ];
        for (text, needle) in bad {
            let err = PriceTable::from_json(text).unwrap_err().to_string();
            assert!(err.starts_with("invalid price table"), "{err}");
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
