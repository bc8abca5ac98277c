//! The driver against sinks whose progress differs: each must get exactly
//! what it lacks, and together with what it had, hold every call once.

use std::io::Write;

use chrono::{Duration, TimeZone, Utc};
use ledger_core::Checkpoint;
use ledger_core::ledger::LedgerConfig;
use ledger_pipeline::{CommitPolicy, FileSource, MemorySink, Pipeline, Quiet, Sink};
use serde_json::json;

/// ledger/v1 calls with halves out of order, some far apart, orphans and
/// a malformed line; no timeout fires (the timeout is longer than the
/// capture), so every run forms the same records.
fn capture(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let mut held = Vec::new();
    for n in 0..120i64 {
        let time = (t0 + Duration::seconds(n)).to_rfc3339();
        let id = format!("call-{n:04}");
        let req = json!({"schema":"ledger/v1","kind":"request","requestId":id,"time":time,
            "body":"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"});
        let resp = json!({"schema":"ledger/v1","kind":"response","requestId":id,"time":time,
            "status":200,"body":"{\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[]}"});
        let mut lines = vec![req.to_string(), resp.to_string()];
        if n % 4 == 0 {
            lines.reverse();
        }
        if n % 6 == 0 {
            held.push(lines.pop().unwrap());
        }
        if n % 13 == 0 {
            lines.pop();
        }
        if n % 5 == 0
            && let Some(h) = held.pop()
        {
            lines.push(h);
        }
        if n == 60 {
            lines.push("{\"schema\":\"ledger/v1\",".into());
        }
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
    for h in held {
        writeln!(f, "{h}").unwrap();
    }
}

fn pipeline() -> Pipeline {
    let config = LedgerConfig {
        timeout: Duration::hours(1),
        ..LedgerConfig::default()
    };
    let policy = CommitPolicy {
        max_records: 7,
        ..CommitPolicy::default()
    };
    Pipeline::new(config, policy)
}

async fn run(input: &std::path::Path, sinks: &mut [&mut dyn Sink]) -> ledger_pipeline::Summary {
    let mut source = FileSource::open(input.to_str().unwrap()).unwrap();
    pipeline()
        .run(&mut source, sinks, &mut Quiet)
        .await
        .unwrap()
}

/// (owner, request id or dead letter, complete) of everything a sink got.
fn contents(sink: &MemorySink) -> Vec<(i64, String, bool)> {
    let mut out: Vec<_> = sink
        .commits
        .iter()
        .flat_map(|c| {
            let records = c
                .records
                .iter()
                .map(|r| (r.owner, r.item.request_id.clone(), r.item.complete));
            let dead = c
                .dead_letters
                .iter()
                .map(|d| (d.owner, format!("dead:{}", d.item.eh_sequence), false));
            records.chain(dead).collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn two_sinks_each_get_exactly_what_they_lack() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.jsonl");
    capture(&input);

    let mut reference = MemorySink::new("reference");
    let clean = run(&input, &mut [&mut reference]).await;
    assert!(
        reference.commits.len() > 10,
        "{} commits",
        reference.commits.len()
    );
    let all = contents(&reference);
    assert_eq!(
        all.len() as u64,
        clean.calls_written + clean.dead_letters_written
    );

    // Two sinks that stored the clean run up to different commits.
    let at = |k: usize| -> Checkpoint { reference.commits[k].checkpoint.clone() };
    let (a_at, b_at) = (at(2), at(8));
    let mut a = MemorySink::new("a").with_checkpoint(a_at.clone());
    let mut b = MemorySink::new("b").with_checkpoint(b_at.clone());
    let summary = run(&input, &mut [&mut a, &mut b]).await;

    for (sink, had) in [(&a, &a_at), (&b, &b_at)] {
        let got = contents(sink);
        assert!(
            got.iter().all(|(owner, _, _)| *owner > had.last),
            "{} got a record it had",
            sink.name()
        );
        assert!(
            sink.commits.iter().all(|c| c.first > had.last),
            "{} got a range it had",
            sink.name()
        );
        let expected: Vec<_> = all
            .iter()
            .filter(|(owner, _, _)| *owner > had.last)
            .cloned()
            .collect();
        assert_eq!(got, expected, "{} got exactly what it lacked", sink.name());
    }
    assert!(contents(&a).len() > contents(&b).len());
    assert_eq!(summary.fenced, 0);

    // Run again: both are complete now, nothing is written.
    let again = run(&input, &mut [&mut a, &mut b]).await;
    assert_eq!((again.calls_written, again.commits), (0, 0));
}

/// A source of one partition that reports its first events expired, then
/// yields the rest, then loses a second partition it had announced.
struct Scripted {
    items: std::collections::VecDeque<ledger_pipeline::SourceItem>,
    opened: Vec<(String, ledger_pipeline::StartAt)>,
}

#[async_trait::async_trait]
impl ledger_pipeline::Source for Scripted {
    fn id(&self) -> &str {
        "ns/hub/$Default"
    }

    fn name(&self) -> &str {
        "scripted"
    }

    async fn open(
        &mut self,
        partition: &str,
        at: ledger_pipeline::StartAt,
    ) -> Result<(), ledger_pipeline::SourceError> {
        self.opened.push((partition.to_string(), at));
        Ok(())
    }

    async fn next(
        &mut self,
    ) -> Result<Option<ledger_pipeline::SourceItem>, ledger_pipeline::SourceError> {
        let item = self.items.pop_front();
        if matches!(item, Some(ledger_pipeline::SourceItem::Idle)) {
            // A live source's quiet moment: wall time passes.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(item)
    }
}

#[tokio::test]
async fn expired_ranges_are_committed_as_lost_and_a_lost_partition_writes_nothing() {
    use ledger_core::checkpoint::SeqRange;
    use ledger_core::{Position, RawEvent};
    use ledger_pipeline::SourceItem;

    let event = |partition: &str, sequence: i64, kind: &str| {
        let body = json!({"schema":"ledger/v1","kind":kind,"requestId":format!("{partition}-r"),
            "status":200,"body":"{}"});
        SourceItem::Event(RawEvent {
            position: Position {
                partition: partition.into(),
                sequence,
            },
            offset: None,
            enqueued_time: None,
            body: body.to_string().into_bytes(),
        })
    };
    let mut source = Scripted {
        items: [
            SourceItem::Gained("0".into()),
            SourceItem::Gained("1".into()),
            SourceItem::Expired {
                partition: "0".into(),
                range: SeqRange { first: 1, last: 3 },
            },
            event("0", 4, "request"),
            event("1", 10, "request"),
            event("0", 5, "response"),
            SourceItem::Lost("1".into()),
        ]
        .into(),
        opened: vec![],
    };
    let mut sink = MemorySink::new("memory");
    let summary = pipeline()
        .run(&mut source, &mut [&mut sink as &mut dyn Sink], &mut Quiet)
        .await
        .unwrap();

    use ledger_pipeline::StartAt;
    assert_eq!(
        source.opened,
        [
            ("0".into(), StartAt::Earliest),
            ("1".into(), StartAt::Earliest)
        ]
    );
    assert_eq!(summary.lost_events, 3);
    assert_eq!(
        sink.commits.len(),
        1,
        "partition 1 was lost: nothing of it is written"
    );
    let c = &sink.commits[0];
    assert_eq!((c.source(), c.partition()), ("ns/hub/$Default", "0"));
    assert_eq!((c.first, c.last()), (1, 5));
    assert_eq!(c.lost, [SeqRange { first: 1, last: 3 }]);
    assert_eq!(sink.records.len(), 1);
    assert!(sink.records[0].complete);
}

/// A sink that another writer is always ahead of.
struct AlwaysFenced;

#[async_trait::async_trait]
impl Sink for AlwaysFenced {
    fn name(&self) -> &str {
        "always-fenced"
    }

    async fn progress(
        &mut self,
        _: &str,
        _: &str,
    ) -> Result<Option<Checkpoint>, ledger_pipeline::SinkError> {
        Ok(None)
    }

    async fn write(
        &mut self,
        commit: &ledger_core::Commit,
    ) -> Result<ledger_pipeline::Written, ledger_pipeline::SinkError> {
        Err(ledger_pipeline::SinkError::Fenced {
            sink: "always-fenced".into(),
            source_id: commit.source().into(),
            partition: commit.partition().into(),
            ours: None,
            theirs: i64::MAX,
        })
    }
}

#[tokio::test]
async fn a_partition_fenced_again_and_again_is_stopped_and_the_run_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.jsonl");
    capture(&input);
    let summary = run(&input, &mut [&mut AlwaysFenced]).await;
    assert_eq!(summary.fenced, 4, "three reloads, then the partition stops");
    assert_eq!((summary.calls_written, summary.commits), (0, 0));
}

fn live_event(sequence: i64, kind: &str, id: &str) -> ledger_pipeline::SourceItem {
    let body = json!({"schema":"ledger/v1","kind":kind,"requestId":id,"status":200,"body":"{}"});
    ledger_pipeline::SourceItem::Event(ledger_core::RawEvent {
        position: ledger_core::Position {
            partition: "0".into(),
            sequence,
        },
        offset: None,
        enqueued_time: None,
        body: body.to_string().into_bytes(),
    })
}

fn live_pipeline() -> Pipeline {
    let config = LedgerConfig {
        timeout: Duration::seconds(1),
        ..LedgerConfig::default()
    };
    let policy = CommitPolicy {
        max_interval_secs: 1,
        ..CommitPolicy::default()
    };
    Pipeline::live(config, policy, std::time::Duration::from_millis(10))
}

#[tokio::test]
async fn a_live_run_flushes_an_orphan_on_a_quiet_partition_and_commits_the_tail() {
    use ledger_pipeline::SourceItem;
    let mut items = vec![
        SourceItem::Gained("0".into()),
        live_event(1, "request", "a"),
        live_event(2, "response", "a"),
        live_event(3, "request", "orphan"),
    ];
    // About 2 s of quiet: more than the timeout and the commit interval.
    items.extend((0..40).map(|_| SourceItem::Idle));
    let mut source = Scripted {
        items: items.into(),
        opened: vec![],
    };
    let mut sink = MemorySink::new("memory");
    live_pipeline()
        .run(&mut source, &mut [&mut sink as &mut dyn Sink], &mut Quiet)
        .await
        .unwrap();
    assert_eq!(
        sink.commits.len(),
        1,
        "one commit, once the orphan was flushed"
    );
    let c = &sink.commits[0];
    assert_eq!((c.first, c.last()), (1, 3));
    assert!(c.checkpoint.pending.is_empty());
    let mut got: Vec<(String, bool)> = sink
        .records
        .iter()
        .map(|r| (r.request_id.clone(), r.complete))
        .collect();
    got.sort();
    assert_eq!(got, [("a".into(), true), ("orphan".into(), false)]);
}

#[tokio::test]
async fn stopping_a_live_run_flushes_nothing_and_holds_back_a_partition_that_owns_a_pending_call() {
    use ledger_pipeline::SourceItem;
    let mut source = Scripted {
        items: [
            SourceItem::Gained("0".into()),
            live_event(1, "request", "b"),
            live_event(2, "response", "b"),
            live_event(3, "request", "waiting"),
        ]
        .into(),
        opened: vec![],
    };
    let mut sink = MemorySink::new("memory");
    live_pipeline()
        .run(&mut source, &mut [&mut sink as &mut dyn Sink], &mut Quiet)
        .await
        .unwrap();
    // Event 3 must stay uncommitted to own the waiting call's flush after
    // the restart; the next run re-reads the partition from its start.
    assert!(sink.commits.is_empty());
    assert!(sink.records.is_empty());

    let mut source = Scripted {
        items: [
            SourceItem::Gained("0".into()),
            live_event(1, "request", "b"),
            live_event(2, "response", "b"),
        ]
        .into(),
        opened: vec![],
    };
    live_pipeline()
        .run(&mut source, &mut [&mut sink as &mut dyn Sink], &mut Quiet)
        .await
        .unwrap();
    assert_eq!(sink.commits.len(), 1, "nothing pending: the tail commits");
    assert_eq!(sink.records.len(), 1);
}
