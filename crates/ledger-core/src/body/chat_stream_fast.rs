//! Typed reading of the usual SSE events (chat/completions chunks, Responses
//! API text and argument deltas) without building a `Value` tree: strings
//! are borrowed from the body where they have no escapes.
//!
//! It only takes events it reads exactly as the generic path would: every
//! struct denies unknown fields and wants the types the generic path acts
//! on, so anything else (unexpected fields or types, duplicate keys, an
//! array where an object belongs, cut or invalid JSON) fails the typed
//! parse and the event goes the generic way. Fields that are read as JSON
//! values (filters, usage, error) are parsed as `Value` in place; skipped
//! fields are checked like `Value` would check them ([`Skip`]), so an event
//! the generic parser rejects is never taken here.
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::ParsedResponse;
use super::ToolCall;
use super::chat_stream::ChatStream;
use super::read::{error_message, merge_filters, merge_prompt_filters, normalise_object, usage_of};
use super::responses_stream::ResponsesStream;
use crate::coerce;

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

/// Any JSON value read as a whole number the way [`coerce::int`] reads the
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
        Ok(Int(Some(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Int, E> {
        Ok(Int(i64::try_from(v).ok()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Int, E> {
        Ok(Int(coerce::int_from_f64(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Int, E> {
        Ok(Int(coerce::int_from_str(v)))
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
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
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
        let mut dropped_tools = 0;
        let Some(acc) = ChatStream::choice(&mut chat.choices, &mut chat.dropped_choices, index)
        else {
            continue;
        };
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
                if let Some(slot) = acc.tool(ti, &mut dropped_tools) {
                    tool_fragment(
                        slot,
                        t.id.as_ref(),
                        t.kind.as_ref().map(|k| k.0.as_ref()),
                        t.function.as_ref().map(|f| &f.0),
                    );
                }
            }
            if let Some(Obj(f)) = &delta.function_call
                && let Some(slot) = acc.tool(-1, &mut dropped_tools)
            {
                tool_fragment(slot, None, Some("function"), Some(f));
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
        chat.dropped_tools += dropped_tools;
    }
    if let Some(u) = usage_of(e.usage.as_deref(), false) {
        r.usage = Some(u);
    }
}

/// As [`super::chat_stream::tool_fragment`].
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
