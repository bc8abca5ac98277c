//! A writer that dies mid-ingest loses nothing and duplicates nothing: an
//! ingest in small batches is cut back to an earlier commit (its newest
//! manifests removed, as if the process died before writing them), run
//! again, and must end with the same calls as one clean ingest.

use std::io::Write;

use chrono::{Duration, TimeZone, Utc};
use ledger_core::ledger::LedgerConfig;
use ledger_lake::Lake;
use ledger_pipeline::{CommitPolicy, FileSource, Pipeline, Quiet, Sink};
use ledger_query::{LedgerQuery, QueryOptions};
use serde_json::json;

/// ledger/v1 calls whose requests are stamped by a clock 8 minutes behind
/// the responses' (more than the timeout), each response three calls after
/// its request. The first run's stream clock, set by the responses, keeps
/// every call alive; a replay from a resume point starts on a request's
/// late clock, and must not time anything out because of it.
fn late_clock_capture(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let half = |kind: &str, n: i64, secs: i64| {
        let time = (t0 + Duration::seconds(secs)).to_rfc3339();
        let body = if kind == "request" {
            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
        } else {
            "{\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}"
        };
        json!({"schema":"ledger/v1","kind":kind,"requestId":format!("late-{n:04}"),"time":time,"status":200,"body":body}).to_string()
    };
    writeln!(f, "{}", half("request", 9999, 0)).unwrap();
    writeln!(f, "{}", half("response", 9999, 0)).unwrap();
    for n in 0..200i64 {
        writeln!(f, "{}", half("request", n, n * 20 - 480)).unwrap();
        if n >= 3 {
            writeln!(f, "{}", half("response", n - 3, n * 20)).unwrap();
        }
    }
}

/// ledger/v1 calls, halves out of order, some halves far behind, a few
/// orphans and a malformed line.
fn capture(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let mut held = Vec::new();
    for n in 0..300i64 {
        let time = (t0 + Duration::seconds(n * 20)).to_rfc3339();
        let id = format!("call-{n:04}");
        let req = json!({"schema":"ledger/v1","kind":"request","requestId":id,"time":time,
            "operationId":"ChatCompletions_Create",
            "body":"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"});
        let resp = json!({"schema":"ledger/v1","kind":"response","requestId":id,"time":time,"status":200,
            "body":"{\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hello\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}"});
        let mut lines = vec![req.to_string(), resp.to_string()];
        if n % 5 == 0 {
            lines.reverse();
        }
        if n % 7 == 0 {
            held.push(lines.pop().unwrap());
        }
        if n % 11 == 0 {
            lines.pop(); // an orphan: its other half never comes
        }
        if n % 9 == 0
            && let Some(h) = held.pop()
        {
            lines.push(h);
        }
        if n == 150 {
            lines.push("{\"schema\":\"ledger/v1\",\"kind\":".into());
        }
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
    for h in held {
        writeln!(f, "{h}").unwrap();
    }
}

fn config() -> LedgerConfig {
    LedgerConfig {
        timeout: Duration::minutes(5),
        expiry_min_gap: 5,
        ..LedgerConfig::default()
    }
}

const LIMITS: CommitPolicy = CommitPolicy {
    max_bytes: 1 << 30,
    max_records: 13,
    max_interval_secs: 3600,
};

async fn ingest(input: &std::path::Path, lake: &str) {
    let mut lake = Lake::open(lake).unwrap();
    let mut src = FileSource::open(input.to_str().unwrap()).unwrap();
    Pipeline::new(config(), LIMITS)
        .run(&mut src, &mut [&mut lake as &mut dyn Sink], &mut Quiet)
        .await
        .unwrap();
}

async fn calls(lake: &str) -> Vec<String> {
    strings(
        lake,
        "SELECT request_id || ':' || CAST(complete AS VARCHAR) || ':' || CAST(eh_sequence_first AS VARCHAR) AS c FROM calls \
         UNION ALL SELECT 'dead:' || CAST(eh_sequence AS VARCHAR) FROM dead_letters ORDER BY 1",
    )
    .await
}

/// The events (line numbers) the lake's records and dead letters account
/// for, each as often as it is accounted for. With single-chunk halves a
/// call's parts are its first and last sequence numbers.
async fn accounted_events(lake: &str) -> Vec<i64> {
    let rows = strings(
        lake,
        "SELECT CAST(eh_sequence_first AS VARCHAR) || ',' || CAST(eh_sequence_last AS VARCHAR) FROM calls \
         UNION ALL SELECT CAST(eh_sequence AS VARCHAR) FROM dead_letters",
    )
    .await;
    let mut seqs: Vec<i64> = Vec::new();
    for r in rows {
        let mut parts: Vec<i64> = r.split(',').map(|x| x.parse().unwrap()).collect();
        parts.dedup();
        seqs.extend(parts);
    }
    seqs.sort_unstable();
    seqs
}

/// `audit` passes and accounts for every line of the input once.
async fn audit_accounts_for(lake: &str, input: &std::path::Path) {
    let lines = std::fs::read_to_string(input).unwrap().lines().count() as u64;
    let mut lake = Lake::open_existing(lake).unwrap();
    let report = lake.audit(&Default::default()).await.unwrap();
    assert!(report.passed(), "{:?}", report.problems());
    let events: u64 = report.partitions.iter().map(|p| p.accounted.events()).sum();
    assert_eq!(events, lines, "{:?}", report.partitions);
}

async fn strings(lake: &str, sql: &str) -> Vec<String> {
    let mut lake = Lake::open(lake).unwrap();
    let q = LedgerQuery::open(&mut lake, &QueryOptions::default())
        .await
        .unwrap();
    let batches = q.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let col = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let col = datafusion::arrow::array::as_string_array(&col);
        out.extend(col.iter().flatten().map(str::to_string));
    }
    out
}

/// Undoes a table's newest `n` commits, as if the writer had died after
/// writing their data files and before writing the commit files: the
/// commit files go, and so do checkpoints of versions that no longer exist.
fn uncommit_newest(table: &std::path::Path, n: usize) {
    let log = table.join("_delta_log");
    let version = |p: &std::path::Path| -> Option<i64> {
        p.file_name()?.to_str()?.split('.').next()?.parse().ok()
    };
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    let Some(oldest_gone) = commits
        .get(commits.len().saturating_sub(n))
        .and_then(|p| version(p))
    else {
        return;
    };
    for entry in std::fs::read_dir(&log).unwrap() {
        let p = entry.unwrap().path();
        if version(&p).is_some_and(|v| v >= oldest_gone) {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let last = log.join("_last_checkpoint");
    if let Ok(bytes) = std::fs::read(&last) {
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if v["version"].as_i64().unwrap() >= oldest_gone {
            std::fs::remove_file(&last).unwrap();
        }
    }
}

#[tokio::test]
async fn dying_before_a_commit_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, make) in [
        ("mixed", capture as fn(&std::path::Path)),
        ("late-clock", late_clock_capture),
    ] {
        let input = dir.path().join(format!("{name}.jsonl"));
        make(&input);
        check_restarts(dir.path(), name, &input).await;
    }
}

async fn check_restarts(dir: &std::path::Path, name: &str, input: &std::path::Path) {
    let input = input.to_path_buf();
    let clean = dir.join(format!("{name}-clean")).display().to_string();
    ingest(&input, &clean).await;
    let expected = calls(&clean).await;
    audit_accounts_for(&clean, &input).await;
    let clean_events = accounted_events(&clean).await;
    let mut distinct = clean_events.clone();
    distinct.dedup();
    assert_eq!(distinct, clean_events, "no event is accounted for twice");
    if name == "mixed" {
        assert!(
            expected.len() > 300,
            "calls, partials and a dead letter: {}",
            expected.len()
        );
        assert!(
            expected.iter().any(|c| c.contains(":false:")),
            "some partial calls"
        );
        assert!(expected.iter().any(|c| c.starts_with("dead:")));
    } else {
        let odd: Vec<_> = expected.iter().filter(|c| !c.contains(":true:")).collect();
        assert_eq!(expected.len(), 201, "{odd:?}");
        assert!(
            odd.iter()
                .all(|c| ["late-0197", "late-0198", "late-0199"].contains(&&c[..9])),
            "late clocks are no reason to time out"
        );
    }

    for cut in [1, 2, 5, 9, 17] {
        let lake = dir.join(format!("{name}-cut-{cut}"));
        let url = lake.display().to_string();
        ingest(&input, &url).await;
        for table in ["calls", "dead_letters"] {
            uncommit_newest(&lake.join(table), cut);
        }
        ingest(&input, &url).await;
        // Every event is in exactly one record or dead letter, as in the
        // clean run. (Which records they form may differ: after a restart
        // the pending calls' timeouts start again, so a call the clean run
        // split into two partials can come out whole.)
        let accounted = accounted_events(&url).await;
        assert_eq!(
            accounted, clean_events,
            "{name}: after dying {cut} commits before the end"
        );
        let ids = |v: Vec<String>| {
            let mut ids: Vec<String> = v
                .iter()
                .map(|c| c.split(':').next().unwrap().to_string())
                .collect();
            ids.dedup();
            ids
        };
        assert_eq!(ids(calls(&url).await), ids(expected.clone()));
        audit_accounts_for(&url, &input).await;
        // And once more: nothing changes.
        ingest(&input, &url).await;
        assert_eq!(accounted_events(&url).await, accounted);
        audit_accounts_for(&url, &input).await;
    }
}
