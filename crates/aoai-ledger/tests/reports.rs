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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The instant every case runs at, unless its command pins another.
const PINNED_NOW: &str = "2026-11-30T12:00:00Z";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cli(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args(args)
        .current_dir(repo())
        .env("AOAI_LEDGER_NOW", PINNED_NOW)
        .env_remove("AOAI_LEDGER_LAKE")
        .env_remove("AOAI_LEDGER_PRICES")
        .env_remove("AOAI_LEDGER_KEY_SALT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aoai-ledger {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One `query` record of an .slt file.
struct Case {
    /// Line of the `query` header, for messages.
    line: usize,
    types: String,
    rowsort: bool,
    /// CLI arguments, e.g. `report daily-usage --since 2026-11-24`.
    command: String,
    expected: Vec<String>,
}

enum Block {
    /// Comments and blank lines, kept as written.
    Text(String),
    Query(Case),
}

fn parse(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let header: Vec<&str> = lines[i].split_whitespace().collect();
        if header.first() != Some(&"query") {
            blocks.push(Block::Text(lines[i].to_string()));
            i += 1;
            continue;
        }
        let line = i + 1;
        let mode = header.get(2).copied().unwrap_or("nosort");
        assert!(
            mode == "nosort" || mode == "rowsort",
            "{}:{line}: unknown sort mode `{mode}`",
            path.display()
        );
        let command = lines
            .get(i + 1)
            .unwrap_or_else(|| panic!("{}:{line}: query without a command", path.display()));
        assert_eq!(
            lines.get(i + 2).copied(),
            Some("----"),
            "{}:{line}: the command must be one line followed by ----",
            path.display()
        );
        i += 3;
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected.push(lines[i].to_string());
            i += 1;
        }
        blocks.push(Block::Query(Case {
            line,
            types: header.get(1).copied().unwrap_or("").to_string(),
            rowsort: mode == "rowsort",
            command: command.to_string(),
            expected,
        }));
    }
    blocks
}

fn render(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Text(t) => {
                out.push_str(t);
                out.push('\n');
            }
            Block::Query(c) => {
                let mode = if c.rowsort { " rowsort" } else { "" };
                let header = format!("query {}{mode}", c.types);
                out.push_str(&format!("{}\n{}\n----\n", header.trim_end(), c.command));
                for r in &c.expected {
                    out.push_str(r);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// sqllogictest column types: I integer, R float or decimal, T text,
/// B boolean, D date, P timestamp, ? anything else.
fn type_char(t: &DataType) -> char {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => 'I',
        Float16 | Float32 | Float64 | Decimal128(..) | Decimal256(..) => 'R',
        Utf8 | LargeUtf8 | Utf8View => 'T',
        Boolean => 'B',
        Date32 | Date64 => 'D',
        Timestamp(..) => 'P',
        _ => '?',
    }
}

/// A float rounded to 12 significant digits, printed shortest (`84`,
/// `78.3333333333`), so float sums and percentile sketches do not depend on
/// the order partitions were merged in. Decimals stay exact, without
/// trailing zeros.
fn number(text: &str, float: bool) -> String {
    let s = match text.parse::<f64>() {
        Ok(v) if float => {
            let rounded: f64 = format!("{v:.11e}").parse().unwrap();
            format!("{rounded}")
        }
        _ if text.contains('.') => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        _ => text.to_string(),
    };
    if s == "-0" { "0".to_string() } else { s }
}

/// One value as text: `NULL`, `(empty)` for an empty string, newlines
/// escaped so each row stays on one line.
fn cell(array: &dyn Array, row: usize, kind: char) -> String {
    if array.is_null(row) {
        return "NULL".to_string();
    }
    let options = FormatOptions::default();
    let text = ArrayFormatter::try_new(array, &options)
        .unwrap()
        .value(row)
        .to_string();
    match kind {
        'R' => number(&text, array.data_type().is_floating()),
        _ if text.is_empty() => "(empty)".to_string(),
        _ => text
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r"),
    }
}

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
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(out).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    // No rows: the file still has the schema, but the expectation has no types.
    if batches.iter().all(|b| b.num_rows() == 0) {
        return (None, Vec::new());
    }
    let schema = batches[0].schema();
    let kinds: String = schema
        .fields()
        .iter()
        .map(|f| type_char(f.data_type()))
        .collect();
    let mut rows = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .zip(kinds.chars())
                .map(|(a, k)| cell(a.as_ref(), r, k))
                .collect();
            rows.push(cells.join(" "));
        }
    }
    (Some(kinds), rows)
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

fn ingest_corpus(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    let corpus = repo().join("tests/fixtures/corpus/corpus.jsonl");
    cli(&[
        "ingest",
        corpus.to_str().unwrap(),
        "--lake",
        lake.to_str().unwrap(),
    ]);
    lake
}

#[test]
fn every_report_gives_its_expected_rows_over_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let lake = ingest_corpus(dir.path());
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
    let lake = ingest_corpus(dir.path());
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
