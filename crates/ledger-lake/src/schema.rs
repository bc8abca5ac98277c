//! Arrow schemas of the lake tables and the conversion of records to
//! batches. Column names are the canonical record's: SQL tables, Parquet
//! and queries share them.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Decimal128Builder, Float64Builder, Int32Builder,
    Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use ledger_core::{CallRecord, DeadLetter};
use rust_decimal::Decimal;

/// Scale of the `cost` column: costs are kept to 10 decimal places.
pub const COST_SCALE: i8 = 10;
pub const COST_PRECISION: u8 = 28;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn calls_schema() -> SchemaRef {
    use DataType::*;
    let s = |n: &str| Field::new(n, Utf8, true);
    let i = |n: &str| Field::new(n, Int64, true);
    let b = |n: &str| Field::new(n, Boolean, false);
    Arc::new(Schema::new(vec![
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
        Field::new("cost", Decimal128(COST_PRECISION, COST_SCALE), true),
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
        // JSON array of strings: plain text keeps CSV export simple.
        s("warnings"),
    ]))
}

pub fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("eh_partition", DataType::Utf8, false),
        Field::new("eh_sequence", DataType::Int64, false),
        Field::new("enqueued_time", ts(), true),
        Field::new("received_time", ts(), false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Binary, false),
        // The raw bytes as text (lossy), for reading and searching.
        Field::new("raw_text", DataType::Utf8, false),
    ]))
}

fn decimal_units(d: &Decimal) -> Option<i128> {
    let mut d = *d;
    d.rescale(COST_SCALE as u32);
    (d.scale() == COST_SCALE as u32).then(|| d.mantissa())
}

pub fn calls_batch(records: &[&CallRecord]) -> Result<RecordBatch, ArrowError> {
    macro_rules! col {
        ($builder:ty, |$r:ident| $e:expr) => {{
            let mut b = <$builder>::new();
            for $r in records {
                b.append_option($e);
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    macro_rules! text {
        ($field:ident) => {
            col!(StringBuilder, |r| r.$field.as_deref())
        };
    }
    macro_rules! int {
        ($field:ident) => {
            col!(Int64Builder, |r| r.$field)
        };
    }
    macro_rules! flag {
        ($field:ident) => {
            col!(BooleanBuilder, |r| Some(r.$field))
        };
    }
    let time = |f: fn(&CallRecord) -> Option<i64>| {
        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        for r in records {
            b.append_option(f(r));
        }
        Arc::new(b.finish()) as ArrayRef
    };
    let mut cost = Decimal128Builder::new();
    for r in records {
        cost.append_option(r.cost.as_ref().and_then(decimal_units));
    }
    let cost = Arc::new(
        cost.finish()
            .with_precision_and_scale(COST_PRECISION, COST_SCALE)?,
    ) as ArrayRef;

    let columns: Vec<ArrayRef> = vec![
        col!(StringBuilder, |r| Some(r.request_id.as_str())),
        text!(correlation_id),
        col!(StringBuilder, |r| Some(r.dialect.as_str())),
        col!(StringBuilder, |r| Some(r.eh_partition.as_str())),
        col!(Int64Builder, |r| Some(r.eh_sequence_first)),
        col!(Int64Builder, |r| Some(r.eh_sequence_last)),
        time(|r| r.request_time.map(|t| t.timestamp_micros())),
        time(|r| r.response_time.map(|t| t.timestamp_micros())),
        int!(duration_ms),
        int!(backend_time_ms),
        int!(model_time_ms),
        text!(caller_ip),
        text!(subscription_id),
        text!(subscription_name),
        text!(subscription_key_hash),
        text!(product_id),
        text!(user_id),
        text!(app_id),
        text!(end_user),
        text!(service),
        text!(region),
        text!(api_id),
        text!(operation_id),
        col!(StringBuilder, |r| Some(r.operation.as_str())),
        text!(deployment),
        text!(api_version),
        text!(backend),
        text!(method),
        text!(url),
        text!(model),
        text!(model_key),
        col!(Int32Builder, |r| r.status_code),
        text!(finish_reason),
        flag!(content_filtered),
        flag!(is_stream),
        text!(error),
        int!(prompt_tokens),
        int!(completion_tokens),
        int!(total_tokens),
        int!(cached_tokens),
        int!(reasoning_tokens),
        col!(StringBuilder, |r| Some(r.usage_source.as_str())),
        cost,
        text!(currency),
        text!(prompt_text),
        text!(response_text),
        text!(tool_calls),
        text!(response_body),
        int!(max_tokens),
        col!(Float64Builder, |r| r.temperature),
        int!(n),
        flag!(complete),
        flag!(request_truncated),
        flag!(response_truncated),
        col!(StringBuilder, |r| Some(
            serde_json::to_string(&r.warnings).unwrap_or_else(|_| "[]".into())
        )),
    ];
    RecordBatch::try_new(calls_schema(), columns)
}

pub fn dead_letters_batch(items: &[&DeadLetter]) -> Result<RecordBatch, ArrowError> {
    let mut partition = StringBuilder::new();
    let mut seq = Int64Builder::new();
    let mut enq = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut recv = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut reason = StringBuilder::new();
    let mut raw = BinaryBuilder::new();
    let mut raw_text = StringBuilder::new();
    for d in items {
        partition.append_value(&d.eh_partition);
        seq.append_value(d.eh_sequence);
        enq.append_option(d.enqueued_time.map(|t| t.timestamp_micros()));
        recv.append_value(d.received_time.timestamp_micros());
        reason.append_value(&d.reason);
        raw.append_value(&d.raw);
        raw_text.append_value(String::from_utf8_lossy(&d.raw));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(partition.finish()),
        Arc::new(seq.finish()),
        Arc::new(enq.finish()),
        Arc::new(recv.finish()),
        Arc::new(reason.finish()),
        Arc::new(raw.finish()),
        Arc::new(raw_text.finish()),
    ];
    RecordBatch::try_new(dead_letters_schema(), columns)
}
