//! chargeback (private-openai-with-apim-for-chargeback): one event per
//! answered call with the raw request and response bodies and the caller's
//! raw subscription key, which is hashed here and never kept.

use sha2::{Digest, Sha256};

use crate::error::DecodeError;
use crate::model::{CallMeta, Dialect, Fragment, Role};
use crate::redact;

use super::Ctx;
use super::common::{body_text, carries_completion, response_object, whole_body};
use super::fields::Obj;
use super::{Completeness, Decoded, DialectSpec};
use crate::operations::operation_id;

const D: Dialect = Dialect::Chargeback;

pub(super) const SPEC: DialectSpec = DialectSpec {
    dialect: D,
    detect,
    decode: |o, ctx| decode(o, ctx).map(Decoded::one),
    completeness: Completeness::OneEvent,
};

/// An `appSubscriptionKey`, or an `apiOperation` beside a body.
fn detect(o: Obj<'_>) -> bool {
    o.has("appSubscriptionKey")
        || (o.has("apiOperation") && (o.has("request") || o.has("response")))
}

fn decode(o: Obj<'_>, ctx: &Ctx<'_>) -> Result<Fragment, DecodeError> {
    // The event has no id: a digest of the whole event makes redelivered
    // copies share a key while distinct calls do not.
    let key = format!("sha256:{}", hex::encode(Sha256::digest(ctx.raw)));

    let request_body = o
        .get("request")
        .and_then(body_text)
        .map(|t| whole_body(t, ctx.cut("request")));
    let response_body = o
        .get("response")
        .and_then(body_text)
        .map(|t| whole_body(t, ctx.cut("response")));
    let object = response_body
        .as_ref()
        .and_then(|b| response_object(&b.text));

    let meta = CallMeta {
        request_id: Some(key.clone()),
        // Logged in the outbound section, once the answer is known.
        response_time: o
            .get_any(&["eventTime", "event-time", "timestamp"])
            .and_then(crate::time::time_value),
        operation_id: operation_id(o.text("apiOperation").as_deref(), None, object.as_deref()),
        subscription_key_hash: o
            .get("appSubscriptionKey")
            .and_then(|k| k.as_str())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| redact::hash_key(ctx.key_salt, k)),
        // The policy logs only status 200.
        status_code: response_body
            .as_ref()
            .is_some_and(|b| carries_completion(&b.text))
            .then_some(200),
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
    use super::super::DEFAULT_KEY_SALT;
    use super::super::tests::one;
    use crate::model::*;
    use crate::redact;
    use chrono::{TimeZone, Utc};

    const RAW_KEY: &str = "b5c0e1f2a3d44c8e9f7a6b5c4d3e2f10";

    const CHAT: &str = r#"{
  "eventTime": "2024-05-24T14:45:56.5277423Z",
  "apiOperation": "ChatCompletion",
  "appSubscriptionKey": "b5c0e1f2a3d44c8e9f7a6b5c4d3e2f10",
  "request": "{\n  \"messages\": [\n    {\"role\": \"user\", \"content\": \"What is APIM?\"}\n  ],\n  \"max_tokens\": 200\n}",
  "response": "{\"id\":\"chatcmpl-9Rk\",\"object\":\"chat.completion\",\"created\":1716561956,\"model\":\"gpt-4o-2024-05-13\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Azure API Management is a gateway.\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}"
}"#;

    #[test]
    fn whole_chat_call_with_hashed_key() {
        let f = one(CHAT);
        assert_eq!(f.dialect, Dialect::Chargeback);
        assert_eq!(f.role, Role::Whole);
        assert!(f.key.starts_with("sha256:"));
        assert_eq!(f.key.len(), "sha256:".len() + 64);
        let m = &f.meta;
        assert_eq!(m.request_id.as_deref(), Some(f.key.as_str()));
        assert_eq!(
            m.response_time,
            Some(
                Utc.with_ymd_and_hms(2024, 5, 24, 14, 45, 56).unwrap()
                    + chrono::Duration::nanoseconds(527_742_300)
            )
        );
        assert_eq!(m.operation_id.as_deref(), Some("ChatCompletions_Create"));
        assert_eq!(m.status_code, Some(200));
        assert_eq!(
            m.subscription_key_hash,
            Some(redact::hash_key(DEFAULT_KEY_SALT, RAW_KEY))
        );
        assert_eq!(
            (m.subscription_id.as_deref(), m.caller_ip.as_deref()),
            (None, None)
        );
        let req = f.request_body.as_ref().expect("request body");
        assert!(req.text.contains("What is APIM?") && !req.truncated);
        let resp = f.response_body.as_ref().expect("response body");
        assert!(resp.text.starts_with(r#"{"id":"chatcmpl-9Rk""#) && !resp.truncated);
        assert!(
            !serde_json::to_string(&f).unwrap().contains(RAW_KEY),
            "raw key stored"
        );
    }

    #[test]
    fn streamed_text_completion_keeps_the_sse_text() {
        let event = r#"{"eventTime":"2024-05-24T14:47:00Z","apiOperation":"TextCompletion","appSubscriptionKey":"k-2",
          "request":"{\"prompt\":\"Once upon\",\"stream\":true,\"max_tokens\":5}",
          "response":"data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\" a\",\"index\":0,\"finish_reason\":null}]}\n\ndata: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\" time\",\"index\":0,\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n"}"#;
        let f = one(event);
        assert_eq!(f.meta.operation_id.as_deref(), Some("Completions_Create"));
        assert_eq!(f.meta.status_code, Some(200));
        let resp = f.response_body.unwrap();
        assert!(resp.text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn operation_from_the_body_when_the_policy_left_it_empty() {
        let f = one(
            r#"{"EventTime":"2024-05-24T14:47:00Z","apiOperation":"","AppSubscriptionKey":"k-3","Request":"{\"input\":\"hi\"}","Response":"{\"object\":\"list\",\"data\":[],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1}}"}"#,
        );
        assert_eq!(f.meta.operation_id.as_deref(), Some("embeddings_create"));
        assert_eq!(
            f.meta.subscription_key_hash,
            Some(redact::hash_key(DEFAULT_KEY_SALT, "k-3"))
        );
    }

    #[test]
    fn duplicate_deliveries_share_a_key() {
        let a = one(CHAT);
        let b = one(CHAT);
        assert_eq!(a.key, b.key);
        let other = CHAT.replace("What is APIM?", "What is APIM??");
        assert_ne!(one(&other).key, a.key);
    }
}
