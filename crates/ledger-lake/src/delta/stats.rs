//! Per-file statistics in the `add.stats` JSON the protocol defines, for
//! the timestamp columns that queries prune on.

use arrow::array::{Array, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The stats are written to the millisecond, as Spark writes them: the
/// minimum rounded down and the maximum rounded up, so that pruning on
/// them never skips a file that holds a matching row.
const STATS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// `numRecords`, and `minValues`, `maxValues`, `nullCount` of `columns`
/// (timestamp columns of `batch`; others are skipped).
pub fn file_stats(batch: &RecordBatch, columns: &[&str]) -> String {
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for name in columns {
        let Some(col) = batch.column_by_name(name) else {
            continue;
        };
        let Some(ts) = col.as_any().downcast_ref::<TimestampMicrosecondArray>() else {
            continue;
        };
        nulls.insert(name.to_string(), json!(ts.null_count()));
        let lo = arrow::compute::min(ts).map(|v| v.div_euclid(1000) * 1000);
        let hi = arrow::compute::max(ts).map(|v| (v + 999).div_euclid(1000) * 1000);
        if let (Some(lo), Some(hi)) = (lo.and_then(text), hi.and_then(text)) {
            min.insert(name.to_string(), Value::String(lo));
            max.insert(name.to_string(), Value::String(hi));
        }
    }
    json!({
        "numRecords": batch.num_rows(),
        "minValues": min,
        "maxValues": max,
        "nullCount": nulls,
    })
    .to_string()
}

fn text(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros).map(|t| t.format(STATS_FORMAT).to_string())
}

/// Reads back a timestamp of `stats` (`minValues` or `maxValues`) in µs.
pub fn stat_micros(stats: &Value, kind: &str, column: &str) -> Option<i64> {
    let s = stats.get(kind)?.get(column)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
}
