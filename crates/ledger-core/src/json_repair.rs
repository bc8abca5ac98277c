//! Closing a JSON text cut part-way.

use serde_json::Value;

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
pub(crate) fn repair(text: &str) -> Option<Value> {
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
}
