//! Bad input gets an AMQP error and the broker goes on serving its other
//! clients: malformed frames, an unknown hub, a wrong SAS key, an oversized
//! message.

mod common;

use std::time::Duration;

use azure_messaging_eventhubs::models::EventData;
use azure_messaging_eventhubs::{ProducerClient, SendEventOptions};
use ledger_eh_broker::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A healthy client still works.
async fn still_serving(broker: &Broker) {
    let producer = common::producer(broker).await;
    producer
        .send_event(EventData::builder().with_body(b"ok".to_vec()).build(), None)
        .await
        .expect("the broker still serves other clients");
    assert_eq!(
        producer.get_eventhub_properties().await.unwrap().name,
        "eh1"
    );
}

async fn open_with(
    broker: &Broker,
    connection_string: &str,
) -> azure_messaging_eventhubs::Result<ProducerClient> {
    tokio::time::timeout(
        Duration::from_secs(120),
        ProducerClient::builder()
            .with_custom_endpoint(broker.endpoint())
            .open_with_connection_string(connection_string, None),
    )
    .await
    .expect("the SDK answers in time")
}

async fn send_with(broker: &Broker, connection_string: &str) -> String {
    let result = match open_with(broker, connection_string).await {
        Err(e) => Err(e),
        Ok(producer) => tokio::time::timeout(
            Duration::from_secs(120),
            producer.send_event(EventData::builder().with_body(b"x".to_vec()).build(), None),
        )
        .await
        .expect("the SDK answers in time"),
    };
    format!("{:?}", result.expect_err("the broker refuses"))
}

#[tokio::test]
async fn malformed_frames_close_that_connection_only() {
    let broker = common::broker(1).await;
    let keeper = common::producer(&broker).await;
    for garbage in [
        // Not AMQP at all.
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        // A SASL header, then a frame whose size is absurd.
        [
            b"AMQP\x03\x01\x00\x00".as_slice(),
            &[0xff, 0xff, 0xff, 0xff, 2, 1, 0, 0],
        ]
        .concat(),
        // The plain AMQP header, then junk performative bytes.
        [
            b"AMQP\x00\x01\x00\x00".as_slice(),
            &[0, 0, 0, 12, 2, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef],
        ]
        .concat(),
    ] {
        let mut socket = tokio::net::TcpStream::connect(broker.local_addr())
            .await
            .unwrap();
        socket.write_all(&garbage).await.unwrap();
        let mut reply = Vec::new();
        // The broker answers (a header or a close) and hangs up; it never hangs.
        let read =
            tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "the broker closes a malformed connection");
    }
    keeper
        .send_event(
            EventData::builder()
                .with_body(b"still here".to_vec())
                .build(),
            Some(SendEventOptions {
                partition_id: Some("0".into()),
            }),
        )
        .await
        .unwrap();
    still_serving(&broker).await;
}

#[tokio::test]
async fn an_unknown_hub_is_not_found() {
    let broker = common::broker(1).await;
    let wrong = broker
        .connection_string()
        .replace("EntityPath=eh1", "EntityPath=nope");
    let error = send_with(&broker, &wrong).await;
    assert!(
        error.contains("404") || error.contains("not-found") || error.contains("NotFound"),
        "{error}"
    );
    still_serving(&broker).await;
}

#[tokio::test]
async fn a_wrong_sas_key_is_unauthorized() {
    let broker = common::broker(1).await;
    let wrong = broker.connection_string().replace(
        "SharedAccessKey=SAS_KEY_VALUE",
        "SharedAccessKey=not-the-key",
    );
    let error = send_with(&broker, &wrong).await;
    assert!(error.contains("401"), "{error}");
    assert!(
        !error.contains("not-the-key"),
        "the key never appears in an error"
    );
    still_serving(&broker).await;
}

#[tokio::test]
async fn an_oversized_message_is_refused() {
    let broker = common::broker(1).await;
    let producer = common::producer(&broker).await;
    let big = vec![b'x'; 2 * 1024 * 1024];
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        producer.send_event(
            EventData::builder().with_body(big).build(),
            Some(SendEventOptions {
                partition_id: Some("0".into()),
            }),
        ),
    )
    .await
    .expect("the SDK answers in time");
    let error = format!(
        "{:?}",
        result.expect_err("a 2 MiB event exceeds the 1 MiB limit")
    );
    assert!(
        error.contains("LinkPayloadSizeExceeded") && error.contains("limit is 1048576"),
        "{error}"
    );
    assert!(broker.partition_info("eh1", 0).unwrap().is_empty);
    still_serving(&broker).await;
}
