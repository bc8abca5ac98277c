//! The SQL Server engine against a live server: the SQL Server of
//! `docker-compose.yml` (`docker compose up -d sqlserver`), named by
//! `AOAI_LEDGER_TEST_MSSQL` (a `sqlserver://` URL; the password in
//! `AOAI_LEDGER_DB_PASSWORD`), e.g.
//!
//! ```sh
//! AOAI_LEDGER_TEST_MSSQL='sqlserver://sa@127.0.0.1:1433/master?trust_server_certificate=true' \
//! AOAI_LEDGER_DB_PASSWORD=LocalDev-Only-Passw0rd cargo test -p ledger-sql --test mssql_live
//! ```
//!
//! Without it the suite says it was skipped: these are the only tests
//! allowed to skip in CI, since no SQL Server runs on these machines.

#![cfg(feature = "mssql")]

use ledger_core::checkpoint::Owned;
use ledger_core::{CallRecord, Checkpoint, Commit};
use ledger_pipeline::{Sink, SinkError};
use ledger_sql::{DbSecrets, DbSettings, SqlSink};

fn url() -> Option<String> {
    let url = std::env::var("AOAI_LEDGER_TEST_MSSQL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        // Straight to stderr, past the test harness's capture: the run
        // must say plainly that this suite did not run.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: mssql_live (AOAI_LEDGER_TEST_MSSQL is not set; no SQL Server to test against)"
        );
    }
    url
}

fn commit(source: &str, first: i64, last: i64, ids: &[&str]) -> Commit {
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
        records: ids
            .iter()
            .enumerate()
            .map(|(i, id)| Owned {
                owner: first + i as i64,
                item: CallRecord {
                    request_id: id.to_string(),
                    complete: true,
                    ..Default::default()
                },
            })
            .collect(),
        dead_letters: vec![],
        lost: vec![],
        accounting: None,
    }
}

#[tokio::test]
async fn migrate_write_merge_and_fence() {
    let Some(url) = url() else {
        return;
    };
    let settings = DbSettings {
        url,
        ..DbSettings::default()
    };
    let mut a = SqlSink::open(&settings, &DbSecrets::from_env())
        .await
        .unwrap();
    assert!(
        a.migrate().await.unwrap().applied.is_empty(),
        "applied on open"
    );
    let source = format!("live-{}", uuid::Uuid::new_v4().simple());
    let mut b = SqlSink::open(&settings, &DbSecrets::from_env())
        .await
        .unwrap();
    assert_eq!(a.progress(&source, "0").await.unwrap(), None);
    assert_eq!(b.progress(&source, "0").await.unwrap(), None);
    let ids = [&*format!("{source}-1"), &*format!("{source}-2")];
    assert_eq!(
        a.write(&commit(&source, 1, 2, &ids)).await.unwrap().calls,
        2
    );
    assert_eq!(
        a.write(&commit(&source, 1, 2, &ids)).await.unwrap().calls,
        0
    );
    let e = b.write(&commit(&source, 1, 2, &ids)).await.unwrap_err();
    assert!(matches!(e, SinkError::Fenced { theirs: 2, .. }), "{e}");
    let cp = b.progress(&source, "0").await.unwrap().unwrap();
    assert_eq!(cp.last, 2);
}
