//! Where things live in a vault.
//!
//! ```text
//! {kind}/YYYY/MM/DD/{id}.{ext}                  the artifact, immutable
//! {kind}/YYYY/MM/DD/{id}.{ext}.manifest.json    its sidecar: the manifest, with `vault`
//! ```
//!
//! The date is the manifest's `created_at` in UTC. Keys are relative to the vault URL, so
//! `s3://backups/stack` puts them under `stack/` in bucket `backups`.

use manifest::Manifest;

use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

/// Appended to an artifact's key to name its sidecar manifest.
pub const SIDECAR_SUFFIX: &str = ".manifest.json";

/// `{kind}/YYYY/MM/DD/{id}.{ext}` for `manifest`, where `ext` comes from the artifact's
/// file name (`postgres_app_…dump` → `dump`, `….tar.gz` → `tar.gz`).
pub fn artifact_key(manifest: &Manifest) -> Result<ObjectKey> {
    let id = &manifest.id;
    if id.is_empty()
        || id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("id {id:?} cannot name an object: use letters, digits, '.', '_' and '-'"),
        ));
    }
    let ext = manifest
        .artifact
        .as_ref()
        .and_then(|a| a.path.file_name())
        .and_then(|n| n.to_str())
        .map(|name| extension(name, id))
        .unwrap_or_else(|| "bin".to_owned());
    ObjectKey::new(format!(
        "{}/{}/{id}.{ext}",
        manifest.kind,
        manifest.created_at.date_path()
    ))
}

fn extension(file_name: &str, id: &str) -> String {
    let ext = match file_name.strip_prefix(id).and_then(|r| r.strip_prefix('.')) {
        Some(rest) => rest,
        None => file_name.rsplit_once('.').map(|(_, e)| e).unwrap_or(""),
    };
    let clean = ext.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    if ext.is_empty() || !clean || ext.starts_with('.') || ext.ends_with('.') {
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

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::time::Timestamp;
    use manifest::{Artifact, Kind};

    fn manifest(id: &str, file: Option<&str>) -> Manifest {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let mut m = Manifest::new(id.into(), Kind::Postgres, at);
        m.artifact = file.map(|f| Artifact {
            path: format!("/spool/{f}").into(),
            format: "pg_dump/custom".into(),
            bytes: 0,
            sha256: manifest::Sha256::of(b""),
            extra: Default::default(),
        });
        m
    }

    #[test]
    fn table_of_keys() {
        let cases = [
            (
                "postgres_app_20250130_020000",
                Some("postgres_app_20250130_020000.dump"),
                Some("postgres/2025/01/30/postgres_app_20250130_020000.dump"),
            ),
            (
                "p1",
                Some("p1.tar.gz"),
                Some("postgres/2025/01/30/p1.tar.gz"),
            ),
            (
                "p1",
                Some("other.snapshot"),
                Some("postgres/2025/01/30/p1.snapshot"),
            ),
            ("p1", Some("noext"), Some("postgres/2025/01/30/p1.bin")),
            ("p1", None, Some("postgres/2025/01/30/p1.bin")),
            ("../etc", Some("x.dump"), None),
            ("a/b", Some("x.dump"), None),
            ("", Some("x.dump"), None),
        ];
        for (id, file, want) in cases {
            let got = artifact_key(&manifest(id, file))
                .ok()
                .map(|k| k.to_string());
            assert_eq!(got.as_deref(), want, "{id} {file:?}");
        }
    }

    #[test]
    fn sidecars_pair_with_artifacts() {
        let a = ObjectKey::new("postgres/2025/01/30/p1.dump").unwrap();
        let s = sidecar_key(&a);
        assert_eq!(s.as_str(), "postgres/2025/01/30/p1.dump.manifest.json");
        assert_eq!(artifact_of_sidecar(&s), Some(a.clone()));
        assert_eq!(artifact_of_sidecar(&a), None);
    }
}
