//! The lake table skips files before opening them: by the `date`
//! partition and by the per-file `request_time` range in the Delta log.

use chrono::{Duration, TimeZone, Utc};
use datafusion::prelude::{col, lit};
use ledger_core::checkpoint::{Checkpoint, Commit, Owned};
use ledger_core::{CallRecord, Operation};
use ledger_lake::{Lake, Table};
use ledger_query::{LakeTable, LedgerQuery, QueryOptions, TimeRange};

fn commit(last: i64, day: u32) -> Commit {
    let t = Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap();
    Commit {
        accounting: None,
        checkpoint: Checkpoint {
            source: "s".into(),
            partition: "p".into(),
            last,
            resume: last + 1,
            pending: vec![],
            clock: None,
        },
        first: last,
        records: (0..3)
            .map(|i| Owned {
                owner: last,
                item: CallRecord {
                    request_id: format!("r{last}-{i}"),
                    request_time: Some(t + Duration::minutes(i)),
                    operation: Operation::Chat,
                    complete: true,
                    ..Default::default()
                },
            })
            .collect(),
        dead_letters: vec![],
        lost: vec![],
    }
}

#[tokio::test]
async fn a_time_range_reads_only_the_files_that_can_match() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    for (last, day) in [(1, 10), (2, 11), (3, 12)] {
        lake.write(&commit(last, day)).await.unwrap();
    }
    let snap = lake.snapshot(Table::Calls).await.unwrap();
    let table = LakeTable::new(&lake, Table::Calls, &snap).unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    let state = ctx.state();
    let at = |d, h| {
        lit(datafusion::common::ScalarValue::TimestampMicrosecond(
            Some(
                Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0)
                    .unwrap()
                    .timestamp_micros(),
            ),
            Some("UTC".into()),
        ))
    };
    assert_eq!(table.files_read(&state, &[]).unwrap(), 3);
    let day_11 = [
        col("request_time").gt_eq(at(11, 0)),
        col("request_time").lt(at(12, 0)),
    ];
    assert_eq!(table.files_read(&state, &day_11).unwrap(), 1);
    // Inside day 11, but after its calls (12:00–12:02): no file at all.
    let evening = [
        col("request_time").gt_eq(at(11, 18)),
        col("request_time").lt(at(12, 0)),
    ];
    assert_eq!(table.files_read(&state, &evening).unwrap(), 0);
    // 2026-11-11 is day 20768 of the epoch.
    let by_date = [col("date").eq(lit(datafusion::common::ScalarValue::Date32(Some(20_768))))];
    assert_eq!(table.files_read(&state, &by_date).unwrap(), 1);

    // And the report range gives the same rows as the unpruned scan filtered.
    let range = TimeRange {
        since: Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0).single(),
        until: Utc.with_ymd_and_hms(2026, 11, 12, 0, 0, 0).single(),
    };
    let q = LedgerQuery::open(
        &mut lake,
        &QueryOptions {
            range,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let batches = q
        .sql("SELECT count(*) AS n FROM calls")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 3);
}
