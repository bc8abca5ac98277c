//! The `ingest` command's work: each file through the pipeline into the
//! sinks, one run per file (a file is its own stream).

use ledger_core::ledger::LedgerConfig;
use ledger_pipeline::{
    ByteProgress, CommitPolicy, FileSource, Observer, Pipeline, PipelineError, Sink, SourceError,
};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub run: ledger_pipeline::Summary,
    /// Lines skipped because the sinks already had them.
    pub skipped_lines: u64,
}

/// The closing summary line.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.run;
        write!(
            f,
            "events: {}  calls written: {}  partial calls: {}  merged halves: {}  dead letters: {}  duplicates ignored: {}  lines already in lake: {}",
            r.events,
            r.calls_written,
            r.partial_calls,
            r.merged_calls,
            r.dead_letters_written,
            r.duplicates,
            self.skipped_lines
        )
    }
}

/// Ingests `files` (`-` is stdin) into `sinks`, in order.
pub async fn ingest_files(
    files: &[String],
    sinks: &mut [&mut dyn Sink],
    config: LedgerConfig,
    policy: CommitPolicy,
    observer: &mut dyn Observer,
) -> Result<Summary, IngestError> {
    let pipeline = Pipeline::new(config, policy);
    let mut total = Summary::default();
    let mut done_bytes = 0;
    for f in files {
        let mut source = FileSource::open(f)?;
        let mut offset = Offset {
            inner: &mut *observer,
            before: done_bytes,
        };
        total.run += pipeline.run(&mut source, sinks, &mut offset).await?;
        total.skipped_lines += source.skipped_lines();
        done_bytes += ledger_pipeline::Source::progress(&source).read;
    }
    Ok(total)
}

/// Shows the files' progress as one: bytes of earlier files come first.
struct Offset<'a> {
    inner: &'a mut dyn Observer,
    before: u64,
}

impl Observer for Offset<'_> {
    fn progress(&mut self, input: ByteProgress, so_far: &ledger_pipeline::Summary) {
        let input = ByteProgress {
            read: self.before + input.read,
            total: input.total.map(|t| self.before + t),
        };
        self.inner.progress(input, so_far);
    }
}
