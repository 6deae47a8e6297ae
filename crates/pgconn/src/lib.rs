//! Connecting to PostgreSQL the way libpq does, so that stackvault's own connections and
//! the `pg_dump`/`pg_restore` it runs always reach the same server, as the same user,
//! with the same TLS guarantees.
//!
//! - **Settings** ([`Settings`], built by [`Builder`] or from a tool's flags with
//!   [`PgArgs`]) come from where libpq takes them: a connection string given as the
//!   database name (`postgresql://user:pass@host:port/db?sslmode=verify-full`, or
//!   `host=… dbname=… sslmode=…`, expanded as libpq expands `dbname`), then flags, then
//!   `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`,
//!   `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGCONNECT_TIMEOUT`,
//!   `PGAPPNAME`, `PGOPTIONS`, then libpq's defaults (socket `/var/run/postgresql` if
//!   present, else `localhost`; port 5432; the OS user; `~/.pgpass`;
//!   `~/.postgresql/root.crt`). One deviation: with no `connect_timeout`, an attempt
//!   gives up after 15 s instead of never.
//! - **Passwords** are a [`Password`], which never prints; the password file is read
//!   per host when connecting ([`pgpass`]).
//! - **TLS** follows libpq's [`SslMode`] semantics exactly, including the retries of
//!   `allow` and `prefer` and the rule that a root certificate file, when present, is
//!   checked in every mode (so `require` then means `verify-ca`). It runs on rustls with
//!   the aws-lc-rs provider through `tokio-postgres-rustls`, with a certificate
//!   verifier of our own that implements those rules; no OpenSSL is needed.
//! - **Errors** ([`Error`]) have a [`ErrorKind`] (config, connect, TLS, authentication,
//!   query), the target `host:port/database`, and the server's own words
//!   ([`ServerMessage`]: severity, message, detail, hint, SQLSTATE), one line, never a
//!   secret; the driver's error stays the source.
//! - **Child programs** get the same settings through libpq's environment
//!   ([`Settings::command`]), never argv, and only the plain database name: a URI with
//!   a password never reaches a child's command line.
//!
//! ```no_run
//! # fn main() -> Result<(), pgconn::Error> {
//! let settings = pgconn::Settings::builder()
//!     .conninfo("postgresql://backup@db.internal/app?sslmode=verify-full")
//!     .env()
//!     .build()?;
//! let mut client = settings.connect()?;
//! let mut pg_dump = settings.command("pg_dump");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod command;
mod connect;
pub mod conninfo;
mod error;
pub mod pgpass;
mod settings;
mod sslmode;
mod tls;

pub use command::{dbname_conninfo, CHILD_ENV};
pub use conninfo::{is_conninfo, redact};
pub use error::{describe, Error, ErrorKind, ServerMessage};
pub use settings::{
    Builder, Host, PgArgs, Settings, DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PORT, DEFAULT_SOCKET_DIR,
};
pub use sslmode::{InvalidSslMode, SslMode};
/// A password: the workspace's one secret type, which never prints.
pub use toolkit::secret::Secret as Password;
