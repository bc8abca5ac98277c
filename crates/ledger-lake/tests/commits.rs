//! The lake's commits on a real directory: progress, skipping what is
//! stored, data files invisible until committed, checkpoints, schema
//! evolution and the old layout.

use chrono::{TimeZone, Utc};
use ledger_core::checkpoint::{Checkpoint, Commit, Owned};
use ledger_core::{CallRecord, DeadLetter, Operation, UsageSource};
use ledger_lake::delta::DeltaTable;
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
        accounting: None,
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
    assert_eq!(lake.snapshot(Table::Calls).await.unwrap().files.len(), 2);
}

#[tokio::test]
async fn files_of_an_unfinished_commit_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    lake.write(&commit(1, 10, 11, &[5])).await.unwrap();
    // A writer that died after its data file and before its commit.
    let orphan = dir
        .path()
        .join("calls/date=2026-11-20/part-orphan.zstd.parquet");
    std::fs::write(&orphan, b"half-written").unwrap();
    let mut restarted = Lake::open(&url).unwrap();
    let snap = restarted.snapshot(Table::Calls).await.unwrap();
    assert_eq!(snap.files.len(), 1, "orphans are not in the log");
    assert_eq!(
        restarted.progress("file-abc", "file-abc").await.unwrap(),
        Some(checkpoint(10, 11))
    );
}

#[tokio::test]
async fn checkpoints_keep_opening_cheap_and_rebuild_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    for n in 0..25 {
        let first = n * 10 + 1;
        lake.write(&commit(first, first + 9, first + 10, &[first]))
            .await
            .unwrap()
            .unwrap();
    }
    let log = dir.path().join("calls/_delta_log");
    assert!(log.join("00000000000000000020.checkpoint.parquet").exists());
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log.join("_last_checkpoint")).unwrap()).unwrap();
    assert_eq!(last["version"], 20);
    // A new reader starts from the checkpoint and replays four commits.
    let mut reader = Lake::open(&url).unwrap();
    let snap = reader.snapshot(Table::Calls).await.unwrap();
    assert_eq!((snap.version, snap.files.len()), (24, 25));
    assert_eq!(
        reader.progress("file-abc", "file-abc").await.unwrap(),
        Some(checkpoint(250, 251))
    );
    // Time travel: version 3 holds four files.
    let delta = reader.delta_table(Table::Calls).clone();
    assert_eq!(delta.snapshot_at(3).await.unwrap().files.len(), 4);
    let history = reader.history(Table::Calls).await.unwrap();
    assert_eq!(history.len(), 25);
    assert_eq!(history[24].ledger.as_ref().map(|l| l.last), Some(250));
}

#[tokio::test]
async fn a_column_added_later_is_added_to_the_table_on_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    lake.write(&commit(1, 10, 11, &[5])).await.unwrap();
    // Rewrite the table's schema as an older version of the ledger wrote it:
    // without `warnings`.
    let delta = lake.delta_table(Table::Calls).clone();
    let mut snap = delta.snapshot().await.unwrap();
    let mut meta = snap.metadata.clone().unwrap();
    let schema = snap.schema().unwrap().unwrap();
    let older: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != "warnings")
        .map(|f| f.as_ref().clone())
        .collect();
    meta.schema_string =
        ledger_lake::delta::schema_string(&arrow::datatypes::Schema::new(older)).unwrap();
    assert!(
        delta
            .try_commit(snap.version + 1, &[meta.into()])
            .await
            .unwrap()
    );
    delta.update(&mut snap).await.unwrap();
    assert!(
        snap.schema()
            .unwrap()
            .unwrap()
            .field_with_name("warnings")
            .is_err()
    );

    let mut lake = Lake::open(&url).unwrap();
    lake.write(&commit(11, 20, 21, &[15])).await.unwrap();
    let snap = lake.snapshot(Table::Calls).await.unwrap();
    let schema = snap.schema().unwrap().unwrap();
    assert!(schema.field_with_name("warnings").unwrap().is_nullable());
    assert_eq!(schema.fields().last().unwrap().name(), "warnings");
}

#[tokio::test]
async fn a_lake_of_the_old_layout_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let commits = dir.path().join("_ledger/commits/p.abc");
    std::fs::create_dir_all(&commits).unwrap();
    std::fs::write(commits.join("00000000000000000010.json"), b"{}").unwrap();
    let mut lake = Lake::open(&dir.path().display().to_string()).unwrap();
    let err = lake.progress("file-abc", "file-abc").await.unwrap_err();
    assert!(
        err.to_string().contains("ingest the capture again"),
        "{err}"
    );
}

#[tokio::test]
async fn a_commit_lost_to_another_writer_is_retried_at_the_next_version() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    lake.write(&commit(1, 10, 11, &[5])).await.unwrap();
    // Another stream takes the next version of the calls table.
    let delta = DeltaTable::new(
        lake.location().store.clone(),
        lake.location().child("calls"),
    );
    let txn = ledger_lake::delta::Txn {
        app_id: "another writer".into(),
        version: 1,
        last_updated: None,
    };
    assert!(delta.try_commit(1, &[txn.into()]).await.unwrap());
    lake.write(&commit(11, 20, 21, &[15]))
        .await
        .unwrap()
        .unwrap();
    let snap = lake.snapshot(Table::Calls).await.unwrap();
    assert_eq!((snap.version, snap.files.len()), (2, 2));
}

#[tokio::test]
async fn two_writers_racing_on_one_range_commit_it_once_and_the_loser_leaves_nothing() {
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().display().to_string();
        let (mut a, mut b) = (Lake::open(&url).unwrap(), Lake::open(&url).unwrap());
        if round % 2 == 1 {
            // Half the rounds race on an existing table, half on its creation.
            a.write(&commit(1, 10, 11, &[5])).await.unwrap();
        }
        assert!(b.progress("file-abc", "file-abc").await.is_ok());
        assert!(a.progress("file-abc", "file-abc").await.is_ok());
        let (first, last) = if round % 2 == 1 { (11, 20) } else { (1, 10) };
        let c = commit(first, last, last + 1, &[first + 2]);
        // Both prepare and write their files, then race for the same version.
        let (ra, rb) = tokio::join!(a.write(&c), b.write(&c));
        let fenced = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Err(ledger_lake::LakeError::Fenced { .. })))
            .count();
        let won = [&ra, &rb]
            .iter()
            .filter(|r| matches!(r, Ok(Some(_))))
            .count();
        assert_eq!((won, fenced), (1, 1), "round {round}: {ra:?} {rb:?}");

        let mut reader = Lake::open(&url).unwrap();
        for table in [Table::Calls, Table::DeadLetters] {
            let snap = reader.snapshot(table).await.unwrap();
            assert_eq!(snap.files.len(), 1 + round % 2, "round {round}");
            let data: Vec<_> = walk(&dir.path().join(table.dir()))
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .filter(|p| !p.to_string_lossy().contains("_delta_log"))
                .collect();
            assert_eq!(data.len(), snap.files.len(), "the loser's files are gone");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A call's halves committed at once from two partitions by two writers:
/// whichever commits second sees the other's partial row (it re-plans when
/// the race shows it one) and merges, so the call is one complete row.
#[tokio::test]
async fn halves_racing_from_two_partitions_end_as_one_row() {
    use ledger_core::Role;
    use ledger_core::assemble::partial_warning;
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().display().to_string();
        let (mut a, mut b) = (Lake::open(&url).unwrap(), Lake::open(&url).unwrap());
        let half = |partition: &str, role: Role| {
            let mut r = record("split");
            r.eh_partition = partition.into();
            r.complete = false;
            r.warnings = vec![partial_warning([role].into_iter())];
            if role == Role::Request {
                r.status_code = None;
                r.prompt_text = Some("[]".into());
            } else {
                r.response_text = Some("hello".into());
            }
            let mut c = commit(1, 10, 11, &[]);
            c.checkpoint.partition = partition.into();
            c.records = vec![Owned { owner: 2, item: r }];
            c.dead_letters.clear();
            c
        };
        let (req, resp) = (half("p0", Role::Request), half("p1", Role::Response));
        assert!(a.progress("file-abc", "p0").await.is_ok());
        assert!(b.progress("file-abc", "p1").await.is_ok());
        let (ra, rb) = if round % 2 == 0 {
            tokio::join!(a.write(&req), b.write(&resp))
        } else {
            let (rb, ra) = tokio::join!(b.write(&resp), a.write(&req));
            (ra, rb)
        };
        let merged = ra.unwrap().unwrap().merged_calls + rb.unwrap().unwrap().merged_calls;
        assert_eq!(merged, 1, "round {round}");

        let mut reader = Lake::open(&url).unwrap();
        let snap = reader.snapshot(Table::Calls).await.unwrap();
        assert_eq!(
            snap.files.len(),
            1,
            "round {round}: the first half's file is replaced"
        );
        let add = snap.files.values().next().unwrap();
        let bytes = std::fs::read(dir.path().join("calls").join(&add.path)).unwrap();
        let rows: Vec<CallRecord> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|b| ledger_lake::schema::calls_from_batch(&b.unwrap()).unwrap())
            .collect();
        assert_eq!(rows.len(), 1, "round {round}");
        assert!(rows[0].complete);
        assert_eq!(rows[0].prompt_text.as_deref(), Some("[]"));
        assert_eq!(rows[0].response_text.as_deref(), Some("hello"));
    }
}
