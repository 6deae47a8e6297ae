//! Protocol-faithful fakes of Neo4j 5.3 Community, proven against the recordings in
//! `tests/fixtures/reference/neo4j-5.3/`:
//!
//! * [`FakeNeo4j`] — the HTTP transactional API (`/db/{db}/tx/commit`, explicit
//!   transactions, discovery, auth with rate limiting, content negotiation, JOLT) in
//!   process on `127.0.0.1:0`, over an in-memory property graph ([`Graph`]) that a test
//!   seeds and reads back, with the Cypher subset of [`cypher`].
//! * The `fake-neo4j` binary (`src/bin/fake-neo4j.rs`) — `neo4j-admin` (version, help,
//!   `database dump|load|info|check`, `dbms set-initial-password`) and `neo4j`
//!   (`start|stop|status|console`), dispatching on `argv[0]`; its state lives in a
//!   `NEO4J_HOME` directory ([`home`]), and `neo4j start` runs a [`FakeNeo4j`] in a
//!   background process on that home, so the HTTP API answers exactly while the fake
//!   server "runs". [`FakeNeo4jHome`] sets one up for a test and gives the command paths.
//!
//! What the fakes do not do is listed in `EXPORT_FORMS.md` and in the replay tests.

pub mod admin;
pub mod client;
pub mod cypher;
pub mod dump;
pub mod fixture;
pub mod graph;
pub mod home;
pub mod render;
pub mod request;
pub mod samples;
pub mod server;
pub mod temporal;
pub mod value;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use graph::{Counts, Graph, NodeRec, RelRec};
pub use home::FakeNeo4jHome;
pub use server::{Clock, Config, Database, RequestInfo};
pub use value::Value;

use cypher::exec::DbInfo;
use server::State;

/// Builds a [`FakeNeo4j`].
pub struct FakeNeo4jBuilder {
    config: Config,
    clock: Clock,
    neo4j: Option<Database>,
    system: Option<Database>,
    first_tx_id: u64,
    home: Option<PathBuf>,
    port: u16,
}

impl Default for FakeNeo4jBuilder {
    fn default() -> Self {
        FakeNeo4jBuilder {
            config: Config {
                user: "neo4j".into(),
                password: "password".into(),
                max_failed_attempts: 3,
                lock_time: Duration::from_secs(5),
                db_transaction_timeout: Duration::ZERO,
                idle_timeout: None,
                home: "$NEO4J_HOME".into(),
                server_id: server::random_uuid(),
            },
            clock: Clock::Real,
            neo4j: None,
            system: None,
            first_tx_id: 1,
            home: None,
            port: 0,
        }
    }
}

/// A new database with fresh ids (a new `system` database is at transaction 36, as the
/// recorded one was).
pub fn new_database(name: &str, graph: Graph) -> Database {
    let tx = if name == "system" { 36 } else { 2 };
    Database {
        info: DbInfo {
            name: name.into(),
            uuid: server::random_uuid(),
            id: server::random_db_id(),
            creation_date: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        },
        graph,
        last_tx_id: tx,
        checkpoint_tx_id: tx,
        available: true,
    }
}

impl FakeNeo4jBuilder {
    /// The user and password (default `neo4j` / `password`).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.config.user = user.into();
        self.config.password = password.into();
        self
    }

    /// Failed logins before the lock (`dbms.security.auth_max_failed_attempts`, default 3).
    pub fn max_failed_attempts(mut self, n: u32) -> Self {
        self.config.max_failed_attempts = n;
        self
    }

    /// How long a user stays locked (`dbms.security.auth_lock_time`, default 5 s).
    pub fn auth_lock_time(mut self, d: Duration) -> Self {
        self.config.lock_time = d;
        self
    }

    /// `db.transaction.timeout` (default 0 s: none; explicit transactions then expire
    /// after 2 s idle).
    pub fn db_transaction_timeout(mut self, d: Duration) -> Self {
        self.config.db_transaction_timeout = d;
        self
    }

    /// The idle expiry of explicit transactions, instead of `max(db.transaction.timeout,
    /// 2 s)`.
    pub fn tx_idle_timeout(mut self, d: Duration) -> Self {
        self.config.idle_timeout = Some(d);
        self
    }

    /// A manual clock starting at `start` (advance it with [`FakeNeo4j::set_time`]).
    pub fn manual_clock(mut self, start: chrono::DateTime<chrono::Utc>) -> Self {
        self.clock = Clock::Manual(start.timestamp_millis());
        self
    }

    /// The `neo4j` database's graph.
    pub fn graph(mut self, graph: Graph) -> Self {
        self.neo4j = Some(new_database("neo4j", graph));
        self
    }

    /// The `neo4j` database, ids included.
    pub fn database(mut self, db: Database) -> Self {
        self.neo4j = Some(db);
        self
    }

    /// The `system` database.
    pub fn system_database(mut self, db: Database) -> Self {
        self.system = Some(db);
        self
    }

    /// The first transaction id (default 1; the recordings started at 3).
    pub fn first_tx_id(mut self, id: u64) -> Self {
        self.first_tx_id = id;
        self
    }

    /// What `dbms.listConfig` reports `server.directories.*` under.
    pub fn home_display(mut self, home: &str) -> Self {
        self.config.home = home.into();
        self
    }

    /// Persist committed changes into this `NEO4J_HOME` (as the fake server process does).
    pub fn persist_to(mut self, home: PathBuf) -> Self {
        self.home = Some(home);
        self
    }

    /// Listen on this port (default 0: any).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Starts the server.
    pub fn start(self) -> std::io::Result<FakeNeo4j> {
        let mut dbs = BTreeMap::new();
        dbs.insert(
            "neo4j".to_owned(),
            self.neo4j
                .unwrap_or_else(|| new_database("neo4j", Graph::new())),
        );
        dbs.insert(
            "system".to_owned(),
            self.system
                .unwrap_or_else(|| new_database("system", Graph::new())),
        );
        let mut state = State::new(self.config, self.clock, dbs, self.first_tx_id);
        state.home = self.home;
        let state = Arc::new(Mutex::new(state));
        let server =
            tiny_http::Server::http(("127.0.0.1", self.port)).map_err(std::io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let server = Arc::new(server);
        let (s2, st2) = (server.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            while let Ok(rq) = s2.recv() {
                server::serve(&st2, rq);
            }
        });
        Ok(FakeNeo4j {
            state,
            addr,
            server,
            thread: Some(thread),
        })
    }
}

/// The fake HTTP transactional API. Stops when dropped.
pub struct FakeNeo4j {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeNeo4j {
    /// A builder.
    pub fn builder() -> FakeNeo4jBuilder {
        FakeNeo4jBuilder::default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of a database's committed graph.
    pub fn graph(&self, db: &str) -> Graph {
        self.lock()
            .databases
            .get(db)
            .map(|d| d.graph.clone())
            .unwrap_or_default()
    }

    /// Counts of a database's committed graph.
    pub fn counts(&self, db: &str) -> Counts {
        self.lock()
            .databases
            .get(db)
            .map(|d| d.graph.counts())
            .unwrap_or_default()
    }

    /// Changes a database's committed graph (between requests).
    pub fn with_graph<R>(&self, db: &str, f: impl FnOnce(&mut Graph) -> R) -> R {
        let mut st = self.lock();
        let d = st.databases.get_mut(db).expect("no such database");
        f(&mut d.graph)
    }

    /// Replaces a database (e.g. with a new empty one, as after a failed overwrite load).
    pub fn replace_database(&self, name: &str, db: Database) {
        self.lock().databases.insert(name.to_owned(), db);
    }

    /// A database's facts.
    pub fn database(&self, name: &str) -> Option<Database> {
        self.lock().databases.get(name).cloned()
    }

    /// Runs `hook` before every request (with the request and the databases), e.g. to
    /// change the graph in the middle of an export.
    pub fn on_request(
        &self,
        hook: impl FnMut(&RequestInfo, &mut BTreeMap<String, Database>) + Send + 'static,
    ) {
        self.lock().hook = Some(Box::new(hook));
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<RequestInfo> {
        self.lock().requests.clone()
    }

    /// Sets the manual clock (switching to it if the server used the real one).
    pub fn set_time(&self, t: chrono::DateTime<chrono::Utc>) {
        self.lock().clock = Clock::Manual(t.timestamp_millis());
    }

    /// Advances the manual clock.
    pub fn advance(&self, d: Duration) {
        let mut st = self.lock();
        let now = st.now_ms();
        st.clock = Clock::Manual(now + d.as_millis() as i64);
    }

    /// What a server restart does to the API: open transactions are gone, transaction ids
    /// start at 1 again, failed-login counters are reset.
    pub fn restart(&self) {
        self.lock().restart();
    }

    /// Changes `db.transaction.timeout` (takes effect for later requests).
    pub fn set_db_transaction_timeout(&self, d: Duration) {
        self.lock().config.db_transaction_timeout = d;
    }

    /// Open explicit transactions.
    pub fn open_transactions(&self) -> usize {
        self.lock().open_transactions_len()
    }
}

impl Drop for FakeNeo4j {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
