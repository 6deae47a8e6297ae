//! The online export (`--method cypher`): every node and relationship of a database, and
//! its constraints and indexes, as the JSON lines of [`crate::format`], compressed with
//! zstd, while the database keeps serving.
//!
//! Nodes and relationships are read in pages of auto-commit requests (forms E4 and E5),
//! keyset-paged on the internal id (`WHERE id(n) > $after ORDER BY id(n)`): element ids
//! sort as strings, and `SKIP` re-reads everything before the page. Memory holds one page
//! and one bit per node id (to drop a relationship whose node the export did not see).
//!
//! Each page is a transaction of its own: the export is read-committed, not a snapshot.
//! So the counts and the schema are read before and after, and a difference is reported;
//! the fingerprint is what the artifact itself holds, so that a restore of it can be
//! proven either way.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::rc::Rc;

use manifest::fingerprint::Neo4jStats;
use manifest::ndjson::{JsonLinesWriter, MAX_LINE};
use serde_json::{json, Value};
use toolkit::progress::Progress;

use crate::client::{Access, Client, ResultSet, ServerInfo, Statement};
use crate::error::Error;
use crate::format::{self, Ambiguity, Header, Node, Record, Rel};
use crate::stats::{self, Counts, Snapshot};

/// E4: a page of nodes after the id `$after`.
pub const NODE_PAGE: &str = "MATCH (n) WHERE id(n) > $after \
    WITH n ORDER BY id(n) LIMIT $limit \
    RETURN id(n) AS id, labels(n) AS labels, properties(n) AS props, \
    [k IN keys(n) WHERE n[k] STARTS WITH '' OR (n[k] + [] = n[k] AND head(n[k]) STARTS WITH '')] AS strings";

/// E5: a page of relationships after the id `$after`.
pub const REL_PAGE: &str = "MATCH (a)-[r]->(b) WHERE id(r) > $after \
    WITH a, r, b ORDER BY id(r) LIMIT $limit \
    RETURN id(r) AS id, type(r) AS type, id(a) AS startId, id(b) AS endId, properties(r) AS props, \
    [k IN keys(r) WHERE r[k] STARTS WITH '' OR (r[k] + [] = r[k] AND head(r[k]) STARTS WITH '')] AS strings";

/// zstd level: 3 is zstd's default, fast on both sides.
const ZSTD_LEVEL: i32 = 3;

/// Node ids above this are not tracked (2^33 ids would take 1 GiB of bits); their
/// relationships are kept as read.
const MAX_TRACKED_ID: u64 = 1 << 33;

/// How to export.
#[derive(Clone, Copy, Debug)]
pub struct ExportOptions {
    /// Nodes or relationships per request.
    pub page_size: u64,
}

/// What an export wrote and saw.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The fingerprint of what the artifact holds (its counts, the schema read first).
    pub stats: Neo4jStats,
    /// Counts and schema before the first page.
    pub before: Snapshot,
    /// Counts and schema after the last page.
    pub after: Snapshot,
    /// Relationships left out because the export did not see one of their nodes (it was
    /// created or deleted during the export).
    pub dangling: u64,
    /// Requests made for pages.
    pub pages: u64,
    /// Warnings for the manifest.
    pub warnings: Vec<String>,
}

impl Exported {
    /// Whether the graph changed while it was read: counts or schema differ before and
    /// after, or the pages held other counts than the server reported.
    pub fn changed(&self) -> bool {
        self.before != self.after
            || self.dangling > 0
            || stats::fingerprint(&self.before.counts, &self.before.schema) != self.stats
    }
}

/// Counts what passes (shared with [`Lines`], which checks each line's length).
struct Counting<W> {
    inner: W,
    bytes: Rc<Cell<u64>>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes lines, refusing one that an import could not read back (longer than
/// [`MAX_LINE`]).
struct Lines<W: Write> {
    writer: JsonLinesWriter<Counting<W>>,
    bytes: Rc<Cell<u64>>,
}

impl<W: Write> Lines<W> {
    fn new(inner: W) -> Self {
        let bytes = Rc::new(Cell::new(0));
        Lines {
            writer: JsonLinesWriter::new(Counting {
                inner,
                bytes: bytes.clone(),
            }),
            bytes,
        }
    }

    fn write(&mut self, record: &Record, what: impl FnOnce() -> String) -> Result<(), Error> {
        let before = self.bytes.get();
        self.writer
            .write(record)
            .map_err(Error::io("cannot write the export into the spool"))?;
        if self.bytes.get() - before > MAX_LINE as u64 {
            return Err(Error::Artifact(format!(
                "{} is larger than {} MiB as a JSON line, more than an import reads; back this \
                 database up with --method admin",
                what(),
                MAX_LINE >> 20
            )));
        }
        Ok(())
    }
}

/// Node ids seen, one bit each.
#[derive(Default)]
struct Seen {
    bits: Vec<u64>,
}

impl Seen {
    fn insert(&mut self, id: i64) {
        let Ok(id) = u64::try_from(id) else { return };
        if id >= MAX_TRACKED_ID {
            return;
        }
        let word = (id / 64) as usize;
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (id % 64);
    }

    fn contains(&self, id: i64) -> bool {
        let Ok(id) = u64::try_from(id) else {
            return true;
        };
        if id >= MAX_TRACKED_ID {
            return true;
        }
        self.bits
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// Properties the answers leave ambiguous, for one warning each.
#[derive(Default)]
struct Ambiguities {
    maybe_bytes: u64,
    empty: u64,
    bytes_examples: BTreeSet<String>,
    empty_examples: BTreeSet<String>,
}

impl Ambiguities {
    fn note(&mut self, owner: &str, list: Vec<Ambiguity>) {
        for a in list {
            let (count, examples, key) = match a {
                Ambiguity::MaybeBytes(k) => (&mut self.maybe_bytes, &mut self.bytes_examples, k),
                Ambiguity::EmptyList(k) => (&mut self.empty, &mut self.empty_examples, k),
            };
            *count += 1;
            if examples.len() < 5 {
                examples.insert(format!("{owner}.{key}"));
            }
        }
    }

    fn warnings(&self) -> Vec<String> {
        let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut out = Vec::new();
        if self.maybe_bytes > 0 {
            out.push(format!(
                "{} propert{} (e.g. {}) hold lists of integers from -128 to 127: Neo4j 5.3's HTTP \
                 API returns byte[] exactly like long[], so if any was a byte[] it is restored as \
                 long[] (the values are kept)",
                self.maybe_bytes,
                if self.maybe_bytes == 1 { "y" } else { "ies" },
                list(&self.bytes_examples)
            ));
        }
        if self.empty > 0 {
            out.push(format!(
                "{} propert{} (e.g. {}) hold empty lists, whose element type the HTTP API does not \
                 tell; they are restored as empty lists",
                self.empty,
                if self.empty == 1 { "y" } else { "ies" },
                list(&self.empty_examples)
            ));
        }
        out
    }
}

fn strings_of(v: Option<&Value>) -> Result<Vec<String>, String> {
    v.and_then(Value::as_array)
        .ok_or("no strings column")?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| "a non-string key".to_owned())
        })
        .collect()
}

fn page(
    client: &Client,
    db: &str,
    text: &str,
    after: i64,
    limit: u64,
    what: &str,
) -> Result<ResultSet, Error> {
    let st = Statement::with(text, json!({"after": after, "limit": limit}));
    let what = format!("the {what} page after id {after}");
    let mut r = client.run(db, &what, &[st], Access::Read)?;
    Ok(r.remove(0))
}

/// Exports `db` into `out` (the spool file): header, schema, nodes, relationships, end.
/// `nodes` and `rels` count progress.
pub fn export(
    client: &Client,
    db: &str,
    server: &ServerInfo,
    out: &mut dyn Write,
    options: ExportOptions,
    nodes_progress: &dyn Progress,
    rels_progress: &dyn Progress,
) -> Result<Exported, Error> {
    let before = stats::snapshot(client, db)?;
    let encoder =
        zstd::Encoder::new(out, ZSTD_LEVEL).map_err(Error::io("cannot start the zstd stream"))?;
    let mut lines = Lines::new(encoder);
    lines.write(
        &Record::Header(Header {
            format: format::EXPORT_FORMAT.into(),
            database: db.into(),
            server_version: server.version.clone(),
            edition: server.edition.clone(),
        }),
        || "the header".into(),
    )?;
    for rule in &before.schema {
        lines.write(
            &Record::Schema {
                kind: rule.kind,
                name: rule.name.clone(),
                create: rule.create.clone(),
            },
            || format!("schema rule {}", rule.name),
        )?;
    }

    let mut held = Counts::default();
    let mut seen = Seen::default();
    let mut ambiguities = Ambiguities::default();
    let mut pages = 0;
    nodes_progress.set_length(before.counts.nodes);
    let mut after = -1i64;
    loop {
        toolkit::interrupt::check().map_err(|_| Error::Interrupted)?;
        let r = page(client, db, NODE_PAGE, after, options.page_size, "node")?;
        pages += 1;
        if r.data.is_empty() {
            break;
        }
        for row in &r.data {
            let node = node_of(&row.row, &row.meta).map_err(|e| {
                Error::Protocol(format!(
                    "cannot read node after id {after} from Neo4j's answer: {e}"
                ))
            })?;
            let (node, ambiguous) = node;
            ambiguities.note(&owner(&node.labels, ":"), ambiguous);
            after = node.id;
            held.nodes += 1;
            for l in &node.labels {
                *held.labels.entry(l.clone()).or_default() += 1;
            }
            seen.insert(node.id);
            let id = node.id;
            lines.write(&Record::Node(node), || format!("node {id}"))?;
        }
        nodes_progress.inc(r.data.len() as u64);
    }
    nodes_progress.finish();

    let mut dangling = 0;
    rels_progress.set_length(before.counts.relationships);
    let mut after = -1i64;
    loop {
        toolkit::interrupt::check().map_err(|_| Error::Interrupted)?;
        let r = page(
            client,
            db,
            REL_PAGE,
            after,
            options.page_size,
            "relationship",
        )?;
        pages += 1;
        if r.data.is_empty() {
            break;
        }
        for row in &r.data {
            let (rel, ambiguous) = rel_of(&row.row, &row.meta).map_err(|e| {
                Error::Protocol(format!(
                    "cannot read relationship after id {after} from Neo4j's answer: {e}"
                ))
            })?;
            after = rel.id;
            if !seen.contains(rel.start) || !seen.contains(rel.end) {
                // Its node was created after its page was read (or deleted since): the
                // relationship could not be restored; the export says so instead.
                dangling += 1;
                continue;
            }
            ambiguities.note(&format!(":{}", rel.rel_type), ambiguous);
            held.relationships += 1;
            *held.types.entry(rel.rel_type.clone()).or_default() += 1;
            let id = rel.id;
            lines.write(&Record::Rel(rel), || format!("relationship {id}"))?;
        }
        rels_progress.inc(r.data.len() as u64);
    }
    rels_progress.finish();
    lines.write(
        &Record::End {
            nodes: held.nodes,
            relationships: held.relationships,
        },
        || "the end record".into(),
    )?;
    let counting = lines.writer.into_inner();
    counting
        .inner
        .finish()
        .and_then(|out| out.flush())
        .map_err(Error::io("cannot finish the zstd stream"))?;

    let after = stats::snapshot(client, db)?;
    let stats = stats::fingerprint(&held, &before.schema);
    let mut warnings = ambiguities.warnings();
    let exported = Exported {
        stats,
        before,
        after,
        dangling,
        pages,
        warnings: Vec::new(),
    };
    if exported.changed() {
        warnings.insert(0, change_warning(&exported, &held));
    }
    Ok(Exported {
        warnings,
        ..exported
    })
}

/// What changed during the export, in one line.
fn change_warning(e: &Exported, held: &Counts) -> String {
    let mut parts = vec![format!(
        "the graph changed during the export (it reads committed data page by page, not one \
         snapshot): before {}, after {}, exported {}",
        e.before.counts.summary(),
        e.after.counts.summary(),
        held.summary()
    )];
    if e.before.schema != e.after.schema {
        parts.push("the schema changed too; the export holds the schema read first".into());
    }
    if e.dangling > 0 {
        parts.push(format!(
            "{} relationship(s) left out because one of their nodes appeared or went during the export",
            e.dangling
        ));
    }
    parts.push("the fingerprint is what the export holds; back up again, or with --method admin, for a consistent copy".into());
    parts.join("; ")
}

fn owner(labels: &[String], sep: &str) -> String {
    if labels.is_empty() {
        "(no label)".into()
    } else {
        labels.iter().map(|l| format!("{sep}{l}")).collect()
    }
}

/// A node from its E4 row: `[id, labels, props, strings]`, meta: 1 for the id, 1 per
/// label, the property map's share, 1 per `strings` entry.
fn node_of(row: &[Value], meta: &[Value]) -> Result<(Node, Vec<Ambiguity>), String> {
    let id = row.first().and_then(Value::as_i64).ok_or("no id")?;
    let labels = strings_of(row.get(1)).map_err(|e| format!("labels: {e}"))?;
    let strings = strings_of(row.get(3))?;
    let props = row.get(2).ok_or("no properties")?;
    let d = format::decode_props(props, meta, 1 + labels.len(), &strings)?;
    check_walk(1 + labels.len() + d.consumed + strings.len(), meta.len())?;
    Ok((
        Node {
            id,
            labels,
            props: d.props,
            typed: d.typed,
        },
        d.ambiguous,
    ))
}

/// A relationship from its E5 row: `[id, type, startId, endId, props, strings]`.
fn rel_of(row: &[Value], meta: &[Value]) -> Result<(Rel, Vec<Ambiguity>), String> {
    let int = |i: usize, what: &str| {
        row.get(i)
            .and_then(Value::as_i64)
            .ok_or(format!("no {what}"))
    };
    let id = int(0, "id")?;
    let rel_type = row
        .get(1)
        .and_then(Value::as_str)
        .ok_or("no type")?
        .to_owned();
    let (start, end) = (int(2, "start id")?, int(3, "end id")?);
    let strings = strings_of(row.get(5))?;
    let d = format::decode_props(row.get(4).ok_or("no properties")?, meta, 4, &strings)?;
    check_walk(4 + d.consumed + strings.len(), meta.len())?;
    Ok((
        Rel {
            id,
            rel_type,
            start,
            end,
            props: d.props,
            typed: d.typed,
        },
        d.ambiguous,
    ))
}

/// The walk must account for every meta entry: one left over or missing means the types
/// were read against the wrong entries.
fn check_walk(used: usize, len: usize) -> Result<(), String> {
    if used == len {
        Ok(())
    } else {
        Err(format!(
            "the meta walk took {used} entries of {len}: the answer is not laid out as Neo4j 5 \
             lays it out, so its types cannot be trusted"
        ))
    }
}
