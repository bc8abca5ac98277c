//! The types every stage shares: raw events with their position, the
//! fragments decoders produce, and the canonical one-row-per-call record.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Gives a fieldless enum its canonical names, written once: `as_str`,
/// `from_name`, `NAMES` (in declaration order) and serde through those names.
macro_rules! canonical_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                $ty::from_name(&name).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&name, $ty::NAMES)
                })
            }
        }
    };
}

/// Where an event came from: an Event Hubs partition (or, for files, the
/// file's identity) and its sequence number within it (for files, the line).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub partition: String,
    pub sequence: i64,
}

/// One event as a source yields it.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub position: Position,
    /// Event Hubs offset, when the source has one.
    pub offset: Option<String>,
    pub enqueued_time: Option<DateTime<Utc>>,
    pub body: Vec<u8>,
}

/// The event shapes we recognise (see `event-formats.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Our own policy's shape; the default only so tests can build records.
    #[default]
    LedgerV1,
    AzureMonitor,
    EnterpriseLogging,
    EnterpriseLoggingTf,
    Chargeback,
    AiGateway2024,
}

canonical_names!(Dialect {
    LedgerV1 => "ledger/v1",
    AzureMonitor => "azure-monitor",
    EnterpriseLogging => "enterprise-logging",
    EnterpriseLoggingTf => "enterprise-logging-tf",
    Chargeback => "chargeback",
    AiGateway2024 => "ai-gateway-2024",
});

/// Which part of a call a fragment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The request half (ledger/v1, enterprise-logging, enterprise-logging-tf).
    Request,
    /// The response half.
    Response,
    /// An error half: the call failed in APIM; it stands in for the response.
    Error,
    /// A whole call in one event (chargeback, ai-gateway-2024).
    Whole,
    /// azure-monitor `GatewayLogs` record.
    GatewayLog,
    /// azure-monitor `GatewayLlmLogs` record (header or message piece).
    LlmLog,
}

/// What the text of a body part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum BodyKind {
    /// A raw HTTP body as Azure OpenAI sends or receives it: JSON, or SSE text
    /// for streamed responses.
    #[default]
    Http,
    /// A JSON array of messages (`[{"role","content"}...]`), as the
    /// azure-monitor LLM log carries `requestMessages` / `responseMessages`.
    Messages,
}

/// A piece of a body. Pieces with the same channel are concatenated in
/// `index` order; `count`, when known, says how many pieces make the whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyPart {
    pub kind: BodyKind,
    pub index: u32,
    pub count: Option<u32>,
    pub text: String,
    /// The producer cut the body (APIM's 200 KB event limit, 8 KB diagnostic
    /// log limit, the tf dialect's 1024-character request cut).
    pub truncated: bool,
}

impl BodyPart {
    pub fn whole(text: impl Into<String>) -> Self {
        BodyPart {
            kind: BodyKind::Http,
            index: 0,
            count: Some(1),
            text: text.into(),
            truncated: false,
        }
    }
}

/// Token usage, as reported or estimated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
}

impl Usage {
    pub fn is_empty(&self) -> bool {
        self.prompt_tokens.is_none()
            && self.completion_tokens.is_none()
            && self.total_tokens.is_none()
    }
}

/// Scalar facts about a call that a fragment knows. Fragments of one call
/// are merged field by field (first value seen wins, except where the
/// correlator says otherwise).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMeta {
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub request_time: Option<DateTime<Utc>>,
    pub response_time: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub backend_time_ms: Option<i64>,
    pub model_time_ms: Option<i64>,
    pub caller_ip: Option<String>,
    pub subscription_id: Option<String>,
    pub subscription_name: Option<String>,
    pub product_id: Option<String>,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    /// Salted hash of a raw subscription key some dialects carry
    /// (chargeback's `appSubscriptionKey`). The key itself is never kept.
    pub subscription_key_hash: Option<String>,
    pub service: Option<String>,
    pub region: Option<String>,
    pub api_id: Option<String>,
    /// APIM operation id, e.g. `ChatCompletions_Create`.
    pub operation_id: Option<String>,
    pub method: Option<String>,
    /// Request URL (query string kept; secrets in it are scrubbed).
    pub url: Option<String>,
    pub deployment: Option<String>,
    pub api_version: Option<String>,
    pub backend: Option<String>,
    /// Model as the envelope reports it (the response body's model wins).
    pub model: Option<String>,
    pub status_code: Option<i32>,
    /// Stream flag as the envelope reports it (the request body wins).
    pub is_stream: Option<bool>,
    /// Error text (APIM `lastError`, tf `LastErrorMessage`).
    pub error: Option<String>,
    /// Non-secret request headers, `name: value`.
    pub request_headers: Vec<String>,
    /// Usage carried by the envelope itself rather than the body.
    pub usage: Option<Usage>,
}

/// What a decoder makes of one event: a part of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub dialect: Dialect,
    /// Correlation key: fragments with the same dialect and key are one call.
    pub key: String,
    pub role: Role,
    pub meta: CallMeta,
    /// The body as the gateway logged it on the client's side (or the one
    /// copy a dialect logs).
    pub request_body: Option<BodyPart>,
    pub response_body: Option<BodyPart>,
    /// The backend's copies, when the log keeps them besides the client's
    /// (azure-monitor `backendRequestBody`, `backendResponseBody`): what
    /// the model saw and sent, which differ from the client's when a policy
    /// rewrote the body. Assembly weighs both (`assemble`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request_body: Option<BodyPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_response_body: Option<BodyPart>,
}

/// Normalised operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Operation {
    Chat,
    Completion,
    Embedding,
    Responses,
    Image,
    Audio,
    #[default]
    Other,
}

canonical_names!(Operation {
    Chat => "chat",
    Completion => "completion",
    Embedding => "embedding",
    Responses => "responses",
    Image => "image",
    Audio => "audio",
    Other => "other",
});

/// Where a record's token counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UsageSource {
    /// The service's own `usage`.
    Reported,
    /// Counted with the model's tokenizer.
    Estimated,
    /// No counts.
    #[default]
    None,
}

canonical_names!(UsageSource {
    Reported => "reported",
    Estimated => "estimated",
    None => "none",
});

/// The canonical record: one row per API call. Column names are shared by
/// the Parquet lake, the SQL tables and the queries: keep them stable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    // identity
    pub request_id: String,
    pub correlation_id: Option<String>,
    pub dialect: Dialect,
    pub eh_partition: String,
    pub eh_sequence_first: i64,
    pub eh_sequence_last: i64,
    // time
    pub request_time: Option<DateTime<Utc>>,
    pub response_time: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub backend_time_ms: Option<i64>,
    pub model_time_ms: Option<i64>,
    // caller
    pub caller_ip: Option<String>,
    pub subscription_id: Option<String>,
    pub subscription_name: Option<String>,
    pub subscription_key_hash: Option<String>,
    pub product_id: Option<String>,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub end_user: Option<String>,
    // route
    pub service: Option<String>,
    pub region: Option<String>,
    pub api_id: Option<String>,
    pub operation_id: Option<String>,
    pub operation: Operation,
    pub deployment: Option<String>,
    pub api_version: Option<String>,
    pub backend: Option<String>,
    pub method: Option<String>,
    pub url: Option<String>,
    // model
    pub model: Option<String>,
    pub model_key: Option<String>,
    // outcome
    pub status_code: Option<i32>,
    pub finish_reason: Option<String>,
    pub content_filtered: bool,
    pub is_stream: bool,
    pub error: Option<String>,
    // usage
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub usage_source: UsageSource,
    pub cost: Option<Decimal>,
    pub currency: Option<String>,
    // content
    /// The request's messages (or prompt / input) as JSON text.
    pub prompt_text: Option<String>,
    /// The assembled completion text (choices joined when n > 1).
    pub response_text: Option<String>,
    /// Tool calls of the completion as a JSON array.
    pub tool_calls: Option<String>,
    /// The response as the equivalent non-streamed JSON body, with usage
    /// (reported or estimated): what `BackendResponseBody` would have held.
    pub response_body: Option<String>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub n: Option<i64>,
    // quality
    /// Both halves (and every chunk) arrived.
    pub complete: bool,
    pub request_truncated: bool,
    pub response_truncated: bool,
    /// Human-readable notes on what was odd about this call.
    pub warnings: Vec<String>,
}

/// An event (or a part of one) that could not be used, kept with its raw
/// bytes (secrets scrubbed) and the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub eh_partition: String,
    pub eh_sequence: i64,
    pub enqueued_time: Option<DateTime<Utc>>,
    pub received_time: DateTime<Utc>,
    pub reason: String,
    pub raw: Vec<u8>,
}
