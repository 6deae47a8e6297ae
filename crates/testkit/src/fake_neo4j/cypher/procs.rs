//! Procedures and `SHOW` commands, with the columns of Neo4j 5.3 Community.

use std::collections::BTreeMap;

use super::super::graph::EntityType;
use super::super::value::{Value, Virtual};
use super::ast::{Show, Yield};
use super::exec::Exec;
use super::{codes, CypherError};

/// The output columns of a procedure the fake knows, `None` for unknown ones.
pub fn procedure_columns(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "db.labels" => &["label"],
        "db.relationshiptypes" => &["relationshipType"],
        "db.propertykeys" => &["propertyKey"],
        "db.info" => &["id", "name", "creationDate"],
        "db.ping" => &["success"],
        "db.schema.visualization" => &["nodes", "relationships"],
        "db.stats.retrieve" => &["section", "data"],
        "db.awaitindexes" | "db.awaitindex" | "db.resampleoutdatedindexes" => &[],
        "db.clearquerycaches" => &["value"],
        "dbms.components" => &["name", "versions", "edition"],
        "dbms.listconfig" => &[
            "name",
            "description",
            "value",
            "dynamic",
            "defaultValue",
            "startupValue",
            "explicitlySet",
            "validValues",
        ],
        "dbms.showcurrentuser" => &["username", "roles", "flags"],
        _ => return None,
    })
}

/// The 42 procedures of the recorded 5.3 Community server (`SHOW PROCEDURES` counts them).
pub const PROCEDURES: [&str; 42] = [
    "db.awaitIndex",
    "db.awaitIndexes",
    "db.checkpoint",
    "db.clearQueryCaches",
    "db.createLabel",
    "db.createProperty",
    "db.createRelationshipType",
    "db.index.fulltext.awaitEventuallyConsistentIndexRefresh",
    "db.index.fulltext.listAvailableAnalyzers",
    "db.index.fulltext.queryNodes",
    "db.index.fulltext.queryRelationships",
    "db.info",
    "db.labels",
    "db.ping",
    "db.prepareForReplanning",
    "db.propertyKeys",
    "db.relationshipTypes",
    "db.resampleIndex",
    "db.resampleOutdatedIndexes",
    "db.schema.nodeTypeProperties",
    "db.schema.relTypeProperties",
    "db.schema.visualization",
    "db.stats.clear",
    "db.stats.collect",
    "db.stats.retrieve",
    "db.stats.retrieveAllAnonymized",
    "db.stats.status",
    "db.stats.stop",
    "dbms.cluster.routing.getRoutingTable",
    "dbms.components",
    "dbms.info",
    "dbms.killConnection",
    "dbms.killConnections",
    "dbms.listCapabilities",
    "dbms.listConfig",
    "dbms.listConnections",
    "dbms.queryJmx",
    "dbms.routing.getRoutingTable",
    "dbms.showCurrentUser",
    "dbms.upgrade",
    "dbms.upgradeStatus",
    "tx.getMetaData",
];

/// Columns of a `SHOW` command: the default ones, or all of them (`YIELD *`).
pub fn show_columns(what: &Show, all: bool) -> Vec<String> {
    let cols: &[&str] = match (what, all) {
        (Show::Indexes, false) => &[
            "id",
            "name",
            "state",
            "populationPercent",
            "type",
            "entityType",
            "labelsOrTypes",
            "properties",
            "indexProvider",
            "owningConstraint",
        ],
        (Show::Indexes, true) => &[
            "id",
            "name",
            "state",
            "populationPercent",
            "type",
            "entityType",
            "labelsOrTypes",
            "properties",
            "indexProvider",
            "owningConstraint",
            "options",
            "failureMessage",
            "createStatement",
        ],
        (Show::Constraints, false) => &[
            "id",
            "name",
            "type",
            "entityType",
            "labelsOrTypes",
            "properties",
            "ownedIndex",
        ],
        (Show::Constraints, true) => &[
            "id",
            "name",
            "type",
            "entityType",
            "labelsOrTypes",
            "properties",
            "ownedIndex",
            "options",
            "createStatement",
        ],
        (Show::Databases(_), false) => &[
            "name",
            "type",
            "aliases",
            "access",
            "address",
            "role",
            "writer",
            "requestedStatus",
            "currentStatus",
            "statusMessage",
            "default",
            "home",
            "constituents",
        ],
        (Show::Databases(_), true) => &[
            "name",
            "type",
            "aliases",
            "access",
            "databaseID",
            "serverID",
            "address",
            "role",
            "writer",
            "requestedStatus",
            "currentStatus",
            "statusMessage",
            "default",
            "home",
            "currentPrimariesCount",
            "currentSecondariesCount",
            "requestedPrimariesCount",
            "requestedSecondariesCount",
            "creationTime",
            "lastStartTime",
            "lastStopTime",
            "store",
            "lastCommittedTxn",
            "replicationLag",
            "constituents",
        ],
        (Show::DefaultDatabase | Show::HomeDatabase, _) => &[
            "name",
            "type",
            "aliases",
            "access",
            "address",
            "role",
            "writer",
            "requestedStatus",
            "currentStatus",
            "statusMessage",
            "constituents",
        ],
        (Show::Procedures, false) => &["name", "description", "mode", "worksOnSystem"],
        (Show::Procedures, true) => &[
            "name",
            "description",
            "mode",
            "worksOnSystem",
            "signature",
            "argumentDescription",
            "returnDescription",
            "admin",
            "rolesExecution",
            "rolesBoostedExecution",
            "option",
        ],
        (Show::Functions, false) => &["name", "category", "description"],
        (Show::Functions, true) => &[
            "name",
            "category",
            "description",
            "signature",
            "isBuiltIn",
            "argumentDescription",
            "returnDescription",
            "aggregating",
            "rolesExecution",
            "rolesBoostedExecution",
        ],
        (Show::Users | Show::CurrentUser, _) => &[
            "user",
            "roles",
            "passwordChangeRequired",
            "suspended",
            "home",
        ],
        (Show::Transactions, _) => &[
            "database",
            "transactionId",
            "currentQueryId",
            "connectionId",
            "clientAddress",
            "username",
            "currentQuery",
            "startTime",
            "status",
            "elapsedTime",
        ],
    };
    cols.iter().map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Value {
    Value::List(v.iter().map(|s| Value::Str(s.clone())).collect())
}

fn s(x: &str) -> Value {
    Value::Str(x.to_owned())
}

/// Runs a `SHOW` command: (all columns, rows).
pub fn show(
    ex: &mut Exec,
    what: &Show,
    _yields: Option<&Yield>,
) -> Result<(Vec<String>, Vec<Vec<Value>>), CypherError> {
    let cols = show_columns(what, true);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    match what {
        Show::Indexes => {
            let g = &ex.tx.graph;
            let mut idx = g.indexes.clone();
            idx.sort_by(|a, b| a.name.cmp(&b.name));
            for i in idx {
                rows.push(vec![
                    Value::Int(i.id as i64),
                    s(&i.name),
                    s("ONLINE"),
                    Value::Float(100.0),
                    s(&i.kind),
                    s(i.entity.name()),
                    i.labels_or_types
                        .as_deref()
                        .map(strs)
                        .unwrap_or(Value::Null),
                    i.properties.as_deref().map(strs).unwrap_or(Value::Null),
                    s(&i.provider),
                    i.owning_constraint.as_deref().map(s).unwrap_or(Value::Null),
                    Value::Map(vec![
                        ("indexProvider".into(), s(&i.provider)),
                        ("indexConfig".into(), Value::Map(vec![])),
                    ]),
                    s(""),
                    s(&i.create_statement(&g.constraints)),
                ]);
            }
        }
        Show::Constraints => {
            let mut cs = ex.tx.graph.constraints.clone();
            cs.sort_by(|a, b| a.name.cmp(&b.name));
            for c in cs {
                rows.push(vec![
                    Value::Int(c.id as i64),
                    s(&c.name),
                    s("UNIQUENESS"),
                    s("NODE"),
                    strs(std::slice::from_ref(&c.label)),
                    strs(&c.properties),
                    s(&c.owned_index),
                    Value::Map(vec![
                        ("indexProvider".into(), s("range-1.0")),
                        ("indexConfig".into(), Value::Map(vec![])),
                    ]),
                    s(&c.create_statement()),
                ]);
            }
        }
        Show::Databases(_) | Show::DefaultDatabase | Show::HomeDatabase => {
            let only = match what {
                Show::Databases(Some(n)) => Some(n.clone()),
                Show::DefaultDatabase | Show::HomeDatabase => Some("neo4j".to_owned()),
                _ => None,
            };
            let mut dbs = ex.server.databases.clone();
            dbs.sort_by(|a, b| a.name.cmp(&b.name));
            for d in dbs {
                if only.as_ref().is_some_and(|o| *o != d.name) {
                    continue;
                }
                let system = d.name == "system";
                let created = super::super::temporal::parse_datetime(&d.created)
                    .map(Value::DateTime)
                    .unwrap_or(Value::Null);
                let full = vec![
                    s(&d.name),
                    s(if system { "system" } else { "standard" }),
                    Value::List(vec![]),
                    s("read-write"),
                    s(&d.id),
                    s(&ex.server.server_id),
                    s("127.0.0.1:7687"),
                    s("primary"),
                    Value::Bool(true),
                    s("online"),
                    s(&d.status),
                    s(&d.message),
                    Value::Bool(!system),
                    Value::Bool(!system),
                    Value::Int(1),
                    Value::Int(0),
                    Value::Null,
                    Value::Null,
                    created.clone(),
                    created,
                    Value::Null,
                    s("record-aligned-1.1"),
                    Value::Null,
                    Value::Int(0),
                    Value::List(vec![]),
                ];
                if matches!(what, Show::DefaultDatabase | Show::HomeDatabase) {
                    // Default/home database rows have their own column set.
                    let all = show_columns(&Show::Databases(None), true);
                    let want = show_columns(what, true);
                    rows.push(
                        want.iter()
                            .map(|c| full[all.iter().position(|a| a == c).unwrap()].clone())
                            .collect(),
                    );
                } else {
                    rows.push(full);
                }
            }
        }
        Show::Procedures => {
            for p in PROCEDURES {
                rows.push(vec![
                    s(p),
                    s(""),
                    s("READ"),
                    Value::Bool(p.starts_with("dbms")),
                    s(&format!("{p}() :: ()")),
                    Value::List(vec![]),
                    Value::List(vec![]),
                    Value::Bool(false),
                    Value::Null,
                    Value::Null,
                    Value::Map(vec![("deprecated".into(), Value::Bool(false))]),
                ]);
            }
        }
        Show::Functions => {
            for f in super::eval::FUNCTIONS {
                rows.push(vec![
                    s(f),
                    s(""),
                    s(""),
                    s(&format!("{f}() :: ANY")),
                    Value::Bool(true),
                    Value::List(vec![]),
                    s(""),
                    Value::Bool(super::eval::is_aggregate(f)),
                    Value::Null,
                    Value::Null,
                ]);
            }
        }
        Show::Users | Show::CurrentUser => {
            rows.push(vec![
                s(&ex.server.user),
                Value::Null,
                Value::Bool(false),
                Value::Null,
                Value::Null,
            ]);
        }
        Show::Transactions => {}
    }
    Ok((cols, rows))
}

/// The iteration order of a `java.util.HashMap<String, _>` filled with `keys` in order
/// (what `db.schema.visualization()` returns its nodes in).
pub fn java_hash_order(keys: &[String]) -> Vec<String> {
    let hash = |s: &str| {
        let mut h: u32 = 0;
        for u in s.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(u as u32);
        }
        h ^ (h >> 16)
    };
    let mut cap = 16usize;
    while keys.len() as f64 > cap as f64 * 0.75 {
        cap *= 2;
    }
    let mut buckets: Vec<Vec<String>> = vec![Vec::new(); cap];
    for k in keys {
        buckets[hash(k) as usize & (cap - 1)].push(k.clone());
    }
    buckets.into_iter().flatten().collect()
}

/// Runs a procedure: (columns, rows).
pub fn call(
    ex: &mut Exec,
    name: &str,
    args: &[Value],
) -> Result<(Vec<String>, Vec<Vec<Value>>), CypherError> {
    let cols: Vec<String> = procedure_columns(name)
        .ok_or_else(|| CypherError::compile(codes::PROCEDURE_NOT_FOUND, format!("There is no procedure with the name `{name}` registered for this database instance. Please ensure you've spelled the procedure name correctly and that the procedure is properly deployed.")))?
        .iter()
        .map(|s| s.to_string())
        .collect();
    let g = &ex.tx.graph;
    let counts = g.counts();
    let rows: Vec<Vec<Value>> = match name {
        "db.labels" => g
            .labels
            .iter()
            .filter(|l| counts.labels.get(*l).copied().unwrap_or(0) > 0)
            .map(|l| vec![s(l)])
            .collect(),
        "db.relationshiptypes" => g
            .rel_types
            .iter()
            .filter(|t| counts.types.get(*t).copied().unwrap_or(0) > 0)
            .map(|t| vec![s(t)])
            .collect(),
        "db.propertykeys" => g.prop_keys.iter().map(|k| vec![s(k)]).collect(),
        "db.info" => vec![vec![s(&ex.db.id), s(&ex.db.name), s(&ex.db.creation_date)]],
        "db.ping" => vec![vec![Value::Bool(true)]],
        "db.awaitindexes" | "db.awaitindex" | "db.resampleoutdatedindexes" => vec![],
        "db.clearquerycaches" => vec![vec![s("Query cache already empty.")]],
        "dbms.components" => vec![vec![
            s("Neo4j Kernel"),
            Value::List(vec![s("5.3.0")]),
            s("community"),
        ]],
        "dbms.showcurrentuser" => vec![vec![s(&ex.server.user), Value::Null, Value::List(vec![])]],
        "dbms.listconfig" => {
            let search = match args.first() {
                Some(Value::Str(x)) => x.to_ascii_lowercase(),
                _ => String::new(),
            };
            let mut cfg = ex.server.config.clone();
            cfg.sort();
            cfg.into_iter()
                .filter(|(k, _)| k.to_ascii_lowercase().contains(&search))
                .map(|(k, v)| {
                    vec![
                        s(&k),
                        s(""),
                        s(&v),
                        Value::Bool(false),
                        s(&v),
                        s(&v),
                        Value::Bool(false),
                        s(""),
                    ]
                })
                .collect()
        }
        "db.schema.visualization" => {
            let mut nodes = Vec::new();
            let mut label_ids: BTreeMap<String, i64> = BTreeMap::new();
            let in_use: Vec<String> = g
                .labels
                .iter()
                .filter(|l| counts.labels.get(*l).copied().unwrap_or(0) > 0)
                .cloned()
                .collect();
            let ordered = java_hash_order(&in_use);
            for l in &ordered {
                let i = in_use.iter().position(|x| x == l).unwrap();
                let id = -(i as i64) - 1;
                label_ids.insert(l.clone(), id);
                let indexes: Vec<String> = g
                    .indexes
                    .iter()
                    .filter(|ix| {
                        ix.owning_constraint.is_none()
                            && ix.entity == EntityType::Node
                            && ix.labels_or_types.as_deref() == Some(std::slice::from_ref(l))
                    })
                    .flat_map(|ix| ix.properties.clone().unwrap_or_default())
                    .collect();
                let constraints: Vec<String> = g
                    .constraints
                    .iter()
                    .filter(|c| c.label == *l)
                    .map(|c| c.describe())
                    .collect();
                nodes.push(Value::Virtual(Box::new(Virtual {
                    id,
                    node: true,
                    labels: vec![l.clone()],
                    props: vec![
                        ("indexes".into(), strs(&indexes)),
                        ("name".into(), s(l)),
                        ("constraints".into(), strs(&constraints)),
                    ],
                })));
            }
            // One virtual relationship per (start label, type, end label); ids follow the
            // type token order, the output the hash order of the type names (as recorded).
            let mut triples: Vec<(String, String, String)> = Vec::new();
            for t in &g.rel_types {
                for r in g.rels.values().filter(|r| r.rel_type == *t) {
                    let (Some(a), Some(b)) = (g.nodes.get(&r.start), g.nodes.get(&r.end)) else {
                        continue;
                    };
                    for la in &a.labels {
                        for lb in &b.labels {
                            let k = (la.clone(), t.clone(), lb.clone());
                            if !triples.contains(&k) {
                                triples.push(k);
                            }
                        }
                    }
                }
            }
            let keys: Vec<String> = triples
                .iter()
                .map(|(a, t, b)| {
                    if triples.iter().filter(|x| x.1 == *t).count() == 1 {
                        t.clone()
                    } else {
                        format!("{a}{t}{b}")
                    }
                })
                .collect();
            let rels: Vec<Value> = java_hash_order(&keys)
                .iter()
                .map(|k| {
                    let i = keys.iter().position(|x| x == k).unwrap();
                    Value::Virtual(Box::new(Virtual {
                        id: -(i as i64) - 1,
                        node: false,
                        labels: vec![triples[i].1.clone()],
                        props: vec![],
                    }))
                })
                .collect();
            vec![vec![Value::List(nodes), Value::List(rels)]]
        }
        "db.stats.retrieve" => {
            let section = match args.first() {
                Some(Value::Str(x)) => x.clone(),
                _ => String::new(),
            };
            if section != "GRAPH COUNTS" {
                return Err(CypherError::runtime(
                    codes::ARGUMENT,
                    format!("Unknown section '{section}', known sections are ['GRAPH COUNTS', 'TOKENS', 'QUERIES', 'META']"),
                ));
            }
            let mut nodes = vec![Value::Map(vec![(
                "count".into(),
                Value::Int(counts.nodes as i64),
            )])];
            for l in &g.labels {
                nodes.push(Value::Map(vec![
                    (
                        "count".into(),
                        Value::Int(counts.labels.get(l).copied().unwrap_or(0) as i64),
                    ),
                    ("label".into(), s(l)),
                ]));
            }
            let mut rels = vec![Value::Map(vec![(
                "count".into(),
                Value::Int(counts.relationships as i64),
            )])];
            for t in &g.rel_types {
                let n = counts.types.get(t).copied().unwrap_or(0) as i64;
                rels.push(Value::Map(vec![
                    ("relationshipType".into(), s(t)),
                    ("count".into(), Value::Int(n)),
                ]));
                let mut starts: BTreeMap<String, i64> = BTreeMap::new();
                let mut ends: BTreeMap<String, i64> = BTreeMap::new();
                for r in g.rels.values().filter(|r| r.rel_type == *t) {
                    for l in g
                        .nodes
                        .get(&r.start)
                        .map(|n| n.labels.clone())
                        .unwrap_or_default()
                    {
                        *starts.entry(l).or_default() += 1;
                    }
                    for l in g
                        .nodes
                        .get(&r.end)
                        .map(|n| n.labels.clone())
                        .unwrap_or_default()
                    {
                        *ends.entry(l).or_default() += 1;
                    }
                }
                for (l, c) in starts {
                    rels.push(Value::Map(vec![
                        ("relationshipType".into(), s(t)),
                        ("startLabel".into(), s(&l)),
                        ("count".into(), Value::Int(c)),
                    ]));
                }
                for (l, c) in ends {
                    rels.push(Value::Map(vec![
                        ("relationshipType".into(), s(t)),
                        ("count".into(), Value::Int(c)),
                        ("endLabel".into(), s(&l)),
                    ]));
                }
            }
            vec![vec![
                s("GRAPH COUNTS"),
                Value::Map(vec![
                    ("nodes".into(), Value::List(nodes)),
                    ("relationships".into(), Value::List(rels)),
                    ("indexes".into(), Value::List(vec![])),
                    ("constraints".into(), Value::List(vec![])),
                ]),
            ]]
        }
        _ => vec![],
    };
    Ok((cols, rows))
}
