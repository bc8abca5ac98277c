//! Closing a JSON text cut part-way: the one repair machine, used for whole
//! events cut by APIM's 200 KB `log-to-eventhub` limit (`dialects`) and for
//! bodies cut inside them or by the 8 KB diagnostic log limit (`body`).
//!
//! It is not a tolerant parser: it scans for the last point where the text
//! can be closed validly (after the last complete value, or inside a string
//! the policy lets be kept cut short), appends the closing quote and
//! brackets, and leaves parsing to serde_json. It works on bytes and cuts
//! only at ASCII structure, so never inside a UTF-8 character.

use serde_json::Value;

/// How much of a cut text to keep; the two uses differ only here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Which string values may be kept cut short.
    cut_strings: CutStrings,
    /// Whether an opened container inside an array is a closing point
    /// (`[{"ro` → `[{}]`). Not for events: `{}` would pose as a message.
    open_in_array: bool,
    /// On a syntax error (not a cut): close at the last safe point (`true`)
    /// or give up, so the caller reports the error (`false`).
    close_broken: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutStrings {
    /// Any string inside a container: an event's cut body is kept.
    All,
    /// Free text only ([`PARTIAL_TEXT_KEYS`], array elements): a cut
    /// `model` or `finish_reason` would be wrong, so those are dropped.
    FreeText,
}

/// For a cut event: every cut string kept, broken text refused.
pub(crate) const EVENT: Policy = Policy {
    cut_strings: CutStrings::All,
    open_in_array: false,
    close_broken: false,
};

/// For a body: free text kept, broken text closed as far as it went.
pub(crate) const BODY: Policy = Policy {
    cut_strings: CutStrings::FreeText,
    open_in_array: true,
    close_broken: true,
};

/// Keys whose string value may be kept cut short: free text, where a prefix
/// is still true.
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

/// A cut text, closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    pub text: String,
    /// The top-level key (lowercased) whose value the cut fell inside, if
    /// any: that value (usually a body) is incomplete.
    pub cut_key: Option<String>,
}

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

/// A body closed and parsed ([`BODY`]); `None` when nothing is left.
pub(crate) fn repair(text: &str) -> Option<Value> {
    serde_json::from_str(&close(text, BODY)?.text).ok()
}

/// A cut event closed ([`EVENT`]); `None` when the text is malformed in some
/// other way (then it is not a cut).
pub(crate) fn close_event(text: &str) -> Option<Closed> {
    close(text, EVENT)
}

/// Closes `text` at its last closing point under `policy`. A text whose
/// first value is complete is returned up to its end.
pub(crate) fn close(text: &str, policy: Policy) -> Option<Closed> {
    let b = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut want = Want::Value;
    // Last closing point: (byte position, depth of the stack there).
    let mut safe: Option<(usize, usize)> = None;
    let mut i = 0;
    let top_key = |stack: &[Frame]| {
        let (a, z) = stack.first()?.key;
        text.get(a..z).map(str::to_ascii_lowercase)
    };
    let complete = |end: usize| {
        Some(Closed {
            text: text.get(..end)?.to_string(),
            cut_key: None,
        })
    };
    while let Some(&c) = b.get(i) {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        match (want, c) {
            (Want::CommaOrEnd | Want::ValueOrEnd | Want::KeyOrEnd, b']' | b'}') => {
                let allowed =
                    !(want == Want::ValueOrEnd && c != b']' || want == Want::KeyOrEnd && c != b'}');
                match stack.pop() {
                    Some(f) if allowed && f.close == c => {}
                    _ if policy.close_broken => break,
                    _ => return None,
                }
                i += 1;
                if stack.is_empty() {
                    return complete(i);
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
                let Some(end) = string_end(b, i) else { break };
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
                let in_array = stack.last().is_some_and(|f| f.close == b']');
                let (close, next) = if c == b'{' {
                    (b'}', Want::KeyOrEnd)
                } else {
                    (b']', Want::ValueOrEnd)
                };
                stack.push(Frame { close, key: (0, 0) });
                want = next;
                i += 1;
                if policy.open_in_array || !in_array {
                    safe = Some((i, stack.len()));
                }
            }
            (Want::Value | Want::ValueOrEnd, b'"') => match string_end(b, i) {
                Some(end) => {
                    i = end;
                    if stack.is_empty() {
                        return complete(i);
                    }
                    want = Want::CommaOrEnd;
                    safe = Some((i, stack.len()));
                }
                None => {
                    if !may_keep_cut(b, &stack, policy.cut_strings) {
                        break;
                    }
                    let start = i + 1;
                    let keep = start + keep_len(b.get(start..)?);
                    let mut out = String::with_capacity(keep + stack.len() + 1);
                    out.push_str(text.get(..keep)?);
                    out.push('"');
                    out.extend(stack.iter().rev().map(|f| char::from(f.close)));
                    return Some(Closed {
                        text: out,
                        cut_key: top_key(&stack),
                    });
                }
            },
            (Want::Value | Want::ValueOrEnd, _) => {
                // A number or literal; complete only once a delimiter follows
                // (`12` may be the start of `123`).
                let Some(end) = b.iter().skip(i).position(|x| {
                    matches!(x, b',' | b']' | b'}' | b':' | b' ' | b'\t' | b'\n' | b'\r')
                }) else {
                    break;
                };
                i += end;
                if stack.is_empty() {
                    return complete(i);
                }
                want = Want::CommaOrEnd;
                safe = Some((i, stack.len()));
            }
            _ if policy.close_broken => break,
            _ => return None,
        }
    }
    let (pos, depth) = safe?;
    let mut out = String::with_capacity(pos + depth);
    out.push_str(text.get(..pos)?);
    out.extend(
        stack
            .get(..depth)?
            .iter()
            .rev()
            .map(|f| char::from(f.close)),
    );
    // A member nested below the top level was cut part-way.
    let cut_key = if stack.len() > 1 {
        top_key(&stack)
    } else {
        None
    };
    Some(Closed { text: out, cut_key })
}

/// Whether the string the text ends inside may be kept cut short.
fn may_keep_cut(b: &[u8], stack: &[Frame], rule: CutStrings) -> bool {
    match (stack.last(), rule) {
        (None, _) => false,
        (Some(_), CutStrings::All) => true,
        (Some(f), CutStrings::FreeText) if f.close == b']' => true,
        (Some(f), CutStrings::FreeText) => b
            .get(f.key.0..f.key.1)
            .is_some_and(|k| PARTIAL_TEXT_KEYS.contains(&k)),
    }
}

/// End (after the closing quote) of the string starting at `start`; `None`
/// when the text ends inside it.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    loop {
        match b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// How much of a cut string's content to keep: drops a dangling backslash,
/// a partial `\uXXXX` escape and an unpaired high surrogate at the end.
fn keep_len(b: &[u8]) -> usize {
    let mut end = b.len();
    loop {
        let before = end;
        // A backslash escapes the next byte when it ends an odd run.
        let escaping =
            |p: usize| b[..=p].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1;
        if end > 0 && b[end - 1] == b'\\' && escaping(end - 1) {
            end -= 1;
        }
        // `\u` followed by up to four hex digits at the very end.
        for hex in 0..=4 {
            if end >= 2 + hex {
                let p = end - 2 - hex;
                let digits = &b[p + 2..end];
                if b[p] == b'\\'
                    && b[p + 1] == b'u'
                    && escaping(p)
                    && digits.iter().all(u8::is_ascii_hexdigit)
                {
                    let complete_high = hex == 4
                        && std::str::from_utf8(digits)
                            .ok()
                            .and_then(|d| u16::from_str_radix(d, 16).ok())
                            .is_some_and(|u| (0xD800..0xDC00).contains(&u));
                    if hex < 4 || complete_high {
                        end = p;
                    }
                    break;
                }
            }
        }
        if end == before {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn fixed(s: &str) -> (Value, Option<String>) {
        let r = close_event(s).expect("repairable");
        (
            serde_json::from_str(&r.text).expect("valid JSON"),
            r.cut_key,
        )
    }

    #[test]
    fn cut_inside_a_body_string_keeps_the_text() {
        let (v, cut) = fixed(
            r#"{"eventTime":"2024-05-24T14:45:56Z","request":"{\"a\":1}","response":"data: {\"id\":\"x\"}\n\ndata: {\"ch"#,
        );
        assert_eq!(v["request"], "{\"a\":1}");
        assert_eq!(v["response"], "data: {\"id\":\"x\"}\n\ndata: {\"ch");
        assert_eq!(cut.as_deref(), Some("response"));
    }

    #[test]
    fn cut_in_escapes_and_surrogates() {
        assert_eq!(fixed(r#"{"Body":"ab\"#).0["Body"], "ab");
        assert_eq!(fixed(r#"{"body":"ab\u00"#).0["body"], "ab");
        assert_eq!(fixed(r#"{"body":"ab\\"#).0["body"], "ab\\");
        assert_eq!(fixed(r#"{"body":"ab\ud83d"#).0["body"], "ab");
        assert_eq!(fixed(r#"{"body":"ab\ud83d\ude"#).0["body"], "ab");
        assert_eq!(fixed(r#"{"body":"ab\ud83d\ude00"#).0["body"], "ab\u{1F600}");
    }

    #[test]
    fn cut_outside_strings_rolls_back() {
        let (v, cut) = fixed(r#"{"a":"x","n":12"#);
        assert_eq!(v, serde_json::json!({"a":"x"}));
        assert_eq!(cut, None);
        let (v, _) = fixed(r#"{"a":"x","ke"#);
        assert_eq!(v, serde_json::json!({"a":"x"}));
        let (v, cut) = fixed(r#"{"a":"x","body":{"messages":[{"role":"user","content":"hi"},{"ro"#);
        assert_eq!(
            v["body"]["messages"],
            serde_json::json!([{"role":"user","content":"hi"}])
        );
        assert_eq!(cut.as_deref(), Some("body"));
        let (v, _) = fixed(r#"{"body":{"messages":[{"ro"#);
        assert_eq!(v, serde_json::json!({"body":{"messages":[]}}));
        let (v, _) = fixed(r#"{"a":[1,2,tr"#);
        assert_eq!(v, serde_json::json!({"a":[1,2]}));
    }

    #[test]
    fn malformed_text_is_not_a_cut() {
        assert_eq!(close_event(r#"{"a" 1}"#).map(|c| c.text), None);
        assert_eq!(close_event("hello").map(|c| c.text), None);
        assert_eq!(close_event(r#"{"a":1]"#).map(|c| c.text), None);
    }
}
