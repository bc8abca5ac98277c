//! A KQL (Kusto Query Language) subset planned straight onto DataFusion
//! logical plans: the lexer and parser give a syntax tree where every node
//! has its line and column, and the planner builds DataFrames (never SQL
//! text) against any `SessionContext`, so the tables and views registered
//! there (the lake's Log Analytics compatibility views) are the tables of
//! the query. Kusto's rules where they differ from SQL (string literals
//! against numbers, empty strings for null, whole-term `has`, default
//! column names, `dynamic` values) are kept; anything outside the subset
//! is an error naming the operator or function and its position.
//!
//! ```rust
//! # async fn example() -> Result<(), ledger_kql::KqlError> {
//! use datafusion::prelude::SessionContext;
//!
//! let ctx = SessionContext::new();
//! let planned = ledger_kql::plan(&ctx, "print x = 1 + 1", chrono::Utc::now()).await?;
//! let batches = planned.frame.collect().await?;
//! # let _ = batches;
//! # Ok(()) }
//! ```

pub mod ast;
pub mod chart;
mod error;
mod lexer;
mod parser;
mod planner;
pub mod reports;
mod scalar;
pub mod typed;
pub mod udf;
pub mod value;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{DataFrame, SessionContext};

pub use error::{KqlError, Pos};
pub use parser::parse;
pub use planner::Render;

/// A planned query: its frame and the chart it asked for, if any.
pub struct Planned {
    pub frame: DataFrame,
    pub render: Option<Render>,
}

/// The tables a query reads (names not bound by its `let`s): a query
/// naming none runs without a lake.
pub fn tables(query: &str) -> Result<Vec<String>, KqlError> {
    Ok(planner::table_names(&parse(query)?))
}

/// Plans `query` against the tables of `ctx`; `now` is what `now()` and
/// `ago()` read.
pub async fn plan(
    ctx: &SessionContext,
    query: &str,
    now: DateTime<Utc>,
) -> Result<Planned, KqlError> {
    let q = parse(query)?;
    let mut frames = HashMap::new();
    for name in planner::table_names(&q) {
        // Names that are not tables stay unresolved; the planner reports
        // them with their position.
        // Bare: Kusto names are case-sensitive, never SQL-normalised.
        let table = datafusion::common::TableReference::bare(name.as_str());
        if let Ok(df) = ctx.table(table).await {
            frames.insert(name, df);
        }
    }
    let mut p = planner::Planner::new(ctx, now, frames);
    let frame = p.query(&q)?;
    Ok(Planned {
        frame,
        render: p.render,
    })
}

/// The frame with Kusto's display types: `dynamic` values as text (strings
/// bare, the rest compact JSON) and timespans as `[d.]hh:mm:ss[.fffffff]`.
pub fn for_display(frame: DataFrame) -> Result<DataFrame, KqlError> {
    let needs = frame
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::LargeUtf8 | DataType::Duration(_)));
    if !needs {
        return Ok(frame);
    }
    let exprs: Vec<_> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let c = scalar::column(f.name());
            match f.data_type() {
                DataType::LargeUtf8 | DataType::Duration(_) => {
                    udf::call(&udf::DISPLAY, vec![c]).alias(f.name())
                }
                _ => c,
            }
        })
        .collect();
    Ok(frame.select(exprs)?)
}
