//! Scalar functions with Kusto's semantics, as DataFusion UDFs.
//!
//! A Kusto `dynamic` value is carried as `LargeUtf8` holding its compact
//! JSON text (plain strings are `Utf8`), so the planner can tell the two
//! apart by type and every function here can read either.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Decimal128Builder, Float64Builder, Int64Array,
    Int64Builder, LargeStringBuilder, ListArray, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::Expr;
use serde_json::Value;

use crate::value::{format_datetime, format_real, format_timespan, parse_datetime, parse_timespan};

/// The type of a Kusto `dynamic`.
pub const DYNAMIC: DataType = DataType::LargeUtf8;
/// Kusto `decimal`: Arrow's widest 128-bit decimal with 18 places.
pub const DECIMAL: DataType = DataType::Decimal128(38, 18);
pub fn datetime_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}
pub const TIMESPAN: DataType = DataType::Duration(TimeUnit::Nanosecond);

type Body = fn(&[ArrayRef], usize) -> Result<ArrayRef>;

#[derive(Debug)]
struct Kfn {
    name: &'static str,
    ret: DataType,
    body: Body,
    signature: Signature,
}

// One function per name: the name is its identity.
impl PartialEq for Kfn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Kfn {}
impl std::hash::Hash for Kfn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Kfn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.ret.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        Ok(ColumnarValue::Array((self.body)(&arrays, n)?))
    }
}

macro_rules! kfns {
    ($($id:ident => $name:literal, $ret:expr, $body:expr;)*) => {
        $(
            pub static $id: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
                Arc::new(ScalarUDF::from(Kfn {
                    name: $name,
                    ret: $ret,
                    body: $body,
                    signature: Signature::variadic_any(Volatility::Immutable),
                }))
            });
        )*
    };
}

kfns! {
    PARSE_JSON => "kql_parse_json", DYNAMIC, parse_json;
    GET => "kql_get", DYNAMIC, get;
    TOSTRING => "kql_tostring", DataType::Utf8, tostring;
    TODYNAMIC => "kql_todynamic", DYNAMIC, todynamic;
    TOLONG => "kql_tolong", DataType::Int64, tolong;
    TOREAL => "kql_toreal", DataType::Float64, toreal;
    TODECIMAL => "kql_todecimal", DECIMAL, todecimal;
    TOBOOL => "kql_tobool", DataType::Boolean, tobool;
    TODATETIME => "kql_todatetime", datetime_type(), todatetime;
    TOTIMESPAN => "kql_totimespan", TIMESPAN, totimespan;
    STROP => "kql_strop", DataType::Boolean, strop;
    INDEXOF => "kql_indexof", DataType::Int64, indexof;
    SUBSTRING => "kql_substring", DataType::Utf8, substring;
    STRCAT_ARRAY => "kql_strcat_array", DataType::Utf8, strcat_array;
    ARRAY_LENGTH => "kql_array_length", DataType::Int64, array_length;
    PACK_ARRAY => "kql_pack_array", DYNAMIC, pack_array;
    BAG_PACK => "kql_bag_pack", DYNAMIC, bag_pack;
    BAG_KEYS => "kql_bag_keys", DYNAMIC, bag_keys;
    SPLIT => "kql_split", DYNAMIC, split;
    EXTRACT => "kql_extract", DataType::Utf8, extract;
    EXPAND => "kql_expand", DataType::List(Arc::new(Field::new_list_field(DYNAMIC, true))), expand;
    EXPAND_INDEX => "kql_expand_index", DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))), expand_index;
    LIST_TO_DYNAMIC => "kql_list_to_dynamic", DYNAMIC, list_to_dynamic;
    PERCENTILE => "kql_percentile", DataType::Float64, percentile;
    BIN_TIME => "kql_bin_time", datetime_type(), bin_time;
    START_OF => "kql_start_of", datetime_type(), start_of;
    END_OF => "kql_end_of", datetime_type(), end_of;
    DATETIME_ADD => "kql_datetime_add", datetime_type(), datetime_add;
    MAKE_DATETIME => "kql_make_datetime", datetime_type(), make_datetime;
    DATETIME_DIFF => "kql_datetime_diff", DataType::Int64, datetime_diff;
    FORMAT_DATETIME => "kql_format_datetime", DataType::Utf8, format_datetime_fn;
    DAYOFWEEK => "kql_dayofweek", TIMESPAN, dayofweek;
    DATEPART => "kql_datepart", DataType::Int64, datepart;
    DISPLAY => "kql_display", DataType::Utf8, display;
}

/// `f(args)` as a logical expression.
pub fn call(f: &Arc<ScalarUDF>, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::clone(f),
        args,
    ))
}

// ---- reading arguments ----

fn texts(a: &ArrayRef) -> Result<StringArray> {
    let c = cast(a, &DataType::Utf8)?;
    Ok(c.as_string::<i32>().clone())
}

fn ints(a: &ArrayRef) -> Result<Int64Array> {
    let c = cast(a, &DataType::Int64)?;
    Ok(c.as_primitive::<Int64Type>().clone())
}

fn get_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn get_int(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// Nanoseconds since the epoch of a timestamp argument of any unit.
fn times(a: &ArrayRef) -> Result<Int64Array> {
    let t = cast(a, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
    ints(&t)
}

/// The JSON value of argument `a` at row `i`: dynamic text is parsed, other
/// types become their JSON equivalents.
fn json_at(a: &ArrayRef, i: usize) -> Option<Value> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::LargeUtf8 => serde_json::from_str(a.as_string::<i64>().value(i)).ok(),
        DataType::Utf8 => Some(Value::String(a.as_string::<i32>().value(i).to_string())),
        DataType::Utf8View => Some(Value::String(a.as_string_view().value(i).to_string())),
        DataType::Boolean => Some(Value::Bool(a.as_boolean().value(i))),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let v = ScalarValue::try_from_array(a, i).ok()?;
            let v = v.cast_to(&DataType::Int64).ok()?;
            match v {
                ScalarValue::Int64(Some(n)) => Some(Value::from(n)),
                _ => None,
            }
        }
        DataType::Float32 | DataType::Float64 => {
            let v = ScalarValue::try_from_array(a, i)
                .ok()?
                .cast_to(&DataType::Float64)
                .ok()?;
            match v {
                ScalarValue::Float64(Some(f)) => serde_json::Number::from_f64(f).map(Value::Number),
                _ => None,
            }
        }
        DataType::Decimal128(..) => {
            let s = ScalarValue::try_from_array(a, i).ok()?.to_string();
            serde_json::from_str(&s).ok()
        }
        DataType::Timestamp(..) => {
            let t = times(&a.slice(i, 1)).ok()?;
            Some(Value::String(format_datetime(t.value(0))))
        }
        DataType::Duration(..) => {
            let d = ints(&cast(&a.slice(i, 1), &TIMESPAN).ok()?).ok()?;
            Some(Value::String(format_timespan(d.value(0))))
        }
        _ => Some(Value::String(
            ScalarValue::try_from_array(a, i).ok()?.to_string(),
        )),
    }
}

/// A JSON value as Kusto's `tostring` writes it: strings bare, others
/// compact JSON.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Kusto text of argument `a` at row `i`, `None` for null.
fn text_at(a: &ArrayRef, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::LargeUtf8 => {
            let t = a.as_string::<i64>().value(i);
            match serde_json::from_str::<Value>(t) {
                Ok(v) => json_text(&v),
                Err(_) => t.to_string(),
            }
        }
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::Utf8View => a.as_string_view().value(i).to_string(),
        DataType::Float64 => format_real(
            a.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(i),
        ),
        DataType::Timestamp(..) => format_datetime(times(&a.slice(i, 1)).ok()?.value(0)),
        DataType::Duration(..) => {
            format_timespan(ints(&cast(&a.slice(i, 1), &TIMESPAN).ok()?).ok()?.value(0))
        }
        DataType::Decimal128(..) => {
            let s = ScalarValue::try_from_array(a, i).ok()?.to_string();
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            }
        }
        _ => ScalarValue::try_from_array(a, i).ok()?.to_string(),
    })
}

fn dyn_builder(n: usize) -> LargeStringBuilder {
    LargeStringBuilder::with_capacity(n, n * 16)
}

// ---- dynamic values ----

fn parse_json(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if a.data_type() == &DYNAMIC {
        return Ok(Arc::clone(a));
    }
    let mut out = dyn_builder(n);
    let is_text = matches!(a.data_type(), DataType::Utf8 | DataType::Utf8View);
    for i in 0..n {
        if !is_text {
            match json_at(a, i) {
                Some(v) => out.append_value(v.to_string()),
                None => out.append_null(),
            }
            continue;
        }
        match text_at(a, i) {
            // parse_json("") is null in Kusto.
            None => out.append_null(),
            Some(t) if t.trim().is_empty() => out.append_null(),
            // Already compact JSON (response bodies usually are): kept as is.
            Some(t) if is_compact_json(&t) => out.append_value(t),
            Some(t) => match serde_json::from_str::<Value>(&t) {
                Ok(v) => out.append_value(v.to_string()),
                // Not JSON: the text itself, as a dynamic string.
                Err(_) => out.append_value(Value::String(t).to_string()),
            },
        }
    }
    Ok(Arc::new(out.finish()))
}

fn todynamic(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = dyn_builder(n);
    for i in 0..n {
        match json_at(&args[0], i) {
            Some(v) => out.append_value(v.to_string()),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn get(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = dyn_builder(n);
    // Dynamic values are compact JSON text: most lookups scan the text
    // instead of parsing the whole document (R1 reads five paths of every
    // response body).
    let docs = (args[0].data_type() == &DYNAMIC).then(|| args[0].as_string::<i64>());
    let keys = texts(&args[1])?;
    let numeric = args[1].data_type().is_integer();
    for i in 0..n {
        if let Some(docs) = docs
            && !docs.is_null(i)
            && !keys.is_null(i)
        {
            let step = if numeric {
                keys.value(i).parse::<i64>().ok().map(ScanKey::Index)
            } else {
                Some(ScanKey::Key(keys.value(i)))
            };
            if let Some(step) = step
                && let Some(found) = scan_lookup(docs.value(i), step)
            {
                match found {
                    Some(v) if v != "null" => out.append_value(v),
                    _ => out.append_null(),
                }
                continue;
            }
        }
        let v = json_at(&args[0], i);
        let k = json_at(&args[1], i);
        let found = match (v, k) {
            (Some(Value::Object(mut m)), Some(Value::String(k))) => m.remove(&k),
            (Some(Value::Array(mut a)), Some(Value::Number(k))) => k.as_i64().and_then(|k| {
                let len = a.len() as i64;
                let idx = if k < 0 { len + k } else { k };
                (0..len).contains(&idx).then(|| a.swap_remove(idx as usize))
            }),
            _ => None,
        };
        match found {
            Some(Value::Null) | None => out.append_null(),
            Some(v) => out.append_value(v.to_string()),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Whether `t` is valid JSON with no whitespace outside strings (what
/// serde_json writes), so it can stand for its parsed-and-written self.
fn is_compact_json(t: &str) -> bool {
    let b = t.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        match (in_str, b[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') | (false, b'"') => in_str = !in_str,
            (false, b' ' | b'\n' | b'\r' | b'\t') => return false,
            _ => {}
        }
        i += 1;
    }
    // A lone string stays text for parse_json's own rules; only containers.
    matches!(b.first(), Some(b'{' | b'['))
        && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok()
}

#[derive(Clone, Copy)]
enum ScanKey<'a> {
    Key(&'a str),
    Index(i64),
}

/// The end (exclusive) of the JSON value starting at byte `i` of `s`.
fn scan_value(s: &[u8], mut i: usize) -> Option<usize> {
    match *s.get(i)? {
        b'"' => {
            i += 1;
            while i < s.len() {
                match s[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    _ => i += 1,
                }
            }
            None
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            while i < s.len() {
                match s[i] {
                    b'"' => {
                        i = scan_value(s, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            while i < s.len() && !matches!(s[i], b',' | b'}' | b']') {
                i += 1;
            }
            Some(i)
        }
    }
}

/// Looks `key` up in compact JSON text: `Some(Some(value text))` when
/// found, `Some(None)` when surely absent, `None` when the text needs a
/// real parse (escaped keys, negative indexes, anything unexpected).
fn scan_lookup<'d>(doc: &'d str, key: ScanKey<'_>) -> Option<Option<&'d str>> {
    let s = doc.as_bytes();
    match (s.first()?, key) {
        (b'{', ScanKey::Key(k)) => {
            if s.get(1) == Some(&b'}') {
                return Some(None);
            }
            let mut i = 1;
            loop {
                if s.get(i) != Some(&b'"') {
                    return None;
                }
                let end = scan_value(s, i)?;
                let name = &doc[i + 1..end - 1];
                if name.contains('\\') {
                    return None;
                }
                if s.get(end) != Some(&b':') {
                    return None;
                }
                let vstart = end + 1;
                let vend = scan_value(s, vstart)?;
                if name == k {
                    return Some(Some(&doc[vstart..vend]));
                }
                match s.get(vend) {
                    Some(b',') => i = vend + 1,
                    Some(b'}') => return Some(None),
                    _ => return None,
                }
            }
        }
        (b'[', ScanKey::Index(want)) if want >= 0 => {
            if s.get(1) == Some(&b']') {
                return Some(None);
            }
            let mut i = 1;
            let mut k = 0;
            loop {
                let vend = scan_value(s, i)?;
                if k == want {
                    return Some(Some(&doc[i..vend]));
                }
                match s.get(vend) {
                    Some(b',') => {
                        i = vend + 1;
                        k += 1;
                    }
                    Some(b']') => return Some(None),
                    _ => return None,
                }
            }
        }
        // Negative indexes count from the end: parsed.
        (b'[', ScanKey::Index(_)) => None,
        (b'{', ScanKey::Index(_)) | (b'[', ScanKey::Key(_)) => None,
        // A scalar has no members.
        _ => Some(None),
    }
}

fn tostring(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(n, n * 8);
    for i in 0..n {
        out.append_value(text_at(&args[0], i).unwrap_or_default());
    }
    Ok(Arc::new(out.finish()))
}

fn display(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(n, n * 8);
    for i in 0..n {
        match text_at(&args[0], i) {
            Some(t) => out.append_value(t),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// A number from a dynamic or text value, as Kusto's `todouble`/`tolong` read it.
fn number_at(a: &ArrayRef, i: usize) -> Option<f64> {
    match json_at(a, i)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn tolong(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        let v = match json_at(&args[0], i) {
            Some(Value::Number(x)) => x.as_i64().or_else(|| x.as_f64().map(|f| f.trunc() as i64)),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().map(|f| f.trunc() as i64)),
            Some(Value::Bool(b)) => Some(b as i64),
            _ => None,
        };
        out.append_option(v);
    }
    Ok(Arc::new(out.finish()))
}

fn toreal(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = Float64Builder::with_capacity(n);
    for i in 0..n {
        out.append_option(number_at(&args[0], i));
    }
    Ok(Arc::new(out.finish()))
}

fn todecimal(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = Decimal128Builder::with_capacity(n);
    for i in 0..n {
        let text = match json_at(&args[0], i) {
            Some(Value::Number(x)) => Some(x.to_string()),
            Some(Value::String(s)) => Some(s.trim().to_string()),
            _ => None,
        };
        out.append_option(text.and_then(|t| decimal_from_text(&t)));
    }
    Ok(Arc::new(out.finish().with_precision_and_scale(38, 18)?))
}

/// Scaled by 10^18, exact for up to 18 fractional digits.
fn decimal_from_text(t: &str) -> Option<i128> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if t.contains(['e', 'E']) {
        let f: f64 = t.parse().ok()?;
        let v = (f * 1e18).round() as i128;
        return Some(if neg { -v } else { v });
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut digits = frac.chars();
    for _ in 0..18 {
        v = v.checked_mul(10)?;
        if let Some(d) = digits.next() {
            v += d.to_digit(10)? as i128;
        }
    }
    Some(if neg { -v } else { v })
}

fn tobool(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = BooleanBuilder::with_capacity(n);
    for i in 0..n {
        let v = match json_at(&args[0], i) {
            Some(Value::Bool(b)) => Some(b),
            Some(Value::Number(x)) => x.as_f64().map(|f| f != 0.0),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                other => other.parse::<i64>().ok().map(|v| v != 0),
            },
            _ => None,
        };
        out.append_option(v);
    }
    Ok(Arc::new(out.finish()))
}

fn todatetime(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if matches!(a.data_type(), DataType::Timestamp(..)) {
        return Ok(cast(a, &datetime_type())?);
    }
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        out.append_option(
            text_at(a, i)
                .and_then(|t| parse_datetime(&t))
                .and_then(|d| d.timestamp_nanos_opt()),
        );
    }
    let ints: ArrayRef = Arc::new(out.finish());
    Ok(cast(&ints, &datetime_type())?)
}

fn totimespan(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if matches!(a.data_type(), DataType::Duration(..)) {
        return Ok(cast(a, &TIMESPAN)?);
    }
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        out.append_option(text_at(a, i).and_then(|t| parse_timespan(&t)));
    }
    let ints: ArrayRef = Arc::new(out.finish());
    Ok(cast(&ints, &TIMESPAN)?)
}

// ---- strings ----

/// Whether `term` occurs in `text` as whole terms: a term is a run of
/// alphanumeric characters, and `has` matches at term boundaries.
fn has_term(text: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    let is_word = |c: char| c.is_alphanumeric();
    let mut start = 0;
    while let Some(off) = text[start..].find(term) {
        let at = start + off;
        let end = at + term.len();
        let before_ok = !term.starts_with(is_word)
            || text[..at].chars().next_back().is_none_or(|c| !is_word(c));
        let after_ok =
            !term.ends_with(is_word) || text[end..].chars().next().is_none_or(|c| !is_word(c));
        if before_ok && after_ok {
            return true;
        }
        start = at + term.chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn has_prefix(text: &str, term: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric();
    let mut start = 0;
    while let Some(off) = text[start..].find(term) {
        let at = start + off;
        if text[..at].chars().next_back().is_none_or(|c| !is_word(c)) {
            return true;
        }
        start = at + term.chars().next().map_or(1, char::len_utf8);
    }
    term.is_empty()
}

fn has_suffix(text: &str, term: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric();
    let mut start = 0;
    while let Some(off) = text[start..].find(term) {
        let end = start + off + term.len();
        if text[end..].chars().next().is_none_or(|c| !is_word(c)) {
            return true;
        }
        start = start + off + term.chars().next().map_or(1, char::len_utf8);
    }
    term.is_empty()
}

/// `kql_strop(op, text, term)`: op is `has`, `has_cs`, `contains`, ... .
fn strop(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let ops = texts(&args[0])?;
    let mut out = BooleanBuilder::with_capacity(n);
    let mut re_cache: Option<(String, regex::Regex)> = None;
    for i in 0..n {
        let op = get_str(&ops, i).unwrap_or("");
        let text = text_at(&args[1], i).unwrap_or_default();
        let term = text_at(&args[2], i).unwrap_or_default();
        let (base, cs) = match op.strip_suffix("_cs") {
            Some(b) => (b, true),
            None => (op, false),
        };
        let (t, p) = if cs || base == "matches" {
            (text, term)
        } else {
            (text.to_lowercase(), term.to_lowercase())
        };
        let v = match base {
            "has" => has_term(&t, &p),
            "hasprefix" => has_prefix(&t, &p),
            "hassuffix" => has_suffix(&t, &p),
            "contains" => t.contains(&p),
            "startswith" => t.starts_with(&p),
            "endswith" => t.ends_with(&p),
            "matches" => {
                if re_cache.as_ref().is_none_or(|(k, _)| *k != p) {
                    match regex::Regex::new(&p) {
                        Ok(r) => re_cache = Some((p.clone(), r)),
                        Err(e) => return exec_err!("invalid regex `{p}`: {e}"),
                    }
                }
                re_cache.as_ref().is_some_and(|(_, r)| r.is_match(&t))
            }
            _ => return exec_err!("unknown string operator {op}"),
        };
        out.append_value(v);
    }
    Ok(Arc::new(out.finish()))
}

/// `indexof(source, lookup[, start[, length[, occurrence]]])`, in characters.
fn indexof(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let start = args.get(2).map(ints).transpose()?;
    let length = args.get(3).map(ints).transpose()?;
    let occ = args.get(4).map(ints).transpose()?;
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        let (Some(s), Some(look)) = (text_at(&args[0], i), text_at(&args[1], i)) else {
            out.append_null();
            continue;
        };
        let chars: Vec<char> = s.chars().collect();
        let look: Vec<char> = look.chars().collect();
        let len = chars.len() as i64;
        let st = start.as_ref().map_or(Some(0), |a| get_int(a, i));
        let ln = length.as_ref().map_or(Some(-1), |a| get_int(a, i));
        let oc = occ.as_ref().map_or(Some(1), |a| get_int(a, i));
        let (Some(mut st), Some(ln), Some(oc)) = (st, ln, oc) else {
            out.append_null();
            continue;
        };
        if st < 0 {
            st = (len + st).max(0);
        }
        if st > len || ln < -1 || oc <= 0 {
            out.append_value(-1);
            continue;
        }
        let end = if ln == -1 { len } else { (st + ln).min(len) };
        let mut found = -1;
        let mut count = 0;
        let mut p = st;
        while p + look.len() as i64 <= end {
            let pu = p as usize;
            if chars[pu..pu + look.len()] == look[..] {
                count += 1;
                if count == oc {
                    found = p;
                    break;
                }
            }
            p += 1;
        }
        out.append_value(found);
    }
    Ok(Arc::new(out.finish()))
}

/// `substring(source, start[, length])`, in characters; a dynamic source is
/// its JSON text.
fn substring(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let start = ints(&args[1])?;
    let length = args.get(2).map(ints).transpose()?;
    let mut out = StringBuilder::with_capacity(n, n * 8);
    for i in 0..n {
        let Some(s) = json_or_text(&args[0], i) else {
            out.append_value("");
            continue;
        };
        let chars: Vec<char> = s.chars().collect();
        let len = chars.len() as i64;
        let Some(mut st) = get_int(&start, i) else {
            out.append_null();
            continue;
        };
        if st < 0 {
            st = (len + st).max(0);
        }
        let st = st.min(len);
        let end = match length.as_ref() {
            None => len,
            Some(l) => match get_int(l, i) {
                Some(l) if l >= 0 => (st + l).min(len),
                Some(_) => st,
                None => len,
            },
        };
        out.append_value(chars[st as usize..end as usize].iter().collect::<String>());
    }
    Ok(Arc::new(out.finish()))
}

/// Text of a value where a dynamic counts as its compact JSON (strings too).
fn json_or_text(a: &ArrayRef, i: usize) -> Option<String> {
    if a.data_type() == &DYNAMIC {
        if a.is_null(i) {
            return None;
        }
        let t = a.as_string::<i64>().value(i);
        return Some(match serde_json::from_str::<Value>(t) {
            Ok(Value::String(s)) => s,
            _ => t.to_string(),
        });
    }
    text_at(a, i)
}

fn strcat_array(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(n, n * 8);
    for i in 0..n {
        let sep = text_at(&args[1], i).unwrap_or_default();
        match json_at(&args[0], i) {
            Some(Value::Array(items)) => {
                let parts: Vec<String> = items.iter().map(json_text).collect();
                out.append_value(parts.join(&sep));
            }
            _ => out.append_value(""),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn array_length(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        match json_at(&args[0], i) {
            Some(Value::Array(a)) => out.append_value(a.len() as i64),
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn pack_array(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = dyn_builder(n);
    for i in 0..n {
        let items: Vec<Value> = args
            .iter()
            .map(|a| json_at(a, i).unwrap_or(Value::Null))
            .collect();
        out.append_value(Value::Array(items).to_string());
    }
    Ok(Arc::new(out.finish()))
}

fn bag_pack(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = dyn_builder(n);
    for i in 0..n {
        let mut m = serde_json::Map::new();
        for pair in args.chunks(2) {
            if let [k, v] = pair {
                let key = text_at(k, i).unwrap_or_default();
                m.insert(key, json_at(v, i).unwrap_or(Value::Null));
            }
        }
        out.append_value(Value::Object(m).to_string());
    }
    Ok(Arc::new(out.finish()))
}

fn bag_keys(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = dyn_builder(n);
    for i in 0..n {
        match json_at(&args[0], i) {
            Some(Value::Object(m)) => {
                let keys: Vec<Value> = m.keys().map(|k| Value::String(k.clone())).collect();
                out.append_value(Value::Array(keys).to_string());
            }
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

fn split(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let idx = args.get(2).map(ints).transpose()?;
    let mut out = dyn_builder(n);
    for i in 0..n {
        let s = text_at(&args[0], i).unwrap_or_default();
        let d = text_at(&args[1], i).unwrap_or_default();
        let parts: Vec<Value> = if d.is_empty() {
            vec![Value::String(s)]
        } else {
            s.split(d.as_str())
                .map(|p| Value::String(p.to_string()))
                .collect()
        };
        let v = match idx.as_ref().map(|a| get_int(a, i)) {
            None => Value::Array(parts),
            Some(Some(k)) if k >= 0 && (k as usize) < parts.len() => {
                Value::Array(vec![parts[k as usize].clone()])
            }
            Some(_) => Value::Array(Vec::new()),
        };
        out.append_value(v.to_string());
    }
    Ok(Arc::new(out.finish()))
}

/// `kql_extract(regex, group, text)`: the group's text, null when no match.
fn extract(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let groups = ints(&args[1])?;
    let mut out = StringBuilder::with_capacity(n, n * 8);
    let mut cache: Option<(String, regex::Regex)> = None;
    for i in 0..n {
        let (Some(re), Some(g), Some(t)) = (
            text_at(&args[0], i),
            get_int(&groups, i),
            text_at(&args[2], i),
        ) else {
            out.append_null();
            continue;
        };
        if cache.as_ref().is_none_or(|(k, _)| *k != re) {
            match regex::Regex::new(&re) {
                Ok(r) => cache = Some((re.clone(), r)),
                Err(e) => return exec_err!("invalid regex `{re}`: {e}"),
            }
        }
        let found = cache.as_ref().and_then(|(_, r)| {
            r.captures(&t)
                .and_then(|c| c.get(g.max(0) as usize).map(|m| m.as_str().to_string()))
        });
        out.append_option(found);
    }
    Ok(Arc::new(out.finish()))
}

/// The elements mv-expand makes of a dynamic: an array's items, an object's
/// properties as one-property bags, a scalar itself.
fn expand(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let as_array = args.get(1).is_some_and(|a| {
        a.data_type() == &DataType::Boolean && !a.is_empty() && a.as_boolean().value(0)
    });
    let mut lists: Vec<Option<Vec<Option<String>>>> = Vec::with_capacity(n);
    for i in 0..n {
        lists.push(match json_at(&args[0], i) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|v| (!v.is_null()).then(|| v.to_string()))
                    .collect(),
            ),
            Some(Value::Object(m)) => Some(
                m.into_iter()
                    .map(|(k, v)| {
                        if as_array {
                            return Some(Value::Array(vec![Value::String(k), v]).to_string());
                        }
                        let mut one = serde_json::Map::new();
                        one.insert(k, v);
                        Some(Value::Object(one).to_string())
                    })
                    .collect(),
            ),
            Some(v) => Some(vec![Some(v.to_string())]),
        });
    }
    let mut b = datafusion::arrow::array::ListBuilder::new(dyn_builder(n));
    for l in lists {
        match l {
            None => b.append_null(),
            Some(items) => {
                for it in items {
                    b.values().append_option(it);
                }
                b.append(true);
            }
        }
    }
    let list: ListArray = b.finish();
    Ok(Arc::new(list))
}

/// The positions of what `expand` makes of each value: 0, 1, ...
fn expand_index(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let items = expand(args, n)?;
    let list = items.as_list::<i32>();
    let mut b = datafusion::arrow::array::ListBuilder::new(Int64Builder::new());
    for i in 0..n {
        if list.is_null(i) {
            b.append_null();
            continue;
        }
        for k in 0..list.value(i).len() {
            b.values().append_value(k as i64);
        }
        b.append(true);
    }
    Ok(Arc::new(b.finish()))
}

fn list_to_dynamic(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let mut out = dyn_builder(n);
    let list = args[0].as_list::<i32>();
    for i in 0..n {
        if list.is_null(i) {
            out.append_value("[]");
            continue;
        }
        let items = list.value(i);
        let vals: Vec<Value> = (0..items.len())
            .filter_map(|j| json_at(&items, j))
            .collect();
        out.append_value(Value::Array(vals).to_string());
    }
    Ok(Arc::new(out.finish()))
}

/// Nearest-rank percentile of a list of numbers: exact, from the values.
fn percentile(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let list = args[0].as_list::<i32>();
    let ps = cast(&args[1], &DataType::Float64)?;
    let ps = ps.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let mut out = Float64Builder::with_capacity(n);
    for i in 0..n {
        if list.is_null(i) || ps.is_null(i) {
            out.append_null();
            continue;
        }
        let items = cast(&list.value(i), &DataType::Float64)?;
        let items = items.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let mut v: Vec<f64> = items.iter().flatten().collect();
        if v.is_empty() {
            out.append_null();
            continue;
        }
        v.sort_by(f64::total_cmp);
        let p = ps.value(i).clamp(0.0, 100.0);
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        out.append_value(v[rank.clamp(1, v.len()) - 1]);
    }
    Ok(Arc::new(out.finish()))
}

// ---- time ----

fn ts_out(v: Vec<Option<i64>>) -> Result<ArrayRef> {
    let a: ArrayRef = Arc::new(Int64Array::from(v));
    Ok(cast(
        &cast(&a, &DataType::Timestamp(TimeUnit::Nanosecond, None))?,
        &datetime_type(),
    )?)
}

fn at(nanos: i64) -> Option<DateTime<Utc>> {
    Some(DateTime::<Utc>::from_timestamp_nanos(nanos))
}

fn bin_time(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let s = ints(&cast(&args[1], &TIMESPAN)?)?;
    let v = (0..n)
        .map(|i| match (get_int(&t, i), get_int(&s, i)) {
            (Some(t), Some(s)) if s > 0 => Some(t.div_euclid(s) * s),
            _ => None,
        })
        .collect();
    ts_out(v)
}

fn start_micros(unit: &str, t: DateTime<Utc>, offset: i64) -> Option<i64> {
    let d = t.date_naive();
    let start = match unit {
        "day" => d + Duration::days(offset),
        "week" => {
            let back = d.weekday().num_days_from_sunday() as i64;
            d - Duration::days(back) + Duration::weeks(offset)
        }
        "month" => {
            let total = d.year() as i64 * 12 + d.month0() as i64 + offset;
            NaiveDate::from_ymd_opt(
                total.div_euclid(12) as i32,
                total.rem_euclid(12) as u32 + 1,
                1,
            )?
        }
        "year" => NaiveDate::from_ymd_opt(d.year() + offset as i32, 1, 1)?,
        _ => return None,
    };
    start.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()
}

/// `kql_start_of(unit, t[, offset])`.
fn start_of(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let units = texts(&args[0])?;
    let t = times(&args[1])?;
    let off = args.get(2).map(ints).transpose()?;
    let v = (0..n)
        .map(|i| {
            let o = off.as_ref().map_or(Some(0), |a| get_int(a, i))?;
            start_micros(get_str(&units, i)?, at(get_int(&t, i)?)?, o)
        })
        .collect();
    ts_out(v)
}

/// The last 100 ns tick of the unit holding `t`.
fn end_of(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let units = texts(&args[0])?;
    let t = times(&args[1])?;
    let off = args.get(2).map(ints).transpose()?;
    let v = (0..n)
        .map(|i| {
            let o = off.as_ref().map_or(Some(0), |a| get_int(a, i))?;
            Some(start_micros(get_str(&units, i)?, at(get_int(&t, i)?)?, o + 1)? - 100)
        })
        .collect();
    ts_out(v)
}

/// `make_datetime(year, month, day[, hour, minute, second])`, seconds real.
fn make_datetime(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let parts: Vec<Int64Array> = args.iter().take(5).map(ints).collect::<Result<_>>()?;
    let secs = args
        .get(5)
        .map(|a| cast(a, &DataType::Float64))
        .transpose()?;
    let v = (0..n)
        .map(|i| {
            let p = |k: usize| parts.get(k).map_or(Some(0), |a| get_int(a, i));
            let d = NaiveDate::from_ymd_opt(p(0)? as i32, p(1)? as u32, p(2)? as u32)?;
            let s = match &secs {
                Some(a) if a.is_null(i) => return None,
                Some(a) => a
                    .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                    .value(i),
                None => 0.0,
            };
            let base = d
                .and_hms_opt(p(3)? as u32, p(4)? as u32, 0)?
                .and_utc()
                .timestamp_nanos_opt()?;
            // Kusto keeps seconds to the 100 ns tick.
            Some(base + (s * 1e7).round() as i64 * 100)
        })
        .collect();
    ts_out(v)
}

fn add_months(t: DateTime<Utc>, months: i64) -> Option<DateTime<Utc>> {
    let total = t.year() as i64 * 12 + t.month0() as i64 + months;
    let (y, m) = (total.div_euclid(12) as i32, total.rem_euclid(12) as u32 + 1);
    let last = NaiveDate::from_ymd_opt(y, m, 1)?
        .checked_add_months(chrono::Months::new(1))?
        .pred_opt()?
        .day();
    let d = NaiveDate::from_ymd_opt(y, m, t.day().min(last))?;
    Some(d.and_time(t.time()).and_utc())
}

fn part_micros(part: &str) -> Option<i64> {
    // Nanoseconds per part (the name is kept from microsecond days).
    Some(match part {
        "week" | "weeks" => 7 * 86_400_000_000_000,
        "day" | "days" => 86_400_000_000_000,
        "hour" | "hours" => 3_600_000_000_000,
        "minute" | "minutes" => 60_000_000_000,
        "second" | "seconds" => 1_000_000_000,
        "millisecond" | "milliseconds" => 1_000_000,
        "microsecond" | "microseconds" => 1_000,
        "nanosecond" | "nanoseconds" => 1,
        _ => return None,
    })
}

fn datetime_add(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let parts = texts(&args[0])?;
    let amounts = ints(&args[1])?;
    let t = times(&args[2])?;
    let v = (0..n)
        .map(|i| {
            let part = get_str(&parts, i)?.to_ascii_lowercase();
            let k = get_int(&amounts, i)?;
            let t0 = get_int(&t, i)?;
            match part.as_str() {
                "year" => add_months(at(t0)?, 12 * k)?.timestamp_nanos_opt(),
                "quarter" => add_months(at(t0)?, 3 * k)?.timestamp_nanos_opt(),
                "month" => add_months(at(t0)?, k)?.timestamp_nanos_opt(),
                p => Some(t0 + k * part_micros(p)?),
            }
        })
        .collect();
    ts_out(v)
}

/// `datetime_diff(part, a, b)`: whole `part` boundaries between b and a.
fn datetime_diff(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let parts = texts(&args[0])?;
    let a = times(&args[1])?;
    let b = times(&args[2])?;
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        let v = (|| {
            let part = get_str(&parts, i)?.to_ascii_lowercase();
            let (x, y) = (get_int(&a, i)?, get_int(&b, i)?);
            let (dx, dy) = (at(x)?, at(y)?);
            let months = |d: DateTime<Utc>| d.year() as i64 * 12 + d.month0() as i64;
            Some(match part.as_str() {
                "year" => (dx.year() - dy.year()) as i64,
                "quarter" => (months(dx) / 3) - (months(dy) / 3),
                "month" => months(dx) - months(dy),
                "week" => {
                    let sx = start_micros("week", dx, 0)?;
                    let sy = start_micros("week", dy, 0)?;
                    (sx - sy) / (7 * 86_400_000_000_000)
                }
                p => {
                    let u = part_micros(p)?;
                    x.div_euclid(u) - y.div_euclid(u)
                }
            })
        })();
        out.append_option(v);
    }
    Ok(Arc::new(out.finish()))
}

fn format_datetime_fn(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let f = texts(&args[1])?;
    let mut out = StringBuilder::with_capacity(n, n * 8);
    for i in 0..n {
        let (Some(t), Some(f)) = (get_int(&t, i).and_then(at), get_str(&f, i)) else {
            out.append_null();
            continue;
        };
        out.append_value(kusto_format(t, f));
    }
    Ok(Arc::new(out.finish()))
}

/// Kusto's .NET-style datetime format (`yyyy-MM-dd HH:mm:ss.fff`, ...).
fn kusto_format(t: DateTime<Utc>, f: &str) -> String {
    let chars: Vec<char> = f.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let frac = t.nanosecond() as u64;
        let piece = match c {
            'y' => match run {
                1 => (t.year() % 100).to_string(),
                2 => format!("{:02}", t.year() % 100),
                _ => format!("{:0width$}", t.year(), width = run),
            },
            'M' => match run {
                1 => t.month().to_string(),
                _ => format!("{:02}", t.month()),
            },
            'd' => match run {
                1 => t.day().to_string(),
                _ => format!("{:02}", t.day()),
            },
            'H' => match run {
                1 => t.hour().to_string(),
                _ => format!("{:02}", t.hour()),
            },
            'h' => {
                let h = match t.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                if run == 1 {
                    h.to_string()
                } else {
                    format!("{h:02}")
                }
            }
            'm' => match run {
                1 => t.minute().to_string(),
                _ => format!("{:02}", t.minute()),
            },
            's' => match run {
                1 => t.second().to_string(),
                _ => format!("{:02}", t.second()),
            },
            'f' | 'F' => {
                let digits = format!("{frac:09}");
                let mut s: String = digits.chars().take(run.min(9)).collect();
                if c == 'F' {
                    s = s.trim_end_matches('0').to_string();
                }
                s
            }
            't' => {
                let s = if t.hour() < 12 { "AM" } else { "PM" };
                if run == 1 {
                    s[..1].to_string()
                } else {
                    s.to_string()
                }
            }
            _ => std::iter::repeat_n(c, run).collect(),
        };
        out.push_str(&piece);
        i += run;
    }
    out
}

fn dayofweek(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let t = times(&args[0])?;
    let v: Vec<Option<i64>> = (0..n)
        .map(|i| {
            let d = at(get_int(&t, i)?)?;
            Some(d.weekday().num_days_from_sunday() as i64 * 86_400_000_000_000)
        })
        .collect();
    let a: ArrayRef = Arc::new(Int64Array::from(v));
    Ok(cast(&a, &TIMESPAN)?)
}

/// `kql_datepart(part, t)`: year, month, day (of month), hour, ...
fn datepart(args: &[ArrayRef], n: usize) -> Result<ArrayRef> {
    let parts = texts(&args[0])?;
    let t = times(&args[1])?;
    let mut out = Int64Builder::with_capacity(n);
    for i in 0..n {
        let v = (|| {
            let d = at(get_int(&t, i)?)?;
            Some(match get_str(&parts, i)? {
                "year" => d.year() as i64,
                "month" => d.month() as i64,
                "day" => d.day() as i64,
                "dayofyear" => d.ordinal() as i64,
                "hour" => d.hour() as i64,
                "minute" => d.minute() as i64,
                "second" => d.second() as i64,
                "quarter" => d.month0() as i64 / 3 + 1,
                "millisecond" => d.nanosecond() as i64 / 1_000_000,
                "microsecond" => d.nanosecond() as i64 / 1_000,
                "nanosecond" => d.nanosecond() as i64,
                "weekofyear" | "week_of_year" => d.iso_week().week() as i64,
                _ => return None,
            })
        })();
        out.append_option(v);
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_matches_whole_terms_only() {
        assert!(has_term("north america", "america"));
        assert!(!has_term("northamerica", "america"));
        assert!(has_term("a-b", "-b"));
    }

    #[test]
    fn scanned_lookups_agree_with_parsed_ones() {
        let doc = r#"{"a":{"b":[1,{"c":"x,]}"}]},"d":"q\"u","e":null}"#;
        assert_eq!(
            scan_lookup(doc, ScanKey::Key("a")),
            Some(Some(r#"{"b":[1,{"c":"x,]}"}]}"#))
        );
        assert_eq!(scan_lookup(doc, ScanKey::Key("d")), Some(Some(r#""q\"u""#)));
        assert_eq!(scan_lookup(doc, ScanKey::Key("e")), Some(Some("null")));
        assert_eq!(scan_lookup(doc, ScanKey::Key("z")), Some(None));
        assert_eq!(
            scan_lookup("[1,[2,3],4]", ScanKey::Index(1)),
            Some(Some("[2,3]"))
        );
        assert_eq!(scan_lookup("[1,[2,3],4]", ScanKey::Index(3)), Some(None));
        assert_eq!(scan_lookup("[1]", ScanKey::Index(-1)), None);
        assert_eq!(scan_lookup(r#""text""#, ScanKey::Key("a")), Some(None));
    }

    #[test]
    fn decimals_keep_eighteen_places() {
        assert_eq!(decimal_from_text("1.5"), Some(1_500_000_000_000_000_000));
        assert_eq!(decimal_from_text("-2"), Some(-2_000_000_000_000_000_000));
    }
}
