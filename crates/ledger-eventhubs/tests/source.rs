//! The Event Hubs source against the in-repo broker over TCP: it reads
//! every partition from where it is opened, reopens after faults from its
//! own position (no gap, no duplicate), and reports expired ranges.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use azure_messaging_eventhubs::models::EventData;
use azure_messaging_eventhubs::{ProducerClient, SendEventOptions};
use ledger_eh_broker::{Broker, BrokerConfig};
use ledger_eventhubs::{Auth, EventHubsSource, Options};
use ledger_pipeline::{Source, SourceItem, StartAt};

async fn broker(partitions: u32) -> Broker {
    Broker::start(BrokerConfig {
        partitions,
        ..Default::default()
    })
    .await
    .expect("the broker starts")
}

async fn producer(broker: &Broker) -> ProducerClient {
    ProducerClient::builder()
        .with_custom_endpoint(broker.endpoint())
        .open_with_connection_string(&broker.connection_string(), None)
        .await
        .expect("producer")
}

async fn send(producer: &ProducerClient, partition: &str, body: String) {
    tokio::time::timeout(
        Duration::from_secs(60),
        producer.send_event(
            EventData::builder().with_body(body.into_bytes()).build(),
            Some(SendEventOptions {
                partition_id: Some(partition.into()),
            }),
        ),
    )
    .await
    .expect("send in time")
    .expect("send succeeds");
}

fn options(broker: &Broker) -> Options {
    Options {
        endpoint: Some(broker.endpoint()),
        idle_tick: Duration::from_millis(200),
        lag_poll: Duration::from_millis(500),
        receive_idle: Duration::from_secs(3),
        open_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(10),
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_secs(1),
        ..Options::default()
    }
}

async fn source(broker: &Broker) -> (EventHubsSource, tokio::sync::watch::Sender<bool>) {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let s = EventHubsSource::connect(
        options(broker),
        Auth::connection_string(broker.connection_string()),
        stop,
    )
    .await
    .expect("the source connects");
    (s, stop_tx)
}

/// Reads until `want` events per partition came, or fails after `limit`.
/// Returns sequence numbers and expired ranges per partition.
async fn read(
    source: &mut EventHubsSource,
    want: usize,
    partitions: usize,
    limit: Duration,
    at: impl Fn(&str) -> StartAt,
    mut during: impl FnMut(usize),
) -> (
    BTreeMap<String, Vec<i64>>,
    BTreeMap<String, Vec<(i64, i64)>>,
) {
    let deadline = Instant::now() + limit;
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut lost: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut total = 0;
    loop {
        if seqs.len() == partitions && seqs.values().all(|v| v.len() >= want) {
            return (seqs, lost);
        }
        assert!(Instant::now() < deadline, "only {seqs:?} in {limit:?}");
        match source.next().await.expect("no source error") {
            Some(SourceItem::Gained(p)) => source.open(&p, at(&p)).await.expect("opens"),
            Some(SourceItem::Event(e)) => {
                total += 1;
                during(total);
                seqs.entry(e.position.partition)
                    .or_default()
                    .push(e.position.sequence);
            }
            Some(SourceItem::Expired { partition, range }) => {
                lost.entry(partition)
                    .or_default()
                    .push((range.first, range.last));
            }
            Some(SourceItem::Idle) => {}
            Some(SourceItem::Lost(p)) => panic!("lost {p}"),
            None => panic!("the source ended"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_partition_is_read_from_its_start_position_in_order() {
    let broker = broker(2).await;
    let producer = producer(&broker).await;
    for i in 0..10 {
        send(&producer, "0", format!("p0 {i}")).await;
        send(&producer, "1", format!("p1 {i}")).await;
    }
    let (mut s, _stop) = source(&broker).await;
    assert_eq!(s.id(), "localhost/eh1/$Default");
    // Partition 1 resumes at 4 (a sink's resume point).
    let at = |p: &str| {
        if p == "1" {
            StartAt::Sequence(4)
        } else {
            StartAt::Earliest
        }
    };
    let (seqs, lost) = read(&mut s, 6, 2, Duration::from_secs(60), at, |_| {}).await;
    assert_eq!(seqs["0"][..6], [0, 1, 2, 3, 4, 5]);
    assert_eq!(seqs["1"][..6], [4, 5, 6, 7, 8, 9]);
    assert!(lost.is_empty(), "{lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_detached_links_lose_and_repeat_nothing() {
    let broker = broker(1).await;
    let producer = producer(&broker).await;
    for i in 0..30 {
        send(&producer, "0", format!("e {i}")).await;
    }
    let (mut s, _stop) = source(&broker).await;
    let b = &broker;
    let (seqs, _) = read(
        &mut s,
        30,
        1,
        Duration::from_secs(120),
        |_| StartAt::Earliest,
        |n| match n {
            5 => {
                b.drop_connections();
            }
            15 => {
                b.detach_readers("eh1", 0, false);
            }
            22 => {
                b.detach_readers("eh1", 0, true);
            }
            _ => {}
        },
    )
    .await;
    assert_eq!(seqs["0"], (0..30).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_that_expired_from_the_hub_is_reported_as_lost() {
    let broker = broker(1).await;
    let producer = producer(&broker).await;
    for i in 0..10 {
        send(&producer, "0", format!("e {i}")).await;
    }
    broker.expire_oldest("eh1", 0, 6).expect("expires");
    let (mut s, _stop) = source(&broker).await;
    let (seqs, lost) = read(
        &mut s,
        4,
        1,
        Duration::from_secs(60),
        |_| StartAt::Sequence(2),
        |_| {},
    )
    .await;
    assert_eq!(seqs["0"], vec![6, 7, 8, 9]);
    assert_eq!(lost["0"], vec![(2, 5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_stream_and_quiet_yields_idle() {
    let broker = broker(1).await;
    let (mut s, stop) = source(&broker).await;
    assert!(matches!(s.next().await, Ok(Some(SourceItem::Gained(_)))));
    s.open("0", StartAt::Earliest).await.expect("opens");
    assert!(matches!(s.next().await, Ok(Some(SourceItem::Idle))));
    stop.send(true).expect("stop");
    assert!(matches!(s.next().await, Ok(None)));
}
