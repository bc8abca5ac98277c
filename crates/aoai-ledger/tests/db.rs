//! `aoai-ledger db …` and `ingest --db` against the PostgreSQL of this
//! machine (127.0.0.1:5432; fails under CI=true when it is unreachable).

mod common;

use std::process::Command;

use common::BIN;

/// Whether the server answers (a test without it fails under CI).
fn reachable() -> bool {
    let ok = std::net::TcpStream::connect("127.0.0.1:5432").is_ok();
    if !ok {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "PostgreSQL at 127.0.0.1:5432 is unreachable under CI"
        );
        eprintln!("skipped: PostgreSQL at 127.0.0.1:5432 is unreachable");
    }
    ok
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env_remove("AOAI_LEDGER_DB")
        .env_remove("AOAI_LEDGER_LAKE")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "aoai-ledger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn migrate_load_quota_and_ingest_into_the_database() {
    if !reachable() {
        return;
    }
    let schema = "t_cli";
    // A fresh schema: psql is on every machine that has the server.
    let dropped = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
        .arg(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .status()
        .unwrap();
    assert!(dropped.success());
    let db = format!("postgres://postgres@127.0.0.1/test?sslmode=disable&schema={schema}");
    let out = ok(&["db", "migrate", "--db", &db]);
    assert!(
        out.contains("applied 2 migration(s) [1, 2], 0 already applied"),
        "{out}"
    );
    let out = ok(&["db", "migrate", "--db", &db]);
    assert!(
        out.contains("applied 0 migration(s) [], 2 already applied"),
        "{out}"
    );
    let out = ok(&["db", "load-quota", "tests/reports/quotas.csv", "--db", &db]);
    assert!(out.contains("3 quota(s) loaded"), "{out}");

    let lake = tempfile::tempdir().unwrap();
    let lake = lake.path().display().to_string();
    let sample = "tests/fixtures/sample-events.jsonl";
    let out = ok(&["ingest", sample, "--lake", &lake, "--db", &db, "-q"]);
    assert!(
        out.contains("database: postgres://postgres@127.0.0.1:5432/test schema t_cli"),
        "{out}"
    );
    // The database has its own progress: a second run adds nothing to it.
    let again = ok(&["ingest", sample, "--lake", &lake, "--db", &db, "-q"]);
    assert!(again.contains("calls written: 0"), "{again}");

    let count = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc"])
        .arg(format!("SELECT count(*) FROM {schema}.calls"))
        .output()
        .unwrap();
    let calls: u64 = String::from_utf8_lossy(&count.stdout)
        .trim()
        .parse()
        .unwrap();
    let first: u64 = out
        .split("calls written: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        calls > 0 && calls <= first,
        "{calls} rows for {first} calls written"
    );
}

#[test]
fn a_password_in_the_url_is_refused_and_not_shown() {
    let out = run(&[
        "db",
        "migrate",
        "--db",
        "postgres://u:hunter2@127.0.0.1/test",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AOAI_LEDGER_DB_PASSWORD"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
