//! Proof that nothing was lost: from the tables' Delta histories alone,
//! per source partition, the covered range, every gap (ranges that expired
//! before ingestion marked as lost), the totals, whether every event of
//! every commit is accounted for (its [`Accounting`] adds up to its range),
//! and whether the rows the tables hold now equal what the commits wrote.
//!
//! ```no_run
//! # async fn f() -> Result<(), ledger_lake::LakeError> {
//! let mut lake = ledger_lake::Lake::open_existing("./ledger-lake")?;
//! let report = lake.audit(&ledger_lake::audit::AuditScope::default()).await?;
//! assert!(report.passed(), "{:?}", report.problems());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ledger_core::checkpoint::{Accounting, SeqRange};
use serde::Serialize;

use crate::{HistoryEntry, Lake, LakeError, Table};

/// Which part of the lake an audit covers: commits of one source or
/// partition, made in a time window. The row check always covers the
/// whole tables.
#[derive(Debug, Clone, Default)]
pub struct AuditScope {
    pub source: Option<String>,
    pub partition: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One source partition's account.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionAudit {
    pub source: String,
    pub partition: String,
    /// The range the commits cover, first to last.
    pub first: i64,
    pub last: i64,
    pub commits: u64,
    /// Events read and accounted for, by how.
    pub accounted: Accounting,
    /// Events that expired from the source before the ledger read them.
    pub lost_before_ingestion: Vec<SeqRange>,
    /// Sequence numbers no commit covers.
    pub gaps: Vec<SeqRange>,
    /// Ranges committed more than once.
    pub overlaps: Vec<SeqRange>,
    /// Commits whose counts do not add up to their range: (range, events
    /// accounted for plus lost).
    pub unaccounted: Vec<(SeqRange, u64)>,
    /// Commits that recorded no accounting (written by an older version).
    pub unrecorded: u64,
    pub calls: u64,
    pub dead_letters: u64,
    pub merged: u64,
}

impl PartitionAudit {
    pub fn passed(&self) -> bool {
        self.gaps.is_empty() && self.overlaps.is_empty() && self.unaccounted.is_empty()
    }
}

/// The rows a table holds against what its commits wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RowCheck {
    pub table: &'static str,
    /// Rows written by ingests, less merges and compaction's folds.
    pub expected: u64,
    pub found: u64,
    /// Files removed by commits this ledger did not make, with their rows.
    pub removed_outside: Vec<(String, u64)>,
}

impl RowCheck {
    pub fn passed(&self) -> bool {
        self.expected == self.found && self.removed_outside.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    pub partitions: Vec<PartitionAudit>,
    pub rows: Vec<RowCheck>,
}

impl AuditReport {
    pub fn passed(&self) -> bool {
        self.partitions.iter().all(PartitionAudit::passed) && self.rows.iter().all(RowCheck::passed)
    }

    /// What failed, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let r = |r: &SeqRange| format!("{}..{}", r.first, r.last);
        for p in &self.partitions {
            let at = format!("{} partition {}", p.source, p.partition);
            out.extend(
                p.gaps
                    .iter()
                    .map(|g| format!("{at}: events {} were never committed", r(g))),
            );
            out.extend(
                p.overlaps
                    .iter()
                    .map(|o| format!("{at}: events {} were committed twice", r(o))),
            );
            out.extend(p.unaccounted.iter().map(|(range, n)| {
                format!(
                    "{at}: commit of {} accounts for {n} of its {} events",
                    r(range),
                    range.len()
                )
            }));
        }
        for c in &self.rows {
            if c.expected != c.found {
                out.push(format!(
                    "{}: holds {} rows, its commits wrote {}",
                    c.table, c.found, c.expected
                ));
            }
            for (file, rows) in &c.removed_outside {
                out.push(format!(
                    "{}: {file} ({rows} rows) was removed by a commit this ledger did not make",
                    c.table
                ));
            }
        }
        out
    }
}

impl Lake {
    /// Audits the lake (see the module doc).
    pub async fn audit(&mut self, scope: &AuditScope) -> Result<AuditReport, LakeError> {
        let calls = self.history(Table::Calls).await?;
        let dead = self.history(Table::DeadLetters).await?;
        let mut report = AuditReport {
            partitions: partitions(&calls, scope),
            rows: Vec::new(),
        };
        for (table, history) in [(Table::Calls, &calls), (Table::DeadLetters, &dead)] {
            let found = self
                .snapshot(table)
                .await?
                .files
                .values()
                .map(crate::file_rows)
                .sum();
            report.rows.push(row_check(table, history, found));
        }
        Ok(report)
    }
}

fn in_scope(e: &HistoryEntry, scope: &AuditScope) -> bool {
    let Some(l) = &e.ledger else { return false };
    let at = e.timestamp.and_then(DateTime::<Utc>::from_timestamp_millis);
    scope.source.as_ref().is_none_or(|s| *s == l.source)
        && scope.partition.as_ref().is_none_or(|p| *p == l.partition)
        && scope.since.is_none_or(|s| at.is_some_and(|t| t >= s))
        && scope.until.is_none_or(|u| at.is_some_and(|t| t < u))
}

/// Each partition's commits of the calls table (the table whose commits
/// carry the accounting), in range order.
fn partitions(history: &[HistoryEntry], scope: &AuditScope) -> Vec<PartitionAudit> {
    let mut by: BTreeMap<(String, String), Vec<&HistoryEntry>> = BTreeMap::new();
    for e in history.iter().filter(|e| in_scope(e, scope)) {
        if let Some(l) = &e.ledger {
            by.entry((l.source.clone(), l.partition.clone()))
                .or_default()
                .push(e);
        }
    }
    let mut out = Vec::new();
    for ((source, partition), mut commits) in by {
        commits.sort_by_key(|e| e.ledger.as_ref().map(|l| (l.first, l.last)));
        let mut p = PartitionAudit {
            source,
            partition,
            first: i64::MAX,
            last: i64::MIN,
            ..Default::default()
        };
        let mut covered: Option<i64> = None;
        for e in commits {
            let Some(l) = &e.ledger else { continue };
            let range = SeqRange {
                first: l.first,
                last: l.last,
            };
            p.commits += 1;
            p.first = p.first.min(l.first);
            p.last = p.last.max(l.last);
            p.calls += l.calls;
            p.dead_letters += l.dead_letters;
            p.merged += l.merged;
            p.lost_before_ingestion.extend(l.lost.iter().copied());
            match covered {
                Some(c) if l.first > c + 1 => p.gaps.push(SeqRange {
                    first: c + 1,
                    last: l.first - 1,
                }),
                Some(c) if l.first <= c => p.overlaps.push(SeqRange {
                    first: l.first,
                    last: c.min(l.last),
                }),
                _ => {}
            }
            covered = Some(covered.map_or(l.last, |c| c.max(l.last)));
            match l.accounting {
                Some(a) => {
                    p.accounted.in_calls += a.in_calls;
                    p.accounted.pending += a.pending;
                    p.accounted.dead_letters += a.dead_letters;
                    p.accounted.duplicates += a.duplicates;
                    let lost: u64 = l
                        .lost
                        .iter()
                        .map(|r| {
                            SeqRange {
                                first: r.first.max(l.first),
                                last: r.last.min(l.last),
                            }
                            .len()
                        })
                        .sum();
                    if a.events() + lost != range.len() {
                        p.unaccounted.push((range, a.events() + lost));
                    }
                }
                None => p.unrecorded += 1,
            }
        }
        out.push(p);
    }
    out
}

/// The rows a table should hold by its history, against what it holds.
fn row_check(table: Table, history: &[HistoryEntry], found: u64) -> RowCheck {
    let mut rows_of: BTreeMap<&str, u64> = BTreeMap::new();
    let mut check = RowCheck {
        table: table.dir(),
        found,
        ..Default::default()
    };
    let (mut written, mut gone) = (0u64, 0u64);
    for e in history {
        for (path, rows) in &e.added {
            rows_of.insert(path, *rows);
        }
        match (&e.ledger, &e.details) {
            (Some(l), _) => match table {
                Table::Calls => {
                    written += l.calls;
                    gone += l.merged;
                }
                Table::DeadLetters => written += l.dead_letters,
            },
            (None, Some(d)) => {
                gone += d
                    .get("folded")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
            }
            (None, None) => {
                // Another engine's commit: what it removed is not ours to lose.
                for path in &e.removed {
                    let rows = rows_of.get(path.as_str()).copied().unwrap_or(0);
                    check.removed_outside.push((path.clone(), rows));
                }
            }
        }
    }
    check.expected = written.saturating_sub(gone);
    check
}
