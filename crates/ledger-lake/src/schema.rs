//! The lake tables' Arrow schemas and record batches, both derived from
//! ledger-core's column table (`ledger_core::columns`).

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use ledger_core::columns::{CALL_COLUMNS, Column, DEAD_LETTER_COLUMNS, LogicalType, Read};
use ledger_core::{CallRecord, DeadLetter};
use rust_decimal::Decimal;

/// Timestamps are stored as UTC instants.
const UTC: &str = "UTC";

/// The Arrow type a logical type is stored as.
pub fn arrow_type(ty: LogicalType) -> DataType {
    match ty {
        LogicalType::Text | LogicalType::LongText | LogicalType::Json => DataType::Utf8,
        LogicalType::Int32 => DataType::Int32,
        LogicalType::Int64 => DataType::Int64,
        LogicalType::Float64 => DataType::Float64,
        LogicalType::Bool => DataType::Boolean,
        LogicalType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        LogicalType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        LogicalType::Binary => DataType::Binary,
    }
}

fn schema_of<R>(columns: &[Column<R>]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(c.name, arrow_type(c.ty), c.nullable))
        .collect();
    Arc::new(Schema::new(fields))
}

static CALLS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| schema_of(CALL_COLUMNS));
static DEAD_LETTERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| schema_of(DEAD_LETTER_COLUMNS));

pub fn calls_schema() -> SchemaRef {
    CALLS_SCHEMA.clone()
}

pub fn dead_letters_schema() -> SchemaRef {
    DEAD_LETTERS_SCHEMA.clone()
}

pub fn calls_batch(records: &[&CallRecord]) -> Result<RecordBatch, ArrowError> {
    batch_of(CALL_COLUMNS, calls_schema(), records)
}

pub fn dead_letters_batch(items: &[&DeadLetter]) -> Result<RecordBatch, ArrowError> {
    batch_of(DEAD_LETTER_COLUMNS, dead_letters_schema(), items)
}

/// Builds the batch column by column: one match per column, then a tight
/// loop over the rows into a builder sized up front.
fn batch_of<R>(
    columns: &[Column<R>],
    schema: SchemaRef,
    rows: &[&R],
) -> Result<RecordBatch, ArrowError> {
    // Reused across rows and columns for the JSON of string lists.
    let mut scratch = Vec::new();
    let arrays = columns
        .iter()
        .map(|c| array_of(c, rows, &mut scratch))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, arrays)
}

fn array_of<R>(
    column: &Column<R>,
    rows: &[&R],
    scratch: &mut Vec<u8>,
) -> Result<ArrayRef, ArrowError> {
    let n = rows.len();
    macro_rules! primitive {
        ($builder:ty, $read:expr) => {{
            let mut b = <$builder>::with_capacity(n);
            for r in rows {
                b.append_option($read(r));
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match column.read {
        Read::Text(read) => {
            let bytes = rows.iter().map(|r| read(r).map_or(0, str::len)).sum();
            let mut b = StringBuilder::with_capacity(n, bytes);
            for r in rows {
                b.append_option(read(r));
            }
            Arc::new(b.finish())
        }
        Read::LossyText(read) => {
            let bytes = rows.iter().map(|r| read(r).len()).sum();
            let mut b = StringBuilder::with_capacity(n, bytes);
            for r in rows {
                b.append_value(String::from_utf8_lossy(read(r)));
            }
            Arc::new(b.finish())
        }
        Read::StringList(read) => {
            let mut b = StringBuilder::with_capacity(n, n * 2);
            for r in rows {
                scratch.clear();
                serde_json::to_writer(&mut *scratch, read(r))
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                let json = std::str::from_utf8(scratch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                b.append_value(json);
            }
            Arc::new(b.finish())
        }
        Read::Binary(read) => {
            let bytes = rows.iter().map(|r| read(r).map_or(0, <[u8]>::len)).sum();
            let mut b = BinaryBuilder::with_capacity(n, bytes);
            for r in rows {
                b.append_option(read(r));
            }
            Arc::new(b.finish())
        }
        Read::Int32(read) => primitive!(Int32Builder, read),
        Read::Int64(read) => primitive!(Int64Builder, read),
        Read::Float64(read) => primitive!(Float64Builder, read),
        Read::Bool(read) => primitive!(BooleanBuilder, read),
        Read::Timestamp(read) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(UTC);
            for r in rows {
                b.append_option(read(r).map(|t| t.timestamp_micros()));
            }
            Arc::new(b.finish())
        }
        Read::Decimal(read) => {
            let LogicalType::Decimal { precision, scale } = column.ty else {
                return Err(ArrowError::SchemaError(format!(
                    "{}: decimal values in a {:?} column",
                    column.name, column.ty
                )));
            };
            let mut b = Decimal128Builder::with_capacity(n);
            for r in rows {
                b.append_option(read(r).and_then(|d| decimal_units(d, scale)));
            }
            Arc::new(
                b.finish()
                    .with_precision_and_scale(precision, scale as i8)?,
            )
        }
    })
}

/// The records of a `calls` batch: the inverse of [`calls_batch`], read
/// through the same column table (each cell becomes the value the record's
/// serde form has under the column's name). A column the batch lacks (a
/// file older than the column) reads as a default record has it: null, a
/// false flag, no warnings.
pub fn calls_from_batch(batch: &RecordBatch) -> Result<Vec<CallRecord>, ArrowError> {
    rows_of(CALL_COLUMNS, batch)
}

fn rows_of<R: serde::de::DeserializeOwned + serde::Serialize + Default>(
    columns: &[Column<R>],
    batch: &RecordBatch,
) -> Result<Vec<R>, ArrowError> {
    use serde_json::{Map, Value};
    let json = |e: serde_json::Error| ArrowError::ExternalError(Box::new(e));
    // A missing cell takes the value of a default row.
    let Value::Object(defaults) = serde_json::to_value(R::default()).map_err(json)? else {
        return Err(ArrowError::SchemaError("rows must be structs".into()));
    };
    let mut rows: Vec<Map<String, Value>> = vec![Map::new(); batch.num_rows()];
    for c in columns {
        let array = batch.column_by_name(c.name);
        for (i, row) in rows.iter_mut().enumerate() {
            let value = match array {
                Some(a) if a.is_valid(i) => cell(c, a, i)?,
                _ => defaults.get(c.name).cloned().unwrap_or(Value::Null),
            };
            row.insert(c.name.to_string(), value);
        }
    }
    rows.into_iter()
        .map(|row| serde_json::from_value(Value::Object(row)).map_err(json))
        .collect()
}

/// One valid cell as the serde value of its field.
fn cell<R>(
    column: &Column<R>,
    array: &ArrayRef,
    i: usize,
) -> Result<serde_json::Value, ArrowError> {
    use arrow::array::{
        Array, AsArray, BinaryArray, BooleanArray, Decimal128Array, Float64Array, Int32Array,
        Int64Array, TimestampMicrosecondArray,
    };
    use serde_json::Value;
    fn typed<'a, T: Array + 'static>(name: &str, array: &'a ArrayRef) -> Result<&'a T, ArrowError> {
        array.as_any().downcast_ref::<T>().ok_or_else(|| {
            ArrowError::SchemaError(format!("column {name} has type {}", array.data_type()))
        })
    }
    let name = column.name;
    Ok(match column.read {
        Read::Text(_) | Read::LossyText(_) => {
            Value::String(array.as_string_opt::<i32>().map_or_else(
                || {
                    Err(ArrowError::SchemaError(format!(
                        "column {name} is not text"
                    )))
                },
                |a| Ok(a.value(i).to_string()),
            )?)
        }
        Read::StringList(_) => {
            let text = array
                .as_string_opt::<i32>()
                .ok_or_else(|| ArrowError::SchemaError(format!("column {name} is not text")))?
                .value(i);
            serde_json::from_str(text).map_err(|e| ArrowError::ExternalError(Box::new(e)))?
        }
        Read::Int32(_) => Value::from(typed::<Int32Array>(name, array)?.value(i)),
        Read::Int64(_) => Value::from(typed::<Int64Array>(name, array)?.value(i)),
        Read::Float64(_) => Value::from(typed::<Float64Array>(name, array)?.value(i)),
        Read::Bool(_) => Value::Bool(typed::<BooleanArray>(name, array)?.value(i)),
        Read::Timestamp(_) => {
            let micros = typed::<TimestampMicrosecondArray>(name, array)?.value(i);
            let t = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| {
                ArrowError::ComputeError(format!("column {name}: {micros} µs is out of range"))
            })?;
            serde_json::to_value(t).map_err(|e| ArrowError::ExternalError(Box::new(e)))?
        }
        Read::Decimal(_) => {
            let a = typed::<Decimal128Array>(name, array)?;
            let scale = u32::try_from(a.scale())
                .map_err(|_| ArrowError::SchemaError(format!("column {name}: negative scale")))?;
            let d = Decimal::try_from_i128_with_scale(a.value(i), scale)
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            Value::String(d.normalize().to_string())
        }
        Read::Binary(_) => serde_json::to_value(typed::<BinaryArray>(name, array)?.value(i))
            .map_err(|e| ArrowError::ExternalError(Box::new(e)))?,
    })
}

/// The value in units of `10^-scale`, or none when it cannot be held at
/// that scale.
fn decimal_units(mut d: Decimal, scale: u8) -> Option<i128> {
    d.rescale(u32::from(scale));
    (d.scale() == u32::from(scale)).then(|| d.mantissa())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema as the lake has always written it: existing files and
    /// queries depend on every name, type, nullability and the order.
    fn stored_calls_schema() -> Schema {
        use DataType::*;
        let ts = || Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let s = |n: &str| Field::new(n, Utf8, true);
        let i = |n: &str| Field::new(n, Int64, true);
        let b = |n: &str| Field::new(n, Boolean, false);
        Schema::new(vec![
            Field::new("request_id", Utf8, false),
            s("correlation_id"),
            Field::new("dialect", Utf8, false),
            Field::new("eh_partition", Utf8, false),
            Field::new("eh_sequence_first", Int64, false),
            Field::new("eh_sequence_last", Int64, false),
            Field::new("request_time", ts(), true),
            Field::new("response_time", ts(), true),
            i("duration_ms"),
            i("backend_time_ms"),
            i("model_time_ms"),
            s("caller_ip"),
            s("subscription_id"),
            s("subscription_name"),
            s("subscription_key_hash"),
            s("product_id"),
            s("user_id"),
            s("app_id"),
            s("end_user"),
            s("service"),
            s("region"),
            s("api_id"),
            s("operation_id"),
            Field::new("operation", Utf8, false),
            s("deployment"),
            s("api_version"),
            s("backend"),
            s("method"),
            s("url"),
            s("model"),
            s("model_key"),
            Field::new("status_code", Int32, true),
            s("finish_reason"),
            b("content_filtered"),
            b("is_stream"),
            s("error"),
            i("prompt_tokens"),
            i("completion_tokens"),
            i("total_tokens"),
            i("cached_tokens"),
            i("reasoning_tokens"),
            Field::new("usage_source", Utf8, false),
            Field::new("cost", Decimal128(28, 10), true),
            s("currency"),
            s("prompt_text"),
            s("response_text"),
            s("tool_calls"),
            s("response_body"),
            i("max_tokens"),
            Field::new("temperature", Float64, true),
            i("n"),
            b("complete"),
            b("request_truncated"),
            b("response_truncated"),
            s("warnings"),
        ])
    }

    fn stored_dead_letters_schema() -> Schema {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        Schema::new(vec![
            Field::new("eh_partition", DataType::Utf8, false),
            Field::new("eh_sequence", DataType::Int64, false),
            Field::new("enqueued_time", ts(), true),
            Field::new("received_time", ts(), false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("raw", DataType::Binary, false),
            Field::new("raw_text", DataType::Utf8, false),
        ])
    }

    fn assert_same(derived: &Schema, stored: &Schema) {
        for (d, s) in derived.fields().iter().zip(stored.fields()) {
            assert_eq!(d, s);
        }
        assert_eq!(derived, stored);
    }

    #[test]
    fn schemas_are_the_stored_ones() {
        assert_same(&calls_schema(), &stored_calls_schema());
        assert_same(&dead_letters_schema(), &stored_dead_letters_schema());
    }

    #[test]
    fn batches_hold_the_values() {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};
        use chrono::{TimeZone, Utc};
        use ledger_core::{Dialect, Operation, UsageSource};

        let full = CallRecord {
            request_id: "r1".into(),
            dialect: Dialect::Chargeback,
            operation: Operation::Embedding,
            usage_source: UsageSource::Estimated,
            request_time: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).single(),
            prompt_tokens: Some(7),
            cost: Some(Decimal::new(12345, 8)),
            content_filtered: true,
            warnings: vec!["a \"b\"".into(), "c".into()],
            ..Default::default()
        };
        let empty = CallRecord::default();
        let batch = calls_batch(&[&full, &empty]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let text = |name: &str, row: usize| {
            let col = batch.column_by_name(name).unwrap().as_string::<i32>();
            (!col.is_null(row)).then(|| col.value(row).to_string())
        };
        assert_eq!(text("request_id", 0).as_deref(), Some("r1"));
        assert_eq!(text("dialect", 0).as_deref(), Some("chargeback"));
        assert_eq!(text("operation", 0).as_deref(), Some("embedding"));
        assert_eq!(text("usage_source", 0).as_deref(), Some("estimated"));
        assert_eq!(text("usage_source", 1).as_deref(), Some("none"));
        assert_eq!(text("warnings", 0).as_deref(), Some(r#"["a \"b\"","c"]"#));
        assert_eq!(text("warnings", 1).as_deref(), Some("[]"));
        assert_eq!(text("model", 0), None);
        let tokens = batch.column_by_name("prompt_tokens").unwrap();
        assert_eq!(tokens.as_primitive::<Int64Type>().value(0), 7);
        assert!(tokens.is_null(1));
        let cost = batch.column_by_name("cost").unwrap();
        assert_eq!(cost.as_primitive::<Decimal128Type>().value(0), 1_234_500);
        assert!(cost.is_null(1));
        let time = batch.column_by_name("request_time").unwrap();
        assert_eq!(
            time.as_primitive::<TimestampMicrosecondType>().value(0),
            full.request_time.unwrap().timestamp_micros()
        );
        let flags = batch
            .column_by_name("content_filtered")
            .unwrap()
            .as_boolean();
        assert!(flags.value(0) && !flags.value(1));
    }

    #[test]
    fn records_read_back_from_their_batch() {
        use chrono::{TimeZone, Utc};
        use ledger_core::{Dialect, Operation, UsageSource};
        let full = CallRecord {
            request_id: "r1".into(),
            dialect: Dialect::AzureMonitor,
            operation: Operation::Chat,
            usage_source: UsageSource::Reported,
            request_time: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).single(),
            response_time: Some(Utc.timestamp_micros(1_763_632_801_123_456).unwrap()),
            status_code: Some(200),
            prompt_tokens: Some(7),
            temperature: Some(0.25),
            cost: Some(Decimal::new(12345, 8)),
            content_filtered: true,
            complete: true,
            prompt_text: Some("[]".into()),
            warnings: vec!["a \"b\"".into(), "c".into()],
            ..Default::default()
        };
        let empty = CallRecord::default();
        let batch = calls_batch(&[&full, &empty]).unwrap();
        assert_eq!(calls_from_batch(&batch).unwrap(), vec![full.clone(), empty]);
        // A file older than a column reads it as missing.
        let older = batch.project(&[0, 2, 3, 4, 5]).unwrap();
        let back = calls_from_batch(&older).unwrap();
        assert_eq!(back[0].request_id, "r1");
        assert_eq!((back[0].complete, back[0].warnings.len()), (false, 0));
    }

    #[test]
    fn dead_letter_raw_text_is_lossy() {
        let d = DeadLetter {
            eh_partition: "p".into(),
            eh_sequence: 3,
            enqueued_time: None,
            received_time: chrono::DateTime::UNIX_EPOCH,
            reason: "bad".into(),
            raw: b"ok \xff".to_vec(),
        };
        let batch = dead_letters_batch(&[&d]).unwrap();
        use arrow::array::AsArray;
        let raw_text = batch.column_by_name("raw_text").unwrap().as_string::<i32>();
        assert_eq!(raw_text.value(0), "ok \u{fffd}");
        let raw = batch.column_by_name("raw").unwrap().as_binary::<i32>();
        assert_eq!(raw.value(0), b"ok \xff");
    }
}
