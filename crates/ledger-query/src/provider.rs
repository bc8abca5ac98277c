//! A lake table as a DataFusion [`TableProvider`]: the live files of one
//! Delta snapshot, pruned by their `date` partition and by the
//! `request_time`-like ranges the log records per file, before any file
//! is opened.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::pruning::PrunableStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use ledger_lake::delta::Snapshot;
use ledger_lake::delta::stats::stat_micros;
use ledger_lake::{Lake, PARTITION_COLUMN, Table};

/// One live data file and what the log says of it.
#[derive(Debug, Clone)]
struct LiveFile {
    file: PartitionedFile,
    /// Over the table schema: row count, and min/max of the partition and
    /// the stats columns.
    stats: Arc<Statistics>,
}

/// One table of one snapshot.
#[derive(Debug)]
pub struct LakeTable {
    /// File columns, then `date`.
    schema: SchemaRef,
    file_schema: SchemaRef,
    store_url: ObjectStoreUrl,
    files: Vec<LiveFile>,
}

impl LakeTable {
    /// The table's live files at `snapshot`, or an empty table before the
    /// first commit.
    pub fn new(lake: &Lake, table: Table, snapshot: &Snapshot) -> Result<LakeTable> {
        let schema = match snapshot.schema().map_err(to_df)? {
            Some(s) => s,
            None => ledger_lake::table_schema(table),
        };
        let file_fields: Vec<Field> = schema
            .fields()
            .iter()
            .filter(|f| f.name() != PARTITION_COLUMN)
            .map(|f| f.as_ref().clone())
            .collect();
        let mut fields = file_fields.clone();
        fields.push(Field::new(PARTITION_COLUMN, DataType::Date32, true));
        let schema: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(file_fields));
        let delta = lake.delta_table(table);
        let stats_columns = table.stats_columns();
        let files = snapshot
            .files
            .values()
            .map(|add| {
                let date = add
                    .partition_values
                    .get(PARTITION_COLUMN)
                    .cloned()
                    .flatten()
                    .map(|d| ScalarValue::Utf8(Some(d)).cast_to(&DataType::Date32))
                    .transpose()?
                    .unwrap_or(ScalarValue::Date32(None));
                let parsed: Option<serde_json::Value> = add
                    .stats
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok());
                let mut columns = Vec::with_capacity(schema.fields().len());
                for f in schema.fields() {
                    let mut c = ColumnStatistics::new_unknown();
                    if f.name() == PARTITION_COLUMN {
                        c.min_value = Precision::Exact(date.clone());
                        c.max_value = Precision::Exact(date.clone());
                    } else if let Some(stats) = &parsed
                        && stats_columns.contains(&f.name().as_str())
                    {
                        let ts = |kind| {
                            stat_micros(stats, kind, f.name()).map(|v| {
                                ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()))
                            })
                        };
                        // Millisecond bounds, rounded outwards: true bounds,
                        // which is all pruning needs (DataFusion prunes on
                        // Exact values only). These statistics serve this
                        // provider's pruning and are never given to the
                        // planner, which could take them for exact values.
                        if let (Some(lo), Some(hi)) = (ts("minValues"), ts("maxValues")) {
                            c.min_value = Precision::Exact(lo);
                            c.max_value = Precision::Exact(hi);
                        }
                    }
                    columns.push(c);
                }
                let rows = parsed
                    .as_ref()
                    .and_then(|s| s.get("numRecords"))
                    .and_then(serde_json::Value::as_u64)
                    .map_or(Precision::Absent, |n| Precision::Exact(n as usize));
                let stats = Arc::new(Statistics {
                    num_rows: rows,
                    total_byte_size: Precision::Absent,
                    column_statistics: columns,
                });
                let path = delta.path(&add.path);
                let file = PartitionedFile::new(path.to_string(), add.size.max(0) as u64)
                    .with_partition_values(vec![date]);
                Ok(LiveFile { file, stats })
            })
            .collect::<Result<Vec<_>>>()?;
        let store_url = ObjectStoreUrl::parse(lake.location().store_url.as_str())?;
        Ok(LakeTable {
            schema,
            file_schema,
            store_url,
            files,
        })
    }

    /// The files a scan with `filters` must read.
    fn pruned(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<PartitionedFile>> {
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(self.files.iter().map(|f| f.file.clone()).collect());
        };
        let df_schema = DFSchema::try_from(self.schema.clone())?;
        let physical = state.create_physical_expr(predicate, &df_schema)?;
        let pruning = PruningPredicateBuilder::new()
            .with_file_schema(self.schema.clone())
            .try_build(physical)?;
        let stats = PrunableStatistics::new(
            self.files.iter().map(|f| f.stats.clone()).collect(),
            self.schema.clone(),
        );
        let keep = pruning.prune(&stats)?;
        Ok(self
            .files
            .iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|(f, _)| f.file.clone())
            .collect())
    }

    /// How many files a scan with `filters` reads (for tests and `explain`).
    pub fn files_read(&self, state: &dyn Session, filters: &[Expr]) -> Result<usize> {
        Ok(self.pruned(state, filters)?.len())
    }
}

fn to_df(e: impl std::error::Error + Send + Sync + 'static) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Pruning skips whole files; rows are still filtered above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files = self.pruned(state, filters)?;
        if files.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let format = ParquetFormat::default();
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(vec![Arc::new(Field::new(
                PARTITION_COLUMN,
                DataType::Date32,
                true,
            ))])
            .build();
        let source = format.file_source(table_schema);
        let config = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(vec![FileGroup::new(files)])
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}
