//! A protocol-faithful fake of the Qdrant 1.17.1 REST API, in process, for the tests of the
//! tools that back Qdrant up and restore it.
//!
//! [`FakeQdrant`] listens on `127.0.0.1:0` and keeps real state: collections with their
//! config, points and payload indexes; snapshot files on disk in a temp directory it owns
//! (removed on drop), laid out as Qdrant lays them out (`snapshots/<collection>/<name>` with
//! `<name>.checksum` sidecars, `storage/tmp/col-<name>-recovery-…` while restoring). Every
//! answer is computed from that state by the rules the real server follows — including its
//! surprises (`tests/fixtures/reference/qdrant-1.17.1/README.md`): plain-text errors on
//! downloads and multipart, `wait=false` hiding failures, one-second snapshot names,
//! uploads kept on disk, restore replacing wholesale. `tests/qdrant_replay.rs` replays the
//! 250 recorded exchanges with a real server against it.
//!
//! Snapshot files are real tars (`config.json`, `payload_index.json`, a segment tar holding
//! the points…) that this fake restores exactly; they are not Qdrant's segment format, so a
//! real server cannot restore them, nor the fake a real server's (that fails with a 500
//! naming the missing `points.jsonl`).
//!
//! # Where the recording is silent
//!
//! These follow Qdrant's source or are the fake's choice, and are not proven by a recording:
//! - Checks run in the order of Qdrant's extractors: collection name in the path (422), body
//!   (400/422), query parameters (400/422), then the handler: access (403), state.
//! - The read-only key gets its 403 before `wait=false` is honoured (so also with
//!   `wait=false`); it may download full-storage snapshots as it may list them.
//! - With `wait=false`, everything after that is hidden behind the 202, the upload checksum
//!   check included; the work runs on a background thread ([`FakeQdrant::settle`] waits,
//!   [`FakeQdrant::background_errors`] tells what the real server would only log). Point
//!   upserts with `wait=false` are applied before the answer.
//! - `GET /collections` lists names sorted; the real order is a hash map's.
//! - Responses are never compressed (a real server gzips when `Accept-Encoding` asks), and
//!   CORS preflights are not answered.
//! - Only the routes above exist; search, query, aliases, shard snapshots… are 404 here.
//!   `order_by` in scroll is refused (400).
//! - `indexed_vectors_count` counts sparse vectors (indexed on write); dense ones are never
//!   past the indexing threshold in tests.
//! - The texts of rare multipart errors (no Content-Disposition, no name) are approximations.
//!
//! ```no_run
//! use testkit::fake_qdrant::FakeQdrant;
//! let qdrant = FakeQdrant::builder().api_key("k").read_only_key("ro").start();
//! qdrant.create_collection("docs", 4, "Cosine");
//! qdrant.upsert("docs", serde_json::json!([{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])).unwrap();
//! let url = qdrant.url(); // http://127.0.0.1:PORT, for the tool under test
//! # let _ = url;
//! ```

mod auth;
mod collections;
mod errors;
mod http;
mod multipart;
mod points;
mod restore;
mod router;
mod service;
mod snapshots;
mod util;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use collections::Collection;

/// Everything the connection threads share.
pub(crate) struct Shared {
    /// The storage root: what `/var/lib/qdrant` was for the recorded server.
    pub(crate) base: PathBuf,
    /// `base/storage`.
    pub(crate) storage: PathBuf,
    /// `base/snapshots`, canonical.
    pub(crate) snapshots: PathBuf,
    pub(crate) peer_id: u64,
    /// Simulated other peers of a cluster (empty: single node, as tests normally run).
    pub(crate) other_peers: Vec<u64>,
    pub(crate) api_key: Option<String>,
    pub(crate) read_only_key: Option<String>,
    pub(crate) addr: SocketAddr,
    pub(crate) started: SystemTime,
    pub(crate) telemetry_id: String,
    pub(crate) state: Mutex<State>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) clock: Clock,
    /// Answers per route pattern and status.
    pub(crate) stats: Mutex<BTreeMap<String, BTreeMap<u16, usize>>>,
    pub(crate) tasks: Tasks,
    stopping: AtomicBool,
    connections: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `base/storage/tmp`, where restores unpack.
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.storage.join("tmp")
    }
}

/// The collections.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) collections: BTreeMap<String, Collection>,
}

/// Fault knobs, set by the test.
#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) cut_next_download: Option<u64>,
    pub(crate) wrong_checksum_next: bool,
    pub(crate) snapshot_delay: Duration,
    pub(crate) failing: BTreeSet<String>,
}

/// The fake's clock: real time, or frozen, plus an offset the test can advance. Snapshot
/// names and file times come from it.
#[derive(Default)]
pub(crate) struct Clock {
    inner: Mutex<(Option<SystemTime>, Duration)>,
}

impl Clock {
    pub(crate) fn now(&self) -> SystemTime {
        let (frozen, offset) = *self.inner.lock().unwrap_or_else(|p| p.into_inner());
        frozen.unwrap_or_else(SystemTime::now) + offset
    }
}

/// Background work started by `wait=false` requests.
#[derive(Default)]
pub(crate) struct Tasks {
    running: Mutex<usize>,
    idle: Condvar,
    errors: Mutex<Vec<String>>,
}

impl Tasks {
    /// Runs `work` on its own thread; an error is only kept for
    /// [`FakeQdrant::background_errors`] (the real server only logs it).
    pub(crate) fn spawn(
        shared: &Arc<Shared>,
        what: String,
        work: impl FnOnce(&Arc<Shared>) -> Result<(), errors::QError> + Send + 'static,
    ) {
        *shared.tasks.running.lock().unwrap() += 1;
        let shared = shared.clone();
        std::thread::spawn(move || {
            let result = work(&shared);
            if let Err(e) = result {
                shared
                    .tasks
                    .errors
                    .lock()
                    .unwrap()
                    .push(format!("{what}: {e}"));
            }
            let mut running = shared.tasks.running.lock().unwrap();
            *running -= 1;
            shared.tasks.idle.notify_all();
        });
    }

    fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut running = self.running.lock().unwrap();
        while *running > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            running = self.idle.wait_timeout(running, deadline - now).unwrap().0;
        }
        true
    }
}

/// Configures a [`FakeQdrant`] before it starts.
#[derive(Clone, Debug, Default)]
pub struct FakeQdrantBuilder {
    api_key: Option<String>,
    read_only_key: Option<String>,
    peers: usize,
    peer_id: Option<u64>,
}

impl FakeQdrantBuilder {
    /// Requires this key (`api-key` header or `Authorization: Bearer`) for every route but
    /// `/`, `/healthz`, `/livez`, `/readyz`.
    pub fn api_key(mut self, key: &str) -> Self {
        self.api_key = Some(key.to_owned());
        self
    }

    /// Also accepts this key, for reading only: snapshot and collection mutations answer 403
    /// `Forbidden: Global manage access is required`.
    pub fn read_only_key(mut self, key: &str) -> Self {
        self.read_only_key = Some(key.to_owned());
        self
    }

    /// Pretends to be one peer of a cluster of `n` (`GET /cluster` says `enabled` and lists
    /// them), so a tool can detect a cluster and refuse it; 0 or 1 is a single node.
    pub fn peers(mut self, n: usize) -> Self {
        self.peers = n;
        self
    }

    /// This server's peer id (random by default, as a real storage's is).
    pub fn peer_id(mut self, id: u64) -> Self {
        self.peer_id = Some(id);
        self
    }

    /// Starts the server on `127.0.0.1:0`.
    pub fn start(self) -> FakeQdrant {
        FakeQdrant::start_with(self)
    }
}

/// The fake server. Dropping it stops it and removes its storage.
pub struct FakeQdrant {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

fn random_peer_id() -> u64 {
    // Real peer ids are random 53-bit-ish numbers (8456338021989372 in the recording).
    1_000_000_000_000_000 + util::random_u64() % 8_000_000_000_000_000
}

impl FakeQdrant {
    /// A fake without keys, single node.
    pub fn start() -> FakeQdrant {
        Self::builder().start()
    }

    /// A builder for keys, peers and peer id.
    pub fn builder() -> FakeQdrantBuilder {
        FakeQdrantBuilder::default()
    }

    fn start_with(options: FakeQdrantBuilder) -> FakeQdrant {
        let dir = tempfile::Builder::new()
            .prefix("fake-qdrant-")
            .tempdir()
            .expect("temp dir for the fake Qdrant");
        let base = dir.path().canonicalize().expect("canonical temp dir");
        let storage = base.join("storage");
        let snapshots = base.join("snapshots");
        std::fs::create_dir_all(storage.join("tmp")).expect("storage dir");
        std::fs::create_dir_all(&snapshots).expect("snapshots dir");
        // What a real storage holds next to the collections; here only so that paths such as
        // `../../storage/raft_state.json` point at a real file, as they do on a real server.
        let _ = std::fs::write(storage.join("raft_state.json"), b"{}");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let peer_id = options.peer_id.unwrap_or_else(random_peer_id);
        let other_peers = (1..options.peers.max(1))
            .map(|_| random_peer_id())
            .collect();
        let shared = Arc::new(Shared {
            base,
            storage,
            snapshots,
            peer_id,
            other_peers,
            api_key: options.api_key.filter(|k| !k.is_empty()),
            read_only_key: options.read_only_key.filter(|k| !k.is_empty()),
            addr,
            started: SystemTime::now(),
            telemetry_id: util::uuid_v4(),
            state: Mutex::new(State::default()),
            faults: Mutex::new(Faults::default()),
            clock: Clock::default(),
            stats: Mutex::new(BTreeMap::new()),
            tasks: Tasks::default(),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::Builder::new()
            .name("fake-qdrant-accept".into())
            .spawn(move || accept_loop(accept_shared, listener))
            .expect("accept thread");
        FakeQdrant {
            shared,
            accept: Some(accept),
            dir: Some(dir),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// This server's peer id, as it appears in snapshot names.
    pub fn peer_id(&self) -> u64 {
        self.shared.peer_id
    }

    /// The storage root (holds `storage/` and `snapshots/`): what `/var/lib/qdrant` was for
    /// the recorded server, and what error messages leak.
    pub fn base_dir(&self) -> &Path {
        &self.shared.base
    }

    /// The snapshots directory (`file://` recover locations must be inside it).
    pub fn snapshots_dir(&self) -> &Path {
        &self.shared.snapshots
    }

    // --- test-side data helpers -------------------------------------------------------

    /// Creates a collection with one unnamed dense vector (`distance`: `Cosine`, `Euclid`,
    /// `Dot`, `Manhattan`); panics if that fails.
    pub fn create_collection(&self, name: &str, size: u64, distance: &str) {
        self.create_collection_with(
            name,
            serde_json::json!({"vectors": {"size": size, "distance": distance}}),
        )
        .unwrap_or_else(|e| panic!("create collection {name}: {e}"));
    }

    /// Creates a collection from the body `PUT /collections/{name}` takes (named vectors,
    /// sparse vectors, `shard_number`, `hnsw_config`…).
    pub fn create_collection_with(&self, name: &str, body: Value) -> Result<(), String> {
        collections::create_from_value(&self.shared, name, &body).map_err(|e| e.message)
    }

    /// Upserts points as `PUT /collections/{name}/points?wait=true` does; `points` is a JSON
    /// array of points or a whole body (`{"points": […]}` or `{"batch": …}`).
    pub fn upsert(&self, name: &str, points: Value) -> Result<(), String> {
        let body = if points.is_array() {
            serde_json::json!({ "points": points })
        } else {
            points
        };
        points::upsert_value(&self.shared, name, &body).map_err(|e| e.message)
    }

    /// Creates a payload index (`schema`: `"keyword"`, `"integer"`, or an object).
    pub fn create_payload_index(
        &self,
        name: &str,
        field: &str,
        schema: Value,
    ) -> Result<(), String> {
        collections::create_index_value(&self.shared, name, field, schema).map_err(|e| e.message)
    }

    /// Deletes a collection (its snapshot files stay, as on a real server); whether it
    /// existed.
    pub fn delete_collection(&self, name: &str) -> bool {
        self.shared.state().collections.remove(name).is_some()
    }

    /// Names of the collections, sorted.
    pub fn collections(&self) -> Vec<String> {
        self.shared.state().collections.keys().cloned().collect()
    }

    /// The exact number of points, `None` if there is no such collection.
    pub fn count(&self, name: &str) -> Option<usize> {
        self.shared
            .state()
            .collections
            .get(name)
            .map(|c| c.points.len())
    }

    /// Every point with vectors and payload, in scroll order, as the API writes them.
    pub fn points(&self, name: &str) -> Option<Vec<Value>> {
        let state = self.shared.state();
        let collection = state.collections.get(name)?;
        Some(
            collection
                .points
                .values()
                .map(|p| p.to_json(&points::WithPayload::All, &points::WithVector::All))
                .collect(),
        )
    }

    /// What `GET /collections/{name}` answers as `result`.
    pub fn collection_info(&self, name: &str) -> Option<Value> {
        self.shared.state().collections.get(name).map(|c| c.info())
    }

    /// Names of the files in `snapshots/<collection>/`, sorted: snapshots, `.checksum`
    /// sidecars, kept uploads — whatever is left on disk, whether the collection exists or
    /// not.
    pub fn snapshot_files(&self, collection: &str) -> Vec<String> {
        list_files(&self.shared.snapshots.join(collection))
    }

    /// Names of the files directly in the snapshots directory (full-storage snapshots and
    /// their sidecars), sorted.
    pub fn full_snapshot_files(&self) -> Vec<String> {
        list_files(&self.shared.snapshots)
    }

    // --- faults ----------------------------------------------------------------------

    /// The next snapshot download (collection or full) sends its headers and `bytes` bytes
    /// of the body, then the connection is closed. Once.
    pub fn cut_next_download_after(&self, bytes: u64) {
        self.shared.faults().cut_next_download = Some(bytes);
    }

    /// The next snapshot created over the API (collection or full) reports — and records in
    /// its `.checksum` sidecar — a checksum that is not the file's. Once.
    pub fn wrong_checksum_on_next_snapshot(&self) {
        self.shared.faults().wrong_checksum_next = true;
    }

    /// Every snapshot creation takes at least this long (until [`clear_faults`]).
    ///
    /// [`clear_faults`]: FakeQdrant::clear_faults
    pub fn delay_snapshot_creation(&self, delay: Duration) {
        self.shared.faults().snapshot_delay = delay;
    }

    /// Snapshots of `collection` fail as a real server's do when its disk is full: 500
    /// `Service internal error: …` with `wait=true`, 202 and nothing with `wait=false`
    /// (until [`clear_faults`]). A full-storage snapshot then fails too.
    ///
    /// [`clear_faults`]: FakeQdrant::clear_faults
    pub fn fail_snapshots_of(&self, collection: &str) {
        self.shared.faults().failing.insert(collection.to_owned());
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        *self.shared.faults() = Faults::default();
    }

    // --- clock -----------------------------------------------------------------------

    /// Stops the fake's clock at `at` (snapshot names, creation times and file mtimes come
    /// from it): two snapshots then get the same one-second name, as two in the same second
    /// do on a real server.
    pub fn freeze_clock(&self, at: SystemTime) {
        *self.shared.clock.inner.lock().unwrap() = (Some(at), Duration::ZERO);
    }

    /// Moves the fake's clock forward (frozen or not).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.inner.lock().unwrap().1 += by;
    }

    /// Back to real time.
    pub fn unfreeze_clock(&self) {
        *self.shared.clock.inner.lock().unwrap() = (None, Duration::ZERO);
    }

    /// The fake's current time.
    pub fn now(&self) -> SystemTime {
        self.shared.clock.now()
    }

    // --- observation -----------------------------------------------------------------

    /// How many requests matched `route`, a method and Qdrant's path pattern:
    /// `"POST /collections/{collection_name}/snapshots"`,
    /// `"GET /collections/{collection_name}/snapshots/{snapshot_name}"`. Requests that match
    /// no route count as `"<METHOD> <unknown>"`.
    pub fn requests(&self, route: &str) -> usize {
        self.shared
            .stats
            .lock()
            .unwrap()
            .get(route)
            .map_or(0, |by_status| by_status.values().sum())
    }

    /// Requests per route, as [`requests`](FakeQdrant::requests) counts them.
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        self.shared
            .stats
            .lock()
            .unwrap()
            .iter()
            .map(|(route, by_status)| (route.clone(), by_status.values().sum()))
            .collect()
    }

    /// Waits (up to a minute) until the work started by `wait=false` requests is done.
    pub fn settle(&self) {
        assert!(
            self.shared.tasks.wait_idle(Duration::from_secs(60)),
            "the fake Qdrant's background work did not finish within a minute"
        );
    }

    /// Failures of `wait=false` work, which the real server only logs.
    pub fn background_errors(&self) -> Vec<String> {
        self.shared.tasks.errors.lock().unwrap().clone()
    }
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(0);

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.is_stopping() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = CONNECTION_IDS.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared.connections.lock().unwrap().insert(id, clone);
        }
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("fake-qdrant-conn".into())
            .spawn(move || {
                http::serve_connection(conn_shared.clone(), stream);
                conn_shared.connections.lock().unwrap().remove(&id);
            });
        if spawned.is_err() {
            shared.connections.lock().unwrap().remove(&id);
        }
    }
}

impl Drop for FakeQdrant {
    fn drop(&mut self) {
        // Let background restores finish before their directory goes away.
        let _ = self.shared.tasks.wait_idle(Duration::from_secs(10));
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.shared.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for (_, stream) in self.shared.connections.lock().unwrap().drain() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}
