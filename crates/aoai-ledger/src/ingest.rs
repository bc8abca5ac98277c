//! Drives a source through the ledger into the lake, committing in bounded
//! batches so memory stays flat whatever the input size.

use chrono::Utc;
use ledger_core::ledger::{Ledger, LedgerConfig, Stats};
use ledger_lake::{Lake, LakeError};

use crate::source::{LineSource, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// When to cut a commit.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Event bytes read since the last commit.
    pub bytes: usize,
    /// Records and dead letters waiting.
    pub records: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            bytes: 64 << 20,
            records: 20_000,
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    /// Lines skipped because the lake already had them.
    pub skipped_lines: u64,
    pub calls_written: u64,
    pub partial_calls: u64,
    pub dead_letters_written: u64,
    pub duplicates: u64,
    pub commits: u64,
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Summary) {
        self.events += o.events;
        self.skipped_lines += o.skipped_lines;
        self.calls_written += o.calls_written;
        self.partial_calls += o.partial_calls;
        self.dead_letters_written += o.dead_letters_written;
        self.duplicates += o.duplicates;
        self.commits += o.commits;
    }
}

impl Summary {
    fn add(&mut self, stats: Stats) {
        self.events += stats.events;
        self.duplicates += stats.duplicates;
    }
}

/// Ingests one source into the lake.
pub async fn ingest_source(
    source: &mut LineSource,
    lake: &mut Lake,
    config: &LedgerConfig,
    limits: BatchLimits,
) -> Result<Summary, IngestError> {
    let partition = source.partition().to_string();
    let progress = lake.progress(&partition).await?;
    let from = progress.as_ref().map_or(1, |p| p.resume);
    let mut summary = Summary {
        skipped_lines: (from - 1).max(0) as u64,
        ..Summary::default()
    };
    tracing::info!(source = source.name(), partition = %partition, resume = from, "ingest start");

    let mut ledger = Ledger::new(config.clone());
    if let Some(p) = progress {
        ledger.resume_from(&partition, p.last, p.pending, p.clock);
    }
    let mut bytes = 0usize;
    while let Some(event) = source.next_event(from)? {
        // Commit before the next event, never after a drain: see ledger.rs.
        if bytes >= limits.bytes || ledger.open_records(&partition) >= limits.records {
            commit(&mut ledger, lake, &partition, &mut summary).await?;
            bytes = 0;
        }
        bytes += event.body.len();
        ledger.process(event, Utc::now());
    }
    ledger.drain();
    commit(&mut ledger, lake, &partition, &mut summary).await?;
    summary.add(ledger.stats());
    tracing::info!(
        source = source.name(),
        events = summary.events,
        calls = summary.calls_written,
        partial = summary.partial_calls,
        dead_letters = summary.dead_letters_written,
        "ingest done"
    );
    Ok(summary)
}

async fn commit(
    ledger: &mut Ledger,
    lake: &mut Lake,
    partition: &str,
    summary: &mut Summary,
) -> Result<(), IngestError> {
    let Some(c) = ledger.take_commit(partition) else {
        return Ok(());
    };
    if let Some(w) = lake.write(&c).await? {
        summary.calls_written += w.calls;
        summary.partial_calls += w.partial_calls;
        summary.dead_letters_written += w.dead_letters;
        summary.commits += 1;
    }
    Ok(())
}
