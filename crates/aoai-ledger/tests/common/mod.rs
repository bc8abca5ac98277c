//! What the CLI tests share: running the built binary as a user would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub mod slt;

pub const BIN: &str = env!("CARGO_BIN_EXE_aoai-ledger");

/// Runs `aoai-ledger ARGS`, which must succeed; its stdout.
pub fn ledger(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "aoai-ledger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command whose output is a JSON array (`--format json`).
pub fn json_rows(args: &[&str]) -> Vec<Value> {
    let out = ledger(args);
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON array ({e}): {out}"))
        .as_array()
        .unwrap()
        .clone()
}

/// `aoai-ledger sql QUERY --lake LAKE --format json`.
pub fn sql(lake: &str, query: &str) -> Vec<Value> {
    json_rows(&["sql", query, "--lake", lake, "--format", "json"])
}

/// Report R1 as JSON.
pub fn r1(lake: &str) -> String {
    ledger(&[
        "report",
        "token-usage-by-ip-model",
        "--lake",
        lake,
        "--format",
        "json",
    ])
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The instant the report tests run at, unless a command pins another.
pub const PINNED_NOW: &str = "2026-11-30T12:00:00Z";

/// Runs `aoai-ledger ARGS` from the repository root with the clock pinned
/// and no lake, prices or key salt taken from the environment.
pub fn pinned(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env("AOAI_LEDGER_NOW", PINNED_NOW)
        .env_remove("AOAI_LEDGER_LAKE")
        .env_remove("AOAI_LEDGER_PRICES")
        .env_remove("AOAI_LEDGER_KEY_SALT")
        .output()
        .unwrap()
}

/// [`pinned`], which must succeed.
pub fn pinned_ok(args: &[&str]) -> std::process::Output {
    let out = pinned(args);
    assert!(
        out.status.success(),
        "aoai-ledger {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The shared corpus ingested into `DIR/lake`; the lake's path.
pub fn corpus_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let lake_arg = lake.display().to_string();
    pinned_ok(&["ingest", &corpus(), "--lake", &lake_arg]);
    lake
}

/// The shared corpus.
pub fn corpus() -> String {
    root()
        .join("tests/fixtures/corpus/corpus.jsonl")
        .display()
        .to_string()
}
