//! SQL Server and Azure SQL Database through `tiberius` (feature `mssql`).
//!
//! A commit is one transaction (`SET XACT_ABORT ON`): the progress row's
//! conditional update (the fence), the commit's call keys bulk-loaded into
//! a session temp table, the stored rows of those keys read `WITH (UPDLOCK,
//! HOLDLOCK)` (key-range locks: no other writer can insert one of them
//! until the transaction ends), the merged rows bulk-loaded (`bulk_insert`)
//! into a staging temp table and `MERGE`d into `calls`, the dead letters
//! bulk-loaded, the commit row. TLS through native-tls; SQL authentication
//! or a Microsoft Entra access token.
//!
//! The SQL and the row encoding are plain functions, unit-tested here and
//! parsed with `sqlparser`'s MsSql dialect in `tests/mssql_sql.rs`; the
//! live suite (`tests/mssql_live.rs`) runs when `AOAI_LEDGER_TEST_MSSQL`
//! names a server.

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use ledger_core::columns::{CALL_COLUMNS, DEAD_LETTER_COLUMNS, LogicalType};
use ledger_core::{CallRecord, Checkpoint};
use rust_decimal::Decimal;
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime2, Time};
use tiberius::{AuthMethod, Client, ColumnData, Config, EncryptionLevel, TokenRow};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::config::{Auth, Target, Tls};
use crate::ddl::{self, EngineKind, SHORT_TEXT_CHARS};
use crate::engine::{Engine, EngineError, Job, Merger, Outcome};
use crate::values::{self, Value};

/// Azure SQL Database's documented transient errors (connection and
/// throttling: 40613 database unavailable, 40501 service busy, 40197
/// failover, 49918–49920 not enough resources, 4060 cannot open database,
/// 4221 login timeout during failover, 10928/10929 resource limits,
/// 10053/10054/10060 transport errors, 233 and 64 connection dropped),
/// and 1205, a deadlock victim.
pub const TRANSIENT_CODES: &[u32] = &[
    40613, 40501, 40197, 49918, 49919, 49920, 4060, 4221, 10928, 10929, 10053, 10054, 10060, 233,
    64, 1205,
];

/// Whether a server error code is worth a retry.
pub fn is_transient_code(code: u32) -> bool {
    TRANSIENT_CODES.contains(&code)
}

fn classify(e: tiberius::error::Error) -> EngineError {
    use tiberius::error::Error as E;
    let transient = match &e {
        E::Server(t) => is_transient_code(t.code()),
        // A dropped connection, a reset, a timeout.
        E::Io { .. } => true,
        _ => false,
    };
    EngineError {
        transient,
        message: ledger_core::redact::scrub_text(&e.to_string()),
    }
}

/// The staging tables of a session: the commit's keys, and its rows.
pub fn staging_ddl() -> String {
    let e = EngineKind::MsSql;
    // Temp tables take tempdb's collation unless told: the database's,
    // or joining them with `calls` fails on a server whose differ.
    let collate = |ty: LogicalType| match ty {
        LogicalType::Text | LogicalType::LongText | LogicalType::Json => {
            " COLLATE DATABASE_DEFAULT"
        }
        _ => "",
    };
    let cols: Vec<String> = CALL_COLUMNS
        .iter()
        .map(|c| {
            format!(
                "{} {}{} NULL",
                e.quote(c.name),
                ddl::sql_type(e, c.ty),
                collate(c.ty)
            )
        })
        .collect();
    format!(
        "IF OBJECT_ID('tempdb..#ledger_keys') IS NULL CREATE TABLE #ledger_keys ([dialect] nvarchar({n}) COLLATE DATABASE_DEFAULT NOT NULL, [request_id] nvarchar({n}) COLLATE DATABASE_DEFAULT NOT NULL);\n\
         IF OBJECT_ID('tempdb..#ledger_stage_calls') IS NULL CREATE TABLE #ledger_stage_calls ({});",
        cols.join(", "),
        n = SHORT_TEXT_CHARS,
    )
}

/// The stored rows of the staged keys, locked to the end of the
/// transaction (range locks for the keys not stored yet).
pub fn select_locked_sql() -> String {
    format!(
        "SELECT {} FROM [calls] c WITH (UPDLOCK, HOLDLOCK) JOIN #ledger_keys k \
         ON c.[dialect] = k.[dialect] AND c.[request_id] = k.[request_id]",
        ddl::column_list(EngineKind::MsSql, "c.")
    )
}

/// The upsert of the staged rows into `calls`.
pub fn merge_sql() -> String {
    let e = EngineKind::MsSql;
    let set: Vec<String> = CALL_COLUMNS
        .iter()
        .filter(|c| c.name != "dialect" && c.name != "request_id")
        .map(|c| format!("t.{0} = s.{0}", e.quote(c.name)))
        .collect();
    format!(
        "MERGE [calls] WITH (HOLDLOCK) AS t USING #ledger_stage_calls AS s \
         ON t.[dialect] = s.[dialect] AND t.[request_id] = s.[request_id] \
         WHEN MATCHED THEN UPDATE SET {} \
         WHEN NOT MATCHED BY TARGET THEN INSERT ({}) VALUES ({});",
        set.join(", "),
        ddl::column_list(e, ""),
        ddl::column_list(e, "s."),
    )
}

/// The fence when the writer knew no progress: the row is created unless
/// another writer did (0 rows: fenced).
pub const FENCE_INSERT: &str = "INSERT INTO [ingest_progress] ([source], [partition], [last], [resume], [pending], [clock], [updated_at]) \
     SELECT @P1, @P2, @P3, @P4, @P5, @P6, SYSUTCDATETIME() \
     WHERE NOT EXISTS (SELECT 1 FROM [ingest_progress] WITH (UPDLOCK, HOLDLOCK) WHERE [source] = @P1 AND [partition] = @P2);";

/// The fence: the progress row moves from what this writer knew (0 rows:
/// fenced).
pub const FENCE_UPDATE: &str = "UPDATE [ingest_progress] SET [last] = @P3, [resume] = @P4, [pending] = @P5, [clock] = @P6, \
     [updated_at] = SYSUTCDATETIME() WHERE [source] = @P1 AND [partition] = @P2 AND [last] = @P7;";

pub const COMMIT_ROW: &str = "INSERT INTO [ingest_commits] ([source], [partition], [first], [last], [resume], [calls], \
     [dead_letters], [merged], [lost], [accounting], [writer], [written_at]) \
     VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10, @P11, SYSUTCDATETIME());";

/// Days since 0001-01-01, as `date` and `datetime2` count them.
fn days(d: NaiveDate) -> u32 {
    u32::try_from(d.num_days_from_ce() - 1).unwrap_or(0)
}

/// A cell as the bulk-load encoding of a column of type `ty`.
pub fn column_data<'a>(ty: LogicalType, v: &'a Value<'a>) -> ColumnData<'a> {
    use LogicalType as T;
    match (ty, v) {
        (_, Value::Text(s)) => ColumnData::String(Some(Cow::Borrowed(s.as_ref()))),
        (_, Value::Int32(i)) => ColumnData::I32(Some(*i)),
        (_, Value::Int64(i)) => ColumnData::I64(Some(*i)),
        (_, Value::Float64(f)) => ColumnData::F64(Some(*f)),
        (_, Value::Bool(b)) => ColumnData::Bit(Some(*b)),
        (_, Value::Timestamp(t)) => ColumnData::DateTime2(Some(datetime2(*t))),
        (T::Decimal { scale, .. }, Value::Decimal(d)) => {
            ColumnData::Numeric(Some(numeric(*d, u32::from(scale))))
        }
        (_, Value::Decimal(d)) => ColumnData::Numeric(Some(numeric(*d, d.scale()))),
        (_, Value::Binary(b)) => ColumnData::Binary(Some(Cow::Borrowed(b))),
        (T::Text | T::LongText | T::Json, Value::Null) => ColumnData::String(None),
        (T::Int32, Value::Null) => ColumnData::I32(None),
        (T::Int64, Value::Null) => ColumnData::I64(None),
        (T::Float64, Value::Null) => ColumnData::F64(None),
        (T::Bool, Value::Null) => ColumnData::Bit(None),
        (T::Timestamp, Value::Null) => ColumnData::DateTime2(None),
        (T::Decimal { .. }, Value::Null) => ColumnData::Numeric(None),
        (T::Binary, Value::Null) => ColumnData::Binary(None),
    }
}

/// A time as `datetime2(6)`: microseconds since midnight.
fn datetime2(t: DateTime<Utc>) -> DateTime2 {
    let n = t.naive_utc();
    let micros = u64::from(n.num_seconds_from_midnight()) * 1_000_000
        + u64::from(n.nanosecond() / 1_000).min(999_999);
    DateTime2::new(Date::new(days(n.date())), Time::new(micros, 6))
}

fn numeric(mut d: Decimal, scale: u32) -> Numeric {
    d.rescale(scale);
    Numeric::new_with_scale(d.mantissa(), d.scale() as u8)
}

/// A stored cell back as a value.
pub fn value_of(data: &ColumnData<'_>) -> Value<'static> {
    match data {
        ColumnData::String(Some(s)) => Value::Text(Cow::Owned(s.to_string())),
        ColumnData::I32(Some(i)) => Value::Int32(*i),
        ColumnData::I64(Some(i)) => Value::Int64(*i),
        ColumnData::I16(Some(i)) => Value::Int32(i32::from(*i)),
        ColumnData::U8(Some(i)) => Value::Int32(i32::from(*i)),
        ColumnData::F64(Some(f)) => Value::Float64(*f),
        ColumnData::F32(Some(f)) => Value::Float64(f64::from(*f)),
        ColumnData::Bit(Some(b)) => Value::Bool(*b),
        ColumnData::Numeric(Some(n)) => Value::Decimal(Decimal::from_i128_with_scale(
            n.value(),
            u32::from(n.scale()),
        )),
        ColumnData::DateTime2(Some(dt)) => {
            let date = NaiveDate::from_num_days_from_ce_opt(dt.date().days() as i32 + 1);
            let scale = u32::from(dt.time().scale());
            let nanos = u128::from(dt.time().increments()) * 10u128.pow(9u32.saturating_sub(scale));
            let secs = (nanos / 1_000_000_000) as u32;
            let sub = (nanos % 1_000_000_000) as u32;
            let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, sub);
            match (date, time) {
                (Some(d), Some(t)) => Value::Timestamp(d.and_time(t).and_utc()),
                _ => Value::Null,
            }
        }
        _ => Value::Null,
    }
}

/// A row for `bulk_insert` from a row of cells.
pub fn token_row<'a>(types: &[LogicalType], cells: &'a [Value<'a>]) -> TokenRow<'a> {
    let mut row = TokenRow::with_capacity(cells.len());
    for (ty, v) in types.iter().zip(cells) {
        row.push(column_data(*ty, v));
    }
    row
}

type Conn = Client<Compat<TcpStream>>;

/// How the engine gets an Entra access token (for `auth=entra`).
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self) -> Result<String, EngineError>;
}

/// A token from `AOAI_LEDGER_DB_TOKEN` (for example
/// `az account get-access-token --resource https://database.windows.net/`).
pub struct EnvToken;

#[async_trait]
impl TokenSource for EnvToken {
    async fn token(&self) -> Result<String, EngineError> {
        std::env::var("AOAI_LEDGER_DB_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                EngineError::permanent(
                    "auth=entra: set AOAI_LEDGER_DB_TOKEN to an access token for https://database.windows.net/.default",
                )
            })
    }
}

pub struct MsSqlEngine {
    target: Target,
    display: String,
    client: Option<Conn>,
    tokens: Box<dyn TokenSource>,
}

impl MsSqlEngine {
    pub fn new(target: Target) -> MsSqlEngine {
        MsSqlEngine {
            display: target.display(),
            target,
            client: None,
            tokens: Box::new(EnvToken),
        }
    }

    pub fn with_tokens(mut self, tokens: Box<dyn TokenSource>) -> MsSqlEngine {
        self.tokens = tokens;
        self
    }

    fn client(&mut self) -> Result<&mut Conn, EngineError> {
        self.client
            .as_mut()
            .ok_or_else(|| EngineError::transient("not connected"))
    }

    async fn config(&self) -> Result<Config, EngineError> {
        let t = &self.target;
        let mut c = Config::new();
        c.host(&t.host);
        c.port(t.port);
        c.database(&t.database);
        c.application_name(&t.application_name);
        c.encryption(match t.tls {
            Tls::Disable => EncryptionLevel::Off,
            Tls::Prefer | Tls::Require => EncryptionLevel::Required,
        });
        if t.trust_server_certificate {
            c.trust_cert();
        }
        match t.auth {
            Auth::Password => c.authentication(AuthMethod::sql_server(
                t.user.as_deref().unwrap_or("sa"),
                t.password.as_deref().unwrap_or(""),
            )),
            Auth::Entra => c.authentication(AuthMethod::aad_token(self.tokens.token().await?)),
        }
        Ok(c)
    }
}

async fn execute(
    c: &mut Conn,
    sql: &str,
    params: &[&dyn tiberius::ToSql],
) -> Result<u64, EngineError> {
    Ok(c.execute(sql, params).await.map_err(classify)?.total())
}

async fn batch(c: &mut Conn, sql: &str) -> Result<(), EngineError> {
    c.simple_query(sql)
        .await
        .map_err(classify)?
        .into_results()
        .await
        .map_err(classify)?;
    Ok(())
}

async fn bulk<'a>(
    c: &mut Conn,
    table: &str,
    columns: &[&str],
    types: &[LogicalType],
    rows: &'a [Vec<Value<'a>>],
) -> Result<(), EngineError> {
    let mut req = c
        .bulk_insert_columns(table, columns)
        .await
        .map_err(classify)?;
    for cells in rows {
        req.send(token_row(types, cells)).await.map_err(classify)?;
    }
    req.finalize().await.map_err(classify)?;
    Ok(())
}

impl MsSqlEngine {
    async fn write_in_transaction(
        &mut self,
        job: &Job<'_>,
        merger: &dyn Merger,
    ) -> Result<Outcome, EngineError> {
        let c = self.client()?;
        let cp = job.checkpoint;
        let pending = serde_json::to_string(&cp.pending)
            .map_err(|e| EngineError::permanent(e.to_string()))?;
        let moved = match job.ours {
            None => {
                execute(
                    c,
                    FENCE_INSERT,
                    &[
                        &cp.source,
                        &cp.partition,
                        &cp.last,
                        &cp.resume,
                        &pending,
                        &cp.clock,
                    ],
                )
                .await?
            }
            Some(ours) => {
                execute(
                    c,
                    FENCE_UPDATE,
                    &[
                        &cp.source,
                        &cp.partition,
                        &cp.last,
                        &cp.resume,
                        &pending,
                        &cp.clock,
                        &ours,
                    ],
                )
                .await?
            }
        };
        if moved == 0 {
            let rows = c
                .query(
                    "SELECT [last] FROM [ingest_progress] WHERE [source] = @P1 AND [partition] = @P2",
                    &[&cp.source, &cp.partition],
                )
                .await
                .map_err(classify)?
                .into_first_result()
                .await
                .map_err(classify)?;
            let theirs = rows.first().and_then(|r| r.get::<i64, _>(0));
            let mine = if theirs == Some(cp.last) {
                let rows = c
                    .query(
                        "SELECT 1 FROM [ingest_commits] WHERE [source] = @P1 AND [partition] = @P2 AND [last] = @P3 AND [writer] = @P4",
                        &[&cp.source, &cp.partition, &cp.last, &job.writer],
                    )
                    .await
                    .map_err(classify)?
                    .into_first_result()
                    .await
                    .map_err(classify)?;
                !rows.is_empty()
            } else {
                false
            };
            batch(c, "ROLLBACK TRANSACTION").await?;
            return Ok(Outcome::Fenced { theirs, ours: mine });
        }

        if !job.dead_letters.is_empty() {
            let names: Vec<&str> = DEAD_LETTER_COLUMNS.iter().map(|c| c.name).collect();
            let types: Vec<LogicalType> = DEAD_LETTER_COLUMNS.iter().map(|c| c.ty).collect();
            let rows: Vec<Vec<Value>> = job
                .dead_letters
                .iter()
                .map(|d| values::dead_letter_row(d))
                .collect();
            bulk(c, "dead_letters", &names, &types, &rows).await?;
        }

        let mut merged = 0;
        if !job.records.is_empty() {
            batch(
                c,
                "TRUNCATE TABLE #ledger_keys; TRUNCATE TABLE #ledger_stage_calls;",
            )
            .await?;
            let keys: Vec<Vec<Value>> = job
                .records
                .iter()
                .map(|r| {
                    vec![
                        Value::Text(Cow::Borrowed(r.dialect.as_str())),
                        Value::Text(Cow::Borrowed(r.request_id.as_str())),
                    ]
                })
                .collect();
            bulk(
                c,
                "#ledger_keys",
                &["dialect", "request_id"],
                &[LogicalType::Text, LogicalType::Text],
                &keys,
            )
            .await?;
            let stored_rows = c
                .query(select_locked_sql(), &[])
                .await
                .map_err(classify)?
                .into_first_result()
                .await
                .map_err(classify)?;
            let mut stored: Vec<CallRecord> = Vec::with_capacity(stored_rows.len());
            for row in &stored_rows {
                let mut cells = Vec::with_capacity(CALL_COLUMNS.len());
                for i in 0..CALL_COLUMNS.len() {
                    cells.push(value_of(row.get_column_data(i).map_err(classify)?));
                }
                stored.push(
                    values::call_from_cells(cells)
                        .map_err(|e| EngineError::permanent(format!("reading calls: {e}")))?,
                );
            }
            let (rows, m) = merger.rows(stored, &job.records);
            merged = m;
            let names: Vec<&str> = CALL_COLUMNS.iter().map(|c| c.name).collect();
            let types: Vec<LogicalType> = CALL_COLUMNS.iter().map(|c| c.ty).collect();
            let cells: Vec<Vec<Value>> = rows.iter().map(|r| values::call_row(&r.record)).collect();
            bulk(c, "#ledger_stage_calls", &names, &types, &cells).await?;
            batch(c, &merge_sql()).await?;
        }

        let lost =
            serde_json::to_string(job.lost).map_err(|e| EngineError::permanent(e.to_string()))?;
        let accounting = job
            .accounting
            .map(|a| serde_json::to_string(&a))
            .transpose()
            .map_err(|e| EngineError::permanent(e.to_string()))?;
        let n = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        execute(
            c,
            COMMIT_ROW,
            &[
                &cp.source,
                &cp.partition,
                &job.first,
                &cp.last,
                &cp.resume,
                &n(job.records.len() as u64 + job.merged_in_commit),
                &n(job.dead_letters.len() as u64),
                &n(job.merged_in_commit + merged),
                &lost,
                &accounting,
                &job.writer,
            ],
        )
        .await?;
        batch(c, "COMMIT TRANSACTION").await?;
        Ok(Outcome::Stored { merged })
    }
}

#[async_trait]
impl Engine for MsSqlEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::MsSql
    }

    fn describe(&self) -> &str {
        &self.display
    }

    async fn connect(&mut self) -> Result<(), EngineError> {
        if self.client.is_some() {
            return Ok(());
        }
        let mut config = self.config().await?;
        // Azure SQL's gateway may redirect to the database's node.
        for _ in 0..3 {
            let tcp = TcpStream::connect(config.get_addr()).await.map_err(|e| {
                EngineError::transient(format!("connecting to {}: {e}", self.display))
            })?;
            tcp.set_nodelay(true)
                .map_err(|e| EngineError::transient(e.to_string()))?;
            match Client::connect(config.clone(), tcp.compat_write()).await {
                Ok(mut client) => {
                    batch(&mut client, &staging_ddl()).await?;
                    self.client = Some(client);
                    return Ok(());
                }
                Err(tiberius::error::Error::Routing { host, port }) => {
                    config.host(&host);
                    config.port(port);
                }
                Err(e) => return Err(classify(e)),
            }
        }
        Err(EngineError::transient("redirected too many times"))
    }

    fn reset(&mut self) {
        self.client = None;
    }

    async fn applied_migrations(&mut self) -> Result<Vec<(u32, String)>, EngineError> {
        let c = self.client()?;
        batch(
            c,
            "IF OBJECT_ID(N'schema_migrations', N'U') IS NULL CREATE TABLE [schema_migrations] \
             ([version] int NOT NULL PRIMARY KEY, [name] nvarchar(200) NOT NULL, [checksum] nvarchar(64) NOT NULL, \
             [applied_at] datetime2(6) NOT NULL DEFAULT SYSUTCDATETIME());",
        )
        .await?;
        let rows = c
            .query(
                "SELECT [version], [checksum] FROM [schema_migrations] ORDER BY [version]",
                &[],
            )
            .await
            .map_err(classify)?
            .into_first_result()
            .await
            .map_err(classify)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get::<i32, _>(0)?.unsigned_abs(),
                    r.get::<&str, _>(1)?.to_string(),
                ))
            })
            .collect())
    }

    async fn apply_migration(
        &mut self,
        version: u32,
        name: &str,
        checksum: &str,
        sql: &str,
    ) -> Result<(), EngineError> {
        let c = self.client()?;
        let v = i32::try_from(version).map_err(|_| EngineError::permanent("version too large"))?;
        batch(c, "SET XACT_ABORT ON; BEGIN TRANSACTION").await?;
        let result = async {
            let done = c
                .query(
                    "SELECT 1 FROM [schema_migrations] WITH (UPDLOCK, HOLDLOCK) WHERE [version] = @P1",
                    &[&v],
                )
                .await
                .map_err(classify)?
                .into_first_result()
                .await
                .map_err(classify)?;
            if done.is_empty() {
                for b in crate::migrate::batches(sql) {
                    batch(c, &b).await?;
                }
                execute(
                    c,
                    "INSERT INTO [schema_migrations] ([version], [name], [checksum]) VALUES (@P1, @P2, @P3)",
                    &[&v, &name, &checksum],
                )
                .await?;
            }
            batch(c, "COMMIT TRANSACTION").await
        }
        .await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, EngineError> {
        let c = self.client()?;
        let rows = c
            .query(
                "SELECT [last], [resume], [pending], [clock] FROM [ingest_progress] WHERE [source] = @P1 AND [partition] = @P2",
                &[&source, &partition],
            )
            .await
            .map_err(classify)?
            .into_first_result()
            .await
            .map_err(classify)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let bad =
            |what: &str| EngineError::permanent(format!("ingest_progress.{what} is unreadable"));
        let clock = match row.get_column_data(3).map_err(classify)? {
            d @ ColumnData::DateTime2(Some(_)) => match value_of(d) {
                Value::Timestamp(t) => Some(t),
                _ => None,
            },
            _ => None,
        };
        Ok(Some(Checkpoint {
            source: source.to_string(),
            partition: partition.to_string(),
            last: row.get::<i64, _>(0).ok_or_else(|| bad("last"))?,
            resume: row.get::<i64, _>(1).ok_or_else(|| bad("resume"))?,
            pending: serde_json::from_str(row.get::<&str, _>(2).ok_or_else(|| bad("pending"))?)
                .map_err(|_| bad("pending"))?,
            clock,
        }))
    }

    async fn write(&mut self, job: &Job<'_>, merger: &dyn Merger) -> Result<Outcome, EngineError> {
        batch(self.client()?, "SET XACT_ABORT ON; BEGIN TRANSACTION").await?;
        let result = self.write_in_transaction(job, merger).await;
        if result.is_err() {
            // XACT_ABORT rolled the transaction back, or the connection is
            // gone: start afresh either way.
            if let Ok(c) = self.client() {
                let _ = batch(c, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION").await;
            }
            self.reset();
        }
        result
    }

    async fn load_quotas(&mut self, quotas: &[(String, Decimal)]) -> Result<(), EngineError> {
        let c = self.client()?;
        batch(
            c,
            "SET XACT_ABORT ON; BEGIN TRANSACTION; DELETE FROM [subscription_quota];",
        )
        .await?;
        for (sub, quota) in quotas {
            let q = numeric(*quota, u32::from(ledger_core::columns::COST_SCALE));
            execute(
                c,
                "INSERT INTO [subscription_quota] ([subscription_id], [cost_quota]) VALUES (@P1, @P2)",
                &[sub, &q],
            )
            .await?;
        }
        batch(c, "COMMIT TRANSACTION").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_are_azure_sqls() {
        for code in [
            40613, 40501, 40197, 49918, 49919, 49920, 4060, 4221, 10928, 10929, 10053, 10054,
            10060, 233, 64, 1205,
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in [2627, 8152, 207, 18456] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn cells_encode_as_their_column_types() {
        let t: DateTime<Utc> = "2026-11-24T10:00:00.123456Z".parse().unwrap();
        let ts = Value::Timestamp(t);
        let ColumnData::DateTime2(Some(dt)) = column_data(LogicalType::Timestamp, &ts) else {
            panic!()
        };
        assert_eq!(
            (dt.time().increments(), dt.time().scale()),
            (36_000_123_456, 6)
        );
        assert_eq!(dt.date().days(), 739_943, "days since 0001-01-01");
        assert_eq!(value_of(&ColumnData::DateTime2(Some(dt))), ts);

        let cost = Value::Decimal(Decimal::new(15, 7));
        let ty = ddl::cost_type();
        let ColumnData::Numeric(Some(n)) = column_data(ty, &cost) else {
            panic!()
        };
        assert_eq!((n.value(), n.scale()), (15_000, 10));
        assert_eq!(value_of(&ColumnData::Numeric(Some(n))), cost);

        assert!(matches!(
            column_data(LogicalType::Bool, &Value::Null),
            ColumnData::Bit(None)
        ));
        assert!(matches!(
            column_data(LogicalType::Json, &Value::Null),
            ColumnData::String(None)
        ));
        let s = Value::Text("caf\u{e9} \u{1F600}".into());
        let ColumnData::String(Some(text)) = column_data(LogicalType::Text, &s) else {
            panic!()
        };
        // Every Rust string is valid UTF-16: no unpaired surrogate reaches the server.
        assert!(String::from_utf16(&text.encode_utf16().collect::<Vec<_>>()).is_ok());
    }

    #[test]
    fn a_record_encodes_as_a_bulk_row_of_every_column() {
        let r = CallRecord {
            request_id: "r1".into(),
            cost: Some(Decimal::new(1, 3)),
            ..Default::default()
        };
        let cells = values::call_row(&r);
        let types: Vec<LogicalType> = CALL_COLUMNS.iter().map(|c| c.ty).collect();
        let row = token_row(&types, &cells);
        assert_eq!(row.len(), CALL_COLUMNS.len());
        let back: Vec<Value> = row.iter().map(value_of).collect();
        assert_eq!(values::call_from_cells(back).unwrap(), r);
    }

    #[test]
    fn the_merge_names_every_column() {
        let sql = merge_sql();
        for c in CALL_COLUMNS {
            assert!(sql.contains(&format!("s.[{}]", c.name)), "{}", c.name);
        }
        assert!(sql.contains("WITH (HOLDLOCK)"));
    }
}
