//! The official Rust SDK (`azure_messaging_eventhubs` 0.16) against the
//! broker, over TCP: properties, batches, every start position, epochs.

mod common;

use std::time::{Duration, SystemTime};

use azure_messaging_eventhubs::models::EventData;
use azure_messaging_eventhubs::{
    OpenReceiverOptions, SendEventOptions, StartLocation, StartPosition,
};
use futures::StreamExt;

#[tokio::test]
async fn hub_and_partition_properties_are_read() {
    let broker = common::broker(4).await;
    let producer = common::producer(&broker).await;
    let hub = producer.get_eventhub_properties().await.unwrap();
    assert_eq!(hub.name, "eh1");
    assert_eq!(hub.partition_ids, vec!["0", "1", "2", "3"]);
    let before = producer.get_partition_properties("2").await.unwrap();
    assert!(before.is_empty);
    producer
        .send_event(
            EventData::builder().with_body(b"one".to_vec()).build(),
            Some(SendEventOptions {
                partition_id: Some("2".into()),
            }),
        )
        .await
        .unwrap();
    let after = producer.get_partition_properties("2").await.unwrap();
    assert!(!after.is_empty);
    assert_eq!(after.id, "2");
    assert_eq!(after.beginning_sequence_number, 0);
    assert_eq!(after.last_enqueued_sequence_number, 0);
    assert_eq!(after.last_enqueued_offset, "0");
    assert!(after.last_enqueued_time_utc.is_some());
}

#[tokio::test]
async fn batches_with_and_without_a_key_are_received_with_exact_annotations() {
    let broker = common::broker(2).await;
    let producer = common::producer(&broker).await;
    // To partition 1 explicitly.
    common::send_batch(
        &producer,
        common::Target::Partition("1"),
        (0..3).map(|i| format!("event {i}")).collect(),
    )
    .await;
    // By key: all on one partition, with the key on each event.
    common::send_batch(
        &producer,
        common::Target::Key("caller-7"),
        (0..2).map(|i| format!("keyed {i}")).collect(),
    )
    .await;

    let consumer = common::consumer(&broker).await;
    let receiver = consumer
        .open_receiver_on_partition(
            "1".into(),
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
    let mut got = Vec::new();
    while got.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push(event);
    }
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.sequence_number(), Some(i as i64));
        assert_eq!(e.event_data().body(), Some(format!("event {i}").as_bytes()));
        assert!(e.enqueued_time().is_some_and(|t| t <= SystemTime::now()));
    }
    let offsets: Vec<_> = got.iter().map(|e| e.offset().clone().unwrap()).collect();
    assert_eq!(offsets[0], "0");
    assert!(offsets[1].parse::<i64>().unwrap() > 0);
}

async fn send_one(
    producer: &azure_messaging_eventhubs::ProducerClient,
    partition: &str,
    body: &str,
) {
    producer
        .send_event(
            EventData::builder()
                .with_body(body.as_bytes().to_vec())
                .build(),
            Some(SendEventOptions {
                partition_id: Some(partition.into()),
            }),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn every_start_position_starts_at_the_right_event() {
    let broker = common::broker(1).await;
    let producer = common::producer(&broker).await;
    for i in 0..5 {
        send_one(&producer, "0", &format!("e{i}")).await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let consumer = common::consumer(&broker).await;
    let wait = Duration::from_secs(20);
    // The SDK keeps one receiver per partition and client: close each one
    // before opening the next.
    let first = consumer
        .open_receiver_on_partition("0".into(), common::from(StartLocation::Earliest, false))
        .await
        .unwrap();
    let all = common::take(&first, 5, wait).await;
    first.close().await.unwrap();
    assert_eq!(common::sequence_numbers(&all), vec![0, 1, 2, 3, 4]);
    let offset_of = |i: usize| all[i].offset().clone().unwrap();
    let time_of = |i: usize| all[i].enqueued_time().unwrap();
    let cases: Vec<(StartLocation, bool, i64)> = vec![
        (StartLocation::Offset(offset_of(2)), true, 2),
        (StartLocation::Offset(offset_of(2)), false, 3),
        (StartLocation::SequenceNumber(1), true, 1),
        (StartLocation::SequenceNumber(1), false, 2),
        (StartLocation::EnqueuedTime(time_of(3)), true, 3),
        (StartLocation::EnqueuedTime(time_of(3)), false, 4),
    ];
    for (location, inclusive, first) in cases {
        let label = format!("{location:?} inclusive={inclusive}");
        let receiver = consumer
            .open_receiver_on_partition("0".into(), common::from(location, inclusive))
            .await
            .unwrap();
        let got = common::take(&receiver, 1, wait).await;
        assert_eq!(common::sequence_numbers(&got), vec![first], "{label}");
        assert_eq!(
            got[0].event_data().body(),
            Some(format!("e{first}").as_bytes()),
            "{label}"
        );
        assert_eq!(
            got[0].offset().clone().unwrap(),
            offset_of(first as usize),
            "{label}"
        );
        assert_eq!(
            got[0].enqueued_time().unwrap(),
            time_of(first as usize),
            "{label}"
        );
        receiver.close().await.unwrap();
    }
    // Latest: only what is sent after the attach.
    let latest = consumer
        .open_receiver_on_partition("0".into(), common::from(StartLocation::Latest, false))
        .await
        .unwrap();
    let stream_task = async { common::take(&latest, 1, wait).await };
    let send_task = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        send_one(&producer, "0", "late").await;
    };
    let (got, ()) = tokio::join!(stream_task, send_task);
    assert_eq!(common::sequence_numbers(&got), vec![5]);
}

#[tokio::test]
async fn partition_keys_come_back_on_every_event() {
    let broker = common::broker(4).await;
    let producer = common::producer(&broker).await;
    for key in ["alpha", "beta"] {
        common::send_batch(
            &producer,
            common::Target::Key(key),
            (0..3).map(|i| format!("{key}{i}")).collect(),
        )
        .await;
    }
    let consumer = common::consumer(&broker).await;
    let mut seen = Vec::new();
    for p in 0..4u32 {
        let info = broker.partition_info("eh1", p).unwrap();
        if info.is_empty {
            continue;
        }
        let n = (info.last_sequence_number + 1) as usize;
        let receiver = consumer
            .open_receiver_on_partition(p.to_string(), common::from(StartLocation::Earliest, false))
            .await
            .unwrap();
        for e in common::take(&receiver, n, Duration::from_secs(20)).await {
            let body = String::from_utf8(e.event_data().body().unwrap().to_vec()).unwrap();
            seen.push((e.partition_key().clone().unwrap(), body, p));
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 6);
    for (key, body, _) in &seen {
        assert!(body.starts_with(key.as_str()));
    }
    // One key, one partition.
    assert!(seen[..3].iter().all(|s| s.2 == seen[0].2));
    assert!(seen[3..].iter().all(|s| s.2 == seen[3].2));
}

#[tokio::test]
async fn a_token_that_expires_every_few_seconds_is_refreshed_without_interruption() {
    let issuer = ledger_eh_broker::JwtIssuer {
        issuer: "aoai-ledger-test".into(),
        signing_key: "test-signing-key".into(),
    };
    let broker = ledger_eh_broker::Broker::start(ledger_eh_broker::BrokerConfig {
        partitions: 1,
        jwt: Some(issuer.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let producer_credential = common::jwt_credential(&issuer, 3);
    let producer = azure_messaging_eventhubs::ProducerClient::builder()
        .with_custom_endpoint(broker.endpoint())
        .open("localhost", "eh1", producer_credential.clone())
        .await
        .unwrap();
    let consumer = azure_messaging_eventhubs::ConsumerClient::builder()
        .with_custom_endpoint(broker.endpoint())
        .open(
            "localhost",
            "eh1".into(),
            common::jwt_credential(&issuer, 3),
        )
        .await
        .unwrap();
    let receiver = consumer
        .open_receiver_on_partition("0".into(), common::from(StartLocation::Earliest, false))
        .await
        .unwrap();
    let n = 16;
    let send = async {
        for i in 0..n {
            send_one(&producer, "0", &format!("tick {i}")).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (got, ()) = tokio::join!(common::take(&receiver, n, Duration::from_secs(10)), send);
    assert_eq!(
        common::sequence_numbers(&got),
        (0..n as i64).collect::<Vec<_>>()
    );
    // 8 s of traffic on 3 s tokens: the broker saw them refreshed.
    assert!(
        producer_credential
            .minted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    assert!(
        broker
            .stats()
            .tokens_accepted
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 6
    );
}

#[tokio::test]
async fn a_higher_epoch_takes_the_partition_and_the_old_reader_sees_consumer_disconnected() {
    let broker = common::broker(1).await;
    let producer = common::producer(&broker).await;
    send_one(&producer, "0", "first").await;
    // Separate clients, as separate workers would be (a client keeps one
    // receiver per partition).
    let consumer = common::consumer(&broker).await;
    let other = common::consumer(&broker).await;
    let third = common::consumer(&broker).await;
    let with_epoch = |epoch: i64| {
        Some(OpenReceiverOptions {
            owner_level: Some(epoch),
            start_position: Some(StartPosition {
                location: StartLocation::Earliest,
                inclusive: false,
            }),
            ..Default::default()
        })
    };
    let old = consumer
        .open_receiver_on_partition("0".into(), with_epoch(1))
        .await
        .unwrap();
    assert_eq!(
        common::sequence_numbers(&common::take(&old, 1, Duration::from_secs(20)).await),
        vec![0]
    );
    let new = other
        .open_receiver_on_partition("0".into(), with_epoch(2))
        .await
        .unwrap();
    assert_eq!(
        common::sequence_numbers(&common::take(&new, 1, Duration::from_secs(20)).await),
        vec![0]
    );
    // The old reader's next receive fails as ConsumerDisconnected.
    common::expect_consumer_disconnected(&old).await;
    // A lower epoch is refused the same way.
    let lower = third
        .open_receiver_on_partition("0".into(), with_epoch(0))
        .await
        .unwrap();
    common::expect_consumer_disconnected(&lower).await;
}
