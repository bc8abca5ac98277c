//! ledger-eventhubs reads an event hub's partitions with the official
//! `azure_messaging_eventhubs` 0.16 SDK and yields them as a
//! [`Source`](ledger_pipeline::Source).
//!
//! The SDK is the transport; the position is ours. Each partition gets its
//! own client and task, which opens a receiver at the sequence number the
//! driver asked for and reopens it, from the next sequence number it has
//! not yet delivered, after any fault: a dropped connection, a receive
//! stream that ended (its retries are exhausted), a hung open (SDK issue
//! #4810) or a recovery that never finishes (#4227), caught by our own
//! timeouts. The SDK would otherwise re-attach with the original start
//! filter and replay or skip. Events it delivers twice are dropped by
//! sequence number; a sequence gap, or a resume point older than the
//! partition's oldest retained event, becomes
//! [`SourceItem::Expired`](ledger_pipeline::SourceItem::Expired), so the
//! commit records the range as lost before ingestion.
//!
//! Receivers push into one bounded channel: when the pipeline is slow
//! (a sink retrying), the channel fills and the receivers stop reading,
//! so nothing is dropped and nothing is read ahead without bound.
//!
//! ```no_run
//! # async fn run() -> Result<(), ledger_pipeline::SourceError> {
//! use ledger_eventhubs::{Auth, EventHubsSource, Options};
//! use ledger_pipeline::{Source, SourceItem};
//!
//! let (_stop_tx, stop) = tokio::sync::watch::channel(false);
//! let auth = Auth::connection_string(std::env::var("AOAI_LEDGER_EVENTHUB_CONNECTION_STRING").unwrap());
//! let options = Options { hub: Some("eh1".into()), ..Options::default() };
//! let mut source = EventHubsSource::connect(options, auth, stop).await?;
//! while let Some(item) = source.next().await? {
//!     if let SourceItem::Gained(p) = item {
//!         source.open(&p, ledger_pipeline::StartAt::Earliest).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_messaging_eventhubs::models::ReceivedEventData;
use azure_messaging_eventhubs::{
    ConnectionString, ConsumerClient, OpenReceiverOptions, RetryOptions, StartLocation,
    StartPosition,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ledger_core::checkpoint::SeqRange;
use ledger_core::{Position, RawEvent};
use ledger_pipeline::{ByteProgress, Source, SourceError, SourceItem, StartAt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How to authenticate to the namespace.
#[derive(Clone)]
pub enum Auth {
    /// A SAS connection string (`Endpoint=sb://…;SharedAccessKeyName=…;
    /// SharedAccessKey=…[;EntityPath=hub]`). The SDK signs and refreshes
    /// its tokens.
    ConnectionString(Secret),
    /// A Microsoft Entra credential (managed identity, workload identity,
    /// Azure CLI, …) from `azure_identity` or any other implementation.
    Credential(Arc<dyn TokenCredential>),
}

impl Auth {
    pub fn connection_string(s: impl Into<String>) -> Self {
        Auth::ConnectionString(Secret(s.into()))
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ConnectionString(_) => f.write_str("ConnectionString(<redacted>)"),
            Auth::Credential(_) => f.write_str("Credential"),
        }
    }
}

/// A string that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the source needs to know; the worker's configuration builds it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fully qualified namespace (`myns.servicebus.windows.net`); taken
    /// from the connection string when absent.
    pub namespace: Option<String>,
    /// The event hub; from the connection string's `EntityPath` when absent.
    pub hub: Option<String>,
    pub consumer_group: String,
    /// A custom AMQP endpoint (`amqp://127.0.0.1:5672`): the local broker
    /// or the emulator, without TLS.
    pub endpoint: Option<String>,
    /// Only these partitions (all when None).
    pub partitions: Option<Vec<String>>,
    pub prefetch: u32,
    /// Opening a client or a receiver (the SDK has none of its own: #4810).
    pub open_timeout: Duration,
    /// A management call (hub or partition properties).
    pub operation_timeout: Duration,
    /// A receiver that delivers nothing this long while its partition has
    /// newer events is rebuilt.
    pub receive_idle: Duration,
    /// How often a partition's last enqueued event is read, for the lag
    /// and to notice a stalled receiver.
    pub lag_poll: Duration,
    /// [`Source::next`] yields [`SourceItem::Idle`] after this long without
    /// an event, so the driver can flush by time.
    pub idle_tick: Duration,
    /// Events buffered between the receivers and the pipeline.
    pub channel_events: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            hub: None,
            consumer_group: "$Default".into(),
            endpoint: None,
            partitions: None,
            prefetch: 300,
            open_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(30),
            receive_idle: Duration::from_secs(60),
            lag_poll: Duration::from_secs(10),
            idle_tick: Duration::from_secs(1),
            channel_events: 10_000,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Told what the receivers see, for metrics. Called from receiver tasks.
pub trait Monitor: Send + Sync {
    /// A receiver was rebuilt, and why (a short, fixed reason).
    fn reconnect(&self, _partition: &str, _reason: &'static str) {}
    /// The partition's newest event, as the service reports it.
    fn last_enqueued(&self, _partition: &str, _sequence: i64, _time: Option<DateTime<Utc>>) {}
}

/// A monitor that ignores everything.
pub struct NoMonitor;

impl Monitor for NoMonitor {}

enum Msg {
    Event {
        generation: u64,
        event: RawEvent,
    },
    Expired {
        generation: u64,
        partition: String,
        range: SeqRange,
    },
}

struct Reader {
    generation: u64,
    handle: JoinHandle<()>,
}

/// Every partition of one event hub and consumer group.
pub struct EventHubsSource {
    id: String,
    name: String,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    readers: HashMap<String, Reader>,
    gained: VecDeque<String>,
    generation: u64,
    stop: watch::Receiver<bool>,
    bytes: u64,
}

/// What every reader task shares.
struct Shared {
    options: Options,
    auth: Auth,
    hub: String,
    namespace: String,
    monitor: Arc<dyn Monitor>,
}

impl Drop for EventHubsSource {
    fn drop(&mut self) {
        for r in self.readers.values() {
            r.handle.abort();
        }
    }
}

impl EventHubsSource {
    /// Connects, lists the partitions and yields each as gained. `stop`
    /// turning true, or its sender being dropped, makes [`Source::next`]
    /// end the stream.
    pub async fn connect(
        options: Options,
        auth: Auth,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, SourceError> {
        Self::connect_with(options, auth, stop, Arc::new(NoMonitor)).await
    }

    pub async fn connect_with(
        options: Options,
        auth: Auth,
        stop: watch::Receiver<bool>,
        monitor: Arc<dyn Monitor>,
    ) -> Result<Self, SourceError> {
        let (namespace, hub) = names(&options, &auth)?;
        let shared = Arc::new(Shared {
            options,
            auth,
            hub,
            namespace,
            monitor,
        });
        let client = open_client(&shared).await.map_err(SourceError::Other)?;
        let props = timed(
            shared.options.operation_timeout,
            "reading the event hub's properties",
            client.get_eventhub_properties(),
        )
        .await;
        let _ = client.close().await;
        let props = props.map_err(SourceError::Other)?;
        let mut partitions = props.partition_ids;
        if let Some(only) = &shared.options.partitions {
            if let Some(missing) = only.iter().find(|p| !partitions.contains(p)) {
                return Err(SourceError::Other(format!(
                    "partition {missing} is not one of the event hub's ({})",
                    partitions.join(", ")
                )));
            }
            partitions.retain(|p| only.contains(p));
        }
        let id = format!(
            "{}/{}/{}",
            shared.namespace.to_ascii_lowercase(),
            shared.hub,
            shared.options.consumer_group
        );
        let (tx, rx) = mpsc::channel(shared.options.channel_events.max(1));
        tracing::info!(source = %id, partitions = partitions.len(), "event hub connected");
        Ok(EventHubsSource {
            name: id.clone(),
            id,
            shared,
            tx,
            rx,
            readers: HashMap::new(),
            gained: partitions.into(),
            generation: 0,
            stop,
            bytes: 0,
        })
    }

    /// The partitions being read.
    pub fn partitions(&self) -> impl Iterator<Item = &str> {
        self.readers.keys().map(String::as_str)
    }
}

/// The namespace and hub, from the options or the connection string.
fn names(options: &Options, auth: &Auth) -> Result<(String, String), SourceError> {
    let parsed = match auth {
        Auth::ConnectionString(s) => Some(s.0.parse::<ConnectionString>().map_err(|_| {
            SourceError::Other(
                "the Event Hubs connection string is not valid (expected \
                 Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…])"
                    .into(),
            )
        })?),
        Auth::Credential(_) => None,
    };
    let namespace = options
        .namespace
        .clone()
        .or_else(|| parsed.as_ref().map(|c| c.fully_qualified_namespace.clone()))
        .ok_or_else(|| SourceError::Other("no Event Hubs namespace is configured".into()))?;
    let hub = options
        .hub
        .clone()
        .or_else(|| parsed.as_ref().and_then(|c| c.entity_path.clone()))
        .ok_or_else(|| SourceError::Other("no event hub name is configured".into()))?;
    Ok((namespace, hub))
}

async fn timed<T, E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Err(_) => Err(format!("{what} timed out after {limit:?}")),
        Ok(Err(e)) => Err(format!(
            "{what}: {}",
            ledger_core::redact::scrub_text(&e.to_string())
        )),
        Ok(Ok(v)) => Ok(v),
    }
}

async fn open_client(shared: &Shared) -> Result<ConsumerClient, String> {
    let o = &shared.options;
    let mut builder = ConsumerClient::builder()
        .with_consumer_group(o.consumer_group.clone())
        // Our own reopen loop handles faults; the SDK's retries only delay it.
        .with_retry_options(RetryOptions {
            initial_delay: signed(o.retry_initial),
            max_delay: signed(o.retry_max),
            max_total_elapsed: signed(o.open_timeout),
            max_retries: 3,
        });
    if let Some(endpoint) = &o.endpoint {
        builder = builder.with_custom_endpoint(endpoint.clone());
    }
    let what = "opening the Event Hubs client";
    match &shared.auth {
        Auth::ConnectionString(s) => {
            timed(
                o.open_timeout,
                what,
                builder.open_with_connection_string(&s.0, Some(&shared.hub)),
            )
            .await
        }
        Auth::Credential(c) => {
            timed(
                o.open_timeout,
                what,
                builder.open(&shared.namespace, shared.hub.clone(), c.clone()),
            )
            .await
        }
    }
}

#[async_trait]
impl Source for EventHubsSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn open(&mut self, partition: &str, at: StartAt) -> Result<(), SourceError> {
        if let Some(old) = self.readers.remove(partition) {
            old.handle.abort();
        }
        self.generation += 1;
        let next = match at {
            StartAt::Earliest => None,
            StartAt::Sequence(s) => Some(s),
        };
        let reader = PartitionReader {
            shared: self.shared.clone(),
            partition: partition.to_string(),
            generation: self.generation,
            tx: self.tx.clone(),
            next,
        };
        let handle = tokio::spawn(reader.run());
        self.readers.insert(
            partition.to_string(),
            Reader {
                generation: self.generation,
                handle,
            },
        );
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<SourceItem>, SourceError> {
        if let Some(p) = self.gained.pop_front() {
            return Ok(Some(SourceItem::Gained(p)));
        }
        let tick = self.shared.options.idle_tick;
        loop {
            if *self.stop.borrow() {
                return Ok(None);
            }
            let msg = tokio::select! {
                // A dropped stop handle can never say stop: it means stop.
                changed = self.stop.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return Ok(None),
                },
                m = tokio::time::timeout(tick, self.rx.recv()) => m,
            };
            let current =
                |s: &Self, p: &str, g: u64| s.readers.get(p).is_some_and(|r| r.generation == g);
            match msg {
                Err(_) => return Ok(Some(SourceItem::Idle)),
                // The source holds a sender: the channel cannot close.
                Ok(None) => return Ok(None),
                Ok(Some(Msg::Event { generation, event })) => {
                    if current(self, &event.position.partition, generation) {
                        self.bytes += event.body.len() as u64;
                        return Ok(Some(SourceItem::Event(event)));
                    }
                }
                Ok(Some(Msg::Expired {
                    generation,
                    partition,
                    range,
                })) => {
                    if current(self, &partition, generation) {
                        return Ok(Some(SourceItem::Expired { partition, range }));
                    }
                }
            }
        }
    }

    fn progress(&self) -> ByteProgress {
        ByteProgress {
            read: self.bytes,
            total: None,
        }
    }
}

/// One partition's reading loop: its own client, reopened from `next`.
struct PartitionReader {
    shared: Arc<Shared>,
    partition: String,
    generation: u64,
    tx: mpsc::Sender<Msg>,
    /// The next sequence number to deliver (None: the earliest retained).
    next: Option<i64>,
}

/// Why a read attempt ended.
enum Ended {
    /// The source is gone: stop.
    Closed,
    /// A fault: reopen after a backoff.
    Fault(&'static str, String),
}

impl PartitionReader {
    async fn run(mut self) {
        let mut backoff = self.shared.options.retry_initial;
        loop {
            let delivered_before = self.next;
            match self.read_once().await {
                Ended::Closed => return,
                Ended::Fault(kind, detail) => {
                    if self.next != delivered_before {
                        backoff = self.shared.options.retry_initial;
                    }
                    self.shared.monitor.reconnect(&self.partition, kind);
                    tracing::warn!(
                        partition = %self.partition,
                        next = ?self.next,
                        reason = kind,
                        error = %detail,
                        retry_in = ?backoff,
                        "event hub receiver failed: reopening it from the next sequence number"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.shared.options.retry_max);
                }
            }
        }
    }

    async fn read_once(&mut self) -> Ended {
        let close_within = self.shared.options.operation_timeout;
        let client = match open_client(&self.shared).await {
            Ok(c) => c,
            Err(e) => return Ended::Fault("open client", e),
        };
        let ended = self.read_with(&client).await;
        // A client that hangs on close is dropped anyway.
        let _ = tokio::time::timeout(close_within, client.close()).await;
        ended
    }

    /// The partition's properties, also told to the monitor (the lag).
    async fn properties(
        &self,
        client: &ConsumerClient,
    ) -> Result<azure_messaging_eventhubs::models::EventHubPartitionProperties, String> {
        let props = timed(
            self.shared.options.operation_timeout,
            "reading the partition's properties",
            client.get_partition_properties(&self.partition),
        )
        .await?;
        self.shared.monitor.last_enqueued(
            &self.partition,
            props.last_enqueued_sequence_number,
            props.last_enqueued_time_utc.map(to_utc),
        );
        Ok(props)
    }

    async fn read_with(&mut self, client: &ConsumerClient) -> Ended {
        let o = self.shared.options.clone();
        let props = match self.properties(client).await {
            Ok(p) => p,
            Err(e) => return Ended::Fault("properties", e),
        };
        if let Some(next) = self.next
            && !props.is_empty
            && props.beginning_sequence_number > next
        {
            let range = SeqRange {
                first: next,
                last: props.beginning_sequence_number - 1,
            };
            if self.expired(range).await.is_err() {
                return Ended::Closed;
            }
        }
        let start = match self.next {
            Some(s) => StartPosition {
                location: StartLocation::SequenceNumber(s),
                inclusive: true,
            },
            None => StartPosition {
                location: StartLocation::Earliest,
                inclusive: false,
            },
        };
        let receiver = match timed(
            o.open_timeout,
            "opening the receiver",
            client.open_receiver_on_partition(
                self.partition.clone(),
                Some(OpenReceiverOptions {
                    prefetch: Some(o.prefetch),
                    start_position: Some(start),
                    ..Default::default()
                }),
            ),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return Ended::Fault("open receiver", e),
        };
        let stream = receiver.stream_events();
        futures::pin_mut!(stream);
        let mut poll = tokio::time::interval(o.lag_poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        let mut last_event = Instant::now();
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    let props = match self.properties(client).await {
                        Ok(p) => p,
                        Err(e) => return Ended::Fault("properties", e),
                    };
                    let behind = !props.is_empty
                        && self.next.is_none_or(|n| props.last_enqueued_sequence_number >= n);
                    if behind && last_event.elapsed() >= o.receive_idle {
                        return Ended::Fault(
                            "stalled",
                            format!(
                                "no event for {:?} while the partition holds newer ones",
                                last_event.elapsed()
                            ),
                        );
                    }
                }
                item = stream.next() => {
                    match item {
                        None => return Ended::Fault("stream ended", "the receive stream ended".into()),
                        Some(Err(e)) => {
                            return Ended::Fault(
                                "receive",
                                ledger_core::redact::scrub_text(&e.to_string()),
                            );
                        }
                        Some(Ok(event)) => {
                            last_event = Instant::now();
                            match self.deliver(event).await {
                                Ok(()) => {}
                                Err(Delivery::Closed) => return Ended::Closed,
                                Err(Delivery::Invalid(why)) => return Ended::Fault("invalid event", why),
                            }
                        }
                    }
                }
            }
        }
    }

    async fn expired(&mut self, range: SeqRange) -> Result<(), Delivery> {
        tracing::warn!(
            partition = %self.partition,
            first = range.first,
            last = range.last,
            "events expired from the event hub before they were read"
        );
        self.tx
            .send(Msg::Expired {
                generation: self.generation,
                partition: self.partition.clone(),
                range,
            })
            .await
            .map_err(|_| Delivery::Closed)?;
        self.next = Some(range.last + 1);
        Ok(())
    }

    async fn deliver(&mut self, event: ReceivedEventData) -> Result<(), Delivery> {
        let Some(seq) = event.sequence_number() else {
            return Err(Delivery::Invalid(
                "an event without a sequence number".into(),
            ));
        };
        if let Some(next) = self.next {
            if seq < next {
                // Delivered before (the SDK re-attached with an old filter).
                return Ok(());
            }
            if seq > next {
                self.expired(SeqRange {
                    first: next,
                    last: seq - 1,
                })
                .await?;
            }
        }
        let raw = RawEvent {
            position: Position {
                partition: self.partition.clone(),
                sequence: seq,
            },
            offset: event.offset().clone(),
            enqueued_time: event.enqueued_time().map(to_utc),
            body: event
                .event_data()
                .body()
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
        };
        self.tx
            .send(Msg::Event {
                generation: self.generation,
                event: raw,
            })
            .await
            .map_err(|_| Delivery::Closed)?;
        self.next = Some(seq + 1);
        Ok(())
    }
}

enum Delivery {
    Closed,
    Invalid(String),
}

fn to_utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

/// The SDK's duration type, saturating.
fn signed(d: Duration) -> azure_core::time::Duration {
    azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
}
