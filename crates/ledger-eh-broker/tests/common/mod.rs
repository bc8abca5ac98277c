//! Clients of the official Rust SDK pointed at a broker started in the test.
#![allow(dead_code)]

use std::time::Duration;

use azure_messaging_eventhubs::{ConsumerClient, ProducerClient};
use ledger_eh_broker::{Broker, BrokerConfig};

pub async fn broker(partitions: u32) -> Broker {
    Broker::start(BrokerConfig {
        partitions,
        ..BrokerConfig::default()
    })
    .await
    .expect("broker starts")
}

pub async fn producer(broker: &Broker) -> ProducerClient {
    tokio::time::timeout(
        Duration::from_secs(30),
        ProducerClient::builder()
            .with_custom_endpoint(broker.endpoint())
            .open_with_connection_string(&broker.connection_string(), None),
    )
    .await
    .expect("producer opens in time")
    .expect("producer opens")
}

pub async fn consumer(broker: &Broker) -> ConsumerClient {
    tokio::time::timeout(
        Duration::from_secs(30),
        ConsumerClient::builder()
            .with_custom_endpoint(broker.endpoint())
            .open_with_connection_string(&broker.connection_string(), None),
    )
    .await
    .expect("consumer opens in time")
    .expect("consumer opens")
}
