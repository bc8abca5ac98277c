//! The driver: a [`Source`] through the [`Ledger`] into every [`Sink`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_core::RawEvent;
use ledger_core::checkpoint::{Checkpoint, Commit};
use ledger_core::ledger::{Ledger, LedgerConfig, Stats};

use crate::config::CommitPolicy;
use crate::sink::{Sink, SinkError, Written};
use crate::source::{ByteProgress, Source, SourceError, SourceItem, StartAt};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("the source broke its contract: {0}")]
    Contract(String),
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub calls_written: u64,
    pub partial_calls: u64,
    /// Calls merged with another copy of their call in a sink.
    pub merged_calls: u64,
    pub dead_letters_written: u64,
    pub duplicates: u64,
    /// Commits that stored something in at least one sink.
    pub commits: u64,
    /// Events that expired from the source before they were read.
    pub lost_events: u64,
    /// Times a sink was fenced and its partition reloaded or stopped.
    pub fenced: u64,
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Summary) {
        self.events += o.events;
        self.calls_written += o.calls_written;
        self.partial_calls += o.partial_calls;
        self.merged_calls += o.merged_calls;
        self.dead_letters_written += o.dead_letters_written;
        self.duplicates += o.duplicates;
        self.commits += o.commits;
        self.lost_events += o.lost_events;
        self.fenced += o.fenced;
    }
}

/// Told how a run is going, for a progress display. Called every few
/// thousand events and after every commit; must be cheap.
pub trait Observer: Send {
    fn progress(&mut self, _input: ByteProgress, _so_far: &Summary) {}
    /// An event is about to be processed.
    fn event(&mut self, _event: &RawEvent) {}
    /// Every sink stored (or already had) a commit of `partition` up to
    /// `last`; `took` is the time all the sinks' writes took.
    fn committed(&mut self, _partition: &str, _last: i64, _stored: &Written, _took: Duration) {}
    /// A time-driven sweep of a live run ran; `pending` calls wait for
    /// their other parts.
    fn swept(&mut self, _pending: usize) {}
}

/// An observer that shows nothing.
pub struct Quiet;

impl Observer for Quiet {}

/// Events between two observer calls.
const OBSERVE_EVERY: u64 = 4096;

/// A fenced partition is reloaded at most this many times in a row before
/// the driver stops it: another writer is actively committing it.
const MAX_RELOADS: u32 = 3;

/// Per open partition: when to cut the next commit, and what each sink has.
#[derive(Debug)]
struct PartitionState {
    bytes: u64,
    since: Instant,
    /// Per sink (same order as the driver's sinks): its checkpoint's `last`.
    done: Vec<Option<i64>>,
    reloads: u32,
}

/// Runs sources through the ledger into sinks. One `Pipeline` serves many
/// runs (one per file, say): each run gets a fresh [`Ledger`].
///
/// For each partition the driver reads every sink's checkpoint, opens the
/// source at the lowest resume point over them, replays from the least
/// advanced one, and gives each sink only what it lacks. Commits are cut
/// by size, by record count and by time, always before an event, and at
/// the end of a bounded source by [`Ledger::finish`].
pub struct Pipeline {
    config: LedgerConfig,
    policy: CommitPolicy,
    /// A live run's sweep interval (see [`Pipeline::live`]).
    sweep: Option<Duration>,
}

/// One run's state: the ledger and where its commits go.
struct Run<'s, 'd> {
    ledger: Ledger,
    out: Outlet<'s, 'd>,
}

/// The sinks, what each has of every open partition, and the counts.
struct Outlet<'s, 'd> {
    sinks: &'s mut [&'d mut dyn Sink],
    partitions: BTreeMap<String, PartitionState>,
    /// Partitions stopped after being fenced again and again: their events
    /// are another writer's to commit, until the source gains them anew.
    stopped: BTreeSet<String>,
    summary: Summary,
}

impl Pipeline {
    pub fn new(config: LedgerConfig, policy: CommitPolicy) -> Self {
        Pipeline {
            config,
            policy,
            sweep: None,
        }
    }

    /// A pipeline for a live source, which never ends on its own. Every
    /// `sweep` (and whenever the source is [idle](SourceItem::Idle)) the
    /// driver flushes calls that timed out by wall clock
    /// ([`Ledger::tick`]) and commits each partition whose commit is due
    /// by time, even when no later event arrives there
    /// ([`Ledger::commit_idle`]). When the source ends (the worker is
    /// stopping), pending calls are not flushed: every open range is
    /// committed with its pending calls in the checkpoint
    /// ([`Ledger::suspend`]), for the next run to rebuild.
    pub fn live(config: LedgerConfig, policy: CommitPolicy, sweep: Duration) -> Self {
        Pipeline {
            config,
            policy,
            sweep: Some(sweep),
        }
    }

    /// Reads `source` to its end (a bounded source) or until it fails,
    /// committing into every sink.
    pub async fn run(
        &self,
        source: &mut dyn Source,
        sinks: &mut [&mut dyn Sink],
        observer: &mut dyn Observer,
    ) -> Result<Summary, PipelineError> {
        let mut run = Run {
            ledger: Ledger::new(self.config.clone()).with_source(source.id()),
            out: Outlet {
                sinks,
                partitions: BTreeMap::new(),
                stopped: BTreeSet::new(),
                summary: Summary::default(),
            },
        };
        tracing::info!(source = source.name(), "run start");
        let mut last_sweep = Instant::now();
        while let Some(item) = source.next().await? {
            match item {
                SourceItem::Idle => {}
                SourceItem::Gained(p) => {
                    run.out.stopped.remove(&p);
                    run.open(source, &p).await?;
                }
                SourceItem::Lost(p) => {
                    tracing::info!(partition = %p, "partition lost: dropping its uncommitted state");
                    run.ledger.forget(&p);
                    run.out.partitions.remove(&p);
                }
                SourceItem::Expired { partition, range } => {
                    if run.out.stopped.contains(&partition) {
                        continue;
                    }
                    if !run.out.partitions.contains_key(&partition) {
                        return Err(PipelineError::Contract(format!(
                            "an expired range of partition {partition}, which was not opened"
                        )));
                    }
                    tracing::warn!(partition = %partition, first = range.first, last = range.last,
                        "events expired from the source before they were read");
                    run.out.summary.lost_events += range.len();
                    run.ledger.expired(&partition, range);
                }
                SourceItem::Event(event) => {
                    let partition = &event.position.partition;
                    if run.out.stopped.contains(partition) {
                        continue;
                    }
                    let Some(state) = run.out.partitions.get_mut(partition) else {
                        return Err(PipelineError::Contract(format!(
                            "an event of partition {partition}, which was not opened"
                        )));
                    };
                    observer.event(&event);
                    let due = self.policy.due(
                        state.bytes,
                        run.ledger.open_records(partition),
                        state.since.elapsed(),
                    );
                    state.bytes += event.body.len() as u64;
                    if due {
                        state.bytes = event.body.len() as u64;
                        state.since = Instant::now();
                        if let Some(commit) = run.ledger.commit_and_process(event, Utc::now()) {
                            run.write(source, commit, observer).await?;
                        }
                    } else {
                        run.ledger.process(event, Utc::now());
                    }
                    if run.ledger.stats().events.is_multiple_of(OBSERVE_EVERY) {
                        observer.progress(source.progress(), &run.current());
                    }
                }
            }
            if let Some(every) = self.sweep
                && last_sweep.elapsed() >= every
            {
                last_sweep = Instant::now();
                run.sweep(source, &self.policy, observer).await?;
            }
        }
        let Run { ledger, mut out } = run;
        let stats = ledger.stats();
        let last = if self.sweep.is_some() {
            ledger.suspend()
        } else {
            ledger.finish()
        };
        for commit in last {
            // No reload at the end: the ledger is spent, and the other
            // writer has the partition.
            match out.write_all(&commit, observer).await {
                Ok(()) => {}
                Err(e @ SinkError::Fenced { .. }) => {
                    tracing::warn!(error = %e, "last commit fenced: the partition is another writer's");
                    out.summary.fenced += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let summary = Summary {
            events: stats.events,
            duplicates: stats.duplicates,
            ..out.summary
        };
        observer.progress(source.progress(), &summary);
        tracing::info!(
            source = source.name(),
            events = summary.events,
            calls = summary.calls_written,
            partial = summary.partial_calls,
            merged = summary.merged_calls,
            dead_letters = summary.dead_letters_written,
            "run done"
        );
        Ok(summary)
    }
}

impl Run<'_, '_> {
    fn current(&self) -> Summary {
        let stats: Stats = self.ledger.stats();
        Summary {
            events: stats.events,
            duplicates: stats.duplicates,
            ..self.out.summary
        }
    }

    /// Reads every sink's checkpoint of `partition`, opens the source at
    /// the lowest resume point and replays from the least advanced sink.
    async fn open(
        &mut self,
        source: &mut dyn Source,
        partition: &str,
    ) -> Result<(), PipelineError> {
        let mut checkpoints: Vec<Option<Checkpoint>> = Vec::with_capacity(self.out.sinks.len());
        for sink in self.out.sinks.iter_mut() {
            checkpoints.push(sink.progress(source.id(), partition).await?);
        }
        // A sink with nothing needs the partition from its start; otherwise
        // the least advanced checkpoint decides the replay, and the lowest
        // resume point where reading starts.
        let least = if checkpoints.iter().any(Option::is_none) {
            None
        } else {
            checkpoints.iter().flatten().min_by_key(|c| c.last)
        };
        let at = match least {
            None => StartAt::Earliest,
            Some(_) => StartAt::Sequence(
                checkpoints
                    .iter()
                    .flatten()
                    .map(|c| c.resume)
                    .min()
                    .unwrap_or(1),
            ),
        };
        self.ledger.forget(partition);
        if let Some(c) = least {
            self.ledger.resume_from(c);
        }
        let reloads = self.out.partitions.get(partition).map_or(0, |s| s.reloads);
        self.out.partitions.insert(
            partition.to_string(),
            PartitionState {
                bytes: 0,
                since: Instant::now(),
                done: checkpoints
                    .iter()
                    .map(|c| c.as_ref().map(|c| c.last))
                    .collect(),
                reloads,
            },
        );
        tracing::info!(source = source.name(), partition, ?at, "partition open");
        source.open(partition, at).await?;
        Ok(())
    }

    /// A live run's time-driven work: flushes what timed out by wall
    /// clock, then commits every partition whose commit is due by time.
    async fn sweep(
        &mut self,
        source: &mut dyn Source,
        policy: &CommitPolicy,
        observer: &mut dyn Observer,
    ) -> Result<(), PipelineError> {
        let flushed = self.ledger.tick(Utc::now());
        if flushed > 0 {
            tracing::info!(
                flushed,
                "calls flushed as partial: their other parts did not come in time"
            );
        }
        let partitions: Vec<String> = self.out.partitions.keys().cloned().collect();
        for p in partitions {
            let Some(state) = self.out.partitions.get_mut(&p) else {
                continue;
            };
            if !policy.due(
                state.bytes,
                self.ledger.open_records(&p),
                state.since.elapsed(),
            ) {
                continue;
            }
            if let Some(commit) = self.ledger.commit_idle(&p) {
                state.since = Instant::now();
                state.bytes = 0;
                self.write(source, commit, observer).await?;
            }
        }
        observer.swept(self.ledger.pending_calls());
        Ok(())
    }

    /// Writes a commit cut while events flow; a fenced sink makes the
    /// partition reload from the sinks' checkpoints, or stop after
    /// [`MAX_RELOADS`] fences in a row.
    async fn write(
        &mut self,
        source: &mut dyn Source,
        commit: Commit,
        observer: &mut dyn Observer,
    ) -> Result<(), PipelineError> {
        let partition = commit.partition().to_string();
        match self.out.write_all(&commit, observer).await {
            Ok(()) => {
                if let Some(s) = self.out.partitions.get_mut(&partition) {
                    s.reloads = 0;
                }
                Ok(())
            }
            Err(e @ SinkError::Fenced { .. }) => {
                self.out.summary.fenced += 1;
                let reloads = self.out.partitions.get(&partition).map_or(0, |s| s.reloads) + 1;
                self.ledger.forget(&partition);
                if reloads > MAX_RELOADS {
                    tracing::warn!(error = %e,
                        "partition stopped: another writer keeps committing it, and its events are left to it");
                    self.out.partitions.remove(&partition);
                    self.out.stopped.insert(partition);
                    return Ok(());
                }
                tracing::warn!(error = %e, "partition fenced: reloading it from the sinks' checkpoints");
                if let Some(s) = self.out.partitions.get_mut(&partition) {
                    s.reloads = reloads;
                }
                self.open(source, &partition).await
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Outlet<'_, '_> {
    /// Gives each sink the part of `commit` it lacks.
    async fn write_all(
        &mut self,
        commit: &Commit,
        observer: &mut dyn Observer,
    ) -> Result<(), SinkError> {
        let started = Instant::now();
        // Only an open partition has uncommitted state: a stopped or lost
        // one was forgotten by the ledger, so no commit of it comes here.
        let Some(state) = self.partitions.get_mut(commit.partition()) else {
            return Ok(());
        };
        let mut stored = Written::default();
        let mut any = false;
        for (sink, done) in self.sinks.iter_mut().zip(state.done.iter_mut()) {
            let Some(part) = commit.lacking(*done) else {
                continue;
            };
            let w = sink.write(&part).await?;
            *done = Some(commit.last());
            any = true;
            // Counted once per commit, as the most any sink stored: every
            // sink ends with the same records.
            stored.calls = stored.calls.max(w.calls);
            stored.partial_calls = stored.partial_calls.max(w.partial_calls);
            stored.merged_calls = stored.merged_calls.max(w.merged_calls);
            stored.dead_letters = stored.dead_letters.max(w.dead_letters);
        }
        if any {
            self.summary.commits += 1;
        }
        observer.committed(
            commit.partition(),
            commit.last(),
            &stored,
            started.elapsed(),
        );
        self.summary.calls_written += stored.calls;
        self.summary.partial_calls += stored.partial_calls;
        self.summary.merged_calls += stored.merged_calls;
        self.summary.dead_letters_written += stored.dead_letters;
        Ok(())
    }
}
