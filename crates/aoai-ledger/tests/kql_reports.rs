//! The seed reports as KQL (`queries/*.kql`: R1 to R4 pasted unmodified
//! from `docs/design/reports.md`, R5 written from its description) give the rows of their SQL twins: each is run
//! with `aoai-ledger kql --report NAME` over the committed corpus, with the
//! flags of the SQL report's first case in `tests/reports/NAME.slt`, and
//! compared with that case's expected rows.
//!
//! KQL has no row order without `sort`, so rows compare sorted. Numbers
//! compare by value (12 significant digits): KQL's `sum(todecimal(x))` is a
//! decimal where the SQL report has an integer, and `dynamic` values come
//! out as text.

mod common;

use std::process::Command;

use common::slt::{Block, parquet_rows, parse};

use common::{corpus_lake, root as repo};

/// `aoai-ledger ARGS` with the clock pinned; its error output on failure.
fn cli(args: &[&str]) -> Result<(), String> {
    let out = common::pinned(args);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "aoai-ledger {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A value as a number rounded to 12 significant digits when it is one.
fn normal(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(x) if v != "NaN" => {
            let r: f64 = format!("{x:.11e}").parse().unwrap_or(x);
            if r == 0.0 { "0".into() } else { format!("{r}") }
        }
        _ => v.to_string(),
    }
}

fn normal_rows(rows: &[String]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| r.split(' ').map(normal).collect::<Vec<_>>().join(" "))
        .collect();
    out.sort();
    out
}

/// (KQL report, SQL report whose first case it must match).
const TWINS: &[(&str, &str)] = &[
    ("token-usage-by-ip-model", "token-usage-by-ip-model"),
    ("prompt-monitoring", "prompt-monitoring"),
    ("usage-by-subscription", "usage-by-subscription"),
    ("prompts-and-completions", "prompts-and-completions"),
    ("cost-by-subscription", "cost-by-subscription"),
];

#[test]
fn seed_reports_as_kql_give_the_sql_reports_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = corpus_lake(dir.path());
    let out = dir.path().join("out.parquet");
    let mut failures = Vec::new();
    for (kql, sql) in TWINS {
        let blocks = parse(&repo().join(format!("tests/reports/{sql}.slt")));
        let Some(case) = blocks.iter().find_map(|b| match b {
            Block::Query(c) => Some(c),
            Block::Text(_) => None,
        }) else {
            panic!("{sql}.slt has no case");
        };
        let mut words = case.command.split_whitespace();
        assert_eq!(words.next(), Some("report"));
        assert_eq!(words.next(), Some(*sql));
        let mut args = vec!["kql", "--report", kql];
        args.extend(words);
        args.extend([
            "--lake",
            lake.to_str().unwrap(),
            "--format",
            "parquet",
            "--out",
            out.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(&out);
        if let Err(e) = cli(&args) {
            failures.push(e);
            continue;
        }
        let (_, rows) = parquet_rows(&out);
        let (got, want) = (normal_rows(&rows), normal_rows(&case.expected));
        if got != want {
            let missing: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
            let extra: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
            failures.push(format!(
                "kql report {kql}: {} rows, {sql} expects {}\nexpected, missing (first 5): {missing:#?}\ngiven, not expected (first 5): {extra:#?}",
                got.len(),
                want.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_query_naming_no_table_runs_without_a_lake() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args([
            "kql",
            "print n = 6 * 7, s = strcat('a', 'b') | render table",
            "--lake",
            dir.path().join("none").to_str().unwrap(),
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n,s\n42,ab\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("render table"));
}

#[test]
fn a_kql_error_names_the_position() {
    let out = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
        .args(["kql", "print x = 1\n| evaluate bag_unpack(x)"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported operator `evaluate` at line 2, column 3"),
        "{err}"
    );
}

#[test]
fn render_with_chart_writes_an_svg_with_axes_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let lake = corpus_lake(dir.path());
    let svg = dir.path().join("cost.svg");
    cli(&[
        "kql",
        "--report",
        "cost-by-subscription-per-minute",
        "--lake",
        lake.to_str().unwrap(),
        "--chart",
        svg.to_str().unwrap(),
        "--format",
        "csv",
    ])
    .unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{text}");
    assert!(text.contains(r#"class="x-axis""#) && text.contains(r#"class="y-axis""#));
    assert!(text.contains(r#"<g class="series" data-name="TotalCost">"#));
    assert!(text.contains("<polyline"));
    assert!(text.contains(">TimeGenerated</text>"));
}

/// The planner answers the bodies' known paths (`ledger_kql::typed::
/// BODY_PATHS`) from the view's typed columns: on the corpus, every call's
/// body holds exactly those values, and the KQL hides the columns.
#[test]
fn known_body_paths_equal_their_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let lake = corpus_lake(dir.path());
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_aoai-ledger"))
            .args(args)
            .args(["--lake", lake.to_str().unwrap(), "--format", "csv"])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    for (body, path, column) in ledger_kql::typed::BODY_PATHS {
        let keys: Vec<String> = path.iter().map(|p| format!("'{p}'")).collect();
        let hidden = ledger_kql::typed::hidden(column);
        let sql = format!(
            "SELECT count(*) AS n, sum(CASE WHEN json_get(\"{body}\", {}) IS DISTINCT FROM \
             CAST(\"{hidden}\" AS VARCHAR) THEN 1 ELSE 0 END) AS differ, \
             count(\"{hidden}\") AS filled FROM \"ApiManagementGatewayLogs\"",
            keys.join(", ")
        );
        let out = run(&["sql", &sql]);
        let row: Vec<&str> = out.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(
            row[1],
            "0",
            "{body}.{} differs from {column}: {out}",
            path.join(".")
        );
        assert_ne!(row[2], "0", "{column} never filled: {out}");
    }
    let header = run(&["kql", "ApiManagementGatewayLogs | take 1"]);
    let header = header.lines().next().unwrap();
    assert!(
        !header.contains(ledger_kql::typed::HIDDEN_PREFIX),
        "{header}"
    );
}
