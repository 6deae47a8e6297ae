//! The Cypher subset the fake Neo4j understands: a real parser and interpreter for a small,
//! explicit part of Cypher 5.3, not a list of canned strings, so that the statements a tool
//! generates run the way they would on the real server, and what the real server rejects
//! is rejected here too (with the same error **code**; messages follow Neo4j's where the
//! recordings show them).
//!
//! # Supported statements
//!
//! * `[EXPLAIN]` before any query (answers with `columns`, no rows and a one-operator
//!   `plan`).
//! * Read/write queries made of these clauses, in any order Cypher allows:
//!   * `[OPTIONAL] MATCH pattern, … [WHERE expr]`: node patterns `(v:L1:L2 {k: expr})`,
//!     relationship steps `-[r:T1|T2 {…}]->`, `<-[…]-`, `-[…]-`, named paths `p = …`;
//!     relationship uniqueness within one `MATCH`; `WHERE id(v) = e` / `id(v) > e` are
//!     answered by id lookup (no variable-length `*`, no `shortestPath`).
//!   * `UNWIND expr AS v`.
//!   * `WITH [DISTINCT] items [ORDER BY …] [SKIP e] [LIMIT e] [WHERE e]` and
//!     `RETURN [DISTINCT] items|* [ORDER BY …] [SKIP e] [LIMIT e]`; aggregation with
//!     implicit grouping (`count(*)`, `count([DISTINCT] e)`, `collect`, `sum`, `avg`,
//!     `min`, `max`); `ORDER BY` may use variables of before the projection.
//!   * `CREATE pattern, …` (nodes, relationships, with property maps; `null` values are
//!     dropped; non-storable values raise `Neo.ClientError.Statement.TypeError`).
//!   * `MERGE (v:L {k: e})` (single node patterns only).
//!   * `SET v.k = e`, `SET v = map`, `SET v += map`, `SET v:L`; `REMOVE v.k`, `REMOVE v:L`.
//!   * `[DETACH] DELETE e, …` (a node with relationships and no `DETACH` fails at the end of
//!     the statement with `Neo.ClientError.Schema.ConstraintValidationFailed`).
//!   * `CALL proc(args) [YIELD c [AS a], … [WHERE e]]`, standalone or followed by clauses,
//!     for `db.labels`, `db.relationshipTypes`, `db.propertyKeys`, `db.info`,
//!     `db.ping`, `db.schema.visualization`, `db.stats.retrieve('GRAPH COUNTS')`,
//!     `dbms.components`, `dbms.listConfig(search)`, `dbms.showCurrentUser`,
//!     `db.awaitIndexes`, `db.awaitIndex`, `db.clearQueryCaches`; any other name is
//!     `Neo.ClientError.Procedure.ProcedureNotFound`.
//!   * `SHOW INDEXES|CONSTRAINTS|DATABASES|DATABASE n|DEFAULT DATABASE|HOME DATABASE|
//!     PROCEDURES|FUNCTIONS|USERS|CURRENT USER [YIELD *|cols [WHERE e]] [WHERE e]`
//!     followed by optional `RETURN …`, with the default and `YIELD *` columns of 5.3.
//! * Schema commands (each in a transaction of its own kind, as Neo4j requires):
//!   `CREATE [RANGE|TEXT|POINT|LOOKUP] INDEX [name] [IF NOT EXISTS] FOR (n:L) ON (n.k, …)
//!   [OPTIONS {…}]` (also `FOR ()-[r:T]-()`), `CREATE CONSTRAINT [name] [IF NOT EXISTS] FOR
//!   (n:L) REQUIRE n.k IS UNIQUE | (n.a, n.b) IS UNIQUE [OPTIONS {…}]` (existence and key
//!   constraints are Enterprise-only and refused as Community refuses them),
//!   `DROP INDEX|CONSTRAINT name [IF EXISTS]`.
//! * Administration commands (`CREATE/DROP/START/STOP DATABASE`, users, roles, privileges)
//!   are `Neo.ClientError.Statement.UnsupportedAdministrationCommand`, as in Community.
//!
//! Expressions: literals (integers with overflow detection, floats, strings with escapes,
//! booleans, `null`, lists, maps), `$parameters`, variables, `e.key`, `e[i]`, `e[a..b]`,
//! `+ - * / % ^`, comparisons, `AND OR XOR NOT`, `IS [NOT] NULL`, `STARTS WITH`, `ENDS
//! WITH`, `CONTAINS`, `IN`, `=~`, label predicates `v:L`, `CASE`, list comprehensions,
//! `all/any/none/single(x IN l WHERE p)`, and the functions of [`eval`] (entity, list,
//! string, numeric, conversion, temporal — `date`, `localtime`, `time`, `localdatetime`,
//! `datetime`, `duration`, `duration.between` — and `point`).
//!
//! The statement forms the dump-neo4j tool uses for export and import are listed with their
//! parameter and row shapes in `EXPORT_FORMS.md` next to this module; they are all within
//! this subset and each has a test.

pub mod ast;
pub mod eval;
pub mod exec;
pub mod lexer;
pub mod parser;
pub mod procs;

/// Neo4j status codes the fake produces.
pub mod codes {
    /// Syntax, semantic and some argument errors (Neo4j reports type mismatches and
    /// invalid temporal strings under this code).
    pub const SYNTAX: &str = "Neo.ClientError.Statement.SyntaxError";
    /// Division by zero.
    pub const ARITHMETIC: &str = "Neo.ClientError.Statement.ArithmeticError";
    /// Runtime type errors (non-storable property values…).
    pub const TYPE: &str = "Neo.ClientError.Statement.TypeError";
    /// Runtime argument errors.
    pub const ARGUMENT: &str = "Neo.ClientError.Statement.ArgumentError";
    /// A referenced parameter was not given.
    pub const PARAMETER_MISSING: &str = "Neo.ClientError.Statement.ParameterMissing";
    /// Unknown procedure.
    pub const PROCEDURE_NOT_FOUND: &str = "Neo.ClientError.Procedure.ProcedureNotFound";
    /// Uniqueness violations, deleting a node that still has relationships.
    pub const CONSTRAINT_VALIDATION: &str = "Neo.ClientError.Schema.ConstraintValidationFailed";
    /// An equivalent index or constraint exists.
    pub const EQUIVALENT_SCHEMA: &str = "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists";
    /// An index or constraint with that name exists.
    pub const SCHEMA_NAME_EXISTS: &str = "Neo.ClientError.Schema.IndexWithNameAlreadyExists";
    /// Dropping what does not exist.
    pub const SCHEMA_DROP_FAILED: &str = "Neo.DatabaseError.Schema.IndexDropFailed";
    /// Dropping a constraint that does not exist.
    pub const CONSTRAINT_DROP_FAILED: &str = "Neo.DatabaseError.Schema.ConstraintDropFailed";
    /// Schema and data writes in one transaction.
    pub const FORBIDDEN_TX_TYPE: &str = "Neo.ClientError.Transaction.ForbiddenDueToTransactionType";
    /// Enterprise-only administration.
    pub const UNSUPPORTED_ADMIN: &str =
        "Neo.ClientError.Statement.UnsupportedAdministrationCommand";
    /// Enterprise-only schema.
    pub const UNSUPPORTED: &str = "Neo.DatabaseError.Statement.ExecutionFailed";
    /// Reading a deleted entity.
    pub const ENTITY_NOT_FOUND: &str = "Neo.ClientError.Statement.EntityNotFound";
    /// A write with `access-mode: READ`.
    pub const REQUEST_INVALID: &str = "Neo.ClientError.Request.Invalid";
}

/// When an error happened: before any row (no result entry) or while running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Parsing, semantic checks, planning: the failing statement gets no result entry.
    Compile,
    /// Execution: the statement has a result entry with the rows streamed before.
    Runtime,
}

/// A Cypher error: Neo4j status code, message and phase.
#[derive(Clone, Debug, PartialEq)]
pub struct CypherError {
    /// `Neo.ClientError.…`.
    pub code: String,
    /// Message.
    pub message: String,
    /// When.
    pub phase: Phase,
}

impl CypherError {
    /// A compile-time error.
    pub fn compile(code: &str, message: impl Into<String>) -> Self {
        CypherError {
            code: code.into(),
            message: message.into(),
            phase: Phase::Compile,
        }
    }

    /// A runtime error.
    pub fn runtime(code: &str, message: impl Into<String>) -> Self {
        CypherError {
            code: code.into(),
            message: message.into(),
            phase: Phase::Runtime,
        }
    }

    /// A syntax error without a position.
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::compile(codes::SYNTAX, message)
    }

    /// A syntax error pointing at character `offset` of `text`, in Neo4j's layout:
    /// `message (line L, column C (offset: O))`, the line quoted, a caret under the spot.
    pub fn syntax_at(text: &str, offset: usize, message: &str) -> Self {
        Self::compile(codes::SYNTAX, positioned(text, offset, message))
    }
}

/// `message (line L, column C (offset: O))\n"line"\n   ^`.
pub fn positioned(text: &str, offset: usize, message: &str) -> String {
    let (line, col, line_text) = line_col(text, offset);
    format!(
        "{message} (line {line}, column {col} (offset: {offset}))\n\"{line_text}\"\n{}^",
        " ".repeat(col)
    )
}

/// 1-based line and column of a character offset, and the text of that line.
pub fn line_col(text: &str, offset: usize) -> (usize, usize, String) {
    let mut line = 1;
    let mut col = 1;
    let mut start = 0;
    for (i, c) in text.chars().enumerate() {
        if i == offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
            start = i + 1;
        } else {
            col += 1;
        }
    }
    let line_text: String = text
        .chars()
        .skip(start)
        .take_while(|c| *c != '\n')
        .collect();
    (line, col, line_text)
}

#[cfg(test)]
mod tests {
    use super::super::graph::Graph;
    use super::super::value::Value;
    use super::exec::{DbInfo, RunOptions, ServerInfo, TxState};
    use super::*;

    /// Runs `text` on `g` in its own transaction (committed when it succeeds).
    fn q(g: &mut Graph, text: &str) -> Result<Vec<Vec<Value>>, CypherError> {
        let server = ServerInfo {
            databases: vec![],
            user: "neo4j".into(),
            config: vec![],
            server_id: "s".into(),
        };
        let db = DbInfo {
            name: "neo4j".into(),
            uuid: "u".into(),
            id: "I".into(),
            creation_date: "2024-01-01T00:00:00.000Z".into(),
        };
        let mut tx = TxState::begin(g);
        let opts = RunOptions {
            read_only: false,
            now: "2024-05-06T07:08:09Z".parse().unwrap(),
            server: &server,
        };
        let out = exec::run(text, &Default::default(), &mut tx, g, &db, &opts);
        match out.error {
            Some(e) => {
                tx.rollback(g);
                Err(e)
            }
            None => {
                tx.commit(g);
                Ok(out.rows)
            }
        }
    }

    fn one(g: &mut Graph, text: &str) -> Value {
        q(g, text).unwrap_or_else(|e| panic!("{text}: {e:?}"))[0][0].clone()
    }

    #[test]
    fn clauses_and_functions() {
        let mut g = Graph::new();
        q(
            &mut g,
            "UNWIND range(1, 5) AS i CREATE (:P {i: i, s: 'n' + i})",
        )
        .unwrap();
        let ints = |v: &[i64]| Value::List(v.iter().map(|i| Value::Int(*i)).collect());
        assert_eq!(one(&mut g, "MATCH (n:P) RETURN count(*)"), Value::Int(5));
        assert_eq!(one(&mut g, "MATCH (n:P) RETURN sum(n.i)"), Value::Int(15));
        assert_eq!(
            one(&mut g, "MATCH (n:P) RETURN avg(n.i)"),
            Value::Float(3.0)
        );
        assert_eq!(
            one(
                &mut g,
                "MATCH (n:P) WITH n ORDER BY n.i DESC SKIP 1 LIMIT 2 RETURN collect(n.i)"
            ),
            ints(&[4, 3])
        );
        assert_eq!(
            one(
                &mut g,
                "UNWIND [1, 1, 2] AS x WITH DISTINCT x RETURN collect(x)"
            ),
            ints(&[1, 2])
        );
        assert_eq!(
            one(&mut g, "RETURN all(x IN [1, 2] WHERE x > 0)"),
            Value::Bool(true)
        );
        assert_eq!(
            one(&mut g, "RETURN all(x IN [1, null] WHERE x > 0)"),
            Value::Null
        );
        assert_eq!(
            one(&mut g, "RETURN all(x IN [1, null, -1] WHERE x > 0)"),
            Value::Bool(false)
        );
        assert_eq!(
            one(&mut g, "RETURN any(x IN [null, 2] WHERE x > 1)"),
            Value::Bool(true)
        );
        assert_eq!(
            one(&mut g, "RETURN none(x IN [] WHERE x > 1)"),
            Value::Bool(true)
        );
        assert_eq!(
            one(&mut g, "RETURN single(x IN [1, 2, 3] WHERE x > 2)"),
            Value::Bool(true)
        );
        assert_eq!(
            one(
                &mut g,
                "RETURN CASE 2 WHEN 1 THEN 'a' WHEN 2 THEN 'b' ELSE 'c' END"
            ),
            Value::str("b")
        );
        assert_eq!(
            one(&mut g, "RETURN [x IN range(1, 6) WHERE x % 2 = 0 | x * 10]"),
            ints(&[20, 40, 60])
        );
        assert_eq!(
            one(
                &mut g,
                "RETURN toUpper(substring('hello', 1, 3)) + split('a,b', ',')[1]"
            ),
            Value::str("ELLb")
        );
        assert_eq!(one(&mut g, "OPTIONAL MATCH (n:Nope) RETURN n"), Value::Null);
        q(&mut g, "MERGE (n:P {i: 1}) MERGE (m:P {i: 9})").unwrap();
        assert_eq!(one(&mut g, "MATCH (n:P) RETURN count(n)"), Value::Int(6));
        q(&mut g, "MATCH (n:P {i: 9}) SET n:Q, n.x = 1 REMOVE n.s").unwrap();
        assert_eq!(
            one(&mut g, "MATCH (n:Q) RETURN [keys(n), labels(n)]"),
            Value::List(vec![
                Value::List(vec![Value::str("i"), Value::str("x")]),
                Value::List(vec![Value::str("P"), Value::str("Q")]),
            ])
        );
        q(
            &mut g,
            "MATCH (a:P {i: 1}), (b:P {i: 2}) CREATE (a)-[:R {w: 1}]->(b)",
        )
        .unwrap();
        assert_eq!(
            one(&mut g, "MATCH (a)-[r:R]->(b) RETURN [a.i, type(r), b.i]"),
            Value::List(vec![Value::Int(1), Value::str("R"), Value::Int(2)])
        );
        assert_eq!(one(&mut g, "MATCH (b)<-[:R]-(a) RETURN b.i"), Value::Int(2));
        assert_eq!(
            one(&mut g, "MATCH (a)-[:R]-(b) RETURN count(*)"),
            Value::Int(2)
        );
        assert_eq!(
            one(&mut g, "MATCH p = (a)-[:R]->(b) RETURN length(p)"),
            Value::Int(1)
        );
        assert_eq!(
            one(&mut g, "MATCH (n:P) WHERE id(n) IN [0, 1] RETURN count(n)"),
            Value::Int(2)
        );
        assert_eq!(
            one(&mut g, "MATCH (n) WHERE id(n) >= 3 RETURN min(id(n))"),
            Value::Int(3)
        );
        assert_eq!(
            one(
                &mut g,
                "MATCH (n:P) UNWIND labels(n) AS l RETURN l, count(*) ORDER BY l LIMIT 1"
            ),
            Value::str("P")
        );
        assert_eq!(
            one(
                &mut g,
                "RETURN duration.between(date('2024-01-31'), date('2024-03-01'))"
            ),
            Value::Duration(super::super::temporal::Duration::new(1, 1, 0, 0))
        );
        assert_eq!(
            one(
                &mut g,
                "RETURN date('2024-02-29').year + datetime('2024-02-29T12:00Z').hour"
            ),
            Value::Int(2036)
        );
        assert_eq!(
            one(&mut g, "RETURN toString(datetime())"),
            Value::str("2024-05-06T07:08:09Z")
        );
        assert_eq!(
            one(&mut g, "RETURN point({x: 1, y: 2}).y"),
            Value::Float(2.0)
        );
        let e = q(&mut g, "MATCH (n:P {i: 1}) DELETE n").unwrap_err();
        assert_eq!(e.code, codes::CONSTRAINT_VALIDATION);
        assert_eq!(
            one(&mut g, "MATCH (n:P {i: 1}) DETACH DELETE n RETURN count(*)"),
            Value::Int(1)
        );
        assert_eq!(
            one(&mut g, "MATCH ()-[r]->() RETURN count(r)"),
            Value::Int(0)
        );
    }

    #[test]
    fn positions_as_neo4j_prints_them() {
        assert_eq!(
            positioned("RETURN 'a' + {} AS x", 13, "Type mismatch: expected Float, Integer, String or List<T> but was Map"),
            "Type mismatch: expected Float, Integer, String or List<T> but was Map (line 1, column 14 (offset: 13))\n\"RETURN 'a' + {} AS x\"\n              ^"
        );
        let e = parser::parse("").unwrap_err();
        assert_eq!(
            e.message,
            "Unexpected end of input: expected CYPHER, EXPLAIN, PROFILE or Query (line 0, column 0 (offset: 1))\n\"\"\n ^"
        );
        assert_eq!(parser::parse("RETURN 9223372036854775808 AS x").unwrap_err().message,
            "integer is too large (line 1, column 8 (offset: 7))\n\"RETURN 9223372036854775808 AS x\"\n        ^");
    }
}
