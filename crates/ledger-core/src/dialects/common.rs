//! Mapping shared by the dialects: routes (URL → deployment, api-version,
//! operation id), headers, bodies and envelope token counts.

use serde_json::{Map, Value, json};

use crate::model::{BodyPart, CallMeta, Usage};
use crate::redact;

use super::fields::scalar_text;

/// Salt for hashing raw subscription keys some dialects carry. A fixed
/// default until the salt becomes configuration.
pub const DEFAULT_KEY_SALT: &str = "aoai-ledger";

/// Operation ids as Azure OpenAI's OpenAPI spec (and so APIM) names them.
pub(crate) const CHAT: &str = "ChatCompletions_Create";
pub(crate) const COMPLETIONS: &str = "Completions_Create";
pub(crate) const EMBEDDINGS: &str = "embeddings_create";
const IMAGES: &str = "ImageGenerations_Create";
const TRANSCRIPTIONS: &str = "Transcriptions_Create";
const TRANSLATIONS: &str = "Translations_Create";
const KNOWN_OPERATIONS: &[&str] = &[
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGES,
    TRANSCRIPTIONS,
    TRANSLATIONS,
];

/// Picks the APIM operation id from what an event offers: an id as given
/// (canonical casing for known ones), else the request path, else a display
/// name (`Creates a completion for the chat message`), else the response
/// body's `object`, else the display name as written.
pub(crate) fn operation_id(
    given: Option<&str>,
    path: Option<&str>,
    body_object: Option<&str>,
) -> Option<String> {
    let given = given
        .map(str::trim)
        .filter(|s| !s.is_empty() && !is_log_operation_name(s));
    if let Some(g) = given.filter(|g| !g.contains(char::is_whitespace)) {
        return Some(canonical_operation_id(g));
    }
    path.and_then(operation_from_path)
        .or_else(|| given.and_then(operation_from_display_name))
        .or_else(|| body_object.and_then(operation_from_object))
        .map(str::to_string)
        .or_else(|| given.map(str::to_string))
}

/// Resource-log names such as `Microsoft.ApiManagement/GatewayLogs` are not
/// API operations.
fn is_log_operation_name(s: &str) -> bool {
    s.contains('/') || s.to_ascii_lowercase().starts_with("microsoft.")
}

fn canonical_operation_id(id: &str) -> String {
    if let Some(k) = KNOWN_OPERATIONS.iter().find(|k| k.eq_ignore_ascii_case(id)) {
        return (*k).to_string();
    }
    // chargeback's `apiOperation` values.
    match id.to_ascii_lowercase().as_str() {
        "chatcompletion" | "chatcompletions" => CHAT.to_string(),
        "textcompletion" | "completion" | "completions" => COMPLETIONS.to_string(),
        "embedding" | "embeddings" => EMBEDDINGS.to_string(),
        _ => id.to_string(),
    }
}

fn operation_from_display_name(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    if n.contains("chat") {
        Some(CHAT)
    } else if n.contains("embedding") || n.contains("vector representation") {
        Some(EMBEDDINGS)
    } else if n.contains("translat") {
        Some(TRANSLATIONS)
    } else if n.contains("transcri") {
        Some(TRANSCRIPTIONS)
    } else if n.contains("image") {
        Some(IMAGES)
    } else if n.contains("completion") {
        Some(COMPLETIONS)
    } else {
        None
    }
}

/// `…/chat/completions` → `ChatCompletions_Create` and so on.
pub(crate) fn operation_from_path(url_or_path: &str) -> Option<&'static str> {
    let p = path_of(url_or_path)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    if p.ends_with("/chat/completions") {
        Some(CHAT)
    } else if p.ends_with("/completions") {
        Some(COMPLETIONS)
    } else if p.ends_with("/embeddings") {
        Some(EMBEDDINGS)
    } else if p.ends_with("/images/generations") {
        Some(IMAGES)
    } else if p.ends_with("/audio/transcriptions") {
        Some(TRANSCRIPTIONS)
    } else if p.ends_with("/audio/translations") {
        Some(TRANSLATIONS)
    } else {
        None
    }
}

pub(crate) fn operation_from_object(object: &str) -> Option<&'static str> {
    match object {
        "chat.completion" | "chat.completion.chunk" => Some(CHAT),
        "text_completion" => Some(COMPLETIONS),
        "list" => Some(EMBEDDINGS),
        _ => None,
    }
}

/// The path of a URL (or of a path with a query string).
pub(crate) fn path_of(url: &str) -> &str {
    let no_query = url.split(['?', '#']).next().unwrap_or("");
    match no_query.find("://") {
        Some(i) => {
            let rest = &no_query[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..])
        }
        None => no_query,
    }
}

/// `{deployment}` of `/openai/deployments/{deployment}/…`.
pub(crate) fn deployment_from_url(url: &str) -> Option<String> {
    let mut segs = path_of(url).split('/');
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
    fn operation_ids_from_every_hint() {
        assert_eq!(
            operation_id(Some("chatcompletions_create"), None, None).as_deref(),
            Some(CHAT)
        );
        assert_eq!(
            operation_id(Some("ChatCompletion"), None, None).as_deref(),
            Some(CHAT)
        );
        assert_eq!(
            operation_id(Some("TextCompletion"), None, None).as_deref(),
            Some(COMPLETIONS)
        );
        assert_eq!(
            operation_id(Some("get-a-generated-image-result"), None, None).as_deref(),
            Some("get-a-generated-image-result")
        );
        let url = "https://x.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";
        assert_eq!(
            operation_id(
                Some("Creates a completion for the chat message"),
                Some(url),
                None
            )
            .as_deref(),
            Some(CHAT)
        );
        assert_eq!(
            operation_id(None, Some("/openai/deployments/d/completions"), None).as_deref(),
            Some(COMPLETIONS)
        );
        assert_eq!(
            operation_id(None, Some("/openai/deployments/d/embeddings/"), None).as_deref(),
            Some(EMBEDDINGS)
        );
        assert_eq!(
            operation_id(
                Some("Get a vector representation of a given input"),
                None,
                None
            )
            .as_deref(),
            Some(EMBEDDINGS)
        );
        assert_eq!(
            operation_id(None, None, Some("text_completion")).as_deref(),
            Some(COMPLETIONS)
        );
        assert_eq!(
            operation_id(None, None, Some("list")).as_deref(),
            Some(EMBEDDINGS)
        );
        assert_eq!(
            operation_id(Some("Microsoft.ApiManagement/GatewayLogs"), None, None),
            None
        );
        assert_eq!(
            operation_id(Some("Creates a model response"), None, None).as_deref(),
            Some("Creates a model response")
        );
        assert_eq!(operation_id(None, None, None), None);
    }

    #[test]
    fn routes_from_urls_and_paths() {
        let url = "https://x.azure-api.net/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21&x=1";
        assert_eq!(deployment_from_url(url).as_deref(), Some("gpt-4o"));
        assert_eq!(api_version_from_url(url).as_deref(), Some("2024-10-21"));
        assert_eq!(path_of(url), "/openai/deployments/gpt-4o/chat/completions");
        assert_eq!(deployment_from_url("/openai/v1/chat/completions"), None);
        assert_eq!(
            api_version_from_url("/openai/deployments/a/embeddings"),
            None
        );
        assert_eq!(path_of("https://host"), "");
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
