//! Hostile input (issue 7): no secret in any dead letter, and bounded cost
//! for numbers from the input that would size a loop or an allocation.

use std::time::{Duration, Instant};

use chrono::Utc;
use ledger_core::ledger::{Commit, Ledger, LedgerConfig};
use ledger_core::{Position, RawEvent};

fn event(seq: i64, body: &[u8]) -> RawEvent {
    RawEvent {
        position: Position {
            partition: "0".into(),
            sequence: seq,
        },
        offset: None,
        enqueued_time: None,
        body: body.to_vec(),
    }
}

fn run(bodies: &[&[u8]]) -> Vec<Commit> {
    let mut ledger = Ledger::new(LedgerConfig::default());
    for (i, b) in bodies.iter().enumerate() {
        ledger.process(event(i as i64 + 1, b), Utc::now());
    }
    ledger.finish()
}

const API_KEY: &str = "0123456789abcdef0123456789abcdef";
const SUB_KEY: &str = "fedcba9876543210fedcba9876543210";

#[test]
fn duplicate_records_key_leaks_no_secret_into_the_dead_letter() {
    // Issue 7, defect 1: the first `records` array is shadowed by the second.
    let body = format!(
        r#"{{"records":[{{"time":"2024-05-24T14:45:56Z","category":"GatewayLogs","correlationId":"c1","properties":{{"method":"POST","url":"https://x.azure-api.net/openai/deployments/d/chat/completions","requestHeaders":{{"api-key":"{API_KEY}","Ocp-Apim-Subscription-Key":"{SUB_KEY}","content-type":"application/json"}}}}}}], "records": 5}}"#
    );
    let commits = run(&[body.as_bytes()]);
    let dead: Vec<_> = commits.iter().flat_map(|c| &c.dead_letters).collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let dl = &dead[0].item;
    assert!(dl.reason.contains("no known dialect"), "{}", dl.reason);
    let raw = String::from_utf8_lossy(&dl.raw);
    for secret in [API_KEY, SUB_KEY] {
        assert!(!raw.contains(secret), "secret left in {raw}");
        assert!(!dl.reason.contains(secret));
    }
    // The rest is kept as it was.
    assert!(
        raw.contains(r#""content-type":"application/json""#),
        "{raw}"
    );
    assert!(raw.contains(r#""records": 5"#), "{raw}");
}

/// Runs `bodies`, asserting it takes no longer than a normal event (the
/// bound is generous for debug builds on a shared machine).
fn run_fast(bodies: &[&[u8]]) -> Vec<Commit> {
    // One-time costs (the tokenizer, the price table, the patterns) are
    // not the event's.
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let req = request("warm", "");
        let resp = response(
            "warm",
            &sse(&[r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#]),
            "",
        );
        run(&[req.as_bytes(), resp.as_bytes(), b"{\"x\":1}"]);
    });
    let t = Instant::now();
    let commits = run(bodies);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(200), "took {took:?}");
    commits
}

fn request(id: &str, chunk: &str) -> String {
    format!(
        r#"{{"schema":"ledger/v1","kind":"request","requestId":"{id}","time":"2026-11-23T10:00:00Z","url":"https://h/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21","body":"{{\"messages\":[],\"stream\":true}}"{chunk}}}"#
    )
}

fn response(id: &str, body: &str, chunk: &str) -> String {
    let body = serde_json::to_string(body).unwrap();
    format!(
        r#"{{"schema":"ledger/v1","kind":"response","requestId":"{id}","time":"2026-11-23T10:00:01Z","status":200,"body":{body}{chunk}}}"#
    )
}

#[test]
fn a_chunk_count_of_u32_max_is_dead_lettered_fast() {
    let chunk = format!(r#","chunk":{{"index":0,"count":{}}}"#, u32::MAX);
    let req = request("r1", &chunk);
    let resp = response("r1", r#"{"choices":[]}"#, &chunk);
    let commits = run_fast(&[req.as_bytes(), resp.as_bytes()]);
    let dead: Vec<_> = commits.iter().flat_map(|c| &c.dead_letters).collect();
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0].item.reason.contains("chunk"),
        "{}",
        dead[0].item.reason
    );
    // Just within the limit: accepted, and flagged as missing chunks.
    let chunk = format!(
        r#","chunk":{{"index":0,"count":{}}}"#,
        ledger_core::limits::MAX_CHUNKS
    );
    let req = request("r2", &chunk);
    let commits = run_fast(&[req.as_bytes()]);
    let rec = &commits[0].records[0].item;
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("9999 of 10000 chunks missing")),
        "{:?}",
        rec.warnings
    );
}

fn sse(chunks: &[&str]) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str("data: ");
        s.push_str(c);
        s.push_str("\n\n");
    }
    s.push_str("data: [DONE]\n\n");
    s
}

fn one_record(resp_body: &str) -> ledger_core::CallRecord {
    let req = request("r1", "");
    let resp = response("r1", resp_body, "");
    let commits = run_fast(&[req.as_bytes(), resp.as_bytes()]);
    assert!(commits.iter().all(|c| c.dead_letters.is_empty()));
    commits[0].records[0].item.clone()
}

#[test]
fn a_huge_choice_index_costs_nothing_and_extra_choices_are_flagged() {
    let rec = one_record(&sse(&[
        r#"{"object":"chat.completion.chunk","choices":[{"index":4000000000,"delta":{"content":"hi"}}]}"#,
        r#"{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"yo"}}]}"#,
    ]));
    assert_eq!(rec.response_text.as_deref(), Some("yo\nhi"));
    // More distinct choices than the limit: the rest dropped, flagged.
    let many: Vec<String> = (0..200)
        .map(|i| {
            format!(
                r#"{{"choices":[{{"index":{},"delta":{{"content":"x"}}}}]}}"#,
                i * 1_000_000
            )
        })
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let rec = one_record(&sse(&many));
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("past the limit of 128")),
        "{:?}",
        rec.warnings
    );
}

#[test]
fn a_huge_tool_call_index_costs_nothing_and_extra_tool_calls_are_flagged() {
    let rec = one_record(&sse(&[
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":9223372036854775807,"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":4000000000,"id":"t2","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}"#,
    ]));
    let tools: serde_json::Value =
        serde_json::from_str(rec.tool_calls.as_deref().unwrap()).unwrap();
    assert_eq!(tools.as_array().unwrap().len(), 2);
    let many: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":{i},"function":{{"name":"f","arguments":"x"}}}}]}}}}]}}"#))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let rec = one_record(&sse(&many));
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("tool-call deltas past the limit of 128")),
        "{:?}",
        rec.warnings
    );
}

#[test]
fn a_huge_n_is_flagged() {
    let req = r#"{"schema":"ledger/v1","kind":"request","requestId":"r1","body":"{\"messages\":[],\"n\":4000000000}"}"#;
    let resp = response("r1", r#"{"object":"chat.completion","choices":[]}"#, "");
    let commits = run_fast(&[req.as_bytes(), resp.as_bytes()]);
    let rec = &commits[0].records[0].item;
    assert_eq!(rec.n, Some(4_000_000_000));
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("request n = 4000000000")),
        "{:?}",
        rec.warnings
    );
}

#[test]
fn a_huge_sequence_number_is_dead_lettered() {
    let body = r#"{"records":[{"time":"2024-05-24T14:45:56Z","category":"GatewayLlmLogs","correlationId":"c1","properties":{"sequenceNumber":4000000000,"requestMessages":"[]"}}]}"#;
    let commits = run_fast(&[body.as_bytes()]);
    let dead: Vec<_> = commits.iter().flat_map(|c| &c.dead_letters).collect();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].item.reason.contains("sequenceNumber"));
}

#[test]
fn an_oversized_dead_letter_keeps_a_prefix_its_length_and_hash() {
    let mut body = format!(r#"{{"api-key":"{API_KEY}","junk":""#).into_bytes();
    body.resize(3 << 20, b'a');
    body.extend_from_slice(b"\"}");
    let commits = run(&[&body]);
    let dl = &commits[0].dead_letters[0].item;
    assert_eq!(
        dl.raw.len(),
        ledger_core::limits::DEAD_LETTER_RAW_PREFIX - API_KEY.len() + 3
    );
    assert!(!String::from_utf8_lossy(&dl.raw).contains(API_KEY));
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&body));
    assert!(
        dl.reason.contains(&format!("of {}", body.len())),
        "{}",
        dl.reason
    );
    assert!(dl.reason.contains(&sha), "{}", dl.reason);
}

#[test]
fn untokenisable_bytes_are_masked_and_said_so() {
    let body = format!("\u{1}garbage Api-Key {API_KEY} more");
    let commits = run(&[body.as_bytes()]);
    let dl = &commits[0].dead_letters[0].item;
    assert!(!String::from_utf8_lossy(&dl.raw).contains(API_KEY));
    assert!(dl.reason.contains("partly masked"), "{}", dl.reason);
}

#[test]
fn enterprise_logging_completion_prompt_is_stored_once_encoded() {
    // Issue 7, defect 5, end to end: the record's prompt_text is the
    // prompt as JSON (as chat messages are), not JSON of JSON.
    let req = br#"{"event-type":"Request","event-time":"5/24/2024 2:45:56 PM","backend":"contoso-apim.azure-api.net","message-id":"m1","operation":"Completions_Create","model":"","prompt":"\"Write a short tagline.\\n\"","messages":""}"#;
    let resp = br#"{"event-type":"Response","event-time":"5/24/2024 2:45:57 PM","backend":"contoso-apim.azure-api.net","message-id":"m1","choices":"[{\"text\":\"Fast.\",\"index\":0,\"finish_reason\":\"stop\"}]","operation":"Completions_Create","model":"gpt-35-turbo-instruct","modeltime":"100","completion_tokens":"2","prompt_tokens":"6","total_tokens":"8"}"#;
    let commits = run(&[req, resp]);
    let rec = &commits[0].records[0].item;
    assert_eq!(
        rec.prompt_text.as_deref(),
        Some(r#""Write a short tagline.\n""#)
    );
    assert_eq!(rec.response_text.as_deref(), Some("Fast."));
}
