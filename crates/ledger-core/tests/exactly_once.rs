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

/// Feeds events received at `at` (wall clock).
fn feed_at(ledger: &mut Ledger, events: &[(i64, Vec<u8>)], at: DateTime<Utc>) {
    for (seq, body) in events {
        ledger.process(event(*seq, body), at);
    }
}

#[test]
fn an_orphan_on_a_quiet_partition_is_flushed_by_the_tick_and_owned_by_the_last_event() {
    let wall = Utc::now();
    let mut ledger = Ledger::new(config()).with_source("hub");
    feed_at(
        &mut ledger,
        &[
            (1, half("request", "done", 0)),
            (2, half("response", "done", 1)),
            (3, half("request", "orphan", 2)),
        ],
        wall,
    );
    // Held back: event 3 must own the orphan's flush.
    assert!(ledger.commit_idle("p").is_none());
    assert_eq!(ledger.tick(wall + Duration::seconds(59)), 0);
    assert!(ledger.commit_idle("p").is_none());
    assert_eq!(ledger.tick(wall + Duration::seconds(61)), 1);
    let c = ledger
        .commit_idle("p")
        .expect("the tail commits once nothing is pending");
    assert_eq!((c.first, c.last()), (1, 3));
    assert_eq!(
        stored(&c, None),
        vec![("done".to_string(), true), ("orphan".to_string(), false)]
    );
    assert!(c.checkpoint.pending.is_empty());
    assert_eq!(c.checkpoint.resume, 4);
    let a = c.accounting.expect("a whole commit has its accounting");
    assert_eq!((a.in_calls, a.pending), (3, 0));
    // Nothing left open: the next tick commits nothing.
    assert!(ledger.commit_idle("p").is_none());
}

#[test]
fn a_quiet_tail_without_pending_calls_commits_at_once() {
    let wall = Utc::now();
    let mut ledger = Ledger::new(config()).with_source("hub");
    feed_at(
        &mut ledger,
        &[(1, half("request", "a", 0)), (2, half("response", "a", 1))],
        wall,
    );
    let c = ledger.commit_idle("p").expect("nothing pending");
    assert_eq!((c.first, c.last(), c.records.len()), (1, 2, 1));
}

#[test]
fn a_restart_before_the_idle_commit_landed_flushes_the_orphan_once_under_the_same_owner() {
    let wall = Utc::now();
    let events = [
        (1, half("request", "a", 0)),
        (2, half("response", "a", 1)),
        (3, half("request", "orphan", 2)),
        (4, half("request", "b", 3)),
        (5, half("response", "b", 4)),
    ];
    // First run: a commit is cut before event 4 (the sink stores [1, 3]),
    // then the worker dies before the idle flush.
    let mut first = Ledger::new(config()).with_source("hub");
    feed_at(&mut first, &events[..3], wall);
    let c1 = first
        .commit_and_process(event(4, &events[3].1), wall)
        .expect("a commit before event 4");
    assert_eq!(c1.checkpoint.pending.len(), 1);
    let done = c1.last();

    // Second run: resumes from the commit, replays, goes quiet.
    let mut second = Ledger::new(config()).with_source("hub");
    second.resume_from(&c1.checkpoint);
    let wall2 = wall + Duration::seconds(5);
    let replay: Vec<_> = events
        .iter()
        .filter(|(s, _)| *s >= c1.checkpoint.resume)
        .cloned()
        .collect();
    feed_at(&mut second, &replay, wall2);
    assert_eq!(second.tick(wall2 + Duration::seconds(30)), 0);
    assert_eq!(second.tick(wall2 + Duration::seconds(61)), 1);
    let c2 = second.commit_idle("p").expect("flushed, then committed");
    assert_eq!(c2.last(), 5);
    let mut all = stored(&c1, None);
    all.extend(stored(&c2, Some(done)));
    all.sort();
    assert_eq!(
        all,
        vec![
            ("a".to_string(), true),
            ("b".to_string(), true),
            ("orphan".to_string(), false)
        ]
    );
}

#[test]
fn after_a_restart_a_flush_waits_for_an_event_past_the_commit_to_own_it() {
    let wall = Utc::now();
    let events = [
        (1, half("request", "orphan", 0)),
        (2, half("request", "a", 1)),
        (3, half("response", "a", 2)),
        (4, half("request", "x", 3)),
    ];
    // First run: the sink stores [1, 3] (cut before event 4), then the
    // process dies with the orphan pending.
    let mut first = Ledger::new(config()).with_source("hub");
    feed_at(&mut first, &events[..3], wall);
    let c1 = first
        .commit_and_process(event(4, &events[3].1), wall)
        .expect("a commit before event 4");
    assert_eq!((c1.last(), c1.checkpoint.resume), (3, 1));

    // Second run: the replay reads 1..=3, all committed. Until event 4 is
    // read, nothing uncommitted can own the orphan's flush: it waits.
    let mut second = Ledger::new(config()).with_source("hub");
    second.resume_from(&c1.checkpoint);
    feed_at(&mut second, &events[..3], wall);
    assert_eq!(second.tick(wall + Duration::seconds(61)), 0);
    assert!(
        second
            .commit_idle("p")
            .is_none_or(|c| stored(&c, Some(3)).is_empty())
    );
    // Event 4 comes (it exists: the first run read it).
    feed_at(&mut second, &events[3..], wall);
    assert_eq!(second.tick(wall + Duration::seconds(61)), 2);
    let c2 = second.commit_idle("p").expect("flushed, then committed");
    let mut all = stored(&c1, None);
    all.extend(stored(&c2, Some(c1.last())));
    all.sort();
    assert_eq!(
        all,
        vec![
            ("a".to_string(), true),
            ("orphan".to_string(), false),
            ("x".to_string(), false)
        ]
    );
}
