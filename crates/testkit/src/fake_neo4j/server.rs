//! The HTTP transactional API of Neo4j 5.3, served by [`super::FakeNeo4j`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

use super::cypher::exec::{
    self, DbInfo, DbListing, RunOptions, ServerInfo, StatementOutput, TxKind, TxState,
};
use super::cypher::{CypherError, Phase};
use super::graph::Graph;
use super::render::View;
use super::request::{too_large_number, Next, StatementReader, StatementRequest};
use super::value::{Json, Value};

/// One database served.
#[derive(Clone, Debug)]
pub struct Database {
    /// Facts (uuid, id, creation date).
    pub info: DbInfo,
    /// The committed graph.
    pub graph: Graph,
    /// The last committed transaction id.
    pub last_tx_id: u64,
    /// The last transaction id written to the store files by a checkpoint (a clean start or
    /// shutdown): what `neo4j-admin database info` shows after a crash.
    pub checkpoint_tx_id: u64,
    /// `false` when the store cannot be read (the database is offline).
    pub available: bool,
}

/// Settings of the fake server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// `dbms.security.auth_max_failed_attempts`.
    pub max_failed_attempts: u32,
    /// `dbms.security.auth_lock_time`.
    pub lock_time: Duration,
    /// `db.transaction.timeout` (zero: none).
    pub db_transaction_timeout: Duration,
    /// Overrides the idle expiry of explicit transactions (default
    /// `max(db.transaction.timeout, 2 s)`).
    pub idle_timeout: Option<Duration>,
    /// What `server.directories.*` are reported under.
    pub home: String,
    /// `SHOW DATABASES YIELD serverID`.
    pub server_id: String,
}

impl Config {
    fn idle(&self) -> Duration {
        self.idle_timeout
            .unwrap_or_else(|| self.db_transaction_timeout.max(Duration::from_secs(2)))
    }

    fn timeout_setting(&self) -> String {
        let s = self.db_transaction_timeout.as_secs();
        let ms = self.db_transaction_timeout.subsec_millis();
        if ms != 0 {
            format!("{}ms", self.db_transaction_timeout.as_millis())
        } else if s != 0 && s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else if s != 0 && s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{s}s")
        }
    }
}

/// What a request hook is told about the request.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    /// 0 for the first request the server got.
    pub index: usize,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The statements of the body, when it parses as JSON.
    pub statements: Vec<String>,
}

/// A request hook: sees every request before it is handled and may change the graphs.
pub type RequestHook = Box<dyn FnMut(&RequestInfo, &mut BTreeMap<String, Database>) + Send>;

struct OpenTx {
    db: String,
    state: TxState,
    last_used: i64,
}

struct AuthState {
    failed: u32,
    last_failure: i64,
}

/// Where the server's clock comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The system clock.
    Real,
    /// A clock the test sets (milliseconds since the epoch).
    Manual(i64),
}

/// The server state behind the lock.
pub struct State {
    /// Settings.
    pub config: Config,
    /// Clock.
    pub clock: Clock,
    /// Served databases.
    pub databases: BTreeMap<String, Database>,
    txs: HashMap<u64, OpenTx>,
    /// The next transaction id.
    pub next_tx_id: u64,
    auth: HashMap<String, AuthState>,
    servlets: (String, String),
    /// Requests so far.
    pub requests: Vec<RequestInfo>,
    /// The hook.
    pub hook: Option<RequestHook>,
    /// Where committed databases are written (the fake's `NEO4J_HOME`).
    pub home: Option<PathBuf>,
}

fn hash8(seed: u64) -> String {
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    format!("{:x}", x as u32)
}

/// Some randomness without a dependency: the clock, the pid and a counter, mixed.
pub fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x =
        t ^ ((std::process::id() as u64) << 32) ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A random database uuid.
pub fn random_uuid() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A random `db.info()` id (64 upper-case hex digits).
pub fn random_db_id() -> String {
    (0..4).map(|_| format!("{:016X}", random_u64())).collect()
}

impl State {
    /// A server state.
    pub fn new(
        config: Config,
        clock: Clock,
        databases: BTreeMap<String, Database>,
        first_tx_id: u64,
    ) -> Self {
        let seed = random_u64();
        State {
            config,
            clock,
            databases,
            txs: HashMap::new(),
            next_tx_id: first_tx_id,
            auth: HashMap::new(),
            servlets: (hash8(seed), hash8(seed.rotate_left(17))),
            requests: Vec::new(),
            hook: None,
            home: None,
        }
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match self.clock {
            Clock::Real => chrono::Utc::now().timestamp_millis(),
            Clock::Manual(ms) => ms,
        }
    }

    /// Open explicit transactions.
    pub fn open_transactions_len(&self) -> usize {
        self.txs.len()
    }

    /// Drops open transactions and resets what a restart resets.
    pub fn restart(&mut self) {
        let txs: Vec<OpenTx> = self.txs.drain().map(|(_, t)| t).collect();
        for t in txs {
            if let Some(db) = self.databases.get_mut(&t.db) {
                t.state.rollback(&mut db.graph);
            }
        }
        self.next_tx_id = 1;
        self.auth.clear();
        let seed = random_u64();
        self.servlets = (hash8(seed), hash8(seed.rotate_left(17)));
    }

    fn expire_transactions(&mut self) {
        let now = self.now_ms();
        let idle = self.config.idle().as_millis() as i64;
        let expired: Vec<u64> = self
            .txs
            .iter()
            .filter(|(_, t)| now - t.last_used > idle)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let t = self.txs.remove(&id).unwrap();
            if let Some(db) = self.databases.get_mut(&t.db) {
                t.state.rollback(&mut db.graph);
            }
        }
    }

    fn server_info(&self) -> ServerInfo {
        let h = &self.config.home;
        let dirs = [
            ("server.directories.data", format!("{h}/data")),
            ("server.directories.dumps.root", format!("{h}/data/dumps")),
            ("server.directories.import", format!("{h}/import")),
            ("server.directories.lib", format!("{h}/lib")),
            ("server.directories.licenses", format!("{h}/licenses")),
            ("server.directories.logs", format!("{h}/logs")),
            ("server.directories.neo4j_home", h.clone()),
            ("server.directories.plugins", format!("{h}/plugins")),
            ("server.directories.run", format!("{h}/run")),
            (
                "server.directories.script.root",
                format!("{h}/data/scripts"),
            ),
            (
                "server.directories.transaction.logs.root",
                format!("{h}/data/transactions"),
            ),
        ];
        let mut config: Vec<(String, String)> = dirs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        config.push((
            "db.transaction.timeout".into(),
            self.config.timeout_setting(),
        ));
        config.push(("dbms.security.auth_enabled".into(), "true".into()));
        config.push((
            "dbms.security.auth_max_failed_attempts".into(),
            self.config.max_failed_attempts.to_string(),
        ));
        config.push((
            "dbms.security.auth_lock_time".into(),
            format!("{}s", self.config.lock_time.as_secs()),
        ));
        config.push(("server.default_listen_address".into(), "127.0.0.1".into()));
        ServerInfo {
            databases: self
                .databases
                .iter()
                .map(|(name, d)| DbListing {
                    name: name.clone(),
                    id: d.info.id.clone(),
                    status: if d.available {
                        "online".into()
                    } else {
                        "offline".into()
                    },
                    message: if d.available {
                        String::new()
                    } else {
                        "The database is unavailable".into()
                    },
                    created: d.info.creation_date.clone(),
                })
                .collect(),
            user: self.config.user.clone(),
            config,
            server_id: self.config.server_id.clone(),
        }
    }

    fn persist(&self, db: &str) {
        if let (Some(home), Some(d)) = (&self.home, self.databases.get(db)) {
            if let Err(e) = super::home::write_database(home, db, d) {
                eprintln!("fake-neo4j: cannot write the store of {db}: {e}");
            }
        }
    }
}

/// A response before it is sent.
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Headers (besides Content-Length / Transfer-Encoding, which follow the body size).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply {
            status,
            headers: vec![("Access-Control-Allow-Origin".into(), "*".into())],
            body: Vec::new(),
        }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
}

/// A request as the handler sees it.
pub struct Req {
    /// Method.
    pub method: String,
    /// Path (without query string).
    pub path: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// From a tiny_http request.
    pub fn from_tiny(rq: &mut tiny_http::Request) -> Req {
        let mut body = Vec::new();
        let _ = rq.as_reader().read_to_end(&mut body);
        let url = rq.url().to_owned();
        let path = url.split('?').next().unwrap_or("/").to_owned();
        Req {
            method: rq.method().as_str().to_owned(),
            path,
            headers: rq
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_owned(),
                        h.value.as_str().to_owned(),
                    )
                })
                .collect(),
            body,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Json { charset: bool },
    Jolt { v2: bool, strict: bool },
}

enum Negotiated {
    Ok(Format),
    NotAcceptable(String),
}

fn negotiate(accept: Option<&str>) -> Negotiated {
    let Some(accept) = accept else {
        return Negotiated::Ok(Format::Json { charset: false });
    };
    let mut first = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<String> = parts
            .map(|p| p.to_ascii_lowercase().replace(' ', ""))
            .collect();
        if first.is_none() {
            first = Some(range.trim().to_owned());
        }
        match media.as_str() {
            "application/json" => {
                return Negotiated::Ok(Format::Json {
                    charset: params.iter().any(|p| p.starts_with("charset=")),
                })
            }
            "*/*" | "application/*" | "" => return Negotiated::Ok(Format::Json { charset: false }),
            "application/vnd.neo4j.jolt+json-seq"
            | "application/vnd.neo4j.jolt-v1+json-seq"
            | "application/vnd.neo4j.jolt" => {
                return Negotiated::Ok(Format::Jolt {
                    v2: false,
                    strict: params.iter().any(|p| p == "strict=true"),
                })
            }
            "application/vnd.neo4j.jolt-v2+json-seq" | "application/vnd.neo4j.jolt-v2" => {
                return Negotiated::Ok(Format::Jolt {
                    v2: true,
                    strict: params.iter().any(|p| p == "strict=true"),
                })
            }
            _ => {}
        }
    }
    Negotiated::NotAcceptable(first.unwrap_or_default())
}

fn accepts_json(req: &Req) -> bool {
    req.header("Accept")
        .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"))
}

fn error_json(code: &str, message: &str) -> Json {
    Json::obj([("code", Json::str(code)), ("message", Json::str(message))])
}

/// The route a path matches.
enum Route {
    Root,
    Commit(String),
    Begin(String),
    Tx(String, u64),
    TxCommit(String, u64),
    NotFound,
}

fn route(path: &str) -> Route {
    if path == "/" {
        return Route::Root;
    }
    let parts: Vec<&str> = path.split('/').collect();
    // ["", "db", name, "tx", …]
    match parts.as_slice() {
        ["", "db", name, "tx"] if !name.is_empty() => Route::Begin(name.to_string()),
        ["", "db", name, "tx", "commit"] if !name.is_empty() => Route::Commit(name.to_string()),
        ["", "db", name, "tx", id] if !name.is_empty() => match id.parse() {
            Ok(n) => Route::Tx(name.to_string(), n),
            Err(_) => Route::NotFound,
        },
        ["", "db", name, "tx", id, "commit"] if !name.is_empty() => match id.parse() {
            Ok(n) => Route::TxCommit(name.to_string(), n),
            Err(_) => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

impl State {
    fn jersey(&self, req: &Req, status: u16, message: &str) -> Reply {
        let servlet = if req.path.starts_with("/db/") {
            &self.servlets.0
        } else {
            &self.servlets.1
        };
        let r = Reply::new(status).header("Cache-Control", "must-revalidate,no-cache,no-store");
        if accepts_json(req) {
            r.header("Content-Type", "application/json").body(format!(
                "{{\n\"servlet\":\"org.glassfish.jersey.servlet.ServletContainer-{servlet}\",\n\"message\":\"{message}\",\n\"url\":\"{}\",\n\"status\":\"{status}\"\n}}",
                req.path
            ))
        } else {
            r.header("Content-Type", "text/html;charset=iso-8859-1")
        }
    }

    fn base_url(&self, req: &Req) -> String {
        let host = req
            .header("X-Forwarded-Host")
            .or_else(|| req.header("Host"))
            .unwrap_or("localhost:7474")
            .to_owned();
        let proto = req.header("X-Forwarded-Proto").unwrap_or("http");
        format!("{proto}://{host}")
    }

    fn auth(&mut self, req: &Req) -> Result<String, Reply> {
        let pretty = |status: u16, code: &str, message: &str| {
            let r = Reply::new(status)
                .header("Content-Type", "application/json;charset=utf-8")
                .body(Json::obj([("errors", Json::Arr(vec![error_json(code, message)]))]).pretty());
            if status == 401 {
                r.header("WWW-Authenticate", "Basic realm=\"Neo4j\"")
            } else {
                r
            }
        };
        let Some(h) = req.header("Authorization") else {
            return Err(pretty(
                401,
                "Neo.ClientError.Security.Unauthorized",
                "No authentication header supplied.",
            ));
        };
        let invalid = || {
            pretty(
                400,
                "Neo.ClientError.Request.InvalidFormat",
                "Invalid authentication header.",
            )
        };
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if !scheme.eq_ignore_ascii_case("Basic") {
            return Err(invalid());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (user, password) = decoded.split_once(':').ok_or_else(invalid)?;
        let now = self.now_ms();
        let lock = self.config.lock_time.as_millis() as i64;
        let max = self.config.max_failed_attempts;
        let entry = self.auth.entry(user.to_owned()).or_insert(AuthState {
            failed: 0,
            last_failure: 0,
        });
        if max > 0 && entry.failed >= max && now - entry.last_failure < lock {
            return Err(pretty(
                429,
                "Neo.ClientError.Security.AuthenticationRateLimit",
                &format!(
                    "Too many failed authentication requests. Please wait {} seconds and try again.",
                    self.config.lock_time.as_secs()
                ),
            ));
        }
        if user != self.config.user || password != self.config.password {
            entry.failed += 1;
            entry.last_failure = now;
            return Err(pretty(
                401,
                "Neo.ClientError.Security.Unauthorized",
                "Invalid username or password.",
            ));
        }
        entry.failed = 0;
        Ok(user.to_owned())
    }

    /// Handles one request.
    pub fn handle(&mut self, req: &Req) -> Reply {
        self.expire_transactions();
        let info = RequestInfo {
            index: self.requests.len(),
            method: req.method.clone(),
            path: req.path.clone(),
            statements: statements_of(&req.body),
        };
        if let Some(mut hook) = self.hook.take() {
            hook(&info, &mut self.databases);
            self.hook = Some(hook);
        }
        self.requests.push(info);
        let route = route(&req.path);
        if let Route::Root = route {
            return self.root(req);
        }
        if let Route::NotFound = route {
            return self.jersey(req, 404, "Not Found");
        }
        let allow = match route {
            Route::Tx(..) => "DELETE,POST,OPTIONS",
            _ => "POST,OPTIONS",
        };
        if req.method == "OPTIONS" {
            let mut r = Reply::new(200);
            if let Some(m) = req.header("Access-Control-Request-Method") {
                r = r.header("Access-Control-Allow-Methods", m);
            }
            if let Some(h) = req.header("Access-Control-Request-Headers") {
                r = r.header("Access-Control-Allow-Headers", h);
            }
            return r
                .header("Allow", allow)
                .header("Content-Type", "application/json");
        }
        let user = match self.auth(req) {
            Ok(u) => u,
            Err(r) => return r,
        };
        let method_ok =
            req.method == "POST" || (req.method == "DELETE" && matches!(route, Route::Tx(..)));
        if !method_ok {
            if !req.body.is_empty() {
                return Reply::new(405).header("Allow", allow);
            }
            return self
                .jersey(req, 405, "Method Not Allowed")
                .header("Allow", allow);
        }
        if req.method == "POST" {
            let ct = req.header("Content-Type").unwrap_or("");
            if !ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
            {
                return self.jersey(req, 415, "Unsupported Media Type");
            }
        }
        let format = match negotiate(req.header("Accept")) {
            Negotiated::Ok(f) => f,
            Negotiated::NotAcceptable(t) => {
                // The transaction is begun (its id used) before the answer is written.
                if matches!(route, Route::Commit(_) | Route::Begin(_)) {
                    self.next_tx_id += 1;
                }
                return Reply::new(406).header("Content-Type", t).body(
                    "Unsupported media type - Supported types are application/json and application/vnd.neo4j.jolt",
                );
            }
        };
        let path_db = match &route {
            Route::Commit(d) | Route::Begin(d) | Route::Tx(d, _) | Route::TxCommit(d, _) => {
                d.clone()
            }
            _ => unreachable!(),
        };
        if !self.databases.contains_key(&path_db) {
            return self.tx_error_reply(
                404,
                format,
                codes_db_not_found(),
                &format!(
                    "The database requested does not exists. Requested database name: '{path_db}'."
                ),
            );
        }
        let read_only = req
            .header("access-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("READ"));
        let base = self.base_url(req);
        match route {
            Route::Commit(db) => {
                let id = self.take_tx_id();
                let _ = id;
                let mut tx = TxState::begin(&self.databases[&db].graph);
                let run = self.run_statements(&db, &mut tx, &req.body, read_only, &user, format);
                self.finish(db.clone(), tx, run.failed, true);
                self.reply(200, format, run, None, None)
            }
            Route::Begin(db) => {
                let id = self.take_tx_id();
                let mut tx = TxState::begin(&self.databases[&db].graph);
                let run = self.run_statements(&db, &mut tx, &req.body, read_only, &user, format);
                let location = format!("{base}/db/{db}/tx/{id}");
                let commit = format!("{location}/commit");
                let expires = if run.failed {
                    self.finish(db.clone(), tx, true, false);
                    None
                } else {
                    let now = self.now_ms();
                    self.txs.insert(
                        id,
                        OpenTx {
                            db: db.clone(),
                            state: tx,
                            last_used: now,
                        },
                    );
                    Some(self.expires(now))
                };
                self.reply(201, format, run, Some(commit), expires)
                    .header("Location", location)
            }
            Route::Tx(path_db, id) | Route::TxCommit(path_db, id) => {
                let commit_it = req.path.ends_with("/commit");
                let Some(mut open) = self.txs.remove(&id) else {
                    return self.tx_error_reply(
                        404,
                        format,
                        "Neo.ClientError.Transaction.TransactionNotFound",
                        "Unrecognized transaction id. Transaction may have timed out and been rolled back.",
                    );
                };
                let commit = format!("{base}/db/{path_db}/tx/{id}/commit");
                if req.method == "DELETE" {
                    self.finish(open.db.clone(), open.state, true, false);
                    return self.reply(200, format, Run::default(), None, None);
                }
                let db = open.db.clone();
                let run =
                    self.run_statements(&db, &mut open.state, &req.body, read_only, &user, format);
                if run.failed {
                    self.finish(db, open.state, true, false);
                    return self.reply(200, format, run, Some(commit), None);
                }
                if commit_it {
                    self.finish(db, open.state, false, true);
                    return self.reply(200, format, run, Some(commit), None);
                }
                let now = self.now_ms();
                open.last_used = now;
                self.txs.insert(id, open);
                let expires = self.expires(now);
                self.reply(200, format, run, Some(commit), Some(expires))
            }
            Route::Root | Route::NotFound => unreachable!(),
        }
    }

    fn take_tx_id(&mut self) -> u64 {
        self.next_tx_id += 1;
        self.next_tx_id - 1
    }

    fn expires(&self, last_used: i64) -> String {
        let at = last_used + self.config.idle().as_millis() as i64;
        chrono::DateTime::from_timestamp_millis(at)
            .unwrap_or_default()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    }

    fn root(&self, req: &Req) -> Reply {
        if req.method != "GET" && req.method != "HEAD" {
            return self
                .jersey(req, 405, "Method Not Allowed")
                .header("Allow", "GET,HEAD,OPTIONS");
        }
        let accept = req.header("Accept").unwrap_or("").to_ascii_lowercase();
        let host = req.header("Host").unwrap_or("localhost:7474");
        let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        if accept.contains("text/html") {
            return Reply::new(303)
                .header("Location", format!("http://{host}/browser/"))
                .header("Content-Type", "text/html")
                .header("Vary", "Accept");
        }
        let doc = Json::obj([
            ("bolt_routing", Json::Str(format!("neo4j://{bare}:7687"))),
            (
                "transaction",
                Json::Str(format!("http://{host}/db/{{databaseName}}/tx")),
            ),
            ("bolt_direct", Json::Str(format!("bolt://{bare}:7687"))),
            ("neo4j_version", Json::str("5.3.0")),
            ("neo4j_edition", Json::str("community")),
        ]);
        Reply::new(200)
            .header("Content-Type", "application/json")
            .header("Vary", "Accept")
            .body(doc.pretty())
    }

    fn tx_error_reply(&self, status: u16, format: Format, code: &str, message: &str) -> Reply {
        let run = Run {
            errors: vec![CypherError::compile(code, message)],
            failed: true,
            ..Run::default()
        };
        self.reply(status, format, run, None, None)
    }

    fn finish(&mut self, db: String, tx: TxState, rollback: bool, commit: bool) {
        let Some(d) = self.databases.get_mut(&db) else {
            return;
        };
        if rollback || !commit {
            tx.rollback(&mut d.graph);
            return;
        }
        let changed = tx.has_changes();
        tx.commit(&mut d.graph);
        if changed {
            d.last_tx_id += 1;
            self.persist(&db);
        }
    }

    fn run_statements(
        &mut self,
        db: &str,
        tx: &mut TxState,
        body: &[u8],
        read_only: bool,
        user: &str,
        format: Format,
    ) -> Run {
        let mut run = Run::default();
        let mut reader = StatementReader::new(body);
        let mut server = self.server_info();
        server.user = user.to_owned();
        let now = chrono::DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default();
        loop {
            let st: StatementRequest = match reader.next_statement() {
                Next::End => break,
                Next::Invalid(m) => {
                    run.errors.push(CypherError::compile(
                        "Neo.ClientError.Request.InvalidFormat",
                        m,
                    ));
                    run.failed = true;
                    break;
                }
                Next::Statement(s) => s,
            };
            let params: HashMap<String, Value> = match &st.parameters {
                Ok(p) => p.iter().cloned().collect(),
                Err(m) => {
                    run.errors.push(CypherError::compile(
                        "Neo.ClientError.Request.InvalidFormat",
                        m.clone(),
                    ));
                    run.failed = true;
                    break;
                }
            };
            if let Some(n) = params.values().find_map(too_large_number) {
                run.errors.push(CypherError::compile(
                    "Neo.DatabaseError.Statement.ExecutionFailed",
                    format!("Unsupported type of Number {n}"),
                ));
                run.failed = true;
                break;
            }
            if let Some(bad) = st
                .contents
                .iter()
                .find(|c| !matches!(c.as_str(), "row" | "graph" | "rest"))
            {
                run.errors.push(CypherError::compile(
                    "Neo.DatabaseError.Statement.ExecutionFailed",
                    format!("Invalid result data content specifier: {bad}"),
                ));
                run.failed = true;
                break;
            }
            let database = self.databases.get_mut(db).unwrap();
            if !database.available {
                run.errors.push(CypherError::compile(
                    "Neo.TransientError.General.DatabaseUnavailable",
                    format!("Database '{db}' is unavailable."),
                ));
                run.failed = true;
                break;
            }
            let opts = RunOptions {
                read_only,
                now,
                server: &server,
            };
            let out: StatementOutput = exec::run(
                &st.statement,
                &params,
                tx,
                &mut database.graph,
                &database.info,
                &opts,
            );
            let view = View {
                graph: &tx.graph,
                uuid: &database.info.uuid,
            };
            run.notifications.extend(out.notifications.iter().cloned());
            let failed = out.error.clone();
            let compile_failure = failed.as_ref().is_some_and(|e| e.phase == Phase::Compile);
            if !compile_failure {
                run.results
                    .push(render_result(&view, &st, &out, format, failed.is_none()));
            }
            if let Some(e) = failed {
                run.errors.push(e);
                run.failed = true;
                break;
            }
        }
        if run.failed && tx.kind == TxKind::Empty {
            tx.kind = TxKind::Read;
        }
        run
    }

    fn reply(
        &self,
        status: u16,
        format: Format,
        run: Run,
        commit: Option<String>,
        expires: Option<String>,
    ) -> Reply {
        match format {
            Format::Json { charset } => {
                let mut doc = vec![(
                    "results".to_owned(),
                    Json::Arr(run.results.into_iter().map(|r| r.json).collect()),
                )];
                if !run.notifications.is_empty() {
                    doc.push(("notifications".into(), Json::Arr(run.notifications)));
                }
                doc.push((
                    "errors".into(),
                    Json::Arr(
                        run.errors
                            .iter()
                            .map(|e| error_json(&e.code, &e.message))
                            .collect(),
                    ),
                ));
                if let Some(c) = commit {
                    doc.push(("commit".into(), Json::Str(c)));
                }
                if let Some(e) = expires {
                    doc.push(("transaction".into(), Json::obj([("expires", Json::Str(e))])));
                }
                Reply::new(status)
                    .header(
                        "Content-Type",
                        if charset {
                            "application/json;charset=utf-8"
                        } else {
                            "application/json"
                        },
                    )
                    .body(Json::Obj(doc).compact())
            }
            Format::Jolt { v2, strict } => {
                let mut body = String::new();
                let mut rec = |j: Json| {
                    body.push('\u{1e}');
                    j.write(&mut body);
                    body.push('\n');
                };
                for r in run.results {
                    for j in r.jolt {
                        rec(j);
                    }
                }
                if !run.errors.is_empty() {
                    rec(Json::obj([(
                        "error",
                        Json::obj([(
                            "errors",
                            Json::Arr(
                                run.errors
                                    .iter()
                                    .map(|e| error_json(&e.code, &e.message))
                                    .collect(),
                            ),
                        )]),
                    )]));
                }
                let mut notes = run.notifications;
                if !v2 {
                    notes.insert(0, Json::obj([
                        ("code", Json::str("Neo.ClientNotification.Request.DeprecatedFormat")),
                        ("severity", Json::str("WARNING")),
                        ("title", Json::str("The client made a request for a format which has been deprecated.")),
                        ("description", Json::str("The requested format has been deprecated. ('application/vnd.neo4j.jolt+json-seq' and 'application/vnd.neo4j.jolt-v1+json-seq' have been deprecated and will be removed in a future version. Please use 'application/vnd.neo4j.jolt-v2+json-seq'.)")),
                    ]));
                }
                let mut info = Vec::new();
                if !notes.is_empty() {
                    info.push(("notifications".to_owned(), Json::Arr(notes)));
                }
                if let Some(c) = commit {
                    info.push(("commit".into(), Json::Str(c)));
                }
                if let Some(e) = expires {
                    info.push(("transaction".into(), Json::obj([("expires", Json::Str(e))])));
                }
                rec(Json::obj([("info", Json::Obj(info))]));
                let media = if v2 {
                    "application/vnd.neo4j.jolt-v2+json-seq"
                } else {
                    "application/vnd.neo4j.jolt+json-seq"
                };
                let media = if strict {
                    format!("{media};strict=true")
                } else {
                    media.to_owned()
                };
                Reply::new(status).header("Content-Type", media).body(body)
            }
        }
    }
}

fn codes_db_not_found() -> &'static str {
    "Neo.ClientError.Database.DatabaseNotFound"
}

/// The statements of a request body (for request hooks and logs).
fn statements_of(body: &[u8]) -> Vec<String> {
    let mut r = StatementReader::new(body);
    let mut out = Vec::new();
    while let Next::Statement(s) = r.next_statement() {
        out.push(s.statement);
    }
    out
}

struct Rendered {
    json: Json,
    jolt: Vec<Json>,
}

#[derive(Default)]
struct Run {
    results: Vec<Rendered>,
    notifications: Vec<Json>,
    errors: Vec<CypherError>,
    failed: bool,
}

fn render_result(
    view: &View,
    st: &StatementRequest,
    out: &StatementOutput,
    format: Format,
    ok: bool,
) -> Rendered {
    let columns = Json::Arr(out.columns.iter().map(|c| Json::Str(c.clone())).collect());
    let mut data = Vec::with_capacity(out.rows.len());
    let mut jolt = vec![Json::obj([(
        "header",
        Json::obj([("fields", columns.clone())]),
    )])];
    for row in &out.rows {
        match format {
            Format::Json { .. } => {
                let mut entry = Vec::new();
                if st.contents.iter().any(|c| c == "row") {
                    entry.push((
                        "row".to_owned(),
                        Json::Arr(row.iter().map(|v| view.row(v)).collect()),
                    ));
                    let mut meta = Vec::new();
                    for v in row {
                        view.meta(v, &mut meta);
                    }
                    entry.push(("meta".into(), Json::Arr(meta)));
                }
                if st.contents.iter().any(|c| c == "rest") {
                    entry.push((
                        "rest".into(),
                        Json::Arr(row.iter().map(|v| view.rest(v)).collect()),
                    ));
                }
                if st.contents.iter().any(|c| c == "graph") {
                    entry.push(("graph".into(), view.graph_json(row)));
                }
                data.push(Json::Obj(entry));
            }
            Format::Jolt { v2, strict } => {
                jolt.push(Json::obj([(
                    "data",
                    Json::Arr(row.iter().map(|v| view.jolt(v, strict, v2)).collect()),
                )]));
            }
        }
    }
    let mut summary = Vec::new();
    if st.include_stats && ok {
        summary.push(("stats".to_owned(), out.stats.to_json()));
    }
    jolt.push(Json::obj([("summary", Json::Obj(summary.clone()))]));
    let mut doc = vec![
        ("columns".to_owned(), columns),
        ("data".to_owned(), Json::Arr(data)),
    ];
    doc.extend(summary);
    if let Some(p) = &out.plan {
        doc.push(("plan".into(), p.clone()));
    }
    Rendered {
        json: Json::Obj(doc),
        jolt,
    }
}

/// Serves a tiny_http request.
pub fn serve(state: &std::sync::Mutex<State>, mut rq: tiny_http::Request) {
    let req = Req::from_tiny(&mut rq);
    let reply = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.handle(&req)
    };
    let headers: Vec<tiny_http::Header> = reply
        .headers
        .iter()
        .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
        .collect();
    let len = reply.body.len();
    let response = tiny_http::Response::new(
        tiny_http::StatusCode(reply.status),
        headers,
        std::io::Cursor::new(reply.body),
        Some(len),
        None,
    )
    // Neo4j (Jetty) sends Content-Length up to 8 KiB and chunks above (SURPRISE 17).
    .with_chunked_threshold(8193);
    let _ = rq.respond(response);
}
