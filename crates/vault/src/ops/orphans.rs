//! What a vault holds that is not a backup: an artifact without its sidecar, a sidecar
//! without its artifact, an upload that was never finished. Found with their ages, for
//! `vault-get --list` to warn about and `vault-prune` to sweep.
//!
//! A store writes the artifact, then the sidecar; a removal deletes the sidecar, then the
//! artifact ([`super::remove_backup`]). So an interruption leaves at most an artifact
//! without a sidecar — never a listed backup whose artifact is gone — and a store in
//! progress looks like an orphan for a moment: sweep only what is older than a grace period.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::backend::{Backend, Incomplete};
use crate::error::Result;
use crate::key::ObjectKey;
use crate::layout::{artifact_of_sidecar, sidecar_key, SIDECAR_SUFFIX};

/// What kind of leftover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrphanKind {
    /// An artifact whose sidecar is missing: a store interrupted before the sidecar, or a
    /// removal interrupted after it. Not listed as a backup.
    ArtifactWithoutSidecar,
    /// A sidecar whose artifact is missing: the catalogue lists a backup that cannot be
    /// restored (deleted behind the vault's back).
    SidecarWithoutArtifact,
    /// An upload never completed nor aborted (S3 multipart upload, directory temp file).
    Unfinished(Incomplete),
}

/// One leftover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// The object's key (for an unfinished upload, the key it was meant for).
    pub key: ObjectKey,
    /// What it is.
    pub kind: OrphanKind,
    /// Its size, when it is an object.
    pub size: Option<u64>,
    /// When it was written or started, if known.
    pub since: Option<SystemTime>,
}

impl Orphan {
    /// How old it is (zero when unknown or in the future).
    pub fn age(&self) -> Duration {
        self.since
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default()
    }

    /// One word for listings.
    pub fn label(&self) -> &'static str {
        match self.kind {
            OrphanKind::ArtifactWithoutSidecar => "artifact-without-sidecar",
            OrphanKind::SidecarWithoutArtifact => "sidecar-without-artifact",
            OrphanKind::Unfinished(_) => "unfinished-upload",
        }
    }
}

/// Every leftover under `prefix` (empty for the whole vault), sorted by key.
pub fn orphans(backend: &dyn Backend, prefix: &str) -> Result<Vec<Orphan>> {
    let objects = backend.list(prefix)?;
    let keys: BTreeSet<&ObjectKey> = objects.iter().map(|o| &o.key).collect();
    let mut out = Vec::new();
    for object in &objects {
        let kind = if object.key.as_str().ends_with(SIDECAR_SUFFIX) {
            match artifact_of_sidecar(&object.key) {
                Some(artifact) if !keys.contains(&artifact) => OrphanKind::SidecarWithoutArtifact,
                _ => continue,
            }
        } else if !keys.contains(&sidecar_key(&object.key)) {
            OrphanKind::ArtifactWithoutSidecar
        } else {
            continue;
        };
        out.push(Orphan {
            key: object.key.clone(),
            kind,
            size: Some(object.size),
            since: object.modified,
        });
    }
    for upload in backend.incomplete(prefix)? {
        out.push(Orphan {
            key: upload.key.clone(),
            since: upload.started,
            size: None,
            kind: OrphanKind::Unfinished(upload),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key).then(a.label().cmp(b.label())));
    Ok(out)
}

/// Removes a leftover: deletes the object, or aborts the upload (refused while a live
/// process is still writing it).
pub fn sweep(backend: &dyn Backend, orphan: &Orphan) -> Result<()> {
    match &orphan.kind {
        OrphanKind::ArtifactWithoutSidecar | OrphanKind::SidecarWithoutArtifact => {
            backend.delete(&orphan.key)
        }
        OrphanKind::Unfinished(upload) => backend.abort(upload),
    }
}
