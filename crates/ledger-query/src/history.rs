//! The lake's commit history as a table: what `aoai-ledger history` prints.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use ledger_lake::{HistoryEntry, Table};

/// One row per commit of `table`, oldest first: version, time, operation,
/// the ingest's source partition, range and counts, files added and
/// removed, and the rest of what the ledger recorded (JSON).
pub fn history_batch(table: Table, entries: &[HistoryEntry]) -> Result<RecordBatch, ArrowError> {
    let text = |f: &dyn Fn(&HistoryEntry) -> Option<String>| -> ArrayRef {
        Arc::new(entries.iter().map(f).collect::<StringArray>())
    };
    let int = |f: &dyn Fn(&HistoryEntry) -> Option<i64>| -> ArrayRef {
        Arc::new(entries.iter().map(f).collect::<Int64Array>())
    };
    let ledger = |e: &HistoryEntry| e.ledger.clone();
    let count = |n: u64| i64::try_from(n).ok();
    // Rows a commit removed: those of the files it removed, as their
    // adds recorded them.
    let mut rows_of: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut removed_rows = Vec::with_capacity(entries.len());
    for e in entries {
        removed_rows.push(
            e.removed
                .iter()
                .map(|p| rows_of.get(p.as_str()).copied().unwrap_or(0))
                .sum::<u64>(),
        );
        for (path, rows) in &e.added {
            rows_of.insert(path, *rows);
        }
    }
    let rows_removed: ArrayRef = Arc::new(
        removed_rows
            .iter()
            .map(|n| count(*n))
            .collect::<Int64Array>(),
    );
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        (
            "table",
            DataType::Utf8,
            text(&|_| Some(table.dir().to_string())),
        ),
        ("version", DataType::Int64, int(&|e| Some(e.version))),
        (
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Arc::new(
                TimestampMillisecondArray::from(
                    entries.iter().map(|e| e.timestamp).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ),
        ("operation", DataType::Utf8, text(&|e| operation(e))),
        (
            "source",
            DataType::Utf8,
            text(&|e| ledger(e).map(|l| l.source)),
        ),
        (
            "partition",
            DataType::Utf8,
            text(&|e| ledger(e).map(|l| l.partition)),
        ),
        (
            "first",
            DataType::Int64,
            int(&|e| ledger(e).map(|l| l.first)),
        ),
        ("last", DataType::Int64, int(&|e| ledger(e).map(|l| l.last))),
        (
            "calls",
            DataType::Int64,
            int(&|e| ledger(e).and_then(|l| count(l.calls))),
        ),
        (
            "dead_letters",
            DataType::Int64,
            int(&|e| ledger(e).and_then(|l| count(l.dead_letters))),
        ),
        (
            "merged",
            DataType::Int64,
            int(&|e| ledger(e).and_then(|l| count(l.merged))),
        ),
        (
            "rows_added",
            DataType::Int64,
            int(&|e| count(e.added.iter().map(|a| a.1).sum())),
        ),
        ("rows_removed", DataType::Int64, rows_removed),
        (
            "files_added",
            DataType::Int64,
            int(&|e| count(e.files_added)),
        ),
        (
            "files_removed",
            DataType::Int64,
            int(&|e| count(e.files_removed)),
        ),
        (
            "details",
            DataType::Utf8,
            text(&|e| e.details.as_ref().map(|d| d.to_string())),
        ),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, ty, _)| Field::new(*name, ty.clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|c| c.2).collect())
}

/// The ledger's own name for what a commit did (ingest, compact, …),
/// else the Delta operation another engine recorded.
fn operation(e: &HistoryEntry) -> Option<String> {
    let ours = e
        .details
        .as_ref()
        .and_then(|d| d.get("operation"))
        .and_then(|o| o.as_str())
        .map(str::to_string);
    ours.or_else(|| e.operation.clone())
}

/// One row per source partition of an audit: its range, how its events
/// were accounted for, lost ranges, gaps, totals and whether it passed.
pub fn audit_batch(report: &ledger_lake::audit::AuditReport) -> Result<RecordBatch, ArrowError> {
    use ledger_lake::audit::PartitionAudit;
    let ps = &report.partitions;
    let text = |f: &dyn Fn(&PartitionAudit) -> String| -> ArrayRef {
        Arc::new(ps.iter().map(|p| Some(f(p))).collect::<StringArray>())
    };
    let int = |f: &dyn Fn(&PartitionAudit) -> u64| -> ArrayRef {
        Arc::new(
            ps.iter()
                .map(|p| i64::try_from(f(p)).ok())
                .collect::<Int64Array>(),
        )
    };
    let ranges = |rs: &[ledger_core::checkpoint::SeqRange]| {
        rs.iter()
            .map(|r| format!("{}..{}", r.first, r.last))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("source", text(&|p| p.source.clone())),
        ("partition", text(&|p| p.partition.clone())),
        (
            "first",
            Arc::new(ps.iter().map(|p| Some(p.first)).collect::<Int64Array>()),
        ),
        (
            "last",
            Arc::new(ps.iter().map(|p| Some(p.last)).collect::<Int64Array>()),
        ),
        ("commits", int(&|p| p.commits)),
        ("events", int(&|p| p.accounted.events())),
        ("in_calls", int(&|p| p.accounted.in_calls)),
        ("pending", int(&|p| p.accounted.pending)),
        ("dead_letter_events", int(&|p| p.accounted.dead_letters)),
        ("duplicates", int(&|p| p.accounted.duplicates)),
        (
            "lost_before_ingestion",
            text(&|p| ranges(&p.lost_before_ingestion)),
        ),
        ("gaps", text(&|p| ranges(&p.gaps))),
        ("calls", int(&|p| p.calls)),
        ("dead_letters", int(&|p| p.dead_letters)),
        ("merged", int(&|p| p.merged)),
        (
            "accounted",
            text(&|p| {
                if p.passed() {
                    "yes".into()
                } else {
                    "NO".into()
                }
            }),
        ),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|c| c.1).collect())
}
