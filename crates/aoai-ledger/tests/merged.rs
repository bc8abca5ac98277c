//! One call, one row: a call whose response reaches the lake after its
//! request was committed as partial appears once in `calls`, complete, in
//! SQL, the named reports and exports; a re-run writes nothing.

use std::path::Path;

use serde_json::{Value, json};

mod common;
use common::{ledger, sql};

fn request(id: &str, time: &str, ip: &str) -> Value {
    json!({
        "schema": "ledger/v1", "kind": "request", "requestId": id, "time": time,
        "callerIp": ip, "subscriptionId": "finance-team", "operationId": "ChatCompletions_Create",
        "method": "POST",
        "url": "https://apim.example.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "body": json!({"messages": [{"role": "user", "content": format!("question {id}")}], "max_tokens": 64}).to_string(),
    })
}

fn response(id: &str, time: &str, prompt: i64, completion: i64) -> Value {
    json!({
        "schema": "ledger/v1", "kind": "response", "requestId": id, "time": time,
        "status": 200, "durationMs": 1400,
        "body": json!({
            "id": format!("chatcmpl-{id}"), "object": "chat.completion", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": format!("answer {id}")}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }).to_string(),
    })
}

fn capture(dir: &Path, name: &str, events: &[Value]) -> String {
    let path = dir.join(name);
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The newest commit of the calls table, as its actions.
fn newest_commit(lake: &str) -> Vec<Value> {
    let log = Path::new(lake).join("calls/_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    let text = std::fs::read_to_string(commits.last().unwrap()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_late_response_joins_its_partial_request_in_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let first = capture(
        dir.path(),
        "first.jsonl",
        &[
            request("late-1", "2026-11-20T09:15:02Z", "203.0.113.7"),
            request("whole-2", "2026-11-20T09:15:05Z", "203.0.113.8"),
            response("whole-2", "2026-11-20T09:15:06Z", 30, 10),
        ],
    );
    let second = capture(
        dir.path(),
        "second.jsonl",
        &[response("late-1", "2026-11-20T09:15:03.500Z", 20, 5)],
    );
    ledger(&["ingest", "-q", "--lake", &lake, &first]);
    let before = sql(
        &lake,
        "SELECT complete FROM calls WHERE request_id = 'late-1'",
    );
    assert_eq!(before, vec![json!({"complete": false})]);

    ledger(&["ingest", "-q", "--lake", &lake, &second]);
    let rows = sql(
        &lake,
        "SELECT request_id, complete, caller_ip, status_code, prompt_tokens, completion_tokens, \
         max_tokens, response_text, duration_ms FROM calls ORDER BY request_id",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0],
        json!({"request_id": "late-1", "complete": true, "caller_ip": "203.0.113.7",
               "status_code": 200, "prompt_tokens": 20, "completion_tokens": 5,
               "max_tokens": 64, "response_text": "answer late-1", "duration_ms": 1400})
    );
    // The commit that brought the late half replaced the file holding the
    // partial row, in one Delta commit with its transaction.
    let commit = newest_commit(&lake);
    assert!(
        commit.iter().any(|a| a.get("remove").is_some()),
        "{commit:?}"
    );
    assert!(commit.iter().any(|a| a.get("txn").is_some()));
    let info = commit.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["operation"], "MERGE");
    assert_eq!(info["aoaiLedger"]["merged"], 1);

    // R1 counts the call once, with the response's tokens.
    let r1 = common::r1(&lake);
    let r1: Vec<Value> = serde_json::from_str(&r1).unwrap();
    let ip = r1.iter().find(|r| r["ip"] == "203.0.113.7").unwrap();
    assert_eq!(
        (&ip["sum_prompttokens"], &ip["sum_completiontokens"]),
        (&json!(20), &json!(5))
    );
    // An export holds one line for it.
    let export = ledger(&["export", "calls", "--lake", &lake]);
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["request_id"] == "late-1")
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["complete"], true);

    // Both captures again: nothing new, still one row.
    ledger(&["ingest", "-q", "--lake", &lake, &first, &second]);
    let count = sql(&lake, "SELECT count(*) AS n FROM calls");
    assert_eq!(count, vec![json!({"n": 2})]);
}

#[test]
fn a_half_flushed_by_timeout_and_its_late_other_half_make_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    // The response comes 15 minutes after its request, 600 other calls in
    // between: with a 60 s timeout (and more than the 1,000 fragments a
    // call waits for at least) the request is flushed as partial first.
    let mut events = vec![request("slow-1", "2026-11-20T09:00:00Z", "198.51.100.1")];
    for i in 0..600 {
        let id = format!("filler-{i}");
        let t = format!("2026-11-20T09:{:02}:{:02}Z", i * 3 / 2 / 60, i * 3 / 2 % 60);
        events.push(request(&id, &t, "198.51.100.2"));
        events.push(response(&id, &t, 1, 1));
    }
    events.push(response("slow-1", "2026-11-20T09:15:10Z", 7, 3));
    let file = capture(dir.path(), "slow.jsonl", &events);
    let summary = ledger(&["ingest", "-q", "--timeout", "60", "--lake", &lake, &file]);
    // Two records of slow-1 were written, merged into one complete row.
    assert!(
        summary.contains("calls written: 602  partial calls: 0  merged halves: 1"),
        "{summary}"
    );
    let rows = sql(
        &lake,
        "SELECT count(*) AS n, bool_and(complete) AS complete, max(total_tokens) AS total \
         FROM calls WHERE request_id = 'slow-1'",
    );
    assert_eq!(rows, vec![json!({"n": 1, "complete": true, "total": 10})]);
    let all = sql(&lake, "SELECT count(*) AS n FROM calls");
    assert_eq!(all, vec![json!({"n": 601})]);
}

/// The shared corpus ingested whole, and cut into twelve captures (so
/// halves of some calls land in different commits), gives the same rows.
#[test]
fn a_corpus_cut_into_captures_gives_the_rows_of_the_whole() {
    let corpus = std::fs::read_to_string(common::corpus()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole").display().to_string();
    let cut = dir.path().join("cut").display().to_string();
    ledger(&["ingest", "-q", "--lake", &whole, &common::corpus()]);
    let lines: Vec<&str> = corpus.lines().collect();
    let files: Vec<String> = lines
        .chunks(lines.len().div_ceil(12))
        .enumerate()
        .map(|(i, chunk)| {
            // Raw lines: the corpus holds damaged ones too.
            let path = dir.path().join(format!("part-{i:02}.jsonl"));
            std::fs::write(&path, chunk.join("\n") + "\n").unwrap();
            path.display().to_string()
        })
        .collect();
    let mut args = vec!["ingest", "-q", "--lake", cut.as_str()];
    args.extend(files.iter().map(String::as_str));
    let summary = ledger(&args);
    assert!(
        !summary.contains("merged halves: 0"),
        "the cuts split no call: {summary}"
    );
    let rows = |lake: &str| {
        sql(
            lake,
            "SELECT dialect, request_id, complete, caller_ip, subscription_id, model, status_code, \
             finish_reason, prompt_tokens, completion_tokens, total_tokens, usage_source, \
             CAST(cost AS VARCHAR) AS cost, length(prompt_text) AS prompt, \
             length(response_text) AS response, request_time, response_time, duration_ms, \
             request_truncated, response_truncated FROM calls ORDER BY dialect, request_id",
        )
    };
    let (a, b) = (rows(&whole), rows(&cut));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}
