//! Loose scalars: the one set of rules for reading a number or a boolean
//! from a JSON value that policies may have written as a string.
//!
//! APIM policies build events with C# expressions, so the same count
//! arrives as `42`, `42.0`, `"42"` or `" 42 "`, and a flag as `true`,
//! `"True"` or `1`. The rules, used by every dialect and by body parsing:
//!
//! - **Integer**: a JSON integer; a JSON number with no fraction (`42.0`,
//!   as JavaScript-minded policies write counts); or a string, trimmed,
//!   that reads as either. A value with a fraction (`42.5`, `"42.5"`) is
//!   *not* an integer: `None`, not 42. A token count or a status code with
//!   a fraction is a wrong value, and truncating it would hide that; `None`
//!   lets the caller fall back (another field, an estimate) instead.
//!   Values beyond ±9·10¹⁸ are `None` (no silent saturation).
//! - **Float**: any JSON number, or a trimmed string that reads as a finite
//!   number.
//! - **Boolean**: `true`/`false`; a JSON integer (`0` is false, any other is
//!   true); or a string, trimmed and ignoring case: `true`/`1`/`yes` or
//!   `false`/`0`/`no`. Anything else (`"maybe"`, `""`, `2.5`) is `None`.
//!   `yes`/`no` are taken because policies are written by people; no
//!   other word is close enough to a flag to guess.
//!
//! Durations are not integers under these rules: `openai-processing-ms`
//! is `1012.88`, and a fraction of a millisecond is noise, not an error;
//! they are read by [`crate::time::timespan_ms`].

use serde_json::Value;

/// Largest magnitude a float may have to be taken as an `i64`.
const MAX_WHOLE: f64 = 9.0e18;

/// An integer under the rules above.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(int_from_f64)),
        Value::String(s) => int_from_str(s),
        _ => None,
    }
}

/// A float with no fraction as an integer (the typed SSE path reads numbers
/// without a `Value`, so the rule is also offered per scalar).
pub fn int_from_f64(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < MAX_WHOLE).then_some(f as i64)
}

/// A string holding an integer (see [`int`]).
pub fn int_from_str(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().and_then(int_from_f64))
}

/// A float under the rules above.
pub fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// A boolean under the rules above.
pub fn bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => {
            let s = s.trim();
            let is = |w: &str| s.eq_ignore_ascii_case(w);
            if is("true") || is("1") || is("yes") {
                Some(true)
            } else if is("false") || is("0") || is("no") {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers() {
        for (v, want) in [
            (json!(42), Some(42)),
            (json!(-7), Some(-7)),
            (json!(42.0), Some(42)),
            (json!("42"), Some(42)),
            (json!(" 42 "), Some(42)),
            (json!("42.0"), Some(42)),
            (json!("4.2e1"), Some(42)),
            (json!(42.5), None),
            (json!("42.5"), None),
            (json!(1e19), None),
            (json!(u64::MAX), None),
            (json!("x"), None),
            (json!(""), None),
            (json!(true), None),
            (json!(null), None),
            (json!([1]), None),
        ] {
            assert_eq!(int(&v), want, "{v}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(float(&json!(0.5)), Some(0.5));
        assert_eq!(float(&json!(" 0.5 ")), Some(0.5));
        assert_eq!(float(&json!(2)), Some(2.0));
        assert_eq!(float(&json!("NaN")), None);
        assert_eq!(float(&json!("inf")), None);
        assert_eq!(float(&json!(false)), None);
    }

    #[test]
    fn booleans() {
        for (v, want) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!(1), Some(true)),
            (json!(0), Some(false)),
            (json!(2), Some(true)),
            (json!(2.5), None),
            (json!("True"), Some(true)),
            (json!(" yes "), Some(true)),
            (json!("1"), Some(true)),
            (json!("FALSE"), Some(false)),
            (json!("no"), Some(false)),
            (json!("0"), Some(false)),
            (json!("maybe"), None),
            (json!(""), None),
            (json!(null), None),
        ] {
            assert_eq!(bool(&v), want, "{v}");
        }
    }
}
