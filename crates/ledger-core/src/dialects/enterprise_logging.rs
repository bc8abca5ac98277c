//! enterprise-logging (openai-python-enterprise-logging, advanced pattern):
//! a `Request` and a `Response` event joined by `message-id`. Bodies are not
//! logged whole: the request keeps `messages` / `prompt` as JSON text, the
//! response `choices` and token counts, so both bodies are rebuilt here.

use serde_json::{Map, Value, json};

use crate::error::DecodeError;
use crate::model::{CallMeta, Dialect, Fragment, Role};

use crate::operations::{operation_id, synth_object};

use super::common::{
    object_from_choices, parse_json_lenient, synth_response, usage_of, whole_body,
};
use super::fields::Obj;
use super::{Completeness, Ctx, Decoded, DialectSpec, invalid, missing};

const D: Dialect = Dialect::EnterpriseLogging;

pub(super) const SPEC: DialectSpec = DialectSpec {
    dialect: D,
    detect,
    decode: |o, ctx| decode(o, ctx).map(Decoded::one),
    completeness: Completeness::Halves,
};

/// An `event-type` field.
fn detect(o: Obj<'_>) -> bool {
    o.has("event-type")
}

fn decode(o: Obj<'_>, ctx: &Ctx<'_>) -> Result<Fragment, DecodeError> {
    let key = o
        .text("message-id")
        .ok_or_else(|| missing(D, "message-id"))?;
    let role = match o
        .text("event-type")
        .map(|t| t.to_ascii_lowercase())
        .as_deref()
    {
        Some("request") => Role::Request,
        Some("response") => Role::Response,
        _ => return Err(invalid(D, "event-type", "expected Request or Response")),
    };
    let given_op = o.text("operation");
    let model = o.text("model");
    let mut meta = CallMeta {
        request_id: Some(key.clone()),
        backend: o.text("backend"),
        api_id: o.text("apiId"),
        product_id: o.text("productId"),
        model: model.clone(),
        model_time_ms: o.int("modeltime"),
        ..CallMeta::default()
    };
    let time = o.time("event-time");
    let mut fragment_bodies = (None, None);
    match role {
        Role::Request => {
            meta.request_time = time;
            meta.operation_id = operation_id(given_op.as_deref(), None, None);
            fragment_bodies.0 = request_body(o, ctx, model.as_deref());
        }
        _ => {
            meta.response_time = time;
            meta.usage = usage_of(
                o.int("prompt_tokens"),
                o.int("completion_tokens"),
                o.int("total_tokens"),
            );
            let choices = o.raw_str("choices").map(|c| parse_json_lenient(c).ok_or(c));
            let object = match synth_object(given_op.as_deref()) {
                Some(o) => Some(o),
                None => match &choices {
                    Some(Ok((c, _))) => object_from_choices(c).or(Some("chat.completion")),
                    _ => None,
                },
            };
            let body = match (object, choices) {
                (_, Some(Err(raw))) => Some(whole_body(raw.to_string(), true)),
                (Some(object), Some(Ok((c, cut)))) => Some(whole_body(
                    synth_response(object, model.as_deref(), Some(c), meta.usage),
                    cut || ctx.cut("choices"),
                )),
                (Some(object), None) if meta.usage.is_some() => Some(whole_body(
                    synth_response(object, model.as_deref(), None, meta.usage),
                    false,
                )),
                _ => None,
            };
            // The policy logs no status; a response with a completion or
            // usage was answered (its expressions fail on anything else).
            if body.is_some() {
                meta.status_code = Some(200);
            }
            meta.operation_id = operation_id(given_op.as_deref(), None, object);
            fragment_bodies.1 = body;
        }
    }
    Ok(Fragment {
        dialect: D,
        key,
        role,
        meta,
        request_body: fragment_bodies.0,
        response_body: fragment_bodies.1,
        backend_request_body: None,
        backend_response_body: None,
    })
}

/// `{"model","messages"}` or `{"model","prompt"}` from the logged strings.
fn request_body(o: Obj<'_>, ctx: &Ctx<'_>, model: Option<&str>) -> Option<crate::model::BodyPart> {
    let mut body = Map::new();
    if let Some(model) = model {
        body.insert("model".into(), json!(model));
    }
    let cut;
    if let Some(messages) = o.raw_str("messages") {
        let (v, c) = parse_json_lenient(messages).unwrap_or_else(|| (json!(messages), true));
        body.insert("messages".into(), v);
        cut = c || ctx.cut("messages");
    } else if let Some(prompt) = o.raw_str("prompt") {
        let (v, c) = prompt_value(prompt);
        body.insert("prompt".into(), v);
        cut = c || ctx.cut("prompt");
    } else {
        return None;
    }
    Some(whole_body(Value::Object(body).to_string(), cut))
}

/// The logged `prompt`: the policy serialises it as JSON, so an array
/// arrives as `[...]` and a single prompt as a JSON string literal
/// (`"\"Write…\\n\""`); both are decoded. Anything else is a prompt logged
/// as plain text (older policies), kept as it is.
fn prompt_value(prompt: &str) -> (Value, bool) {
    let t = prompt.trim();
    if t.starts_with('[') {
        if let Some(parsed) = parse_json_lenient(t) {
            return parsed;
        }
    } else if t.starts_with('"')
        && let Ok(s @ Value::String(_)) = serde_json::from_str::<Value>(t)
    {
        return (s, false);
    }
    (json!(prompt), false)
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::tests::{assert_fragment, one};
    use crate::model::*;
    use chrono::{TimeZone, Utc};

    const REQUEST: &str = r#"{
  "event-type": "Request",
  "event-time": "5/24/2024 2:45:56 PM",
  "backend": "contoso-apim.azure-api.net",
  "message-id": "0f8fad5b-d9cb-469f-a165-70867728950e",
  "operation": "ChatCompletions_Create",
  "model": "",
  "prompt": "",
  "messages": "[\r\n  {\r\n    \"role\": \"system\",\r\n    \"content\": \"You are a helpful assistant.\"\r\n  },\r\n  {\r\n    \"role\": \"user\",\r\n    \"content\": \"Does Azure OpenAI support customer managed keys?\"\r\n  }\r\n]"
}"#;

    const RESPONSE: &str = r#"{
  "event-type": "Response",
  "event-time": "5/24/2024 2:45:58 PM",
  "backend": "contoso-apim.azure-api.net",
  "message-id": "0f8fad5b-d9cb-469f-a165-70867728950e",
  "choices": "[\r\n  {\r\n    \"finish_reason\": \"stop\",\r\n    \"index\": 0,\r\n    \"message\": {\r\n      \"role\": \"assistant\",\r\n      \"content\": \"Yes, customer managed keys are supported.\"\r\n    }\r\n  }\r\n]",
  "operation": "ChatCompletions_Create",
  "apiId": "azure-openai-service-api",
  "productId": "aoai-product",
  "model": "gpt-35-turbo",
  "modeltime": "312",
  "completion_tokens": "9",
  "prompt_tokens": "29",
  "total_tokens": "38"
}"#;

    #[test]
    fn request_event_rebuilds_the_chat_body() {
        let f = one(REQUEST);
        assert_fragment(
            &f,
            Dialect::EnterpriseLogging,
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            Role::Request,
        );
        let m = &f.meta;
        assert_eq!(
            m.request_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap())
        );
        assert_eq!(m.backend.as_deref(), Some("contoso-apim.azure-api.net"));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.model, None);
        assert_eq!(m.caller_ip, None);
        assert_eq!(m.status_code, None);
        let body = f.request_body.expect("request body");
        assert!(!body.truncated);
        let v: serde_json::Value = serde_json::from_str(&body.text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Does Azure OpenAI support customer managed keys?"}
            ]})
        );
        assert_eq!(f.response_body, None);
    }

    #[test]
    fn response_event_rebuilds_the_completion() {
        let f = one(RESPONSE);
        assert_eq!(
            (f.key.as_str(), f.role),
            ("0f8fad5b-d9cb-469f-a165-70867728950e", Role::Response)
        );
        let m = &f.meta;
        assert_eq!(
            m.response_time,
            Some(Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 58).unwrap())
        );
        assert_eq!(m.request_time, None);
        assert_eq!(m.api_id.as_deref(), Some("azure-openai-service-api"));
        assert_eq!(m.product_id.as_deref(), Some("aoai-product"));
        assert_eq!(m.model.as_deref(), Some("gpt-35-turbo"));
        assert_eq!(m.model_time_ms, Some(312));
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(
            m.usage,
            Some(Usage {
                prompt_tokens: Some(29),
                completion_tokens: Some(9),
                total_tokens: Some(38),
                ..Usage::default()
            })
        );
        assert_eq!(f.request_body, None);
        let body = f.response_body.expect("response body");
        assert!(!body.truncated);
        let v: serde_json::Value = serde_json::from_str(&body.text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "object": "chat.completion", "model": "gpt-35-turbo",
                "choices": [{"finish_reason": "stop", "index": 0,
                             "message": {"role": "assistant", "content": "Yes, customer managed keys are supported."}}],
                "usage": {"prompt_tokens": 29, "completion_tokens": 9, "total_tokens": 38}
            })
        );
    }

    #[test]
    fn completion_prompt_and_embedding_response() {
        let f = one(
            r#"{"EVENT-TYPE":"request","event-time":"2024-05-24T14:45:56Z","message-id":"m2","operation":"Completions_Create","model":"gpt-35-turbo-instruct","prompt":"Say hi","messages":""}"#,
        );
        assert_eq!(
            f.request_body.unwrap().text,
            r#"{"model":"gpt-35-turbo-instruct","prompt":"Say hi"}"#
        );

        let f = one(
            r#"{"event-type":"Response","event-time":"5/24/2024 2:46:01 PM","message-id":"m3","operation":"embeddings_create","apiId":"aoai","productId":"p","model":"text-embedding-ada-002","modeltime":"25","prompt_tokens":"7","total_tokens":"7"}"#,
        );
        let m = &f.meta;
        assert_eq!(m.operation_id.as_deref(), Some("embeddings_create"));
        assert_eq!(m.status_code, Some(200));
        assert_eq!(m.usage.unwrap().completion_tokens, None);
        assert_eq!(
            f.response_body.unwrap().text,
            r#"{"object":"list","model":"text-embedding-ada-002","usage":{"prompt_tokens":7,"total_tokens":7}}"#
        );
    }

    #[test]
    fn completion_prompt_written_as_a_json_string_is_decoded() {
        // Issue 7, defect 5: the policy writes the prompt with JSON escaping.
        let f = one(
            r#"{"event-type":"Request","event-time":"5/24/2024 2:45:56 PM","message-id":"m5","operation":"Completions_Create","model":"gpt-35-turbo-instruct","prompt":"\"Write a short poem about \\\"APIs\\\".\\n\"","messages":""}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&f.request_body.unwrap().text).unwrap();
        assert_eq!(v["prompt"], "Write a short poem about \"APIs\".\n");
        // An array of prompts, and a plain-text prompt that merely starts
        // with a quote, are kept as before.
        let f = one(
            r#"{"event-type":"Request","message-id":"m6","operation":"Completions_Create","prompt":"[\"a\",\"b\"]"}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&f.request_body.unwrap().text).unwrap();
        assert_eq!(v["prompt"], serde_json::json!(["a", "b"]));
        let f = one(
            r#"{"event-type":"Request","message-id":"m7","operation":"Completions_Create","prompt":"\"Hi\" she said"}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&f.request_body.unwrap().text).unwrap();
        assert_eq!(v["prompt"], "\"Hi\" she said");
    }

    #[test]
    fn other_operations_have_no_body_and_no_status() {
        let f = one(
            r#"{"event-type":"Response","event-time":"5/24/2024 2:46:01 PM","message-id":"m4","operation":"get-a-generated-image-result","apiId":"aoai","productId":"p","modeltime":""}"#,
        );
        assert_eq!(
            f.meta.operation_id.as_deref(),
            Some("get-a-generated-image-result")
        );
        assert_eq!(
            (f.meta.status_code, f.meta.model_time_ms, f.response_body),
            (None, None, None)
        );
    }

    #[test]
    fn missing_message_id_is_an_error() {
        assert_eq!(
            decode(br#"{"event-type":"Request","operation":"x"}"#).unwrap_err(),
            crate::DecodeError::MissingField {
                dialect: "enterprise-logging",
                field: "message-id"
            }
        );
        assert!(decode(br#"{"event-type":"Other","message-id":"m"}"#).is_err());
    }
}
