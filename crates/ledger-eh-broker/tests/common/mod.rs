//! Clients of the official Rust SDK pointed at a broker started in the test.
#![allow(dead_code)]

use std::time::Duration;

use azure_messaging_eventhubs::{ConsumerClient, ProducerClient};
use ledger_eh_broker::{Broker, BrokerConfig};

/// Logs to the test output when `RUST_LOG` is set.
pub fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
}

pub async fn broker(partitions: u32) -> Broker {
    logs();
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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_messaging_eventhubs::models::ReceivedEventData;
use azure_messaging_eventhubs::{EventReceiver, OpenReceiverOptions, StartLocation, StartPosition};
use futures::StreamExt;
use ledger_eh_broker::JwtIssuer;

/// An Entra-like credential that mints test JWTs living `lifetime_secs`.
#[derive(Debug)]
pub struct ShortLivedJwt {
    pub issuer: JwtIssuer,
    pub lifetime_secs: i64,
    pub minted: AtomicU64,
}

#[async_trait::async_trait]
impl TokenCredential for ShortLivedJwt {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.minted.fetch_add(1, Ordering::Relaxed);
        let now = azure_core::time::OffsetDateTime::now_utc();
        let expires = now + azure_core::time::Duration::seconds(self.lifetime_secs);
        let token = ledger_eh_broker::auth::test_jwt(
            &self.issuer,
            "https://eventhubs.azure.net/",
            expires.unix_timestamp(),
        );
        Ok(AccessToken::new(token, expires))
    }
}

pub fn jwt_credential(issuer: &JwtIssuer, lifetime_secs: i64) -> Arc<ShortLivedJwt> {
    Arc::new(ShortLivedJwt {
        issuer: issuer.clone(),
        lifetime_secs,
        minted: AtomicU64::new(0),
    })
}

pub fn from(location: StartLocation, inclusive: bool) -> Option<OpenReceiverOptions> {
    Some(OpenReceiverOptions {
        start_position: Some(StartPosition {
            location,
            inclusive,
        }),
        ..Default::default()
    })
}

/// The next `n` events of a receiver, each within `wait`.
pub async fn take(receiver: &EventReceiver, n: usize, wait: Duration) -> Vec<ReceivedEventData> {
    let stream = receiver.stream_events();
    futures::pin_mut!(stream);
    let mut got = Vec::new();
    while got.len() < n {
        let next = tokio::time::timeout(wait, stream.next())
            .await
            .unwrap_or_else(|_| panic!("event {} of {n} did not come within {wait:?}", got.len()));
        match next {
            Some(Ok(event)) => got.push(event),
            Some(Err(e)) => panic!("receive failed after {} of {n} events: {e:?}", got.len()),
            None => panic!("the stream ended after {} of {n} events", got.len()),
        }
    }
    got
}

pub fn sequence_numbers(events: &[ReceivedEventData]) -> Vec<i64> {
    events
        .iter()
        .filter_map(ReceivedEventData::sequence_number)
        .collect()
}

/// The receiver's next receive fails as `ConsumerDisconnected` (a stolen
/// link or a refused epoch).
pub async fn expect_consumer_disconnected(receiver: &EventReceiver) {
    use azure_messaging_eventhubs::error::ErrorKind;
    let stream = receiver.stream_events();
    futures::pin_mut!(stream);
    let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the receive fails in time");
    match next {
        Some(Err(e)) => assert!(
            matches!(e.kind, ErrorKind::ConsumerDisconnected(_)),
            "{e:?}"
        ),
        other => panic!(
            "expected ConsumerDisconnected, got {:?}",
            other.map(|r| r.map(|e| e.sequence_number()))
        ),
    }
}

/// Sends `bodies` in one batch, to a partition or by a key; every body fits.
pub async fn send_batch(producer: &ProducerClient, target: Target<'_>, bodies: Vec<String>) {
    use azure_messaging_eventhubs::EventDataBatchOptions;
    let options = match target {
        Target::Partition(id) => EventDataBatchOptions {
            partition_id: Some(id.into()),
            ..Default::default()
        },
        Target::Key(key) => EventDataBatchOptions {
            partition_key: Some(key.into()),
            ..Default::default()
        },
    };
    let batch = producer.create_batch(Some(options)).await.unwrap();
    for body in bodies {
        assert!(batch.try_add_event_data(body.into_bytes(), None).unwrap());
    }
    producer.send_batch(batch, None).await.unwrap();
}

/// Where [`send_batch`] sends.
pub enum Target<'a> {
    Partition(&'a str),
    Key(&'a str),
}
