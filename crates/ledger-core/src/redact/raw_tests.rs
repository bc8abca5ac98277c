//! Tests of the raw-bytes scrubber (kept apart: the scrubber is long enough).

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
    let (out, partly) = s(b"{\"a\":\"\xff\xfe\",\"\\u0061pi-key\":\"secretvalue\",\"b\":\"\x80\"}");
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

/// Issue 7, item 5 (the scrubber): for any JSON — duplicate keys, deep
/// nesting, JSON inside strings — and for any bytes spliced into it, with
/// secrets planted anywhere, no planted secret survives.
mod props {
    use super::super::*;
    use proptest::prelude::*;

    /// Secret names as they appear in the wild, in several casings.
    const SECRET_NAMES: &[&str] = &[
        "api-key",
        "Api-Key",
        "API-KEY",
        "authorization",
        "Authorization",
        "ocp-apim-subscription-key",
        "Ocp-Apim-Subscription-Key",
        "x-api-key",
        "X-API-Key",
        "appSubscriptionKey",
        "AppSubscriptionKey",
        "password",
        "connectionString",
        "AccountKey",
        "sharedAccessKey",
    ];
    /// Plain keys, few so that duplicates are common.
    const KEYS: &[&str] = &["records", "properties", "a", "value", "name", "body"];

    fn secret() -> impl Strategy<Value = String> {
        "[a-z0-9]{6,20}".prop_map(|s| format!("Zq9{s}"))
    }

    fn quote(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    /// A JSON text (as a string, so keys may repeat) and its planted secrets.
    fn json() -> impl Strategy<Value = (String, Vec<String>)> {
        let leaf = prop_oneof![
            Just(("1".to_string(), vec![])),
            Just(("null".to_string(), vec![])),
            "[a-z ]{0,8}".prop_map(|s| (quote(&s), vec![])),
            (proptest::sample::select(SECRET_NAMES), secret())
                .prop_map(|(n, v)| (format!("{{{}:{}}}", quote(n), quote(&v)), vec![v])),
            // Named only after it: marked `Zq8`, see the cut check.
            (proptest::sample::select(SECRET_NAMES), secret()).prop_map(|(n, v)| {
                let v = v.replacen("Zq9", "Zq8", 1);
                (
                    format!(r#"{{"value":{},"name":{}}}"#, quote(&v), quote(n)),
                    vec![v],
                )
            }),
            (proptest::sample::select(SECRET_NAMES), secret())
                .prop_map(|(n, v)| (quote(&format!("{n}: {v}")), vec![v])),
            secret().prop_map(|v| (quote(&format!("Bearer {v}{v}")), vec![format!("{v}{v}")])),
            secret().prop_map(|v| (
                quote(&format!("Endpoint=sb://n/;SharedAccessKey={v};x=1")),
                vec![v]
            )),
            secret().prop_map(|v| (quote(&format!("https://h/p?sv=1&sig={v}")), vec![v])),
        ];
        leaf.prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(|items| {
                    let secrets = items.iter().flat_map(|i| i.1.clone()).collect();
                    let body: Vec<String> = items.into_iter().map(|i| i.0).collect();
                    (format!("[{}]", body.join(",")), secrets)
                }),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            proptest::sample::select(KEYS),
                            proptest::sample::select(SECRET_NAMES)
                        ],
                        inner.clone()
                    ),
                    0..6
                )
                .prop_map(|members| {
                    let secrets = members.iter().flat_map(|m| m.1.1.clone()).collect();
                    let body: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{}:{}", quote(k), v.0))
                        .collect();
                    (format!("{{{}}}", body.join(",")), secrets)
                }),
                // JSON written inside a string.
                inner.prop_map(|(text, secrets)| (quote(&text), secrets)),
            ]
        })
    }

    fn assert_clean(out: &[u8], secrets: &[String]) -> Result<(), TestCaseError> {
        let text = String::from_utf8_lossy(out);
        for s in secrets {
            prop_assert!(!text.contains(s.as_str()), "{} left in {}", s, text);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn no_planted_secret_survives_in_json((text, secrets) in json(), depth in 0usize..300) {
            // Deep nesting around it.
            let raw = format!("{}{}{}", "[".repeat(depth), text, "]".repeat(depth));
            let r = scrub_raw_bytes(raw.as_bytes());
            assert_clean(&r.bytes, &secrets)?;
            prop_assert!(!r.partly_masked, "{}", raw);
        }

        #[test]
        fn no_planted_secret_survives_in_any_bytes(
            (text, secrets) in json(),
            junk in proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..4)), 0..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut raw = text.into_bytes();
            // Junk goes before structure (`,{}[]`), so it breaks the JSON
            // but no planted name or value.
            // Junk can move a value-first pair's name out of its object, or
            // stand between them: then that value (`Zq8`) is no longer
            // named secret (the JSON property covers it whole).
            let restructured = !junk.is_empty();
            for (at, bytes) in junk {
                let points: Vec<usize> = raw
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| matches!(c, b',' | b'{' | b'}' | b'[' | b']'))
                    .map(|(i, _)| i)
                    .collect();
                if points.is_empty() {
                    continue;
                }
                let at = points[at.index(points.len())];
                raw.splice(at..at, bytes);
            }
            let whole = scrub_raw_bytes(&raw);
            let present: Vec<String> = secrets
                .iter()
                .filter(|s| String::from_utf8_lossy(&raw).contains(s.as_str()))
                .filter(|s| !(restructured && s.starts_with("Zq8")))
                .cloned()
                .collect();
            assert_clean(&whole.bytes, &present)?;
            // And cut anywhere: a secret cut short must not survive either.
            let cut = cut.index(raw.len() + 1);
            let r = scrub_raw_bytes(&raw[..cut]);
            let text = String::from_utf8_lossy(&r.bytes);
            // A value named only after it (`Zq8`) is not recognisable
            // when the cut removed its name.
            for s in present.iter().filter(|s| s.starts_with("Zq9")) {
                // Its longest prefix of 16+ characters must be gone (a
                // bearer token cut shorter is not recognisable as one).
                for n in (16..=s.len()).rev() {
                    if String::from_utf8_lossy(&raw[..cut]).ends_with(&s[..n]) {
                        prop_assert!(!text.contains(&s[..n]), "{} left in {}", &s[..n], text);
                        break;
                    }
                }
                if String::from_utf8_lossy(&raw[..cut]).contains(s.as_str()) {
                    prop_assert!(!text.contains(s.as_str()), "{} left in {}", s, text);
                }
            }
        }
    }
}

#[test]
fn secrets_in_a_cut_key_and_glued_to_a_word_are_masked() {
    // Found by fuzzing: a text that ends inside a key kept the key as it
    // was, and a connection-string name glued to a word was not seen.
    let (out, _) = s(br#"{"a":1,"error[[AccountKey=k3y;EndpointSuffix=x"#);
    assert!(!out.contains("k3y"), "{out}");
    let (out, _) = s(br#"{"streaAccountKey=k3y;x":true}"#);
    assert!(!out.contains("k3y"), "{out}");
}
