//! The syntax tree of the Cypher subset.

use super::super::value::Value;

/// One statement of a request.
#[derive(Clone, Debug)]
pub struct Statement {
    /// `EXPLAIN` in front.
    pub explain: bool,
    /// What it does.
    pub body: Body,
}

/// Statement kinds.
#[derive(Clone, Debug)]
pub enum Body {
    /// Clauses (`MATCH … RETURN …`, `UNWIND … CREATE …`, `CALL …`, `SHOW …`).
    Query(Vec<Clause>),
    /// `CREATE [RANGE|TEXT|POINT|LOOKUP] INDEX …`.
    CreateIndex(IndexDef),
    /// `CREATE CONSTRAINT …`.
    CreateConstraint(ConstraintDef),
    /// `DROP INDEX name [IF EXISTS]`.
    DropIndex {
        /// Index name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `DROP CONSTRAINT name [IF EXISTS]`.
    DropConstraint {
        /// Constraint name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `CREATE|DROP|START|STOP|ALTER DATABASE …`, `CREATE USER …`: Enterprise or system
    /// commands Community refuses; the text is quoted in the error.
    Unsupported(String),
}

/// An index definition.
#[derive(Clone, Debug)]
pub struct IndexDef {
    /// Name (Neo4j makes one up when absent).
    pub name: Option<String>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `RANGE`, `TEXT`, `POINT`, `LOOKUP`.
    pub kind: String,
    /// Relationship index (`FOR ()-[r:T]-()`).
    pub relationship: bool,
    /// The label or type (`None` for lookup indexes).
    pub token: Option<String>,
    /// Properties.
    pub properties: Vec<String>,
}

/// A constraint definition.
#[derive(Clone, Debug)]
pub struct ConstraintDef {
    /// Name.
    pub name: Option<String>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The label (or relationship type).
    pub label: String,
    /// Relationship constraint.
    pub relationship: bool,
    /// Properties.
    pub properties: Vec<String>,
    /// `UNIQUE`, `NOT NULL`, `NODE KEY`, `TYPED`.
    pub kind: String,
}

/// A clause.
#[derive(Clone, Debug)]
pub enum Clause {
    /// `[OPTIONAL] MATCH patterns [WHERE expr]`.
    Match {
        /// `OPTIONAL`.
        optional: bool,
        /// Patterns.
        patterns: Vec<Pattern>,
        /// Filter.
        filter: Option<Expr>,
        /// Where the clause starts.
        pos: usize,
    },
    /// `UNWIND expr AS var`.
    Unwind {
        /// The list.
        expr: Expr,
        /// The variable.
        var: String,
    },
    /// `WITH …`.
    With(Projection),
    /// `RETURN …`.
    Return(Projection),
    /// `CREATE patterns`.
    Create(Vec<Pattern>),
    /// `MERGE pattern`.
    Merge(Pattern),
    /// `SET items`.
    Set(Vec<SetItem>),
    /// `REMOVE items`.
    Remove(Vec<RemoveItem>),
    /// `[DETACH] DELETE exprs`.
    Delete {
        /// `DETACH`.
        detach: bool,
        /// What to delete.
        exprs: Vec<Expr>,
    },
    /// `CALL proc(args) [YIELD …]`.
    Call {
        /// Qualified name, as written.
        name: String,
        /// Arguments (`None`: no parentheses).
        args: Option<Vec<Expr>>,
        /// `YIELD`.
        yields: Option<Yield>,
        /// Where the name starts.
        pos: usize,
    },
    /// `SHOW …` (always first).
    Show {
        /// What is shown.
        what: Show,
        /// `YIELD`.
        yields: Option<Yield>,
        /// `WHERE` right after the command.
        filter: Option<Expr>,
    },
}

/// `SHOW` commands.
#[derive(Clone, Debug, PartialEq)]
pub enum Show {
    /// `SHOW [ALL|RANGE|…] INDEXES`.
    Indexes,
    /// `SHOW [ALL|UNIQUE…] CONSTRAINTS`.
    Constraints,
    /// `SHOW DATABASES` / `SHOW DATABASE name`.
    Databases(Option<String>),
    /// `SHOW DEFAULT DATABASE`.
    DefaultDatabase,
    /// `SHOW HOME DATABASE`.
    HomeDatabase,
    /// `SHOW PROCEDURES`.
    Procedures,
    /// `SHOW FUNCTIONS`.
    Functions,
    /// `SHOW USERS`.
    Users,
    /// `SHOW CURRENT USER`.
    CurrentUser,
    /// `SHOW TRANSACTIONS`.
    Transactions,
}

/// `YIELD *` or `YIELD a, b AS c [WHERE …]`.
#[derive(Clone, Debug)]
pub struct Yield {
    /// `*`.
    pub star: bool,
    /// (column, alias).
    pub items: Vec<(String, String)>,
    /// `WHERE`.
    pub filter: Option<Expr>,
}

/// A path pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// `p = …`.
    pub var: Option<String>,
    /// First node.
    pub start: NodePat,
    /// Then relationship and node steps.
    pub steps: Vec<(RelPat, NodePat)>,
}

/// `(var:Label {props})`.
#[derive(Clone, Debug)]
pub struct NodePat {
    /// Variable.
    pub var: Option<String>,
    /// Labels with the offset of each name.
    pub labels: Vec<(String, usize)>,
    /// Property map.
    pub props: Option<Expr>,
    /// Where `(` is.
    pub pos: usize,
}

/// Relationship direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dir {
    /// `-->`.
    Out,
    /// `<--`.
    In,
    /// `--`.
    Both,
}

/// `-[var:TYPE {props}]->`.
#[derive(Clone, Debug)]
pub struct RelPat {
    /// Variable.
    pub var: Option<String>,
    /// Types (alternatives) with offsets.
    pub types: Vec<(String, usize)>,
    /// Property map.
    pub props: Option<Expr>,
    /// Direction.
    pub dir: Dir,
    /// `*min..max`.
    pub var_length: Option<(Option<u64>, Option<u64>)>,
}

/// `WITH`/`RETURN` body.
#[derive(Clone, Debug)]
pub struct Projection {
    /// `DISTINCT`.
    pub distinct: bool,
    /// `*`.
    pub star: bool,
    /// Items.
    pub items: Vec<ProjItem>,
    /// `ORDER BY` (expression, descending).
    pub order: Vec<(Expr, bool)>,
    /// `SKIP`.
    pub skip: Option<Expr>,
    /// `LIMIT`.
    pub limit: Option<Expr>,
    /// `WHERE` (WITH only).
    pub filter: Option<Expr>,
}

/// `expr [AS alias]`.
#[derive(Clone, Debug)]
pub struct ProjItem {
    /// Expression.
    pub expr: Expr,
    /// Column name: the alias, or the expression's text.
    pub name: String,
}

/// `SET` items.
#[derive(Clone, Debug)]
pub enum SetItem {
    /// `n.key = value`.
    Prop {
        /// The entity.
        target: Expr,
        /// Key.
        key: String,
        /// Value.
        value: Expr,
    },
    /// `n = map`.
    Replace {
        /// Variable.
        var: String,
        /// Map (or entity).
        value: Expr,
        /// Where the value starts (for the deprecation notification).
        value_pos: usize,
    },
    /// `n += map`.
    Merge {
        /// Variable.
        var: String,
        /// Map.
        value: Expr,
    },
    /// `n:Label:Other`.
    Labels {
        /// Variable.
        var: String,
        /// Labels.
        labels: Vec<String>,
    },
}

/// `REMOVE` items.
#[derive(Clone, Debug)]
pub enum RemoveItem {
    /// `n.key`.
    Prop {
        /// Entity.
        target: Expr,
        /// Key.
        key: String,
    },
    /// `n:Label`.
    Labels {
        /// Variable.
        var: String,
        /// Labels.
        labels: Vec<String>,
    },
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinOp {
    /// `OR`
    Or,
    /// `XOR`
    Xor,
    /// `AND`
    And,
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `STARTS WITH`
    StartsWith,
    /// `ENDS WITH`
    EndsWith,
    /// `CONTAINS`
    Contains,
    /// `IN`
    In,
    /// `=~`
    Regex,
}

/// `all`, `any`, `none`, `single`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quant {
    /// all(x IN l WHERE p)
    All,
    /// any(…)
    Any,
    /// none(…)
    None,
    /// single(…)
    Single,
}

/// An expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A literal.
    Lit(Value),
    /// `$name` (with its offset).
    Param(String, usize),
    /// A variable (with its offset).
    Var(String, usize),
    /// `e.key`.
    Prop(Box<Expr>, String),
    /// `e[i]`.
    Index(Box<Expr>, Box<Expr>),
    /// `e[a..b]`.
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{k: v}`.
    Map(Vec<(String, Expr)>),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a op b` (offset of the operator).
    Bin(BinOp, Box<Expr>, Box<Expr>, usize),
    /// `e IS [NOT] NULL` (negated when NOT).
    IsNull(Box<Expr>, bool),
    /// `n:Label:Other`.
    HasLabels(Box<Expr>, Vec<String>),
    /// `f(args)`; the name lower-cased; `distinct` for aggregates.
    Func {
        /// Lower-cased qualified name.
        name: String,
        /// Name as written.
        written: String,
        /// Arguments.
        args: Vec<Expr>,
        /// `count(DISTINCT x)`.
        distinct: bool,
        /// Where the name starts.
        pos: usize,
    },
    /// `count(*)`.
    CountStar,
    /// `[x IN list WHERE pred | expr]`.
    ListComp {
        /// Variable.
        var: String,
        /// List.
        list: Box<Expr>,
        /// Filter.
        pred: Option<Box<Expr>>,
        /// Mapping.
        map: Option<Box<Expr>>,
    },
    /// `all(x IN list WHERE pred)`…
    Quantified {
        /// Which.
        kind: Quant,
        /// Variable.
        var: String,
        /// List.
        list: Box<Expr>,
        /// Predicate.
        pred: Box<Expr>,
    },
    /// `CASE [subject] WHEN … THEN … [ELSE …] END`.
    Case {
        /// `CASE x WHEN 1 …`.
        subject: Option<Box<Expr>>,
        /// Branches.
        whens: Vec<(Expr, Expr)>,
        /// Else.
        otherwise: Option<Box<Expr>>,
    },
}

impl Expr {
    /// Whether the expression contains an aggregate call.
    pub fn has_aggregate(&self) -> bool {
        match self {
            Expr::CountStar => true,
            Expr::Func { name, args, .. } => {
                super::eval::is_aggregate(name) || args.iter().any(Expr::has_aggregate)
            }
            Expr::Prop(e, _)
            | Expr::Not(e)
            | Expr::Neg(e)
            | Expr::IsNull(e, _)
            | Expr::HasLabels(e, _) => e.has_aggregate(),
            Expr::Index(a, b) | Expr::Bin(_, a, b, _) => a.has_aggregate() || b.has_aggregate(),
            Expr::Slice(a, b, c) => {
                a.has_aggregate()
                    || b.as_ref().is_some_and(|e| e.has_aggregate())
                    || c.as_ref().is_some_and(|e| e.has_aggregate())
            }
            Expr::List(items) => items.iter().any(Expr::has_aggregate),
            Expr::Map(items) => items.iter().any(|(_, e)| e.has_aggregate()),
            Expr::ListComp {
                list, pred, map, ..
            } => {
                list.has_aggregate()
                    || pred.as_ref().is_some_and(|e| e.has_aggregate())
                    || map.as_ref().is_some_and(|e| e.has_aggregate())
            }
            Expr::Quantified { list, pred, .. } => list.has_aggregate() || pred.has_aggregate(),
            Expr::Case {
                subject,
                whens,
                otherwise,
            } => {
                subject.as_ref().is_some_and(|e| e.has_aggregate())
                    || whens
                        .iter()
                        .any(|(a, b)| a.has_aggregate() || b.has_aggregate())
                    || otherwise.as_ref().is_some_and(|e| e.has_aggregate())
            }
            Expr::Lit(_) | Expr::Param(..) | Expr::Var(..) => false,
        }
    }

    /// Calls `f` on this expression and every sub-expression.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Prop(e, _)
            | Expr::Not(e)
            | Expr::Neg(e)
            | Expr::IsNull(e, _)
            | Expr::HasLabels(e, _) => e.walk(f),
            Expr::Index(a, b) | Expr::Bin(_, a, b, _) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Slice(a, b, c) => {
                a.walk(f);
                if let Some(b) = b {
                    b.walk(f);
                }
                if let Some(c) = c {
                    c.walk(f);
                }
            }
            Expr::List(items) => items.iter().for_each(|e| e.walk(f)),
            Expr::Map(items) => items.iter().for_each(|(_, e)| e.walk(f)),
            Expr::Func { args, .. } => args.iter().for_each(|e| e.walk(f)),
            Expr::ListComp {
                list, pred, map, ..
            } => {
                list.walk(f);
                if let Some(p) = pred {
                    p.walk(f);
                }
                if let Some(m) = map {
                    m.walk(f);
                }
            }
            Expr::Quantified { list, pred, .. } => {
                list.walk(f);
                pred.walk(f);
            }
            Expr::Case {
                subject,
                whens,
                otherwise,
            } => {
                if let Some(s) = subject {
                    s.walk(f);
                }
                for (a, b) in whens {
                    a.walk(f);
                    b.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Lit(_) | Expr::Param(..) | Expr::Var(..) | Expr::CountStar => {}
        }
    }
}

impl Pattern {
    /// Variables the pattern names (nodes, relationships, the path).
    pub fn vars(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        if let Some(p) = &self.var {
            v.push(p.clone());
        }
        if let Some(n) = &self.start.var {
            v.push(n.clone());
        }
        for (r, n) in &self.steps {
            if let Some(x) = &r.var {
                v.push(x.clone());
            }
            if let Some(x) = &n.var {
                v.push(x.clone());
            }
        }
        v
    }

    /// Node variables only.
    pub fn node_vars(&self) -> Vec<String> {
        let mut v: Vec<String> = self.start.var.iter().cloned().collect();
        for (_, n) in &self.steps {
            if let Some(x) = &n.var {
                v.push(x.clone());
            }
        }
        v
    }
}
