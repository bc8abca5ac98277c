//! The lake: canonical call records and dead letters as two Delta tables,
//! `calls` and `dead_letters`, partitioned by `date`, in zstd Parquet, on a
//! local directory or Blob Storage, committed exactly once. It is a
//! [`Sink`](ledger_pipeline::Sink) of the pipeline.
//!
//! A commit covers a range `[first, last]` of one partition of one stream.
//! Each table gets it as one Delta commit: the data files (written first,
//! invisible until committed), an application transaction whose appId is
//! the stream partition and whose version is `last`, and a
//! `domainMetadata` action holding the rest of the [`Checkpoint`]. The
//! commit file is written with put-if-absent: a writer that finds the
//! partition's transaction past what it knew is fenced, and none of its
//! data becomes visible. Spark, Fabric, Databricks, DuckDB and Python
//! `deltalake` read the same tables.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use ledger_lake::Lake;
//! use ledger_pipeline::{CommitPolicy, FileSource, Pipeline, Quiet, Sink};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut lake = Lake::open(&dir.path().display().to_string()).unwrap();
//! let capture = r#"{"schema":"ledger/v1","kind":"request","requestId":"r1","body":"{}"}"#;
//! let mut source = FileSource::from_reader("capture", std::io::Cursor::new(capture)).unwrap();
//! let pipeline = Pipeline::new(Default::default(), CommitPolicy::default());
//! pipeline.run(&mut source, &mut [&mut lake as &mut dyn Sink], &mut Quiet).await.unwrap();
//! let checkpoint = lake.progress(source.partition(), source.partition()).await.unwrap();
//! assert_eq!(checkpoint.map(|c| c.last), Some(1));
//! # });
//! ```

pub mod audit;
pub mod delta;
mod location;
mod maintain;
pub mod schema;
mod sink;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use ledger_core::checkpoint::{Accounting, SeqRange};
use ledger_core::{CallRecord, Checkpoint, Commit, Dialect, merge};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use delta::{Action, Add, DeltaError, DeltaTable, DomainMetadata, Metadata, Snapshot, Txn};
pub use location::Location;
pub use maintain::{CompactSummary, ERASED_COLUMNS, EraseSummary, VacuumSummary, parse_retention};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake {lake} is not writable: {reason}")]
    Unwritable { lake: String, reason: String },
    #[error("no lake at {0} (ingest into it first, or pass --lake)")]
    NotFound(String),
    #[error("lake configuration: {0}")]
    Config(String),
    #[error("lake storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("building Arrow batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Delta(#[from] DeltaError),
    #[error(
        "{lake} holds a lake in the old layout (`_ledger/commits/`), which this version no \
         longer reads: ingest the capture again into a new lake (there is no migration)"
    )]
    OldLayout { lake: String },
    #[error("--as-of: {0}")]
    AsOf(String),
    #[error("the progress record of {domain} is unreadable: {reason}")]
    Progress { domain: String, reason: String },
    #[error(
        "partition {partition} of {source_id} was committed to {theirs} by another writer (this \
         writer knew {ours:?})"
    )]
    Fenced {
        source_id: String,
        partition: String,
        ours: Option<i64>,
        theirs: i64,
    },
}

/// The two tables of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Calls,
    DeadLetters,
}

impl Table {
    pub const ALL: [Table; 2] = [Table::Calls, Table::DeadLetters];

    pub fn dir(self) -> &'static str {
        match self {
            Table::Calls => "calls",
            Table::DeadLetters => "dead_letters",
        }
    }

    /// The table's columns as written to its data files (the partition
    /// column `date` is not among them: it lives in the log).
    pub fn file_schema(self) -> SchemaRef {
        match self {
            Table::Calls => schema::calls_schema(),
            Table::DeadLetters => schema::dead_letters_schema(),
        }
    }

    /// The timestamp columns whose per-file range the log records, for pruning.
    pub fn stats_columns(self) -> &'static [&'static str] {
        match self {
            Table::Calls => &["request_time", "response_time"],
            Table::DeadLetters => &["enqueued_time", "received_time"],
        }
    }
}

/// The partition column of both tables.
pub const PARTITION_COLUMN: &str = "date";
/// Delta's (and Hive's) directory name for a null partition value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The table's schema as the log states it: the file columns, then `date`.
pub fn table_schema(table: Table) -> SchemaRef {
    let file = table.file_schema();
    let mut fields: Vec<Field> = file.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(PARTITION_COLUMN, DataType::Date32, true));
    Arc::new(Schema::new(fields))
}

/// What one commit recorded for its range, in each table's domain metadata
/// (the newest per partition) and its `commitInfo` (every commit).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    pub first: i64,
    pub calls: u64,
    pub dead_letters: u64,
    /// Ranges that expired from the source before they were read.
    #[serde(default)]
    pub lost: Vec<SeqRange>,
    pub written_at: DateTime<Utc>,
}

/// A point in a table's history to read it at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(i64),
    Time(DateTime<Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = LakeError;

    /// A version number, or an RFC 3339 time or `YYYY-MM-DD` (midnight UTC).
    fn from_str(s: &str) -> Result<AsOf, LakeError> {
        if let Ok(v) = s.parse::<i64>() {
            return Ok(AsOf::Version(v));
        }
        ledger_core::time::parse_day_or_time(s)
            .map(AsOf::Time)
            .ok_or_else(|| LakeError::AsOf(format!("`{s}` is neither a version nor a time")))
    }
}

/// What one write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub calls: u64,
    /// Of `calls`, those flushed incomplete.
    pub partial_calls: u64,
    /// Records merged with another copy of their call (in this write, or
    /// an earlier partial row).
    pub merged_calls: u64,
    pub dead_letters: u64,
    pub files: u64,
}

/// The lake's configuration (table `[lake]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSettings {
    /// A directory, `az://container/prefix`, an `abfss://` or a Blob URL.
    /// Credentials never go here: they come from the environment. Default
    /// `./ledger-lake`.
    pub url: String,
    /// zstd level of the Parquet files, 1 to 22. Default 3.
    pub zstd_level: i32,
}

impl Default for LakeSettings {
    fn default() -> Self {
        LakeSettings {
            url: "./ledger-lake".into(),
            zstd_level: 3,
        }
    }
}

/// One table as this writer knows it.
struct TableState {
    table: DeltaTable,
    /// Loaded on first use, then kept up to date with every commit.
    snapshot: Option<Snapshot>,
    /// Per (source, partition): the `last` this writer read or wrote.
    known: HashMap<(String, String), Option<i64>>,
}

pub struct Lake {
    location: Location,
    calls: TableState,
    dead_letters: TableState,
    layout_checked: bool,
    zstd_level: i32,
    /// Per calls file holding partial rows: their call identities. Files
    /// never change, so each is read once.
    partial_index: HashMap<String, Vec<(Dialect, String)>>,
}

impl Lake {
    /// Opens a lake for writing, creating a local one if needed.
    pub fn open(lake: &str) -> Result<Lake, LakeError> {
        Ok(Self::at(Location::parse(lake)?))
    }

    /// Opens a lake for writing as configured.
    pub fn from_settings(settings: &LakeSettings) -> Result<Lake, LakeError> {
        if !(1..=22).contains(&settings.zstd_level) {
            return Err(LakeError::Config(format!(
                "zstd_level {} is not between 1 and 22",
                settings.zstd_level
            )));
        }
        let mut lake = Self::open(&settings.url)?;
        lake.zstd_level = settings.zstd_level;
        Ok(lake)
    }

    /// Opens an existing lake for reading.
    pub fn open_existing(lake: &str) -> Result<Lake, LakeError> {
        Ok(Self::at(Location::existing(lake)?))
    }

    fn at(location: Location) -> Lake {
        let state = |t: Table| TableState {
            table: DeltaTable::new(location.store.clone(), location.child(t.dir())),
            snapshot: None,
            known: HashMap::new(),
        };
        Lake {
            calls: state(Table::Calls),
            dead_letters: state(Table::DeadLetters),
            location,
            layout_checked: false,
            zstd_level: LakeSettings::default().zstd_level,
            partial_index: HashMap::new(),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.location.store
    }

    fn state(&mut self, table: Table) -> &mut TableState {
        match table {
            Table::Calls => &mut self.calls,
            Table::DeadLetters => &mut self.dead_letters,
        }
    }

    /// The Delta table behind `table`.
    pub fn delta_table(&self, table: Table) -> &DeltaTable {
        match table {
            Table::Calls => &self.calls.table,
            Table::DeadLetters => &self.dead_letters.table,
        }
    }

    /// Fails on a lake of the manifest layout that came before Delta.
    async fn check_layout(&mut self) -> Result<(), LakeError> {
        if self.layout_checked {
            return Ok(());
        }
        let old = self.location.child("_ledger/commits");
        let mut listing = self.store().list(Some(&old));
        if listing.try_next().await?.is_some() {
            return Err(LakeError::OldLayout {
                lake: self.location.display.clone(),
            });
        }
        self.layout_checked = true;
        Ok(())
    }

    /// The newest snapshot of a table, for readers.
    pub async fn snapshot(&mut self, table: Table) -> Result<Snapshot, LakeError> {
        self.check_layout().await?;
        Ok(self.delta_table(table).snapshot().await?)
    }

    /// A table as it was at `as_of` (time travel). A version names one
    /// of the calls table; the dead letters table is then taken as of
    /// that version's commit time. A time takes each table's newest
    /// version committed at or before it.
    pub async fn snapshot_as_of(
        &mut self,
        table: Table,
        as_of: AsOf,
    ) -> Result<Snapshot, LakeError> {
        self.check_layout().await?;
        let time = match as_of {
            AsOf::Version(v) if table == Table::Calls => {
                return Ok(self.delta_table(table).snapshot_at(v).await?);
            }
            AsOf::Version(v) => {
                let calls = self.history(Table::Calls).await?;
                let entry = calls.iter().find(|e| e.version == v).ok_or_else(|| {
                    LakeError::AsOf(format!("the calls table has no version {v}"))
                })?;
                entry.timestamp.unwrap_or(i64::MAX)
            }
            AsOf::Time(t) => t.timestamp_millis(),
        };
        let version = self
            .history(table)
            .await?
            .iter()
            .filter(|e| e.timestamp.is_some_and(|ts| ts <= time))
            .map(|e| e.version)
            .max();
        match version {
            Some(v) => Ok(self.delta_table(table).snapshot_at(v).await?),
            None if matches!(as_of, AsOf::Version(_)) => Ok(Snapshot {
                version: -1,
                ..Default::default()
            }),
            None => Err(LakeError::AsOf(format!(
                "the {} table has no commit at or before {}",
                table.dir(),
                DateTime::<Utc>::from_timestamp_millis(time)
                    .map_or_else(|| time.to_string(), |t| t.to_rfc3339())
            ))),
        }
    }

    /// This writer's snapshot of a table, loaded on first use.
    async fn writer_snapshot(&mut self, table: Table) -> Result<&mut Snapshot, LakeError> {
        self.check_layout().await?;
        let state = self.state(table);
        if state.snapshot.is_none() {
            let snap = state.table.snapshot().await?;
            if let Some(reason) = snap
                .protocol
                .as_ref()
                .and_then(|p| p.unsupported_by_writer())
            {
                return Err(DeltaError::Protocol {
                    path: state.table.root().to_string(),
                    reason,
                }
                .into());
            }
            state.snapshot = Some(snap);
        }
        Ok(state.snapshot.get_or_insert_with(Snapshot::default))
    }

    /// The checkpoint of `(source, partition)` in one table.
    async fn table_progress(
        &mut self,
        table: Table,
        source: &str,
        partition: &str,
    ) -> Result<Option<Progress>, LakeError> {
        let snap = self.writer_snapshot(table).await?;
        let progress = progress_in(snap, source, partition)?;
        self.state(table).known.insert(
            (source.to_string(), partition.to_string()),
            progress.as_ref().map(|p| p.checkpoint.last),
        );
        Ok(progress)
    }

    /// The checkpoint to resume `(source, partition)` from: the lower of the
    /// two tables' (a crash between the two commits leaves one behind; the
    /// other then skips what it has).
    pub async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, LakeError> {
        let mut lowest: Option<Checkpoint> = None;
        for table in Table::ALL {
            match self.table_progress(table, source, partition).await? {
                None => return Ok(None),
                Some(p) => {
                    if lowest.as_ref().is_none_or(|l| p.checkpoint.last < l.last) {
                        lowest = Some(p.checkpoint);
                    }
                }
            }
        }
        Ok(lowest)
    }

    /// Stores the part of `commit` this lake does not have yet. Returns
    /// None when it had all of it. Fails with [`LakeError::Fenced`], making
    /// nothing of it visible, when another writer has committed the
    /// partition past what this one knew.
    pub async fn write(&mut self, commit: &Commit) -> Result<Option<WriteSummary>, LakeError> {
        let mut summary = WriteSummary::default();
        let mut wrote = false;
        // Dead letters first: a crash between the two commits leaves the
        // calls table behind, and a resume from it rewrites no dead letter.
        for table in [Table::DeadLetters, Table::Calls] {
            if let Some(s) = self.write_table(table, commit).await? {
                wrote = true;
                summary.calls += s.calls;
                summary.partial_calls += s.partial_calls;
                summary.merged_calls += s.merged_calls;
                summary.dead_letters += s.dead_letters;
                summary.files += s.files;
            }
        }
        Ok(wrote.then_some(summary))
    }

    async fn write_table(
        &mut self,
        table: Table,
        commit: &Commit,
    ) -> Result<Option<WriteSummary>, LakeError> {
        let (source, partition) = (commit.source(), commit.partition());
        let key = (source.to_string(), partition.to_string());
        let ours = match self.state(table).known.get(&key) {
            Some(known) => *known,
            None => self
                .table_progress(table, source, partition)
                .await?
                .map(|p| p.checkpoint.last),
        };
        let app_id = app_id(source, partition);
        {
            let state = self.state(table);
            let snap = state.snapshot.get_or_insert_with(Snapshot::default);
            state.table.update(snap).await?;
        }
        self.check_fence(table, commit, &app_id, ours)?;
        let Some(part) = commit.lacking(ours) else {
            return Ok(None);
        };

        let sid = stream_dir(source, partition);
        let domain = progress_domain(source, partition);
        let progress = Progress {
            checkpoint: part.checkpoint.clone(),
            first: part.first,
            calls: part.records.len() as u64,
            dead_letters: part.dead_letters.len() as u64,
            lost: part.lost.clone(),
            written_at: Utc::now(),
        };
        let progress_json = serde_json::to_string(&progress).map_err(|e| LakeError::Progress {
            domain: domain.clone(),
            reason: e.to_string(),
        })?;
        let now = progress.written_at.timestamp_millis();

        // Planned again when another writer's commit changes the rows a
        // merge reads.
        loop {
            let name = format!(
                "part-{sid}-{:020}-{:020}-{}.zstd.parquet",
                part.first,
                part.last(),
                uuid::Uuid::new_v4().simple()
            );
            let mut actions_of_data: Vec<Action> = Vec::new();
            let mut summary = WriteSummary::default();
            let mut plan = None;
            match table {
                Table::Calls => {
                    let p = self
                        .plan_merge(part.records.iter().map(|r| &r.item))
                        .await?;
                    let merged = p.records.iter().map(|r| r.as_ref());
                    let rows: Vec<&CallRecord> = p.kept.iter().chain(merged).collect();
                    for (date, records) in by_date(rows, |r| r.request_time.or(r.response_time)) {
                        let batch = schema::calls_batch(&records)?;
                        let partial = records.iter().filter(|r| !r.complete).count();
                        let add = self.put_file(table, &date, &name, &batch, partial).await?;
                        actions_of_data.push(add.into());
                    }
                    actions_of_data.extend(p.removes.iter().map(|a| Action::from(a.removal(now))));
                    summary.calls = part.records.len() as u64;
                    summary.partial_calls = p.records.iter().filter(|r| !r.complete).count() as u64;
                    summary.merged_calls = p.merged;
                    plan = Some(p);
                }
                Table::DeadLetters => {
                    let items = part.dead_letters.iter().map(|d| &d.item);
                    for (date, items) in
                        by_date(items, |d| d.enqueued_time.or(Some(d.received_time)))
                    {
                        let batch = schema::dead_letters_batch(&items)?;
                        let add = self.put_file(table, &date, &name, &batch, 0).await?;
                        actions_of_data.push(add.into());
                    }
                    summary.dead_letters = part.dead_letters.len() as u64;
                }
            }
            summary.files = actions_of_data.iter().filter(|a| a.add.is_some()).count() as u64;

            let mut body = actions_of_data;
            body.push(
                Txn {
                    app_id: app_id.clone(),
                    version: part.last(),
                    last_updated: Some(now),
                }
                .into(),
            );
            body.push(
                DomainMetadata {
                    domain: domain.clone(),
                    configuration: progress_json.clone(),
                    removed: false,
                }
                .into(),
            );
            body.push(commit_info(
                now,
                &IngestCommit::of(&progress, summary.merged_calls, part.accounting),
            )?);

            loop {
                let state = self.state(table);
                let snap = state.snapshot.get_or_insert_with(Snapshot::default);
                let version = snap.version + 1;
                let mut actions = schema_actions(&state.table, snap, table)?;
                actions.extend(body.iter().cloned());
                if state.table.try_commit(version, &actions).await? {
                    snap.apply(&actions);
                    snap.version = version;
                    if version > 0 && version % delta::CHECKPOINT_INTERVAL == 0 {
                        // A missing checkpoint only slows the next open down.
                        if let Err(e) = state.table.write_checkpoint(snap).await {
                            tracing::warn!(table = table.dir(), version, error = %e, "checkpoint not written");
                        }
                    }
                    state.known.insert(key, Some(part.last()));
                    if let Some(p) = &plan {
                        for removed in &p.removes {
                            self.partial_index.remove(&removed.path);
                        }
                    }
                    return Ok(Some(summary));
                }
                // Another writer took this version: read it, then retry unless
                // it committed this partition past us, or changed the rows
                // our merge read.
                state.table.update(snap).await?;
                if let Err(e) = self.check_fence(table, commit, &app_id, ours) {
                    self.delete_uncommitted(table, &body).await;
                    return Err(e);
                }
                if plan.as_ref().is_some_and(|p| self.merge_is_stale(p)) {
                    self.delete_uncommitted(table, &body).await;
                    break;
                }
            }
        }
    }

    /// Merges the incoming records of one call among themselves, then with
    /// the partial rows of their calls already in the table. Only files
    /// tagged [`PARTIAL_ROWS_TAG`] in the records' dates (and the days
    /// either side) are read, and each file's partial identities are read
    /// once per writer: complete rows pass through untouched.
    async fn plan_merge<'a>(
        &mut self,
        incoming: impl ExactSizeIterator<Item = &'a CallRecord>,
    ) -> Result<MergePlan<'a>, LakeError> {
        let given = incoming.len();
        let mut records = merge::merge_all(incoming);
        let dates = search_dates(records.iter().map(|r| r.as_ref()));
        let snap = self.calls.snapshot.get_or_insert_with(Snapshot::default);
        let candidates: Vec<Add> = partial_files(snap, &dates).cloned().collect();
        let seen = candidates.iter().map(|a| a.path.clone()).collect();
        let merged = given.saturating_sub(records.len()) as u64;
        if candidates.is_empty() {
            return Ok(MergePlan {
                removes: Vec::new(),
                kept: Vec::new(),
                records,
                merged,
                seen,
                dates,
            });
        }
        let at: HashMap<(Dialect, String), usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.dialect, r.request_id.clone()), i))
            .collect();
        let mut plan = MergePlan {
            removes: Vec::new(),
            kept: Vec::new(),
            records: Vec::new(),
            merged,
            seen,
            dates,
        };
        for add in candidates {
            let mut rows = None;
            if !self.partial_index.contains_key(&add.path) {
                let read = self.read_calls_file(&add).await?;
                let ids = read
                    .iter()
                    .filter(|r| !r.complete)
                    .map(|r| (r.dialect, r.request_id.clone()))
                    .collect();
                self.partial_index.insert(add.path.clone(), ids);
                rows = Some(read);
            }
            let touched = self
                .partial_index
                .get(&add.path)
                .is_some_and(|ids| ids.iter().any(|id| at.contains_key(id)));
            if !touched {
                continue;
            }
            let rows = match rows {
                Some(rows) => rows,
                None => self.read_calls_file(&add).await?,
            };
            for row in rows {
                let id = (row.dialect, row.request_id.clone());
                match at.get(&id) {
                    Some(&i) if !row.complete => {
                        records[i] = Cow::Owned(merge::merge(&row, &records[i]));
                        plan.merged += 1;
                    }
                    _ => plan.kept.push(row),
                }
            }
            plan.removes.push(add);
        }
        plan.records = records;
        Ok(plan)
    }

    /// Whether the rows a merge plan read have changed since it was made:
    /// a file it rewrites is gone, or partial rows came or went in its dates.
    fn merge_is_stale(&self, plan: &MergePlan) -> bool {
        let Some(snap) = self.calls.snapshot.as_ref() else {
            return true;
        };
        let now: BTreeSet<&String> = partial_files(snap, &plan.dates).map(|a| &a.path).collect();
        plan.removes
            .iter()
            .any(|a| !snap.files.contains_key(&a.path))
            || now.len() != plan.seen.len()
            || now.iter().any(|p| !plan.seen.contains(*p))
    }

    /// The records of one data file of the calls table.
    async fn read_calls_file(&self, add: &Add) -> Result<Vec<CallRecord>, LakeError> {
        let mut out = Vec::new();
        for batch in self
            .read_file(Table::Calls, add, &schema::calls_schema())
            .await?
        {
            out.extend(schema::calls_from_batch(&batch)?);
        }
        Ok(out)
    }

    /// Fails when the table's transaction for the partition is past `ours`.
    fn check_fence(
        &mut self,
        table: Table,
        commit: &Commit,
        app_id: &str,
        ours: Option<i64>,
    ) -> Result<(), LakeError> {
        let state = self.state(table);
        let theirs = state
            .snapshot
            .as_ref()
            .and_then(|s| s.txns.get(app_id))
            .map(|t| t.version);
        match theirs {
            Some(theirs) if Some(theirs) > ours => {
                // Read again on the next progress() call: the driver reloads.
                state
                    .known
                    .remove(&(commit.source().to_string(), commit.partition().to_string()));
                Err(LakeError::Fenced {
                    source_id: commit.source().to_string(),
                    partition: commit.partition().to_string(),
                    ours,
                    theirs,
                })
            }
            _ => Ok(()),
        }
    }

    /// Deletes the data files of a commit that lost (best effort: an
    /// orphan file is invisible to every reader anyway).
    async fn delete_uncommitted(&self, table: Table, body: &[Action]) {
        for add in body.iter().filter_map(|a| a.add.as_ref()) {
            let path = self.delta_table(table).path(&add.path);
            if let Err(e) = self.store().delete(&path).await {
                tracing::warn!(file = %path, error = %e, "fenced commit's file not deleted");
            }
        }
    }

    /// Writes one data file and returns its `add` action.
    async fn put_file(
        &self,
        table: Table,
        date: &Option<String>,
        name: &str,
        batch: &RecordBatch,
        partial_rows: usize,
    ) -> Result<Add, LakeError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .build();
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
        writer.write(batch)?;
        writer.close()?;
        let rel = format!(
            "{PARTITION_COLUMN}={}/{name}",
            date.as_deref().unwrap_or(NULL_PARTITION)
        );
        let size = buf.len() as i64;
        self.store()
            .put(
                &self.delta_table(table).path(&rel),
                PutPayload::from(Bytes::from(buf)),
            )
            .await?;
        let tags = (partial_rows > 0).then(|| {
            BTreeMap::from([(PARTIAL_ROWS_TAG.to_string(), Some(partial_rows.to_string()))])
        });
        Ok(Add {
            path: rel,
            partition_values: BTreeMap::from([(PARTITION_COLUMN.to_string(), date.clone())]),
            size,
            modification_time: Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(delta::stats::file_stats(batch, table.stats_columns())),
            tags,
        })
    }

    /// What every commit of the calls table recorded last, per partition
    /// (for audits: ranges, resume points, counts).
    pub async fn progress_records(&mut self, table: Table) -> Result<Vec<Progress>, LakeError> {
        let snap = self.snapshot(table).await?;
        let mut out = snap
            .domains
            .values()
            .filter(|d| d.domain.starts_with(PROGRESS_DOMAIN_PREFIX))
            .map(parse_progress)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| {
            let key = |p: &Progress| {
                let c = &p.checkpoint;
                (c.source.clone(), c.partition.clone(), c.last)
            };
            key(a).cmp(&key(b))
        });
        Ok(out)
    }
}

/// What a commit's `commitInfo` says of it under `aoaiLedger`: the range
/// and how its events were accounted for. Every commit has one; the log's
/// history is the lake's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestCommit {
    /// `ingest` (later also `compact`, `erase`).
    pub operation: String,
    pub source: String,
    pub partition: String,
    pub first: i64,
    pub last: i64,
    pub calls: u64,
    pub dead_letters: u64,
    /// Records merged with another copy of their call: among this
    /// commit's own, or with an earlier partial row (whose file the commit
    /// replaced).
    #[serde(default)]
    pub merged: u64,
    #[serde(default)]
    pub lost: Vec<SeqRange>,
    /// How each event of the range was accounted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting: Option<Accounting>,
}

impl IngestCommit {
    /// What an ingest commit says of itself: its progress record's range
    /// and counts.
    fn of(progress: &Progress, merged: u64, accounting: Option<Accounting>) -> IngestCommit {
        IngestCommit {
            operation: "ingest".into(),
            source: progress.checkpoint.source.clone(),
            partition: progress.checkpoint.partition.clone(),
            first: progress.first,
            last: progress.checkpoint.last,
            calls: progress.calls,
            dead_letters: progress.dead_letters,
            merged,
            lost: progress.lost.clone(),
            accounting,
        }
    }
}

/// One commit of a table's history.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub version: i64,
    /// ms since the epoch, from `commitInfo.timestamp`.
    pub timestamp: Option<i64>,
    /// `commitInfo.operation`: WRITE, MERGE, OPTIMIZE, …
    pub operation: Option<String>,
    /// What an ingest commit says of its range; None for other commits.
    pub ledger: Option<IngestCommit>,
    /// What this ledger wrote under `aoaiLedger`, whatever the operation.
    pub details: Option<serde_json::Value>,
    pub files_added: u64,
    pub files_removed: u64,
    /// The files the commit added, with their row counts (from `stats`).
    pub added: Vec<(String, u64)>,
    /// The files it removed.
    pub removed: Vec<String>,
}

const COMMIT_INFO_KEY: &str = "aoaiLedger";

fn commit_info(now: i64, info: &IngestCommit) -> Result<Action, LakeError> {
    let ledger = serde_json::to_value(info).map_err(|e| LakeError::Progress {
        domain: COMMIT_INFO_KEY.into(),
        reason: e.to_string(),
    })?;
    Ok(Action {
        commit_info: Some(serde_json::json!({
            "timestamp": now,
            // A commit that merges late halves rewrites files: a MERGE.
            "operation": if info.merged > 0 { "MERGE" } else { "WRITE" },
            "operationParameters": {"mode": "Append", "partitionBy": format!("[\"{PARTITION_COLUMN}\"]")},
            "isBlindAppend": info.merged == 0,
            "engineInfo": concat!("aoai-ledger/", env!("CARGO_PKG_VERSION")),
            COMMIT_INFO_KEY: ledger,
        })),
        ..Default::default()
    })
}

impl Lake {
    /// Every commit of a table still in its log, oldest first.
    pub async fn history(&mut self, table: Table) -> Result<Vec<HistoryEntry>, LakeError> {
        self.check_layout().await?;
        let delta = self.delta_table(table).clone();
        let mut out = Vec::new();
        for (version, actions) in delta.commits().await? {
            let info = actions.iter().find_map(|a| a.commit_info.as_ref());
            out.push(HistoryEntry {
                version,
                timestamp: info
                    .and_then(|i| i.get("timestamp"))
                    .and_then(serde_json::Value::as_i64),
                operation: info
                    .and_then(|i| i.get("operation"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
                ledger: info
                    .and_then(|i| i.get(COMMIT_INFO_KEY))
                    .and_then(|l| serde_json::from_value(l.clone()).ok()),
                details: info.and_then(|i| i.get(COMMIT_INFO_KEY)).cloned(),
                files_added: actions.iter().filter(|a| a.add.is_some()).count() as u64,
                files_removed: actions.iter().filter(|a| a.remove.is_some()).count() as u64,
                added: actions
                    .iter()
                    .filter_map(|a| a.add.as_ref())
                    .map(|a| (a.path.clone(), file_rows(a)))
                    .collect(),
                removed: actions
                    .iter()
                    .filter_map(|a| a.remove.as_ref())
                    .map(|r| r.path.clone())
                    .collect(),
            });
        }
        Ok(out)
    }
}

/// The tag a calls file carries when it holds partial rows, and how many:
/// the merge of late halves reads only files that have it.
pub const PARTIAL_ROWS_TAG: &str = "aoai_ledger.partialRows";

const PROGRESS_DOMAIN_PREFIX: &str = "aoai-ledger.progress.";

/// The domain of a partition's progress record.
fn progress_domain(source: &str, partition: &str) -> String {
    format!("{PROGRESS_DOMAIN_PREFIX}{}", stream_dir(source, partition))
}

/// The application id of a stream partition: both parts, unambiguously.
fn app_id(source: &str, partition: &str) -> String {
    serde_json::json!([source, partition]).to_string()
}

fn parse_progress(d: &DomainMetadata) -> Result<Progress, LakeError> {
    serde_json::from_str(&d.configuration).map_err(|e| LakeError::Progress {
        domain: d.domain.clone(),
        reason: e.to_string(),
    })
}

/// The progress record of `(source, partition)` in a snapshot.
fn progress_in(
    snap: &Snapshot,
    source: &str,
    partition: &str,
) -> Result<Option<Progress>, LakeError> {
    snap.domains
        .get(&progress_domain(source, partition))
        .map(parse_progress)
        .transpose()
}

/// The protocol and metadata a commit must carry: the table's creation, or
/// the columns this writer has that the table lacks (schema evolution:
/// files written before read back with nulls in them).
fn schema_actions(
    delta: &DeltaTable,
    snap: &Snapshot,
    table: Table,
) -> Result<Vec<Action>, LakeError> {
    let ours = table_schema(table);
    let Some(meta) = &snap.metadata else {
        return Ok(delta.creation(&ours, &[PARTITION_COLUMN])?);
    };
    let theirs = delta::parse_schema_string(&meta.schema_string)?;
    let missing: Vec<Field> = ours
        .fields()
        .iter()
        .filter(|f| theirs.field_with_name(f.name()).is_err())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields: Vec<Field> = theirs.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(missing);
    Ok(vec![Action::from(Metadata {
        schema_string: delta::schema_string(&Schema::new(fields))?,
        ..meta.clone()
    })])
}

/// The `date` partition of a row: its day in UTC, or null without a time.
fn date_of(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| day_name(t.date_naive()))
}

/// A day as its partition value names it.
fn day_name(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The path segment of one partition of one stream: the partition, made
/// safe, and a short hash of the exact pair, so that partition `0` of two
/// event hubs gets two segments.
pub fn stream_dir(source: &str, partition: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{source}\n{partition}").as_bytes());
    format!("{}.{}", partition_dir(partition), &hex::encode(d)[..12])
}

/// A partition id as a path segment: safe characters kept, others replaced.
pub fn partition_dir(partition: &str) -> String {
    partition
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a commit of the calls table merges: the incoming records, each
/// merged with the earlier partial rows of its call, and the files those
/// rows were in, rewritten with the rest of their rows.
struct MergePlan<'a> {
    /// Files replaced by the commit (their kept rows are written again).
    removes: Vec<Add>,
    kept: Vec<CallRecord>,
    /// The commit's own records, copied only where merged.
    records: Vec<Cow<'a, CallRecord>>,
    /// Records merged into another: incoming ones into each other, and
    /// earlier rows into incoming ones.
    merged: u64,
    /// The partial-row files of `dates` when the plan was made.
    seen: BTreeSet<String>,
    dates: BTreeSet<Option<String>>,
}

/// Rows grouped by their `date` partition, in date order.
fn by_date<'a, T>(
    rows: impl IntoIterator<Item = &'a T>,
    time: impl Fn(&T) -> Option<DateTime<Utc>>,
) -> BTreeMap<Option<String>, Vec<&'a T>> {
    let mut out: BTreeMap<Option<String>, Vec<&'a T>> = BTreeMap::new();
    for r in rows {
        out.entry(date_of(time(r))).or_default().push(r);
    }
    out
}

/// The partitions where an earlier row of these calls can be: each
/// record's date and the days either side (a half's own time may fall
/// across midnight from its other half's).
fn search_dates<'a>(records: impl Iterator<Item = &'a CallRecord>) -> BTreeSet<Option<String>> {
    let days: BTreeSet<Option<chrono::NaiveDate>> = records
        .map(|r| r.request_time.or(r.response_time).map(|t| t.date_naive()))
        .collect();
    let mut out = BTreeSet::new();
    for day in days {
        match day {
            Some(d) => {
                for near in [d.pred_opt(), Some(d), d.succ_opt()].into_iter().flatten() {
                    out.insert(Some(day_name(near)));
                }
            }
            None => {
                out.insert(None);
            }
        }
    }
    out
}

/// A data file's row count, as its `stats` say (0 without stats).
fn file_rows(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("numRecords")?.as_u64())
        .unwrap_or(0)
}

/// The live calls files holding partial rows in `dates`: all a merge reads.
fn partial_files<'a>(
    snap: &'a Snapshot,
    dates: &'a BTreeSet<Option<String>>,
) -> impl Iterator<Item = &'a Add> {
    snap.files
        .values()
        .filter(|a| partial_rows(a) > 0 && dates.contains(&file_date(a)))
}

/// A data file's `date` partition value.
fn file_date(add: &Add) -> Option<String> {
    add.partition_values
        .get(PARTITION_COLUMN)
        .cloned()
        .flatten()
}

/// How many partial rows a calls file holds, as its tag says.
fn partial_rows(add: &Add) -> u64 {
    add.tags
        .as_ref()
        .and_then(|t| t.get(PARTIAL_ROWS_TAG).cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
