//! How fast events go through the broker on loopback, sent and received by
//! the official Rust SDK: one producer and one receiver per partition, all
//! at once, for 1 and 4 partitions and 1 KiB and 64 KiB events.
//!
//! ```text
//! cargo run --release -p ledger-eh-broker --example throughput [MIB_PER_RUN]
//! ```
//!
//! Not a test: it prints a table (send and receive MB/s and events/s). The
//! broker settles every batch after its `disposition_delay` (20 ms), so a
//! producer sends at most 50 batches a second; batches fill to 1 MiB.

use std::time::{Duration, Instant};

use azure_messaging_eventhubs::{
    ConsumerClient, EventDataBatchOptions, OpenReceiverOptions, ProducerClient, StartLocation,
    StartPosition,
};
use futures::StreamExt;
use ledger_eh_broker::{Broker, BrokerConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(256);
    println!(
        "broker throughput on loopback, {mib} MiB per run, {} cores",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!("partitions  event    send MB/s  send ev/s   recv MB/s  recv ev/s");
    for partitions in [1u32, 4] {
        for size in [1024usize, 64 * 1024] {
            let run = run(partitions, size, mib * 1024 * 1024 / size).await?;
            println!(
                "{partitions:>10}  {:>5}  {:>9.1}  {:>9.0}  {:>10.1}  {:>9.0}",
                if size == 1024 { "1 KiB" } else { "64 KiB" },
                run.bytes as f64 / 1e6 / run.send.as_secs_f64(),
                run.events as f64 / run.send.as_secs_f64(),
                run.bytes as f64 / 1e6 / run.receive.as_secs_f64(),
                run.events as f64 / run.receive.as_secs_f64(),
            );
        }
    }
    Ok(())
}

struct Run {
    events: usize,
    bytes: usize,
    send: Duration,
    receive: Duration,
}

async fn run(partitions: u32, size: usize, events: usize) -> Result<Run, Error> {
    let broker = Broker::start(BrokerConfig {
        partitions,
        ..BrokerConfig::default()
    })
    .await?;
    let per_partition = events / partitions as usize;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..partitions {
        let (endpoint, connection) = (broker.endpoint(), broker.connection_string());
        tasks.push(tokio::spawn(async move {
            let producer = ProducerClient::builder()
                .with_custom_endpoint(endpoint.clone())
                .open_with_connection_string(&connection, None)
                .await?;
            let consumer = ConsumerClient::builder()
                .with_custom_endpoint(endpoint)
                .open_with_connection_string(&connection, None)
                .await?;
            let receiver = consumer
                .open_receiver_on_partition(
                    p.to_string(),
                    Some(OpenReceiverOptions {
                        start_position: Some(StartPosition {
                            location: StartLocation::Earliest,
                            inclusive: true,
                        }),
                        ..Default::default()
                    }),
                )
                .await?;
            let reading = tokio::spawn(async move {
                let stream = receiver.stream_events();
                futures::pin_mut!(stream);
                let mut got = 0;
                while got < per_partition {
                    match stream.next().await {
                        Some(Ok(_)) => got += 1,
                        Some(Err(e)) => return Err(Error::from(e)),
                        None => return Err("the stream ended".into()),
                    }
                }
                Ok::<_, Error>(Instant::now())
            });
            let body = vec![b'x'; size];
            let mut sent = 0;
            while sent < per_partition {
                let batch = producer
                    .create_batch(Some(EventDataBatchOptions {
                        partition_id: Some(p.to_string()),
                        ..Default::default()
                    }))
                    .await?;
                while sent < per_partition && batch.try_add_event_data(body.clone(), None)? {
                    sent += 1;
                }
                producer.send_batch(batch, None).await?;
            }
            let sent_at = Instant::now();
            let received_at = reading.await??;
            Ok::<_, Error>((sent_at, received_at))
        }));
    }
    let (mut send, mut receive) = (Duration::ZERO, Duration::ZERO);
    for task in tasks {
        let (sent_at, received_at) = task.await??;
        send = send.max(sent_at - started);
        receive = receive.max(received_at - started);
    }
    broker.stop();
    let events = per_partition * partitions as usize;
    Ok(Run {
        events,
        bytes: events * size,
        send,
        receive,
    })
}
