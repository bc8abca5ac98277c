//! Token estimation with the model's real tokenizer (bundled, offline).
//!
//! The BPE ranks ship inside `tiktoken-rs` (`include_str!`), so nothing is
//! downloaded at run time. Each encoder is built once: construction parses
//! ~200k ranks and takes a noticeable fraction of a second.
//!
//! Chat prompts follow OpenAI's cookbook `num_tokens_from_messages`: 3 tokens
//! of framing per message, the tokens of every string field (role, content,
//! name, ...), 1 more when `name` is present, and 3 for the assistant reply
//! priming. It is an estimate: tools definitions, images and audio are not
//! counted.

use std::sync::LazyLock;

use serde_json::{Map, Value};
use tiktoken_rs::CoreBPE;

/// Framing tokens of each chat message (`<|start|>{role}<|message|>...<|end|>`).
const TOKENS_PER_MESSAGE: i64 = 3;
/// Extra token when a message carries `name`.
const TOKENS_PER_NAME: i64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: i64 = 3;

/// The BPE encodings the ledger knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1/o3/o4 and unknown models.
    O200kBase,
    /// gpt-4, gpt-4-turbo, gpt-35-turbo, ada-002 and text-embedding-3.
    Cl100kBase,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }
}

/// Families checked in order; the first whose name is a prefix of the model
/// at a name boundary wins (so `gpt-4o` is checked before `gpt-4`).
const FAMILIES: &[(&str, Encoding)] = &[
    ("gpt-4o", Encoding::O200kBase),
    ("chatgpt-4o", Encoding::O200kBase),
    ("gpt-4.1", Encoding::O200kBase),
    ("gpt-4.5", Encoding::O200kBase),
    ("gpt-5", Encoding::O200kBase),
    ("gpt-oss", Encoding::O200kBase),
    ("o1", Encoding::O200kBase),
    ("o3", Encoding::O200kBase),
    ("o4", Encoding::O200kBase),
    ("codex", Encoding::O200kBase),
    ("gpt-4", Encoding::Cl100kBase),
    ("gpt-35", Encoding::Cl100kBase),
    ("gpt-3.5", Encoding::Cl100kBase),
    ("text-embedding-ada-002", Encoding::Cl100kBase),
    ("text-embedding-3", Encoding::Cl100kBase),
    ("davinci-002", Encoding::Cl100kBase),
    ("babbage-002", Encoding::Cl100kBase),
];

/// The encoding of a model name (as the response reports it, or a
/// deployment name). Unknown names get o200k_base: every model family
/// released since gpt-4o uses it, so it is the best guess for new ones.
pub fn encoding_for_model(model: &str) -> Encoding {
    let m = model.trim().to_ascii_lowercase();
    // Fine-tuned models are named `ft:<base>:...` by OpenAI.
    let m = m.strip_prefix("ft:").unwrap_or(&m);
    for (family, enc) in FAMILIES {
        if let Some(rest) = m.strip_prefix(family) {
            // `gpt-4` must not claim `gpt-4o`, `gpt-45x`, `gpt-4.6`.
            if rest
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '.')
            {
                return *enc;
            }
        }
    }
    Encoding::O200kBase
}

fn build(enc: Encoding) -> Option<CoreBPE> {
    let built = match enc {
        Encoding::O200kBase => tiktoken_rs::o200k_base(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
    };
    match built {
        Ok(bpe) => Some(bpe),
        Err(e) => {
            // Bundled data: this cannot fail short of a broken build.
            tracing::error!(encoding = enc.name(), error = %e, "tokenizer unavailable");
            None
        }
    }
}

static O200K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| build(Encoding::O200kBase));
static CL100K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| build(Encoding::Cl100kBase));

fn encoder(enc: Encoding) -> Option<&'static CoreBPE> {
    match enc {
        Encoding::O200kBase => O200K.as_ref(),
        Encoding::Cl100kBase => CL100K.as_ref(),
    }
}

/// Tokens of `text` in `enc`. Special-token markers in the text are counted
/// as ordinary text, as the service does with user content.
pub fn count(enc: Encoding, text: &str) -> Option<i64> {
    let bpe = encoder(enc)?;
    Some(to_i64(bpe.count_ordinary(text)))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Estimated prompt tokens for a chat request's `messages`, with OpenAI's
/// per-message overhead; or for a `prompt` / `input` string or array.
///
/// Accepts a messages array (Chat Completions, or Responses API input
/// items), a string, an array of strings, token-id arrays (legacy prompt and
/// embeddings input), or a whole request body (its `messages`, `prompt` or
/// `input`, plus `instructions`). None when there is nothing to count.
pub fn estimate_prompt(model: &str, prompt: &Value) -> Option<i64> {
    let bpe = encoder(encoding_for_model(model))?;
    prompt_tokens(bpe, prompt)
}

/// Estimated tokens of a completion text.
pub fn estimate_text(model: &str, text: &str) -> Option<i64> {
    count(encoding_for_model(model), text)
}

fn text_tokens(bpe: &CoreBPE, text: &str) -> i64 {
    to_i64(bpe.count_ordinary(text))
}

fn prompt_tokens(bpe: &CoreBPE, prompt: &Value) -> Option<i64> {
    match prompt {
        Value::String(s) => Some(text_tokens(bpe, s)),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().any(Value::is_object) => {
            Some(messages_tokens(bpe, items))
        }
        Value::Array(items) => Some(
            items
                .iter()
                .map(|v| plain_tokens(bpe, v))
                .fold(0, i64::saturating_add),
        ),
        Value::Object(body) => {
            let inner = ["messages", "prompt", "input"]
                .iter()
                .find_map(|k| body.get(*k))?;
            let mut n = prompt_tokens(bpe, inner)?;
            if let Some(Value::String(instr)) = body.get("instructions") {
                n = n.saturating_add(text_tokens(bpe, instr));
            }
            Some(n)
        }
        _ => None,
    }
}

/// A legacy prompt / embeddings input element: text, one token id, or an
/// array of either.
fn plain_tokens(bpe: &CoreBPE, v: &Value) -> i64 {
    match v {
        Value::String(s) => text_tokens(bpe, s),
        Value::Number(_) => 1,
        Value::Array(a) => a
            .iter()
            .map(|x| plain_tokens(bpe, x))
            .fold(0, i64::saturating_add),
        _ => 0,
    }
}

fn messages_tokens(bpe: &CoreBPE, messages: &[Value]) -> i64 {
    let mut n = 0i64;
    for m in messages {
        n = n.saturating_add(match m {
            Value::Object(o) => TOKENS_PER_MESSAGE.saturating_add(message_tokens(bpe, o)),
            other => plain_tokens(bpe, other),
        });
    }
    n.saturating_add(REPLY_PRIMING)
}

/// Tokens of one message's fields (without the framing).
fn message_tokens(bpe: &CoreBPE, msg: &Map<String, Value>) -> i64 {
    let mut n = 0i64;
    for (key, value) in msg {
        let t = match (key.as_str(), value) {
            ("name", Value::String(s)) => text_tokens(bpe, s).saturating_add(TOKENS_PER_NAME),
            // String fields the model sees. `arguments` / `output` are the
            // Responses API's function_call / function_call_output items.
            ("role" | "tool_call_id" | "refusal" | "arguments" | "output", Value::String(s)) => {
                text_tokens(bpe, s)
            }
            ("content", v) => content_tokens(bpe, v),
            ("tool_calls", Value::Array(calls)) => calls
                .iter()
                .map(|c| call_tokens(bpe, c))
                .fold(0, i64::saturating_add),
            ("function_call", c) => function_tokens(bpe, c),
            _ => 0,
        };
        n = n.saturating_add(t);
    }
    n
}

/// Content is a string or an array of parts; only text parts are counted
/// (image and audio parts are priced by other rules).
fn content_tokens(bpe: &CoreBPE, content: &Value) -> i64 {
    match content {
        Value::String(s) => text_tokens(bpe, s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => text_tokens(bpe, s),
                Value::Object(o) => ["text", "refusal"]
                    .iter()
                    .filter_map(|k| o.get(*k).and_then(Value::as_str))
                    .map(|s| text_tokens(bpe, s))
                    .fold(0, i64::saturating_add),
                _ => 0,
            })
            .fold(0, i64::saturating_add),
        _ => 0,
    }
}

/// A `tool_calls[]` entry: `{"function": {"name", "arguments"}}`.
fn call_tokens(bpe: &CoreBPE, call: &Value) -> i64 {
    call.get("function").map_or(0, |f| function_tokens(bpe, f))
}

fn function_tokens(bpe: &CoreBPE, f: &Value) -> i64 {
    ["name", "arguments"]
        .iter()
        .filter_map(|k| f.get(*k).and_then(Value::as_str))
        .map(|s| text_tokens(bpe, s))
        .fold(0, i64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cookbook_messages() -> Value {
        json!([
            {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
            {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
            {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
            {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
            {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
            {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
        ])
    }

    #[test]
    fn model_families() {
        for m in [
            "gpt-4o",
            "gpt-4o-2024-08-06",
            "GPT-4o-mini",
            "gpt-4.1-nano",
            "gpt-4.5-preview",
            "gpt-5",
            "gpt-5-mini-2025-08-07",
            "o1",
            "o1-mini",
            "o3-mini",
            "o4-mini",
            "ft:gpt-4o-mini:org::abc",
        ] {
            assert_eq!(encoding_for_model(m), Encoding::O200kBase, "{m}");
        }
        for m in [
            "gpt-4",
            "gpt-4-32k",
            "gpt-4-turbo-2024-04-09",
            "gpt-35-turbo",
            "gpt-35-turbo-16k",
            "gpt-3.5-turbo-0125",
            "text-embedding-ada-002",
            "text-embedding-3-small",
            "text-embedding-3-large",
        ] {
            assert_eq!(encoding_for_model(m), Encoding::Cl100kBase, "{m}");
        }
        // Unknown names and look-alikes default to o200k_base.
        for m in ["", "my-deployment", "gpt4o-prod", "gpt-4.6", "o365-bot"] {
            assert_eq!(encoding_for_model(m), Encoding::O200kBase, "{m}");
        }
    }

    #[test]
    fn known_text_counts() {
        assert_eq!(estimate_text("gpt-4o", "hello world"), Some(2));
        assert_eq!(estimate_text("gpt-4", "hello world"), Some(2));
        assert_eq!(estimate_text("gpt-4o", ""), Some(0));
        // The encodings differ on non-English text: o200k is denser.
        let text = "Привет, как дела? Сегодня хорошая погода.";
        let (o, c) = (
            count(Encoding::O200kBase, text),
            count(Encoding::Cl100kBase, text),
        );
        assert!(o.unwrap() < c.unwrap(), "{o:?} {c:?}");
        // Special-token markers in user text are plain text, never a panic.
        assert!(estimate_text("gpt-4o", "<|endoftext|>").unwrap() > 1);
    }

    #[test]
    fn cookbook_example_totals() {
        // The totals the OpenAI cookbook prints for this example.
        assert_eq!(
            estimate_prompt("gpt-4-0613", &cookbook_messages()),
            Some(129)
        );
        assert_eq!(
            estimate_prompt("gpt-35-turbo", &cookbook_messages()),
            Some(129)
        );
        assert_eq!(estimate_prompt("gpt-4o", &cookbook_messages()), Some(124));
        assert_eq!(
            estimate_prompt("gpt-4o-mini", &cookbook_messages()),
            Some(124)
        );
    }

    #[test]
    fn message_rule_structure() {
        for (model, enc) in [
            ("gpt-4o", Encoding::O200kBase),
            ("gpt-4", Encoding::Cl100kBase),
        ] {
            let msgs = cookbook_messages();
            let arr = msgs.as_array().unwrap();
            let mut expected = 0;
            for m in arr {
                expected += 3;
                expected += count(enc, m["role"].as_str().unwrap()).unwrap();
                expected += count(enc, m["content"].as_str().unwrap()).unwrap();
                if let Some(name) = m.get("name") {
                    expected += count(enc, name.as_str().unwrap()).unwrap() + 1;
                }
            }
            expected += 3;
            assert_eq!(estimate_prompt(model, &msgs), Some(expected), "{model}");
        }
    }

    #[test]
    fn content_parts_and_tool_calls() {
        let enc = Encoding::O200kBase;
        let c = |s: &str| count(enc, s).unwrap();
        let as_string = json!([{"role": "user", "content": "Describe this picture please"}]);
        let as_parts = json!([{"role": "user", "content": [
            {"type": "text", "text": "Describe this picture please"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]}]);
        assert_eq!(
            estimate_prompt("gpt-4o", &as_string),
            estimate_prompt("gpt-4o", &as_parts)
        );

        let args = r#"{"location":"Paris","unit":"celsius"}"#;
        let with_tools = json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": args}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ]);
        let expected = 3 * 3
            + 3
            + c("user")
            + c("Weather in Paris?")
            + c("assistant")
            + c("get_weather")
            + c(args)
            + c("tool")
            + c("call_1")
            + c("18C");
        assert_eq!(estimate_prompt("gpt-4o", &with_tools), Some(expected));
    }

    #[test]
    fn legacy_prompts_and_embeddings_input() {
        let c = |s: &str| count(Encoding::Cl100kBase, s).unwrap();
        let m = "text-embedding-3-small";
        assert_eq!(estimate_prompt(m, &json!("hello world")), Some(2));
        assert_eq!(
            estimate_prompt(m, &json!(["hello world", "good morning"])),
            Some(2 + c("good morning"))
        );
        // Token-id input counts one token per id.
        assert_eq!(estimate_prompt(m, &json!([1, 2, 3])), Some(3));
        assert_eq!(estimate_prompt(m, &json!([[1, 2], [3]])), Some(3));
        assert_eq!(estimate_prompt(m, &json!(null)), None);
        assert_eq!(estimate_prompt(m, &json!(42)), None);
        assert_eq!(estimate_prompt(m, &json!([])), None);
    }

    #[test]
    fn whole_bodies_and_responses_input() {
        let c = |s: &str| count(Encoding::O200kBase, s).unwrap();
        let msgs = json!([{"role": "user", "content": "hi there"}]);
        let body = json!({"messages": msgs, "temperature": 0.2});
        assert_eq!(
            estimate_prompt("gpt-4o", &body),
            estimate_prompt("gpt-4o", &msgs)
        );
        let responses = json!({"instructions": "Be brief.", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi there"}]}
        ]});
        assert_eq!(
            estimate_prompt("gpt-4.1", &responses),
            Some(3 + c("user") + c("hi there") + 3 + c("Be brief."))
        );
        assert_eq!(estimate_prompt("gpt-4.1", &json!({"model": "x"})), None);
    }
}
