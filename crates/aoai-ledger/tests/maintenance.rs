//! Operating the lake: `history`, `--as-of`, `compact` and `vacuum`, run as
//! a user runs them, on a lake of many small commits.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::{BIN, json_rows as json_of, ledger};

/// `n` captures of `per` complete calls each, all on one day, as files.
fn captures(dir: &Path, tag: &str, n: usize, per: usize) -> Vec<String> {
    (0..n)
        .map(|f| {
            let mut text = String::new();
            for k in 0..per {
                let id = format!("{tag}-{f:03}-{k:02}");
                let t = format!("2026-11-20T10:{:02}:{:02}Z", f % 60, k % 60);
                let req = json!({"schema": "ledger/v1", "kind": "request", "requestId": id, "time": t,
                    "callerIp": format!("10.0.0.{}", k % 5), "url": "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    "method": "POST", "body": json!({"messages": [{"role": "user", "content": format!("prompt {id}")}]}).to_string()});
                let resp = json!({"schema": "ledger/v1", "kind": "response", "requestId": id, "time": t, "status": 200,
                    "body": json!({"object": "chat.completion", "model": "gpt-4o-2024-08-06",
                        "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5 + k, "completion_tokens": 2, "total_tokens": 7 + k}}).to_string()});
                text.push_str(&format!("{req}\n{resp}\n"));
            }
            let p = dir.join(format!("{tag}-{f:03}.jsonl"));
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect()
}

fn data_files(lake: &str, table: &str) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.ends_with("_delta_log") {
                walk(&p, n);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&Path::new(lake).join(table), &mut n);
    n
}

fn live_files(lake: &str) -> i64 {
    let h = json_of(&[
        "history", "--lake", lake, "--table", "calls", "--format", "json",
    ]);
    h.iter()
        .map(|e| e["files_added"].as_i64().unwrap() - e["files_removed"].as_i64().unwrap())
        .sum()
}

#[test]
fn history_as_of_compact_and_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let files = captures(dir.path(), "a", 40, 5);
    let mut args = vec!["ingest", "-q", "--lake", lake.as_str()];
    args.extend(files.iter().map(String::as_str));
    ledger(&args);

    // history: one commit per capture, in order, with its range and rows.
    let h = json_of(&[
        "history", "--lake", &lake, "--table", "calls", "--format", "json",
    ]);
    assert_eq!(h.len(), 40);
    assert!(h.iter().enumerate().all(|(i, e)| e["version"] == json!(i)));
    assert!(
        h.iter()
            .all(|e| e["operation"] == "ingest" && e["calls"] == 5)
    );
    // --as-of: version 9 is the first ten captures.
    let count = |extra: &[&str]| {
        let mut a = vec![
            "sql",
            "SELECT count(*) AS n FROM calls",
            "--lake",
            &lake,
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        json_of(&a)[0]["n"].as_i64().unwrap()
    };
    assert_eq!(count(&["--as-of", "9"]), 50);
    let t = h[19]["time"].as_str().unwrap().to_string();
    assert_eq!(count(&["--as-of", &t]), 100);
    assert_eq!(count(&[]), 200);

    let report = common::r1;
    let before = report(&lake);
    assert_eq!(live_files(&lake), 40);

    // compact while another ingest writes: nothing is lost.
    let more = captures(dir.path(), "b", 20, 5);
    let mut args = vec!["ingest", "-q", "--lake", lake.as_str()];
    args.extend(more.iter().map(String::as_str));
    let writer = Command::new(BIN)
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let compacted = ledger(&["compact", "--lake", &lake]);
    let writer = writer.wait_with_output().unwrap();
    assert!(
        writer.status.success(),
        "{}",
        String::from_utf8_lossy(&writer.stderr)
    );
    assert!(compacted.contains("calls: files"), "{compacted}");
    assert_eq!(count(&[]), 300);
    // Once more, now that the writer is done: one file for the day.
    ledger(&["compact", "--lake", &lake]);
    assert_eq!(live_files(&lake), 1);
    assert_eq!(count(&[]), 300);
    let ops: Vec<Value> = json_of(&[
        "history", "--lake", &lake, "--table", "calls", "--format", "json",
    ])
    .into_iter()
    .map(|e| e["operation"].clone())
    .collect();
    assert!(ops.contains(&json!("compact")));

    // The report is the one a lake of the same captures, never
    // compacted, gives; and the version before compaction still reads.
    let plain = dir.path().join("plain").display().to_string();
    let mut args = vec!["ingest", "-q", "--lake", plain.as_str()];
    args.extend(files.iter().chain(&more).map(String::as_str));
    ledger(&args);
    assert_eq!(report(&lake), report(&plain));
    assert_eq!(
        ledger(&[
            "report",
            "token-usage-by-ip-model",
            "--lake",
            &lake,
            "--format",
            "json",
            "--as-of",
            "39"
        ]),
        before
    );

    // vacuum: with the default retention nothing goes; with none, every
    // replaced file does, and the table reads the same.
    let kept = ledger(&["vacuum", "--lake", &lake]);
    assert!(kept.contains("deleted 0 files"), "{kept}");
    assert!(data_files(&lake, "calls") >= 60);
    let dry = ledger(&["vacuum", "--lake", &lake, "--retain", "0s", "--dry-run"]);
    assert!(dry.contains("would delete"), "{dry}");
    assert!(data_files(&lake, "calls") >= 60);
    ledger(&["vacuum", "--lake", &lake, "--retain", "0s"]);
    assert_eq!(data_files(&lake, "calls"), 1);
    assert_eq!(count(&[]), 300);
    // Compaction and vacuum lose no row: the audit passes.
    let audit = ledger(&["audit", "--lake", &lake]);
    assert!(
        audit.contains("calls: 300 rows held, 300 written by its commits"),
        "{audit}"
    );
}
