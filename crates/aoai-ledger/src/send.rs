//! `aoai-ledger send`: replays JSON Lines captures into an Event Hubs (the
//! test broker, the emulator, or a namespace) with the official SDK's
//! producer, batched, routed the way each dialect's APIM policy routes its
//! events (or to one partition, or by a field).
//!
//! The connection string comes from the environment, never from a flag. The
//! Rust SDK ignores `UseDevelopmentEmulator` and drops the port, so for such
//! a string the plain-TCP endpoint is derived here from its `Endpoint`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use azure_messaging_eventhubs::{EventDataBatch, EventDataBatchOptions, ProducerClient};
use ledger_core::dialects::{PolicyRoute, decode, policy_route};

/// The variable the connection string is read from.
pub const CONNECTION_STRING_ENV: &str = "AOAI_LEDGER_EVENTHUB_CONNECTION_STRING";

/// How events are routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// As each dialect's policy routes it ([`policy_route`]).
    Policy,
    /// All to one partition.
    Partition(u32),
    /// By the value of a top-level JSON field, as a partition key.
    ByKey(String),
}

#[derive(Debug, Clone)]
pub struct SendOptions {
    pub files: Vec<PathBuf>,
    pub routing: Routing,
    /// Events per second, at most.
    pub rate: Option<f64>,
    pub quiet: bool,
}

/// What was sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendSummary {
    pub events: u64,
    pub bytes: u64,
    pub batches: u64,
    /// Events too large for one message (the hub's limit), not sent.
    pub too_large: u64,
    /// Events per route: `partition N` or `key`.
    pub routes: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("set {CONNECTION_STRING_ENV} to the event hub's connection string")]
    NoConnectionString,
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    // The SDK's errors name hosts and paths, never the key.
    #[error("event hubs: {0}")]
    EventHubs(#[from] azure_messaging_eventhubs::EventHubsError),
    #[error("event hubs: {0}")]
    Core(#[from] azure_core::Error),
    #[error("timed out after {1:?} {0}")]
    Timeout(&'static str, Duration),
}

/// The plain-TCP endpoint for an emulator-style connection string
/// (`UseDevelopmentEmulator=true`), whose port the Rust SDK would drop.
pub fn emulator_endpoint(connection_string: &str) -> Option<String> {
    let mut endpoint = None;
    let mut emulator = false;
    for part in connection_string.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        match key.trim() {
            k if k.eq_ignore_ascii_case("Endpoint") => endpoint = Some(value.trim().to_owned()),
            k if k.eq_ignore_ascii_case("UseDevelopmentEmulator") => {
                emulator = value.trim() == "true"
            }
            _ => {}
        }
    }
    if !emulator {
        return None;
    }
    let authority = endpoint?
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_owned())?;
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or((authority.as_str(), "5672"));
    // The broker and the emulator listen on IPv4; `localhost` may resolve to
    // ::1 first, where nothing answers.
    let host = if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1"
    } else {
        host
    };
    Some(format!("amqp://{host}:{port}"))
}

/// Opens the SDK's producer for a connection string.
pub async fn open_producer(
    connection_string: &str,
    endpoint: Option<String>,
    hub: Option<String>,
) -> Result<ProducerClient, SendError> {
    let mut builder = ProducerClient::builder();
    if let Some(endpoint) = endpoint.or_else(|| emulator_endpoint(connection_string)) {
        builder = builder.with_custom_endpoint(endpoint);
    }
    // The SDK has no open timeout (SDK issue #4810).
    let wait = Duration::from_secs(60);
    tokio::time::timeout(
        wait,
        builder.open_with_connection_string(connection_string, hub.as_deref()),
    )
    .await
    .map_err(|_| SendError::Timeout("opening the producer", wait))?
    .map_err(SendError::from)
}

/// The route of one line, by the chosen routing.
fn route_of(line: &[u8], routing: &Routing) -> Option<PolicyRoute> {
    match routing {
        Routing::Partition(p) => Some(PolicyRoute::Partition(*p)),
        Routing::ByKey(field) => serde_json::from_slice::<serde_json::Value>(line)
            .ok()?
            .get(field)
            .map(|v| match v {
                serde_json::Value::String(s) => PolicyRoute::Key(s.clone()),
                other => PolicyRoute::Key(other.to_string()),
            }),
        // An event the ledger cannot decode is still sent (it will be a
        // dead letter there), without a key.
        Routing::Policy => decode(line).ok()?.first().map(policy_route),
    }
}

fn batch_options(route: &Option<PolicyRoute>) -> EventDataBatchOptions {
    match route {
        Some(PolicyRoute::Partition(p)) => EventDataBatchOptions {
            partition_id: Some(p.to_string()),
            ..Default::default()
        },
        Some(PolicyRoute::Key(k)) => EventDataBatchOptions {
            partition_key: Some(k.clone()),
            ..Default::default()
        },
        None => EventDataBatchOptions::default(),
    }
}

/// Lines are grouped by route in chunks of at most this many events (or
/// bytes), then each route's events go out in full batches.
const CHUNK_EVENTS: usize = 4096;
const CHUNK_BYTES: usize = 16 << 20;

/// Sends every line of every file.
pub async fn send(
    producer: &ProducerClient,
    options: &SendOptions,
) -> Result<SendSummary, SendError> {
    let total: u64 = options
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress_bar(options.quiet, total);
    let started = Instant::now();
    let mut summary = SendSummary::default();
    // With a rate, a chunk is about a second's worth.
    let chunk_events = match options.rate.filter(|r| *r > 0.0) {
        Some(rate) => (rate as usize).clamp(1, CHUNK_EVENTS),
        None => CHUNK_EVENTS,
    };
    warm_up(producer).await?;
    let mut chunk = Chunk::default();
    for path in &options.files {
        let file = std::fs::File::open(path).map_err(|source| SendError::Read {
            path: path.clone(),
            source,
        })?;
        let reader = BufReader::with_capacity(1 << 20, file);
        for line in reader.split(b'\n') {
            let mut line = line.map_err(|source| SendError::Read {
                path: path.clone(),
                source,
            })?;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            chunk.push(route_of(&line, &options.routing), line);
            if chunk.events >= chunk_events || chunk.bytes >= CHUNK_BYTES {
                send_chunk(
                    producer,
                    std::mem::take(&mut chunk),
                    &mut summary,
                    bar.as_ref(),
                )
                .await?;
                pace(options.rate, started, summary.events).await;
            }
        }
    }
    send_chunk(producer, chunk, &mut summary, bar.as_ref()).await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(summary)
}

/// Opens a sender on every path a send may use (the hub and each
/// partition) before any event goes out. Each new path puts a token on a
/// short-lived CBS session; with the fe2o3 0.16 client, a CBS session ending
/// while transfers flow on the same connection can end the connection
/// (frames for handles it has just detached), so they all happen first.
async fn warm_up(producer: &ProducerClient) -> Result<(), SendError> {
    let properties = producer.get_eventhub_properties().await?;
    drop(producer.create_batch(None).await?);
    for id in properties.partition_ids {
        let options = EventDataBatchOptions {
            partition_id: Some(id),
            ..Default::default()
        };
        drop(producer.create_batch(Some(options)).await?);
    }
    Ok(())
}

/// Lines grouped by route, routes in first-seen order.
#[derive(Default)]
struct Chunk {
    groups: Vec<(Option<PolicyRoute>, Vec<Vec<u8>>)>,
    index: HashMap<Option<PolicyRoute>, usize>,
    events: usize,
    bytes: usize,
}

impl Chunk {
    fn push(&mut self, route: Option<PolicyRoute>, line: Vec<u8>) {
        self.events += 1;
        self.bytes += line.len();
        let i = *self.index.entry(route.clone()).or_insert_with(|| {
            self.groups.push((route, Vec::new()));
            self.groups.len() - 1
        });
        self.groups[i].1.push(line);
    }
}

async fn pace(rate: Option<f64>, started: Instant, events: u64) {
    if let Some(rate) = rate.filter(|r| *r > 0.0) {
        let due = started + Duration::from_secs_f64(events as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// One batch open at a time: the SDK's batches share their link, and a
/// second open batch on it blocks the first one's send.
async fn send_chunk(
    producer: &ProducerClient,
    chunk: Chunk,
    summary: &mut SendSummary,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<(), SendError> {
    for (route, lines) in chunk.groups {
        tracing::debug!(route = ?route, events = lines.len(), "next route");
        let mut batch = producer.create_batch(Some(batch_options(&route))).await?;
        for line in lines {
            let size = line.len() as u64;
            if !batch.try_add_event_data(line.clone(), None)? {
                flush(producer, batch, summary).await?;
                batch = producer.create_batch(Some(batch_options(&route))).await?;
                if !batch.try_add_event_data(line, None)? {
                    tracing::warn!(
                        bytes = size,
                        "an event is larger than the hub's message size limit; not sent"
                    );
                    summary.too_large += 1;
                    continue;
                }
            }
            summary.events += 1;
            summary.bytes += size;
            *summary.routes.entry(route_label(&route)).or_default() += 1;
            if let Some(b) = bar {
                b.inc(size + 1);
                b.set_message(format!("{} events", summary.events));
            }
        }
        flush(producer, batch, summary).await?;
    }
    Ok(())
}

fn route_label(route: &Option<PolicyRoute>) -> String {
    match route {
        Some(PolicyRoute::Partition(p)) => format!("partition {p}"),
        Some(PolicyRoute::Key(_)) => "by key".into(),
        None => "any partition".into(),
    }
}

async fn flush(
    producer: &ProducerClient,
    batch: EventDataBatch<'_>,
    summary: &mut SendSummary,
) -> Result<(), SendError> {
    if batch.is_empty() {
        return Ok(());
    }
    // A send racing a dropped connection can wait forever (see the broker's
    // fault tests): bound it.
    let wait = Duration::from_secs(60);
    tracing::debug!(
        events = batch.len(),
        bytes = batch.size(),
        "sending a batch"
    );
    tokio::time::timeout(wait, producer.send_batch(batch, None))
        .await
        .map_err(|_| SendError::Timeout("sending a batch", wait))??;
    summary.batches += 1;
    Ok(())
}

fn progress_bar(quiet: bool, total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:20} {bytes}/{total_bytes} {msg}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_strings_give_a_plain_endpoint_with_their_port() {
        let s = "Endpoint=sb://localhost:5673;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=eh1";
        assert_eq!(
            emulator_endpoint(s).as_deref(),
            Some("amqp://127.0.0.1:5673")
        );
        let default_port = "Endpoint=sb://localhost;UseDevelopmentEmulator=true";
        assert_eq!(
            emulator_endpoint(default_port).as_deref(),
            Some("amqp://127.0.0.1:5672")
        );
        assert_eq!(
            emulator_endpoint("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=x"),
            None
        );
    }

    #[test]
    fn by_key_reads_a_top_level_field() {
        let route = route_of(
            br#"{"requestId":"r1","n":3}"#,
            &Routing::ByKey("requestId".into()),
        );
        assert_eq!(route, Some(PolicyRoute::Key("r1".into())));
        assert_eq!(route_of(b"not json", &Routing::ByKey("x".into())), None);
        assert_eq!(
            route_of(b"x", &Routing::Partition(2)),
            Some(PolicyRoute::Partition(2))
        );
    }
}
