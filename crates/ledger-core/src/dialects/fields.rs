//! Field access on JSON objects ignoring ASCII case: policies and exports
//! spell the same field `responseCode`, `ResponseCode` or `responsecode`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::coerce;
use crate::time::time_value;

/// A JSON object read with case-insensitive field names. `null` counts as
/// absent everywhere.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'a>(pub &'a Map<String, Value>);

impl<'a> Obj<'a> {
    /// The field `name`; an exact match wins over a case-insensitive one.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        let v = match self.0.get(name) {
            Some(v) => Some(v),
            None => self
                .0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
        };
        v.filter(|v| !v.is_null())
    }

    /// The first of `names` that is present.
    pub fn get_any(&self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| self.get(n))
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A nested object.
    pub fn obj(&self, name: &str) -> Option<Obj<'a>> {
        self.get(name).and_then(Value::as_object).map(Obj)
    }

    /// A scalar as text (strings trimmed; numbers and booleans written
    /// out), `None` when absent or empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(scalar_text)
    }

    pub fn text_any(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.text(n))
    }

    /// A string field as-is (not trimmed), `None` when absent or empty.
    pub fn raw_str(&self, name: &str) -> Option<&'a str> {
        self.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(coerce::int)
    }

    pub fn int_any(&self, names: &[&str]) -> Option<i64> {
        names.iter().find_map(|n| self.int(n))
    }

    pub fn time(&self, name: &str) -> Option<DateTime<Utc>> {
        self.get(name).and_then(time_value)
    }
}

/// A scalar JSON value as trimmed, non-empty text.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_ignores_ascii_case_and_prefers_exact() {
        let v = json!({"ResponseCode": 200, "responsecode": 500, "Url": "x", "n": null, "e": " "});
        let o = Obj(v.as_object().unwrap());
        assert_eq!(o.int("responseCode"), Some(200));
        assert_eq!(o.int("responsecode"), Some(500));
        assert_eq!(o.text("url").as_deref(), Some("x"));
        assert!(!o.has("n"));
        assert_eq!(o.text("e"), None);
        assert_eq!(o.text_any(&["missing", "URL"]).as_deref(), Some("x"));
    }

    #[test]
    fn scalars_and_booleans() {
        let v = json!({"a": "True", "b": 0, "c": false, "d": "maybe", "n": 12});
        let o = Obj(v.as_object().unwrap());
        assert_eq!(o.get("a").and_then(coerce::bool), Some(true));
        assert_eq!(o.get("b").and_then(coerce::bool), Some(false));
        assert_eq!(o.get("c").and_then(coerce::bool), Some(false));
        assert_eq!(o.get("d").and_then(coerce::bool), None);
        assert_eq!(o.text("n").as_deref(), Some("12"));
    }
}
