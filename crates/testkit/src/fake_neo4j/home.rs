//! The fake's `NEO4J_HOME`: the directory layout of a real one (`data/databases/<db>`,
//! `data/transactions/<db>`, `data/dumps`, `run`, `conf`, `logs`) holding the fake's own
//! store files, and [`FakeNeo4jHome`], which sets one up for a test.
//!
//! * `data/databases/<db>/database_lock` (empty, as in a real store) and
//!   `data/databases/<db>/graph.json` (the database: ids, graph, schema, tokens). A
//!   directory with only `database_lock` "does not contain a database"; one with other
//!   files but no readable `graph.json` is a store that cannot be recovered (what a
//!   truncated load leaves).
//! * `data/transactions/<db>/active-logical-log`: present while the fake server runs the
//!   database and after it was killed — the "needs recovery" state.
//! * `run/neo4j.pid`, `run/http.port`: the running fake server.
//! * `conf/fake-neo4j.json`: `{"user", "password", "httpPort", "dbTransactionTimeoutMs",
//!   "authMaxFailedAttempts", "authLockTimeMs", "startDelayMs"}` (all optional).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cypher::exec::DbInfo;
use super::graph::Graph;
use super::server::Database;

/// The store file of a database.
pub const STORE_FILE: &str = "graph.json";
/// The unclean-shutdown marker in a database's transaction directory.
pub const ACTIVE_LOG: &str = "active-logical-log";

/// `<home>/data/databases/<db>`.
pub fn db_dir(home: &Path, db: &str) -> PathBuf {
    home.join("data/databases").join(db)
}

/// `<home>/data/transactions/<db>`.
pub fn tx_dir(home: &Path, db: &str) -> PathBuf {
    home.join("data/transactions").join(db)
}

/// What a database directory holds.
pub enum StoreState {
    /// No directory, or only `database_lock`.
    Missing,
    /// Files, but no readable store (why).
    Corrupt(String),
    /// A database.
    Ok(Box<Database>),
}

/// The store document of a database.
pub fn database_doc(db: &Database) -> serde_json::Value {
    serde_json::json!({
        "format": "fake-neo4j-store/1",
        "name": db.info.name,
        "id": db.info.id,
        "uuid": db.info.uuid,
        "creationDate": db.info.creation_date,
        "lastCommittedTx": db.last_tx_id,
        "checkpointTx": db.checkpoint_tx_id,
        "graph": db.graph.to_store_json(),
    })
}

/// A database from its store document.
pub fn database_from_doc(j: &serde_json::Value, name: &str) -> Result<Database, String> {
    if j["format"] != "fake-neo4j-store/1" {
        return Err("not a fake-neo4j store".into());
    }
    Ok(Database {
        info: DbInfo {
            name: name.into(),
            uuid: j["uuid"].as_str().unwrap_or_default().into(),
            id: j["id"].as_str().unwrap_or_default().into(),
            creation_date: j["creationDate"].as_str().unwrap_or_default().into(),
        },
        graph: Graph::from_store_json(&j["graph"])?,
        last_tx_id: j["lastCommittedTx"].as_u64().unwrap_or(0),
        checkpoint_tx_id: j["checkpointTx"]
            .as_u64()
            .or_else(|| j["lastCommittedTx"].as_u64())
            .unwrap_or(0),
        available: true,
    })
}

/// Reads `<home>/data/databases/<db>`.
pub fn read_database(home: &Path, db: &str) -> StoreState {
    let dir = db_dir(home, db);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return StoreState::Missing;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "database_lock")
        .collect();
    if names.is_empty() {
        return StoreState::Missing;
    }
    let text = match std::fs::read_to_string(dir.join(STORE_FILE)) {
        Ok(t) => t,
        Err(_) => return StoreState::Corrupt("no store file".into()),
    };
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => return StoreState::Corrupt(e.to_string()),
    };
    match database_from_doc(&doc, db) {
        Ok(d) => StoreState::Ok(Box::new(d)),
        Err(e) => StoreState::Corrupt(e),
    }
}

/// Writes a database's store (atomically: written aside, then renamed).
pub fn write_database(home: &Path, name: &str, db: &Database) -> std::io::Result<()> {
    let dir = db_dir(home, name);
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(tx_dir(home, name))?;
    let lock = dir.join("database_lock");
    if !lock.exists() {
        std::fs::write(&lock, b"")?;
    }
    let tmp = dir.join(format!("{STORE_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&database_doc(db))?)?;
    std::fs::rename(&tmp, dir.join(STORE_FILE))
}

/// Removes a database's files, keeping the directory and `database_lock` (what a failed
/// `load --overwrite-destination=true` leaves).
pub fn destroy_database(home: &Path, name: &str) -> std::io::Result<()> {
    let dir = db_dir(home, name);
    std::fs::create_dir_all(&dir)?;
    for e in std::fs::read_dir(&dir)?.flatten() {
        if e.file_name() == "database_lock" {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    let lock = dir.join("database_lock");
    if !lock.exists() {
        std::fs::write(&lock, b"")?;
    }
    let tx = tx_dir(home, name);
    if tx.exists() {
        std::fs::remove_dir_all(&tx)?;
    }
    std::fs::create_dir_all(&tx)
}

/// Database directories, sorted.
pub fn list_databases(home: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(home.join("data/databases"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether the database was not shut down cleanly.
pub fn needs_recovery(home: &Path, db: &str) -> bool {
    tx_dir(home, db).join(ACTIVE_LOG).exists()
}

/// Sets or clears the unclean-shutdown marker.
pub fn set_needs_recovery(home: &Path, db: &str, on: bool) -> std::io::Result<()> {
    let dir = tx_dir(home, db);
    std::fs::create_dir_all(&dir)?;
    let f = dir.join(ACTIVE_LOG);
    if on {
        std::fs::write(f, b"transactions after the last checkpoint\n")
    } else if f.exists() {
        std::fs::remove_file(f)
    } else {
        Ok(())
    }
}

/// The fake server's settings from `conf/fake-neo4j.json`.
#[derive(Clone, Debug)]
pub struct HomeConfig {
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
    /// HTTP port (0: any free one).
    pub http_port: u16,
    /// `db.transaction.timeout` in ms.
    pub db_transaction_timeout_ms: u64,
    /// Failed logins before the lock.
    pub max_failed_attempts: u32,
    /// Lock time in ms.
    pub lock_time_ms: u64,
    /// How long `neo4j start` waits after the server is up before returning (the real one
    /// returns before the server answers; tests of a tool's waiting can set this).
    pub start_delay_ms: u64,
}

impl Default for HomeConfig {
    fn default() -> Self {
        HomeConfig {
            user: "neo4j".into(),
            password: "password".into(),
            http_port: 0,
            db_transaction_timeout_ms: 0,
            max_failed_attempts: 3,
            lock_time_ms: 5000,
            start_delay_ms: 0,
        }
    }
}

/// Reads `conf/fake-neo4j.json` (defaults for what is missing).
pub fn read_config(home: &Path) -> HomeConfig {
    let mut c = HomeConfig::default();
    let Ok(text) = std::fs::read_to_string(home.join("conf/fake-neo4j.json")) else {
        return c;
    };
    let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) else {
        return c;
    };
    if let Some(u) = j["user"].as_str() {
        c.user = u.into();
    }
    if let Some(p) = j["password"].as_str() {
        c.password = p.into();
    }
    if let Some(p) = j["httpPort"].as_u64() {
        c.http_port = p as u16;
    }
    if let Some(t) = j["dbTransactionTimeoutMs"].as_u64() {
        c.db_transaction_timeout_ms = t;
    }
    if let Some(n) = j["authMaxFailedAttempts"].as_u64() {
        c.max_failed_attempts = n as u32;
    }
    if let Some(n) = j["authLockTimeMs"].as_u64() {
        c.lock_time_ms = n;
    }
    if let Some(n) = j["startDelayMs"].as_u64() {
        c.start_delay_ms = n;
    }
    c
}

/// Writes `conf/fake-neo4j.json`.
pub fn write_config(home: &Path, c: &HomeConfig) -> std::io::Result<()> {
    std::fs::create_dir_all(home.join("conf"))?;
    std::fs::write(
        home.join("conf/fake-neo4j.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "user": c.user,
            "password": c.password,
            "httpPort": c.http_port,
            "dbTransactionTimeoutMs": c.db_transaction_timeout_ms,
            "authMaxFailedAttempts": c.max_failed_attempts,
            "authLockTimeMs": c.lock_time_ms,
            "startDelayMs": c.start_delay_ms,
        }))?,
    )
}

/// Whether a process is alive (a zombie waiting to be reaped is not).
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks the process exists.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z') | Some('X')
        ),
        Err(_) => true,
    }
}

/// The pid in `run/neo4j.pid`, if that process is alive.
pub fn running_pid(home: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(home.join("run/neo4j.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

/// The port the running fake server listens on.
pub fn http_port(home: &Path) -> Option<u16> {
    running_pid(home)?;
    std::fs::read_to_string(home.join("run/http.port"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Creates the directory layout of a home.
pub fn create_layout(home: &Path) -> std::io::Result<()> {
    for d in [
        "bin",
        "conf",
        "data/databases",
        "data/transactions",
        "data/dumps",
        "import",
        "logs",
        "plugins",
        "run",
        "lib",
        "licenses",
        "certificates",
    ] {
        std::fs::create_dir_all(home.join(d))?;
    }
    Ok(())
}

/// Where the `fake-neo4j` binary is: `$FAKE_NEO4J_BIN`, else next to the running test
/// executable (`target/<profile>/fake-neo4j`, which cargo builds for testkit's own tests).
/// Tests of other crates find it there once it is built; when it is not, and the test runs
/// under cargo (`$CARGO` set), it is built once with `cargo build -p testkit --bin
/// fake-neo4j`.
pub fn fake_neo4j_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FAKE_NEO4J_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let find = || {
        let mut dir = exe.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            let candidate = d.join("fake-neo4j");
            if candidate.is_file() {
                return Some(candidate);
            }
            if d.join("Cargo.toml").exists() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        None
    };
    if let Some(p) = find() {
        return p;
    }
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let built = *BUILT.get_or_init(|| {
        let Some(cargo) = std::env::var_os("CARGO") else {
            return false;
        };
        Command::new(cargo)
            .args(["build", "-p", "testkit", "--bin", "fake-neo4j"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if built {
        if let Some(p) = find() {
            return p;
        }
    }
    panic!(
        "the fake-neo4j binary was not found next to {}: build it with `cargo build -p testkit --bin fake-neo4j` or set FAKE_NEO4J_BIN",
        exe.display()
    );
}

/// A fake `NEO4J_HOME` for one test: `bin/neo4j-admin` and `bin/neo4j` (links to the
/// fake binary), `conf/fake-neo4j.json`, a `system` and (unless asked otherwise) an empty
/// `neo4j` database. Dropping it stops a fake server it still runs and removes the
/// directory.
pub struct FakeNeo4jHome {
    dir: tempfile::TempDir,
}

impl FakeNeo4jHome {
    /// A home with an empty `neo4j` database and password `password`.
    pub fn new() -> Self {
        Self::with_config(HomeConfig::default(), Some(Graph::new()))
    }

    /// A home with these settings and, when given, this `neo4j` graph.
    pub fn with_config(config: HomeConfig, neo4j: Option<Graph>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fake-neo4j-home-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path();
        create_layout(home).expect("home layout");
        write_config(home, &config).expect("conf");
        let bin = fake_neo4j_bin();
        for name in ["neo4j-admin", "neo4j"] {
            std::os::unix::fs::symlink(&bin, home.join("bin").join(name)).expect("bin link");
        }
        let h = FakeNeo4jHome { dir };
        h.seed("system", Graph::new());
        if let Some(g) = neo4j {
            h.seed("neo4j", g);
        }
        h
    }

    /// The home directory (`NEO4J_HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<home>/bin`, holding `neo4j-admin` and `neo4j` (put it first in `PATH`, or pass
    /// the paths below to a tool).
    pub fn bin_dir(&self) -> PathBuf {
        self.path().join("bin")
    }

    /// `<home>/bin/neo4j-admin`.
    pub fn admin_path(&self) -> PathBuf {
        self.bin_dir().join("neo4j-admin")
    }

    /// `<home>/bin/neo4j`.
    pub fn neo4j_path(&self) -> PathBuf {
        self.bin_dir().join("neo4j")
    }

    /// A command for `bin/neo4j-admin` or `bin/neo4j`, run in the home with
    /// `FAKE_NEO4J_HOME` set.
    pub fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(self.bin_dir().join(tool));
        c.current_dir(self.path())
            .env("FAKE_NEO4J_HOME", self.path());
        c
    }

    /// Writes database `name` with `graph` (fresh ids).
    pub fn seed(&self, name: &str, graph: Graph) {
        self.seed_database(name, &super::new_database(name, graph));
    }

    /// Writes a database.
    pub fn seed_database(&self, name: &str, db: &Database) {
        write_database(self.path(), name, db).expect("write store");
    }

    /// The database `name` as stored, if it is a readable one.
    pub fn database(&self, name: &str) -> Option<Database> {
        match read_database(self.path(), name) {
            StoreState::Ok(d) => Some(*d),
            _ => None,
        }
    }

    /// The graph of database `name` as stored.
    pub fn graph(&self, name: &str) -> Option<Graph> {
        self.database(name).map(|d| d.graph)
    }

    /// The running fake server's pid.
    pub fn server_pid(&self) -> Option<u32> {
        running_pid(self.path())
    }

    /// `http://127.0.0.1:PORT` of the running fake server.
    pub fn http_url(&self) -> Option<String> {
        http_port(self.path()).map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// The configured credentials.
    pub fn credentials(&self) -> (String, String) {
        let c = read_config(self.path());
        (c.user, c.password)
    }

    /// Kills the fake server with SIGKILL: its databases are left needing recovery, as
    /// after a crash.
    pub fn kill_server(&self) {
        if let Some(pid) = self.server_pid() {
            // SAFETY: signalling a process this home started.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            for _ in 0..200 {
                if !alive(pid) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

impl Default for FakeNeo4jHome {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FakeNeo4jHome {
    fn drop(&mut self) {
        // Only the server this home started (its pid file).
        if let Some(pid) = self.server_pid() {
            // SAFETY: signalling a process this home started.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            for _ in 0..300 {
                if !alive(pid) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}
