//! Test harness for stackvault: scenarios on the real servers the test command started.
//!
//! `scripts/test` starts a throwaway PostgreSQL cluster and a SeaweedFS S3 server and
//! exports where they are (`STACKVAULT_TEST_PG*`, `STACKVAULT_TEST_S3_*`). A [`Scenario`]
//! gives each test its own temp directory, spool, fresh databases (dropped afterwards),
//! directory vault and S3 bucket, and runs the real tool binaries with an environment that
//! points at all of them. A test whose server is missing **fails** with a message saying
//! how to run the suite; it never passes silently.
//!
//! [`fake_neo4j`] holds protocol-faithful fakes of Neo4j 5.3 Community (the HTTP API in
//! process, `neo4j-admin`/`neo4j` as the `fake-neo4j` binary), proven against the
//! recordings in `tests/fixtures/reference/neo4j-5.3/`; they need no server.
#![deny(missing_docs)]

mod command;
pub mod fake_neo4j;
pub mod fake_qdrant;
mod faulty_proxy;
mod own_s3;
pub mod replay;
mod silent;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use command::{Feeding, Outcome, Running, TestCommand};
pub use faulty_proxy::FaultyProxy;
pub use own_s3::OwnS3;
pub use silent::{mute_endpoint, unconnectable_endpoint, Unconnectable};
use vault::s3::{S3Backend, S3Config};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The bucket of an `s3://bucket/prefix` URL.
pub fn bucket_of(url: &str) -> String {
    let rest = url.strip_prefix("s3://").expect("an s3:// URL");
    rest.split('/').next().unwrap().to_owned()
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the PostgreSQL and S3 servers that the test \
             command provisions; run the suite with scripts/test"
        )
    })
}

/// The PostgreSQL server of this test run.
#[derive(Clone, Debug)]
pub struct PgServer {
    /// Socket directory or host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Superuser name.
    pub user: String,
    /// What the TLS tests need (scripts/lib/postgres.sh).
    pub tls: PgTls,
}

/// The TLS fixtures of the test cluster: it listens on 127.0.0.1 and 127.0.0.2 with a
/// certificate for `localhost` and 127.0.0.1 only, signed by [`PgTls::root_cert`].
#[derive(Clone, Debug)]
pub struct PgTls {
    /// The CA that signed the server certificate.
    pub root_cert: PathBuf,
    /// A CA that did not.
    pub wrong_ca: PathBuf,
    /// A role that may log in only over TLS (`hostssl`), with [`PgTls::password`]; it is
    /// rejected without TLS and on the Unix socket.
    pub user: String,
    /// Its password.
    pub password: String,
    /// An address of the server that its certificate does not name.
    pub host_not_in_cert: String,
    /// A role that logs in over TLS with [`PgTls::client_cert`] and nothing else.
    pub cert_user: String,
    /// A client certificate for [`PgTls::cert_user`], signed by [`PgTls::root_cert`].
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl PgServer {
    /// From `STACKVAULT_TEST_PG*`; panics with instructions when unset.
    pub fn from_env() -> Self {
        PgServer {
            host: required("STACKVAULT_TEST_PGHOST"),
            port: required("STACKVAULT_TEST_PGPORT")
                .parse()
                .expect("port is a number"),
            user: required("STACKVAULT_TEST_PGUSER"),
            tls: PgTls {
                root_cert: required("STACKVAULT_TEST_PGSSLROOTCERT").into(),
                wrong_ca: required("STACKVAULT_TEST_PGSSLWRONGCA").into(),
                user: required("STACKVAULT_TEST_PGSSLUSER"),
                password: required("STACKVAULT_TEST_PGSSLPASSWORD"),
                host_not_in_cert: required("STACKVAULT_TEST_PGHOST_NOT_IN_CERT"),
                cert_user: required("STACKVAULT_TEST_PGSSLCERTUSER"),
                client_cert: required("STACKVAULT_TEST_PGSSLCERT").into(),
                client_key: required("STACKVAULT_TEST_PGSSLKEY").into(),
            },
        }
    }

    /// Settings for `database` as the superuser, on the socket.
    pub fn settings(&self, database: &str) -> pgconn::Settings {
        pgconn::Settings::builder()
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database)
            .build()
            .expect("valid test settings")
    }

    /// A connection to `database` as the superuser.
    pub fn connect(&self, database: &str) -> postgres::Client {
        self.settings(database)
            .connect()
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"))
    }
}

/// The S3 server of this test run.
#[derive(Clone, Debug)]
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Region.
    pub region: String,
}

impl S3Server {
    /// From `STACKVAULT_TEST_S3_*`; panics with instructions when unset.
    pub fn from_env() -> Self {
        S3Server {
            endpoint: required("STACKVAULT_TEST_S3_ENDPOINT"),
            access_key: required("STACKVAULT_TEST_S3_ACCESS_KEY"),
            secret_key: required("STACKVAULT_TEST_S3_SECRET_KEY"),
            region: required("STACKVAULT_TEST_S3_REGION"),
        }
    }

    /// Keys of multipart uploads in `bucket` under `prefix` that were neither completed nor
    /// aborted: what an interrupted client leaves behind. rust-s3 fails to parse SeaweedFS's
    /// answer to this request (no `StorageClass` element), so it is sent presigned and the
    /// keys are read from the XML directly.
    pub fn incomplete_uploads(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let region = s3::Region::Custom {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        };
        let credentials = s3::creds::Credentials::new(
            Some(&self.access_key),
            Some(&self.secret_key),
            None,
            None,
            None,
        )
        .unwrap();
        let bucket = s3::Bucket::new(bucket, region, credentials)
            .unwrap()
            .with_path_style();
        let query = [
            ("uploads".to_owned(), String::new()),
            ("prefix".to_owned(), prefix.to_owned()),
        ];
        let url = bucket
            .presign_get("/", 60, Some(query.into_iter().collect()))
            .unwrap();
        let body = ureq::get(&url)
            .call()
            .unwrap_or_else(|e| panic!("ListMultipartUploads failed: {e}"))
            .into_string()
            .unwrap();
        body.split("<Upload>")
            .skip(1)
            .filter_map(|upload| {
                let key = upload.split("<Key>").nth(1)?.split("</Key>").next()?;
                Some(key.to_owned())
            })
            .collect()
    }

    /// A backend on `bucket` (for tests that go behind the tools' back).
    pub fn backend(&self, bucket: &str, prefix: &str) -> S3Backend {
        let mut config = S3Config::new(bucket, Some(&self.endpoint));
        config.prefix = prefix.into();
        config.region = self.region.clone();
        config.access_key = Some(self.access_key.clone());
        config.secret_key = Some(toolkit::secret::Secret::new(self.secret_key.clone()));
        config.retry.retries = 2;
        S3Backend::new(config).expect("valid test S3 config")
    }
}

/// One test's world: temp dir, spool, databases, vaults.
pub struct Scenario {
    dir: tempfile::TempDir,
    tag: String,
    /// The PostgreSQL server.
    pub pg: PgServer,
    databases: Mutex<Vec<String>>,
    roles: Mutex<Vec<String>>,
}

impl Scenario {
    /// A new scenario with a fresh, empty database (see [`Scenario::db`]).
    pub fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("sv_{}_{n}", std::process::id());
        let scenario = Scenario {
            dir: tempfile::Builder::new()
                .prefix("stackvault-test-")
                .tempdir()
                .expect("temp dir"),
            tag,
            pg: PgServer::from_env(),
            databases: Mutex::new(Vec::new()),
            roles: Mutex::new(Vec::new()),
        };
        let main = scenario.db().to_owned();
        scenario.create_db(&main);
        scenario
    }

    /// The scenario's main database, created empty.
    pub fn db(&self) -> &str {
        &self.tag
    }

    /// A database name unique to this scenario, not created (`sv_…_suffix`); dropped at
    /// the end if something created it.
    pub fn db_name(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.tag);
        self.databases.lock().unwrap().push(name.clone());
        name
    }

    /// Creates database `name` (connect privilege revoked from PUBLIC, so `dump-pg --all`
    /// run as another role in another test never sees it).
    pub fn create_db(&self, name: &str) {
        let mut admin = self.pg.connect("postgres");
        // Two statements: CREATE DATABASE cannot run inside the implicit transaction of a
        // multi-statement batch.
        for sql in [
            format!("CREATE DATABASE \"{name}\""),
            format!("REVOKE CONNECT ON DATABASE \"{name}\" FROM PUBLIC"),
        ] {
            admin
                .batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {}", pgdump::describe_pg_error(&e)));
        }
        let mut dbs = self.databases.lock().unwrap();
        if !dbs.iter().any(|d| d == name) {
            dbs.push(name.to_owned());
        }
    }

    /// Creates a login role unique to this scenario (dropped at the end).
    pub fn create_role(&self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.tag);
        self.pg
            .connect("postgres")
            .batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN"))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create role {name}: {}",
                    pgdump::describe_pg_error(&e)
                )
            });
        self.roles.lock().unwrap().push(name.clone());
        name
    }

    /// Whether database `name` exists.
    pub fn db_exists(&self, name: &str) -> bool {
        pgdump::conn::database_exists(&mut self.pg.connect("postgres"), name).unwrap()
    }

    /// A superuser connection to `database`.
    pub fn connect(&self, database: &str) -> postgres::Client {
        self.pg.connect(database)
    }

    /// The scenario's temp directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The spool directory the tools are pointed at.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Files in the spool (names), sorted.
    pub fn spool_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.spool())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// A `file://` vault in the temp directory.
    pub fn dir_vault(&self) -> String {
        format!("file://{}", self.dir.path().join("vault").display())
    }

    /// A fresh bucket on the test S3 server; returns its `s3://bucket/prefix` URL.
    pub fn s3_vault(&self) -> String {
        let bucket = self.tag.replace('_', "-");
        let server = S3Server::from_env();
        server
            .backend(&bucket, "")
            .create_bucket()
            .unwrap_or_else(|e| panic!("cannot create test bucket {bucket}: {e}"));
        format!("s3://{bucket}/stack")
    }

    /// Like [`s3_vault`](Self::s3_vault), in a bucket of its own created with S3 Object
    /// Lock enabled (and so versioning).
    pub fn s3_locked_vault(&self) -> String {
        let bucket = format!("{}-locked", self.tag.replace('_', "-"));
        S3Server::from_env()
            .backend(&bucket, "")
            .create_bucket_with_lock()
            .unwrap_or_else(|e| panic!("cannot create test bucket {bucket}: {e}"));
        format!("s3://{bucket}/stack")
    }

    /// Runs `sql` in `database` as the superuser.
    pub fn sql(&self, database: &str, sql: &str) {
        self.connect(database)
            .batch_execute(sql)
            .unwrap_or_else(|e| {
                panic!(
                    "SQL failed in {database}: {}\n{sql}",
                    pgdump::describe_pg_error(&e)
                )
            });
    }

    /// A command running the tool binary at `program`, with PostgreSQL, S3 credentials and
    /// the spool pointing at this scenario, and no vault or database chosen (tests pass
    /// `--vault` and `--dbname`).
    pub fn cmd(&self, program: &Path) -> TestCommand {
        let mut cmd = std::process::Command::new(program);
        cmd.current_dir(self.dir.path())
            .env_remove("VAULT_URL")
            .env_remove("PGDATABASE")
            .env_remove("PGPASSWORD")
            .env_remove("MINIO_BUCKET")
            .env_remove("MINIO_ENDPOINT")
            .env("PGHOST", &self.pg.host)
            .env("PGPORT", self.pg.port.to_string())
            .env("PGUSER", &self.pg.user)
            .env("STACKVAULT_SPOOL", self.spool());
        // Without the test S3 server only directory vaults work; tests that need S3 call
        // `s3_vault()`, which fails with instructions.
        if std::env::var_os("STACKVAULT_TEST_S3_ENDPOINT").is_some() {
            let s3 = S3Server::from_env();
            cmd.env("AWS_ENDPOINT_URL", &s3.endpoint)
                .env("AWS_ACCESS_KEY_ID", &s3.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
                .env("AWS_REGION", &s3.region);
        }
        TestCommand::new(cmd)
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // Best effort: the whole cluster is thrown away at the end of the run anyway.
        let Ok(mut admin) = postgres::Config::new()
            .host(&self.pg.host)
            .port(self.pg.port)
            .user(&self.pg.user)
            .dbname("postgres")
            .connect(postgres::NoTls)
        else {
            return;
        };
        for db in self.databases.lock().unwrap().iter() {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
        }
        for role in self.roles.lock().unwrap().iter() {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""));
        }
    }
}
