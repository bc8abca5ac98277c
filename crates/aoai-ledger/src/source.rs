//! The file source: JSON Lines of Event Hubs event bodies, from files or
//! stdin. A file's partition is its identity (a hash of its first 64 KiB),
//! its sequence numbers are line numbers, so re-reading a file (or the same
//! bytes on stdin) lands on the same positions.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ledger_core::{Position, RawEvent};
use sha2::{Digest, Sha256};

/// Bytes hashed for a file's identity: enough to tell captures apart, cheap
/// on a 2 GB file, and stable when a capture file is appended to.
const IDENTITY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

/// A line-oriented event source over any reader.
pub struct LineSource {
    name: String,
    partition: String,
    reader: Box<dyn BufRead + Send>,
    line: i64,
}

impl LineSource {
    pub fn open(path: &str) -> Result<LineSource, SourceError> {
        let io = |source| SourceError::Io {
            name: path.to_string(),
            source,
        };
        if path == "-" {
            return Self::from_reader("stdin", std::io::stdin());
        }
        let file = std::fs::File::open(Path::new(path)).map_err(io)?;
        Self::from_reader(path, file)
    }

    /// Reads the identity prefix first, then chains it back in front.
    pub fn from_reader(
        name: &str,
        mut r: impl Read + Send + 'static,
    ) -> Result<LineSource, SourceError> {
        let mut head = Vec::with_capacity(IDENTITY_BYTES);
        (&mut r)
            .take(IDENTITY_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|source| SourceError::Io {
                name: name.to_string(),
                source,
            })?;
        let digest = Sha256::digest(&head);
        let partition = format!("file-{}", &hex::encode(digest)[..16]);
        let reader = BufReader::with_capacity(1 << 20, std::io::Cursor::new(head).chain(r));
        Ok(LineSource {
            name: name.to_string(),
            partition,
            reader: Box::new(reader),
            line: 0,
        })
    }

    pub fn partition(&self) -> &str {
        &self.partition
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next non-empty line at or after line `from` (1-based), as an event.
    pub fn next_event(&mut self, from: i64) -> Result<Option<RawEvent>, SourceError> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| SourceError::Io {
                    name: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.line < from {
                continue;
            }
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(RawEvent {
                position: Position {
                    partition: self.partition.clone(),
                    sequence: self.line,
                },
                offset: None,
                enqueued_time: None,
                body: std::mem::take(&mut buf),
            }));
        }
    }
}
