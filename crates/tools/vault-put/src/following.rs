//! Uploads that start on a producer's `writing` notice, while it still writes the file,
//! and finish on its final record: the upload overlaps the dump instead of following it.
//!
//! The spool file stays the durable copy throughout: the upload is checked against the
//! final record's size and SHA-256 before the object becomes visible, its sidecar is
//! written only then, and the file is deleted only after that — exactly as for a record
//! that arrives complete. A notice that cannot be followed (its file is gone, the vault
//! already holds something of that id) is dropped with a line on stderr, and its final
//! record is stored the usual way.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use manifest::{Id, Manifest};
use toolkit::cli::{self, quote};
use toolkit::follow::{Follower, Growth, Outcome};
use toolkit::progress::{self, Style};
use vault::crypt::Recipients;
use vault::ops::{self, Following, Stored, Verify};
use vault::{Backend, PutReceipt};

type Upload = vault::Result<(Following, PutReceipt)>;

/// One upload in flight.
struct Active<'scope> {
    growth: Arc<Growth>,
    /// Device and inode of the followed file: the final record must name the same file.
    file: (u64, u64),
    notice: Manifest,
    upload: ScopedJoinHandle<'scope, Upload>,
}

/// The uploads in flight, by id. Dropping it abandons them all (their uploads abort), so
/// an early return never leaves an upload waiting for a record that will not come.
pub(crate) struct Followers<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    backend: &'env dyn Backend,
    recipients: Option<&'env Recipients>,
    style: Style,
    active: HashMap<Id, Active<'scope>>,
}

impl<'scope, 'env> Followers<'scope, 'env> {
    pub(crate) fn new(
        scope: &'scope Scope<'scope, 'env>,
        backend: &'env dyn Backend,
        recipients: Option<&'env Recipients>,
        style: Style,
    ) -> Self {
        Followers {
            scope,
            backend,
            recipients,
            style,
            active: HashMap::new(),
        }
    }

    /// Starts uploading the file `notice` announces, on a thread of its own.
    pub(crate) fn start(&mut self, notice: Manifest) {
        if self.active.contains_key(&notice.id) {
            return;
        }
        let writing = match notice.writing_section() {
            Some(Ok(writing)) => writing,
            Some(Err(e)) => return decline(&notice, &e),
            None => return decline(&notice, "it has no writing section"),
        };
        let following =
            match ops::start_following_with(self.backend, &notice, &writing, self.recipients) {
                Ok(following) => following,
                Err(e) => return decline(&notice, &cli::chain(&e)),
            };
        // The partial, or the complete file if the producer was quicker than this notice.
        let opened = toolkit::fs::open_regular(&writing.partial)
            .or_else(|_| toolkit::fs::open_regular(&writing.path));
        let (file, id) = match opened.and_then(|f| f.metadata().map(|m| (f, m))) {
            Ok((file, meta)) => (file, (meta.dev(), meta.ino())),
            Err(e) => {
                return decline(
                    &notice,
                    &format!("cannot open {}: {e}", quote(&writing.partial)),
                )
            }
        };
        let growth = Growth::new();
        let (backend, style) = (self.backend, self.style);
        let label = format!("upload {}", notice.id);
        let upload = {
            let growth = growth.clone();
            self.scope
                .spawn(move || upload(backend, following, file, growth, style, &label))
        };
        self.active.insert(
            notice.id.clone(),
            Active {
                growth,
                file: id,
                notice,
                upload,
            },
        );
    }

    /// For the final record of a followed notice: the outcome of its upload, finished
    /// (verified, sidecar written). `None` when `record` was not followed, or its upload
    /// was given up (the record names another file): the caller stores it the usual way.
    /// A record that is not `ok` abandons its upload.
    pub(crate) fn finish(
        &mut self,
        record: &Manifest,
        verify: Verify,
    ) -> Option<vault::Result<Stored>> {
        let active = self.active.remove(&record.id)?;
        if !record.is_ok() {
            let why = record
                .error
                .clone()
                .unwrap_or_else(|| format!("the producer reported status {}", record.status));
            abandon(active, why);
            return None;
        }
        let same_file = record.artifact.as_ref().is_some_and(|a| {
            std::fs::metadata(&a.path).is_ok_and(|m| (m.dev(), m.ino()) == active.file)
        });
        if !same_file {
            cli::info(format!(
                "{}: the record names another file than its notice announced; uploading that \
                 file instead",
                record.id
            ));
            abandon(active, "the record names another file");
            return None;
        }
        let artifact = record.artifact.as_ref().expect("checked above");
        active.growth.complete(artifact.bytes, artifact.sha256);
        Some(match active.upload.join().expect("uploads do not panic") {
            Ok((following, receipt)) => {
                ops::finish_following(self.backend, record, following, receipt, verify)
            }
            Err(e) => Err(e),
        })
    }

    /// The notices whose final record never came (the producer's stream ended), their
    /// uploads abandoned: as failed records, to be passed on.
    pub(crate) fn unfinished(&mut self) -> Vec<Manifest> {
        let mut ids: Vec<Id> = self.active.keys().cloned().collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.into_iter()
            .filter_map(|id| self.active.remove(&id))
            .map(|active| {
                let why = format!(
                    "the producer's stream ended without the final record of {}: the artifact \
                     was never completed, its upload was aborted",
                    active.notice.id
                );
                let mut failed = active.notice.clone();
                abandon(active, &why);
                failed.extra.remove("writing");
                failed.fail(why);
                failed
            })
            .collect()
    }
}

impl Drop for Followers<'_, '_> {
    fn drop(&mut self) {
        for (_, active) in self.active.drain() {
            abandon(active, "vault-put stopped");
        }
    }
}

/// Stops an upload: its source errors, the multipart upload is aborted.
fn abandon(active: Active<'_>, why: impl Into<String>) {
    active.growth.abandon(why);
    let _ = active.upload.join();
}

fn decline(notice: &Manifest, why: &str) {
    cli::info(format!(
        "{}: not uploading while it is written ({why}); it is stored when its record arrives",
        notice.id
    ));
}

fn upload(
    backend: &dyn Backend,
    following: Following,
    file: File,
    growth: Arc<Growth>,
    style: Style,
    label: &str,
) -> Upload {
    let progress = progress::for_stderr(style, label);
    let at_end = {
        let growth = growth.clone();
        move || match growth.outcome() {
            Outcome::Complete { bytes, sha256 } => Ok((bytes, sha256)),
            Outcome::Abandoned(why) => Err(why),
            Outcome::Writing => Err("the file ended before its producer finished it".into()),
        }
    };
    let mut source = Follower::new(file, growth);
    let receipt = ops::upload_following(backend, &following, &mut source, &at_end, &*progress);
    progress.finish();
    receipt.map(|receipt| (following, receipt))
}
