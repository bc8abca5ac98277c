//! Other engines read the lake: Python `deltalake` (delta-rs) on a local
//! lake and on Azurite, DuckDB's `delta` extension on a local lake. Each
//! must find the row counts and report R1's sums the ledger finds itself,
//! and none may see the files of a commit that never happened.
//!
//! `scripts/test` installs the pinned readers and exports
//! `AOAI_TEST_PY_DELTALAKE` / `AOAI_TEST_PY_DUCKDB` (their Python) and the
//! Azurite settings. Without them the test says so and passes, except under
//! `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aoai-ledger");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A setting the test needs; None (after saying so) when it may skip.
fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok_and(|c| c == "true") => {
            panic!("{var} is not set: run the tests through scripts/test")
        }
        _ => {
            eprintln!("skipped: {var} is not set (scripts/test sets it)");
            None
        }
    }
}

/// The shared corpus cut into twelve captures: twelve commits per table,
/// so readers meet a checkpoint (every tenth version) and the log after it.
fn captures(dir: &Path) -> Vec<String> {
    let corpus =
        std::fs::read_to_string(root().join("tests/fixtures/corpus/corpus.jsonl")).unwrap();
    let lines: Vec<&str> = corpus.lines().collect();
    lines
        .chunks(lines.len().div_ceil(12))
        .enumerate()
        .map(|(i, chunk)| {
            let p = dir.join(format!("part-{i:02}.jsonl"));
            std::fs::write(&p, chunk.join("\n") + "\n").unwrap();
            p.display().to_string()
        })
        .collect()
}

fn ledger(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aoai-ledger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What the ledger itself reports: counts and R1's (ip, model, sums) rows.
fn own_figures(lake: &str, envs: &[(&str, &str)]) -> Value {
    let json = |command: &str, what: &str| -> Value {
        let out = ledger(&[command, what, "--lake", lake, "--format", "json"], envs);
        serde_json::from_str(&out).unwrap()
    };
    let counts = json(
        "sql",
        "SELECT (SELECT count(*) FROM calls) AS calls, (SELECT count(*) FROM dead_letters) AS dead_letters",
    );
    let r1 = json("report", "token-usage-by-ip-model");
    let r1: Vec<Value> = r1
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!([
                r["ip"],
                r["model"],
                r["sum_prompttokens"],
                r["sum_completiontokens"],
                r["sum_totaltokens"]
            ])
        })
        .collect();
    serde_json::json!({
        "calls": counts[0]["calls"],
        "dead_letters": counts[0]["dead_letters"],
        "r1": r1,
    })
}

fn peer(python: &str, engine: &str, lake: &str) -> Value {
    let out = Command::new(python)
        .arg(root().join("tests/peers/read_lake.py"))
        .args([engine, lake])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{engine} could not read {lake}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

fn assert_same(engine: &str, own: &Value, theirs: &Value) {
    for key in ["calls", "dead_letters", "r1"] {
        assert_eq!(own[key], theirs[key], "{engine} disagrees on {key}");
    }
}

#[test]
fn deltalake_and_duckdb_read_a_local_lake_as_the_ledger_does() {
    let (Some(deltalake), Some(duckdb)) = (
        required("AOAI_TEST_PY_DELTALAKE"),
        required("AOAI_TEST_PY_DUCKDB"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let files = captures(dir.path());
    let mut args = vec!["ingest", "-q", "--lake", lake.as_str()];
    args.extend(files.iter().map(String::as_str));
    ledger(&args, &[]);
    assert!(
        Path::new(&lake)
            .join("calls/_delta_log/00000000000000000010.checkpoint.parquet")
            .exists()
    );

    // A writer killed between its data files and its commit leaves files
    // the log does not name: no reader may count them.
    let day = std::fs::read_dir(Path::new(&lake).join("calls"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("date=")
        })
        .unwrap();
    let committed = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(
        &committed,
        day.join("part-killed-before-commit.zstd.parquet"),
    )
    .unwrap();

    let own = own_figures(&lake, &[]);
    assert!(own["calls"].as_u64().unwrap() > 300, "{own}");
    assert!(own["r1"].as_array().unwrap().len() > 3, "{own}");
    // One call, one row: the halves the cuts put in different captures
    // were merged, so the peers' counts below are of calls too.
    let extra = ledger(
        &[
            "sql",
            "SELECT count(*) - count(DISTINCT dialect || ' ' || request_id) AS extra FROM calls",
            "--lake",
            &lake,
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&extra).unwrap()[0]["extra"],
        0
    );
    let dl = peer(&deltalake, "deltalake", &lake);
    assert_same("deltalake", &own, &dl);
    assert_eq!(dl["version"], 11, "twelve commits");
    assert_same("duckdb", &own, &peer(&duckdb, "duckdb", &lake));
}

#[test]
fn deltalake_reads_a_lake_on_azurite_as_the_ledger_does() {
    let (Some(deltalake), Some(_), Some(container)) = (
        required("AOAI_TEST_PY_DELTALAKE"),
        required("AZURITE_BLOB_STORAGE_URL"),
        required("AOAI_TEST_AZURITE_CONTAINER"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unique = format!(
        "peers-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let lake = format!("az://{container}/{unique}");
    let envs = [("AZURE_STORAGE_USE_EMULATOR", "true")];
    let files = captures(dir.path());
    let mut args = vec!["ingest", "-q", "--lake", lake.as_str()];
    args.extend(files.iter().map(String::as_str));
    ledger(&args, &envs);
    // Again: the same bytes add nothing.
    ledger(&args, &envs);

    let own = own_figures(&lake, &envs);
    assert!(own["calls"].as_u64().unwrap() > 300, "{own}");
    let dl = peer(&deltalake, "deltalake", &lake);
    assert_same("deltalake", &own, &dl);
    assert_eq!(dl["version"], 11, "the second ingest committed nothing");
}
