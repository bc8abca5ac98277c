//! The relational sink against the real PostgreSQL of this machine
//! (127.0.0.1:5432, user postgres, database test; `.ci/run` starts it).
//! Each test works in a schema of its own. Without a server the tests fail
//! under CI=true and say they were skipped otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ledger_core::assemble::partial_warning;
use ledger_core::checkpoint::Owned;
use ledger_core::{CallRecord, Checkpoint, Commit, DeadLetter, Dialect, Role, merge};
use ledger_lake::{Lake, Table};
use ledger_pipeline::{
    CommitPolicy, FileSource, LedgerSettings, Pipeline, Quiet, Secrets, Sink, SinkError,
};
use ledger_sql::config::Target;
use ledger_sql::postgres::{Fault, PgEngine};
use ledger_sql::{DbSecrets, DbSettings, SqlSink};
use rust_decimal::Decimal;
use tokio_postgres::{Client, NoTls};

const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A connection for checks, in the test's schema; None (the test is
/// skipped) when no server answers outside CI.
async fn server(schema: &str) -> Option<Client> {
    match tokio_postgres::connect(SERVER, NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
                ))
                .await
                .unwrap();
            Some(client)
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL at 127.0.0.1:5432 is unreachable under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL at 127.0.0.1:5432 is unreachable ({e})");
            None
        }
    }
}

fn url(schema: &str) -> String {
    format!(
        "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&schema={schema}&application_name=ledger-test-{schema}"
    )
}

fn target(schema: &str) -> Target {
    Target::parse(&url(schema), &DbSecrets::default()).unwrap()
}

async fn sink(schema: &str) -> SqlSink {
    let settings = DbSettings {
        url: url(schema),
        ..DbSettings::default()
    };
    SqlSink::open(&settings, &DbSecrets::default())
        .await
        .unwrap()
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn corpus() -> String {
    repo()
        .join("tests/fixtures/corpus/corpus.jsonl")
        .display()
        .to_string()
}

async fn ingest(path: &str, sinks: &mut [&mut dyn Sink]) -> ledger_pipeline::Summary {
    let config = LedgerSettings::default()
        .build(&Secrets::default())
        .unwrap();
    let policy = CommitPolicy {
        max_records: 64,
        ..CommitPolicy::default()
    };
    let mut source = FileSource::open(path).unwrap();
    Pipeline::new(config, policy)
        .run(&mut source, sinks, &mut Quiet)
        .await
        .unwrap()
}

fn checkpoint(partition: &str, last: i64) -> Checkpoint {
    Checkpoint {
        source: "test-source".into(),
        partition: partition.into(),
        last,
        resume: last + 1,
        pending: vec![],
        clock: None,
    }
}

fn commit(partition: &str, first: i64, last: i64, records: Vec<CallRecord>) -> Commit {
    Commit {
        checkpoint: checkpoint(partition, last),
        first,
        records: records
            .into_iter()
            .enumerate()
            .map(|(i, item)| Owned {
                owner: first + i as i64,
                item,
            })
            .collect(),
        dead_letters: vec![],
        lost: vec![],
        accounting: None,
    }
}

fn call(id: &str) -> CallRecord {
    CallRecord {
        request_id: id.into(),
        eh_partition: "p0".into(),
        dialect: Dialect::LedgerV1,
        complete: true,
        request_time: "2026-11-24T10:00:00.123456Z".parse().ok(),
        model: Some("gpt-4o".into()),
        prompt_tokens: Some(10),
        cost: Some(Decimal::new(15, 7)),
        ..Default::default()
    }
}

async fn stored(client: &Client) -> Vec<CallRecord> {
    ledger_sql::postgres::read_all_calls(client).await.unwrap()
}

/// The lake's calls rows.
async fn lake_rows(dir: &Path) -> Vec<CallRecord> {
    let mut lake = Lake::open(&dir.display().to_string()).unwrap();
    let snap = lake.snapshot(Table::Calls).await.unwrap();
    let mut out = Vec::new();
    for add in snap.files.values() {
        let bytes = std::fs::read(dir.join("calls").join(&add.path)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            out.extend(ledger_lake::schema::calls_from_batch(&batch.unwrap()).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn migrations_apply_from_empty_then_are_a_no_op() {
    let schema = "t_migrate";
    let Some(client) = server(schema).await else {
        return;
    };
    let settings = DbSettings {
        url: url(schema),
        migrate: false,
        ..DbSettings::default()
    };
    let mut db = SqlSink::open(&settings, &DbSecrets::default())
        .await
        .unwrap();
    let first = db.migrate().await.unwrap();
    assert_eq!(first.applied, vec![1, 2]);
    let again = db.migrate().await.unwrap();
    assert_eq!((again.applied.len(), again.already), (0, 2));
    assert_eq!(count(&client, "calls").await, 0);
    assert_eq!(count(&client, "schema_migrations").await, 2);
    // A changed migration is refused.
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'x' WHERE version = 2",
            &[],
        )
        .await
        .unwrap();
    let e = db.migrate().await.unwrap_err().to_string();
    assert!(
        e.contains("migration 2 was applied with another text"),
        "{e}"
    );
}

/// The corpus through the lake and the database in one run: one row per
/// call, every column equal to the lake's row of that call; a second
/// ingest adds nothing.
#[tokio::test]
async fn the_corpus_gives_the_lake_rows_once() {
    let schema = "t_corpus";
    let Some(client) = server(schema).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut lake = Lake::open(&dir.path().display().to_string()).unwrap();
    let mut db = sink(schema).await;
    let summary = ingest(&corpus(), &mut [&mut lake, &mut db]).await;
    assert!(summary.calls_written > 400, "{summary:?}");

    let lake = lake_rows(dir.path()).await;
    let mut by_call: BTreeMap<(String, String), Vec<CallRecord>> = BTreeMap::new();
    for r in lake {
        by_call
            .entry((r.dialect.as_str().to_string(), r.request_id.clone()))
            .or_default()
            .push(r);
    }
    let rows = stored(&client).await;
    assert_eq!(rows.len(), by_call.len(), "one row per call");
    let mut beside = 0;
    for row in &rows {
        let key = (row.dialect.as_str().to_string(), row.request_id.clone());
        let copies = &by_call[&key];
        // A late half the lake keeps beside a complete row is merged into
        // it here (one row per primary key).
        let expected = match copies.as_slice() {
            [one] => one.clone(),
            many => {
                beside += 1;
                many[1..]
                    .iter()
                    .fold(many[0].clone(), |a, b| merge::merge(&a, b))
            }
        };
        assert_eq!(row, &expected, "{key:?}");
    }
    eprintln!(
        "{} calls, {} of them with a late half beside a complete row in the lake",
        rows.len(),
        beside
    );
    let dead = count(&client, "dead_letters").await;
    assert_eq!(dead as u64, summary.dead_letters_written);
    assert!(dead > 0);

    // Again, with a new sink that reads its progress from the database.
    let mut again = sink(schema).await;
    let second = ingest(&corpus(), &mut [&mut again]).await;
    assert_eq!((second.calls_written, second.dead_letters_written), (0, 0));
    assert_eq!(count(&client, "calls").await as usize, rows.len());
    assert_eq!(count(&client, "dead_letters").await, dead);
    let commits = count(&client, "ingest_commits").await;
    assert!(commits > 5, "the corpus took several commits: {commits}");
}

#[tokio::test]
async fn a_writer_killed_before_commit_leaves_nothing() {
    let schema = "t_killed";
    let Some(client) = server(schema).await else {
        return;
    };
    sink(schema).await; // migrations
    let engine = PgEngine::new(target(schema)).with_fault(Fault::KillBeforeCommit);
    let mut db = SqlSink::new(Box::new(engine));
    db.retry.attempts = 1;
    let c = commit("p0", 1, 3, vec![call("a"), call("b"), call("c")]);
    let e = db.write(&c).await.unwrap_err();
    assert!(matches!(e, SinkError::Failed { .. }), "{e}");
    assert_eq!(count(&client, "calls").await, 0);
    assert_eq!(count(&client, "ingest_progress").await, 0);
    assert_eq!(count(&client, "ingest_commits").await, 0);
    // A restarted writer stores the commit whole, once.
    let mut db = sink(schema).await;
    assert_eq!(db.progress("test-source", "p0").await.unwrap(), None);
    assert_eq!(db.write(&c).await.unwrap().calls, 3);
    assert_eq!(db.write(&c).await.unwrap().calls, 0);
    assert_eq!(count(&client, "calls").await, 3);
}

#[tokio::test]
async fn transient_errors_are_retried_on_a_new_connection() {
    let schema = "t_retry";
    let Some(client) = server(schema).await else {
        return;
    };
    sink(schema).await;
    // Killed inside the transaction: retried whole.
    let engine = PgEngine::new(target(schema)).with_fault(Fault::KillBeforeCommit);
    let mut db = SqlSink::new(Box::new(engine));
    let w = db
        .write(&commit("p0", 1, 2, vec![call("a"), call("b")]))
        .await
        .unwrap();
    assert_eq!(w.calls, 2);
    // Killed between commits, by the server's administrator.
    let killed: Vec<tokio_postgres::Row> = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("ledger-test-{schema}")],
        )
        .await
        .unwrap();
    assert!(!killed.is_empty());
    let w = db
        .write(&commit("p0", 3, 3, vec![call("c")]))
        .await
        .unwrap();
    assert_eq!(w.calls, 1);
    assert_eq!(count(&client, "calls").await, 3);
    let last: i64 = client
        .query_one("SELECT last FROM ingest_progress", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(last, 3);
}

#[tokio::test]
async fn a_zombie_writer_is_fenced() {
    let schema = "t_fence";
    let Some(client) = server(schema).await else {
        return;
    };
    let mut old = sink(schema).await;
    let mut new = sink(schema).await;
    assert_eq!(old.progress("test-source", "p0").await.unwrap(), None);
    assert_eq!(new.progress("test-source", "p0").await.unwrap(), None);
    // The new owner commits first; the zombie's commit of the same range,
    // then of a later one, is rejected whole.
    new.write(&commit("p0", 1, 2, vec![call("a"), call("b")]))
        .await
        .unwrap();
    let e = old
        .write(&commit("p0", 1, 2, vec![call("a"), call("zombie")]))
        .await
        .unwrap_err();
    match e {
        SinkError::Fenced { ours, theirs, .. } => assert_eq!((ours, theirs), (None, 2)),
        other => panic!("not fenced: {other}"),
    }
    new.write(&commit("p0", 3, 4, vec![call("c")]))
        .await
        .unwrap();
    let mut zombie = sink(schema).await;
    zombie.progress("test-source", "p0").await.unwrap();
    new.write(&commit("p0", 5, 5, vec![call("d")]))
        .await
        .unwrap();
    let e = zombie
        .write(&commit("p0", 5, 6, vec![call("zombie")]))
        .await
        .unwrap_err();
    match e {
        SinkError::Fenced { ours, theirs, .. } => assert_eq!((ours, theirs), (Some(4), 5)),
        other => panic!("not fenced: {other}"),
    }
    let ids: Vec<String> = stored(&client)
        .await
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    // After reloading, the fenced writer resumes from the new checkpoint.
    let cp = zombie.progress("test-source", "p0").await.unwrap().unwrap();
    assert_eq!(cp.last, 5);
}

fn half(id: &str, role: Role, partition: &str) -> CallRecord {
    let mut r = CallRecord {
        request_id: id.into(),
        eh_partition: partition.into(),
        dialect: Dialect::EnterpriseLoggingTf,
        warnings: vec![partial_warning([role].into_iter())],
        ..Default::default()
    };
    match role {
        Role::Request => {
            r.prompt_text = Some("[\"hi\"]".into());
            r.request_time = "2026-11-24T10:00:00Z".parse().ok();
        }
        _ => {
            r.status_code = Some(200);
            r.response_text = Some("hello".into());
            r.response_time = "2026-11-24T10:00:02Z".parse().ok();
        }
    }
    r
}

/// Halves committed from two partitions (the tf dialect's layout) become
/// one complete row, as the lake merges them.
#[tokio::test]
async fn halves_committed_apart_are_one_row() {
    let schema = "t_halves";
    let Some(client) = server(schema).await else {
        return;
    };
    let mut a = sink(schema).await;
    let mut b = sink(schema).await;
    let req = commit("0", 1, 1, vec![half("x", Role::Request, "0")]);
    let resp = commit("1", 1, 1, vec![half("x", Role::Response, "1")]);
    let wa = a.write(&req).await.unwrap();
    let wb = b.write(&resp).await.unwrap();
    assert_eq!((wa.merged_calls, wb.merged_calls), (0, 1));
    let rows = stored(&client).await;
    assert_eq!(rows.len(), 1);
    let expected = merge::merge(&req.records[0].item, &resp.records[0].item);
    assert!(expected.complete);
    assert_eq!(rows[0], expected);
    // Concurrently, in fresh calls: still one row each, complete.
    for round in 0..5 {
        let id = format!("y{round}");
        let req = commit(
            "0",
            2 + round,
            2 + round,
            vec![half(&id, Role::Request, "0")],
        );
        let resp = commit(
            "1",
            2 + round,
            2 + round,
            vec![half(&id, Role::Response, "1")],
        );
        let (ra, rb) = tokio::join!(a.write(&req), b.write(&resp));
        assert_eq!(ra.unwrap().merged_calls + rb.unwrap().merged_calls, 1);
    }
    let rows = stored(&client).await;
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.complete), "{rows:#?}");
}

/// Every value a column cannot hold is replaced, with a warning, and the
/// batch is stored.
#[tokio::test]
async fn bad_values_are_replaced_with_a_warning() {
    let schema = "t_bad";
    let Some(client) = server(schema).await else {
        return;
    };
    let mut db = sink(schema).await;
    let long_ip = CallRecord {
        caller_ip: Some("9".repeat(1000)),
        ..call("long")
    };
    let long_id = call(&"r".repeat(400));
    let big_cost = CallRecord {
        cost: Some(Decimal::from_i128_with_scale(10i128.pow(20), 0)),
        ..call("cost")
    };
    let far_time = CallRecord {
        request_time: "+20000-01-01T00:00:00Z".parse::<DateTime<Utc>>().ok(),
        ..call("time")
    };
    let nul = CallRecord {
        response_text: Some("before\0after".into()),
        ..call("nul")
    };
    let surrogate = CallRecord {
        prompt_text: Some(r#"[{"role":"user","content":"\ud800 alone"}]"#.into()),
        ..call("surrogate")
    };
    let mut c = commit(
        "p0",
        1,
        7,
        vec![long_ip, long_id, big_cost, far_time, nul, surrogate.clone()],
    );
    c.dead_letters.push(Owned {
        owner: 7,
        item: DeadLetter {
            eh_partition: "p0".into(),
            eh_sequence: 7,
            enqueued_time: None,
            received_time: Utc::now(),
            reason: "bad\0json".into(),
            raw: b"{\0}".to_vec(),
        },
    });
    let w = db.write(&c).await.unwrap();
    assert_eq!((w.calls, w.dead_letters), (6, 1));
    let rows: BTreeMap<String, CallRecord> = stored(&client)
        .await
        .into_iter()
        .map(|r| (r.request_id.clone(), r))
        .collect();
    let has = |id: &str, text: &str| {
        let r = &rows[id];
        assert!(
            r.warnings.iter().any(|w| w.contains(text)),
            "{id}: {:?}",
            r.warnings
        );
    };
    assert_eq!(rows["long"].caller_ip.as_deref().map(str::len), Some(256));
    has("long", "caller_ip: cut to 256 characters");
    let cut_id = "r".repeat(256);
    assert!(rows.contains_key(&cut_id));
    has(&cut_id, "request_id: cut to 256");
    assert_eq!(rows["cost"].cost, None);
    has("cost", "does not fit decimal(28,10)");
    assert_eq!(rows["time"].request_time, None);
    has("time", "outside the years 1-9999");
    assert_eq!(
        rows["nul"].response_text.as_deref(),
        Some("before\u{FFFD}after")
    );
    has("nul", "NUL characters replaced");
    assert_eq!(rows["surrogate"].prompt_text, surrogate.prompt_text);
    let (reason, raw): (String, Vec<u8>) = {
        let r = client
            .query_one("SELECT reason, raw FROM dead_letters", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(reason, "bad\u{FFFD}json");
    assert_eq!(raw, b"{\0}", "the raw bytes are kept whole");
    // The cut key is the stored one: the same record again merges into it.
    let again = commit("p0", 8, 8, vec![call(&"r".repeat(400))]);
    assert_eq!(db.write(&again).await.unwrap().merged_calls, 1);
    assert_eq!(count(&client, "calls").await, 6);
}

/// The expected rows of the case of `file` whose command is `command`.
fn expected_rows(file: &str, command: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("tests/reports").join(file)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("query") && lines.get(i + 1) == Some(&command) {
            assert_eq!(lines[i + 2], "----");
            return lines[i + 3..]
                .iter()
                .take_while(|l| !l.is_empty())
                .map(|l| l.to_string())
                .collect();
        }
    }
    panic!("{file}: no case `{command}`");
}

/// A value as the .slt files write it (tests/reports/README.md).
fn slt(value: Option<&str>) -> String {
    let Some(v) = value else {
        return "NULL".into();
    };
    if v.is_empty() {
        return "(empty)".into();
    }
    if v.contains('.')
        && let Ok(x) = v.parse::<f64>()
    {
        // Decimals exact, floats to 12 significant digits; both without
        // trailing zeros.
        let trimmed = v.trim_end_matches('0').trim_end_matches('.');
        let significant = trimmed
            .chars()
            .filter(char::is_ascii_digit)
            .skip_while(|c| *c == '0')
            .count();
        if significant <= 12 {
            return trimmed.to_string();
        }
        let rounded: f64 = format!("{x:.11e}").parse().unwrap();
        return rounded.to_string();
    }
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

async fn view_rows(client: &Client, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            let cells: Vec<String> = (0..row.len()).map(|i| slt(row.get(i))).collect();
            out.push(cells.join(" "));
        }
    }
    out
}

/// The R1, R3 and R5 views over the corpus give the rows the lake's named
/// reports give (tests/reports/*.slt), "now" pinned as the report runner
/// pins it.
#[tokio::test]
async fn the_views_equal_the_lake_reports() {
    let schema = "t_views";
    let Some(client) = server(schema).await else {
        return;
    };
    let mut db = sink(schema).await;
    ingest(&corpus(), &mut [&mut db]).await;
    let quotas = repo().join("tests/reports/quotas.csv");
    let csv = std::fs::read_to_string(&quotas).unwrap();
    assert_eq!(db.load_quotas("quotas.csv", &csv).await.unwrap(), 3);
    client
        .batch_execute("SET aoai_ledger.now = '2026-11-30T12:00:00Z'")
        .await
        .unwrap();

    let r1 = view_rows(
        &client,
        "SELECT * FROM token_usage_by_ip_model ORDER BY ip NULLS LAST, model",
    )
    .await;
    assert_eq!(
        r1,
        expected_rows(
            "token-usage-by-ip-model.slt",
            "report token-usage-by-ip-model"
        )
    );
    let r3 = view_rows(
        &client,
        r#"SELECT * FROM usage_by_subscription ORDER BY "SubscriptionId" NULLS LAST, "DeploymentName""#,
    )
    .await;
    assert_eq!(
        r3,
        expected_rows("usage-by-subscription.slt", "report usage-by-subscription")
    );
    let r5_order = r#"ORDER BY "TotalCost" DESC NULLS LAST, "SubscriptionId" NULLS LAST"#;
    let r5 = view_rows(
        &client,
        &format!("SELECT * FROM cost_by_subscription {r5_order}"),
    )
    .await;
    assert_eq!(
        r5,
        expected_rows(
            "cost-by-subscription.slt",
            "report cost-by-subscription --quota tests/reports/quotas.csv"
        )
    );
    client
        .batch_execute("SET aoai_ledger.now = '2026-12-15T00:00:00Z'")
        .await
        .unwrap();
    assert!(
        view_rows(&client, "SELECT * FROM cost_by_subscription")
            .await
            .is_empty()
    );
    assert_eq!(
        db.load_quotas("none.csv", "subscription_id,cost_quota\n")
            .await
            .unwrap(),
        0
    );
    let since = view_rows(
        &client,
        &format!(
            "SELECT * FROM cost_by_subscription_between('2026-11-25T00:00:00Z', NULL) {r5_order}"
        ),
    )
    .await;
    assert_eq!(
        since,
        expected_rows(
            "cost-by-subscription.slt",
            "report cost-by-subscription --since 2026-11-25"
        )
    );
}

/// Each sink keeps its own progress: a database added beside a lake that
/// already has the corpus gets all of it, the lake nothing again.
#[tokio::test]
async fn a_database_behind_the_lake_catches_up_alone() {
    let schema = "t_behind";
    let Some(client) = server(schema).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut lake = Lake::open(&dir.path().display().to_string()).unwrap();
    let first = ingest(&corpus(), &mut [&mut lake]).await;
    let mut db = sink(schema).await;
    let both = ingest(&corpus(), &mut [&mut lake, &mut db]).await;
    assert_eq!(
        both.calls_written, first.calls_written,
        "only the database wrote"
    );
    let lake_rows = lake_rows(dir.path()).await.len();
    assert_eq!(count(&client, "calls").await as usize, lake_rows);
    assert_eq!(
        count(&client, "dead_letters").await as u64,
        first.dead_letters_written
    );
}
