//! Neo4j: health (`RETURN 1` over the HTTP API), the fingerprint by the neo4j crate's own
//! counts and schema, duplicate relationships (keyset pages of start nodes), and the ids of
//! cross-database rules (keyset pages on a label's property).

use std::time::Instant;

use manifest::fingerprint::Fingerprint;
use manifest::sections::{Check, CheckStatus};
use neo4j::client::{Access, Client, Statement};
use neo4j::format::quote;
use serde_json::{json, Value};

use crate::error::Error;
use crate::keys::{IdSource, Key};
use crate::rules::Duplicates;
use crate::{check, figures};

/// The health of `database`: the server's version (`GET /`) and `RETURN 1` in it.
pub fn health(client: &Client, database: &str) -> Result<Check, Error> {
    let started = Instant::now();
    let server = client.server().map_err(Error::from_neo4j)?;
    let r = client
        .run(
            database,
            "RETURN 1",
            &[Statement::new("RETURN 1 AS one")],
            Access::Read,
        )
        .map_err(Error::from_neo4j)?;
    let one = r[0].data.first().and_then(|row| row.row.first()).cloned();
    let ms = started.elapsed().as_millis() as u64;
    let ok = one == Some(json!(1));
    Ok(check(
        "health",
        crate::pass_if(ok),
        format!(
            "Neo4j {} at {} answered RETURN 1 in database {database} in {ms} ms{}",
            server.version,
            client.shown_url(),
            if ok {
                ""
            } else {
                " with something else than 1"
            }
        ),
        figures! {"server_version" => server.version, "ms" => ms},
    ))
}

/// What `database` holds now: the counts and schema dump-neo4j records.
pub fn fingerprint(client: &Client, database: &str) -> Result<Fingerprint, Error> {
    let snapshot = neo4j::stats::snapshot(client, database).map_err(Error::from_neo4j)?;
    Ok(Fingerprint::Neo4j(snapshot.fingerprint()))
}

/// One page of start nodes (keyset on the internal id) and, among their outgoing
/// relationships, the (start, end, type) groups of more than one. One row: the page's last
/// id (null when there are no more nodes) and the groups.
fn duplicates_page(types: &[String]) -> String {
    let rel = if types.is_empty() {
        String::new()
    } else {
        format!(
            ":{}",
            types.iter().map(|t| quote(t)).collect::<Vec<_>>().join("|")
        )
    };
    format!(
        "MATCH (a) WHERE id(a) > $after WITH a ORDER BY id(a) LIMIT $limit \
         OPTIONAL MATCH (a)-[r{rel}]->(b) \
         WITH a, b, type(r) AS type, count(r) AS n \
         WITH max(id(a)) AS last, collect(CASE WHEN n > 1 THEN [id(a), id(b), type, n] END) AS dups \
         RETURN last, dups"
    )
}

/// `duplicate_relationships`: no two relationships of one type from the same node to the
/// same node. Pages through the start nodes, `page` at a time.
pub fn duplicates(
    client: &Client,
    database: &str,
    rule: &Duplicates,
    page: usize,
    sample: usize,
    tick: &mut dyn FnMut(u64),
) -> Result<Check, Error> {
    let name = if rule.types.is_empty() {
        "duplicate_relationships".to_owned()
    } else {
        format!("duplicate_relationships {}", rule.types.join(","))
    };
    let text = duplicates_page(&rule.types);
    let (mut after, mut trips, mut groups, mut extra) = (-1i64, 0u64, 0u64, 0u64);
    let mut shown: Vec<String> = vec![];
    loop {
        Error::check_interrupted()?;
        let what = format!("the duplicate relationships after node {after}");
        let r = client
            .run(
                database,
                &what,
                &[Statement::with(
                    &text,
                    json!({"after": after, "limit": page}),
                )],
                Access::Read,
            )
            .map_err(Error::from_neo4j)?;
        trips += 1;
        let row = r[0]
            .data
            .first()
            .map(|row| row.row.clone())
            .unwrap_or_default();
        let Some(last) = row.first().and_then(Value::as_i64) else {
            break;
        };
        for dup in row.get(1).and_then(Value::as_array).into_iter().flatten() {
            let n = dup.get(3).and_then(Value::as_u64).unwrap_or(0);
            groups += 1;
            extra += n.saturating_sub(1);
            if shown.len() < sample {
                shown.push(format!(
                    "({})-[:{}]->({}) x{n}",
                    dup.get(0).unwrap_or(&Value::Null),
                    dup.get(2).and_then(Value::as_str).unwrap_or("?"),
                    dup.get(1).unwrap_or(&Value::Null)
                ));
            }
        }
        tick(1);
        after = last;
    }
    let figures = figures! {"duplicate_groups" => groups, "extra_relationships" => extra, "round_trips" => trips, "sample" => shown.clone()};
    let of = if rule.types.is_empty() {
        "any type".to_owned()
    } else {
        rule.types.join(", ")
    };
    if groups == 0 {
        return Ok(check(
            name,
            CheckStatus::Pass,
            format!("no two relationships of {of} between the same two nodes"),
            figures,
        ));
    }
    Ok(check(
        name,
        CheckStatus::Fail,
        format!(
            "{groups} pairs of nodes with more than one relationship of the same type \
             ({extra} extra), by internal node id: {}",
            shown.join(", ")
        ),
        figures,
    ))
}

/// The values of `label.property`: integers first, then strings, each ascending, in keyset
/// pages (`>=` the smallest value of each type on the first page of it, `>` the last one
/// after). A comparison with a value of another type is null in Cypher, so each phase sees
/// only its own type (lists and booleans are never read); a float compares with integers
/// and is refused as an id, failing the rule with the reason.
pub struct Neo4jIds<'a> {
    client: &'a Client,
    database: String,
    label: String,
    property: String,
    page: usize,
    phase: u8,
    last: Option<Value>,
    trips: u64,
}

impl<'a> Neo4jIds<'a> {
    /// The ids of `label.property` in `database`, `page` at a time.
    pub fn new(
        client: &'a Client,
        database: &str,
        label: &str,
        property: &str,
        page: usize,
    ) -> Self {
        Neo4jIds {
            client,
            database: database.to_owned(),
            label: label.to_owned(),
            property: property.to_owned(),
            page,
            phase: 0,
            last: None,
            trips: 0,
        }
    }
}

impl IdSource for Neo4jIds<'_> {
    fn describe(&self) -> String {
        format!("neo4j :{}.{}", self.label, self.property)
    }

    fn next_page(&mut self) -> Result<Vec<Key>, Error> {
        loop {
            let (op, after) = match (&self.last, self.phase) {
                (Some(v), _) => (">", v.clone()),
                (None, 0) => (">=", json!(i64::MIN)),
                (None, 1) => (">=", json!("")),
                (None, _) => return Ok(vec![]),
            };
            let text = format!(
                "MATCH (n:{label}) WHERE n.{prop} {op} $after \
                 RETURN n.{prop} AS id ORDER BY id LIMIT $limit",
                label = quote(&self.label),
                prop = quote(&self.property),
            );
            let what = format!("the ids of {}", self.describe());
            let r = self
                .client
                .run(
                    &self.database,
                    &what,
                    &[Statement::with(
                        text,
                        json!({"after": after, "limit": self.page}),
                    )],
                    Access::Read,
                )
                .map_err(Error::from_neo4j)?;
            self.trips += 1;
            let values: Vec<Value> = r[0]
                .data
                .iter()
                .filter_map(|row| row.row.first().cloned())
                .collect();
            if values.is_empty() {
                // This type is done: on to the next.
                self.phase += 1;
                self.last = None;
                if self.phase >= 2 {
                    return Ok(vec![]);
                }
                continue;
            }
            self.last = values.last().cloned();
            return values
                .iter()
                .map(|v| match v {
                    Value::Number(n) => n.as_i64().map(|n| Key::Int(n.into())),
                    Value::String(s) => Some(Key::Str(s.clone())),
                    _ => None,
                })
                .map(|k| {
                    k.ok_or_else(|| {
                        Error::Failed(format!(
                            "{what}: a value that is not an integer or a string"
                        ))
                    })
                })
                .collect();
        }
    }

    fn round_trips(&self) -> u64 {
        self.trips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duplicates_statement_names_its_types_quoted() {
        assert!(duplicates_page(&[]).contains("OPTIONAL MATCH (a)-[r]->(b)"));
        assert!(duplicates_page(&["MENTIONS".into(), "we`ird".into()])
            .contains("-[r:`MENTIONS`|`we``ird`]->"));
    }
}
