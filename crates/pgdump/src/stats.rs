//! The fingerprint of a database ([`PgStats`], defined with the other kinds' in the
//! manifest crate): exact rows per table and the number of large objects; with
//! [`collect_with`] also the catalog schema and per-table content digests.
//!
//! # The content digest ([`DIGEST_ALGORITHM`])
//!
//! Per table, computed by the server in one streaming scan (the same one that counts):
//! every row's text form (`ROW(r.*)::text`) is hashed with `md5`, its 128 bits are read as
//! two unsigned 64-bit numbers, and each half is summed over all rows modulo 2^64; the
//! digest is the two sums in hex. A sum, not a XOR: two equal rows do not cancel out, so
//! duplicates and their number count. The sums are taken in `numeric` (exact, no
//! overflow, whatever the number of rows) and reduced at the end. Order-independent, so
//! it needs no sort and no memory on either side; one changed, missing or extra row
//! changes it. It is an integrity check against accidents, not a cryptographic proof.
//!
//! A row's text form depends on session settings (time zone, date and interval style,
//! float digits, `bytea` output): they are fixed for the transaction
//! (`SET LOCAL`, see [`collect_with`]), so a restore into a server configured otherwise
//! digests the same. `md5` is refused by servers in FIPS mode; the digest then fails with
//! the server's words.

pub use manifest::fingerprint::{ContentDigests, PgStats};

use crate::conn::quote_ident;
use crate::error::Error;

/// Ordinary user tables: not system schemas, not tables that belong to an extension (the
/// extension recreates those).
/// The condition on `c` (pg_class) and `n` (its pg_namespace) that makes it one.
const USER_TABLE: &str = "c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

/// The `algorithm` of [`ContentDigests`] this version computes (see the module docs).
pub const DIGEST_ALGORITHM: &str = "md5-sum/1";

/// What [`collect_with`] adds to the counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collect {
    /// Per-table content digests (a scan of every row's text; see the module docs).
    pub content: bool,
    /// The catalog schema (cheap: catalog queries only).
    pub schema: bool,
}

/// Counts every user table exactly (`count(*)`, no estimate) in `client`'s current
/// transaction.
pub fn collect(client: &mut impl postgres::GenericClient) -> Result<PgStats, Error> {
    collect_with(client, Collect::default())
}

/// [`collect`], with content digests and the schema as `what` asks. `client` must be in a
/// transaction (it always is in a snapshot): the session settings the text forms depend on
/// are fixed with `SET LOCAL`, which ends with it.
pub fn collect_with(
    client: &mut impl postgres::GenericClient,
    what: Collect,
) -> Result<PgStats, Error> {
    if what.content || what.schema {
        client.batch_execute(FIXED_SETTINGS).map_err(Error::query(
            "cannot fix the session settings of the digest",
        ))?;
    }
    let sql = format!(
        "SELECT n.nspname, c.relname
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {USER_TABLE} ORDER BY 1, 2"
    );
    let tables = client
        .query(sql.as_str(), &[])
        .map_err(Error::query("cannot list tables"))?;
    let mut stats = PgStats::default();
    let mut digests = ContentDigests {
        algorithm: DIGEST_ALGORITHM.to_owned(),
        tables: Default::default(),
    };
    for row in tables {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        let name = format!("{schema}.{table}");
        if what.content {
            let (count, digest) = count_and_digest(client, &schema, &table)?;
            stats.tables.insert(name.clone(), count);
            digests.tables.insert(name, digest);
        } else {
            let count = count_rows(client, &schema, &table)?;
            stats.tables.insert(name, count);
        }
    }
    if what.content {
        stats.content = Some(digests);
    }
    if what.schema {
        stats.schema = Some(schema(client)?);
    }
    let row = client
        .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
        .map_err(Error::query("cannot count large objects"))?;
    stats.large_objects = row.get::<_, i64>(0) as u64;
    Ok(stats)
}

/// Rows in `schema.table`, children of inheritance excluded (they are counted themselves).
pub fn count_rows(
    client: &mut impl postgres::GenericClient,
    schema: &str,
    table: &str,
) -> Result<u64, Error> {
    let sql = format!(
        "SELECT count(*) FROM ONLY {}.{}",
        quote_ident(schema),
        quote_ident(table)
    );
    let row = client
        .query_one(sql.as_str(), &[])
        .map_err(Error::query(format!(
            "cannot count rows of {schema}.{table}"
        )))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The settings a row's text form and the catalog's texts depend on, for the current
/// transaction only: UTC, ISO dates, the shortest exact floats, hex `bytea`, and
/// `pg_catalog` alone on the search path (so every user object is written qualified).
const FIXED_SETTINGS: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; \
     SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; \
     SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C'; \
     SET LOCAL search_path = pg_catalog";

/// Rows in `schema.table` and its content digest, in one scan (see the module docs).
pub fn count_and_digest(
    client: &mut impl postgres::GenericClient,
    schema: &str,
    table: &str,
) -> Result<(u64, String), Error> {
    // Each half of the md5 as a signed bigint, shifted into 0..2^64, summed exactly.
    let half = |from: u8| {
        format!(
            "coalesce(mod(sum(('x' || substr(h, {from}, 16))::bit(64)::bigint::numeric \
             + 9223372036854775808), 18446744073709551616), 0)::text"
        )
    };
    let sql = format!(
        "SELECT count(*), {}, {} FROM (SELECT md5(ROW(r.*)::text) AS h FROM ONLY {}.{} r) d",
        half(1),
        half(17),
        quote_ident(schema),
        quote_ident(table)
    );
    let row = client
        .query_one(sql.as_str(), &[])
        .map_err(Error::query(format!(
            "cannot digest the rows of {schema}.{table}"
        )))?;
    let hex = |i: usize| -> Result<String, Error> {
        let text: String = row.get(i);
        let n: u64 = text.parse().map_err(|_| {
            Error::Refused(format!(
                "the digest of {schema}.{table} is not a 64-bit number: {text}"
            ))
        })?;
        Ok(format!("{n:016x}"))
    };
    Ok((
        row.get::<_, i64>(0) as u64,
        format!("{}{}", hex(1)?, hex(2)?),
    ))
}

/// The user tables' catalog objects, one line each (see [`PgStats::schema`]):
/// `table s.t`, `column s.t.c TYPE[ not null][ default EXPR]`, `index s.t.name: DEF`,
/// `constraint s.t.name: DEF`. Written with `pg_catalog` alone on the search path (see
/// [`collect_with`]), so every name of a user object is qualified.
pub fn schema(
    client: &mut impl postgres::GenericClient,
) -> Result<std::collections::BTreeSet<String>, Error> {
    let user = USER_TABLE;
    let queries = [
        format!(
            "SELECT 'table ' || n.nspname || '.' || c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user}"
        ),
        format!(
            "SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' '
                    || format_type(a.atttypid, a.atttypmod)
                    || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                    || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
             WHERE {user}"
        ),
        format!(
            "SELECT 'index ' || n.nspname || '.' || c.relname || '.' || i.relname || ': '
                    || pg_get_indexdef(i.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_index x ON x.indrelid = c.oid JOIN pg_class i ON i.oid = x.indexrelid
             WHERE {user}"
        ),
        format!(
            "SELECT 'constraint ' || n.nspname || '.' || c.relname || '.' || k.conname || ': '
                    || pg_get_constraintdef(k.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_constraint k ON k.conrelid = c.oid
             WHERE {user}"
        ),
    ];
    let mut lines = std::collections::BTreeSet::new();
    for sql in &queries {
        let rows = client
            .query(sql.as_str(), &[])
            .map_err(Error::query("cannot read the schema from the catalog"))?;
        lines.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    Ok(lines)
}
