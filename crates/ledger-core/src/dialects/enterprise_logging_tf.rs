//! enterprise-logging-tf (the Terraform variant of
//! openai-python-enterprise-logging): `request` (partition 0), `response`
//! and `error` (partition 1) events joined by `RequestId`.

use crate::error::DecodeError;
use crate::model::{BodyPart, CallMeta, Dialect, Fragment, Role};
use crate::time::{timespan_ms, timespan_text_ms};

use super::common::{apply_url, body_text, header_value, request_headers, whole_body};
use super::fields::Obj;
use super::{Completeness, Ctx, Decoded, DialectSpec, invalid, missing};
use crate::operations::operation_id;

const D: Dialect = Dialect::EnterpriseLoggingTf;

pub(super) const SPEC: DialectSpec = DialectSpec {
    dialect: D,
    detect,
    decode: |o, ctx| decode(o, ctx).map(Decoded::one),
    completeness: Completeness::Halves,
};

/// `Type` request / response / error, with a `RequestId`.
fn detect(o: Obj<'_>) -> bool {
    let tf_type = o.text("Type").is_some_and(|t| {
        ["request", "response", "error"]
            .iter()
            .any(|k| t.eq_ignore_ascii_case(k))
    });
    tf_type && o.has("RequestId")
}

/// The policy cuts the request event's `RequestBody` to this many
/// characters (.NET `Substring`, so UTF-16 code units).
const REQUEST_BODY_CUT: usize = 1024;

/// The response event's `ResponseBody` for a streamed call.
const STREAMING: &str = "streaming";

fn decode(o: Obj<'_>, ctx: &Ctx<'_>) -> Result<Fragment, DecodeError> {
    let key = o.text("RequestId").ok_or_else(|| missing(D, "RequestId"))?;
    let role = match o.text("Type").map(|t| t.to_ascii_lowercase()).as_deref() {
        Some("request") => Role::Request,
        Some("response") => Role::Response,
        Some("error") => Role::Error,
        _ => return Err(invalid(D, "Type", "expected request, response or error")),
    };

    let mut meta = CallMeta {
        request_id: Some(key.clone()),
        service: o.text("ServiceName"),
        caller_ip: o.text("RequestIp"),
        method: o.text("RequestMethod"),
        api_id: o.text("ApiName"),
        status_code: o
            .int("ResponseStatusCode")
            .and_then(|s| i32::try_from(s).ok()),
        duration_ms: o.get("Duration").and_then(timespan_ms),
        error: o.text("LastErrorMessage"),
        ..CallMeta::default()
    };
    let time = o.time("EventTime");
    if role == Role::Request {
        meta.request_time = time;
    } else {
        meta.response_time = time;
    }

    let path = o.text("RequestPath");
    if let Some(path) = &path {
        let url = match o.text("RequestQuery") {
            Some(q) if q.starts_with('?') => format!("{path}{q}"),
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        apply_url(&mut meta, &url);
    }
    // Error events carry no path: the operation's URL template still names it.
    let route = path.or_else(|| o.text("OperationUrl"));
    meta.operation_id = operation_id(o.text("OperationName").as_deref(), route.as_deref(), None);

    if let Some(headers) = o.get("Headers") {
        if role == Role::Request {
            meta.request_headers = request_headers(headers);
        } else {
            // The response event logs the response's headers.
            meta.model_time_ms =
                header_value(headers, "openai-processing-ms").and_then(|v| timespan_text_ms(&v));
            meta.region = header_value(headers, "x-ms-region");
        }
    }

    let mut request_body = None;
    let mut response_body = None;
    match role {
        Role::Request => {
            request_body = o.get("RequestBody").and_then(body_text).map(|text| {
                let cut = text.encode_utf16().count() >= REQUEST_BODY_CUT || ctx.cut("RequestBody");
                whole_body(text, cut)
            });
        }
        Role::Response => {
            // The response event repeats the request body in full.
            request_body = o
                .get("RequestBody")
                .and_then(body_text)
                .map(|text| whole_body(text, ctx.cut("RequestBody")));
            response_body = response(o, ctx, &mut meta);
        }
        _ => {}
    }
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

/// `ResponseBody` is `streaming` for streamed calls (passed on as is: the
/// body parser knows it). Some copies of the policy write `not-streaming`
/// there and the body itself in `ResponseBodyPayload`.
fn response(o: Obj<'_>, ctx: &Ctx<'_>, meta: &mut CallMeta) -> Option<BodyPart> {
    let body = o.get("ResponseBody").and_then(body_text);
    match body.as_deref().map(str::trim) {
        Some(b) if b.eq_ignore_ascii_case(STREAMING) => {
            meta.is_stream = Some(true);
            Some(whole_body(STREAMING.to_string(), false))
        }
        Some(b) if b.eq_ignore_ascii_case("not-streaming") => {
            meta.is_stream = Some(false);
            o.get("ResponseBodyPayload")
                .and_then(body_text)
                .map(|text| whole_body(text, ctx.cut("ResponseBodyPayload")))
        }
        Some(_) => body.map(|text| whole_body(text, ctx.cut("ResponseBody"))),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_fragment, one};
    use crate::model::*;
    use crate::redact;
    use chrono::{TimeZone, Utc};

    const REQUEST: &str = r#"{
  "Type": "request",
  "Headers": [
    "Accept: application/json",
    "Host: contoso-apim.azure-api.net",
    "User-Agent: AzureOpenAI/Python 1.30.1",
    "Content-Type: application/json",
    "api-key: 7f3c0d5e9a1b4c2d8e6f0a1b2c3d4e5f",
    "authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret",
    "ocp-apim-subscription-key: 0123456789abcdef0123456789abcdef",
    "X-Forwarded-For: 198.51.100.23, 10.0.0.4"
  ],
  "EventTime": "5/24/2024 2:45:56 PM",
  "ServiceName": "contoso-apim.azure-api.net",
  "requestIdHeader": "",
  "RequestId": "8a1f2e3d-4c5b-4a69-8d7e-6f5a4b3c2d1e",
  "RequestIp": "198.51.100.23",
  "RequestMethod": "POST",
  "RequestPath": "/openai/deployments/gpt-4/chat/completions",
  "RequestQuery": "?api-version=2024-02-01&api-key=7f3c0d5e9a1b4c2d8e6f0a1b2c3d4e5f",
  "RequestBody": "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a joke\"}],\"max_tokens\":100}",
  "OperationName": "Creates a completion for the chat message",
  "OperationMethod": "POST",
  "OperationUrl": "/deployments/{deployment-id}/chat/completions",
  "ApiName": "OpenAI API",
  "ApiPath": "openai"
}"#;

    const RESPONSE: &str = r#"{
  "Type": "response",
  "Headers": [
    "Content-Type: application/json",
    "openai-processing-ms: 1012.4712",
    "x-ms-region: Sweden Central",
    "apim-request-id: 3b7e6d1c-0000-4000-8000-000000000000"
  ],
  "EventTime": "5/24/2024 2:45:58 PM",
  "ServiceName": "contoso-apim.azure-api.net",
  "requestIdHeader": "",
  "RequestId": "8a1f2e3d-4c5b-4a69-8d7e-6f5a4b3c2d1e",
  "RequestIp": "198.51.100.23",
  "RequestMethod": "POST",
  "ResponseStatusCode": 200,
  "ResponseStatusReason": "OK",
  "ResponseBody": "{\"id\":\"chatcmpl-9SZ\",\"object\":\"chat.completion\",\"model\":\"gpt-4\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Why did the chicken cross the road?\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":8,\"total_tokens\":20}}",
  "OperationName": "Creates a completion for the chat message",
  "OperationMethod": "POST",
  "OperationUrl": "/deployments/{deployment-id}/chat/completions",
  "ApiName": "OpenAI API",
  "ApiPath": "openai",
  "RequestBody": "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a joke\"}],\"max_tokens\":100}",
  "Duration": "00:00:01.2345678"
}"#;

    #[test]
    fn request_event() {
        let f = one(REQUEST);
        assert_fragment(
            &f,
            Dialect::EnterpriseLoggingTf,
            "8a1f2e3d-4c5b-4a69-8d7e-6f5a4b3c2d1e",
            Role::Request,
        );
        let m = &f.meta;
        assert_eq!(
            m.request_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap())
        );
        assert_eq!(m.service.as_deref(), Some("contoso-apim.azure-api.net"));
        assert_eq!(m.caller_ip.as_deref(), Some("198.51.100.23"));
        assert_eq!(m.method.as_deref(), Some("POST"));
        assert_eq!(m.api_id.as_deref(), Some("OpenAI API"));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(
            m.url,
            Some(redact::scrub_url(
                "/openai/deployments/gpt-4/chat/completions?api-version=2024-02-01&api-key=7f3c0d5e9a1b4c2d8e6f0a1b2c3d4e5f"
            ))
        );
        assert!(
            !m.url.as_deref().unwrap_or_default().contains("7f3c0d5e"),
            "key left in the URL"
        );
        assert_eq!(m.deployment.as_deref(), Some("gpt-4"));
        assert_eq!(m.api_version.as_deref(), Some("2024-02-01"));
        assert_eq!(
            m.request_headers,
            vec![
                "Accept: application/json",
                "Host: contoso-apim.azure-api.net",
                "User-Agent: AzureOpenAI/Python 1.30.1",
                "Content-Type: application/json",
                "X-Forwarded-For: 198.51.100.23, 10.0.0.4",
            ]
        );
        assert_eq!(
            (m.status_code, m.duration_ms, m.error.as_deref()),
            (None, None, None)
        );
        let body = f.request_body.as_ref().expect("request body");
        assert_eq!(
            body.text,
            r#"{"messages":[{"role":"user","content":"Tell me a joke"}],"max_tokens":100}"#
        );
        assert!(!body.truncated);
        assert_eq!(f.response_body, None);
        let all = serde_json::to_string(&f.meta.request_headers).unwrap();
        assert!(
            !all.contains("eyJ0eXAi")
                && !all.contains("0123456789abcdef")
                && !all.contains("7f3c0d5e")
        );
    }

    #[test]
    fn response_event() {
        let f = one(RESPONSE);
        assert_eq!(
            (f.key.as_str(), f.role),
            ("8a1f2e3d-4c5b-4a69-8d7e-6f5a4b3c2d1e", Role::Response)
        );
        let m = &f.meta;
        assert_eq!(
            m.response_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 58).unwrap())
        );
        assert_eq!(m.request_time, None);
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.duration_ms, Some(1235));
        assert_eq!(m.model_time_ms, Some(1012));
        assert_eq!(m.region.as_deref(), Some("Sweden Central"));
        // Response headers are not request headers.
        assert!(m.request_headers.is_empty());
        // No RequestPath in the response event: the template names the operation.
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.is_stream, None);
        let req = f.request_body.expect("request body");
        assert!(!req.truncated);
        assert!(req.text.contains("Tell me a joke"));
        let resp = f.response_body.expect("response body");
        assert!(resp.text.starts_with(r#"{"id":"chatcmpl-9SZ""#));
        assert!(!resp.truncated);
    }

    #[test]
    fn streamed_response_passes_the_marker_on() {
        let event = r#"{"Type":"response","RequestId":"r-stream","EventTime":"5/24/2024 2:45:58 PM","ResponseStatusCode":200,
          "ResponseBody":"streaming","RequestBody":"{\"stream\":true,\"messages\":[]}","Duration":"00:00:04.5000000"}"#;
        let f = one(event);
        assert_eq!(f.meta.is_stream, Some(true));
        assert_eq!(f.meta.duration_ms, Some(4500));
        assert_eq!(f.response_body, Some(BodyPart::whole("streaming")));
    }

    #[test]
    fn payload_variant_of_the_policy() {
        let event = r#"{"Type":"response","RequestId":"r-p","ResponseBody":"not-streaming","ResponseBodyPayload":"{\"object\":\"list\"}"}"#;
        let f = one(event);
        assert_eq!(f.meta.is_stream, Some(false));
        assert_eq!(
            f.response_body,
            Some(BodyPart::whole(r#"{"object":"list"}"#))
        );
    }

    #[test]
    fn long_request_body_is_flagged_cut() {
        let body = format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{}",
            "x".repeat(1100)
        );
        let cut: String = body.chars().take(1024).collect();
        let event =
            serde_json::json!({"Type": "request", "RequestId": "r-long", "RequestBody": cut})
                .to_string();
        let f = one(&event);
        let b = f.request_body.unwrap();
        assert!(b.truncated);
        assert_eq!(b.text.chars().count(), 1024);
    }

    #[test]
    fn error_event() {
        let event = r#"{"Type":"error","EventTime":"5/24/2024 2:46:10 PM","ServiceName":"contoso-apim.azure-api.net",
          "requestIdHeader":"","RequestId":"r-err","RequestIp":"198.51.100.23",
          "LastErrorMessage":"Backend service didn't respond within the timeout.",
          "OperationName":"Creates a completion for the provided prompt, parameters and chosen model.",
          "OperationMethod":"POST","OperationUrl":"/deployments/{deployment-id}/completions","ApiName":"OpenAI API","ApiPath":"openai",
          "Duration":"00:02:00.0010000"}"#;
        let f = one(event);
        assert_eq!(f.role, Role::Error);
        let m = &f.meta;
        assert_eq!(
            m.response_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 46, 10).unwrap())
        );
        assert_eq!(
            m.error.as_deref(),
            Some("Backend service didn't respond within the timeout.")
        );
        assert_eq!(m.operation_id.as_deref(), Some("Completions_Create"));
        assert_eq!(m.duration_ms, Some(120_001));
        assert_eq!(m.caller_ip.as_deref(), Some("198.51.100.23"));
        assert_eq!((f.request_body, f.response_body), (None, None));
    }
}
