//! The `.slt` expected-output files of `tests/reports/` (layout in
//! `tests/reports/README.md`): reading and writing them, and rendering
//! result rows the way they are written there.
#![allow(dead_code)]

use std::fs::File;
use std::path::Path;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One `query` record of an .slt file.
pub struct Case {
    /// Line of the `query` header, for messages.
    pub line: usize,
    pub types: String,
    pub rowsort: bool,
    /// CLI arguments, e.g. `report daily-usage --since 2026-11-24`.
    pub command: String,
    pub expected: Vec<String>,
}

pub enum Block {
    /// Comments and blank lines, kept as written.
    Text(String),
    Query(Case),
}

pub fn parse(path: &Path) -> Vec<Block> {
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

pub fn render(blocks: &[Block]) -> String {
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
pub fn type_char(t: &DataType) -> char {
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
pub fn number(text: &str, float: bool) -> String {
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
pub fn cell(array: &dyn Array, row: usize, kind: char) -> String {
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

/// The rows of a Parquet result file as `.slt` lines, with their types
/// (None when there are no rows: the expectation then has no types).
pub fn parquet_rows(out: &Path) -> (Option<String>, Vec<String>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(out).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
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
