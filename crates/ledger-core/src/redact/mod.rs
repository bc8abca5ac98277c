//! Secret removal and optional PII masking (`pii`).
//!
//! Secrets are removed whatever a dialect promises (a policy that claims to
//! strip them may not): header values, key-like JSON fields, URL query
//! secrets, connection-string keys, bearer tokens and JWTs become `***`.
//! Scrubbing errs on the side of removing too much: its output goes to dead
//! letters, error columns and logs, never back to the service.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod pii;
mod raw;
pub use pii::mask_pii;
pub use raw::{Scrubbed, scrub_raw_bytes};

/// What every removed secret is replaced with.
pub const MASK: &str = "***";

/// Headers whose value is a credential.
const SECRET_HEADERS: &[&str] = &[
    "api-key",
    "authorization",
    "proxy-authorization",
    "ocp-apim-subscription-key",
    "x-functions-key",
    "x-api-key",
    "x-ms-authorization-auxiliary",
    "cookie",
    "set-cookie",
];

/// JSON field names are secret when, lower-cased and without `-`, `_`, `.`,
/// they end with one of these (`appSubscriptionKey`, `ConnectionString`,
/// `sharedAccessKey`, `x-api-key`...).
const SECRET_FIELD_SUFFIXES: &[&str] = &[
    "subscriptionkey",
    "apikey",
    "accesskey",
    "accountkey",
    "functionskey",
    "connectionstring",
    "sharedaccesssignature",
    "sastoken",
    "clientsecret",
    "password",
    "accesstoken",
    "refreshtoken",
    "authorization",
    "cookie",
];

/// Query parameters whose value is a credential (`sig` of SAS URLs, `code` of
/// Azure Functions keys, ...).
const SECRET_QUERY_PARAMS: &[&str] = &[
    "subscription-key",
    "api-key",
    "api_key",
    "apikey",
    "sig",
    "code",
    "key",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "password",
];

/// True for a header whose value must never be stored.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    SECRET_HEADERS.contains(&n.as_str())
}

/// True for a JSON field (or header) name whose value must never be stored.
pub fn is_secret_field(name: &str) -> bool {
    if is_secret_header(name) {
        return true;
    }
    let n: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_FIELD_SUFFIXES.iter().any(|s| n.ends_with(s))
}

fn alternation(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| regex::escape(s))
        .collect::<Vec<_>>()
        .join("|")
}

/// [`SECRET_FIELD_SUFFIXES`] as regex fragments with the separators
/// [`is_secret_field`] ignores allowed between letters (`api[-_. ]?key`),
/// for text that is not (or no longer) valid JSON: one list serves both.
fn secret_field_patterns() -> String {
    SECRET_FIELD_SUFFIXES
        .iter()
        .map(|s| {
            s.chars()
                .map(|c| regex::escape(&c.to_string()))
                .collect::<Vec<_>>()
                .join("[-_. ]?")
        })
        .collect::<Vec<_>>()
        .join("|")
}

// The patterns are constants: a failure to compile is a programming error
// caught by every test, so `expect` cannot fire on input.

/// Every secret name as one regex alternation: the headers, then the
/// field names with optional separators.
pub(super) fn secret_names_pattern() -> String {
    format!(
        "{}|{}",
        alternation(SECRET_HEADERS),
        secret_field_patterns()
    )
}

/// `"api-key": "v"`, `\"ApiKey\":\"v\"` (JSON inside a JSON string),
/// `'password': 'v'`, with a string (cut short too), array or bare value.
static JSON_KEY: LazyLock<Regex> = LazyLock::new(|| {
    let names = secret_names_pattern();
    Regex::new(&format!(
        r#"(?i)(\\*["'])([A-Za-z0-9_.\-]*?(?:{names}))(\\*["'][ \t]*:[ \t]*)(?:(\\*["'])(.*?)(\\*["']|$)|(\[[^\]]*\])|([^\s,}}\]\\]+))"#
    ))
    .expect("JSON key pattern")
});

/// Between JSON tokens in text: spaces, control bytes, and the stand-ins
/// `raw` puts for invalid bytes (U+E000..U+E0FF) while it runs the text rules.
const SEP: &str = r"[\s\x00-\x1F\x{E000}-\x{E0FF}]*";

/// `{"name": "Api-Key", "value": "v"}` pairs written as text (also
/// escaped, and with `key`/`header` and `values`), in either order.
static NAME_VALUE: LazyLock<[Regex; 2]> = LazyLock::new(|| {
    let names = secret_names_pattern();
    let name = format!(
        r#"\\*"(?:name|key|header)\\*"{SEP}:{SEP}\\*"[A-Za-z0-9_.\- ]*?(?:{names})[ ]*\\*""#
    );
    let value_key = format!(r#"\\*"values?\\*"{SEP}:{SEP}"#);
    let value = r#"(?:\\*"(?:[^"\\]|\\[^"])*\\*"|\[[^\]]*\]|[^\s,}\]\\]+)"#;
    [
        Regex::new(&format!(r"(?i)({name}{SEP},{SEP}{value_key}){value}")),
        Regex::new(&format!(r"(?i)({value_key}){value}({SEP},{SEP}{name})")),
    ]
    .map(|r| r.expect("name/value pattern"))
});

/// `Api-Key: v` header lines (also `"Name: v1, v2"` strings of header arrays).
/// Any secret name counts (`appSubscriptionKey: v`), as in JSON keys.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)\b([A-Za-z0-9_.\-]*?(?:{}))([ \t]*:[ \t]*)([^\r\n"\\]+)"#,
        secret_names_pattern()
    ))
    .expect("header pattern")
});

/// Unambiguous `name=value` secrets, anywhere.
static STRONG_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(subscription-key|api-key|api_key|apikey|access_token|refresh_token|id_token|client_secret|password|sig)=([^&#\s"'\\<>;]+)"#,
    )
    .expect("param pattern")
});

/// Short names (`sig`, `code`, `key`) only as query parameters, so prose
/// such as `status code=200` survives.
static WEAK_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?im)(^|[?&#]|\\u0026|&amp;)(sig|code|key)=([^&#\s"'\\<>]+)"#)
        .expect("weak param pattern")
});

/// Connection-string segments: `AccountKey=...;`, `SharedAccessKey=...;`,
/// `SharedAccessSignature=SharedAccessSignature sr=...&sig=...;`, `Pwd=`.
static CONN_STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(AccountKey|SharedAccessKey|SharedAccessSignature|Pwd|ClientSecret)[ \t]*=[ \t]*([^;"'\r\n\\]+)"#)
        .expect("connection string pattern")
});

/// `scheme://user:password@host`.
static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@"'\\]+):([^@\s/"'\\]+)@"#)
        .expect("userinfo pattern")
});

/// Bearer tokens outside a header line; 16+ characters so prose survives.
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(Bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*").expect("bearer pattern")
});

/// JSON Web Tokens (`eyJ...`.`eyJ...`.sig).
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")
        .expect("jwt pattern")
});

/// Runs `re` over `text`, keeping the borrowed text when nothing matched.
fn apply<'a>(text: Cow<'a, str>, re: &Regex, rep: impl Fn(&Captures) -> String) -> Cow<'a, str> {
    if !re.is_match(&text) {
        return text;
    }
    Cow::Owned(re.replace_all(&text, |c: &Captures| rep(c)).into_owned())
}

fn group<'a>(c: &'a Captures, i: usize) -> &'a str {
    c.get(i).map_or("", |m| m.as_str())
}

fn scrub_text_cow(text: &str) -> Cow<'_, str> {
    let t = Cow::Borrowed(text);
    let t = apply(t, &JSON_KEY, |c| {
        // Keep the value's own quotes, or the key's when it had none.
        let (open, close) = if c.get(4).is_some() {
            (group(c, 4), group(c, 6))
        } else {
            (group(c, 1), group(c, 1))
        };
        format!(
            "{}{}{}{open}{MASK}{close}",
            group(c, 1),
            group(c, 2),
            group(c, 3)
        )
    });
    let [name_first, value_first] = &*NAME_VALUE;
    let t = apply(t, name_first, |c| format!("{}\"{MASK}\"", group(c, 1)));
    let t = apply(t, value_first, |c| {
        format!("{}\"{MASK}\"{}", group(c, 1), group(c, 2))
    });
    let t = apply(t, &HEADER_LINE, |c| {
        format!("{}{}{MASK}", group(c, 1), group(c, 2))
    });
    let t = apply(t, &CONN_STRING, |c| format!("{}={MASK}", group(c, 1)));
    let t = apply(t, &STRONG_PARAM, |c| format!("{}={MASK}", group(c, 1)));
    let t = apply(t, &WEAK_PARAM, |c| {
        format!("{}{}={MASK}", group(c, 1), group(c, 2))
    });
    let t = apply(t, &USERINFO, |c| format!("{}:{MASK}@", group(c, 1)));
    let t = apply(t, &BEARER, |c| format!("{} {MASK}", group(c, 1)));
    apply(t, &JWT, |_| MASK.to_string())
}

/// Removes secrets from free text: header lines, `"api-key":"..."` pairs,
/// URL query secrets, connection-string keys, bearer tokens, JWTs. For error
/// messages, log lines and unparseable dead letters.
///
/// Text that starts as JSON (an error quoting a body) is walked as JSON
/// first ([`scrub_raw_bytes`]), so a duplicate key hides nothing there
/// either.
pub fn scrub_text(text: &str) -> String {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        // Valid UTF-8 in, valid UTF-8 out: the walker writes only whole
        // decoded characters and ASCII.
        return String::from_utf8_lossy(&scrub_raw_bytes(text.as_bytes()).bytes).into_owned();
    }
    scrub_text_cow(text).into_owned()
}

/// Removes secrets from a JSON document in place: values of secret fields
/// (and of `{"name": "Api-Key", "value": ...}` pairs) become `***`, every
/// string is scrubbed as text.
pub fn scrub_json(value: &mut Value) {
    scrub_json_changed(value);
}

/// As [`scrub_json`]; true when anything was replaced.
fn scrub_json_changed(value: &mut Value) -> bool {
    match value {
        Value::String(s) => match scrub_text_cow(s) {
            Cow::Owned(t) if t != *s => {
                *s = t;
                true
            }
            _ => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| scrub_json_changed(v) | acc),
        Value::Object(map) => {
            let named_secret = ["name", "key", "header"].iter().any(|k| {
                map.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(is_secret_field)
            });
            let mut changed = false;
            for (k, v) in map.iter_mut() {
                let secret = is_secret_field(k)
                    || (named_secret
                        && matches!(k.to_ascii_lowercase().as_str(), "value" | "values"));
                if secret {
                    let empty = match v {
                        Value::Null => true,
                        Value::String(s) => s.is_empty() || s == MASK,
                        _ => false,
                    };
                    if !empty {
                        *v = Value::String(MASK.to_string());
                        changed = true;
                    }
                } else {
                    changed |= scrub_json_changed(v);
                }
            }
            changed
        }
        _ => false,
    }
}

/// Scrubs raw event bytes for a dead letter: [`scrub_raw_bytes`] without
/// saying whether part of them could not be tokenised.
pub fn scrub_raw(raw: &[u8]) -> Vec<u8> {
    scrub_raw_bytes(raw).bytes
}

fn is_secret_param(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    // `&amp;` of XML-escaped URLs splits as `amp;name`.
    let n = n.strip_prefix("amp;").unwrap_or(&n);
    let n = n.replace("%2d", "-").replace("%5f", "_");
    SECRET_QUERY_PARAMS.contains(&n.as_str())
}

fn scrub_params(query: &str) -> String {
    query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_secret_param(name) => {
                format!("{name}={MASK}")
            }
            _ => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Scrubs secrets from a URL's query string (`subscription-key`, `api-key`, `sig`...).
///
/// Works on any string (no URL parsing, no panics): the part after `?` and
/// after `#` is split on `&`; a string with neither `?` nor `/` but with `=`
/// is taken as a bare query string (some dialects log `RequestQuery` alone).
/// A password in `user:password@host` is masked too.
pub fn scrub_url(url: &str) -> String {
    let (main, fragment) = match url.split_once('#') {
        Some((m, f)) => (m, Some(f)),
        None => (url, None),
    };
    let mut out = match main.split_once('?') {
        Some((base, query)) => format!("{base}?{}", scrub_params(query)),
        None if !main.contains('/') && main.contains('=') => scrub_params(main),
        None => main.to_string(),
    };
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&scrub_params(f));
    }
    // Then the text rules (a password in `user:password@host`; a
    // connection string or token pasted anywhere in the URL).
    match scrub_text_cow(&out) {
        Cow::Owned(s) => s,
        Cow::Borrowed(_) => out,
    }
}

/// Salted SHA-256 of a key, hex, for attribution without storing the key.
pub fn hash_key(salt: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b":");
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRETS: &[&str] = &[
        "abc123secret",
        "sub-key-0001",
        "Bearer-token-xyz",
        "sigvalue%2Bxyz",
        "acctkey==",
        "sakey0123=",
        "funckey42",
        "chargebackkey",
        "cookieval",
        "pa55word",
    ];

    fn assert_clean(bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        for s in SECRETS {
            assert!(!text.contains(s), "secret {s} left in {text}");
        }
    }

    #[test]
    fn secret_headers() {
        for h in [
            "api-key",
            "Api-Key",
            " AUTHORIZATION ",
            "Proxy-Authorization",
            "Ocp-Apim-Subscription-Key",
            "x-functions-key",
            "X-Api-Key",
            "Cookie",
            "Set-Cookie",
        ] {
            assert!(is_secret_header(h), "{h}");
        }
        for h in [
            "content-type",
            "x-request-id",
            "api-version",
            "x-ms-region",
            "keyword",
        ] {
            assert!(!is_secret_header(h), "{h}");
        }
        for f in [
            "appSubscriptionKey",
            "subscriptionKey",
            "ConnectionString",
            "SharedAccessKey",
            "storage_account_key",
        ] {
            assert!(is_secret_field(f), "{f}");
        }
        for f in [
            "subscription_key_hash",
            "apimSubscriptionId",
            "partitionKey",
            "prompt_tokens",
            "SharedAccessKeyName",
        ] {
            assert!(!is_secret_field(f), "{f}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            scrub_url(
                "https://x.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&subscription-key=abc123secret"
            ),
            "https://x.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&subscription-key=***"
        );
        assert_eq!(
            scrub_url(
                "https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2026&sig=sigvalue%2Bxyz#frag"
            ),
            "https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2026&sig=***#frag"
        );
        assert_eq!(
            scrub_url(
                "https://f.azurewebsites.net/api/x?code=funckey42&API-KEY=k&key=v&access_token=t&name=n"
            ),
            "https://f.azurewebsites.net/api/x?code=***&API-KEY=***&key=***&access_token=***&name=n"
        );
        assert_eq!(
            scrub_url("https://h/p?a=1&amp;api-key=abc"),
            "https://h/p?a=1&amp;api-key=***"
        );
        assert_eq!(
            scrub_url("https://h/cb#access_token=abc&state=1"),
            "https://h/cb#access_token=***&state=1"
        );
        assert_eq!(
            scrub_url("https://user:pa55word@h/p"),
            "https://user:***@h/p"
        );
        // Bare query strings, as some dialects log them.
        assert_eq!(
            scrub_url("api-version=1&subscription-key=abc"),
            "api-version=1&subscription-key=***"
        );
        // Tolerant: nothing to do, odd shapes, no panic.
        for s in [
            "",
            "?",
            "&&",
            "?=",
            "?key",
            "?key=",
            "#",
            "/openai/x",
            "not a url",
            "%%%?api-key=é",
        ] {
            let _ = scrub_url(s);
        }
        assert_eq!(scrub_url("?key="), "?key=");
        assert_eq!(
            scrub_url("/openai/x?api-version=1"),
            "/openai/x?api-version=1"
        );
        assert_eq!(scrub_url("%%%?api-key=é"), "%%%?api-key=***");
    }

    #[test]
    fn hashes() {
        let h = hash_key("salt", "key");
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, hash_key("salt", "key"));
        assert_ne!(h, hash_key("other", "key"));
        assert_ne!(h, hash_key("salt", "key2"));
        assert_eq!(hash_key("", ""), hex::encode(Sha256::digest(b":")));
        assert_eq!(
            hash_key("salt", "key"),
            hex::encode(Sha256::digest(b"salt:key"))
        );
    }

    #[test]
    fn text_scrubbing() {
        let cases = [
            ("Api-Key: abc123secret", "Api-Key: ***"),
            ("Authorization: Bearer abc123secret", "Authorization: ***"),
            (
                "Ocp-Apim-Subscription-Key: sub-key-0001, sub-key-0002",
                "Ocp-Apim-Subscription-Key: ***",
            ),
            (
                r#"{"api-key":"abc123secret","x":1}"#,
                r#"{"api-key":"***","x":1}"#,
            ),
            (
                r#"{\"api-key\":\"abc123secret\"}"#,
                r#"{\"api-key\":\"***\"}"#,
            ),
            (r#"{'password': 'pa55word'}"#, r#"{'password': '***'}"#),
            (r#""Api-Key":["abc123secret"]"#, r#""Api-Key":"***""#),
            (r#""apiKey": 12345,"#, r#""apiKey": "***","#),
            (
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=sakey0123=;EntityPath=hub",
                "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=***;EntityPath=hub",
            ),
            (
                "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=acctkey==;EndpointSuffix=core.windows.net",
                "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;EndpointSuffix=core.windows.net",
            ),
            (
                "Server=s;User Id=u;Password=pa55word;",
                "Server=s;User Id=u;Password=***;",
            ),
            (
                "GET /x?api-version=1&subscription-key=abc123secret HTTP/1.1",
                "GET /x?api-version=1&subscription-key=*** HTTP/1.1",
            ),
            (
                "token Bearer abcdefghijklmnopqrstuvwxyz0123 end",
                "token Bearer *** end",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl ok",
                "jwt *** ok",
            ),
            (
                "status code=200, no key here",
                "status code=200, no key here",
            ),
            (
                "plain prose about the api key and authorization",
                "plain prose about the api key and authorization",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub_text(input), expected, "{input}");
        }
        for (input, expected) in [
            (
                r#"x {"name": "Api-Key", "value": "abc123secret"} y"#,
                r#"x {"name": "Api-Key", "value": "***"} y"#,
            ),
            (
                r#"{\"value\":\"abc123secret\",\"key\":\"Authorization\"}"#,
                r#"{\"value\":"***",\"key\":\"Authorization\"}"#,
            ),
            (
                r#"{"name":"accept","value":"*/*"}"#,
                r#"{"name":"accept","value":"*/*"}"#,
            ),
        ] {
            assert_eq!(
                scrub_text(&format!("garbage {input}")),
                format!("garbage {expected}")
            );
        }
        // Connection string with a SAS.
        let sas = "Endpoint=sb://n/;SharedAccessSignature=SharedAccessSignature sr=x&sig=sigvalue%2Bxyz&se=1;EntityPath=h";
        assert!(!scrub_text(sas).contains("sigvalue"));
    }

    #[test]
    fn json_scrubbing_nested() {
        let mut v = json!({
            "Type": "request",
            "Headers": ["Content-Type: application/json", "Api-Key: abc123secret", "Ocp-Apim-Subscription-Key: sub-key-0001"],
            "headers": {"content-type": "application/json", "Authorization": "Bearer-token-xyz", "Cookie": ["cookieval"]},
            "requestHeaders": [{"name": "x-functions-key", "value": "funckey42"}, {"name": "accept", "value": "*/*"}],
            "appSubscriptionKey": "chargebackkey",
            "RequestQuery": "api-version=2024-02-01&subscription-key=sub-key-0001",
            "OperationUrl": "https://x/y?sig=sigvalue%2Bxyz",
            "nested": {"deeper": [{"connectionString": "AccountKey=acctkey==;"}, "SharedAccessKey=sakey0123=;x"]},
            "body": "{\"messages\":[],\"api-key\":\"abc123secret\"}",
            "n": 3,
            "empty": null
        });
        scrub_json(&mut v);
        assert_clean(v.to_string().as_bytes());
        assert_eq!(v["Headers"][0], "Content-Type: application/json");
        assert_eq!(v["Headers"][1], "Api-Key: ***");
        assert_eq!(v["headers"]["content-type"], "application/json");
        assert_eq!(v["headers"]["Authorization"], "***");
        assert_eq!(v["requestHeaders"][1]["value"], "*/*");
        assert_eq!(v["appSubscriptionKey"], "***");
        assert_eq!(v["n"], 3);
        assert_eq!(
            v["RequestQuery"],
            "api-version=2024-02-01&subscription-key=***"
        );
    }

    #[test]
    fn raw_scrubbing() {
        // JSON: secrets removed, still JSON.
        let raw = br#"{"eventTime":"2024-05-24T14:45:56Z","appSubscriptionKey":"chargebackkey","request":"{\"api-key\":\"abc123secret\"}"}"#;
        let out = scrub_raw(raw);
        assert_clean(&out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["appSubscriptionKey"], "***");
        assert_eq!(v["eventTime"], "2024-05-24T14:45:56Z");

        // Clean JSON keeps its exact bytes (spacing, number text).
        let clean = b"{ \"a\" : 1.50e0, \"b\": [1,2] }";
        assert_eq!(scrub_raw(clean), clean.to_vec());
        // Already scrubbed: unchanged bytes too.
        let done = b"{ \"Headers\": [\"Api-Key: ***\"], \"api-key\" : \"***\" }";
        assert_eq!(scrub_raw(done), done.to_vec());

        // Truncated JSON (APIM's 200 KB cut) is scrubbed as text.
        let cut = br#"{"Headers":["Api-Key: abc123secret"],"appSubscriptionKey":"chargebackkey","RequestBody":"{\"mess"#;
        let out = scrub_raw(cut);
        assert_clean(&out);
        assert!(
            String::from_utf8_lossy(&out)
                .starts_with(r#"{"Headers":["Api-Key: ***"],"appSubscriptionKey":"***""#)
        );

        // A secret cut mid-value.
        assert_clean(&scrub_raw(br#"{"x":1,"api-key":"abc123secr"#));
        assert_clean(&scrub_raw(br#"{"x":1,"api-key":"abc123secret"#));

        // Non-UTF-8 bytes are kept; secrets around them are removed.
        let mut bin = b"\xff\xfe header Api-Key: abc123secret\n\x80 rest".to_vec();
        let out = scrub_raw(&bin);
        assert_clean(&out);
        assert_eq!(&out[..2], b"\xff\xfe");
        assert!(out.contains(&0x80));
        bin = b"\x00\x01\xff nothing here".to_vec();
        assert_eq!(scrub_raw(&bin), bin);

        // A BOM before JSON.
        let out = scrub_raw(b"\xEF\xBB\xBF{\"api-key\":\"abc123secret\"}");
        assert!(out.starts_with(b"\xEF\xBB\xBF{"));
        assert_clean(&out);
        assert!(scrub_raw(b"").is_empty());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(s in ".{0,200}", b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = scrub_url(&s);
            let _ = scrub_text(&s);
            let _ = mask_pii(&s);
            let _ = scrub_raw(s.as_bytes());
            let _ = scrub_raw(&b);
        }

        #[test]
        fn header_values_never_survive(
            name in proptest::sample::select(SECRET_HEADERS.to_vec()),
            value in "[A-Za-z0-9+/=_-]{12,40}",
            prefix in "[a-z ]{0,10}",
        ) {
            let v = serde_json::json!({"Headers": [format!("{name}: {value}")], "url": format!("https://h/p?{prefix}x=1&subscription-key={value}")});
            let raw = serde_json::to_vec(&v).unwrap();
            let out = String::from_utf8(scrub_raw(&raw)).unwrap();
            prop_assert!(!out.contains(&value), "{}", out);
            // The same text cut short (not JSON any more).
            let cut = &raw[..raw.len() - 2];
            let out = String::from_utf8_lossy(&scrub_raw(cut)).into_owned();
            prop_assert!(!out.contains(&value), "{}", out);
        }

        #[test]
        fn scrubbing_is_idempotent(s in "[ -~]{0,120}") {
            let once = scrub_text(&s);
            prop_assert_eq!(scrub_text(&once), once.clone());
        }
    }
}
