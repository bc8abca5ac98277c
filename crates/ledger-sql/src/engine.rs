//! What an engine does, and what it leaves to the shared sink.
//!
//! Like a Vector sink's service and its `RetryLogic`: an [`Engine`] runs one
//! commit as one transaction in its own SQL (its bulk path, its upsert, its
//! locks) and classifies its own errors ([`EngineError::transient`]); the
//! sink ([`crate::SqlSink`]) prepares the commit, decides what to merge,
//! retries and fences, the same for every engine.

use async_trait::async_trait;
use ledger_core::checkpoint::{Accounting, SeqRange};
use ledger_core::{CallRecord, Checkpoint, DeadLetter, Dialect};

use crate::ddl::EngineKind;

/// An engine error, classified by the engine.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    /// Worth retrying on a new connection: a dropped connection, a
    /// failover, a throttle, a deadlock victim.
    pub transient: bool,
    /// Scrubbed of secrets.
    pub message: String,
}

impl EngineError {
    pub fn transient(message: impl Into<String>) -> Self {
        EngineError {
            transient: true,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        EngineError {
            transient: false,
            message: message.into(),
        }
    }
}

/// One commit's part a sink lacks, ready for a transaction.
#[derive(Debug)]
pub struct Job<'a> {
    pub checkpoint: &'a Checkpoint,
    /// The `last` this writer knows for the partition: the transaction
    /// stores nothing unless the progress row still says it (the fence).
    pub ours: Option<i64>,
    pub first: i64,
    /// The commit's records, each call once (merged among themselves).
    pub records: Vec<CallRecord>,
    pub dead_letters: Vec<&'a DeadLetter>,
    pub lost: &'a [SeqRange],
    pub accounting: Option<Accounting>,
    /// Records the commit merged among themselves.
    pub merged_in_commit: u64,
    /// Names this attempt's commit row, so that a retry after a commit
    /// whose answer was lost knows the commit landed.
    pub writer: String,
}

/// What a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored; `merged` rows of `calls` were merged with a row there.
    Stored { merged: u64 },
    /// The progress row no longer says `ours`: nothing stored. `theirs`
    /// is what it says, and `ours` whether that commit was this writer's
    /// own (an earlier attempt whose answer was lost).
    Fenced { theirs: Option<i64>, ours: bool },
}

/// Merges the rows a transaction found with the records it writes: the
/// sink's rule, called by the engine inside its transaction.
pub trait Merger: Send + Sync {
    /// For each record, the row to store, given the stored row of its call
    /// if there is one; and how many were merged.
    fn rows(&self, existing: Vec<CallRecord>, records: &[CallRecord]) -> (Vec<Row>, u64);
}

/// A row to store and whether it replaces a stored one.
#[derive(Debug, Clone)]
pub struct Row {
    pub record: CallRecord,
    pub existed: bool,
}

/// The identity of a call as the primary key has it.
pub fn key(r: &CallRecord) -> (Dialect, &str) {
    (r.dialect, r.request_id.as_str())
}

/// A SQL engine behind the sink.
#[async_trait]
pub trait Engine: Send {
    fn kind(&self) -> EngineKind;

    /// For logs: the server and database, never a secret.
    fn describe(&self) -> &str;

    /// Connects when not connected (after an error the sink calls
    /// [`Engine::reset`] first).
    async fn connect(&mut self) -> Result<(), EngineError>;

    /// Drops the connection, so the next call reconnects.
    fn reset(&mut self);

    /// Runs a migration's SQL and records it, in one transaction where
    /// the engine allows DDL in one.
    async fn apply_migration(
        &mut self,
        version: u32,
        name: &str,
        checksum: &str,
        sql: &str,
    ) -> Result<(), EngineError>;

    /// The migrations applied: (version, checksum). Creates the
    /// migrations table when missing.
    async fn applied_migrations(&mut self) -> Result<Vec<(u32, String)>, EngineError>;

    /// The progress row of a partition.
    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, EngineError>;

    /// One commit, as one transaction: the fence (the progress row moved
    /// from `job.ours` to the new checkpoint), the commit row, the dead
    /// letters, and the calls — existing rows of their identities read and
    /// locked, merged by `merger`, bulk-loaded and upserted.
    async fn write(&mut self, job: &Job<'_>, merger: &dyn Merger) -> Result<Outcome, EngineError>;

    /// Replaces the quota table's rows.
    async fn load_quotas(
        &mut self,
        quotas: &[(String, rust_decimal::Decimal)],
    ) -> Result<(), EngineError>;
}
