//! Where the database is (`[sinks.database]`, `--db URL`) and its secret.
//!
//! The URL names the server, database and user, never the password: a URL
//! with one is refused, since flags show in process lists and files get
//! committed. The password comes from `AOAI_LEDGER_DB_PASSWORD`, else the
//! engine's usual variable (`PGPASSWORD`, `SQLCMDPASSWORD`), or SQL Server
//! takes a Microsoft Entra token instead (`auth=entra`).
//!
//! - `postgres://user@host:5432/db?sslmode=disable|prefer|require&schema=NAME`
//! - `sqlserver://user@host:1433/db?encrypt=true|false&trust_server_certificate=true&auth=sql|entra`

use serde::{Deserialize, Serialize};
use url::Url;

use crate::ddl::EngineKind;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("database URL: {0}")]
    Invalid(String),
    #[error(
        "the database URL carries a password: remove it and set AOAI_LEDGER_DB_PASSWORD (or {0}) instead"
    )]
    PasswordInUrl(&'static str),
}

/// The database sink's configuration (table `[sinks.database]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbSettings {
    /// `postgres://…` or `sqlserver://…` (see the module doc). No password.
    pub url: String,
    /// Apply the migrations when the sink starts. Default true.
    pub migrate: bool,
    /// Attempts of one commit on transient errors (first included). Default 6.
    pub attempts: u32,
}

impl Default for DbSettings {
    fn default() -> Self {
        DbSettings {
            url: String::new(),
            migrate: true,
            attempts: 6,
        }
    }
}

/// TLS to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Disable,
    /// TLS when the server offers it (PostgreSQL `prefer`).
    Prefer,
    Require,
}

/// How SQL Server authenticates the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// User and password.
    Password,
    /// A Microsoft Entra access token for `https://database.windows.net/.default`.
    Entra,
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub engine: EngineKind,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: Option<String>,
    pub tls: Tls,
    /// Accept the server's certificate without checking it (local SQL
    /// Server containers).
    pub trust_server_certificate: bool,
    pub auth: Auth,
    /// PostgreSQL: the schema the tables live in (created when missing).
    pub schema: Option<String>,
    pub application_name: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Target {
    /// Parses a URL and takes the password from `secrets`.
    pub fn parse(url: &str, secrets: &DbSecrets) -> Result<Target, ConfigError> {
        let u = Url::parse(url).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let (engine, port, env) = match u.scheme() {
            "postgres" | "postgresql" => (EngineKind::Postgres, 5432, "PGPASSWORD"),
            "sqlserver" | "mssql" => (EngineKind::MsSql, 1433, "SQLCMDPASSWORD"),
            other => {
                return Err(ConfigError::Invalid(format!(
                    "scheme `{other}`: use postgres:// or sqlserver://"
                )));
            }
        };
        if u.password().is_some() {
            return Err(ConfigError::PasswordInUrl(env));
        }
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ConfigError::Invalid("no host".into()))?
            .to_string();
        let database = u.path().trim_start_matches('/').to_string();
        let database = if database.is_empty() {
            match engine {
                EngineKind::Postgres => "postgres".into(),
                EngineKind::MsSql => "master".into(),
            }
        } else {
            database
        };
        let mut t = Target {
            engine,
            host,
            port: u.port().unwrap_or(port),
            database,
            user: Some(u.username().to_string()).filter(|s| !s.is_empty()),
            tls: match engine {
                EngineKind::Postgres => Tls::Prefer,
                EngineKind::MsSql => Tls::Require,
            },
            trust_server_certificate: false,
            auth: Auth::Password,
            schema: None,
            application_name: "aoai-ledger".into(),
            password: None,
        };
        for (k, v) in u.query_pairs() {
            match (engine, k.as_ref()) {
                (EngineKind::Postgres, "sslmode") => {
                    t.tls = match v.as_ref() {
                        "disable" => Tls::Disable,
                        "prefer" | "allow" => Tls::Prefer,
                        "require" | "verify-ca" | "verify-full" => Tls::Require,
                        other => return Err(ConfigError::Invalid(format!("sslmode={other}"))),
                    }
                }
                (EngineKind::Postgres, "schema") => t.schema = Some(v.into_owned()),
                (EngineKind::MsSql, "encrypt") => {
                    t.tls = if parse_bool(&v)? {
                        Tls::Require
                    } else {
                        Tls::Disable
                    }
                }
                (EngineKind::MsSql, "trust_server_certificate") => {
                    t.trust_server_certificate = parse_bool(&v)?
                }
                (EngineKind::MsSql, "auth") => {
                    t.auth = match v.as_ref() {
                        "sql" | "password" => Auth::Password,
                        "entra" | "aad" => Auth::Entra,
                        other => return Err(ConfigError::Invalid(format!("auth={other}"))),
                    }
                }
                (_, "application_name") => t.application_name = v.into_owned(),
                (_, other) => {
                    return Err(ConfigError::Invalid(format!("unknown option `{other}`")));
                }
            }
        }
        t.password = secrets.password(engine);
        Ok(t)
    }

    /// The target without its secret, for logs and messages.
    pub fn display(&self) -> String {
        let scheme = match self.engine {
            EngineKind::Postgres => "postgres",
            EngineKind::MsSql => "sqlserver",
        };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let schema = self
            .schema
            .as_deref()
            .map(|s| format!(" schema {s}"))
            .unwrap_or_default();
        format!(
            "{scheme}://{user}{}:{}/{}{schema}",
            self.host, self.port, self.database
        )
    }
}

fn parse_bool(v: &str) -> Result<bool, ConfigError> {
    match v {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(ConfigError::Invalid(format!(
            "`{other}` is not true or false"
        ))),
    }
}

/// The database's secrets, from the environment only.
#[derive(Clone, Default)]
pub struct DbSecrets {
    /// `AOAI_LEDGER_DB_PASSWORD`.
    pub password: Option<String>,
    /// `PGPASSWORD`.
    pub pg_password: Option<String>,
    /// `SQLCMDPASSWORD`.
    pub sqlcmd_password: Option<String>,
}

impl std::fmt::Debug for DbSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| o.as_ref().map(|_| "<set>");
        f.debug_struct("DbSecrets")
            .field("password", &set(&self.password))
            .field("pg_password", &set(&self.pg_password))
            .field("sqlcmd_password", &set(&self.sqlcmd_password))
            .finish()
    }
}

/// Where the database password comes from (never a URL, flag or file).
pub const PASSWORD_ENV: &str = "AOAI_LEDGER_DB_PASSWORD";

impl DbSecrets {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        DbSecrets {
            password: var(PASSWORD_ENV),
            pg_password: var("PGPASSWORD"),
            sqlcmd_password: var("SQLCMDPASSWORD"),
        }
    }

    fn password(&self, engine: EngineKind) -> Option<String> {
        let usual = match engine {
            EngineKind::Postgres => &self.pg_password,
            EngineKind::MsSql => &self.sqlcmd_password,
        };
        self.password.clone().or_else(|| usual.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused() {
        let e = Target::parse("postgres://u:hunter2@h/db", &DbSecrets::default()).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        assert!(matches!(e, ConfigError::PasswordInUrl("PGPASSWORD")));
    }

    #[test]
    fn urls_parse_with_their_defaults() {
        let secrets = DbSecrets {
            pg_password: Some("pg".into()),
            ..Default::default()
        };
        let t = Target::parse(
            "postgres://postgres@127.0.0.1/test?schema=t1&sslmode=disable",
            &secrets,
        )
        .unwrap();
        assert_eq!(
            (t.port, t.tls, t.schema.as_deref()),
            (5432, Tls::Disable, Some("t1"))
        );
        assert_eq!(t.password.as_deref(), Some("pg"));
        assert!(!format!("{t:?}").contains("pg@"));
        let t = Target::parse(
            "sqlserver://sa@db.example/ledger?auth=entra&trust_server_certificate=true",
            &DbSecrets::default(),
        )
        .unwrap();
        assert_eq!(
            (t.engine, t.port, t.auth, t.tls),
            (EngineKind::MsSql, 1433, Auth::Entra, Tls::Require)
        );
        assert!(Target::parse("postgres://h/db?bogus=1", &DbSecrets::default()).is_err());
    }
}
