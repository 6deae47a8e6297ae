//! The fingerprint of a database ([`PgStats`], defined with the other kinds' in the
//! manifest crate): exact rows per table and the number of large objects.

pub use manifest::fingerprint::PgStats;

use crate::conn::quote_ident;
use crate::error::Error;

/// Ordinary user tables: not system schemas, not tables that belong to an extension (the
/// extension recreates those).
const USER_TABLES: &str = "
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2";

/// Counts every user table exactly (`count(*)`, no estimate) in `client`'s current
/// transaction.
pub fn collect(client: &mut impl postgres::GenericClient) -> Result<PgStats, Error> {
    let tables = client
        .query(USER_TABLES, &[])
        .map_err(Error::query("cannot list tables"))?;
    let mut stats = PgStats::default();
    for row in tables {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        let count = count_rows(client, &schema, &table)?;
        stats.tables.insert(format!("{schema}.{table}"), count);
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
