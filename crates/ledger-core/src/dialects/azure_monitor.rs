//! azure-monitor: APIM resource logs streamed to Event Hubs by diagnostic
//! settings, `{"records": [...]}`. `GatewayLogs` records describe a call,
//! `GatewayLlmLogs` records its model use and messages (a header row plus
//! message rows); both are keyed by the record's `correlationId`.

use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::model::{BodyKind, BodyPart, CallMeta, Dialect, Fragment, Role};

use super::common::{
    api_version_from_url, apply_url, body_text, deployment_from_url, error_text, header_value,
    join_error, request_headers, response_object, usage_of, whole_body,
};
use super::fields::Obj;
use super::{Completeness, Ctx, Decoded, DialectSpec, Rejected, invalid, missing};
use crate::coerce;
use crate::operations::operation_id;

const D: Dialect = Dialect::AzureMonitor;

pub(super) const SPEC: DialectSpec = DialectSpec {
    dialect: D,
    detect,
    decode,
    completeness: Completeness::GatewayLogWhenFlushed,
};

/// A `records` array (a diagnostic-settings export).
fn detect(o: Obj<'_>) -> bool {
    o.get("records").is_some_and(Value::is_array)
}

/// GatewayLogs keep at most this many bytes of each body.
const BODY_LOG_LIMIT: usize = 8192;

/// Decodes every record; a record that cannot be used is returned as
/// rejected (it becomes a dead letter) while the others go on.
fn decode(o: Obj<'_>, _ctx: &Ctx<'_>) -> Result<Decoded, DecodeError> {
    let records = o
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| missing(D, "records"))?;
    let mut out = Vec::new();
    let mut rejected = Vec::new();
    let reject = |reason: DecodeError, record: &Value| Rejected {
        reason,
        raw: serde_json::to_vec(record).unwrap_or_default(),
    };
    for record in records {
        let Some(m) = record.as_object() else {
            rejected.push(reject(
                invalid(D, "records", "a record is not a JSON object"),
                record,
            ));
            continue;
        };
        let parsed;
        let rec = Rec {
            top: Obj(m),
            props: match Obj(m).get("properties") {
                Some(Value::Object(p)) => Some(Obj(p)),
                // Some pipelines stringify `properties`.
                Some(Value::String(s)) => {
                    parsed = serde_json::from_str::<Map<String, Value>>(s).ok();
                    parsed.as_ref().map(Obj)
                }
                _ => None,
            },
        };
        let category = rec
            .top
            .text("category")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let decoded = match category.as_str() {
            "gatewaylogs" => gateway_log(&rec),
            "gatewayllmlogs" => llm_log(&rec),
            // Other categories (WebSocket, MCP, portal audit) are not calls.
            _ => continue,
        };
        match decoded {
            Ok(f) => out.push(f),
            Err(e) => rejected.push(reject(e, record)),
        }
    }
    if out.is_empty() {
        // Nothing usable: the whole event is the dead letter.
        return Err(rejected.into_iter().next().map_or_else(
            || invalid(D, "records", "no GatewayLogs or GatewayLlmLogs record"),
            |r| r.reason,
        ));
    }
    Ok(Decoded {
        fragments: out,
        rejected,
    })
}

/// A record: fields are looked up in `properties` first, then at the top
/// level (exports put `callerIpAddress`, `durationMs`, `location` there).
struct Rec<'a> {
    top: Obj<'a>,
    props: Option<Obj<'a>>,
}

impl<'a> Rec<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.props
            .and_then(|p| p.get(name))
            .or_else(|| self.top.get(name))
    }
    fn get_any(&self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| self.get(n))
    }
    fn text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(super::fields::scalar_text)
    }
    fn text_any(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.text(n))
    }
    fn int_any(&self, names: &[&str]) -> Option<i64> {
        names.iter().find_map(|n| self.get(n).and_then(coerce::int))
    }
    /// Only in `properties` (the top level's `operationName` is the log's).
    fn prop_text(&self, name: &str) -> Option<String> {
        self.props.and_then(|p| p.text(name))
    }
    /// `request.body`-style nested fields of older exports.
    fn nested(&self, outer: &str, inner: &str) -> Option<&'a Value> {
        self.get(outer)
            .and_then(Value::as_object)
            .and_then(|m| Obj(m).get(inner))
    }
}

fn correlation_id(rec: &Rec<'_>) -> Option<String> {
    rec.top
        .text("correlationId")
        .or_else(|| rec.prop_text("correlationId"))
}

fn gateway_log(rec: &Rec<'_>) -> Result<Fragment, DecodeError> {
    let key = correlation_id(rec).ok_or_else(|| missing(D, "correlationId"))?;
    let mut meta = CallMeta {
        request_id: Some(key.clone()),
        correlation_id: Some(key.clone()),
        request_time: rec
            .get_any(&["time", "TimeGenerated"])
            .and_then(crate::time::time_value),
        method: rec.text("method"),
        status_code: rec
            .int_any(&["responseCode", "backendResponseCode"])
            .and_then(|s| i32::try_from(s).ok()),
        caller_ip: rec.text("callerIpAddress"),
        api_id: rec.text("apiId"),
        product_id: rec.text("productId"),
        user_id: rec.text("userId"),
        subscription_id: rec.text("apimSubscriptionId"),
        backend: rec.text("backendId"),
        region: rec.text_any(&["region", "location"]),
        duration_ms: rec.int_any(&["totalTime", "durationMs"]),
        backend_time_ms: rec.int_any(&["backendTime"]),
        service: rec.text("resourceId").and_then(|r| service_name(&r)),
        ..CallMeta::default()
    };
    let url = rec.text("url");
    if let Some(url) = &url {
        apply_url(&mut meta, url);
    }
    // The backend URL still names the deployment when the frontend's
    // path was rewritten.
    if let Some(b) = rec.text("backendUrl") {
        meta.deployment = meta.deployment.or_else(|| deployment_from_url(&b));
        meta.api_version = meta.api_version.or_else(|| api_version_from_url(&b));
    }
    if let Some(h) = rec
        .get("requestHeaders")
        .or_else(|| rec.nested("request", "headers"))
    {
        meta.request_headers = request_headers(h);
    }
    meta.model_time_ms = ["backendResponseHeaders", "responseHeaders"]
        .iter()
        .filter_map(|n| rec.get(n))
        .find_map(|h| header_value(h, "openai-processing-ms"))
        .and_then(|v| crate::time::timespan_text_ms(&v));
    meta.error = rec.get("lastError").and_then(error_text).or_else(|| {
        join_error(
            rec.text("lastErrorSource"),
            rec.text("lastErrorReason"),
            rec.text("lastErrorMessage"),
        )
    });

    // The client's and the backend's copies both go to assembly, which
    // prefers the backend's (what the model saw) when a policy rewrote one.
    let body = |flat: &str, outer: &str| {
        rec.get(flat)
            .or_else(|| rec.nested(outer, "body"))
            .and_then(body_text)
            .map(logged_body)
    };
    let request_body = body("requestBody", "request");
    let backend_request_body = body("backendRequestBody", "backendRequest");
    let response_body = body("responseBody", "response");
    let backend_response_body = body("backendResponseBody", "backendResponse");
    let object = backend_response_body
        .as_ref()
        .or(response_body.as_ref())
        .and_then(|b| response_object(&b.text));
    meta.operation_id = operation_id(
        rec.prop_text("operationId").as_deref(),
        url.as_deref(),
        object.as_deref(),
    );

    Ok(Fragment {
        dialect: D,
        key,
        role: Role::GatewayLog,
        meta,
        request_body,
        response_body,
        backend_request_body,
        backend_response_body,
    })
}

/// A body as the gateway logged it: anything at the limit was cut.
fn logged_body(text: String) -> BodyPart {
    let cut = text.len() >= BODY_LOG_LIMIT;
    whole_body(text, cut)
}

/// `…/providers/Microsoft.ApiManagement/service/{name}` → `{name}`.
fn service_name(resource_id: &str) -> Option<String> {
    let mut segs = resource_id.split('/');
    segs.find(|s| s.eq_ignore_ascii_case("service"))?;
    // Exports upper-case resource ids; service names are case-insensitive.
    segs.next()
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
}

fn llm_log(rec: &Rec<'_>) -> Result<Fragment, DecodeError> {
    let correlation = correlation_id(rec);
    let key = correlation
        .clone()
        .or_else(|| rec.prop_text("requestId"))
        .ok_or_else(|| missing(D, "correlationId"))?;
    let sequence = match rec.int_any(&["sequenceNumber"]) {
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| *n < crate::limits::MAX_CHUNKS)
            .ok_or_else(|| invalid(D, "sequenceNumber", "past the limit of chunks per body"))?,
        None => 0,
    };
    let piece = |name: &str| {
        rec.get(name).and_then(body_text).map(|text| BodyPart {
            kind: BodyKind::Messages,
            index: sequence,
            count: None,
            text,
            truncated: false,
        })
    };
    let request_body = piece("requestMessages");
    let response_body = piece("responseMessages");

    // Token counts belong to the header row; message rows may repeat them
    // as zeros, which must not win the merge.
    let usage = usage_of(
        rec.int_any(&["promptTokens"]),
        rec.int_any(&["completionTokens"]),
        rec.int_any(&["totalTokens"]),
    )
    .filter(|u| {
        let message_row = request_body.is_some() || response_body.is_some();
        !message_row
            || [u.prompt_tokens, u.completion_tokens, u.total_tokens]
                .iter()
                .any(|t| t.is_some_and(|t| t != 0))
    });

    let meta = CallMeta {
        request_id: Some(key.clone()),
        correlation_id: correlation,
        request_time: rec
            .get_any(&["time", "TimeGenerated"])
            .and_then(crate::time::time_value),
        deployment: rec.text("deploymentName"),
        model: rec.text("modelName"),
        api_version: rec.text("apiVersion"),
        region: rec.text_any(&["region", "location"]),
        operation_id: operation_id(rec.prop_text("operationName").as_deref(), None, None),
        is_stream: rec.get("isStreamCompletion").and_then(coerce::bool),
        usage,
        ..CallMeta::default()
    };
    Ok(Fragment {
        dialect: D,
        key,
        role: Role::LlmLog,
        meta,
        request_body,
        response_body,
        backend_request_body: None,
        backend_response_body: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::tests::assert_fragment;
    use crate::model::*;
    use crate::redact;
    use chrono::{TimeZone, Utc};

    const GATEWAY: &str = r#"{"records": [
  {
    "DeploymentVersion": "0.47.20161.0",
    "Level": 4,
    "isRequestSuccess": true,
    "time": "2024-05-24T14:45:56.1234567Z",
    "operationName": "Microsoft.ApiManagement/GatewayLogs",
    "category": "GatewayLogs",
    "durationMs": 1880,
    "callerIpAddress": "203.0.113.7",
    "correlationId": "a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c",
    "location": "West Europe",
    "properties": {
      "method": "POST",
      "url": "https://contoso-apim.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
      "backendResponseCode": 200,
      "ResponseCode": 200,
      "responseSize": 1211,
      "cache": "none",
      "BackendTime": 1702,
      "requestSize": 512,
      "apiId": "azure-openai",
      "operationId": "ChatCompletions_Create",
      "apimSubscriptionId": "finance-team",
      "productId": "aoai-standard",
      "userId": "1",
      "backendId": "aoai-swc",
      "clientTime": 3,
      "totalTime": 1880,
      "backendMethod": "POST",
      "backendUrl": "https://aoai-swc.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
      "requestHeaders": {"Content-Type": "application/json", "api-key": "0123456789abcdef", "Authorization": "Bearer eyJhbGciOi"},
      "backendResponseHeaders": {"openai-processing-ms": "1650.2281", "x-ms-region": "Sweden Central"},
      "requestBody": "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
      "backendResponseBody": "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello!\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2,\"total_tokens\":10}}",
      "responseBody": "{\"ignored\":true}"
    },
    "resourceId": "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AI/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/CONTOSO-APIM"
  },
  {
    "time": "2024-05-24T14:45:57Z",
    "category": "WebSocketConnectionLogs",
    "correlationId": "x",
    "properties": {}
  }
]}"#;

    #[test]
    fn gateway_log_record() {
        let frags = decode(GATEWAY.as_bytes()).expect("decodes");
        assert_eq!(frags.len(), 1, "other categories are skipped");
        let f = &frags[0];
        assert_fragment(
            f,
            Dialect::AzureMonitor,
            "a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c",
            Role::GatewayLog,
        );
        let m = &f.meta;
        assert_eq!(
            m.correlation_id.as_deref(),
            Some("a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c")
        );
        assert_eq!(
            m.request_time,
            Some(
                Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap()
                    + chrono::Duration::nanoseconds(123_456_700)
            )
        );
        assert_eq!(m.method.as_deref(), Some("POST"));
        assert_eq!(
            m.url,
            Some(redact::scrub_url(
                "https://contoso-apim.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
            ))
        );
        assert_eq!(m.deployment.as_deref(), Some("gpt-4o"));
        assert_eq!(m.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.caller_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(m.api_id.as_deref(), Some("azure-openai"));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.product_id.as_deref(), Some("aoai-standard"));
        assert_eq!(m.user_id.as_deref(), Some("1"));
        assert_eq!(m.subscription_id.as_deref(), Some("finance-team"));
        assert_eq!(m.backend.as_deref(), Some("aoai-swc"));
        assert_eq!(m.region.as_deref(), Some("West Europe"));
        assert_eq!(m.duration_ms, Some(1880));
        assert_eq!(m.backend_time_ms, Some(1702));
        assert_eq!(m.model_time_ms, Some(1650));
        assert_eq!(m.service.as_deref(), Some("contoso-apim"));
        assert_eq!(m.request_headers, vec!["Content-Type: application/json"]);
        assert_eq!(m.error, None);
        let req = f.request_body.as_ref().expect("request body");
        assert_eq!(req.text, r#"{"messages":[{"role":"user","content":"Hi"}]}"#);
        assert!(!req.truncated);
        // Both sides' copies are kept; assembly prefers the backend's.
        let resp = f
            .backend_response_body
            .as_ref()
            .expect("backend response body");
        assert!(resp.text.contains("chatcmpl-1") && !resp.truncated);
        let client = f.response_body.as_ref().expect("client response body");
        assert_eq!(client.text, r#"{"ignored":true}"#);
        let all = serde_json::to_string(f).unwrap();
        assert!(!all.contains("0123456789abcdef") && !all.contains("eyJhbGciOi"));
    }

    #[test]
    fn failed_call_with_flattened_last_error_and_cut_body() {
        let big = format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{}",
            "y".repeat(8200)
        );
        let body: String = big.chars().take(8192).collect();
        let event = serde_json::json!({"records": [{
            "time": "5/24/2024 2:45:56 PM", "category": "gatewaylogs", "CorrelationId": "c-2",
            "properties": {"Method": "POST", "Url": "https://contoso-apim.azure-api.net/openai/deployments/gpt-4o/embeddings?api-version=2024-02-01",
                "ResponseCode": "429", "CallerIpAddress": "198.51.100.9", "TotalTime": "12",
                "LastErrorSource": "rate-limit-by-key", "LastErrorReason": "RateLimitExceeded", "LastErrorMessage": "Rate limit is exceeded.",
                "RequestBody": body}
        }]})
        .to_string();
        let frags = decode(event.as_bytes()).expect("decodes");
        let f = &frags[0];
        assert_eq!(f.key, "c-2");
        let m = &f.meta;
        assert_eq!(
            m.request_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap())
        );
        assert_eq!(m.status_code, Some(429));
        assert_eq!(m.caller_ip.as_deref(), Some("198.51.100.9"));
        assert_eq!(m.duration_ms, Some(12));
        assert_eq!(m.operation_id.as_deref(), Some("embeddings_create"));
        assert_eq!(
            m.error.as_deref(),
            Some("rate-limit-by-key: RateLimitExceeded: Rate limit is exceeded.")
        );
        assert!(f.request_body.as_ref().unwrap().truncated);
        assert_eq!(f.response_body, None);
    }

    const LLM: &str = r#"{"records": [
  {"time": "2024-05-24T14:45:56Z", "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/CONTOSO-APIM",
   "category": "GatewayLlmLogs", "operationName": "Microsoft.ApiManagement/GatewayLlmLogs", "correlationId": "a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c",
   "properties": {"RequestId": "chatcmpl-1", "OperationName": "ChatCompletions_Create", "ApiVersion": "2024-10-21", "DeploymentName": "gpt-4o",
     "ModelName": "gpt-4o-2024-08-06", "Region": "Sweden Central", "PromptTokens": 8, "CompletionTokens": 2, "TotalTokens": 10,
     "IsStreamCompletion": false, "SequenceNumber": 0}},
  {"time": "2024-05-24T14:45:56Z", "category": "GatewayLlmLogs", "correlationId": "a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c",
   "properties": {"requestId": "chatcmpl-1", "promptTokens": 0, "completionTokens": 0, "totalTokens": 0, "sequenceNumber": 0,
     "requestMessages": "[{\"role\":\"user\",\"content\":\"Hi\"}]",
     "responseMessages": [{"role": "assistant", "content": "Hello!"}]}},
  {"time": "2024-05-24T14:45:56Z", "category": "GatewayLlmLogs", "properties": {"requestId": "chatcmpl-2", "sequenceNumber": "1",
     "responseMessages": "[{\"role\":\"assistant\",\"content\":\"…"}}
]}"#;

    #[test]
    fn llm_log_header_and_message_rows() {
        let frags = decode(LLM.as_bytes()).expect("decodes");
        assert_eq!(frags.len(), 3);
        let (header, messages, orphan) = (&frags[0], &frags[1], &frags[2]);
        assert!(
            frags
                .iter()
                .all(|f| f.role == Role::LlmLog && f.dialect == Dialect::AzureMonitor)
        );

        assert_eq!(header.key, "a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c");
        let m = &header.meta;
        assert_eq!(
            m.correlation_id.as_deref(),
            Some("a3c9e7f1-5b2d-4e8a-9c6f-1d2e3f4a5b6c")
        );
        assert_eq!(
            m.request_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap())
        );
        assert_eq!(m.deployment.as_deref(), Some("gpt-4o"));
        assert_eq!(m.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(m.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(m.region.as_deref(), Some("Sweden Central"));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.is_stream, Some(false));
        assert_eq!(
            m.usage,
            Some(Usage {
                prompt_tokens: Some(8),
                completion_tokens: Some(2),
                total_tokens: Some(10),
                ..Usage::default()
            })
        );
        assert_eq!(
            (header.request_body.as_ref(), header.response_body.as_ref()),
            (None, None)
        );

        assert_eq!(messages.key, header.key);
        assert_eq!(
            messages.meta.usage, None,
            "zeros on a message row are not usage"
        );
        assert_eq!(messages.meta.operation_id, None);
        let rq = messages.request_body.as_ref().unwrap();
        assert_eq!(
            (rq.kind, rq.index, rq.count, rq.truncated),
            (BodyKind::Messages, 0, None, false)
        );
        assert_eq!(rq.text, r#"[{"role":"user","content":"Hi"}]"#);
        let rs = messages.response_body.as_ref().unwrap();
        assert_eq!(rs.text, r#"[{"role":"assistant","content":"Hello!"}]"#);

        // No correlationId: the LLM request id keys it.
        assert_eq!(orphan.key, "chatcmpl-2");
        assert_eq!(orphan.meta.correlation_id, None);
        assert_eq!(orphan.response_body.as_ref().unwrap().index, 1);
    }

    #[test]
    fn an_unusable_record_is_rejected_and_the_others_kept() {
        let body = br#"{"records":[
            {"category":"GatewayLogs","correlationId":"c-1","time":"2026-11-20T10:00:00Z","properties":{"responseCode":200}},
            {"category":"GatewayLogs","properties":{"url":"x","requestHeaders":{"api-key":"k-SECRET"}}},
            "not a record"
        ]}"#;
        let d = super::super::decode_event(body).unwrap();
        assert_eq!(d.fragments.len(), 1);
        assert_eq!(d.fragments[0].key, "c-1");
        assert_eq!(d.rejected.len(), 2);
        assert!(matches!(
            d.rejected[0].reason,
            crate::DecodeError::MissingField {
                field: "correlationId",
                ..
            }
        ));
        // The raw part is the record itself (secrets are scrubbed when it is kept).
        assert!(String::from_utf8_lossy(&d.rejected[0].raw).contains("\"url\":\"x\""));
    }

    #[test]
    fn records_with_nothing_usable_are_an_error() {
        let e = decode(br#"{"records":[{"category":"WebSocketConnectionLogs","properties":{}}]}"#)
            .unwrap_err();
        assert!(matches!(
            e,
            crate::DecodeError::InvalidField {
                dialect: "azure-monitor",
                field: "records",
                ..
            }
        ));
        let e = decode(br#"{"records":[]}"#).unwrap_err();
        assert!(matches!(
            e,
            crate::DecodeError::InvalidField {
                field: "records",
                ..
            }
        ));
        let e = decode(br#"{"records":[{"category":"GatewayLogs","properties":{"url":"x"}}]}"#)
            .unwrap_err();
        assert_eq!(
            e,
            crate::DecodeError::MissingField {
                dialect: "azure-monitor",
                field: "correlationId"
            }
        );
        // One bad record does not sink the good ones.
        let ok = decode(
            br#"{"records":[{"category":"GatewayLogs","properties":{}},{"category":"GatewayLogs","correlationId":"c","properties":{"responseCode":200}}]}"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn stringified_properties() {
        let event = r#"{"records":[{"category":"GatewayLogs","correlationId":"c-s","properties":"{\"responseCode\":201,\"apiId\":\"a\"}"}]}"#;
        let f = &decode(event.as_bytes()).unwrap()[0];
        assert_eq!(
            (f.meta.status_code, f.meta.api_id.as_deref()),
            (Some(201), Some("a"))
        );
    }
}
