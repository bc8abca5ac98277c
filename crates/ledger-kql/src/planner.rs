//! Tabular operators onto DataFusion DataFrames (logical plans).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{Column, JoinType, ScalarValue, UnnestOptions};
use datafusion::functions_aggregate::expr_fn as agg;
use datafusion::logical_expr::{ExprFunctionExt, SortExpr};
use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
use datafusion::prelude::{DataFrame, SessionContext, lit};

use crate::ast::*;
use crate::typed;

type DfExpr = datafusion::prelude::Expr;
use crate::error::{KqlError, Pos};
use crate::scalar::{AGGREGATES, Scope, cast, column, is_dynamic, is_int, kusto_type};
use crate::udf::{self, DYNAMIC, call};

/// A chart the query asked for with `render`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Render {
    pub kind: String,
    pub pos: Pos,
}

enum Binding {
    Tabular(Pipeline),
    Frame(DataFrame),
    Lambda(Pipeline),
}

pub struct Planner<'a> {
    ctx: &'a SessionContext,
    now: DateTime<Utc>,
    tables: HashMap<String, DataFrame>,
    bindings: HashMap<String, Binding>,
    scalars: HashMap<String, DfExpr>,
    functions: HashMap<String, (Vec<String>, Expr)>,
    pub render: Option<Render>,
}

fn df_err(pos: Pos) -> impl Fn(datafusion::error::DataFusionError) -> KqlError {
    move |e| KqlError::semantic(pos, e.to_string())
}

/// The names of the tables a query reads (not bound by `let` or `as`).
pub fn table_names(q: &Query) -> Vec<String> {
    let mut bound: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    fn walk(p: &Pipeline, bound: &mut HashSet<String>, out: &mut Vec<String>) {
        match &p.source {
            Source::Expr(Expr {
                kind: ExprKind::Ident(n),
                ..
            }) if !bound.contains(n) && !out.contains(n) => out.push(n.clone()),
            Source::Union(u) => u.tables.iter().for_each(|t| walk(t, bound, out)),
            Source::Paren(inner) => walk(inner, bound, out),
            _ => {}
        }
        for op in &p.ops {
            match &op.kind {
                OpKind::Join { right, .. } => walk(right, bound, out),
                OpKind::Union(u) => u.tables.iter().for_each(|t| walk(t, bound, out)),
                OpKind::As(n) => {
                    bound.insert(n.clone());
                }
                _ => {}
            }
        }
    }
    for l in &q.lets {
        match &l.value {
            LetValue::Pipeline(p) | LetValue::Lambda(p) => walk(p, &mut bound, &mut out),
            LetValue::Function { .. } => {}
        }
        bound.insert(l.name.clone());
    }
    if let Some(b) = &q.body {
        walk(b, &mut bound, &mut out);
    }
    out
}

impl<'a> Planner<'a> {
    /// `tables`: the frames of the tables the query names, resolved first
    /// (resolving is async; planning is not).
    pub fn new(
        ctx: &'a SessionContext,
        now: DateTime<Utc>,
        tables: HashMap<String, DataFrame>,
    ) -> Planner<'a> {
        Planner {
            ctx,
            now,
            tables,
            bindings: HashMap::new(),
            scalars: HashMap::new(),
            functions: HashMap::new(),
            render: None,
        }
    }

    pub fn query(&mut self, q: &Query) -> Result<DataFrame, KqlError> {
        for l in &q.lets {
            match &l.value {
                LetValue::Function { params, body } => {
                    self.functions
                        .insert(l.name.clone(), (params.clone(), body.clone()));
                }
                LetValue::Lambda(p) => {
                    self.bindings
                        .insert(l.name.clone(), Binding::Lambda(p.clone()));
                }
                LetValue::Pipeline(p) => {
                    if let (Source::Expr(e), true) = (&p.source, p.ops.is_empty())
                        && !self.names_tabular(e)
                    {
                        let empty = datafusion::common::DFSchema::empty();
                        let planned = self.scope(&empty).plan(e)?;
                        let folded = self.fold(planned, &empty, e.pos)?;
                        self.scalars.insert(l.name.clone(), folded);
                        self.bindings.remove(&l.name);
                        continue;
                    }
                    self.scalars.remove(&l.name);
                    self.bindings
                        .insert(l.name.clone(), Binding::Tabular(p.clone()));
                }
            }
        }
        let Some(body) = &q.body else {
            return Err(KqlError::semantic(
                q.lets.last().map(|l| l.pos).unwrap_or_default(),
                "the query has no tabular expression to return",
            ));
        };
        let df = self.pipeline(body)?;
        without_hidden(df, body.pos)
    }

    fn names_tabular(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => self.bindings.contains_key(n) || self.tables.contains_key(n),
            ExprKind::Call(n, args) => {
                args.is_empty() && matches!(self.bindings.get(n), Some(Binding::Lambda(_)))
            }
            _ => false,
        }
    }

    fn scope<'s>(&'s self, schema: &'s datafusion::common::DFSchema) -> Scope<'s> {
        Scope {
            schema,
            scalars: &self.scalars,
            functions: &self.functions,
            now: self.now,
        }
    }

    fn fold(
        &self,
        e: DfExpr,
        schema: &datafusion::common::DFSchema,
        pos: Pos,
    ) -> Result<DfExpr, KqlError> {
        let sctx = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .build();
        ExprSimplifier::new(sctx).simplify(e).map_err(df_err(pos))
    }

    /// A constant expression's value (datatable cells, range bounds, take).
    fn constant(&self, e: &Expr) -> Result<ScalarValue, KqlError> {
        let empty = datafusion::common::DFSchema::empty();
        let planned = self.scope(&empty).plan(e)?;
        match self.fold(planned, &empty, e.pos)? {
            DfExpr::Literal(v, _) => Ok(v),
            _ => Err(KqlError::semantic(e.pos, "expected a constant")),
        }
    }

    fn pipeline(&mut self, p: &Pipeline) -> Result<DataFrame, KqlError> {
        let mut df = self.source(&p.source, p.pos)?;
        for op in &p.ops {
            df = self.operator(df, op)?;
        }
        Ok(df)
    }

    fn source(&mut self, s: &Source, pos: Pos) -> Result<DataFrame, KqlError> {
        match s {
            Source::Expr(e) => match &e.kind {
                ExprKind::Ident(n) => self.named(n, e.pos),
                ExprKind::Call(n, args)
                    if args.is_empty()
                        && matches!(self.bindings.get(n), Some(Binding::Lambda(_))) =>
                {
                    let Some(Binding::Lambda(p)) = self.bindings.get(n) else {
                        return Err(KqlError::semantic(e.pos, "not a function"));
                    };
                    let p = p.clone();
                    self.pipeline(&p)
                }
                ExprKind::Call(n, _) => Err(KqlError::unsupported("tabular function", n, e.pos)),
                _ => Err(KqlError::semantic(e.pos, "expected a table")),
            },
            Source::Paren(p) => self.pipeline(p),
            Source::Print(items) => {
                let df = self.ctx.read_empty().map_err(df_err(pos))?;
                let schema = df.schema().clone();
                let mut exprs = Vec::new();
                for (i, a) in items.iter().enumerate() {
                    let e = self.scope(&schema).plan(&a.expr)?;
                    let name = a.name.clone().unwrap_or_else(|| format!("print_{i}"));
                    exprs.push(e.alias(name));
                }
                df.select(exprs).map_err(df_err(pos))
            }
            Source::Datatable { columns, values } => self.datatable(columns, values, pos),
            Source::Range {
                column,
                from,
                to,
                step,
            } => self.range(column, from, to, step, pos),
            Source::Union(u) => self.union(None, u, pos),
        }
    }

    fn named(&mut self, n: &str, pos: Pos) -> Result<DataFrame, KqlError> {
        match self.bindings.get(n) {
            Some(Binding::Frame(df)) => return Ok(df.clone()),
            Some(Binding::Tabular(p)) => {
                let p = p.clone();
                return self.pipeline(&p);
            }
            Some(Binding::Lambda(p)) => {
                let p = p.clone();
                return self.pipeline(&p);
            }
            None => {}
        }
        if let Some(df) = self.tables.get(n) {
            return Ok(df.clone());
        }
        Err(KqlError::semantic(pos, format!("unknown table `{n}`")))
    }

    fn datatable(
        &mut self,
        columns: &[(String, String)],
        values: &[Expr],
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        if columns.is_empty() || !values.len().is_multiple_of(columns.len()) {
            return Err(KqlError::semantic(
                pos,
                format!(
                    "datatable has {} values for {} columns",
                    values.len(),
                    columns.len()
                ),
            ));
        }
        let mut types = Vec::new();
        for (_, t) in columns {
            types.push(kusto_type(t, pos)?);
        }
        let mut cells: Vec<Vec<ScalarValue>> = vec![Vec::new(); columns.len()];
        for (i, v) in values.iter().enumerate() {
            let c = i % columns.len();
            let raw = self.constant(v)?;
            let t = &types[c];
            let value = if t == &DYNAMIC && !matches!(raw, ScalarValue::LargeUtf8(_)) {
                let arr = raw.to_array().map_err(df_err(v.pos))?;
                dynamic_of(&arr)
            } else if raw.is_null() {
                ScalarValue::try_from(t).map_err(df_err(v.pos))?
            } else {
                raw.cast_to(t).map_err(|_| {
                    KqlError::semantic(
                        v.pos,
                        format!("datatable value does not fit column type {t}"),
                    )
                })?
            };
            cells[c].push(value);
        }
        let fields: Vec<Field> = columns
            .iter()
            .zip(&types)
            .map(|((n, _), t)| Field::new(n, t.clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let arrays: Vec<ArrayRef> = cells
            .into_iter()
            .zip(&types)
            .map(|(col, t)| {
                if col.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(t))
                } else {
                    ScalarValue::iter_to_array(col)
                }
            })
            .collect::<Result<_, _>>()
            .map_err(df_err(pos))?;
        let batch = RecordBatch::try_new(schema, arrays)
            .map_err(|e| KqlError::semantic(pos, e.to_string()))?;
        self.ctx.read_batch(batch).map_err(df_err(pos))
    }

    fn range(
        &mut self,
        name: &str,
        from: &Expr,
        to: &Expr,
        step: &Expr,
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        const MAX_ROWS: usize = 10_000_000;
        let (a, b, s) = (
            self.constant(from)?,
            self.constant(to)?,
            self.constant(step)?,
        );
        let too_many = || KqlError::semantic(pos, format!("range makes more than {MAX_ROWS} rows"));
        // Datetime bounds in nanoseconds, whatever unit they came in.
        let (a, b, s) = if matches!(a.data_type(), DataType::Timestamp(..)) {
            let ns = udf::datetime_type();
            (
                a.cast_to(&ns).map_err(df_err(pos))?,
                b.cast_to(&ns).map_err(df_err(pos))?,
                s.cast_to(&udf::TIMESPAN).map_err(df_err(pos))?,
            )
        } else {
            (a, b, s)
        };
        let array: ArrayRef = match (&a, &b, &s) {
            (
                ScalarValue::TimestampNanosecond(Some(x), _),
                ScalarValue::TimestampNanosecond(Some(y), _),
                ScalarValue::DurationNanosecond(Some(st)),
            ) => {
                if *st <= 0 && x < y {
                    return Err(KqlError::semantic(
                        pos,
                        "range step must move towards the end",
                    ));
                }
                let mut v = Vec::new();
                let mut t = *x;
                while (*st > 0 && t <= *y) || (*st < 0 && t >= *y) {
                    v.push(t);
                    t += st;
                    if v.len() > MAX_ROWS {
                        return Err(too_many());
                    }
                }
                let arr: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(v));
                datafusion::arrow::compute::cast(
                    &arr,
                    &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
                )
                .and_then(|a| datafusion::arrow::compute::cast(&a, &udf::datetime_type()))
                .map_err(|e| KqlError::semantic(pos, e.to_string()))?
            }
            (
                ScalarValue::Int64(Some(x)),
                ScalarValue::Int64(Some(y)),
                ScalarValue::Int64(Some(st)),
            ) => {
                if *st == 0 {
                    return Err(KqlError::semantic(pos, "range step is 0"));
                }
                let mut v = Vec::new();
                let mut t = *x;
                while (*st > 0 && t <= *y) || (*st < 0 && t >= *y) {
                    v.push(t);
                    t += st;
                    if v.len() > MAX_ROWS {
                        return Err(too_many());
                    }
                }
                Arc::new(datafusion::arrow::array::Int64Array::from(v))
            }
            _ => {
                let num = |v: &ScalarValue| -> Option<f64> {
                    match v.cast_to(&DataType::Float64).ok()? {
                        ScalarValue::Float64(f) => f,
                        _ => None,
                    }
                };
                let (Some(x), Some(y), Some(st)) = (num(&a), num(&b), num(&s)) else {
                    return Err(KqlError::semantic(
                        pos,
                        "range bounds and step must be numbers, or datetimes and a timespan",
                    ));
                };
                if st == 0.0 {
                    return Err(KqlError::semantic(pos, "range step is 0"));
                }
                let mut v = Vec::new();
                let mut k = 0.0;
                loop {
                    let t = x + k * st;
                    if (st > 0.0 && t > y + 1e-12) || (st < 0.0 && t < y - 1e-12) {
                        break;
                    }
                    v.push(t);
                    k += 1.0;
                    if v.len() > MAX_ROWS {
                        return Err(too_many());
                    }
                }
                Arc::new(datafusion::arrow::array::Float64Array::from(v))
            }
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            name,
            array.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![array])
            .map_err(|e| KqlError::semantic(pos, e.to_string()))?;
        self.ctx.read_batch(batch).map_err(df_err(pos))
    }

    fn union(
        &mut self,
        first: Option<DataFrame>,
        u: &Union,
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        let mut frames = Vec::new();
        if let Some(f) = first {
            frames.push(("".to_string(), f));
        }
        for t in &u.tables {
            // A table's name, or the name its last `as` gave it.
            let name = match (&t.source, t.ops.last().map(|o| &o.kind)) {
                (_, Some(OpKind::As(n))) => n.clone(),
                (
                    Source::Expr(Expr {
                        kind: ExprKind::Ident(n),
                        ..
                    }),
                    None,
                ) => n.clone(),
                _ => format!("union_arg{}", frames.len()),
            };
            frames.push((name, self.pipeline(t)?));
        }
        // A union's column is no longer one view's own: the typed columns
        // behind its body go (and the bodies are read as they are).
        frames = frames
            .into_iter()
            .map(|(n, f)| without_hidden(f, pos).map(|f| (n, f)))
            .collect::<Result<_, _>>()?;
        if let Some(ws) = &u.with_source {
            frames = frames
                .into_iter()
                .map(|(n, f)| {
                    let mut cols = vec![lit(n.clone()).alias(ws)];
                    cols.extend(plain_columns(&f));
                    f.select(cols).map(|f| (n, f)).map_err(df_err(pos))
                })
                .collect::<Result<_, _>>()?;
        }
        if u.kind_inner {
            let common: Vec<String> = frames[0]
                .1
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| {
                    frames
                        .iter()
                        .all(|(_, f)| f.schema().has_column_with_unqualified_name(n))
                })
                .collect();
            frames = frames
                .into_iter()
                .map(|(n, f)| {
                    f.select(common.iter().map(|c| column(c)).collect::<Vec<_>>())
                        .map(|f| (n, f))
                        .map_err(df_err(pos))
                })
                .collect::<Result<_, _>>()?;
        }
        let mut it = frames.into_iter();
        let Some((_, mut acc)) = it.next() else {
            return Err(KqlError::semantic(pos, "union of nothing"));
        };
        for (_, f) in it {
            acc = acc.union_by_name(f).map_err(df_err(pos))?;
        }
        Ok(acc)
    }

    fn operator(&mut self, df: DataFrame, op: &Op) -> Result<DataFrame, KqlError> {
        let pos = op.pos;
        let err = df_err(pos);
        match &op.kind {
            OpKind::Where(e) => {
                let schema = df.schema().clone();
                let p = self.scope(&schema).plan(e)?;
                df.filter(p).map_err(err)
            }
            OpKind::Extend(assigns) | OpKind::Serialize(assigns) => {
                let mut df = df;
                let mut n = 0;
                for a in assigns {
                    let schema = df.schema().clone();
                    let e = self.scope(&schema).plan(&a.expr)?;
                    let name = match &a.name {
                        Some(n) => n.clone(),
                        None => match default_name(&a.expr) {
                            Some(n) => n,
                            None => {
                                n += 1;
                                format!("Column{n}")
                            }
                        },
                    };
                    df = df.with_column(&name, e).map_err(df_err(a.pos))?;
                }
                Ok(df)
            }
            OpKind::Project(assigns) => {
                let schema = df.schema().clone();
                let mut exprs = Vec::new();
                let mut n = 0;
                let mut windows = false;
                for a in assigns {
                    let e = self.scope(&schema).plan(&a.expr)?;
                    windows |= matches!(a.expr.kind, ExprKind::Call(ref f, _) if f == "row_number");
                    let name = match &a.name {
                        Some(n) => n.clone(),
                        None => match default_name(&a.expr) {
                            Some(n) => n,
                            None => {
                                n += 1;
                                format!("Column{n}")
                            }
                        },
                    };
                    exprs.push(e.alias(name));
                }
                let _ = windows;
                df.select(exprs).map_err(err)
            }
            OpKind::ProjectAway(names) => {
                let keep: Vec<DfExpr> = columns_of(&df)
                    .into_iter()
                    .filter(|c| !names.iter().any(|p| wildcard(p, c)))
                    .map(|c| column(&c))
                    .collect();
                for p in names {
                    if !p.contains('*') && !df.schema().has_column_with_unqualified_name(p) {
                        return Err(KqlError::semantic(pos, format!("unknown column `{p}`")));
                    }
                }
                df.select(keep).map_err(err)
            }
            OpKind::ProjectKeep(_) => Err(KqlError::unsupported("operator", "project-keep", pos)),
            OpKind::ProjectRename(pairs) => {
                for (_, old) in pairs {
                    if !df.schema().has_column_with_unqualified_name(old) {
                        return Err(KqlError::semantic(pos, format!("unknown column `{old}`")));
                    }
                }
                let exprs: Vec<_> = columns_of(&df)
                    .into_iter()
                    .map(|c| match pairs.iter().find(|(_, old)| *old == c) {
                        Some((new, _)) => column(&c).alias(new),
                        None => column(&c),
                    })
                    .collect();
                df.select(exprs).map_err(err)
            }
            OpKind::ProjectReorder(cols) => {
                let all = columns_of(&df);
                let mut first: Vec<String> = Vec::new();
                for (p, dir) in cols {
                    let mut matched: Vec<String> = all
                        .iter()
                        .filter(|c| wildcard(p, c) && !first.contains(c))
                        .cloned()
                        .collect();
                    match dir {
                        Some(true) => matched.sort(),
                        Some(false) => {
                            matched.sort();
                            matched.reverse()
                        }
                        None => {}
                    }
                    first.extend(matched);
                }
                let rest = all.into_iter().filter(|c| !first.contains(c));
                let order: Vec<_> = first
                    .clone()
                    .into_iter()
                    .chain(rest)
                    .map(|c| column(&c))
                    .collect();
                df.select(order).map_err(err)
            }
            OpKind::Summarize { aggs, by } => self.summarize(df, aggs, by, pos),
            OpKind::Sort(keys) => {
                let schema = df.schema().clone();
                let sorts = keys
                    .iter()
                    .map(|k| self.sort_expr(k, &schema))
                    .collect::<Result<Vec<_>, _>>()?;
                df.sort(sorts).map_err(err)
            }
            OpKind::Top { n, key } => {
                let schema = df.schema().clone();
                let s = self.sort_expr(key, &schema)?;
                let n = self.count_arg(n)?;
                df.sort(vec![s])
                    .and_then(|d| d.limit(0, Some(n)))
                    .map_err(err)
            }
            OpKind::Take(n) => {
                let n = self.count_arg(n)?;
                df.limit(0, Some(n)).map_err(err)
            }
            OpKind::Count => df
                .aggregate(vec![], vec![agg::count(lit(1i64)).alias("Count")])
                .map_err(err),
            OpKind::Distinct(cols) => {
                if cols.is_empty() {
                    return df.distinct().map_err(err);
                }
                for c in cols {
                    if !df.schema().has_column_with_unqualified_name(c) {
                        return Err(KqlError::semantic(pos, format!("unknown column `{c}`")));
                    }
                }
                df.aggregate(cols.iter().map(|c| column(c)).collect(), vec![])
                    .map_err(err)
            }
            OpKind::Join { kind, right, on } => {
                let r = self.pipeline(right)?;
                self.join(df, r, *kind, on, pos)
            }
            OpKind::MvExpand {
                bag_array,
                columns,
                item_index,
                limit,
            } => {
                if limit.is_some() {
                    return Err(KqlError::unsupported("mv-expand parameter", "limit", pos));
                }
                self.mv_expand(df, columns, *bag_array, item_index.as_deref(), pos)
            }
            OpKind::Union(u) => self.union(Some(df), u, pos),
            OpKind::As(name) => {
                self.bindings
                    .insert(name.clone(), Binding::Frame(df.clone()));
                Ok(df)
            }
            OpKind::Parse { expr, parts, regex } => self.parse_op(df, expr, parts, *regex, pos),
            OpKind::Render(kind) => {
                const KINDS: &[&str] = &[
                    "timechart",
                    "columnchart",
                    "barchart",
                    "piechart",
                    "linechart",
                    "areachart",
                    "table",
                    "scatterchart",
                ];
                if !KINDS.contains(&kind.as_str()) {
                    return Err(KqlError::unsupported("render kind", kind, pos));
                }
                self.render = Some(Render {
                    kind: kind.clone(),
                    pos,
                });
                Ok(df)
            }
            OpKind::Getschema => Err(KqlError::unsupported("operator", "getschema", pos)),
        }
    }

    fn count_arg(&self, n: &Expr) -> Result<usize, KqlError> {
        match self.constant(n)?.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(v))) if v >= 0 => Ok(v as usize),
            _ => Err(KqlError::semantic(
                n.pos,
                "expected a non-negative row count",
            )),
        }
    }

    fn sort_expr(
        &self,
        k: &SortKey,
        schema: &datafusion::common::DFSchema,
    ) -> Result<SortExpr, KqlError> {
        let mut e = self.scope(schema).plan(&k.expr)?;
        // Dynamic values sort by their text.
        if is_dynamic(&self.scope(schema).ty(&e, k.expr.pos)?) {
            e = call(&udf::TOSTRING, vec![e]);
        }
        // Kusto: ascending puts nulls first, descending last.
        let nulls_first = k.nulls_first.unwrap_or(k.asc);
        Ok(e.sort(k.asc, nulls_first))
    }

    fn summarize(
        &mut self,
        df: DataFrame,
        aggs: &[Assign],
        by: &[Assign],
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        let schema = df.schema().clone();
        let scope = self.scope(&schema);
        let mut group = Vec::new();
        let mut group_names = Vec::new();
        let mut n = 0;
        for b in by {
            let e = scope.plan(&b.expr)?;
            let name = match &b.name {
                Some(n) => n.clone(),
                None => match by_name(&b.expr) {
                    Some(n) => n,
                    None => {
                        n += 1;
                        format!("Column{n}")
                    }
                },
            };
            group_names.push(name.clone());
            group.push(e.alias(name));
        }
        let mut aggregates = Vec::new();
        // Output columns after the group columns: name and expression over
        // the aggregate outputs.
        let mut outputs: Vec<(String, DfExpr)> = Vec::new();
        for a in aggs {
            // arg_max / arg_min / percentiles make several columns.
            if let ExprKind::Call(f, args) = &a.expr.kind
                && matches!(f.as_str(), "arg_max" | "arg_min")
            {
                self.arg_extreme(
                    &scope,
                    f,
                    args,
                    a,
                    &group_names,
                    &mut aggregates,
                    &mut outputs,
                )?;
                continue;
            }
            // take_any(*): any one row's values of every other column.
            if let ExprKind::Call(f, args) = &a.expr.kind
                && matches!(f.as_str(), "take_any" | "any")
                && matches!(
                    args.as_slice(),
                    [Expr {
                        kind: ExprKind::Star,
                        ..
                    }]
                )
            {
                for c in schema.fields().iter().map(|f| f.name().clone()) {
                    if group_names.contains(&c) {
                        continue;
                    }
                    let alias = format!("__a{}", aggregates.len());
                    aggregates.push(agg::first_value(column(&c), vec![]).alias(&alias));
                    outputs.push((c, column(&alias)));
                }
                continue;
            }
            if let ExprKind::Call(f, args) = &a.expr.kind
                && f == "percentiles"
            {
                if args.len() < 2 {
                    return Err(KqlError::semantic(a.pos, "percentiles(x, p1, ...)"));
                }
                let x = scope.plan(&args[0])?;
                let base = arg_name(&args[0]).unwrap_or_default();
                for p in &args[1..] {
                    let pv = self.constant(p)?;
                    let label = pv.to_string().replace('.', "_");
                    let e = self.percentile(&scope, x.clone(), lit(pv), &args[0], a.pos)?;
                    let alias = format!("__a{}", aggregates.len());
                    aggregates.push(e.alias(&alias));
                    outputs.push((format!("percentile_{base}_{label}"), column(&alias)));
                }
                continue;
            }
            let mut counter = aggregates.len();
            let e = self.agg_expr(&scope, &a.expr, &mut aggregates, &mut counter)?;
            let name = match &a.name {
                Some(n) => n.clone(),
                None => agg_default_name(&a.expr).unwrap_or_else(|| {
                    n += 1;
                    format!("Column{n}")
                }),
            };
            outputs.push((name, e));
        }
        let out = df.aggregate(group, aggregates).map_err(df_err(pos))?;
        let mut select: Vec<DfExpr> = group_names.iter().map(|g| column(g)).collect();
        let mut seen: HashSet<String> = group_names.iter().cloned().collect();
        for (name, e) in outputs {
            let mut name = name;
            let mut k = 1;
            while seen.contains(&name) {
                name = format!("{name}{k}");
                k += 1;
            }
            seen.insert(name.clone());
            select.push(e.alias(name));
        }
        out.select(select).map_err(df_err(pos))
    }

    /// An expression over aggregates: each aggregate call becomes an output
    /// of the aggregation, referred to by a generated name.
    fn agg_expr(
        &self,
        scope: &Scope<'_>,
        e: &Expr,
        aggregates: &mut Vec<DfExpr>,
        counter: &mut usize,
    ) -> Result<DfExpr, KqlError> {
        match &e.kind {
            ExprKind::Call(f, args) if AGGREGATES.contains(&f.as_str()) => {
                let a = self.aggregate(scope, f, args, e.pos)?;
                let alias = format!("__a{}", aggregates.len());
                *counter += 1;
                aggregates.push(a.alias(&alias));
                Ok(column(&alias))
            }
            ExprKind::Lit(_) => scope.plan(e),
            _ => {
                // Rebuild the expression with aggregates replaced: plan it in
                // a scope whose schema holds the aggregate outputs.
                let mut replaced = e.clone();
                let mut names = Vec::new();
                self.replace_aggs(scope, &mut replaced, aggregates, &mut names)?;
                if names.is_empty() {
                    return Err(KqlError::semantic(
                        e.pos,
                        "summarize needs an aggregate function here (count(), sum(), ...)",
                    ));
                }
                let fields: Vec<Field> = names
                    .iter()
                    .map(|(n, t)| Field::new(n, t.clone(), true))
                    .collect();
                let s = datafusion::common::DFSchema::try_from(Schema::new(fields))
                    .map_err(df_err(e.pos))?;
                Scope {
                    schema: &s,
                    scalars: scope.scalars,
                    functions: scope.functions,
                    now: scope.now,
                }
                .plan(&replaced)
            }
        }
    }

    fn replace_aggs(
        &self,
        scope: &Scope<'_>,
        e: &mut Expr,
        aggregates: &mut Vec<DfExpr>,
        names: &mut Vec<(String, DataType)>,
    ) -> Result<(), KqlError> {
        if let ExprKind::Call(f, _) = &e.kind
            && crate::scalar::UNSUPPORTED_AGGREGATES.contains(&f.as_str())
        {
            return Err(KqlError::unsupported("aggregate", f, e.pos));
        }
        if let ExprKind::Call(f, args) = &e.kind
            && AGGREGATES.contains(&f.as_str())
        {
            let a = self.aggregate(scope, f, args, e.pos)?;
            let t = scope.ty(&a, e.pos)?;
            let alias = format!("__a{}", aggregates.len());
            aggregates.push(a.alias(&alias));
            names.push((alias.clone(), t));
            e.kind = ExprKind::Ident(alias);
            return Ok(());
        }
        match &mut e.kind {
            ExprKind::Binary(_, l, r) | ExprKind::Str(_, l, r) | ExprKind::Index(l, r) => {
                self.replace_aggs(scope, l, aggregates, names)?;
                self.replace_aggs(scope, r, aggregates, names)?;
            }
            ExprKind::Not(x) | ExprKind::Neg(x) | ExprKind::Member(x, _) => {
                self.replace_aggs(scope, x, aggregates, names)?
            }
            ExprKind::Call(_, args) => {
                for a in args {
                    self.replace_aggs(scope, a, aggregates, names)?;
                }
            }
            ExprKind::Ident(n) if !scope.scalars.contains_key(n) => {
                return Err(KqlError::semantic(
                    e.pos,
                    format!("`{n}` must be inside an aggregate or in `by`"),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn aggregate(
        &self,
        scope: &Scope<'_>,
        f: &str,
        args: &[Expr],
        pos: Pos,
    ) -> Result<DfExpr, KqlError> {
        let arg = |i: usize| -> Result<DfExpr, KqlError> {
            let a = args.get(i).ok_or_else(|| {
                KqlError::semantic(pos, format!("{f}() needs argument {}", i + 1))
            })?;
            scope.plan(a)
        };
        // Numbers from dynamic values (sum(todecimal(x)) is already typed).
        let num = |e: DfExpr| -> Result<DfExpr, KqlError> {
            if is_dynamic(&scope.ty(&e, pos)?) {
                Ok(call(&udf::TOREAL, vec![e]))
            } else {
                Ok(e)
            }
        };
        let build = |b: Result<DfExpr, datafusion::error::DataFusionError>| b.map_err(df_err(pos));
        Ok(match f {
            "count" => {
                if args.is_empty() || matches!(args[0].kind, ExprKind::Star) {
                    agg::count(lit(1i64))
                } else {
                    agg::count(arg(0)?)
                }
            }
            "countif" => {
                let p = arg(0)?;
                datafusion::functions::expr_fn::coalesce(vec![
                    agg::sum(
                        datafusion::logical_expr::when(p, lit(1i64))
                            .otherwise(lit(0i64))
                            .map_err(df_err(pos))?,
                    ),
                    lit(0i64),
                ])
            }
            "sum" => agg::sum(num(arg(0)?)?),
            "sumif" => {
                let x = num(arg(0)?)?;
                let p = arg(1)?;
                agg::sum(
                    datafusion::logical_expr::when(p, x)
                        .end()
                        .map_err(df_err(pos))?,
                )
            }
            "avg" => agg::avg(num(arg(0)?)?),
            "avgif" => {
                let x = num(arg(0)?)?;
                let p = arg(1)?;
                agg::avg(
                    datafusion::logical_expr::when(p, x)
                        .end()
                        .map_err(df_err(pos))?,
                )
            }
            "min" | "max" | "minif" | "maxif" => {
                let mut x = arg(0)?;
                if is_dynamic(&scope.ty(&x, pos)?) {
                    x = call(&udf::TOREAL, vec![x]);
                }
                if f.ends_with("if") {
                    x = datafusion::logical_expr::when(arg(1)?, x)
                        .end()
                        .map_err(df_err(pos))?;
                }
                if f.starts_with("min") {
                    agg::min(x)
                } else {
                    agg::max(x)
                }
            }
            "dcount" => agg::count_distinct(arg(0)?),
            "dcountif" => {
                let x = arg(0)?;
                agg::count_distinct(
                    datafusion::logical_expr::when(arg(1)?, x)
                        .end()
                        .map_err(df_err(pos))?,
                )
            }
            "make_list" | "make_set" => {
                let x = arg(0)?;
                let base = agg::array_agg(x.clone()).filter(x.is_not_null());
                let a = if f == "make_set" {
                    base.distinct().build()
                } else {
                    base.build()
                };
                call(&udf::LIST_TO_DYNAMIC, vec![build(a)?])
            }
            "take_any" | "any" => agg::first_value(arg(0)?, vec![]),
            "percentile" => {
                let x = arg(0)?;
                let p = arg(1)?;
                return self.percentile(scope, x, p, &args[0], pos);
            }
            "stdev" => agg::stddev(num(arg(0)?)?),
            "variance" => agg::var_sample(num(arg(0)?)?),
            other => return Err(KqlError::unsupported("aggregate", other, pos)),
        })
    }

    fn percentile(
        &self,
        scope: &Scope<'_>,
        x: DfExpr,
        p: DfExpr,
        arg: &Expr,
        pos: Pos,
    ) -> Result<DfExpr, KqlError> {
        let t = scope.ty(&x, arg.pos)?;
        let list = agg::array_agg(x.clone())
            .filter(x.is_not_null())
            .build()
            .map_err(df_err(pos))?;
        let v = call(&udf::PERCENTILE, vec![list, p]);
        Ok(if is_int(&t) {
            cast(v, DataType::Int64)
        } else {
            v
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn arg_extreme(
        &self,
        scope: &Scope<'_>,
        f: &str,
        args: &[Expr],
        a: &Assign,
        group_names: &[String],
        aggregates: &mut Vec<DfExpr>,
        outputs: &mut Vec<(String, DfExpr)>,
    ) -> Result<(), KqlError> {
        let Some(first) = args.first() else {
            return Err(KqlError::semantic(a.pos, format!("{f}(expr, columns...)")));
        };
        let key = scope.plan(first)?;
        let desc = f == "arg_max";
        // The row with the extreme key: first_value ordered by the key, nulls last.
        let order = vec![key.clone().sort(!desc, false)];
        let key_name = a
            .name
            .clone()
            .or_else(|| arg_name(first))
            .unwrap_or_else(|| format!("{}_", if desc { "max" } else { "min" }));
        let push = |e: DfExpr, aggregates: &mut Vec<DfExpr>| {
            let alias = format!("__a{}", aggregates.len());
            aggregates.push(e.alias(&alias));
            column(&alias)
        };
        let k = if desc {
            agg::max(key.clone())
        } else {
            agg::min(key.clone())
        };
        let kc = push(k, aggregates);
        outputs.push((key_name.clone(), kc));
        let mut cols: Vec<String> = Vec::new();
        for extra in &args[1..] {
            match &extra.kind {
                ExprKind::Star => {
                    for c in scope.schema.fields().iter().map(|f| f.name().clone()) {
                        if c != key_name && !group_names.contains(&c) && !cols.contains(&c) {
                            cols.push(c);
                        }
                    }
                }
                ExprKind::Ident(n) => cols.push(n.clone()),
                _ => {
                    return Err(KqlError::unsupported(
                        "arg_max/arg_min argument",
                        "expression",
                        extra.pos,
                    ));
                }
            }
        }
        for c in cols {
            if c == key_name && matches!(first.kind, ExprKind::Ident(_)) {
                continue;
            }
            let fv = agg::first_value(column(&c), order.clone());
            let e = push(fv, aggregates);
            outputs.push((c, e));
        }
        Ok(())
    }

    fn join(
        &mut self,
        left: DataFrame,
        right: DataFrame,
        kind: JoinKind,
        on: &[JoinKey],
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        let err = df_err(pos);
        let keys: Vec<(String, String)> = on
            .iter()
            .map(|k| match k {
                JoinKey::Same(n) => (n.clone(), n.clone()),
                JoinKey::Pair(a, b) => (a.clone(), b.clone()),
            })
            .collect();
        for (l, r) in &keys {
            if !left.schema().has_column_with_unqualified_name(l) {
                return Err(KqlError::semantic(
                    pos,
                    format!("join key `{l}` is not a column of the left side"),
                ));
            }
            if !right.schema().has_column_with_unqualified_name(r) {
                return Err(KqlError::semantic(
                    pos,
                    format!("join key `{r}` is not a column of the right side"),
                ));
            }
        }
        let mut left = left;
        if kind == JoinKind::InnerUnique {
            // One left row per key (Kusto's default join).
            let rn = "__kql_rn";
            let partition: Vec<_> = keys.iter().map(|(l, _)| column(l)).collect();
            let w = datafusion::functions_window::expr_fn::row_number()
                .partition_by(partition)
                .build()
                .map_err(df_err(pos))?;
            let cols = columns_of(&left);
            left = left
                .with_column(rn, w)
                .and_then(|d| d.filter(column(rn).eq(lit(1u64))))
                .and_then(|d| d.select(cols.iter().map(|c| column(c)).collect::<Vec<_>>()))
                .map_err(df_err(pos))?;
        }
        let (lq, rq) = ("__kql_left", "__kql_right");
        let left_cols = columns_of(&left);
        let right_cols = columns_of(&right);
        let l = left
            .select(left_cols.iter().map(|c| column(c)).collect::<Vec<_>>())
            .and_then(|d| d.alias(lq))
            .map_err(df_err(pos))?;
        let r = right
            .select(right_cols.iter().map(|c| column(c)).collect::<Vec<_>>())
            .and_then(|d| d.alias(rq))
            .map_err(df_err(pos))?;
        let jt = match kind {
            JoinKind::InnerUnique | JoinKind::Inner => JoinType::Inner,
            JoinKind::LeftOuter => JoinType::Left,
            JoinKind::RightOuter => JoinType::Right,
            JoinKind::FullOuter => JoinType::Full,
            JoinKind::LeftAnti => JoinType::LeftAnti,
            JoinKind::RightAnti => JoinType::RightAnti,
            JoinKind::LeftSemi => JoinType::LeftSemi,
            JoinKind::RightSemi => JoinType::RightSemi,
        };
        let q = |t: &str, c: &str| DfExpr::Column(Column::new(Some(t), c));
        let on_exprs: Vec<_> = keys.iter().map(|(a, b)| q(lq, a).eq(q(rq, b))).collect();
        let joined = l.join_on(r, jt, on_exprs).map_err(df_err(pos))?;
        let mut select = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let with_left = !matches!(kind, JoinKind::RightAnti | JoinKind::RightSemi);
        let with_right = !matches!(kind, JoinKind::LeftAnti | JoinKind::LeftSemi);
        if with_left {
            for c in &left_cols {
                seen.insert(c.clone());
                select.push(q(lq, c).alias(c));
            }
        }
        if with_right {
            for c in &right_cols {
                let mut name = c.clone();
                let mut k = 1;
                while seen.contains(&name) {
                    name = format!("{c}{k}");
                    k += 1;
                }
                seen.insert(name.clone());
                select.push(q(rq, c).alias(name));
            }
        }
        joined.select(select).map_err(err)
    }

    fn mv_expand(
        &mut self,
        df: DataFrame,
        columns: &[MvColumn],
        bag_array: bool,
        item_index: Option<&str>,
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        let schema = df.schema().clone();
        let scope = self.scope(&schema);
        let mut df = df;
        let mut names = Vec::new();
        for c in columns {
            let e = scope.plan(&c.expr)?;
            let name = match (&c.name, &c.expr.kind) {
                (Some(n), _) => n.clone(),
                (None, ExprKind::Ident(n)) => n.clone(),
                (None, _) => default_name(&c.expr).unwrap_or_else(|| "Column1".into()),
            };
            let t = scope.ty(&e, c.expr.pos)?;
            let d = if is_dynamic(&t) {
                e
            } else {
                call(&udf::PARSE_JSON, vec![e])
            };
            if let (Some(ix), true) = (item_index, names.is_empty()) {
                // The positions, unnested alongside the items.
                df = df
                    .with_column(
                        ix,
                        call(&udf::EXPAND_INDEX, vec![d.clone(), lit(bag_array)]),
                    )
                    .map_err(df_err(pos))?;
            }
            df = df
                .with_column(&name, call(&udf::EXPAND, vec![d, lit(bag_array)]))
                .map_err(df_err(pos))?;
            names.push((name, c.to_type.clone(), c.expr.pos));
        }
        let mut unnest_names: Vec<String> = names.iter().map(|(n, _, _)| n.clone()).collect();
        if let Some(ix) = item_index {
            unnest_names.push(ix.to_string());
        }
        // By Column, not by name text: names are case-sensitive.
        let cols: Vec<Column> = unnest_names.iter().map(Column::new_unqualified).collect();
        let (state, plan) = df.into_parts();
        let plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan)
            .unnest_columns_with_options(cols, UnnestOptions::new().with_preserve_nulls(true))
            .and_then(|b| b.build())
            .map_err(df_err(pos))?;
        df = DataFrame::new(state, plan);
        for (n, t, p) in names {
            if let Some(t) = t {
                let target = kusto_type(&t, p)?;
                let schema = df.schema().clone();
                let e = self.scope(&schema).convert(column(&n), &target, p)?;
                df = df.with_column(&n, e).map_err(df_err(p))?;
            }
        }
        Ok(df)
    }

    fn parse_op(
        &mut self,
        df: DataFrame,
        expr: &Expr,
        parts: &[ParsePart],
        regex_mode: bool,
        pos: Pos,
    ) -> Result<DataFrame, KqlError> {
        let schema = df.schema().clone();
        let scope = self.scope(&schema);
        let source = scope.plan(expr)?;
        let text = scope.string(source, expr.pos)?;
        let mut re = String::from(if regex_mode { "(?s)" } else { "(?s)^" });
        let mut cols = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            match p {
                ParsePart::Literal(s) if regex_mode => re.push_str(s),
                ParsePart::Literal(s) => re.push_str(&regex::escape(s)),
                ParsePart::Wildcard => re.push_str(".*?"),
                ParsePart::Column(n, t) => {
                    let ty = t.as_deref().unwrap_or("string");
                    let g = match ty {
                        "int" | "long" => r"(-?\d+)",
                        "real" | "double" | "decimal" => r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)",
                        _ if last || regex_mode => "(.*)",
                        _ => "(.*?)",
                    };
                    re.push_str(g);
                    cols.push((n.clone(), ty.to_string()));
                }
            }
        }
        if matches!(parts.last(), Some(ParsePart::Literal(_))) {
            re.push('$');
        }
        let mut df = df;
        for (k, (n, ty)) in cols.iter().enumerate() {
            let v = call(
                &udf::EXTRACT,
                vec![lit(re.clone()), lit((k + 1) as i64), text.clone()],
            );
            let target = kusto_type(ty, pos)?;
            let schema = df.schema().clone();
            let e = if target == DataType::Utf8 {
                datafusion::functions::expr_fn::coalesce(vec![v, lit("")])
            } else {
                self.scope(&schema).convert(v, &target, pos)?
            };
            df = df.with_column(n, e).map_err(df_err(pos))?;
        }
        Ok(df)
    }
}

fn dynamic_of(arr: &ArrayRef) -> ScalarValue {
    match udf_json(arr) {
        Some(s) => ScalarValue::LargeUtf8(Some(s)),
        None => ScalarValue::LargeUtf8(None),
    }
}

fn udf_json(arr: &ArrayRef) -> Option<String> {
    let out = udf::TODYNAMIC
        .invoke_with_args(datafusion::logical_expr::ScalarFunctionArgs {
            args: vec![datafusion::logical_expr::ColumnarValue::Array(Arc::clone(
                arr,
            ))],
            arg_fields: vec![Arc::new(Field::new("x", arr.data_type().clone(), true))],
            number_rows: arr.len(),
            return_field: Arc::new(Field::new("r", DYNAMIC, true)),
            config_options: Arc::new(Default::default()),
        })
        .ok()?;
    let a = out.to_array(1).ok()?;
    match ScalarValue::try_from_array(&a, 0).ok()? {
        ScalarValue::LargeUtf8(s) => s,
        _ => None,
    }
}

/// The frame without the views' hidden columns (`typed::HIDDEN_PREFIX`).
fn without_hidden(df: DataFrame, pos: Pos) -> Result<DataFrame, KqlError> {
    let cols = columns_of(&df);
    if !cols.iter().any(|c| typed::is_hidden(c)) {
        return Ok(df);
    }
    let keep: Vec<DfExpr> = df
        .schema()
        .iter()
        .filter(|(_, f)| !typed::is_hidden(f.name()))
        .map(|(q, f)| DfExpr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    df.select(keep).map_err(df_err(pos))
}

/// Plain (unqualified) column references of a frame, in order.
fn plain_columns(df: &DataFrame) -> Vec<DfExpr> {
    columns_of(df).iter().map(|c| column(c)).collect()
}

fn columns_of(df: &DataFrame) -> Vec<String> {
    df.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

/// The name Kusto gives an unnamed column: a column keeps its name, `a.b`
/// and `a['b']` become `a_b`.
pub fn default_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Member(x, m) => Some(format!("{}_{m}", default_name(x)?)),
        ExprKind::Index(x, i) => match &i.kind {
            ExprKind::Lit(Lit::Str(s)) => Some(format!("{}_{s}", default_name(x)?)),
            ExprKind::Lit(Lit::Int(v)) => Some(format!("{}_{v}", default_name(x)?)),
            _ => None,
        },
        _ => None,
    }
}

/// A `by` expression's name: columns keep theirs, `bin(col, ...)` is `col`.
fn by_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Call(f, args) if matches!(f.as_str(), "bin" | "floor") => by_name(args.first()?),
        _ => default_name(e),
    }
}

/// The column an aggregate's argument is named after: the first column in it
/// (`sum(todecimal(prompttokens))` → `prompttokens`).
fn arg_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Member(..) | ExprKind::Index(..) => default_name(e),
        ExprKind::Call(_, args) => args.iter().find_map(arg_name),
        ExprKind::Binary(_, l, r) | ExprKind::Str(_, l, r) => arg_name(l).or_else(|| arg_name(r)),
        ExprKind::Not(x) | ExprKind::Neg(x) => arg_name(x),
        _ => None,
    }
}

fn agg_default_name(e: &Expr) -> Option<String> {
    let ExprKind::Call(f, args) = &e.kind else {
        return None;
    };
    let prefix = match f.as_str() {
        "count" => {
            return Some(match args.first().and_then(arg_name) {
                Some(n) => format!("count_{n}"),
                None => "count_".into(),
            });
        }
        "countif" => return Some("countif_".into()),
        "make_list" => "list",
        "make_set" => "set",
        "take_any" | "any" => return args.first().and_then(arg_name).or(Some("any_".into())),
        "percentile" => {
            let base = args.first().and_then(arg_name)?;
            let p = match args.get(1).map(|p| &p.kind) {
                Some(ExprKind::Lit(Lit::Int(v))) => v.to_string(),
                Some(ExprKind::Lit(Lit::Real(v))) => v.to_string().replace('.', "_"),
                _ => return None,
            };
            return Some(format!("percentile_{base}_{p}"));
        }
        other => other,
    };
    Some(match args.first().and_then(arg_name) {
        Some(n) => format!("{prefix}_{n}"),
        None => format!("{prefix}_"),
    })
}
