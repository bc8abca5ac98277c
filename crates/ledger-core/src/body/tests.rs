use serde_json::{Value, json};

use super::*;
use crate::model::Usage;
use proptest::prelude::*;

fn sse(chunks: &[Value]) -> String {
    let mut s: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    s.push_str("data: [DONE]\n\n");
    s
}

fn chunk(choices: Value) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1732000000,
           "model": "gpt-4o-2024-08-06", "choices": choices})
}

fn usage(p: i64, c: i64, t: i64) -> Usage {
    Usage {
        prompt_tokens: Some(p),
        completion_tokens: Some(c),
        total_tokens: Some(t),
        ..Usage::default()
    }
}

// ---- requests

#[test]
fn chat_request_with_numbers_as_strings() {
    let r = parse_request(
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":"true",
            "stream_options":{"include_usage":true},"max_tokens":"100","temperature":"0.5","n":2,"user":"alice"}"#,
    );
    assert_eq!(r.model.as_deref(), Some("gpt-4o"));
    assert_eq!(r.messages, Some(json!([{"role":"user","content":"hi"}])));
    assert!(r.stream && r.include_usage && !r.truncated);
    assert_eq!(
        (r.max_tokens, r.temperature, r.n),
        (Some(100), Some(0.5), Some(2))
    );
    assert_eq!(r.user.as_deref(), Some("alice"));
}

#[test]
fn completions_embeddings_and_responses_requests() {
    let c = parse_request(r#"{"prompt":["Once upon"],"max_completion_tokens":7}"#);
    assert_eq!(
        (c.prompt, c.max_tokens),
        (Some(json!(["Once upon"])), Some(7))
    );
    let e = parse_request(r#"{"input":"embed me","model":"text-embedding-3-small"}"#);
    assert_eq!(e.input, Some(json!("embed me")));
    assert!(!e.stream);
    let resp = parse_request(
        r#"{"model":"gpt-4.1","input":[{"role":"user","content":"hi"}],"instructions":"be brief","max_output_tokens":64,"stream":true}"#,
    );
    assert_eq!(resp.instructions.as_deref(), Some("be brief"));
    assert_eq!(resp.max_tokens, Some(64));
    assert!(resp.stream && !resp.include_usage);
}

#[test]
fn cut_request_keeps_fields_before_the_cut() {
    let r = parse_request(
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"You are"},{"role":"user","content":"Tell me ab"#,
    );
    assert!(r.truncated && r.stream);
    assert_eq!(r.model.as_deref(), Some("gpt-4o"));
    assert_eq!(
        r.messages,
        Some(json!([{"role":"system","content":"You are"},{"role":"user","content":"Tell me ab"}]))
    );
    // Cut inside a non-text value: that member is dropped, not guessed.
    let r = parse_request(r#"{"stream":true,"model":"gpt-4o-20"#);
    assert!(r.truncated && r.stream);
    assert_eq!(r.model, None);
}

#[test]
fn unreadable_and_empty_requests() {
    let r = parse_request("not json at all");
    assert!(r.truncated);
    assert_eq!(
        r,
        ParsedRequest {
            truncated: true,
            ..ParsedRequest::default()
        }
    );
    assert_eq!(parse_request("  "), ParsedRequest::default());
    // Double-encoded body.
    let r = parse_request(r#""{\"model\":\"gpt-4o\",\"stream\":true}""#);
    assert!(r.stream && !r.truncated);
}

// ---- non-streamed responses

#[test]
fn chat_completion_with_tool_calls_and_details() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1732000000, "model": "gpt-4o-2024-08-06",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {"hate": {"filtered": false, "severity": "safe"}}}],
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            "content_filter_results": {}}],
        "usage": {"prompt_tokens": "50", "completion_tokens": 17, "total_tokens": 67,
                  "prompt_tokens_details": {"cached_tokens": 32}, "completion_tokens_details": {"reasoning_tokens": "0"}}
    });
    let r = parse_response(&body.to_string());
    assert!(!r.truncated && !r.is_stream && r.warnings.is_empty());
    assert_eq!(r.id.as_deref(), Some("chatcmpl-1"));
    assert_eq!(r.object.as_deref(), Some("chat.completion"));
    assert_eq!(r.created, Some(1732000000));
    assert_eq!(r.finish_reason(), Some("tool_calls"));
    assert_eq!(
        r.choices[0].tool_calls,
        vec![ToolCall {
            id: Some("call_1".into()),
            kind: Some("function".into()),
            name: Some("get_weather".into()),
            arguments: "{\"city\":\"Paris\"}".into(),
        }]
    );
    assert_eq!(
        r.usage,
        Some(Usage {
            cached_tokens: Some(32),
            reasoning_tokens: Some(0),
            ..usage(50, 17, 67)
        })
    );
    // The rebuilt body is the original, its counts as numbers.
    let mut want = body.clone();
    want["usage"]["prompt_tokens"] = json!(50);
    want["usage"]["completion_tokens_details"]["reasoning_tokens"] = json!(0);
    assert_eq!(r.to_json(None), want);
}

#[test]
fn text_completion_embeddings_and_error() {
    let r = parse_response(
        r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-35-turbo-instruct","choices":[{"text":" a time","index":0,"finish_reason":"length","logprobs":null}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
    );
    assert_eq!(r.choices[0].text, " a time");
    assert_eq!(
        r.to_json(None),
        json!({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-35-turbo-instruct",
               "choices":[{"index":0,"text":" a time","finish_reason":"length"}],
               "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})
    );

    let e = parse_response(
        r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]},{"object":"embedding","index":1,"embedding":[0.3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
    );
    assert_eq!((e.object.as_deref(), e.embeddings), (Some("list"), Some(2)));
    let u = Usage {
        prompt_tokens: Some(8),
        total_tokens: Some(8),
        ..Usage::default()
    };
    assert_eq!(e.usage, Some(u));
    assert_eq!(
        e.to_json(None),
        json!({"object":"list","model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})
    );

    let err = parse_response(
        r#"{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter","status":400}}"#,
    );
    assert_eq!(err.error.as_deref(), Some("The response was filtered"));
    assert!(err.choices.is_empty() && err.usage.is_none() && !err.truncated);
    assert_eq!(
        err.to_json(None),
        json!({"error": {"message": "The response was filtered"}})
    );
}

#[test]
fn responses_api_json() {
    let r = parse_response(
        &json!({
            "id": "resp_1", "object": "response", "created_at": 1741476542, "status": "completed",
            "model": "gpt-4.1-2025-04-14",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Hello ", "annotations": []},
                             {"type": "output_text", "text": "there.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "lookup", "arguments": "{\"q\":1}"}
            ],
            "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 123}
        })
        .to_string(),
    );
    assert_eq!(r.object.as_deref(), Some("response"));
    assert_eq!(r.created, Some(1741476542));
    assert_eq!(r.choices.len(), 1);
    assert_eq!(r.choices[0].text, "Hello there.");
    assert_eq!(r.choices[0].tool_calls[0].id.as_deref(), Some("call_9"));
    assert_eq!(r.finish_reason(), Some("tool_calls"));
    let u = Usage {
        cached_tokens: Some(0),
        reasoning_tokens: Some(64),
        ..usage(36, 87, 123)
    };
    assert_eq!(r.usage, Some(u));
    let j = r.to_json(None);
    assert_eq!(j["output_text"], "Hello there.");
    assert_eq!(j["usage"]["prompt_tokens"], 36);
    assert_eq!(
        j["usage"]["completion_tokens_details"]["reasoning_tokens"],
        64
    );
    assert_eq!(j["choices"][0]["message"]["content"], "Hello there.");

    let inc = parse_response(
        r#"{"id":"resp_2","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":{"input_tokens":5,"output_tokens":16,"total_tokens":21}}"#,
    );
    assert_eq!(inc.finish_reason(), Some("length"));
}

#[test]
fn cut_json_response_keeps_what_came_before() {
    // Azure writes keys alphabetically: the cut lands in `choices`.
    let full = json!({"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Bonjour — le monde entier","role":"assistant"}}],
                      "created":1,"id":"x","model":"gpt-4o","object":"chat.completion",
                      "usage":{"completion_tokens":5,"prompt_tokens":3,"total_tokens":8}})
    .to_string();
    let at = full.find("le monde").unwrap_or(0);
    let r = parse_response(&full[..at]);
    assert!(r.truncated);
    assert_eq!(r.choices[0].text, "Bonjour — ");
    assert!(r.warnings.iter().any(|w| w.contains("cut JSON")));

    // OpenAI order: model first, usage cut before its total is dropped.
    let r = parse_response(
        r#"{"id":"chatcmpl-2","object":"chat.completion","created":7,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"#,
    );
    assert!(r.truncated);
    assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(r.choices[0].text, "ok");
    assert_eq!(r.usage, None);
}

#[test]
fn every_cut_of_a_json_body_is_safe_and_a_prefix() {
    let content = "Grüße 👋 \"quoted\" \\ back\nslash \u{1} ok";
    let full = json!({"choices":[{"index":0,"message":{"role":"assistant","content":content},"finish_reason":"stop"}],
                      "model":"gpt-4o","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})
    .to_string();
    for cut in (0..full.len()).filter(|c| full.is_char_boundary(*c)) {
        let r = parse_response(&full[..cut]);
        if cut > 0 {
            assert!(r.truncated, "cut {cut}");
        }
        for c in &r.choices {
            assert!(content.starts_with(&c.text), "cut {cut}: {:?}", c.text);
        }
        if let Some(u) = r.usage {
            assert_eq!(u, usage(1, 2, 3));
        }
        let _ = r.to_json(None);
    }
}

#[test]
fn other_bodies() {
    let s = parse_response("streaming");
    assert!(s.is_stream && s.choices.is_empty() && s.usage.is_none() && !s.stream_complete);
    assert_eq!(s.warnings.len(), 1);
    let n = parse_response("<html>Bad gateway</html>");
    assert_eq!(
        n.warnings,
        vec!["response body is neither JSON nor SSE".to_string()]
    );
    assert!(n.choices.is_empty() && !n.is_stream);
    assert_eq!(parse_response(""), ParsedResponse::default());
}

// ---- SSE chat

fn annotation() -> Value {
    json!({"id":"","object":"","created":0,"model":"","choices":[],
           "prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]})
}

#[test]
fn sse_chat_with_annotation_and_usage() {
    let body = sse(&[
        annotation(),
        chunk(json!([{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}])),
        chunk(json!([{"index":0,"delta":{"content":"Bonjour"},"finish_reason":null}])),
        chunk(json!([{"index":0,"delta":{"content":" ça va ?"},"finish_reason":null}])),
        chunk(json!([{"index":0,"delta":{},"finish_reason":"stop"}])),
        json!({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-2024-08-06",
               "choices":[],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30}}),
    ]);
    let r = parse_response(&body);
    assert!(
        r.is_stream && r.stream_complete && !r.truncated,
        "{:?}",
        r.warnings
    );
    assert!(r.warnings.is_empty());
    assert_eq!(r.object.as_deref(), Some("chat.completion"));
    assert_eq!(r.id.as_deref(), Some("chatcmpl-9"));
    assert_eq!(r.usage, Some(usage(21, 9, 30)));
    assert_eq!(
        r.to_json(None),
        json!({"id":"chatcmpl-9","object":"chat.completion","created":1732000000,"model":"gpt-4o-2024-08-06",
               "choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour ça va ?"},"finish_reason":"stop"}],
               "usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30},
               "prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]})
    );
    // A given usage replaces the body's.
    let est = usage(1, 2, 3);
    assert_eq!(
        r.to_json(Some(&est))["usage"],
        json!({"prompt_tokens":1,"completion_tokens":2,"total_tokens":3})
    );
}

#[test]
fn sse_chat_n2_without_usage_and_crlf() {
    let body = sse(&[
        chunk(json!([{"index":0,"delta":{"role":"assistant","content":"A1"}},{"index":1,"delta":{"role":"assistant","content":"B1"}}])),
        chunk(json!([{"index":1,"delta":{"content":" B2"}}])),
        chunk(json!([{"index":0,"delta":{"content":" A2"},"finish_reason":"length"}])),
        chunk(json!([{"index":1,"delta":{},"finish_reason":"stop"}])),
    ])
    .replace('\n', "\r\n");
    let r = parse_response(&body);
    assert!(r.stream_complete && !r.truncated && r.usage.is_none());
    let got: Vec<(u32, &str, Option<&str>)> = r
        .choices
        .iter()
        .map(|c| (c.index, c.text.as_str(), c.finish_reason.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![(0, "A1 A2", Some("length")), (1, "B1 B2", Some("stop"))]
    );
    assert_eq!(r.to_json(None).get("usage"), None);
}

#[test]
fn sse_tool_calls_in_pieces() {
    let body = sse(&[
        chunk(
            json!([{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[
            {"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]),
        ),
        chunk(
            json!([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}]),
        ),
        chunk(
            json!([{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]}}]),
        ),
        chunk(
            json!([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}}]),
        ),
        chunk(json!([{"index":0,"delta":{},"finish_reason":"tool_calls"}])),
    ]);
    let r = parse_response(&body);
    let calls = &r.choices[0].tool_calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (
            calls[0].id.as_deref(),
            calls[0].name.as_deref(),
            calls[0].arguments.as_str()
        ),
        (Some("call_a"), Some("get_weather"), "{\"city\":\"Paris\"}")
    );
    assert_eq!(
        (calls[1].name.as_deref(), calls[1].arguments.as_str()),
        (Some("get_time"), "{}")
    );
    let j = r.to_json(None);
    assert_eq!(j["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        j["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn sse_content_filter_chunks_merge_and_cut() {
    let filter = |sev: &str, filtered: bool| {
        json!({"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":null,
            "content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":10},
            "content_filter_results":{"hate":{"filtered":filtered,"severity":sev},"violence":{"filtered":false,"severity":"safe"}}}]})
    };
    let body = sse(&[
        json!({"id":"","object":"","created":0,"model":"","choices":[],
               "prompt_annotations":[{"prompt_index":0,"content_filter_results":{}}]}),
        chunk(json!([{"index":0,"delta":{"role":"assistant","content":"Some text"}}])),
        filter("medium", true),
        chunk(json!([{"index":0,"delta":{},"finish_reason":"content_filter"}])),
        filter("safe", false),
    ]);
    let r = parse_response(&body);
    assert_eq!(
        r.prompt_filter_results,
        Some(json!([{"prompt_index":0,"content_filter_results":{}}]))
    );
    assert_eq!(r.finish_reason(), Some("content_filter"));
    assert_eq!(
        r.choices[0].content_filter_results,
        Some(
            json!({"hate":{"filtered":true,"severity":"medium"},"violence":{"filtered":false,"severity":"safe"}})
        )
    );
    assert_eq!(r.choices[0].text, "Some text");
}

#[test]
fn interrupted_and_broken_streams() {
    let full = sse(&[
        chunk(json!([{"index":0,"delta":{"role":"assistant","content":"Hello"}}])),
        chunk(json!([{"index":0,"delta":{"content":" world"}}])),
    ]);
    let cut = &full[..full.find("data: [DONE]").unwrap_or(0)];
    let r = parse_response(cut);
    assert!(r.truncated && !r.stream_complete && r.is_stream);
    assert_eq!(r.choices[0].text, "Hello world");
    assert!(r.warnings.iter().any(|w| w.contains("interrupted")));

    // Cut mid-event: the readable part of that delta is kept.
    let mid = &full[..full.find(" world").unwrap_or(0) + 4];
    let r = parse_response(mid);
    assert!(r.truncated);
    assert_eq!(r.choices[0].text, "Hello wor");
    assert!(r.warnings.iter().any(|w| w.contains("not valid JSON")));

    // Garbage data in the middle: warned, skipped, never a panic.
    let r = parse_response(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: }{\n\ndata: [DONE]\n\n",
    );
    assert!(r.truncated && r.stream_complete);
    assert_eq!(r.choices[0].text, "a");
}

#[test]
fn sse_text_completion_and_multiline_data() {
    let r = parse_response(concat!(
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\" a\",\"index\":0,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\" time\",\"index\":0,\"finish_reason\":\"length\"}]}\n\n",
        "data: [DONE]\n\n"
    ));
    assert_eq!(r.object.as_deref(), Some("text_completion"));
    assert_eq!(r.choices[0].text, " a time");
    assert_eq!(r.to_json(None)["choices"][0]["text"], " a time");

    // One event, its JSON on two data lines; `[DONE]` without a newline.
    let r = parse_response(
        "data: {\"choices\":[{\"index\":0,\ndata:\"delta\":{\"content\":\"x\"}}]}\n\n: ping\n\ndata: [DONE]",
    );
    assert_eq!(r.choices[0].text, "x");
    assert!(r.stream_complete && !r.truncated);
    assert_eq!(r.object.as_deref(), Some("chat.completion"));
}

// ---- SSE Responses API

fn ev(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn responses_stream(terminal: bool) -> String {
    let mut s = String::new();
    s += &ev(
        "response.created",
        json!({"type":"response.created","sequence_number":0,"response":{"id":"resp_7","object":"response","created_at":1741290958,"status":"in_progress","model":"gpt-4.1","output":[],"usage":null}}),
    );
    s += &ev(
        "response.output_item.added",
        json!({"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","content":[]}}),
    );
    for d in ["Hi", " there", " 👋"] {
        s += &ev(
            "response.output_text.delta",
            json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":d}),
        );
    }
    s += &ev(
        "response.output_item.added",
        json!({"type":"response.output_item.added","output_index":1,"item":{"id":"fc_1","type":"function_call","call_id":"call_1","name":"lookup","arguments":""}}),
    );
    for d in ["{\"q\":", "2}"] {
        s += &ev(
            "response.function_call_arguments.delta",
            json!({"type":"response.function_call_arguments.delta","output_index":1,"item_id":"fc_1","delta":d}),
        );
    }
    if terminal {
        s += &ev(
            "response.completed",
            json!({"type":"response.completed","response":{"id":"resp_7","object":"response","status":"completed","model":"gpt-4.1",
              "output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi there 👋"}]},
                        {"type":"function_call","call_id":"call_1","name":"lookup","arguments":"{\"q\":2}"}],
              "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":6,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":16}}}),
        );
    }
    s
}

#[test]
fn responses_sse_complete_and_interrupted() {
    let r = parse_response(&responses_stream(true));
    assert!(
        r.is_stream && r.stream_complete && !r.truncated,
        "{:?}",
        r.warnings
    );
    assert_eq!(r.object.as_deref(), Some("response"));
    assert_eq!(
        (r.id.as_deref(), r.model.as_deref(), r.created),
        (Some("resp_7"), Some("gpt-4.1"), Some(1741290958))
    );
    assert_eq!(r.choices[0].text, "Hi there 👋");
    assert_eq!(r.choices[0].tool_calls[0].arguments, "{\"q\":2}");
    assert_eq!(r.finish_reason(), Some("tool_calls"));
    let u = Usage {
        cached_tokens: Some(4),
        reasoning_tokens: Some(0),
        ..usage(10, 6, 16)
    };
    assert_eq!(r.usage, Some(u));
    assert_eq!(
        r.to_json(None)["usage"]["prompt_tokens_details"]["cached_tokens"],
        4
    );

    let r = parse_response(&responses_stream(false));
    assert!(r.truncated && !r.stream_complete && r.usage.is_none());
    assert_eq!(r.choices[0].text, "Hi there 👋");
    assert_eq!(
        (
            r.choices[0].tool_calls[0].id.as_deref(),
            r.choices[0].tool_calls[0].arguments.as_str()
        ),
        (Some("call_1"), "{\"q\":2}")
    );
    assert_eq!(r.finish_reason(), None);
}

#[test]
fn responses_sse_failed() {
    let body = ev(
        "response.failed",
        json!({"type":"response.failed","response":{"id":"resp_8","status":"failed","model":"gpt-4.1","output":[],
               "error":{"code":"server_error","message":"The model failed"},"usage":null}}),
    );
    let r = parse_response(&body);
    assert!(r.stream_complete && r.choices.is_empty());
    assert_eq!(r.error.as_deref(), Some("The model failed"));
}

/// The typed fast path takes only what the generic path would read the
/// same way: each event is also read with an unknown member added (which
/// sends it down the generic path), and both must agree.
#[test]
fn fast_and_generic_paths_agree() {
    let events = [
        r#"{"id":"c","object":"chat.completion.chunk","created":5,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"role":"assistant","content":"a\nb\"c"},"finish_reason":null,"logprobs":null}]}"#,
        r#"{"created":null,"created_at":7,"choices":[{"index":"1","delta":{"content":"x"}}]}"#,
        r#"{"created":"8","choices":[{"delta":{"content":"y"},"text":"t","finish_reason":" "}]}"#,
        r#"{"prompt_filter_results":null,"prompt_annotations":[{"prompt_index":0}],"choices":[]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}},{"function":{"arguments":"1}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"function_call":{"name":"g","arguments":"{}"}},"content_filter_results":{"hate":{"filtered":true,"severity":"low"}}}]}"#,
        r#"{"choices":[{"index":0,"delta":[],"content_filter_results":{"hate":{"filtered":false,"severity":"high"}}}]}"#,
        r#"{"choices":[{"index":4294967296,"delta":{"content":"z"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
        r#"{"choices":[{"index":1.0,"delta":{"content":"w","content":"v"}}],"error":{"message":"boom"}}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"\ud800"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"q"},"logprobs":[[[1e999]]]}]}"#,
        r#"{"type":"response.output_text.delta","output_index":0,"content_index":"1","delta":"Hi"}"#,
        r#"{"type":"response.output_text.delta","output_index":0,"content_index":0,"delta":" there"}"#,
        r#"{"type":"response.function_call_arguments.delta","output_index":1,"item_id":"fc","delta":"{}"}"#,
        r#"{"type":"response.output_text.delta","delta":null,"sequence_number":3}"#,
    ];
    let body = |with_extra: bool, name: Option<&str>| {
        let mut s = String::new();
        for e in &events {
            if let Some(n) = name {
                s += &format!("event: {n}\n");
            }
            let e = if with_extra {
                format!("{{\"not_a_known_member\":0,{}", &e[1..])
            } else {
                (*e).to_string()
            };
            s += &format!("data: {e}\n\n");
        }
        s + "data: [DONE]\n\n"
    };
    for name in [None, Some("response.output_text.delta")] {
        for n in 1..=events.len() {
            let fast = body(false, name);
            let generic = body(true, name);
            // Every prefix of whole events, so each event's effect counts.
            let cut = |b: &str| {
                let mut at = 0;
                for _ in 0..n {
                    at += b[at..].find("\n\n").map_or(b.len() - at, |i| i + 2);
                }
                b[..at].to_string()
            };
            let (a, b) = (parse_response(&cut(&fast)), parse_response(&cut(&generic)));
            assert_eq!(
                format!("{a:?}"),
                format!("{b:?}"),
                "{n} events, event name {name:?}"
            );
        }
    }
}

// ---- properties

/// Splits `s` into pieces at the given byte offsets (moved back to char
/// boundaries).
fn pieces(s: &str, cuts: &[usize]) -> Vec<String> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| {
            let mut c = c % (s.len() + 1);
            while !s.is_char_boundary(c) {
                c -= 1;
            }
            c
        })
        .collect();
    points.extend([0, s.len()]);
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| s[w[0]..w[1]].to_string())
        .collect()
}

fn content_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..40)
            .prop_map(|v| v.into_iter().collect::<String>()),
        "[a-z \"\\\\\n\r\té😀{}\\[\\]:,]{0,40}",
    ]
}

/// A chat SSE body for `contents` (one per choice), each split into
/// deltas at `cuts`, choices interleaved.
fn build_stream(
    contents: &[String],
    cuts: &[usize],
    usage: Option<(i64, i64)>,
    crlf: bool,
) -> String {
    let mut chunks = vec![annotation()];
    let split: Vec<Vec<String>> = contents.iter().map(|c| pieces(c, cuts)).collect();
    for i in 0..contents.len() {
        chunks.push(chunk(
            json!([{"index": i, "delta": {"role": "assistant", "content": ""}}]),
        ));
    }
    let longest = split.iter().map(Vec::len).max().unwrap_or(0);
    for j in 0..longest {
        for (i, p) in split.iter().enumerate() {
            if let Some(d) = p.get(j) {
                chunks.push(chunk(
                    json!([{"index": i, "delta": {"content": d}, "finish_reason": null}]),
                ));
            }
        }
    }
    for i in 0..contents.len() {
        chunks.push(chunk(
            json!([{"index": i, "delta": {}, "finish_reason": "stop"}]),
        ));
    }
    if let Some((p, c)) = usage {
        chunks.push(json!({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o",
            "choices":[],"usage":{"prompt_tokens":p,"completion_tokens":c,"total_tokens":p + c}}));
    }
    let body = sse(&chunks);
    if crlf {
        body.replace('\n', "\r\n")
    } else {
        body
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// However the content is cut into deltas (and the body into
    /// pieces), the assembled text and usage are the originals.
    #[test]
    fn deltas_reassemble_the_content(
        contents in proptest::collection::vec(content_strategy(), 1..4),
        cuts in proptest::collection::vec(0usize..64, 0..8),
        body_cuts in proptest::collection::vec(0usize..8192, 0..6),
        usage in proptest::option::of((0i64..1_000_000, 0i64..1_000_000)),
        crlf in any::<bool>(),
    ) {
        let body = build_stream(&contents, &cuts, usage, crlf);
        let joined: String = pieces(&body, &body_cuts).concat();
        let r = parse_response(&joined);
        prop_assert!(r.stream_complete && !r.truncated, "{:?}", r.warnings);
        prop_assert!(r.warnings.is_empty());
        let texts: Vec<&str> = r.choices.iter().map(|c| c.text.as_str()).collect();
        let want: Vec<&str> = contents.iter().map(String::as_str).collect();
        prop_assert_eq!(texts, want);
        prop_assert_eq!(r.usage, usage.map(|(p, c)| self::usage(p, c, p + c)));
        let j = r.to_json(None);
        prop_assert_eq!(&j["choices"][0]["message"]["content"], &json!(contents[0]));
    }

    /// A body cut anywhere never panics, keeps a prefix of each
    /// content, and is flagged unless the cut is after `[DONE]`.
    #[test]
    fn a_cut_stream_keeps_a_prefix(
        contents in proptest::collection::vec(content_strategy(), 1..3),
        cuts in proptest::collection::vec(0usize..64, 0..6),
        cut in 0usize..8192,
        crlf in any::<bool>(),
    ) {
        let body = build_stream(&contents, &cuts, Some((5, 7)), crlf);
        let mut at = cut % (body.len() + 1);
        while !body.is_char_boundary(at) {
            at -= 1;
        }
        let r = parse_response(&body[..at]);
        for c in &r.choices {
            let i = usize::try_from(c.index).unwrap_or(usize::MAX);
            prop_assert!(i < contents.len());
            prop_assert!(contents[i].starts_with(&c.text), "{:?} / {:?}", c.text, contents[i]);
        }
        let done = body.find("data: [DONE]").unwrap_or(body.len()) + "data: [DONE]".len();
        // Before `data:` is whole the text is not recognisably SSE.
        if at >= "data:".len() && at < done {
            prop_assert!(r.truncated && !r.stream_complete, "cut at {}", at);
        }
        if let Some(u) = r.usage {
            prop_assert_eq!(u, usage(5, 7, 12));
        }
        let _ = r.to_json(None);
    }

    /// Any text, JSON- or SSE-looking or not, parses without a panic.
    #[test]
    fn arbitrary_text_never_panics(
        parts in proptest::collection::vec(prop_oneof![
            Just("data: ".to_string()), Just("event: response.completed\n".to_string()),
            Just("{".to_string()), Just("}".to_string()), Just("[".to_string()), Just("]".to_string()),
            Just("\"".to_string()), Just("\\".to_string()), Just(":".to_string()), Just(",".to_string()),
            Just("\n".to_string()), Just("\r\n".to_string()), Just("\r".to_string()), Just("[DONE]".to_string()),
            Just("\"choices\"".to_string()), Just("\"delta\"".to_string()), Just("\"content\"".to_string()),
            Just("\"index\"".to_string()), Just("\"usage\"".to_string()), Just("\"type\"".to_string()),
            Just("\"response.output_text.delta\"".to_string()), Just("\\u12".to_string()), Just("-1".to_string()),
            Just("1e999".to_string()), Just("null".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ], 0..60),
    ) {
        let text: String = parts.concat();
        let _ = parse_request(&text);
        let r = parse_response(&text);
        let _ = r.to_json(None);
        let _ = parse_response(&format!("data: {text}"));
        let _ = parse_response(&format!("{{\"choices\":{text}"));
    }
}
