//! An Event Hubs–compatible AMQP 1.0 test broker.
//!
//! It serves hubs, partitions and consumer groups over plain TCP so that the
//! official SDKs (Rust `azure_messaging_eventhubs`, Python `azure-eventhub`)
//! talk to it as to the service: SASL ANONYMOUS/MSSBCBS, CBS put-token with
//! SAS or test JWTs (and their expiry enforced), `$management` READs typed
//! as the SDKs need them, batched sends routed by partition key, receivers
//! with every start filter and owner-level (epoch) takeover. Events live in
//! memory or in a directory (`data_dir`) that survives a restart.
//!
//! Tests drive faults through [`Broker`] itself, scripts through the HTTP
//! control endpoint ([`Broker::serve_control`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), ledger_eh_broker::BrokerError> {
//! use ledger_eh_broker::{Broker, BrokerConfig};
//! let broker = Broker::start(BrokerConfig { partitions: 4, ..BrokerConfig::default() }).await?;
//! println!("{}", broker.connection_string());
//! // … point an SDK client at broker.endpoint() …
//! broker.drop_connections();        // every client reconnects
//! broker.restart().await?;          // same port, same events
//! # Ok(()) }
//! ```
//!
//! The design notes (`docs/design/eventhubs.md`) list what each client needs
//! and where it breaks; this crate is written against them.

pub mod address;
pub mod auth;
mod connection;
pub mod control;
pub mod store;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use auth::{JwtIssuer, SasKey};
pub use store::{Partition, PartitionInfo, Retention};

/// The emulator's documented placeholder key, so its connection string works.
pub const DEFAULT_KEY: &str = "SAS_KEY_VALUE";
/// The emulator's key name.
pub const DEFAULT_KEY_NAME: &str = "RootManageSharedAccessKey";
/// Event Hubs Standard's message size limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1024 * 1024;

/// What the broker serves.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The namespace host clients name in their addresses and tokens.
    pub namespace: String,
    /// Event hubs to create.
    pub hubs: Vec<String>,
    /// Partitions per hub (1–32).
    pub partitions: u32,
    /// Consumer groups besides `$Default`.
    pub consumer_groups: Vec<String>,
    /// Keep events here (one directory per hub), so a restart keeps them.
    pub data_dir: Option<PathBuf>,
    pub retention: Retention,
    /// Shared access keys a SAS token may be signed with.
    pub keys: Vec<SasKey>,
    /// Accept `jwt` tokens signed by this test issuer.
    pub jwt: Option<JwtIssuer>,
    /// The `max-message-size` announced on attach (1 MiB by default).
    pub max_message_size: u64,
    /// How long the broker waits before settling a received message. The
    /// fe2o3 0.16 client (under the Rust SDK) writes a transfer before it
    /// registers the delivery's outcome, so an answer that comes back
    /// faster than that is lost and the send waits forever. The service is
    /// never that fast; a loopback broker must not be either. 20 ms: on a
    /// 2-core machine loaded with builds, 1 ms lost about one `send` of the
    /// corpus in fifteen and 5 ms still lost one (the client's task is
    /// preempted between the two steps for longer than the round trip).
    pub disposition_delay: Duration,
    /// How long a client's link detach waits for its session's `end`
    /// before the broker reads it (see `wire.rs`: the fe2o3 0.16 client
    /// drops its connection when a dropped link's detach is answered).
    /// Zero turns the wait off.
    pub detach_grace: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            namespace: "localhost".into(),
            hubs: vec!["eh1".into()],
            partitions: 4,
            consumer_groups: vec!["cg1".into()],
            data_dir: None,
            retention: Retention::default(),
            keys: vec![SasKey {
                name: DEFAULT_KEY_NAME.into(),
                key: DEFAULT_KEY.into(),
            }],
            jwt: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            disposition_delay: Duration::from_millis(20),
            detach_grace: Duration::from_millis(50),
        }
    }
}

/// Errors starting or running the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid broker configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the partition log: {0}")]
    Storage(std::io::Error),
}

impl BrokerError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// One event hub.
#[derive(Debug)]
pub(crate) struct Hub {
    pub name: String,
    pub created_at_ms: i64,
    pub partitions: Vec<Partition>,
    pub consumer_groups: Vec<String>,
}

impl Hub {
    pub fn partition(&self, id: &str) -> Option<&Partition> {
        id.parse::<usize>()
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    pub fn has_consumer_group(&self, name: &str) -> bool {
        self.consumer_groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(name))
    }
}

/// Faults that change how the broker answers, set through [`Broker`] or the
/// control endpoint.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub cbs_delay_ms: AtomicU64,
    pub cbs_refuse: AtomicBool,
    pub management_delay_ms: AtomicU64,
    pub hang_open: AtomicBool,
    /// Bumped when faults are cleared, so held connections let go.
    pub cleared: tokio::sync::Notify,
}

/// A reader registered on a partition, for owner-level (epoch) takeover.
#[derive(Debug)]
pub(crate) struct ReaderSlot {
    pub id: u64,
    pub epoch: Option<i64>,
    pub kick: tokio::sync::watch::Sender<Option<connection::Kick>>,
}

/// State shared by every connection; it outlives a restart.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: BrokerConfig,
    pub hubs: Mutex<HashMap<String, Arc<Hub>>>,
    pub verifier: auth::Verifier,
    pub faults: Faults,
    pub connections: Mutex<HashMap<u64, std::net::TcpStream>>,
    pub readers: Mutex<HashMap<String, Vec<ReaderSlot>>>,
    pub next_id: AtomicU64,
    pub stats: Stats,
}

/// Counters for the control endpoint and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub events_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub events_out: AtomicU64,
    pub tokens_accepted: AtomicU64,
}

impl Shared {
    pub fn hub(&self, name: &str) -> Option<Arc<Hub>> {
        let hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.get(&name.to_ascii_lowercase()).cloned()
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn load_hubs(&self) -> Result<(), BrokerError> {
        let config = &self.config;
        let mut hubs = HashMap::new();
        for name in &config.hubs {
            let mut partitions = Vec::new();
            for i in 0..config.partitions {
                let id = i.to_string();
                partitions.push(match &config.data_dir {
                    Some(dir) => Partition::open_dir(&dir.join(name), &id, config.retention)?,
                    None => Partition::in_memory(config.retention),
                });
            }
            let mut consumer_groups = vec!["$Default".to_string()];
            consumer_groups.extend(config.consumer_groups.iter().cloned());
            hubs.insert(
                name.to_ascii_lowercase(),
                Arc::new(Hub {
                    name: name.clone(),
                    created_at_ms: store::now_ms(),
                    partitions,
                    consumer_groups,
                }),
            );
        }
        *self.hubs.lock().unwrap_or_else(|p| p.into_inner()) = hubs;
        Ok(())
    }
}

/// A running broker. Dropping it stops it.
#[derive(Debug)]
pub struct Broker {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_loop: Mutex<Option<JoinHandle<()>>>,
}

impl Broker {
    /// Loads (or creates) the hubs and starts listening.
    pub async fn start(config: BrokerConfig) -> Result<Self, BrokerError> {
        if !(1..=32).contains(&config.partitions) {
            return Err(BrokerError::Config(format!(
                "partitions must be 1 to 32, not {}",
                config.partitions
            )));
        }
        if config.hubs.is_empty() {
            return Err(BrokerError::Config(
                "at least one event hub is needed".into(),
            ));
        }
        if config.keys.is_empty() {
            return Err(BrokerError::Config(
                "at least one shared access key is needed".into(),
            ));
        }
        let shared = Arc::new(Shared {
            verifier: auth::Verifier {
                keys: config.keys.clone(),
                jwt: config.jwt.clone(),
            },
            config,
            hubs: Mutex::default(),
            faults: Faults::default(),
            connections: Mutex::default(),
            readers: Mutex::default(),
            next_id: AtomicU64::new(1),
            stats: Stats::default(),
        });
        shared.load_hubs()?;
        let listener = bind_with_retry(shared.config.listen).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| BrokerError::Listen {
                addr: shared.config.listen,
                source,
            })?;
        let accept_loop = tokio::spawn(connection::accept_loop(shared.clone(), listener));
        tracing::info!(%addr, hubs = ?shared.config.hubs, partitions = shared.config.partitions, "broker listening");
        Ok(Self {
            shared,
            addr,
            accept_loop: Mutex::new(Some(accept_loop)),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `amqp://127.0.0.1:PORT`, the Rust SDK's custom endpoint.
    pub fn endpoint(&self) -> String {
        format!("amqp://{}", self.addr)
    }

    /// The emulator's connection string form, with this broker's port and first hub.
    pub fn connection_string(&self) -> String {
        let key = &self.shared.config.keys[0];
        format!(
            "Endpoint=sb://{}:{};SharedAccessKeyName={};SharedAccessKey={};UseDevelopmentEmulator=true;EntityPath={}",
            self.shared.config.namespace,
            self.addr.port(),
            key.name,
            key.key,
            self.shared.config.hubs[0]
        )
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// What a partition holds now.
    pub fn partition_info(&self, hub: &str, partition: u32) -> Option<PartitionInfo> {
        let hub = self.shared.hub(hub)?;
        hub.partitions.get(partition as usize).map(Partition::info)
    }

    /// Drops every connection at the TCP level, without an AMQP close.
    pub fn drop_connections(&self) -> usize {
        control::drop_connections(&self.shared, None)
    }

    /// Drops one connection (ids as the control endpoint lists them).
    pub fn drop_connection(&self, id: u64) -> bool {
        control::drop_connections(&self.shared, Some(id)) > 0
    }

    /// Detaches every reader of a partition with `amqp:link:detach-forced`
    /// or, with `stolen`, `amqp:link:stolen`.
    pub fn detach_readers(&self, hub: &str, partition: u32, stolen: bool) -> usize {
        control::detach_readers(&self.shared, hub, partition, stolen)
    }

    /// Delays CBS replies.
    pub fn set_cbs_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.faults.cbs_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Answers put-token with 401 while set.
    pub fn set_cbs_refused(&self, refused: bool) {
        self.shared
            .faults
            .cbs_refuse
            .store(refused, Ordering::Relaxed);
    }

    /// Delays `$management` replies.
    pub fn set_management_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared
            .faults
            .management_delay_ms
            .store(ms, Ordering::Relaxed);
    }

    /// New connections get no answer to their protocol header and Open.
    pub fn set_hang_open(&self, hang: bool) {
        self.shared.faults.hang_open.store(hang, Ordering::Relaxed);
        if !hang {
            self.shared.faults.cleared.notify_waiters();
        }
    }

    /// Clears every fault.
    pub fn clear_faults(&self) {
        control::clear_faults(&self.shared);
    }

    /// Drops a partition's `count` oldest events, as retention would.
    pub fn expire_oldest(
        &self,
        hub: &str,
        partition: u32,
        count: usize,
    ) -> Result<(), BrokerError> {
        control::expire_oldest(&self.shared, hub, partition, count)
    }

    /// Stops listening and drops every connection.
    pub fn stop(&self) {
        if let Some(task) = self
            .accept_loop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        self.drop_connections();
    }

    /// Stops, then listens again on the same port. With a data directory the
    /// hubs are reloaded from it, as a restarted process would; without one
    /// the events in memory are kept.
    pub async fn restart(&self) -> Result<(), BrokerError> {
        self.stop();
        if self.shared.config.data_dir.is_some() {
            self.shared.load_hubs()?;
        }
        let listener = bind_with_retry(self.addr).await?;
        let task = tokio::spawn(connection::accept_loop(self.shared.clone(), listener));
        *self.accept_loop.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(())
    }

    /// Serves the HTTP control endpoint on `addr` until the broker drops.
    pub async fn serve_control(
        self: &Arc<Self>,
        addr: SocketAddr,
    ) -> Result<SocketAddr, BrokerError> {
        control::serve_http(self.clone(), addr).await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds, waiting up to 5 s for a port a stopped broker still holds (its
/// accept task is aborted, not yet dropped).
async fn bind_with_retry(addr: SocketAddr) -> Result<TcpListener, BrokerError> {
    let mut attempts = 0;
    loop {
        match bind_reusable(addr) {
            Ok(listener) => return Ok(listener),
            Err(e)
                if attempts < 50
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && addr.port() != 0 =>
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(source) => return Err(BrokerError::Listen { addr, source }),
        }
    }
}

fn bind_reusable(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
