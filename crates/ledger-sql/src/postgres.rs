//! PostgreSQL (and Azure Database for PostgreSQL) through `tokio-postgres`.
//!
//! A commit is one transaction: the progress row's conditional update (the
//! fence), the stored rows of the commit's calls read `FOR UPDATE`, binary
//! `COPY` of the merged rows into a session's temporary staging table,
//! `UPDATE … FROM` for the rows that existed and `INSERT … ON CONFLICT DO
//! NOTHING` for the new ones. A new row another writer inserted since the
//! read (`FOR UPDATE` cannot lock a row that does not exist yet) is not
//! overwritten: its record is read, merged and written again in a next
//! round of the same transaction.

use std::borrow::Cow;
use std::collections::HashSet;
use std::error::Error as StdError;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::pin_mut;
use ledger_core::columns::{CALL_COLUMNS, DEAD_LETTER_COLUMNS, LogicalType};
use ledger_core::{CallRecord, Checkpoint};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Transaction};

use crate::config::{Target, Tls};
use crate::ddl::{self, EngineKind};
use crate::engine::{Engine, EngineError, Job, Merger, Outcome};
use crate::values::{self, Value};

/// SQLSTATEs worth a retry on a new connection: serialization failures and
/// deadlocks, resource exhaustion, lock timeouts, shutdowns and restarts,
/// a cancelled statement; class 08 (connection exceptions) too.
const TRANSIENT_STATES: &[&str] = &[
    "40001", "40P01", "53000", "53200", "53300", "55P03", "57P01", "57P02", "57P03", "57014",
];

/// Whether a PostgreSQL error is worth a retry.
pub fn is_transient(code: Option<&str>, closed: bool) -> bool {
    closed
        || match code {
            Some(c) => c.starts_with("08") || TRANSIENT_STATES.contains(&c),
            // No SQLSTATE: an I/O error, a timeout, a refused connection.
            None => true,
        }
}

fn classify(e: tokio_postgres::Error) -> EngineError {
    let code = e.code().map(|c| c.code().to_string());
    let message = match e.as_db_error() {
        Some(db) => format!("{db}"),
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    };
    let message = ledger_core::redact::scrub_text(&message);
    EngineError {
        transient: is_transient(code.as_deref(), e.is_closed()),
        message,
    }
}

/// A fault to inject, for tests of what a killed writer leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next commit's session is terminated by the server after the
    /// bulk copy and upsert, before `COMMIT`.
    KillBeforeCommit,
}

pub struct PgEngine {
    target: Target,
    display: String,
    client: Option<Client>,
    connection: Option<tokio::task::JoinHandle<()>>,
    fault: Option<Fault>,
}

impl PgEngine {
    pub fn new(target: Target) -> PgEngine {
        PgEngine {
            display: target.display(),
            target,
            client: None,
            connection: None,
            fault: None,
        }
    }

    /// Injects a fault into the next commit (once).
    pub fn with_fault(mut self, fault: Fault) -> PgEngine {
        self.fault = Some(fault);
        self
    }

    fn client(&mut self) -> Result<&mut Client, EngineError> {
        match self.client.as_mut() {
            Some(c) if !c.is_closed() => Ok(c),
            _ => Err(EngineError::transient("not connected")),
        }
    }
}

impl Drop for PgEngine {
    fn drop(&mut self) {
        if let Some(c) = self.connection.take() {
            c.abort();
        }
    }
}

/// The wire type of a logical type.
fn pg_type(ty: LogicalType) -> Type {
    match ty {
        LogicalType::Text => Type::VARCHAR,
        LogicalType::LongText | LogicalType::Json => Type::TEXT,
        LogicalType::Int32 => Type::INT4,
        LogicalType::Int64 => Type::INT8,
        LogicalType::Float64 => Type::FLOAT8,
        LogicalType::Bool => Type::BOOL,
        LogicalType::Timestamp => Type::TIMESTAMPTZ,
        LogicalType::Decimal { .. } => Type::NUMERIC,
        LogicalType::Binary => Type::BYTEA,
    }
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(s) => s.as_ref().to_sql(ty, out),
            Value::Int32(i) => i.to_sql(ty, out),
            Value::Int64(i) => i.to_sql(ty, out),
            Value::Float64(f) => f.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Timestamp(t) => t.to_sql(ty, out),
            Value::Decimal(d) => d.to_sql(ty, out),
            Value::Binary(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A `calls` row read back as a record.
fn read_call(row: &tokio_postgres::Row) -> Result<CallRecord, EngineError> {
    let bad = |e: tokio_postgres::Error| EngineError::permanent(format!("reading calls: {e}"));
    let mut cells = Vec::with_capacity(CALL_COLUMNS.len());
    for (i, c) in CALL_COLUMNS.iter().enumerate() {
        let v = match c.ty {
            LogicalType::Text | LogicalType::LongText | LogicalType::Json => row
                .try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map_or(Value::Null, |s| Value::Text(Cow::Owned(s))),
            LogicalType::Int32 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Int32),
            LogicalType::Int64 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Int64),
            LogicalType::Float64 => row
                .try_get::<_, Option<f64>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Float64),
            LogicalType::Bool => row
                .try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Bool),
            LogicalType::Timestamp => row
                .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Timestamp),
            LogicalType::Decimal { .. } => row
                .try_get::<_, Option<rust_decimal::Decimal>>(i)
                .map_err(bad)?
                .map_or(Value::Null, Value::Decimal),
            // `calls` has no binary column.
            LogicalType::Binary => Value::Null,
        };
        cells.push(v);
    }
    values::call_from_cells(cells)
        .map_err(|e| EngineError::permanent(format!("reading calls: {e}")))
}

/// Every row of `calls`, for tests and checks (ordered by identity).
pub async fn read_all_calls(client: &Client) -> Result<Vec<CallRecord>, EngineError> {
    let sql = format!(
        "SELECT {} FROM calls ORDER BY dialect, request_id",
        ddl::column_list(EngineKind::Postgres, "")
    );
    let rows = client.query(&sql, &[]).await.map_err(classify)?;
    rows.iter().map(read_call).collect()
}

/// Bulk-loads rows with binary `COPY`.
async fn copy_rows<'a>(
    tx: &Transaction<'_>,
    statement: &str,
    types: &[Type],
    rows: impl Iterator<Item = Vec<Value<'a>>>,
) -> Result<u64, EngineError> {
    let sink = tx.copy_in(statement).await.map_err(classify)?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    for row in rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await.map_err(classify)?;
    }
    writer.as_mut().finish().await.map_err(classify)
}

/// How many rounds a commit gives writers that insert its calls meanwhile.
const MERGE_ROUNDS: usize = 8;

impl PgEngine {
    async fn write_calls(
        tx: &Transaction<'_>,
        records: &[CallRecord],
        merger: &dyn Merger,
    ) -> Result<u64, EngineError> {
        let pg = EngineKind::Postgres;
        let cols = ddl::column_list(pg, "");
        let select = format!(
            "SELECT {} FROM calls c JOIN unnest($1::text[], $2::text[]) AS k(d, r) \
             ON c.dialect = k.d AND c.request_id = k.r FOR UPDATE OF c",
            ddl::column_list(pg, "c.")
        );
        let copy = format!("COPY ledger_stage_calls ({cols}, existed) FROM STDIN BINARY");
        let set: Vec<String> = CALL_COLUMNS
            .iter()
            .filter(|c| c.name != "dialect" && c.name != "request_id")
            .map(|c| format!("{0} = s.{0}", pg.quote(c.name)))
            .collect();
        let update = format!(
            "UPDATE calls SET {} FROM ledger_stage_calls s WHERE s.existed \
             AND calls.dialect = s.dialect AND calls.request_id = s.request_id",
            set.join(", ")
        );
        let insert = format!(
            "INSERT INTO calls ({cols}) SELECT {cols} FROM ledger_stage_calls WHERE NOT existed \
             ON CONFLICT (dialect, request_id) DO NOTHING RETURNING dialect, request_id"
        );
        let mut types: Vec<Type> = CALL_COLUMNS.iter().map(|c| pg_type(c.ty)).collect();
        types.push(Type::BOOL);

        let mut pending: Vec<CallRecord> = records.to_vec();
        let mut merged = 0;
        for _ in 0..MERGE_ROUNDS {
            if pending.is_empty() {
                return Ok(merged);
            }
            let dialects: Vec<&str> = pending.iter().map(|r| r.dialect.as_str()).collect();
            let ids: Vec<&str> = pending.iter().map(|r| r.request_id.as_str()).collect();
            let stored = tx
                .query(&select, &[&dialects, &ids])
                .await
                .map_err(classify)?
                .iter()
                .map(read_call)
                .collect::<Result<Vec<_>, _>>()?;
            let (rows, m) = merger.rows(stored, &pending);
            merged += m;
            tx.execute("TRUNCATE ledger_stage_calls", &[])
                .await
                .map_err(classify)?;
            copy_rows(
                tx,
                &copy,
                &types,
                rows.iter().map(|r| {
                    let mut cells = values::call_row(&r.record);
                    cells.push(Value::Bool(r.existed));
                    cells
                }),
            )
            .await?;
            if rows.iter().any(|r| r.existed) {
                // A fresh temp table has no statistics: without them the
                // planner may scan `calls` once per staged row.
                tx.batch_execute("ANALYZE ledger_stage_calls")
                    .await
                    .map_err(classify)?;
                tx.execute(&update, &[]).await.map_err(classify)?;
            }
            let inserted: HashSet<(String, String)> = tx
                .query(&insert, &[])
                .await
                .map_err(classify)?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect();
            pending = rows
                .into_iter()
                .filter(|r| {
                    !r.existed
                        && !inserted.contains(&(
                            r.record.dialect.as_str().to_string(),
                            r.record.request_id.clone(),
                        ))
                })
                .map(|r| r.record)
                .collect();
        }
        if pending.is_empty() {
            Ok(merged)
        } else {
            Err(EngineError::transient(
                "other writers kept inserting this commit's calls",
            ))
        }
    }
}

#[async_trait]
impl Engine for PgEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgres
    }

    fn describe(&self) -> &str {
        &self.display
    }

    async fn connect(&mut self) -> Result<(), EngineError> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.reset();
        let t = &self.target;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&t.host)
            .port(t.port)
            .dbname(&t.database)
            .application_name(&t.application_name)
            .connect_timeout(Duration::from_secs(15))
            .ssl_mode(match t.tls {
                Tls::Disable => tokio_postgres::config::SslMode::Disable,
                Tls::Prefer => tokio_postgres::config::SslMode::Prefer,
                Tls::Require => tokio_postgres::config::SslMode::Require,
            });
        if let Some(u) = &t.user {
            cfg.user(u);
        }
        if let Some(p) = &t.password {
            cfg.password(p);
        }
        let server = self.display.clone();
        let log = move |e: tokio_postgres::Error| {
            tracing::debug!(db = %server, error = %e, "database connection ended");
        };
        let client = if t.tls == Tls::Disable {
            let (client, conn) = cfg.connect(NoTls).await.map_err(classify)?;
            self.connection = Some(tokio::spawn(async move {
                if let Err(e) = conn.await {
                    log(e);
                }
            }));
            client
        } else {
            let tls = native_tls::TlsConnector::new()
                .map_err(|e| EngineError::permanent(format!("TLS: {e}")))?;
            let (client, conn) = cfg
                .connect(postgres_native_tls::MakeTlsConnector::new(tls))
                .await
                .map_err(classify)?;
            self.connection = Some(tokio::spawn(async move {
                if let Err(e) = conn.await {
                    log(e);
                }
            }));
            client
        };
        if let Some(schema) = &t.schema {
            let q = EngineKind::Postgres.quote(schema);
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {q}; SET search_path TO {q}"
                ))
                .await
                .map_err(classify)?;
        }
        client
            .batch_execute(&ddl::postgres_staging())
            .await
            .map_err(classify)?;
        self.client = Some(client);
        Ok(())
    }

    fn reset(&mut self) {
        self.client = None;
        if let Some(c) = self.connection.take() {
            c.abort();
        }
    }

    async fn applied_migrations(&mut self) -> Result<Vec<(u32, String)>, EngineError> {
        let client = self.client()?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, \
                 name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(
                "SELECT version, checksum FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(classify)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i32>(0).unsigned_abs(), r.get::<_, String>(1)))
            .collect())
    }

    async fn apply_migration(
        &mut self,
        version: u32,
        name: &str,
        checksum: &str,
        sql: &str,
    ) -> Result<(), EngineError> {
        let client = self.client()?;
        let tx = client.transaction().await.map_err(classify)?;
        // Two workers starting together: the second waits, then skips.
        tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
            .await
            .map_err(classify)?;
        let v = i32::try_from(version).map_err(|_| EngineError::permanent("version too large"))?;
        let done = tx
            .query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[&v])
            .await
            .map_err(classify)?;
        if done.is_none() {
            tx.batch_execute(sql).await.map_err(classify)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&v, &name, &checksum],
            )
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, EngineError> {
        let client = self.client()?;
        let row = client
            .query_opt(
                "SELECT last, resume, pending, clock FROM ingest_progress \
                 WHERE source = $1 AND partition = $2",
                &[&source, &partition],
            )
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let pending: String = row.get(2);
        Ok(Some(Checkpoint {
            source: source.to_string(),
            partition: partition.to_string(),
            last: row.get(0),
            resume: row.get(1),
            pending: serde_json::from_str(&pending).map_err(|e| {
                EngineError::permanent(format!("ingest_progress.pending is unreadable: {e}"))
            })?,
            clock: row.get(3),
        }))
    }

    async fn write(&mut self, job: &Job<'_>, merger: &dyn Merger) -> Result<Outcome, EngineError> {
        let fault = self.fault.take();
        let client = self.client()?;
        let tx = client.transaction().await.map_err(classify)?;
        let cp = job.checkpoint;
        let (source, partition) = (cp.source.as_str(), cp.partition.as_str());
        let pending = serde_json::to_string(&cp.pending)
            .map_err(|e| EngineError::permanent(e.to_string()))?;
        // The fence: the progress row moves from what this writer knows,
        // and stays locked until the transaction ends.
        let moved = match job.ours {
            None => tx
                .execute(
                    "INSERT INTO ingest_progress (source, partition, last, resume, pending, clock, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (source, partition) DO NOTHING",
                    &[&source, &partition, &cp.last, &cp.resume, &pending, &cp.clock],
                )
                .await,
            Some(ours) => tx
                .execute(
                    "UPDATE ingest_progress SET last = $3, resume = $4, pending = $5, clock = $6, \
                     updated_at = now() WHERE source = $1 AND partition = $2 AND last = $7",
                    &[&source, &partition, &cp.last, &cp.resume, &pending, &cp.clock, &ours],
                )
                .await,
        }
        .map_err(classify)?;
        if moved == 0 {
            let theirs: Option<i64> = tx
                .query_opt(
                    "SELECT last FROM ingest_progress WHERE source = $1 AND partition = $2",
                    &[&source, &partition],
                )
                .await
                .map_err(classify)?
                .map(|r| r.get(0));
            let mine = theirs == Some(cp.last)
                && tx
                    .query_opt(
                        "SELECT 1 FROM ingest_commits WHERE source = $1 AND partition = $2 \
                         AND last = $3 AND writer = $4",
                        &[&source, &partition, &cp.last, &job.writer],
                    )
                    .await
                    .map_err(classify)?
                    .is_some();
            tx.rollback().await.map_err(classify)?;
            return Ok(Outcome::Fenced { theirs, ours: mine });
        }

        if !job.dead_letters.is_empty() {
            let cols: Vec<String> = DEAD_LETTER_COLUMNS
                .iter()
                .map(|c| EngineKind::Postgres.quote(c.name))
                .collect();
            let types: Vec<Type> = DEAD_LETTER_COLUMNS.iter().map(|c| pg_type(c.ty)).collect();
            copy_rows(
                &tx,
                &format!("COPY dead_letters ({}) FROM STDIN BINARY", cols.join(", ")),
                &types,
                job.dead_letters.iter().map(|d| values::dead_letter_row(d)),
            )
            .await?;
        }

        let merged = Self::write_calls(&tx, &job.records, merger).await?;

        let lost =
            serde_json::to_string(job.lost).map_err(|e| EngineError::permanent(e.to_string()))?;
        let accounting = job
            .accounting
            .map(|a| serde_json::to_string(&a))
            .transpose()
            .map_err(|e| EngineError::permanent(e.to_string()))?;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let merged_total = i64::try_from(job.merged_in_commit + merged).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO ingest_commits (source, partition, first, last, resume, calls, dead_letters, \
             merged, lost, accounting, writer, written_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())",
            &[
                &source,
                &partition,
                &job.first,
                &cp.last,
                &cp.resume,
                &count(job.records.len() + job.merged_in_commit as usize),
                &count(job.dead_letters.len()),
                &merged_total,
                &lost,
                &accounting,
                &job.writer,
            ],
        )
        .await
        .map_err(classify)?;

        if fault == Some(Fault::KillBeforeCommit) {
            // The server ends this session: the transaction never commits.
            let killed = tx
                .batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
                .await;
            return Err(match killed {
                Err(e) => classify(e),
                Ok(()) => EngineError::transient("session was to be terminated"),
            });
        }
        tx.commit().await.map_err(classify)?;
        Ok(Outcome::Stored { merged })
    }

    async fn load_quotas(
        &mut self,
        quotas: &[(String, rust_decimal::Decimal)],
    ) -> Result<(), EngineError> {
        let client = self.client()?;
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute("DELETE FROM subscription_quota", &[])
            .await
            .map_err(classify)?;
        for (sub, quota) in quotas {
            tx.execute(
                "INSERT INTO subscription_quota (subscription_id, cost_quota) VALUES ($1, $2)",
                &[sub, quota],
            )
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_states() {
        assert!(is_transient(Some("40P01"), false));
        assert!(is_transient(Some("08006"), false));
        assert!(is_transient(Some("57P01"), false));
        assert!(is_transient(None, false), "I/O errors have no SQLSTATE");
        assert!(is_transient(Some("23505"), true), "a closed connection");
        assert!(!is_transient(Some("22001"), false), "value too long");
        assert!(!is_transient(Some("28P01"), false), "bad password");
        assert!(!is_transient(Some("42P01"), false), "no such table");
    }
}
