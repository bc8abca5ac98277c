//! The [`Sink`] contract: where commits go.

use async_trait::async_trait;
use ledger_core::{Checkpoint, Commit};

/// What one write stored (all zero when the sink had it already).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub calls: u64,
    /// Of `calls`, those still incomplete once stored.
    pub partial_calls: u64,
    /// Of `calls`, those merged with another copy of their call (the
    /// other half of a call flushed as partial): one row per call.
    pub merged_calls: u64,
    pub dead_letters: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Another writer committed this partition past the checkpoint this
    /// writer knew: it owns the partition now, or did for a while. Nothing
    /// was written. The driver stops the partition and reloads it from the
    /// sinks' checkpoints instead of writing again.
    #[error(
        "{sink}: partition {partition} of {source_id} was committed to {theirs} by another writer \
         (this writer knew {ours:?})"
    )]
    Fenced {
        sink: String,
        source_id: String,
        partition: String,
        ours: Option<i64>,
        theirs: i64,
    },
    /// Anything else: the write may or may not have happened, and the
    /// driver stops. A restart resumes from the sinks' checkpoints, so
    /// nothing is lost or written twice.
    #[error("{sink}: {reason}")]
    Failed { sink: String, reason: String },
}

/// A durable destination for commits: the lake, the relational database.
///
/// ## Contract
///
/// For each partition the driver first calls [`Sink::progress`], then
/// [`Sink::write`] with commits of that partition in increasing order of
/// range; it gives each sink only the part it lacks
/// ([`Commit::after`] its checkpoint), and never writes a partition
/// concurrently from two tasks of one driver.
///
/// `progress` returns the checkpoint of the newest commit stored for
/// `(source, partition)`, or `None` when the sink holds nothing of it; the
/// driver then reads the partition from its start. It must reflect every
/// write that returned `Ok`.
///
/// A sink **guarantees**:
/// - a commit's records, dead letters and checkpoint become visible
///   together or not at all (a reader never sees half a commit);
/// - writing a range it already has is a no-op: it stores no record owned
///   at or below its checkpoint's `last`, whatever it is given;
/// - when another writer has committed the partition past the checkpoint
///   this sink instance last read or wrote, `write` fails with
///   [`SinkError::Fenced`] and stores nothing.
///
/// A sink **may assume**:
/// - within one partition, commits arrive in order and do not overlap
///   beyond what it already has;
/// - a record is owned by exactly one sequence number, so skipping by owner
///   is exact.
#[async_trait]
pub trait Sink: Send {
    /// A name for logs and messages (no secrets).
    fn name(&self) -> &str;

    /// The newest checkpoint stored for `(source, partition)`.
    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, SinkError>;

    /// Stores the part of `commit` this sink does not have yet.
    async fn write(&mut self, commit: &Commit) -> Result<Written, SinkError>;
}
