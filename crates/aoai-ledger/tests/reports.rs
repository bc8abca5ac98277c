//! Every named report checked by its output: the committed corpus
//! (`tests/fixtures/corpus/`) is ingested once with the CLI binary into a
//! temporary lake, then every case of `tests/reports/*.slt` is run with the
//! clock pinned and its rows compared with the expected ones. Set
//! `UPDATE_EXPECTED=1` to rewrite the expected rows after a deliberate
//! change, then review the diff.
//!
//! The files follow DataFusion's sqllogictest layout so other front ends
//! (KQL) can be checked against the same rows; `tests/reports/README.md`
//! describes it.

mod common;

use std::path::{Path, PathBuf};

use common::slt::{Block, Case, parquet_rows, parse, render};

use common::{corpus_lake, pinned_ok as cli, root as repo};

/// Runs a case's command with Parquet output and returns (types, rows).
fn run(case: &Case, lake: &Path, out: &Path) -> (Option<String>, Vec<String>) {
    let mut args: Vec<String> = case.command.split_whitespace().map(String::from).collect();
    args.extend(
        [
            "--lake",
            lake.to_str().unwrap(),
            "--format",
            "parquet",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from),
    );
    let _ = std::fs::remove_file(out);
    cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    parquet_rows(out)
}

fn slt_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_report_gives_its_expected_rows_over_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let lake = corpus_lake(dir.path());
    let out = dir.path().join("out.parquet");
    let update = std::env::var("UPDATE_EXPECTED").is_ok();
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for file in slt_files() {
        let mut blocks = parse(&file);
        for b in &mut blocks {
            let Block::Query(case) = b else { continue };
            let mut words = case.command.split_whitespace();
            if words.next() == Some("report")
                && let Some(name) = words.next()
            {
                covered.insert(name.to_string());
            }
            let (types, mut rows) = run(case, &lake, &out);
            if case.rowsort {
                rows.sort();
            }
            if update {
                if let Some(t) = types {
                    case.types = t;
                }
                case.expected = rows;
                continue;
            }
            if types.is_some_and(|t| t != case.types) || rows != case.expected {
                failures.push(format!(
                    "{}:{}: `{}` gave\n{}\n",
                    file.display(),
                    case.line,
                    case.command,
                    rows.join("\n")
                ));
            }
        }
        if update {
            std::fs::write(&file, render(&blocks)).unwrap();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for r in ledger_query::REPORTS {
        assert!(
            covered.contains(r.name),
            "report `{}` has no case in tests/reports/",
            r.name
        );
    }
}

#[test]
fn no_planted_secret_reaches_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = corpus_lake(dir.path());
    for table in ["calls", "dead-letters"] {
        let out = cli(&["export", table, "--lake", lake.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.is_empty(), "{table} exported nothing");
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains("SECRET-")).collect();
        assert!(
            leaks.is_empty(),
            "{} {table} rows hold a planted secret, e.g. {}",
            leaks.len(),
            leaks[0]
        );
    }
}
