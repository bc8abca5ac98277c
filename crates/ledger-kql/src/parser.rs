//! Recursive-descent parser from tokens to the syntax tree.

use crate::ast::*;
use crate::error::{KqlError, Pos};
use crate::lexer::{Tok, Token, lex};

pub fn parse(src: &str) -> Result<Query, KqlError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
    };
    p.query()
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

/// Tabular operators known to Kusto but outside the subset: named in errors.
const KNOWN_UNSUPPORTED_OPS: &[&str] = &[
    "mv-apply",
    "make-series",
    "evaluate",
    "facet",
    "fork",
    "invoke",
    "lookup",
    "sample",
    "sample-distinct",
    "scan",
    "search",
    "find",
    "partition",
    "reduce",
    "top-nested",
    "top-hitters",
    "externaldata",
    "materialize",
    "project-keep",
];

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        let j = (self.i + n).min(self.toks.len() - 1);
        &self.toks[j].tok
    }
    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x.eq_ignore_ascii_case(w))
    }
    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_punct(&mut self, p: &str) -> Result<(), KqlError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{p}`")))
        }
    }
    fn expect_word(&mut self, w: &str) -> Result<(), KqlError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{w}`")))
        }
    }
    fn unexpected(&self, wanted: &str) -> KqlError {
        let found = match self.peek() {
            Tok::Eof => "the end of the query".to_string(),
            Tok::Ident(w) | Tok::QuotedIdent(w) => format!("`{w}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Int(v) => format!("`{v}`"),
            Tok::Real(v) => format!("`{v}`"),
            Tok::Timespan(_) => "a timespan".to_string(),
            Tok::Typed(t, raw) => format!("`{t}({raw})`"),
            Tok::Punct(p) => format!("`{p}`"),
        };
        KqlError::syntax(self.pos(), format!("expected {wanted}, found {found}"))
    }
    /// A column or table name (plain or `['quoted']`).
    fn name(&mut self) -> Result<String, KqlError> {
        match self.peek().clone() {
            Tok::Ident(w) if !w.starts_with('!') => {
                self.bump();
                Ok(w)
            }
            Tok::QuotedIdent(w) => {
                self.bump();
                Ok(w)
            }
            // Type names double as column names (`datatable(date:datetime)`).
            Tok::Typed(..) => Err(self.unexpected("a name")),
            _ => Err(self.unexpected("a name")),
        }
    }

    fn query(&mut self) -> Result<Query, KqlError> {
        let mut lets = Vec::new();
        let mut body = None;
        loop {
            while self.eat_punct(";") {}
            if matches!(self.peek(), Tok::Eof) {
                break;
            }
            if self.is_word("let") {
                let pos = self.pos();
                self.bump();
                let name = self.name()?;
                self.expect_punct("=")?;
                // `view () { ... }` is a lambda used by its bare name.
                if self.is_word("view") && matches!(self.peek_at(1), Tok::Punct("(")) {
                    self.bump();
                }
                let value = if self.is_punct("(")
                    && matches!(self.peek_at(1), Tok::Punct(")"))
                    && matches!(self.peek_at(2), Tok::Punct("{"))
                {
                    self.bump();
                    self.bump();
                    self.bump();
                    let p = self.pipeline()?;
                    self.expect_punct("}")?;
                    LetValue::Lambda(p)
                } else if self.is_punct("(")
                    && matches!(self.peek_at(1), Tok::Ident(_))
                    && matches!(self.peek_at(2), Tok::Punct(":"))
                {
                    self.bump();
                    let mut params = Vec::new();
                    loop {
                        params.push(self.name()?);
                        self.expect_punct(":")?;
                        self.type_name()?;
                        if self.is_punct("=") {
                            let p = self.pos();
                            return Err(KqlError::unsupported("parameter default", name, p));
                        }
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                    self.expect_punct(")")?;
                    self.expect_punct("{")?;
                    let body_pos = self.pos();
                    let body = self.pipeline()?;
                    self.expect_punct("}")?;
                    match body.source {
                        Source::Expr(e) if body.ops.is_empty() => {
                            LetValue::Function { params, body: e }
                        }
                        _ => {
                            return Err(KqlError::unsupported(
                                "tabular function with parameters",
                                name,
                                body_pos,
                            ));
                        }
                    }
                } else {
                    LetValue::Pipeline(self.pipeline()?)
                };
                lets.push(Let { name, value, pos });
                continue;
            }
            if self.is_word("set") || self.is_word("declare") || self.is_word("alias") {
                let pos = self.pos();
                return Err(KqlError::unsupported("statement", self.name()?, pos));
            }
            if body.is_some() {
                return Err(self.unexpected("`;` or the end of the query"));
            }
            body = Some(self.pipeline()?);
            if !self.eat_punct(";") && !matches!(self.peek(), Tok::Eof) {
                return Err(self.unexpected("`|`, `;` or the end of the query"));
            }
        }
        Ok(Query { lets, body })
    }

    fn pipeline(&mut self) -> Result<Pipeline, KqlError> {
        let pos = self.pos();
        let source = self.source()?;
        let mut ops = Vec::new();
        while self.eat_punct("|") {
            ops.push(self.operator()?);
        }
        Ok(Pipeline { source, ops, pos })
    }

    fn source(&mut self) -> Result<Source, KqlError> {
        if self.is_word("datatable") && matches!(self.peek_at(1), Tok::Punct("(")) {
            self.bump();
            self.expect_punct("(")?;
            let mut columns = Vec::new();
            loop {
                let n = self.name()?;
                self.expect_punct(":")?;
                let t = self.type_name()?;
                columns.push((n, t));
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(")")?;
            self.expect_punct("[")?;
            let mut values = Vec::new();
            while !self.is_punct("]") {
                values.push(self.expr()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct("]")?;
            return Ok(Source::Datatable { columns, values });
        }
        if self.is_word("range") && matches!(self.peek_at(2), Tok::Ident(w) if w == "from") {
            self.bump();
            let column = self.name()?;
            self.expect_word("from")?;
            let from = self.expr()?;
            self.expect_word("to")?;
            let to = self.expr()?;
            self.expect_word("step")?;
            let step = self.expr()?;
            return Ok(Source::Range {
                column,
                from,
                to,
                step,
            });
        }
        if self.is_word("print") {
            self.bump();
            return Ok(Source::Print(self.assigns()?));
        }
        if self.is_word("union") {
            self.bump();
            return Ok(Source::Union(self.union_args()?));
        }
        if self.is_punct("(") {
            // A parenthesised tabular expression or scalar: parsed as a
            // pipeline, a lone expression stays an expression.
            let save = self.i;
            self.bump();
            if let Ok(p) = self.pipeline()
                && self.eat_punct(")")
            {
                // A parenthesised scalar (or lone name) is an expression:
                // `(a - b) / 1s`.
                if p.ops.is_empty()
                    && let Source::Expr(_) = p.source
                {
                    self.i = save;
                    return Ok(Source::Expr(self.expr()?));
                }
                return Ok(Source::Paren(Box::new(p)));
            }
            self.i = save;
        }
        Ok(Source::Expr(self.expr()?))
    }

    fn type_name(&mut self) -> Result<String, KqlError> {
        let pos = self.pos();
        let t = match self.bump().tok {
            Tok::Ident(w) => w.to_ascii_lowercase(),
            _ => return Err(KqlError::syntax(pos, "expected a type name")),
        };
        const TYPES: &[&str] = &[
            "bool", "boolean", "int", "long", "real", "double", "decimal", "string", "datetime",
            "date", "timespan", "time", "dynamic", "guid",
        ];
        if !TYPES.contains(&t.as_str()) {
            return Err(KqlError::unsupported("type", t, pos));
        }
        Ok(t)
    }

    fn union_args(&mut self) -> Result<Union, KqlError> {
        let mut u = Union {
            kind_inner: false,
            with_source: None,
            tables: Vec::new(),
        };
        loop {
            if self.is_word("kind") && matches!(self.peek_at(1), Tok::Punct("=")) {
                self.bump();
                self.bump();
                let pos = self.pos();
                let k = self.name()?;
                u.kind_inner = match k.as_str() {
                    "inner" => true,
                    "outer" => false,
                    _ => return Err(KqlError::unsupported("union kind", k, pos)),
                };
            } else if self.is_word("withsource") && matches!(self.peek_at(1), Tok::Punct("=")) {
                self.bump();
                self.bump();
                u.with_source = Some(self.name()?);
            } else if self.is_word("isfuzzy") && matches!(self.peek_at(1), Tok::Punct("=")) {
                self.bump();
                self.bump();
                self.bump();
            } else {
                break;
            }
        }
        loop {
            let pos = self.pos();
            if self.eat_punct("(") {
                let p = self.pipeline()?;
                self.expect_punct(")")?;
                u.tables.push(p);
            } else {
                let n = self.name()?;
                u.tables.push(Pipeline {
                    source: Source::Expr(Expr {
                        kind: ExprKind::Ident(n),
                        pos,
                    }),
                    ops: Vec::new(),
                    pos,
                });
            }
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(u)
    }

    fn assigns(&mut self) -> Result<Vec<Assign>, KqlError> {
        let mut out = Vec::new();
        loop {
            out.push(self.assign()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(out)
    }

    fn assign(&mut self) -> Result<Assign, KqlError> {
        let pos = self.pos();
        if matches!(self.peek(), Tok::Ident(_) | Tok::QuotedIdent(_))
            && matches!(self.peek_at(1), Tok::Punct("="))
        {
            let name = self.name()?;
            self.bump();
            let expr = self.expr()?;
            return Ok(Assign {
                name: Some(name),
                expr,
                pos,
            });
        }
        if self.is_punct("(")
            && matches!(self.peek_at(1), Tok::Ident(_))
            && matches!(self.peek_at(2), Tok::Punct(","))
        {
            return Err(KqlError::unsupported("assignment", "(a, b) = ...", pos));
        }
        Ok(Assign {
            name: None,
            expr: self.expr()?,
            pos,
        })
    }

    fn names(&mut self) -> Result<Vec<String>, KqlError> {
        let mut out = Vec::new();
        loop {
            let mut n = self.name()?;
            if self.eat_punct("*") {
                n.push('*');
            }
            out.push(n);
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(out)
    }

    fn sort_keys(&mut self) -> Result<Vec<SortKey>, KqlError> {
        let mut keys = Vec::new();
        loop {
            keys.push(self.sort_key()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(keys)
    }

    fn sort_key(&mut self) -> Result<SortKey, KqlError> {
        let expr = self.expr()?;
        let mut asc = false;
        if self.eat_word("asc") {
            asc = true;
        } else {
            self.eat_word("desc");
        }
        let mut nulls_first = None;
        if self.eat_word("nulls") {
            if self.eat_word("first") {
                nulls_first = Some(true);
            } else {
                self.expect_word("last")?;
                nulls_first = Some(false);
            }
        }
        Ok(SortKey {
            expr,
            asc,
            nulls_first,
        })
    }

    fn operator(&mut self) -> Result<Op, KqlError> {
        let pos = self.pos();
        let word = match self.peek().clone() {
            Tok::Ident(w) => w,
            _ => return Err(self.unexpected("a tabular operator")),
        };
        self.bump();
        let kind = match word.as_str() {
            "where" | "filter" => OpKind::Where(self.expr()?),
            "extend" => OpKind::Extend(self.assigns()?),
            "project" => OpKind::Project(self.assigns()?),
            "project-away" => OpKind::ProjectAway(self.names()?),
            "project-rename" => {
                let mut pairs = Vec::new();
                loop {
                    let new = self.name()?;
                    self.expect_punct("=")?;
                    let old = self.name()?;
                    pairs.push((new, old));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                OpKind::ProjectRename(pairs)
            }
            "project-reorder" => {
                let mut cols = Vec::new();
                loop {
                    let mut n = self.name()?;
                    if self.eat_punct("*") {
                        n.push('*');
                    }
                    let dir = if self.eat_word("asc") {
                        Some(true)
                    } else if self.eat_word("desc") {
                        Some(false)
                    } else {
                        None
                    };
                    cols.push((n, dir));
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                OpKind::ProjectReorder(cols)
            }
            "summarize" => {
                self.hints()?;
                let aggs = if self.is_word("by") {
                    Vec::new()
                } else {
                    self.assigns()?
                };
                let by = if self.eat_word("by") {
                    self.assigns()?
                } else {
                    Vec::new()
                };
                OpKind::Summarize { aggs, by }
            }
            "sort" | "order" => {
                self.expect_word("by")?;
                OpKind::Sort(self.sort_keys()?)
            }
            "top" => {
                let n = self.expr()?;
                self.expect_word("by")?;
                let key = self.sort_key()?;
                OpKind::Top { n, key }
            }
            "take" | "limit" => OpKind::Take(self.expr()?),
            "count" => OpKind::Count,
            "distinct" => {
                if self.eat_punct("*") {
                    OpKind::Distinct(Vec::new())
                } else {
                    OpKind::Distinct(self.names()?)
                }
            }
            "join" => {
                let mut kind = JoinKind::InnerUnique;
                loop {
                    if self.is_word("kind") && matches!(self.peek_at(1), Tok::Punct("=")) {
                        self.bump();
                        self.bump();
                        let kpos = self.pos();
                        let k = self.name()?;
                        kind = match k.as_str() {
                            "innerunique" => JoinKind::InnerUnique,
                            "inner" => JoinKind::Inner,
                            "leftouter" => JoinKind::LeftOuter,
                            "rightouter" => JoinKind::RightOuter,
                            "fullouter" | "outer" => JoinKind::FullOuter,
                            "leftanti" | "anti" | "leftantisemi" => JoinKind::LeftAnti,
                            "rightanti" | "rightantisemi" => JoinKind::RightAnti,
                            "leftsemi" => JoinKind::LeftSemi,
                            "rightsemi" => JoinKind::RightSemi,
                            _ => return Err(KqlError::unsupported("join kind", k, kpos)),
                        };
                    } else if matches!(self.peek(), Tok::Ident(w) if w.starts_with("hint."))
                        || (matches!(self.peek(), Tok::Ident(w) if w == "hint")
                            && matches!(self.peek_at(1), Tok::Punct(".")))
                    {
                        self.hint()?;
                    } else {
                        break;
                    }
                }
                let right = if self.eat_punct("(") {
                    let p = self.pipeline()?;
                    self.expect_punct(")")?;
                    p
                } else {
                    let rpos = self.pos();
                    let n = self.name()?;
                    Pipeline {
                        source: Source::Expr(Expr {
                            kind: ExprKind::Ident(n),
                            pos: rpos,
                        }),
                        ops: Vec::new(),
                        pos: rpos,
                    }
                };
                self.expect_word("on")?;
                let mut on = Vec::new();
                loop {
                    let kpos = self.pos();
                    let e = self.expr()?;
                    on.push(match e.kind {
                        ExprKind::Ident(n) => JoinKey::Same(n),
                        ExprKind::Binary(BinOp::Eq, l, r) => match (l.kind, r.kind) {
                            (ExprKind::Side(true, a), ExprKind::Side(false, b))
                            | (ExprKind::Side(false, b), ExprKind::Side(true, a)) => {
                                JoinKey::Pair(a, b)
                            }
                            _ => {
                                return Err(KqlError::unsupported(
                                    "join condition",
                                    "other than $left.a == $right.b",
                                    kpos,
                                ));
                            }
                        },
                        _ => {
                            return Err(KqlError::unsupported(
                                "join condition",
                                "other than a column or $left.a == $right.b",
                                kpos,
                            ));
                        }
                    });
                    if !self.eat_punct(",") && !self.eat_word("and") {
                        break;
                    }
                }
                OpKind::Join {
                    kind,
                    right: Box::new(right),
                    on,
                }
            }
            "mv-expand" => {
                let mut item_index = None;
                let mut bag_array = false;
                loop {
                    if (self.is_word("bagexpansion") || self.is_word("kind"))
                        && matches!(self.peek_at(1), Tok::Punct("="))
                    {
                        self.bump();
                        self.bump();
                        let p = self.pos();
                        let k = self.name()?;
                        bag_array = match k.as_str() {
                            "array" => true,
                            "bag" => false,
                            _ => return Err(KqlError::unsupported("mv-expand kind", k, p)),
                        };
                        continue;
                    }
                    if self.is_word("with_itemindex") {
                        self.bump();
                        self.expect_punct("=")?;
                        item_index = Some(self.name()?);
                    } else {
                        break;
                    }
                }
                let mut columns = Vec::new();
                loop {
                    let a = self.assign()?;
                    let to_type = if self.eat_word("to") {
                        self.expect_word("typeof")?;
                        self.expect_punct("(")?;
                        let t = self.type_name()?;
                        self.expect_punct(")")?;
                        Some(t)
                    } else {
                        None
                    };
                    columns.push(MvColumn {
                        name: a.name,
                        expr: a.expr,
                        to_type,
                    });
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                let limit = if self.eat_word("limit") {
                    Some(self.expr()?)
                } else {
                    None
                };
                OpKind::MvExpand {
                    bag_array,
                    columns,
                    item_index,
                    limit,
                }
            }
            "union" => OpKind::Union(self.union_args()?),
            "as" => {
                self.hints()?;
                OpKind::As(self.name()?)
            }
            "serialize" => {
                if matches!(
                    self.peek(),
                    Tok::Punct("|") | Tok::Punct(")") | Tok::Punct(";") | Tok::Eof
                ) {
                    OpKind::Serialize(Vec::new())
                } else {
                    OpKind::Serialize(self.assigns()?)
                }
            }
            "parse" => {
                let mut regex = false;
                if self.is_word("kind") && matches!(self.peek_at(1), Tok::Punct("=")) {
                    self.bump();
                    self.bump();
                    let p = self.pos();
                    let k = self.name()?;
                    regex = match k.as_str() {
                        "regex" => true,
                        "simple" => false,
                        _ => return Err(KqlError::unsupported("parse kind", k, p)),
                    };
                    if self.is_word("flags") {
                        let p = self.pos();
                        return Err(KqlError::unsupported("parse parameter", "flags", p));
                    }
                }
                let expr = self.expr()?;
                self.expect_word("with")?;
                let mut parts = Vec::new();
                loop {
                    match self.peek().clone() {
                        Tok::Str(s) => {
                            self.bump();
                            parts.push(ParsePart::Literal(s));
                        }
                        Tok::Punct("*") => {
                            self.bump();
                            parts.push(ParsePart::Wildcard);
                        }
                        Tok::Ident(_) | Tok::QuotedIdent(_) => {
                            let n = self.name()?;
                            let t = if self.eat_punct(":") {
                                Some(self.type_name()?)
                            } else {
                                None
                            };
                            parts.push(ParsePart::Column(n, t));
                        }
                        _ => break,
                    }
                }
                OpKind::Parse { expr, parts, regex }
            }
            "render" => {
                let kind = self.name()?;
                // Render properties (`with (title="...")`) do not change rows.
                if self.eat_word("with") {
                    self.expect_punct("(")?;
                    let mut depth = 1;
                    while depth > 0 {
                        match self.bump().tok {
                            Tok::Punct("(") => depth += 1,
                            Tok::Punct(")") => depth -= 1,
                            Tok::Eof => return Err(self.unexpected("`)`")),
                            _ => {}
                        }
                    }
                }
                OpKind::Render(kind)
            }
            "getschema" => OpKind::Getschema,
            other => {
                if KNOWN_UNSUPPORTED_OPS.contains(&other) {
                    return Err(KqlError::unsupported("operator", other, pos));
                }
                return Err(KqlError::unsupported("operator", other, pos));
            }
        };
        Ok(Op { kind, pos })
    }

    /// `hint.strategy=shuffle` and the like: accepted, they do not change rows.
    fn hints(&mut self) -> Result<(), KqlError> {
        while matches!(self.peek(), Tok::Ident(w) if w == "hint")
            && matches!(self.peek_at(1), Tok::Punct("."))
        {
            self.hint()?;
        }
        Ok(())
    }
    fn hint(&mut self) -> Result<(), KqlError> {
        self.bump();
        if self.eat_punct(".") {
            self.name()?;
        }
        self.expect_punct("=")?;
        self.bump();
        Ok(())
    }

    // ---- scalar expressions, lowest precedence first ----

    pub fn expr(&mut self) -> Result<Expr, KqlError> {
        self.or()
    }

    fn or(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.and()?;
        while self.is_word("or") {
            let pos = self.pos();
            self.bump();
            let r = self.and()?;
            l = bin(BinOp::Or, l, r, pos);
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.comparison()?;
        while self.is_word("and") {
            let pos = self.pos();
            self.bump();
            let r = self.comparison()?;
            l = bin(BinOp::And, l, r, pos);
        }
        Ok(l)
    }

    fn comparison(&mut self) -> Result<Expr, KqlError> {
        let l = self.additive()?;
        let pos = self.pos();
        let op = match self.peek() {
            Tok::Punct("==") => Some(BinOp::Eq),
            Tok::Punct("!=") | Tok::Punct("<>") => Some(BinOp::Ne),
            Tok::Punct("=~") => Some(BinOp::EqCi),
            Tok::Punct("!~") => Some(BinOp::NeCi),
            Tok::Punct("<") => Some(BinOp::Lt),
            Tok::Punct("<=") => Some(BinOp::Le),
            Tok::Punct(">") => Some(BinOp::Gt),
            Tok::Punct(">=") => Some(BinOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let r = self.additive()?;
            return Ok(bin(op, l, r, pos));
        }
        let Tok::Ident(word) = self.peek().clone() else {
            return Ok(l);
        };
        let (negated, base) = match word.strip_prefix('!') {
            Some(b) => (true, b.to_string()),
            None => (false, word.clone()),
        };
        match base.as_str() {
            "in" | "in~" => {
                self.bump();
                self.expect_punct("(")?;
                let mut list = Vec::new();
                while !self.is_punct(")") {
                    list.push(self.expr()?);
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                self.expect_punct(")")?;
                Ok(Expr {
                    kind: ExprKind::In {
                        expr: Box::new(l),
                        list,
                        negated,
                        case_insensitive: base == "in~",
                    },
                    pos,
                })
            }
            "between" => {
                self.bump();
                self.expect_punct("(")?;
                let low = self.additive()?;
                self.expect_punct("..")?;
                let high = self.additive()?;
                self.expect_punct(")")?;
                Ok(Expr {
                    kind: ExprKind::Between {
                        expr: Box::new(l),
                        low: Box::new(low),
                        high: Box::new(high),
                        negated,
                    },
                    pos,
                })
            }
            "matches" => {
                self.bump();
                self.expect_word("regex")?;
                let r = self.additive()?;
                Ok(Expr {
                    kind: ExprKind::Str(
                        StrOp {
                            op: "matches".into(),
                            negated,
                            case_sensitive: true,
                        },
                        Box::new(l),
                        Box::new(r),
                    ),
                    pos,
                })
            }
            _ => {
                let (op, cs) = match base.strip_suffix("_cs") {
                    Some(b) => (b.to_string(), true),
                    None => (base.clone(), false),
                };
                const STR_OPS: &[&str] = &[
                    "has",
                    "contains",
                    "startswith",
                    "endswith",
                    "hasprefix",
                    "hassuffix",
                ];
                if STR_OPS.contains(&op.as_str()) {
                    self.bump();
                    let r = self.additive()?;
                    return Ok(Expr {
                        kind: ExprKind::Str(
                            StrOp {
                                op,
                                negated,
                                case_sensitive: cs,
                            },
                            Box::new(l),
                            Box::new(r),
                        ),
                        pos,
                    });
                }
                const OTHER: &[&str] = &["has_any", "has_all", "like", "notlike", "in_range"];
                if OTHER.contains(&base.as_str()) || negated {
                    return Err(KqlError::unsupported("operator", word, pos));
                }
                Ok(l)
            }
        }
    }

    fn additive(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.multiplicative()?;
        loop {
            let pos = self.pos();
            let op = if self.is_punct("+") {
                BinOp::Add
            } else if self.is_punct("-") {
                BinOp::Sub
            } else {
                break;
            };
            self.bump();
            let r = self.multiplicative()?;
            l = bin(op, l, r, pos);
        }
        Ok(l)
    }

    fn multiplicative(&mut self) -> Result<Expr, KqlError> {
        let mut l = self.unary()?;
        loop {
            let pos = self.pos();
            let op = if self.is_punct("*") {
                BinOp::Mul
            } else if self.is_punct("/") {
                BinOp::Div
            } else if self.is_punct("%") {
                BinOp::Mod
            } else {
                break;
            };
            self.bump();
            let r = self.unary()?;
            l = bin(op, l, r, pos);
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, KqlError> {
        let pos = self.pos();
        if self.eat_punct("-") {
            let e = self.unary()?;
            // Fold negative literals so `-5` stays a literal (datatable values).
            return Ok(match e.kind {
                ExprKind::Lit(Lit::Int(v)) => lit_expr(Lit::Int(-v), pos),
                ExprKind::Lit(Lit::Real(v)) => lit_expr(Lit::Real(-v), pos),
                ExprKind::Lit(Lit::Timespan(v)) => lit_expr(Lit::Timespan(-v), pos),
                kind => Expr {
                    kind: ExprKind::Neg(Box::new(Expr { kind, pos: e.pos })),
                    pos,
                },
            });
        }
        if self.eat_punct("+") {
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, KqlError> {
        let mut e = self.primary()?;
        loop {
            let pos = self.pos();
            if self.eat_punct(".") {
                let n = self.name()?;
                e = Expr {
                    kind: ExprKind::Member(Box::new(e), n),
                    pos,
                };
            } else if self.is_punct("[") {
                self.bump();
                let idx = self.expr()?;
                self.expect_punct("]")?;
                e = Expr {
                    kind: ExprKind::Index(Box::new(e), Box::new(idx)),
                    pos,
                };
            } else {
                break;
            }
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, KqlError> {
        let pos = self.pos();
        let start = self.i;
        let t = self.bump();
        let kind = match t.tok {
            Tok::Int(v) => ExprKind::Lit(Lit::Int(v)),
            Tok::Real(v) => ExprKind::Lit(Lit::Real(v)),
            Tok::Str(s) => {
                // Adjacent string literals concatenate.
                let mut s = s;
                while let Tok::Str(more) = self.peek().clone() {
                    self.bump();
                    s.push_str(&more);
                }
                ExprKind::Lit(Lit::Str(s))
            }
            Tok::Timespan(v) => ExprKind::Lit(Lit::Timespan(v)),
            Tok::Typed(ty, raw) => typed_literal(&ty, &raw, pos)?,
            Tok::QuotedIdent(n) => ExprKind::Ident(n),
            Tok::Punct("(") => {
                let e = self.expr()?;
                self.expect_punct(")")?;
                return Ok(e);
            }
            Tok::Punct("*") => ExprKind::Star,
            Tok::Punct("$") => {
                let side = self.name()?;
                let left = match side.as_str() {
                    "left" => true,
                    "right" => false,
                    _ => return Err(KqlError::syntax(pos, "expected $left or $right")),
                };
                self.expect_punct(".")?;
                ExprKind::Side(left, self.name()?)
            }
            Tok::Ident(w) => match w.as_str() {
                "true" | "True" | "TRUE" => ExprKind::Lit(Lit::Bool(true)),
                "false" | "False" | "FALSE" => ExprKind::Lit(Lit::Bool(false)),
                "null" => ExprKind::Lit(Lit::Null),
                _ if self.is_punct("(") => {
                    self.bump();
                    let mut args = Vec::new();
                    while !self.is_punct(")") {
                        args.push(self.expr()?);
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                    self.expect_punct(")")?;
                    ExprKind::Call(w, args)
                }
                _ if w.starts_with('!') => {
                    return Err(KqlError::syntax(pos, format!("unexpected `{w}`")));
                }
                _ => ExprKind::Ident(w),
            },
            _ => {
                self.i = start;
                return Err(self.unexpected("an expression"));
            }
        };
        Ok(Expr { kind, pos })
    }
}

fn bin(op: BinOp, l: Expr, r: Expr, pos: Pos) -> Expr {
    Expr {
        kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
        pos,
    }
}

fn lit_expr(l: Lit, pos: Pos) -> Expr {
    Expr {
        kind: ExprKind::Lit(l),
        pos,
    }
}

fn typed_literal(ty: &str, raw: &str, pos: Pos) -> Result<ExprKind, KqlError> {
    if raw == "null" && ty != "dynamic" {
        return Ok(ExprKind::Lit(Lit::Typed(ty.to_string(), "null".into())));
    }
    Ok(ExprKind::Lit(match ty {
        "datetime" | "date" => Lit::Datetime(raw.to_string()),
        "timespan" | "time" => {
            Lit::Timespan(crate::value::parse_timespan(raw).ok_or_else(|| {
                KqlError::syntax(pos, format!("invalid timespan literal `{raw}`"))
            })?)
        }
        "dynamic" => Lit::Dynamic(
            crate::value::parse_dynamic_literal(raw)
                .ok_or_else(|| KqlError::syntax(pos, format!("invalid dynamic literal `{raw}`")))?,
        ),
        "guid" => Lit::Str(raw.to_string()),
        _ => Lit::Typed(ty.to_string(), raw.to_string()),
    }))
}
