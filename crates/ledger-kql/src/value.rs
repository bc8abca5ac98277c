//! Kusto literal texts and display: datetimes, timespans, dynamic values.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

/// Nanoseconds of a `timespan(...)` text: `1.02:03:04.5`, `02:03`, `1d`,
/// `1.5h`, `100ms`.
pub fn parse_timespan(raw: &str) -> Option<i64> {
    let t = raw.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let micros = if t.contains(':') {
        // [d.]hh:mm[:ss[.fffffff]]
        let (days, clock) = match t.split_once('.') {
            Some((d, rest)) if !d.contains(':') => (d.parse::<i64>().ok()?, rest),
            _ => (0, t),
        };
        let parts: Vec<&str> = clock.split(':').collect();
        let h: i64 = parts.first()?.parse().ok()?;
        let m: i64 = parts.get(1)?.parse().ok()?;
        let s: f64 = match parts.get(2) {
            Some(s) => s.parse().ok()?,
            None => 0.0,
        };
        days * 86_400_000_000_000
            + h * 3_600_000_000_000
            + m * 60_000_000_000
            + (s * 1e9).round() as i64
    } else {
        let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num.trim().parse().ok()?;
        let per = match unit.trim() {
            "" | "d" | "day" | "days" => 86_400e9,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600e9,
            "m" | "min" | "minute" | "minutes" => 60e9,
            "s" | "sec" | "second" | "seconds" => 1e9,
            "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1e6,
            "microsecond" | "microseconds" => 1e3,
            "tick" | "ticks" => 100.0,
            _ => return None,
        };
        (v * per).round() as i64
    };
    Some(if neg { -micros } else { micros })
}

/// A datetime text as Kusto reads it (ISO 8601 and a few common layouts).
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let t = raw.trim().trim_matches(|c| c == '\'' || c == '"');
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    let t2 = t.trim_end_matches('Z').trim_end_matches('z');
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M",
        "%m/%d/%Y %H:%M:%S%.f",
        "%m/%d/%Y %H:%M",
        "%m-%d-%Y %H:%M:%S%.f",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t2, f) {
            return Some(d.and_utc());
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%m-%d-%Y", "%m/%d/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t2, f) {
            return d.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
        }
    }
    DateTime::parse_from_rfc2822(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The compact JSON of a `dynamic(...)` literal; Kusto also accepts
/// single-quoted strings there.
pub fn parse_dynamic_literal(raw: &str) -> Option<String> {
    if raw.trim().is_empty() || raw.trim() == "null" {
        return Some("null".into());
    }
    if let Ok(v) = serde_json::from_str::<Value>(raw) {
        return Some(v.to_string());
    }
    // Re-quote '...' strings as "...".
    let mut out = String::with_capacity(raw.len());
    let mut in_single = false;
    let mut in_double = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_single || in_double => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\'' if !in_double => {
                in_single = !in_single;
                out.push('"');
            }
            '"' if in_single => out.push_str("\\\""),
            '"' => {
                in_double = !in_double;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    serde_json::from_str::<Value>(&out)
        .ok()
        .map(|v| v.to_string())
}

/// A timespan (nanoseconds) as Kusto prints it: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_timespan(nanos: i64) -> String {
    let neg = nanos < 0;
    let m = nanos.unsigned_abs();
    let days = m / 86_400_000_000_000;
    let rem = m % 86_400_000_000_000;
    let (h, rem) = (rem / 3_600_000_000_000, rem % 3_600_000_000_000);
    let (min, rem) = (rem / 60_000_000_000, rem % 60_000_000_000);
    let (s, frac) = (rem / 1_000_000_000, rem % 1_000_000_000);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!("{h:02}:{min:02}:{s:02}"));
    if frac > 0 {
        out.push_str(&format!(".{:07}", frac / 100));
    }
    out
}

/// A datetime (nanoseconds) as Kusto's `tostring` writes it: ISO 8601,
/// seven fraction digits (100 ns ticks), `Z`.
pub fn format_datetime(nanos: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(nanos);
    let f = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    format!("{}Z", &f[..f.len() - 2])
}

/// A real as Kusto prints it: shortest form, no trailing `.0`.
pub fn format_real(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_round_trip_through_kusto_text() {
        assert_eq!(parse_timespan("1.02:03:04"), Some(93_784_000_000_000));
        assert_eq!(format_timespan(93_784_000_000_000), "1.02:03:04");
        assert_eq!(parse_timespan("1.5h"), Some(5_400_000_000_000));
        assert_eq!(format_timespan(-1_500_000_000), "-00:00:01.5000000");
    }

    #[test]
    fn dynamic_literals_accept_single_quotes() {
        assert_eq!(
            parse_dynamic_literal("{'a': [1, 'x']}").as_deref(),
            Some(r#"{"a":[1,"x"]}"#)
        );
    }
}
