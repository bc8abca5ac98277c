//! Anything outside the subset is an error naming the operator or function
//! with its line and column; never a silently different result.

use datafusion::prelude::SessionContext;

async fn error_of(q: &str) -> String {
    let ctx = SessionContext::new();
    match ledger_kql::plan(&ctx, q, chrono::Utc::now()).await {
        Ok(_) => panic!("`{q}` planned"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn an_unsupported_operator_is_named_with_its_position() {
    let e = error_of("print x = 1\n| evaluate bag_unpack(x)").await;
    assert_eq!(e, "unsupported operator `evaluate` at line 2, column 3");
}

#[tokio::test]
async fn an_unsupported_function_is_named_with_its_position() {
    let e = error_of("print a = 1\n| extend b = hash_sha256(a)").await;
    assert_eq!(e, "unsupported function `hash_sha256` at line 2, column 14");
}

#[tokio::test]
async fn an_unsupported_aggregate_is_named() {
    let e = error_of("range x from 1 to 3 step 1 | summarize hll(x)").await;
    assert!(
        e.contains("`hll`") && e.contains("line 1, column 40"),
        "{e}"
    );
}

#[tokio::test]
async fn syntax_errors_say_what_was_expected_and_where() {
    let e = error_of("print x = (1 + ").await;
    assert!(e.starts_with("syntax error at line 1, column 16"), "{e}");
    let e = error_of("datatable(a:long)[1, 2]\n| sort a").await;
    assert!(e.contains("line 2, column 8") && e.contains("`by`"), "{e}");
}

#[tokio::test]
async fn unknown_columns_and_tables_are_errors_with_positions() {
    let e = error_of("print x = 1 | project y").await;
    assert_eq!(e, "at line 1, column 23: unknown column or name `y`");
    let e = error_of("NoSuchTable | take 1").await;
    assert_eq!(e, "at line 1, column 1: unknown table `NoSuchTable`");
}

#[tokio::test]
async fn unsupported_join_kinds_and_parameters_are_named() {
    let e = error_of("print a = 1 | join kind=cross (print a = 1) on a").await;
    assert!(e.contains("join kind `cross`"), "{e}");
    let e = error_of("print a = dynamic([1]) | mv-expand a limit 2").await;
    assert!(e.contains("mv-expand parameter `limit`"), "{e}");
}
