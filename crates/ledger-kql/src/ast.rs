//! The syntax tree of a KQL query; every node carries its position.

use crate::error::Pos;

#[derive(Debug, Clone)]
pub struct Query {
    pub lets: Vec<Let>,
    /// The tabular expression the query returns (None: only `let`s).
    pub body: Option<Pipeline>,
}

#[derive(Debug, Clone)]
pub struct Let {
    pub name: String,
    pub value: LetValue,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum LetValue {
    /// A scalar or a tabular expression: which one is decided when planned
    /// (a lone name of a table is tabular).
    Pipeline(Pipeline),
    /// `() { ... }`: a lambda without parameters.
    Lambda(Pipeline),
    /// `(a: long, b: string) { expr }`: a scalar function, inlined where
    /// it is called.
    Function { params: Vec<String>, body: Expr },
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub source: Source,
    pub ops: Vec<Op>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// A table, a tabular `let`, or a scalar expression (in a `let`).
    Expr(Expr),
    Datatable {
        columns: Vec<(String, String)>,
        values: Vec<Expr>,
    },
    Range {
        column: String,
        from: Expr,
        to: Expr,
        step: Expr,
    },
    Print(Vec<Assign>),
    Union(Union),
    Paren(Box<Pipeline>),
}

#[derive(Debug, Clone)]
pub struct Union {
    pub kind_inner: bool,
    pub with_source: Option<String>,
    pub tables: Vec<Pipeline>,
}

/// `name = expr` or a bare `expr`.
#[derive(Debug, Clone)]
pub struct Assign {
    pub name: Option<String>,
    pub expr: Expr,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct SortKey {
    pub expr: Expr,
    pub asc: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    InnerUnique,
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftAnti,
    RightAnti,
    LeftSemi,
    RightSemi,
}

#[derive(Debug, Clone)]
pub enum JoinKey {
    Same(String),
    Pair(String, String),
}

#[derive(Debug, Clone)]
pub struct MvColumn {
    pub name: Option<String>,
    pub expr: Expr,
    pub to_type: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ParsePart {
    Literal(String),
    Column(String, Option<String>),
    Wildcard,
}

#[derive(Debug, Clone)]
pub enum OpKind {
    Where(Expr),
    Extend(Vec<Assign>),
    Project(Vec<Assign>),
    ProjectAway(Vec<String>),
    ProjectKeep(Vec<String>),
    ProjectRename(Vec<(String, String)>),
    ProjectReorder(Vec<(String, Option<bool>)>),
    Summarize {
        aggs: Vec<Assign>,
        by: Vec<Assign>,
    },
    Sort(Vec<SortKey>),
    Top {
        n: Expr,
        key: SortKey,
    },
    Take(Expr),
    Count,
    Distinct(Vec<String>),
    Join {
        kind: JoinKind,
        right: Box<Pipeline>,
        on: Vec<JoinKey>,
    },
    MvExpand {
        /// `kind=array`: a property bag expands to `[key, value]` arrays.
        bag_array: bool,
        columns: Vec<MvColumn>,
        item_index: Option<String>,
        limit: Option<Expr>,
    },
    Union(Union),
    As(String),
    Serialize(Vec<Assign>),
    /// `regex`: `kind=regex`, the literal parts are regular expressions.
    Parse {
        expr: Expr,
        parts: Vec<ParsePart>,
        regex: bool,
    },
    Render(String),
    Getschema,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(String),
    /// Microseconds.
    Timespan(i64),
    /// Raw text of `datetime(...)`.
    Datetime(String),
    /// Compact JSON text of `dynamic(...)`.
    Dynamic(String),
    /// `int(null)`, `real(5)`, `decimal(1.5)`: a type and a value.
    Typed(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    EqCi,
    NeCi,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// `has`, `contains`, ... with their case and negation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrOp {
    pub op: String,
    pub negated: bool,
    pub case_sensitive: bool,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Lit(Lit),
    Ident(String),
    /// `*` as a function argument (`count(*)`, `arg_max(x, *)`).
    Star,
    /// `$left.x` / `$right.x` in a join condition.
    Side(bool, String),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Str(StrOp, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Call(String, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Member(Box<Expr>, String),
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}
