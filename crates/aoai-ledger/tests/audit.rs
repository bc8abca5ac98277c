//! `audit` proves nothing was lost: it passes on a clean ingest with totals
//! that add up, and fails, naming what, when rows are removed behind its
//! back or a source range was never committed; expired ranges show as lost
//! before ingestion.

mod common;

use std::process::Command;

use chrono::Utc;
use common::{BIN, corpus, ledger};
use ledger_core::checkpoint::{Accounting, Checkpoint, Commit, SeqRange};
use ledger_lake::Lake;
use ledger_lake::audit::AuditScope;
use serde_json::Value;

fn audit_json(lake: &str) -> (bool, Value) {
    let out = Command::new(BIN)
        .args(["audit", "--lake", lake, "--format", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.success(), report)
}

#[test]
fn a_clean_ingest_passes_and_a_removal_behind_its_back_fails() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    ledger(&["ingest", "-q", "--lake", &lake, &corpus()]);
    let lines = std::fs::read_to_string(corpus()).unwrap().lines().count() as i64;

    let (ok, report) = audit_json(&lake);
    assert!(ok, "{report:#}");
    assert_eq!(report["passed"], true);
    let p = &report["partitions"][0];
    let a = &p["accounted"];
    let sum: i64 = ["inCalls", "pending", "deadLetters", "duplicates"]
        .iter()
        .map(|k| a[k].as_i64().unwrap())
        .sum();
    assert_eq!(
        (p["first"].as_i64(), p["last"].as_i64()),
        (Some(1), Some(lines))
    );
    assert_eq!(sum, lines, "every line accounted for once: {a}");
    assert!(a["deadLetters"].as_i64().unwrap() > 0 && a["duplicates"].as_i64().unwrap() > 0);
    for rows in report["rows"].as_array().unwrap() {
        assert_eq!(rows["expected"], rows["found"], "{rows}");
    }

    // Another engine deletes a data file of the calls table (a Delta
    // remove, as Spark's DELETE writes it).
    let log = dir.path().join("lake/calls/_delta_log");
    let versions = std::fs::read_dir(&log)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(log.join("00000000000000000000.json"))
            .unwrap()
            .lines()
            .find(|l| l.contains("\"add\""))
            .unwrap(),
    )
    .unwrap();
    let path = first["add"]["path"].as_str().unwrap();
    let remove = serde_json::json!({"remove": {"path": path, "deletionTimestamp": Utc::now().timestamp_millis(), "dataChange": true}});
    let info = serde_json::json!({"commitInfo": {"timestamp": Utc::now().timestamp_millis(), "operation": "DELETE"}});
    std::fs::write(
        log.join(format!("{versions:020}.json")),
        format!("{remove}\n{info}\n"),
    )
    .unwrap();

    let (ok, report) = audit_json(&lake);
    assert!(!ok, "the audit must fail");
    let problems: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains(path) && p.contains("did not make")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("calls: holds")),
        "{problems:?}"
    );
}

fn commit(first: i64, last: i64, lost: Vec<SeqRange>, events: u64) -> Commit {
    Commit {
        checkpoint: Checkpoint {
            source: "hub".into(),
            partition: "3".into(),
            last,
            resume: last + 1,
            pending: vec![],
            clock: None,
        },
        first,
        records: vec![],
        dead_letters: vec![],
        lost,
        accounting: Some(Accounting {
            duplicates: events,
            from: first,
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn a_skipped_range_fails_and_an_expired_one_is_lost_before_ingestion() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().display().to_string();
    let mut lake = Lake::open(&url).unwrap();
    // 1..10 read; 11..20 expired from the hub before the ledger got there
    // (the source says so); 21..30 read.
    lake.write(&commit(1, 10, vec![], 10)).await.unwrap();
    let expired = SeqRange {
        first: 11,
        last: 20,
    };
    lake.write(&commit(11, 30, vec![expired], 10))
        .await
        .unwrap();
    let report = lake.audit(&AuditScope::default()).await.unwrap();
    assert!(report.passed(), "{:?}", report.problems());
    assert_eq!(report.partitions[0].lost_before_ingestion, vec![expired]);
    assert_eq!(report.partitions[0].accounted.events(), 20);

    // 31..40 never committed: the next commit starts at 41.
    lake.write(&commit(41, 50, vec![], 10)).await.unwrap();
    let report = lake.audit(&AuditScope::default()).await.unwrap();
    assert!(!report.passed());
    assert_eq!(
        report.partitions[0].gaps,
        vec![SeqRange {
            first: 31,
            last: 40
        }]
    );
    let problems = report.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("hub partition 3: events 31..40 were never committed")),
        "{problems:?}"
    );
    // A commit whose counts fall short of its range is named too.
    lake.write(&commit(51, 60, vec![], 7)).await.unwrap();
    let report = lake.audit(&AuditScope::default()).await.unwrap();
    assert!(
        report
            .problems()
            .iter()
            .any(|p| p.contains("commit of 51..60 accounts for 7 of its 10 events"))
    );
}
