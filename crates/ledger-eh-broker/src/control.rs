//! Fault injection: the operations behind [`crate::Broker`]'s methods, and
//! the HTTP endpoint that exposes them to scripts.
//!
//! ```text
//! POST /faults/drop-connections[?id=N]
//! POST /faults/restart
//! POST /faults/detach?hub=eh1&partition=0[&condition=stolen|detach-forced]
//! POST /faults/cbs?delay_ms=N[&refuse=true|false]
//! POST /faults/management?delay_ms=N
//! POST /faults/hang-open?on=true|false
//! POST /faults/expire?hub=eh1&partition=0&count=N
//! POST /faults/clear
//! GET  /health      GET /stats
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fe2o3_amqp::types::definitions::{ErrorCondition, LinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::connection::Kick;
use crate::{Broker, BrokerError, Shared};

pub(crate) fn drop_connections(shared: &Shared, id: Option<u64>) -> usize {
    let mut connections = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
    let ids: Vec<u64> = connections
        .keys()
        .copied()
        .filter(|c| id.is_none_or(|want| want == *c))
        .collect();
    for c in &ids {
        if let Some(stream) = connections.remove(c) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
    ids.len()
}

pub(crate) fn detach_readers(shared: &Shared, hub: &str, partition: u32, stolen: bool) -> usize {
    let suffix = format!("/{partition}");
    let prefix = format!("{}/", hub.to_ascii_lowercase());
    let mut readers = shared.readers.lock().unwrap_or_else(|p| p.into_inner());
    let mut count = 0;
    for (key, slots) in readers.iter_mut() {
        if !(key.starts_with(&prefix) && key.ends_with(&suffix)) {
            continue;
        }
        for slot in slots.drain(..) {
            let condition: ErrorCondition = if stolen {
                LinkError::Stolen.into()
            } else {
                LinkError::DetachForced.into()
            };
            slot.kick.send_replace(Some(Kick {
                condition,
                description: "detached by fault injection".into(),
            }));
            count += 1;
        }
    }
    count
}

pub(crate) fn clear_faults(shared: &Shared) {
    let faults = &shared.faults;
    faults.cbs_delay_ms.store(0, Ordering::Relaxed);
    faults.cbs_refuse.store(false, Ordering::Relaxed);
    faults.management_delay_ms.store(0, Ordering::Relaxed);
    faults.hang_open.store(false, Ordering::Relaxed);
    faults.cleared.notify_waiters();
}

pub(crate) fn expire_oldest(
    shared: &Shared,
    hub: &str,
    partition: u32,
    count: usize,
) -> Result<(), BrokerError> {
    let hub_state = shared
        .hub(hub)
        .ok_or_else(|| BrokerError::Config(format!("no event hub named {hub:?}")))?;
    let p = hub_state
        .partitions
        .get(partition as usize)
        .ok_or_else(|| BrokerError::Config(format!("no partition {partition} in {hub}")))?;
    p.expire_oldest(count)
}

pub(crate) async fn serve_http(
    broker: Arc<Broker>,
    addr: SocketAddr,
) -> Result<SocketAddr, BrokerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BrokerError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| BrokerError::Listen { addr, source })?;
    let weak = Arc::downgrade(&broker);
    drop(broker);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let Some(broker) = weak.upgrade() else { break };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let read =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
                let Ok(Ok(n)) = read else { return };
                let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let (status, body) = handle(&broker, &request).await;
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(local)
}

fn query<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let (_, q) = target.split_once('?')?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

async fn handle(broker: &Broker, request: &str) -> (&'static str, String) {
    let mut words = request.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let number = |key: &str| query(target, key).and_then(|v| v.parse::<u64>().ok());
    let flag =
        |key: &str, default: bool| query(target, key).map_or(default, |v| v == "true" || v == "1");
    let ok = |detail: String| ("200 OK", format!("{{\"ok\":true,{detail}}}"));
    match (method, path) {
        ("GET", "/health") => ok(format!("\"endpoint\":\"{}\"", broker.endpoint())),
        ("GET", "/stats") => {
            let s = broker.stats();
            ok(format!(
                "\"connections\":{},\"events_in\":{},\"bytes_in\":{},\"events_out\":{}",
                s.connections.load(Ordering::Relaxed),
                s.events_in.load(Ordering::Relaxed),
                s.bytes_in.load(Ordering::Relaxed),
                s.events_out.load(Ordering::Relaxed)
            ))
        }
        ("POST", "/faults/drop-connections") => {
            let n = match number("id") {
                Some(id) => usize::from(broker.drop_connection(id)),
                None => broker.drop_connections(),
            };
            ok(format!("\"dropped\":{n}"))
        }
        ("POST", "/faults/restart") => match broker.restart().await {
            Ok(()) => ok("\"restarted\":true".into()),
            Err(e) => (
                "500 Internal Server Error",
                format!("{{\"ok\":false,\"error\":{:?}}}", e.to_string()),
            ),
        },
        ("POST", "/faults/detach") => {
            let hub = query(target, "hub").unwrap_or("eh1");
            let partition = number("partition").unwrap_or(0);
            let stolen = query(target, "condition") == Some("stolen");
            let n = broker.detach_readers(hub, u32::try_from(partition).unwrap_or(0), stolen);
            ok(format!("\"detached\":{n}"))
        }
        ("POST", "/faults/cbs") => {
            broker.set_cbs_delay(Duration::from_millis(number("delay_ms").unwrap_or(0)));
            broker.set_cbs_refused(flag("refuse", false));
            ok("\"cbs\":\"set\"".into())
        }
        ("POST", "/faults/management") => {
            broker.set_management_delay(Duration::from_millis(number("delay_ms").unwrap_or(0)));
            ok("\"management\":\"set\"".into())
        }
        ("POST", "/faults/hang-open") => {
            broker.set_hang_open(flag("on", true));
            ok("\"hang_open\":\"set\"".into())
        }
        ("POST", "/faults/expire") => {
            let hub = query(target, "hub").unwrap_or("eh1");
            let partition = u32::try_from(number("partition").unwrap_or(0)).unwrap_or(0);
            let count = usize::try_from(number("count").unwrap_or(1)).unwrap_or(1);
            match broker.expire_oldest(hub, partition, count) {
                Ok(()) => ok(format!("\"expired\":{count}")),
                Err(e) => (
                    "400 Bad Request",
                    format!("{{\"ok\":false,\"error\":{:?}}}", e.to_string()),
                ),
            }
        }
        ("POST", "/faults/clear") => {
            broker.clear_faults();
            ok("\"cleared\":true".into())
        }
        _ => (
            "404 Not Found",
            "{\"ok\":false,\"error\":\"unknown control path\"}".into(),
        ),
    }
}
