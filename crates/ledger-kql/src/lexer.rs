//! Tokens of a KQL query, each with its line and column.

use crate::error::{KqlError, Pos};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A name or keyword, including `project-away`, `!has`, `in~`.
    Ident(String),
    /// `['name']` or `["name"]`: a quoted name, never a keyword.
    QuotedIdent(String),
    Str(String),
    Int(i64),
    Real(f64),
    /// A timespan literal such as `1h` or `1.5d`, in nanoseconds.
    Timespan(i64),
    /// `datetime(...)`, `timespan(...)`, `dynamic(...)`, `guid(...)` and the
    /// typed literals `int(null)` etc.: the type and the raw text inside.
    Typed(String, String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// Operator names written with a hyphen (joined into one identifier).
const HYPHENATED: &[&str] = &[
    "project-away",
    "project-rename",
    "project-reorder",
    "project-keep",
    "mv-expand",
    "mv-apply",
    "make-series",
];

/// Words that take a raw literal in parentheses.
const TYPED: &[&str] = &[
    "datetime", "timespan", "dynamic", "guid", "int", "long", "real", "double", "bool", "boolean",
    "decimal", "string", "time", "date",
];

const PUNCTS: &[&str] = &[
    "..", "==", "!=", "=~", "!~", "<=", ">=", "=>", "<>", "|", "(", ")", "[", "]", "{", "}", ",",
    ";", ":", ".", "=", "<", ">", "+", "-", "*", "/", "%", "$",
];

/// Nanoseconds per timespan unit suffix.
fn unit_micros(unit: &str) -> Option<f64> {
    Some(match unit {
        "d" | "day" | "days" => 86_400e9,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600e9,
        "m" | "min" | "minute" | "minutes" => 60e9,
        "s" | "sec" | "second" | "seconds" => 1e9,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1e6,
        "microsecond" | "microseconds" => 1e3,
        "tick" | "ticks" => 100.0,
        _ => return None,
    })
}

pub fn lex(src: &str) -> Result<Vec<Token>, KqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    // Advances over `n` characters, keeping line and column.
    let advance = |i: &mut usize, line: &mut u32, col: &mut u32, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col, 1);
            }
            continue;
        }
        // Strings: '...', "...", verbatim @'...', obfuscated h'...', ```...```.
        let verbatim = (c == '@' || c == 'h' || c == 'H')
            && matches!(chars.get(i + 1), Some('\'') | Some('"'));
        if c == '\'' || c == '"' || verbatim {
            let start = i;
            if verbatim {
                i += 1;
            }
            let q = chars[i];
            let raw = c == '@';
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                let Some(&d) = chars.get(j) else {
                    return Err(KqlError::syntax(pos, "unterminated string literal"));
                };
                if d == q {
                    if raw && chars.get(j + 1) == Some(&q) {
                        s.push(q);
                        j += 2;
                        continue;
                    }
                    break;
                }
                if d == '\\' && !raw && chars.get(j + 1) == Some(&'u') {
                    let hex: String = chars.iter().skip(j + 2).take(4).collect();
                    if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        s.push(c);
                        j += 6;
                        continue;
                    }
                }
                if d == '\\' && !raw {
                    let e = chars.get(j + 1).copied().unwrap_or('\\');
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                    j += 2;
                    continue;
                }
                s.push(d);
                j += 1;
            }
            let n = j + 1 - start;
            i = start;
            advance(&mut i, &mut line, &mut col, n);
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            continue;
        }
        if c == '`' && chars.get(i + 1) == Some(&'`') && chars.get(i + 2) == Some(&'`') {
            let rest: String = chars[i + 3..].iter().collect();
            let Some(end) = rest.find("```") else {
                return Err(KqlError::syntax(pos, "unterminated ``` string literal"));
            };
            let s = rest[..end].to_string();
            let n = 3 + s.chars().count() + 3;
            advance(&mut i, &mut line, &mut col, n);
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            let mut j = i;
            let hex = c == '0' && matches!(chars.get(i + 1), Some('x') | Some('X'));
            if hex {
                j += 2;
                while j < chars.len() && chars[j].is_ascii_hexdigit() {
                    j += 1;
                }
                let text: String = chars[i + 2..j].iter().collect();
                let v = i64::from_str_radix(&text, 16)
                    .map_err(|_| KqlError::syntax(pos, "invalid hexadecimal literal"))?;
                advance(&mut i, &mut line, &mut col, j - start);
                out.push(Token {
                    tok: Tok::Int(v),
                    pos,
                });
                continue;
            }
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let mut real = false;
            if chars.get(j) == Some(&'.') && chars.get(j + 1).is_some_and(|d| d.is_ascii_digit()) {
                real = true;
                j += 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if matches!(chars.get(j), Some('e') | Some('E'))
                && (chars.get(j + 1).is_some_and(|d| d.is_ascii_digit())
                    || (matches!(chars.get(j + 1), Some('-') | Some('+'))
                        && chars.get(j + 2).is_some_and(|d| d.is_ascii_digit())))
            {
                real = true;
                j += 2;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let text: String = chars[start..j].iter().collect();
            // A unit suffix makes a timespan (`1h`, `1.5d`, `100ms`).
            let mut k = j;
            while k < chars.len() && chars[k].is_ascii_alphabetic() {
                k += 1;
            }
            let suffix: String = chars[j..k].iter().collect();
            let tok = if !suffix.is_empty() {
                let value: f64 = text
                    .parse()
                    .map_err(|_| KqlError::syntax(pos, "invalid number"))?;
                if suffix == "L" || suffix == "l" {
                    Tok::Int(value as i64)
                } else {
                    let Some(per) = unit_micros(&suffix) else {
                        return Err(KqlError::syntax(
                            pos,
                            format!("unknown timespan unit `{suffix}` in `{text}{suffix}`"),
                        ));
                    };
                    Tok::Timespan((value * per).round() as i64)
                }
            } else if real {
                Tok::Real(
                    text.parse()
                        .map_err(|_| KqlError::syntax(pos, "invalid number"))?,
                )
            } else {
                match text.parse::<i64>() {
                    Ok(v) => Tok::Int(v),
                    Err(_) => Tok::Real(
                        text.parse()
                            .map_err(|_| KqlError::syntax(pos, "invalid number"))?,
                    ),
                }
            };
            advance(&mut i, &mut line, &mut col, k - start);
            out.push(Token { tok, pos });
            continue;
        }
        if c.is_alphabetic()
            || c == '_'
            || (c == '!' && chars.get(i + 1).is_some_and(|d| d.is_alphabetic()))
        {
            let start = i;
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let mut word: String = chars[start..j].iter().collect();
            // project-away and friends.
            if chars.get(j) == Some(&'-') {
                let mut k = j + 1;
                while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                    k += 1;
                }
                let joined: String = chars[start..k].iter().collect();
                if HYPHENATED.contains(&joined.as_str()) {
                    word = joined;
                    j = k;
                }
            }
            // in~, !in~, has_any~ ... only `in~` is an operator.
            if (word == "in" || word == "!in") && chars.get(j) == Some(&'~') {
                word.push('~');
                j += 1;
            }
            // Typed literals: datetime(2020-01-01), dynamic([1, 2]).
            let mut k = j;
            while k < chars.len() && chars[k] == ' ' {
                k += 1;
            }
            let lower = word.to_ascii_lowercase();
            if TYPED.contains(&lower.as_str())
                && chars.get(k) == Some(&'(')
                && raw_literal(&lower, &chars, k + 1)
            {
                let mut depth = 0i32;
                let mut m = k;
                let mut in_str: Option<char> = None;
                loop {
                    let Some(&d) = chars.get(m) else {
                        return Err(KqlError::syntax(pos, format!("unterminated {word}(...)")));
                    };
                    match in_str {
                        Some(_) if d == '\\' => m += 1,
                        Some(q) if d == q => in_str = None,
                        Some(_) => {}
                        None => match d {
                            '"' | '\'' => in_str = Some(d),
                            '(' | '[' | '{' => depth += 1,
                            ')' | ']' | '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        },
                    }
                    m += 1;
                }
                let raw: String = chars[k + 1..m].iter().collect();
                advance(&mut i, &mut line, &mut col, m + 1 - start);
                out.push(Token {
                    tok: Tok::Typed(lower, raw.trim().to_string()),
                    pos,
                });
                continue;
            }
            advance(&mut i, &mut line, &mut col, j - start);
            out.push(Token {
                tok: Tok::Ident(word),
                pos,
            });
            continue;
        }
        // ['quoted name']
        if c == '[' {
            let mut k = i + 1;
            while chars.get(k) == Some(&' ') {
                k += 1;
            }
            if let Some(&q) = chars.get(k).filter(|q| **q == '\'' || **q == '"') {
                let mut m = k + 1;
                while m < chars.len() && chars[m] != q {
                    m += 1;
                }
                let mut e = m + 1;
                while chars.get(e) == Some(&' ') {
                    e += 1;
                }
                // Only a lone quoted string in brackets right after a name
                // start is a name; `x['a']` (an index) is lexed the same and
                // the parser tells them apart by position.
                if chars.get(e) == Some(&']') && !follows_value(&out) {
                    let name: String = chars[k + 1..m].iter().collect();
                    let n = e + 1 - i;
                    advance(&mut i, &mut line, &mut col, n);
                    out.push(Token {
                        tok: Tok::QuotedIdent(name),
                        pos,
                    });
                    continue;
                }
            }
        }
        let rest: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
            return Err(KqlError::syntax(pos, format!("unexpected character `{c}`")));
        };
        advance(&mut i, &mut line, &mut col, p.len());
        out.push(Token {
            tok: Tok::Punct(p),
            pos,
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: Pos { line, col },
    });
    Ok(out)
}

/// Whether `word(` starts a raw literal rather than a call: `int(null)`,
/// `datetime(2020-01-01)` are literals; `int(x)` is not Kusto (`toint`), but a
/// `real(...)` column type in a datatable header is followed by no `(`.
fn raw_literal(word: &str, chars: &[char], start: usize) -> bool {
    match word {
        "datetime" | "timespan" | "dynamic" | "guid" | "time" | "date" => true,
        _ => {
            let inner: String = chars[start..].iter().take_while(|c| **c != ')').collect();
            let t = inner.trim();
            t == "null"
                || t == "nan"
                || t == "+inf"
                || t == "-inf"
                || t == "true"
                || t == "false"
                || t.parse::<f64>().is_ok()
        }
    }
}

/// Whether the previous token ends a value, so a following `[` indexes it.
fn follows_value(out: &[Token]) -> bool {
    // Keywords after which a `[` starts a quoted name, not an index.
    const BEFORE_NAME: &[&str] = &[
        "by",
        "on",
        "and",
        "or",
        "project",
        "extend",
        "summarize",
        "where",
        "in",
        "let",
        "print",
        "project-away",
        "project-rename",
        "project-reorder",
        "mv-expand",
        "distinct",
        "sort",
        "order",
        "top",
        "not",
        "to",
        "from",
        "step",
        "with",
        "union",
        "join",
        "asc",
        "desc",
        "count",
    ];
    match out.last().map(|t| &t.tok) {
        Some(Tok::Ident(w)) => !BEFORE_NAME.contains(&w.as_str()),
        Some(Tok::Punct(p)) => matches!(*p, ")" | "]"),
        Some(Tok::QuotedIdent(_)) | Some(Tok::Str(_)) | Some(Tok::Typed(..)) => true,
        _ => false,
    }
}
