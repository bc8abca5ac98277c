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

use regex::Regex;

use super::{MASK, is_secret_field, scrub_text_cow, secret_names_pattern};

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

/// A secret name (with a prefix: `appSubscriptionKey`).
static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)[A-Za-z0-9_.\-]*?(?:{})",
        secret_names_pattern()
    ))
    .expect("secret name pattern")
});

/// A run that is a secret name and nothing else.
static ONLY_SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^[A-Za-z0-9_.\-]*?(?:{})$",
        secret_names_pattern()
    ))
    .expect("secret name pattern")
});

/// Masks the value after every secret name, whatever (up to 8 characters of
/// punctuation, junk or stand-ins) separates them: where the bytes are not
/// JSON, a pair may be broken in any way. A run that is itself a secret
/// name is the next pair's name, not a value.
fn mask_loose_pairs(text: &str) -> Cow<'_, str> {
    const MAX_SEPARATOR: usize = 8;
    let b = text.as_bytes();
    let value_byte = |c: u8| c.is_ascii_alphanumeric() || b"+/=_%-.~".contains(&c);
    let mut out = String::new();
    let mut last = 0;
    let mut pos = 0;
    while let Some(m) = SECRET_NAME.find_at(text, pos) {
        pos = m.end();
        let mut j = m.end();
        for c in text[m.end()..].chars().take(MAX_SEPARATOR) {
            if (c.is_ascii() && value_byte(c as u8)) || matches!(c, '*' | '\r' | '\n') {
                break;
            }
            j += c.len_utf8();
        }
        let start = j;
        while j < b.len() && value_byte(b[j]) {
            j += 1;
        }
        // `j` stops at ASCII bytes only, so both ends are char boundaries.
        let run = &text[start..j];
        if start == m.end() || run.is_empty() || ONLY_SECRET_NAME.is_match(run) {
            continue;
        }
        // An auth scheme (`Bearer t`): the token after it goes too.
        if ["bearer", "basic", "sharedaccesssignature"]
            .iter()
            .any(|s| run.eq_ignore_ascii_case(s))
        {
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            while j < b.len() && value_byte(b[j]) {
                j += 1;
            }
        }
        out.push_str(&text[last..start]);
        out.push_str(MASK);
        last = j;
        pos = j;
    }
    if last == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

fn looks_like_key(run: &str) -> bool {
    run.bytes().any(|c| c.is_ascii_digit()) && run.bytes().any(|c| c.is_ascii_alphabetic())
}

/// Bytes that are not JSON: every secret name's value whatever separates
/// them, then the text rules, then every key-like run masked. Invalid bytes
/// are kept as they are.
fn scrub_untokenised(bytes: &[u8]) -> Vec<u8> {
    let out = map_text(bytes, |text| {
        // Loose pairs first: a text rule may mask a pair's start and
        // leave its value behind (`"api-key":{"a":"api-key: v` cut).
        let t = mask_loose_pairs(text);
        let t = match scrub_text_cow(&t) {
            Cow::Owned(s) => Cow::Owned(s),
            Cow::Borrowed(_) => t,
        };
        match KEY_LIKE.replace_all(&t, |c: &regex::Captures| {
            if looks_like_key(&c[0]) {
                MASK.to_string()
            } else {
                c[0].to_string()
            }
        }) {
            Cow::Owned(s) => Cow::Owned(s),
            Cow::Borrowed(_) => t,
        }
    });
    out.into_owned()
}

/// Private-use characters standing for invalid bytes while the text rules
/// run, so a pattern matches across them (`Api-Key: ab\x80cd` is masked
/// whole) and the bytes come back afterwards.
const INVALID_BYTE_BASE: u32 = 0xE000;

/// Text scrubbing with loose pairs, without key-like masking: for strings
/// that hold something like JSON that the walk does not take for JSON.
fn scrub_untokenised_pairs(bytes: &[u8]) -> Cow<'_, [u8]> {
    map_text(bytes, |text| {
        let t = mask_loose_pairs(text);
        match scrub_text_cow(&t) {
            Cow::Owned(s) => Cow::Owned(s),
            Cow::Borrowed(_) => t,
        }
    })
}

/// Text scrubbing of bytes that may not be UTF-8.
fn scrub_text_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    map_text(bytes, scrub_text_cow)
}

/// Runs `rules` on bytes as text, invalid bytes standing in as private-use
/// characters; borrowed when nothing changed.
fn map_text<'b>(bytes: &'b [u8], rules: impl Fn(&str) -> Cow<'_, str>) -> Cow<'b, [u8]> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return match rules(text) {
            Cow::Owned(s) if s != text => Cow::Owned(s.into_bytes()),
            _ => Cow::Borrowed(bytes),
        };
    }
    let mut text = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.extend(
            chunk
                .invalid()
                .iter()
                .filter_map(|b| char::from_u32(INVALID_BYTE_BASE + u32::from(*b))),
        );
    }
    let scrubbed = match rules(&text) {
        Cow::Owned(s) if s != text => s,
        _ => return Cow::Borrowed(bytes),
    };
    let mut out = Vec::with_capacity(scrubbed.len());
    let mut buf = [0u8; 4];
    for c in scrubbed.chars() {
        match u32::from(c).checked_sub(INVALID_BYTE_BASE) {
            Some(b) if b < 0x100 => out.push(b as u8),
            _ => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    Cow::Owned(out)
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
    /// A nested JSON string was partly masked.
    partly_masked: bool,
    /// Some bytes fit no token.
    untokenised: bool,
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
        // JSON inside, perhaps after spaces, control or stray bytes; or a
        // JSON string literal (JSON written as a string twice).
        let printable = |c: &&u8| (0x21..0x80).contains(*c);
        let first = text.iter().find(printable);
        let last = text.iter().rev().find(printable);
        let nested = match (first, last) {
            (Some(b'{' | b'['), _) => true,
            (Some(b'"'), Some(b'"')) => text.len() > 1,
            _ => false,
        };
        let scrubbed: Cow<'_, [u8]> = if self.depth < MAX_STRING_NESTING && nested {
            let (s, partly) = scrub(&text, self.depth + 1);
            self.partly_masked |= partly;
            s
        } else if text.iter().any(|c| matches!(c, b'{' | b'[')) {
            // Perhaps JSON behind stray bytes: its pairs may be broken.
            Cow::Owned(scrub_untokenised_pairs(&text).into_owned())
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
        if let Some(Frame::Object { state, key, .. }) = self.stack.last_mut() {
            *state = ObjState::Colon;
            *key = kind;
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

    /// Bytes that fit no token here: skipped, the walk goes on in the same
    /// state (so the pairs after them are still seen), and the whole output
    /// gets the text pass.
    fn skip(&mut self, at: usize, len: usize) -> usize {
        self.untokenised = true;
        at + len
    }

    /// Walks the bytes to their end.
    fn walk(&mut self) {
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
                return;
            }
            let b = raw[i];
            // Unless the innermost container takes this byte, a value starts.
            match self.stack.last_mut() {
                None => {}
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
                    // A missing value (`[1,,2]`): the slot is taken as empty.
                    (b',', false) => {
                        *after_value = true;
                        self.untokenised = true;
                        continue;
                    }
                    (_, false) => {}
                    // A value where a `,` was due: a comma is missing.
                    (b'{' | b'[' | b'"', true) => {
                        *after_value = false;
                        self.untokenised = true;
                        continue;
                    }
                    (_, true) => {
                        i = self.skip(i, 1);
                        continue;
                    }
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
                    // A key where a `,` was due: a comma is missing.
                    (ObjState::CommaOrEnd, b'"') => {
                        *state = ObjState::Key;
                        self.untokenised = true;
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
                            // The text ends inside a key: scrubbed as a
                            // cut string is (it may hold anything).
                            self.rewrite_string(i, end, (i + 1, end), false);
                            return;
                        }
                        self.key_done(i, (i + 1, end));
                        i = end + 1;
                        continue;
                    }
                    // A missing value (`{"a":,"b":1}`): taken as empty.
                    (ObjState::Value, b',' | b'}') => {
                        *state = ObjState::CommaOrEnd;
                        self.untokenised = true;
                        continue;
                    }
                    (ObjState::Value, _) => {}
                    _ => {
                        i = self.skip(i, 1);
                        continue;
                    }
                },
            }
            match b {
                b'{' => {
                    self.stack.push(Frame::Object {
                        start: i,
                        state: ObjState::Key,
                        key: KeyKind::Other,
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
                    // Numbers and literals are JSON; a bare word is text,
                    // and the text pass must see it (`Api-Key: v`).
                    let token = &raw[i..i + len];
                    let literal = matches!(
                        token,
                        b"true" | b"false" | b"null" | b"NaN" | b"Infinity" | b"-Infinity"
                    );
                    let number = token
                        .first()
                        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.'));
                    if len == 0 {
                        i = self.skip(i, 1);
                        continue;
                    }
                    // A bare word where a value belongs is a (bad) value: a
                    // secret key's is masked, and the pairs after it keep
                    // their places.
                    if !(literal || number) {
                        self.untokenised = true;
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
        untokenised: false,
    };
    w.walk();
    // A cut text: every open container is closed at the end, so a secret
    // container is masked as far as it goes.
    while !w.stack.is_empty() {
        w.close(raw.len());
    }
    let mut edits = std::mem::take(&mut w.edits);
    let partly = w.partly_masked || w.untokenised;
    let structured: Cow<'_, [u8]> = if edits.is_empty() {
        Cow::Borrowed(raw)
    } else {
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
        out.extend_from_slice(&raw[at..]);
        Cow::Owned(out)
    };
    if !w.untokenised {
        return (structured, partly);
    }
    // Not JSON throughout: the text rules and key-like masking over all of
    // it, for pairs the skipped bytes may have hidden from the walk.
    (Cow::Owned(scrub_untokenised(&structured)), partly)
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
