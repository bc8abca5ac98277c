//! The file source: JSON Lines of Event Hubs event bodies, from a file or
//! stdin, for replay, backfill and the embedded default.
//!
//! A file is one stream of one partition. Its id and partition are its
//! identity (a hash of its first 64 KiB) and its sequence numbers are line
//! numbers, so re-reading a file, or the same bytes on stdin, lands on the
//! same positions and the sinks skip what they have.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use async_trait::async_trait;
use ledger_core::{Position, RawEvent};
use sha2::{Digest, Sha256};

use crate::source::{ByteProgress, Source, SourceError, SourceItem, StartAt};

/// Bytes hashed for a file's identity: enough to tell captures apart, cheap
/// on a 2 GB file, and stable when a capture file is appended to.
const IDENTITY_BYTES: usize = 64 * 1024;

/// Where the lines come from, so a file can be opened again to rewind.
enum Origin {
    Path(PathBuf),
    Reader,
}

/// A line-oriented event source over a file or any reader.
pub struct FileSource {
    name: String,
    identity: String,
    origin: Origin,
    reader: Box<dyn BufRead + Send>,
    /// Lines read so far.
    line: i64,
    /// First line to deliver, once opened.
    from: Option<i64>,
    announced: bool,
    bytes_read: u64,
    total: Option<u64>,
    skipped: u64,
    buf: Vec<u8>,
}

impl FileSource {
    /// A file, or stdin for `-`.
    pub fn open(path: &str) -> Result<FileSource, SourceError> {
        if path == "-" {
            return Self::from_reader("stdin", std::io::stdin());
        }
        let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
            name: path.to_string(),
            source,
        })?;
        let total = file.metadata().ok().map(|m| m.len());
        let mut s = Self::from_reader(path, file)?;
        s.origin = Origin::Path(PathBuf::from(path));
        s.total = total;
        Ok(s)
    }

    /// Reads the identity prefix first, then chains it back in front.
    pub fn from_reader(
        name: &str,
        mut r: impl Read + Send + 'static,
    ) -> Result<FileSource, SourceError> {
        let mut head = Vec::with_capacity(IDENTITY_BYTES);
        (&mut r)
            .take(IDENTITY_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|source| SourceError::Io {
                name: name.to_string(),
                source,
            })?;
        let identity = identity(&head);
        let reader = BufReader::with_capacity(1 << 20, std::io::Cursor::new(head).chain(r));
        Ok(FileSource {
            name: name.to_string(),
            identity,
            origin: Origin::Reader,
            reader: Box::new(reader),
            line: 0,
            from: None,
            announced: false,
            bytes_read: 0,
            total: None,
            skipped: 0,
            buf: Vec::new(),
        })
    }

    /// The file's identity: its stream id and its one partition.
    pub fn partition(&self) -> &str {
        &self.identity
    }

    /// Lines passed over because they lie before the point the sinks
    /// resumed from (the sinks have them already).
    pub fn skipped_lines(&self) -> u64 {
        self.skipped
    }

    fn io(&self, source: std::io::Error) -> SourceError {
        SourceError::Io {
            name: self.name.clone(),
            source,
        }
    }

    /// Starts over from the first line (only a file named by path can).
    fn rewind(&mut self, to: i64) -> Result<(), SourceError> {
        let Origin::Path(path) = &self.origin else {
            return Err(SourceError::CannotRewind {
                name: self.name.clone(),
                line: to,
            });
        };
        let again = FileSource::open(&path.display().to_string())?;
        if again.identity != self.identity {
            return Err(SourceError::Other(format!(
                "{} changed while it was being read",
                self.name
            )));
        }
        self.reader = again.reader;
        self.line = 0;
        self.bytes_read = 0;
        self.skipped = 0;
        Ok(())
    }
}

fn identity(head: &[u8]) -> String {
    let digest = Sha256::digest(head);
    format!("file-{}", &hex::encode(digest)[..16])
}

#[async_trait]
impl Source for FileSource {
    fn id(&self) -> &str {
        &self.identity
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn open(&mut self, partition: &str, at: StartAt) -> Result<(), SourceError> {
        if partition != self.identity {
            return Err(SourceError::UnknownPartition(partition.to_string()));
        }
        let from = match at {
            StartAt::Earliest => 1,
            StartAt::Sequence(s) => s.max(1),
        };
        if from <= self.line {
            self.rewind(from)?;
        }
        self.from = Some(from);
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<SourceItem>, SourceError> {
        if !self.announced {
            self.announced = true;
            return Ok(Some(SourceItem::Gained(self.identity.clone())));
        }
        let Some(from) = self.from else {
            return Err(SourceError::Other(format!(
                "{} was read before it was opened",
                self.name
            )));
        };
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| self.io(e))?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_read += n as u64;
            self.line += 1;
            if self.line < from {
                self.skipped += 1;
                continue;
            }
            while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(SourceItem::Event(RawEvent {
                position: Position {
                    partition: self.identity.clone(),
                    sequence: self.line,
                },
                offset: None,
                enqueued_time: None,
                body: std::mem::take(&mut self.buf),
            })));
        }
    }

    fn progress(&self) -> ByteProgress {
        ByteProgress {
            read: self.bytes_read,
            total: self.total,
        }
    }
}
