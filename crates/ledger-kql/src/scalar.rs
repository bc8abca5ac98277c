//! Scalar expressions: KQL syntax to DataFusion expressions with Kusto's
//! typing rules (string literals against numbers, empty strings for null,
//! dynamic values as JSON text).

use std::collections::HashMap;
use std::ops::Not;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{Cast, ExprSchemable, Operator, TryCast, when};
use datafusion::prelude::{Expr, lit};

use crate::ast::{BinOp, Expr as K, ExprKind, Lit, StrOp};
use crate::error::{KqlError, Pos};
use crate::typed;
use crate::udf::{self, DECIMAL, DYNAMIC, TIMESPAN, call, datetime_type};
use crate::value::parse_datetime;

/// What names mean while planning one expression.
pub struct Scope<'a> {
    pub schema: &'a DFSchema,
    pub scalars: &'a HashMap<String, Expr>,
    /// `let f = (a: long) { ... }`: parameters and body, inlined at calls.
    pub functions: &'a HashMap<String, (Vec<String>, K)>,
    pub now: DateTime<Utc>,
}

/// `e` with each parameter name replaced by its argument.
fn substitute(e: &K, map: &HashMap<&str, &K>) -> K {
    let s = |x: &K| Box::new(substitute(x, map));
    let kind = match &e.kind {
        ExprKind::Ident(n) => match map.get(n.as_str()) {
            Some(arg) => return (*arg).clone(),
            None => ExprKind::Ident(n.clone()),
        },
        ExprKind::Binary(op, l, r) => ExprKind::Binary(*op, s(l), s(r)),
        ExprKind::Str(op, l, r) => ExprKind::Str(op.clone(), s(l), s(r)),
        ExprKind::Not(x) => ExprKind::Not(s(x)),
        ExprKind::Neg(x) => ExprKind::Neg(s(x)),
        ExprKind::Call(f, args) => {
            ExprKind::Call(f.clone(), args.iter().map(|a| substitute(a, map)).collect())
        }
        ExprKind::Index(x, i) => ExprKind::Index(s(x), s(i)),
        ExprKind::Member(x, m) => ExprKind::Member(s(x), m.clone()),
        ExprKind::Between {
            expr,
            low,
            high,
            negated,
        } => ExprKind::Between {
            expr: s(expr),
            low: s(low),
            high: s(high),
            negated: *negated,
        },
        ExprKind::In {
            expr,
            list,
            negated,
            case_insensitive,
        } => ExprKind::In {
            expr: s(expr),
            list: list.iter().map(|a| substitute(a, map)).collect(),
            negated: *negated,
            case_insensitive: *case_insensitive,
        },
        other => other.clone(),
    };
    K { kind, pos: e.pos }
}

pub fn is_dynamic(t: &DataType) -> bool {
    t == &DYNAMIC
}
pub fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View)
}
pub fn is_int(t: &DataType) -> bool {
    t.is_integer()
}
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}
pub fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..))
}
pub fn is_span(t: &DataType) -> bool {
    matches!(t, DataType::Duration(..))
}

pub fn kusto_type(name: &str, pos: Pos) -> Result<DataType, KqlError> {
    Ok(match name {
        "bool" | "boolean" => DataType::Boolean,
        "int" => DataType::Int32,
        "long" => DataType::Int64,
        "real" | "double" => DataType::Float64,
        "decimal" => DECIMAL,
        "string" | "guid" => DataType::Utf8,
        "datetime" | "date" => datetime_type(),
        "timespan" | "time" => TIMESPAN,
        "dynamic" => DYNAMIC,
        other => return Err(KqlError::unsupported("type", other, pos)),
    })
}

pub fn cast(e: Expr, t: DataType) -> Expr {
    Expr::Cast(Cast::new(Box::new(e), t))
}
fn try_cast(e: Expr, t: DataType) -> Expr {
    Expr::TryCast(TryCast::new(Box::new(e), t))
}

/// A column by its plain name (never split at dots).
pub fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// Kusto aggregates outside the subset: named in errors.
pub const UNSUPPORTED_AGGREGATES: &[&str] = &[
    "hll",
    "hll_merge",
    "tdigest",
    "tdigest_merge",
    "buildschema",
    "make_bag_if",
    "make_list_if",
    "make_set_if",
    "make_list_with_nulls",
    "percentilew",
    "percentilesw",
    "stdevif",
    "varianceif",
    "take_anyif",
    "count_distinct",
    "count_distinctif",
    "binary_all_and",
    "binary_all_or",
    "binary_all_xor",
    "dcount_hll",
    "arg_max_if",
];

/// The aggregate functions summarize knows.
pub const AGGREGATES: &[&str] = &[
    "count",
    "countif",
    "sum",
    "sumif",
    "avg",
    "avgif",
    "min",
    "max",
    "minif",
    "maxif",
    "dcount",
    "dcountif",
    "make_list",
    "make_set",
    "arg_max",
    "arg_min",
    "percentile",
    "percentiles",
    "take_any",
    "any",
    "stdev",
    "variance",
    "make_bag",
];

impl Scope<'_> {
    pub fn ty(&self, e: &Expr, pos: Pos) -> Result<DataType, KqlError> {
        e.get_type(self.schema)
            .map_err(|err| KqlError::semantic(pos, err.to_string()))
    }

    pub fn plan(&self, e: &K) -> Result<Expr, KqlError> {
        let pos = e.pos;
        if let Some(c) = self.known_path(e) {
            return Ok(column(&c));
        }
        Ok(match &e.kind {
            ExprKind::Lit(l) => lit(literal(l, pos)?),
            ExprKind::Ident(n) => {
                if let Some(v) = self.scalars.get(n) {
                    v.clone()
                } else if self.schema.has_column_with_unqualified_name(n) {
                    column(n)
                } else {
                    return Err(KqlError::semantic(
                        pos,
                        format!("unknown column or name `{n}`"),
                    ));
                }
            }
            ExprKind::Star => {
                return Err(KqlError::semantic(
                    pos,
                    "`*` is only an argument of count() or arg_max()",
                ));
            }
            ExprKind::Side(_, n) => {
                return Err(KqlError::semantic(
                    pos,
                    format!("$left/$right.{n} outside a join condition"),
                ));
            }
            ExprKind::Not(x) => Expr::Not(Box::new(self.plan(x)?)),
            ExprKind::Neg(x) => Expr::Negative(Box::new(self.plan(x)?)),
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, pos)?,
            ExprKind::Str(op, l, r) => self.str_op(op, l, r, pos)?,
            ExprKind::Index(x, i) => {
                let x = self.dynamic(self.plan(x)?, pos)?;
                call(&udf::GET, vec![x, self.plan(i)?])
            }
            ExprKind::Member(x, name) => {
                let x = self.dynamic(self.plan(x)?, pos)?;
                call(&udf::GET, vec![x, lit(name.as_str())])
            }
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let x = self.plan(expr)?;
                let lo = self.plan(low)?;
                let mut hi = self.plan(high)?;
                let (tx, tl, th) = (self.ty(&x, pos)?, self.ty(&lo, pos)?, self.ty(&hi, pos)?);
                // `t between (start .. 1h)`: the end is start + span.
                if is_time(&tl) && is_span(&th) {
                    hi = self.arith(BinOp::Add, lo.clone(), hi, pos)?;
                }
                let (x1, lo) = self.coerce(x.clone(), lo, pos)?;
                let (x2, hi) = self.coerce(x, hi, pos)?;
                let _ = tx;
                let e = x1.gt_eq(lo).and(x2.lt_eq(hi));
                if *negated { e.not() } else { e }
            }
            ExprKind::In {
                expr,
                list,
                negated,
                case_insensitive,
            } => {
                let mut x = self.plan(expr)?;
                let mut items = Vec::new();
                for item in list {
                    // A dynamic array literal contributes its elements.
                    if let ExprKind::Lit(Lit::Dynamic(json)) = &item.kind
                        && let Ok(serde_json::Value::Array(vals)) = serde_json::from_str(json)
                    {
                        for v in vals {
                            items.push(lit(match v {
                                serde_json::Value::String(s) => ScalarValue::Utf8(Some(s)),
                                serde_json::Value::Number(n) if n.is_i64() => {
                                    ScalarValue::Int64(n.as_i64())
                                }
                                serde_json::Value::Number(n) => ScalarValue::Float64(n.as_f64()),
                                serde_json::Value::Bool(b) => ScalarValue::Boolean(Some(b)),
                                other => ScalarValue::Utf8(Some(other.to_string())),
                            }));
                        }
                        continue;
                    }
                    items.push(self.plan(item)?);
                }
                let tx = self.ty(&x, pos)?;
                if is_dynamic(&tx) {
                    x = call(&udf::TOSTRING, vec![x]);
                }
                let mut coerced = Vec::new();
                for it in items {
                    let (a, b) = self.coerce(x.clone(), it, pos)?;
                    x = a;
                    coerced.push(b);
                }
                if *case_insensitive {
                    x = f::lower(self.string(x, pos)?);
                    coerced = coerced
                        .into_iter()
                        .map(|c| self.string(c, pos).map(f::lower))
                        .collect::<Result<_, _>>()?;
                }
                x.in_list(coerced, *negated)
            }
            ExprKind::Call(name, args) => self.function(name, args, pos)?,
        })
    }

    /// `parse_json(Body).a.b` (or `Body['a']['b']`, nested `parse_json`s
    /// included) where `typed::BODY_PATHS` knows the path: the typed column.
    fn known_path(&self, e: &K) -> Option<String> {
        if !matches!(e.kind, ExprKind::Index(..) | ExprKind::Member(..)) {
            return None;
        }
        let mut path = Vec::new();
        let mut at = e;
        let body = loop {
            match &at.kind {
                ExprKind::Index(x, i) => match &i.kind {
                    ExprKind::Lit(Lit::Str(s)) => {
                        path.push(s.clone());
                        at = x;
                    }
                    _ => return None,
                },
                ExprKind::Member(x, n) => {
                    path.push(n.clone());
                    at = x;
                }
                // parse_json of a dynamic value is that value.
                ExprKind::Call(n, args)
                    if args.len() == 1
                        && matches!(n.as_str(), "parse_json" | "todynamic" | "parsejson") =>
                {
                    at = &args[0];
                }
                ExprKind::Ident(n) if !self.scalars.contains_key(n) => break n,
                _ => return None,
            }
        };
        path.reverse();
        typed::column_for(self.schema, body, &path)
    }

    /// `e` as a dynamic value (strings are parsed as JSON).
    fn dynamic(&self, e: Expr, pos: Pos) -> Result<Expr, KqlError> {
        if is_dynamic(&self.ty(&e, pos)?) {
            Ok(e)
        } else {
            Ok(call(&udf::PARSE_JSON, vec![e]))
        }
    }

    /// `e` as Kusto text: null is '', dynamic strings bare.
    pub fn string(&self, e: Expr, pos: Pos) -> Result<Expr, KqlError> {
        let t = self.ty(&e, pos)?;
        if is_string(&t) {
            Ok(f::coalesce(vec![e, lit("")]))
        } else {
            Ok(call(&udf::TOSTRING, vec![e]))
        }
    }

    /// Makes two operands comparable the way Kusto does.
    fn coerce(&self, l: Expr, r: Expr, pos: Pos) -> Result<(Expr, Expr), KqlError> {
        let (tl, tr) = (self.ty(&l, pos)?, self.ty(&r, pos)?);
        if tl == DataType::Null || tr == DataType::Null {
            return Ok((l, r));
        }
        if is_dynamic(&tl) && !is_dynamic(&tr) {
            let l2 = self.dynamic_as(l, &tr);
            return self.coerce(l2, r, pos);
        }
        if is_dynamic(&tr) && !is_dynamic(&tl) {
            let r2 = self.dynamic_as(r, &tl);
            return self.coerce(l, r2, pos);
        }
        if is_dynamic(&tl) && is_dynamic(&tr) {
            return Ok((call(&udf::TOSTRING, vec![l]), call(&udf::TOSTRING, vec![r])));
        }
        // An int column against '200': the literal read as the column's type.
        if is_numeric(&tl) && is_string(&tr) {
            return Ok((l, try_cast(r, tl)));
        }
        if is_string(&tl) && is_numeric(&tr) {
            return Ok((try_cast(l, tr), r));
        }
        if is_time(&tl) && is_string(&tr) {
            return Ok((l, call(&udf::TODATETIME, vec![r])));
        }
        if is_string(&tl) && is_time(&tr) {
            return Ok((call(&udf::TODATETIME, vec![l]), r));
        }
        if is_time(&tl) && is_time(&tr) {
            return Ok((cast(l, datetime_type()), cast(r, datetime_type())));
        }
        if is_string(&tl) && is_string(&tr) {
            // Kusto strings are never null: null compares as ''.
            return Ok((f::coalesce(vec![l, lit("")]), f::coalesce(vec![r, lit("")])));
        }
        if tl == DataType::Boolean && is_string(&tr) {
            return Ok((l, call(&udf::TOBOOL, vec![r])));
        }
        Ok((l, r))
    }

    /// A dynamic value read as type `t` (for comparisons and arithmetic).
    fn dynamic_as(&self, e: Expr, t: &DataType) -> Expr {
        if is_numeric(t) {
            call(&udf::TOREAL, vec![e])
        } else if t == &DataType::Boolean {
            call(&udf::TOBOOL, vec![e])
        } else if is_time(t) {
            call(&udf::TODATETIME, vec![e])
        } else if is_span(t) {
            call(&udf::TOTIMESPAN, vec![e])
        } else {
            call(&udf::TOSTRING, vec![e])
        }
    }

    fn binary(&self, op: BinOp, l: &K, r: &K, pos: Pos) -> Result<Expr, KqlError> {
        let (a, b) = (self.plan(l)?, self.plan(r)?);
        Ok(match op {
            BinOp::And => a.and(b),
            BinOp::Or => a.or(b),
            BinOp::EqCi | BinOp::NeCi => {
                let a = f::lower(self.string(a, pos)?);
                let b = f::lower(self.string(b, pos)?);
                if op == BinOp::EqCi {
                    a.eq(b)
                } else {
                    a.not_eq(b)
                }
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let (a, b) = self.coerce(a, b, pos)?;
                match op {
                    BinOp::Eq | BinOp::Ne => self.equality(op == BinOp::Eq, a, b, pos)?,
                    BinOp::Lt => a.lt(b),
                    BinOp::Le => a.lt_eq(b),
                    BinOp::Gt => a.gt(b),
                    _ => a.gt_eq(b),
                }
            }
            _ => self.arith(op, a, b, pos)?,
        })
    }

    /// Kusto's `==`/`!=` with null: one null side is unequal, both null is
    /// null (`where x != 5` keeps the rows where x is null).
    fn equality(&self, eq: bool, a: Expr, b: Expr, pos: Pos) -> Result<Expr, KqlError> {
        let literal = |e: &Expr| matches!(e, Expr::Literal(v, _) if !v.is_null());
        if literal(&b) || literal(&a) {
            let e = if eq { a.eq(b) } else { a.not_eq(b) };
            return Ok(f::coalesce(vec![e, lit(!eq)]));
        }
        let both_null = a.clone().is_null().and(b.clone().is_null());
        let cmp = if eq {
            datafusion::logical_expr::binary_expr(a, Operator::IsNotDistinctFrom, b)
        } else {
            datafusion::logical_expr::binary_expr(a, Operator::IsDistinctFrom, b)
        };
        when(both_null, lit(ScalarValue::Boolean(None)))
            .otherwise(cmp)
            .map_err(|e| KqlError::semantic(pos, e.to_string()))
    }

    /// Arithmetic, with datetimes and timespans computed in nanoseconds.
    pub fn arith(&self, op: BinOp, a: Expr, b: Expr, pos: Pos) -> Result<Expr, KqlError> {
        let (mut a, mut b) = (a, b);
        let (mut ta, mut tb) = (self.ty(&a, pos)?, self.ty(&b, pos)?);
        if is_dynamic(&ta) {
            a = call(&udf::TOREAL, vec![a]);
            ta = DataType::Float64;
        }
        if is_dynamic(&tb) {
            b = call(&udf::TOREAL, vec![b]);
            tb = DataType::Float64;
        }
        let micros = |e: Expr, t: &DataType| {
            if is_time(t) {
                cast(
                    cast(e, DataType::Timestamp(TimeUnit::Nanosecond, None)),
                    DataType::Int64,
                )
            } else {
                cast(cast(e, TIMESPAN), DataType::Int64)
            }
        };
        let as_time = |e: Expr| {
            cast(
                cast(e, DataType::Timestamp(TimeUnit::Nanosecond, None)),
                datetime_type(),
            )
        };
        let as_span = |e: Expr| cast(e, TIMESPAN);
        let temporal = is_time(&ta) || is_time(&tb) || is_span(&ta) || is_span(&tb);
        if !temporal {
            return Ok(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                // Kusto's integer % is never negative (-14 % 12 == 10).
                _ if is_int(&ta) && is_int(&tb) => {
                    let m = f::abs(b);
                    ((a % m.clone()) + m.clone()) % m
                }
                _ => a % b,
            });
        }
        let bad = || KqlError::semantic(pos, format!("cannot apply {op:?} to {ta} and {tb}"));
        Ok(
            match (op, is_time(&ta), is_span(&ta), is_time(&tb), is_span(&tb)) {
                (BinOp::Sub, true, _, true, _) => as_span(micros(a, &ta) - micros(b, &tb)),
                (BinOp::Add | BinOp::Sub, true, _, _, true) => {
                    let m = if op == BinOp::Add {
                        micros(a, &ta) + micros(b, &tb)
                    } else {
                        micros(a, &ta) - micros(b, &tb)
                    };
                    as_time(m)
                }
                (BinOp::Add, _, true, true, _) => as_time(micros(a, &ta) + micros(b, &tb)),
                (BinOp::Add | BinOp::Sub, _, true, _, true) => {
                    let m = if op == BinOp::Add {
                        micros(a, &ta) + micros(b, &tb)
                    } else {
                        micros(a, &ta) - micros(b, &tb)
                    };
                    as_span(m)
                }
                (BinOp::Div, _, true, _, true) => {
                    cast(micros(a, &ta), DataType::Float64)
                        / cast(micros(b, &tb), DataType::Float64)
                }
                (BinOp::Mul | BinOp::Div, _, true, false, false) if is_numeric(&tb) => {
                    let x = cast(micros(a, &ta), DataType::Float64);
                    let y = cast(b, DataType::Float64);
                    let m = if op == BinOp::Mul { x * y } else { x / y };
                    as_span(cast(f::round(vec![m]), DataType::Int64))
                }
                (BinOp::Mul, false, false, _, true) if is_numeric(&ta) => {
                    let m = cast(a, DataType::Float64) * cast(micros(b, &tb), DataType::Float64);
                    as_span(cast(f::round(vec![m]), DataType::Int64))
                }
                _ => return Err(bad()),
            },
        )
    }

    fn str_op(&self, op: &StrOp, l: &K, r: &K, pos: Pos) -> Result<Expr, KqlError> {
        let a = self.string(self.plan(l)?, pos)?;
        let b = self.string(self.plan(r)?, pos)?;
        let name = if op.case_sensitive {
            format!("{}_cs", op.op)
        } else {
            op.op.clone()
        };
        let e = call(&udf::STROP, vec![lit(name), a, b]);
        Ok(if op.negated { e.not() } else { e })
    }

    fn args(&self, args: &[K]) -> Result<Vec<Expr>, KqlError> {
        args.iter().map(|a| self.plan(a)).collect()
    }

    fn function(&self, name: &str, args: &[K], pos: Pos) -> Result<Expr, KqlError> {
        let arity = |lo: usize, hi: usize| -> Result<(), KqlError> {
            if args.len() < lo || args.len() > hi {
                Err(KqlError::semantic(
                    pos,
                    format!("{name}() takes {lo}..{hi} arguments, got {}", args.len()),
                ))
            } else {
                Ok(())
            }
        };
        if let Some((params, body)) = self.functions.get(name) {
            if params.len() != args.len() {
                return Err(KqlError::semantic(
                    pos,
                    format!(
                        "{name}() takes {} arguments, got {}",
                        params.len(),
                        args.len()
                    ),
                ));
            }
            let map: HashMap<&str, &K> = params.iter().map(String::as_str).zip(args).collect();
            return self.plan(&substitute(body, &map));
        }
        if AGGREGATES.contains(&name) {
            return Err(KqlError::semantic(
                pos,
                format!("aggregate {name}() outside summarize"),
            ));
        }
        let one = |s: &Self| -> Result<Expr, KqlError> {
            arity(1, 1)?;
            s.plan(&args[0])
        };
        let e = match name {
            "parse_json" | "todynamic" | "parsejson" => {
                let x = one(self)?;
                call(&udf::PARSE_JSON, vec![x])
            }
            "tostring" => {
                let x = one(self)?;
                self.string(x, pos)?
            }
            "toint" | "tolong" | "toreal" | "todouble" | "todecimal" | "tobool" | "toboolean" => {
                let x = one(self)?;
                let t = self.ty(&x, pos)?;
                let target = match name {
                    "toint" => DataType::Int32,
                    "tolong" => DataType::Int64,
                    "toreal" | "todouble" => DataType::Float64,
                    "todecimal" => DECIMAL,
                    _ => DataType::Boolean,
                };
                if is_numeric(&t) || t == DataType::Boolean {
                    if target == DataType::Boolean {
                        x.not_eq(lit(0i64))
                    } else {
                        try_cast(x, target)
                    }
                } else if t == DataType::Null {
                    cast(x, target)
                } else {
                    let f = match name {
                        "toint" | "tolong" => &udf::TOLONG,
                        "toreal" | "todouble" => &udf::TOREAL,
                        "todecimal" => &udf::TODECIMAL,
                        _ => &udf::TOBOOL,
                    };
                    let v = call(f, vec![x]);
                    if target == DataType::Int32 {
                        try_cast(v, target)
                    } else {
                        v
                    }
                }
            }
            "todatetime" => {
                let x = one(self)?;
                call(&udf::TODATETIME, vec![x])
            }
            "totimespan" | "time" => {
                let x = one(self)?;
                call(&udf::TOTIMESPAN, vec![x])
            }
            "tolower" | "toupper" => {
                let x = one(self)?;
                let x = self.string(x, pos)?;
                if name == "tolower" {
                    f::lower(x)
                } else {
                    f::upper(x)
                }
            }
            "strlen" => {
                let x = one(self)?;
                cast(f::character_length(self.string(x, pos)?), DataType::Int64)
            }
            "substring" => {
                arity(2, 3)?;
                call(&udf::SUBSTRING, self.args(args)?)
            }
            "indexof" => {
                arity(2, 5)?;
                call(&udf::INDEXOF, self.args(args)?)
            }
            "strcat" => {
                arity(1, 64)?;
                let parts = self
                    .args(args)?
                    .into_iter()
                    .map(|a| self.string(a, pos))
                    .collect::<Result<Vec<_>, _>>()?;
                f::concat(parts)
            }
            "strcat_delim" => {
                arity(2, 64)?;
                let mut parts = self
                    .args(args)?
                    .into_iter()
                    .map(|a| self.string(a, pos))
                    .collect::<Result<Vec<_>, _>>()?;
                let d = parts.remove(0);
                f::concat_ws(d, parts)
            }
            "strcat_array" => {
                arity(2, 2)?;
                let a = self.args(args)?;
                let d = self.dynamic(a[0].clone(), pos)?;
                call(&udf::STRCAT_ARRAY, vec![d, a[1].clone()])
            }
            "split" => {
                arity(2, 3)?;
                call(&udf::SPLIT, self.args(args)?)
            }
            "replace_string" => {
                arity(3, 3)?;
                let a = self.args(args)?;
                let mut it = a.into_iter().map(|x| self.string(x, pos));
                let (Some(s), Some(from), Some(to)) = (it.next(), it.next(), it.next()) else {
                    return Err(KqlError::semantic(
                        pos,
                        "replace_string(text, lookup, rewrite)",
                    ));
                };
                f::replace(s?, from?, to?)
            }
            "replace_regex" => {
                arity(3, 3)?;
                let a = self.args(args)?;
                let s = self.string(a[0].clone(), pos)?;
                f::regexp_replace(s, a[1].clone(), a[2].clone(), Some(lit("g")))
            }
            "trim" | "trim_start" | "trim_end" => {
                arity(2, 2)?;
                let a = self.args(args)?;
                let Expr::Literal(ScalarValue::Utf8(Some(re)), _) = &a[0] else {
                    return Err(KqlError::unsupported("non-literal regex in", name, pos));
                };
                let pattern = match name {
                    "trim" => format!("^(?:{re})+|(?:{re})+$"),
                    "trim_start" => format!("^(?:{re})+"),
                    _ => format!("(?:{re})+$"),
                };
                let s = self.string(a[1].clone(), pos)?;
                f::regexp_replace(s, lit(pattern), lit(""), Some(lit("g")))
            }
            "extract" => {
                arity(3, 4)?;
                let a = self.args(&args[..3])?;
                let v = call(&udf::EXTRACT, a);
                match args.get(3) {
                    Some(K {
                        kind: ExprKind::Call(t, targs),
                        pos: tpos,
                    }) if t == "typeof" && targs.len() == 1 => {
                        let ExprKind::Ident(ty) = &targs[0].kind else {
                            return Err(KqlError::syntax(*tpos, "typeof(type)"));
                        };
                        let target = kusto_type(ty, *tpos)?;
                        self.convert(v, &target, *tpos)?
                    }
                    Some(other) => return Err(KqlError::syntax(other.pos, "expected typeof(...)")),
                    None => v,
                }
            }
            "isempty" | "isnotempty" => {
                let x = one(self)?;
                let t = self.ty(&x, pos)?;
                let empty = if is_string(&t) {
                    f::coalesce(vec![x, lit("")]).eq(lit(""))
                } else if is_dynamic(&t) {
                    call(&udf::TOSTRING, vec![x]).eq(lit(""))
                } else {
                    x.is_null()
                };
                if name == "isempty" {
                    empty
                } else {
                    empty.not()
                }
            }
            "isnull" => one(self)?.is_null(),
            "isnotnull" => one(self)?.is_not_null(),
            "isnan" => f::isnan(one(self)?),
            "coalesce" => {
                arity(1, 64)?;
                let a = self.args(args)?;
                let t = self.ty(&a[0], pos)?;
                if is_string(&t) {
                    let parts = a.into_iter().map(|x| f::nullif(x, lit(""))).collect();
                    f::coalesce(vec![f::coalesce(parts), lit("")])
                } else {
                    f::coalesce(a)
                }
            }
            "iff" | "iif" => {
                arity(3, 3)?;
                let a = self.args(args)?;
                let (t, e) = self.unify(a[1].clone(), a[2].clone(), pos)?;
                when(a[0].clone(), t)
                    .otherwise(e)
                    .map_err(|e| KqlError::semantic(pos, e.to_string()))?
            }
            "case" => {
                if args.len() < 3 || args.len().is_multiple_of(2) {
                    return Err(KqlError::semantic(pos, "case(predicate, then, ..., else)"));
                }
                let a = self.args(args)?;
                let mut b = when(a[0].clone(), a[1].clone());
                for pair in a[2..a.len() - 1].chunks(2) {
                    b = b.when(pair[0].clone(), pair[1].clone());
                }
                let last = a[a.len() - 1].clone();
                b.otherwise(last)
                    .map_err(|e| KqlError::semantic(pos, e.to_string()))?
            }
            "not" => one(self)?.not(),
            "now" => {
                arity(0, 1)?;
                let n = lit(ScalarValue::TimestampNanosecond(
                    self.now.timestamp_nanos_opt(),
                    Some("UTC".into()),
                ));
                match args.first() {
                    Some(a) => self.arith(BinOp::Add, n, self.plan(a)?, pos)?,
                    None => n,
                }
            }
            "ago" => {
                let d = one(self)?;
                let n = lit(ScalarValue::TimestampNanosecond(
                    self.now.timestamp_nanos_opt(),
                    Some("UTC".into()),
                ));
                self.arith(BinOp::Sub, n, d, pos)?
            }
            "bin" | "floor" => {
                arity(2, 2)?;
                let a = self.args(args)?;
                self.bin(a[0].clone(), a[1].clone(), pos)?
            }
            "startofday" | "startofweek" | "startofmonth" | "startofyear" | "endofday"
            | "endofweek" | "endofmonth" | "endofyear" => {
                arity(1, 2)?;
                let mut a = self.args(args)?;
                let unit = name
                    .trim_start_matches("startof")
                    .trim_start_matches("endof")
                    .to_string();
                a.insert(0, lit(unit));
                let f = if name.starts_with("start") {
                    &udf::START_OF
                } else {
                    &udf::END_OF
                };
                call(f, a)
            }
            "make_datetime" => {
                arity(3, 7)?;
                call(&udf::MAKE_DATETIME, self.args(args)?)
            }
            "datetime_add" => {
                arity(3, 3)?;
                call(&udf::DATETIME_ADD, self.args(args)?)
            }
            "datetime_diff" => {
                arity(3, 3)?;
                call(&udf::DATETIME_DIFF, self.args(args)?)
            }
            "format_datetime" => {
                arity(2, 2)?;
                call(&udf::FORMAT_DATETIME, self.args(args)?)
            }
            "dayofweek" => {
                let x = one(self)?;
                call(&udf::DAYOFWEEK, vec![x])
            }
            "getyear" | "getmonth" | "dayofmonth" | "dayofyear" | "hourofday" | "week_of_year" => {
                let x = one(self)?;
                let part = match name {
                    "getyear" => "year",
                    "getmonth" => "month",
                    "dayofmonth" => "day",
                    "dayofyear" => "dayofyear",
                    "hourofday" => "hour",
                    _ => "weekofyear",
                };
                call(&udf::DATEPART, vec![lit(part), x])
            }
            "datetime_part" => {
                arity(2, 2)?;
                let a = self.args(args)?;
                call(&udf::DATEPART, vec![f::lower(a[0].clone()), a[1].clone()])
            }
            "array_length" => {
                let x = one(self)?;
                let x = self.dynamic(x, pos)?;
                call(&udf::ARRAY_LENGTH, vec![x])
            }
            "pack" | "bag_pack" | "pack_dictionary" => {
                if !args.len().is_multiple_of(2) {
                    return Err(KqlError::semantic(
                        pos,
                        format!("{name}() takes key, value pairs"),
                    ));
                }
                call(&udf::BAG_PACK, self.args(args)?)
            }
            "pack_array" => call(&udf::PACK_ARRAY, self.args(args)?),
            "bag_keys" => {
                let x = one(self)?;
                let x = self.dynamic(x, pos)?;
                call(&udf::BAG_KEYS, vec![x])
            }
            "round" => {
                arity(1, 2)?;
                let mut a = self.args(args)?;
                let t = self.ty(&a[0], pos)?;
                if is_dynamic(&t) {
                    a[0] = call(&udf::TOREAL, vec![a[0].clone()]);
                } else if is_int(&t) {
                    a[0] = cast(a[0].clone(), DataType::Float64);
                }
                f::round(a)
            }
            "abs" => f::abs(self.number(one(self)?, pos)?),
            "sqrt" => f::sqrt(self.real(one(self)?, pos)?),
            "log10" => f::log10(self.real(one(self)?, pos)?),
            "log" => f::ln(self.real(one(self)?, pos)?),
            "log2" => f::log2(self.real(one(self)?, pos)?),
            "exp" => f::exp(self.real(one(self)?, pos)?),
            "sign" => f::signum(self.real(one(self)?, pos)?),
            "pow" | "power" => {
                arity(2, 2)?;
                let a = self.args(args)?;
                f::power(self.real(a[0].clone(), pos)?, self.real(a[1].clone(), pos)?)
            }
            "min_of" | "max_of" => {
                arity(1, 64)?;
                let a = self
                    .args(args)?
                    .into_iter()
                    .map(|x| self.number(x, pos))
                    .collect::<Result<Vec<_>, _>>()?;
                if name == "min_of" {
                    f::least(a)
                } else {
                    f::greatest(a)
                }
            }
            "reverse" => f::reverse(self.string(one(self)?, pos)?),
            "row_number" => {
                arity(0, 0)?;
                cast(
                    datafusion::functions_window::expr_fn::row_number(),
                    DataType::Int64,
                )
            }
            "unixtime_seconds_todatetime" | "unixtime_milliseconds_todatetime" => {
                let x = self.real(one(self)?, pos)?;
                let per = if name.contains("milli") { 1e6 } else { 1e9 };
                let m = cast(f::round(vec![x * lit(per)]), DataType::Int64);
                cast(
                    cast(m, DataType::Timestamp(TimeUnit::Nanosecond, None)),
                    datetime_type(),
                )
            }
            _ => return Err(KqlError::unsupported("function", name, pos)),
        };
        Ok(e)
    }

    fn number(&self, x: Expr, pos: Pos) -> Result<Expr, KqlError> {
        if is_dynamic(&self.ty(&x, pos)?) {
            Ok(call(&udf::TOREAL, vec![x]))
        } else {
            Ok(x)
        }
    }

    fn real(&self, x: Expr, pos: Pos) -> Result<Expr, KqlError> {
        let t = self.ty(&x, pos)?;
        Ok(if is_dynamic(&t) || is_string(&t) {
            call(&udf::TOREAL, vec![x])
        } else {
            cast(x, DataType::Float64)
        })
    }

    /// Brings both branches of iff() to one type (dynamic wins as text).
    fn unify(&self, a: Expr, b: Expr, pos: Pos) -> Result<(Expr, Expr), KqlError> {
        let (ta, tb) = (self.ty(&a, pos)?, self.ty(&b, pos)?);
        if ta == tb || ta == DataType::Null || tb == DataType::Null {
            return Ok((a, b));
        }
        if is_dynamic(&ta) || is_dynamic(&tb) {
            return Ok((
                call(&udf::TODYNAMIC, vec![a]),
                call(&udf::TODYNAMIC, vec![b]),
            ));
        }
        Ok((a, b))
    }

    /// Conversion to a Kusto type (extract(..., typeof(t)), mv-expand to typeof).
    pub fn convert(&self, x: Expr, t: &DataType, pos: Pos) -> Result<Expr, KqlError> {
        let from = self.ty(&x, pos)?;
        if &from == t {
            return Ok(x);
        }
        Ok(match t {
            DataType::Int32 => try_cast(call(&udf::TOLONG, vec![x]), DataType::Int32),
            DataType::Int64 => call(&udf::TOLONG, vec![x]),
            DataType::Float64 => call(&udf::TOREAL, vec![x]),
            DataType::Boolean => call(&udf::TOBOOL, vec![x]),
            DataType::Utf8 => call(&udf::TOSTRING, vec![x]),
            DataType::Decimal128(..) => call(&udf::TODECIMAL, vec![x]),
            DataType::Timestamp(..) => call(&udf::TODATETIME, vec![x]),
            DataType::Duration(..) => call(&udf::TOTIMESPAN, vec![x]),
            _ => call(&udf::TODYNAMIC, vec![x]),
        })
    }

    /// bin(x, size): down to a multiple of size (datetimes by a timespan).
    pub fn bin(&self, x: Expr, size: Expr, pos: Pos) -> Result<Expr, KqlError> {
        let (tx, ts) = (self.ty(&x, pos)?, self.ty(&size, pos)?);
        if is_time(&tx) {
            return Ok(call(&udf::BIN_TIME, vec![x, size]));
        }
        if is_span(&tx) {
            let m = cast(cast(x, TIMESPAN), DataType::Int64);
            let s = cast(cast(size, TIMESPAN), DataType::Int64);
            let b = cast(
                f::floor(cast(m, DataType::Float64) / cast(s.clone(), DataType::Float64)),
                DataType::Int64,
            ) * s;
            return Ok(cast(b, TIMESPAN));
        }
        let xr = self.real(x, pos)?;
        let sr = self.real(size, pos)?;
        let b = f::floor(xr / sr.clone()) * sr;
        Ok(if is_int(&tx) && is_int(&ts) {
            cast(b, DataType::Int64)
        } else {
            b
        })
    }
}

/// A literal as a DataFusion value.
pub fn literal(l: &Lit, pos: Pos) -> Result<ScalarValue, KqlError> {
    Ok(match l {
        Lit::Null => ScalarValue::Null,
        Lit::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Lit::Int(v) => ScalarValue::Int64(Some(*v)),
        Lit::Real(v) => ScalarValue::Float64(Some(*v)),
        Lit::Str(s) => ScalarValue::Utf8(Some(s.clone())),
        Lit::Timespan(n) => ScalarValue::DurationNanosecond(Some(*n)),
        Lit::Datetime(raw) => {
            let t = if raw == "null" {
                None
            } else {
                Some(
                    parse_datetime(raw)
                        .ok_or_else(|| KqlError::syntax(pos, format!("invalid datetime `{raw}`")))?
                        .timestamp_nanos_opt()
                        .ok_or_else(|| {
                            KqlError::syntax(pos, format!("datetime `{raw}` out of range"))
                        })?,
                )
            };
            ScalarValue::TimestampNanosecond(t, Some("UTC".into()))
        }
        Lit::Dynamic(json) => {
            if json == "null" {
                ScalarValue::LargeUtf8(None)
            } else {
                ScalarValue::LargeUtf8(Some(json.clone()))
            }
        }
        Lit::Typed(ty, raw) => {
            let t = kusto_type(ty, pos)?;
            if raw == "null" {
                return ScalarValue::try_from(&t)
                    .map_err(|e| KqlError::semantic(pos, e.to_string()));
            }
            let v = match ty.as_str() {
                "real" | "double" => ScalarValue::Float64(Some(match raw.as_str() {
                    "nan" => f64::NAN,
                    "+inf" | "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    r => r
                        .parse()
                        .map_err(|_| KqlError::syntax(pos, format!("invalid real `{r}`")))?,
                })),
                "bool" | "boolean" => ScalarValue::Boolean(Some(raw == "true" || raw == "1")),
                _ => ScalarValue::Utf8(Some(raw.clone())),
            };
            v.cast_to(&t)
                .map_err(|_| KqlError::syntax(pos, format!("invalid {ty} literal `{raw}`")))?
        }
    })
}
