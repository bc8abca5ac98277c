//! Known paths of the compatibility views' JSON bodies, answered from the
//! typed `calls` columns the bodies were completed from.
//!
//! `ApiManagementGatewayLogs.BackendResponseBody` is `json_complete(
//! response_body, model, prompt_tokens, …)`: the body's `model` and `usage`
//! are the record's columns (the record took them from the body, and
//! `json_complete` adds them where the body has none), so
//! `parse_json(BackendResponseBody).usage.prompt_tokens` is `prompt_tokens`
//! without parsing every body. The view carries those columns under
//! [`hidden`] names; the planner drops such columns from every result.

use datafusion::common::DFSchema;

/// JSON path of a view's body column → the `calls` column holding the same
/// value. The one table the planner reads; `tests/kql_reports.rs` checks the
/// values are equal on the corpus and that the views carry the columns.
pub const BODY_PATHS: &[(&str, &[&str], &str)] = &[
    ("BackendResponseBody", &["model"], "model"),
    (
        "BackendResponseBody",
        &["usage", "prompt_tokens"],
        "prompt_tokens",
    ),
    (
        "BackendResponseBody",
        &["usage", "completion_tokens"],
        "completion_tokens",
    ),
    (
        "BackendResponseBody",
        &["usage", "total_tokens"],
        "total_tokens",
    ),
    ("ResponseBody", &["model"], "model"),
    ("ResponseBody", &["usage", "prompt_tokens"], "prompt_tokens"),
    (
        "ResponseBody",
        &["usage", "completion_tokens"],
        "completion_tokens",
    ),
    ("ResponseBody", &["usage", "total_tokens"], "total_tokens"),
];

/// Prefix of the views' columns that are not part of the Log Analytics
/// table (never shown).
pub const HIDDEN_PREFIX: &str = "__calls_";

/// The view's name for `calls` column `c`.
pub fn hidden(c: &str) -> String {
    format!("{HIDDEN_PREFIX}{c}")
}

pub fn is_hidden(name: &str) -> bool {
    name.starts_with(HIDDEN_PREFIX)
}

/// The hidden column answering `path` of body column `body` in `schema`,
/// when `body` is still the view's own column (same table qualifier as the
/// hidden one: an `extend` or `project-rename` that redefines it, a union
/// or a join's renamed side, leaves it unqualified or differently so).
pub fn column_for(schema: &DFSchema, body: &str, path: &[String]) -> Option<String> {
    let (_, _, c) = BODY_PATHS.iter().find(|(b, p, _)| {
        *b == body && p.len() == path.len() && p.iter().zip(path).all(|(a, b)| a == b)
    })?;
    let name = hidden(c);
    let (qb, _) = schema.qualified_field_with_unqualified_name(body).ok()?;
    let (qh, _) = schema.qualified_field_with_unqualified_name(&name).ok()?;
    match (qb, qh) {
        (Some(a), Some(b)) if a == b => Some(name),
        _ => None,
    }
}
