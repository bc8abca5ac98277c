//! Keeping a lake healthy under a worker that commits every minute:
//! compaction (Delta OPTIMIZE bin-packing, with leftover copies of one call
//! folded into one row) and vacuum (deleting files no version within the
//! retention period needs). Both are safe while a worker writes: compaction
//! commits through the log like any writer and gives up a date whose files
//! another commit replaced meanwhile; vacuum deletes only files that no live
//! snapshot names and that are older than the retention.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{RecordBatch, new_null_array};
use arrow::datatypes::SchemaRef;
use chrono::{Duration, NaiveDate, Utc};
use futures::TryStreamExt;
use ledger_core::merge;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::delta::{Action, Add, Snapshot};
use crate::{COMMIT_INFO_KEY, Lake, LakeError, Table, file_date, partial_rows, schema};

/// How a compaction run went, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactSummary {
    pub files_before: u64,
    pub files_after: u64,
    pub rows: u64,
    /// Rows folded into another copy of their call.
    pub folded: u64,
    /// Dates left as they were because another commit replaced some of
    /// their files while they were being compacted (run again).
    pub skipped_dates: Vec<String>,
}

/// What a vacuum found and deleted (or would delete, on a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumSummary {
    /// Files no longer in the table and older than the retention.
    pub deleted: Vec<String>,
    pub bytes: u64,
    /// Unreferenced files kept because they are younger than the retention.
    pub kept_young: u64,
}

impl Lake {
    /// Rewrites each date's small files (`since` onwards) into files of
    /// about `target_bytes` each. Every row is kept, except that copies of
    /// one call (a partial row and another copy the write-time merge could
    /// not see) are folded into one row by the merge rule.
    ///
    /// Peak memory is about the decoded size of one output file.
    pub async fn compact(
        &mut self,
        table: Table,
        since: Option<NaiveDate>,
        target_bytes: u64,
    ) -> Result<CompactSummary, LakeError> {
        self.writer_snapshot(table).await?;
        {
            let state = self.state(table);
            let snap = state.snapshot.get_or_insert_with(Snapshot::default);
            state.table.update(snap).await?;
        }
        let snap = self.writer_snapshot(table).await?;
        let since = since.map(crate::day_name);
        let mut by_date: BTreeMap<Option<String>, Vec<Add>> = BTreeMap::new();
        for add in snap.files.values() {
            let date = file_date(add);
            if since
                .as_ref()
                .is_some_and(|s| date.as_ref().is_none_or(|d| d < s))
            {
                continue;
            }
            by_date.entry(date).or_default().push(add.clone());
        }
        let mut summary = CompactSummary {
            files_before: snap.files.len() as u64,
            ..Default::default()
        };
        for (date, files) in by_date {
            for bin in bins(files, target_bytes) {
                match self.compact_bin(table, &date, &bin).await? {
                    Some((rows, folded)) => {
                        summary.rows += rows;
                        summary.folded += folded;
                    }
                    None => summary
                        .skipped_dates
                        .push(date.clone().unwrap_or_else(|| "null".into())),
                }
            }
        }
        summary.skipped_dates.dedup();
        summary.files_after = self.writer_snapshot(table).await?.files.len() as u64;
        Ok(summary)
    }

    /// Replaces one bin of files of one date with one file, in one commit.
    /// None when another commit removed one of them first.
    async fn compact_bin(
        &mut self,
        table: Table,
        date: &Option<String>,
        bin: &[Add],
    ) -> Result<Option<(u64, u64)>, LakeError> {
        let file_schema = table.file_schema();
        let mut batches = Vec::with_capacity(bin.len());
        for add in bin {
            batches.extend(self.read_file(table, add, &file_schema).await?);
        }
        let mut batch = arrow::compute::concat_batches(&file_schema, &batches)?;
        drop(batches);
        let mut folded = 0;
        if table == Table::Calls && bin.iter().any(|a| partial_rows(a) > 0) {
            let records = schema::calls_from_batch(&batch)?;
            let merged = merge::merge_all(&records);
            folded = (records.len() - merged.len()) as u64;
            if folded > 0 {
                let rows: Vec<&ledger_core::CallRecord> =
                    merged.iter().map(|r| r.as_ref()).collect();
                batch = schema::calls_batch(&rows)?;
            }
        }
        let partial = match table {
            Table::Calls => count_partial(&batch),
            Table::DeadLetters => 0,
        };
        let name = format!(
            "part-compact-{}.zstd.parquet",
            uuid::Uuid::new_v4().simple()
        );
        let mut add = self.put_file(table, date, &name, &batch, partial).await?;
        // Rows folded change the data; pure bin-packing does not.
        let data_change = folded > 0;
        add.data_change = data_change;
        let now = Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = bin
            .iter()
            .map(|a| {
                let mut r = a.removal(now);
                r.data_change = data_change;
                Action::from(r)
            })
            .collect();
        actions.push(add.clone().into());
        actions.push(Action {
            commit_info: Some(serde_json::json!({
                "timestamp": now,
                "operation": "OPTIMIZE",
                "operationParameters": {"predicate": "[]", "targetSize": "bin"},
                "isBlindAppend": false,
                "engineInfo": concat!("aoai-ledger/", env!("CARGO_PKG_VERSION")),
                COMMIT_INFO_KEY: {
                    "operation": "compact",
                    "date": date,
                    "filesRemoved": bin.len(),
                    "rows": batch.num_rows(),
                    "folded": folded,
                },
            })),
            ..Default::default()
        });
        let rows = batch.num_rows() as u64;
        if !self.commit_rewrite(table, &actions).await? {
            return Ok(None);
        }
        for a in bin {
            self.partial_index.remove(&a.path);
        }
        Ok(Some((rows, folded)))
    }

    /// One data file's batches, with the columns the table has gained since
    /// it was written filled with nulls.
    pub(crate) async fn read_file(
        &self,
        table: Table,
        add: &Add,
        schema: &SchemaRef,
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let path = self.delta_table(table).path(&add.path);
        let bytes = self.store().get(&path).await?.bytes().await?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        let mut out = Vec::new();
        for batch in reader {
            out.push(conform(&batch?, schema)?);
        }
        Ok(out)
    }

    /// Deletes the files of both tables that the newest snapshot does not
    /// name and that were written more than `retain` ago: files removed by
    /// merges, compaction or erasure once no reader within the retention
    /// can need them, and orphans of commits that never happened. Versions
    /// older than `retain` can no longer be read afterwards.
    pub async fn vacuum(
        &mut self,
        retain: Duration,
        dry_run: bool,
    ) -> Result<VacuumSummary, LakeError> {
        let cutoff = Utc::now() - retain;
        let mut summary = VacuumSummary::default();
        for table in Table::ALL {
            let snap = self.snapshot(table).await?;
            let delta = self.delta_table(table).clone();
            let live: BTreeSet<Path> = snap.files.keys().map(|p| delta.path(p)).collect();
            let log = delta.path("_delta_log");
            let listed: Vec<_> = self.store().list(Some(delta.root())).try_collect().await?;
            for meta in listed {
                let loc = &meta.location;
                if loc.prefix_matches(&log) || live.contains(loc) {
                    continue;
                }
                if !loc.as_ref().ends_with(".parquet") {
                    continue;
                }
                if meta.last_modified > cutoff {
                    summary.kept_young += 1;
                    continue;
                }
                if !dry_run {
                    self.store().delete(loc).await?;
                }
                summary.bytes += meta.size;
                summary.deleted.push(loc.to_string());
            }
        }
        Ok(summary)
    }
}

/// Groups a date's files into bins of about `target` bytes. Files already
/// at half the target or more are left alone, and so is a bin of one.
fn bins(mut files: Vec<Add>, target: u64) -> Vec<Vec<Add>> {
    files.retain(|a| (a.size.max(0) as u64) < target / 2);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out: Vec<Vec<Add>> = Vec::new();
    let mut size = 0u64;
    for f in files {
        let s = f.size.max(0) as u64;
        match out.last_mut() {
            Some(bin) if size + s <= target => {
                bin.push(f);
                size += s;
            }
            _ => {
                out.push(vec![f]);
                size = s;
            }
        }
    }
    out.retain(|b| b.len() > 1);
    out
}

/// A batch in the table's current file schema: a column added since the
/// file was written reads as nulls.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, LakeError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Ok(c.clone()),
            None if f.is_nullable() => Ok(new_null_array(f.data_type(), batch.num_rows())),
            None => Err(arrow::error::ArrowError::SchemaError(format!(
                "a data file lacks the required column {}",
                f.name()
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Rows of a calls batch whose `complete` flag is false.
fn count_partial(batch: &RecordBatch) -> usize {
    use arrow::array::{Array, AsArray};
    batch
        .column_by_name("complete")
        .and_then(|c| {
            c.as_boolean_opt()
                .map(|b| b.len() - b.true_count() - b.null_count())
        })
        .unwrap_or(0)
}

/// Reads a retention such as `7d`, `12h`, `30m`, `0s`.
pub fn parse_retention(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    match unit {
        "d" => Duration::try_days(n),
        "h" => Duration::try_hours(n),
        "m" => Duration::try_minutes(n),
        "s" => Duration::try_seconds(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PARTITION_COLUMN;

    #[test]
    fn blanking_empties_exactly_the_erased_columns() {
        use ledger_core::columns::{CALL_COLUMNS, Read};
        let text = Some("x".to_string());
        let mut r = ledger_core::CallRecord {
            prompt_text: text.clone(),
            response_text: text.clone(),
            tool_calls: text.clone(),
            response_body: text.clone(),
            caller_ip: text.clone(),
            ..Default::default()
        };
        blank_content(&mut r);
        for c in CALL_COLUMNS {
            if let Read::Text(read) = c.read {
                let erased = ERASED_COLUMNS.contains(&c.name);
                assert!(!erased || read(&r).is_none(), "{} kept", c.name);
            }
        }
        assert_eq!(r.caller_ip, text);
    }

    #[test]
    fn retentions_read() {
        assert_eq!(parse_retention("7d"), Some(Duration::days(7)));
        assert_eq!(parse_retention("0s"), Some(Duration::zero()));
        assert_eq!(parse_retention("12h"), Some(Duration::hours(12)));
        assert_eq!(parse_retention("7"), None);
        assert_eq!(parse_retention("d"), None);
        assert_eq!(parse_retention("3w"), None);
    }

    #[test]
    fn bins_pack_small_files_and_leave_big_ones() {
        let add = |name: &str, size: i64| Add {
            path: name.into(),
            partition_values: BTreeMap::from([(PARTITION_COLUMN.to_string(), None)]),
            size,
            modification_time: 0,
            data_change: true,
            stats: None,
            tags: None,
        };
        let files = vec![
            add("a", 10),
            add("b", 10),
            add("c", 90),
            add("d", 60),
            add("e", 5),
        ];
        let b = bins(files, 100);
        let names: Vec<Vec<&str>> = b
            .iter()
            .map(|bin| bin.iter().map(|a| a.path.as_str()).collect())
            .collect();
        // c (90) and d (60) are at least half the target: left alone.
        assert_eq!(names, vec![vec!["a", "b", "e"]]);
    }
}

/// What an erasure blanked (or would blank, on a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EraseSummary {
    pub calls: u64,
    pub files: u64,
}

/// The columns an erasure blanks: the content of the call. Usage, cost,
/// caller and timing stay, for finance and for `audit`.
pub const ERASED_COLUMNS: &[&str] = &[
    "prompt_text",
    "response_text",
    "tool_calls",
    "response_body",
];

impl Lake {
    /// Blanks the prompt and response content of the calls `filter`
    /// selects (requested before `before`, if given) in one Delta commit:
    /// each file holding such a call is replaced by a copy with the content
    /// blanked, and the commit records who erased what and when. The old
    /// files stay readable by `--as-of` until a vacuum past the retention
    /// deletes them.
    pub async fn erase(
        &mut self,
        filter: &ledger_core::filter::CallFilter,
        before: Option<chrono::DateTime<Utc>>,
        by: &str,
        dry_run: bool,
    ) -> Result<EraseSummary, LakeError> {
        if filter.is_empty() {
            return Err(LakeError::Config(
                "erase needs at least one criterion".into(),
            ));
        }
        let table = Table::Calls;
        let at = Utc::now();
        let selected = |r: &ledger_core::CallRecord| {
            filter.matches(r)
                && before.is_none_or(|b| r.request_time.is_some_and(|t| t < b))
                && (r.prompt_text.is_some()
                    || r.response_text.is_some()
                    || r.tool_calls.is_some()
                    || r.response_body.is_some())
        };
        loop {
            self.writer_snapshot(table).await?;
            let files: Vec<Add> = {
                let state = self.state(table);
                let snap = state.snapshot.get_or_insert_with(Snapshot::default);
                state.table.update(snap).await?;
                let last_day = before.map(|b| crate::day_name(b.date_naive()));
                snap.files
                    .values()
                    .filter(|a| match (&last_day, file_date(a)) {
                        (Some(last), Some(d)) => d <= *last,
                        _ => true,
                    })
                    .cloned()
                    .collect()
            };
            let mut summary = EraseSummary::default();
            let mut actions: Vec<Action> = Vec::new();
            let now = at.timestamp_millis();
            for add in &files {
                let mut records = self.read_calls_file(add).await?;
                let mut hit = 0;
                for r in records.iter_mut().filter(|r| selected(r)) {
                    blank_content(r);
                    r.warnings.push(format!(
                        "content erased at {} by {by}",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ));
                    hit += 1;
                }
                if hit == 0 {
                    continue;
                }
                summary.calls += hit;
                summary.files += 1;
                if dry_run {
                    continue;
                }
                let rows: Vec<&ledger_core::CallRecord> = records.iter().collect();
                let batch = schema::calls_batch(&rows)?;
                let partial = records.iter().filter(|r| !r.complete).count();
                let name = format!("part-erase-{}.zstd.parquet", uuid::Uuid::new_v4().simple());
                let new = self
                    .put_file(table, &file_date(add), &name, &batch, partial)
                    .await?;
                actions.push(add.removal(now).into());
                actions.push(new.into());
            }
            if dry_run || actions.is_empty() {
                return Ok(summary);
            }
            actions.push(Action {
                commit_info: Some(serde_json::json!({
                    "timestamp": now,
                    "operation": "UPDATE",
                    "operationParameters": {"predicate": format!("{filter:?}")},
                    "isBlindAppend": false,
                    "engineInfo": concat!("aoai-ledger/", env!("CARGO_PKG_VERSION")),
                    COMMIT_INFO_KEY: {
                        "operation": "erase",
                        "by": by,
                        "at": at.to_rfc3339(),
                        "criteria": criteria_json(filter),
                        "before": before.map(|b| b.to_rfc3339()),
                        "columns": ERASED_COLUMNS,
                        "calls": summary.calls,
                        "filesRewritten": summary.files,
                    },
                })),
                ..Default::default()
            });
            if self.commit_rewrite(table, &actions).await? {
                return Ok(summary);
            }
            // Another commit replaced a file we rewrote: start over.
        }
    }

    /// Commits actions that replace files (their `remove`s), retrying at
    /// the next version as long as every replaced file is still live. False,
    /// with the new files deleted, when another commit removed one first.
    async fn commit_rewrite(
        &mut self,
        table: Table,
        actions: &[Action],
    ) -> Result<bool, LakeError> {
        loop {
            let state = self.state(table);
            let snap = state.snapshot.get_or_insert_with(Snapshot::default);
            let version = snap.version + 1;
            if state.table.try_commit(version, actions).await? {
                snap.apply(actions);
                snap.version = version;
                if version % crate::delta::CHECKPOINT_INTERVAL == 0
                    && let Err(e) = state.table.write_checkpoint(snap).await
                {
                    tracing::warn!(table = table.dir(), version, error = %e, "checkpoint not written");
                }
                return Ok(true);
            }
            state.table.update(snap).await?;
            let gone = actions
                .iter()
                .filter_map(|a| a.remove.as_ref())
                .any(|r| !snap.files.contains_key(&r.path));
            if gone {
                self.delete_uncommitted(table, actions).await;
                return Ok(false);
            }
        }
    }
}

/// Blanks the [`ERASED_COLUMNS`] of a record.
fn blank_content(r: &mut ledger_core::CallRecord) {
    r.prompt_text = None;
    r.response_text = None;
    r.tool_calls = None;
    r.response_body = None;
}

/// The criteria of an erasure as the history records them.
fn criteria_json(filter: &ledger_core::filter::CallFilter) -> serde_json::Value {
    use ledger_core::filter::Match;
    filter
        .conditions()
        .iter()
        .map(|c| {
            let (how, v) = match c.matching {
                Match::Exact(v) => ("equals", v),
                Match::Contains(v) => ("contains", v),
            };
            serde_json::json!({"columns": c.columns, how: v})
        })
        .collect()
}
