//! The Python `azure-eventhub` SDK (its default pure-Python transport, as a
//! user of the emulator's connection string runs it) against the broker,
//! side by side with the Rust SDK: each reads what the other sent.
//!
//! `AOAI_TEST_PY_EVENTHUB` names the Python that has it (`scripts/test` sets
//! it up through `scripts/peers.sh`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use azure_messaging_eventhubs::StartLocation;
use common::Target;
use serde_json::Value;

fn python() -> Option<String> {
    match std::env::var("AOAI_TEST_PY_EVENTHUB") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok_and(|c| c == "true") => {
            panic!("AOAI_TEST_PY_EVENTHUB is not set: run the tests through scripts/test")
        }
        _ => {
            eprintln!("skipped: AOAI_TEST_PY_EVENTHUB is not set (scripts/test sets it)");
            None
        }
    }
}

async fn run_python(python: &str, connection_string: &str, args: &[&str]) -> Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/eventhub_roundtrip.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(args)
        .env("AOAI_TEST_EVENTHUB_CONNECTION_STRING", connection_string);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_sdks_read_what_the_other_sent() {
    let Some(python) = python() else { return };
    let broker = common::broker(4).await;
    let connection_string = broker.connection_string();

    let producer = common::producer(&broker).await;
    let rust_keyed: Vec<String> = (0..4).map(|i| format!("rust keyed {i}")).collect();
    common::send_batch(&producer, Target::Key("rust-key"), rust_keyed.clone()).await;
    common::send_batch(
        &producer,
        Target::Partition("2"),
        vec!["rust direct".into()],
    )
    .await;

    let sent = run_python(&python, &connection_string, &["send", "py-key", "5", "1"]).await;
    assert_eq!(
        sent["properties"]["partition_ids"],
        serde_json::json!(["0", "1", "2", "3"])
    );

    let read = run_python(&python, &connection_string, &["read", "15"]).await;
    let events = read["events"].as_array().expect("events");
    assert_eq!(events.len(), 15, "{read}");

    // Per partition, Python saw sequence numbers from 0 with no gap, and the
    // partition properties it read agree with what it received.
    let mut by_partition: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for event in events {
        by_partition
            .entry(event["partition"].as_str().unwrap().to_owned())
            .or_default()
            .push(event);
    }
    for (partition, seen) in &by_partition {
        let sequence: Vec<i64> = seen
            .iter()
            .map(|e| e["sequence_number"].as_i64().unwrap())
            .collect();
        assert_eq!(
            sequence,
            (0..seen.len() as i64).collect::<Vec<_>>(),
            "partition {partition}"
        );
        let properties = &read["properties"]["partitions"][partition.as_str()];
        assert_eq!(
            properties["last_enqueued_sequence_number"],
            seen.len() as i64 - 1
        );
        assert_eq!(properties["is_empty"], false);
        assert_eq!(
            properties["last_enqueued_offset"],
            seen.last().unwrap()["offset"]
        );
    }

    // Keyed events carry their key and stay together; Rust's key is seen by Python.
    let keyed = |key: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["partition_key"] == key)
            .collect()
    };
    let rust_seen = keyed("rust-key");
    assert_eq!(
        rust_seen
            .iter()
            .map(|e| e["body"].as_str().unwrap())
            .collect::<Vec<_>>(),
        rust_keyed
    );
    let python_keyed = keyed("py-key");
    assert_eq!(python_keyed.len(), 5);
    let key_partition = python_keyed[0]["partition"].as_str().unwrap();
    assert!(python_keyed.iter().all(|e| e["partition"] == key_partition));
    assert_eq!(python_keyed[3]["properties"]["n"], 3);
    assert_eq!(python_keyed[3]["properties"]["from"], "python");

    // Rust reads what Python sent: the direct batch on partition 1, and the
    // keyed batch where the broker's key hash put it.
    let consumer = common::consumer(&broker).await;
    for (partition, prefix) in [("1", "python direct"), (key_partition, "python keyed")] {
        let receiver = consumer
            .open_receiver_on_partition(
                partition.to_owned(),
                common::from(StartLocation::Earliest, true),
            )
            .await
            .unwrap();
        let got = common::take(
            &receiver,
            by_partition[partition].len(),
            Duration::from_secs(20),
        )
        .await;
        let bodies: Vec<String> = got
            .iter()
            .filter_map(|e| {
                e.event_data()
                    .body()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .filter(|b| b.starts_with(prefix))
            .collect();
        assert_eq!(bodies.len(), 5, "partition {partition}: {bodies:?}");
    }
}
