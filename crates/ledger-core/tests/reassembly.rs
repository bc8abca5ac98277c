//! Properties of the whole core: however a call's events are split and
//! ordered, the record is the same.

use ledger_core::CallRecord;
use ledger_core::ledger::LedgerConfig;
use ledger_core::{Operation, UsageSource};
use proptest::prelude::*;
use serde_json::json;

mod common;

const SSE: &str = concat!(
    "data: {\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}],\"choices\":[]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Bonjour, \"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"le monde — ça va ?\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":9,\"total_tokens\":30}}\n\n",
    "data: [DONE]\n\n"
);

const REQUEST: &str = r#"{"messages":[{"role":"user","content":"Say hello in French"}],"stream":true,"stream_options":{"include_usage":true}}"#;

fn envelope(kind: &str, body: &str, index: usize, count: usize) -> serde_json::Value {
    let mut e = json!({
        "schema": "ledger/v1",
        "kind": kind,
        "requestId": "req-prop-1",
        "time": "2026-11-20T10:00:00Z",
        "callerIp": "203.0.113.7",
        "subscriptionId": "finance-team",
        "operationId": "ChatCompletions_Create",
        "method": "POST",
        "url": "https://contoso.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
        "body": body,
        "chunk": {"index": index, "count": count}
    });
    if kind == "response" {
        e["status"] = json!(200);
        e["durationMs"] = json!(812);
    }
    e
}

/// Splits at char boundaries near the given byte cut points.
fn split(text: &str, cuts: &[usize]) -> Vec<String> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| {
            let mut c = c % (text.len() + 1);
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            c
        })
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| text[w[0]..w[1]].to_string())
        .collect()
}

fn run(events: &[serde_json::Value]) -> Vec<CallRecord> {
    run_with(LedgerConfig::default(), events)
}

fn run_with(config: LedgerConfig, events: &[serde_json::Value]) -> Vec<CallRecord> {
    common::records_of(config, events)
}

fn events(cuts: &[usize]) -> Vec<serde_json::Value> {
    let pieces = split(SSE, cuts);
    let n = pieces.len();
    let mut ev = vec![envelope("request", REQUEST, 0, 1)];
    ev.extend(
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| envelope("response", p, i, n)),
    );
    ev
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn split_and_order_do_not_change_the_record(
        cuts in proptest::collection::vec(0usize..4096, 0..6),
        order in Just((0usize..8).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let baseline = run(&events(&[]));
        prop_assert_eq!(baseline.len(), 1);
        let ev = events(&cuts);
        let mut shuffled: Vec<_> = order.iter().filter(|&&i| i < ev.len()).map(|&i| ev[i].clone()).collect();
        shuffled.extend(ev.iter().skip(8).cloned());
        let out = run(&shuffled);
        prop_assert_eq!(out, baseline);
    }
}

#[test]
fn the_streamed_call_is_rebuilt() {
    let r = run(&events(&[100, 700]));
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert!(r.complete, "{:?}", r.warnings);
    assert!(r.is_stream);
    assert_eq!(r.model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        r.response_text.as_deref(),
        Some("Bonjour, le monde — ça va ?")
    );
    assert_eq!(
        (r.prompt_tokens, r.completion_tokens, r.total_tokens),
        (Some(21), Some(9), Some(30))
    );
    assert_eq!(r.usage_source, UsageSource::Reported);
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.status_code, Some(200));
    assert_eq!(r.operation, Operation::Chat);
    assert_eq!(r.deployment.as_deref(), Some("gpt-4o"));
    assert_eq!(r.model_key.as_deref(), Some("gpt-4o"));
}

#[test]
fn a_lone_half_is_flushed_as_partial_not_dropped() {
    let ev = events(&[]);
    let r = run(&ev[..1]);
    assert_eq!(r.len(), 1);
    assert!(!r[0].complete);
    assert!(r[0].warnings.iter().any(|w| w.contains("partial")));
}

#[test]
fn pii_is_masked_only_when_asked() {
    let request = r#"{"messages":[{"role":"user","content":"Mail jane.doe@example.com or call +44 20 7946 0958"}]}"#;
    let response = r#"{"id":"x","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Card 4111 1111 1111 1111 noted."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}"#;
    let events = [
        envelope("request", request, 0, 1),
        envelope("response", response, 0, 1),
    ];
    let plain = run(&events);
    assert!(
        plain[0]
            .prompt_text
            .as_deref()
            .unwrap()
            .contains("jane.doe@example.com")
    );

    let mut config = LedgerConfig::default();
    config.assemble.mask_pii = true;
    let masked = run_with(config, &events);
    let r = &masked[0];
    let all = format!(
        "{:?} {:?} {:?}",
        r.prompt_text, r.response_text, r.response_body
    );
    assert!(!all.contains("jane.doe@example.com"), "{all}");
    assert!(!all.contains("7946 0958"), "{all}");
    assert!(!all.contains("4111 1111 1111 1111"), "{all}");
    assert!(all.contains("[email]") && all.contains("[card]"), "{all}");
}
