//! A recursive-descent parser for the Cypher subset (see the module documentation).

use super::super::value::Value;
use super::ast::*;
use super::lexer::{lex, Tok, Token};
use super::CypherError;

/// Parses one statement.
pub fn parse(text: &str) -> Result<Statement, CypherError> {
    if text.trim().is_empty() {
        return Err(CypherError::syntax(format!(
            "Unexpected end of input: expected CYPHER, EXPLAIN, PROFILE or Query (line 0, column 0 (offset: 1))\n\"{text}\"\n ^"
        )));
    }
    let tokens = lex(text)?;
    let mut p = Parser {
        text,
        chars: text.chars().collect(),
        tokens,
        i: 0,
    };
    let st = p.statement()?;
    if p.is_sym(";") {
        p.i += 1;
    }
    if !matches!(p.peek(), Tok::End) {
        return Err(p.unexpected("end of input"));
    }
    Ok(st)
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<char>,
    tokens: Vec<Token>,
    i: usize,
}

const RESERVED: &[&str] = &[
    "MATCH",
    "RETURN",
    "WITH",
    "WHERE",
    "CREATE",
    "DELETE",
    "DETACH",
    "SET",
    "REMOVE",
    "UNWIND",
    "MERGE",
    "OPTIONAL",
    "ORDER",
    "SKIP",
    "LIMIT",
    "AS",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "CALL",
    "YIELD",
    "UNION",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "STARTS",
    "ENDS",
    "CONTAINS",
    "BY",
    "ASC",
    "DESC",
    "ASCENDING",
    "DESCENDING",
    "ON",
];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.tokens[(self.i + n).min(self.tokens.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.tokens[self.i].pos
    }

    fn prev_end(&self) -> usize {
        if self.i == 0 {
            0
        } else {
            self.tokens[self.i - 1].end
        }
    }

    fn slice(&self, start: usize, end: usize) -> String {
        self.chars[start..end].iter().collect()
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(self.peek_at(n), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), CypherError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{kw}'")))
        }
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }

    fn is_sym_at_index(&self, i: usize, s: &str) -> bool {
        matches!(self.tokens.get(i).map(|t| &t.tok), Some(Tok::Sym(x)) if *x == s)
    }

    fn is_sym_at(&self, n: usize, s: &str) -> bool {
        matches!(self.peek_at(n), Tok::Sym(x) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), CypherError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{s}'")))
        }
    }

    fn token_text(&self) -> String {
        let t = &self.tokens[self.i];
        match &t.tok {
            Tok::End => String::new(),
            _ => self.slice(t.pos, t.end),
        }
    }

    fn unexpected(&self, expected: &str) -> CypherError {
        let t = &self.tokens[self.i];
        if matches!(t.tok, Tok::End) {
            return CypherError::syntax_at(
                self.text,
                t.pos,
                &format!("Invalid input '': expected {expected}"),
            );
        }
        let shown: String = self.token_text();
        CypherError::syntax_at(
            self.text,
            t.pos,
            &format!("Invalid input '{shown}': expected {expected}"),
        )
    }

    /// A name: identifier (not a reserved word unless `allow_reserved`) or back-quoted.
    fn name(&mut self, allow_reserved: bool) -> Result<String, CypherError> {
        match self.peek().clone() {
            Tok::Ident(s)
                if allow_reserved || !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&s)) =>
            {
                self.i += 1;
                Ok(s)
            }
            Tok::Quoted(s) => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("an identifier")),
        }
    }

    fn is_name(&self) -> bool {
        match self.peek() {
            Tok::Ident(s) => !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)),
            Tok::Quoted(_) => true,
            _ => false,
        }
    }

    // -------------------------------------------------------------------------------
    // Statements

    fn statement(&mut self) -> Result<Statement, CypherError> {
        let mut explain = false;
        if self.eat_kw("EXPLAIN") {
            explain = true;
        } else if self.eat_kw("PROFILE") {
            explain = false;
        }
        let start = self.pos();
        if self.is_kw("CREATE") {
            let next = self.peek_at(1).clone();
            if let Tok::Ident(w) = &next {
                let w = w.to_ascii_uppercase();
                match w.as_str() {
                    "INDEX" | "RANGE" | "TEXT" | "POINT" | "LOOKUP" | "FULLTEXT" | "BTREE" => {
                        self.i += 1;
                        return Ok(Statement {
                            explain,
                            body: Body::CreateIndex(self.index_def()?),
                        });
                    }
                    "CONSTRAINT" => {
                        self.i += 2;
                        return Ok(Statement {
                            explain,
                            body: Body::CreateConstraint(self.constraint_def()?),
                        });
                    }
                    "DATABASE" | "USER" | "ROLE" | "ALIAS" | "COMPOSITE" | "OR" => {
                        return Ok(self.unsupported(explain, start));
                    }
                    _ => {}
                }
            }
        }
        if self.is_kw("DROP") {
            if self.is_kw_at(1, "INDEX") || self.is_kw_at(1, "CONSTRAINT") {
                let index = self.is_kw_at(1, "INDEX");
                self.i += 2;
                let name = self.name(true)?;
                let if_exists = if self.eat_kw("IF") {
                    self.expect_kw("EXISTS")?;
                    true
                } else {
                    false
                };
                let body = if index {
                    Body::DropIndex { name, if_exists }
                } else {
                    Body::DropConstraint { name, if_exists }
                };
                return Ok(Statement { explain, body });
            }
            return Ok(self.unsupported(explain, start));
        }
        if self.is_kw("START")
            || self.is_kw("STOP")
            || self.is_kw("ALTER")
            || self.is_kw("GRANT")
            || self.is_kw("DENY")
            || self.is_kw("REVOKE")
            || self.is_kw("RENAME")
        {
            return Ok(self.unsupported(explain, start));
        }
        let mut clauses = Vec::new();
        if self.is_kw("SHOW") {
            clauses.push(self.show()?);
        }
        while !matches!(self.peek(), Tok::End) && !self.is_sym(";") {
            clauses.push(self.clause()?);
        }
        if clauses.is_empty() {
            return Err(self.unexpected("a clause"));
        }
        Ok(Statement {
            explain,
            body: Body::Query(clauses),
        })
    }

    fn unsupported(&mut self, explain: bool, start: usize) -> Statement {
        while !matches!(self.peek(), Tok::End) && !self.is_sym(";") {
            self.i += 1;
        }
        let text = self.slice(start, self.prev_end()).trim().to_owned();
        Statement {
            explain,
            body: Body::Unsupported(text),
        }
    }

    fn options(&mut self) -> Result<(), CypherError> {
        if self.eat_kw("OPTIONS") {
            self.expr()?;
        }
        Ok(())
    }

    fn if_not_exists(&mut self) -> Result<bool, CypherError> {
        if self.is_kw("IF") && self.is_kw_at(1, "NOT") {
            self.i += 2;
            self.expect_kw("EXISTS")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn index_def(&mut self) -> Result<IndexDef, CypherError> {
        let mut kind = "RANGE".to_owned();
        if !self.is_kw("INDEX") {
            kind = self.name(true)?.to_ascii_uppercase();
        }
        if kind == "BTREE" {
            return Err(CypherError::syntax_at(
                self.text,
                self.tokens[self.i - 1].pos,
                "Invalid index type b-tree, use range, point or text index instead.",
            ));
        }
        self.expect_kw("INDEX")?;
        let mut name = None;
        if !self.is_kw("FOR") && !self.is_kw("IF") {
            name = Some(self.name(true)?);
        }
        let if_not_exists = self.if_not_exists()?;
        self.expect_kw("FOR")?;
        self.expect_sym("(")?;
        let (relationship, var, token) = if self.is_sym(")") {
            // ()-[r:T]-()
            self.i += 1;
            self.expect_sym("-")?;
            self.expect_sym("[")?;
            let v = self.name(false)?;
            let t = if self.eat_sym(":") {
                Some(self.name(true)?)
            } else {
                None
            };
            self.expect_sym("]")?;
            self.expect_sym("-")?;
            self.eat_sym(">");
            self.expect_sym("(")?;
            self.expect_sym(")")?;
            (true, v, t)
        } else {
            let v = self.name(false)?;
            let t = if self.eat_sym(":") {
                Some(self.name(true)?)
            } else {
                None
            };
            self.expect_sym(")")?;
            (false, v, t)
        };
        self.expect_kw("ON")?;
        let mut properties = Vec::new();
        if kind == "LOOKUP" {
            self.expect_kw("EACH")?;
            self.expr()?;
        } else {
            self.expect_sym("(")?;
            loop {
                let v = self.name(false)?;
                if v != var {
                    return Err(CypherError::syntax_at(
                        self.text,
                        self.tokens[self.i - 1].pos,
                        &format!("Variable `{v}` not defined"),
                    ));
                }
                self.expect_sym(".")?;
                properties.push(self.name(true)?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
        }
        self.options()?;
        Ok(IndexDef {
            name,
            if_not_exists,
            kind,
            relationship,
            token,
            properties,
        })
    }

    fn constraint_def(&mut self) -> Result<ConstraintDef, CypherError> {
        let mut name = None;
        if !self.is_kw("FOR") && !self.is_kw("IF") {
            name = Some(self.name(true)?);
        }
        let if_not_exists = self.if_not_exists()?;
        if self.is_kw("ON") {
            return Err(self.unexpected("'FOR'"));
        }
        self.expect_kw("FOR")?;
        self.expect_sym("(")?;
        let (relationship, var, label) = if self.is_sym(")") {
            self.i += 1;
            self.expect_sym("-")?;
            self.expect_sym("[")?;
            let v = self.name(false)?;
            self.expect_sym(":")?;
            let t = self.name(true)?;
            self.expect_sym("]")?;
            self.expect_sym("-")?;
            self.eat_sym(">");
            self.expect_sym("(")?;
            self.expect_sym(")")?;
            (true, v, t)
        } else {
            let v = self.name(false)?;
            self.expect_sym(":")?;
            let l = self.name(true)?;
            self.expect_sym(")")?;
            (false, v, l)
        };
        self.expect_kw("REQUIRE")?;
        let mut properties = Vec::new();
        let paren = self.eat_sym("(");
        loop {
            let v = self.name(false)?;
            if v != var {
                return Err(CypherError::syntax_at(
                    self.text,
                    self.tokens[self.i - 1].pos,
                    &format!("Variable `{v}` not defined"),
                ));
            }
            self.expect_sym(".")?;
            properties.push(self.name(true)?);
            if !paren || !self.eat_sym(",") {
                break;
            }
        }
        if paren {
            self.expect_sym(")")?;
        }
        self.expect_kw("IS")?;
        let kind = if self.eat_kw("UNIQUE") {
            "UNIQUE"
        } else if self.eat_kw("NOT") {
            self.expect_kw("NULL")?;
            "NOT NULL"
        } else if self.eat_kw("NODE") {
            self.expect_kw("KEY")?;
            "NODE KEY"
        } else if self.eat_kw("KEY") {
            "KEY"
        } else if self.is_sym(":") || self.eat_kw("TYPED") {
            "TYPED"
        } else {
            return Err(self.unexpected("'UNIQUE', 'NOT NULL' or 'NODE KEY'"));
        };
        self.options()?;
        Ok(ConstraintDef {
            name,
            if_not_exists,
            label,
            relationship,
            properties,
            kind: kind.into(),
        })
    }

    fn show(&mut self) -> Result<Clause, CypherError> {
        self.expect_kw("SHOW")?;
        let what = if self.eat_kw("CURRENT") {
            self.expect_kw("USER")?;
            Show::CurrentUser
        } else if self.eat_kw("USERS") || self.eat_kw("USER") {
            Show::Users
        } else if self.eat_kw("DEFAULT") {
            self.expect_kw("DATABASE")?;
            Show::DefaultDatabase
        } else if self.eat_kw("HOME") {
            self.expect_kw("DATABASE")?;
            Show::HomeDatabase
        } else if self.eat_kw("DATABASES") {
            Show::Databases(None)
        } else if self.eat_kw("DATABASE") {
            Show::Databases(Some(self.name(true)?))
        } else if self.eat_kw("PROCEDURES") || self.eat_kw("PROCEDURE") {
            Show::Procedures
        } else if self.eat_kw("TRANSACTIONS") || self.eat_kw("TRANSACTION") {
            Show::Transactions
        } else {
            // [ALL|BUILT IN|USER DEFINED] FUNCTIONS, [ALL|RANGE|…] INDEXES, […] CONSTRAINTS
            for filler in [
                "ALL",
                "BUILT",
                "IN",
                "USER",
                "DEFINED",
                "RANGE",
                "TEXT",
                "POINT",
                "LOOKUP",
                "FULLTEXT",
                "UNIQUE",
                "UNIQUENESS",
            ] {
                if self.is_kw(filler)
                    && !(self.is_kw_at(1, "YIELD") || matches!(self.peek_at(1), Tok::End))
                {
                    self.i += 1;
                }
            }
            if self.eat_kw("INDEXES") || self.eat_kw("INDEX") {
                Show::Indexes
            } else if self.eat_kw("CONSTRAINTS") || self.eat_kw("CONSTRAINT") {
                Show::Constraints
            } else if self.eat_kw("FUNCTIONS") || self.eat_kw("FUNCTION") {
                Show::Functions
            } else {
                return Err(self.unexpected("a SHOW command"));
            }
        };
        let mut yields = None;
        let mut filter = None;
        if self.is_kw("YIELD") {
            yields = Some(self.yield_spec()?);
        } else if self.eat_kw("WHERE") {
            filter = Some(self.expr()?);
        }
        Ok(Clause::Show {
            what,
            yields,
            filter,
        })
    }

    fn yield_spec(&mut self) -> Result<Yield, CypherError> {
        self.expect_kw("YIELD")?;
        let mut y = Yield {
            star: false,
            items: Vec::new(),
            filter: None,
        };
        if self.eat_sym("*") {
            y.star = true;
        } else {
            loop {
                let col = self.name(true)?;
                let alias = if self.eat_kw("AS") {
                    self.name(false)?
                } else {
                    col.clone()
                };
                y.items.push((col, alias));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.eat_kw("WHERE") {
            y.filter = Some(self.expr()?);
        }
        Ok(y)
    }

    // -------------------------------------------------------------------------------
    // Clauses

    fn clause(&mut self) -> Result<Clause, CypherError> {
        let pos = self.pos();
        if self.is_kw("OPTIONAL") && self.is_kw_at(1, "MATCH") {
            self.i += 2;
            return self.match_rest(true, pos);
        }
        if self.eat_kw("MATCH") {
            return self.match_rest(false, pos);
        }
        if self.eat_kw("UNWIND") {
            let expr = self.expr()?;
            self.expect_kw("AS")?;
            let var = self.name(false)?;
            return Ok(Clause::Unwind { expr, var });
        }
        if self.eat_kw("WITH") {
            return Ok(Clause::With(self.projection(true)?));
        }
        if self.eat_kw("RETURN") {
            return Ok(Clause::Return(self.projection(false)?));
        }
        if self.eat_kw("CREATE") {
            return Ok(Clause::Create(self.patterns()?));
        }
        if self.eat_kw("MERGE") {
            let p = self.pattern()?;
            if self.is_kw("ON") {
                return Err(self
                    .unexpected("a clause (ON CREATE / ON MATCH are not supported by the fake)"));
            }
            return Ok(Clause::Merge(p));
        }
        if self.eat_kw("SET") {
            let mut items = Vec::new();
            loop {
                items.push(self.set_item()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            return Ok(Clause::Set(items));
        }
        if self.eat_kw("REMOVE") {
            let mut items = Vec::new();
            loop {
                let var = self.name(false)?;
                let vpos = self.tokens[self.i - 1].pos;
                if self.eat_sym(".") {
                    let key = self.name(true)?;
                    items.push(RemoveItem::Prop {
                        target: Expr::Var(var, vpos),
                        key,
                    });
                } else if self.is_sym(":") {
                    let mut labels = Vec::new();
                    while self.eat_sym(":") {
                        labels.push(self.name(true)?);
                    }
                    items.push(RemoveItem::Labels { var, labels });
                } else {
                    return Err(self.unexpected("'.' or ':'"));
                }
                if !self.eat_sym(",") {
                    break;
                }
            }
            return Ok(Clause::Remove(items));
        }
        let detach = self.eat_kw("DETACH");
        if self.eat_kw("DELETE") {
            let mut exprs = vec![self.expr()?];
            while self.eat_sym(",") {
                exprs.push(self.expr()?);
            }
            return Ok(Clause::Delete { detach, exprs });
        }
        if detach {
            return Err(self.unexpected("'DELETE'"));
        }
        if self.eat_kw("CALL") {
            if self.is_sym("{") {
                return Err(self.unexpected(
                    "a procedure name (CALL { … } subqueries are not supported by the fake)",
                ));
            }
            let pos = self.pos();
            let mut name = self.name(true)?;
            while self.eat_sym(".") {
                name.push('.');
                name.push_str(&self.name(true)?);
            }
            let args = if self.eat_sym("(") {
                let mut args = Vec::new();
                if !self.eat_sym(")") {
                    loop {
                        args.push(self.expr()?);
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym(")")?;
                }
                Some(args)
            } else {
                None
            };
            let yields = if self.is_kw("YIELD") {
                Some(self.yield_spec()?)
            } else {
                None
            };
            return Ok(Clause::Call {
                name,
                args,
                yields,
                pos,
            });
        }
        if self.is_kw("SHOW") {
            return Err(self.unexpected("a clause (SHOW must come first)"));
        }
        Err(self.unexpected(
            "ALTER, CALL, CREATE, DEALLOCATE, DELETE, DENY, DETACH, DROP, DRYRUN, ENABLE, FOREACH, GRANT, LOAD, MATCH, MERGE, OPTIONAL, REALLOCATE, REMOVE, RENAME, RETURN, REVOKE, SET, SHOW, START, STOP, TERMINATE, UNWIND, USE, USING or WITH",
        ))
    }

    fn match_rest(&mut self, optional: bool, pos: usize) -> Result<Clause, CypherError> {
        // Neo4j's parser backtracks out of a broken first node pattern of a MATCH and
        // reports the alternatives it had at the opening parenthesis.
        let open = self.i;
        let patterns = match self.patterns() {
            Ok(p) => p,
            Err(e) => {
                let first_node_broken = self.is_sym_at_index(open, "(")
                    && !self.tokens[open..self.i]
                        .iter()
                        .any(|t| matches!(t.tok, Tok::Sym(")")));
                if first_node_broken {
                    return Err(CypherError::syntax_at(
                        self.text,
                        self.tokens[open].pos,
                        "Invalid input '(': expected \"allShortestPaths\" or \"shortestPath\"",
                    ));
                }
                return Err(e);
            }
        };
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Clause::Match {
            optional,
            patterns,
            filter,
            pos,
        })
    }

    fn set_item(&mut self) -> Result<SetItem, CypherError> {
        let vpos = self.pos();
        let var = self.name(false)?;
        if self.is_sym(":") {
            let mut labels = Vec::new();
            while self.eat_sym(":") {
                labels.push(self.name(true)?);
            }
            return Ok(SetItem::Labels { var, labels });
        }
        if self.eat_sym("+=") {
            let value = self.expr()?;
            return Ok(SetItem::Merge { var, value });
        }
        if self.eat_sym("=") {
            let value_pos = self.pos();
            let value = self.expr()?;
            return Ok(SetItem::Replace {
                var,
                value,
                value_pos,
            });
        }
        let mut target = Expr::Var(var, vpos);
        self.expect_sym(".")?;
        let mut key = self.name(true)?;
        while self.eat_sym(".") {
            target = Expr::Prop(Box::new(target), key);
            key = self.name(true)?;
        }
        self.expect_sym("=")?;
        let value = self.expr()?;
        Ok(SetItem::Prop { target, key, value })
    }

    fn projection(&mut self, with: bool) -> Result<Projection, CypherError> {
        let mut p = Projection {
            distinct: self.eat_kw("DISTINCT"),
            star: false,
            items: Vec::new(),
            order: Vec::new(),
            skip: None,
            limit: None,
            filter: None,
        };
        if self.eat_sym("*") {
            p.star = true;
            if !self.eat_sym(",") {
                return self.projection_tail(p, with);
            }
        }
        loop {
            let start = self.pos();
            let expr = self.expr()?;
            let end = self.prev_end();
            let name = if self.eat_kw("AS") {
                // Keywords are valid names after AS (`RETURN 1 AS end`).
                self.name(true)?
            } else {
                if with && !matches!(expr, Expr::Var(..)) {
                    return Err(CypherError::syntax_at(
                        self.text,
                        start,
                        "Expression in WITH must be aliased (use AS)",
                    ));
                }
                self.slice(start, end)
            };
            p.items.push(ProjItem { expr, name });
            if !self.eat_sym(",") {
                break;
            }
        }
        self.projection_tail(p, with)
    }

    fn projection_tail(
        &mut self,
        mut p: Projection,
        with: bool,
    ) -> Result<Projection, CypherError> {
        if self.is_kw("ORDER") {
            self.i += 1;
            self.expect_kw("BY")?;
            loop {
                let e = self.expr()?;
                let desc = if self.eat_kw("DESC") || self.eat_kw("DESCENDING") {
                    true
                } else {
                    let _ = self.eat_kw("ASC") || self.eat_kw("ASCENDING");
                    false
                };
                p.order.push((e, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if self.eat_kw("SKIP") {
            p.skip = Some(self.expr()?);
        }
        if self.eat_kw("LIMIT") {
            p.limit = Some(self.expr()?);
        }
        if with && self.eat_kw("WHERE") {
            p.filter = Some(self.expr()?);
        }
        Ok(p)
    }

    fn patterns(&mut self) -> Result<Vec<Pattern>, CypherError> {
        let mut v = vec![self.pattern()?];
        while self.eat_sym(",") {
            v.push(self.pattern()?);
        }
        Ok(v)
    }

    fn pattern(&mut self) -> Result<Pattern, CypherError> {
        let mut var = None;
        if self.is_name() && self.is_sym_at(1, "=") {
            var = Some(self.name(false)?);
            self.i += 1;
        }
        if self.is_kw("shortestPath") || self.is_kw("allShortestPaths") {
            return Err(
                self.unexpected("a node pattern (shortestPath is not supported by the fake)")
            );
        }
        if !self.is_sym("(") {
            return Err(self.unexpected("'('"));
        }
        let start = self.node_pat()?;
        let mut steps = Vec::new();
        while self.is_sym("-") || (self.is_sym("<") && self.is_sym_at(1, "-")) {
            let rel = self.rel_pat()?;
            let node = self.node_pat()?;
            steps.push((rel, node));
        }
        Ok(Pattern { var, start, steps })
    }

    fn node_pat(&mut self) -> Result<NodePat, CypherError> {
        let pos = self.pos();
        if !self.eat_sym("(") {
            return Err(self.unexpected("'('"));
        }
        let var = if self.is_name() {
            Some(self.name(false)?)
        } else {
            None
        };
        let mut labels = Vec::new();
        while self.eat_sym(":") {
            let lpos = self.pos();
            labels.push((self.name(true)?, lpos));
            while self.eat_sym("&") {
                let lpos = self.pos();
                labels.push((self.name(true)?, lpos));
            }
        }
        let props = if self.is_sym("{") || matches!(self.peek(), Tok::Param(_)) {
            Some(self.atom()?)
        } else {
            None
        };
        if !self.eat_sym(")") {
            return Err(self.unexpected("')'"));
        }
        Ok(NodePat {
            var,
            labels,
            props,
            pos,
        })
    }

    fn rel_pat(&mut self) -> Result<RelPat, CypherError> {
        let left = self.eat_sym("<");
        self.expect_sym("-")?;
        let mut r = RelPat {
            var: None,
            types: Vec::new(),
            props: None,
            dir: Dir::Both,
            var_length: None,
        };
        if self.eat_sym("[") {
            if self.is_name() {
                r.var = Some(self.name(false)?);
            }
            if self.eat_sym(":") {
                loop {
                    let tpos = self.pos();
                    r.types.push((self.name(true)?, tpos));
                    if !self.eat_sym("|") {
                        break;
                    }
                    // `:A|:B` (old style) and `:A|B`
                    self.eat_sym(":");
                }
            }
            if self.eat_sym("*") {
                let min = if let Tok::Int(s) = self.peek().clone() {
                    self.i += 1;
                    s.parse().ok()
                } else {
                    None
                };
                let mut max = min;
                if self.eat_sym("..") {
                    max = if let Tok::Int(s) = self.peek().clone() {
                        self.i += 1;
                        s.parse().ok()
                    } else {
                        None
                    };
                } else if min.is_none() {
                    max = None;
                }
                r.var_length = Some((min, max));
            }
            if self.is_sym("{") || matches!(self.peek(), Tok::Param(_)) {
                r.props = Some(self.atom()?);
            }
            self.expect_sym("]")?;
        }
        self.expect_sym("-")?;
        let right = self.eat_sym(">");
        r.dir = match (left, right) {
            (true, false) => Dir::In,
            (false, true) => Dir::Out,
            (false, false) => Dir::Both,
            (true, true) => return Err(self.unexpected("a relationship direction")),
        };
        Ok(r)
    }

    // -------------------------------------------------------------------------------
    // Expressions

    /// An expression.
    fn expr(&mut self) -> Result<Expr, CypherError> {
        self.or()
    }

    fn or(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.xor()?;
        while self.is_kw("OR") {
            let pos = self.pos();
            self.i += 1;
            let r = self.xor()?;
            e = Expr::Bin(BinOp::Or, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn xor(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.and()?;
        while self.is_kw("XOR") {
            let pos = self.pos();
            self.i += 1;
            let r = self.and()?;
            e = Expr::Bin(BinOp::Xor, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.not()?;
        while self.is_kw("AND") {
            let pos = self.pos();
            self.i += 1;
            let r = self.not()?;
            e = Expr::Bin(BinOp::And, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, CypherError> {
        if self.eat_kw("NOT") {
            let e = self.not()?;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.add_sub()?;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Tok::Sym("=") => BinOp::Eq,
                Tok::Sym("<>") => BinOp::Ne,
                Tok::Sym("<") => BinOp::Lt,
                Tok::Sym(">") => BinOp::Gt,
                Tok::Sym("<=") => BinOp::Le,
                Tok::Sym(">=") => BinOp::Ge,
                Tok::Sym("=~") => BinOp::Regex,
                Tok::Ident(s) if s.eq_ignore_ascii_case("IN") => BinOp::In,
                Tok::Ident(s) if s.eq_ignore_ascii_case("CONTAINS") => BinOp::Contains,
                Tok::Ident(s) if s.eq_ignore_ascii_case("STARTS") => {
                    self.i += 1;
                    self.expect_kw("WITH")?;
                    let r = self.add_sub()?;
                    e = Expr::Bin(BinOp::StartsWith, Box::new(e), Box::new(r), pos);
                    continue;
                }
                Tok::Ident(s) if s.eq_ignore_ascii_case("ENDS") => {
                    self.i += 1;
                    self.expect_kw("WITH")?;
                    let r = self.add_sub()?;
                    e = Expr::Bin(BinOp::EndsWith, Box::new(e), Box::new(r), pos);
                    continue;
                }
                Tok::Ident(s) if s.eq_ignore_ascii_case("IS") => {
                    self.i += 1;
                    let neg = self.eat_kw("NOT");
                    self.expect_kw("NULL")?;
                    e = Expr::IsNull(Box::new(e), neg);
                    continue;
                }
                _ => break,
            };
            self.i += 1;
            let r = self.add_sub()?;
            e = Expr::Bin(op, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn add_sub(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.mul_div()?;
        loop {
            let pos = self.pos();
            let op = if self.is_sym("+") {
                BinOp::Add
            } else if self.is_sym("-") {
                BinOp::Sub
            } else {
                break;
            };
            self.i += 1;
            let r = self.mul_div()?;
            e = Expr::Bin(op, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn mul_div(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.power()?;
        loop {
            let pos = self.pos();
            let op = if self.is_sym("*") {
                BinOp::Mul
            } else if self.is_sym("/") {
                BinOp::Div
            } else if self.is_sym("%") {
                BinOp::Mod
            } else {
                break;
            };
            self.i += 1;
            let r = self.power()?;
            e = Expr::Bin(op, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn power(&mut self) -> Result<Expr, CypherError> {
        let mut e = self.unary()?;
        while self.is_sym("^") {
            let pos = self.pos();
            self.i += 1;
            let r = self.unary()?;
            e = Expr::Bin(BinOp::Pow, Box::new(e), Box::new(r), pos);
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, CypherError> {
        if self.is_sym("-") {
            let pos = self.pos();
            self.i += 1;
            // -9223372036854775808 is a literal, not a negated overflow.
            if let Tok::Int(s) = self.peek().clone() {
                if s == "9223372036854775808" {
                    self.i += 1;
                    return self.postfix(Expr::Lit(Value::Int(i64::MIN)));
                }
            }
            let e = self.unary()?;
            if let Expr::Lit(Value::Int(i)) = &e {
                return Ok(Expr::Lit(Value::Int(-i)));
            }
            if let Expr::Lit(Value::Float(f)) = &e {
                return Ok(Expr::Lit(Value::Float(-f)));
            }
            let _ = pos;
            return Ok(Expr::Neg(Box::new(e)));
        }
        if self.eat_sym("+") {
            return self.unary();
        }
        let a = self.atom()?;
        self.postfix(a)
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, CypherError> {
        loop {
            if self.is_sym(".") {
                self.i += 1;
                let key = self.name(true)?;
                e = Expr::Prop(Box::new(e), key);
            } else if self.is_sym("[") {
                self.i += 1;
                if self.eat_sym("..") {
                    let to = if self.is_sym("]") {
                        None
                    } else {
                        Some(Box::new(self.expr()?))
                    };
                    self.expect_sym("]")?;
                    e = Expr::Slice(Box::new(e), None, to);
                    continue;
                }
                let idx = self.expr()?;
                if self.eat_sym("..") {
                    let to = if self.is_sym("]") {
                        None
                    } else {
                        Some(Box::new(self.expr()?))
                    };
                    self.expect_sym("]")?;
                    e = Expr::Slice(Box::new(e), Some(Box::new(idx)), to);
                    continue;
                }
                self.expect_sym("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else if self.is_sym(":") && matches!(e, Expr::Var(..)) {
                let mut labels = Vec::new();
                while self.eat_sym(":") {
                    labels.push(self.name(true)?);
                }
                e = Expr::HasLabels(Box::new(e), labels);
            } else {
                return Ok(e);
            }
        }
    }

    fn atom(&mut self) -> Result<Expr, CypherError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Int(s) => {
                self.i += 1;
                let v = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    i64::from_str_radix(hex, 16).ok()
                } else {
                    s.parse::<i64>().ok()
                };
                match v {
                    Some(i) => Ok(Expr::Lit(Value::Int(i))),
                    None => Err(CypherError::syntax_at(
                        self.text,
                        pos,
                        "integer is too large",
                    )),
                }
            }
            Tok::Float(f) => {
                self.i += 1;
                Ok(Expr::Lit(Value::Float(f)))
            }
            Tok::Str(s) => {
                self.i += 1;
                Ok(Expr::Lit(Value::Str(s)))
            }
            Tok::Param(p) => {
                self.i += 1;
                Ok(Expr::Param(p, pos))
            }
            Tok::Sym("(") => {
                self.i += 1;
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym("[") => self.list_or_comprehension(),
            Tok::Sym("{") => {
                self.i += 1;
                let mut pairs = Vec::new();
                if !self.eat_sym("}") {
                    loop {
                        let k = self.name(true)?;
                        self.expect_sym(":")?;
                        let v = self.expr()?;
                        pairs.push((k, v));
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym("}")?;
                }
                Ok(Expr::Map(pairs))
            }
            Tok::Ident(w) => {
                let up = w.to_ascii_uppercase();
                match up.as_str() {
                    "TRUE" => {
                        self.i += 1;
                        return Ok(Expr::Lit(Value::Bool(true)));
                    }
                    "FALSE" => {
                        self.i += 1;
                        return Ok(Expr::Lit(Value::Bool(false)));
                    }
                    "NULL" => {
                        self.i += 1;
                        return Ok(Expr::Lit(Value::Null));
                    }
                    "CASE" => return self.case(),
                    "ALL" | "ANY" | "NONE" | "SINGLE" if self.is_sym_at(1, "(") => {
                        if let Some(q) = self.try_quantifier(&up)? {
                            return Ok(q);
                        }
                    }
                    _ => {}
                }
                self.name_or_call(pos)
            }
            Tok::Quoted(_) => self.name_or_call(pos),
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn name_or_call(&mut self, pos: usize) -> Result<Expr, CypherError> {
        // A function call is name(.name)* followed by '('.
        let mut n = 0;
        loop {
            if !matches!(self.peek_at(n), Tok::Ident(_) | Tok::Quoted(_)) {
                break;
            }
            if self.is_sym_at(n + 1, ".") {
                n += 2;
                continue;
            }
            if self.is_sym_at(n + 1, "(") {
                let mut written = String::new();
                for k in 0..=n {
                    match self.peek_at(k) {
                        Tok::Ident(s) | Tok::Quoted(s) => written.push_str(s),
                        _ => written.push('.'),
                    }
                }
                self.i += n + 2;
                let name = written.to_ascii_lowercase();
                if name == "count" && self.is_sym("*") {
                    self.i += 1;
                    self.expect_sym(")")?;
                    return Ok(Expr::CountStar);
                }
                let distinct = self.eat_kw("DISTINCT");
                let mut args = Vec::new();
                if !self.eat_sym(")") {
                    loop {
                        args.push(self.expr()?);
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym(")")?;
                }
                return Ok(Expr::Func {
                    name,
                    written,
                    args,
                    distinct,
                    pos,
                });
            }
            break;
        }
        let v = self.name(false)?;
        Ok(Expr::Var(v, pos))
    }

    fn try_quantifier(&mut self, kind: &str) -> Result<Option<Expr>, CypherError> {
        // all(x IN list WHERE pred)
        if !(matches!(self.peek_at(2), Tok::Ident(_) | Tok::Quoted(_)) && self.is_kw_at(3, "IN")) {
            return Ok(None);
        }
        self.i += 2;
        let var = self.name(false)?;
        self.expect_kw("IN")?;
        let list = self.expr()?;
        self.expect_kw("WHERE")?;
        let pred = self.expr()?;
        self.expect_sym(")")?;
        let kind = match kind {
            "ALL" => Quant::All,
            "ANY" => Quant::Any,
            "NONE" => Quant::None,
            _ => Quant::Single,
        };
        Ok(Some(Expr::Quantified {
            kind,
            var,
            list: Box::new(list),
            pred: Box::new(pred),
        }))
    }

    fn list_or_comprehension(&mut self) -> Result<Expr, CypherError> {
        self.expect_sym("[")?;
        if matches!(self.peek(), Tok::Ident(_) | Tok::Quoted(_)) && self.is_kw_at(1, "IN") {
            let var = self.name(false)?;
            self.expect_kw("IN")?;
            let list = self.expr()?;
            let pred = if self.eat_kw("WHERE") {
                Some(Box::new(self.expr()?))
            } else {
                None
            };
            let map = if self.eat_sym("|") {
                Some(Box::new(self.expr()?))
            } else {
                None
            };
            self.expect_sym("]")?;
            return Ok(Expr::ListComp {
                var,
                list: Box::new(list),
                pred,
                map,
            });
        }
        let mut items = Vec::new();
        if !self.eat_sym("]") {
            loop {
                items.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym("]")?;
        }
        Ok(Expr::List(items))
    }

    fn case(&mut self) -> Result<Expr, CypherError> {
        self.expect_kw("CASE")?;
        let subject = if self.is_kw("WHEN") {
            None
        } else {
            Some(Box::new(self.expr()?))
        };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let w = self.expr()?;
            self.expect_kw("THEN")?;
            let t = self.expr()?;
            whens.push((w, t));
        }
        let otherwise = if self.eat_kw("ELSE") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        self.expect_kw("END")?;
        Ok(Expr::Case {
            subject,
            whens,
            otherwise,
        })
    }
}
