//! DataFusion over the lake: the `calls` and `dead_letters` tables, the Log
//! Analytics compatibility views, JSON UDFs, and the named reports of
//! `queries/`. It reads only what a commit made visible.
//!
//! ```rust
//! # async fn example() -> Result<(), ledger_query::QueryError> {
//! use ledger_lake::Lake;
//! use ledger_query::{LedgerQuery, QueryOptions};
//!
//! let lake = Lake::open_existing("./ledger-lake")?;
//! let q = LedgerQuery::open(&lake, &QueryOptions::default()).await?;
//! let by_model = q.sql("SELECT model, sum(total_tokens) FROM calls GROUP BY model").await?;
//! let r1 = q.report("token-usage-by-ip-model").await?;
//! # let _ = (by_model, r1);
//! # Ok(()) }
//! ```

pub mod clock;
mod json_udf;
pub mod reports;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{CsvReadOptions, DataFrame, SessionConfig, SessionContext};
use ledger_lake::{Lake, LakeError, Table};

pub use reports::{REPORTS, Report};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("query: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("unknown report `{0}` (run `aoai-ledger reports` for the list)")]
    UnknownReport(String),
}

/// An optional `[since, until)` time range on `request_time`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl TimeRange {
    fn predicate(&self, column: &str) -> String {
        let mut p = Vec::new();
        if let Some(s) = self.since {
            p.push(format!(
                "{column} >= TIMESTAMP '{}'",
                s.format("%Y-%m-%dT%H:%M:%S%.6fZ")
            ));
        }
        if let Some(u) = self.until {
            p.push(format!(
                "{column} < TIMESTAMP '{}'",
                u.format("%Y-%m-%dT%H:%M:%S%.6fZ")
            ));
        }
        if p.is_empty() {
            "TRUE".to_string()
        } else {
            p.join(" AND ")
        }
    }
}

/// Options for opening a query session.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub range: TimeRange,
    /// CSV with header `subscription_id,cost_quota` for the cost report.
    pub quotas: Option<std::path::PathBuf>,
}

/// A DataFusion session over one lake.
pub struct LedgerQuery {
    ctx: SessionContext,
}

const VIEWS: &[(&str, &str)] = &[
    (
        "ApiManagementGatewayLogs",
        include_str!("../../../queries/views/ApiManagementGatewayLogs.sql"),
    ),
    (
        "ApiManagementGatewayLlmLog",
        include_str!("../../../queries/views/ApiManagementGatewayLlmLog.sql"),
    ),
];

impl LedgerQuery {
    pub async fn open(lake: &Lake, opts: &QueryOptions) -> Result<LedgerQuery, QueryError> {
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        let loc = lake.location();
        ctx.register_object_store(&loc.store_url, loc.store.clone());
        for f in json_udf::udfs() {
            ctx.register_udf(f);
        }

        register_table(
            &ctx,
            lake,
            Table::Calls,
            "calls_all",
            ledger_lake::schema::calls_schema(),
        )
        .await?;
        register_table(
            &ctx,
            lake,
            Table::DeadLetters,
            "dead_letters_all",
            ledger_lake::schema::dead_letters_schema(),
        )
        .await?;
        ctx.sql(&format!(
            "CREATE VIEW calls AS SELECT * FROM calls_all WHERE {}",
            opts.range.predicate("request_time")
        ))
        .await?;
        ctx.sql(&format!(
            "CREATE VIEW dead_letters AS SELECT * FROM dead_letters_all WHERE {}",
            opts.range.predicate("received_time")
        ))
        .await?;
        match &opts.quotas {
            Some(path) => {
                let schema = Schema::new(vec![
                    Field::new("subscription_id", DataType::Utf8, false),
                    Field::new("cost_quota", DataType::Float64, true),
                ]);
                let p = path.to_string_lossy().to_string();
                ctx.register_csv(
                    "quotas",
                    &p,
                    CsvReadOptions::new().has_header(true).schema(&schema),
                )
                .await?;
            }
            None => {
                let schema: SchemaRef = Arc::new(Schema::new(vec![
                    Field::new("subscription_id", DataType::Utf8, false),
                    Field::new("cost_quota", DataType::Float64, true),
                ]));
                ctx.register_table("quotas", Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
            }
        }
        for (name, body) in VIEWS {
            ctx.sql(&format!("CREATE VIEW \"{name}\" AS {body}"))
                .await?;
        }
        Ok(LedgerQuery { ctx })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one SQL statement.
    pub async fn sql(&self, query: &str) -> Result<DataFrame, QueryError> {
        Ok(self.ctx.sql(query).await?)
    }

    /// Runs a named report.
    pub async fn report(&self, name: &str) -> Result<DataFrame, QueryError> {
        let r = reports::find(name).ok_or_else(|| QueryError::UnknownReport(name.to_string()))?;
        Ok(self.ctx.sql(r.sql).await?)
    }
}

/// Registers a table over the committed files of the lake, or an empty one.
async fn register_table(
    ctx: &SessionContext,
    lake: &Lake,
    table: Table,
    name: &str,
    schema: SchemaRef,
) -> Result<(), QueryError> {
    let files = lake.committed_files(table).await?;
    if files.is_empty() {
        ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        return Ok(());
    }
    let base = lake
        .location()
        .store_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let urls = files
        .iter()
        .map(|p| ListingTableUrl::parse(format!("{base}/{p}")))
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}
