//! Not a timed test: rows/s of the PostgreSQL bulk path against row-by-row
//! inserts of the same calls, and against the lake's write speed. Run it
//! by hand (release build, the local server):
//!
//! ```sh
//! cargo test --release -p ledger-sql --test bench -- --ignored --nocapture
//! ```

use std::time::Instant;

use ledger_core::checkpoint::Owned;
use ledger_core::{CallRecord, Checkpoint, Commit};
use ledger_lake::Lake;
use ledger_pipeline::Sink;
use ledger_sql::ddl::{self, EngineKind};
use ledger_sql::{DbSecrets, DbSettings, SqlSink};
use tokio_postgres::NoTls;

const CALLS: usize = 20_000;
const PER_COMMIT: usize = 5_000;

fn record(i: usize) -> CallRecord {
    CallRecord {
        request_id: format!("bench-{i:08}"),
        eh_partition: "0".into(),
        eh_sequence_first: i as i64,
        eh_sequence_last: i as i64,
        request_time: chrono::DateTime::from_timestamp(1_795_000_000 + i as i64, 0),
        caller_ip: Some(format!("10.0.{}.{}", i % 250, i % 7)),
        subscription_id: Some(format!("sub-{}", i % 20)),
        model: Some("gpt-4o-2024-08-06".into()),
        deployment: Some("gpt-4o".into()),
        prompt_tokens: Some(100 + (i % 50) as i64),
        completion_tokens: Some(20),
        total_tokens: Some(120 + (i % 50) as i64),
        cost: Some(rust_decimal::Decimal::new(15 * i as i64, 10)),
        prompt_text: Some(format!(
            "[{{\"role\":\"user\",\"content\":\"question {i} {}\"}}]",
            "x".repeat(400)
        )),
        response_text: Some("an answer of a few words".repeat(10)),
        complete: true,
        ..Default::default()
    }
}

fn commits(source: &str) -> Vec<Commit> {
    (0..CALLS / PER_COMMIT)
        .map(|c| {
            let first = (c * PER_COMMIT + 1) as i64;
            let last = ((c + 1) * PER_COMMIT) as i64;
            Commit {
                checkpoint: Checkpoint {
                    source: source.into(),
                    partition: "0".into(),
                    last,
                    resume: last + 1,
                    pending: vec![],
                    clock: None,
                },
                first,
                records: (first..=last)
                    .map(|i| Owned {
                        owner: i,
                        item: record(i as usize),
                    })
                    .collect(),
                dead_letters: vec![],
                lost: vec![],
                accounting: None,
            }
        })
        .collect()
}

fn rate(label: &str, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label}: {CALLS} calls in {secs:.2} s = {:.0} rows/s",
        CALLS as f64 / secs
    );
}

#[tokio::test]
#[ignore = "a benchmark: run by hand"]
async fn bulk_against_row_by_row_and_the_lake() {
    let schema = "bench";
    let (client, conn) = tokio_postgres::connect("host=127.0.0.1 user=postgres dbname=test", NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
    let settings = DbSettings {
        url: format!("postgres://postgres@127.0.0.1/test?sslmode=disable&schema={schema}"),
        ..DbSettings::default()
    };
    let mut db = SqlSink::open(&settings, &DbSecrets::default())
        .await
        .unwrap();
    let batches = commits("bench");
    let started = Instant::now();
    for c in &batches {
        db.write(c).await.unwrap();
    }
    rate(
        "PostgreSQL, bulk (COPY + merge, one transaction per commit)",
        started,
    );
    // The same calls again from another source: every record merges into
    // its stored row.
    let again = commits("bench-again");
    let started = Instant::now();
    for c in &again {
        db.write(c).await.unwrap();
    }
    rate(
        "PostgreSQL, bulk, every call merged into its stored row",
        started,
    );

    // The same rows, one INSERT each (prepared), one transaction per commit.
    client
        .batch_execute(&format!(
            "SET search_path TO {schema}; CREATE TABLE calls_rows (LIKE calls INCLUDING ALL)"
        ))
        .await
        .unwrap();
    let cols = ddl::column_list(EngineKind::Postgres, "");
    let params: Vec<String> = (1..=ledger_core::columns::CALL_COLUMNS.len())
        .map(|i| format!("${i}"))
        .collect();
    let insert = format!(
        "INSERT INTO calls_rows ({cols}) VALUES ({})",
        params.join(", ")
    );
    let mut client = client;
    let started = Instant::now();
    for c in &batches {
        let tx = client.transaction().await.unwrap();
        let statement = tx.prepare(&insert).await.unwrap();
        for r in &c.records {
            let cells = ledger_sql::values::call_row(&r.item);
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = cells
                .iter()
                .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            tx.execute(&statement, &refs).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    rate("PostgreSQL, row by row (prepared INSERT)", started);

    let dir = tempfile::tempdir().unwrap();
    let mut lake = Lake::open(&dir.path().display().to_string()).unwrap();
    let started = Instant::now();
    for c in &batches {
        lake.write(c).await.unwrap();
    }
    rate("lake (local directory)", started);
}
