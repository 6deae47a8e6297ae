//! `snap-qdrant`: Qdrant collection snapshots through the REST snapshot API into the spool,
//! one manifest per collection; `snap-qdrant restore`: restores them from manifests and
//! proves points, vectors and payload indexes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use manifest::fingerprint::{CollectionStats, Fingerprint, FingerprintError, QdrantStats};
use manifest::sections::{Proof, Restore};
use manifest::time::{parse_duration, Timestamp};
use manifest::{Artifact, Kind, Manifest, Name};
use qdrant::lock::{self, SnapshotLock};
use qdrant::waiting::Waiting;
use qdrant::{Client, Config, QdrantError, Target, FORMAT, FULL_FORMAT};
use serde_json::{json, Value};
use toolkit::cli::{self, quote, CommonArgs, EXIT_CODES_HELP};
use toolkit::http::Timeouts;
use toolkit::progress::{self, Style};
use toolkit::restorable::{conclude, Conclusion, ProofArgs};
use toolkit::retry::RetryPolicy;
use toolkit::secret::Secret;

const AFTER_HELP: &str = "\
For each collection (--collection, repeatable; default: every collection the server lists),
snap-qdrant records the exact points count, the vector configuration (named and sparse
vectors), the payload indexes, the status and the server version, then asks Qdrant for a
snapshot with wait=true (never wait=false, which answers 202 even when the snapshot fails),
streams the file into the spool while hashing it, compares its SHA-256 with the checksum
Qdrant returned, and deletes the snapshot from the server (--keep-on-server keeps it).
Deleting a collection does not delete its snapshot files on the server: this tool is what
cleans them. A download that breaks off is resumed with HTTP Range. A collection that fails
gives a failed manifest and the others still proceed.

Snapshot names have one-second resolution and a second snapshot in the same second silently
replaces the first, so two snapshots of one collection never run at once on this host: a
lock file in the spool, keyed by the URL and the collection, is held from before the create
until a second after it answered (other hosts and other spools are not covered; a snapshot
replaced there fails the checksum check instead of being stored).

Creating the snapshot of a large collection takes minutes: the create request has its own
--server-timeout, and stderr says it is waiting on the server.

The API key comes from QDRANT_API_KEY only (sent as the api-key header; never in argv,
messages or manifests). A read-only key may download but not create snapshots (HTTP 403).
QDRANT_URL [default: http://localhost:6333] may also be given as QDRANT_HOST and QDRANT_PORT.

Cluster mode:
  Distributed Qdrant keeps collection snapshots per node: a snapshot taken through one
  node holds only that node's shards. When GET /cluster lists more than one peer,
  snap-qdrant refuses (a failed manifest) rather than store part of a collection as if it
  were the whole. Back a cluster up node by node with Qdrant's shard snapshots
  (POST /collections/NAME/shards/ID/snapshots on the peer that holds each shard), or keep a
  single-node replica and point snap-qdrant at that.

Restoring a --full snapshot:
  --full takes a full-storage snapshot (every collection and the aliases, POST /snapshots),
  backed up the same way, with the stats of every collection (Qdrant itself leaves a
  64-byte .checksum file per collection in its snapshots directory, which no REST call
  lists). Qdrant cannot restore it over REST (POST /snapshots/upload is no route), only at
  start-up:
    vault-get --id ID               # prints the manifest; artifact.path is the file
    systemctl stop qdrant           # or: docker stop qdrant
    qdrant --storage-snapshot /path/to/ID.snapshot --force-snapshot
                                    # Docker: mount the file, run
                                    # ./qdrant --storage-snapshot /qdrant/snapshots/ID.snapshot --force-snapshot
  --force-snapshot replaces collections that exist (without it they are kept). Qdrant
  restores, then serves; from then on start it without the two flags (with them, every
  start would restore the snapshot again). Then prove the restore:
    vault-get --id ID | snap-qdrant restore --verify-only

Examples:
  snap-qdrant | vault-put >> runs.ndjson
  snap-qdrant --collection docs --collection chunks --run nightly_20250130 | vault-put
  QDRANT_URL=https://qdrant:6333 QDRANT_API_KEY=... snap-qdrant --full | vault-put
  vault-get --latest --kind qdrant | snap-qdrant restore --target-collection docs_check";

/// Back up Qdrant collections as snapshots into the spool, one manifest line each.
///
/// Each collection is snapshotted through Qdrant's REST API, downloaded into the spool
/// directory, checked against the server's SHA-256 and described by one manifest line on
/// stdout with its exact points count, vector configuration and payload indexes.
#[derive(Debug, Parser)]
#[command(name = "snap-qdrant", version, args_conflicts_with_subcommands = true,
          after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Restore collection snapshots named by manifests on stdin and prove them.
    ///
    /// Each file's SHA-256 is verified before anything is sent; after the restore the
    /// collection's exact points count, vectors and payload indexes are compared with
    /// those recorded at backup time.
    #[command(after_long_help = format!("{RESTORE_HELP}\n\n{EXIT_CODES_HELP}"))]
    Restore(RestoreArgs),
}

const RESTORE_HELP: &str = "\
Nothing is sent when a manifest is failed, of another kind, its file is missing or its
SHA-256 differs. Snapshots restore only into the same Qdrant minor version: the manifest's
server_version is compared with the target's and a mismatch refused, unless
--allow-version-mismatch. A restore replaces the whole collection, never merges: an existing
collection is refused unless --overwrite (a snapshot whose vector configuration differs from
the existing collection's is refused by Qdrant itself; use --target-collection).
--target-collection restores under another name, --url into another Qdrant (the DR drill's
scratch instance).

The file is uploaded as multipart field snapshot, streamed from the spool (memory flat,
progress on stderr), with priority=snapshot (with Qdrant's default, replica, a restore can
end up as an empty collection), wait=true and its SHA-256, which Qdrant checks. Qdrant keeps
an uploaded file among the collection's snapshots, so it is deleted after the restore; if a
restore into a new collection fails, Qdrant keeps the file and offers no way to delete it
while the collection does not exist: the error names the file to remove on the node.
--via-location URL instead has the Qdrant node fetch the file itself (PUT
.../snapshots/recover), for nodes that cannot take an upload: file:// only inside the node's
snapshots directory, or http(s); {file} in URL is replaced by the artifact's file name.

Then snap-qdrant waits until the collection is green (yellow, optimizing, is waited out for
--green-timeout; grey, optimizations pending until the next update, is taken as ready; red
fails), and compares the exact points count, the vectors, sparse vectors and payload
indexes with the manifest's stats. Each manifest is printed again with a \"restore\" section:
target, timings, points, the items checked and every difference by name (then
\"status\":\"failed\"). A manifest without readable stats cannot be proven: its restore is
\"unverified\" and fails unless --accept-unverified.

Full-storage snapshots:
  A --full snapshot (format qdrant/full-snapshot) cannot be restored over REST: restore it
  at start-up with qdrant --storage-snapshot FILE --force-snapshot (see snap-qdrant(1),
  section RESTORING A --FULL SNAPSHOT), then prove it with its manifest:
    vault-get --id ID | snap-qdrant restore --verify-only
  --verify-only compares every collection of the manifest's stats with what the server
  holds and sends nothing; it works for collection snapshots restored by other means too.

Cluster mode:
  A restore into one node of a cluster of more than one peer is refused: a collection
  snapshot restores only that node's replica. Restore into a single node (a DR scratch
  instance, --url), or use Qdrant's shard snapshots on each peer.

Examples:
  vault-get --latest --kind qdrant | snap-qdrant restore --target-collection docs_check
  vault-get --id qdrant_docs_20250130_020000 | snap-qdrant restore --overwrite
  vault-get --run nightly_20250130 --kind qdrant | snap-qdrant restore --url http://scratch:6333
  vault-get --id ID | snap-qdrant restore --via-location 'http://files.internal:8000/{file}'";

#[derive(Debug, Clone, Args)]
struct ServerArgs {
    /// Qdrant REST endpoint [default: http://localhost:6333, or http://$QDRANT_HOST:$QDRANT_PORT]; the key comes from QDRANT_API_KEY only.
    #[arg(long, env = "QDRANT_URL", value_name = "URL", hide_env_values = true)]
    url: Option<String>,

    /// PEM file of CA certificates for a Qdrant behind TLS with a private CA.
    #[arg(long, env = "QDRANT_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,

    /// How long to wait for work Qdrant does while the request is open: creating a snapshot, restoring an upload or a location (minutes for a large collection).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    server_timeout: Duration,

    /// Timeout of every other request (listings, counts, deletes), from connect to the last byte.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    request_timeout: Duration,

    /// A download fails after this long without a byte moving (there is no whole-transfer timeout); it is then resumed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,

    /// Timeout of connecting to Qdrant (TCP and TLS).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,

    /// Retries after a transient failure (connection error, timeout, HTTP 5xx) of a request that is safe to repeat, and resumptions of a download, with backoff.
    #[arg(long, value_name = "N", default_value_t = 5)]
    retries: u32,
}

impl ServerArgs {
    fn url(&self) -> String {
        qdrant::resolve_url(self.url.as_deref(), &|n| std::env::var(n).ok())
    }

    fn client(&self) -> anyhow::Result<Client> {
        let mut config = Config::new(&self.url());
        config.api_key = Secret::from_env("QDRANT_API_KEY");
        config.timeouts = Timeouts {
            connect: self.connect_timeout,
            idle: self.idle_timeout,
            request: self.request_timeout,
        };
        config.server_timeout = self.server_timeout;
        config.retry = RetryPolicy {
            retries: self.retries,
            ..RetryPolicy::default()
        };
        config.ca_file = self.ca_file.clone();
        Ok(Client::new(&config)?)
    }
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// Collection to back up (repeatable) [default: every collection on the server].
    #[arg(long, short = 'c', value_name = "NAME")]
    collection: Vec<String>,

    /// Take one full-storage snapshot (all collections, POST /snapshots) instead; restored only at Qdrant start-up (see below).
    #[arg(long, conflicts_with = "collection")]
    full: bool,

    /// Leave the snapshot on the server after the download (by default it is deleted, so snapshots do not pile up on the server's disk).
    #[arg(long)]
    keep_on_server: bool,

    /// Id of this backup run, shared by all its manifests [default: run_YYYYMMDD_HHMMSS].
    #[arg(long, env = "STACKVAULT_RUN", value_name = "ID")]
    run: Option<Name>,

    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// Collection to restore into [default: the collection the backup came from].
    #[arg(long, value_name = "NAME")]
    target_collection: Option<String>,

    /// Restore over an existing collection: it is replaced wholesale by the snapshot.
    #[arg(long)]
    overwrite: bool,

    /// Try a restore into a Qdrant of another minor version than the one that made the snapshot.
    #[arg(long)]
    allow_version_mismatch: bool,

    /// Have the Qdrant node fetch the snapshot from this URL (PUT …/snapshots/recover) instead of uploading it; {file} is replaced by the artifact's file name.
    #[arg(long, value_name = "URL")]
    via_location: Option<String>,

    /// Only compare what the server holds now with the manifest's stats (after a restore at start-up with --storage-snapshot): nothing is sent.
    #[arg(long, conflicts_with_all = ["overwrite", "via_location"])]
    verify_only: bool,

    /// How long to wait for the restored collection to become green before comparing.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    green_timeout: Duration,

    /// Never show progress on stderr (by default: a counter on a terminal, a line every 10 s otherwise).
    #[arg(long)]
    no_progress: bool,

    #[command(flatten)]
    proof: ProofArgs,

    #[command(flatten)]
    server: ServerArgs,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    match cli.command {
        Some(Sub::Restore(args)) => restore(args),
        None => backup(cli.backup),
    }
}

// ---- backup ------------------------------------------------------------------------

/// What every record of one run shares.
struct Run<'a> {
    client: &'a Client,
    run: Name,
    spool: toolkit::spool::SpoolDir,
    style: Style,
    keep_on_server: bool,
}

impl Run<'_> {
    fn new_manifest(&self, name: Option<&Name>, target: Option<&Target>) -> Manifest {
        let mut m = Manifest::new(Kind::Qdrant, name, Timestamp::now());
        m.run = Some(self.run.clone());
        let mut source = serde_json::Map::new();
        source.insert("url".into(), json!(self.client.shown_url()));
        match target {
            Some(Target::Collection(c)) => {
                source.insert("collection".into(), json!(c));
            }
            Some(Target::Full) => {
                source.insert("full".into(), json!(true));
            }
            None => {}
        }
        m.source = Some(Value::Object(source));
        m
    }
}

fn source_mut(m: &mut Manifest) -> &mut serde_json::Map<String, Value> {
    match m.source.get_or_insert_with(|| json!({})) {
        Value::Object(map) => map,
        _ => unreachable!("set as an object"),
    }
}

/// The id name of the full-storage snapshot.
const FULL_NAME: &str = "full-storage";

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let run = args.run.clone().unwrap_or_else(|| {
        Name::new(format!("run_{}", Timestamp::now().compact())).expect("a valid name")
    });
    let spool = args.common.spool_dir()?;
    let r = Run {
        client: &client,
        run,
        spool,
        style: args.common.progress_style(),
        keep_on_server: args.keep_on_server,
    };
    let mut out = cli::manifests_out();

    // What the whole run needs first; when it fails, the failure still travels as data:
    // one failed manifest per named collection (or one for the run, by the short id).
    let named: Vec<Target> = if args.full {
        vec![Target::Full]
    } else {
        args.collection
            .iter()
            .cloned()
            .map(Target::Collection)
            .collect()
    };
    let prepared = (|| -> Result<(String, Vec<Target>), String> {
        let version = client.version().map_err(|e| e.to_string())?;
        let cluster = client.cluster().map_err(|e| e.to_string())?;
        if cluster.peers > 1 {
            return Err(format!(
                "Qdrant at {} is one node of a cluster of {} peers: collection snapshots are per \
                 node and hold only that node's shards, so a snapshot through this node is not the \
                 collection; refusing. Back up each peer's shards with Qdrant's shard snapshots \
                 (/collections/NAME/shards/ID/snapshots), or back up a single-node replica (see \
                 snap-qdrant --help)",
                client.shown_url(),
                cluster.peers
            ));
        }
        let targets = if named.is_empty() {
            client
                .collections()
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(Target::Collection)
                .collect()
        } else {
            named.clone()
        };
        Ok((version, targets))
    })();
    let (version, targets) = match prepared {
        Ok(x) => x,
        Err(why) => {
            let failed: Vec<Manifest> = if named.is_empty() {
                vec![r.new_manifest(None, None)]
            } else {
                let texts: Vec<String> = named.iter().map(id_text).collect();
                manifest::name::distinct_names(&texts)
                    .iter()
                    .zip(&named)
                    .map(|(n, t)| r.new_manifest(Some(n), Some(t)))
                    .collect()
            };
            for m in failed {
                cli::emit_failed(&mut out, m, format!("backup of Qdrant failed: {why}"))?;
            }
            return Ok(());
        }
    };
    if targets.is_empty() {
        cli::info(format!(
            "Qdrant at {} has no collections: nothing to back up",
            client.shown_url()
        ));
        return Ok(());
    }
    let texts: Vec<String> = targets.iter().map(id_text).collect();
    let names = manifest::name::distinct_names(&texts);
    for (target, name) in targets.iter().zip(&names) {
        if name.as_str() != id_text(target) {
            cli::info(format!(
                "{} is named {name} in ids (only letters, digits, '.', '_' and '-' are)",
                target.describe()
            ));
        }
        let label = match target {
            Target::Collection(c) => format!("snapshot {}", quote(c)),
            Target::Full => "full snapshot".to_owned(),
        };
        // The lock first, the manifest (and its id's second) after: a run that waited for
        // another's snapshot of this collection gets a later second, so a file of its own.
        let locks = take_locks(&r, target, &label);
        let mut m = r.new_manifest(Some(name), Some(target));
        source_mut(&mut m).insert("server_version".into(), json!(version));
        let result = match locks {
            Ok(locks) => back_up(&r, target, &label, &mut m, locks),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            m.fail(format!("backup of {} failed: {e:#}", target.describe()));
        }
        if let Some(error) = &m.error {
            cli::record_failed(error);
        }
        cli::emit(&mut out, &m)?;
        cli::stop_if_interrupted()?;
    }
    Ok(())
}

fn id_text(target: &Target) -> String {
    match target {
        Target::Collection(c) => c.clone(),
        Target::Full => FULL_NAME.to_owned(),
    }
}

/// Stats of `target`: its collection, or every collection for a full snapshot.
fn stats_of(
    client: &Client,
    target: &Target,
) -> Result<BTreeMap<String, CollectionStats>, QdrantError> {
    let names = match target {
        Target::Collection(c) => vec![c.clone()],
        Target::Full => client.collections()?,
    };
    names
        .into_iter()
        .map(|n| client.fingerprint(&n).map(|s| (n, s)))
        .collect()
}

/// The locks a snapshot of `target` takes, in one order: its collection's; for a full
/// snapshot, every collection's (Qdrant makes a collection snapshot of each, with the same
/// one-second names) and the full one's.
fn take_locks(r: &Run, target: &Target, label: &str) -> Result<Vec<SnapshotLock>, QdrantError> {
    let mut targets = match target {
        Target::Collection(_) => vec![target.clone()],
        Target::Full => r
            .client
            .collections()?
            .into_iter()
            .map(Target::Collection)
            .chain([Target::Full])
            .collect(),
    };
    targets.dedup();
    let mut locks = Vec::new();
    for t in &targets {
        let said = t.describe();
        locks.push(lock::acquire(
            r.spool.path(),
            r.client.shown_url(),
            t,
            r.client.server_timeout(),
            || cli::info(format!("{label}: another snap-qdrant on this host is snapshotting {said}; waiting for it")),
        )?);
    }
    Ok(locks)
}

fn back_up(
    r: &Run,
    target: &Target,
    label: &str,
    m: &mut Manifest,
    mut locks: Vec<SnapshotLock>,
) -> anyhow::Result<()> {
    let before = stats_of(r.client, target)?;
    let created = {
        let _waiting = Waiting::start(
            r.style,
            label,
            "create the snapshot",
            r.client.server_timeout(),
        );
        r.client.create_snapshot(target)
    };
    locks.iter_mut().for_each(SnapshotLock::created);
    let snapshot = created?;
    source_mut(m).insert("snapshot".into(), json!(snapshot.name));
    if let Some(t) = &snapshot.creation_time {
        source_mut(m).insert("snapshot_created".into(), json!(t));
    }

    // Writes while the snapshot was taken make the counts of before uncertain: say so.
    let after = stats_of(r.client, target);
    let mut changed = vec![];
    if let Ok(after) = &after {
        for (name, b) in &before {
            match after.get(name) {
                Some(a) if a.points == b.points => {}
                Some(a) => changed.push(format!(
                    "{name}: {} points before, {} after",
                    b.points, a.points
                )),
                None => changed.push(format!("{name}: gone after the snapshot")),
            }
        }
    }
    if !changed.is_empty() {
        cli::info(format!(
            "warning: {label}: the collection changed while the snapshot was taken ({}): the stats \
             are those of before, so a restore may report a difference; back up while writes \
             are paused for an exact proof",
            changed.join("; ")
        ));
        source_mut(m).insert("changed_during_snapshot".into(), json!(true));
    }

    let file_name =
        Name::new(format!("{}.snapshot", m.id)).expect("an id and an extension make a name");
    let progress = progress::for_stderr(r.style, &format!("download {}", m.id));
    let downloaded = r
        .client
        .download_snapshot(target, &snapshot, &r.spool, &file_name, &*progress);
    progress.finish();

    // The server's copy goes either way: a failed download is retried by the next run with
    // a new snapshot, and snapshots left behind fill the server's disk.
    let deleted = if r.keep_on_server {
        Ok(())
    } else {
        r.client.delete_snapshot(target, &snapshot.name)
    };
    drop(locks);
    let written = match (downloaded, deleted) {
        (Ok(w), Ok(())) => w,
        (Ok(w), Err(e)) if e.is_status(404) => {
            // Someone deleted it first: another run that got the same one-second name?
            cli::info(format!(
                "warning: {label}: the snapshot was already gone from the server when it was to be \
                 deleted (another run with a snapshot of the same second?); the backup is good: \
                 its file matches the checksum of its create: {e}"
            ));
            w
        }
        (Ok(w), Err(e)) => {
            cli::info(format!(
                "warning: {label}: the backup is good, but the snapshot stays on the server: {e}"
            ));
            source_mut(m).insert("left_on_server".into(), json!(snapshot.name));
            w
        }
        (Err(e), Ok(())) => return Err(e.into()),
        (Err(e), Err(d)) => {
            return Err(
                anyhow::Error::new(e).context(format!("and the snapshot stays on the server: {d}"))
            )
        }
    };
    if r.keep_on_server {
        source_mut(m).insert("left_on_server".into(), json!(snapshot.name));
    }
    m.artifact = Some(Artifact {
        path: written.path,
        format: if *target == Target::Full {
            FULL_FORMAT
        } else {
            FORMAT
        }
        .to_owned(),
        bytes: written.bytes,
        sha256: written.sha256,
        extra: Default::default(),
    });
    m.set_fingerprint(&Fingerprint::Qdrant(QdrantStats {
        collections: before,
    }));
    Ok(())
}

// ---- restore -----------------------------------------------------------------------

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let client = args.server.client()?;
    let style = progress::style(args.no_progress);
    let mut out = cli::manifests_out();
    let mut restored_into_target = false;
    for manifest in cli::manifests_in() {
        let manifest = manifest?;
        if args.target_collection.is_some() && restored_into_target {
            anyhow::bail!(
                "--target-collection names one collection but more than one manifest came in; \
                 restore them one at a time (manifest {} was not restored)",
                manifest.id
            );
        }
        match restore_one(&client, &args, style, &manifest) {
            Ok((section, what)) => {
                restored_into_target = true;
                let mut out_manifest = manifest.clone();
                match conclude(&mut out_manifest, &section, &args.proof, &what) {
                    Conclusion::Proven(message) => cli::info(message),
                    Conclusion::Accepted(message) => cli::info(format!("warning: {message}")),
                    Conclusion::Failed(message) => cli::record_failed(message),
                }
                cli::emit(&mut out, &out_manifest)?;
            }
            Err(e) => cli::emit_failed(&mut out, manifest, format!("{e:#}"))?,
        }
        cli::stop_if_interrupted()?;
    }
    Ok(())
}

fn source_str<'m>(m: &'m Manifest, key: &str) -> Option<&'m str> {
    m.source.as_ref()?.get(key)?.as_str()
}

/// The backup's fingerprint of `from`, renamed `to` (a restore under another name).
fn expected_of(m: &Manifest, from: &str, to: &str) -> Result<Fingerprint, FingerprintError> {
    let Fingerprint::Qdrant(mut stats) = m.fingerprint()? else {
        return Err(FingerprintError::Malformed {
            kind: Kind::Qdrant,
            message: "not a Qdrant fingerprint".into(),
        });
    };
    let Some(one) = stats.collections.remove(from) else {
        return Err(FingerprintError::Malformed {
            kind: Kind::Qdrant,
            message: format!("the stats have no collection {from:?}"),
        });
    };
    Ok(Fingerprint::Qdrant(QdrantStats {
        collections: [(to.to_owned(), one)].into(),
    }))
}

fn restore_one(
    client: &Client,
    args: &RestoreArgs,
    style: Style,
    m: &Manifest,
) -> anyhow::Result<(Restore, String)> {
    let refuse = |why: String| anyhow::anyhow!("refusing to restore {}: {why}", m.id);
    // What can be refused without reading the file comes first: a full snapshot is many GiB.
    if m.is_ok() && m.kind == Kind::Qdrant {
        if let Some(a) = &m.artifact {
            if a.format == FULL_FORMAT && !args.verify_only {
                return Err(refuse(format!(
                    "it is a full-storage snapshot, which Qdrant cannot restore over REST: stop \
                     Qdrant, start it once with `qdrant --storage-snapshot {} --force-snapshot` \
                     (the file must be where the server can read it), then without those flags \
                     from then on, and prove it with `snap-qdrant restore --verify-only` and this \
                     manifest",
                    a.path.display()
                )));
            }
        }
    }
    let artifact = if args.verify_only {
        // Nothing is sent, so the file need not be here; the record must still be a good
        // Qdrant backup.
        if !m.is_ok() || m.kind != Kind::Qdrant {
            return Err(refuse(format!("it is a {} {} record", m.status, m.kind)));
        }
        m.artifact
            .as_ref()
            .ok_or_else(|| refuse("the manifest has no artifact section".into()))?
    } else {
        toolkit::restorable::check(m, &Kind::Qdrant).map_err(|e| refuse(e.to_string()))?
    };
    let full = artifact.format == FULL_FORMAT;
    if !full && artifact.format != FORMAT {
        return Err(refuse(format!(
            "its artifact is {}, not a Qdrant collection snapshot ({FORMAT})",
            artifact.format
        )));
    }
    let server_version = client.version()?;
    let shown = client.shown_url().to_owned();
    let started_at = Timestamp::now();
    let clock = Instant::now();

    if full {
        // Verify every collection the full snapshot held, under its own name.
        let expected = m.fingerprint();
        let names: Vec<String> = match &expected {
            Ok(Fingerprint::Qdrant(s)) => s.collections.keys().cloned().collect(),
            _ => vec![],
        };
        let mut actual = BTreeMap::new();
        for name in &names {
            if let Some(info) = client.collection_info(name)? {
                let points = client.count(name)?;
                actual.insert(
                    name.clone(),
                    qdrant::server::stats_of(&info, points).map_err(anyhow::Error::msg)?,
                );
            }
        }
        let proof = Proof::new(
            expected,
            &Fingerprint::Qdrant(QdrantStats {
                collections: actual,
            }),
        );
        let section = section(
            json!({"url": shown, "collections": names, "server_version": server_version}),
            started_at,
            clock,
            proof,
            vec![("verify_only".to_owned(), json!(true))],
        );
        return Ok((section, format!("{} (verified in {shown})", m.id)));
    }

    let Some(source) = source_str(m, "collection") else {
        return Err(refuse(
            "the manifest names no source collection; pass --target-collection".into(),
        ));
    };
    let target = args.target_collection.as_deref().unwrap_or(source);
    let what = format!("{} into collection {} at {shown}", m.id, quote(target));

    if args.verify_only {
        let actual = client.fingerprint(target)?;
        let proof = Proof::new(
            expected_of(m, source, target),
            &Fingerprint::Qdrant(QdrantStats {
                collections: [(target.to_owned(), actual)].into(),
            }),
        );
        let section = section(
            json!({"url": shown, "collection": target, "server_version": server_version}),
            started_at,
            clock,
            proof,
            vec![("verify_only".to_owned(), json!(true))],
        );
        return Ok((section, format!("{what} (verified only)")));
    }

    match source_str(m, "server_version") {
        Some(made_by) if qdrant::server::same_minor(made_by, &server_version) => {}
        _ if args.allow_version_mismatch => {}
        Some(made_by) => {
            return Err(refuse(format!(
            "the snapshot was made by Qdrant {made_by} and {shown} runs {server_version}: Qdrant \
                 restores snapshots only into the same minor version; restore into a Qdrant \
                 {made_by} (--url), or pass --allow-version-mismatch to try anyway"
        )))
        }
        None => {
            return Err(refuse(format!(
                "the manifest does not say which Qdrant version made the snapshot, and Qdrant \
                 restores snapshots only into the same minor version ({shown} runs \
                 {server_version}); pass --allow-version-mismatch to try anyway"
            )))
        }
    }
    let cluster = client.cluster()?;
    if cluster.peers > 1 {
        return Err(refuse(format!(
            "{shown} is one node of a cluster of {} peers: a collection snapshot restores only \
             this node's replica; restore into a single node, or use Qdrant's shard snapshots",
            cluster.peers
        )));
    }
    let existed = client.collection_exists(target)?;
    if existed && !args.overwrite {
        return Err(refuse(format!(
            "collection {} exists at {shown}; a restore replaces a collection wholesale (it never \
             merges): pass --overwrite to replace it, or choose another --target-collection",
            quote(target)
        )));
    }

    let file_name = artifact
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let via;
    if let Some(location) = &args.via_location {
        let location = location.replace("{file}", &file_name);
        client.recover(target, &location, &artifact.sha256, style)?;
        via = json!({"via": "location", "location": toolkit::secret::redact_url(&location)});
    } else {
        // A name of our own: a name equal to an existing snapshot's would overwrite it.
        let upload = format!(
            "stackvault-restore-{}-{}.snapshot",
            m.id,
            qdrant::restore::unique_token()
        );
        let progress = progress::for_stderr(style, &format!("upload {}", m.id));
        let uploaded = client.upload_restore(
            target,
            &artifact.path,
            &artifact.sha256,
            &upload,
            &*progress,
            style,
        );
        progress.finish();
        let collection = Target::Collection(target.to_owned());
        let cleaned = client.delete_snapshot(&collection, &upload);
        match (uploaded, cleaned) {
            (Ok(()), Ok(())) => {}
            (Ok(()), Err(e)) => cli::info(format!(
                "warning: {what}: restored, but the uploaded copy stays among the collection's \
                 snapshots: {e}"
            )),
            (Err(e), Ok(())) => return Err(e.into()),
            (Err(e), Err(_)) if e.message.contains("hecksum mismatch") => return Err(e.into()),
            (Err(e), Err(_)) => {
                let note = if client.collection_exists(target).unwrap_or(true) {
                    format!(" (the uploaded copy {upload} stays among its snapshots on the server)")
                } else {
                    format!(
                        " (Qdrant keeps the uploaded copy as snapshots/{target}/{upload} on the node \
                         and offers no way to delete it while the collection does not exist: remove \
                         that file from the node's snapshots directory)"
                    )
                };
                return Err(anyhow::Error::new(e.with_note(&note)));
            }
        }
        via = json!({"via": "upload"});
    }

    let status_after = client
        .wait_green(target, args.green_timeout)
        .with_context(|| format!("restored {what}, but cannot compare it"))?;
    if status_after != "green" {
        cli::info(format!(
            "note: {what}: the collection is {status_after} (loaded; optimizations pending until \
             its next update), compared as it is"
        ));
    }
    let actual = client.fingerprint(target)?;
    let points = actual.points;
    let expected_points = m.fingerprint().ok().and_then(|f| match f {
        Fingerprint::Qdrant(s) => s.collections.get(source).map(|c| c.points),
        _ => None,
    });
    let proof = Proof::new(
        expected_of(m, source, target),
        &Fingerprint::Qdrant(QdrantStats {
            collections: [(target.to_owned(), actual)].into(),
        }),
    );
    let mut extra = vec![
        ("points".to_owned(), json!(points)),
        ("expected_points".to_owned(), json!(expected_points)),
        ("overwrote".to_owned(), json!(existed)),
        ("status_after".to_owned(), json!(status_after)),
    ];
    if let Value::Object(v) = via {
        extra.extend(v);
    }
    let section = section(
        json!({"url": shown, "collection": target, "server_version": server_version}),
        started_at,
        clock,
        proof,
        extra,
    );
    Ok((section, what))
}

fn section(
    target: Value,
    started_at: Timestamp,
    clock: Instant,
    proof: Proof,
    extra: Vec<(String, Value)>,
) -> Restore {
    Restore::proven(
        target,
        started_at,
        clock,
        proof,
        vec![],
        extra.into_iter().collect(),
    )
}
