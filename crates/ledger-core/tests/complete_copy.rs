//! "The most complete copy wins": when a call's prompt or response reaches
//! us more than once, the record keeps the most complete copy, whatever
//! order the copies arrive in (issue 7, defects 3 and 4).

use ledger_core::CallRecord;
use ledger_core::ledger::LedgerConfig;
use proptest::prelude::*;
use serde_json::{Value, json};

mod common;

/// Records of the events, in request id order.
fn run(events: &[Value]) -> Vec<CallRecord> {
    let mut records = common::records_of(LedgerConfig::default(), events);
    records.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    records
}

fn one(events: &[Value]) -> CallRecord {
    let mut r = run(events);
    assert_eq!(r.len(), 1, "{r:?}");
    r.remove(0)
}

/// The content of the prompt's first message.
fn prompt_content(r: &CallRecord) -> String {
    let v: Value = serde_json::from_str(r.prompt_text.as_deref().expect("prompt")).unwrap();
    v[0]["content"].as_str().expect("content").to_string()
}

// ---- azure-monitor: GatewayLogs bodies cut at 8,192 bytes ----

const CORR: &str = "c0ffee00-0000-4000-8000-00000000a001";
const TIME: &str = "2026-11-20T10:00:01.0000000Z";

fn am_prompt() -> String {
    "p".repeat(10_000)
}

fn am_answer() -> String {
    "word ".repeat(2_000)
}

fn am_request_body() -> String {
    json!({"messages": [{"role": "user", "content": am_prompt()}], "stream": true}).to_string()
}

fn am_sse() -> String {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-A1", "object": "chat.completion.chunk", "created": 1763632801,
                   "model": "gpt-4o-2024-08-06",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut s = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    for _ in 0..2_000 {
        s += &chunk(json!({"content": "word "}), Value::Null);
    }
    s += &chunk(json!({}), json!("stop"));
    s + "data: [DONE]\n\n"
}

/// The first `n` bytes (ASCII text): what Azure Monitor keeps.
fn cut(s: &str, n: usize) -> String {
    s[..n.min(s.len())].to_string()
}

fn am_record(category: &str, props: Value) -> Value {
    json!({"time": TIME, "category": category, "correlationId": CORR,
           "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/CONTOSO-APIM",
           "properties": props})
}

/// One streamed chat call: its GatewayLogs record (bodies cut at 8,192
/// bytes), the LLM log's header row and its message rows (the whole text,
/// the response in two pieces), one record per event.
fn am_events() -> Vec<Value> {
    let resp = json!([{"role": "assistant", "content": am_answer()}]).to_string();
    let half = resp.len() / 2;
    let records = [
        am_record(
            "GatewayLogs",
            json!({"method": "POST", "responseCode": 200, "apiId": "azure-openai",
                   "operationId": "ChatCompletions_Create",
                   "url": "https://contoso-apim.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                   "requestBody": cut(&am_request_body(), 8192),
                   "backendResponseBody": cut(&am_sse(), 8192)}),
        ),
        am_record(
            "GatewayLlmLogs",
            json!({"requestId": "chatcmpl-A1", "operationName": "ChatCompletions_Create",
                   "deploymentName": "gpt-4o", "modelName": "gpt-4o-2024-08-06",
                   "promptTokens": 2500, "completionTokens": 2000, "totalTokens": 4500,
                   "isStreamCompletion": true, "sequenceNumber": 0}),
        ),
        am_record(
            "GatewayLlmLogs",
            json!({"requestId": "chatcmpl-A1", "sequenceNumber": 0,
                   "requestMessages": json!([{"role": "user", "content": am_prompt()}]).to_string(),
                   "responseMessages": &resp[..half]}),
        ),
        am_record(
            "GatewayLlmLogs",
            json!({"requestId": "chatcmpl-A1", "sequenceNumber": 1,
                   "responseMessages": &resp[half..]}),
        ),
    ];
    records
        .into_iter()
        .map(|r| json!({"records": [r]}))
        .collect()
}

fn assert_am_whole(r: &CallRecord) {
    assert_eq!(prompt_content(r), am_prompt());
    assert_eq!(r.response_text.as_deref(), Some(am_answer().as_str()));
    assert!(!r.request_truncated && !r.response_truncated, "{r:?}");
    assert!(r.is_stream);
    assert!(
        !r.warnings.iter().any(|w| w.contains("interrupted")),
        "{:?}",
        r.warnings
    );
    // The request is the client's `requestBody`, the response the
    // backend's `backendResponseBody`.
    for (what, side) in [("request", ""), ("response", "backend ")] {
        let w = format!(
            "{what} body: used the llm-log event's messages; the gateway-log event's {side}body was cut"
        );
        assert!(r.warnings.contains(&w), "{w} not in {:?}", r.warnings);
    }
    assert_eq!(r.total_tokens, Some(4500));
}

#[test]
fn azure_monitor_keeps_the_llm_log_text_over_cut_gateway_bodies() {
    assert_am_whole(&one(&am_events()));
}

#[test]
fn azure_monitor_llm_log_first_gives_the_same_record() {
    let mut ev = am_events();
    ev.rotate_left(1);
    let r = one(&ev);
    assert_am_whole(&r);
    assert_eq!(r, one(&am_events()));
}

#[test]
fn azure_monitor_whole_gateway_body_is_kept_over_messages() {
    // Both copies whole: the HTTP body (parameters, usage) is used, and
    // two forms of one content are not called a disagreement.
    let body =
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}).to_string();
    let ev: Vec<Value> = [
        am_record(
            "GatewayLlmLogs",
            json!({"requestId": "chatcmpl-A2", "sequenceNumber": 0,
                   "requestMessages": json!([{"role": "user", "content": "Hi"}]).to_string()}),
        ),
        am_record(
            "GatewayLogs",
            json!({"method": "POST", "responseCode": 200, "requestBody": body}),
        ),
    ]
    .into_iter()
    .map(|r| json!({"records": [r]}))
    .collect();
    let r = one(&ev);
    assert_eq!(r.max_tokens, Some(5));
    assert_eq!(prompt_content(&r), "Hi");
    assert!(
        !r.warnings.iter().any(|w| w.contains("request body")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn azure_monitor_backend_copies_win_over_the_clients_when_a_policy_rewrote_them() {
    // One GatewayLogs record with both sides' bodies, whole: an inbound
    // policy added a system message, an outbound one rewrote the answer.
    // The record keeps what the model saw and sent, and says so.
    let client = json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let backend = json!({"messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Hi"}], "max_tokens": 7})
    .to_string();
    let answer = |text: &str| {
        json!({"object": "chat.completion", "model": "gpt-4o-2024-08-06",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}})
        .to_string()
    };
    let ev = json!({"records": [am_record(
        "GatewayLogs",
        json!({"method": "POST", "responseCode": 200, "requestBody": client,
               "backendRequestBody": backend, "responseBody": answer("[redacted]"),
               "backendResponseBody": answer("Hello.")}),
    )]});
    let r = one(&[ev]);
    assert_eq!(prompt_content(&r), "Be brief.");
    assert_eq!(r.max_tokens, Some(7));
    assert_eq!(r.response_text.as_deref(), Some("Hello."));
    for what in ["request", "response"] {
        let w = format!(
            "{what} body: used the gateway-log event's backend body; the gateway-log event's body differs"
        );
        assert!(r.warnings.contains(&w), "{w} not in {:?}", r.warnings);
    }
}

#[test]
fn azure_monitor_a_cut_backend_copy_loses_to_a_whole_client_copy() {
    // A policy prepended a long system prompt: the backend's body passed
    // the 8,192-byte log limit and was cut, the client's is whole.
    let client = json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let backend = json!({"messages": [{"role": "system", "content": "s".repeat(9_000)},
                                      {"role": "user", "content": "Hi"}]})
    .to_string();
    let ev = json!({"records": [am_record(
        "GatewayLogs",
        json!({"method": "POST", "responseCode": 200, "requestBody": client,
               "backendRequestBody": cut(&backend, 8192)}),
    )]});
    let r = one(&[ev]);
    assert_eq!(prompt_content(&r), "Hi");
    assert!(!r.request_truncated);
    let w = "request body: used the gateway-log event's body; the gateway-log event's backend body was cut";
    assert!(r.warnings.iter().any(|x| x == w), "{:?}", r.warnings);
}

// ---- enterprise-logging-tf: the request event's RequestBody cut to 1,024 characters ----

const TF_ID: &str = "7d9c1b2a-0000-4000-8000-00000000f001";

fn tf_prompt() -> String {
    "q".repeat(1_500)
}

fn tf_body() -> String {
    // `stream` comes after the cut.
    json!({"messages": [{"role": "user", "content": tf_prompt()}], "stream": true}).to_string()
}

fn tf_event(kind: &str, request_body: String) -> Value {
    let mut e = json!({
        "Type": kind, "RequestId": TF_ID, "EventTime": "11/20/2026 10:00:00 AM",
        "ServiceName": "contoso-apim.azure-api.net", "RequestIp": "198.51.100.23", "RequestMethod": "POST",
        "RequestPath": "/openai/deployments/gpt-4/chat/completions", "RequestQuery": "?api-version=2024-02-01",
        "OperationName": "Creates a completion for the chat message",
        "OperationUrl": "/deployments/{deployment-id}/chat/completions", "ApiName": "OpenAI API",
        "RequestBody": request_body,
    });
    if kind == "response" {
        e["ResponseStatusCode"] = json!(200);
        e["ResponseBody"] = json!("streaming");
        e["Duration"] = json!("00:00:01.5000000");
    }
    e
}

fn tf_events() -> Vec<Value> {
    vec![
        tf_event("request", tf_body().chars().take(1024).collect()),
        tf_event("response", tf_body()),
    ]
}

fn assert_tf_whole(r: &CallRecord) {
    assert_eq!(prompt_content(r), tf_prompt());
    assert!(!r.request_truncated, "{:?}", r.warnings);
    assert!(r.is_stream, "\"stream\": true came after the cut");
    let w = "request body: used the response event's body; the request event's body was cut";
    assert!(r.warnings.iter().any(|x| x == w), "{:?}", r.warnings);
}

#[test]
fn tf_keeps_the_response_events_whole_request_body() {
    assert_tf_whole(&one(&tf_events()));
}

#[test]
fn tf_response_first_gives_the_same_record() {
    let mut ev = tf_events();
    ev.reverse();
    let r = one(&ev);
    assert_tf_whole(&r);
    assert_eq!(r, one(&tf_events()));
}

#[test]
fn tf_copies_that_agree_give_no_warning() {
    let short = json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let r = one(&[
        tf_event("request", short.clone()),
        tf_event("response", short),
    ]);
    assert!(
        !r.warnings.iter().any(|w| w.contains("request body")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn tf_copies_that_differ_use_the_backends_and_say_so() {
    // A policy rewrote the body: the response event's copy is what the
    // backend got.
    let client = json!({"messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let backend =
        json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
            .to_string();
    for order in [[0, 1], [1, 0]] {
        let ev = [
            tf_event("request", client.clone()),
            tf_event("response", backend.clone()),
        ];
        let r = one(&[ev[order[0]].clone(), ev[order[1]].clone()]);
        assert_eq!(prompt_content(&r), "Be brief.");
        let w = "request body: used the response event's body; the request event's body differs";
        assert!(r.warnings.iter().any(|x| x == w), "{:?}", r.warnings);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The order in which fragments arrive never changes which copy wins.
    #[test]
    fn arrival_order_never_changes_the_winning_copy(
        order in Just((0usize..6).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let mut events = am_events();
        events.extend(tf_events());
        let baseline = run(&events);
        prop_assert_eq!(baseline.len(), 2);
        let shuffled: Vec<Value> = order.iter().map(|&i| events[i].clone()).collect();
        prop_assert_eq!(run(&shuffled), baseline);
    }
}
