//! `aoai-ledger send` puts every line of the shared corpus into the test
//! broker, routed as each dialect's policy routes it, and the official SDK's
//! consumer reads them all back.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use azure_messaging_eventhubs::{
    ConsumerClient, OpenReceiverOptions, StartLocation, StartPosition,
};
use futures::StreamExt;
use ledger_core::dialects::{PolicyRoute, decode, policy_route};
use ledger_eh_broker::{Broker, BrokerConfig};

// The broker serves from the test's runtime while the binary runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_routes_the_corpus_by_dialect_policy_and_every_event_comes_back() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let broker = Broker::start(BrokerConfig {
        partitions: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let corpus = common::corpus();
    let lines: Vec<Vec<u8>> = std::fs::read(&corpus)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect();
    let connection_string = broker.connection_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(common::BIN)
            .args(["send", &corpus, "--quiet"])
            .env("AOAI_LEDGER_EVENTHUB_CONNECTION_STRING", connection_string)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("sent {} events", lines.len())),
        "{stdout}"
    );

    let consumer = ConsumerClient::builder()
        .with_custom_endpoint(broker.endpoint())
        .open_with_connection_string(&broker.connection_string(), None)
        .await
        .unwrap();
    let mut received: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
    for p in 0..4u32 {
        let n = broker
            .partition_info("eh1", p)
            .unwrap()
            .last_sequence_number
            + 1;
        let receiver = consumer
            .open_receiver_on_partition(
                p.to_string(),
                Some(OpenReceiverOptions {
                    start_position: Some(StartPosition {
                        location: StartLocation::Earliest,
                        inclusive: false,
                    }),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        let stream = receiver.stream_events();
        futures::pin_mut!(stream);
        for _ in 0..n {
            let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            received
                .entry(event.event_data().body().unwrap().to_vec())
                .or_default()
                .push(p);
        }
    }
    // Every line once (identical lines as often as they occur).
    let mut expected: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for line in &lines {
        *expected.entry(line.clone()).or_default() += 1;
    }
    assert_eq!(received.len(), expected.len());
    for (body, count) in &expected {
        assert_eq!(
            received.get(body).map(Vec::len),
            Some(*count),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // Fixed partitions where the policy says so; one partition per key.
    let mut partitions_of_key: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let (mut fixed, mut keyed) = (0, 0);
    for (body, partitions) in &received {
        let Some(route) = decode(body).ok().and_then(|f| f.first().map(policy_route)) else {
            continue;
        };
        match route {
            PolicyRoute::Partition(want) => {
                fixed += 1;
                assert!(
                    partitions.iter().all(|p| *p == want),
                    "{partitions:?} != {want}"
                );
            }
            PolicyRoute::Key(key) => {
                keyed += 1;
                partitions_of_key.entry(key).or_default().extend(partitions);
            }
        }
    }
    assert!(
        fixed > 0 && keyed > 0,
        "the corpus has both kinds ({fixed} fixed, {keyed} keyed)"
    );
    for (key, partitions) in &partitions_of_key {
        assert_eq!(
            partitions.len(),
            1,
            "the events of {key} are on {partitions:?}"
        );
    }
}
