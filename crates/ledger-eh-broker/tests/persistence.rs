//! `--data DIR`: a restarted broker keeps every event with the same
//! sequence numbers and offsets.

mod common;

use std::time::Duration;

use azure_messaging_eventhubs::StartLocation;
use ledger_eh_broker::{Broker, BrokerConfig};

#[tokio::test]
async fn a_restarted_broker_keeps_every_event_with_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        partitions: 2,
        data_dir: Some(dir.path().to_owned()),
        ..Default::default()
    };
    let broker = Broker::start(config.clone()).await.unwrap();
    let producer = common::producer(&broker).await;
    for p in ["0", "1"] {
        common::send_batch(
            &producer,
            common::Target::Partition(p),
            (0..4).map(|i| format!("p{p} e{i}")).collect(),
        )
        .await;
    }
    let read_all = async |broker: &Broker| {
        let consumer = common::consumer(broker).await;
        let mut out = Vec::new();
        for p in ["0", "1"] {
            let r = consumer
                .open_receiver_on_partition(p.into(), common::from(StartLocation::Earliest, false))
                .await
                .unwrap();
            for e in common::take(&r, 4, Duration::from_secs(20)).await {
                out.push((
                    p,
                    e.sequence_number().unwrap(),
                    e.offset().clone().unwrap(),
                    e.enqueued_time().unwrap(),
                    e.event_data().body().unwrap().to_vec(),
                ));
            }
            r.close().await.unwrap();
        }
        out
    };
    let before = read_all(&broker).await;
    // The same process restarting…
    broker.restart().await.unwrap();
    assert_eq!(read_all(&broker).await, before);
    let port = broker.local_addr();
    drop(producer);
    drop(broker);
    // …and a new process on the same directory and port.
    let again = Broker::start(BrokerConfig {
        listen: port,
        ..config
    })
    .await
    .unwrap();
    assert_eq!(read_all(&again).await, before);
    let info = again.partition_info("eh1", 1).unwrap();
    assert_eq!(info.last_sequence_number, 3);
}
