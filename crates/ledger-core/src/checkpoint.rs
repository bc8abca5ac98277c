//! What a sink stores with its data, and what a commit carries: the one
//! progress type every sink shares.
//!
//! A [`Checkpoint`] names one partition of one stream — `(source, partition)`,
//! since two event hubs both have a partition `"0"` — and says how far a
//! sink has got in it: the highest sequence number committed (`last`), where
//! a consumer must re-read from to rebuild the calls still pending there
//! (`resume`), the identities of those calls and the stream clock. A
//! [`Commit`] is a checkpoint plus the records and dead letters owned by its
//! range `[first, last]`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{CallRecord, DeadLetter, Dialect};

/// How far a sink has got in one partition of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The stream: for Event Hubs its namespace, hub and consumer group;
    /// for a file, its identity.
    pub source: String,
    /// The partition within the stream.
    pub partition: String,
    /// Highest sequence number committed: records owned at or below it are
    /// stored.
    pub last: i64,
    /// The lowest sequence number a consumer must re-read from to rebuild
    /// the calls pending at `last`.
    pub resume: i64,
    /// Identities ([`call_identity`]) of the calls pending at `last`: a
    /// replay from `resume` keeps exactly these (see
    /// [`crate::ledger::Ledger::resume_from`]).
    #[serde(default)]
    pub pending: Vec<String>,
    /// The ledger's stream clock at `last`: a replay restarts the pending
    /// calls' timeouts from it.
    #[serde(default)]
    pub clock: Option<DateTime<Utc>>,
}

/// A record with the sequence number of the event that owns it (the event
/// that completed it, or the one whose arrival timed it out).
#[derive(Debug, Clone)]
pub struct Owned<T> {
    pub owner: i64,
    pub item: T,
}

/// A closed range of sequence numbers, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    pub first: i64,
    pub last: i64,
}

impl SeqRange {
    /// How many sequence numbers the range holds.
    pub fn len(&self) -> u64 {
        (self.last - self.first + 1).max(0) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

/// How each event of a commit's range was accounted for: every event read
/// falls in exactly one count, so with the range's lost events they add up
/// to the range's length (what `audit` checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accounting {
    /// Events whose fragments went into calls released in this range
    /// (completed, or flushed partial).
    pub in_calls: u64,
    /// Events whose fragments wait in calls still pending at the range's
    /// end: carried into the next range.
    pub pending: u64,
    /// Events that became dead letters whole.
    pub dead_letters: u64,
    /// Events every fragment of which was a duplicate delivery.
    pub duplicates: u64,
    /// The first sequence number counted: after a restart, events up to
    /// the last commit are read again but were counted by that commit.
    #[serde(skip)]
    pub from: i64,
}

impl Accounting {
    /// Events accounted for.
    pub fn events(&self) -> u64 {
        self.in_calls + self.pending + self.dead_letters + self.duplicates
    }
}

/// What one commit must store, for one partition: the records and dead
/// letters owned by `[first, checkpoint.last]`, and the checkpoint that goes
/// with them, atomically.
#[derive(Debug, Clone)]
pub struct Commit {
    pub checkpoint: Checkpoint,
    /// First sequence number of the range.
    pub first: i64,
    pub records: Vec<Owned<CallRecord>>,
    pub dead_letters: Vec<Owned<DeadLetter>>,
    /// Ranges of the partition that expired from the source before they
    /// were read: recorded as lost before ingestion, never pretended read.
    pub lost: Vec<SeqRange>,
    /// How the range's events were accounted for; None on a part of a
    /// commit ([`Commit::after`]), whose counts cannot be split.
    pub accounting: Option<Accounting>,
}

impl Commit {
    pub fn source(&self) -> &str {
        &self.checkpoint.source
    }

    pub fn partition(&self) -> &str {
        &self.checkpoint.partition
    }

    /// Last sequence number of the range.
    pub fn last(&self) -> i64 {
        self.checkpoint.last
    }

    /// Like [`Commit::after`], borrowing the commit when the sink lacks all
    /// of it (the common case: no copy of the records).
    pub fn lacking(&self, done: Option<i64>) -> Option<std::borrow::Cow<'_, Commit>> {
        match done {
            Some(d) if d >= self.first => self.after(done).map(std::borrow::Cow::Owned),
            _ => Some(std::borrow::Cow::Borrowed(self)),
        }
    }

    /// The part of this commit a sink whose progress is `done` (the `last`
    /// of its checkpoint) still needs, or None when it has all of it.
    pub fn after(&self, done: Option<i64>) -> Option<Commit> {
        let Some(done) = done else {
            return Some(self.clone());
        };
        if self.last() <= done {
            return None;
        }
        let newer = |owner: i64| owner > done;
        Some(Commit {
            checkpoint: self.checkpoint.clone(),
            first: self.first.max(done + 1),
            // The counts hold for the part when they start where it does:
            // the sink the ledger resumed from.
            accounting: self
                .accounting
                .filter(|a| a.from == self.first.max(done + 1)),
            records: self
                .records
                .iter()
                .filter(|r| newer(r.owner))
                .cloned()
                .collect(),
            dead_letters: self
                .dead_letters
                .iter()
                .filter(|r| newer(r.owner))
                .cloned()
                .collect(),
            lost: self
                .lost
                .iter()
                .filter(|r| r.last > done)
                .map(|r| SeqRange {
                    first: r.first.max(done + 1),
                    last: r.last,
                })
                .collect(),
        })
    }
}

/// A short stable identity of a call (dialect and correlation key, hashed):
/// stored with a checkpoint, never the key itself.
pub fn call_identity(dialect: Dialect, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{}\n{key}", dialect.as_str()).as_bytes());
    hex::encode(&d[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(first: i64, last: i64, owners: &[i64]) -> Commit {
        Commit {
            accounting: None,
            checkpoint: Checkpoint {
                source: "s".into(),
                partition: "0".into(),
                last,
                resume: last + 1,
                pending: vec![],
                clock: None,
            },
            first,
            records: vec![],
            dead_letters: owners
                .iter()
                .map(|&owner| Owned {
                    owner,
                    item: DeadLetter {
                        eh_partition: "0".into(),
                        eh_sequence: owner,
                        enqueued_time: None,
                        received_time: Utc::now(),
                        reason: "bad".into(),
                        raw: vec![],
                    },
                })
                .collect(),
            lost: vec![SeqRange { first, last: first }],
        }
    }

    #[test]
    fn after_keeps_only_what_a_sink_lacks() {
        let c = commit(1, 10, &[2, 5, 9]);
        assert_eq!(c.after(None).map(|c| c.dead_letters.len()), Some(3));
        let rest = c.after(Some(5)).expect("part of it is new");
        assert_eq!(rest.first, 6);
        assert_eq!(rest.dead_letters.len(), 1);
        assert!(rest.lost.is_empty(), "the lost range [1, 1] is stored");
        assert!(c.after(Some(10)).is_none());
        assert!(c.after(Some(11)).is_none());
    }
}
