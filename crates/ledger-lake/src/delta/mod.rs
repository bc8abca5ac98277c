//! The subset of the Delta Lake protocol the lake needs, on `object_store`:
//! commit files written with put-if-absent (the protocol's mutual
//! exclusion), snapshots replayed from the newest classic checkpoint plus
//! the commits after it, application transactions (`txn`) and domain
//! metadata (`domainMetadata`), and checkpoints every
//! [`CHECKPOINT_INTERVAL`] commits. `docs/design/lake.md` says why the lake
//! writes its own log rather than linking delta-rs.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use ledger_lake::delta::{Action, DeltaTable, Txn};
//! use object_store::{memory::InMemory, path::Path};
//!
//! let table = DeltaTable::new(Arc::new(InMemory::new()), Path::from("calls"));
//! let mut snapshot = table.snapshot().await.unwrap();
//! assert_eq!(snapshot.version, -1); // no table yet
//! let txn = Txn { app_id: "writer-1".into(), version: 7, last_updated: None };
//! let actions = table.creation(&arrow::datatypes::Schema::empty(), &[]).unwrap();
//! let mut actions = actions;
//! actions.push(Action::from(txn));
//! assert!(table.try_commit(0, &actions).await.unwrap());
//! table.update(&mut snapshot).await.unwrap();
//! assert_eq!(snapshot.txns["writer-1"].version, 7);
//! # });
//! ```

mod action;
mod checkpoint;
mod schema;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

pub use action::{
    Action, Add, DomainMetadata, Format, Metadata, Protocol, Remove, Txn, parse_commit,
    write_commit,
};
pub use schema::{parse_schema_string, schema_string};

/// A checkpoint every this many commits, as Spark does by default: opening
/// a table reads one checkpoint and at most this many commit files.
pub const CHECKPOINT_INTERVAL: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("table storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("Delta log file {path}: {reason}")]
    Log { path: String, reason: String },
    #[error("Delta schema: {0}")]
    Schema(String),
    #[error("Delta table at {path} cannot be written by this ledger: {reason}")]
    Protocol { path: String, reason: String },
    #[error("Delta checkpoint: {0}")]
    Checkpoint(String),
}

impl From<parquet::errors::ParquetError> for DeltaError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        DeltaError::Checkpoint(e.to_string())
    }
}
impl From<arrow::error::ArrowError> for DeltaError {
    fn from(e: arrow::error::ArrowError) -> Self {
        DeltaError::Checkpoint(e.to_string())
    }
}

/// The state of a table at one version.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// -1 before the table's first commit.
    pub version: i64,
    pub protocol: Option<Protocol>,
    pub metadata: Option<Metadata>,
    /// The live data files, by path.
    pub files: BTreeMap<String, Add>,
    /// Removed files, kept for readers of older versions until vacuumed.
    pub tombstones: BTreeMap<String, Remove>,
    pub txns: HashMap<String, Txn>,
    pub domains: BTreeMap<String, DomainMetadata>,
    /// When the newest commit was made (its `commitInfo.timestamp`), in ms.
    pub timestamp: Option<i64>,
}

impl Snapshot {
    fn empty() -> Snapshot {
        Snapshot {
            version: -1,
            ..Default::default()
        }
    }

    /// Applies one commit's actions, in order.
    pub fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            if let Some(p) = &a.protocol {
                self.protocol = Some(p.clone());
            }
            if let Some(m) = &a.metadata {
                self.metadata = Some(m.clone());
            }
            if let Some(add) = &a.add {
                self.tombstones.remove(&add.path);
                self.files.insert(add.path.clone(), add.clone());
            }
            if let Some(r) = &a.remove {
                self.files.remove(&r.path);
                self.tombstones.insert(r.path.clone(), r.clone());
            }
            if let Some(t) = &a.txn {
                self.txns.insert(t.app_id.clone(), t.clone());
            }
            if let Some(d) = &a.domain_metadata {
                if d.removed {
                    self.domains.remove(&d.domain);
                } else {
                    self.domains.insert(d.domain.clone(), d.clone());
                }
            }
            if let Some(ts) = a
                .commit_info
                .as_ref()
                .and_then(|c| c.get("timestamp"))
                .and_then(serde_json::Value::as_i64)
            {
                self.timestamp = Some(ts);
            }
        }
    }

    /// The table's schema, partition columns included.
    pub fn schema(&self) -> Result<Option<SchemaRef>, DeltaError> {
        self.metadata
            .as_ref()
            .map(|m| parse_schema_string(&m.schema_string))
            .transpose()
    }
}

/// One Delta table: a root in an object store, its log in `_delta_log/`.
#[derive(Debug, Clone)]
pub struct DeltaTable {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl DeltaTable {
    pub fn new(store: Arc<dyn ObjectStore>, root: Path) -> DeltaTable {
        DeltaTable { store, root }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path below the table root.
    pub fn path(&self, rel: &str) -> Path {
        crate::location::below(&self.root, rel)
    }

    fn commit_path(&self, version: i64) -> Path {
        self.path(&format!("_delta_log/{version:020}.json"))
    }

    /// The actions of a first commit: the protocol and the metadata.
    pub fn creation(
        &self,
        schema: &Schema,
        partition_columns: &[&str],
    ) -> Result<Vec<Action>, DeltaError> {
        Ok(vec![
            Protocol::ours().into(),
            Metadata {
                id: uuid::Uuid::new_v4().to_string(),
                name: None,
                description: None,
                format: Format::default(),
                schema_string: schema_string(schema)?,
                partition_columns: partition_columns.iter().map(|c| c.to_string()).collect(),
                configuration: BTreeMap::from([(
                    "delta.checkpointInterval".to_string(),
                    Some(CHECKPOINT_INTERVAL.to_string()),
                )]),
                created_time: Some(chrono::Utc::now().timestamp_millis()),
            }
            .into(),
        ])
    }

    /// The newest snapshot.
    pub async fn snapshot(&self) -> Result<Snapshot, DeltaError> {
        let mut snap = match self.last_checkpoint().await? {
            Some(v) => self.read_checkpoint(v).await?,
            None => match self.newest_checkpoint_listed(None).await? {
                Some(v) => self.read_checkpoint(v).await?,
                None => Snapshot::empty(),
            },
        };
        self.update(&mut snap).await?;
        Ok(snap)
    }

    /// The snapshot at `version` (time travel), or an error when the log no
    /// longer holds what it needs.
    pub async fn snapshot_at(&self, version: i64) -> Result<Snapshot, DeltaError> {
        let mut snap = match self.newest_checkpoint_listed(Some(version)).await? {
            Some(v) => self.read_checkpoint(v).await?,
            None => Snapshot::empty(),
        };
        while snap.version < version {
            let v = snap.version + 1;
            let Some(actions) = self.read_commit(v).await? else {
                return Err(DeltaError::Log {
                    path: self.commit_path(v).to_string(),
                    reason: format!("missing: version {version} cannot be rebuilt"),
                });
            };
            snap.apply(&actions);
            snap.version = v;
        }
        Ok(snap)
    }

    /// Brings a snapshot up to the newest version: reads the commits after
    /// it, one by one, until the next one does not exist.
    pub async fn update(&self, snap: &mut Snapshot) -> Result<(), DeltaError> {
        while let Some(actions) = self.read_commit(snap.version + 1).await? {
            snap.apply(&actions);
            snap.version += 1;
        }
        Ok(())
    }

    /// The actions of one commit, or None when it does not exist.
    pub async fn read_commit(&self, version: i64) -> Result<Option<Vec<Action>>, DeltaError> {
        let path = self.commit_path(version);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        parse_commit(&bytes).map(Some).map_err(|e| DeltaError::Log {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// Writes commit `version` if no writer has: false when one has (the
    /// caller reads that commit, checks for a conflict and retries).
    pub async fn try_commit(&self, version: i64, actions: &[Action]) -> Result<bool, DeltaError> {
        let path = self.commit_path(version);
        let body = write_commit(actions).map_err(|e| DeltaError::Log {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let opts = object_store::PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&path, PutPayload::from(Bytes::from(body)), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every commit file still in the log, oldest first, with its actions.
    pub async fn commits(&self) -> Result<Vec<(i64, Vec<Action>)>, DeltaError> {
        let prefix = self.path("_delta_log");
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut versions: Vec<i64> = metas
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        versions.sort_unstable();
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            if let Some(actions) = self.read_commit(v).await? {
                out.push((v, actions));
            }
        }
        Ok(out)
    }

    /// The version `_last_checkpoint` names, if it exists.
    async fn last_checkpoint(&self) -> Result<Option<i64>, DeltaError> {
        let path = self.path("_delta_log/_last_checkpoint");
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| DeltaError::Log {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Ok(v.get("version").and_then(serde_json::Value::as_i64))
    }

    /// The newest single-file checkpoint in the log's listing, at or before
    /// `at`.
    async fn newest_checkpoint_listed(&self, at: Option<i64>) -> Result<Option<i64>, DeltaError> {
        let prefix = self.path("_delta_log");
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".checkpoint.parquet")?
                    .parse::<i64>()
                    .ok()
            })
            .filter(|v| at.is_none_or(|at| *v <= at))
            .max())
    }

    async fn read_checkpoint(&self, version: i64) -> Result<Snapshot, DeltaError> {
        let path = self.path(&format!("_delta_log/{version:020}.checkpoint.parquet"));
        let bytes = self.store.get(&path).await?.bytes().await?;
        let actions = checkpoint::read(bytes)?;
        let mut snap = Snapshot::empty();
        snap.apply(&actions);
        snap.version = version;
        Ok(snap)
    }

    /// Writes a classic single-file checkpoint of `snap`, then points
    /// `_last_checkpoint` at it.
    pub async fn write_checkpoint(&self, snap: &Snapshot) -> Result<(), DeltaError> {
        let actions = checkpoint_actions(snap);
        let (body, rows) = checkpoint::write(&actions)?;
        let path = self.path(&format!(
            "_delta_log/{:020}.checkpoint.parquet",
            snap.version
        ));
        let size_in_bytes = body.len();
        self.store
            .put(&path, PutPayload::from(Bytes::from(body)))
            .await?;
        let last = serde_json::json!({
            "version": snap.version,
            "size": rows,
            "sizeInBytes": size_in_bytes,
            "numOfAddFiles": snap.files.len(),
        });
        self.store
            .put(
                &self.path("_delta_log/_last_checkpoint"),
                PutPayload::from(Bytes::from(last.to_string())),
            )
            .await?;
        Ok(())
    }
}

/// The actions that rebuild a snapshot: what a checkpoint holds.
fn checkpoint_actions(snap: &Snapshot) -> Vec<Action> {
    let mut out = Vec::with_capacity(snap.files.len() + snap.txns.len() + 2);
    out.extend(snap.protocol.clone().map(Action::from));
    out.extend(snap.metadata.clone().map(Action::from));
    let mut txns: Vec<_> = snap.txns.values().cloned().collect();
    txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
    out.extend(txns.into_iter().map(Action::from));
    out.extend(snap.domains.values().cloned().map(Action::from));
    out.extend(snap.files.values().cloned().map(Action::from));
    out.extend(snap.tombstones.values().cloned().map(Action::from));
    out
}
