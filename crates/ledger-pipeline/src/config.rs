//! Typed configuration of the pipeline's components, ready for a TOML file
//! (`[ledger]`, `[commit]` tables) and for flags that override it.
//!
//! **Secrets are never configuration.** A connection string, an account
//! key, a password or the key salt is read only from the environment (or
//! from a credential such as a managed identity), never from a flag or a
//! file: flags show in process lists and shell history, files get
//! committed. [`Secrets::from_env`] is the one place that reads them.
//!
//! ```
//! use ledger_pipeline::config::{CommitPolicy, LedgerSettings, Secrets};
//!
//! let settings: LedgerSettings = serde_json::from_str(r#"{"timeout_secs": 120}"#).unwrap();
//! assert_eq!(settings.timeout_secs, 120);
//! assert!(serde_json::from_str::<LedgerSettings>(r#"{"key_salt": "x"}"#).is_err());
//! let config = settings.build(&Secrets::default()).unwrap();
//! assert_eq!(config.timeout, chrono::Duration::seconds(120));
//! assert_eq!(CommitPolicy::default().max_records, 20_000);
//! ```

use std::path::PathBuf;
use std::time::Duration;

use ledger_core::assemble::AssembleOptions;
use ledger_core::cost::PriceTable;
use ledger_core::ledger::LedgerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read price table {path}: {reason}")]
    Prices { path: String, reason: String },
}

/// How calls are rebuilt (table `[ledger]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSettings {
    /// Seconds of event time a call waits for its missing parts before it
    /// is written as partial. Default 600.
    pub timeout_secs: u64,
    /// Fragments that must follow a call before it may time out, so that
    /// one event with a skewed clock cannot flush every pending call.
    /// Default 1000.
    pub min_gap: u64,
    /// Mask e-mail addresses, phone and card numbers in prompt and response
    /// text. Default false.
    pub mask_pii: bool,
    /// A price table replacing the built-in one (format of
    /// `schemas/prices.json`). Default: built in.
    pub prices: Option<PathBuf>,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            timeout_secs: ledger_core::ledger::DEFAULT_TIMEOUT_SECS.unsigned_abs(),
            min_gap: ledger_core::correlate::DEFAULT_MIN_GAP,
            mask_pii: false,
            prices: None,
        }
    }
}

impl LedgerSettings {
    /// The ledger's runtime configuration: reads the price table, takes
    /// the key salt from `secrets`.
    pub fn build(&self, secrets: &Secrets) -> Result<LedgerConfig, ConfigError> {
        if self.timeout_secs == 0 {
            return Err(ConfigError::Invalid("the timeout must be positive".into()));
        }
        let prices = match &self.prices {
            None => PriceTable::builtin(),
            Some(p) => {
                let err = |reason: String| ConfigError::Prices {
                    path: p.display().to_string(),
                    reason,
                };
                let text = std::fs::read_to_string(p).map_err(|e| err(e.to_string()))?;
                PriceTable::from_json(&text).map_err(|e| err(e.to_string()))?
            }
        };
        let timeout = i64::try_from(self.timeout_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .ok_or_else(|| ConfigError::Invalid("the timeout is too large".into()))?;
        Ok(LedgerConfig {
            timeout,
            expiry_min_gap: self.min_gap,
            key_salt: secrets
                .key_salt
                .clone()
                .unwrap_or_else(|| ledger_core::dialects::DEFAULT_KEY_SALT.to_string()),
            assemble: AssembleOptions {
                prices,
                mask_pii: self.mask_pii,
            },
        })
    }
}

/// When the driver cuts a commit (table `[commit]`): whichever limit a
/// partition reaches first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommitPolicy {
    /// Event bytes read since the partition's last commit. Default 64 MiB.
    pub max_bytes: u64,
    /// Records and dead letters waiting. Default 20,000.
    pub max_records: usize,
    /// Seconds since the partition's last commit. Default 60.
    pub max_interval_secs: u64,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy {
            max_bytes: 64 << 20,
            max_records: 20_000,
            max_interval_secs: 60,
        }
    }
}

impl CommitPolicy {
    pub fn max_interval(&self) -> Duration {
        Duration::from_secs(self.max_interval_secs)
    }

    /// Whether a partition's open range must be committed: `bytes` read
    /// and `records` waiting since its last commit, `age` ago.
    pub fn due(&self, bytes: u64, records: usize, age: Duration) -> bool {
        bytes >= self.max_bytes || records >= self.max_records || age >= self.max_interval()
    }
}

/// The secrets the pipeline itself uses, from the environment only.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Salt for hashing raw subscription keys that some dialects log
    /// (`AOAI_LEDGER_KEY_SALT`); a built-in salt when unset.
    pub key_salt: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("key_salt", &self.key_salt.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Secrets {
    pub fn from_env() -> Self {
        Secrets {
            key_salt: std::env::var("AOAI_LEDGER_KEY_SALT")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = LedgerSettings::default();
        assert_eq!((s.timeout_secs, s.min_gap, s.mask_pii), (600, 1000, false));
        let c = CommitPolicy::default();
        assert_eq!(
            (c.max_bytes, c.max_records, c.max_interval_secs),
            (64 << 20, 20_000, 60)
        );
    }

    #[test]
    fn unknown_keys_and_a_zero_timeout_are_refused() {
        assert!(serde_json::from_str::<CommitPolicy>(r#"{"max_rows": 1}"#).is_err());
        let zero = LedgerSettings {
            timeout_secs: 0,
            ..LedgerSettings::default()
        };
        assert!(zero.build(&Secrets::default()).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secrets {
            key_salt: Some("hunter2".into()),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
