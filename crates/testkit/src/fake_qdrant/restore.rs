//! Restoring a collection from a snapshot: upload (multipart) and recover (from a
//! location), as `_do_recover_from_snapshot` does it — unpack into
//! `storage/tmp/col-<name>-recovery-…`, read `config.json`, create the collection if it is
//! missing, refuse a different vector config, then replace the data wholesale. A failure
//! before the last step leaves an existing collection as it was.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::collections::{config_is_valid, debug_vectors, Collection};
use super::errors::QError;
use super::http::Response;
use super::multipart;
use super::points::{Point, PointId};
use super::router::{validate_collection_name, validate_sha256, Ctx};
use super::snapshots::write_with_mtime;
use super::util::{reason, sha256_hex, uuid_v4};
use super::Shared;

/// What a snapshot holds.
#[derive(Debug)]
struct Loaded {
    config: Value,
    indexes: BTreeMap<String, Value>,
    /// `None` when the archive has no shard 0 (then the shard is not recovered).
    points: Option<BTreeMap<PointId, Point>>,
    op_seq: u64,
}

/// Qdrant's `tar_unpack_reader`: only regular files, directories and GNU sparse files;
/// the tar crate's own messages, hidden behind "Malformed tar archive" where Qdrant hides
/// them (release builds).
fn unpack<R: Read>(reader: R, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_overwrite(false);
    let entries = archive
        .entries()
        .map_err(|e| io::Error::new(e.kind(), "Malformed tar archive, unable to read entries"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            io::Error::new(e.kind(), "Malformed tar archive, reached unknown entry")
        })?;
        match entry.header().entry_type() {
            tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::GNUSparse => {}
            other => {
                return Err(io::Error::other(format!(
                    "Forbidden entry type in tar archive: {other:?}"
                )))
            }
        }
        entry.unpack_in(dst)?;
    }
    Ok(())
}

/// `fs-err`'s wording for a file that cannot be read.
fn read_file(path: &Path) -> Result<Vec<u8>, QError> {
    fs::read(path).map_err(|e| QError::io(format!("failed to open file `{}`: {e}", path.display())))
}

fn load_unpacked(dir: &Path) -> Result<Loaded, QError> {
    let config_path = dir.join("config.json");
    let mut config: Value = serde_json::from_slice(&read_file(&config_path)?).map_err(|e| {
        QError::io(format!(
            "failed to parse file `{}`: {e}",
            config_path.display()
        ))
    })?;
    config_is_valid(&config).map_err(|e| {
        QError::service(format!(
            "Failed to load collection config `{}`: {e}",
            config_path.display()
        ))
    })?;
    if let Value::Object(c) = &mut config {
        c.remove("uuid");
    }
    let mut indexes = BTreeMap::new();
    let index_path = dir.join("payload_index.json");
    if index_path.exists() {
        let schema: Value = serde_json::from_slice(&read_file(&index_path)?).map_err(|e| {
            QError::io(format!(
                "failed to parse file `{}`: {e}",
                index_path.display()
            ))
        })?;
        if let Some(fields) = schema["schema"].as_object() {
            for (field, s) in fields {
                indexes.insert(field.clone(), s.clone());
            }
        }
    }
    let shard = dir.join("0");
    if !shard.join("shard_config.json").exists() {
        return Ok(Loaded {
            config,
            indexes,
            points: None,
            op_seq: 0,
        });
    }
    let mut points = BTreeMap::new();
    let mut op_seq = 0;
    let segments = shard.join("segments");
    let mut tars: Vec<_> = match fs::read_dir(&segments) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .collect(),
        Err(_) => Vec::new(),
    };
    tars.sort();
    for segment_tar in tars {
        let unpacked = segment_tar.with_extension("");
        let file = File::open(&segment_tar).map_err(QError::io)?;
        unpack(BufReader::new(file), &unpacked).map_err(QError::io)?;
        let files = unpacked.join("snapshot/files");
        let info: Value = serde_json::from_slice(&read_file(&files.join("segment.json"))?)
            .map_err(|e| QError::io(format!("bad segment.json: {e}")))?;
        op_seq = op_seq.max(info["version"].as_u64().unwrap_or(0));
        let lines = read_file(&files.join("points.jsonl"))?;
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value: Value = serde_json::from_slice(line)
                .map_err(|e| QError::io(format!("bad points.jsonl: {e}")))?;
            let point = Point::from_storage(&value)
                .map_err(|e| QError::io(format!("bad points.jsonl: {e}")))?;
            points.insert(point.id.clone(), point);
        }
    }
    Ok(Loaded {
        config,
        indexes,
        points: Some(points),
        op_seq,
    })
}

/// Creates the collection if it is missing, checks that the snapshot fits it, replaces its
/// data.
fn apply(shared: &Shared, name: &str, loaded: Loaded) -> Result<(), QError> {
    let mut state = shared.state();
    let collection = state
        .collections
        .entry(name.to_owned())
        .or_insert_with(|| Collection::new(loaded.config.clone()));
    let existing = &collection.config["params"];
    let snapshot = &loaded.config["params"];
    if existing["vectors"] != snapshot["vectors"] {
        return Err(QError::bad_input(format!(
            "Snapshot is not compatible with existing collection: Collection vectors: {} Snapshot Vectors: {}",
            debug_vectors(&existing["vectors"]),
            debug_vectors(&snapshot["vectors"])
        )));
    }
    if existing["shard_number"] != snapshot["shard_number"] {
        return Err(QError::bad_input(format!(
            "Snapshot is not compatible with existing collection: Collection shard number: {} Snapshot shard number: {}",
            existing["shard_number"], snapshot["shard_number"]
        )));
    }
    if let Some(points) = loaded.points {
        collection.points = points;
        collection.op_seq = loaded.op_seq;
    }
    collection.indexes = loaded.indexes;
    Ok(())
}

fn recovery_dir(shared: &Shared, name: &str) -> Result<tempfile::TempDir, QError> {
    tempfile::Builder::new()
        .prefix(&format!("col-{name}-recovery-"))
        .tempdir_in(shared.tmp_dir())
        .map_err(QError::io)
}

/// Restores `name` from a snapshot file on this server.
fn restore_file(shared: &Shared, name: &str, path: &Path) -> Result<(), QError> {
    let tmp = recovery_dir(shared, name)?;
    let file = File::open(path).map_err(QError::io)?;
    unpack(BufReader::new(file), tmp.path()).map_err(QError::io)?;
    let loaded = load_unpacked(tmp.path())?;
    apply(shared, name, loaded)
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Priority {
    NoSync,
    Snapshot,
    Replica,
}

/// A URL, refused inside `visit_str` (so serde_json reports the position right after the
/// string, as for Qdrant's own URL type).
fn location<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    struct UrlVisitor;
    impl serde::de::Visitor<'_> for UrlVisitor {
        type Value = url::Url;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string representing an URL")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<url::Url, E> {
            url::Url::parse(text).map_err(|e| E::custom(format!("{e}: {text:?}")))
        }
    }
    d.deserialize_str(UrlVisitor)
}

#[derive(Deserialize)]
#[serde(rename = "SnapshotRecover")]
struct SnapshotRecover {
    #[serde(deserialize_with = "location")]
    location: url::Url,
    /// On a single node every priority replaces the data (the recording shows it for
    /// `replica` over an existing collection), so it is only validated.
    #[allow(dead_code)]
    priority: Option<Priority>,
    checksum: Option<String>,
    api_key: Option<String>,
}

/// Downloads a snapshot from a URL into `dest`, `api-key` header set when the body had
/// `api_key`.
fn fetch(url: &url::Url, api_key: Option<&str>, dest: &Path) -> Result<(), QError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build();
    let mut request = agent.get(url.as_str());
    if let Some(key) = api_key {
        request = request.set("api-key", key);
    }
    match request.call() {
        Ok(response) => {
            let mut file = File::create(dest).map_err(QError::io)?;
            io::copy(&mut response.into_reader(), &mut file)
                .map_err(|e| QError::service(format!("Http request error: {e}")))?;
            Ok(())
        }
        Err(ureq::Error::Status(code, _)) => Err(QError::bad_input(format!(
            "Failed to download tar from {url}: status - {code} {}",
            reason(code)
        ))),
        Err(ureq::Error::Transport(_)) => Err(QError::service(format!(
            "Http request error: error sending request for url ({url})"
        ))),
    }
}

fn checksum_matches(actual: &str, expected: &str) -> bool {
    actual.eq_ignore_ascii_case(expected)
}

fn recover_from(shared: &Shared, name: &str, source: SnapshotRecover) -> Result<(), QError> {
    let url = &source.location;
    match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|_| {
                QError::bad_request(
                    "Invalid snapshot URI, file path must be absolute or on localhost",
                )
            })?;
            // Inside the snapshots directory, `..` already resolved by the URL parser and
            // symlinks by canonicalising what exists.
            let resolved = path.canonicalize().unwrap_or_else(|_| path.clone());
            if !resolved.starts_with(&shared.snapshots) {
                return Err(QError::forbidden(format!(
                    "Snapshot file path must be inside the snapshots directory {:?}",
                    shared.snapshots
                )));
            }
            if !path.exists() {
                return Err(QError::bad_request(format!(
                    "Snapshot file {path:?} does not exist"
                )));
            }
            if let Some(expected) = &source.checksum {
                let actual = toolkit::fs::hash_file(&path)
                    .map_err(QError::io)?
                    .1
                    .to_string();
                if !checksum_matches(&actual, expected) {
                    return Err(QError::bad_input(format!(
                        "Snapshot checksum mismatch: expected {expected}, got {actual}"
                    )));
                }
            }
            restore_file(shared, name, &path)
        }
        "http" | "https" => {
            let stem = Path::new(url.path())
                .file_name()
                .map(|n| format!("{}-", n.to_string_lossy()))
                .unwrap_or_default();
            let tmp = tempfile::Builder::new()
                .prefix(&stem)
                .suffix(".download")
                .tempdir_in(shared.tmp_dir())
                .map_err(QError::io)?;
            let downloaded = tmp.path().join("snapshot.tar");
            fetch(url, source.api_key.as_deref(), &downloaded)?;
            let unpacked = tmp.path().join("unpacked");
            let file = File::open(&downloaded).map_err(QError::io)?;
            unpack(BufReader::new(file), &unpacked)
                .map_err(|e| QError::service(format!("Failed to unpack tar archive: {e}")))?;
            if let Some(expected) = &source.checksum {
                let actual = toolkit::fs::hash_file(&downloaded)
                    .map_err(QError::io)?
                    .1
                    .to_string();
                if !checksum_matches(&actual, expected) {
                    return Err(QError::bad_input(format!(
                        "Snapshot checksum mismatch: expected {expected}, got {actual}"
                    )));
                }
            }
            let loaded = load_unpacked(&unpacked)?;
            apply(shared, name, loaded)
        }
        other => Err(QError::bad_request(format!(
            "URL {url} with scheme {other} is not supported"
        ))),
    }
}

/// `PUT /collections/{name}/snapshots/recover` (default `wait=true`).
pub(crate) fn recover(ctx: &Ctx, name: &str) -> Response {
    let setup = (|| -> Result<_, QError> {
        validate_collection_name(name)?;
        let source: SnapshotRecover = ctx.json()?;
        if let Some(checksum) = &source.checksum {
            validate_sha256("checksum", checksum, "JSON body")?;
        }
        let wait = ctx.query().wait(true)?;
        ctx.access.require_manage()?;
        Ok((source, wait))
    })();
    let (source, wait) = match setup {
        Ok(x) => x,
        Err(e) => return e.json(ctx.elapsed()),
    };
    let name = name.to_owned();
    ctx.run_or_accept(wait, format!("recover {name}"), move |shared| {
        recover_from(shared, &name, source).map(|()| json!(true))
    })
}

/// Saves an upload as Qdrant does — under the basename of its filename (a UUID without
/// one), replacing a same-named file and leaving its `.checksum` as it was — and restores
/// from it. A checksum mismatch is the one failure that keeps nothing.
fn upload_restore(
    shared: &Shared,
    name: &str,
    field: multipart::SnapshotField,
    checksum: Option<String>,
) -> Result<(), QError> {
    if let Some(expected) = &checksum {
        let actual = sha256_hex(&field.data);
        if !checksum_matches(&actual, expected) {
            return Err(QError::new(
                400,
                format!("Checksum mismatch: expected {actual}, actual {expected}"),
            ));
        }
    }
    let filename = field
        .filename
        .as_deref()
        .and_then(|f| Path::new(f).file_name())
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .unwrap_or_else(uuid_v4);
    let dir = shared.snapshots.join(name);
    fs::create_dir_all(&dir).map_err(QError::io)?;
    let path = dir.join(&filename);
    let tmp = shared.snapshots.join(format!(".tmp{}", uuid_v4()));
    write_with_mtime(&tmp, &field.data, shared.clock.now()).map_err(QError::io)?;
    fs::rename(&tmp, &path).map_err(QError::io)?;
    restore_file(shared, name, &path)
}

/// `POST /collections/{name}/snapshots/upload?priority=…&wait=…&checksum=…`, field
/// `snapshot` (default `wait=true`; no size limit).
pub(crate) fn upload(ctx: &Ctx, name: &str, body: Vec<u8>) -> Response {
    if let Err(e) = validate_collection_name(name) {
        return e.json(ctx.elapsed());
    }
    // The multipart extractor refuses a wrong content type before anything else…
    let boundary = match multipart::boundary(ctx.request.header("content-type")) {
        Ok(b) => b,
        Err(e) => return e.text(),
    };
    // …then the query parameters are checked, while the body is still being read…
    let params = (|| -> Result<_, QError> {
        let query = ctx.query();
        let wait = query.wait(true)?;
        query.variant("priority", &["no_sync", "snapshot", "replica"])?;
        let checksum = query.get("checksum")?.map(str::to_owned);
        if let Some(c) = &checksum {
            validate_sha256("checksum", c, "query parameters")?;
        }
        Ok((wait, checksum))
    })();
    let (wait, checksum) = match params {
        Ok(x) => x,
        Err(e) => return e.json(ctx.elapsed()),
    };
    // …then the body, then the handler itself.
    let field = match multipart::snapshot_field(body, &boundary) {
        Ok(f) => f,
        Err(e) => return e.text(),
    };
    if let Err(e) = ctx.access.require_manage() {
        return e.json(ctx.elapsed());
    }
    let name = name.to_owned();
    ctx.run_or_accept(wait, format!("upload into {name}"), move |shared| {
        upload_restore(shared, &name, field, checksum).map(|()| json!(true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_bytes() -> Vec<u8> {
        super::super::snapshots::tar_of(
            &[
                ("0/segments/x.tar".into(), vec![7u8; 5000], 0),
                ("config.json".into(), b"{}".to_vec(), 0),
            ],
            0o644,
        )
        .unwrap()
    }

    #[test]
    fn malformed_archives_fail_as_in_qdrant() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = b"this is not a tar archive, just text\n".repeat(100);
        let e = unpack(garbage.as_slice(), &dir.path().join("g")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Malformed tar archive, reached unknown entry"
        );

        let bytes = tar_bytes();
        let half = &bytes[..bytes.len() / 2];
        let e = unpack(half, &dir.path().join("h")).unwrap_err();
        assert!(
            e.to_string().starts_with("failed to unpack `") && e.to_string().contains("x.tar"),
            "{e}"
        );

        // Empty: no entries, nothing unpacked; config.json is then missing.
        unpack(&[][..], &dir.path().join("e")).unwrap();
        let e = load_unpacked(&dir.path().join("e")).unwrap_err();
        assert!(e
            .message
            .starts_with("Service internal error: File IO error: failed to open file `"));
        assert!(e
            .message
            .ends_with("config.json`: No such file or directory (os error 2)"));
    }
}
