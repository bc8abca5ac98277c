//! DataFusion over the lake: the `calls` and `dead_letters` tables, the Log
//! Analytics compatibility views, JSON UDFs, and the named reports of
//! `queries/`. It reads only what a commit made visible.
//!
//! ```rust
//! # async fn example() -> Result<(), ledger_query::QueryError> {
//! use ledger_lake::Lake;
//! use ledger_query::{LedgerQuery, QueryOptions};
//!
//! let mut lake = Lake::open_existing("./ledger-lake")?;
//! let q = LedgerQuery::open(&mut lake, &QueryOptions::default()).await?;
//! let by_model = q.sql("SELECT model, sum(total_tokens) FROM calls GROUP BY model").await?;
//! let r1 = q.report("token-usage-by-ip-model").await?;
//! # let _ = (by_model, r1);
//! # Ok(()) }
//! ```

pub mod clock;
pub mod history;
mod json_udf;
mod pricing;
pub mod provider;
pub mod reports;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::utils::conjunction;
use datafusion::prelude::{CsvReadOptions, DataFrame, SessionConfig, SessionContext};
use datafusion::prelude::{Expr, col, lit};
use ledger_core::filter::{CallFilter, Condition, Match};
use ledger_lake::{AsOf, Lake, LakeError, Table};

pub use provider::LakeTable;
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
    /// The range as a predicate on `column`, or None when unbounded.
    pub fn predicate(&self, column: &str) -> Option<Expr> {
        let at = |t: DateTime<Utc>| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(t.timestamp_micros()),
                Some("UTC".into()),
            ))
        };
        let since = self.since.map(|s| col(column).gt_eq(at(s)));
        let until = self.until.map(|u| col(column).lt(at(u)));
        conjunction(since.into_iter().chain(until))
    }
}

/// Options for opening a query session.
/// A call filter as a predicate over `calls`; None keeps every call.
pub fn filter_predicate(filter: &CallFilter) -> Option<Expr> {
    let condition = |c: &Condition<'_>| {
        let one = |column: &str| match c.matching {
            Match::Exact(v) => col(column).eq(lit(v)),
            Match::Contains(v) => Expr::Like(datafusion::logical_expr::expr::Like::new(
                false,
                Box::new(col(column)),
                Box::new(lit(format!("%{}%", escape_like(v)))),
                Some('\\'),
                true,
            )),
        };
        c.columns.iter().map(|name| one(name)).reduce(Expr::or)
    };
    conjunction(filter.conditions().iter().filter_map(condition))
}

/// `text` as a literal inside a LIKE pattern (escape character `\`).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub range: TimeRange,
    /// CSV with header `subscription_id,cost_quota` for the cost report.
    pub quotas: Option<std::path::PathBuf>,
    /// Read the tables as they were then (time travel); None: the newest.
    pub as_of: Option<AsOf>,
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
    (
        "PRICING_CL",
        include_str!("../../../queries/views/PRICING_CL.sql"),
    ),
    (
        "SUBSCRIPTION_QUOTA_CL",
        include_str!("../../../queries/views/SUBSCRIPTION_QUOTA_CL.sql"),
    ),
];

impl LedgerQuery {
    pub async fn open(lake: &mut Lake, opts: &QueryOptions) -> Result<LedgerQuery, QueryError> {
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        let loc = lake.location();
        ctx.register_object_store(&loc.store_url, loc.store.clone());
        for f in json_udf::udfs() {
            ctx.register_udf(f);
        }
        ctx.register_udf(pricing::udf());

        for (table, all, view, time) in [
            (Table::Calls, "calls_all", "calls", "request_time"),
            (
                Table::DeadLetters,
                "dead_letters_all",
                "dead_letters",
                "received_time",
            ),
        ] {
            let snapshot = match opts.as_of {
                Some(as_of) => lake.snapshot_as_of(table, as_of).await?,
                None => lake.snapshot(table).await?,
            };
            ctx.register_table(all, Arc::new(LakeTable::new(lake, table, &snapshot)?))?;
            let mut frame = ctx.table(all).await?;
            if let Some(p) = opts.range.predicate(time) {
                frame = frame.filter(p)?;
            }
            ctx.register_table(view, frame.into_view())?;
        }
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
    /// The calls `filter` keeps, in time order: what `export calls` writes.
    pub async fn export_calls(&self, filter: &CallFilter) -> Result<DataFrame, QueryError> {
        let mut frame = self.ctx.table("calls").await?;
        if let Some(p) = filter_predicate(filter) {
            frame = frame.filter(p)?;
        }
        Ok(frame.sort(vec![
            col("request_time").sort(true, false),
            col("request_id").sort(true, false),
        ])?)
    }

    pub async fn report(&self, name: &str) -> Result<DataFrame, QueryError> {
        let r = reports::find(name).ok_or_else(|| QueryError::UnknownReport(name.to_string()))?;
        Ok(self.ctx.sql(r.sql).await?)
    }
}
