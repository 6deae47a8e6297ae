//! PostgreSQL: health, the fingerprint (counts, content digests, schema) by `pgdump`'s own
//! code, the NOT NULL and orphan rules, and the id pages of cross-database rules.

use std::time::{Duration, Instant};

use manifest::fingerprint::{Fingerprint, PgStats};
use manifest::sections::{Check, CheckStatus};
use pgdump::conn::{quote_ident, Pg};
use pgdump::stats::{collect_with, Collect};
use postgres::Client;

use crate::error::Error;
use crate::keys::{IdSource, Key};
use crate::rules::{NotNull, Orphans};
use crate::{check, figures};

/// An open connection to the database being checked.
pub struct Db {
    /// The connection.
    pub client: Client,
    /// `host:port/database`.
    pub shown: String,
}

/// Connects to `database` and runs the health check (`SELECT 1` and the server version);
/// every statement after it is limited to `timeout`.
pub fn connect(pg: &Pg, database: &str, timeout: Duration) -> Result<(Db, Check), Error> {
    let started = Instant::now();
    let mut client = pg.connect(database).map_err(Error::from_pg)?;
    let row = client
        .query_one("SELECT 1, current_setting('server_version')", &[])
        .map_err(|e| Error::pg_query("SELECT 1", e))?;
    let version: String = row.get(1);
    let ms = started.elapsed().as_millis() as u64;
    client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            timeout.as_millis().max(1)
        ))
        .map_err(|e| Error::pg_query("cannot set statement_timeout", e))?;
    let shown = pg.describe(database);
    let health = check(
        "health",
        CheckStatus::Pass,
        format!("PostgreSQL {version} at {shown} answered SELECT 1 in {ms} ms"),
        figures! {"server_version" => version, "ms" => ms},
    );
    Ok((Db { client, shown }, health))
}

/// What the database holds now, counted by the code `dump-pg` counts with, in one
/// read-only snapshot: the counts, and the content digests and the schema when `what`
/// asks (when the backup has them to compare with).
pub fn fingerprint(db: &mut Db, what: Collect) -> Result<Fingerprint, Error> {
    let mut tx = db
        .client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| Error::pg_query("cannot start a snapshot", e))?;
    let stats: PgStats = collect_with(&mut tx, what).map_err(Error::from_pg)?;
    tx.commit()
        .map_err(|e| Error::pg_query("cannot end the snapshot", e))?;
    Ok(Fingerprint::Postgres(stats))
}

/// `"schema"."table"` from `schema.table`.
fn qualified(table: &str) -> String {
    match table.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => quote_ident(table),
    }
}

/// The single-column primary key of `table`, if it has one (to name offending rows).
fn primary_key(db: &mut Db, table: &str) -> Result<Option<String>, Error> {
    let rows = db
        .client
        .query(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
            &[&qualified(table)],
        )
        .map_err(|e| Error::pg_query(&format!("cannot read the primary key of {table}"), e))?;
    Ok(match rows.as_slice() {
        [one] => Some(one.get(0)),
        _ => None,
    })
}

/// `not_null TABLE`: counts the NULLs of each column in one scan; names the first rows
/// (by primary key) that have one.
pub fn not_null(db: &mut Db, rule: &NotNull, sample: usize) -> Result<Check, Error> {
    let name = format!("not_null {}", rule.table);
    let counts: Vec<String> = rule
        .columns
        .iter()
        .map(|c| format!("count(*) FILTER (WHERE {} IS NULL)", quote_ident(c)))
        .collect();
    let sql = format!(
        "SELECT count(*), {} FROM {}",
        counts.join(", "),
        qualified(&rule.table)
    );
    let row = db
        .client
        .query_one(sql.as_str(), &[])
        .map_err(|e| Error::pg_query(&format!("cannot count the NULLs of {}", rule.table), e))?;
    let rows: i64 = row.get(0);
    let mut nulls = serde_json::Map::new();
    let mut bad = vec![];
    for (i, c) in rule.columns.iter().enumerate() {
        let n: i64 = row.get(i + 1);
        nulls.insert(c.clone(), n.into());
        if n > 0 {
            bad.push(format!("{c}: {n}"));
        }
    }
    let mut figures = figures! {"rows" => rows, "nulls" => nulls};
    if bad.is_empty() {
        return Ok(check(
            name,
            CheckStatus::Pass,
            format!("no NULL in {} of {rows} rows", rule.columns.join(", ")),
            figures,
        ));
    }
    let mut detail = format!("NULLs in {} ({rows} rows)", bad.join(", "));
    if let Some(pk) = primary_key(db, &rule.table)? {
        let any: Vec<String> = rule
            .columns
            .iter()
            .map(|c| format!("{} IS NULL", quote_ident(c)))
            .collect();
        let sql = format!(
            "SELECT {pk}::text FROM {} WHERE {} ORDER BY {pk} LIMIT {sample}",
            qualified(&rule.table),
            any.join(" OR "),
            pk = quote_ident(&pk)
        );
        let ids: Vec<String> = db
            .client
            .query(sql.as_str(), &[])
            .map_err(|e| Error::pg_query("cannot list the rows with NULLs", e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        detail.push_str(&format!("; first rows by {pk}: {}", ids.join(", ")));
        figures.insert("sample".into(), ids.into());
    }
    Ok(check(name, CheckStatus::Fail, detail, figures))
}

/// `orphans TABLE.COLUMN`: rows whose non-NULL reference has no row in `references`,
/// found by the server (one anti-join), with the first missing values.
pub fn orphans(db: &mut Db, rule: &Orphans, sample: usize) -> Result<Check, Error> {
    let name = format!("orphans {}.{}", rule.table, rule.column);
    let (parent, parent_column) = rule
        .references
        .rsplit_once('.')
        .expect("validated: schema.table.column");
    let from = format!(
        "FROM {} c WHERE c.{col} IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM {} p WHERE p.{pcol} = c.{col})",
        qualified(&rule.table),
        qualified(parent),
        col = quote_ident(&rule.column),
        pcol = quote_ident(parent_column),
    );
    let what = format!("cannot look for orphans of {}.{}", rule.table, rule.column);
    let orphans: i64 = db
        .client
        .query_one(format!("SELECT count(*) {from}").as_str(), &[])
        .map_err(|e| Error::pg_query(&what, e))?
        .get(0);
    if orphans == 0 {
        return Ok(check(
            name,
            CheckStatus::Pass,
            format!(
                "every {}.{} exists as {}",
                rule.table, rule.column, rule.references
            ),
            figures! {"orphans" => 0},
        ));
    }
    let values: Vec<String> = db
        .client
        .query(
            format!(
                "SELECT DISTINCT c.{col}::text {from} ORDER BY 1 LIMIT {sample}",
                col = quote_ident(&rule.column)
            )
            .as_str(),
            &[],
        )
        .map_err(|e| Error::pg_query(&what, e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(check(
        name,
        CheckStatus::Fail,
        format!(
            "{orphans} rows of {} refer to a {} that does not exist: {}",
            rule.table,
            rule.references,
            values.join(", ")
        ),
        figures! {"orphans" => orphans, "sample" => values},
    ))
}

/// How an id column is paged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IdType {
    Int,
    Uuid,
    Text,
}

/// The ids of `table.column`, in keyset pages.
pub struct PgIds<'a> {
    db: &'a mut Db,
    table: String,
    column: String,
    kind: IdType,
    page: i64,
    last: Option<Key>,
    trips: u64,
}

impl<'a> PgIds<'a> {
    /// The ids of `table.column` (integer, uuid or text-like; other types are refused),
    /// `page` at a time.
    pub fn new(db: &'a mut Db, table: &str, column: &str, page: usize) -> Result<Self, Error> {
        let row = db
            .client
            .query_opt(
                "SELECT format_type(coalesce(nullif(t.typbasetype, 0), t.oid), NULL)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = $1::text::regclass AND a.attname = $2 AND NOT a.attisdropped",
                &[&qualified(table), &column],
            )
            .map_err(|e| Error::pg_query(&format!("cannot read the type of {table}.{column}"), e))?
            .ok_or_else(|| Error::Failed(format!("{table} has no column {column}")))?;
        let type_name: String = row.get(0);
        let kind = match type_name.as_str() {
            "smallint" | "integer" | "bigint" => IdType::Int,
            "uuid" => IdType::Uuid,
            "text" | "character varying" | "character" | "name" => IdType::Text,
            other => {
                return Err(Error::Failed(format!(
                "{table}.{column} is {other}: cross-database ids must be integers, uuids or text"
            )))
            }
        };
        Ok(PgIds {
            db,
            table: table.to_owned(),
            column: column.to_owned(),
            kind,
            page: page as i64,
            last: None,
            trips: 0,
        })
    }
}

impl IdSource for PgIds<'_> {
    fn describe(&self) -> String {
        format!("postgres {}.{}", self.table, self.column)
    }

    fn next_page(&mut self) -> Result<Vec<Key>, Error> {
        let col = quote_ident(&self.column);
        let (select, order, after) = match self.kind {
            IdType::Int => (format!("{col}::int8"), col.clone(), "$2::int8".to_owned()),
            IdType::Uuid => (
                format!("{col}::text"),
                col.clone(),
                "$2::text::uuid".to_owned(),
            ),
            // Byte order, as the other databases compare strings.
            IdType::Text => (
                format!("{col}::text"),
                format!("{col}::text COLLATE \"C\""),
                "$2::text COLLATE \"C\"".to_owned(),
            ),
        };
        let filter = match self.last {
            None => format!("{col} IS NOT NULL"),
            Some(_) => format!("{order} > {after}"),
        };
        let sql = format!(
            "SELECT {select} FROM {} WHERE {filter} ORDER BY {order} LIMIT $1",
            qualified(&self.table)
        );
        let what = format!("cannot read the ids of {}.{}", self.table, self.column);
        self.trips += 1;
        let rows = match &self.last {
            None => self.db.client.query(sql.as_str(), &[&self.page]),
            Some(Key::Int(n)) => {
                let n = *n as i64;
                self.db.client.query(sql.as_str(), &[&self.page, &n])
            }
            Some(Key::Str(s)) => self.db.client.query(sql.as_str(), &[&self.page, s]),
        }
        .map_err(|e| Error::pg_query(&what, e))?;
        let keys: Vec<Key> = rows
            .iter()
            .map(|r| match self.kind {
                IdType::Int => Key::Int(r.get::<_, i64>(0).into()),
                _ => Key::Str(r.get(0)),
            })
            .collect();
        if let Some(k) = keys.last() {
            self.last = Some(k.clone());
        }
        Ok(keys)
    }

    fn round_trips(&self) -> u64 {
        self.trips
    }
}
