//! Mapping shared by the dialects: URLs (deployment, api-version), headers,
//! bodies and envelope token counts. Operations are [`crate::operations`]'.

use serde_json::{Map, Value, json};

use crate::model::{BodyPart, CallMeta, Usage};
use crate::redact;

use super::fields::scalar_text;

/// Salt for hashing raw subscription keys some dialects carry, when the
/// deployment sets none (`AOAI_LEDGER_KEY_SALT` sets one).
pub const DEFAULT_KEY_SALT: &str = "aoai-ledger";

/// `{deployment}` of `/openai/deployments/{deployment}/…`.
pub(crate) fn deployment_from_url(url: &str) -> Option<String> {
    let mut segs = crate::operations::path_of(url).split('/');
    segs.find(|s| s.eq_ignore_ascii_case("deployments"))?;
    segs.next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The `api-version` query parameter.
pub(crate) fn api_version_from_url(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.eq_ignore_ascii_case("api-version") && !v.is_empty()).then(|| v.to_string())
    })
}

/// Fills url (scrubbed), deployment, api-version and a path-derived
/// operation id from a request URL, keeping values already set.
pub(crate) fn apply_url(meta: &mut CallMeta, url: &str) {
    let url = url.trim();
    if url.is_empty() {
        return;
    }
    if meta.url.is_none() {
        meta.url = Some(redact::scrub_url(url));
    }
    if meta.deployment.is_none() {
        meta.deployment = deployment_from_url(url);
    }
    if meta.api_version.is_none() {
        meta.api_version = api_version_from_url(url);
    }
}

/// Request headers as `name: value`, secret ones removed. Accepts an object
/// (`{"name": "v"}` or `{"name": ["v1","v2"]}`), an array of `"Name: v1, v2"`
/// strings or of `{"name","value"}` objects, or a JSON text of either.
pub(crate) fn request_headers(v: &Value) -> Vec<String> {
    header_pairs(v)
        .into_iter()
        .filter(|(n, _)| !redact::is_secret_header(n))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

/// A header's value, looked up by name ignoring case.
pub(crate) fn header_value(v: &Value, name: &str) -> Option<String> {
    header_pairs(v)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn header_pairs(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (name, val) in m {
                out.push((name.trim().to_string(), header_value_text(val)));
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => {
                        // Without a `name:` there is nothing to check it
                        // against, so it could be a secret: skip it.
                        if let Some((n, val)) = s.split_once(':') {
                            out.push((n.trim().to_string(), val.trim().to_string()));
                        }
                    }
                    Value::Object(m) => {
                        let o = super::fields::Obj(m);
                        if let Some(n) = o.text_any(&["name", "key"]) {
                            let val = o.get("value").map(header_value_text).unwrap_or_default();
                            out.push((n, val));
                        }
                    }
                    _ => {}
                }
            }
        }
        Value::String(s) => {
            let t = s.trim();
            if (t.starts_with('{') || t.starts_with('['))
                && let Ok(parsed) = serde_json::from_str::<Value>(t)
            {
                return header_pairs(&parsed);
            }
            for line in t.lines() {
                if let Some((n, val)) = line.split_once(':') {
                    out.push((n.trim().to_string(), val.trim().to_string()));
                }
            }
        }
        _ => {}
    }
    out.retain(|(n, _)| !n.is_empty());
    out
}

fn header_value_text(v: &Value) -> String {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(scalar_text)
            .collect::<Vec<_>>()
            .join(", "),
        other => scalar_text(other).unwrap_or_default(),
    }
}

/// A body given as a JSON string (kept as written) or as JSON (serialised).
pub(crate) fn body_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => (!s.is_empty()).then(|| s.clone()),
        other => Some(other.to_string()),
    }
}

/// A whole body as one part.
pub(crate) fn whole_body(text: String, truncated: bool) -> BodyPart {
    BodyPart {
        truncated,
        ..BodyPart::whole(text)
    }
}

/// Envelope token counts; `None` when none is present.
pub(crate) fn usage_of(
    prompt: Option<i64>,
    completion: Option<i64>,
    total: Option<i64>,
) -> Option<Usage> {
    let u = Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: total,
        ..Usage::default()
    };
    (!u.is_empty()).then_some(u)
}

/// Rebuilds a non-streamed response body from the pieces an envelope keeps
/// (choices, model, token counts), so it reads like what the service sent.
pub(crate) fn synth_response(
    object: &str,
    model: Option<&str>,
    choices: Option<Value>,
    usage: Option<Usage>,
) -> String {
    let mut m = Map::new();
    m.insert("object".into(), json!(object));
    if let Some(model) = model {
        m.insert("model".into(), json!(model));
    }
    if let Some(c) = choices {
        m.insert("choices".into(), c);
    }
    if let Some(u) = usage {
        m.insert("usage".into(), crate::body::usage_json(&u));
    }
    Value::Object(m).to_string()
}

/// `chat.completion` or `text_completion`, judged from the choices
/// themselves (`message` vs `text`).
pub(crate) fn object_from_choices(choices: &Value) -> Option<&'static str> {
    let first = choices.as_array()?.first()?.as_object()?;
    if first.contains_key("message") || first.contains_key("delta") {
        Some("chat.completion")
    } else if first.contains_key("text") {
        Some("text_completion")
    } else {
        None
    }
}

/// The `object` a raw response body declares: read from JSON, or from the
/// first SSE chunk that names one.
pub(crate) fn response_object(body: &str) -> Option<String> {
    let t = body.trim_start();
    let object = |m: &Map<String, Value>| {
        m.get("object")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if t.starts_with('{')
        && let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t)
    {
        return object(&m);
    }
    for line in t.lines() {
        let Some(data) = line.trim().strip_prefix("data:") else {
            continue;
        };
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(data.trim())
            && let Some(o) = object(&m)
        {
            return Some(o);
        }
    }
    None
}

/// Whether a response body carries a completion or usage (JSON or SSE): for
/// dialects without a status code, such a response was answered with 200.
pub(crate) fn carries_completion(body: &str) -> bool {
    let t = body.trim_start();
    let sse = t.starts_with("data:") || t.starts_with("event:");
    (t.starts_with('{') || sse)
        && ["\"choices\"", "\"usage\"", "\"data\"", "\"output\""]
            .iter()
            .any(|k| t.contains(k))
}

/// APIM's last error as text: a string as written, or an object's
/// `source`, `reason` and `message` joined as `source: reason: message`.
pub(crate) fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => {
            let o = super::fields::Obj(m);
            join_error(o.text("source"), o.text("reason"), o.text("message"))
        }
        other => scalar_text(other),
    }
}

pub(crate) fn join_error(
    source: Option<String>,
    reason: Option<String>,
    message: Option<String>,
) -> Option<String> {
    let parts: Vec<String> = [source, reason, message].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(": "))
}

/// A JSON text parsed; a text that ends early is repaired (`true` = it was
/// cut). `None` when it is not JSON at all.
pub(crate) fn parse_json_lenient(text: &str) -> Option<(Value, bool)> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some((v, false));
    }
    let repaired = crate::json_repair::close_event(t)?.text;
    serde_json::from_str(&repaired).ok().map(|v| (v, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_urls_and_paths() {
        let url = "https://x.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&x=1";
        assert_eq!(deployment_from_url(url).as_deref(), Some("gpt-4o"));
        assert_eq!(api_version_from_url(url).as_deref(), Some("2024-10-21"));
        assert_eq!(
            crate::operations::path_of(url),
            "/openai/deployments/gpt-4o/chat/completions"
        );
        assert_eq!(deployment_from_url("/openai/v1/chat/completions"), None);
        assert_eq!(
            api_version_from_url("/openai/deployments/a/embeddings"),
            None
        );
        assert_eq!(crate::operations::path_of("https://host"), "");
    }

    #[test]
    fn headers_in_every_shape_lose_their_secrets() {
        let arr = json!([
            "Content-Type: application/json",
            "api-key: s3cret",
            "Accept: a, b",
            "garbage"
        ]);
        assert_eq!(
            request_headers(&arr),
            vec!["Content-Type: application/json", "Accept: a, b"]
        );
        let obj = json!({"Authorization": "Bearer t", "x-ms-client": ["a", "b"], "Ocp-Apim-Subscription-Key": "k"});
        assert_eq!(request_headers(&obj), vec!["x-ms-client: a, b"]);
        let pairs =
            json!([{"name": "api-key", "value": "k"}, {"name": "User-Agent", "value": "curl"}]);
        assert_eq!(request_headers(&pairs), vec!["User-Agent: curl"]);
        let text = json!("{\"authorization\":\"x\",\"accept\":\"*/*\"}");
        assert_eq!(request_headers(&text), vec!["accept: */*"]);
        assert_eq!(
            header_value(
                &json!(["openai-processing-ms: 812.5"]),
                "OpenAI-Processing-Ms"
            )
            .as_deref(),
            Some("812.5")
        );
    }

    #[test]
    fn synthesised_bodies_and_response_shapes() {
        let usage = usage_of(Some(3), Some(5), Some(8));
        let body = synth_response("chat.completion", Some("gpt-4o"), Some(json!([])), usage);
        assert_eq!(
            body,
            r#"{"object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#
        );
        assert_eq!(usage_of(None, None, None), None);
        assert_eq!(
            object_from_choices(&json!([{"text": "x"}])),
            Some("text_completion")
        );
        assert_eq!(
            object_from_choices(&json!([{"message": {}}])),
            Some("chat.completion")
        );
        assert_eq!(
            response_object(r#"{"object":"list","data":[]}"#).as_deref(),
            Some("list")
        );
        let sse = "data: {\"id\":\"\",\"object\":\"\",\"choices\":[]}\n\ndata: {\"object\":\"chat.completion.chunk\"}\n\ndata: [DONE]\n\n";
        assert_eq!(
            response_object(sse).as_deref(),
            Some("chat.completion.chunk")
        );
        assert!(carries_completion(sse));
        assert!(carries_completion(r#"{"choices":[]}"#));
        assert!(!carries_completion(r#"{"error":{"code":"429"}}"#));
        assert!(!carries_completion("streaming"));
    }
}
