//! Partition storage: an append-only log per partition, in memory or in a
//! directory, with retention by count or age.
//!
//! Sequence numbers start at 0 and offsets are byte positions in the
//! partition's stream (as Event Hubs' classic offsets are), so both are
//! stable across a restart with `--data`. Expired events are gone: a reader
//! asking for them starts at the oldest retained one.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::BrokerError;

/// One stored event: the encoded AMQP message as the producer sent it, and
/// the annotations the broker gave it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence_number: i64,
    pub offset: i64,
    /// Unix milliseconds.
    pub enqueued_ms: i64,
    pub partition_key: Option<String>,
    pub message: Bytes,
}

/// What a partition holds now, as `$management` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub begin_sequence_number: i64,
    /// -1 when the partition has never held an event.
    pub last_sequence_number: i64,
    pub last_offset: i64,
    pub last_enqueued_ms: i64,
    pub is_empty: bool,
}

/// Retention: the oldest events go once either limit is passed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub max_events: Option<usize>,
    pub max_age: Option<Duration>,
}

/// One partition's log. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Partition {
    inner: Arc<Mutex<PartitionLog>>,
    /// The next sequence number to be written: readers wait on it.
    tail: watch::Sender<i64>,
}

#[derive(Debug)]
struct PartitionLog {
    events: std::collections::VecDeque<StoredEvent>,
    next_sequence: i64,
    next_offset: i64,
    last_enqueued_ms: i64,
    retention: Retention,
    file: Option<PartitionFile>,
}

#[derive(Debug)]
struct PartitionFile {
    log: BufWriter<File>,
    begin_path: PathBuf,
}

/// Bytes before each record: length, sequence, offset, time, key length.
const RECORD_HEADER: usize = 4 + 8 + 8 + 8 + 2;

impl Partition {
    /// An empty partition in memory.
    pub fn in_memory(retention: Retention) -> Self {
        Self::from_log(PartitionLog {
            events: Default::default(),
            next_sequence: 0,
            next_offset: 0,
            last_enqueued_ms: 0,
            retention,
            file: None,
        })
    }

    /// A partition kept in `dir` (`<id>.events`, `<id>.begin`), loaded from
    /// what is there. A torn record at the end (a killed broker) is cut off.
    pub fn open_dir(dir: &Path, id: &str, retention: Retention) -> Result<Self, BrokerError> {
        fs::create_dir_all(dir).map_err(|e| BrokerError::io(dir, e))?;
        let log_path = dir.join(format!("{id}.events"));
        let begin_path = dir.join(format!("{id}.begin"));
        let begin = match fs::read_to_string(&begin_path) {
            Ok(text) => text.trim().parse::<i64>().unwrap_or(0),
            Err(_) => 0,
        };
        let mut events = std::collections::VecDeque::new();
        let (mut next_sequence, mut next_offset, mut last_ms) = (0i64, 0i64, 0i64);
        let mut good_len = 0u64;
        if let Ok(file) = File::open(&log_path) {
            let mut reader = BufReader::new(file);
            while let Some(event) = read_record(&mut reader) {
                good_len += (RECORD_HEADER
                    + event.partition_key.as_ref().map_or(0, String::len)
                    + event.message.len()) as u64;
                next_sequence = event.sequence_number + 1;
                next_offset = event.offset + event.message.len() as i64;
                last_ms = event.enqueued_ms;
                if event.sequence_number >= begin {
                    events.push_back(event);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| BrokerError::io(&log_path, e))?;
        file.set_len(good_len)
            .map_err(|e| BrokerError::io(&log_path, e))?;
        let mut log = PartitionLog {
            events,
            next_sequence: next_sequence.max(begin),
            next_offset,
            last_enqueued_ms: last_ms,
            retention,
            file: Some(PartitionFile {
                log: BufWriter::new(file),
                begin_path,
            }),
        };
        log.apply_retention(now_ms());
        Ok(Self::from_log(log))
    }

    fn from_log(log: PartitionLog) -> Self {
        let (tail, _) = watch::channel(log.next_sequence);
        Self {
            inner: Arc::new(Mutex::new(log)),
            tail,
        }
    }

    fn lock(&self) -> MutexGuard<'_, PartitionLog> {
        // A panic while holding the lock leaves a log that is still
        // consistent (every mutation is a push or pop), so go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends messages (encoded AMQP messages) with one partition key,
    /// returning the first sequence number they got.
    pub fn append(
        &self,
        messages: Vec<Bytes>,
        partition_key: Option<&str>,
    ) -> Result<i64, BrokerError> {
        let now = now_ms();
        let mut log = self.lock();
        let first = log.next_sequence;
        let enqueued_ms = now.max(log.last_enqueued_ms);
        for message in messages {
            let event = StoredEvent {
                sequence_number: log.next_sequence,
                offset: log.next_offset,
                enqueued_ms,
                partition_key: partition_key.map(str::to_owned),
                message,
            };
            if let Some(file) = log.file.as_mut() {
                write_record(&mut file.log, &event).map_err(BrokerError::Storage)?;
            }
            log.next_sequence += 1;
            log.next_offset += event.message.len() as i64;
            log.last_enqueued_ms = enqueued_ms;
            log.events.push_back(event);
        }
        if let Some(file) = log.file.as_mut() {
            file.log.flush().map_err(BrokerError::Storage)?;
        }
        log.apply_retention(now);
        let next = log.next_sequence;
        drop(log);
        self.tail.send_replace(next);
        Ok(first)
    }

    /// Up to `max` events from sequence number `from` on (or from the oldest
    /// retained one, if `from` has expired).
    pub fn read_from(&self, from: i64, max: usize) -> Vec<StoredEvent> {
        let log = self.lock();
        let Some(first) = log.events.front().map(|e| e.sequence_number) else {
            return Vec::new();
        };
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(0);
        log.events.iter().skip(skip).take(max).cloned().collect()
    }

    /// A receiver that changes whenever events are appended.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.tail.subscribe()
    }

    pub fn info(&self) -> PartitionInfo {
        let log = self.lock();
        let begin = log
            .events
            .front()
            .map_or(log.next_sequence, |e| e.sequence_number);
        let last = log.events.back();
        PartitionInfo {
            begin_sequence_number: begin,
            last_sequence_number: log.next_sequence - 1,
            last_offset: last.map_or(-1, |e| e.offset),
            last_enqueued_ms: log.last_enqueued_ms,
            is_empty: log.events.is_empty(),
        }
    }

    /// The next sequence number to be written.
    pub fn next_sequence(&self) -> i64 {
        self.lock().next_sequence
    }

    /// The first sequence number at or after the given position, resolving a
    /// start filter against what is retained.
    pub fn resolve(&self, position: &crate::address::StartPosition) -> i64 {
        use crate::address::StartPosition as P;
        let log = self.lock();
        let begin = log
            .events
            .front()
            .map_or(log.next_sequence, |e| e.sequence_number);
        let found = |pred: &dyn Fn(&StoredEvent) -> bool| {
            log.events
                .iter()
                .find(|e| pred(e))
                .map_or(log.next_sequence, |e| e.sequence_number)
        };
        match *position {
            P::Earliest => begin,
            P::Latest => log.next_sequence,
            P::Sequence { value, inclusive } => {
                let from = if inclusive { value } else { value + 1 };
                from.clamp(begin, log.next_sequence)
            }
            P::Offset { value, inclusive } => {
                found(&|e| e.offset > value || (inclusive && e.offset == value))
            }
            P::EnqueuedTime { unix_ms, inclusive } => {
                found(&|e| e.enqueued_ms > unix_ms || (inclusive && e.enqueued_ms == unix_ms))
            }
        }
    }

    /// Drops the `count` oldest events, as retention would.
    pub fn expire_oldest(&self, count: usize) -> Result<(), BrokerError> {
        let mut log = self.lock();
        for _ in 0..count {
            if log.events.pop_front().is_none() {
                break;
            }
        }
        log.write_begin()
    }
}

impl PartitionLog {
    fn apply_retention(&mut self, now: i64) {
        let before = self.events.len();
        if let Some(max) = self.retention.max_events {
            while self.events.len() > max {
                self.events.pop_front();
            }
        }
        if let Some(age) = self.retention.max_age {
            let oldest_kept = now - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            while self
                .events
                .front()
                .is_some_and(|e| e.enqueued_ms < oldest_kept)
            {
                self.events.pop_front();
            }
        }
        if self.events.len() != before
            && let Err(e) = self.write_begin()
        {
            tracing::warn!(error = %e, "could not record the retained range");
        }
    }

    fn write_begin(&mut self) -> Result<(), BrokerError> {
        let begin = self
            .events
            .front()
            .map_or(self.next_sequence, |e| e.sequence_number);
        if let Some(file) = self.file.as_ref() {
            fs::write(&file.begin_path, begin.to_string())
                .map_err(|e| BrokerError::io(&file.begin_path, e))?;
        }
        Ok(())
    }
}

fn write_record(out: &mut impl Write, event: &StoredEvent) -> std::io::Result<()> {
    let key = event.partition_key.as_deref().unwrap_or("").as_bytes();
    let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let message_len = u32::try_from(event.message.len()).unwrap_or(u32::MAX);
    out.write_all(&message_len.to_le_bytes())?;
    out.write_all(&event.sequence_number.to_le_bytes())?;
    out.write_all(&event.offset.to_le_bytes())?;
    out.write_all(&event.enqueued_ms.to_le_bytes())?;
    out.write_all(&key_len.to_le_bytes())?;
    out.write_all(&key[..usize::from(key_len)])?;
    out.write_all(&event.message)
}

fn read_record(input: &mut impl Read) -> Option<StoredEvent> {
    let mut header = [0u8; RECORD_HEADER];
    input.read_exact(&mut header).ok()?;
    let u32_at =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let i64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        i64::from_le_bytes(b)
    };
    let message_len = u32_at(0) as usize;
    let key_len = usize::from(u16::from_le_bytes([header[28], header[29]]));
    let mut key = vec![0u8; key_len];
    input.read_exact(&mut key).ok()?;
    let mut message = vec![0u8; message_len];
    input.read_exact(&mut message).ok()?;
    Some(StoredEvent {
        sequence_number: i64_at(4),
        offset: i64_at(12),
        enqueued_ms: i64_at(20),
        partition_key: (key_len > 0).then(|| String::from_utf8_lossy(&key).into_owned()),
        message: Bytes::from(message),
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::StartPosition;

    #[test]
    fn a_directory_partition_comes_back_with_the_same_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partition::open_dir(dir.path(), "0", Retention::default()).unwrap();
        p.append(
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")],
            Some("k"),
        )
        .unwrap();
        p.append(vec![Bytes::from_static(b"f")], None).unwrap();
        let before = p.read_from(0, 10);
        drop(p);
        let again = Partition::open_dir(dir.path(), "0", Retention::default()).unwrap();
        let after = again.read_from(0, 10);
        assert_eq!(after.len(), 3);
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(
                (a.sequence_number, a.offset, a.enqueued_ms),
                (b.sequence_number, b.offset, b.enqueued_ms)
            );
            assert_eq!(a.message, b.message);
            assert_eq!(a.partition_key, b.partition_key);
        }
        assert_eq!(after[2].offset, 5);
        assert_eq!(again.next_sequence(), 3);
    }

    #[test]
    fn expired_events_are_gone_and_start_positions_resolve_past_them() {
        let p = Partition::in_memory(Retention {
            max_events: Some(3),
            max_age: None,
        });
        for i in 0..5u8 {
            p.append(vec![Bytes::from(vec![i; 10])], None).unwrap();
        }
        assert_eq!(p.info().begin_sequence_number, 2);
        assert_eq!(p.resolve(&StartPosition::Earliest), 2);
        assert_eq!(
            p.resolve(&StartPosition::Sequence {
                value: 0,
                inclusive: true
            }),
            2
        );
        assert_eq!(
            p.resolve(&StartPosition::Offset {
                value: 30,
                inclusive: false
            }),
            4
        );
        assert_eq!(
            p.resolve(&StartPosition::Offset {
                value: 30,
                inclusive: true
            }),
            3
        );
        assert_eq!(p.resolve(&StartPosition::Latest), 5);
        p.expire_oldest(2).unwrap();
        assert_eq!(p.read_from(0, 10).len(), 1);
    }
}
