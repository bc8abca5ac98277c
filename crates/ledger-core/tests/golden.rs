//! Golden records: every dialect fixture in `tests/fixtures/dialects/`
//! (and the sample capture) must produce exactly the records stored beside
//! it in `<name>.records.json`. Set `UPDATE_GOLDEN=1` to rewrite them after
//! a deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use ledger_core::ledger::{Ledger, LedgerConfig};
use ledger_core::{Position, RawEvent};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn records_of(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ledger = Ledger::new(LedgerConfig::default());
    let received = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        ledger.process(
            RawEvent {
                position: Position {
                    partition: "golden".into(),
                    sequence: i as i64 + 1,
                },
                offset: None,
                enqueued_time: None,
                body: line.as_bytes().to_vec(),
            },
            received,
        );
    }
    let commit = ledger.finish().pop().unwrap();
    serde_json::json!({
        "records": commit.records.iter().map(|o| serde_json::json!({"owner": o.owner, "record": o.item})).collect::<Vec<_>>(),
        "dead_letters": commit.dead_letters.iter().map(|o| serde_json::json!({
            "owner": o.owner,
            "reason": o.item.reason,
            "raw": String::from_utf8_lossy(&o.item.raw),
        })).collect::<Vec<_>>(),
    })
}

fn check(input: &Path) {
    let golden = input.with_extension("records.json");
    let actual = records_of(input);
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(
            &golden,
            serde_json::to_string_pretty(&actual).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", golden.display())),
    )
    .unwrap();
    assert!(
        actual == expected,
        "{} differs from {}:\n{}",
        input.display(),
        golden.display(),
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

#[test]
fn every_dialect_fixture_gives_its_golden_records() {
    let mut n = 0;
    for e in std::fs::read_dir(fixtures().join("dialects")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            check(&p);
            n += 1;
        }
    }
    assert_eq!(n, 6, "one fixture per dialect");
}

#[test]
fn the_sample_capture_gives_its_golden_records() {
    check(&fixtures().join("sample-events.jsonl"));
}

/// The shared multi-dialect corpus (`scripts/gen-corpus`, see its README).
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_corpus_gives_its_golden_records() {
    let files = corpus_files();
    assert!(!files.is_empty(), "tests/fixtures/corpus has no .jsonl");
    for p in files {
        check(&p);
    }
}

/// JSON paths (`/records/3/record/url`) of every string holding `marker`.
fn paths_containing(v: &Value, marker: &str, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains(marker) => out.push(at),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                paths_containing(x, marker, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                paths_containing(x, marker, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_planted_secret_reaches_a_record_or_dead_letter_of_the_corpus() {
    for p in corpus_files() {
        let planted = std::fs::read_to_string(&p)
            .unwrap()
            .matches("SECRET-")
            .count();
        assert!(planted > 0, "{} plants no secrets", p.display());
        let mut leaks = Vec::new();
        paths_containing(&records_of(&p), "SECRET-", String::new(), &mut leaks);
        assert!(
            leaks.is_empty(),
            "{}: planted secrets reached {} places: {leaks:#?}",
            p.display(),
            leaks.len()
        );
    }
}
