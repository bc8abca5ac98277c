//! End-to-end tests: the real `aoai-ledger` binary over real files, a local
//! lake, and Azurite (started by `scripts/test`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/sample-events.jsonl"
);
const EXPECTED_R1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/sample-expected-r1.json"
);
const DIALECTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/dialects");

fn ledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args(args)
        .env_remove("AOAI_LEDGER_LAKE")
        .output()
        .expect("run aoai-ledger")
}

fn ok(args: &[&str]) -> String {
    let out = ledger(args);
    assert!(
        out.status.success(),
        "aoai-ledger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn lake_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake").display().to_string();
    (dir, lake)
}

/// Rows of a `--format json` output, nulls made explicit as absent keys.
fn json_rows(text: &str) -> Vec<serde_json::Map<String, Value>> {
    let v: Value = serde_json::from_str(text.trim()).expect("json output");
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| r.as_object().expect("object").clone())
        .collect()
}

fn r1_rows(text: &str) -> Vec<(Option<String>, String, i64, i64, i64, f64)> {
    json_rows(text)
        .iter()
        .map(|r| {
            let num = |k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
            (
                r.get("ip")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                r.get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                num("sum_prompttokens") as i64,
                num("sum_completiontokens") as i64,
                num("sum_totaltokens") as i64,
                (num("avg_totaltokens") * 1000.0).round() / 1000.0,
            )
        })
        .collect()
}

fn sorted<T: PartialOrd>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v
}

/// Report R1 over a lake, rows sorted.
fn r1_of(lake: &str) -> Vec<(Option<String>, String, i64, i64, i64, f64)> {
    let out = ok(&[
        "report",
        "token-usage-by-ip-model",
        "--lake",
        lake,
        "--format",
        "json",
    ]);
    sorted(r1_rows(&out))
}

fn expected_r1() -> Vec<(Option<String>, String, i64, i64, i64, f64)> {
    let text = std::fs::read_to_string(EXPECTED_R1).expect("expected R1 file");
    sorted(r1_rows(&text))
}

/// Every file under a directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).expect("read file"));
            }
        }
    }
    out
}

#[test]
fn sample_r1_equals_hand_computed_values_and_counts_streamed_calls() {
    let (_d, lake) = lake_dir();
    let summary = ok(&["ingest", SAMPLE, "--lake", &lake]);
    assert!(summary.contains("dead letters: 1"), "{summary}");
    assert_eq!(r1_of(&lake), expected_r1());
    // The streamed call is in the lake, rebuilt, with reported usage.
    let streamed = ok(&[
        "sql",
        "SELECT count(*) AS n FROM calls WHERE is_stream AND usage_source = 'reported' AND response_text <> ''",
        "--lake",
        &lake,
        "--format",
        "csv",
    ]);
    let n: i64 = streamed
        .lines()
        .nth(1)
        .expect("row")
        .trim()
        .parse()
        .expect("count");
    assert!(n >= 1, "no streamed call with reported usage: {streamed}");
}

#[test]
fn reingesting_a_file_changes_nothing_in_the_lake() {
    let (_d, lake) = lake_dir();
    ok(&["ingest", SAMPLE, "--lake", &lake]);
    let before = snapshot(Path::new(&lake));
    let again = ok(&["ingest", SAMPLE, "--lake", &lake]);
    assert!(again.contains("calls written: 0"), "{again}");
    assert!(again.contains("dead letters: 0"), "{again}");
    // The same bytes on stdin are the same source.
    let mut child = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args(["ingest", "-", "--lake", &lake])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let bytes = std::fs::read(SAMPLE).expect("sample");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &bytes)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("calls written: 0"));
    assert_eq!(
        before,
        snapshot(Path::new(&lake)),
        "lake changed on re-ingest"
    );
}

#[test]
fn a_malformed_line_lands_in_dead_letters_with_its_bytes() {
    let (_d, lake) = lake_dir();
    ok(&["ingest", SAMPLE, "--lake", &lake]);
    let sample = std::fs::read_to_string(SAMPLE).expect("sample");
    let bad: Vec<&str> = sample
        .lines()
        .filter(|l| !l.trim().is_empty() && serde_json::from_str::<Value>(l).is_err())
        .collect();
    assert!(!bad.is_empty(), "the sample has a malformed line");
    let out = ok(&[
        "export",
        "dead-letters",
        "--lake",
        &lake,
        "--format",
        "json",
    ]);
    let rows = json_rows(&out);
    assert_eq!(rows.len(), bad.len());
    for line in bad {
        assert!(
            rows.iter()
                .any(|r| r.get("raw_text").and_then(Value::as_str) == Some(line)),
            "dead letter for {line} not found in {out}"
        );
    }
    assert!(rows.iter().all(|r| {
        r.get("reason")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }));
}

/// Secret values planted in the fixtures: none may reach the lake.
fn planted_secrets() -> Vec<String> {
    let mut inputs = vec![std::fs::read_to_string(SAMPLE).expect("sample")];
    for e in std::fs::read_dir(DIALECTS).expect("dialect fixtures") {
        inputs.push(std::fs::read_to_string(e.expect("entry").path()).expect("fixture"));
    }
    let all = inputs.join("\n");
    let mut secrets: Vec<String> = all
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| w.contains("SECRET"))
        .map(str::to_string)
        .collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

#[test]
fn no_secret_from_the_fixtures_reaches_the_lake() {
    let (_d, lake) = lake_dir();
    let mut args = vec!["ingest", SAMPLE];
    let files: Vec<String> = std::fs::read_dir(DIALECTS)
        .expect("dialects")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    args.extend(files.iter().map(String::as_str));
    args.extend(["--lake", lake.as_str()]);
    // Verbose logs too: no secret may reach a log line.
    let out = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args(&args)
        .env("AOAI_LEDGER_LOG", "debug")
        .env("AOAI_LEDGER_LOG_FORMAT", "json")
        .output()
        .expect("run");
    assert!(out.status.success());
    let logs = String::from_utf8_lossy(&out.stderr).to_string();
    let secrets = planted_secrets();
    assert!(
        !secrets.is_empty(),
        "fixtures plant secrets containing SECRET"
    );
    // Decoded content (Parquet pages are compressed, so read through the query layer)...
    let mut text = ok(&["export", "calls", "--lake", &lake, "--format", "jsonl"]);
    text += &ok(&[
        "export",
        "dead-letters",
        "--lake",
        &lake,
        "--format",
        "jsonl",
    ]);
    // ...and every file's raw bytes (manifests, metadata).
    for bytes in snapshot(Path::new(&lake)).values() {
        text += &String::from_utf8_lossy(bytes);
    }
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "secret {s} found in the lake");
        assert!(!logs.contains(s.as_str()), "secret {s} found in the logs");
    }
    assert!(
        !text.contains("SECRET"),
        "a planted SECRET value reached the lake"
    );
}

#[test]
fn every_dialect_fixture_rebuilds_complete_calls() {
    let (_d, lake) = lake_dir();
    for e in std::fs::read_dir(DIALECTS).expect("dialects") {
        let p = e.expect("entry").path().display().to_string();
        ok(&["ingest", &p, "--lake", &lake]);
    }
    let out = ok(&[
        "sql",
        "SELECT dialect, count(*) AS calls, sum(CASE WHEN complete THEN 1 ELSE 0 END) AS complete FROM calls GROUP BY dialect ORDER BY dialect",
        "--lake",
        &lake,
        "--format",
        "json",
    ]);
    let rows = json_rows(&out);
    let dialects: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.get("dialect").and_then(Value::as_str))
        .collect();
    assert_eq!(
        dialects,
        [
            "ai-gateway-2024",
            "azure-monitor",
            "chargeback",
            "enterprise-logging",
            "enterprise-logging-tf",
            "ledger/v1"
        ]
    );
    for r in &rows {
        assert_eq!(r.get("calls"), r.get("complete"), "partial calls in {r:?}");
    }
}

#[test]
fn every_named_report_runs() {
    let (_d, lake) = lake_dir();
    ok(&["ingest", SAMPLE, "--lake", &lake]);
    let list = ok(&["reports"]);
    let names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in [
        "token-usage-by-ip-model",
        "prompt-monitoring",
        "usage-by-subscription",
        "prompts-and-completions",
        "cost-by-subscription",
        "daily-usage",
        "top-callers",
        "latency-and-errors",
        "streaming-and-estimates",
    ] {
        assert!(names.contains(&name), "{name} not listed");
        for format in ["table", "csv", "json"] {
            ok(&[
                "report",
                name,
                "--lake",
                &lake,
                "--format",
                format,
                "--since",
                "2020-01-01",
            ]);
        }
    }
}

#[test]
fn operational_failures_exit_non_zero_with_a_clear_message() {
    let out = ledger(&[
        "ingest",
        SAMPLE,
        "--lake",
        "/proc/aoai-ledger-cannot-write-here",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not writable"));
    let out = ledger(&[
        "report",
        "token-usage-by-ip-model",
        "--lake",
        "/nonexistent/lake",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lake at"));
    let out = ledger(&["report", "no-such-report"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown report"));
    let out = ledger(&[
        "ingest",
        "/nonexistent/events.jsonl",
        "--lake",
        "/tmp/aoai-ledger-unused",
    ]);
    assert!(!out.status.success());
}

#[test]
fn a_lake_on_azurite_works_end_to_end() {
    let Ok(url) = std::env::var("AZURITE_BLOB_STORAGE_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "AZURITE_BLOB_STORAGE_URL is not set under CI: run the tests with scripts/test"
        );
        eprintln!("skipping: Azurite not running (use scripts/test)");
        return;
    };
    let container =
        std::env::var("AOAI_TEST_AZURITE_CONTAINER").unwrap_or_else(|_| "ledger-test".into());
    let prefix = format!("e2e-{}-{}", std::process::id(), chrono_free_nanos());
    let lake = format!("az://{container}/{prefix}");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
            .args(args)
            .env("AZURE_STORAGE_USE_EMULATOR", "true")
            .env("AZURITE_BLOB_STORAGE_URL", &url)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let first = run(&["ingest", SAMPLE, "--lake", &lake]);
    assert!(!first.contains("calls written: 0"), "{first}");
    let r1 = run(&[
        "report",
        "token-usage-by-ip-model",
        "--lake",
        &lake,
        "--format",
        "json",
    ]);
    assert_eq!(sorted(r1_rows(&r1)), expected_r1());
    let again = run(&["ingest", SAMPLE, "--lake", &lake]);
    assert!(again.contains("calls written: 0"), "{again}");
}

fn chrono_free_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[test]
fn exact_duplicate_deliveries_are_ignored() {
    let (dir, lake) = lake_dir();
    // Every event delivered twice, the second copies after all the first ones.
    let sample = std::fs::read_to_string(SAMPLE).expect("sample");
    let doubled = dir.path().join("doubled.jsonl");
    std::fs::write(&doubled, format!("{sample}\n{sample}")).expect("write");
    let summary = ok(&["ingest", doubled.to_str().expect("path"), "--lake", &lake]);
    assert!(summary.contains("partial calls: 0"), "{summary}");
    assert_eq!(r1_of(&lake), expected_r1());
    let ids = ok(&[
        "sql",
        "SELECT count(*) AS calls, count(DISTINCT request_id) AS ids FROM calls",
        "--lake",
        &lake,
        "--format",
        "csv",
    ]);
    let row = ids.lines().nth(1).expect("row");
    let (calls, distinct) = row.split_once(',').expect("two columns");
    assert_eq!(calls, distinct, "a call was written twice: {ids}");
}
