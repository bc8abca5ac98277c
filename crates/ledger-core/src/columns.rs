//! The column table: every column of the `calls` and `dead_letters` tables,
//! in order, with its logical type, nullability, a one-line doc and how to
//! read its value from a record. Sinks derive their schemas and row writers
//! from it (the lake's Arrow schema and batches, later SQL DDL), so a column
//! is added, renamed or retyped here and nowhere else.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::model::{CallRecord, DeadLetter, Dialect, Operation, UsageSource};

/// `cost` is exact to 10 decimal places, 28 digits in all (what
/// `rust_decimal` holds).
pub const COST_PRECISION: u8 = 28;
pub const COST_SCALE: u8 = 10;

/// What a column holds, in terms rich enough to map to Arrow and to SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalType {
    /// Short text: identifiers, names, codes, addresses.
    Text,
    /// Text of any length: URLs, error messages, completions.
    LongText,
    /// JSON text of any length.
    Json,
    Int32,
    Int64,
    Float64,
    Bool,
    /// An instant in UTC, microsecond precision.
    Timestamp,
    /// Exact decimal with `precision` digits, `scale` of them after the point.
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// Raw bytes.
    Binary,
}

/// How to read a column's value from a row of type `R`. One variant per
/// representation, so a writer matches once per column and then loops over
/// the rows with a plain function call per cell.
pub enum Read<R> {
    Text(fn(&R) -> Option<&str>),
    /// Bytes shown as text; invalid UTF-8 becomes U+FFFD.
    LossyText(fn(&R) -> &[u8]),
    /// A list of strings, written as a JSON array.
    StringList(fn(&R) -> &[String]),
    Int32(fn(&R) -> Option<i32>),
    Int64(fn(&R) -> Option<i64>),
    Float64(fn(&R) -> Option<f64>),
    Bool(fn(&R) -> Option<bool>),
    Timestamp(fn(&R) -> Option<DateTime<Utc>>),
    Decimal(fn(&R) -> Option<Decimal>),
    Binary(fn(&R) -> Option<&[u8]>),
}

/// One column of a table whose rows are `R`.
pub struct Column<R: 'static> {
    pub name: &'static str,
    pub ty: LogicalType,
    /// Whether the value may be missing; a non-nullable column's reader
    /// always returns a value.
    pub nullable: bool,
    pub doc: &'static str,
    /// For a column holding one of a closed set of names, those names.
    pub values: &'static [&'static str],
    pub read: Read<R>,
}

impl<R> Column<R> {
    const fn new(name: &'static str, ty: LogicalType, read: Read<R>, doc: &'static str) -> Self {
        Column {
            name,
            ty,
            nullable: true,
            doc,
            values: &[],
            read,
        }
    }

    const fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    const fn one_of(mut self, values: &'static [&'static str]) -> Self {
        self.values = values;
        self
    }

    const fn text(name: &'static str, read: fn(&R) -> Option<&str>, doc: &'static str) -> Self {
        Self::new(name, LogicalType::Text, Read::Text(read), doc)
    }

    const fn long_text(
        name: &'static str,
        read: fn(&R) -> Option<&str>,
        doc: &'static str,
    ) -> Self {
        Self::new(name, LogicalType::LongText, Read::Text(read), doc)
    }

    const fn json(name: &'static str, read: fn(&R) -> Option<&str>, doc: &'static str) -> Self {
        Self::new(name, LogicalType::Json, Read::Text(read), doc)
    }

    const fn int32(name: &'static str, read: fn(&R) -> Option<i32>, doc: &'static str) -> Self {
        Self::new(name, LogicalType::Int32, Read::Int32(read), doc)
    }

    const fn int64(name: &'static str, read: fn(&R) -> Option<i64>, doc: &'static str) -> Self {
        Self::new(name, LogicalType::Int64, Read::Int64(read), doc)
    }

    const fn float64(name: &'static str, read: fn(&R) -> Option<f64>, doc: &'static str) -> Self {
        Self::new(name, LogicalType::Float64, Read::Float64(read), doc)
    }

    /// Flags are never missing: not known means false.
    const fn flag(name: &'static str, read: fn(&R) -> Option<bool>, doc: &'static str) -> Self {
        Self::new(name, LogicalType::Bool, Read::Bool(read), doc).not_null()
    }

    const fn timestamp(
        name: &'static str,
        read: fn(&R) -> Option<DateTime<Utc>>,
        doc: &'static str,
    ) -> Self {
        Self::new(name, LogicalType::Timestamp, Read::Timestamp(read), doc)
    }

    /// Whether the reader yields what the logical type says.
    pub fn is_consistent(&self) -> bool {
        use LogicalType as T;
        matches!(
            (&self.read, self.ty),
            (Read::Text(_), T::Text | T::LongText | T::Json)
                | (Read::LossyText(_), T::Text | T::LongText)
                | (Read::StringList(_), T::Json)
                | (Read::Int32(_), T::Int32)
                | (Read::Int64(_), T::Int64)
                | (Read::Float64(_), T::Float64)
                | (Read::Bool(_), T::Bool)
                | (Read::Timestamp(_), T::Timestamp)
                | (Read::Decimal(_), T::Decimal { .. })
                | (Read::Binary(_), T::Binary)
        )
    }
}

type Call = Column<CallRecord>;

/// The `calls` table, one row per API call, in column order.
#[rustfmt::skip]
pub static CALL_COLUMNS: &[Column<CallRecord>] = &[
    // identity
    Call::text("request_id", |r| Some(r.request_id.as_str()), "APIM request id, or the correlation key when the events carry none").not_null(),
    Call::text("correlation_id", |r| r.correlation_id.as_deref(), "Correlation id the caller or APIM set"),
    Call::text("dialect", |r| Some(r.dialect.as_str()), "Event shape the call arrived in").not_null().one_of(Dialect::NAMES),
    Call::text("eh_partition", |r| Some(r.eh_partition.as_str()), "Source partition (Event Hubs partition or file identity)").not_null(),
    Call::int64("eh_sequence_first", |r| Some(r.eh_sequence_first), "Lowest sequence number of the call's events").not_null(),
    Call::int64("eh_sequence_last", |r| Some(r.eh_sequence_last), "Highest sequence number of the call's events").not_null(),
    // time
    Call::timestamp("request_time", |r| r.request_time, "When APIM received the request"),
    Call::timestamp("response_time", |r| r.response_time, "When APIM sent the response"),
    Call::int64("duration_ms", |r| r.duration_ms, "Total time of the call in APIM, milliseconds"),
    Call::int64("backend_time_ms", |r| r.backend_time_ms, "Time spent waiting for the backend, milliseconds"),
    Call::int64("model_time_ms", |r| r.model_time_ms, "Model processing time the service reported, milliseconds"),
    // caller
    Call::text("caller_ip", |r| r.caller_ip.as_deref(), "Client IP address"),
    Call::text("subscription_id", |r| r.subscription_id.as_deref(), "APIM subscription id"),
    Call::text("subscription_name", |r| r.subscription_name.as_deref(), "APIM subscription name"),
    Call::text("subscription_key_hash", |r| r.subscription_key_hash.as_deref(), "Salted hash of a raw subscription key the event carried"),
    Call::text("product_id", |r| r.product_id.as_deref(), "APIM product id"),
    Call::text("user_id", |r| r.user_id.as_deref(), "APIM user id"),
    Call::text("app_id", |r| r.app_id.as_deref(), "Calling application's id"),
    Call::text("end_user", |r| r.end_user.as_deref(), "The request body's `user` field"),
    // route
    Call::text("service", |r| r.service.as_deref(), "APIM service name"),
    Call::text("region", |r| r.region.as_deref(), "Azure region of the gateway"),
    Call::text("api_id", |r| r.api_id.as_deref(), "APIM API id"),
    Call::text("operation_id", |r| r.operation_id.as_deref(), "APIM operation id, e.g. ChatCompletions_Create"),
    Call::text("operation", |r| Some(r.operation.as_str()), "Normalised operation").not_null().one_of(Operation::NAMES),
    Call::text("deployment", |r| r.deployment.as_deref(), "Azure OpenAI deployment name"),
    Call::text("api_version", |r| r.api_version.as_deref(), "The api-version query parameter"),
    Call::text("backend", |r| r.backend.as_deref(), "Backend the gateway forwarded to"),
    Call::text("method", |r| r.method.as_deref(), "HTTP method"),
    Call::long_text("url", |r| r.url.as_deref(), "Request URL, secrets scrubbed"),
    // model
    Call::text("model", |r| r.model.as_deref(), "Model as the response reports it (else the envelope)"),
    Call::text("model_key", |r| r.model_key.as_deref(), "Model family used for pricing and tokenizing"),
    // outcome
    Call::int32("status_code", |r| r.status_code, "HTTP status returned to the caller"),
    Call::text("finish_reason", |r| r.finish_reason.as_deref(), "Why generation stopped (first choice)"),
    Call::flag("content_filtered", |r| Some(r.content_filtered), "A content filter blocked or cut the prompt or completion"),
    Call::flag("is_stream", |r| Some(r.is_stream), "The response was streamed (SSE)"),
    Call::long_text("error", |r| r.error.as_deref(), "Error text from APIM or the service, secrets scrubbed"),
    // usage
    Call::int64("prompt_tokens", |r| r.prompt_tokens, "Input tokens"),
    Call::int64("completion_tokens", |r| r.completion_tokens, "Output tokens"),
    Call::int64("total_tokens", |r| r.total_tokens, "Input plus output tokens"),
    Call::int64("cached_tokens", |r| r.cached_tokens, "Input tokens served from the prompt cache"),
    Call::int64("reasoning_tokens", |r| r.reasoning_tokens, "Output tokens spent on reasoning"),
    Call::text("usage_source", |r| Some(r.usage_source.as_str()), "Where the token counts come from").not_null().one_of(UsageSource::NAMES),
    Call::new("cost", LogicalType::Decimal { precision: COST_PRECISION, scale: COST_SCALE }, Read::Decimal(|r| r.cost), "Price of the call from the price table"),
    Call::text("currency", |r| r.currency.as_deref(), "Currency of cost"),
    // content
    Call::json("prompt_text", |r| r.prompt_text.as_deref(), "The request's messages (or prompt / input) as JSON"),
    Call::long_text("response_text", |r| r.response_text.as_deref(), "The completion text, choices joined when n > 1"),
    Call::json("tool_calls", |r| r.tool_calls.as_deref(), "Tool calls of the completion as a JSON array"),
    Call::json("response_body", |r| r.response_body.as_deref(), "The equivalent non-streamed JSON response, with its usage"),
    Call::int64("max_tokens", |r| r.max_tokens, "The request's output token limit"),
    Call::float64("temperature", |r| r.temperature, "The request's sampling temperature"),
    Call::int64("n", |r| r.n, "Completions the request asked for"),
    // quality
    Call::flag("complete", |r| Some(r.complete), "Both halves and every chunk of the call arrived"),
    Call::flag("request_truncated", |r| Some(r.request_truncated), "The producer cut the request body"),
    Call::flag("response_truncated", |r| Some(r.response_truncated), "The producer cut the response body"),
    // A JSON array of strings: plain text keeps CSV export simple. Always
    // written, but declared nullable as the lake's files always have been.
    Call::new("warnings", LogicalType::Json, Read::StringList(|r| &r.warnings), "What was odd about the call, as a JSON array of strings"),
];

type Dead = Column<DeadLetter>;

/// The `dead_letters` table, one row per unusable event, in column order.
#[rustfmt::skip]
pub static DEAD_LETTER_COLUMNS: &[Column<DeadLetter>] = &[
    Dead::text("eh_partition", |d| Some(d.eh_partition.as_str()), "Source partition of the event").not_null(),
    Dead::int64("eh_sequence", |d| Some(d.eh_sequence), "Sequence number of the event").not_null(),
    Dead::timestamp("enqueued_time", |d| d.enqueued_time, "When Event Hubs accepted the event"),
    Dead::timestamp("received_time", |d| Some(d.received_time), "When the ledger read the event").not_null(),
    Dead::long_text("reason", |d| Some(d.reason.as_str()), "Why the event could not be used").not_null(),
    Dead::new("raw", LogicalType::Binary, Read::Binary(|d| Some(d.raw.as_slice())), "The event's bytes, secrets scrubbed").not_null(),
    // The raw bytes as text, for reading and searching.
    Dead::new("raw_text", LogicalType::LongText, Read::LossyText(|d| &d.raw), "The event's bytes as text (invalid UTF-8 replaced)").not_null(),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn check<R>(columns: &[Column<R>], sample: &R) {
        let mut names = HashSet::new();
        for c in columns {
            assert!(names.insert(c.name), "{} twice", c.name);
            assert!(
                c.is_consistent(),
                "{}: reader does not match {:?}",
                c.name,
                c.ty
            );
            assert!(!c.doc.is_empty(), "{} has no doc", c.name);
            if !c.nullable {
                let present = match c.read {
                    Read::Text(f) => f(sample).is_some(),
                    Read::Int32(f) => f(sample).is_some(),
                    Read::Int64(f) => f(sample).is_some(),
                    Read::Float64(f) => f(sample).is_some(),
                    Read::Bool(f) => f(sample).is_some(),
                    Read::Timestamp(f) => f(sample).is_some(),
                    Read::Decimal(f) => f(sample).is_some(),
                    Read::Binary(f) => f(sample).is_some(),
                    Read::LossyText(_) | Read::StringList(_) => true,
                };
                assert!(present, "{} is not nullable but reads as missing", c.name);
            }
        }
    }

    #[test]
    fn tables_are_consistent() {
        check(CALL_COLUMNS, &CallRecord::default());
        check(DEAD_LETTER_COLUMNS, &sample_dead_letter());
    }

    fn sample_dead_letter() -> DeadLetter {
        DeadLetter {
            eh_partition: "p".into(),
            eh_sequence: 1,
            enqueued_time: None,
            received_time: DateTime::<Utc>::UNIX_EPOCH,
            reason: "r".into(),
            raw: b"x".to_vec(),
        }
    }

    /// Field names in serialisation order.
    fn fields_of(value: &impl serde::Serialize) -> Vec<String> {
        match serde_json::to_value(value).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not a struct: {other}"),
        }
    }

    #[test]
    fn tables_follow_the_structs() {
        let names = |columns: &[&str]| columns.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let calls: Vec<&str> = CALL_COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names(&calls), fields_of(&CallRecord::default()));
        // `raw_text` is derived from `raw`.
        let dead: Vec<&str> = DEAD_LETTER_COLUMNS
            .iter()
            .map(|c| c.name)
            .filter(|n| *n != "raw_text")
            .collect();
        assert_eq!(names(&dead), fields_of(&sample_dead_letter()));
    }

    #[test]
    fn enumerated_columns_read_their_names() {
        let r = CallRecord {
            dialect: Dialect::AiGateway2024,
            operation: Operation::Embedding,
            usage_source: UsageSource::Estimated,
            ..Default::default()
        };
        for c in CALL_COLUMNS.iter().filter(|c| !c.values.is_empty()) {
            let Read::Text(f) = c.read else {
                panic!("{} is enumerated but not text", c.name)
            };
            let value = f(&r).unwrap();
            assert!(c.values.contains(&value), "{}: {value}", c.name);
        }
    }
}
