//! The official Rust SDK (`azure_messaging_eventhubs` 0.16) against the
//! broker, over TCP: properties, batches, every start position, epochs.

mod common;

use std::time::{Duration, SystemTime};

use azure_messaging_eventhubs::models::EventData;
use azure_messaging_eventhubs::{
    EventDataBatchOptions, OpenReceiverOptions, SendEventOptions, StartLocation, StartPosition,
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
            Some(SendEventOptions { partition_id: Some("2".into()) }),
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
    let batch = producer
        .create_batch(Some(EventDataBatchOptions { partition_id: Some("1".into()), ..Default::default() }))
        .await
        .unwrap();
    for i in 0..3 {
        assert!(batch.try_add_event_data(format!("event {i}").into_bytes(), None).unwrap());
    }
    producer.send_batch(batch, None).await.unwrap();
    // By key: all on one partition, with the key on each event.
    let keyed = producer
        .create_batch(Some(EventDataBatchOptions { partition_key: Some("caller-7".into()), ..Default::default() }))
        .await
        .unwrap();
    for i in 0..2 {
        assert!(keyed.try_add_event_data(format!("keyed {i}").into_bytes(), None).unwrap());
    }
    producer.send_batch(keyed, None).await.unwrap();

    let consumer = common::consumer(&broker).await;
    let receiver = consumer
        .open_receiver_on_partition(
            "1".into(),
            Some(OpenReceiverOptions {
                start_position: Some(StartPosition { location: StartLocation::Earliest, inclusive: false }),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let stream = receiver.stream_events();
    futures::pin_mut!(stream);
    let mut got = Vec::new();
    while got.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.unwrap().unwrap().unwrap();
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
