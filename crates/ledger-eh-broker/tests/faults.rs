//! Each fault, injected while the official Rust SDK is connected, and how
//! the SDK comes through it.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use azure_messaging_eventhubs::models::EventData;
use azure_messaging_eventhubs::{ProducerClient, SendEventOptions, StartLocation};
use ledger_eh_broker::{Broker, BrokerConfig};

async fn send(producer: &ProducerClient, body: &str) {
    tokio::time::timeout(
        Duration::from_secs(60),
        producer.send_event(
            EventData::builder()
                .with_body(body.as_bytes().to_vec())
                .build(),
            Some(SendEventOptions {
                partition_id: Some("0".into()),
            }),
        ),
    )
    .await
    .expect("send in time")
    .expect("send succeeds");
}

/// Sends `n` events, runs the fault, sends `n` more, and checks a reader
/// that was streaming all along saw every one (the SDK may replay: it
/// reattaches with its original start filter).
async fn through_fault(broker: &Broker, fault: impl AsyncFnOnce(&Broker)) {
    let producer = common::producer(broker).await;
    let consumer = common::consumer(broker).await;
    let receiver = consumer
        .open_receiver_on_partition("0".into(), common::from(StartLocation::Earliest, false))
        .await
        .unwrap();
    for i in 0..5 {
        send(&producer, &format!("before {i}")).await;
    }
    let first = common::take(&receiver, 5, Duration::from_secs(20)).await;
    assert_eq!(common::sequence_numbers(&first), vec![0, 1, 2, 3, 4]);
    fault(broker).await;
    for i in 0..5 {
        send(&producer, &format!("after {i}")).await;
    }
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(5..10).all(|s| seen.contains(&s)) {
        assert!(Instant::now() < deadline, "after the fault, only {seen:?}");
        for e in common::take(&receiver, 1, Duration::from_secs(60)).await {
            seen.insert(e.sequence_number().unwrap());
        }
    }
}

#[tokio::test]
async fn dropped_connections_are_recovered_by_the_sdk() {
    let broker = common::broker(1).await;
    through_fault(&broker, async |b: &Broker| {
        assert!(b.drop_connections() >= 2);
        // A send issued within microseconds of the drop can wait forever for
        // its outcome (seen with the 0.16 SDK: the transfer goes out on the
        // dying connection and nothing fails it). Callers must time out
        // their sends; here the next send comes a moment later.
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await;
}

#[tokio::test]
async fn a_broker_restart_on_the_same_port_is_recovered_by_the_sdk() {
    let broker = common::broker(1).await;
    through_fault(&broker, async |b: &Broker| b.restart().await.unwrap()).await;
}

#[tokio::test]
async fn a_forced_detach_is_recovered_by_the_sdk() {
    let broker = common::broker(1).await;
    through_fault(&broker, async |b: &Broker| {
        assert_eq!(b.detach_readers("eh1", 0, false), 1)
    })
    .await;
}

#[tokio::test]
async fn a_stolen_link_surfaces_as_consumer_disconnected() {
    let broker = common::broker(1).await;
    let producer = common::producer(&broker).await;
    send(&producer, "one").await;
    let consumer = common::consumer(&broker).await;
    let receiver = consumer
        .open_receiver_on_partition("0".into(), common::from(StartLocation::Earliest, false))
        .await
        .unwrap();
    common::take(&receiver, 1, Duration::from_secs(20)).await;
    assert_eq!(broker.detach_readers("eh1", 0, true), 1);
    common::expect_consumer_disconnected(&receiver).await;
}

#[tokio::test]
async fn a_slow_cbs_delays_the_open_and_a_refused_one_fails_it_until_cleared() {
    let broker = common::broker(1).await;
    broker.set_cbs_delay(Duration::from_millis(1500));
    let started = Instant::now();
    let producer = common::producer(&broker).await;
    send(&producer, "slow").await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    broker.clear_faults();

    broker.set_cbs_refused(true);
    let refused = tokio::time::timeout(
        Duration::from_secs(120),
        ProducerClient::builder()
            .with_custom_endpoint(broker.endpoint())
            .open_with_connection_string(&broker.connection_string(), None),
    )
    .await
    .expect("the SDK gives up in time");
    let sent = match refused {
        Err(e) => Err(e),
        Ok(p) => tokio::time::timeout(
            Duration::from_secs(120),
            p.send_event(EventData::builder().with_body(b"x".to_vec()).build(), None),
        )
        .await
        .expect("the SDK gives up in time"),
    };
    let error = sent.expect_err("a refused token fails the client");
    assert!(format!("{error:?}").contains("401"), "{error:?}");
    broker.clear_faults();
    let producer = common::producer(&broker).await;
    send(&producer, "fine again").await;
}

#[tokio::test]
async fn a_slow_management_answer_is_waited_for() {
    let broker = common::broker(2).await;
    let producer = common::producer(&broker).await;
    broker.set_management_delay(Duration::from_millis(1500));
    let started = Instant::now();
    let properties = producer.get_eventhub_properties().await.unwrap();
    assert_eq!(properties.partition_ids.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn a_hung_open_blocks_the_sdk_and_a_new_client_works_once_cleared() {
    // SDK issue #4810: there is no open timeout, so the client waits as long
    // as the broker stays silent. Callers must wrap the open in their own.
    let broker = common::broker(1).await;
    broker.set_hang_open(true);
    let hung = tokio::time::timeout(
        Duration::from_secs(3),
        ProducerClient::builder()
            .with_custom_endpoint(broker.endpoint())
            .open_with_connection_string(&broker.connection_string(), None),
    )
    .await;
    assert!(hung.is_err(), "the open should still be waiting after 3 s");
    broker.clear_faults();
    let producer = common::producer(&broker).await;
    send(&producer, "after the hang").await;
}

#[tokio::test]
async fn expired_events_are_gone_and_readers_start_past_them() {
    let broker = common::broker(1).await;
    let producer = common::producer(&broker).await;
    for i in 0..10 {
        send(&producer, &format!("e{i}")).await;
    }
    broker.expire_oldest("eh1", 0, 4).unwrap();
    let properties = producer.get_partition_properties("0").await.unwrap();
    assert_eq!(properties.beginning_sequence_number, 4);
    assert_eq!(properties.last_enqueued_sequence_number, 9);
    let consumer = common::consumer(&broker).await;
    let receiver = consumer
        .open_receiver_on_partition(
            "0".into(),
            common::from(StartLocation::SequenceNumber(1), true),
        )
        .await
        .unwrap();
    let got = common::take(&receiver, 6, Duration::from_secs(20)).await;
    assert_eq!(common::sequence_numbers(&got), vec![4, 5, 6, 7, 8, 9]);
}

#[tokio::test]
async fn retention_by_count_expires_the_oldest() {
    let broker = Broker::start(BrokerConfig {
        partitions: 1,
        retention: ledger_eh_broker::Retention {
            max_events: Some(3),
            max_age: None,
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let producer = common::producer(&broker).await;
    for i in 0..5 {
        send(&producer, &format!("e{i}")).await;
    }
    let info = broker.partition_info("eh1", 0).unwrap();
    assert_eq!(
        (info.begin_sequence_number, info.last_sequence_number),
        (2, 4)
    );
}

#[tokio::test]
async fn faults_are_driven_over_http_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = std::sync::Arc::new(common::broker(1).await);
    let control = broker
        .serve_control("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let call = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(control).await.unwrap();
        s.write_all(format!("POST {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let producer = common::producer(&broker).await;
    send(&producer, "one").await;
    assert!(
        call("/faults/expire?hub=eh1&partition=0&count=1")
            .await
            .contains("\"expired\":1")
    );
    assert_eq!(
        broker
            .partition_info("eh1", 0)
            .unwrap()
            .begin_sequence_number,
        1
    );
    assert!(call("/faults/hang-open?on=true").await.contains("200 OK"));
    assert!(call("/faults/clear").await.contains("200 OK"));
    assert!(
        call("/faults/drop-connections")
            .await
            .contains("\"dropped\":")
    );
    assert!(call("/nope").await.contains("404"));
    send(&producer, "two").await;
}
