//! ai-gateway-2024 (AI-Gateway message-storing lab, before 2025): one event
//! per answered call; `response` holds only the `choices`, so the response
//! body is rebuilt with the model and the token counts.

use crate::error::DecodeError;
use crate::model::{CallMeta, Dialect, Fragment, Role};

use crate::operations::{operation_id, synth_object};

use super::common::{
    body_text, object_from_choices, parse_json_lenient, synth_response, usage_of, whole_body,
};
use super::fields::Obj;
use super::{Completeness, Ctx, Decoded, DialectSpec, missing};

const D: Dialect = Dialect::AiGateway2024;

pub(super) const SPEC: DialectSpec = DialectSpec {
    dialect: D,
    detect,
    decode: |o, ctx| decode(o, ctx).map(Decoded::one),
    completeness: Completeness::OneEvent,
};

/// An `apimRequestId` field.
fn detect(o: Obj<'_>) -> bool {
    o.has("apimRequestId")
}

/// The policy writes these when a value is missing.
fn present(s: String) -> Option<String> {
    (!matches!(s.as_str(), "N/A" | "NA")).then_some(s)
}

fn decode(o: Obj<'_>, ctx: &Ctx<'_>) -> Result<Fragment, DecodeError> {
    let key = o
        .text("apimRequestId")
        .and_then(present)
        .or_else(|| o.text("id").and_then(present))
        .ok_or_else(|| missing(D, "apimRequestId"))?;
    let model = o.text("model").and_then(present);
    let given_op = o.text("operationName").and_then(present);

    // Missing usage is written as "0": zero tokens in all three means none.
    let usage = usage_of(
        o.int("promptTokens"),
        o.int_any(&["responseTokens", "completionTokens"]),
        o.int("totalTokens"),
    )
    .filter(|u| {
        [u.prompt_tokens, u.completion_tokens, u.total_tokens]
            .iter()
            .any(|t| t.is_some_and(|t| t != 0))
    });

    let request_body = o
        .get("request")
        .and_then(body_text)
        .map(|t| whole_body(t, ctx.cut("request")));

    let choices = o
        .raw_str("response")
        .filter(|r| !matches!(r.trim(), "N/A" | "NA"));
    let parsed = choices.map(|c| parse_json_lenient(c).ok_or(c));
    let object = match &parsed {
        Some(Ok((c, _))) => object_from_choices(c).or(Some("chat.completion")),
        _ => synth_object(given_op.as_deref()),
    };
    let response_body = match (parsed, object) {
        (Some(Err(raw)), _) => Some(whole_body(raw.to_string(), true)),
        (Some(Ok((c, cut))), Some(object)) => Some(whole_body(
            synth_response(object, model.as_deref(), Some(c), usage),
            cut || ctx.cut("response"),
        )),
        (None, Some(object)) if usage.is_some() => Some(whole_body(
            synth_response(object, model.as_deref(), None, usage),
            false,
        )),
        _ => None,
    };

    let meta = CallMeta {
        request_id: Some(key.clone()),
        // Logged in the outbound section, once the answer is known.
        response_time: o.time("timestamp"),
        model,
        region: o.text("modelRegion").and_then(present),
        caller_ip: o.text("clientIp").and_then(present),
        operation_id: operation_id(given_op.as_deref(), None, object),
        usage,
        // The policy logs only status 200.
        status_code: response_body.is_some().then_some(200),
        ..CallMeta::default()
    };
    Ok(Fragment {
        dialect: D,
        key,
        role: Role::Whole,
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
    use super::super::tests::{assert_fragment, one};
    use crate::model::*;
    use chrono::{TimeZone, Utc};

    const EVENT: &str = r#"{
  "id": "chatcmpl-9T2kQ1pZ",
  "timestamp": "5/24/2024 2:45:56 PM",
  "model": "gpt-4o-2024-05-13",
  "modelRegion": "Sweden Central",
  "apimRequestId": "6e1f0b2a-9c8d-4e7f-a6b5-c4d3e2f1a0b9",
  "clientIp": "192.0.2.44",
  "operationName": "Creates a completion for the chat message",
  "request": "{\"messages\":[{\"role\":\"system\",\"content\":\"You are an AI assistant.\"},{\"role\":\"user\",\"content\":\"How do I store messages?\"}],\"max_tokens\":50}",
  "response": "[\r\n  {\r\n    \"content_filter_results\": {},\r\n    \"finish_reason\": \"stop\",\r\n    \"index\": 0,\r\n    \"message\": {\r\n      \"content\": \"Use Event Hubs.\",\r\n      \"role\": \"assistant\"\r\n    }\r\n  }\r\n]",
  "promptTokens": "27",
  "responseTokens": "5",
  "totalTokens": "32"
}"#;

    #[test]
    fn whole_call() {
        let f = one(EVENT);
        assert_fragment(
            &f,
            Dialect::AiGateway2024,
            "6e1f0b2a-9c8d-4e7f-a6b5-c4d3e2f1a0b9",
            Role::Whole,
        );
        let m = &f.meta;
        assert_eq!(
            m.response_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap())
        );
        assert_eq!(m.model.as_deref(), Some("gpt-4o-2024-05-13"));
        assert_eq!(m.region.as_deref(), Some("Sweden Central"));
        assert_eq!(m.caller_ip.as_deref(), Some("192.0.2.44"));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.status_code, Some(200));
        assert_eq!(
            m.usage,
            Some(Usage {
                prompt_tokens: Some(27),
                completion_tokens: Some(5),
                total_tokens: Some(32),
                ..Usage::default()
            })
        );
        let req = f.request_body.as_ref().expect("request body");
        assert!(req.text.contains("How do I store messages?") && !req.truncated);
        let resp: serde_json::Value =
            serde_json::from_str(&f.response_body.as_ref().expect("response body").text).unwrap();
        assert_eq!(
            resp,
            serde_json::json!({
                "object": "chat.completion", "model": "gpt-4o-2024-05-13",
                "choices": [{"content_filter_results": {}, "finish_reason": "stop", "index": 0,
                             "message": {"content": "Use Event Hubs.", "role": "assistant"}}],
                "usage": {"prompt_tokens": 27, "completion_tokens": 5, "total_tokens": 32}
            })
        );
    }

    #[test]
    fn placeholders_are_absent_values() {
        let f = one(
            r#"{"id":"0b1c2d3e-aaaa-bbbb-cccc-1234567890ab","timestamp":"5/24/2024 2:50:00 PM","model":"NA","modelRegion":"N/A",
                "apimRequestId":"N/A","clientIp":"NA","operationName":"NA","request":"{\"input\":\"x\"}","response":"N/A",
                "promptTokens":"0","responseTokens":"0","totalTokens":"0"}"#,
        );
        assert_eq!(f.key, "0b1c2d3e-aaaa-bbbb-cccc-1234567890ab");
        let m = &f.meta;
        assert_eq!(
            (
                m.model.as_deref(),
                m.region.as_deref(),
                m.caller_ip.as_deref()
            ),
            (None, None, None)
        );
        assert_eq!(
            (m.operation_id.as_deref(), m.usage, m.status_code),
            (None, None, None)
        );
        assert_eq!(f.response_body, None);
        assert!(f.request_body.is_some());
    }

    #[test]
    fn embeddings_keep_their_usage() {
        let f = one(
            r#"{"id":"e1","timestamp":"2024-05-24T14:50:00Z","model":"text-embedding-3-small","apimRequestId":"a-e1",
                "operationName":"Get a vector representation of a given input that can be easily consumed by machine learning models and algorithms.",
                "request":"{\"input\":\"hello\"}","response":"N/A","promptTokens":"1","responseTokens":"0","totalTokens":"1"}"#,
        );
        assert_eq!(f.meta.operation_id.as_deref(), Some("embeddings_create"));
        assert_eq!(f.meta.status_code, Some(200));
        assert_eq!(
            f.response_body.unwrap().text,
            r#"{"object":"list","model":"text-embedding-3-small","usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}"#
        );
    }

    #[test]
    fn missing_ids_are_an_error() {
        assert_eq!(
            decode(br#"{"apimRequestId":"N/A","request":"{}"}"#).unwrap_err(),
            crate::DecodeError::MissingField {
                dialect: "ai-gateway-2024",
                field: "apimRequestId"
            }
        );
    }
}
