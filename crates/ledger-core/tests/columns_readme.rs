//! The README's column lists ("### The record") name exactly the columns of
//! the column table, in table order: a column added, renamed or dropped in
//! `ledger_core::columns` fails here until the README says so too.

use std::path::Path;

use ledger_core::columns::{CALL_COLUMNS, Column, DEAD_LETTER_COLUMNS};

fn record_section() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find("### The record")
        .expect("README has a '### The record' section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n#").map_or(rest.len(), |i| i + 3);
    readme[start..start + end].to_string()
}

/// The paragraph of the section for which `is_list` holds (exactly one).
fn paragraph(section: &str, is_list: impl Fn(&str) -> bool) -> String {
    let found: Vec<&str> = section.split("\n\n").filter(|p| is_list(p)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one such paragraph, found {found:?}"
    );
    found[0].to_string()
}

/// Backticked words that could be column names, in order of appearance.
fn names_in(paragraph: &str) -> Vec<String> {
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// The columns a paragraph lists: its column-like names, less the table's
/// own name and the values of enumerated columns (`usage_source` =
/// `reported` | ...).
fn listed<R>(paragraph: &str, table: &str, columns: &[Column<R>]) -> Vec<String> {
    names_in(paragraph)
        .into_iter()
        .filter(|w| w != table && !columns.iter().any(|c| c.values.contains(&w.as_str())))
        .collect()
}

fn names<R>(columns: &[Column<R>]) -> Vec<String> {
    columns.iter().map(|c| c.name.to_string()).collect()
}

#[test]
fn readme_lists_every_call_column() {
    let section = record_section();
    let list = paragraph(&section, |p| p.contains("the `calls` table"));
    assert_eq!(
        listed(&list, "calls", CALL_COLUMNS),
        names(CALL_COLUMNS),
        "README.md '### The record' must list the calls columns in table order"
    );
}

#[test]
fn readme_lists_every_dead_letter_column() {
    let section = record_section();
    let list = paragraph(&section, |p| p.starts_with("`dead_letters`"));
    assert_eq!(
        listed(&list, "dead_letters", DEAD_LETTER_COLUMNS),
        names(DEAD_LETTER_COLUMNS),
        "README.md '### The record' must list the dead_letters columns in table order"
    );
}
