//! The one clock behind every "now"-relative default (R5's "this month"):
//! the real time, or an instant pinned by `--now` or `AOAI_LEDGER_NOW` so
//! reports are reproducible. Every front end (CLI, KQL) reads it here.

use chrono::{DateTime, Utc};

/// Environment variable pinning the clock (RFC 3339).
pub const NOW_ENV: &str = "AOAI_LEDGER_NOW";

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the pinned time `{value}` from {origin} (use RFC 3339, e.g. 2026-11-30T12:00:00Z)"
)]
pub struct ClockError {
    value: String,
    origin: &'static str,
}

/// The current time: `pinned` (a `--now` flag) wins, then `AOAI_LEDGER_NOW`,
/// then the system clock. An empty environment value counts as unset.
pub fn now(pinned: Option<&str>) -> Result<DateTime<Utc>, ClockError> {
    if let Some(value) = pinned {
        return parse(value, "--now");
    }
    match std::env::var(NOW_ENV) {
        Ok(value) if !value.trim().is_empty() => parse(&value, NOW_ENV),
        _ => Ok(Utc::now()),
    }
}

fn parse(value: &str, origin: &'static str) -> Result<DateTime<Utc>, ClockError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ClockError {
            value: value.to_string(),
            origin,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_pinned_time_wins_and_keeps_its_instant() {
        let t = now(Some("2026-11-30T13:00:00+01:00")).unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap());
    }

    #[test]
    fn an_unreadable_pinned_time_is_an_error_naming_its_origin() {
        let e = now(Some("yesterday")).unwrap_err().to_string();
        assert!(e.contains("`yesterday`") && e.contains("--now"), "{e}");
    }
}
