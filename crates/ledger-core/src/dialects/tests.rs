//! Cross-dialect tests: recognition, bad input, events cut short, and the
//! shared fixtures in `tests/fixtures/dialects/`.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{DIALECTS, decode};
use crate::error::DecodeError;
use crate::model::{Dialect, Fragment, Role};

/// The one fragment an event decodes to.
pub(super) fn one(event: &str) -> Fragment {
    let mut f = decode(event.as_bytes()).expect("decodes");
    assert_eq!(f.len(), 1);
    f.remove(0)
}

/// Asserts a fragment's dialect, role and key, which is also its request id.
pub(super) fn assert_fragment(f: &Fragment, dialect: Dialect, key: &str, role: Role) {
    assert_eq!(f.dialect, dialect);
    assert_eq!(f.key, key);
    assert_eq!(f.role, role);
    assert_eq!(f.meta.request_id.as_deref(), Some(key));
}

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/dialects/",
            $name
        ))
    };
}

const FIXTURES: &[(&str, Dialect, &str)] = &[
    (
        "ledger-v1.jsonl",
        Dialect::LedgerV1,
        fixture!("ledger-v1.jsonl"),
    ),
    (
        "azure-monitor.jsonl",
        Dialect::AzureMonitor,
        fixture!("azure-monitor.jsonl"),
    ),
    (
        "enterprise-logging.jsonl",
        Dialect::EnterpriseLogging,
        fixture!("enterprise-logging.jsonl"),
    ),
    (
        "enterprise-logging-tf.jsonl",
        Dialect::EnterpriseLoggingTf,
        fixture!("enterprise-logging-tf.jsonl"),
    ),
    (
        "chargeback.jsonl",
        Dialect::Chargeback,
        fixture!("chargeback.jsonl"),
    ),
    (
        "ai-gateway-2024.jsonl",
        Dialect::AiGateway2024,
        fixture!("ai-gateway-2024.jsonl"),
    ),
];

/// Secret values planted in the fixtures; none may survive decoding.
const PLANTED_SECRETS: &[&str] = &[
    "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "7f3c0d5e9a1b4c2d8e6f0a1b2c3d4e5f",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9",
    "0123456789abcdef0123456789abcdef",
    "b5c0e1f2a3d44c8e9f7a6b5c4d3e2f10",
];

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

#[test]
fn every_fixture_line_decodes_as_its_dialect_without_secrets() {
    for (name, dialect, text) in FIXTURES {
        let mut roles: BTreeMap<String, Vec<Role>> = BTreeMap::new();
        for (n, line) in lines(text).enumerate() {
            let frags = decode(line.as_bytes()).unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
            assert!(!frags.is_empty(), "{name}:{}", n + 1);
            for f in frags {
                assert_eq!(f.dialect, *dialect, "{name}:{}", n + 1);
                let json = serde_json::to_string(&f).unwrap();
                for s in PLANTED_SECRETS {
                    assert!(
                        !json.contains(s),
                        "{name}:{}: a secret survived decoding",
                        n + 1
                    );
                }
                roles.entry(f.key.clone()).or_default().push(f.role);
            }
        }
        // Each fixture holds whole calls: both halves where there are two.
        for (key, r) in &roles {
            let whole = match dialect {
                Dialect::Chargeback | Dialect::AiGateway2024 => r.contains(&Role::Whole),
                Dialect::AzureMonitor => r.contains(&Role::GatewayLog),
                _ => {
                    r.contains(&Role::Request)
                        && (r.contains(&Role::Response) || r.contains(&Role::Error))
                }
            };
            assert!(whole, "{name}: call {key} is incomplete: {r:?}");
        }
    }
}

#[test]
fn fixture_calls_carry_the_expected_facts() {
    let all = |text: &str| -> Vec<Fragment> {
        lines(text)
            .flat_map(|l| decode(l.as_bytes()).unwrap())
            .collect()
    };
    let monitor = all(FIXTURES[1].2);
    let gw: Vec<_> = monitor
        .iter()
        .filter(|f| f.role == Role::GatewayLog)
        .collect();
    assert_eq!(gw.len(), 2);
    assert_eq!(gw[1].meta.status_code, Some(429));
    assert_eq!(
        monitor
            .iter()
            .filter(|f| f.role == Role::LlmLog && f.key == gw[0].key)
            .count(),
        2
    );

    let tf = all(FIXTURES[3].2);
    let streamed: Vec<_> = tf
        .iter()
        .filter(|f| f.meta.is_stream == Some(true))
        .collect();
    assert_eq!(streamed.len(), 1);
    assert_eq!(
        streamed[0].response_body.as_ref().map(|b| b.text.as_str()),
        Some("streaming")
    );

    let ledger = all(FIXTURES[0].2);
    let chunks: Vec<_> = ledger
        .iter()
        .filter_map(|f| f.response_body.as_ref())
        .filter(|b| b.count == Some(2))
        .collect();
    assert_eq!(chunks.len(), 2);
}

#[test]
fn recognition_needs_the_distinguishing_fields() {
    let unknown = |s: &str| matches!(decode(s.as_bytes()), Err(DecodeError::UnknownDialect(_)));
    assert!(unknown(
        r#"{"schema":"ledger/v2","kind":"request","requestId":"r"}"#
    ));
    assert!(unknown(r#"{"Type":"request"}"#));
    assert!(unknown(r#"{"Type":"banana","RequestId":"r"}"#));
    assert!(unknown(r#"{"apiOperation":"ChatCompletion"}"#));
    assert!(unknown(r#"{"records":"not a list"}"#));
    assert!(unknown("{}"));
    assert!(unknown("[1,2]"));
    assert!(unknown(r#""just a string""#));
    let tf = decode(br#"{"type":"REQUEST","requestid":"r"}"#).unwrap();
    assert_eq!(tf[0].dialect, Dialect::EnterpriseLoggingTf);
    let cb = decode(br#"{"apiOperation":"ChatCompletion","response":"{}"}"#).unwrap();
    assert_eq!(cb[0].dialect, Dialect::Chargeback);
}

#[test]
fn errors_never_quote_values() {
    let secret = "Bearer sk-live-000111222333";
    let cases = [
        format!(r#"{{"password":"x","{}":1}}"#, "k"),
        format!(r#"{{"schema":"ledger/v1","kind":"{secret}","requestId":"r"}}"#),
        format!(r#"{{"Type":"request","RequestId":"r","Headers":["Authorization: {secret}"]," "#),
        format!(r#"{{"event-type":"{secret}","message-id":"m"}}"#),
        format!("not json {secret}"),
        format!(
            r#"{{"records":[{{"category":"GatewayLogs","properties":{{"url":"{secret}"}}}}]}}"#
        ),
    ];
    for c in cases {
        if let Err(e) = decode(c.as_bytes()) {
            assert!(
                !e.to_string().contains("sk-live"),
                "error quotes a value: {e}"
            );
        }
    }
    let e = decode(b"not json").unwrap_err();
    assert!(matches!(e, DecodeError::NotJson(_)));
    assert!(matches!(
        decode(b"\xff\xfe{}"),
        Err(DecodeError::NotJson(_))
    ));
    let keys = decode(br#"{"alpha":"secret-value","beta":2}"#)
        .unwrap_err()
        .to_string();
    assert!(keys.contains("alpha, beta") && !keys.contains("secret-value"));
}

#[test]
fn a_cut_event_keeps_its_call_and_flags_the_body() {
    let line = lines(FIXTURES[4].2).nth(1).unwrap();
    let whole = decode(line.as_bytes()).unwrap().remove(0);
    let cut_at = line.len() * 4 / 5;
    let cut = decode(&line.as_bytes()[..cut_at]).unwrap().remove(0);
    assert_eq!(cut.dialect, Dialect::Chargeback);
    assert_eq!(
        cut.meta.subscription_key_hash,
        whole.meta.subscription_key_hash
    );
    assert!(!cut.request_body.as_ref().unwrap().truncated);
    let resp = cut.response_body.as_ref().unwrap();
    assert!(resp.truncated);
    assert!(
        whole
            .response_body
            .as_ref()
            .unwrap()
            .text
            .starts_with(&resp.text)
    );

    // A tf response cut inside its repeated request body.
    let event = r#"{"Type":"response","RequestId":"r-cut","ResponseStatusCode":200,"ResponseBody":"streaming","RequestBody":"{\"messages\":[{\"role\":\"user\",\"content\":\"long"#;
    let f = decode(event.as_bytes()).unwrap().remove(0);
    assert_eq!(f.key, "r-cut");
    assert!(f.request_body.unwrap().truncated);
    assert!(!f.response_body.unwrap().truncated);

    // A multi-byte character split by the cut.
    let event =
        "{\"schema\":\"ledger/v1\",\"kind\":\"request\",\"requestId\":\"r\",\"body\":\"caf\u{e9}";
    let bytes = &event.as_bytes()[..event.len() - 1];
    let f = decode(bytes).unwrap().remove(0);
    assert_eq!(
        f.request_body
            .as_ref()
            .map(|b| (b.text.as_str(), b.truncated)),
        Some(("caf", true))
    );
}

#[test]
fn no_cut_of_any_fixture_panics() {
    for (_, _, text) in FIXTURES {
        for line in lines(text) {
            let b = line.as_bytes();
            let step = (b.len() / 300).max(1);
            for end in (0..b.len()).step_by(step) {
                let _ = decode(&b[..end]);
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn arbitrary_json_shapes_never_panic(s in r#"[{}\[\]",:a-zA-Z0-9\\ -]{0,200}"#) {
        let _ = decode(s.as_bytes());
        let wrapped = format!(r#"{{"records":[{{"category":"GatewayLogs","correlationId":"c","properties":{s}}}]}}"#);
        let _ = decode(wrapped.as_bytes());
    }

    #[test]
    fn typed_fields_of_any_type_never_panic(v in prop_oneof![
        Just(serde_json::json!(null)), Just(serde_json::json!(-1)), Just(serde_json::json!(1e300)),
        Just(serde_json::json!([1, "x"])), Just(serde_json::json!({"a": 1})), Just(serde_json::json!("x")),
        Just(serde_json::json!(u64::MAX)), Just(serde_json::json!(true)),
    ]) {
        let events = [
            serde_json::json!({"schema":"ledger/v1","kind":"response","requestId":"r","status":v,"durationMs":v,"headers":v,"body":v,"chunk":{"index":v,"count":v},"lastError":v,"time":v,"url":v}),
            serde_json::json!({"Type":"response","RequestId":"r","Headers":v,"Duration":v,"ResponseStatusCode":v,"ResponseBody":v,"RequestBody":v,"EventTime":v,"RequestPath":v,"RequestQuery":v}),
            serde_json::json!({"event-type":"Response","message-id":"m","choices":v,"prompt_tokens":v,"operation":v,"model":v,"messages":v}),
            serde_json::json!({"apimRequestId":"a","response":v,"promptTokens":v,"timestamp":v,"request":v,"operationName":v}),
            serde_json::json!({"appSubscriptionKey":v,"request":v,"response":v,"eventTime":v,"apiOperation":v}),
            serde_json::json!({"records":[{"category":"GatewayLlmLogs","correlationId":"c","properties":{"sequenceNumber":v,"requestMessages":v,"promptTokens":v,"isStreamCompletion":v}},
                                          {"category":"GatewayLogs","correlationId":"c","time":v,"properties":{"responseCode":v,"requestHeaders":v,"lastError":v,"backendResponseBody":v,"url":v}}]}),
        ];
        for e in events {
            let _ = decode(e.to_string().as_bytes());
        }
    }
}

#[test]
fn the_dialect_table_holds_each_dialect_once() {
    for (i, s) in DIALECTS.iter().enumerate() {
        assert!(
            DIALECTS[i + 1..].iter().all(|t| t.dialect != s.dialect),
            "{} twice",
            s.dialect
        );
    }
    for name in Dialect::NAMES {
        assert!(
            DIALECTS.iter().any(|s| s.dialect.as_str() == *name),
            "{name} has no entry"
        );
    }
}
