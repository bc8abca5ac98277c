//! ledger-sql: the relational sink. Calls, dead letters and progress go to
//! PostgreSQL (through `tokio-postgres`) or SQL Server / Azure SQL (through
//! `tiberius`, feature `mssql`), one transaction per commit:
//!
//! 1. **the fence**: the partition's progress row moves from the `last`
//!    this writer knows to the commit's; when it says something else,
//!    another writer committed the partition, and the whole transaction is
//!    rolled back as [`SinkError::Fenced`];
//! 2. the commit's row in `ingest_commits` (its range and accounting);
//! 3. dead letters, bulk-loaded;
//! 4. calls: the stored rows of the commit's calls are read and locked,
//!    each record merged into its row by the lake's rule
//!    (`ledger_core::merge`), and the rows bulk-loaded into a staging
//!    table and upserted into `calls` (one row per `(dialect, request_id)`).
//!
//! Batching, merging, retries and fencing are shared ([`SqlSink`]); each
//! engine ([`engine::Engine`]) has its own DDL, bulk path, upsert and
//! error classification. The schema is generated from ledger-core's column
//! table ([`ddl`]) and applied as versioned migrations ([`migrate`]).
//!
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use ledger_pipeline::{CommitPolicy, FileSource, Pipeline, Quiet, Sink};
//! use ledger_sql::{DbSecrets, DbSettings, SqlSink};
//!
//! let settings = DbSettings { url: "postgres://postgres@127.0.0.1/test".into(), ..Default::default() };
//! let mut db = SqlSink::open(&settings, &DbSecrets::from_env()).await.unwrap();
//! let capture = r#"{"schema":"ledger/v1","kind":"request","requestId":"r1","body":"{}"}"#;
//! let mut source = FileSource::from_reader("capture", std::io::Cursor::new(capture)).unwrap();
//! let pipeline = Pipeline::new(Default::default(), CommitPolicy::default());
//! pipeline.run(&mut source, &mut [&mut db as &mut dyn Sink], &mut Quiet).await.unwrap();
//! # });
//! ```

pub mod config;
pub mod ddl;
pub mod engine;
pub mod migrate;
#[cfg(feature = "mssql")]
pub mod mssql;
pub mod postgres;
pub mod values;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use ledger_core::{CallRecord, Checkpoint, Commit, merge};
use ledger_pipeline::{Sink, SinkError, Written};

pub use config::{DbSecrets, DbSettings, Target};
pub use ddl::EngineKind;
use engine::{Engine, EngineError, Job, Merger, Outcome, Row};
pub use migrate::{MigrateError, MigrateSummary};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{target}: {source}")]
    Engine { target: String, source: EngineError },
    #[error("{target}: {source}")]
    Migrate {
        target: String,
        source: MigrateError,
    },
    #[error("quota file {path}: {reason}")]
    Quota { path: String, reason: String },
    #[error("{0} is not built into this binary (feature `mssql`)")]
    NotBuilt(&'static str),
}

/// How often, and how patiently, a commit is retried on transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: DbSettings::default().attempts,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `n` (1 is the first retry): doubling, capped,
    /// with up to a quarter of jitter so that writers a failover dropped
    /// together do not come back together.
    pub fn backoff(&self, n: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
        base + base.mul_f64(f64::from(jitter) / 4000.0)
    }
}

/// Runs `$call` (an engine call, `$engine` bound to the engine) with the
/// sink's retry policy: connects first, and on a transient error resets
/// the connection, waits and tries again.
macro_rules! with_retry {
    ($sink:expr, $engine:ident => $call:expr) => {{
        let sink = &mut *$sink;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match sink.engine.connect().await {
                Ok(()) => {
                    let $engine = sink.engine.as_mut();
                    $call.await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => break Ok(v),
                Err(e) => {
                    sink.engine.reset();
                    if !e.transient || attempt >= sink.retry.attempts {
                        break Err(DbError::Engine {
                            target: sink.name.clone(),
                            source: e,
                        });
                    }
                    let wait = sink.retry.backoff(attempt);
                    tracing::warn!(db = %sink.name, attempt, error = %e, ?wait, "transient database error, retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }};
}

/// The merge rule of one row per call: a record whose call has a stored
/// row is merged into it (`ledger_core::merge`, the lake's rule). The
/// lake merges only into a partial row and keeps a late half beside a
/// complete one; a primary key allows one row, so here the late half is
/// merged into the complete row too (the merge keeps the complete row's
/// envelope and fills only what it lacks).
struct MergeRule;

impl Merger for MergeRule {
    fn rows(&self, existing: Vec<CallRecord>, records: &[CallRecord]) -> (Vec<Row>, u64) {
        let mut stored: HashMap<(ledger_core::Dialect, String), CallRecord> = existing
            .into_iter()
            .map(|r| ((r.dialect, r.request_id.clone()), r))
            .collect();
        let mut merged = 0;
        let rows = records
            .iter()
            .map(
                |r| match stored.remove(&(r.dialect, r.request_id.clone())) {
                    Some(old) => {
                        merged += 1;
                        Row {
                            record: merge::merge(&old, r),
                            existed: true,
                        }
                    }
                    None => Row {
                        record: r.clone(),
                        existed: false,
                    },
                },
            )
            .collect();
        (rows, merged)
    }
}

/// The relational sink, over one engine.
pub struct SqlSink {
    engine: Box<dyn Engine>,
    name: String,
    /// Per (source, partition): the `last` this writer read or wrote.
    known: HashMap<(String, String), Option<i64>>,
    pub retry: RetryPolicy,
}

impl SqlSink {
    pub fn new(engine: Box<dyn Engine>) -> SqlSink {
        SqlSink {
            name: engine.describe().to_string(),
            engine,
            known: HashMap::new(),
            retry: RetryPolicy::default(),
        }
    }

    /// The engine for a target (not connected yet).
    pub fn engine_for(target: &Target) -> Result<Box<dyn Engine>, DbError> {
        match target.engine {
            EngineKind::Postgres => Ok(Box::new(postgres::PgEngine::new(target.clone()))),
            #[cfg(feature = "mssql")]
            EngineKind::MsSql => Ok(Box::new(mssql::MsSqlEngine::new(target.clone()))),
            #[cfg(not(feature = "mssql"))]
            EngineKind::MsSql => Err(DbError::NotBuilt("SQL Server")),
        }
    }

    /// Connects as configured and, when `settings.migrate`, applies the
    /// migrations.
    pub async fn open(settings: &DbSettings, secrets: &DbSecrets) -> Result<SqlSink, DbError> {
        let target = Target::parse(&settings.url, secrets)?;
        let mut sink = SqlSink::new(Self::engine_for(&target)?);
        sink.retry.attempts = settings.attempts.max(1);
        let connected: Result<(), DbError> = with_retry!(&mut sink, e => e.connect());
        connected?;
        if settings.migrate {
            sink.migrate().await?;
        }
        Ok(sink)
    }

    pub fn engine_kind(&self) -> EngineKind {
        self.engine.kind()
    }

    /// Applies the migrations the database lacks.
    pub async fn migrate(&mut self) -> Result<MigrateSummary, DbError> {
        migrate::apply(self.engine.as_mut())
            .await
            .map_err(|source| DbError::Migrate {
                target: self.name.clone(),
                source,
            })
    }

    /// Replaces the quotas with a CSV of `subscription_id,cost_quota`
    /// (the report's `--quota` file). Returns how many were loaded.
    pub async fn load_quotas(&mut self, path: &str, csv: &str) -> Result<usize, DbError> {
        let quotas = parse_quotas(csv).map_err(|reason| DbError::Quota {
            path: path.to_string(),
            reason,
        })?;
        let n = quotas.len();
        let loaded: Result<(), DbError> = with_retry!(self, e => e.load_quotas(&quotas));
        loaded?;
        Ok(n)
    }

    fn failed(&self, e: DbError) -> SinkError {
        SinkError::Failed {
            sink: self.name.clone(),
            reason: ledger_core::redact::scrub_text(&e.to_string()),
        }
    }
}

/// Parses the quota CSV: a header naming `subscription_id` and
/// `cost_quota`, then one row per subscription.
pub fn parse_quotas(csv: &str) -> Result<Vec<(String, rust_decimal::Decimal)>, String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("empty file")?
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("no `{name}` column in the header"))
    };
    let (sub, quota) = (col("subscription_id")?, col("cost_quota")?);
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |j: usize| {
            cells
                .get(j)
                .copied()
                .ok_or_else(|| format!("line {}: too few cells", i + 2))
        };
        let amount: rust_decimal::Decimal = get(quota)?
            .parse()
            .map_err(|e| format!("line {}: cost_quota: {e}", i + 2))?;
        out.push((get(sub)?.to_string(), amount));
    }
    Ok(out)
}

#[async_trait]
impl Sink for SqlSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        let (s, p) = (source.to_string(), partition.to_string());
        let checkpoint: Result<Option<Checkpoint>, DbError> =
            with_retry!(self, e => e.progress(&s, &p));
        let checkpoint = checkpoint.map_err(|e| self.failed(e))?;
        self.known
            .insert((s, p), checkpoint.as_ref().map(|c| c.last));
        Ok(checkpoint)
    }

    async fn write(&mut self, commit: &Commit) -> Result<Written, SinkError> {
        let key = (commit.source().to_string(), commit.partition().to_string());
        let ours = match self.known.get(&key) {
            Some(k) => *k,
            None => self
                .progress(commit.source(), commit.partition())
                .await?
                .map(|c| c.last),
        };
        let Some(part) = commit.lacking(ours) else {
            return Ok(Written::default());
        };
        let given = part.records.len();
        let records: Vec<CallRecord> = merge::merge_all(part.records.iter().map(|r| &r.item))
            .into_iter()
            .map(|r| values::storable(r.into_owned()))
            .collect();
        let job = Job {
            checkpoint: &part.checkpoint,
            ours,
            first: part.first,
            merged_in_commit: given.saturating_sub(records.len()) as u64,
            records,
            dead_letters: part.dead_letters.iter().map(|d| &d.item).collect(),
            lost: &part.lost,
            accounting: part.accounting,
            writer: uuid::Uuid::new_v4().simple().to_string(),
        };
        let outcome: Result<Outcome, DbError> = with_retry!(self, e => e.write(&job, &MergeRule));
        let outcome = outcome.map_err(|e| self.failed(e))?;
        let written = |merged: u64| Written {
            calls: given as u64,
            partial_calls: job.records.iter().filter(|r| !r.complete).count() as u64,
            merged_calls: job.merged_in_commit + merged,
            dead_letters: job.dead_letters.len() as u64,
        };
        match outcome {
            Outcome::Stored { merged } => {
                self.known.insert(key, Some(part.last()));
                Ok(written(merged))
            }
            // An earlier attempt committed and its answer was lost.
            Outcome::Fenced { ours: true, .. } => {
                self.known.insert(key, Some(part.last()));
                Ok(written(0))
            }
            Outcome::Fenced { theirs, .. } => {
                self.known.remove(&key);
                Err(SinkError::Fenced {
                    sink: self.name.clone(),
                    source_id: key.0,
                    partition: key.1,
                    ours,
                    theirs: theirs.unwrap_or(-1),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse() {
        let q = parse_quotas("subscription_id,cost_quota\nfinance-team,0.05\n\nresearch, 1.00\n")
            .unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[1].0, "research");
        assert!(parse_quotas("a,b\n").is_err());
        assert!(parse_quotas("subscription_id,cost_quota\nx,lots\n").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy::default();
        assert!(
            p.backoff(1) >= Duration::from_millis(200) && p.backoff(1) < Duration::from_millis(260)
        );
        assert!(p.backoff(3) >= Duration::from_millis(800));
        assert!(p.backoff(30) <= Duration::from_secs(19));
    }
}
