//! SSE framing: lines and events of a `text/event-stream` body, each event
//! handed to the chat or the Responses stream accumulator.

use std::borrow::Cow;

use serde_json::Value;

use super::ParsedResponse;
use super::chat_stream::ChatStream;
use super::chat_stream_fast as fast;
use super::responses_stream::ResponsesStream;
use crate::json_repair::repair;

/// One SSE event; single-line data (the usual case) is borrowed.
pub(super) struct SseEvent<'a> {
    name: Option<&'a str>,
    data: Option<Cow<'a, str>>,
}

/// Lines of an SSE text, ended by `\r\n`, `\n` or `\r`.
pub(super) fn sse_lines(t: &str) -> impl Iterator<Item = &str> {
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

pub(super) fn sse_events(t: &str) -> Vec<SseEvent<'_>> {
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

pub(super) fn parse_sse(t: &str, r: &mut ParsedResponse) {
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
