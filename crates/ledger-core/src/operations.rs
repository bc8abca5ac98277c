//! The one operation and route table: for each Azure OpenAI operation, its
//! route, its APIM operation id, the words of its display names and the
//! response `object`s it returns. Every dialect and `assemble` read
//! operations through it.

use crate::model::Operation;

/// One Azure OpenAI operation.
#[derive(Debug, Clone, Copy)]
pub struct OperationSpec {
    pub operation: Operation,
    /// The operation id of Azure OpenAI's OpenAPI spec, as APIM names it.
    pub operation_id: Option<&'static str>,
    /// The route's tail after `/openai/deployments/{deployment}` (or after
    /// `/openai` and `/openai/v1` for routes without a deployment).
    pub route: &'static str,
    /// Other spellings of the id (chargeback's `apiOperation` values).
    pub aliases: &'static [&'static str],
    /// Words that name it in a display name or an unknown id, lowercase,
    /// without spaces, `-` or `_` (matched the same way).
    pub words: &'static [&'static str],
    /// Response `object`s of this operation (streamed chunks included).
    pub objects: &'static [&'static str],
    /// The `object` of a body rebuilt from an envelope's `choices`.
    pub synth_object: Option<&'static str>,
}

/// The table. Order matters only for [`by_words`]: the first match wins, so
/// "chat" is tried before "completion".
pub const OPERATIONS: &[OperationSpec] = &[
    OperationSpec {
        operation: Operation::Chat,
        operation_id: Some("ChatCompletions_Create"),
        route: "/chat/completions",
        aliases: &["chatcompletion", "chatcompletions"],
        words: &["chat"],
        objects: &["chat.completion", "chat.completion.chunk"],
        synth_object: Some("chat.completion"),
    },
    OperationSpec {
        operation: Operation::Embedding,
        operation_id: Some("embeddings_create"),
        route: "/embeddings",
        aliases: &["embedding", "embeddings"],
        words: &["embedding", "vectorrepresentation"],
        objects: &["list"],
        synth_object: Some("list"),
    },
    OperationSpec {
        operation: Operation::Audio,
        operation_id: Some("Translations_Create"),
        route: "/audio/translations",
        aliases: &[],
        words: &["translat"],
        objects: &[],
        synth_object: None,
    },
    OperationSpec {
        operation: Operation::Audio,
        operation_id: Some("Transcriptions_Create"),
        route: "/audio/transcriptions",
        aliases: &[],
        words: &["transcri"],
        objects: &[],
        synth_object: None,
    },
    OperationSpec {
        operation: Operation::Audio,
        // Not in the spec versions the ledger knows: left to the event.
        operation_id: None,
        route: "/audio/speech",
        aliases: &[],
        words: &["speech", "audio"],
        objects: &[],
        synth_object: None,
    },
    OperationSpec {
        operation: Operation::Image,
        operation_id: Some("ImageGenerations_Create"),
        route: "/images/generations",
        aliases: &[],
        words: &["image", "dalle"],
        objects: &[],
        synth_object: None,
    },
    OperationSpec {
        operation: Operation::Completion,
        operation_id: Some("Completions_Create"),
        route: "/completions",
        aliases: &["textcompletion", "completion", "completions"],
        words: &["completion"],
        objects: &["text_completion"],
        synth_object: Some("text_completion"),
    },
    OperationSpec {
        operation: Operation::Responses,
        operation_id: Some("Responses_Create"),
        route: "/responses",
        aliases: &[],
        words: &["response"],
        objects: &["response"],
        synth_object: None,
    },
];

/// The spec whose id (or alias) is `id`, ignoring case.
pub fn by_id(id: &str) -> Option<&'static OperationSpec> {
    let id = id.trim();
    OPERATIONS.iter().find(|s| {
        s.operation_id.is_some_and(|k| k.eq_ignore_ascii_case(id))
            || s.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
    })
}

/// The spec a display name or an unknown id names by its words
/// (`Creates a completion for the chat message`, `get-a-generated-image`).
pub fn by_words(text: &str) -> Option<&'static OperationSpec> {
    let squashed: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    OPERATIONS
        .iter()
        .find(|s| s.words.iter().any(|w| squashed.contains(w)))
}

/// The spec of a request URL or path, by its route: the path must end with
/// the route, at a segment boundary (`…/deployments/d/images/generations`,
/// not `…/images/edits`). The longest matching route wins, so
/// `/chat/completions` is not taken for `/completions`.
pub fn by_path(url_or_path: &str) -> Option<&'static OperationSpec> {
    let path = path_of(url_or_path).trim_end_matches('/');
    OPERATIONS
        .iter()
        .filter(|s| ends_with_ignore_case(path, s.route))
        .max_by_key(|s| s.route.len())
}

/// The spec of a response body's `object`.
pub fn by_object(object: &str) -> Option<&'static OperationSpec> {
    OPERATIONS.iter().find(|s| s.objects.contains(&object))
}

/// The path of a URL (or of a path with a query string).
pub fn path_of(url: &str) -> &str {
    let no_query = url.split(['?', '#']).next().unwrap_or("");
    match no_query.find("://") {
        Some(i) => {
            let rest = &no_query[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..])
        }
        None => no_query,
    }
}

fn ends_with_ignore_case(path: &str, route: &str) -> bool {
    path.len() >= route.len()
        && path.is_char_boundary(path.len() - route.len())
        && path[path.len() - route.len()..].eq_ignore_ascii_case(route)
}

/// Picks the APIM operation id from what an event offers: an id as given
/// (canonical casing for known ones), else the request path, else a display
/// name (`Creates a completion for the chat message`), else the response
/// body's `object`, else the display name as written.
pub fn operation_id(
    given: Option<&str>,
    path: Option<&str>,
    body_object: Option<&str>,
) -> Option<String> {
    let given = given
        .map(str::trim)
        .filter(|s| !s.is_empty() && !is_log_operation_name(s));
    if let Some(g) = given.filter(|g| !g.contains(char::is_whitespace)) {
        return Some(
            by_id(g)
                .and_then(|s| s.operation_id)
                .unwrap_or(g)
                .to_string(),
        );
    }
    path.and_then(by_path)
        .or_else(|| given.and_then(by_words))
        .or_else(|| body_object.and_then(by_object))
        .and_then(|s| s.operation_id)
        .map(str::to_string)
        .or_else(|| given.map(str::to_string))
}

/// The `object` of a body rebuilt from an envelope's `choices`, for the
/// operation an event names (by id or display name), when it is chat-shaped.
pub fn synth_object(given: Option<&str>) -> Option<&'static str> {
    by_id(&operation_id(given, None, None)?)?.synth_object
}

/// Resource-log names such as `Microsoft.ApiManagement/GatewayLogs` are not
/// API operations.
fn is_log_operation_name(s: &str) -> bool {
    s.contains('/') || s.to_ascii_lowercase().starts_with("microsoft.")
}

/// The spec of a call, from APIM's operation id (by id, else by its
/// words), the URL path, or the response body's `object`, in that order.
pub fn lookup(
    operation_id: Option<&str>,
    url: Option<&str>,
    object: Option<&str>,
) -> Option<&'static OperationSpec> {
    operation_id
        .and_then(|id| by_id(id).or_else(|| by_words(id)))
        .or_else(|| url.and_then(by_path))
        .or_else(|| object.and_then(by_object))
}

/// The normalised operation of a call ([`lookup`]; `Other` when unknown).
pub fn operation_of(
    operation_id: Option<&str>,
    url: Option<&str>,
    object: Option<&str>,
) -> Operation {
    lookup(operation_id, url, object).map_or(Operation::Other, |s| s.operation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_from_id_path_or_object() {
        let op = |id, url, object| operation_of(id, url, object);
        assert_eq!(
            op(Some("ChatCompletions_Create"), None, None),
            Operation::Chat
        );
        assert_eq!(
            op(Some("Completions_Create"), None, None),
            Operation::Completion
        );
        assert_eq!(
            op(Some("embeddings_create"), None, None),
            Operation::Embedding
        );
        assert_eq!(
            op(Some("Responses_Create"), None, None),
            Operation::Responses
        );
        assert_eq!(
            op(Some("get-a-generated-image-result"), None, None),
            Operation::Image
        );
        let url = "https://x/openai/deployments/d/chat/completions?api-version=1";
        assert_eq!(op(None, Some(url), None), Operation::Chat);
        assert_eq!(
            op(None, Some("/openai/deployments/d/completions"), None),
            Operation::Completion
        );
        assert_eq!(
            op(None, Some("/openai/v1/responses/"), None),
            Operation::Responses
        );
        assert_eq!(
            op(None, Some("/openai/deployments/d/images/generations"), None),
            Operation::Image
        );
        assert_eq!(
            op(None, Some("/openai/deployments/d/AUDIO/speech"), None),
            Operation::Audio
        );
        // Not an Azure OpenAI route: no longer taken for an image call.
        assert_eq!(
            op(None, Some("/openai/images/edits"), None),
            Operation::Other
        );
        assert_eq!(
            op(None, Some("/openai/deployments/d/xchat/completions"), None),
            Operation::Completion
        );
        assert_eq!(op(None, None, Some("list")), Operation::Embedding);
        assert_eq!(op(None, None, Some("response")), Operation::Responses);
        assert_eq!(op(None, None, Some("thing")), Operation::Other);
    }

    #[test]
    fn table_entries_are_well_formed() {
        for s in OPERATIONS {
            assert!(s.route.starts_with('/'));
            assert!(s.words.iter().all(|w| !w.contains([' ', '-', '_'])));
            assert!(s.aliases.iter().all(|a| *a == a.to_ascii_lowercase()));
        }
    }

    #[test]
    fn operation_ids_from_every_hint() {
        assert_eq!(
            operation_id(Some("chatcompletions_create"), None, None).as_deref(),
            Some("ChatCompletions_Create")
        );
        assert_eq!(
            operation_id(Some("ChatCompletion"), None, None).as_deref(),
            Some("ChatCompletions_Create")
        );
        assert_eq!(
            operation_id(Some("TextCompletion"), None, None).as_deref(),
            Some("Completions_Create")
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
            Some("ChatCompletions_Create")
        );
        assert_eq!(
            operation_id(None, Some("/openai/deployments/d/completions"), None).as_deref(),
            Some("Completions_Create")
        );
        assert_eq!(
            operation_id(None, Some("/openai/deployments/d/embeddings/"), None).as_deref(),
            Some("embeddings_create")
        );
        assert_eq!(
            operation_id(
                Some("Get a vector representation of a given input"),
                None,
                None
            )
            .as_deref(),
            Some("embeddings_create")
        );
        assert_eq!(
            operation_id(None, None, Some("text_completion")).as_deref(),
            Some("Completions_Create")
        );
        assert_eq!(
            operation_id(None, None, Some("list")).as_deref(),
            Some("embeddings_create")
        );
        assert_eq!(
            operation_id(Some("Microsoft.ApiManagement/GatewayLogs"), None, None),
            None
        );
        assert_eq!(
            operation_id(Some("Creates a model response"), None, None).as_deref(),
            Some("Responses_Create")
        );
        assert_eq!(operation_id(None, None, None), None);
    }

    #[test]
    fn operation_ids_for_responses_and_speech() {
        let id = |g, p, o| operation_id(g, p, o);
        assert_eq!(
            id(Some("chatcompletions_create"), None, None).as_deref(),
            Some("ChatCompletions_Create")
        );
        assert_eq!(
            id(Some("ChatCompletion"), None, None).as_deref(),
            Some("ChatCompletions_Create")
        );
        assert_eq!(id(Some("my-op"), None, None).as_deref(), Some("my-op"));
        assert_eq!(
            id(Some("Microsoft.ApiManagement/GatewayLogs"), None, None),
            None
        );
        assert_eq!(
            id(
                Some("Creates a completion for the chat message"),
                None,
                None
            )
            .as_deref(),
            Some("ChatCompletions_Create")
        );
        assert_eq!(
            id(None, Some("/openai/v1/responses"), None).as_deref(),
            Some("Responses_Create")
        );
        assert_eq!(
            id(None, None, Some("response")).as_deref(),
            Some("Responses_Create")
        );
        assert_eq!(
            id(None, Some("/openai/deployments/d/audio/speech"), None),
            None
        );
        assert_eq!(
            id(Some("Does a thing"), None, None).as_deref(),
            Some("Does a thing")
        );
    }
}
