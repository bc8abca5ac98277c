//! `export calls` with compliance filters returns exactly the calls that
//! match, each filter checked against the same question asked in SQL.

use std::collections::BTreeSet;

use serde_json::Value;

mod common;
use common::ledger;

fn ids_of_sql(lake: &str, filter: &str) -> BTreeSet<String> {
    let q = format!("SELECT request_id FROM calls WHERE {filter}");
    let rows: Vec<Value> =
        serde_json::from_str(&ledger(&["sql", &q, "--lake", lake, "--format", "json"])).unwrap();
    rows.iter()
        .map(|r| r["request_id"].as_str().unwrap().to_string())
        .collect()
}

fn ids_of_export(lake: &str, args: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["export", "calls", "--lake", lake];
    a.extend_from_slice(args);
    ledger(&a)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A value of `column` that some but not all calls have.
fn some_value(lake: &str, column: &str) -> String {
    let q = format!(
        "SELECT {column} AS v, count(*) AS n FROM calls WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT 1"
    );
    let rows: Vec<Value> =
        serde_json::from_str(&ledger(&["sql", &q, "--lake", lake, "--format", "json"])).unwrap();
    rows[0]["v"]
        .as_str()
        .unwrap_or_else(|| panic!("no {column} in the corpus"))
        .to_string()
}

#[test]
fn every_filter_returns_exactly_the_matching_calls() {
    let corpus = common::corpus();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    // The corpus has no app ids or body `user`s: a few calls that do.
    let extra = dir.path().join("apps.jsonl");
    let mut text = String::new();
    for i in 0..6 {
        let id = format!("app-call-{i}");
        let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "user": format!("alice-{}", i % 2)});
        let req = serde_json::json!({"schema": "ledger/v1", "kind": "request", "requestId": id,
            "time": "2026-11-21T08:00:00Z", "appId": format!("app-{}", i % 3), "body": body.to_string()});
        let resp = serde_json::json!({"schema": "ledger/v1", "kind": "response", "requestId": id,
            "time": "2026-11-21T08:00:01Z", "status": 200, "body": "{}"});
        text.push_str(&format!("{req}\n{resp}\n"));
    }
    std::fs::write(&extra, text).unwrap();
    ledger(&[
        "ingest",
        "-q",
        "--lake",
        &lake,
        &corpus,
        &extra.display().to_string(),
    ]);
    let all = ids_of_export(&lake, &[]);
    assert!(all.len() > 300);

    let ip = some_value(&lake, "caller_ip");
    let sub = some_value(&lake, "subscription_id");
    let user = some_value(&lake, "user_id");
    let end_user = some_value(&lake, "end_user");
    let app = some_value(&lake, "app_id");
    let model = some_value(&lake, "model_key");
    let deployment = some_value(&lake, "deployment");
    let rid = some_value(&lake, "request_id");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--caller-ip", &ip], format!("caller_ip = '{ip}'")),
        (
            vec!["--subscription", &sub],
            format!("subscription_id = '{sub}' OR subscription_name = '{sub}'"),
        ),
        (
            vec!["--user", &user],
            format!("user_id = '{user}' OR end_user = '{user}'"),
        ),
        (
            vec!["--user", &end_user],
            format!("user_id = '{end_user}' OR end_user = '{end_user}'"),
        ),
        (vec!["--app-id", &app], format!("app_id = '{app}'")),
        (
            vec!["--model", &model],
            format!("model = '{model}' OR model_key = '{model}'"),
        ),
        (
            vec!["--deployment", &deployment],
            format!("deployment = '{deployment}'"),
        ),
        (vec!["--request-id", &rid], format!("request_id = '{rid}'")),
        (
            vec!["--text", "HELPFUL assistant"],
            "prompt_text ILIKE '%helpful assistant%' OR response_text ILIKE '%helpful assistant%'"
                .into(),
        ),
        (
            vec![
                "--caller-ip",
                &ip,
                "--model",
                &model,
                "--since",
                "2026-11-01",
                "--until",
                "2026-12-01",
            ],
            format!(
                "caller_ip = '{ip}' AND (model = '{model}' OR model_key = '{model}') \
                 AND request_time >= '2026-11-01T00:00:00Z' AND request_time < '2026-12-01T00:00:00Z'"
            ),
        ),
    ];
    for (args, sql) in cases {
        let got = ids_of_export(&lake, &args);
        let want = ids_of_sql(&lake, &sql);
        assert!(
            !want.is_empty() && want.len() < all.len(),
            "{args:?} is not a real filter here"
        );
        assert_eq!(got, want, "{args:?}");
    }
    // Wildcards in the text are literal.
    assert!(ids_of_export(&lake, &["--text", "%"]).len() < all.len());
}
