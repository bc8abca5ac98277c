//! Writes query results as a table, CSV, JSON, JSON Lines or Parquet.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::arrow::{csv, json};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Jsonl,
    Parquet,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    #[error("formatting output: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// Writes result batches as they come, so an export of any size holds one
/// batch in memory at a time (the table format, which aligns columns,
/// holds them all).
pub struct BatchWriter<W: Write + Send> {
    inner: Inner<W>,
}

enum Inner<W: Write + Send> {
    Table(W, Vec<RecordBatch>),
    Csv(csv::Writer<W>),
    Json(json::ArrayWriter<W>),
    Jsonl(json::LineDelimitedWriter<W>),
    Parquet(ArrowWriter<W>),
}

impl<W: Write + Send> BatchWriter<W> {
    /// A writer of `format` for batches of `schema` (a Parquet file with no
    /// rows still carries the schema).
    pub fn new(format: Format, out: W, schema: SchemaRef) -> Result<Self, OutputError> {
        let inner = match format {
            Format::Table => Inner::Table(out, Vec::new()),
            Format::Csv => Inner::Csv(csv::WriterBuilder::new().with_header(true).build(out)),
            Format::Json => Inner::Json(json::ArrayWriter::new(out)),
            Format::Jsonl => Inner::Jsonl(json::LineDelimitedWriter::new(out)),
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                Inner::Parquet(ArrowWriter::try_new(out, schema, Some(props))?)
            }
        };
        Ok(BatchWriter { inner })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), OutputError> {
        match &mut self.inner {
            Inner::Table(_, all) => all.push(batch.clone()),
            Inner::Csv(w) => w.write(batch)?,
            Inner::Json(w) => w.write(batch)?,
            Inner::Jsonl(w) => w.write(batch)?,
            Inner::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), OutputError> {
        let mut out = match self.inner {
            Inner::Table(mut out, all) => {
                writeln!(out, "{}", pretty_format_batches(&all)?)?;
                out
            }
            Inner::Csv(w) => w.into_inner(),
            Inner::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                writeln!(out)?;
                out
            }
            Inner::Jsonl(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Inner::Parquet(w) => w.into_inner()?,
        };
        out.flush()?;
        Ok(())
    }
}

/// Writes all `batches` (of the first batch's schema) at once.
pub fn write(
    batches: &[RecordBatch],
    format: Format,
    out: impl Write + Send,
) -> Result<(), OutputError> {
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => std::sync::Arc::new(datafusion::arrow::datatypes::Schema::empty()),
    };
    let mut w = BatchWriter::new(format, out, schema)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}
