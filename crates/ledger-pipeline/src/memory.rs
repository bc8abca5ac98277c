//! A sink that keeps what it is given in memory: for tests, examples, and
//! as the smallest model of the [`Sink`] contract.

use std::collections::BTreeMap;

use async_trait::async_trait;
use ledger_core::{CallRecord, Checkpoint, Commit, DeadLetter};

use crate::sink::{Sink, SinkError, Written};

#[derive(Debug, Default)]
pub struct MemorySink {
    name: String,
    pub records: Vec<CallRecord>,
    pub dead_letters: Vec<DeadLetter>,
    /// The commits written, as given (after the driver's trimming).
    pub commits: Vec<Commit>,
    checkpoints: BTreeMap<(String, String), Checkpoint>,
}

impl MemorySink {
    pub fn new(name: &str) -> Self {
        MemorySink {
            name: name.to_string(),
            ..MemorySink::default()
        }
    }

    /// Starts from a checkpoint, as a sink that stored up to it would.
    pub fn with_checkpoint(mut self, c: Checkpoint) -> Self {
        self.checkpoints
            .insert((c.source.clone(), c.partition.clone()), c);
        self
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        Ok(self
            .checkpoints
            .get(&(source.to_string(), partition.to_string()))
            .cloned())
    }

    async fn write(&mut self, commit: &Commit) -> Result<Written, SinkError> {
        let key = (commit.source().to_string(), commit.partition().to_string());
        let done = self.checkpoints.get(&key).map(|c| c.last);
        let Some(commit) = commit.lacking(done) else {
            return Ok(Written::default());
        };
        let written = Written {
            calls: commit.records.len() as u64,
            partial_calls: commit.records.iter().filter(|r| !r.item.complete).count() as u64,
            // The smallest model keeps every record as given.
            merged_calls: 0,
            dead_letters: commit.dead_letters.len() as u64,
        };
        self.records
            .extend(commit.records.iter().map(|r| r.item.clone()));
        self.dead_letters
            .extend(commit.dead_letters.iter().map(|d| d.item.clone()));
        self.checkpoints.insert(key, commit.checkpoint.clone());
        self.commits.push(commit.into_owned());
        Ok(written)
    }
}
