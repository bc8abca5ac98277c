//! The Parquet lake: canonical call records and dead letters as
//! Hive-partitioned (`date=YYYY-MM-DD/`), zstd-compressed Parquet, on a
//! local directory or Blob Storage, committed exactly once. It is a
//! [`Sink`](ledger_pipeline::Sink) of the pipeline.
//!
//! A commit covers a range `[first, last]` of one partition of one stream.
//! Its data files are named from the stream partition and the range and are
//! written first; the commit point is the manifest
//! `_ledger/commits/<stream partition>/<last>.json`, written last, which lists
//! the files and holds the [`Checkpoint`]. A crash before the manifest
//! leaves orphan files that the next writer deletes and the query layer
//! never reads (it reads only files a manifest lists).
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

mod location;
pub mod schema;
mod sink;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use ledger_core::checkpoint::SeqRange;
use ledger_core::{CallRecord, Checkpoint, Commit, DeadLetter};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

pub use location::Location;

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
    #[error("commit manifest {path} is unreadable: {reason}")]
    Manifest { path: String, reason: String },
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Calls,
    DeadLetters,
}

impl Table {
    pub fn dir(self) -> &'static str {
        match self {
            Table::Calls => "calls",
            Table::DeadLetters => "dead_letters",
        }
    }
}

/// The commit point: one per committed range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    pub first: i64,
    pub calls: u64,
    pub dead_letters: u64,
    /// Ranges that expired from the source before they were read.
    #[serde(default)]
    pub lost: Vec<SeqRange>,
    /// Data files, relative to the lake root.
    pub files: Vec<String>,
    pub written_at: DateTime<Utc>,
}

/// What one write stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub calls: u64,
    /// Of `calls`, those flushed incomplete.
    pub partial_calls: u64,
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

pub struct Lake {
    location: Location,
    /// Per (source, partition): the checkpoint this writer last read or wrote.
    progress: HashMap<(String, String), Option<Checkpoint>>,
    zstd_level: i32,
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
        Lake {
            location,
            progress: HashMap::new(),
            zstd_level: LakeSettings::default().zstd_level,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.location.store
    }

    fn path(&self, rel: &str) -> Path {
        let root = self.location.root.as_ref();
        if root.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{root}/{rel}"))
        }
    }

    fn rel<'a>(&self, p: &'a Path) -> &'a str {
        let root = self.location.root.as_ref();
        let s = p.as_ref();
        if root.is_empty() {
            s
        } else {
            s.strip_prefix(root)
                .map(|s| s.trim_start_matches('/'))
                .unwrap_or(s)
        }
    }

    /// The checkpoint of the newest commit of `(source, partition)`, after
    /// deleting the orphans a crashed writer left. Cached: a writer reads it
    /// once, then keeps it up to date with its own writes.
    pub async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, LakeError> {
        let key = (source.to_string(), partition.to_string());
        if let Some(p) = self.progress.get(&key) {
            return Ok(p.clone());
        }
        let sid = stream_dir(source, partition);
        let progress = self.newest_checkpoint(&sid).await?;
        self.delete_orphans(&sid, progress.as_ref().map(|p| p.last))
            .await?;
        self.progress.insert(key, progress.clone());
        Ok(progress)
    }

    /// The checkpoint the newest manifest of a stream partition records.
    async fn newest_checkpoint(&self, sid: &str) -> Result<Option<Checkpoint>, LakeError> {
        match self.newest_manifest(sid).await? {
            None => Ok(None),
            Some((_, path)) => Ok(Some(self.read_manifest(&path).await?.checkpoint)),
        }
    }

    /// The newest manifest of a stream partition and the `last` its name
    /// holds, from a listing alone (no manifest is read).
    async fn newest_manifest(&self, sid: &str) -> Result<Option<(i64, Path)>, LakeError> {
        let prefix = self.path(&format!("_ledger/commits/{sid}"));
        let metas: Vec<_> = self.store().list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let last = manifest_last(m.location.filename()?)?;
                Some((last, m.location))
            })
            .max_by_key(|(last, _)| *last))
    }

    async fn read_manifest(&self, path: &Path) -> Result<Manifest, LakeError> {
        let bytes = self.store().get(path).await?.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| LakeError::Manifest {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    async fn delete_orphans(&self, sid: &str, done: Option<i64>) -> Result<(), LakeError> {
        for table in [Table::Calls, Table::DeadLetters] {
            let prefix = self.path(table.dir());
            let files: Vec<_> = self.store().list(Some(&prefix)).try_collect().await?;
            for f in files {
                let Some((p, _, last)) = f.location.filename().and_then(parse_data_file) else {
                    continue;
                };
                if p == sid && done.is_none_or(|d| last > d) {
                    tracing::warn!(file = %f.location, "deleting data file of an uncommitted range");
                    self.store().delete(&f.location).await?;
                }
            }
        }
        Ok(())
    }

    /// Stores the part of `commit` this lake does not have yet. Returns
    /// None when it had all of it. Fails with [`LakeError::Fenced`], storing
    /// nothing, when another writer has committed the partition past what
    /// this one knew.
    pub async fn write(&mut self, commit: &Commit) -> Result<Option<WriteSummary>, LakeError> {
        let (source, partition) = (commit.source(), commit.partition());
        let ours = self.progress(source, partition).await?.map(|p| p.last);
        let sid = stream_dir(source, partition);
        // A listing is enough: a manifest's name is its `last`.
        let theirs = self.newest_manifest(&sid).await?.map(|(last, _)| last);
        if theirs > ours
            && let Some(theirs) = theirs
        {
            // Read again on the next progress() call: the driver reloads.
            self.progress
                .remove(&(source.to_string(), partition.to_string()));
            return Err(LakeError::Fenced {
                source_id: source.to_string(),
                partition: partition.to_string(),
                ours,
                theirs,
            });
        }
        let Some(commit) = commit.lacking(ours) else {
            return Ok(None);
        };
        let name = format!(
            "part-{sid}-{:020}-{:020}.parquet",
            commit.first,
            commit.last()
        );
        let meta = vec![
            KeyValue::new("aoai_ledger.source".to_string(), source.to_string()),
            KeyValue::new("aoai_ledger.partition".to_string(), partition.to_string()),
            KeyValue::new("aoai_ledger.first".to_string(), commit.first.to_string()),
            KeyValue::new("aoai_ledger.last".to_string(), commit.last().to_string()),
            KeyValue::new(
                "aoai_ledger.resume".to_string(),
                commit.checkpoint.resume.to_string(),
            ),
        ];
        let mut files = Vec::new();

        let mut by_date: BTreeMap<String, Vec<&CallRecord>> = BTreeMap::new();
        for r in &commit.records {
            by_date
                .entry(date_of(r.item.request_time.or(r.item.response_time)))
                .or_default()
                .push(&r.item);
        }
        for (date, records) in &by_date {
            let batch = schema::calls_batch(records)?;
            let rel = format!("{}/date={date}/{name}", Table::Calls.dir());
            self.put_parquet(&rel, &batch, &meta).await?;
            files.push(rel);
        }
        let mut dl_by_date: BTreeMap<String, Vec<&DeadLetter>> = BTreeMap::new();
        for d in &commit.dead_letters {
            dl_by_date
                .entry(date_of(d.item.enqueued_time.or(Some(d.item.received_time))))
                .or_default()
                .push(&d.item);
        }
        for (date, items) in &dl_by_date {
            let batch = schema::dead_letters_batch(items)?;
            let rel = format!("{}/date={date}/{name}", Table::DeadLetters.dir());
            self.put_parquet(&rel, &batch, &meta).await?;
            files.push(rel);
        }

        let manifest = Manifest {
            checkpoint: commit.checkpoint.clone(),
            first: commit.first,
            calls: commit.records.len() as u64,
            dead_letters: commit.dead_letters.len() as u64,
            lost: commit.lost.clone(),
            files,
            written_at: Utc::now(),
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| LakeError::Manifest {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let path = self.path(&format!("_ledger/commits/{sid}/{:020}.json", commit.last()));
        self.store()
            .put(&path, PutPayload::from(Bytes::from(body)))
            .await?;
        self.progress.insert(
            (source.to_string(), partition.to_string()),
            Some(commit.checkpoint.clone()),
        );
        Ok(Some(WriteSummary {
            calls: manifest.calls,
            partial_calls: commit.records.iter().filter(|r| !r.item.complete).count() as u64,
            dead_letters: manifest.dead_letters,
            files: manifest.files.len() as u64,
        }))
    }

    async fn put_parquet(
        &self,
        rel: &str,
        batch: &RecordBatch,
        meta: &[KeyValue],
    ) -> Result<(), LakeError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_key_value_metadata(Some(meta.to_vec()))
            .build();
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
        writer.write(batch)?;
        writer.close()?;
        self.store()
            .put(&self.path(rel), PutPayload::from(Bytes::from(buf)))
            .await?;
        Ok(())
    }

    /// The committed data files of a table, as object store paths.
    pub async fn committed_files(&self, table: Table) -> Result<Vec<Path>, LakeError> {
        let manifests: Vec<_> = self
            .store()
            .list(Some(&self.path("_ledger/commits")))
            .try_collect()
            .await?;
        let committed: HashSet<(String, i64)> = manifests
            .iter()
            .filter_map(|m| {
                let rel = self.rel(&m.location);
                let mut parts = rel.rsplit('/');
                let last = manifest_last(parts.next()?)?;
                let pid = parts.next()?.to_string();
                Some((pid, last))
            })
            .collect();
        let files: Vec<_> = self
            .store()
            .list(Some(&self.path(table.dir())))
            .try_collect()
            .await?;
        let mut out: Vec<Path> = files
            .into_iter()
            .filter(|f| {
                f.location
                    .filename()
                    .and_then(parse_data_file)
                    .is_some_and(|(pid, _, last)| committed.contains(&(pid, last)))
            })
            .map(|f| f.location)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every commit manifest (for audits: ranges, resume points, counts).
    pub async fn manifests(&self) -> Result<Vec<Manifest>, LakeError> {
        let metas: Vec<_> = self
            .store()
            .list(Some(&self.path("_ledger/commits")))
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(metas.len());
        for m in metas {
            out.push(self.read_manifest(&m.location).await?);
        }
        out.sort_by(|a, b| {
            let key = |m: &Manifest| {
                let c = &m.checkpoint;
                (c.source.clone(), c.partition.clone(), c.last)
            };
            key(a).cmp(&key(b))
        });
        Ok(out)
    }
}

fn date_of(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "unknown".to_string(),
        |t| t.format("%Y-%m-%d").to_string(),
    )
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

/// `<last>.json`, a manifest's name → last.
fn manifest_last(name: &str) -> Option<i64> {
    name.strip_suffix(".json")?.parse().ok()
}

/// `part-<pid>-<first>-<last>.parquet` → (pid, first, last).
fn parse_data_file(name: &str) -> Option<(String, i64, i64)> {
    let stem = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut it = stem.rsplitn(3, '-');
    let last = it.next()?.parse().ok()?;
    let first = it.next()?.parse().ok()?;
    Some((it.next()?.to_string(), first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_names_round_trip() {
        let pid = partition_dir("file:ab12");
        assert_eq!(pid, "file_ab12");
        let name = format!("part-{pid}-{:020}-{:020}.parquet", 3, 17);
        assert_eq!(parse_data_file(&name), Some((pid, 3, 17)));
    }
}
