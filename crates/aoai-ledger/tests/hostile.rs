//! Hostile ingest (issue 7, acceptance): the shared corpus with 10% of its
//! events mutated by `scripts/gen-corpus --hostile` (absurd numbers and
//! indexes, duplicate keys, wrong types, cut lines, invalid UTF-8, deep
//! nesting, more planted secrets) and one 48 MB line, through the real
//! `aoai-ledger ingest`. It must exit 0, and no planted secret may appear
//! in any record, dead letter or log line.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const GEN_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/gen-corpus");

/// The hostile capture's one huge event, in MB: past the per-event limit.
const BIG_LINE_MB: u64 = 48;

fn ledger(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args(args)
        .env_remove("AOAI_LEDGER_LAKE")
        .env("AOAI_LEDGER_LOG", "debug")
        .env("AOAI_LEDGER_LOG_FORMAT", "json")
        .output()
        .expect("run aoai-ledger")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = ledger(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "aoai-ledger {args:?} failed: {stderr}"
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn generate(dir: &Path) -> std::path::PathBuf {
    let capture = dir.join("hostile.jsonl");
    let out = Command::new("python3")
        .arg(GEN_CORPUS)
        .args([
            "--seed",
            "1",
            "--calls",
            "500",
            "--hostile",
            "--big-line-mb",
        ])
        .arg(BIG_LINE_MB.to_string())
        .arg("--out")
        .arg(&capture)
        .output()
        .expect("run scripts/gen-corpus (python3)");
    assert!(
        out.status.success(),
        "gen-corpus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    capture
}

fn rows(jsonl: &str) -> Vec<Value> {
    jsonl
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect()
}

#[test]
fn a_hostile_capture_is_ingested_and_leaks_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = generate(dir.path());
    let raw = std::fs::read(&capture).expect("capture");
    // Every planted secret carries the marker; the mutations plant their own.
    let marker = "SECRET";
    assert!(
        raw.windows(8).any(|w| w == b"SECRET-H"),
        "the hostile mode plants secrets"
    );
    let lines = raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    let lake = dir.path().join("lake").display().to_string();
    let capture = capture.display().to_string();

    let (summary, mut logs) = ok(&["ingest", &capture, "--lake", &lake, "--quiet"]);
    assert!(summary.contains(&format!("events: {lines} ")), "{summary}");

    let (calls, l1) = ok(&["export", "calls", "--lake", &lake, "--format", "jsonl"]);
    let (dead, l2) = ok(&["export", "dead-letters", "--lake", &lake]);
    logs += &l1;
    logs += &l2;
    let (calls, dead) = (rows(&calls), rows(&dead));
    assert!(calls.len() > 400, "most calls survive: {}", calls.len());
    assert!(
        dead.len() > 20,
        "mutated events are dead-lettered: {}",
        dead.len()
    );

    // The huge event: dead-lettered undecoded, a bounded prefix kept with
    // its length and SHA-256.
    let big = dead
        .iter()
        .find(|d| d["reason"].as_str().is_some_and(|r| r.contains("sha256")))
        .expect("the huge event's dead letter");
    let reason = big["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("per-event limit"), "{reason}");
    let kept = big["raw_text"].as_str().map_or(0, str::len);
    assert!(
        kept <= ledger_core::limits::DEAD_LETTER_RAW_PREFIX + 64,
        "kept {kept} bytes"
    );

    let mut everything = String::new();
    for v in calls.iter().chain(&dead) {
        everything += &v.to_string();
    }
    for (what, text) in [
        ("records and dead letters", &everything),
        ("logs", &logs),
        ("summary", &summary),
    ] {
        if let Some(at) = text.find(marker) {
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            let to = (at + 100).min(text.len());
            let to = (to..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            panic!("a planted secret reached the {what}: …{}…", &text[from..to]);
        }
    }
}
