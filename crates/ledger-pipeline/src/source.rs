//! The [`Source`] contract: where raw events come from.

use async_trait::async_trait;
use ledger_core::RawEvent;
use ledger_core::checkpoint::SeqRange;

/// Where a partition starts when the driver opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest event the source still holds (no sink has a checkpoint).
    Earliest,
    /// The event with this sequence number, inclusive (a checkpoint's
    /// resume point).
    Sequence(i64),
}

/// What a source yields.
#[derive(Debug)]
pub enum SourceItem {
    /// The source now owns this partition. The driver answers with
    /// [`Source::open`] at the sinks' lowest resume point.
    Gained(String),
    /// The source no longer owns this partition (its ownership moved to
    /// another worker): the driver drops what it held for it, uncommitted.
    Lost(String),
    /// Events of the partition that existed once but expired before they
    /// were read: the driver records them as lost before ingestion.
    Expired { partition: String, range: SeqRange },
    /// One event, with its position.
    Event(RawEvent),
    /// Nothing arrived for a while (a live source): the driver gets a
    /// chance to flush and commit by time.
    Idle,
}

/// Bytes read so far, and the total when the source knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteProgress {
    pub read: u64,
    pub total: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
    #[error("{name} cannot be re-read from line {line} (it was read past that point)")]
    CannotRewind { name: String, line: i64 },
    #[error("partition {0} is not one this source owns")]
    UnknownPartition(String),
    #[error("{0}")]
    Other(String),
}

/// A stream of raw events, by partition.
///
/// ## Contract
///
/// The driver calls [`Source::next`] in a loop until it returns `None` (a
/// bounded source is exhausted; a live one never ends on its own).
///
/// A source **guarantees**:
/// - it yields [`SourceItem::Gained`] for a partition before any of its
///   events, and yields no event of a partition the driver has not
///   [opened](Source::open) since;
/// - within a partition, events come in strictly increasing sequence order,
///   starting at the position the partition was opened at (or at the oldest
///   event still held, after an [`SourceItem::Expired`] for the range in
///   between);
/// - after [`SourceItem::Lost`], no event of that partition comes until it
///   is gained again;
/// - the same partition and sequence number always carry the same bytes: a
///   re-read is a replay, not new data.
///
/// A source **may assume**:
/// - [`Source::open`] is called only for a partition it yielded as gained,
///   and may be called again for the same partition to restart it from an
///   earlier or later point (the driver reloads a partition whose sink was
///   fenced); events of that partition not yet yielded are then discarded.
///
/// [`Source::id`] names the stream; with a partition id it keys every
/// checkpoint, so it must be stable across restarts and differ between
/// streams (two event hubs both have a partition `"0"`).
#[async_trait]
pub trait Source: Send {
    /// The stream's stable id: `namespace/hub/consumer-group` for Event
    /// Hubs, the file's identity for a file.
    fn id(&self) -> &str;

    /// A name for logs and messages (no secrets).
    fn name(&self) -> &str;

    /// Starts, or restarts, delivering `partition` from `at`.
    async fn open(&mut self, partition: &str, at: StartAt) -> Result<(), SourceError>;

    /// The next item; `None` at the end of a bounded source.
    async fn next(&mut self) -> Result<Option<SourceItem>, SourceError>;

    /// How much of the input has been read, for progress displays.
    fn progress(&self) -> ByteProgress {
        ByteProgress::default()
    }
}
