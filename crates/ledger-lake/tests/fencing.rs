//! A writer that finds another writer has committed its partition stops
//! writing from its stale state: the lake reports it fenced, the driver
//! reloads the partition from the lake's new checkpoint, and the lake ends
//! with every event accounted for once.

use std::io::Write;

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use ledger_core::{Checkpoint, Commit};
use ledger_lake::{Lake, Table};
use ledger_pipeline::{
    CommitPolicy, FileSource, Pipeline, Quiet, Sink, SinkError, Summary, Written,
};

fn capture(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    for n in 0..60i64 {
        let time = (t0 + Duration::seconds(n)).to_rfc3339();
        let id = format!("call-{n:04}");
        for kind in ["request", "response"] {
            let line = serde_json::json!({"schema":"ledger/v1","kind":kind,"requestId":id,
                "time":time,"status":200,"body":"{}"});
            writeln!(f, "{line}").unwrap();
        }
    }
}

fn pipeline() -> Pipeline {
    let policy = CommitPolicy {
        max_records: 5,
        ..CommitPolicy::default()
    };
    Pipeline::new(Default::default(), policy)
}

async fn ingest(input: &std::path::Path, sink: &mut dyn Sink) -> Summary {
    let mut source = FileSource::open(input.to_str().unwrap()).unwrap();
    pipeline()
        .run(&mut source, &mut [sink], &mut Quiet)
        .await
        .unwrap()
}

/// A lake whose first write is preceded by another writer ingesting the
/// whole input into the same lake.
struct Raced {
    lake: Lake,
    url: String,
    input: std::path::PathBuf,
    raced: bool,
    fenced: u32,
}

#[async_trait]
impl Sink for Raced {
    fn name(&self) -> &str {
        "raced"
    }

    async fn progress(&mut self, s: &str, p: &str) -> Result<Option<Checkpoint>, SinkError> {
        Sink::progress(&mut self.lake, s, p).await
    }

    async fn write(&mut self, commit: &Commit) -> Result<Written, SinkError> {
        if !self.raced {
            self.raced = true;
            let mut other = Lake::open(&self.url).unwrap();
            ingest(&self.input, &mut other).await;
        }
        let r = Sink::write(&mut self.lake, commit).await;
        if matches!(r, Err(SinkError::Fenced { .. })) {
            self.fenced += 1;
        }
        r
    }
}

#[tokio::test]
async fn a_fenced_writer_reloads_its_partition_and_writes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.jsonl");
    capture(&input);

    let clean_url = dir.path().join("clean").display().to_string();
    let clean = ingest(&input, &mut Lake::open(&clean_url).unwrap()).await;
    assert_eq!(clean.calls_written, 60);

    let url = dir.path().join("lake").display().to_string();
    let mut raced = Raced {
        lake: Lake::open(&url).unwrap(),
        url: url.clone(),
        input: input.clone(),
        raced: false,
        fenced: 0,
    };
    let summary = ingest(&input, &mut raced).await;
    assert_eq!(raced.fenced, 1, "fenced once, then reloaded");
    assert_eq!(summary.fenced, 1);
    assert_eq!(
        summary.calls_written, 0,
        "the other writer had written everything"
    );

    // The lake holds what one clean ingest holds: ranges that do not
    // overlap, and the same number of calls.
    let mut lake = Lake::open(&url).unwrap();
    let commits: Vec<_> = lake
        .history(Table::Calls)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| h.ledger)
        .collect();
    let calls: u64 = commits.iter().map(|c| c.calls).sum();
    assert_eq!(calls, 60);
    for pair in commits.windows(2) {
        assert!(pair[1].first > pair[0].last, "overlapping commits");
    }
    let rows: u64 = lake
        .snapshot(Table::Calls)
        .await
        .unwrap()
        .files
        .values()
        .map(|f| {
            let stats: serde_json::Value =
                serde_json::from_str(f.stats.as_deref().unwrap()).unwrap();
            stats["numRecords"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(rows, 60);
}
