//! Classic single-file checkpoints: one Parquet row per action, one
//! struct column per action type, in the layout every Delta reader
//! expects (`add.partitionValues` a string map, `add.stats` JSON text).
//! Rows go through `arrow_json` both ways, from and to the same serde
//! types the commit files use, so the two encodings cannot drift apart.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::json::{ReaderBuilder, WriterBuilder};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{Action, DeltaError};

fn string_map(name: &str) -> Field {
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    );
    Field::new(name, DataType::Map(Arc::new(entries), false), true)
}

fn string_list(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        true,
    )
}

fn strukt(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn long(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}
fn int(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}
fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, true)
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        strukt(
            "txn",
            vec![s("appId"), long("version"), long("lastUpdated")],
        ),
        strukt(
            "add",
            vec![
                s("path"),
                string_map("partitionValues"),
                long("size"),
                long("modificationTime"),
                boolean("dataChange"),
                s("stats"),
                string_map("tags"),
            ],
        ),
        strukt(
            "remove",
            vec![
                s("path"),
                long("deletionTimestamp"),
                boolean("dataChange"),
                boolean("extendedFileMetadata"),
                string_map("partitionValues"),
                long("size"),
            ],
        ),
        strukt(
            "metaData",
            vec![
                s("id"),
                s("name"),
                s("description"),
                strukt("format", vec![s("provider"), string_map("options")]),
                s("schemaString"),
                string_list("partitionColumns"),
                string_map("configuration"),
                long("createdTime"),
            ],
        ),
        strukt(
            "protocol",
            vec![
                int("minReaderVersion"),
                int("minWriterVersion"),
                string_list("readerFeatures"),
                string_list("writerFeatures"),
            ],
        ),
        strukt(
            "domainMetadata",
            vec![s("domain"), s("configuration"), boolean("removed")],
        ),
    ]))
});

/// The checkpoint's Parquet bytes and its row count.
pub fn write(actions: &[Action]) -> Result<(Vec<u8>, usize), DeltaError> {
    let mut decoder = ReaderBuilder::new(SCHEMA.clone())
        .with_batch_size(actions.len().max(1))
        .build_decoder()?;
    decoder.serialize(actions)?;
    let batch = decoder
        .flush()?
        .unwrap_or_else(|| arrow::record_batch::RecordBatch::new_empty(SCHEMA.clone()));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, SCHEMA.clone(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok((buf, batch.num_rows()))
}

/// The actions of a checkpoint file, whichever writer made it: columns it
/// has that are not modelled are ignored.
pub fn read(bytes: Bytes) -> Result<Vec<Action>, DeltaError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut json = Vec::new();
    {
        let mut writer = WriterBuilder::new()
            // A null partition value must stay a key with a null value.
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut json);
        for batch in reader {
            writer.write(&batch?)?;
        }
        writer.finish()?;
    }
    super::parse_commit(&json).map_err(|e| DeltaError::Checkpoint(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delta::{Add, DomainMetadata, Protocol, Txn};

    #[test]
    fn checkpoints_round_trip() {
        let actions = vec![
            Action::from(Protocol::ours()),
            Action::from(Txn {
                app_id: "a".into(),
                version: 9,
                last_updated: Some(1),
            }),
            Action::from(DomainMetadata {
                domain: "d".into(),
                configuration: r#"{"x":1}"#.into(),
                removed: false,
            }),
            Action::from(Add {
                path: "date=2026-01-01/part-1.parquet".into(),
                partition_values: BTreeMap::from([("date".into(), Some("2026-01-01".into()))]),
                size: 10,
                modification_time: 2,
                data_change: true,
                stats: Some(r#"{"numRecords":1}"#.into()),
                tags: None,
            }),
            Action::from(Add {
                path: "date=__HIVE_DEFAULT_PARTITION__/part-2.parquet".into(),
                partition_values: BTreeMap::from([("date".into(), None)]),
                size: 11,
                modification_time: 3,
                data_change: true,
                stats: None,
                tags: None,
            }),
        ];
        let (bytes, rows) = write(&actions).unwrap();
        assert_eq!(rows, actions.len());
        assert_eq!(read(Bytes::from(bytes)).unwrap(), actions);
    }
}
