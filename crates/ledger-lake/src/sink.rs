//! The lake as a pipeline [`Sink`]: its checkpoints and writes, with lake
//! errors told apart as fenced or failed (scrubbed of secrets).

use ledger_core::{Checkpoint, Commit};
use ledger_pipeline::{Sink, SinkError, Written};

use crate::{Lake, LakeError};

#[async_trait::async_trait]
impl Sink for Lake {
    fn name(&self) -> &str {
        &self.location.display
    }

    async fn progress(
        &mut self,
        source: &str,
        partition: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        Lake::progress(self, source, partition)
            .await
            .map_err(|e| self.sink_error(e))
    }

    async fn write(&mut self, commit: &Commit) -> Result<Written, SinkError> {
        match Lake::write(self, commit).await {
            Ok(w) => Ok(w.map_or_else(Written::default, |w| Written {
                calls: w.calls,
                partial_calls: w.partial_calls,
                merged_calls: w.merged_calls,
                dead_letters: w.dead_letters,
            })),
            Err(e) => Err(self.sink_error(e)),
        }
    }
}

impl Lake {
    fn sink_error(&self, e: LakeError) -> SinkError {
        let sink = self.location.display.clone();
        match e {
            LakeError::Fenced {
                source_id,
                partition,
                ours,
                theirs,
            } => SinkError::Fenced {
                sink,
                source_id,
                partition,
                ours,
                theirs,
            },
            // A storage error can quote a URL with a SAS signature in it.
            e => SinkError::Failed {
                sink,
                reason: ledger_core::redact::scrub_text(&e.to_string()),
            },
        }
    }
}
