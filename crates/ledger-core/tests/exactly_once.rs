//! The exactly-once rule across a restart: replaying from a commit's resume
//! point, with the sink skipping records owned at or below the commit, ends
//! with every call exactly once — even when timeouts fired in between.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ledger_core::ledger::{Commit, Ledger, LedgerConfig};
use ledger_core::{Position, RawEvent};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

fn half(kind: &str, id: &str, secs: i64) -> Vec<u8> {
    let time = (t0() + Duration::seconds(secs)).to_rfc3339();
    let mut e = json!({
        "schema": "ledger/v1", "kind": kind, "requestId": id, "time": time,
        "operationId": "ChatCompletions_Create",
    });
    if kind == "request" {
        e["body"] = json!(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
    } else {
        e["status"] = json!(200);
        e["body"] = json!(
            r#"{"object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#
        );
    }
    serde_json::to_vec(&e).unwrap()
}

fn config() -> LedgerConfig {
    LedgerConfig {
        timeout: Duration::seconds(60),
        expiry_min_gap: 0,
        ..LedgerConfig::default()
    }
}

fn event(seq: i64, body: &[u8]) -> RawEvent {
    RawEvent {
        position: Position {
            partition: "p".into(),
            sequence: seq,
        },
        offset: None,
        enqueued_time: None,
        body: body.to_vec(),
    }
}

fn feed(ledger: &mut Ledger, events: &[(i64, Vec<u8>)]) {
    for (seq, body) in events {
        ledger.process(event(*seq, body), Utc::now());
    }
}

/// What a sink whose progress is `done` stores of a commit.
fn stored(c: &Commit, done: Option<i64>) -> Vec<(String, bool)> {
    c.after(done)
        .map(|c| {
            c.records
                .into_iter()
                .map(|r| (r.item.request_id, r.item.complete))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_restart_after_a_commit_writes_every_call_exactly_once() {
    let events: Vec<(i64, Vec<u8>)> = vec![
        (1, half("request", "early", 100)),
        (2, half("response", "early", 100)),
        // Logged with a clock behind the others: the first run's stream clock is ahead of it.
        (3, half("request", "late-clock", 0)),
        (4, half("request", "orphan", 150)),
        (5, half("response", "late-clock", 160)),
        (6, half("request", "after", 170)),
        (7, half("response", "after", 171)),
    ];

    // The uninterrupted run, for reference.
    let mut once = Ledger::new(config());
    feed(&mut once, &events);
    let mut reference = stored(&once.finish().pop().unwrap(), None);
    reference.sort();

    // A run that commits after event k (before event k + 1), then dies;
    // the restart replays from the resume point and the sink skips what it
    // has. Every k before the end: commits are cut only before an event.
    for k in 1..events.len() {
        let mut first = Ledger::new(config());
        feed(&mut first, &events[..k]);
        let (seq, body) = &events[k];
        let commit = first
            .commit_and_process(event(*seq, body), Utc::now())
            .unwrap();
        let mut lake = stored(&commit, None);

        let mut second = Ledger::new(config());
        second.resume_from(&commit.checkpoint);
        let replay: Vec<_> = events
            .iter()
            .filter(|(s, _)| *s >= commit.checkpoint.resume)
            .cloned()
            .collect();
        feed(&mut second, &replay);
        if let Some(c) = second.finish().pop() {
            lake.extend(stored(&c, Some(commit.last())));
        }
        lake.sort();
        assert_eq!(lake, reference, "restart after event {k}");
    }
    assert!(
        reference.contains(&("late-clock".to_string(), true)),
        "{reference:?}"
    );
    let ids: Vec<_> = reference.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["after", "early", "late-clock", "orphan"]);
}
