//! What is checked where, and how the checks come back to the manifests.
//!
//! A **unit** is one database, collection or graph to check: a PostgreSQL database, a
//! Qdrant collection, a Neo4j database. In a pipeline each `ok` manifest of a known kind
//! gives one (a full-storage Qdrant snapshot one per collection), placed where its
//! `restore.target` says it was restored; live, the configured servers give them. Each
//! unit's checks form a section of the report and go into its manifests' `checks`; the
//! cross-database rules and the backup sets go into every manifest they involve.

use std::time::Duration;

use manifest::fingerprint::{compare_only, Aspect, Fingerprint, FingerprintError, QdrantStats};
use manifest::sections::{Check, CheckStatus, Checks};
use manifest::time::Timestamp;
use manifest::{Kind, Manifest, Status};
use pgdump::conn::Pg;
use pgdump::stats::Collect;
use serde_json::{json, Value};
use toolkit::progress::{self, Style, Unit as Counting};

use crate::error::Error;
use crate::keys::{merge, IdSource};
use crate::report::{Report, Section};
use crate::rules::{CrossRule, Rules};
use crate::{check, figures, skip};

/// The servers, as configured (flags and environment, as the backup tools read them), or
/// why one is not.
pub struct Servers {
    /// PostgreSQL.
    pub postgres: Result<Pg, String>,
    /// Qdrant.
    pub qdrant: Result<qdrant::Client, String>,
    /// Neo4j.
    pub neo4j: Result<neo4j::client::Client, String>,
    /// The Neo4j database to check live.
    pub neo4j_database: String,
}

/// How the checks run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ids, points or nodes per request.
    pub page_size: usize,
    /// Offending ids named per check.
    pub sample: usize,
    /// Longest time one PostgreSQL statement may take (HTTP requests have theirs in their
    /// clients).
    pub timeout: Duration,
    /// How progress is shown.
    pub style: Style,
}

/// What a run found: the report, and the input manifests, each checked one with its
/// `checks` section.
pub struct Checked {
    /// The report.
    pub report: Report,
    /// The manifests, in input order.
    pub manifests: Vec<Manifest>,
}

/// Where a unit is.
#[derive(Clone, Debug, PartialEq)]
enum Place {
    Postgres(String),
    Qdrant(String),
    Neo4j(String),
}

struct Unit {
    kind: Kind,
    /// Its name as backed up (source database or collection; live: its own).
    source: String,
    place: Option<Place>,
    expected: Option<Result<Fingerprint, FingerprintError>>,
    section: Section,
    /// The open PostgreSQL connection, kept for the cross-database rules.
    pg: Option<crate::postgres::Db>,
}

impl Unit {
    fn new(kind: Kind, source: &str, place: Option<Place>, title: String, target: Value) -> Unit {
        Unit {
            kind,
            source: source.to_owned(),
            place,
            expected: None,
            section: Section::new(title, target),
            pg: None,
        }
    }

    fn reachable(&self) -> bool {
        self.section.unreachable.is_none() && self.section.bad_input.is_none()
    }
}

/// A section of a server with nothing placed to check: only its `health` check.
fn bare(kind: Kind, title: &str, target: Value, health: Check) -> Unit {
    let mut u = Unit::new(kind, "", None, title.to_owned(), target);
    u.section.checks.push(health);
    u
}

/// A server nobody configured (live): SKIP with the reason, never PASS.
fn not_configured(kind: Kind, why: &str) -> Unit {
    let title = kind.to_string();
    bare(
        kind,
        &title,
        Value::Null,
        skip("health", format!("not configured: {why}")),
    )
}

/// Runs `f`; an unreachable database or bad input is recorded on the section (and the
/// check skipped), any other error is a failed check named `name`.
fn attempt(section: &mut Section, name: &str, f: impl FnOnce() -> Result<Check, Error>) {
    if section.unreachable.is_some() || section.bad_input.is_some() {
        section
            .checks
            .push(skip(name, "not checked: the database did not answer"));
        return;
    }
    let c = match f() {
        Ok(c) => c,
        Err(Error::Unreachable(why)) => {
            section.unreachable = Some(why.clone());
            skip(name, format!("the database did not answer: {why}"))
        }
        Err(Error::Input(why)) => {
            section.bad_input = Some(why.clone());
            skip(name, format!("not checked: {why}"))
        }
        Err(Error::Failed(why)) => check(name, CheckStatus::Fail, why, Default::default()),
    };
    section.checks.push(c);
}

fn source_of<'m>(m: &'m Manifest, key: &str) -> Option<&'m str> {
    m.source.as_ref()?.get(key)?.as_str()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The fingerprint of `manifest` for one Qdrant collection, under the name it was
/// restored as.
fn qdrant_expected(m: &Manifest, from: &str, to: &str) -> Result<Fingerprint, FingerprintError> {
    match m.fingerprint()? {
        Fingerprint::Qdrant(mut stats) => match stats.collections.remove(from) {
            Some(one) => Ok(Fingerprint::Qdrant(QdrantStats {
                collections: [(to.to_owned(), one)].into(),
            })),
            None => Err(FingerprintError::Malformed {
                kind: Kind::Qdrant,
                message: format!("the stats have no collection {from:?}"),
            }),
        },
        _ => Err(FingerprintError::Malformed {
            kind: Kind::Qdrant,
            message: "not a Qdrant fingerprint".into(),
        }),
    }
}

/// The units of one manifest in a pipeline: where its restore went, or why it cannot be
/// checked.
fn units_of(m: &Manifest, index: usize, servers: &Servers) -> Vec<Unit> {
    let kind = m.kind.clone();
    let title_of = |what: &str| format!("{kind} {what}");
    let restore = match m.restore_section() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            let mut u = Unit::new(kind.clone(), "", None, title_of(m.id.as_str()), Value::Null);
            u.section.bad_input = Some(format!("{}: {e}", m.id));
            u.section.manifests.push(m.id.to_string());
            return vec![u];
        }
        None => {
            let name = m.id.name().unwrap_or(m.id.as_str()).to_owned();
            let mut u = Unit::new(kind.clone(), &name, None, title_of(&name), Value::Null);
            u.section.manifests.push(m.id.to_string());
            u.section.checks.push(skip(
                "health",
                "not a restore: the manifest has no restore section naming what to check \
                 (pipe it through dump-pg, snap-qdrant or dump-neo4j restore first)",
            ));
            return vec![u];
        }
    };
    let target = restore.target.clone();
    let mut units = vec![];
    let bad = |why: String| {
        let mut u = Unit::new(
            kind.clone(),
            "",
            None,
            title_of(m.id.as_str()),
            target.clone(),
        );
        u.section.bad_input = Some(format!("{}: {why}", m.id));
        u
    };
    match &kind {
        Kind::Postgres => match (text(&target, "database"), &servers.postgres) {
            (None, _) => units.push(bad("the restore target names no database".into())),
            (Some(db), Ok(pg)) => {
                let ours = pg.to_json(&db);
                let source = source_of(m, "database").unwrap_or(&db).to_owned();
                let mut u = Unit::new(
                    kind.clone(),
                    &source,
                    Some(Place::Postgres(db.clone())),
                    title_of(&db),
                    ours.clone(),
                );
                if ours.get("host") != target.get("host") || ours.get("port") != target.get("port")
                {
                    u.section.bad_input = Some(format!(
                        "{} was restored into {} but integrity-check connects to {} (set \
                         PGHOST/PGPORT or --host/--port to the restore's server)",
                        m.id,
                        target,
                        json!({"host": ours["host"], "port": ours["port"]})
                    ));
                }
                u.expected = Some(m.fingerprint());
                units.push(u);
            }
            (Some(_), Err(why)) => units.push(bad(why.clone())),
        },
        Kind::Qdrant => {
            let client = match &servers.qdrant {
                Ok(c) => c,
                Err(why) => return vec![bad(why.clone())],
            };
            let collections: Vec<(String, String)> = match (
                text(&target, "collection"),
                target.get("collections").and_then(Value::as_array),
            ) {
                (Some(c), _) => {
                    let source = source_of(m, "collection").unwrap_or(&c).to_owned();
                    vec![(source, c)]
                }
                (None, Some(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|c| (c.to_owned(), c.to_owned()))
                    .collect(),
                (None, None) => return vec![bad("the restore target names no collection".into())],
            };
            let url = text(&target, "url");
            for (source, collection) in collections {
                let mut u = Unit::new(
                    kind.clone(),
                    &source,
                    Some(Place::Qdrant(collection.clone())),
                    title_of(&collection),
                    json!({"url": client.shown_url(), "collection": collection}),
                );
                if url.as_deref().is_some_and(|u| u != client.shown_url()) {
                    u.section.bad_input = Some(format!(
                        "{} was restored into Qdrant at {} but integrity-check connects to {} \
                         (set QDRANT_URL or --qdrant-url to the restore's server)",
                        m.id,
                        url.as_deref().unwrap_or_default(),
                        client.shown_url()
                    ));
                }
                u.expected = Some(qdrant_expected(m, &source, &collection));
                units.push(u);
            }
        }
        Kind::Neo4j => match (text(&target, "database"), &servers.neo4j) {
            (None, _) => units.push(bad("the restore target names no database".into())),
            (Some(db), Ok(client)) => {
                let source = source_of(m, "database").unwrap_or(&db).to_owned();
                let mut u = Unit::new(
                    kind.clone(),
                    &source,
                    Some(Place::Neo4j(db.clone())),
                    title_of(&db),
                    json!({"url": client.shown_url(), "database": db}),
                );
                if let Some(url) = text(&target, "url").filter(|u| u != client.shown_url()) {
                    u.section.bad_input = Some(format!(
                        "{} was restored into Neo4j at {url} but integrity-check connects to {} \
                         (set NEO4J_URL or --neo4j-url to the restore's server)",
                        m.id,
                        client.shown_url()
                    ));
                }
                u.expected = Some(m.fingerprint());
                units.push(u);
            }
            (Some(_), Err(why)) => units.push(bad(why.clone())),
        },
        Kind::Other(_) => {}
    }
    let _ = index;
    for u in &mut units {
        if u.section.manifests.is_empty() {
            u.section.manifests.push(m.id.to_string());
        }
    }
    units
}

/// Whether a manifest is checked: an `ok` record of a kind this version knows (the rest
/// pass through untouched, as `backup-manifest(5)` says of unknown kinds and statuses).
fn is_checked(m: &Manifest) -> bool {
    m.status == Status::Ok && m.kind.is_known()
}

/// The checks of `manifests`, the output of restore tools (see the module docs).
pub fn pipeline(
    manifests: Vec<Manifest>,
    servers: &Servers,
    rules: &Rules,
    options: &Options,
) -> Checked {
    let checked_at = Timestamp::now();
    let mut units = vec![];
    let mut owners: Vec<Vec<usize>> = vec![];
    for (i, m) in manifests.iter().enumerate() {
        if !is_checked(m) {
            continue;
        }
        for u in units_of(m, i, servers) {
            units.push(u);
            owners.push(vec![i]);
        }
    }
    check_units(&mut units, servers, rules, options);
    let mut sections: Vec<(Section, Vec<usize>)> = vec![];
    let cross = cross_rules(&mut units, &owners, servers, rules, options);
    for (u, owner) in units.into_iter().zip(owners) {
        sections.push((u.section, owner));
    }
    sections.extend(cross);
    for set in crate::set::backup_sets(&manifests, &rules.backup_set) {
        let mut s = Section::new(format!("backup set {}", set.run), Value::Null);
        s.manifests = set
            .members
            .iter()
            .map(|i| manifests[*i].id.to_string())
            .collect();
        s.checks.push(set.check);
        let members = set
            .members
            .into_iter()
            .filter(|i| is_checked(&manifests[*i]))
            .collect();
        sections.push((s, members));
    }
    finish(manifests, sections, checked_at, "pipeline")
}

/// The checks of the configured servers as they are; `compare_with` (backup manifests,
/// e.g. `vault-get --latest --json`) gives the fingerprints to compare with, matched by
/// kind and source name (the newest `ok` one of each).
pub fn live(
    servers: &Servers,
    rules: &Rules,
    compare_with: &[Manifest],
    options: &Options,
) -> Checked {
    let checked_at = Timestamp::now();
    let newest = |kind: &Kind, key: &str, name: &str| {
        compare_with
            .iter()
            .filter(|m| m.is_ok() && &m.kind == kind && source_of(m, key) == Some(name))
            .max_by_key(|m| m.created_at.system_time())
    };
    let mut units = vec![];
    match &servers.postgres {
        Ok(pg) => {
            let db = pg.dbname().to_owned();
            let mut u = Unit::new(
                Kind::Postgres,
                &db,
                Some(Place::Postgres(db.clone())),
                format!("postgres {db}"),
                pg.to_json(&db),
            );
            u.expected = newest(&Kind::Postgres, "database", &db).map(Manifest::fingerprint);
            units.push(u);
        }
        Err(why) => units.push(not_configured(Kind::Postgres, why)),
    }
    match &servers.qdrant {
        Ok(client) => match client.collections() {
            Ok(names) => {
                if names.is_empty() {
                    let health = match client.ready() {
                        Ok(()) => check(
                            "health",
                            CheckStatus::Pass,
                            format!(
                                "Qdrant at {} is ready; it holds no collection",
                                client.shown_url()
                            ),
                            Default::default(),
                        ),
                        Err(e) => check("health", CheckStatus::Fail, e.message, Default::default()),
                    };
                    units.push(bare(
                        Kind::Qdrant,
                        "qdrant",
                        json!({"url": client.shown_url()}),
                        health,
                    ));
                }
                for name in names {
                    let mut u = Unit::new(
                        Kind::Qdrant,
                        &name,
                        Some(Place::Qdrant(name.clone())),
                        format!("qdrant {name}"),
                        json!({"url": client.shown_url(), "collection": name}),
                    );
                    u.expected = newest(&Kind::Qdrant, "collection", &name)
                        .map(|m| qdrant_expected(m, &name, &name));
                    units.push(u);
                }
            }
            Err(e) => {
                let target = json!({"url": client.shown_url()});
                let mut u = Unit::new(Kind::Qdrant, "", None, "qdrant".into(), target);
                attempt(&mut u.section, "health", || Err(Error::from_qdrant(e)));
                units.push(u);
            }
        },
        Err(why) => units.push(not_configured(Kind::Qdrant, why)),
    }
    match &servers.neo4j {
        Ok(client) => {
            let db = servers.neo4j_database.clone();
            let mut u = Unit::new(
                Kind::Neo4j,
                &db,
                Some(Place::Neo4j(db.clone())),
                format!("neo4j {db}"),
                json!({"url": client.shown_url(), "database": db}),
            );
            u.expected = newest(&Kind::Neo4j, "database", &db).map(Manifest::fingerprint);
            units.push(u);
        }
        Err(why) => units.push(not_configured(Kind::Neo4j, why)),
    }
    check_units(&mut units, servers, rules, options);
    let owners = vec![vec![]; units.len()];
    let cross = cross_rules(&mut units, &owners, servers, rules, options);
    let mut sections: Vec<(Section, Vec<usize>)> =
        units.into_iter().map(|u| (u.section, vec![])).collect();
    sections.extend(cross);
    finish(vec![], sections, checked_at, "live")
}

/// The report, and each checked manifest with the checks of every section it owns.
fn finish(
    mut manifests: Vec<Manifest>,
    sections: Vec<(Section, Vec<usize>)>,
    checked_at: Timestamp,
    mode: &'static str,
) -> Checked {
    for (i, m) in manifests.iter_mut().enumerate() {
        let items: Vec<Check> = sections
            .iter()
            .filter(|(_, owners)| owners.contains(&i))
            .flat_map(|(s, _)| s.checks.iter().cloned())
            .collect();
        let failed = items.iter().any(|c| c.status == CheckStatus::Fail)
            || sections
                .iter()
                .filter(|(_, owners)| owners.contains(&i))
                .any(|(s, _)| s.unreachable.is_some() || s.bad_input.is_some());
        // Nothing checked (every item a skip, e.g. a backup that was never restored): no
        // checks section, which a ledger would read as a pass.
        if !failed && items.iter().all(|c| c.status == CheckStatus::Skip) {
            continue;
        }
        m.set_checks(&Checks {
            result: crate::pass_if(!failed),
            checked_at: checked_at.clone(),
            items,
            extra: Default::default(),
        });
    }
    Checked {
        report: Report {
            checked_at,
            mode,
            sections: sections.into_iter().map(|(s, _)| s).collect(),
        },
        manifests,
    }
}

/// The `fingerprint`, `content` (PostgreSQL) and `schema` checks: the backup's fingerprint
/// against `actual`, through the one shared comparison, aspect by aspect.
fn compare_checks(
    kind: &Kind,
    expected: &Option<Result<Fingerprint, FingerprintError>>,
    actual: Option<Result<Fingerprint, Error>>,
) -> Vec<Result<Check, Error>> {
    let mut names = vec![("fingerprint", Aspect::Counts)];
    if *kind == Kind::Postgres {
        names.push(("content", Aspect::Content));
    }
    names.push(("schema", Aspect::Schema));
    let expected = match expected {
        None => {
            return names
                .iter()
                .map(|(n, _)| Ok(skip(*n, "no backup to compare with (live: pass --compare-with FILE of backup manifests)")))
                .collect()
        }
        Some(Err(why)) => {
            return names
                .iter()
                .map(|(n, _)| Ok(skip(*n, format!("unverifiable: {why}"))))
                .collect()
        }
        Some(Ok(e)) => e,
    };
    let actual = match actual.expect("computed when there is something to compare") {
        Ok(a) => a,
        Err(e) => {
            let text = e.to_string();
            let mut out = vec![Err(e)];
            out.extend(
                names
                    .iter()
                    .skip(1)
                    .map(|(n, _)| Ok(skip(*n, format!("not compared: {text}")))),
            );
            return out;
        }
    };
    names
        .into_iter()
        .map(|(name, aspect)| {
            if let Fingerprint::Postgres(pg) = expected {
                if aspect == Aspect::Content && pg.content.is_none() {
                    return Ok(skip(name, "the backup recorded no content digests (made without dump-pg --content-digest)"));
                }
                if aspect == Aspect::Schema && pg.schema.is_none() {
                    return Ok(skip(name, "the backup recorded no schema (made by an older dump-pg)"));
                }
            }
            let c = compare_only(expected, &actual, aspect);
            let differences: Vec<String> = c.differences.iter().map(ToString::to_string).collect();
            let figures = figures! {"checked" => c.checked, "differences" => c.differences};
            Ok(if differences.is_empty() {
                check(name, CheckStatus::Pass, format!("all {} items match the backup's", c.checked), figures)
            } else {
                let shown: Vec<&String> = differences.iter().take(10).collect();
                let more = differences.len().saturating_sub(shown.len());
                check(
                    name,
                    CheckStatus::Fail,
                    format!(
                        "{} of {} items differ from the backup's: {}{}",
                        differences.len(),
                        c.checked,
                        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; "),
                        if more > 0 { format!("; and {more} more") } else { String::new() }
                    ),
                    figures,
                )
            })
        })
        .collect()
}

fn check_units(units: &mut [Unit], servers: &Servers, rules: &Rules, options: &Options) {
    for u in units.iter_mut() {
        let Some(place) = u.place.clone() else {
            continue;
        };
        if !u.reachable() {
            u.section
                .checks
                .push(skip("health", "not checked: see above"));
            continue;
        }
        match place {
            Place::Postgres(db) => check_postgres(u, servers, &db, rules, options),
            Place::Qdrant(c) => check_qdrant(u, servers, &c, rules, options),
            Place::Neo4j(db) => check_neo4j(u, servers, &db, rules, options),
        }
    }
}

fn push_all(section: &mut Section, names: &[&str], results: Vec<Result<Check, Error>>) {
    for (name, r) in names.iter().zip(results) {
        attempt(section, name, || r);
    }
}

fn check_postgres(u: &mut Unit, servers: &Servers, db: &str, rules: &Rules, o: &Options) {
    let pg = servers
        .postgres
        .as_ref()
        .expect("a placed unit has a server");
    match crate::postgres::connect(pg, db, o.timeout) {
        Ok((conn, health)) => {
            u.section.checks.push(health);
            u.pg = Some(conn);
        }
        Err(e) => {
            attempt(&mut u.section, "health", || Err(e));
            return;
        }
    }
    let conn = u.pg.as_mut().expect("connected");
    let actual = match &u.expected {
        Some(Ok(Fingerprint::Postgres(e))) => Some(crate::postgres::fingerprint(
            conn,
            Collect {
                content: e.content.is_some(),
                schema: e.schema.is_some(),
            },
        )),
        Some(Ok(_)) => Some(Err(Error::Failed(
            "the backup's stats are not PostgreSQL's".into(),
        ))),
        _ => None,
    };
    let results = compare_checks(&u.kind, &u.expected, actual);
    push_all(
        &mut u.section,
        &["fingerprint", "content", "schema"],
        results,
    );
    if rules
        .postgres
        .database
        .as_deref()
        .is_some_and(|d| d != u.source)
    {
        return;
    }
    for rule in &rules.postgres.not_null {
        let name = format!("not_null {}", rule.table);
        let conn = u.pg.as_mut().expect("connected");
        attempt(&mut u.section, &name, || {
            crate::postgres::not_null(conn, rule, o.sample)
        });
    }
    for rule in &rules.postgres.orphans {
        let name = format!("orphans {}.{}", rule.table, rule.column);
        let conn = u.pg.as_mut().expect("connected");
        attempt(&mut u.section, &name, || {
            crate::postgres::orphans(conn, rule, o.sample)
        });
    }
}

fn check_qdrant(u: &mut Unit, servers: &Servers, collection: &str, rules: &Rules, o: &Options) {
    let client = servers.qdrant.as_ref().expect("a placed unit has a server");
    attempt(&mut u.section, "health", || {
        crate::qdrant::health(client, collection)
    });
    if !u.reachable() {
        push_all(&mut u.section, &["fingerprint", "schema"], vec![]);
        return;
    }
    let actual = u
        .expected
        .as_ref()
        .filter(|e| e.is_ok())
        .map(|_| crate::qdrant::fingerprint(client, collection));
    let results = compare_checks(&u.kind, &u.expected, actual);
    push_all(&mut u.section, &["fingerprint", "schema"], results);
    for rule in rules
        .qdrant
        .payload
        .iter()
        .filter(|r| r.collection == u.source)
    {
        let name = format!("payload {}", rule.collection);
        let progress = progress::for_stderr_counting(
            o.style,
            &format!("payload of {collection}"),
            Counting::Items("points"),
        );
        attempt(&mut u.section, &name, || {
            crate::qdrant::payload(client, collection, rule, o.page_size, o.sample, &mut |n| {
                progress.inc(n)
            })
        });
        progress.finish();
    }
}

fn check_neo4j(u: &mut Unit, servers: &Servers, db: &str, rules: &Rules, o: &Options) {
    let client = servers.neo4j.as_ref().expect("a placed unit has a server");
    attempt(&mut u.section, "health", || {
        crate::neo4j::health(client, db)
    });
    if !u.reachable() {
        return;
    }
    let actual = u
        .expected
        .as_ref()
        .filter(|e| e.is_ok())
        .map(|_| crate::neo4j::fingerprint(client, db));
    let results = compare_checks(&u.kind, &u.expected, actual);
    push_all(&mut u.section, &["fingerprint", "schema"], results);
    let source = u.source.clone();
    for rule in rules
        .neo4j
        .duplicate_relationships
        .iter()
        .filter(|r| r.database.as_deref().unwrap_or("neo4j") == source)
    {
        let name = if rule.types.is_empty() {
            "duplicate_relationships".to_owned()
        } else {
            format!("duplicate_relationships {}", rule.types.join(","))
        };
        let progress = progress::for_stderr_counting(
            o.style,
            &format!("relationships of {db}"),
            Counting::Items("pages"),
        );
        attempt(&mut u.section, &name, || {
            crate::neo4j::duplicates(client, db, rule, o.page_size, o.sample, &mut |n| {
                progress.inc(n)
            })
        });
        progress.finish();
    }
}

/// The unit a side of a cross rule names: by kind and source name. `Err` says why none.
fn find(units: &[Unit], kind: &Kind, name: Option<&str>) -> Result<usize, String> {
    let found: Vec<usize> = units
        .iter()
        .enumerate()
        .filter(|(_, u)| &u.kind == kind && u.place.is_some() && name.is_none_or(|n| n == u.source))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(match name {
            Some(n) => {
                format!("no {kind} {n} to check (none among the manifests, or not configured)")
            }
            None => format!("no {kind} database to check"),
        }),
        _ => Err(format!(
            "several {kind} databases; name the one the rules are about ([{kind}] database)"
        )),
    }
}

/// The cross-database rules: one section, each rule a check owned by the manifests of the
/// units it involves.
fn cross_rules(
    units: &mut [Unit],
    owners: &[Vec<usize>],
    servers: &Servers,
    rules: &Rules,
    o: &Options,
) -> Vec<(Section, Vec<usize>)> {
    if rules.cross.is_empty() {
        return vec![];
    }
    let mut out = vec![];
    for rule in &rules.cross {
        let mut section = Section::new(format!("cross-database {}", rule.name), Value::Null);
        let name = format!("cross {}", rule.name);
        let mut involved = vec![];
        let c = match resolve(units, rule, rules) {
            Err(why) => skip(&name, why),
            Ok(sides) => {
                for &(i, _) in &sides {
                    involved.extend(owners[i].iter().copied());
                    section
                        .manifests
                        .extend(units[i].section.manifests.iter().cloned());
                }
                match sides.iter().find(|(i, _)| !units[*i].reachable()) {
                    Some((i, _)) => skip(
                        &name,
                        format!("not checked: {} did not answer", units[*i].section.title),
                    ),
                    None => {
                        let mut result = Err(Error::Failed(String::new()));
                        attempt(&mut section, &name, || {
                            result = run_cross(units, &sides, servers, rule, o);
                            std::mem::replace(&mut result, Ok(skip("", "")))
                        });
                        section.checks.pop().expect("attempt pushes")
                    }
                }
            }
        };
        section.checks.push(c);
        involved.sort();
        involved.dedup();
        out.push((section, involved));
    }
    out
}

/// Which side is which: (unit index, the side's description), PostgreSQL first.
fn resolve(
    units: &[Unit],
    rule: &CrossRule,
    rules: &Rules,
) -> Result<Vec<(usize, &'static str)>, String> {
    let mut sides = vec![];
    if rule.postgres.is_some() {
        sides.push((
            find(units, &Kind::Postgres, rules.postgres.database.as_deref())?,
            "postgres",
        ));
    }
    if let Some(q) = &rule.qdrant {
        sides.push((find(units, &Kind::Qdrant, Some(&q.collection))?, "qdrant"));
    }
    if let Some(n) = &rule.neo4j {
        sides.push((
            find(
                units,
                &Kind::Neo4j,
                Some(n.database.as_deref().unwrap_or("neo4j")),
            )?,
            "neo4j",
        ));
    }
    Ok(sides)
}

fn run_cross(
    units: &mut [Unit],
    sides: &[(usize, &'static str)],
    servers: &Servers,
    rule: &CrossRule,
    o: &Options,
) -> Result<Check, Error> {
    let mut places = vec![];
    for (i, _) in sides {
        places.push(units[*i].place.clone().expect("resolved units are placed"));
    }
    // The PostgreSQL connection is borrowed from its unit for the merge.
    let pg_index = sides
        .iter()
        .find(|(_, k)| *k == "postgres")
        .map(|(i, _)| *i);
    let mut pg_db = pg_index.and_then(|i| units[i].pg.take());
    let result = (|| {
        let mut sources: Vec<Box<dyn IdSource + '_>> = vec![];
        let mut pg_db = pg_db.as_mut();
        for place in &places {
            match place {
                Place::Postgres(_) => {
                    let p = rule.postgres.as_ref().expect("a postgres side");
                    let db = pg_db
                        .take()
                        .ok_or_else(|| Error::Failed("no PostgreSQL connection".into()))?;
                    sources.push(Box::new(crate::postgres::PgIds::new(
                        db,
                        &p.table,
                        &p.column,
                        o.page_size,
                    )?));
                }
                Place::Qdrant(c) => {
                    let client = servers
                        .qdrant
                        .as_ref()
                        .map_err(|e| Error::Input(e.clone()))?;
                    sources.push(Box::new(crate::qdrant::QdrantIds::new(
                        client,
                        c,
                        o.page_size,
                    )));
                }
                Place::Neo4j(db) => {
                    let client = servers
                        .neo4j
                        .as_ref()
                        .map_err(|e| Error::Input(e.clone()))?;
                    let n = rule.neo4j.as_ref().expect("a neo4j side");
                    sources.push(Box::new(crate::neo4j::Neo4jIds::new(
                        client,
                        db,
                        &n.label,
                        &n.property,
                        o.page_size,
                    )));
                }
            }
        }
        let progress = progress::for_stderr_counting(
            o.style,
            &format!("cross {}", rule.name),
            Counting::Items("ids"),
        );
        let mut refs: Vec<&mut dyn IdSource> = sources
            .iter_mut()
            .map(|b| &mut **b as &mut dyn IdSource)
            .collect();
        let merged = merge(&mut refs, o.sample, &mut |n| progress.inc(n));
        progress.finish();
        merged
    })();
    if let Some(i) = pg_index {
        units[i].pg = pg_db;
    }
    let merged = result?;
    let first = &merged.sides[0];
    let mut parts = vec![format!("{} ids in {}", first.ids, first.describe)];
    let mut failed = false;
    let mut pairs = vec![];
    for (pair, other) in merged.pairs.iter().zip(&merged.sides[1..]) {
        let show = |keys: &[crate::keys::Key]| {
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = format!("{}: {} ids", other.describe, other.ids);
        if pair.missing > 0 {
            text.push_str(&format!(
                ", {} of the first missing ({})",
                pair.missing,
                show(&pair.missing_sample)
            ));
        }
        if pair.extra > 0 {
            text.push_str(&format!(
                ", {} not in the first ({})",
                pair.extra,
                show(&pair.extra_sample)
            ));
        }
        failed |= pair.missing + pair.extra > 0;
        parts.push(text);
        pairs.push(json!({
            "side": other.describe,
            "missing": pair.missing,
            "missing_sample": pair.missing_sample.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
            "extra": pair.extra,
            "extra_sample": pair.extra_sample.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
        }));
    }
    let sides: Vec<Value> = merged
        .sides
        .iter()
        .map(|s| json!({"side": s.describe, "ids": s.ids, "duplicates": s.duplicates, "round_trips": s.round_trips, "largest_page": s.largest_page}))
        .collect();
    Ok(check(
        format!("cross {}", rule.name),
        crate::pass_if(!failed),
        parts.join("; "),
        figures! {"sides" => sides, "pairs" => pairs},
    ))
}
