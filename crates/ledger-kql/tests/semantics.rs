//! Kusto's rules where they differ from SQL (issue 14, "Kusto's semantics"),
//! one query each, self-contained.

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

/// The rows of `q` as `a|b` lines, and its column names.
async fn run(q: &str) -> (Vec<String>, Vec<String>) {
    let ctx = SessionContext::new();
    let planned = ledger_kql::plan(&ctx, q, chrono::Utc::now())
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let frame = ledger_kql::for_display(planned.frame).unwrap();
    let batches = frame.collect().await.unwrap();
    let names = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for b in &batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(
                fmts.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    (names, rows)
}

#[tokio::test]
async fn an_int_column_compares_with_a_string_literal() {
    let (_, rows) =
        run("datatable(ResponseCode:int)[200, 404, 200] | where ResponseCode == '200' | count")
            .await;
    assert_eq!(rows, ["2"]);
}

#[tokio::test]
async fn default_column_names_follow_kusto() {
    let (names, _) = run("datatable(x:long, g:string)[1, 'a', 2, 'a'] \
         | summarize count(), sum(x), avg(todecimal(x)), countif(x > 1), make_list(x) by g")
    .await;
    assert_eq!(
        names,
        ["g", "count_", "sum_x", "avg_x", "countif_", "list_x"]
    );
    let (names, _) = run("print 1, x = 2, 3").await;
    assert_eq!(names, ["print_0", "x", "print_2"]);
    let (names, _) = run("print a = 1 | project a + 1, b = a").await;
    assert_eq!(names, ["Column1", "b"]);
    let (names, _) = run("print d = dynamic({'k': 1}) | project d.k").await;
    assert_eq!(names, ["d_k"]);
}

#[tokio::test]
async fn null_strings_are_empty_strings() {
    let (_, rows) = run(
        "datatable(s:string)[''] | extend t = tostring(int(null)), e = isempty(s), n = strlen(tostring(int(null)))",
    )
    .await;
    assert_eq!(rows, ["||true|0"]);
}

#[tokio::test]
async fn has_matches_whole_terms_and_contains_any_substring() {
    let (_, rows) = run(
        "print a = 'North America' has 'america', b = 'NorthAmerica' has 'america', \
         c = 'NorthAmerica' contains 'AMERICA', d = 'NorthAmerica' contains_cs 'AMERICA', \
         e = 'abc' =~ 'ABC', f = 'abc' == 'ABC', g = 'abc' in~ ('ABC'), h = 'abc' !in ('abc')",
    )
    .await;
    assert_eq!(rows, ["true|false|true|false|true|false|true|false"]);
}

#[tokio::test]
async fn integer_division_truncates_and_modulo_is_never_negative() {
    let (_, rows) = run("print 7 / 2, -7 / 2, 7 % 3, -7 % 3, 7.0 / 2").await;
    assert_eq!(rows, ["3|-3|1|2|3.5"]);
}

#[tokio::test]
async fn todecimal_keeps_exact_digits() {
    let (_, rows) = run("print todecimal('0.1') + todecimal('0.2') == todecimal('0.3')").await;
    assert_eq!(rows, ["true"]);
}

#[tokio::test]
async fn dynamic_values_index_and_serialise_as_compact_json() {
    let (_, rows) = run(
        "print b = parse_json('{\"model\":\"gpt-4o-mini-2024\",\"usage\":{\"prompt_tokens\":5},\"choices\":[{\"index\":0,\"text\":\"hi\"}]}') \
         | project m = tostring(b['model']), p = toint(b.usage.prompt_tokens), \
           c = substring(b['choices'][0], 0, 12), k = indexof(b['model'], '-', 0, -1, 2), \
           key = substring(b['model'], 0, indexof(b['model'], '-', 0, -1, 4))",
    )
    .await;
    assert_eq!(rows, ["gpt-4o-mini-2024|5|{\"index\":0,\"|6|"]);
}

#[tokio::test]
async fn null_equality_keeps_rows_sql_would_drop() {
    let (_, rows) = run("datatable(x:int)[5, int(null)] | where x != 5 | count").await;
    assert_eq!(rows, ["1"]);
}

#[tokio::test]
async fn sort_defaults_to_descending_with_nulls_last() {
    let (_, rows) = run("datatable(x:int)[1, int(null), 3] | sort by x").await;
    assert_eq!(rows, ["3", "1", ""]);
    let (_, rows) = run("datatable(x:int)[1, int(null), 3] | sort by x asc").await;
    assert_eq!(rows, ["", "1", "3"]);
}
