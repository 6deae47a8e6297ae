//! Where things live in a vault.
//!
//! ```text
//! {kind}/YYYY/MM/DD/{id}.{ext}                  the artifact, immutable
//! {kind}/YYYY/MM/DD/{id}.{ext}.manifest.json    its sidecar: the manifest, with `vault`
//! ```
//!
//! Kind and date come from the id itself (an [`Id`] is tied to its record's kind and
//! `created_at`), so every object of one backup starts with [`id_prefix`] and one listing
//! of that prefix finds them: that is how "one id, one backup" is checked, and how `--id`
//! goes straight to a backup without scanning its kind. Keys are relative to the vault URL,
//! so `s3://backups/stack` puts them under `stack/` in bucket `backups`.

use std::path::Path;

use manifest::{Id, Manifest};

use crate::error::Result;
use crate::key::ObjectKey;

/// Appended to an artifact's key to name its sidecar manifest.
pub const SIDECAR_SUFFIX: &str = ".manifest.json";

/// The largest sidecar written or read: the same cap as a manifest line on stdin (a
/// sidecar is one manifest), checked before a sidecar is read whole.
pub const SIDECAR_LIMIT: u64 = manifest::ndjson::MAX_LINE as u64;

/// The start of every key of backup `id`: `{kind}/YYYY/MM/DD/{id}.`
pub fn id_prefix(id: &Id) -> String {
    format!("{}/{}/{id}.", id.kind_str(), id.date_path())
}

/// The directory of one day of one kind: `{kind}/YYYY/MM/DD/`.
pub fn day_prefix(id: &Id) -> String {
    format!("{}/{}/", id.kind_str(), id.date_path())
}

/// `{kind}/YYYY/MM/DD/{id}.{ext}` for `manifest`.
pub fn artifact_key(manifest: &Manifest) -> Result<ObjectKey> {
    ObjectKey::new(format!(
        "{}{}",
        id_prefix(&manifest.id),
        extension(manifest)
    ))
}

/// `{kind}/YYYY/MM/DD/{id}.{ext}` for an artifact of `format` that is (or will be) the file
/// `path`: the key [`artifact_key`] gives its record.
pub fn artifact_key_of(id: &Id, format: &str, path: &Path) -> Result<ObjectKey> {
    ObjectKey::new(format!(
        "{}{}",
        id_prefix(id),
        extension_of(id, format, path)
    ))
}

/// The extension of an artifact: fixed by its format for the formats stackvault writes,
/// from the artifact's file name otherwise (a newer producer's format), `bin` if neither
/// gives one.
pub fn extension(manifest: &Manifest) -> String {
    match &manifest.artifact {
        Some(artifact) => extension_of(&manifest.id, &artifact.format, &artifact.path),
        None => "bin".to_owned(),
    }
}

/// Where the bytes every artifact of `format` starts with sit, and what they are, for a
/// check of a download without restoring it (`vault-get --check-format`); `None` for a
/// format without fixed leading bytes or one this version does not know.
pub fn format_magic(format: &str) -> Option<(usize, &'static [u8])> {
    match format {
        "pg_dump/custom" => Some((0, b"PGDMP")),
        // A tar: POSIX ("ustar\0") and GNU ("ustar ") headers both start so.
        "qdrant/snapshot" => Some((257, b"ustar")),
        "neo4j/dump" => Some((0, b"DZV1")),
        "neo4j/cypher-jsonl+gzip" => Some((0, &[0x1f, 0x8b])),
        "neo4j/cypher-jsonl+zstd" => Some((0, &[0x28, 0xb5, 0x2f, 0xfd])),
        _ => None,
    }
}

fn extension_of(id: &Id, format: &str, path: &Path) -> String {
    let known = match format {
        "pg_dump/custom" => Some("dump"),
        "qdrant/snapshot" => Some("snapshot"),
        "neo4j/dump" => Some("dump"),
        "neo4j/cypher-jsonl" => Some("jsonl"),
        "neo4j/cypher-jsonl+gzip" => Some("jsonl.gz"),
        "neo4j/cypher-jsonl+zstd" => Some("jsonl.zst"),
        _ => None,
    };
    if let Some(ext) = known {
        return ext.to_owned();
    }
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = match file_name
        .strip_prefix(id.as_str())
        .and_then(|r| r.strip_prefix('.'))
    {
        Some(rest) => rest,
        None => file_name.rsplit_once('.').map(|(_, e)| e).unwrap_or(""),
    };
    let clean = ext.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    if ext.is_empty() || !clean || ext.starts_with('.') || ext.ends_with('.') || ext.contains("..")
    {
        "bin".to_owned()
    } else {
        ext.to_owned()
    }
}

/// The sidecar of an artifact key.
pub fn sidecar_key(artifact: &ObjectKey) -> ObjectKey {
    ObjectKey::new(format!("{artifact}{SIDECAR_SUFFIX}")).expect("suffix keeps a key valid")
}

/// The artifact key a sidecar key describes, or `None` for keys that are not sidecars.
pub fn artifact_of_sidecar(sidecar: &ObjectKey) -> Option<ObjectKey> {
    let artifact = sidecar.as_str().strip_suffix(SIDECAR_SUFFIX)?;
    ObjectKey::new(artifact).ok()
}

/// The id a key of the layout belongs to (`…/{id}.{ext}[.manifest.json]`), if it has one.
pub fn id_of_key(key: &ObjectKey) -> Option<Id> {
    let name = key.file_name();
    let id = name.split_once('.')?.0;
    let id = Id::parse(id).ok()?;
    key.as_str().starts_with(&id_prefix(&id)).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::time::Timestamp;
    use manifest::{Artifact, Kind, Name};

    fn manifest(name: &str, format: &str, file: Option<&str>) -> Manifest {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let mut m = Manifest::new(Kind::Postgres, Some(&Name::new(name).unwrap()), at);
        m.artifact = file.map(|f| Artifact {
            path: format!("/spool/{f}").into(),
            format: format.into(),
            bytes: 0,
            sha256: manifest::Sha256::of(b""),
            extra: Default::default(),
        });
        m
    }

    #[test]
    fn format_magics() {
        for (format, expected) in [
            ("pg_dump/custom", Some((0, &b"PGDMP"[..]))),
            ("qdrant/snapshot", Some((257, &b"ustar"[..]))),
            ("neo4j/dump", Some((0, &b"DZV1"[..]))),
            (
                "neo4j/cypher-jsonl+zstd",
                Some((0, &[0x28, 0xb5, 0x2f, 0xfd][..])),
            ),
            ("neo4j/cypher-jsonl", None),
            ("something/new", None),
        ] {
            assert_eq!(format_magic(format), expected, "{format}");
        }
    }

    #[test]
    fn table_of_keys() {
        let day = "postgres/2025/01/30";
        let cases = [
            (
                "app",
                "pg_dump/custom",
                Some("postgres_app_20250130_020000.dump"),
                format!("{day}/postgres_app_20250130_020000.dump"),
            ),
            (
                "app",
                "pg_dump/custom",
                Some("whatever.txt"),
                format!("{day}/postgres_app_20250130_020000.dump"),
            ),
            (
                "p1",
                "x/tarball",
                Some("postgres_p1_20250130_020000.tar.gz"),
                format!("{day}/postgres_p1_20250130_020000.tar.gz"),
            ),
            (
                "p1",
                "x/other",
                Some("other.snapshot"),
                format!("{day}/postgres_p1_20250130_020000.snapshot"),
            ),
            (
                "p1",
                "x/other",
                Some("noext"),
                format!("{day}/postgres_p1_20250130_020000.bin"),
            ),
            (
                "p1",
                "x/other",
                Some("postgres_p1_20250130_020000.a..b"),
                format!("{day}/postgres_p1_20250130_020000.bin"),
            ),
            (
                "p1",
                "x/other",
                None,
                format!("{day}/postgres_p1_20250130_020000.bin"),
            ),
        ];
        for (name, format, file, want) in cases {
            let m = manifest(name, format, file);
            assert_eq!(
                artifact_key(&m).unwrap().as_str(),
                want,
                "{name} {format} {file:?}"
            );
            assert!(want.starts_with(&id_prefix(&m.id)));
        }
    }

    #[test]
    fn sidecars_pair_with_artifacts_and_keys_name_their_ids() {
        let a = ObjectKey::new("postgres/2025/01/30/postgres_p1_20250130_020000.dump").unwrap();
        let s = sidecar_key(&a);
        assert_eq!(
            s.as_str(),
            "postgres/2025/01/30/postgres_p1_20250130_020000.dump.manifest.json"
        );
        assert_eq!(artifact_of_sidecar(&s), Some(a.clone()));
        assert_eq!(artifact_of_sidecar(&a), None);
        assert_eq!(
            id_of_key(&s).unwrap().as_str(),
            "postgres_p1_20250130_020000"
        );
        let misplaced =
            ObjectKey::new("qdrant/2025/01/30/postgres_p1_20250130_020000.dump").unwrap();
        assert_eq!(
            id_of_key(&misplaced),
            None,
            "an id under the wrong kind or date is not ours"
        );
    }
}
