//! The exactly-once bookkeeping of `architecture.md`, as a pure state
//! machine: events go in with their positions; commits come out, each
//! covering a contiguous range `[first, last]` of one partition with the
//! records *owned* by that range (a record is owned by the sequence number
//! of the event that completed it) and the resume point (the lowest
//! sequence still needed by a call pending at `last`).
//!
//! Timeouts are evaluated when an event arrives, and the flushed calls are
//! owned by that event: so an owner is never a sequence number that was
//! already committed, and a replay flushes them again under an owner the
//! sinks have not seen. The API keeps that true: a commit is cut only
//! *before* an event ([`Ledger::commit_and_process`]) or at the very end
//! ([`Ledger::finish`], which consumes the ledger), never after an event
//! whose partition may still have calls to flush.
//!
//! A live source adds time: [`Ledger::tick`] flushes calls whose parts
//! stopped coming by wall clock, each owned by the last event of its
//! partition, and [`Ledger::commit_idle`] commits a quiet partition's tail,
//! except while that last event must still own such a flush
//! (`docs/design/worker.md`).
//!
//! ```
//! use chrono::Utc;
//! use ledger_core::ledger::{Ledger, LedgerConfig};
//! use ledger_core::{Position, RawEvent};
//!
//! let mut ledger = Ledger::new(LedgerConfig::default()).with_source("capture.jsonl");
//! let event = |seq: i64, body: &str| RawEvent {
//!     position: Position { partition: "0".into(), sequence: seq },
//!     offset: None,
//!     enqueued_time: None,
//!     body: body.as_bytes().to_vec(),
//! };
//! ledger.process(event(1, r#"{"schema":"ledger/v1","kind":"request","requestId":"r1","body":"{}"}"#), Utc::now());
//! // Cut a commit of everything before event 2, then process event 2.
//! let first = ledger.commit_and_process(event(2, "not json"), Utc::now());
//! assert_eq!(first.map(|c| c.last()), Some(1));
//! // The end of a bounded input: pending calls are flushed as partial.
//! let rest = ledger.finish();
//! assert_eq!(rest[0].records.len(), 1);
//! assert_eq!(rest[0].dead_letters.len(), 1);
//! assert_eq!(rest[0].checkpoint.source, "capture.jsonl");
//! ```

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::assemble::{AssembleOptions, assemble};
pub use crate::checkpoint::{Accounting, Checkpoint, Commit, Owned, SeqRange, call_identity};
use crate::correlate::{Correlator, Outcome, PendingCall, Released};
use crate::dialects;
use crate::model::{CallRecord, DeadLetter, Position, RawEvent};
use crate::redact;

/// Counters for the ingest summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub calls: u64,
    pub partial_calls: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
}

#[derive(Debug, Default)]
struct OpenRange {
    first: Option<i64>,
    last: i64,
    records: Vec<Owned<CallRecord>>,
    dead_letters: Vec<Owned<DeadLetter>>,
    lost: Vec<SeqRange>,
    /// Events of the range whose fragments went into calls (released or
    /// still pending: told apart when the range is committed).
    joined: Vec<i64>,
    dead_events: u64,
    duplicate_events: u64,
    /// The first event counted in the range.
    counted_from: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// How long a call may wait for its missing parts (stream time).
    pub timeout: Duration,
    /// Fragments that must follow a call before it may time out.
    pub expiry_min_gap: u64,
    /// Salt for hashing raw subscription keys (a secret of the deployment).
    pub key_salt: String,
    pub assemble: AssembleOptions,
}

/// Default of [`LedgerConfig::timeout`], in seconds.
pub const DEFAULT_TIMEOUT_SECS: i64 = 600;

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            timeout: Duration::seconds(DEFAULT_TIMEOUT_SECS),
            expiry_min_gap: crate::correlate::DEFAULT_MIN_GAP,
            key_salt: dialects::DEFAULT_KEY_SALT.to_string(),
            assemble: AssembleOptions::default(),
        }
    }
}

#[derive(Debug)]
struct Replay {
    last: i64,
    pending: HashSet<String>,
    clock: Option<DateTime<Utc>>,
}

pub struct Ledger {
    /// The stream every commit is keyed by, with the partition.
    source: String,
    correlator: Correlator,
    opts: AssembleOptions,
    key_salt: String,
    open: BTreeMap<String, OpenRange>,
    /// The latest event time seen: the clock for timeouts, so a replay
    /// decides them as the first run did.
    stream_time: Option<DateTime<Utc>>,
    stats: Stats,
    /// Per partition being replayed: what its last commit recorded.
    replay: BTreeMap<String, Replay>,
    /// Per partition: the `last` of its newest commit, cut here or resumed
    /// from. No flush may be owned at or below it.
    committed: BTreeMap<String, i64>,
}

impl Ledger {
    pub fn new(config: LedgerConfig) -> Self {
        Ledger {
            source: String::new(),
            correlator: Correlator::new(config.timeout).with_min_gap(config.expiry_min_gap),
            opts: config.assemble,
            key_salt: config.key_salt,
            open: BTreeMap::new(),
            stream_time: None,
            stats: Stats::default(),
            replay: BTreeMap::new(),
            committed: BTreeMap::new(),
        }
    }

    /// Names the stream this ledger reads (see [`Checkpoint::source`]).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Declares that the checkpoint's partition is re-read from its resume
    /// point. A replay rebuilds calls the first run had already let go of
    /// (timed out before `last`, under a clock the replay does not see);
    /// when the replay passes `last`, every rebuilt call the first run did
    /// not hold is dropped, so it cannot be written a second time. No
    /// timeout fires during the replay; afterwards the kept calls' timeouts
    /// restart from the checkpoint's clock.
    pub fn resume_from(&mut self, checkpoint: &Checkpoint) {
        let replay = Replay {
            last: checkpoint.last,
            pending: checkpoint.pending.iter().cloned().collect(),
            clock: checkpoint.clock,
        };
        self.replay.insert(checkpoint.partition.clone(), replay);
        self.committed
            .insert(checkpoint.partition.clone(), checkpoint.last);
    }

    /// Drops everything held for `partition` — its uncommitted range, its
    /// pending calls, its replay — because it is no longer ours or must be
    /// reloaded from a sink's checkpoint. Calls that also have parts in
    /// another partition are kept.
    pub fn forget(&mut self, partition: &str) {
        self.open.remove(partition);
        self.replay.remove(partition);
        self.committed.remove(partition);
        let dropped = self
            .correlator
            .retain(|c| !c.parts.iter().all(|h| h.position.partition == partition));
        tracing::debug!(partition, dropped, "partition state dropped");
    }

    /// Records that the events `range` of `partition` expired from the
    /// source before they were read: the next commit carries the range as
    /// lost, so an audit shows it instead of a silent gap.
    pub fn expired(&mut self, partition: &str, range: SeqRange) {
        if range.is_empty() {
            return;
        }
        let open = self.open.entry(partition.to_string()).or_default();
        open.first = Some(open.first.map_or(range.first, |f| f.min(range.first)));
        open.last = open.last.max(range.last);
        open.lost.push(range);
    }

    fn end_replay(&mut self, partition: &str) {
        let Some(replay) = self.replay.remove(partition) else {
            return;
        };
        let ours = |c: &PendingCall| c.parts.iter().all(|h| h.position.partition == partition);
        let dropped = self
            .correlator
            .retain(|c| !ours(c) || replay.pending.contains(&call_identity(c.dialect, &c.key)));
        if let Some(clock) = replay.clock {
            self.stream_time = self.stream_time.max(Some(clock));
            self.correlator.refresh(ours, clock);
        }
        if dropped > 0 {
            tracing::debug!(
                partition,
                dropped,
                "replay: dropped calls the first run had already written"
            );
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            duplicates: self.correlator.duplicates(),
            ..self.stats
        }
    }

    pub fn pending_calls(&self) -> usize {
        self.correlator.pending_len()
    }

    /// Closes the open range of the event's partition into a commit, then
    /// feeds the event: the one way to cut a commit while events flow, so a
    /// commit always ends before an event the ledger still holds. None when
    /// the partition had nothing uncommitted.
    pub fn commit_and_process(
        &mut self,
        event: RawEvent,
        received: DateTime<Utc>,
    ) -> Option<Commit> {
        let commit = self.take_commit(&event.position.partition);
        self.process(event, received);
        commit
    }

    /// Feeds one event. `received` is the wall-clock time, kept on dead letters.
    pub fn process(&mut self, event: RawEvent, received: DateTime<Utc>) {
        self.stats.events += 1;
        let seq = event.position.sequence;
        if self
            .replay
            .get(&event.position.partition)
            .is_some_and(|r| seq > r.last)
        {
            self.end_replay(&event.position.partition.clone());
        }
        // An event a replay reads again was accounted for by its commit.
        let replayed = self
            .replay
            .get(&event.position.partition)
            .is_some_and(|r| seq <= r.last);
        let range = self
            .open
            .entry(event.position.partition.clone())
            .or_default();
        range.first.get_or_insert(seq);
        range.last = seq;
        if !replayed {
            range.counted_from.get_or_insert(seq);
        }

        match dialects::decode_event_with(&event.body, &self.key_salt) {
            Err(e) => {
                if !replayed {
                    range.dead_events += 1;
                }
                self.dead_letter(&event, &e, &event.body, received);
                self.advance_clock(event.enqueued_time, &event.position);
            }
            Ok(decoded) => {
                if !replayed && decoded.fragments.is_empty() {
                    // Nothing usable: its rejects are its dead letters.
                    range.dead_events += 1;
                }
                for r in &decoded.rejected {
                    self.dead_letter(&event, &r.reason, &r.raw, received);
                }
                let event_time = decoded
                    .fragments
                    .iter()
                    .filter_map(|f| f.meta.response_time.or(f.meta.request_time))
                    .max()
                    .or(event.enqueued_time);
                self.advance_clock(event_time, &event.position);
                let now = self.stream_time.unwrap_or(received);
                let (mut used, mut duplicates) = (false, false);
                for f in decoded.fragments {
                    match self
                        .correlator
                        .add_received(event.position.clone(), f, now, received)
                    {
                        Outcome::Complete(r) => {
                            used = true;
                            self.emit(&event.position, r);
                        }
                        Outcome::Pending => used = true,
                        Outcome::Duplicate => duplicates = true,
                    }
                }
                if !replayed && let Some(range) = self.open.get_mut(&event.position.partition) {
                    if used {
                        range.joined.push(seq);
                    } else if duplicates {
                        range.duplicate_events += 1;
                    }
                }
            }
        }
    }

    /// Keeps what could not be used, with its bytes (secrets scrubbed) and why.
    fn dead_letter(
        &mut self,
        event: &RawEvent,
        reason: &crate::DecodeError,
        raw: &[u8],
        received: DateTime<Utc>,
    ) {
        self.stats.dead_letters += 1;
        // An oversized event keeps a bounded prefix; its length and SHA-256
        // go in the reason (the DeadLetter has no field for them).
        let limit = crate::limits::DEAD_LETTER_RAW_PREFIX;
        let kept = &raw[..raw.len().min(limit)];
        let scrubbed = redact::scrub_raw_bytes(kept);
        let mut why = redact::scrub_text(&reason.to_string());
        if raw.len() > limit {
            use sha2::Digest;
            why.push_str(&format!(
                "; raw bytes cut to the first {limit} of {} (sha256 {})",
                raw.len(),
                hex::encode(sha2::Sha256::digest(raw))
            ));
        }
        if scrubbed.partly_masked {
            why.push_str(
                "; raw bytes partly masked: not JSON from some point on, key-like runs masked",
            );
        }
        let dl = DeadLetter {
            eh_partition: event.position.partition.clone(),
            eh_sequence: event.position.sequence,
            enqueued_time: event.enqueued_time,
            received_time: received,
            reason: why,
            raw: scrubbed.bytes,
        };
        self.push_dead(&event.position.partition, event.position.sequence, dl);
    }

    fn advance_clock(&mut self, t: Option<DateTime<Utc>>, owner: &Position) {
        let Some(t) = t else { return };
        if self.stream_time.is_some_and(|s| s >= t) {
            return;
        }
        self.stream_time = Some(t);
        // No timeouts while replaying up to the last commit: the replay's
        // clock lacks the events before the resume point, and a call the
        // first run still held at its commit must not be flushed here.
        if self.replay.contains_key(&owner.partition) {
            return;
        }
        for r in self.correlator.expire(t) {
            self.emit(owner, r);
        }
    }

    fn emit(&mut self, owner: &Position, released: Released) {
        let record = assemble(&released, &self.opts);
        self.stats.calls += 1;
        if !record.complete {
            self.stats.partial_calls += 1;
        }
        let range = self.open.entry(owner.partition.clone()).or_default();
        range.first.get_or_insert(owner.sequence);
        range.last = range.last.max(owner.sequence);
        range.records.push(Owned {
            owner: owner.sequence,
            item: record,
        });
    }

    fn push_dead(&mut self, partition: &str, seq: i64, dl: DeadLetter) {
        if let Some(range) = self.open.get_mut(partition) {
            range.dead_letters.push(Owned {
                owner: seq,
                item: dl,
            });
        }
    }

    /// The end of a bounded input: flushes every pending call as partial and
    /// closes every open range into its last commit. A flushed call is owned
    /// by the last event processed on its partition, which is never
    /// committed yet (commits are cut only before an event).
    pub fn finish(mut self) -> Vec<Commit> {
        self.drain();
        let partitions = self.open_partitions();
        partitions
            .iter()
            .filter_map(|p| self.take_commit(p))
            .collect()
    }

    /// The end of a live run (the worker stops): commits what
    /// [`Ledger::commit_idle`] would, *without* flushing the pending calls.
    /// Their identities and resume point go into the checkpoints, so the
    /// next run rebuilds them from the source and they still meet their
    /// other parts. A partition whose last event must own a pending call's
    /// flush is left uncommitted, so that after the restart that event is
    /// new again and can own it; the next run re-reads a little more.
    pub fn suspend(mut self) -> Vec<Commit> {
        let partitions = self.open_partitions();
        partitions
            .iter()
            .filter_map(|p| self.commit_idle(p))
            .collect()
    }

    fn drain(&mut self) {
        // A replay that never passed its commit cannot own what it flushes.
        let committed: BTreeMap<String, i64> = self
            .replay
            .iter()
            .map(|(p, r)| (p.clone(), r.last))
            .collect();
        for p in committed.keys() {
            self.end_replay(p);
        }
        let now = self.stream_time.unwrap_or_else(Utc::now);
        for r in self.correlator.drain(now) {
            let Some(owner) = self.flush_owner(&r.call) else {
                continue;
            };
            if committed
                .get(&owner.partition)
                .is_some_and(|done| owner.sequence <= *done)
            {
                tracing::error!(
                    partition = owner.partition,
                    "a pending call is flushed at an already committed position and will not be \
                     written: the input ended before the point its last run had committed"
                );
            }
            self.emit(&owner, r);
        }
    }

    /// The event that owns a call flushed by time with no event of its
    /// own: the last event processed on the partition of the call's last
    /// part. That event is still uncommitted: commits are cut before an
    /// event, and [`Ledger::commit_idle`] holds a partition's last event
    /// back while a pending call's last part is there.
    fn flush_owner(&self, call: &PendingCall) -> Option<Position> {
        let partition = &call.parts.last()?.position.partition;
        let open = self.open.get(partition)?;
        open.first.is_some().then(|| Position {
            partition: partition.clone(),
            sequence: open.last,
        })
    }

    /// Whether a pending call's flush would be owned on `partition`.
    fn owns_a_pending_call(&self, partition: &str) -> bool {
        self.correlator.pending().any(|c| {
            c.parts
                .last()
                .is_some_and(|h| h.position.partition == partition)
        })
    }

    /// The idle flush of a live source, at wall-clock `now`: every pending
    /// call whose last fragment was received at least the timeout ago is
    /// released as partial, owned by [`Ledger::flush_owner`], exactly as
    /// the end of a file would flush it. The event-driven rule (stream
    /// time, with the minimum gap) still decides while events flow; this
    /// one decides when they stop. Calls of a partition being replayed are
    /// left to the replay. Returns how many calls were flushed.
    ///
    /// Not deterministic on replay, and it need not be: the commit that
    /// stores a flushed call also drops it from its checkpoint's pending
    /// set, so a replay from that checkpoint never rebuilds it, and a
    /// replay from an earlier one (the commit never landed) re-decides it
    /// at a later tick, owned by the same event.
    pub fn tick(&mut self, now: DateTime<Utc>) -> usize {
        // A replay that has read up to its commit and met no later event
        // (the partition is quiet since the restart) ends here, as the
        // next event would end it.
        let caught_up: Vec<String> = self
            .replay
            .iter()
            .filter(|(p, r)| {
                self.open
                    .get(*p)
                    .is_some_and(|o| o.first.is_some() && o.last >= r.last)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in caught_up {
            self.end_replay(&p);
        }
        let cutoff = now - self.correlator.timeout();
        let replaying: HashSet<String> = self.replay.keys().cloned().collect();
        // Partitions whose last event can own a flush: read, and past what
        // a sink already has (after a restart, until the first new event
        // is read, the last event read is a committed one).
        let can_own: HashSet<String> = self
            .open
            .iter()
            .filter(|(p, r)| {
                r.first.is_some() && self.committed.get(*p).is_none_or(|done| r.last > *done)
            })
            .map(|(p, _)| p.clone())
            .collect();
        let stream_now = self.stream_time.unwrap_or(now);
        let released = self.correlator.expire_received_before(
            cutoff,
            |c| {
                !c.parts
                    .iter()
                    .any(|h| replaying.contains(&h.position.partition))
                    && c.parts
                        .last()
                        .is_some_and(|h| can_own.contains(&h.position.partition))
            },
            stream_now,
        );
        let n = released.len();
        for r in released {
            if let Some(owner) = self.flush_owner(&r.call) {
                self.emit(&owner, r);
            }
        }
        n
    }

    /// Closes the open range of `partition` into a commit although no
    /// event follows it: the time-driven commit of a live source, so that
    /// the tail of a quiet partition becomes queryable. None when the
    /// partition has nothing uncommitted, and when a pending call's flush
    /// would be owned there: its last event stays open to own that flush
    /// (see [`Ledger::tick`]), and is committed once the call completes
    /// or times out.
    pub fn commit_idle(&mut self, partition: &str) -> Option<Commit> {
        if self.owns_a_pending_call(partition) || self.replay.contains_key(partition) {
            return None;
        }
        self.take_commit(partition)
    }

    /// The lowest sequence a pending call still needs on `partition`.
    fn resume_point(&self, partition: &str, last: i64) -> i64 {
        self.correlator
            .pending()
            .filter_map(|c| c.min_sequence().get(partition).copied())
            .min()
            .unwrap_or(last + 1)
            .min(last + 1)
    }

    /// Partitions with uncommitted work.
    pub fn open_partitions(&self) -> Vec<String> {
        self.open
            .iter()
            .filter(|(_, r)| r.first.is_some())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Records waiting in the open range of a partition.
    pub fn open_records(&self, partition: &str) -> usize {
        self.open
            .get(partition)
            .map_or(0, |r| r.records.len() + r.dead_letters.len())
    }

    /// Closes the open range of `partition` into a commit.
    fn take_commit(&mut self, partition: &str) -> Option<Commit> {
        let range = self.open.get_mut(partition)?;
        let first = range.first?;
        let last = range.last;
        let records = std::mem::take(&mut range.records);
        let dead_letters = std::mem::take(&mut range.dead_letters);
        let lost = std::mem::take(&mut range.lost);
        let joined = std::mem::take(&mut range.joined);
        let (dead_events, duplicate_events) = (range.dead_events, range.duplicate_events);
        range.dead_events = 0;
        range.duplicate_events = 0;
        let from = range.counted_from.take().unwrap_or(first);
        range.first = None;
        // Of the events whose fragments went into calls, those still held
        // by a pending call are carried into the next range.
        let held: HashSet<i64> = self
            .correlator
            .pending()
            .flat_map(|c| c.parts.iter())
            .filter(|h| h.position.partition == partition)
            .map(|h| h.position.sequence)
            .collect();
        let pending_events = joined.iter().filter(|s| held.contains(s)).count() as u64;
        let accounting = Accounting {
            in_calls: joined.len() as u64 - pending_events,
            pending: pending_events,
            dead_letters: dead_events,
            duplicates: duplicate_events,
            from,
        };
        let resume = self.resume_point(partition, last);
        self.committed.insert(partition.to_string(), last);
        let mut pending: Vec<String> = self
            .correlator
            .pending()
            .filter(|c| c.parts.iter().any(|h| h.position.partition == partition))
            .map(|c| call_identity(c.dialect, &c.key))
            .collect();
        pending.sort();
        Some(Commit {
            checkpoint: Checkpoint {
                source: self.source.clone(),
                partition: partition.to_string(),
                last,
                resume,
                pending,
                clock: self.stream_time,
            },
            first,
            records,
            dead_letters,
            lost,
            accounting: Some(accounting),
        })
    }
}
