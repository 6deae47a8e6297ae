//! Running statements against a transaction's view of the graph.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::super::graph::{ConstraintRule, EntityType, Graph, IndexRule, NodeRec, RelRec};
use super::super::value::{check_storable, cypher_eq, order, Json, Value};
use super::ast::*;
use super::eval::{is_aggregate, FUNCTIONS};
use super::{codes, parser, procs, CypherError, Phase};

/// Variables bound in one row, in binding order (later bindings shadow earlier ones).
pub type Row = Vec<(String, Value)>;

/// What a transaction has done so far, which decides what it may do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKind {
    /// Nothing yet.
    Empty,
    /// Only reads.
    Read,
    /// Data writes.
    Write,
    /// Schema changes.
    Schema,
}

/// The `stats` of a statement (`includeStats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes created.
    pub nodes_created: u64,
    /// Nodes deleted.
    pub nodes_deleted: u64,
    /// Properties set (and removed).
    pub properties_set: u64,
    /// Relationships created.
    pub relationships_created: u64,
    /// Relationships deleted.
    pub relationships_deleted: u64,
    /// Labels added.
    pub labels_added: u64,
    /// Labels removed.
    pub labels_removed: u64,
    /// Indexes added.
    pub indexes_added: u64,
    /// Indexes removed.
    pub indexes_removed: u64,
    /// Constraints added.
    pub constraints_added: u64,
    /// Constraints removed.
    pub constraints_removed: u64,
}

impl Stats {
    /// Whether anything changed.
    pub fn contains_updates(&self) -> bool {
        *self != Stats::default()
    }

    /// The `stats` object, keys in Neo4j's order (note `relationship_deleted`).
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("contains_updates", Json::Bool(self.contains_updates())),
            ("nodes_created", Json::Int(self.nodes_created as i64)),
            ("nodes_deleted", Json::Int(self.nodes_deleted as i64)),
            ("properties_set", Json::Int(self.properties_set as i64)),
            (
                "relationships_created",
                Json::Int(self.relationships_created as i64),
            ),
            (
                "relationship_deleted",
                Json::Int(self.relationships_deleted as i64),
            ),
            ("labels_added", Json::Int(self.labels_added as i64)),
            ("labels_removed", Json::Int(self.labels_removed as i64)),
            ("indexes_added", Json::Int(self.indexes_added as i64)),
            ("indexes_removed", Json::Int(self.indexes_removed as i64)),
            (
                "constraints_added",
                Json::Int(self.constraints_added as i64),
            ),
            (
                "constraints_removed",
                Json::Int(self.constraints_removed as i64),
            ),
            ("contains_system_updates", Json::Bool(false)),
            ("system_updates", Json::Int(0)),
        ])
    }
}

/// A transaction: a private copy of the graph and what it changed.
#[derive(Clone, Debug)]
pub struct TxState {
    /// The transaction's view.
    pub graph: Graph,
    /// What it has done.
    pub kind: TxKind,
    touched_nodes: BTreeSet<u64>,
    touched_rels: BTreeSet<u64>,
    created_nodes: Vec<u64>,
    created_rels: Vec<u64>,
    schema_changed: bool,
    adjacency: Option<Adjacency>,
    unique: Option<UniqueIndex>,
}

/// Per uniqueness constraint: the nodes holding each value (the backing index).
type UniqueIndex = HashMap<String, HashMap<String, Vec<u64>>>;

/// A value as an index key: numbers that Cypher finds equal get one key.
fn index_key(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("n{i}"),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => format!("n{}", *f as i64),
        Value::Float(f) => format!("f{}", f.to_bits()),
        Value::Array(a) | Value::List(a) => format!(
            "[{}]",
            a.iter().map(index_key).collect::<Vec<_>>().join(",")
        ),
        other => format!("{other:?}"),
    }
}

/// The key of `rec` under constraint `c`, if the node is subject to it.
fn constraint_key(c: &ConstraintRule, rec: &NodeRec) -> Option<String> {
    if !rec.labels.contains(&c.label) {
        return None;
    }
    let mut parts = Vec::new();
    for p in &c.properties {
        parts.push(index_key(
            rec.props.iter().find(|(k, _)| k == p).map(|(_, v)| v)?,
        ));
    }
    Some(parts.join("\u{1}"))
}

/// Outgoing and incoming relationship ids per node.
type Adjacency = (HashMap<u64, Vec<u64>>, HashMap<u64, Vec<u64>>);

impl TxState {
    /// A transaction on the committed graph as it is now.
    pub fn begin(committed: &Graph) -> Self {
        TxState {
            graph: committed.clone(),
            kind: TxKind::Empty,
            touched_nodes: BTreeSet::new(),
            touched_rels: BTreeSet::new(),
            created_nodes: Vec::new(),
            created_rels: Vec::new(),
            schema_changed: false,
            adjacency: None,
            unique: None,
        }
    }

    /// Whether it changed anything.
    pub fn has_changes(&self) -> bool {
        !self.touched_nodes.is_empty() || !self.touched_rels.is_empty() || self.schema_changed
    }

    /// Applies the changes to the committed graph; freed ids go back to the pools.
    pub fn commit(self, committed: &mut Graph) {
        for id in &self.touched_nodes {
            match self.graph.nodes.get(id) {
                Some(n) => {
                    committed.nodes.insert(*id, n.clone());
                }
                None => {
                    if committed.nodes.remove(id).is_some() || self.created_nodes.contains(id) {
                        committed.node_ids.release(*id);
                    }
                }
            }
        }
        for id in &self.touched_rels {
            match self.graph.rels.get(id) {
                Some(r) => {
                    committed.rels.insert(*id, r.clone());
                }
                None => {
                    if committed.rels.remove(id).is_some() || self.created_rels.contains(id) {
                        committed.rel_ids.release(*id);
                    }
                }
            }
        }
        if self.schema_changed {
            committed.indexes = self.graph.indexes;
            committed.constraints = self.graph.constraints;
        }
    }

    /// Gives the ids it took back.
    pub fn rollback(self, committed: &mut Graph) {
        for id in self.created_nodes.iter().rev() {
            committed.node_ids.release(*id);
        }
        for id in self.created_rels.iter().rev() {
            committed.rel_ids.release(*id);
        }
    }

    fn put_node(&mut self, id: u64, rec: NodeRec) {
        self.touched_nodes.insert(id);
        self.unindex(id);
        if let Some(u) = &mut self.unique {
            for c in &self.graph.constraints {
                if let Some(k) = constraint_key(c, &rec) {
                    u.entry(c.name.clone())
                        .or_default()
                        .entry(k)
                        .or_default()
                        .push(id);
                }
            }
        }
        self.graph.nodes.insert(id, Arc::new(rec));
    }

    fn remove_node(&mut self, id: u64) {
        self.touched_nodes.insert(id);
        self.unindex(id);
        self.graph.nodes.remove(&id);
    }

    fn unindex(&mut self, id: u64) {
        let (Some(u), Some(old)) = (&mut self.unique, self.graph.nodes.get(&id)) else {
            return;
        };
        for c in &self.graph.constraints {
            if let Some(k) = constraint_key(c, old) {
                if let Some(ids) = u.get_mut(&c.name).and_then(|m| m.get_mut(&k)) {
                    ids.retain(|x| *x != id);
                }
            }
        }
    }

    /// Other nodes holding the same value as node `id` under constraint `c`.
    fn unique_clash(&mut self, c: &ConstraintRule, id: u64) -> Option<u64> {
        if self.unique.is_none() {
            let mut u: UniqueIndex = HashMap::new();
            for (nid, n) in &self.graph.nodes {
                for c in &self.graph.constraints {
                    if let Some(k) = constraint_key(c, n) {
                        u.entry(c.name.clone())
                            .or_default()
                            .entry(k)
                            .or_default()
                            .push(*nid);
                    }
                }
            }
            self.unique = Some(u);
        }
        let rec = self.graph.nodes.get(&id)?;
        let key = constraint_key(c, rec)?;
        self.unique
            .as_ref()?
            .get(&c.name)?
            .get(&key)?
            .iter()
            .copied()
            .find(|x| *x != id)
    }

    fn put_rel(&mut self, id: u64, rec: RelRec, new: bool) {
        self.touched_rels.insert(id);
        if new {
            if let Some((out, inc)) = &mut self.adjacency {
                out.entry(rec.start).or_default().push(id);
                inc.entry(rec.end).or_default().push(id);
            }
        }
        self.graph.rels.insert(id, Arc::new(rec));
    }

    fn remove_rel(&mut self, id: u64) {
        self.touched_rels.insert(id);
        self.graph.rels.remove(&id);
    }

    fn adjacency(&mut self) -> &Adjacency {
        if self.adjacency.is_none() {
            let mut out: HashMap<u64, Vec<u64>> = HashMap::new();
            let mut inc: HashMap<u64, Vec<u64>> = HashMap::new();
            for (id, r) in &self.graph.rels {
                out.entry(r.start).or_default().push(*id);
                inc.entry(r.end).or_default().push(*id);
            }
            self.adjacency = Some((out, inc));
        }
        self.adjacency.as_ref().unwrap()
    }

    /// Relationship ids touching node `id` that still exist.
    fn rels_of(&mut self, id: u64) -> Vec<u64> {
        let (out, inc) = self.adjacency();
        let mut v: Vec<u64> = out.get(&id).cloned().unwrap_or_default();
        for r in inc.get(&id).cloned().unwrap_or_default() {
            if !v.contains(&r) {
                v.push(r);
            }
        }
        v.retain(|r| self.graph.rels.contains_key(r));
        v
    }
}

/// The database a statement runs on.
#[derive(Clone, Debug)]
pub struct DbInfo {
    /// Name.
    pub name: String,
    /// The uuid in element ids (`4:<uuid>:<id>`).
    pub uuid: String,
    /// `db.info()` id (64 hex digits).
    pub id: String,
    /// `db.info()` creation date (`2026-11-26T09:52:12.956Z`).
    pub creation_date: String,
}

/// A database as `SHOW DATABASES` lists it.
#[derive(Clone, Debug)]
pub struct DbListing {
    /// Name.
    pub name: String,
    /// The `databaseID`.
    pub id: String,
    /// `online` / `offline`.
    pub status: String,
    /// Status message.
    pub message: String,
    /// Creation time.
    pub created: String,
}

/// Facts about the server that procedures and `SHOW` need.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// Databases (`neo4j`, `system`).
    pub databases: Vec<DbListing>,
    /// The authenticated user.
    pub user: String,
    /// Configuration (`dbms.listConfig`).
    pub config: Vec<(String, String)>,
    /// The server id in `SHOW DATABASES YIELD *`.
    pub server_id: String,
}

/// What one statement produced.
#[derive(Clone, Debug, Default)]
pub struct StatementOutput {
    /// Columns.
    pub columns: Vec<String>,
    /// Rows (possibly the ones produced before `error`).
    pub rows: Vec<Vec<Value>>,
    /// Counters.
    pub stats: Stats,
    /// `EXPLAIN` plan.
    pub plan: Option<Json>,
    /// Notifications.
    pub notifications: Vec<Json>,
    /// The failure, if any.
    pub error: Option<CypherError>,
}

/// Options of one statement run.
pub struct RunOptions<'a> {
    /// `access-mode: READ`.
    pub read_only: bool,
    /// The fake clock's now.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Server facts.
    pub server: &'a ServerInfo,
}

/// The interpreter state of one statement.
pub struct Exec<'a> {
    /// The statement text (for positions).
    pub text: &'a str,
    /// The transaction.
    pub tx: &'a mut TxState,
    /// The committed graph: id pools and token names live there.
    pub committed: &'a mut Graph,
    /// Database facts.
    pub db: &'a DbInfo,
    /// Server facts.
    pub server: &'a ServerInfo,
    /// Parameters.
    pub params: &'a HashMap<String, Value>,
    /// Now.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Counters.
    pub stats: Stats,
    /// Aggregate results of the group being projected, by expression address.
    pub agg: HashMap<usize, Value>,
    pending_deletes: Vec<u64>,
}

/// Runs one statement in `tx`.
pub fn run(
    text: &str,
    params: &HashMap<String, Value>,
    tx: &mut TxState,
    committed: &mut Graph,
    db: &DbInfo,
    opts: &RunOptions,
) -> StatementOutput {
    let mut out = StatementOutput::default();
    let stmt = match parser::parse(text) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let kind = statement_kind(&stmt);
    // Compile-time checks, in the order Neo4j makes them.
    let check = (|| -> Result<(Vec<String>, Vec<Json>), CypherError> {
        semantic_check(text, &stmt, committed)?;
        let missing = missing_params(&stmt, params);
        if !missing.is_empty() {
            return Err(CypherError::compile(
                codes::PARAMETER_MISSING,
                format!("Expected parameter(s): {}", missing.join(", ")),
            ));
        }
        if opts.read_only && kind != TxKind::Read {
            return Err(CypherError::compile(
                codes::REQUEST_INVALID,
                "Routing WRITE queries is not supported in clusters where Server-Side Routing is disabled.",
            ));
        }
        match (tx.kind, kind) {
            (TxKind::Schema, TxKind::Write) => {
                return Err(CypherError::compile(
                    codes::FORBIDDEN_TX_TYPE,
                    "Tried to execute Write query after executing Schema modification",
                ))
            }
            (TxKind::Write, TxKind::Schema) => {
                return Err(CypherError::compile(
                    codes::FORBIDDEN_TX_TYPE,
                    "Tried to execute Schema modification after executing Write query",
                ))
            }
            _ => {}
        }
        let columns = static_columns(&stmt);
        let notes = notifications(text, &stmt, committed, params);
        Ok((columns, notes))
    })();
    let (columns, notes) = match check {
        Ok(c) => c,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    out.columns = columns;
    out.notifications = notes;
    if kind != TxKind::Read {
        tx.kind = kind;
    } else if tx.kind == TxKind::Empty {
        tx.kind = TxKind::Read;
    }
    let mut ex = Exec {
        text,
        tx,
        committed,
        db,
        server: opts.server,
        params,
        now: opts.now,
        stats: Stats::default(),
        agg: HashMap::new(),
        pending_deletes: Vec::new(),
    };
    if stmt.explain {
        out.plan = Some(explain_plan(&stmt, &out.columns));
        return out;
    }
    let result = match &stmt.body {
        Body::Query(clauses) => ex.query(clauses, &mut out),
        Body::CreateIndex(def) => ex.create_index(def),
        Body::CreateConstraint(def) => ex.create_constraint(def),
        Body::DropIndex { name, if_exists } => ex.drop_index(name, *if_exists),
        Body::DropConstraint { name, if_exists } => ex.drop_constraint(name, *if_exists),
        Body::Unsupported(t) => Err(CypherError::compile(
            codes::UNSUPPORTED_ADMIN,
            format!("Unsupported administration command: {t}"),
        )),
    };
    let result = result.and_then(|()| ex.finish_deletes());
    out.stats = ex.stats.clone();
    if let Err(e) = result {
        if e.phase == Phase::Compile {
            out.columns.clear();
            out.rows.clear();
        }
        out.error = Some(e);
    }
    out
}

fn statement_kind(stmt: &Statement) -> TxKind {
    match &stmt.body {
        Body::Query(clauses) => {
            if clauses.iter().any(|c| {
                matches!(
                    c,
                    Clause::Create(_)
                        | Clause::Merge(_)
                        | Clause::Set(_)
                        | Clause::Remove(_)
                        | Clause::Delete { .. }
                )
            }) {
                TxKind::Write
            } else {
                TxKind::Read
            }
        }
        Body::Unsupported(_) => TxKind::Read,
        _ => TxKind::Schema,
    }
}

/// Column names known before running: the final `RETURN`'s item names, a standalone
/// `CALL`'s outputs, a `SHOW`'s columns.
fn static_columns(stmt: &Statement) -> Vec<String> {
    let Body::Query(clauses) = &stmt.body else {
        return Vec::new();
    };
    match clauses.last() {
        Some(Clause::Return(p)) if !p.star => p.items.iter().map(|i| i.name.clone()).collect(),
        Some(Clause::Call { name, yields, .. }) => match yields {
            Some(y) if !y.star => y.items.iter().map(|(_, a)| a.clone()).collect(),
            _ => procs::procedure_columns(&name.to_ascii_lowercase())
                .map(|c| c.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        },
        Some(Clause::Show { what, yields, .. }) if clauses.len() == 1 => match yields {
            Some(y) if !y.star => y.items.iter().map(|(_, a)| a.clone()).collect(),
            Some(_) => procs::show_columns(what, true),
            None => procs::show_columns(what, false),
        },
        _ => Vec::new(),
    }
}

fn missing_params(stmt: &Statement, params: &HashMap<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut note = |e: &Expr| {
        if let Expr::Param(p, _) = e {
            if !params.contains_key(p) && !names.contains(p) {
                names.push(p.clone());
            }
        }
    };
    for_each_expr(stmt, &mut note);
    names
}

/// Calls `f` on every expression of the statement.
fn for_each_expr(stmt: &Statement, f: &mut dyn FnMut(&Expr)) {
    let Body::Query(clauses) = &stmt.body else {
        return;
    };
    let pat = |p: &Pattern, f: &mut dyn FnMut(&Expr)| {
        if let Some(e) = &p.start.props {
            e.walk(f);
        }
        for (r, n) in &p.steps {
            if let Some(e) = &r.props {
                e.walk(f);
            }
            if let Some(e) = &n.props {
                e.walk(f);
            }
        }
    };
    let proj = |p: &Projection, f: &mut dyn FnMut(&Expr)| {
        for i in &p.items {
            i.expr.walk(f);
        }
        for (e, _) in &p.order {
            e.walk(f);
        }
        for e in [&p.skip, &p.limit, &p.filter].into_iter().flatten() {
            e.walk(f);
        }
    };
    for c in clauses {
        match c {
            Clause::Match {
                patterns, filter, ..
            } => {
                for p in patterns {
                    pat(p, f);
                }
                if let Some(e) = filter {
                    e.walk(f);
                }
            }
            Clause::Unwind { expr, .. } => expr.walk(f),
            Clause::With(p) | Clause::Return(p) => proj(p, f),
            Clause::Create(ps) => ps.iter().for_each(|p| pat(p, f)),
            Clause::Merge(p) => pat(p, f),
            Clause::Set(items) => {
                for i in items {
                    match i {
                        SetItem::Prop { target, value, .. } => {
                            target.walk(f);
                            value.walk(f);
                        }
                        SetItem::Replace { value, .. } | SetItem::Merge { value, .. } => {
                            value.walk(f)
                        }
                        SetItem::Labels { .. } => {}
                    }
                }
            }
            Clause::Remove(items) => {
                for i in items {
                    if let RemoveItem::Prop { target, .. } = i {
                        target.walk(f);
                    }
                }
            }
            Clause::Delete { exprs, .. } => exprs.iter().for_each(|e| e.walk(f)),
            Clause::Call { args, yields, .. } => {
                for a in args.iter().flatten() {
                    a.walk(f);
                }
                if let Some(Yield {
                    filter: Some(e), ..
                }) = yields
                {
                    e.walk(f);
                }
            }
            Clause::Show { yields, filter, .. } => {
                if let Some(Yield {
                    filter: Some(e), ..
                }) = yields
                {
                    e.walk(f);
                }
                if let Some(e) = filter {
                    e.walk(f);
                }
            }
        }
    }
}

/// Unknown functions and procedures, literal type mismatches, constant integer overflow,
/// undefined variables.
fn semantic_check(text: &str, stmt: &Statement, graph: &Graph) -> Result<(), CypherError> {
    let _ = graph;
    let mut err: Option<CypherError> = None;
    let mut check = |e: &Expr| {
        if err.is_some() {
            return;
        }
        match e {
            Expr::Func {
                name, written, pos, ..
            } if !FUNCTIONS.contains(&name.as_str()) => {
                err = Some(CypherError::syntax_at(
                    text,
                    *pos,
                    &format!("Unknown function '{written}'"),
                ));
            }
            Expr::Bin(
                op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod),
                a,
                b,
                pos,
            ) => {
                if let (Expr::Lit(Value::Int(x)), Expr::Lit(Value::Int(y))) =
                    (a.as_ref(), b.as_ref())
                {
                    let sym = match op {
                        BinOp::Add => "+",
                        BinOp::Sub => "-",
                        BinOp::Mul => "*",
                        _ => "",
                    };
                    let r = match op {
                        BinOp::Add => x.checked_add(*y),
                        BinOp::Sub => x.checked_sub(*y),
                        BinOp::Mul => x.checked_mul(*y),
                        _ => Some(0),
                    };
                    if r.is_none() {
                        err = Some(CypherError::syntax_at(
                            text,
                            *pos,
                            &format!("result of {x} {sym} {y} cannot be represented as an integer"),
                        ));
                    }
                }
                if matches!(b.as_ref(), Expr::Map(_)) || matches!(a.as_ref(), Expr::Map(_)) {
                    let after: usize = text
                        .chars()
                        .enumerate()
                        .skip(pos + 1)
                        .find(|(_, c)| !c.is_whitespace())
                        .map(|(i, _)| i)
                        .unwrap_or(*pos);
                    let expected = if *op == BinOp::Add {
                        "Float, Integer, String or List<T>"
                    } else {
                        "Float or Integer"
                    };
                    err = Some(CypherError::syntax_at(
                        text,
                        if matches!(b.as_ref(), Expr::Map(_)) {
                            after
                        } else {
                            *pos
                        },
                        &format!("Type mismatch: expected {expected} but was Map"),
                    ));
                }
            }
            _ => {}
        }
    };
    for_each_expr(stmt, &mut check);
    if let Some(e) = err {
        return Err(e);
    }
    if let Body::Query(clauses) = &stmt.body {
        for c in clauses {
            if let Clause::Call { name, pos, .. } = c {
                if procs::procedure_columns(&name.to_ascii_lowercase()).is_none() {
                    let _ = pos;
                    return Err(CypherError::compile(
                        codes::PROCEDURE_NOT_FOUND,
                        format!("There is no procedure with the name `{name}` registered for this database instance. Please ensure you've spelled the procedure name correctly and that the procedure is properly deployed."),
                    ));
                }
            }
        }
        check_scopes(text, clauses)?;
    }
    Ok(())
}

fn check_expr(text: &str, e: &Expr, scope: &mut Vec<String>) -> Result<(), CypherError> {
    match e {
        Expr::Var(name, pos) => {
            if !scope.contains(name) {
                return Err(CypherError::syntax_at(
                    text,
                    *pos,
                    &format!("Variable `{name}` not defined"),
                ));
            }
        }
        Expr::ListComp {
            var,
            list,
            pred,
            map,
        } => {
            check_expr(text, list, scope)?;
            scope.push(var.clone());
            let r = (|| {
                if let Some(p) = pred {
                    check_expr(text, p, scope)?;
                }
                if let Some(m) = map {
                    check_expr(text, m, scope)?;
                }
                Ok(())
            })();
            scope.pop();
            r?;
        }
        Expr::Quantified {
            var, list, pred, ..
        } => {
            check_expr(text, list, scope)?;
            scope.push(var.clone());
            let r = check_expr(text, pred, scope);
            scope.pop();
            r?;
        }
        Expr::Prop(x, _)
        | Expr::Not(x)
        | Expr::Neg(x)
        | Expr::IsNull(x, _)
        | Expr::HasLabels(x, _) => check_expr(text, x, scope)?,
        Expr::Index(a, b) | Expr::Bin(_, a, b, _) => {
            check_expr(text, a, scope)?;
            check_expr(text, b, scope)?;
        }
        Expr::Slice(a, b, c) => {
            check_expr(text, a, scope)?;
            for x in [b, c].into_iter().flatten() {
                check_expr(text, x, scope)?;
            }
        }
        Expr::List(items) => {
            for i in items {
                check_expr(text, i, scope)?;
            }
        }
        Expr::Map(items) => {
            for (_, i) in items {
                check_expr(text, i, scope)?;
            }
        }
        Expr::Func { args, .. } => {
            for a in args {
                check_expr(text, a, scope)?;
            }
        }
        Expr::Case {
            subject,
            whens,
            otherwise,
        } => {
            if let Some(s) = subject {
                check_expr(text, s, scope)?;
            }
            for (a, b) in whens {
                check_expr(text, a, scope)?;
                check_expr(text, b, scope)?;
            }
            if let Some(o) = otherwise {
                check_expr(text, o, scope)?;
            }
        }
        Expr::Lit(_) | Expr::Param(..) | Expr::CountStar => {}
    }
    Ok(())
}

fn check_scopes(text: &str, clauses: &[Clause]) -> Result<(), CypherError> {
    let mut scope: Vec<String> = Vec::new();
    let pattern = |p: &Pattern, scope: &mut Vec<String>| -> Result<(), CypherError> {
        for v in p.vars() {
            if !scope.contains(&v) {
                scope.push(v);
            }
        }
        if let Some(e) = &p.start.props {
            check_expr(text, e, scope)?;
        }
        for (r, n) in &p.steps {
            for e in [&r.props, &n.props].into_iter().flatten() {
                check_expr(text, e, scope)?;
            }
        }
        Ok(())
    };
    for c in clauses {
        match c {
            Clause::Match {
                patterns, filter, ..
            } => {
                for p in patterns {
                    pattern(p, &mut scope)?;
                }
                if let Some(f) = filter {
                    check_expr(text, f, &mut scope)?;
                }
            }
            Clause::Unwind { expr, var } => {
                check_expr(text, expr, &mut scope)?;
                scope.push(var.clone());
            }
            Clause::With(p) | Clause::Return(p) => {
                for i in &p.items {
                    check_expr(text, &i.expr, &mut scope)?;
                }
                let mut next: Vec<String> = if p.star { scope.clone() } else { Vec::new() };
                for i in &p.items {
                    next.push(i.name.clone());
                }
                let mut both = scope.clone();
                both.extend(next.iter().cloned());
                for (e, _) in &p.order {
                    check_expr(text, e, &mut both)?;
                }
                for e in [&p.skip, &p.limit].into_iter().flatten() {
                    check_expr(text, e, &mut Vec::new())?;
                }
                if let Some(f) = &p.filter {
                    check_expr(text, f, &mut next)?;
                }
                scope = next;
            }
            Clause::Create(ps) => {
                for p in ps {
                    pattern(p, &mut scope)?;
                }
            }
            Clause::Merge(p) => pattern(p, &mut scope)?,
            Clause::Set(items) => {
                for i in items {
                    match i {
                        SetItem::Prop { target, value, .. } => {
                            check_expr(text, target, &mut scope)?;
                            check_expr(text, value, &mut scope)?;
                        }
                        SetItem::Replace { var, value, .. } | SetItem::Merge { var, value } => {
                            if !scope.contains(var) {
                                return Err(CypherError::syntax(format!(
                                    "Variable `{var}` not defined"
                                )));
                            }
                            check_expr(text, value, &mut scope)?;
                        }
                        SetItem::Labels { var, .. } => {
                            if !scope.contains(var) {
                                return Err(CypherError::syntax(format!(
                                    "Variable `{var}` not defined"
                                )));
                            }
                        }
                    }
                }
            }
            Clause::Remove(items) => {
                for i in items {
                    match i {
                        RemoveItem::Prop { target, .. } => check_expr(text, target, &mut scope)?,
                        RemoveItem::Labels { var, .. } => {
                            if !scope.contains(var) {
                                return Err(CypherError::syntax(format!(
                                    "Variable `{var}` not defined"
                                )));
                            }
                        }
                    }
                }
            }
            Clause::Delete { exprs, .. } => {
                for e in exprs {
                    check_expr(text, e, &mut scope)?;
                }
            }
            Clause::Call {
                name, args, yields, ..
            } => {
                for a in args.iter().flatten() {
                    check_expr(text, a, &mut scope)?;
                }
                match yields {
                    Some(y) if y.star => {
                        for c in
                            procs::procedure_columns(&name.to_ascii_lowercase()).unwrap_or_default()
                        {
                            scope.push(c.to_string());
                        }
                    }
                    Some(y) => {
                        let cols = procs::procedure_columns(&name.to_ascii_lowercase())
                            .unwrap_or_default();
                        for (col, alias) in &y.items {
                            if !cols.contains(&col.as_str()) {
                                return Err(CypherError::syntax(format!(
                                    "Unknown procedure output: `{col}`"
                                )));
                            }
                            scope.push(alias.clone());
                        }
                        if let Some(f) = &y.filter {
                            check_expr(text, f, &mut scope)?;
                        }
                    }
                    None => {}
                }
            }
            Clause::Show {
                what,
                yields,
                filter,
            } => {
                let all = procs::show_columns(what, true);
                match yields {
                    Some(y) if y.star => scope.extend(all),
                    Some(y) => {
                        for (col, alias) in &y.items {
                            if !all.contains(col) {
                                return Err(CypherError::syntax(format!(
                                    "Trying to YIELD non-existing column: `{col}`"
                                )));
                            }
                            scope.push(alias.clone());
                        }
                        if let Some(f) = &y.filter {
                            check_expr(text, f, &mut scope)?;
                        }
                    }
                    None => scope.extend(procs::show_columns(what, false)),
                }
                if let Some(f) = filter {
                    check_expr(text, f, &mut scope)?;
                }
            }
        }
    }
    Ok(())
}

fn notification(
    code: &str,
    severity: &str,
    title: &str,
    description: String,
    text: &str,
    offset: Option<usize>,
) -> Json {
    let mut pairs = vec![
        ("code".to_owned(), Json::str(code)),
        ("severity".to_owned(), Json::str(severity)),
        ("title".to_owned(), Json::str(title)),
        ("description".to_owned(), Json::Str(description)),
    ];
    if let Some(off) = offset {
        let (line, col, _) = super::line_col(text, off);
        pairs.push((
            "position".into(),
            Json::obj([
                ("offset", Json::Int(off as i64)),
                ("line", Json::Int(line as i64)),
                ("column", Json::Int(col as i64)),
            ]),
        ));
    }
    Json::Obj(pairs)
}

/// Planner notifications: cartesian products, unknown labels and types, the deprecated
/// `SET n = <not a map>`.
fn notifications(
    text: &str,
    stmt: &Statement,
    graph: &Graph,
    params: &HashMap<String, Value>,
) -> Vec<Json> {
    let mut out = Vec::new();
    let Body::Query(clauses) = &stmt.body else {
        return out;
    };
    let mut bound: HashSet<String> = HashSet::new();
    for c in clauses {
        match c {
            Clause::Match { patterns, pos, .. } => {
                // Connected components of the patterns (sharing variables or bound before).
                if patterns.len() > 1 {
                    let mut groups: Vec<HashSet<String>> = Vec::new();
                    for p in patterns {
                        let vars: HashSet<String> = p.vars().into_iter().collect();
                        let mut merged = vars.clone();
                        groups.retain(|g| {
                            if g.iter().any(|v| vars.contains(v)) {
                                merged.extend(g.iter().cloned());
                                false
                            } else {
                                true
                            }
                        });
                        groups.push(merged);
                    }
                    let unbound: Vec<&HashSet<String>> = groups
                        .iter()
                        .filter(|g| !g.iter().any(|v| bound.contains(v)))
                        .collect();
                    if groups.len() > 1 && unbound.len() > 1 {
                        let mut names: Vec<String> = unbound[1..]
                            .iter()
                            .flat_map(|g| g.iter().cloned())
                            .collect();
                        names.sort();
                        let ident = if names.len() == 1 {
                            format!("(identifier is: ({}))", names[0])
                        } else {
                            format!("(identifiers are: ({}))", names.join(", "))
                        };
                        out.push(notification(
                            "Neo.ClientNotification.Statement.CartesianProduct",
                            "INFORMATION",
                            "This query builds a cartesian product between disconnected patterns.",
                            format!("If a part of a query contains multiple disconnected patterns, this will build a cartesian product between all those parts. This may produce a large amount of data and slow down query processing. While occasionally intended, it may often be possible to reformulate the query that avoids the use of this cross product, perhaps by adding a relationship between the different parts or by using OPTIONAL MATCH {ident}"),
                            text,
                            Some(*pos),
                        ));
                    }
                }
                for p in patterns {
                    let mut nodes = vec![&p.start];
                    nodes.extend(p.steps.iter().map(|(_, n)| n));
                    for n in nodes {
                        for (l, lpos) in &n.labels {
                            if !graph.labels.contains(l) {
                                out.push(notification(
                                    "Neo.ClientNotification.Statement.UnknownLabelWarning",
                                    "WARNING",
                                    "The provided label is not in the database.",
                                    format!("One of the labels in your query is not available in the database, make sure you didn't misspell it or that the label is available when you run this statement in your application (the missing label name is: {l})"),
                                    text,
                                    Some(*lpos),
                                ));
                            }
                        }
                    }
                    for (r, _) in &p.steps {
                        for (t, tpos) in &r.types {
                            if !graph.rel_types.contains(t) {
                                out.push(notification(
                                    "Neo.ClientNotification.Statement.UnknownRelationshipTypeWarning",
                                    "WARNING",
                                    "The provided relationship type is not in the database.",
                                    format!("One of the relationship types in your query is not available in the database, make sure you didn't misspell it or that the label is available when you run this statement in your application (the missing relationship type is: {t})"),
                                    text,
                                    Some(*tpos),
                                ));
                            }
                        }
                    }
                    bound.extend(p.vars());
                }
            }
            Clause::Set(items) => {
                for i in items {
                    if let SetItem::Replace {
                        value, value_pos, ..
                    } = i
                    {
                        let map_typed = match value {
                            Expr::Map(_) => true,
                            Expr::Func { name, .. } => name == "properties",
                            Expr::Param(p, _) => matches!(params.get(p), Some(Value::Map(_))),
                            _ => false,
                        };
                        if !map_typed {
                            out.push(notification(
                                "Neo.ClientNotification.Statement.FeatureDeprecationWarning",
                                "WARNING",
                                "This feature is deprecated and will be removed in future versions.",
                                "The use of nodes or relationships for setting properties is deprecated and will be removed in a future version. Please use properties() instead.".into(),
                                text,
                                Some(*value_pos),
                            ));
                        }
                    }
                }
            }
            other => {
                if let Clause::Unwind { var, .. } = other {
                    bound.insert(var.clone());
                }
            }
        }
    }
    out
}

fn explain_plan(stmt: &Statement, columns: &[String]) -> Json {
    let idents: Vec<Json> = columns
        .iter()
        .map(|c| Json::Str(format!("`{c}`")))
        .collect();
    let details = columns
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    // A count over one label is answered from the count store, as the recording shows.
    let (op, op_details) = match &stmt.body {
        Body::Query(cl) => match (cl.first(), cl.last()) {
            (
                Some(Clause::Match {
                    patterns,
                    filter: None,
                    ..
                }),
                Some(Clause::Return(p)),
            ) if cl.len() == 2
                && patterns.len() == 1
                && patterns[0].steps.is_empty()
                && p.items.len() == 1
                && matches!(&p.items[0].expr, Expr::Func { name, .. } if name == "count") =>
            {
                let label = patterns[0]
                    .start
                    .labels
                    .first()
                    .map(|(l, _)| format!(":{l}"))
                    .unwrap_or_default();
                (
                    "NodeCountFromCountStore",
                    format!("count( ({label}) ) AS `{}`", p.items[0].name),
                )
            }
            _ => ("AllNodesScan", details.clone()),
        },
        _ => ("CreateIndex", String::new()),
    };
    let table = format!(
        "Planner COST\n\nRuntime SLOTTED\n\nRuntime version 5.3\n\n+-{0}-+\n| Operator | Details |\n+-{0}-+\n| +ProduceResults | {details} |\n| +{op} | {op_details} |\n+-{0}-+\n\nTotal database accesses: ?\n",
        "-".repeat(20)
    );
    Json::obj([(
        "root",
        Json::obj([
            ("operatorType", Json::str("ProduceResults@neo4j")),
            ("planner-impl", Json::str("IDP")),
            ("Details", Json::Str(details)),
            ("planner-version", Json::str("5.3")),
            ("string-representation", Json::Str(table)),
            ("runtime-version", Json::str("5.3")),
            ("runtime", Json::str("SLOTTED")),
            ("Id", Json::Int(0)),
            ("runtime-impl", Json::str("SLOTTED")),
            ("EstimatedRows", Json::Float(1.0)),
            ("planner", Json::str("COST")),
            ("identifiers", Json::Arr(idents.clone())),
            (
                "children",
                Json::Arr(vec![Json::obj([
                    ("operatorType", Json::Str(format!("{op}@neo4j"))),
                    ("Details", Json::Str(op_details)),
                    ("Id", Json::Int(1)),
                    ("EstimatedRows", Json::Float(1.0)),
                    ("identifiers", Json::Arr(idents)),
                    ("children", Json::Arr(vec![])),
                ])]),
            ),
        ]),
    )])
}

fn lookup<'r>(row: &'r Row, name: &str) -> Option<&'r Value> {
    row.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn bind(row: &mut Row, name: &str, v: Value) {
    row.push((name.to_owned(), v));
}

/// `AND`-separated parts of a filter.
fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Bin(BinOp::And, a, b, _) => {
            let mut v = conjuncts(a);
            v.extend(conjuncts(b));
            v
        }
        other => vec![other],
    }
}

fn refers_to(e: &Expr, vars: &[String]) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if let Expr::Var(n, _) = x {
            if vars.contains(n) {
                found = true;
            }
        }
    });
    found
}

/// Id bounds for one variable from `id(v) = e`, `id(v) > e`… in the filter.
#[derive(Default, Clone, Copy, Debug)]
struct IdRange {
    exact: Option<i64>,
    lo: Option<i64>,
    hi: Option<i64>,
    none: bool,
}

impl Exec<'_> {
    fn id_range(
        &mut self,
        var: &str,
        filter: Option<&Expr>,
        row: &Row,
        pattern_vars: &[String],
    ) -> Result<IdRange, CypherError> {
        let mut r = IdRange::default();
        let Some(f) = filter else { return Ok(r) };
        for c in conjuncts(f) {
            let Expr::Bin(op, a, b, _) = c else { continue };
            let is_id = |e: &Expr| matches!(e, Expr::Func { name, args, .. } if (name == "id" || name == "elementid") && matches!(args.first(), Some(Expr::Var(v, _)) if v == var));
            let elem = |e: &Expr| matches!(e, Expr::Func { name, .. } if name == "elementid");
            let (op, other, element) = if is_id(a) && !refers_to(b, pattern_vars) {
                (*op, b.as_ref(), elem(a))
            } else if is_id(b) && !refers_to(a, pattern_vars) {
                let flipped = match op {
                    BinOp::Lt => BinOp::Gt,
                    BinOp::Gt => BinOp::Lt,
                    BinOp::Le => BinOp::Ge,
                    BinOp::Ge => BinOp::Le,
                    o => *o,
                };
                (flipped, a.as_ref(), elem(b))
            } else {
                continue;
            };
            let v = self.eval(other, row)?;
            let n = match (&v, element) {
                (Value::Int(i), false) => *i,
                (Value::Str(s), true) => {
                    match s.rsplit(':').next().and_then(|x| x.parse::<i64>().ok()) {
                        Some(i)
                            if s.starts_with(&format!("4:{}:", self.db.uuid))
                                || s.starts_with(&format!("5:{}:", self.db.uuid)) =>
                        {
                            i
                        }
                        _ => {
                            if op == BinOp::Eq {
                                r.none = true;
                            }
                            continue;
                        }
                    }
                }
                (Value::Null, _) => {
                    r.none = true;
                    continue;
                }
                _ => continue,
            };
            match op {
                BinOp::Eq => r.exact = Some(n),
                BinOp::Gt => r.lo = Some(r.lo.map_or(n + 1, |l| l.max(n + 1))),
                BinOp::Ge => r.lo = Some(r.lo.map_or(n, |l| l.max(n))),
                BinOp::Lt => r.hi = Some(r.hi.map_or(n - 1, |h| h.min(n - 1))),
                BinOp::Le => r.hi = Some(r.hi.map_or(n, |h| h.min(n))),
                _ => {}
            }
        }
        Ok(r)
    }

    fn candidate_nodes(&mut self, np: &NodePat, range: IdRange) -> Vec<u64> {
        if range.none {
            return Vec::new();
        }
        if let Some(e) = range.exact {
            if e < 0 {
                return Vec::new();
            }
            return if self.tx.graph.nodes.contains_key(&(e as u64)) {
                vec![e as u64]
            } else {
                Vec::new()
            };
        }
        let lo = range.lo.unwrap_or(0).max(0) as u64;
        let hi = range.hi.unwrap_or(i64::MAX);
        if hi < 0 || (hi as u64) < lo {
            return Vec::new();
        }
        let labels: Vec<&String> = np.labels.iter().map(|(l, _)| l).collect();
        self.tx
            .graph
            .nodes
            .range(lo..=hi as u64)
            .filter(|(_, n)| labels.iter().all(|l| n.labels.contains(l)))
            .map(|(id, _)| *id)
            .collect()
    }

    fn node_matches(&mut self, id: u64, np: &NodePat, row: &Row) -> Result<bool, CypherError> {
        let Some(n) = self.tx.graph.nodes.get(&id).cloned() else {
            return Ok(false);
        };
        if !np.labels.iter().all(|(l, _)| n.labels.contains(l)) {
            return Ok(false);
        }
        if let Some(props) = &np.props {
            let want = self.eval(props, row)?;
            if let Value::Map(m) = want {
                for (k, v) in m {
                    let have = n.props.iter().find(|(k2, _)| *k2 == k).map(|(_, v)| v);
                    match have {
                        Some(h) if cypher_eq(h, &v) == Some(true) => {}
                        _ => return Ok(false),
                    }
                }
            }
        }
        Ok(true)
    }

    fn rel_matches(&mut self, id: u64, rp: &RelPat, row: &Row) -> Result<bool, CypherError> {
        let Some(r) = self.tx.graph.rels.get(&id).cloned() else {
            return Ok(false);
        };
        if !rp.types.is_empty() && !rp.types.iter().any(|(t, _)| *t == r.rel_type) {
            return Ok(false);
        }
        if let Some(props) = &rp.props {
            if let Value::Map(m) = self.eval(props, row)? {
                for (k, v) in m {
                    let have = r.props.iter().find(|(k2, _)| *k2 == k).map(|(_, v)| v);
                    match have {
                        Some(h) if cypher_eq(h, &v) == Some(true) => {}
                        _ => return Ok(false),
                    }
                }
            }
        }
        Ok(true)
    }

    /// All bindings of `patterns` extending `row`.
    fn match_patterns(
        &mut self,
        row: &Row,
        patterns: &[Pattern],
        filter: Option<&Expr>,
    ) -> Result<Vec<Row>, CypherError> {
        let pattern_vars: Vec<String> = patterns.iter().flat_map(|p| p.vars()).collect();
        let mut partial: Vec<(Row, Vec<u64>)> = vec![(row.clone(), Vec::new())];
        for p in patterns {
            let mut next = Vec::new();
            for (r, used) in partial {
                self.match_one(&r, &used, p, filter, &pattern_vars, &mut next)?;
            }
            partial = next;
        }
        let mut out = Vec::new();
        for (r, _) in partial {
            match filter {
                Some(f) => {
                    if self.eval(f, &r)? == Value::Bool(true) {
                        out.push(r);
                    }
                }
                None => out.push(r),
            }
        }
        Ok(out)
    }

    fn match_one(
        &mut self,
        row: &Row,
        used: &[u64],
        p: &Pattern,
        filter: Option<&Expr>,
        pattern_vars: &[String],
        out: &mut Vec<(Row, Vec<u64>)>,
    ) -> Result<(), CypherError> {
        // One relationship between two unbound nodes: drive by relationships.
        let unbound = |np: &NodePat| np.var.as_ref().is_none_or(|v| lookup(row, v).is_none());
        if p.steps.len() == 1
            && unbound(&p.start)
            && unbound(&p.steps[0].1)
            && p.steps[0].0.var_length.is_none()
        {
            let (rp, end) = &p.steps[0];
            let range = match &rp.var {
                Some(v) if lookup(row, v).is_none() => {
                    self.id_range(v, filter, row, pattern_vars)?
                }
                _ => IdRange::default(),
            };
            let start_range = match &p.start.var {
                Some(v) => self.id_range(v, filter, row, pattern_vars)?,
                None => IdRange::default(),
            };
            if start_range.exact.is_none() && start_range.lo.is_none() {
                let ids: Vec<u64> = if range.none {
                    Vec::new()
                } else if let Some(e) = range.exact {
                    if e >= 0 && self.tx.graph.rels.contains_key(&(e as u64)) {
                        vec![e as u64]
                    } else {
                        vec![]
                    }
                } else {
                    let lo = range.lo.unwrap_or(0).max(0) as u64;
                    let hi = range.hi.unwrap_or(i64::MAX).max(-1);
                    if hi < 0 || (hi as u64) < lo {
                        Vec::new()
                    } else {
                        let types: Vec<&String> = rp.types.iter().map(|(t, _)| t).collect();
                        self.tx
                            .graph
                            .rels
                            .range(lo..=hi as u64)
                            .filter(|(_, r)| types.is_empty() || types.contains(&&r.rel_type))
                            .map(|(id, _)| *id)
                            .collect()
                    }
                };
                for rid in ids {
                    if used.contains(&rid) || !self.rel_matches(rid, rp, row)? {
                        continue;
                    }
                    let r = self.tx.graph.rels.get(&rid).cloned().unwrap();
                    let orientations: Vec<(u64, u64)> = match rp.dir {
                        Dir::Out => vec![(r.start, r.end)],
                        Dir::In => vec![(r.end, r.start)],
                        Dir::Both => {
                            if r.start == r.end {
                                vec![(r.start, r.end)]
                            } else {
                                vec![(r.start, r.end), (r.end, r.start)]
                            }
                        }
                    };
                    for (a, b) in orientations {
                        if !self.node_matches(a, &p.start, row)? {
                            continue;
                        }
                        let mut r1 = row.clone();
                        if let Some(v) = &p.start.var {
                            bind(&mut r1, v, Value::Node(a));
                        }
                        if !self.node_matches(b, end, &r1)? {
                            continue;
                        }
                        if let (Some(v1), Some(v2)) = (&p.start.var, &end.var) {
                            if v1 == v2 && a != b {
                                continue;
                            }
                        }
                        if let Some(v) = &rp.var {
                            bind(&mut r1, v, Value::Rel(rid));
                        }
                        if let Some(v) = &end.var {
                            if end.var != p.start.var {
                                bind(&mut r1, v, Value::Node(b));
                            }
                        }
                        if let Some(pv) = &p.var {
                            bind(
                                &mut r1,
                                pv,
                                Value::Path(vec![Value::Node(a), Value::Rel(rid), Value::Node(b)]),
                            );
                        }
                        let mut u = used.to_vec();
                        u.push(rid);
                        out.push((r1, u));
                    }
                }
                return Ok(());
            }
        }
        // Start node candidates.
        let starts: Vec<u64> = match p.start.var.as_ref().and_then(|v| lookup(row, v)) {
            Some(Value::Node(id)) => vec![*id],
            Some(Value::Null) => return Ok(()),
            Some(other) => {
                return Err(CypherError::runtime(
                    codes::TYPE,
                    format!(
                        "Expected to find a node but found {} instead",
                        other.type_name()
                    ),
                ))
            }
            None => {
                let range = match &p.start.var {
                    Some(v) => self.id_range(v, filter, row, pattern_vars)?,
                    None => IdRange::default(),
                };
                self.candidate_nodes(&p.start, range)
            }
        };
        for s in starts {
            if !self.node_matches(s, &p.start, row)? {
                continue;
            }
            let mut r1 = row.clone();
            if let Some(v) = &p.start.var {
                if lookup(row, v).is_none() {
                    bind(&mut r1, v, Value::Node(s));
                }
            }
            self.expand(&r1, used.to_vec(), p, 0, s, vec![Value::Node(s)], out)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn expand(
        &mut self,
        row: &Row,
        used: Vec<u64>,
        p: &Pattern,
        step: usize,
        cur: u64,
        path: Vec<Value>,
        out: &mut Vec<(Row, Vec<u64>)>,
    ) -> Result<(), CypherError> {
        if step == p.steps.len() {
            let mut r = row.clone();
            if let Some(pv) = &p.var {
                bind(&mut r, pv, Value::Path(path));
            }
            out.push((r, used));
            return Ok(());
        }
        let (rp, np) = &p.steps[step];
        if rp.var_length.is_some() {
            return Err(CypherError::compile(
                codes::SYNTAX,
                "variable-length relationships are not supported by the fake Neo4j",
            ));
        }
        let bound_rel = rp.var.as_ref().and_then(|v| lookup(row, v)).cloned();
        let candidates = match &bound_rel {
            Some(Value::Rel(id)) => vec![*id],
            Some(_) => return Ok(()),
            None => self.tx.rels_of(cur),
        };
        for rid in candidates {
            if used.contains(&rid) || !self.rel_matches(rid, rp, row)? {
                continue;
            }
            let r = self.tx.graph.rels.get(&rid).cloned().unwrap();
            let mut others = Vec::new();
            if matches!(rp.dir, Dir::Out | Dir::Both) && r.start == cur {
                others.push(r.end);
            }
            if matches!(rp.dir, Dir::In | Dir::Both)
                && r.end == cur
                && !(rp.dir == Dir::Both && r.start == cur)
            {
                others.push(r.start);
            }
            for other in others {
                let bound_node = np.var.as_ref().and_then(|v| lookup(row, v)).cloned();
                match &bound_node {
                    Some(Value::Node(id)) if *id != other => continue,
                    Some(Value::Node(_)) | None => {}
                    Some(_) => continue,
                }
                if !self.node_matches(other, np, row)? {
                    continue;
                }
                let mut r1 = row.clone();
                if let Some(v) = &rp.var {
                    if bound_rel.is_none() {
                        bind(&mut r1, v, Value::Rel(rid));
                    }
                }
                if let Some(v) = &np.var {
                    if bound_node.is_none() {
                        bind(&mut r1, v, Value::Node(other));
                    }
                }
                let mut u = used.clone();
                u.push(rid);
                let mut path2 = path.clone();
                path2.push(Value::Rel(rid));
                path2.push(Value::Node(other));
                self.expand(&r1, u, p, step + 1, other, path2, out)?;
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------------------------

    fn query(&mut self, clauses: &[Clause], out: &mut StatementOutput) -> Result<(), CypherError> {
        let mut rows: Vec<Row> = vec![Vec::new()];
        let last = clauses.len() - 1;
        for (i, clause) in clauses.iter().enumerate() {
            match clause {
                Clause::Match {
                    optional,
                    patterns,
                    filter,
                    ..
                } => {
                    let mut next = Vec::new();
                    for r in &rows {
                        let found = self.match_patterns(r, patterns, filter.as_ref())?;
                        if found.is_empty() && *optional {
                            let mut r1 = r.clone();
                            for p in patterns {
                                for v in p.vars() {
                                    if lookup(&r1, &v).is_none() {
                                        bind(&mut r1, &v, Value::Null);
                                    }
                                }
                            }
                            next.push(r1);
                        }
                        next.extend(found);
                    }
                    rows = next;
                }
                Clause::Unwind { expr, var } => {
                    let mut next = Vec::new();
                    for r in &rows {
                        match self.eval(expr, r)?.unarray() {
                            Value::Null => {}
                            Value::List(items) => {
                                for item in items {
                                    let mut r1 = r.clone();
                                    bind(&mut r1, var, item);
                                    next.push(r1);
                                }
                            }
                            Value::Bytes(b) => {
                                for item in b {
                                    let mut r1 = r.clone();
                                    bind(&mut r1, var, Value::Int(item as i64));
                                    next.push(r1);
                                }
                            }
                            other => {
                                let mut r1 = r.clone();
                                bind(&mut r1, var, other);
                                next.push(r1);
                            }
                        }
                    }
                    rows = next;
                }
                Clause::With(p) => {
                    let (_, projected) = self.project(rows, p, None)?;
                    rows = projected;
                }
                Clause::Return(p) => {
                    let mut partial = Vec::new();
                    let result = self.project(rows, p, Some(&mut partial));
                    match result {
                        Ok((cols, projected)) => {
                            out.columns = cols.clone();
                            out.rows = projected
                                .into_iter()
                                .map(|r| {
                                    cols.iter()
                                        .map(|c| lookup(&r, c).cloned().unwrap_or(Value::Null))
                                        .collect()
                                })
                                .collect();
                            return Ok(());
                        }
                        Err(e) => {
                            out.rows = partial;
                            return Err(e);
                        }
                    }
                }
                Clause::Create(patterns) => {
                    let mut next = Vec::with_capacity(rows.len());
                    for r in rows {
                        let mut r1 = r;
                        for p in patterns {
                            self.create_pattern(&mut r1, p)?;
                        }
                        next.push(r1);
                    }
                    rows = next;
                }
                Clause::Merge(p) => {
                    let mut next = Vec::new();
                    for r in rows {
                        let found = self.match_patterns(&r, std::slice::from_ref(p), None)?;
                        if found.is_empty() {
                            let mut r1 = r;
                            self.create_pattern(&mut r1, p)?;
                            next.push(r1);
                        } else {
                            next.extend(found);
                        }
                    }
                    rows = next;
                }
                Clause::Set(items) => {
                    for r in &rows {
                        for item in items {
                            self.set_item(item, r)?;
                        }
                    }
                }
                Clause::Remove(items) => {
                    for r in &rows {
                        for item in items {
                            self.remove_item(item, r)?;
                        }
                    }
                }
                Clause::Delete { detach, exprs } => {
                    for r in &rows {
                        for e in exprs {
                            let v = self.eval(e, r)?;
                            self.delete_value(&v, *detach)?;
                        }
                    }
                }
                Clause::Call {
                    name, args, yields, ..
                } => {
                    let lname = name.to_ascii_lowercase();
                    let mut next = Vec::new();
                    for r in &rows {
                        let mut argv = Vec::new();
                        for a in args.iter().flatten() {
                            argv.push(self.eval(a, r)?);
                        }
                        let (cols, results) = procs::call(self, &lname, &argv)?;
                        for res in results {
                            let mut r1 = r.clone();
                            match yields {
                                Some(y) if !y.star => {
                                    for (col, alias) in &y.items {
                                        let idx = cols.iter().position(|c| c == col).unwrap_or(0);
                                        bind(&mut r1, alias, res[idx].clone());
                                    }
                                }
                                _ => {
                                    for (c, v) in cols.iter().zip(res) {
                                        bind(&mut r1, c, v);
                                    }
                                }
                            }
                            if let Some(Yield {
                                filter: Some(f), ..
                            }) = yields
                            {
                                if self.eval(f, &r1)? != Value::Bool(true) {
                                    continue;
                                }
                            }
                            next.push(r1);
                        }
                        if i == last {
                            out.columns = match yields {
                                Some(y) if !y.star => {
                                    y.items.iter().map(|(_, a)| a.clone()).collect()
                                }
                                _ => cols.clone(),
                            };
                        }
                    }
                    rows = next;
                    if i == last {
                        let cols = out.columns.clone();
                        out.rows = rows
                            .iter()
                            .map(|r| {
                                cols.iter()
                                    .map(|c| lookup(r, c).cloned().unwrap_or(Value::Null))
                                    .collect()
                            })
                            .collect();
                        return Ok(());
                    }
                }
                Clause::Show {
                    what,
                    yields,
                    filter,
                } => {
                    let (cols, results) = procs::show(self, what, yields.as_ref())?;
                    let mut next = Vec::new();
                    for res in results {
                        let mut r1: Row = Vec::new();
                        match yields {
                            Some(y) if !y.star => {
                                for (col, alias) in &y.items {
                                    let idx = cols.iter().position(|c| c == col).unwrap_or(0);
                                    bind(&mut r1, alias, res[idx].clone());
                                }
                            }
                            _ => {
                                for (c, v) in cols.iter().zip(res) {
                                    bind(&mut r1, c, v);
                                }
                            }
                        }
                        let keep = match (yields.as_ref().and_then(|y| y.filter.as_ref()), filter) {
                            (Some(f), _) | (None, Some(f)) => {
                                self.eval(f, &r1)? == Value::Bool(true)
                            }
                            _ => true,
                        };
                        if keep {
                            next.push(r1);
                        }
                    }
                    rows = next;
                    if i == last {
                        out.columns = match yields {
                            Some(y) if !y.star => y.items.iter().map(|(_, a)| a.clone()).collect(),
                            Some(_) => cols,
                            None => procs::show_columns(what, false),
                        };
                        let cols = out.columns.clone();
                        out.rows = rows
                            .iter()
                            .map(|r| {
                                cols.iter()
                                    .map(|c| lookup(r, c).cloned().unwrap_or(Value::Null))
                                    .collect()
                            })
                            .collect();
                        return Ok(());
                    }
                }
            }
        }
        out.columns.clear();
        out.rows.clear();
        Ok(())
    }

    fn int_arg(&mut self, e: &Expr, what: &str) -> Result<usize, CypherError> {
        match self.eval(e, &Vec::new())? {
            Value::Int(i) if i >= 0 => Ok(i as usize),
            Value::Float(f) if f >= 0.0 && f.fract() == 0.0 => Ok(f as usize),
            other => Err(CypherError::compile(
                codes::SYNTAX,
                format!(
                    "Invalid input. '{}' is not a valid value. Must be a non-negative integer. ({what})",
                    super::eval::to_string(&other).unwrap_or_else(|| other.type_name().to_owned())
                ),
            )),
        }
    }

    /// Projects rows for `WITH`/`RETURN`; `partial` receives the rows produced before a
    /// runtime error, for statements that stream.
    fn project(
        &mut self,
        rows: Vec<Row>,
        p: &Projection,
        mut partial: Option<&mut Vec<Vec<Value>>>,
    ) -> Result<(Vec<String>, Vec<Row>), CypherError> {
        let mut items: Vec<(String, Option<&Expr>)> = Vec::new();
        if p.star {
            let mut seen = Vec::new();
            if let Some(first) = rows.first() {
                for (k, _) in first.iter() {
                    if !seen.contains(k) {
                        seen.push(k.clone());
                    }
                }
            }
            seen.sort();
            for k in seen {
                items.push((k, None));
            }
        }
        for i in &p.items {
            items.push((i.name.clone(), Some(&i.expr)));
        }
        let columns: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
        let has_agg = p.items.iter().any(|i| i.expr.has_aggregate());
        let streaming = p.order.is_empty() && !p.distinct && !has_agg && p.skip.is_none();
        let limit = match &p.limit {
            Some(l) => Some(self.int_arg(l, "LIMIT")?),
            None => None,
        };
        let skip = match &p.skip {
            Some(s) => self.int_arg(s, "SKIP")?,
            None => 0,
        };
        // (projected row, sort keys)
        let mut projected: Vec<(Row, Vec<Value>)> = Vec::new();
        if !has_agg {
            for r in &rows {
                if streaming && limit.is_some_and(|l| projected.len() >= l) {
                    break;
                }
                let mut out_row: Row = Vec::with_capacity(items.len());
                for (name, expr) in &items {
                    let v = match expr {
                        Some(e) => match self.eval(e, r) {
                            Ok(v) => v,
                            Err(err) => {
                                if streaming {
                                    if let Some(part) = partial.as_deref_mut() {
                                        *part = projected
                                            .iter()
                                            .map(|(pr, _)| {
                                                columns
                                                    .iter()
                                                    .map(|c| {
                                                        lookup(pr, c)
                                                            .cloned()
                                                            .unwrap_or(Value::Null)
                                                    })
                                                    .collect()
                                            })
                                            .collect();
                                    }
                                }
                                return Err(err);
                            }
                        },
                        None => lookup(r, name).cloned().unwrap_or(Value::Null),
                    };
                    out_row.push((name.clone(), v));
                }
                let mut keys = Vec::new();
                if !p.order.is_empty() {
                    let mut env = r.clone();
                    env.extend(out_row.iter().cloned());
                    for (e, _) in &p.order {
                        keys.push(self.eval(e, &env)?);
                    }
                }
                projected.push((out_row, keys));
            }
        } else {
            let key_idx: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, (_, e))| e.is_none_or(|e| !e.has_aggregate()))
                .map(|(i, _)| i)
                .collect();
            let mut groups: Vec<(Vec<Value>, Vec<usize>)> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for (ri, r) in rows.iter().enumerate() {
                let mut key = Vec::new();
                for &k in &key_idx {
                    let (name, e) = &items[k];
                    key.push(match e {
                        Some(e) => self.eval(e, r)?,
                        None => lookup(r, name).cloned().unwrap_or(Value::Null),
                    });
                }
                let repr = format!("{key:?}");
                match index.get(&repr) {
                    Some(&g) => groups[g].1.push(ri),
                    None => {
                        index.insert(repr, groups.len());
                        groups.push((key, vec![ri]));
                    }
                }
            }
            if groups.is_empty() && key_idx.is_empty() {
                groups.push((Vec::new(), Vec::new()));
            }
            for (key, members) in groups {
                let group_rows: Vec<&Row> = members.iter().map(|&i| &rows[i]).collect();
                self.agg.clear();
                for (_, e) in &items {
                    if let Some(e) = e {
                        self.compute_aggregates(e, &group_rows)?;
                    }
                }
                let base: Row = group_rows.first().map(|r| (*r).clone()).unwrap_or_default();
                let mut out_row: Row = Vec::new();
                let mut ki = 0;
                for (i, (name, e)) in items.iter().enumerate() {
                    let v = if key_idx.contains(&i) {
                        ki += 1;
                        key[ki - 1].clone()
                    } else {
                        self.eval(e.unwrap(), &base)?
                    };
                    out_row.push((name.clone(), v));
                }
                let mut keys = Vec::new();
                for (e, _) in &p.order {
                    keys.push(self.eval(e, &out_row)?);
                }
                projected.push((out_row, keys));
            }
            self.agg.clear();
        }
        if p.distinct {
            let mut seen: HashSet<String> = HashSet::new();
            projected.retain(|(r, _)| {
                seen.insert(format!(
                    "{:?}",
                    r.iter().map(|(_, v)| v).collect::<Vec<_>>()
                ))
            });
        }
        if !p.order.is_empty() {
            let desc: Vec<bool> = p.order.iter().map(|(_, d)| *d).collect();
            projected.sort_by(|(_, a), (_, b)| {
                for (i, d) in desc.iter().enumerate() {
                    let o = order(&a[i], &b[i]);
                    let o = if *d { o.reverse() } else { o };
                    if o != std::cmp::Ordering::Equal {
                        return o;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        let mut out: Vec<Row> = projected.into_iter().map(|(r, _)| r).skip(skip).collect();
        if let Some(l) = limit {
            out.truncate(l);
        }
        if let Some(f) = &p.filter {
            let mut kept = Vec::new();
            for r in out {
                if self.eval(f, &r)? == Value::Bool(true) {
                    kept.push(r);
                }
            }
            out = kept;
        }
        Ok((columns, out))
    }

    fn compute_aggregates(&mut self, e: &Expr, group: &[&Row]) -> Result<(), CypherError> {
        let mut aggs: Vec<&Expr> = Vec::new();
        e.walk(&mut |x| {
            if matches!(x, Expr::CountStar)
                || matches!(x, Expr::Func { name, .. } if is_aggregate(name))
            {
                aggs.push(x);
            }
        });
        for a in aggs {
            let key = a as *const Expr as usize;
            let v = match a {
                Expr::CountStar => Value::Int(group.len() as i64),
                Expr::Func {
                    name,
                    args,
                    distinct,
                    ..
                } => {
                    let Some(arg) = args.first() else {
                        return Err(CypherError::compile(
                            codes::SYNTAX,
                            format!("Insufficient parameters for function '{name}'"),
                        ));
                    };
                    let mut vals = Vec::new();
                    for r in group {
                        let v = self.eval(arg, r)?;
                        if !v.is_null() {
                            vals.push(v);
                        }
                    }
                    if *distinct {
                        let mut seen = HashSet::new();
                        vals.retain(|v| seen.insert(format!("{v:?}")));
                    }
                    match name.as_str() {
                        "count" => Value::Int(vals.len() as i64),
                        "collect" => Value::List(vals),
                        "sum" => {
                            if vals.iter().all(|v| matches!(v, Value::Int(_))) {
                                let mut s: i64 = 0;
                                for v in &vals {
                                    if let Value::Int(i) = v {
                                        s = s.checked_add(*i).ok_or_else(|| {
                                            CypherError::runtime(codes::ARITHMETIC, "long overflow")
                                        })?;
                                    }
                                }
                                Value::Int(s)
                            } else {
                                let mut s = 0.0;
                                for v in &vals {
                                    s += v.as_f64().ok_or_else(|| CypherError::runtime(codes::TYPE, format!("sum() can only handle numerical values, durations, and null. Got {}", v.type_name())))?;
                                }
                                Value::Float(s)
                            }
                        }
                        "avg" => {
                            if vals.is_empty() {
                                Value::Null
                            } else {
                                let mut s = 0.0;
                                for v in &vals {
                                    s += v.as_f64().ok_or_else(|| CypherError::runtime(codes::TYPE, format!("avg() can only handle numerical values, durations, and null. Got {}", v.type_name())))?;
                                }
                                Value::Float(s / vals.len() as f64)
                            }
                        }
                        "min" => vals.into_iter().min_by(order).unwrap_or(Value::Null),
                        "max" => vals.into_iter().max_by(order).unwrap_or(Value::Null),
                        _ => Value::Null,
                    }
                }
                _ => continue,
            };
            self.agg.insert(key, v);
        }
        Ok(())
    }

    // -------------------------------------------------------------------------------
    // Writes

    fn note_tokens(&mut self, labels: &[String], rel_type: Option<&str>, keys: &[&str]) {
        self.committed.note_tokens(labels, rel_type, keys);
        self.tx.graph.note_tokens(labels, rel_type, keys);
    }

    fn eval_props(
        &mut self,
        e: Option<&Expr>,
        row: &Row,
    ) -> Result<Vec<(String, Value)>, CypherError> {
        let Some(e) = e else { return Ok(Vec::new()) };
        let v = self.eval(e, row)?;
        let map = match v {
            Value::Map(m) => m,
            Value::Null => Vec::new(),
            other => {
                return Err(CypherError::runtime(
                    codes::TYPE,
                    format!("Expected a map but was {}", other.type_name()),
                ))
            }
        };
        // Neo4j makes the key tokens before it looks at the values.
        let keys: Vec<String> = map.iter().map(|(k, _)| k.clone()).collect();
        self.note_tokens(
            &[],
            None,
            &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
        let mut out = Vec::new();
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            check_storable(&v).map_err(|m| CypherError::runtime(codes::TYPE, m))?;
            out.push((k, v.stored()));
        }
        Ok(out)
    }

    fn check_unique(&mut self, id: u64) -> Result<(), CypherError> {
        let Some(n) = self.tx.graph.nodes.get(&id).cloned() else {
            return Ok(());
        };
        let constraints: Vec<ConstraintRule> = self.tx.graph.constraints.clone();
        for c in constraints {
            if !n.labels.contains(&c.label) {
                continue;
            }
            let mine: Vec<&Value> = c
                .properties
                .iter()
                .filter_map(|p| n.props.iter().find(|(k, _)| k == p).map(|(_, v)| v))
                .collect();
            if mine.len() != c.properties.len() {
                continue;
            }
            if let Some(other_id) = self.tx.unique_clash(&c, id) {
                let shown = c
                    .properties
                    .iter()
                    .zip(&mine)
                    .map(|(k, v)| {
                        format!(
                            "property `{k}` = {}",
                            super::eval::to_string(v)
                                .map(|s| if matches!(v, Value::Str(_)) {
                                    format!("'{s}'")
                                } else {
                                    s
                                })
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" and ");
                return Err(CypherError::runtime(
                    codes::CONSTRAINT_VALIDATION,
                    format!(
                        "Node({other_id}) already exists with label `{}` and {shown}",
                        c.label
                    ),
                ));
            }
        }
        Ok(())
    }

    fn create_pattern(&mut self, row: &mut Row, p: &Pattern) -> Result<(), CypherError> {
        let start = self.create_node_pat(row, &p.start)?;
        let mut path = vec![Value::Node(start)];
        let mut cur = start;
        for (rp, np) in &p.steps {
            let next = self.create_node_pat(row, np)?;
            if rp.types.len() != 1 {
                return Err(CypherError::compile(
                    codes::SYNTAX,
                    "Exactly one relationship type must be specified for CREATE. Did you forget to prefix your relationship type with a ':'?",
                ));
            }
            let (a, b) = match rp.dir {
                Dir::Out => (cur, next),
                Dir::In => (next, cur),
                Dir::Both => {
                    return Err(CypherError::compile(
                        codes::SYNTAX,
                        "Only directed relationships are supported in CREATE",
                    ))
                }
            };
            let props = self.eval_props(rp.props.as_ref(), row)?;
            let rel_type = rp.types[0].0.clone();
            let keys: Vec<String> = props.iter().map(|(k, _)| k.clone()).collect();
            self.note_tokens(
                &[],
                Some(&rel_type),
                &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            );
            let id = self.committed.rel_ids.take();
            self.tx.created_rels.push(id);
            self.stats.relationships_created += 1;
            self.stats.properties_set += props.len() as u64;
            self.tx.put_rel(
                id,
                RelRec {
                    rel_type,
                    start: a,
                    end: b,
                    props,
                },
                true,
            );
            if let Some(v) = &rp.var {
                bind(row, v, Value::Rel(id));
            }
            path.push(Value::Rel(id));
            path.push(Value::Node(next));
            cur = next;
        }
        if let Some(pv) = &p.var {
            bind(row, pv, Value::Path(path));
        }
        Ok(())
    }

    fn create_node_pat(&mut self, row: &mut Row, np: &NodePat) -> Result<u64, CypherError> {
        if let Some(v) = &np.var {
            if let Some(existing) = lookup(row, v) {
                return match existing {
                    Value::Node(id) if np.labels.is_empty() && np.props.is_none() => Ok(*id),
                    Value::Node(_) => Err(CypherError::compile(
                        codes::SYNTAX,
                        format!("Can't create node `{v}` with labels or properties here. The variable is already declared in this context"),
                    )),
                    other => Err(CypherError::runtime(
                        codes::TYPE,
                        format!("Expected to find a node at `{v}` but found {} instead", other.type_name()),
                    )),
                };
            }
        }
        // The node (and its label tokens) exists before its properties are checked.
        let labels: Vec<String> = np.labels.iter().map(|(l, _)| l.clone()).collect();
        self.note_tokens(&labels, None, &[]);
        let props = self.eval_props(np.props.as_ref(), row)?;
        let keys: Vec<String> = props.iter().map(|(k, _)| k.clone()).collect();
        self.note_tokens(
            &labels,
            None,
            &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
        let id = self.committed.node_ids.take();
        self.tx.created_nodes.push(id);
        self.stats.nodes_created += 1;
        self.stats.labels_added += labels.len() as u64;
        self.stats.properties_set += props.len() as u64;
        self.tx.put_node(id, NodeRec { labels, props });
        self.check_unique(id)?;
        if let Some(v) = &np.var {
            bind(row, v, Value::Node(id));
        }
        Ok(id)
    }

    fn entity_of(&mut self, v: &Value) -> Result<Option<(bool, u64)>, CypherError> {
        Ok(match v {
            Value::Null => None,
            Value::Node(id) => Some((true, *id)),
            Value::Rel(id) => Some((false, *id)),
            other => {
                return Err(CypherError::runtime(
                    codes::TYPE,
                    format!(
                        "Expected a Node or Relationship but was {}",
                        other.type_name()
                    ),
                ))
            }
        })
    }

    fn write_props(
        &mut self,
        node: bool,
        id: u64,
        f: impl FnOnce(&mut Vec<(String, Value)>),
    ) -> Result<(), CypherError> {
        if node {
            let Some(n) = self.tx.graph.nodes.get(&id).cloned() else {
                return Err(CypherError::runtime(
                    codes::ENTITY_NOT_FOUND,
                    format!("Node with id {id} has been deleted in this transaction"),
                ));
            };
            let mut rec = (*n).clone();
            f(&mut rec.props);
            let keys: Vec<String> = rec.props.iter().map(|(k, _)| k.clone()).collect();
            self.note_tokens(
                &[],
                None,
                &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            );
            self.tx.put_node(id, rec);
            self.check_unique(id)
        } else {
            let Some(r) = self.tx.graph.rels.get(&id).cloned() else {
                return Err(CypherError::runtime(
                    codes::ENTITY_NOT_FOUND,
                    format!("Relationship with id {id} has been deleted in this transaction"),
                ));
            };
            let mut rec = (*r).clone();
            f(&mut rec.props);
            let keys: Vec<String> = rec.props.iter().map(|(k, _)| k.clone()).collect();
            self.note_tokens(
                &[],
                None,
                &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            );
            self.tx.put_rel(id, rec, false);
            Ok(())
        }
    }

    fn map_value(&mut self, v: Value) -> Result<Vec<(String, Value)>, CypherError> {
        Ok(match v {
            Value::Map(m) => m,
            Value::Node(_) | Value::Rel(_) => match self.call_function("properties", &[v])? {
                Value::Map(m) => m,
                _ => Vec::new(),
            },
            Value::Null => Vec::new(),
            other => {
                return Err(CypherError::runtime(
                    codes::TYPE,
                    format!(
                        "Expected a Map, Node or Relationship but was {}",
                        other.type_name()
                    ),
                ))
            }
        })
    }

    fn set_item(&mut self, item: &SetItem, row: &Row) -> Result<(), CypherError> {
        match item {
            SetItem::Prop { target, key, value } => {
                let t = self.eval(target, row)?;
                let v = self.eval(value, row)?;
                let Some((node, id)) = self.entity_of(&t)? else {
                    return Ok(());
                };
                if !v.is_null() {
                    check_storable(&v).map_err(|m| CypherError::runtime(codes::TYPE, m))?;
                }
                let key = key.clone();
                let mut changed = false;
                self.write_props(node, id, |props| {
                    let pos = props.iter().position(|(k, _)| *k == key);
                    match (pos, v.is_null()) {
                        (Some(i), true) => {
                            props.remove(i);
                            changed = true;
                        }
                        (Some(i), false) => {
                            props[i].1 = v.stored();
                            changed = true;
                        }
                        (None, false) => {
                            props.push((key, v.stored()));
                            changed = true;
                        }
                        (None, true) => {}
                    }
                })?;
                if changed {
                    self.stats.properties_set += 1;
                }
            }
            SetItem::Replace { var, value, .. } | SetItem::Merge { var, value } => {
                let merge = matches!(item, SetItem::Merge { .. });
                let t = lookup(row, var).cloned().unwrap_or(Value::Null);
                let v = self.eval(value, row)?;
                let Some((node, id)) = self.entity_of(&t)? else {
                    return Ok(());
                };
                let map = self.map_value(v)?;
                let mut set = 0;
                let mut checked = Vec::new();
                for (k, v) in map {
                    if !v.is_null() {
                        check_storable(&v).map_err(|m| CypherError::runtime(codes::TYPE, m))?;
                    }
                    checked.push((k, v));
                }
                self.write_props(node, id, |props| {
                    if !merge {
                        props.clear();
                    }
                    for (k, v) in checked {
                        let pos = props.iter().position(|(k2, _)| *k2 == k);
                        match (pos, v.is_null()) {
                            (Some(i), true) => {
                                props.remove(i);
                                set += 1;
                            }
                            (Some(i), false) => {
                                props[i].1 = v.stored();
                                set += 1;
                            }
                            (None, false) => {
                                props.push((k, v.stored()));
                                set += 1;
                            }
                            (None, true) => {}
                        }
                    }
                })?;
                self.stats.properties_set += set;
            }
            SetItem::Labels { var, labels } => {
                let t = lookup(row, var).cloned().unwrap_or(Value::Null);
                let Some((true, id)) = self.entity_of(&t)? else {
                    return Ok(());
                };
                let Some(n) = self.tx.graph.nodes.get(&id).cloned() else {
                    return Ok(());
                };
                let mut rec = (*n).clone();
                for l in labels {
                    if !rec.labels.contains(l) {
                        rec.labels.push(l.clone());
                        self.stats.labels_added += 1;
                    }
                }
                self.note_tokens(labels, None, &[]);
                self.tx.put_node(id, rec);
                self.check_unique(id)?;
            }
        }
        Ok(())
    }

    fn remove_item(&mut self, item: &RemoveItem, row: &Row) -> Result<(), CypherError> {
        match item {
            RemoveItem::Prop { target, key } => {
                let t = self.eval(target, row)?;
                let Some((node, id)) = self.entity_of(&t)? else {
                    return Ok(());
                };
                let mut removed = false;
                self.write_props(node, id, |props| {
                    if let Some(i) = props.iter().position(|(k, _)| k == key) {
                        props.remove(i);
                        removed = true;
                    }
                })?;
                if removed {
                    self.stats.properties_set += 1;
                }
            }
            RemoveItem::Labels { var, labels } => {
                let t = lookup(row, var).cloned().unwrap_or(Value::Null);
                let Some((true, id)) = self.entity_of(&t)? else {
                    return Ok(());
                };
                let Some(n) = self.tx.graph.nodes.get(&id).cloned() else {
                    return Ok(());
                };
                let mut rec = (*n).clone();
                for l in labels {
                    if let Some(i) = rec.labels.iter().position(|x| x == l) {
                        rec.labels.remove(i);
                        self.stats.labels_removed += 1;
                    }
                }
                self.tx.put_node(id, rec);
            }
        }
        Ok(())
    }

    fn delete_value(&mut self, v: &Value, detach: bool) -> Result<(), CypherError> {
        match v {
            Value::Null => {}
            Value::Node(id) => {
                if !self.tx.graph.nodes.contains_key(id) {
                    return Ok(());
                }
                if detach {
                    for r in self.tx.rels_of(*id) {
                        self.tx.remove_rel(r);
                        self.stats.relationships_deleted += 1;
                    }
                } else {
                    self.pending_deletes.push(*id);
                }
                self.tx.remove_node(*id);
                self.stats.nodes_deleted += 1;
            }
            Value::Rel(id) => {
                if self.tx.graph.rels.contains_key(id) {
                    self.tx.remove_rel(*id);
                    self.stats.relationships_deleted += 1;
                }
            }
            Value::Path(items) => {
                for item in items.iter().filter(|v| matches!(v, Value::Rel(_))) {
                    self.delete_value(item, detach)?;
                }
                for item in items.iter().filter(|v| matches!(v, Value::Node(_))) {
                    self.delete_value(item, detach)?;
                }
            }
            Value::List(items) => {
                for item in items {
                    self.delete_value(item, detach)?;
                }
            }
            other => {
                return Err(CypherError::runtime(
                    codes::TYPE,
                    format!(
                        "Expected a Node, Relationship or Path, but got a {}",
                        other.type_name()
                    ),
                ))
            }
        }
        Ok(())
    }

    fn finish_deletes(&mut self) -> Result<(), CypherError> {
        let pending = std::mem::take(&mut self.pending_deletes);
        for id in pending {
            if !self.tx.rels_of(id).is_empty() {
                return Err(CypherError::runtime(
                    codes::CONSTRAINT_VALIDATION,
                    format!("Cannot delete node<{id}>, because it still has relationships. To delete this node, you must first delete its relationships."),
                ));
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------------------------
    // Schema

    fn create_index(&mut self, def: &IndexDef) -> Result<(), CypherError> {
        if def.kind == "FULLTEXT" {
            return Err(CypherError::compile(
                codes::SYNTAX,
                "FULLTEXT indexes are not supported by the fake Neo4j",
            ));
        }
        let entity = if def.relationship {
            EntityType::Relationship
        } else {
            EntityType::Node
        };
        let labels = def.token.as_ref().map(|t| vec![t.clone()]);
        let props = if def.kind == "LOOKUP" {
            None
        } else {
            Some(def.properties.clone())
        };
        let g = &self.tx.graph;
        let equivalent = g.indexes.iter().find(|i| {
            i.kind == def.kind
                && i.entity == entity
                && i.labels_or_types == labels
                && i.properties == props
        });
        if let Some(eq) = equivalent {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(CypherError::compile(
                codes::EQUIVALENT_SCHEMA,
                format!(
                    "An equivalent index already exists, 'Index( id={}, name='{}', type='{}', schema={}, indexProvider='{}' )'.",
                    eq.id,
                    eq.name,
                    eq.kind,
                    schema_desc(eq),
                    eq.provider
                ),
            ));
        }
        let name = match &def.name {
            Some(n) => n.clone(),
            None => format!(
                "index_{:08x}",
                fnv(&format!("{}{:?}{:?}", def.kind, labels, props))
            ),
        };
        if g.indexes.iter().any(|i| i.name == name) || g.constraints.iter().any(|c| c.name == name)
        {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(CypherError::compile(
                codes::SCHEMA_NAME_EXISTS,
                format!("There already exists an index called '{name}'."),
            ));
        }
        if def.kind == "LOOKUP"
            && g.indexes
                .iter()
                .any(|i| i.kind == "LOOKUP" && i.entity == entity)
        {
            return Err(CypherError::compile(
                codes::EQUIVALENT_SCHEMA,
                "A lookup index for this entity type already exists",
            ));
        }
        let id = self.committed.schema_ids.take();
        self.tx.graph.schema_ids.reserve(id);
        let labels_v = labels.clone().unwrap_or_default();
        let keys: Vec<&str> = def.properties.iter().map(|s| s.as_str()).collect();
        if def.relationship {
            self.note_tokens(&[], def.token.as_deref(), &keys);
        } else {
            self.note_tokens(&labels_v, None, &keys);
        }
        self.tx.graph.indexes.push(IndexRule {
            id,
            name,
            kind: def.kind.clone(),
            entity,
            labels_or_types: labels,
            properties: props,
            provider: match def.kind.as_str() {
                "LOOKUP" => "token-lookup-1.0",
                "TEXT" => "text-1.0",
                "POINT" => "point-1.0",
                _ => "range-1.0",
            }
            .into(),
            owning_constraint: None,
        });
        self.tx.schema_changed = true;
        self.tx.unique = None;
        self.stats.indexes_added += 1;
        Ok(())
    }

    fn create_constraint(&mut self, def: &ConstraintDef) -> Result<(), CypherError> {
        if def.kind != "UNIQUE" || def.relationship {
            let what = match def.kind.as_str() {
                "NOT NULL" if def.relationship => "Relationship property existence constraint",
                "NOT NULL" => "Property existence constraint",
                "NODE KEY" | "KEY" => "Node Key constraint",
                "UNIQUE" => "Relationship uniqueness constraint",
                _ => "Property type constraint",
            };
            return Err(CypherError::compile(
                codes::UNSUPPORTED,
                format!("Unable to create Constraint( name='{}', type='{}', schema=(:{} {{{}}}) ):\n{what} requires Neo4j Enterprise Edition", def.name.clone().unwrap_or_default(), def.kind, def.label, def.properties.join(", ")),
            ));
        }
        let g = &self.tx.graph;
        if let Some(eq) = g
            .constraints
            .iter()
            .find(|c| c.label == def.label && c.properties == def.properties)
        {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(CypherError::compile(
                codes::EQUIVALENT_SCHEMA,
                format!(
                    "An equivalent constraint already exists, '{}'.",
                    eq.describe()
                ),
            ));
        }
        let name = match &def.name {
            Some(n) => n.clone(),
            None => format!(
                "constraint_{:08x}",
                fnv(&format!("{}{:?}", def.label, def.properties))
            ),
        };
        if g.constraints.iter().any(|c| c.name == name) || g.indexes.iter().any(|i| i.name == name)
        {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(CypherError::compile(
                "Neo.ClientError.Schema.ConstraintWithNameAlreadyExists",
                format!("There already exists a constraint called '{name}'."),
            ));
        }
        if g.indexes.iter().any(|i| {
            i.kind == "RANGE"
                && i.entity == EntityType::Node
                && i.labels_or_types.as_deref() == Some(std::slice::from_ref(&def.label))
                && i.properties.as_deref() == Some(def.properties.as_slice())
        }) {
            return Err(CypherError::compile(
                "Neo.ClientError.Schema.IndexAlreadyExists",
                format!("There already exists an index (:{} {{{}}}). A constraint cannot be created until the index has been dropped.", def.label, def.properties.join(", ")),
            ));
        }
        // Existing data must satisfy it.
        let mut seen: Vec<(Vec<Value>, u64)> = Vec::new();
        for (id, n) in &g.nodes {
            if !n.labels.contains(&def.label) {
                continue;
            }
            let vals: Vec<Value> = def
                .properties
                .iter()
                .filter_map(|p| n.props.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone()))
                .collect();
            if vals.len() != def.properties.len() {
                continue;
            }
            if let Some((_, other)) = seen.iter().find(|(v, _)| {
                v.iter()
                    .zip(&vals)
                    .all(|(a, b)| cypher_eq(a, b) == Some(true))
            }) {
                return Err(CypherError::compile(
                    "Neo.DatabaseError.Schema.ConstraintCreationFailed",
                    format!("Unable to create Constraint( name='{name}', type='UNIQUENESS', schema=(:{} {{{}}}) ):\nBoth Node({other}) and Node({id}) have the label `{}` and property `{}`", def.label, def.properties.join(", "), def.label, def.properties.join(", ")),
                ));
            }
            seen.push((vals, *id));
        }
        let index_id = self.committed.schema_ids.take();
        let id = self.committed.schema_ids.take();
        self.tx.graph.schema_ids.reserve(id);
        let keys: Vec<&str> = def.properties.iter().map(|s| s.as_str()).collect();
        self.note_tokens(std::slice::from_ref(&def.label), None, &keys);
        self.tx.graph.indexes.push(IndexRule {
            id: index_id,
            name: name.clone(),
            kind: "RANGE".into(),
            entity: EntityType::Node,
            labels_or_types: Some(vec![def.label.clone()]),
            properties: Some(def.properties.clone()),
            provider: "range-1.0".into(),
            owning_constraint: Some(name.clone()),
        });
        self.tx.graph.constraints.push(ConstraintRule {
            id,
            name: name.clone(),
            label: def.label.clone(),
            properties: def.properties.clone(),
            owned_index: name,
            owned_index_id: index_id,
        });
        self.tx.schema_changed = true;
        self.tx.unique = None;
        self.stats.constraints_added += 1;
        Ok(())
    }

    fn drop_index(&mut self, name: &str, if_exists: bool) -> Result<(), CypherError> {
        let g = &mut self.tx.graph;
        match g.indexes.iter().position(|i| i.name == name) {
            Some(i) if g.indexes[i].owning_constraint.is_some() => Err(CypherError::compile(
                codes::SCHEMA_DROP_FAILED,
                format!("Unable to drop index: Index belongs to constraint: `{name}`"),
            )),
            Some(i) => {
                g.indexes.remove(i);
                self.tx.schema_changed = true;
                self.tx.unique = None;
                self.stats.indexes_removed += 1;
                Ok(())
            }
            None if if_exists => Ok(()),
            None => Err(CypherError::compile(
                codes::SCHEMA_DROP_FAILED,
                format!("Unable to drop index called `{name}`. There is no such index."),
            )),
        }
    }

    fn drop_constraint(&mut self, name: &str, if_exists: bool) -> Result<(), CypherError> {
        let g = &mut self.tx.graph;
        match g.constraints.iter().position(|c| c.name == name) {
            Some(i) => {
                let c = g.constraints.remove(i);
                g.indexes
                    .retain(|ix| ix.owning_constraint.as_deref() != Some(&c.name));
                self.tx.schema_changed = true;
                self.tx.unique = None;
                self.stats.constraints_removed += 1;
                Ok(())
            }
            None if if_exists => Ok(()),
            None => Err(CypherError::compile(
                codes::CONSTRAINT_DROP_FAILED,
                format!("Unable to drop constraint `{name}`: No such constraint {name}."),
            )),
        }
    }
}

fn schema_desc(i: &IndexRule) -> String {
    match (&i.labels_or_types, &i.properties) {
        (Some(l), Some(p)) => format!(
            "{}{} {{{}}}{}",
            if i.entity == EntityType::Node {
                "(:"
            } else {
                "()-[:"
            },
            l.join(":"),
            p.join(", "),
            if i.entity == EntityType::Node {
                ")"
            } else {
                "]-()"
            }
        ),
        _ => "(:<any-labels>)".into(),
    }
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}
