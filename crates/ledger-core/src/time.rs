//! Timestamp and duration parsing shared by the dialect decoders (loose
//! numbers are [`crate::coerce`]'s).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// A time as a user gives it (`--since`, `--as-of`): `YYYY-MM-DD` for
/// midnight UTC, else any form [`parse_time`] reads.
pub fn parse_day_or_time(s: &str) -> Option<DateTime<Utc>> {
    match chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        Ok(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        Err(_) => parse_time(s),
    }
}

/// Parses ISO 8601 / RFC 3339 (with or without zone; no zone means UTC) and
/// the culture-dependent `DateTime.ToString()` forms APIM policies often
/// write, e.g. `5/24/2024 2:45:56 PM` (taken as UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    const NAIVE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
        "%m/%d/%Y %I:%M:%S%.f %p",
    ];
    for f in NAIVE {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z") {
        return Some(t.with_timezone(&Utc));
    }
    None
}

/// A time from a JSON value: a string in any accepted form, or Unix
/// seconds / milliseconds as a number.
pub fn time_value(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => parse_time(s),
        Value::Number(_) => {
            let n = crate::coerce::int(v)?;
            if n > 100_000_000_000 {
                DateTime::from_timestamp_millis(n)
            } else {
                DateTime::from_timestamp(n, 0)
            }
        }
        _ => None,
    }
}

/// A .NET TimeSpan (`00:00:01.2345678`, `1.02:03:04.5`) or a plain number of
/// milliseconds, as milliseconds.
pub fn timespan_ms(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    timespan_text_ms(v.as_str()?)
}

/// [`timespan_ms`] of a text. A fraction of a millisecond (`1012.88`, as
/// `openai-processing-ms` reports) is dropped: a duration is a measurement,
/// not a count, so unlike [`crate::coerce::int`] it is not refused.
pub fn timespan_text_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return n.is_finite().then_some(n as i64);
    }
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<i64>().ok()?, r),
        _ => (0, s),
    };
    let mut parts = rest.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    Some(((days * 24 + h) * 3600 + m * 60) * 1000 + (sec * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_every_accepted_form() {
        let iso = parse_time("2024-05-24T14:45:56.123Z").unwrap();
        assert_eq!(iso.to_rfc3339(), "2024-05-24T14:45:56.123+00:00");
        let dotnet = parse_time("5/24/2024 2:45:56 PM").unwrap();
        assert_eq!(dotnet.to_rfc3339(), "2024-05-24T14:45:56+00:00");
        assert!(parse_time("2024-05-24T14:45:56").is_some());
        assert!(
            parse_time("2024-05-24T16:45:56+02:00").unwrap()
                == parse_time("2024-05-24T14:45:56Z").unwrap()
        );
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn dotnet_timespans() {
        assert_eq!(timespan_ms(&json!("00:00:01.2345678")), Some(1235));
        assert_eq!(timespan_ms(&json!("1.00:00:00")), Some(86_400_000));
        assert_eq!(timespan_ms(&json!(250)), Some(250));
        assert_eq!(timespan_ms(&json!("1012.88")), Some(1012));
    }
}
