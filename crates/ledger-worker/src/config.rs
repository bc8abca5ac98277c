//! The worker's typed configuration: defaults, then a TOML file, then the
//! environment, then flags, each overriding the one before.
//!
//! The environment follows one rule, `AOAI_LEDGER_<SECTION>_<FIELD>`
//! (`AOAI_LEDGER_COMMIT_MAX_INTERVAL_SECS`, lists comma-separated), plus
//! the aliases in [`ALIASES`] that other commands already use. Secrets are
//! never configuration: a file key named like one is refused and points at
//! the environment variable to use instead.
//!
//! ```
//! use ledger_worker::config::{Overrides, WorkerConfig};
//!
//! let env = |name: &str| match name {
//!     "AOAI_LEDGER_EVENTHUBS_NAMESPACE" => Some("myns.servicebus.windows.net".to_string()),
//!     "AOAI_LEDGER_EVENTHUBS_PARTITIONS" => Some("0,1".to_string()),
//!     "AOAI_LEDGER_LAKE" => Some("az://ledger/lake".to_string()),
//!     _ => None,
//! };
//! let flags = Overrides { hub: Some("aoai".into()), ..Overrides::default() };
//! let config = WorkerConfig::load(None, env, &flags).unwrap();
//! config.validate().unwrap();
//! assert_eq!(config.eventhubs.partitions, Some(vec!["0".into(), "1".into()]));
//! assert_eq!(config.eventhubs.consumer_group, "$Default");
//! assert_eq!(config.commit.max_interval_secs, 60);
//! ```

use std::path::Path;
use std::time::Duration;

use ledger_pipeline::{CommitPolicy, LedgerSettings};
use serde::{Deserialize, Serialize};

/// Where the Event Hubs connection string is read from (never the file).
pub const CONNECTION_STRING_ENV: &str = "AOAI_LEDGER_EVENTHUB_CONNECTION_STRING";
/// Where the database password is read from (never the URL).
pub const DB_PASSWORD_ENV: &str = ledger_sql::config::PASSWORD_ENV;
const PREFIX: &str = "AOAI_LEDGER_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    /// Names the key and the variable to use; never the value.
    #[error("`{key}` looks like a secret: secrets never go in the config file; set {env} instead")]
    SecretInFile { key: String, env: &'static str },
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The whole worker configuration (one table per section).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    #[serde(default)]
    pub eventhubs: EventHubsSettings,
    #[serde(default)]
    pub lake: LakeSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub ledger: LedgerSettings,
    #[serde(default)]
    pub commit: CommitPolicy,
    #[serde(default)]
    pub worker: WorkerSettings,
    #[serde(default)]
    pub http: HttpSettings,
}

/// How Event Hubs credentials are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventHubsAuth {
    /// A connection string when `AOAI_LEDGER_EVENTHUB_CONNECTION_STRING` is set, else Entra.
    #[default]
    Auto,
    ConnectionString,
    Entra,
}

impl EventHubsAuth {
    /// The concrete choice once `Auto` is decided by the environment.
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> EventHubsAuth {
        match self {
            EventHubsAuth::Auto if env(CONNECTION_STRING_ENV).is_some_and(|v| !v.is_empty()) => {
                EventHubsAuth::ConnectionString
            }
            EventHubsAuth::Auto => EventHubsAuth::Entra,
            other => other,
        }
    }
}

/// Table `[eventhubs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventHubsSettings {
    /// Fully qualified namespace, e.g. `myns.servicebus.windows.net`.
    pub namespace: Option<String>,
    pub hub: Option<String>,
    pub consumer_group: String,
    /// A custom AMQP endpoint (plain TCP), e.g. `amqp://127.0.0.1:5672`
    /// for the in-repo broker or the emulator.
    pub endpoint: Option<String>,
    pub auth: EventHubsAuth,
    /// Restrict the worker to these partition ids.
    pub partitions: Option<Vec<String>>,
    pub prefetch: u32,
    pub open_timeout_secs: u64,
    pub operation_timeout_secs: u64,
    /// A receiver silent this long while its partition has newer events is rebuilt.
    pub receive_idle_secs: u64,
    pub token_refresh_secs: Option<u64>,
}

impl Default for EventHubsSettings {
    fn default() -> Self {
        EventHubsSettings {
            namespace: None,
            hub: None,
            consumer_group: "$Default".into(),
            endpoint: None,
            auth: EventHubsAuth::Auto,
            partitions: None,
            prefetch: 300,
            open_timeout_secs: 30,
            operation_timeout_secs: 30,
            receive_idle_secs: 60,
            token_refresh_secs: None,
        }
    }
}

impl EventHubsSettings {
    pub fn open_timeout(&self) -> Duration {
        Duration::from_secs(self.open_timeout_secs)
    }
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs)
    }
    pub fn receive_idle(&self) -> Duration {
        Duration::from_secs(self.receive_idle_secs)
    }
    pub fn token_refresh(&self) -> Option<Duration> {
        self.token_refresh_secs.map(Duration::from_secs)
    }
}

/// Table `[lake]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSettings {
    /// A directory or `az://container/prefix`.
    pub url: Option<String>,
}

/// Table `[database]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` or `mssql://…`, never with a password.
    pub url: Option<String>,
    pub migrate: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            migrate: true,
        }
    }
}

/// Table `[worker]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// How often idle partitions are checked.
    pub tick_millis: u64,
    pub shutdown_timeout_secs: u64,
    pub retry_initial_millis: u64,
    pub retry_max_secs: u64,
    /// Events buffered between the receivers and the pipeline (backpressure).
    pub channel_events: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            tick_millis: 1000,
            shutdown_timeout_secs: 30,
            retry_initial_millis: 500,
            retry_max_secs: 30,
            channel_events: 10_000,
        }
    }
}

impl WorkerSettings {
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_millis)
    }
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
    pub fn retry_initial(&self) -> Duration {
        Duration::from_millis(self.retry_initial_millis)
    }
    pub fn retry_max(&self) -> Duration {
        Duration::from_secs(self.retry_max_secs)
    }
}

/// Table `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// `host:port` for /healthz, /readyz, /metrics; `off` or empty disables.
    pub listen: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: Some("0.0.0.0:9090".into()),
        }
    }
}

impl HttpSettings {
    /// The address to listen on, `None` when disabled.
    pub fn listen_addr(&self) -> Option<&str> {
        self.listen
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("off"))
    }
}

/// The common settings that are also flags, applied last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub namespace: Option<String>,
    pub hub: Option<String>,
    pub consumer_group: Option<String>,
    pub lake: Option<String>,
    pub db: Option<String>,
}

/// How an environment value becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated strings.
    List,
}

/// One environment variable and the setting it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    /// `section.field`, or `-` for a secret read directly by a component.
    pub key: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// Every setting: `(section.field, kind, meaning)`. The env names derive from it.
const SETTINGS: &[(&str, Kind, &str)] = &[
    (
        "eventhubs.namespace",
        Kind::Str,
        "Fully qualified Event Hubs namespace, e.g. myns.servicebus.windows.net",
    ),
    ("eventhubs.hub", Kind::Str, "Event hub name"),
    ("eventhubs.consumer_group", Kind::Str, "Consumer group"),
    (
        "eventhubs.endpoint",
        Kind::Str,
        "Custom AMQP endpoint (plain TCP), e.g. amqp://127.0.0.1:5672 for the local broker or the emulator",
    ),
    (
        "eventhubs.auth",
        Kind::Str,
        "auto, connection-string or entra; auto = connection string when AOAI_LEDGER_EVENTHUB_CONNECTION_STRING is set, else Entra",
    ),
    (
        "eventhubs.partitions",
        Kind::List,
        "Restrict to these partition ids (comma-separated); default all",
    ),
    (
        "eventhubs.prefetch",
        Kind::Int,
        "Events prefetched per receiver",
    ),
    (
        "eventhubs.open_timeout_secs",
        Kind::Int,
        "Timeout for opening a connection or receiver",
    ),
    (
        "eventhubs.operation_timeout_secs",
        Kind::Int,
        "Timeout for any other SDK call",
    ),
    (
        "eventhubs.receive_idle_secs",
        Kind::Int,
        "A receiver silent this long while its partition has newer events is rebuilt",
    ),
    (
        "eventhubs.token_refresh_secs",
        Kind::Int,
        "Refresh credentials this often (default: by token lifetime)",
    ),
    (
        "lake.url",
        Kind::Str,
        "The Delta lake: a directory or az://container/prefix",
    ),
    (
        "database.url",
        Kind::Str,
        "postgres://… or mssql://… without a password",
    ),
    (
        "database.migrate",
        Kind::Bool,
        "Create or upgrade the schema at start",
    ),
    (
        "ledger.timeout_secs",
        Kind::Int,
        "Seconds a call waits for its missing parts before it is written as partial",
    ),
    (
        "ledger.min_gap",
        Kind::Int,
        "Fragments that must follow a call before it may time out",
    ),
    (
        "ledger.mask_pii",
        Kind::Bool,
        "Mask e-mail addresses, phone and card numbers",
    ),
    (
        "ledger.prices",
        Kind::Str,
        "A price table replacing the built-in one",
    ),
    (
        "commit.max_bytes",
        Kind::Int,
        "Commit after this many event bytes per partition",
    ),
    (
        "commit.max_records",
        Kind::Int,
        "Commit after this many records and dead letters",
    ),
    (
        "commit.max_interval_secs",
        Kind::Int,
        "Commit at least this often (seconds)",
    ),
    (
        "worker.tick_millis",
        Kind::Int,
        "How often idle partitions are checked",
    ),
    (
        "worker.shutdown_timeout_secs",
        Kind::Int,
        "Bound on the drain after SIGTERM/SIGINT",
    ),
    (
        "worker.retry_initial_millis",
        Kind::Int,
        "First retry backoff",
    ),
    ("worker.retry_max_secs", Kind::Int, "Largest retry backoff"),
    (
        "worker.channel_events",
        Kind::Int,
        "Events buffered between receivers and the pipeline (backpressure)",
    ),
    (
        "http.listen",
        Kind::Str,
        "host:port for /healthz, /readyz, /metrics; off disables",
    ),
];

/// Older names other commands already read: `(name, section.field)`.
pub const ALIASES: &[(&str, &str)] = &[
    ("AOAI_LEDGER_LAKE", "lake.url"),
    ("AOAI_LEDGER_DB", "database.url"),
];

/// Secrets, read from the environment by the component that needs them.
pub const SECRETS: &[(&str, &str)] = &[
    (CONNECTION_STRING_ENV, "Event Hubs connection string (SAS)"),
    (DB_PASSWORD_ENV, "Database password"),
    (
        "AOAI_LEDGER_KEY_SALT",
        "Salt for hashing raw subscription keys",
    ),
];

fn env_name(key: &str) -> String {
    format!("{PREFIX}{}", key.replace('.', "_").to_uppercase())
}

fn kind_of(key: &str) -> Kind {
    SETTINGS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(Kind::Str, |(_, kind, _)| *kind)
}

/// Every environment variable the worker reads, settings first, then
/// aliases, then secrets (key `-`).
pub fn env_vars() -> Vec<EnvVar> {
    let mut vars: Vec<EnvVar> = SETTINGS
        .iter()
        .map(|(key, kind, help)| EnvVar {
            name: env_name(key),
            key,
            help,
            kind: *kind,
        })
        .collect();
    vars.extend(ALIASES.iter().map(|(name, key)| EnvVar {
        name: (*name).to_string(),
        key,
        help: "Alias, as other commands read it",
        kind: kind_of(key),
    }));
    vars.extend(SECRETS.iter().map(|(name, help)| EnvVar {
        name: (*name).to_string(),
        key: "-",
        help,
        kind: Kind::Str,
    }));
    vars
}

/// The environment variable to point at when a file key looks like a secret.
fn secret_env(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let is = |word: &str| n == word || n.ends_with(&format!("_{word}"));
    if is("connection_string") || n == "sas" || n.ends_with("_sas") {
        Some(CONNECTION_STRING_ENV)
    } else if is("password") {
        Some(DB_PASSWORD_ENV)
    } else if is("salt") {
        Some("AOAI_LEDGER_KEY_SALT")
    } else if is("key") || is("token") || is("secret") {
        Some(CONNECTION_STRING_ENV)
    } else {
        None
    }
}

fn refuse_secrets(table: &toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some(env) = secret_env(k) {
            return Err(ConfigError::SecretInFile { key, env });
        }
        if let toml::Value::Table(t) = v {
            refuse_secrets(t, &key)?;
        }
    }
    Ok(())
}

/// Deep merge: tables merge, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    let (section, field) = key.split_once('.').unwrap_or(("", key));
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    if let toml::Value::Table(t) = entry {
        t.insert(field.to_string(), value);
    }
}

fn env_value(name: &str, kind: Kind, raw: &str) -> Result<toml::Value, ConfigError> {
    let err = |reason: &str| ConfigError::Env {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let raw = raw.trim();
    Ok(match kind {
        Kind::Str => toml::Value::String(raw.to_string()),
        Kind::Int => toml::Value::Integer(
            raw.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| err("expected a non-negative integer"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(err("expected true or false")),
        }),
        Kind::List => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
    })
}

impl WorkerConfig {
    /// Defaults, then `file`, then the environment (`env`, injectable for
    /// tests), then `flags`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<WorkerConfig, ConfigError> {
        let mut table = toml::Table::try_from(WorkerConfig::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            let parsed: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: shown.clone(),
                reason: e.message().to_string(),
            })?;
            refuse_secrets(&parsed, "")?;
            merge(&mut table, parsed);
        }
        // Aliases first, so the canonical name wins when both are set.
        let aliases = ALIASES.iter().map(|(n, k)| ((*n).to_string(), *k));
        let canonical = SETTINGS.iter().map(|(k, _, _)| (env_name(k), *k));
        for (name, key) in aliases.chain(canonical) {
            if let Some(raw) = env(&name) {
                set(&mut table, key, env_value(&name, kind_of(key), &raw)?);
            }
        }
        let mut config: WorkerConfig =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file.map_or("(environment)".into(), |p| p.display().to_string()),
                    reason: e.message().to_string(),
                })?;
        config.apply(flags);
        Ok(config)
    }

    /// The flags, applied over everything else.
    pub fn apply(&mut self, flags: &Overrides) {
        let pick = |slot: &mut Option<String>, v: &Option<String>| {
            if let Some(v) = v {
                *slot = Some(v.clone());
            }
        };
        pick(&mut self.eventhubs.namespace, &flags.namespace);
        pick(&mut self.eventhubs.hub, &flags.hub);
        pick(&mut self.lake.url, &flags.lake);
        pick(&mut self.database.url, &flags.db);
        if let Some(g) = &flags.consumer_group {
            self.eventhubs.consumer_group = g.clone();
        }
    }

    /// Checks what a run needs; each error says what to set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let missing = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        if missing(&self.eventhubs.namespace) {
            return invalid(
                "no Event Hubs namespace: set --namespace, eventhubs.namespace or AOAI_LEDGER_EVENTHUBS_NAMESPACE",
            );
        }
        if missing(&self.eventhubs.hub) {
            return invalid("no event hub: set --hub, eventhubs.hub or AOAI_LEDGER_EVENTHUBS_HUB");
        }
        if self.eventhubs.consumer_group.trim().is_empty() {
            return invalid("the consumer group is empty");
        }
        if missing(&self.lake.url) {
            return invalid("no lake: set --lake, lake.url or AOAI_LEDGER_LAKE");
        }
        let zero = [
            (
                "eventhubs.open_timeout_secs",
                self.eventhubs.open_timeout_secs,
            ),
            (
                "eventhubs.operation_timeout_secs",
                self.eventhubs.operation_timeout_secs,
            ),
            (
                "eventhubs.receive_idle_secs",
                self.eventhubs.receive_idle_secs,
            ),
            ("eventhubs.prefetch", u64::from(self.eventhubs.prefetch)),
            ("commit.max_interval_secs", self.commit.max_interval_secs),
            ("commit.max_bytes", self.commit.max_bytes),
            ("ledger.timeout_secs", self.ledger.timeout_secs),
            ("worker.tick_millis", self.worker.tick_millis),
            (
                "worker.shutdown_timeout_secs",
                self.worker.shutdown_timeout_secs,
            ),
            (
                "worker.retry_initial_millis",
                self.worker.retry_initial_millis,
            ),
            ("worker.retry_max_secs", self.worker.retry_max_secs),
            ("worker.channel_events", self.worker.channel_events as u64),
            ("commit.max_records", self.commit.max_records as u64),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!("{key} must be positive")));
        }
        if self.eventhubs.token_refresh_secs == Some(0) {
            return invalid("eventhubs.token_refresh_secs must be positive");
        }
        if let Some(url) = self
            .database
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            // ledger-sql's own parser refuses a URL with a password.
            ledger_sql::config::Target::parse(url, &ledger_sql::config::DbSecrets::default())
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults() {
        let c = WorkerConfig::load(None, env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(c, WorkerConfig::default());
        assert_eq!(c.eventhubs.prefetch, 300);
        assert_eq!(c.http.listen_addr(), Some("0.0.0.0:9090"));
        assert!(c.database.migrate);
        assert_eq!(c.worker.tick(), Duration::from_secs(1));
    }

    #[test]
    fn precedence_file_env_flags() {
        let f = file(
            "[eventhubs]\nnamespace = \"file.example\"\nhub = \"filehub\"\nconsumer_group = \"g\"\n[commit]\nmax_interval_secs = 5\n",
        );
        let env = env_of(&[
            ("AOAI_LEDGER_EVENTHUBS_HUB", "envhub"),
            ("AOAI_LEDGER_COMMIT_MAX_INTERVAL_SECS", "7"),
        ]);
        let flags = Overrides {
            namespace: Some("flag.example".into()),
            ..Overrides::default()
        };
        let c = WorkerConfig::load(Some(f.path()), env, &flags).unwrap();
        assert_eq!(c.eventhubs.namespace.as_deref(), Some("flag.example"));
        assert_eq!(c.eventhubs.hub.as_deref(), Some("envhub"));
        assert_eq!(c.eventhubs.consumer_group, "g");
        assert_eq!(c.commit.max_interval_secs, 7);
        assert_eq!(c.commit.max_records, 20_000);
    }

    #[test]
    fn env_rule_covers_every_setting_and_types() {
        let env = env_of(&[
            ("AOAI_LEDGER_EVENTHUBS_PARTITIONS", "0, 1"),
            ("AOAI_LEDGER_EVENTHUBS_AUTH", "connection-string"),
            ("AOAI_LEDGER_DATABASE_MIGRATE", "false"),
            ("AOAI_LEDGER_EVENTHUBS_TOKEN_REFRESH_SECS", "5"),
            ("AOAI_LEDGER_HTTP_LISTEN", "off"),
        ]);
        let c = WorkerConfig::load(None, env, &Overrides::default()).unwrap();
        assert_eq!(c.eventhubs.partitions, Some(vec!["0".into(), "1".into()]));
        assert_eq!(c.eventhubs.auth, EventHubsAuth::ConnectionString);
        assert!(!c.database.migrate);
        assert_eq!(c.eventhubs.token_refresh(), Some(Duration::from_secs(5)));
        assert_eq!(c.http.listen_addr(), None);
        let bad = WorkerConfig::load(
            None,
            env_of(&[("AOAI_LEDGER_WORKER_TICK_MILLIS", "soon")]),
            &Overrides::default(),
        );
        assert!(
            matches!(bad, Err(ConfigError::Env { name, .. }) if name == "AOAI_LEDGER_WORKER_TICK_MILLIS")
        );
        // Every setting deserializes from its env var.
        let defaults = toml::Table::try_from(WorkerConfig::default()).unwrap();
        for (key, kind, _) in SETTINGS {
            let (s, f) = key.split_once('.').unwrap();
            let sample = match kind {
                Kind::Int => "3".to_string(),
                Kind::Bool => "true".into(),
                Kind::List => "0".into(),
                Kind::Str if *key == "eventhubs.auth" => "entra".into(),
                Kind::Str => "x".into(),
            };
            let name = env_name(key);
            let r = WorkerConfig::load(None, env_of(&[(&name, &sample)]), &Overrides::default());
            assert!(r.is_ok(), "{name}: {r:?}");
            let _ = defaults.get(s).map(|t| t.get(f));
        }
    }

    #[test]
    fn aliases_and_canonical_wins() {
        let c = WorkerConfig::load(
            None,
            env_of(&[
                ("AOAI_LEDGER_LAKE", "/tmp/lake"),
                ("AOAI_LEDGER_DB", "postgres://u@h/db"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.lake.url.as_deref(), Some("/tmp/lake"));
        assert_eq!(c.database.url.as_deref(), Some("postgres://u@h/db"));
        let c = WorkerConfig::load(
            None,
            env_of(&[("AOAI_LEDGER_LAKE", "/a"), ("AOAI_LEDGER_LAKE_URL", "/b")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.lake.url.as_deref(), Some("/b"));
    }

    #[test]
    fn secrets_refused_without_echo() {
        let f =
            file("[eventhubs]\nconnection_string = \"Endpoint=sb://x;SharedAccessKey=hunter2\"\n");
        let e = WorkerConfig::load(Some(f.path()), env_of(&[]), &Overrides::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(CONNECTION_STRING_ENV), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let f = file("[database]\npassword = \"hunter2\"\n");
        let msg = WorkerConfig::load(Some(f.path()), env_of(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(DB_PASSWORD_ENV) && !msg.contains("hunter2"),
            "{msg}"
        );
        for k in ["sas", "key", "token", "account_key", "sas_token"] {
            let f = file(&format!("[lake]\n{k} = \"v\"\n"));
            let r = WorkerConfig::load(Some(f.path()), env_of(&[]), &Overrides::default());
            assert!(matches!(r, Err(ConfigError::SecretInFile { .. })), "{k}");
        }
        // Not secrets: token_refresh_secs is a duration.
        let f = file("[eventhubs]\ntoken_refresh_secs = 5\n");
        assert!(WorkerConfig::load(Some(f.path()), env_of(&[]), &Overrides::default()).is_ok());
    }

    #[test]
    fn unknown_keys_refused() {
        for text in [
            "[eventhubs]\nnamspace = \"x\"\n",
            "[nope]\na = 1\n",
            "[commit]\nmax = 1\n",
        ] {
            let f = file(text);
            let r = WorkerConfig::load(Some(f.path()), env_of(&[]), &Overrides::default());
            assert!(matches!(r, Err(ConfigError::Parse { .. })), "{text}: {r:?}");
        }
    }

    #[test]
    fn validate_errors() {
        let ok = || {
            let mut c = WorkerConfig::default();
            c.eventhubs.namespace = Some("ns.example".into());
            c.eventhubs.hub = Some("hub".into());
            c.lake.url = Some("/tmp/lake".into());
            c
        };
        ok().validate().unwrap();
        let mut c = ok();
        c.eventhubs.namespace = None;
        assert!(c.validate().unwrap_err().to_string().contains("namespace"));
        let mut c = ok();
        c.lake.url = None;
        assert!(c.validate().unwrap_err().to_string().contains("lake"));
        let mut c = ok();
        c.worker.tick_millis = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("tick_millis")
        );
        let mut c = ok();
        c.database.url = Some("postgres://u:hunter2@h/db".into());
        let msg = c.validate().unwrap_err().to_string();
        assert!(
            msg.contains("AOAI_LEDGER_DB_PASSWORD") && !msg.contains("hunter2"),
            "{msg}"
        );
        let mut c = ok();
        c.database.url = Some("mssql://sa@sqlserver:1433/ledger".into());
        c.validate().unwrap();
    }

    #[test]
    fn auth_auto_resolves() {
        let set = env_of(&[(CONNECTION_STRING_ENV, "Endpoint=sb://x")]);
        assert_eq!(
            EventHubsAuth::Auto.resolve(set),
            EventHubsAuth::ConnectionString
        );
        assert_eq!(
            EventHubsAuth::Auto.resolve(env_of(&[])),
            EventHubsAuth::Entra
        );
    }
}
