//! Azure OpenAI request and response bodies: parse a request, and rebuild a
//! response (non-streamed JSON or SSE) into one normalised shape.
//!
//! OWNER: body helper. Public API below is the contract with `assemble`.
//!
//! Nothing here panics on input: bodies arrive cut (APIM's 200 KB event
//! limit, the 8 KB diagnostic log limit), interrupted, or in odd dialects.
//! A cut JSON body is closed at the last point where it can be closed
//! ([`repair`]), so the fields before the cut are kept.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::Usage;

/// What the ledger needs from a request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedRequest {
    pub model: Option<String>,
    /// `messages` (chat) — kept as JSON.
    pub messages: Option<Value>,
    /// `prompt` (legacy completions).
    pub prompt: Option<Value>,
    /// `input` (embeddings, Responses API).
    pub input: Option<Value>,
    /// `instructions` (Responses API).
    pub instructions: Option<String>,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// `max_tokens`, or `max_completion_tokens` / `max_output_tokens`.
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub n: Option<i64>,
    /// The OpenAI `user` field.
    pub user: Option<String>,
    /// The body was not complete JSON (cut); what could be read is above.
    pub truncated: bool,
}

/// One tool call of a choice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// One choice of a completion, assembled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choice {
    pub index: u32,
    pub role: Option<String>,
    /// Message content (chat), text (completions) or output text (Responses).
    pub text: String,
    pub finish_reason: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// Merged `content_filter_results` seen for this choice.
    pub content_filter_results: Option<Value>,
}

/// A response body rebuilt into one shape, whatever form it arrived in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedResponse {
    pub id: Option<String>,
    /// `chat.completion`, `text_completion`, `list` (embeddings),
    /// `response` (Responses API); streamed chunks are reported under the
    /// non-streamed object name.
    pub object: Option<String>,
    pub model: Option<String>,
    pub created: Option<i64>,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
    /// The body was SSE.
    pub is_stream: bool,
    /// A streamed body reached its end (`[DONE]`, `response.completed`).
    pub stream_complete: bool,
    pub prompt_filter_results: Option<Value>,
    /// Number of embedding vectors (embeddings responses).
    pub embeddings: Option<usize>,
    /// `{"error": {...}}` body: the error message.
    pub error: Option<String>,
    /// The body was not complete (cut JSON, interrupted stream).
    pub truncated: bool,
    pub warnings: Vec<String>,
}

/// Parses a request body. Never fails: unreadable input gives a mostly empty
/// result with `truncated` set.
pub fn parse_request(text: &str) -> ParsedRequest {
    let mut r = ParsedRequest::default();
    let (value, read) = read_json(text);
    r.truncated = read.damaged();
    let Some(Value::Object(m)) = value else {
        if r.truncated {
            r.model = scan_string_field(text, "model");
        }
        return r;
    };
    r.model = nonempty_str(m.get("model"));
    if r.model.is_none() && r.truncated {
        r.model = scan_string_field(text, "model");
    }
    r.messages = non_null(m.get("messages"));
    r.prompt = non_null(m.get("prompt"));
    r.input = non_null(m.get("input"));
    r.instructions = m.get("instructions").and_then(text_of);
    r.stream = m.get("stream").and_then(bool_of).unwrap_or(false);
    r.include_usage = m
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(bool_of)
        .unwrap_or(false);
    r.max_tokens = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| m.get(*k).and_then(int_of));
    r.temperature = m.get("temperature").and_then(float_of);
    r.n = m.get("n").and_then(int_of);
    r.user = m.get("user").and_then(text_of);
    r
}

/// Parses a response body: JSON (chat, completions, embeddings, Responses)
/// or SSE (chat/completions chunks, Responses API events). Never fails.
pub fn parse_response(text: &str) -> ParsedResponse {
    let mut r = ParsedResponse::default();
    // Only the start is trimmed: trailing spaces may belong to a cut string.
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.is_empty() {
        return r;
    }
    // The enterprise-logging-tf policy logs this word instead of an SSE body.
    if t.trim_end().eq_ignore_ascii_case("streaming") {
        r.is_stream = true;
        r.warnings.push(
            "response body logged as `streaming`: no completion text or usage was kept".into(),
        );
        return r;
    }
    if t.starts_with("data:") || t.starts_with("event:") || t.starts_with(':') {
        parse_sse(t, &mut r);
        return r;
    }
    if !(t.starts_with('{') || t.starts_with('[') || t.starts_with('"')) {
        r.warnings
            .push("response body is neither JSON nor SSE".into());
        return r;
    }
    let (value, read) = read_json(t);
    match read {
        Read::Cut => r
            .warnings
            .push("response body is cut JSON: kept the fields before the cut".into()),
        Read::Invalid => r
            .warnings
            .push("response body is not valid JSON: kept what could be read".into()),
        Read::Trailing => r
            .warnings
            .push("response body has data after its JSON: ignored".into()),
        Read::Whole | Read::Empty => {}
    }
    r.truncated = read.damaged();
    let repaired = r.truncated;
    match value {
        Some(Value::Object(m)) => read_response_object(&m, &mut r, repaired),
        // A bare `choices` array, as some policies log it.
        Some(Value::Array(a))
            if a.iter()
                .any(|c| c.get("message").is_some() || c.get("text").is_some()) =>
        {
            r.choices = a
                .iter()
                .enumerate()
                .filter_map(|(i, c)| read_choice(i, c))
                .collect();
            r.object = infer_object(&r.choices, a.iter().any(|c| c.get("text").is_some()));
        }
        Some(_) => r
            .warnings
            .push("response body is JSON but not a response object".into()),
        None => {}
    }
    if r.truncated && r.model.is_none() {
        r.model = scan_string_field(t, "model");
    }
    r
}

impl ParsedResponse {
    /// The equivalent non-streamed JSON body (what a non-streamed call would
    /// have returned), with `usage` replaced by the given one when present.
    ///
    /// Responses API bodies are rebuilt in the chat shape (`choices`, plus
    /// `output_text`) with usage under the chat names (`prompt_tokens`,
    /// `completion_tokens`, ...), so one query path such as
    /// `parse_json(body)['usage']['prompt_tokens']` reads every call.
    pub fn to_json(&self, usage: Option<&Usage>) -> Value {
        let usage = usage.copied().or(self.usage);
        let mut m = Map::new();
        if self.choices.is_empty()
            && usage.is_none()
            && self.embeddings.is_none()
            && let Some(e) = &self.error
        {
            m.insert("error".into(), json!({ "message": e }));
            return Value::Object(m);
        }
        let object = match self.object.as_deref() {
            Some(o) => o,
            None if self.embeddings.is_some() && self.choices.is_empty() => "list",
            None => "chat.completion",
        };
        if object == "list" {
            // Embeddings: the vectors are not worth keeping.
            m.insert("object".into(), "list".into());
            if let Some(model) = &self.model {
                m.insert("model".into(), model.as_str().into());
            }
            if let Some(u) = usage {
                m.insert("usage".into(), usage_json(&u));
            }
            return Value::Object(m);
        }
        if let Some(id) = &self.id {
            m.insert("id".into(), id.as_str().into());
        }
        m.insert("object".into(), object.into());
        if let Some(c) = self.created {
            m.insert("created".into(), c.into());
        }
        if let Some(model) = &self.model {
            m.insert("model".into(), model.as_str().into());
        }
        if object == "response" {
            let text: Vec<&str> = self.choices.iter().map(|c| c.text.as_str()).collect();
            m.insert("output_text".into(), text.join("\n").into());
        }
        let text_completion = object == "text_completion";
        let choices: Vec<Value> = self
            .choices
            .iter()
            .map(|c| choice_json(c, text_completion))
            .collect();
        m.insert("choices".into(), Value::Array(choices));
        if let Some(u) = usage {
            m.insert("usage".into(), usage_json(&u));
        }
        if let Some(p) = &self.prompt_filter_results {
            m.insert("prompt_filter_results".into(), p.clone());
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), json!({ "message": e }));
        }
        Value::Object(m)
    }

    /// The first finish reason, and whether any choice was cut by a filter.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.iter().find_map(|c| c.finish_reason.as_deref())
    }
}

fn choice_json(c: &Choice, text_completion: bool) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), c.index.into());
    if text_completion {
        m.insert("text".into(), c.text.as_str().into());
    } else {
        let mut msg = Map::new();
        msg.insert(
            "role".into(),
            c.role.as_deref().unwrap_or("assistant").into(),
        );
        // As the service does: no text beside tool calls is `null`.
        let content = if c.text.is_empty() && !c.tool_calls.is_empty() {
            Value::Null
        } else {
            c.text.as_str().into()
        };
        msg.insert("content".into(), content);
        if !c.tool_calls.is_empty() {
            let calls: Vec<Value> = c
                .tool_calls
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "type": t.kind.as_deref().unwrap_or("function"),
                        "function": {"name": t.name, "arguments": t.arguments},
                    })
                })
                .collect();
            msg.insert("tool_calls".into(), Value::Array(calls));
        }
        m.insert("message".into(), Value::Object(msg));
    }
    m.insert(
        "finish_reason".into(),
        c.finish_reason.as_deref().map_or(Value::Null, Value::from),
    );
    if let Some(f) = &c.content_filter_results {
        m.insert("content_filter_results".into(), f.clone());
    }
    Value::Object(m)
}

/// Usage in the chat completion's JSON shape (details only when known).
pub(crate) fn usage_json(u: &Usage) -> Value {
    let mut m = Map::new();
    let fields = [
        ("prompt_tokens", u.prompt_tokens),
        ("completion_tokens", u.completion_tokens),
        ("total_tokens", u.total_tokens),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    if let Some(c) = u.cached_tokens {
        m.insert(
            "prompt_tokens_details".into(),
            json!({ "cached_tokens": c }),
        );
    }
    if let Some(r) = u.reasoning_tokens {
        m.insert(
            "completion_tokens_details".into(),
            json!({ "reasoning_tokens": r }),
        );
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------
// Non-streamed JSON

/// How a JSON text read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Empty,
    Whole,
    /// A whole value followed by something else (ignored).
    Trailing,
    /// Ended early: repaired.
    Cut,
    /// Not JSON (syntax error): repaired as far as it went.
    Invalid,
}

impl Read {
    fn damaged(self) -> bool {
        matches!(self, Read::Cut | Read::Invalid)
    }
}

fn read_json(text: &str) -> (Option<Value>, Read) {
    read_json_at(text, 0)
}

fn read_json_at(text: &str, depth: u8) -> (Option<Value>, Read) {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.is_empty() {
        return (None, Read::Empty);
    }
    let mut values = serde_json::Deserializer::from_str(t).into_iter::<Value>();
    let (value, read) = match values.next() {
        Some(Ok(v)) => {
            let rest = t.get(values.byte_offset()..).unwrap_or("");
            (
                Some(v),
                if rest.trim().is_empty() {
                    Read::Whole
                } else {
                    Read::Trailing
                },
            )
        }
        Some(Err(e)) => (
            repair(t),
            if e.is_eof() { Read::Cut } else { Read::Invalid },
        ),
        None => (None, Read::Empty),
    };
    // A body written out as a JSON string (double-encoded): read it once more.
    if let Some(Value::String(s)) = &value
        && depth == 0
        && s.trim_start().starts_with('{')
    {
        return read_json_at(s, 1);
    }
    (value, read)
}

/// Reads a response object; `repaired` says it was rebuilt from a cut text,
/// so a usage missing its total is not trusted.
fn read_response_object(m: &Map<String, Value>, r: &mut ParsedResponse, repaired: bool) {
    if let Some(e) = m.get("error").and_then(error_message) {
        r.error = Some(e);
    }
    r.id = nonempty_str(m.get("id"));
    r.model = nonempty_str(m.get("model"));
    r.created = m
        .get("created")
        .or_else(|| m.get("created_at"))
        .and_then(int_of);
    r.object = nonempty_str(m.get("object")).map(|o| normalise_object(&o));
    let is_responses = match r.object.as_deref() {
        Some(o) => o == "response",
        None => m.get("output").is_some_and(Value::is_array) && m.get("choices").is_none(),
    };
    if is_responses {
        r.object = Some("response".into());
        r.usage = usage_of(m.get("usage"), repaired);
        let (mut choice, has_output) = responses_choice(m);
        choice.finish_reason = responses_finish(m, !choice.tool_calls.is_empty());
        if has_output || matches!(status_of(m), Some("completed" | "incomplete")) {
            r.choices.push(choice);
        }
        return;
    }
    if let Some(p) = m
        .get("prompt_filter_results")
        .or_else(|| m.get("prompt_annotations"))
    {
        merge_prompt_filters(&mut r.prompt_filter_results, p);
    }
    let mut texts = false;
    if let Some(Value::Array(choices)) = m.get("choices") {
        texts = choices.iter().any(|c| c.get("text").is_some());
        r.choices = choices
            .iter()
            .enumerate()
            .filter_map(|(i, c)| read_choice(i, c))
            .collect();
    }
    if let Some(Value::Array(data)) = m.get("data") {
        let embedding_items = data
            .first()
            .and_then(|d| d.get("object"))
            .is_some_and(|o| o == "embedding");
        if r.object.as_deref() == Some("list") || embedding_items {
            r.embeddings = Some(data.len());
            r.object.get_or_insert_with(|| "list".into());
        }
    }
    r.usage = usage_of(m.get("usage"), repaired);
    if r.object.is_none() {
        r.object = infer_object(&r.choices, texts);
    }
}

fn infer_object(choices: &[Choice], texts: bool) -> Option<String> {
    if choices.is_empty() {
        None
    } else if texts {
        Some("text_completion".into())
    } else {
        Some("chat.completion".into())
    }
}

/// One choice of a non-streamed body (a lone chunk's `delta` is read too).
fn read_choice(pos: usize, c: &Value) -> Option<Choice> {
    let o = c.as_object()?;
    let mut ch = Choice {
        index: index_of(o.get("index")).unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX)),
        ..Choice::default()
    };
    if let Some(msg) = o
        .get("message")
        .or_else(|| o.get("delta"))
        .and_then(Value::as_object)
    {
        ch.role = nonempty_str(msg.get("role"));
        ch.text = content_text(msg.get("content"));
        if let Some(Value::Array(calls)) = msg.get("tool_calls") {
            ch.tool_calls = calls.iter().filter_map(read_tool_call).collect();
        }
        if let Some(f) = msg.get("function_call").filter(|f| f.is_object()) {
            ch.tool_calls.push(ToolCall {
                kind: Some("function".into()),
                name: nonempty_str(f.get("name")),
                arguments: arguments_text(f.get("arguments")),
                ..ToolCall::default()
            });
        }
    }
    if let Some(Value::String(t)) = o.get("text") {
        ch.text.push_str(t);
    }
    ch.finish_reason = nonempty_str(o.get("finish_reason"));
    if let Some(f) = o.get("content_filter_results") {
        merge_filters(&mut ch.content_filter_results, f);
    }
    Some(ch)
}

fn read_tool_call(t: &Value) -> Option<ToolCall> {
    let o = t.as_object()?;
    let f = o.get("function");
    Some(ToolCall {
        id: nonempty_str(o.get("id")),
        kind: nonempty_str(o.get("type")),
        name: f.and_then(|f| nonempty_str(f.get("name"))),
        arguments: arguments_text(f.and_then(|f| f.get("arguments"))),
    })
}

/// Message content: a string, or an array of parts whose `text` is joined.
fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect(),
        _ => String::new(),
    }
}

fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Responses API

fn status_of(m: &Map<String, Value>) -> Option<&str> {
    m.get("status").and_then(Value::as_str)
}

/// The output of a Responses object as one choice; `true` when it had any
/// text or tool call. Text parts of one message are joined as they are,
/// messages with a newline.
fn responses_choice(m: &Map<String, Value>) -> (Choice, bool) {
    let mut ch = Choice {
        role: Some("assistant".into()),
        ..Choice::default()
    };
    let mut texts: Vec<String> = Vec::new();
    for item in m
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                if let Some(role) = nonempty_str(item.get("role")) {
                    ch.role = Some(role);
                }
                let text: String = item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("output_text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                texts.push(text);
            }
            Some("function_call") => ch.tool_calls.push(responses_tool_call(item)),
            _ => {}
        }
    }
    if texts.is_empty()
        && let Some(Value::String(s)) = m.get("output_text")
    {
        texts.push(s.clone());
    }
    ch.text = texts.join("\n");
    let has = !ch.text.is_empty() || !ch.tool_calls.is_empty();
    (ch, has)
}

fn responses_tool_call(item: &Value) -> ToolCall {
    ToolCall {
        id: nonempty_str(item.get("call_id")).or_else(|| nonempty_str(item.get("id"))),
        kind: Some("function".into()),
        name: nonempty_str(item.get("name")),
        arguments: arguments_text(item.get("arguments")),
    }
}

/// A Responses `status` in the chat vocabulary, so `finish_reason` and
/// `content_filtered` mean the same for every API.
fn responses_finish(m: &Map<String, Value>, has_tools: bool) -> Option<String> {
    match status_of(m)? {
        "completed" if has_tools => Some("tool_calls".into()),
        "completed" => Some("stop".into()),
        "incomplete" => {
            let reason = m
                .get("incomplete_details")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str);
            Some(match reason {
                Some("max_output_tokens") => "length".into(),
                Some(other) => other.into(),
                None => "incomplete".into(),
            })
        }
        _ => None,
    }
}

/// Accumulates Responses API stream events.
#[derive(Default)]
struct ResponsesStream {
    seen: bool,
    role: Option<String>,
    /// Text per (output_index, content_index).
    texts: BTreeMap<(i64, i64), String>,
    /// Function calls per output_index.
    tools: BTreeMap<i64, ToolCall>,
    last: Option<Map<String, Value>>,
}

impl ResponsesStream {
    fn event(&mut self, ty: &str, d: &Map<String, Value>, r: &mut ParsedResponse) {
        self.seen = true;
        let out = d.get("output_index").and_then(int_of).unwrap_or(0);
        match ty {
            "response.created" | "response.in_progress" | "response.queued" => {
                if let Some(resp) = d.get("response").and_then(Value::as_object) {
                    first_meta(r, resp);
                }
            }
            "response.output_item.added" | "response.output_item.done" => {
                let Some(item) = d.get("item") else { return };
                match item.get("type").and_then(Value::as_str) {
                    Some("function_call") => {
                        let new = responses_tool_call(item);
                        let t = self.tools.entry(out).or_default();
                        t.id = t.id.take().or(new.id);
                        t.kind = t.kind.take().or(new.kind);
                        t.name = t.name.take().or(new.name);
                        if !new.arguments.is_empty() {
                            t.arguments = new.arguments;
                        }
                    }
                    Some("message") => {
                        if let Some(role) = nonempty_str(item.get("role")) {
                            self.role = Some(role);
                        }
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" | "response.output_text.done" => {
                let part = d.get("content_index").and_then(int_of).unwrap_or(0);
                let text = self.texts.entry((out, part)).or_default();
                if ty.ends_with("delta") {
                    if let Some(Value::String(s)) = d.get("delta") {
                        text.push_str(s);
                    }
                } else if let Some(Value::String(s)) = d.get("text") {
                    *text = s.clone();
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(Value::String(s)) = d.get("delta") {
                    self.tools.entry(out).or_default().arguments.push_str(s);
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(Value::String(s)) = d.get("arguments") {
                    self.tools.entry(out).or_default().arguments = s.clone();
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                r.stream_complete = true;
                if let Some(resp) = d.get("response").and_then(Value::as_object) {
                    self.last = Some(resp.clone());
                }
            }
            "error" => {
                if let Some(e) = error_message(&Value::Object(d.clone())) {
                    r.error = Some(e);
                }
            }
            _ => {}
        }
    }

    fn finish(self, r: &mut ParsedResponse, repaired_last: bool) {
        if !self.seen {
            return;
        }
        r.object.get_or_insert_with(|| "response".into());
        // Deltas: parts of one output item joined as they are, items by `\n`.
        let mut texts: Vec<String> = Vec::new();
        let mut current: Option<i64> = None;
        for ((out, _), t) in self.texts {
            if current == Some(out) {
                if let Some(last) = texts.last_mut() {
                    last.push_str(&t);
                }
            } else {
                texts.push(t);
                current = Some(out);
            }
        }
        let mut choice = Choice {
            role: self.role.or_else(|| Some("assistant".into())),
            text: texts.join("\n"),
            tool_calls: self.tools.into_values().collect(),
            ..Choice::default()
        };
        let mut has = !choice.text.is_empty() || !choice.tool_calls.is_empty();
        if let Some(last) = self.last {
            first_meta(r, &last);
            if let Some(u) = usage_of(last.get("usage"), repaired_last) {
                r.usage = Some(u);
            }
            if let Some(e) = last.get("error").and_then(error_message) {
                r.error = Some(e);
            }
            // The final object is authoritative when it carries the output.
            let (fin, fin_has) = responses_choice(&last);
            if fin_has {
                choice = fin;
                has = true;
            }
            choice.finish_reason = responses_finish(&last, !choice.tool_calls.is_empty());
            has |= matches!(status_of(&last), Some("completed" | "incomplete"));
        }
        if has {
            r.choices.push(choice);
        }
    }
}

// ---------------------------------------------------------------------------
// SSE

/// One SSE event; single-line data (the usual case) is borrowed.
struct SseEvent<'a> {
    name: Option<&'a str>,
    data: Option<Cow<'a, str>>,
}

/// Lines of an SSE text, ended by `\r\n`, `\n` or `\r`.
fn sse_lines(t: &str) -> impl Iterator<Item = &str> {
    let mut rest = t;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // `\n` found with memchr; a `\r` can only end the line before it.
        let nl = rest.find('\n');
        let cr = rest.get(..nl.unwrap_or(rest.len()))?.find('\r');
        match cr.or(nl) {
            Some(i) => {
                let line = rest.get(..i).unwrap_or("");
                let skip = if rest.get(i..).is_some_and(|r| r.starts_with("\r\n")) {
                    2
                } else {
                    1
                };
                rest = rest.get(i + skip..).unwrap_or("");
                Some(line)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

fn sse_events(t: &str) -> Vec<SseEvent<'_>> {
    let mut events = Vec::new();
    let mut ev = SseEvent {
        name: None,
        data: None,
    };
    for line in sse_lines(t) {
        if line.is_empty() {
            if ev.data.is_some() || ev.name.is_some() {
                events.push(std::mem::replace(
                    &mut ev,
                    SseEvent {
                        name: None,
                        data: None,
                    },
                ));
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut ev.data {
                Some(d) => {
                    let d = d.to_mut();
                    d.push('\n');
                    d.push_str(value);
                }
                None => ev.data = Some(Cow::Borrowed(value)),
            },
            "event" => ev.name = Some(value),
            _ => {}
        }
    }
    if ev.data.is_some() || ev.name.is_some() {
        events.push(ev);
    }
    events
}

/// One choice being assembled from chunks, with its tool calls by index.
#[derive(Default)]
struct ChoiceAcc {
    choice: Choice,
    tools: BTreeMap<i64, ToolCall>,
}

#[derive(Default)]
struct ChatStream {
    choices: BTreeMap<u32, ChoiceAcc>,
    saw_delta: bool,
    saw_text: bool,
}

impl ChatStream {
    fn chunk(&mut self, m: &Map<String, Value>, repaired: bool, r: &mut ParsedResponse) {
        if let Some(e) = m.get("error").and_then(error_message) {
            r.error = Some(e);
        }
        first_meta(r, m);
        if r.object.is_none() {
            r.object = nonempty_str(m.get("object")).map(|o| normalise_object(&o));
        }
        if let Some(p) = m
            .get("prompt_filter_results")
            .or_else(|| m.get("prompt_annotations"))
        {
            merge_prompt_filters(&mut r.prompt_filter_results, p);
        }
        for (pos, c) in m
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(o) = c.as_object() else { continue };
            let index = match index_of(o.get("index")) {
                Some(i) => i,
                // A cut chunk may have lost its index (Azure writes it after
                // `delta`): only the sole choice can own it then.
                None if repaired => match (self.choices.len(), self.choices.keys().next()) {
                    (0, _) => 0,
                    (1, Some(k)) => *k,
                    _ => continue,
                },
                None => u32::try_from(pos).unwrap_or(u32::MAX),
            };
            let acc = self.choices.entry(index).or_default();
            acc.choice.index = index;
            if let Some(delta) = o.get("delta").and_then(Value::as_object) {
                self.saw_delta = true;
                if let Some(role) = nonempty_str(delta.get("role")) {
                    acc.choice.role = Some(role);
                }
                if let Some(Value::String(s)) = delta.get("content") {
                    acc.choice.text.push_str(s);
                }
                for (tpos, t) in delta
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let Some(to) = t.as_object() else { continue };
                    let ti = to
                        .get("index")
                        .and_then(int_of)
                        .unwrap_or_else(|| i64::try_from(tpos).unwrap_or(i64::MAX));
                    tool_fragment(
                        acc.tools.entry(ti).or_default(),
                        to.get("id"),
                        to.get("type"),
                        to.get("function"),
                    );
                }
                // Deprecated `function_call`: kept as one tool call.
                if let Some(f) = delta.get("function_call").filter(|f| f.is_object()) {
                    let kind = Value::from("function");
                    tool_fragment(acc.tools.entry(-1).or_default(), None, Some(&kind), Some(f));
                }
            }
            if let Some(Value::String(s)) = o.get("text") {
                self.saw_text = true;
                acc.choice.text.push_str(s);
            }
            if let Some(f) = nonempty_str(o.get("finish_reason")) {
                acc.choice.finish_reason = Some(f);
            }
            if let Some(f) = o.get("content_filter_results") {
                merge_filters(&mut acc.choice.content_filter_results, f);
            }
        }
        if let Some(u) = usage_of(m.get("usage"), repaired) {
            r.usage = Some(u);
        }
    }

    fn finish(self, r: &mut ParsedResponse) {
        if r.object.is_none() && (self.saw_delta || self.saw_text) {
            r.object = Some(
                if self.saw_text {
                    "text_completion"
                } else {
                    "chat.completion"
                }
                .into(),
            );
        }
        for (_, mut acc) in self.choices {
            acc.choice.tool_calls = acc.tools.into_values().collect();
            r.choices.push(acc.choice);
        }
    }
}

/// One fragment of a streamed tool call: `id`, `type`, `name` arrive once,
/// `arguments` in pieces.
fn tool_fragment(
    t: &mut ToolCall,
    id: Option<&Value>,
    kind: Option<&Value>,
    function: Option<&Value>,
) {
    if t.id.is_none() {
        t.id = nonempty_str(id);
    }
    if t.kind.is_none() {
        t.kind = nonempty_str(kind);
    }
    if let Some(f) = function {
        if t.name.is_none() {
            t.name = nonempty_str(f.get("name"));
        }
        t.arguments.push_str(&arguments_text(f.get("arguments")));
    }
}

fn parse_sse(t: &str, r: &mut ParsedResponse) {
    r.is_stream = true;
    let mut chat = ChatStream::default();
    let mut responses = ResponsesStream::default();
    let mut bad = 0usize;
    let mut last_repaired = false;
    for ev in sse_events(t) {
        let Some(data) = ev.data else { continue };
        let d = data.trim();
        if d.starts_with("[DONE]") {
            r.stream_complete = true;
            break;
        }
        if d.is_empty() {
            continue;
        }
        match fast::event(d, ev.name, &mut chat, &mut responses, r) {
            Some(fast::Kind::Chat) => continue,
            Some(fast::Kind::Responses) => {
                last_repaired = false;
                continue;
            }
            None => {}
        }
        let (value, repaired) = match serde_json::from_str::<Value>(d) {
            Ok(v) => (v, false),
            Err(_) => {
                bad += 1;
                match repair(d) {
                    Some(v) => (v, true),
                    None => continue,
                }
            }
        };
        let Value::Object(m) = value else {
            if !repaired {
                bad += 1;
            }
            continue;
        };
        let ty = m
            .get("type")
            .and_then(Value::as_str)
            .or(ev.name)
            .unwrap_or("");
        if ty.starts_with("response.") || ty == "error" {
            let ty = ty.to_string();
            last_repaired = repaired;
            responses.event(&ty, &m, r);
        } else {
            chat.chunk(&m, repaired, r);
        }
    }
    chat.finish(r);
    responses.finish(r, last_repaired);
    if bad > 0 {
        r.truncated = true;
        r.warnings.push(format!(
            "{bad} SSE event(s) with data that is not valid JSON (body cut?): kept what could be read"
        ));
    }
    if !r.stream_complete {
        r.truncated = true;
        r.warnings
            .push("stream interrupted: no [DONE] or final event; kept what arrived".into());
    }
}

// ---------------------------------------------------------------------------
// SSE fast path

/// Typed reading of the usual SSE events (chat/completions chunks, Responses
/// API text and argument deltas) without building a `Value` tree: strings
/// are borrowed from the body where they have no escapes.
///
/// It only takes events it reads exactly as the generic path would: every
/// struct denies unknown fields and wants the types the generic path acts
/// on, so anything else (unexpected fields or types, duplicate keys, an
/// array where an object belongs, cut or invalid JSON) fails the typed
/// parse and the event goes the generic way. Fields that are read as JSON
/// values (filters, usage, error) are parsed as `Value` in place; skipped
/// fields are checked like `Value` would check them ([`Skip`]), so an event
/// the generic parser rejects is never taken here.
mod fast {
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;

    use super::{
        ChatStream, ParsedResponse, ResponsesStream, ToolCall, error_message, int_of,
        merge_filters, merge_prompt_filters, normalise_object, usage_of,
    };

    /// Which stream took the event.
    pub(super) enum Kind {
        Chat,
        Responses,
    }

    /// Reads one SSE event's data; `None` when the generic path must.
    pub(super) fn event(
        d: &str,
        name: Option<&str>,
        chat: &mut ChatStream,
        responses: &mut ResponsesStream,
        r: &mut ParsedResponse,
    ) -> Option<Kind> {
        let Obj(e) = serde_json::from_str::<Obj<Event<'_>>>(d).ok()?;
        let ty = e.ty.as_ref().map(|t| t.0.as_ref()).or(name).unwrap_or("");
        if ty.starts_with("response.") || ty == "error" {
            responses_delta(ty, &e, responses)?;
            return Some(Kind::Responses);
        }
        chat_chunk(e, chat, r);
        Some(Kind::Chat)
    }

    /// A JSON object read into `T` (a derived struct alone would also take
    /// an array of its fields).
    pub(super) struct Obj<T>(pub T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = T;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                    T::deserialize(de::value::MapAccessDeserializer::new(map))
                }
            }
            d.deserialize_map(V(PhantomData)).map(Obj)
        }
    }

    /// A string, borrowed unless it has escapes.
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    pub(super) struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

    /// Any JSON value, checked as `Value` would check it, then dropped.
    pub(super) struct Skip;

    impl<'de> Deserialize<'de> for Skip {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Skip)
        }
    }

    impl<'de> Visitor<'de> for Skip {
        type Value = Skip;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_unit<E>(self) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_none<E>(self) -> Result<Skip, E> {
            Ok(Skip)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
            Skip::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
            while seq.next_element::<Skip>()?.is_some() {}
            Ok(Skip)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
            while map.next_entry::<Skip, Skip>()?.is_some() {}
            Ok(Skip)
        }
    }

    /// Any JSON value read as a whole number the way `int_of` reads the
    /// `Value` (`None` when it is not one), without building the `Value`.
    pub(super) struct Int(Option<i64>);

    impl<'de> Deserialize<'de> for Int {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(IntVisitor)
        }
    }

    struct IntVisitor;

    impl<'de> Visitor<'de> for IntVisitor {
        type Value = Int;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Int, E> {
            Ok(Int(None))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Int, E> {
            Ok(Int(int_of(&Value::from(v))))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Int, E> {
            Ok(Int(int_of(&Value::from(v))))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Int, E> {
            Ok(Int(int_of(&Value::from(v))))
        }
        fn visit_str<E>(self, v: &str) -> Result<Int, E> {
            Ok(Int(int_of(&Value::from(v))))
        }
        fn visit_unit<E>(self) -> Result<Int, E> {
            Ok(Int(None))
        }
        fn visit_none<E>(self) -> Result<Int, E> {
            Ok(Int(None))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Int, D::Error> {
            Int::deserialize(d)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Int, A::Error> {
            Skip.visit_seq(seq).map(|_| Int(None))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Int, A::Error> {
            Skip.visit_map(map).map(|_| Int(None))
        }
    }

    impl Int {
        fn get(v: Option<&Int>) -> Option<i64> {
            v.and_then(|i| i.0)
        }
    }

    /// A field whose presence counts even when it is `null` (the generic
    /// path tries `created_at` only when `created` is absent).
    fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Event<'a> {
        #[serde(rename = "type", borrow, default)]
        ty: Option<Text<'a>>,
        #[serde(borrow, default)]
        id: Option<Text<'a>>,
        #[serde(borrow, default)]
        object: Option<Text<'a>>,
        #[serde(borrow, default)]
        model: Option<Text<'a>>,
        #[serde(default, deserialize_with = "present")]
        created: Option<Int>,
        #[serde(default, deserialize_with = "present")]
        created_at: Option<Int>,
        #[serde(default)]
        error: Option<Box<Value>>,
        #[serde(default, deserialize_with = "present")]
        prompt_filter_results: Option<Box<Value>>,
        #[serde(default, deserialize_with = "present")]
        prompt_annotations: Option<Box<Value>>,
        #[serde(borrow, default)]
        choices: Option<Vec<Obj<Choice<'a>>>>,
        #[serde(default)]
        usage: Option<Box<Value>>,
        // Responses API deltas.
        #[serde(default)]
        output_index: Option<Int>,
        #[serde(default)]
        content_index: Option<Int>,
        #[serde(borrow, default)]
        delta: Option<Text<'a>>,
        // Read by nothing.
        #[serde(rename = "system_fingerprint", default)]
        _system_fingerprint: Option<Skip>,
        #[serde(rename = "service_tier", default)]
        _service_tier: Option<Skip>,
        #[serde(rename = "obfuscation", default)]
        _obfuscation: Option<Skip>,
        #[serde(rename = "sequence_number", default)]
        _sequence_number: Option<Skip>,
        #[serde(rename = "item_id", default)]
        _item_id: Option<Skip>,
        #[serde(rename = "logprobs", default)]
        _logprobs: Option<Skip>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Choice<'a> {
        #[serde(default)]
        index: Option<Int>,
        #[serde(borrow, default)]
        delta: Option<Obj<Delta<'a>>>,
        #[serde(borrow, default)]
        text: Option<Text<'a>>,
        #[serde(borrow, default)]
        finish_reason: Option<Text<'a>>,
        #[serde(default)]
        content_filter_results: Option<Box<Value>>,
        #[serde(rename = "content_filter_offsets", default)]
        _content_filter_offsets: Option<Skip>,
        #[serde(rename = "logprobs", default)]
        _logprobs: Option<Skip>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Delta<'a> {
        #[serde(borrow, default)]
        role: Option<Text<'a>>,
        #[serde(borrow, default)]
        content: Option<Text<'a>>,
        #[serde(borrow, default)]
        tool_calls: Option<Vec<Obj<Tool<'a>>>>,
        #[serde(borrow, default)]
        function_call: Option<Obj<Function<'a>>>,
        #[serde(rename = "refusal", default)]
        _refusal: Option<Skip>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tool<'a> {
        #[serde(default)]
        index: Option<Int>,
        #[serde(borrow, default)]
        id: Option<Text<'a>>,
        #[serde(rename = "type", borrow, default)]
        kind: Option<Text<'a>>,
        #[serde(borrow, default)]
        function: Option<Obj<Function<'a>>>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Function<'a> {
        #[serde(borrow, default)]
        name: Option<Text<'a>>,
        #[serde(borrow, default)]
        arguments: Option<Text<'a>>,
    }

    fn nonempty(t: Option<&Text<'_>>) -> Option<String> {
        t.map(|t| t.0.as_ref())
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    }

    /// As `ChatStream::chunk` for a chunk that was not repaired.
    fn chat_chunk(e: Event<'_>, chat: &mut ChatStream, r: &mut ParsedResponse) {
        if let Some(m) = e.error.as_deref().and_then(error_message) {
            r.error = Some(m);
        }
        // As `first_meta`.
        if r.id.is_none() {
            r.id = nonempty(e.id.as_ref());
        }
        if r.model.is_none() {
            r.model = nonempty(e.model.as_ref());
        }
        if r.created.is_none() {
            r.created = e
                .created
                .as_ref()
                .or(e.created_at.as_ref())
                .and_then(|i| i.0)
                .filter(|c| *c != 0);
        }
        if r.object.is_none() {
            r.object = nonempty(e.object.as_ref()).map(|o| normalise_object(&o));
        }
        if let Some(p) = e
            .prompt_filter_results
            .as_deref()
            .or(e.prompt_annotations.as_deref())
        {
            merge_prompt_filters(&mut r.prompt_filter_results, p);
        }
        for (pos, Obj(c)) in e.choices.into_iter().flatten().enumerate() {
            let index = Int::get(c.index.as_ref())
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
            let acc = chat.choices.entry(index).or_default();
            acc.choice.index = index;
            if let Some(Obj(delta)) = c.delta {
                chat.saw_delta = true;
                if let Some(role) = nonempty(delta.role.as_ref()) {
                    acc.choice.role = Some(role);
                }
                if let Some(s) = &delta.content {
                    acc.choice.text.push_str(&s.0);
                }
                for (tpos, Obj(t)) in delta.tool_calls.into_iter().flatten().enumerate() {
                    let ti = Int::get(t.index.as_ref())
                        .unwrap_or_else(|| i64::try_from(tpos).unwrap_or(i64::MAX));
                    tool_fragment(
                        acc.tools.entry(ti).or_default(),
                        t.id.as_ref(),
                        t.kind.as_ref().map(|k| k.0.as_ref()),
                        t.function.as_ref().map(|f| &f.0),
                    );
                }
                if let Some(Obj(f)) = &delta.function_call {
                    tool_fragment(
                        acc.tools.entry(-1).or_default(),
                        None,
                        Some("function"),
                        Some(f),
                    );
                }
            }
            if let Some(s) = &c.text {
                chat.saw_text = true;
                acc.choice.text.push_str(&s.0);
            }
            if let Some(f) = nonempty(c.finish_reason.as_ref()) {
                acc.choice.finish_reason = Some(f);
            }
            if let Some(f) = c.content_filter_results.as_deref() {
                merge_filters(&mut acc.choice.content_filter_results, f);
            }
        }
        if let Some(u) = usage_of(e.usage.as_deref(), false) {
            r.usage = Some(u);
        }
    }

    /// As `super::tool_fragment`.
    fn tool_fragment(
        t: &mut ToolCall,
        id: Option<&Text<'_>>,
        kind: Option<&str>,
        function: Option<&Function<'_>>,
    ) {
        if t.id.is_none() {
            t.id = nonempty(id);
        }
        if t.kind.is_none() {
            t.kind = kind.filter(|k| !k.trim().is_empty()).map(str::to_string);
        }
        if let Some(f) = function {
            if t.name.is_none() {
                t.name = nonempty(f.name.as_ref());
            }
            if let Some(a) = &f.arguments {
                t.arguments.push_str(&a.0);
            }
        }
    }

    /// As `ResponsesStream::event` for the two delta events; `None` for any
    /// other event.
    fn responses_delta(ty: &str, e: &Event<'_>, s: &mut ResponsesStream) -> Option<()> {
        let text_delta = match ty {
            "response.output_text.delta" => true,
            "response.function_call_arguments.delta" => false,
            _ => return None,
        };
        s.seen = true;
        let out = Int::get(e.output_index.as_ref()).unwrap_or(0);
        if text_delta {
            let part = Int::get(e.content_index.as_ref()).unwrap_or(0);
            let text = s.texts.entry((out, part)).or_default();
            if let Some(d) = &e.delta {
                text.push_str(&d.0);
            }
        } else if let Some(d) = &e.delta {
            s.tools.entry(out).or_default().arguments.push_str(&d.0);
        }
        Some(())
    }
}

// ---------------------------------------------------------------------------
// Shared readers

/// Sets `id`, `model`, `created` from the first object that has them
/// non-empty (annotation chunks carry empty ones).
fn first_meta(r: &mut ParsedResponse, m: &Map<String, Value>) {
    if r.id.is_none() {
        r.id = nonempty_str(m.get("id"));
    }
    if r.model.is_none() {
        r.model = nonempty_str(m.get("model"));
    }
    if r.created.is_none() {
        r.created = m
            .get("created")
            .or_else(|| m.get("created_at"))
            .and_then(int_of)
            .filter(|c| *c != 0);
    }
}

fn normalise_object(o: &str) -> String {
    o.strip_suffix(".chunk").unwrap_or(o).to_string()
}

/// Usage under the chat names or the Responses names (`input_tokens`...).
/// From a repaired (cut) body, a usage without its total may be missing
/// counts, so it is dropped and left to estimation.
fn usage_of(v: Option<&Value>, repaired: bool) -> Option<Usage> {
    let m = v?.as_object()?;
    let get = |keys: &[&str]| keys.iter().find_map(|k| m.get(*k).and_then(int_of));
    let detail = |keys: &[&str], field: &str| {
        keys.iter()
            .find_map(|k| m.get(*k)?.get(field).and_then(int_of))
    };
    let u = Usage {
        prompt_tokens: get(&["prompt_tokens", "input_tokens"]),
        completion_tokens: get(&["completion_tokens", "output_tokens"]),
        total_tokens: get(&["total_tokens"]),
        cached_tokens: detail(
            &["prompt_tokens_details", "input_tokens_details"],
            "cached_tokens",
        ),
        reasoning_tokens: detail(
            &["completion_tokens_details", "output_tokens_details"],
            "reasoning_tokens",
        ),
    };
    if repaired && u.total_tokens.is_none() {
        return None;
    }
    let any = u.prompt_tokens.is_some()
        || u.completion_tokens.is_some()
        || u.total_tokens.is_some()
        || u.cached_tokens.is_some()
        || u.reasoning_tokens.is_some();
    any.then_some(u)
}

fn error_message(e: &Value) -> Option<String> {
    match e {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("message")
            .and_then(text_of)
            .filter(|s| !s.is_empty())
            .or_else(|| o.get("code").and_then(text_of))
            .or_else(|| Some(e.to_string())),
        other => Some(other.to_string()),
    }
}

fn merge_prompt_filters(into: &mut Option<Value>, from: &Value) {
    match (into.as_mut(), from) {
        (_, Value::Null) => {}
        (None, _) => *into = Some(from.clone()),
        (Some(Value::Array(a)), Value::Array(b)) => a.extend(b.iter().cloned()),
        (Some(_), _) => {}
    }
}

/// Merges content-filter results so that a flag once raised stays raised
/// (`filtered`/`detected` are OR-ed, `severity` keeps the highest).
fn merge_filters(into: &mut Option<Value>, from: &Value) {
    if from.is_null() {
        return;
    }
    match into {
        None => *into = Some(from.clone()),
        Some(existing) => merge_value(existing, from),
    }
}

fn merge_value(into: &mut Value, from: &Value) {
    let (Value::Object(a), Value::Object(b)) = (&mut *into, from) else {
        *into = from.clone();
        return;
    };
    for (k, v) in b {
        let Some(old) = a.get_mut(k) else {
            a.insert(k.clone(), v.clone());
            continue;
        };
        match (k.as_str(), &*old, v) {
            ("filtered" | "detected", Value::Bool(x), Value::Bool(y)) => {
                *old = Value::Bool(*x || *y)
            }
            ("severity", Value::String(x), Value::String(y)) => {
                if severity_rank(y) > severity_rank(x) {
                    *old = v.clone();
                }
            }
            _ => merge_value(old, v),
        }
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "safe" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        _ => 0,
    }
}

fn non_null(v: Option<&Value>) -> Option<Value> {
    v.filter(|v| !v.is_null()).cloned()
}

fn nonempty_str(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A string, or a number written as one.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn index_of(v: Option<&Value>) -> Option<u32> {
    v.and_then(int_of).and_then(|i| u32::try_from(i).ok())
}

/// A whole number, given as a JSON number or a string.
fn int_of(v: &Value) -> Option<i64> {
    let whole =
        |f: f64| (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i64);
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(whole))
        }
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

/// The first `"key": "value"` in a text that is not valid JSON, when the
/// structural repair found nothing: a last resort for the model name.
fn scan_string_field(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|t| t.find(&needle)) {
        let at = from + found;
        from = at + needle.len();
        // An escaped quote is inside a string, not a key.
        if at > 0 && text.as_bytes().get(at - 1) == Some(&b'\\') {
            continue;
        }
        let rest = text.get(from..)?.trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        if !rest.starts_with('"') {
            continue;
        }
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        if let Some(Ok(s)) = values.next()
            && !s.trim().is_empty()
        {
            return Some(s);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Repair of cut JSON

/// Keys whose string value may be kept cut short: free text, where a prefix
/// is still true. A cut `model` or `finish_reason` would be wrong, so those
/// members are dropped instead.
const PARTIAL_TEXT_KEYS: [&[u8]; 9] = [
    b"content",
    b"text",
    b"arguments",
    b"prompt",
    b"input",
    b"instructions",
    b"refusal",
    b"delta",
    b"message",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Value,
    ValueOrEnd,
    Key,
    KeyOrEnd,
    Colon,
    CommaOrEnd,
}

struct Frame {
    close: u8,
    /// Byte span of the current member's key (objects).
    key: (usize, usize),
}

/// Closes a JSON text cut (or broken) part-way at the last point where it
/// can be closed: after the last complete value, or inside a free-text
/// string (see [`PARTIAL_TEXT_KEYS`]). Not a tolerant parser: it only finds
/// that point, then serde_json parses the closed text. Works on bytes and
/// cuts only at ASCII structure, so never inside a UTF-8 character.
fn repair(text: &str) -> Option<Value> {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut want = Want::Value;
    // Last closable point: (byte position, depth of the stack there).
    let mut safe: Option<(usize, usize)> = None;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        match (want, c) {
            (Want::CommaOrEnd | Want::ValueOrEnd | Want::KeyOrEnd, b']' | b'}') => {
                if want == Want::ValueOrEnd && c != b']' || want == Want::KeyOrEnd && c != b'}' {
                    break;
                }
                match stack.pop() {
                    Some(f) if f.close == c => {}
                    _ => break,
                }
                i += 1;
                if stack.is_empty() {
                    return serde_json::from_slice(b.get(..i)?).ok();
                }
                want = Want::CommaOrEnd;
                safe = Some((i, stack.len()));
            }
            (Want::CommaOrEnd, b',') => {
                want = match stack.last() {
                    Some(f) if f.close == b'}' => Want::Key,
                    _ => Want::Value,
                };
                i += 1;
            }
            (Want::Key | Want::KeyOrEnd, b'"') => {
                let Ok(end) = string_end(b, i) else { break };
                if let Some(f) = stack.last_mut() {
                    f.key = (i + 1, end - 1);
                }
                want = Want::Colon;
                i = end;
            }
            (Want::Colon, b':') => {
                want = Want::Value;
                i += 1;
            }
            (Want::Value | Want::ValueOrEnd, b'{' | b'[') => {
                let (close, next) = if c == b'{' {
                    (b'}', Want::KeyOrEnd)
                } else {
                    (b']', Want::ValueOrEnd)
                };
                stack.push(Frame { close, key: (0, 0) });
                want = next;
                i += 1;
                safe = Some((i, stack.len()));
            }
            (Want::Value | Want::ValueOrEnd, b'"') => match string_end(b, i) {
                Ok(end) => {
                    i = end;
                    if stack.is_empty() {
                        return serde_json::from_slice(b.get(..i)?).ok();
                    }
                    want = Want::CommaOrEnd;
                    safe = Some((i, stack.len()));
                }
                Err(ok_end) => {
                    if partial_allowed(b, stack.last()) {
                        let closed = close_cut_string(b, ok_end, &stack).or_else(|| {
                            // A lone surrogate escape (`\ud83d`) at the cut: drop it.
                            let s = ok_end.checked_sub(6)?;
                            (b.get(s..s + 2)? == b"\\u").then_some(())?;
                            close_cut_string(b, s, &stack)
                        });
                        if closed.is_some() {
                            return closed;
                        }
                    }
                    break;
                }
            },
            (Want::Value | Want::ValueOrEnd, _) => {
                let end = b
                    .iter()
                    .skip(i)
                    .position(|x| matches!(x, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                    .map(|p| i + p);
                // A scalar running to the end may be cut (`12` of `123`).
                let Some(end) = end else { break };
                i = end;
                if stack.is_empty() {
                    return serde_json::from_slice(b.get(..i)?).ok();
                }
                want = Want::CommaOrEnd;
                safe = Some((i, stack.len()));
            }
            _ => break,
        }
    }
    let (pos, depth) = safe?;
    let mut v = b.get(..pos)?.to_vec();
    v.extend(stack.get(..depth)?.iter().rev().map(|f| f.close));
    serde_json::from_slice(&v).ok()
}

/// The text up to `end`, inside a string, closed: the string, then the
/// open containers.
fn close_cut_string(b: &[u8], end: usize, stack: &[Frame]) -> Option<Value> {
    let mut v = b.get(..end)?.to_vec();
    v.push(b'"');
    v.extend(stack.iter().rev().map(|f| f.close));
    serde_json::from_slice(&v).ok()
}

fn partial_allowed(b: &[u8], top: Option<&Frame>) -> bool {
    match top {
        None => false,
        Some(f) if f.close == b']' => true,
        Some(f) => b
            .get(f.key.0..f.key.1)
            .is_some_and(|k| PARTIAL_TEXT_KEYS.contains(&k)),
    }
}

/// End (after the closing quote) of the string starting at `start`, or, when
/// the text ends inside it, the last position before an unfinished escape.
fn string_end(b: &[u8], start: usize) -> Result<usize, usize> {
    let mut j = start + 1;
    loop {
        match b.get(j) {
            None => return Err(j.min(b.len())),
            Some(b'"') => return Ok(j + 1),
            Some(b'\\') => {
                let width = if b.get(j + 1) == Some(&b'u') { 6 } else { 2 };
                if j + width > b.len() {
                    return Err(j);
                }
                j += width;
            }
            Some(_) => j += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            Some(
                json!([{"role":"system","content":"You are"},{"role":"user","content":"Tell me ab"}])
            )
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
            chunk(
                json!([{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]),
            ),
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

    #[test]
    fn repair_closes_at_the_last_safe_point() {
        assert_eq!(repair(r#"{"a":[1,2"#), Some(json!({"a":[1]})));
        assert_eq!(repair(r#"{"a":{"b":"x"},"c"#), Some(json!({"a":{"b":"x"}})));
        assert_eq!(
            repair(r#"{"content":"ab\u00"#),
            Some(json!({"content":"ab"}))
        );
        assert_eq!(repair(r#"{"content":"ab\"#), Some(json!({"content":"ab"})));
        assert_eq!(
            repair(r#"{"content":"a\ud83d"#),
            Some(json!({"content":"a"}))
        );
        assert_eq!(repair(r#"["x","y"#), Some(json!(["x", "y"])));
        assert_eq!(repair(r#"{"a":}"#), None);
        assert_eq!(repair("{"), Some(json!({})));
        assert_eq!(repair("nope"), None);
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
}
