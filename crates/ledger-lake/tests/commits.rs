//! The lake's commit protocol on a real directory: progress, skipping what
//! is stored, and cleaning up after a writer that died mid-commit.

use chrono::{TimeZone, Utc};
use ledger_core::checkpoint::{Checkpoint, Commit, Owned};
use ledger_core::{CallRecord, DeadLetter, Operation, UsageSource};
use ledger_lake::{Lake, Table};

fn record(id: &str) -> CallRecord {
    CallRecord {
        request_id: id.into(),
        eh_partition: "p".into(),
        eh_sequence_first: 1,
        eh_sequence_last: 2,
        request_time: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).single(),
        operation: Operation::Chat,
        status_code: Some(200),
        prompt_tokens: Some(1),
        completion_tokens: Some(1),
        total_tokens: Some(2),
        usage_source: UsageSource::Reported,
        cost: Some(rust_decimal::Decimal::new(12345, 8)),
        currency: Some("USD".into()),
        complete: true,
        ..Default::default()
    }
}

fn commit(first: i64, last: i64, resume: i64, owners: &[i64]) -> Commit {
    Commit {
        checkpoint: checkpoint(last, resume),
        first,
        records: owners
            .iter()
            .map(|o| Owned {
                owner: *o,
                item: record(&format!("r{o}")),
            })
            .collect(),
        dead_letters: vec![Owned {
            owner: first,
            item: DeadLetter {
                eh_partition: "file-abc".into(),
                eh_sequence: first,
                enqueued_time: None,
                received_time: Utc::now(),
                reason: "bad".into(),
                raw: b"{bad".to_vec(),
            },
        }],
        lost: vec![],
    }
}

fn checkpoint(last: i64, resume: i64) -> Checkpoint {
    Checkpoint {
        source: "file-abc".into(),
        partition: "file-abc".into(),
        last,
        resume,
        pending: vec!["0123456789abcdef".into()],
        clock: None,
    }
}

#[tokio::test]
async fn commits_record_progress_and_skip_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    assert_eq!(lake.progress("file-abc", "file-abc").await.unwrap(), None);
    let w = lake
        .write(&commit(1, 10, 8, &[3, 10]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.calls, w.dead_letters), (2, 1));

    // A new writer (a restart) sees the progress from the manifest.
    let mut lake = Lake::open(&url).unwrap();
    assert_eq!(
        lake.progress("file-abc", "file-abc").await.unwrap(),
        Some(checkpoint(10, 8))
    );
    // A replay of [8, 15]: records owned at or below 10 are not written again.
    let w = lake
        .write(&commit(8, 15, 16, &[10, 12]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.calls, 1);
    assert_eq!(
        w.dead_letters, 0,
        "the dead letter of line 8 was stored already"
    );
    assert!(
        lake.write(&commit(1, 15, 16, &[3]))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(lake.committed_files(Table::Calls).await.unwrap().len(), 2);
}

#[tokio::test]
async fn files_of_an_unfinished_commit_are_never_read_and_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    lake.write(&commit(1, 10, 11, &[5])).await.unwrap();
    // A writer that died after its data file and before its manifest.
    let orphan = dir.path().join("calls/date=2026-11-20").join(format!(
        "part-{}-{:020}-{:020}.parquet",
        ledger_lake::stream_dir("file-abc", "file-abc"),
        11,
        20
    ));
    std::fs::write(&orphan, b"half-written").unwrap();
    let listed = lake.committed_files(Table::Calls).await.unwrap();
    assert_eq!(listed.len(), 1, "orphans are not committed files");

    let mut restarted = Lake::open(&url).unwrap();
    restarted.progress("file-abc", "file-abc").await.unwrap();
    assert!(!orphan.exists(), "the orphan is deleted on restart");
}
