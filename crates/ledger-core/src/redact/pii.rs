//! PII masking: e-mail addresses, phone and card numbers in prompt and
//! response text, when a deployment asks for it (`mask_pii`).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}\b")
        .expect("email pattern")
});

/// Digit runs with single space/dash separators: card candidates.
static DIGIT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9](?:[ \-]?[0-9])*").expect("digit run pattern"));

/// Phone candidates: optional `+`, groups of digits (or `(area)`) joined by
/// single separators. Validated afterwards (digit count, separators, context).
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+[ ]?)?(?:\([0-9]{1,5}\)|[0-9]{1,5})(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9]{1,5})){1,8}",
    )
    .expect("phone pattern")
});

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A character that glues a number to a word, path, id or version.
fn glued(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '-' | '@' | ':' | '.' | '+'))
}

fn mask_cards(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut last = 0;
    for m in DIGIT_RUN.find_iter(text) {
        if glued(text[..m.start()].chars().next_back()) {
            continue;
        }
        let run = m.as_str();
        // Byte offset just past each digit, and the digit.
        let digits: Vec<(usize, u32)> = run
            .char_indices()
            .filter_map(|(i, c)| c.to_digit(10).map(|d| (i + 1, d)))
            .collect();
        // Longest prefix of 13..=19 digits that ends at a group boundary and
        // passes the Luhn check, with a card-network first digit (2-6) so
        // epoch-millisecond timestamps are not taken for cards.
        let max = digits.len().min(19);
        let found = (13..=max).rev().find(|&n| {
            let end = digits[n - 1].0;
            let at_boundary =
                n == digits.len() || !run[end..].starts_with(|c: char| c.is_ascii_digit());
            let ds: Vec<u32> = digits[..n].iter().map(|d| d.1).collect();
            at_boundary && (2..=6).contains(&ds[0]) && luhn(&ds)
        });
        let Some(n) = found else { continue };
        let end = m.start() + digits[n - 1].0;
        if n == digits.len()
            && glued(text[end..].chars().next())
            && !text[end..].starts_with(['.', '-'])
        {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str("[card]");
        last = end;
    }
    if last == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

fn is_phone(candidate: &str, before: Option<char>, after: Option<char>, rest: &str) -> bool {
    let digits = candidate.chars().filter(char::is_ascii_digit).count();
    if !(9..=15).contains(&digits) {
        return false;
    }
    let plus = candidate.starts_with('+');
    let seps: Vec<char> = candidate
        .chars()
        .filter(|c| matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    if !plus && seps.is_empty() {
        return false; // a bare number is more likely an id than a phone
    }
    // Dotted quads are IP addresses.
    if !plus && seps.iter().all(|&c| c == '.') && seps.len() == 3 {
        return false;
    }
    if glued(before) && !(before == Some('(') || before == Some('+')) {
        return false;
    }
    // `2024-05-13 10:00` ends in `:`; `1.2.3` versions continue with a digit.
    match after {
        Some('.') => !rest[1..].starts_with(|c: char| c.is_ascii_digit()),
        other => !glued(other),
    }
}

fn mask_phones(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut last = 0;
    for m in PHONE.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let rest = &text[m.end()..];
        if !is_phone(m.as_str(), before, rest.chars().next(), rest) {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str("[phone]");
        last = m.end();
    }
    if last == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Masks e-mail addresses, phone numbers and card numbers.
///
/// E-mails become `[email]`; 13–19 digit numbers (spaces or dashes allowed)
/// that pass the Luhn check `[card]`; numbers of 9–15 digits written with
/// separators or a leading `+` `[phone]`. Heuristic by nature: bare digit
/// strings, dates, times, IP addresses and versions are left alone.
pub fn mask_pii(text: &str) -> String {
    let t = EMAIL.replace_all(text, "[email]");
    let t = mask_cards(&t).into_owned();
    mask_phones(&t).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn pii_emails() {
        assert_eq!(
            mask_pii("write to jane.doe+x@contoso.co.uk today"),
            "write to [email] today"
        );
        assert_eq!(mask_pii("a@b.c is not one"), "a@b.c is not one");
        assert_eq!(mask_pii("@handle and x@y"), "@handle and x@y");
    }

    #[test]
    fn pii_cards() {
        for (input, expected) in [
            ("card 4111 1111 1111 1111 exp", "card [card] exp"),
            ("card 4111-1111-1111-1111.", "card [card]."),
            ("4111111111111111", "[card]"),
            ("amex 3782 822463 10005", "amex [card]"),
            ("card 4111 1111 1111 1111 12 25", "card [card] 12 25"),
            // Luhn fails.
            ("4111 1111 1111 1112", "4111 1111 1111 1112"),
            // Epoch milliseconds: first digit 1.
            ("ts 1716560756000", "ts 1716560756000"),
            // Part of an id.
            ("order-4111111111111111", "order-4111111111111111"),
        ] {
            assert_eq!(mask_pii(input), expected, "{input}");
        }
    }

    #[test]
    fn pii_phones() {
        for (input, expected) in [
            ("call +1 (415) 555-2671 now", "call [phone] now"),
            ("call +44 20 7946 0958.", "call [phone]."),
            ("+33 6 12 34 56 78", "[phone]"),
            ("+4915112345678", "[phone]"),
            ("(555) 123-4567", "[phone]"),
            ("555-123-4567", "[phone]"),
            ("555.123.4567", "[phone]"),
            ("Tel. 030 1234567", "Tel. [phone]"),
            ("06 12 34 56 78", "[phone]"),
        ] {
            assert_eq!(mask_pii(input), expected, "{input}");
        }
        for keep in [
            "5551234567",
            "2024-05-13 10:00:00",
            "2024-05-13",
            "ip 192.168.100.200 ok",
            "version 1.2.3",
            "id 5d0c1234-5678-9012-3456-789012345678",
            "total_tokens 1500, prompt 1000",
            "12 apples",
            "/api/v1/12345-678-901",
        ] {
            assert_eq!(mask_pii(keep), keep, "{keep}");
        }
    }

    #[test]
    fn pii_json_stays_json() {
        let v = json!({"content": "mail bob@example.com or call +1 415 555 2671, card 4111 1111 1111 1111", "created": 1716560756});
        let masked = mask_pii(&v.to_string());
        let back: Value = serde_json::from_str(&masked).unwrap();
        assert_eq!(back["content"], "mail [email] or call [phone], card [card]");
        assert_eq!(back["created"], 1716560756);
    }
}
