//! Snapshot files on disk, as Qdrant keeps them: `snapshots/<collection>/<name>` with a
//! `<name>.checksum` sidecar holding the SHA-256, descriptions read back from the files
//! (`creation_time` is the mtime, `checksum` absent without a sidecar), downloads served
//! like actix-files serves them (ranges, ETag, Last-Modified), full-storage snapshots that
//! leave their per-collection sidecars behind.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::collections::Collection;
use super::errors::QError;
use super::http::{Body, Response};
use super::router::{result_true, Ctx};
use super::util::{creation_time, http_date, name_time, sha256_hex, uuid_v4, whole_second};
use super::Shared;

/// What the segment format of this fake is called inside a snapshot (`version.info`).
const VERSION_INFO: &[u8] = b"0.4.2";

/// A tar of regular files with GNU headers (as Qdrant's snapshots are), no directories.
pub(crate) fn tar_of(members: &[(String, Vec<u8>, u64)], mode: u32) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mtime) in members {
        let mut header = tar::Header::new_gnu();
        header.set_path(path)?;
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(*mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, data.as_slice())?;
    }
    builder.into_inner()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The bytes of a collection snapshot: the files Qdrant puts at the top (`config.json`,
/// `payload_index.json`, `version.info`, …) and shard 0 with one segment tar that holds the
/// points. The segment tar carries the current time and a random name, so no two snapshots
/// are the same bytes — as on a real server.
pub(crate) fn build_snapshot(
    collection: &Collection,
    peer_id: u64,
    now: SystemTime,
) -> io::Result<Vec<u8>> {
    let mtime = secs(now);
    let mut points = Vec::new();
    for point in collection.points.values() {
        serde_json::to_writer(&mut points, &point.to_storage())?;
        points.push(b'\n');
    }
    let segment_info = json!({"version": collection.op_seq, "points": collection.points.len()});
    let segment = tar_of(
        &[
            (
                "snapshot/files/segment.json".into(),
                serde_json::to_vec(&segment_info)?,
                mtime,
            ),
            ("snapshot/files/points.jsonl".into(), points, mtime),
            (
                "snapshot/files/version.info".into(),
                VERSION_INFO.to_vec(),
                mtime,
            ),
        ],
        0o644,
    )?;
    let mut config = collection.config.clone();
    if let Value::Object(c) = &mut config {
        c.insert("uuid".into(), Value::Null);
    }
    let replica_state = json!({
        "is_local": true,
        "this_peer_id": peer_id,
        "peers": {peer_id.to_string(): "Active"}
    });
    let payload_index = json!({"schema": collection.indexes});
    tar_of(
        &[
            (format!("0/segments/{}.tar", uuid_v4()), segment, 0),
            (
                "0/replica_state.json".into(),
                serde_json::to_vec(&replica_state)?,
                0,
            ),
            (
                "0/shard_config.json".into(),
                br#"{"type":"ReplicaSet"}"#.to_vec(),
                0,
            ),
            ("version.info".into(), VERSION_INFO.to_vec(), 0),
            ("config.json".into(), serde_json::to_vec(&config)?, 0),
            ("shard_key_mapping.json".into(), b"[]".to_vec(), 0),
            (
                "payload_index.json".into(),
                serde_json::to_vec(&payload_index)?,
                0,
            ),
        ],
        0o644,
    )
}

fn checksum_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checksum");
    PathBuf::from(name)
}

/// Writes a file with the given mtime.
pub(crate) fn write_with_mtime(path: &Path, data: &[u8], mtime: SystemTime) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(data)?;
    file.set_modified(mtime)?;
    file.sync_all()
}

/// Stores a snapshot as Qdrant's `store_file` does: checksum sidecar first, then the file,
/// renamed into place (a same-named file is replaced). Returns its description.
fn store_file(
    bytes: &[u8],
    target: &Path,
    now: SystemTime,
    wrong_checksum: bool,
) -> io::Result<Value> {
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut checksum = sha256_hex(bytes);
    if wrong_checksum {
        checksum = sha256_hex(checksum.as_bytes());
    }
    write_with_mtime(&checksum_path(target), checksum.as_bytes(), now)?;
    let tmp = target.with_extension(format!("tmp-{}", uuid_v4()));
    write_with_mtime(&tmp, bytes, now)?;
    fs::rename(&tmp, target)?;
    description(target)
}

/// A `SnapshotDescription` read from the file system.
pub(crate) fn description(path: &Path) -> io::Result<Value> {
    let meta = fs::metadata(path)?;
    let mut out = Map::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.insert("name".into(), json!(name));
    out.insert(
        "creation_time".into(),
        json!(creation_time(meta.modified()?)),
    );
    out.insert("size".into(), json!(meta.len()));
    if let Ok(checksum) = fs::read_to_string(checksum_path(path)) {
        out.insert("checksum".into(), json!(checksum));
    }
    Ok(Value::Object(out))
}

/// The `*.snapshot` files of a directory, in directory order.
fn list_dir(dir: &Path) -> Result<Value, QError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(json!([])),
        Err(e) => return Err(QError::io(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(QError::io)?.path();
        if !path.is_dir() && path.extension().is_some_and(|e| e == "snapshot") {
            out.push(description(&path).map_err(QError::io)?);
        }
    }
    Ok(Value::Array(out))
}

/// `get_snapshot_path`: the name must resolve to a file inside `dir`.
fn resolve_in(dir: &Path, shown_dir: &str, name: &str) -> Result<PathBuf, QError> {
    let absolute_dir = dir
        .canonicalize()
        .map_err(|_| QError::no_snapshot(format!("Snapshot directory: {shown_dir}")))?;
    let absolute = absolute_dir
        .join(name)
        .canonicalize()
        .map_err(|_| QError::no_snapshot(format!("Snapshot {name}")))?;
    if !absolute.starts_with(&absolute_dir) || !absolute.is_file() {
        return Err(QError::no_snapshot(format!("Snapshot {name}")));
    }
    Ok(absolute)
}

fn collection_dir(shared: &Shared, name: &str) -> PathBuf {
    shared.snapshots.join(name)
}

fn require_collection(shared: &Shared, name: &str) -> Result<(), QError> {
    if shared.state().collections.contains_key(name) {
        Ok(())
    } else {
        Err(QError::no_collection(name))
    }
}

/// Creates a snapshot of a collection now, honouring the fault knobs.
pub(crate) fn create_collection_snapshot(
    shared: &Shared,
    name: &str,
    wrong_checksum: bool,
) -> Result<Value, QError> {
    let collection = shared
        .state()
        .collections
        .get(name)
        .cloned()
        .ok_or_else(|| QError::no_collection(name))?;
    let (delay, failing) = {
        let faults = shared.faults();
        (faults.snapshot_delay, faults.failing.contains(name))
    };
    if delay > Duration::ZERO {
        std::thread::sleep(delay);
    }
    if failing {
        return Err(QError::io("No space left on device (os error 28)"));
    }
    let now = shared.clock.now();
    let snapshot_name = format!("{name}-{}-{}.snapshot", shared.peer_id, name_time(now));
    let bytes = build_snapshot(&collection, shared.peer_id, now).map_err(QError::io)?;
    let target = collection_dir(shared, name).join(&snapshot_name);
    store_file(&bytes, &target, whole_second(now), wrong_checksum).map_err(QError::io)
}

/// `GET /collections/{name}/snapshots`.
pub(crate) fn list(ctx: &Ctx, name: &str) -> Response {
    let result = require_collection(ctx.shared, name)
        .and_then(|()| list_dir(&collection_dir(ctx.shared, name)));
    ctx.reply(result)
}

/// `POST /collections/{name}/snapshots` (default `wait=true`).
pub(crate) fn create(ctx: &Ctx, name: &str) -> Response {
    let setup = (|| -> Result<_, QError> {
        let wait = ctx.query().wait(true)?;
        ctx.access.require_manage()?;
        Ok(wait)
    })();
    let wait = match setup {
        Ok(wait) => wait,
        Err(e) => return e.json(ctx.elapsed()),
    };
    let wrong = std::mem::take(&mut ctx.shared.faults().wrong_checksum_next);
    let name = name.to_owned();
    ctx.run_or_accept(wait, format!("snapshot of {name}"), move |shared| {
        create_collection_snapshot(shared, &name, wrong)
    })
}

/// How a file is served: its content type and disposition, as actix-files guesses them from
/// the extension.
fn content_type_of(name: &str) -> (&'static str, &'static str) {
    let ext = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => ("application/json", "inline"),
        "txt" => ("text/plain", "inline"),
        "html" | "htm" => ("text/html", "inline"),
        "tar" => ("application/x-tar", "attachment"),
        "gz" => ("application/gzip", "attachment"),
        "zip" => ("application/zip", "attachment"),
        _ => ("application/octet-stream", "attachment"),
    }
}

/// Parses an IMF-fixdate (`Thu, 26 Nov 2026 10:14:24 GMT`).
fn parse_http_date(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // days_from_civil
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
}

/// A byte range of a file of `len` bytes (`bytes=a-b`, `bytes=a-`, `bytes=-n`; the first of
/// several), or `None` if it is not satisfiable.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (start, end) = first.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        let n: u64 = end.parse().ok()?;
        if n == 0 || len == 0 {
            return None;
        }
        let n = n.min(len);
        return Some((len - n, n));
    }
    let start: u64 = start.parse().ok()?;
    if start >= len {
        return None;
    }
    let end = if end.is_empty() {
        len - 1
    } else {
        let end: u64 = end.parse().ok()?;
        if end < start {
            return None;
        }
        end.min(len - 1)
    };
    Some((start, end - start + 1))
}

/// Serves a file as `NamedFile` does.
fn serve_file(shared: &Shared, ctx: &Ctx, path: &Path) -> Response {
    let open = || -> io::Result<(File, fs::Metadata)> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok((file, meta))
    };
    let (mut file, meta) = match open() {
        Ok(x) => x,
        Err(e) => return QError::io(e).text(),
    };
    let len = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let etag = format!(
        "\"{:x}:{:x}:{:x}:{:x}\"",
        meta.ino(),
        len,
        meta.mtime(),
        meta.mtime_nsec()
    );
    let last_modified = http_date(mtime);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (content_type, disposition) = content_type_of(&name);
    let mut headers = vec![
        ("content-type".to_owned(), content_type.to_owned()),
        (
            "content-disposition".to_owned(),
            format!("{disposition}; filename=\"{name}\""),
        ),
        ("accept-ranges".to_owned(), "bytes".to_owned()),
        ("etag".to_owned(), etag.clone()),
        ("last-modified".to_owned(), last_modified),
    ];
    let request = ctx.request;
    let mtime_secs = secs(mtime);
    if let Some(want) = request.header("if-match") {
        if want.trim() != "*" && !want.split(',').any(|t| t.trim() == etag) {
            return Response::empty(412);
        }
    } else if let Some(since) = request
        .header("if-unmodified-since")
        .and_then(parse_http_date)
    {
        if mtime_secs > since {
            return Response::empty(412);
        }
    }
    let not_modified = match request.header("if-none-match") {
        Some(tags) => tags.trim() == "*" || tags.split(',').any(|t| t.trim() == etag),
        None => request
            .header("if-modified-since")
            .and_then(parse_http_date)
            .is_some_and(|since| mtime_secs <= since),
    };
    if not_modified {
        headers.retain(|(k, _)| k == "etag" || k == "last-modified");
        return Response::new(304, headers, Vec::new());
    }
    let mut status = 200;
    let (mut start, mut length) = (0, len);
    if let Some(range) = request.header("range") {
        match parse_range(range, len) {
            Some((s, l)) => {
                status = 206;
                start = s;
                length = l;
                headers.push((
                    "content-range".to_owned(),
                    format!("bytes {}-{}/{len}", s, s + l - 1),
                ));
                headers.push(("content-encoding".to_owned(), "identity".to_owned()));
            }
            None => {
                let mut response = Response::empty(416);
                response
                    .headers
                    .push(("content-range".to_owned(), format!("bytes */{len}")));
                return response;
            }
        }
    }
    if let Err(e) = file.seek(SeekFrom::Start(start)) {
        return QError::io(e).text();
    }
    let mut response = Response::new(status, headers, Vec::new());
    response.body = Body::File { file, len: length };
    response.cut_after = shared.faults().cut_next_download.take();
    response
}

/// `GET /collections/{name}/snapshots/{snapshot}`: errors in plain text.
pub(crate) fn download(ctx: &Ctx, name: &str, snapshot: &str) -> Response {
    let dir = collection_dir(ctx.shared, name);
    let path = require_collection(ctx.shared, name)
        .and_then(|()| resolve_in(&dir, &dir.display().to_string(), snapshot));
    match path {
        Ok(path) => serve_file(ctx.shared, ctx, &path),
        Err(e) => e.text(),
    }
}

fn remove_snapshot(path: &Path) -> Result<Value, QError> {
    fs::remove_file(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => QError::no_snapshot(format!("Snapshot {path:?}")),
        _ => QError::io(e),
    })?;
    // A snapshot without sidecar (an upload) is deleted all the same.
    let _ = fs::remove_file(checksum_path(path));
    Ok(result_true())
}

/// `DELETE /collections/{name}/snapshots/{snapshot}` (default `wait=true`).
pub(crate) fn delete(ctx: &Ctx, name: &str, snapshot: &str) -> Response {
    let setup = (|| -> Result<_, QError> {
        let wait = ctx.query().wait(true)?;
        ctx.access.require_manage()?;
        Ok(wait)
    })();
    let wait = match setup {
        Ok(wait) => wait,
        Err(e) => return e.json(ctx.elapsed()),
    };
    let (name, snapshot) = (name.to_owned(), snapshot.to_owned());
    ctx.run_or_accept(
        wait,
        format!("delete snapshot {snapshot} of {name}"),
        move |shared| {
            require_collection(shared, &name)?;
            let dir = collection_dir(shared, &name);
            let path = resolve_in(&dir, &dir.display().to_string(), &snapshot)?;
            remove_snapshot(&path)
        },
    )
}

// --- full storage -------------------------------------------------------------------

/// `GET /snapshots` (the read-only key may list).
pub(crate) fn list_full(ctx: &Ctx) -> Response {
    ctx.reply(list_dir(&ctx.shared.snapshots))
}

fn create_full_snapshot(shared: &Shared, wrong_checksum: bool) -> Result<Value, QError> {
    let names: Vec<String> = shared.state().collections.keys().cloned().collect();
    let mut created = Vec::new();
    for name in &names {
        let description = create_collection_snapshot(shared, name, false)?;
        let snapshot = description["name"].as_str().unwrap_or_default().to_owned();
        created.push((name.clone(), snapshot));
    }
    let now = shared.clock.now();
    let mapping: Map<String, Value> = created.iter().map(|(c, s)| (c.clone(), json!(s))).collect();
    let config = json!({"collections_mapping": mapping, "collections_aliases": {}});
    let mut members = Vec::new();
    for (collection, snapshot) in &created {
        let path = collection_dir(shared, collection).join(snapshot);
        let bytes = fs::read(&path).map_err(QError::io)?;
        // Moved out of the collection's directory: its `.checksum` sidecar stays behind.
        fs::remove_file(&path).map_err(QError::io)?;
        members.push((snapshot.clone(), bytes, secs(now)));
    }
    members.push((
        "config.json".to_owned(),
        serde_json::to_vec_pretty(&config).map_err(QError::io)?,
        secs(now),
    ));
    let bytes = tar_of(&members, 0o600).map_err(QError::io)?;
    let target = shared
        .snapshots
        .join(format!("full-snapshot-{}.snapshot", name_time(now)));
    store_file(&bytes, &target, whole_second(now), wrong_checksum).map_err(QError::io)
}

/// `POST /snapshots` (default `wait=true`).
pub(crate) fn create_full(ctx: &Ctx) -> Response {
    let setup = (|| -> Result<_, QError> {
        let wait = ctx.query().wait(true)?;
        ctx.access.require_manage()?;
        Ok(wait)
    })();
    let wait = match setup {
        Ok(wait) => wait,
        Err(e) => return e.json(ctx.elapsed()),
    };
    let wrong = std::mem::take(&mut ctx.shared.faults().wrong_checksum_next);
    ctx.run_or_accept(wait, "full snapshot".to_owned(), move |shared| {
        create_full_snapshot(shared, wrong)
    })
}

/// `GET /snapshots/{name}`: errors in plain text.
pub(crate) fn download_full(ctx: &Ctx, name: &str) -> Response {
    let dir = &ctx.shared.snapshots;
    match resolve_in(dir, &dir.display().to_string(), name) {
        Ok(path) => serve_file(ctx.shared, ctx, &path),
        Err(e) => e.text(),
    }
}

/// `DELETE /snapshots/{name}` (default `wait=true`).
pub(crate) fn delete_full(ctx: &Ctx, name: &str) -> Response {
    let setup = (|| -> Result<_, QError> {
        let wait = ctx.query().wait(true)?;
        ctx.access.require_manage()?;
        Ok(wait)
    })();
    let wait = match setup {
        Ok(wait) => wait,
        Err(e) => return e.json(ctx.elapsed()),
    };
    let name = name.to_owned();
    ctx.run_or_accept(
        wait,
        format!("delete full snapshot {name}"),
        move |shared| {
            let dir = &shared.snapshots;
            let path = resolve_in(dir, &dir.display().to_string(), &name)?;
            remove_snapshot(&path)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_actix_reads_them() {
        assert_eq!(parse_range("bytes=0-99", 84480), Some((0, 100)));
        assert_eq!(parse_range("bytes=84400-", 84480), Some((84400, 80)));
        assert_eq!(parse_range("bytes=-10", 84480), Some((84470, 10)));
        assert_eq!(parse_range("bytes=0-999999", 100), Some((0, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn http_dates_read_back() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_688_064);
        assert_eq!(parse_http_date(&http_date(t)), Some(1_795_688_064));
    }
}
