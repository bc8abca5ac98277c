//! Repair of events cut by APIM's 200 KB `log-to-eventhub` limit: the cut
//! can fall anywhere, usually inside a body string. Closing the open string
//! and containers keeps what arrived decodable, so the call is not lost.

/// A cut event made parseable again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Salvaged {
    pub json: String,
    /// The top-level field (lowercased) whose value the cut fell inside, if
    /// any: that value (usually a body) is incomplete.
    pub cut_field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    ValueOrClose,
    KeyOrClose,
    Key,
    Colon,
    CommaOrClose,
    Done,
}

/// Repairs JSON text that ends early. `None` when the text is malformed in
/// some other way (then it is not a cut, and the caller reports the error).
pub(crate) fn repair(text: &str) -> Option<Salvaged> {
    let b = text.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut expect = Expect::Value;
    // Last position where the text can be cut and closed validly.
    let mut safe: Option<(usize, Vec<u8>)> = None;
    let mut top_key: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'{' | b'[' if matches!(expect, Expect::Value | Expect::ValueOrClose) => {
                // An empty container is a fair stand-in for a member's value,
                // not for an array element (`{}` would pose as a message).
                let member = stack.last() != Some(&b'[');
                stack.push(c);
                expect = if c == b'{' {
                    Expect::KeyOrClose
                } else {
                    Expect::ValueOrClose
                };
                i += 1;
                if member {
                    safe = Some((i, stack.clone()));
                }
            }
            b'}' | b']'
                if matches!(
                    expect,
                    Expect::KeyOrClose | Expect::ValueOrClose | Expect::CommaOrClose
                ) =>
            {
                let open = stack.pop()?;
                if (open == b'{') != (c == b'}') {
                    return None;
                }
                i += 1;
                expect = after_value(&stack);
                safe = Some((i, stack.clone()));
            }
            b',' if expect == Expect::CommaOrClose => {
                expect = if stack.last() == Some(&b'{') {
                    Expect::Key
                } else {
                    Expect::Value
                };
                i += 1;
            }
            b':' if expect == Expect::Colon => {
                expect = Expect::Value;
                i += 1;
            }
            b'"' => {
                let is_key = matches!(expect, Expect::KeyOrClose | Expect::Key);
                if !is_key && !matches!(expect, Expect::Value | Expect::ValueOrClose) {
                    return None;
                }
                let start = i + 1;
                let mut j = start;
                let mut closed = false;
                while j < b.len() {
                    match b[j] {
                        b'\\' => j += 2,
                        b'"' => {
                            closed = true;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                if !closed {
                    if is_key {
                        break;
                    }
                    // Cut inside a string value: keep its text, close it.
                    let keep = start + keep_len(text.get(start..)?);
                    let mut json = String::with_capacity(keep + stack.len() + 1);
                    json.push_str(text.get(..keep)?);
                    json.push('"');
                    push_closers(&mut json, &stack);
                    return Some(Salvaged {
                        json,
                        cut_field: key_text(text, top_key),
                    });
                }
                if is_key {
                    if stack.len() == 1 {
                        top_key = Some((start, j));
                    }
                    expect = Expect::Colon;
                } else {
                    expect = after_value(&stack);
                    safe = Some((j + 1, stack.clone()));
                }
                i = j + 1;
            }
            _ if matches!(expect, Expect::Value | Expect::ValueOrClose) => {
                // A number or literal; complete only once a delimiter follows.
                let mut j = i;
                while j < b.len()
                    && !matches!(
                        b[j],
                        b',' | b'}' | b']' | b':' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    j += 1;
                }
                if j == b.len() {
                    break;
                }
                expect = after_value(&stack);
                safe = Some((j, stack.clone()));
                i = j;
            }
            _ => return None,
        }
    }
    // The cut fell outside a string value: go back to the last safe point.
    let (len, st) = safe?;
    if st.is_empty() {
        return None;
    }
    let mut json = String::with_capacity(len + st.len());
    json.push_str(text.get(..len)?);
    push_closers(&mut json, &st);
    // A member nested below the top level was cut part-way.
    let cut_field = if stack.len() > 1 {
        key_text(text, top_key)
    } else {
        None
    };
    Some(Salvaged { json, cut_field })
}

fn after_value(stack: &[u8]) -> Expect {
    if stack.is_empty() {
        Expect::Done
    } else {
        Expect::CommaOrClose
    }
}

fn push_closers(out: &mut String, stack: &[u8]) {
    for &c in stack.iter().rev() {
        out.push(if c == b'{' { '}' } else { ']' });
    }
}

fn key_text(text: &str, range: Option<(usize, usize)>) -> Option<String> {
    let (a, z) = range?;
    text.get(a..z).map(|k| k.to_ascii_lowercase())
}

/// How much of a cut string's content to keep: drops a dangling backslash,
/// a partial `\uXXXX` escape and an unpaired high surrogate at the end.
fn keep_len(s: &str) -> usize {
    let b = s.as_bytes();
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
    use serde_json::Value;

    fn fixed(s: &str) -> (Value, Option<String>) {
        let r = repair(s).expect("repairable");
        (
            serde_json::from_str(&r.json).expect("valid JSON"),
            r.cut_field,
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
        assert_eq!(repair(r#"{"a" 1}"#), None);
        assert_eq!(repair("hello"), None);
        assert_eq!(repair(r#"{"a":1]"#), None);
    }
}
