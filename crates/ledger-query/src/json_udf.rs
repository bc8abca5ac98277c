//! JSON scalar functions for SQL over text columns that hold JSON
//! (`prompt_text`, `response_body`, `tool_calls`), as DataFusion UDFs.
//!
//! - `json_get(json, key_or_index, ...)`: the value at a path; strings come
//!   back unquoted, other values as JSON text (as Kusto's `tostring` of a
//!   dynamic does); NULL when absent or not JSON.
//! - `json_array_join(json, field, sep)`: for an array of objects, the text of
//!   `field` of each element joined with `sep` (Kusto's
//!   `strcat_array(make_list(...))` over an `mv-expand`).
//! - `json_complete(body, model, prompt, completion, total)`: a JSON object
//!   response body with `model` and `usage` added where it has none, from
//!   the record's columns: the body of the equivalent non-streamed response
//!   (some dialects log the model or usage outside the body).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(JsonGet::new()),
        ScalarUDF::from(JsonArrayJoin::new()),
        ScalarUDF::from(JsonComplete {
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
        ScalarUDF::from(JsonMessages {
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
        ScalarUDF::from(JsonProductJoin {
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
    ]
}

enum Step {
    Key(String),
    Index(usize),
}

/// Arguments as arrays of one length (scalars broadcast).
fn to_arrays(args: &[ColumnarValue], rows: usize) -> Result<Vec<ArrayRef>> {
    args.iter().map(|a| a.to_array(rows)).collect()
}

fn text_at(a: &ArrayRef, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    match ScalarValue::try_from_array(a, i).ok()? {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s,
        ScalarValue::Int64(v) => v.map(|v| v.to_string()),
        ScalarValue::Int32(v) => v.map(|v| v.to_string()),
        ScalarValue::UInt64(v) => v.map(|v| v.to_string()),
        other => Some(other.to_string()),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses JSON text; a JSON string holding JSON is parsed again, as Kusto's
/// `parse_json` of a string column does for nested payloads.
fn parse(text: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v {
        Value::String(s) => serde_json::from_str(&s).ok().or(Some(Value::String(s))),
        v => Some(v),
    }
}

fn walk<'a>(mut v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for s in steps {
        v = match (s, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            (Step::Key(k), Value::Array(a)) => a.get(k.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonGet {
    signature: Signature,
}

impl JsonGet {
    fn new() -> Self {
        JsonGet {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        "json_get"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("json_get(json, key, ...) needs at least the JSON argument");
        }
        let arrays = to_arrays(&args.args, args.number_rows)?;
        let mut out = StringBuilder::new();
        for i in 0..args.number_rows {
            let Some(doc) = text_at(&arrays[0], i).and_then(|t| parse(&t)) else {
                out.append_null();
                continue;
            };
            let steps: Vec<Step> = arrays[1..]
                .iter()
                .map(|a| match ScalarValue::try_from_array(a, i) {
                    Ok(ScalarValue::Int64(Some(n))) => {
                        Step::Index(usize::try_from(n).unwrap_or(usize::MAX))
                    }
                    Ok(ScalarValue::Int32(Some(n))) => {
                        Step::Index(usize::try_from(n).unwrap_or(usize::MAX))
                    }
                    _ => Step::Key(text_at(a, i).unwrap_or_default()),
                })
                .collect();
            match walk(&doc, &steps) {
                Some(Value::Null) | None => out.append_null(),
                Some(v) => out.append_value(value_text(v)),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonArrayJoin {
    signature: Signature,
}

impl JsonArrayJoin {
    fn new() -> Self {
        JsonArrayJoin {
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8, DataType::Utf8],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for JsonArrayJoin {
    fn name(&self) -> &str {
        "json_array_join"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = to_arrays(&args.args, args.number_rows)?;
        let mut out = StringBuilder::new();
        for i in 0..args.number_rows {
            let (Some(text), Some(field), Some(sep)) = (
                text_at(&arrays[0], i),
                text_at(&arrays[1], i),
                text_at(&arrays[2], i),
            ) else {
                out.append_null();
                continue;
            };
            let joined = match parse(&text) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|it| match it {
                        Value::Object(m) => m.get(&field).filter(|v| !v.is_null()).map(value_text),
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(&sep),
                Some(Value::String(s)) => s,
                _ => text,
            };
            out.append_value(joined);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// The two members json_complete adds, read without building the body.
#[derive(serde::Deserialize)]
struct Probe {
    model: Option<serde::de::IgnoredAny>,
    usage: Option<std::collections::HashMap<String, serde::de::IgnoredAny>>,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonComplete {
    signature: Signature,
}

impl ScalarUDFImpl for JsonComplete {
    fn name(&self) -> &str {
        "json_complete"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 5 {
            return exec_err!("json_complete(body, model, prompt, completion, total)");
        }
        let arrays = to_arrays(&args.args, args.number_rows)?;
        let mut out = StringBuilder::new();
        for i in 0..args.number_rows {
            let Some(body) = text_at(&arrays[0], i) else {
                out.append_null();
                continue;
            };
            // Most bodies already have both: checked without building them.
            if let Ok(p) = serde_json::from_str::<Probe>(&body)
                && p.model.is_some()
                && p.usage.is_some()
            {
                out.append_value(body);
                continue;
            }
            let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&body) else {
                out.append_value(body);
                continue;
            };
            if m.get("model").is_none_or(Value::is_null)
                && let Some(model) = text_at(&arrays[1], i)
            {
                m.insert("model".into(), Value::String(model));
            }
            if !m.get("usage").is_some_and(|v| v.is_object()) {
                let mut usage = serde_json::Map::new();
                for (k, a) in [
                    ("prompt_tokens", &arrays[2]),
                    ("completion_tokens", &arrays[3]),
                    ("total_tokens", &arrays[4]),
                ] {
                    if let Some(n) = text_at(a, i).and_then(|t| t.parse::<i64>().ok()) {
                        usage.insert(k.into(), Value::from(n));
                    }
                }
                if !usage.is_empty() {
                    m.insert("usage".into(), Value::Object(usage));
                }
            }
            out.append_value(Value::Object(m).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonMessages {
    signature: Signature,
}

impl ScalarUDFImpl for JsonMessages {
    fn name(&self) -> &str {
        "json_messages"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 2 {
            return exec_err!("json_messages(body, text)");
        }
        let arrays = to_arrays(&args.args, args.number_rows)?;
        let mut out = StringBuilder::new();
        for i in 0..args.number_rows {
            let body = text_at(&arrays[0], i).and_then(|t| serde_json::from_str::<Value>(&t).ok());
            let choices = body
                .as_ref()
                .and_then(|b| b.get("choices"))
                .and_then(Value::as_array);
            let mut messages: Vec<Value> = Vec::new();
            for c in choices.into_iter().flatten() {
                if let Some(m) = c.get("message").filter(|m| m.is_object()) {
                    messages.push(m.clone());
                } else if let Some(t) = c.get("text") {
                    let mut m = serde_json::Map::new();
                    m.insert("role".into(), Value::String("assistant".into()));
                    m.insert("content".into(), t.clone());
                    messages.push(Value::Object(m));
                }
            }
            if messages.is_empty() {
                match text_at(&arrays[1], i) {
                    Some(t) => {
                        let mut m = serde_json::Map::new();
                        m.insert("role".into(), Value::String("assistant".into()));
                        m.insert("content".into(), Value::String(t));
                        messages.push(Value::Object(m));
                    }
                    None => {
                        out.append_null();
                        continue;
                    }
                }
            }
            out.append_value(Value::Array(messages).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// The `content` texts mv-expand gives a message list: an array's items
/// (`''` where an item has none), one `''` for null or a non-array.
fn contents(json: Option<String>) -> Vec<String> {
    let v = json.and_then(|t| serde_json::from_str::<Value>(&t).ok());
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|it| match it.get("content") {
                None | Some(Value::Null) => String::new(),
                Some(c) => value_text(c),
            })
            .collect(),
        _ => vec![String::new()],
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonProductJoin {
    signature: Signature,
}

impl ScalarUDFImpl for JsonProductJoin {
    fn name(&self) -> &str {
        "json_product_join"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 4 {
            return exec_err!("json_product_join(requests, responses, side, sep)");
        }
        let arrays = to_arrays(&args.args, args.number_rows)?;
        let mut out = StringBuilder::new();
        for i in 0..args.number_rows {
            let req = contents(text_at(&arrays[0], i));
            let resp = contents(text_at(&arrays[1], i));
            let input = text_at(&arrays[2], i).as_deref() == Some("input");
            let sep = text_at(&arrays[3], i).unwrap_or_default();
            let mut parts: Vec<&str> = Vec::with_capacity(req.len() * resp.len());
            for r in &req {
                for s in &resp {
                    parts.push(if input { r } else { s });
                }
            }
            out.append_value(parts.join(&sep));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}
