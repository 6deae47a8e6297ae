//! Where PostgreSQL is and where its client programs are. Connection settings are
//! [`pgconn`]'s (libpq's environment, URIs, TLS); this adds the directory of `pg_dump`
//! and `pg_restore` and the manifest's description of a server.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::error::Error;

pub use pgconn::dbname_conninfo;

/// The connection flags of `dump-pg` (pgconn's `--host`, `--port`, `--username`, each
/// falling back to its libpq variable) and `--pg-bindir`. Passwords and TLS settings
/// come from libpq's environment (`PGPASSWORD`, the password file, `PGSSLMODE`, ...)
/// or a connection string given as the database name, never from a flag.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct PgArgs {
    #[command(flatten)]
    conn: pgconn::PgArgs,

    /// Directory holding pg_dump and pg_restore [default: found on PATH].
    #[arg(long, env = "STACKVAULT_PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
}

impl PgArgs {
    /// The server these flags and libpq's environment name, with `dbname` (a database
    /// name, URI or keyword/value string) applied over them.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] with [`pgconn::ErrorKind::Config`] for invalid settings.
    pub fn resolve(&self, dbname: Option<&str>) -> Result<Pg, Error> {
        Ok(Pg {
            settings: self.conn.settings(dbname)?,
            bindir: self.pg_bindir.clone(),
        })
    }
}

/// A PostgreSQL server to dump from or restore into, and its client programs.
#[derive(Debug, Clone)]
pub struct Pg {
    settings: pgconn::Settings,
    bindir: Option<PathBuf>,
}

impl Pg {
    /// From connection settings and the directory of `pg_dump`/`pg_restore` (`None`:
    /// found on `PATH`).
    pub fn new(settings: pgconn::Settings, bindir: Option<PathBuf>) -> Self {
        Pg { settings, bindir }
    }

    /// The connection settings.
    pub fn settings(&self) -> &pgconn::Settings {
        &self.settings
    }

    /// The database the settings name (from `--dbname`, `PGDATABASE` or a URI's path;
    /// only the name).
    pub fn dbname(&self) -> &str {
        self.settings.dbname()
    }

    /// `host:port/database`, for messages.
    pub fn describe(&self, database: &str) -> String {
        self.settings.for_database(database).target()
    }

    /// Connects to `database` on this server.
    pub fn connect(&self, database: &str) -> Result<postgres::Client, Error> {
        Ok(self.settings.for_database(database).connect()?)
    }

    /// A `pg_dump`/`pg_restore` command that connects where this does: every setting
    /// (password and TLS included) goes through libpq's environment, none through argv;
    /// `PGDATABASE` is the settings' database name.
    pub fn tool(&self, program: &str) -> Command {
        let path = match &self.bindir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        self.settings.command(path)
    }

    /// The `source`/`target` description for manifests: host, port, database and
    /// sslmode; no user, no password, ever.
    pub fn to_json(&self, database: &str) -> Value {
        let hosts: Vec<String> = self
            .settings
            .hosts()
            .iter()
            .map(|h| h.to_string())
            .collect();
        let ports = self.settings.ports();
        let port = match ports {
            [one] => json!(one),
            many => json!(many
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")),
        };
        json!({
            "host": hosts.join(","),
            "port": port,
            "database": database,
            "sslmode": self.settings.sslmode().as_str(),
        })
    }
}

/// Whether database `name` exists on the server `client` is connected to.
pub fn database_exists(
    client: &mut impl postgres::GenericClient,
    name: &str,
) -> Result<bool, Error> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .map_err(Error::query(format!("cannot look up database {name}")))?;
    Ok(row.is_some())
}

/// `"schema"."name"`, quoted for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(dbname_conninfo("a'b\\c"), "dbname='a\\'b\\\\c'");
    }

    #[test]
    fn table_of_sources() {
        let settings = |conninfo: &str| {
            pgconn::Settings::builder()
                .user("u")
                .conninfo(conninfo)
                .build()
                .unwrap()
        };
        #[rustfmt::skip]
        let cases = [
            ("postgresql://u:s3cret@db:5433/app?sslmode=require", json!({"host": "db", "port": 5433, "database": "app", "sslmode": "require"})),
            ("host=a,b port=1,2 dbname=app", json!({"host": "a,b", "port": "1,2", "database": "app", "sslmode": "prefer"})),
        ];
        for (conninfo, want) in cases {
            let pg = Pg::new(settings(conninfo), None);
            assert_eq!(pg.to_json(pg.dbname()), want, "{conninfo}");
        }
    }
}
