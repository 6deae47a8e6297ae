//! Where the PostgreSQL server is, from flags or libpq's environment.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::Error;

/// Connection flags, each falling back to the libpq variable `psql` and `pg_dump` use.
/// The password comes from `PGPASSWORD` or libpq's password file (`~/.pgpass`,
/// `PGPASSFILE`), never from a flag, so never in argv or `ps`.
#[derive(Debug, Clone, clap::Args)]
pub struct PgArgs {
    /// Server host name, or the directory of its Unix socket [default: /var/run/postgresql if present, else localhost].
    #[arg(long, env = "PGHOST", value_name = "HOST")]
    pub host: Option<String>,

    /// Server port.
    #[arg(long, env = "PGPORT", value_name = "PORT", default_value_t = 5432)]
    pub port: u16,

    /// User name [default: the operating-system user].
    #[arg(long, env = "PGUSER", value_name = "USER")]
    pub username: Option<String>,

    /// Directory holding pg_dump and pg_restore [default: found on PATH].
    #[arg(long, env = "STACKVAULT_PG_BINDIR", value_name = "DIR")]
    pub pg_bindir: Option<PathBuf>,
}

impl PgArgs {
    /// The host to use, with libpq's defaults applied.
    pub fn host(&self) -> String {
        match &self.host {
            Some(h) if !h.is_empty() => h.clone(),
            _ if std::path::Path::new("/var/run/postgresql").is_dir() => {
                "/var/run/postgresql".into()
            }
            _ => "localhost".into(),
        }
    }

    /// The user to connect as.
    pub fn user(&self) -> String {
        self.username
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".into())
    }

    /// `host:port/database`, for messages.
    pub fn describe(&self, database: &str) -> String {
        format!("{}:{}/{database}", self.host(), self.port)
    }

    /// Connects to `database`.
    pub fn connect(&self, database: &str) -> Result<postgres::Client, Error> {
        let mut config = postgres::Config::new();
        config
            .host(&self.host())
            .port(self.port)
            .user(&self.user())
            .dbname(database)
            .application_name("stackvault")
            .connect_timeout(Duration::from_secs(15));
        let password = std::env::var("PGPASSWORD")
            .ok()
            .or_else(|| crate::pgpass::lookup(&self.host(), self.port, database, &self.user()));
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect(postgres::NoTls)
            .map_err(|source| Error::Connect {
                target: self.describe(database),
                message: crate::error::describe(&source),
            })
    }

    /// A `pg_dump`/`pg_restore` command that connects where this does: host, port and user
    /// go through libpq's environment, and `PGPASSWORD` is inherited from ours.
    pub fn tool(&self, program: &str) -> Command {
        let path = match &self.pg_bindir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        let mut cmd = Command::new(path);
        cmd.env("PGHOST", self.host())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", self.user())
            .env("PGAPPNAME", "stackvault");
        cmd
    }

    /// The `source`/`target` description for manifests: no password, ever.
    pub fn to_json(&self, database: &str) -> Value {
        json!({"host": self.host(), "port": self.port, "database": database})
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

/// A libpq connection string naming only `database`, quoted so any name is safe to pass
/// as `--dbname` (a bare name containing `=` would be parsed as a connection string).
pub fn dbname_conninfo(database: &str) -> String {
    format!(
        "dbname='{}'",
        database.replace('\\', "\\\\").replace('\'', "\\'")
    )
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
}
