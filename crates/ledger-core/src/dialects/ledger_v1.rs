//! `ledger/v1`: the ledger's own policy. One event per half of a call
//! (`kind` request / response / error), bodies split into `chunk`s.

use crate::error::DecodeError;
use crate::model::{BodyKind, BodyPart, CallMeta, Dialect, Fragment, Role};

use super::common::{apply_url, error_text, request_headers};
use super::fields::Obj;
use super::{Completeness, Ctx, Decoded, DialectSpec, invalid, missing};
use crate::operations::operation_id;

const D: Dialect = Dialect::LedgerV1;

pub(super) const SPEC: DialectSpec = DialectSpec {
    dialect: D,
    detect,
    decode: |o, ctx| decode(o, ctx).map(Decoded::one),
    completeness: Completeness::Halves,
};

/// `schema: "ledger/v1"`.
fn detect(o: Obj<'_>) -> bool {
    o.text("schema")
        .is_some_and(|s| s.eq_ignore_ascii_case("ledger/v1"))
}

fn decode(o: Obj<'_>, ctx: &Ctx<'_>) -> Result<Fragment, DecodeError> {
    let key = o.text("requestId").ok_or_else(|| missing(D, "requestId"))?;
    let kind = o.text("kind").ok_or_else(|| missing(D, "kind"))?;
    let role = match kind.to_ascii_lowercase().as_str() {
        "request" => Role::Request,
        "response" => Role::Response,
        "error" => Role::Error,
        _ => return Err(invalid(D, "kind", "expected request, response or error")),
    };

    let mut meta = CallMeta {
        request_id: Some(key.clone()),
        service: o.text("service"),
        region: o.text("region"),
        caller_ip: o.text("callerIp"),
        subscription_id: o.text("subscriptionId"),
        subscription_name: o.text("subscriptionName"),
        product_id: o.text("productId"),
        user_id: o.text("userId"),
        app_id: o.text("appId"),
        api_id: o.text("apiId"),
        method: o.text("method"),
        backend: o.text_any(&["backendId", "backend"]),
        model: o.text("model"),
        deployment: o.text("deployment"),
        api_version: o.text("apiVersion"),
        status_code: o.int("status").and_then(|s| i32::try_from(s).ok()),
        duration_ms: o.int("durationMs"),
        backend_time_ms: o.int("backendTimeMs"),
        model_time_ms: o.int("modelTimeMs"),
        error: o.get("lastError").and_then(error_text),
        request_headers: o.get("headers").map(request_headers).unwrap_or_default(),
        ..CallMeta::default()
    };
    let time = o.time("time");
    if role == Role::Request {
        meta.request_time = time;
    } else {
        meta.response_time = time;
    }
    let url = o.text("url");
    if let Some(url) = &url {
        apply_url(&mut meta, url);
    }
    meta.operation_id = operation_id(o.text("operationId").as_deref(), url.as_deref(), None);
    // The policy leaves out streamed bodies when SSE capture is off.
    if o.text("bodyOmitted")
        .is_some_and(|r| r.eq_ignore_ascii_case("streaming"))
    {
        meta.is_stream = Some(true);
    }

    let body = match o.get("body").and_then(super::common::body_text) {
        Some(text) => Some(chunk_part(o, text, ctx.cut("body"))?),
        None => None,
    };
    let (request_body, response_body) = match role {
        Role::Request => (body, None),
        _ => (None, body),
    };
    Ok(Fragment {
        dialect: D,
        key,
        role,
        meta,
        request_body,
        response_body,
        backend_request_body: None,
        backend_response_body: None,
    })
}

/// The body as chunk `index` of `count` (a whole body without `chunk`).
fn chunk_part(o: Obj<'_>, text: String, cut: bool) -> Result<BodyPart, DecodeError> {
    // `truncated`: the policy cut the body after its last event.
    let (index, count, policy_cut) = match o.obj("chunk") {
        Some(c) => (
            c.int("index").unwrap_or(0),
            c.int("count").unwrap_or(1),
            c.get("truncated")
                .and_then(crate::coerce::bool)
                .unwrap_or(false),
        ),
        None => (0, 1, false),
    };
    let index = u32::try_from(index).map_err(|_| invalid(D, "chunk", "index out of range"))?;
    let count = u32::try_from(count).map_err(|_| invalid(D, "chunk", "count out of range"))?;
    if count == 0 || index >= count {
        return Err(invalid(D, "chunk", "index must be below a non-zero count"));
    }
    if count > crate::limits::MAX_CHUNKS {
        return Err(invalid(
            D,
            "chunk",
            "count is past the limit of chunks per body",
        ));
    }
    Ok(BodyPart {
        kind: BodyKind::Http,
        index,
        count: Some(count),
        text,
        truncated: cut || policy_cut,
    })
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::tests::{assert_fragment, one};
    use crate::model::*;
    use crate::redact;
    use chrono::{TimeZone, Utc};

    const URL: &str = "https://contoso.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";

    #[test]
    fn request_half() {
        let event = r#"{
          "schema": "ledger/v1", "kind": "request", "requestId": "5d0c4f1e-0b7a-4c1e-9a53-2f7f1c0d9e11",
          "time": "2026-11-23T10:00:00.123Z", "service": "contoso-apim", "region": "West Europe",
          "callerIp": "203.0.113.7", "subscriptionId": "finance-team", "productId": "aoai-standard",
          "userId": "1", "apiId": "azure-openai", "operationId": "ChatCompletions_Create", "method": "POST",
          "url": "https://contoso.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
          "headers": {"content-type": "application/json", "Api-Key": "sk-never-store", "authorization": "Bearer eyJ0",
                      "Ocp-Apim-Subscription-Key": "0123456789abcdef", "x-ms-client-request-id": ["a1", "b2"]},
          "body": "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"stream\":true}",
          "chunk": {"index": 0, "count": 1}
        }"#;
        let f = one(event);
        assert_fragment(
            &f,
            Dialect::LedgerV1,
            "5d0c4f1e-0b7a-4c1e-9a53-2f7f1c0d9e11",
            Role::Request,
        );
        let m = &f.meta;
        assert_eq!(
            m.request_time,
            Some(
                Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
                    + chrono::Duration::milliseconds(123)
            )
        );
        assert_eq!(m.response_time, None);
        assert_eq!(m.service.as_deref(), Some("contoso-apim"));
        assert_eq!(m.region.as_deref(), Some("West Europe"));
        assert_eq!(m.caller_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(m.subscription_id.as_deref(), Some("finance-team"));
        assert_eq!(m.product_id.as_deref(), Some("aoai-standard"));
        assert_eq!(m.user_id.as_deref(), Some("1"));
        assert_eq!(m.api_id.as_deref(), Some("azure-openai"));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.method.as_deref(), Some("POST"));
        assert_eq!(m.url, Some(redact::scrub_url(URL)));
        assert_eq!(m.deployment.as_deref(), Some("gpt-4o"));
        assert_eq!(m.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(
            m.request_headers,
            vec![
                "content-type: application/json",
                "x-ms-client-request-id: a1, b2"
            ]
        );
        assert_eq!(m.status_code, None);
        assert_eq!(m.usage, None);
        let body = f.request_body.as_ref().expect("request body");
        assert_eq!(body.kind, BodyKind::Http);
        assert_eq!(
            (body.index, body.count, body.truncated),
            (0, Some(1), false)
        );
        assert_eq!(
            body.text,
            r#"{"messages":[{"role":"user","content":"Hello"}],"stream":true}"#
        );
        assert_eq!(f.response_body, None);
        let all = serde_json::to_string(&f).unwrap();
        for secret in ["sk-never-store", "eyJ0", "0123456789abcdef"] {
            assert!(!all.contains(secret), "secret leaked");
        }
    }

    #[test]
    fn response_half_in_chunks() {
        let event = r#"{"schema":"ledger/v1","kind":"response","requestId":"5d0c","time":"2026-11-23T10:00:02Z",
          "service":"contoso-apim","status":200,"durationMs":"1875","backendId":"aoai-swc","modelTimeMs":1650,
          "operationId":"chatcompletions_create","url":"https://contoso.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
          "body":"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n","chunk":{"index":1,"count":3}}"#;
        let f = one(event);
        assert_eq!((f.key.as_str(), f.role), ("5d0c", Role::Response));
        let m = &f.meta;
        assert_eq!(m.request_time, None);
        assert_eq!(
            m.response_time,
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 2).unwrap())
        );
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.duration_ms, Some(1875));
        assert_eq!(m.backend.as_deref(), Some("aoai-swc"));
        assert_eq!(m.model_time_ms, Some(1650));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(f.request_body, None);
        let b = f.response_body.expect("response body");
        assert_eq!((b.index, b.count, b.truncated), (1, Some(3), false));
        assert!(b.text.starts_with("data: "));
    }

    #[test]
    fn error_half_carries_last_error() {
        let event = r#"{"schema":"ledger/v1","kind":"error","requestId":"5d0c","time":"5/24/2024 2:45:56 PM","status":"500",
          "lastError":{"source":"forward-request","reason":"BackendConnectionFailure","message":"The operation was canceled."},
          "url":"https://contoso.azure-api.net/openai/deployments/gpt-35-turbo/completions?api-version=2024-02-01"}"#;
        let f = one(event);
        assert_eq!(f.role, Role::Error);
        let m = &f.meta;
        assert_eq!(
            m.response_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap())
        );
        assert_eq!(m.status_code, Some(500));
        assert_eq!(
            m.error.as_deref(),
            Some("forward-request: BackendConnectionFailure: The operation was canceled.")
        );
        // No operationId given: derived from the path.
        assert_eq!(m.operation_id.as_deref(), Some("Completions_Create"));
        assert_eq!(m.deployment.as_deref(), Some("gpt-35-turbo"));
        assert_eq!((f.request_body, f.response_body), (None, None));
    }

    #[test]
    fn body_given_as_json_and_no_chunk() {
        let f =
            one(r#"{"Schema":"LEDGER/V1","Kind":"Request","RequestId":"r1","Body":{"input":"x"}}"#);
        assert_eq!(f.request_body, Some(BodyPart::whole(r#"{"input":"x"}"#)));
    }

    #[test]
    fn bad_events_are_errors() {
        let e = decode(br#"{"schema":"ledger/v1","kind":"request"}"#).unwrap_err();
        assert_eq!(
            e,
            crate::DecodeError::MissingField {
                dialect: "ledger/v1",
                field: "requestId"
            }
        );
        let e = decode(br#"{"schema":"ledger/v1","kind":"sideways-secret","requestId":"r"}"#)
            .unwrap_err();
        assert!(!e.to_string().contains("sideways-secret"));
        assert!(decode(br#"{"schema":"ledger/v1","kind":"response","requestId":"r","body":"x","chunk":{"index":3,"count":3}}"#).is_err());
        assert!(decode(br#"{"schema":"ledger/v1","kind":"response","requestId":"r","body":"x","chunk":{"index":-1,"count":3}}"#).is_err());
    }
}
