//! Rows as SQL values, read through the column table, and the one rule for
//! values a column cannot hold (the same in every engine, so both hold the
//! same row): a short text over [`SHORT_TEXT_CHARS`] is cut, a NUL
//! character (which PostgreSQL text rejects) becomes U+FFFD, a time outside
//! the years 1–9999 (SQL Server's `datetime2`), a cost outside
//! `decimal(28,10)` and a float that is not finite (SQL Server's `float`
//! has no NaN) are stored as null — each with a warning in the row's
//! `warnings`. Rust strings never hold an unpaired surrogate, so a
//! body's `\ud800` escape is stored as the six characters it is.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, Utc};
use ledger_core::columns::{CALL_COLUMNS, Column, DEAD_LETTER_COLUMNS, LogicalType, Read};
use ledger_core::{CallRecord, DeadLetter};
use rust_decimal::Decimal;

use crate::ddl::SHORT_TEXT_CHARS;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Int32(i32),
    Int64(i64),
    Float64(f64),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    Decimal(Decimal),
    Binary(&'a [u8]),
}

impl Value<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

const WARNING_SUFFIX: &str = "for the database";

/// `s` cut to at most `max` UTF-16 code units, on a character boundary.
pub fn cut_utf16(s: &str, max: usize) -> Option<&str> {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return Some(&s[..i]);
        }
    }
    None
}

/// A text cell made storable: NULs replaced, a short text cut.
fn text<'a>(name: &str, ty: LogicalType, s: &'a str, warnings: &mut Vec<String>) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(s);
    if out.contains('\0') {
        out = Cow::Owned(out.replace('\0', "\u{FFFD}"));
        warnings.push(format!(
            "{name}: NUL characters replaced by U+FFFD {WARNING_SUFFIX}"
        ));
    }
    if ty == LogicalType::Text
        && let Some(cut) = cut_utf16(&out, SHORT_TEXT_CHARS)
    {
        let cut = cut.to_string();
        warnings.push(format!(
            "{name}: cut to {SHORT_TEXT_CHARS} characters {WARNING_SUFFIX}"
        ));
        out = Cow::Owned(cut);
    }
    out
}

fn timestamp(name: &str, t: DateTime<Utc>, warnings: &mut Vec<String>) -> Value<'static> {
    if (1..=9999).contains(&t.year()) {
        Value::Timestamp(t)
    } else {
        warnings.push(format!(
            "{name}: {t} is outside the years 1-9999, stored as null {WARNING_SUFFIX}"
        ));
        Value::Null
    }
}

fn decimal(name: &str, ty: LogicalType, d: Decimal, warnings: &mut Vec<String>) -> Value<'static> {
    let LogicalType::Decimal { precision, scale } = ty else {
        return Value::Decimal(d);
    };
    let d = d.round_dp(u32::from(scale));
    let digits = u32::from(precision.saturating_sub(scale));
    let fits = Decimal::from_i128_with_scale(10i128.pow(digits.min(28)), 0);
    if d.abs() < fits {
        Value::Decimal(d)
    } else {
        warnings.push(format!(
            "{name}: {d} does not fit decimal({precision},{scale}), stored as null {WARNING_SUFFIX}"
        ));
        Value::Null
    }
}

fn float(name: &str, f: f64, warnings: &mut Vec<String>) -> Value<'static> {
    if f.is_finite() {
        Value::Float64(f)
    } else {
        warnings.push(format!("{name}: {f} stored as null {WARNING_SUFFIX}"));
        Value::Null
    }
}

/// One row of `columns` as cells; what had to change is added to
/// `warnings` (the caller writes them into the row's warnings column).
fn cells<'a, R>(columns: &[Column<R>], r: &'a R, warnings: &mut Vec<String>) -> Vec<Value<'a>> {
    let mut out = Vec::with_capacity(columns.len());
    for c in columns {
        let (name, ty) = (c.name, c.ty);
        let v = match &c.read {
            Read::Text(f) => f(r).map_or(Value::Null, |s| Value::Text(text(name, ty, s, warnings))),
            Read::LossyText(f) => {
                let s = String::from_utf8_lossy(f(r));
                let mut quiet = Vec::new();
                Value::Text(Cow::Owned(text(name, ty, &s, &mut quiet).into_owned()))
            }
            // Written once every other cell is known (see `call_row`).
            Read::StringList(_) => Value::Null,
            Read::Int32(f) => f(r).map_or(Value::Null, Value::Int32),
            Read::Int64(f) => f(r).map_or(Value::Null, Value::Int64),
            Read::Float64(f) => f(r).map_or(Value::Null, |x| float(name, x, warnings)),
            Read::Bool(f) => Value::Bool(f(r).unwrap_or(false)),
            Read::Timestamp(f) => f(r).map_or(Value::Null, |t| timestamp(name, t, warnings)),
            Read::Decimal(f) => f(r).map_or(Value::Null, |d| decimal(name, ty, d, warnings)),
            Read::Binary(f) => f(r).map_or(Value::Null, Value::Binary),
        };
        out.push(v);
    }
    out
}

/// A call as the cells of `calls`, in column order, made storable.
pub fn call_row(r: &CallRecord) -> Vec<Value<'_>> {
    let mut warnings = Vec::new();
    let mut row = cells(CALL_COLUMNS, r, &mut warnings);
    for (c, cell) in CALL_COLUMNS.iter().zip(row.iter_mut()) {
        if let Read::StringList(f) = c.read {
            let mut list: Vec<String> = f(r).to_vec();
            for w in &warnings {
                if !list.contains(w) {
                    list.push(w.clone());
                }
            }
            let json = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
            let mut quiet = Vec::new();
            *cell = Value::Text(Cow::Owned(
                text(c.name, c.ty, &json, &mut quiet).into_owned(),
            ));
        }
    }
    row
}

/// The record as the database will hold it: unchanged when every value
/// fits, else with the changes [`call_row`] makes (and their warnings),
/// so that its key and merges see what is stored.
pub fn storable(r: CallRecord) -> CallRecord {
    let mut warnings = Vec::new();
    let _ = cells(CALL_COLUMNS, &r, &mut warnings);
    if warnings.is_empty() {
        return r;
    }
    // Only an unrepresentable record fails here; it is then kept as it
    // was and `call_row` still stores it made storable.
    call_from_cells(call_row(&r)).unwrap_or(r)
}

/// A dead letter as the cells of `dead_letters` (after `id`). Its raw
/// bytes are kept whole in `raw`; the text columns are made storable
/// without a warning column to say so.
pub fn dead_letter_row(d: &DeadLetter) -> Vec<Value<'_>> {
    let mut ignored = Vec::new();
    cells(DEAD_LETTER_COLUMNS, d, &mut ignored)
}

/// A `calls` row read back (cells in column order) as a record, through
/// serde: the column table's names are the record's field names.
pub fn call_from_cells(cells: Vec<Value<'_>>) -> Result<CallRecord, String> {
    use serde_json::{Map, Value as J};
    let J::Object(defaults) =
        serde_json::to_value(CallRecord::default()).map_err(|e| e.to_string())?
    else {
        return Err("records are structs".into());
    };
    let mut map = Map::new();
    for (c, cell) in CALL_COLUMNS.iter().zip(cells) {
        let v = match (cell, &c.read) {
            (Value::Null, _) => defaults.get(c.name).cloned().unwrap_or(J::Null),
            (Value::Text(s), Read::StringList(_)) => {
                serde_json::from_str(&s).map_err(|e| format!("{}: {e}", c.name))?
            }
            (Value::Text(s), _) => J::String(s.into_owned()),
            (Value::Int32(i), _) => J::from(i),
            (Value::Int64(i), _) => J::from(i),
            (Value::Float64(f), _) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            (Value::Bool(b), _) => J::Bool(b),
            (Value::Timestamp(t), _) => serde_json::to_value(t).map_err(|e| e.to_string())?,
            (Value::Decimal(d), _) => J::String(d.to_string()),
            (Value::Binary(b), _) => serde_json::to_value(b).map_err(|e| e.to_string())?,
        };
        map.insert(c.name.to_string(), v);
    }
    serde_json::from_value(J::Object(map)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings_of(row: &[Value]) -> Vec<String> {
        let i = CALL_COLUMNS
            .iter()
            .position(|c| c.name == "warnings")
            .unwrap();
        match &row[i] {
            Value::Text(s) => serde_json::from_str(s).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn cell<'a>(row: &'a [Value<'a>], name: &str) -> &'a Value<'a> {
        &row[CALL_COLUMNS.iter().position(|c| c.name == name).unwrap()]
    }

    #[test]
    fn a_record_survives_the_round_trip() {
        let r = CallRecord {
            request_id: "r1".into(),
            model: Some("gpt-4o".into()),
            cost: Some(Decimal::new(123, 7)),
            temperature: Some(0.5),
            request_time: DateTime::from_timestamp_micros(1_700_000_000_123_456),
            warnings: vec!["w".into()],
            complete: true,
            ..Default::default()
        };
        let back = call_from_cells(call_row(&r)).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn an_overlong_short_text_is_cut_with_a_warning() {
        let long = "é".repeat(300);
        let r = CallRecord {
            caller_ip: Some(long),
            prompt_text: Some("x".repeat(10_000)),
            ..Default::default()
        };
        let row = call_row(&r);
        let Value::Text(ip) = cell(&row, "caller_ip") else {
            panic!()
        };
        assert_eq!(ip.chars().count(), SHORT_TEXT_CHARS);
        let Value::Text(p) = cell(&row, "prompt_text") else {
            panic!()
        };
        assert_eq!(p.len(), 10_000, "long text is not cut");
        assert_eq!(
            warnings_of(&row),
            ["caller_ip: cut to 256 characters for the database"]
        );
    }

    #[test]
    fn a_cut_never_splits_a_surrogate_pair() {
        let s = format!("{}😀", "a".repeat(255));
        assert_eq!(cut_utf16(&s, 256), Some("a".repeat(255).as_str()));
        assert_eq!(cut_utf16("abc", 3), None);
    }

    #[test]
    fn nul_out_of_range_and_non_finite_values_are_replaced() {
        let r = CallRecord {
            response_text: Some("a\0b".into()),
            cost: Some(Decimal::from_i128_with_scale(10i128.pow(20), 0)),
            temperature: Some(f64::NAN),
            request_time: "+20000-01-01T00:00:00Z".parse().ok(),
            ..Default::default()
        };
        assert!(r.request_time.is_some());
        let row = call_row(&r);
        assert_eq!(
            cell(&row, "response_text"),
            &Value::Text("a\u{FFFD}b".into())
        );
        assert!(cell(&row, "cost").is_null());
        assert!(cell(&row, "temperature").is_null());
        assert!(cell(&row, "request_time").is_null());
        let w = warnings_of(&row);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].starts_with("request_time: "));
    }

    #[test]
    fn cost_is_rounded_to_the_column_scale() {
        let r = CallRecord {
            cost: Some(Decimal::new(1, 12)),
            ..Default::default()
        };
        assert_eq!(cell(&call_row(&r), "cost"), &Value::Decimal(Decimal::ZERO));
    }
}
