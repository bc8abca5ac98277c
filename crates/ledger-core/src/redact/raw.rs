//! Scrubbing raw event bytes: a walk of the JSON token stream, byte by
//! byte, so every key/value pair is seen whatever the shape of the input —
//! duplicate keys, invalid UTF-8 inside strings, any depth, JSON written
//! inside string values (scrubbed recursively), an event cut short.
//!
//! No parse into a map: a parse keeps only the last of duplicate keys and
//! gives up on invalid UTF-8, and what it drops is what would leak. Bytes
//! the walk cannot tokenise (not JSON from some point on) are scrubbed as
//! text and every run that looks like a key is masked; the result says so.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::bytes::Regex;

use super::{MASK, is_secret_field, scrub_text_cow};

/// JSON in a string in a string...: beyond this depth a string is scrubbed
/// as text only. Escaping doubles the backslashes at each level, so real
/// nesting stays far below it.
const MAX_STRING_NESTING: usize = 16;

/// The masked value written in place of a secret JSON value.
const MASKED_VALUE: &[u8] = b"\"***\"";

/// Raw bytes with their secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrubbed {
    pub bytes: Vec<u8>,
    /// Part of the bytes could not be tokenised as JSON: they were scrubbed
    /// as text, and every key-like run in them masked.
    pub partly_masked: bool,
}

/// Scrubs raw event bytes (see the module doc).
pub fn scrub_raw_bytes(raw: &[u8]) -> Scrubbed {
    let (bytes, partly_masked) = scrub(raw, 0);
    Scrubbed {
        bytes: bytes.into_owned(),
        partly_masked,
    }
}

/// Runs of 24+ key alphabet characters (hex, base64, base64url, percent
/// escapes): masked where the bytes are not JSON.
static KEY_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_%\-]{24,}={0,2}").expect("key-like pattern"));

fn looks_like_key(run: &[u8]) -> bool {
    run.iter().any(u8::is_ascii_digit) && run.iter().any(u8::is_ascii_alphabetic)
}

/// Bytes that are not JSON: text scrubbing on each valid UTF-8 run, then
/// every key-like run masked. Invalid bytes are kept as they are.
fn scrub_untokenised(bytes: &[u8]) -> Vec<u8> {
    let text = scrub_text_bytes(bytes);
    KEY_LIKE
        .replace_all(&text, |c: &regex::bytes::Captures| {
            let run = &c[0];
            if looks_like_key(run) {
                MASK.as_bytes().to_vec()
            } else {
                run.to_vec()
            }
        })
        .into_owned()
}

/// Text scrubbing of bytes, valid UTF-8 run by run.
fn scrub_text_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if let Cow::Owned(s) = scrub_text_cow(valid)
            && s.as_bytes() != valid.as_bytes()
        {
            let o = out.get_or_insert_with(|| bytes[..at].to_vec());
            o.extend_from_slice(s.as_bytes());
        } else if let Some(o) = out.as_mut() {
            o.extend_from_slice(valid.as_bytes());
        }
        if let Some(o) = out.as_mut() {
            o.extend_from_slice(chunk.invalid());
        }
        at += valid.len() + chunk.invalid().len();
    }
    out.map_or(Cow::Borrowed(bytes), Cow::Owned)
}

/// What a key says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// A secret name: the value is masked whatever it is.
    Secret,
    /// `name` / `key` / `header`: a secret name here makes the object's
    /// `value` / `values` secret.
    Name,
    /// `value` / `values`.
    ValueSlot,
    Other,
}

fn key_kind(key: &[u8]) -> KeyKind {
    let key = String::from_utf8_lossy(key);
    if is_secret_field(&key) {
        return KeyKind::Secret;
    }
    match key.trim().to_ascii_lowercase().as_str() {
        "name" | "key" | "header" => KeyKind::Name,
        "value" | "values" => KeyKind::ValueSlot,
        _ => KeyKind::Other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjState {
    /// After `{` or `,`.
    Key,
    Colon,
    Value,
    CommaOrEnd,
}

#[derive(Debug)]
enum Frame {
    Object {
        start: usize,
        state: ObjState,
        key: KeyKind,
        /// Where the pending key starts: not-JSON from inside its pair on
        /// is scrubbed as text from the key, so the regexes see the name.
        key_start: usize,
        named_secret: bool,
        value_spans: Vec<(usize, usize)>,
    },
    Array {
        start: usize,
        /// A value was read and a `,` or `]` is due.
        after_value: bool,
    },
}

/// One replacement of `raw[start..end]`.
struct Edit {
    start: usize,
    end: usize,
    /// A mask wins over a rewrite of the same span.
    mask: bool,
    with: Vec<u8>,
}

struct Walker<'a> {
    raw: &'a [u8],
    depth: usize,
    stack: Vec<Frame>,
    edits: Vec<Edit>,
    partly_masked: bool,
}

/// A value just read: a string (with its content span), or anything else.
#[derive(Clone, Copy)]
enum Val {
    Str {
        content: (usize, usize),
        closed: bool,
    },
    Other,
}

impl<'a> Walker<'a> {
    fn mask(&mut self, start: usize, end: usize) {
        let v = &self.raw[start..end];
        let trimmed = v.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" || trimmed == b"\"\"" || trimmed == MASKED_VALUE
        {
            return;
        }
        self.edits.push(Edit {
            start,
            end,
            mask: true,
            with: MASKED_VALUE.to_vec(),
        });
    }

    /// A value of the innermost container ended at `end`.
    fn value_done(&mut self, start: usize, end: usize, val: Val) {
        let mut secret = false;
        match self.stack.last_mut() {
            Some(Frame::Object {
                state,
                key,
                named_secret,
                value_spans,
                ..
            }) => {
                *state = ObjState::CommaOrEnd;
                match *key {
                    KeyKind::Secret => secret = true,
                    KeyKind::ValueSlot => value_spans.push((start, end)),
                    KeyKind::Name => {
                        if let Val::Str { content, .. } = val {
                            let name = unescape(&self.raw[content.0..content.1]);
                            *named_secret |= is_secret_field(&String::from_utf8_lossy(&name));
                        }
                    }
                    KeyKind::Other => {}
                }
            }
            Some(Frame::Array { after_value, .. }) => *after_value = true,
            None => {}
        }
        if secret {
            self.mask(start, end);
        } else if let Val::Str { content, closed } = val {
            self.rewrite_string(start, end, content, closed);
        }
    }

    /// Scrubs a string's content; an edit when anything changed.
    fn rewrite_string(&mut self, start: usize, end: usize, content: (usize, usize), closed: bool) {
        let text = unescape(&self.raw[content.0..content.1]);
        let trimmed = text.trim_ascii_start();
        let scrubbed: Cow<'_, [u8]> = if self.depth < MAX_STRING_NESTING
            && (trimmed.starts_with(b"{") || trimmed.starts_with(b"["))
        {
            let (s, partly) = scrub(&text, self.depth + 1);
            self.partly_masked |= partly;
            s
        } else {
            scrub_text_bytes(&text)
        };
        if matches!(scrubbed, Cow::Borrowed(_)) || scrubbed[..] == text[..] {
            return;
        }
        let mut with = Vec::with_capacity(scrubbed.len() + 2);
        with.push(b'"');
        escape_into(&scrubbed, &mut with);
        if closed {
            with.push(b'"');
        }
        self.edits.push(Edit {
            start,
            end,
            mask: false,
            with,
        });
    }

    /// A key of the innermost object was read.
    fn key_done(&mut self, key_start: usize, content: (usize, usize)) {
        let name = unescape(&self.raw[content.0..content.1]);
        let kind = key_kind(&name);
        if let Some(Frame::Object {
            state,
            key,
            key_start: ks,
            ..
        }) = self.stack.last_mut()
        {
            *state = ObjState::Colon;
            *key = kind;
            *ks = key_start;
        }
        // A key may itself be a header line (`"Api-Key: v"`).
        if let Cow::Owned(s) = scrub_text_bytes(&name) {
            let mut with = Vec::with_capacity(s.len() + 2);
            with.push(b'"');
            escape_into(&s, &mut with);
            with.push(b'"');
            self.edits.push(Edit {
                start: key_start,
                end: content.1 + 1,
                mask: false,
                with,
            });
        }
    }

    /// Closes the innermost container at `end` (its closing byte excluded
    /// when it is cut).
    fn close(&mut self, end: usize) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let start = match frame {
            Frame::Object {
                start,
                named_secret,
                value_spans,
                ..
            } => {
                if named_secret {
                    for (s, e) in value_spans {
                        self.mask(s, e);
                    }
                }
                start
            }
            Frame::Array { start, .. } => start,
        };
        self.value_done(start, end, Val::Other);
    }

    /// Walks the bytes; returns where tokenising failed, if it did.
    fn walk(&mut self) -> Option<usize> {
        let raw = self.raw;
        let mut i = 0;
        if raw.starts_with(b"\xEF\xBB\xBF") {
            i = 3;
        }
        loop {
            while i < raw.len() && raw[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= raw.len() {
                return None;
            }
            let b = raw[i];
            // What the innermost container expects here.
            let expect_value = match self.stack.last_mut() {
                None => true,
                Some(Frame::Array { after_value, .. }) => match (b, *after_value) {
                    (b']', _) => {
                        self.close(i + 1);
                        i += 1;
                        continue;
                    }
                    (b',', true) => {
                        *after_value = false;
                        i += 1;
                        continue;
                    }
                    (_, false) => true,
                    (_, true) => return Some(i),
                },
                Some(Frame::Object { state, .. }) => match (*state, b) {
                    (ObjState::Key | ObjState::CommaOrEnd, b'}') => {
                        self.close(i + 1);
                        i += 1;
                        continue;
                    }
                    (ObjState::CommaOrEnd, b',') => {
                        *state = ObjState::Key;
                        i += 1;
                        continue;
                    }
                    (ObjState::Colon, b':') => {
                        *state = ObjState::Value;
                        i += 1;
                        continue;
                    }
                    (ObjState::Key, b'"') => {
                        let (end, closed) = string_end(raw, i + 1);
                        if !closed {
                            return None;
                        }
                        self.key_done(i, (i + 1, end));
                        i = end + 1;
                        continue;
                    }
                    (ObjState::Value, _) => true,
                    _ => return Some(i),
                },
            };
            debug_assert!(expect_value);
            match b {
                b'{' => {
                    self.stack.push(Frame::Object {
                        start: i,
                        state: ObjState::Key,
                        key: KeyKind::Other,
                        key_start: i,
                        named_secret: false,
                        value_spans: Vec::new(),
                    });
                    i += 1;
                }
                b'[' => {
                    self.stack.push(Frame::Array {
                        start: i,
                        after_value: false,
                    });
                    i += 1;
                }
                b'"' => {
                    let (end, closed) = string_end(raw, i + 1);
                    let stop = if closed { end + 1 } else { end };
                    self.value_done(
                        i,
                        stop,
                        Val::Str {
                            content: (i + 1, end),
                            closed,
                        },
                    );
                    i = stop;
                }
                _ => {
                    let len = raw[i..]
                        .iter()
                        .take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
                        })
                        .count();
                    // Numbers and literals only: a bare word is text, not
                    // JSON, and the text rules must see it (`Api-Key: v`).
                    let token = &raw[i..i + len];
                    let literal = matches!(
                        token,
                        b"true" | b"false" | b"null" | b"NaN" | b"Infinity" | b"-Infinity"
                    );
                    let number = token
                        .first()
                        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.'));
                    if !(literal || number) {
                        return Some(i);
                    }
                    self.value_done(i, i + len, Val::Other);
                    i += len;
                }
            }
        }
    }
}

/// Where the string whose content starts at `from` ends (its closing
/// quote), and whether it is closed at all.
fn string_end(raw: &[u8], from: usize) -> (usize, bool) {
    let mut i = from;
    while let Some(off) = memchr2(b'"', b'\\', &raw[i..]) {
        let at = i + off;
        if raw[at] == b'"' {
            return (at, true);
        }
        i = at + 2;
        if i >= raw.len() {
            return (raw.len(), false);
        }
    }
    (raw.len(), false)
}

fn memchr2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == a || c == b)
}

/// A string's content with its escapes decoded; other bytes (invalid UTF-8
/// included) as they are.
fn unescape(content: &[u8]) -> Cow<'_, [u8]> {
    if !content.contains(&b'\\') {
        return Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let c = content[i];
        if c != b'\\' || i + 1 >= content.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = content[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'u' => {
                let hex = |at: usize| {
                    content
                        .get(at..at + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let Some(hi) = hex(i) else {
                    out.extend_from_slice(b"\\u");
                    continue;
                };
                i += 4;
                let mut code = hi;
                if (0xD800..0xDC00).contains(&hi)
                    && content.get(i..i + 2) == Some(b"\\u")
                    && let Some(lo) = hex(i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
                {
                    code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// Writes `text` as JSON string content (without quotes).
fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    for &c in text {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
}

/// Scrubs `raw` (at string-nesting `depth`); true when a part could not be
/// tokenised.
fn scrub(raw: &[u8], depth: usize) -> (Cow<'_, [u8]>, bool) {
    let mut w = Walker {
        raw,
        depth,
        stack: Vec::new(),
        edits: Vec::new(),
        partly_masked: false,
    };
    let failed_at = w.walk();
    // Where the walk stopped, every open container is closed there, so a
    // secret container is masked as far as it was read.
    let tail_start = failed_at.map(|at| match w.stack.last() {
        Some(Frame::Object {
            state: ObjState::Colon | ObjState::Value,
            key_start,
            ..
        }) => *key_start,
        _ => at,
    });
    let end = tail_start.unwrap_or(raw.len());
    while !w.stack.is_empty() {
        w.close(end);
    }
    let mut edits = std::mem::take(&mut w.edits);
    edits.retain(|e| e.end <= end);
    let tail = tail_start.map(|t| &raw[t..]).unwrap_or_default();
    let tail_is_json_junk = !tail.trim_ascii().is_empty();
    if edits.is_empty() && !tail_is_json_junk {
        return (Cow::Borrowed(raw), w.partly_masked);
    }
    edits.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(b.mask.cmp(&a.mask))
    });
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    for e in edits {
        // An edit inside one already made (a value of a masked container).
        if e.start < at {
            continue;
        }
        out.extend_from_slice(&raw[at..e.start]);
        out.extend_from_slice(&e.with);
        at = e.end;
    }
    out.extend_from_slice(&raw[at..end]);
    if tail_is_json_junk {
        out.extend_from_slice(&scrub_untokenised(tail));
    } else {
        out.extend_from_slice(tail);
    }
    (Cow::Owned(out), w.partly_masked || tail_is_json_junk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(raw: &[u8]) -> (String, bool) {
        let r = scrub_raw_bytes(raw);
        (
            String::from_utf8_lossy(&r.bytes).into_owned(),
            r.partly_masked,
        )
    }

    #[test]
    fn duplicate_keys_are_all_scrubbed() {
        let (out, partly) = s(br#"{"api-key":"k1","api-key":"k2","x":{"Api-Key":"k3"},"x":1}"#);
        assert_eq!(
            out,
            r#"{"api-key":"***","api-key":"***","x":{"Api-Key":"***"},"x":1}"#
        );
        assert!(!partly);
    }

    #[test]
    fn containers_and_name_value_pairs() {
        let (out, _) = s(
            br#"{"headers":[{"value":"v1","name":"Api-Key"},{"name":"accept","value":"*/*"}],"Authorization":["Bearer t"],"appSubscriptionKey":{"a":[1,2]}}"#,
        );
        assert_eq!(
            out,
            r#"{"headers":[{"value":"***","name":"Api-Key"},{"name":"accept","value":"*/*"}],"Authorization":"***","appSubscriptionKey":"***"}"#
        );
    }

    #[test]
    fn json_inside_strings_is_walked() {
        let (out, _) = s(br#"{"body":"{\"api-key\":\"k1\",\"api-key\":\"k2\",\"in\":\"{\\\"x-api-key\\\":\\\"k3\\\"}\"}"}"#);
        for k in ["k1", "k2", "k3"] {
            assert!(!out.contains(&format!("\\\"{k}")), "{out}");
        }
        // Still JSON, and the inner body is still JSON.
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let inner: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(inner["api-key"], "***");
    }

    #[test]
    fn invalid_utf8_escapes_and_cut_values() {
        let (out, partly) =
            s(b"{\"a\":\"\xff\xfe\",\"\\u0061pi-key\":\"secretvalue\",\"b\":\"\x80\"}");
        assert!(!out.contains("secretvalue"), "{out}");
        assert!(!partly);
        let r = scrub_raw_bytes(b"{\"a\":\"\xff\",\"api-key\":\"secr");
        assert_eq!(r.bytes, b"{\"a\":\"\xff\",\"api-key\":\"***\"".to_vec());
        let (out, _) = s(br#"{"x":{"password":{"deep":"pa55word""#);
        assert!(!out.contains("pa55word"), "{out}");
    }

    #[test]
    fn clean_bytes_are_kept_exactly() {
        for raw in [
            &b"{ \"a\" : 1.50e0, \"b\": [1,2] , \"c\" : \"\\u00e9\" }"[..],
            b"{\"api-key\":\"***\",\"token\":null,\"password\":\"\"}",
            b"[1, 2, {\"a\": []}] \n {\"b\": true}",
            b"",
        ] {
            let r = scrub_raw_bytes(raw);
            assert_eq!(r.bytes, raw.to_vec());
            assert!(!r.partly_masked);
        }
    }

    #[test]
    fn untokenisable_bytes_are_masked_where_key_like() {
        let r = scrub_raw_bytes(
            b"{\"a\":1} \x00garbage 0123456789abcdef0123456789abcdef and QUJDREVGR0hJSktMTU5PUFFSU1RVVldY== ok",
        );
        let out = String::from_utf8_lossy(&r.bytes);
        assert!(r.partly_masked);
        assert!(!out.contains("0123456789abcdef"), "{out}");
        assert!(!out.contains("QUJDREVGR0hJ"), "{out}");
        assert!(out.starts_with("{\"a\":1} "), "{out}");
        // Plain text is not taken for bare JSON words.
        let (out, partly) = s(b"not json Api-Key: abc123secret");
        assert_eq!(out, "not json Api-Key: ***");
        assert!(partly);
        // A secret key whose value is not JSON: masked by the text rules.
        let (out, partly) = s(br#"{"ok":"1","api-key": sk_live_x1y2 ,"b":2}"#);
        assert!(partly);
        assert!(!out.contains("sk_live_x1y2"), "{out}");
    }

    #[test]
    fn depth_costs_nothing_special() {
        let mut raw = "[".repeat(100_000).into_bytes();
        raw.extend_from_slice(b"{\"api-key\":\"deepsecret\"}");
        raw.extend_from_slice("]".repeat(100_000).as_bytes());
        let (out, partly) = s(&raw);
        assert!(!out.contains("deepsecret"));
        assert!(!partly);
    }
}
