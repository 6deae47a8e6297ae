//! `vault-put`: uploads the artifact each manifest names into the vault, verifies it,
//! writes the sidecar, and passes the manifest on with a `vault` section.

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use manifest::{Manifest, Status};
use serde_json::json;
use toolkit::cli::{self, quote, CommonArgs, EXIT_CODES_HELP};
use toolkit::progress;
use toolkit::spool::SpoolDir;
use vault::args::VaultArgs;
use vault::lock::{LockMode, ObjectLock};
use vault::ops::{self, Verify};
use vault::{Backend, CreateOnly};

mod following;
use following::Followers;

const AFTER_HELP: &str = "\
Each artifact goes to {prefix}/{kind}/YYYY/MM/DD/{id}.{ext}, with its manifest beside it as
{…}.manifest.json, so the vault lists and restores without any other catalogue. The kind and
date come from the id, so one id is one backup: a second put of an id is refused, whatever
the extension.

Objects are never overwritten. On S3 the write itself is create-only (If-None-Match: *):
of two runs storing the same id at once exactly one wins, and the other aborts only its own
multipart upload. Whether the server honours If-None-Match is checked once per run with a
probe object under {prefix}/.stackvault/; AWS S3, MinIO and SeaweedFS 4.48 do. Where a server
ignores it, vault-put says so and falls back to a check before each write, which two
simultaneous runs could race. A directory vault links each finished file into place, which
fails if the name exists.

The spool file is deleted only after the stored object was verified (--keep keeps it), and
only when it lies in the spool directory: a manifest that names a file elsewhere uploads it
and leaves it where it is. On any failure the file stays, and the manifest is passed on with
\"status\":\"failed\" (an unfinished S3 upload that could not be aborted is named in it, as
\"incomplete_upload\"). Manifests that arrive failed, or with a status this version does not
know, are passed on untouched.

A producer run with --announce (dump-pg) prints a \"writing\" notice as each dump starts:
vault-put then uploads the spool file while it is still written, and when the final record
arrives it checks the upload against that record's size and SHA-256 before the object
becomes visible, writes the sidecar and deletes the file, as for any record. A final record
that failed, or input that ends without one, aborts that upload and stores nothing.
Notices are not passed on.

An artifact stored without its sidecar (the sidecar write failed, or the run was killed in
between) is finished by running vault-put again with the same manifest: the stored object is
verified against the manifest's size and SHA-256 and only the sidecar is written.

With --encrypt-to, each artifact is encrypted with age while it streams (no plaintext copy)
and stored as {…}.{ext}.age, a standard age file; the sidecar stays plaintext and records
vault.encryption: the recipients' fingerprints (never a key) and the ciphertext's size and
SHA-256, while vault.bytes and vault.sha256 stay the plaintext's (backup-manifest(5)). The
plaintext is checked against the manifest before the last encrypted chunk is sent, so a
file that changed is never stored. An encrypted artifact left without its sidecar cannot be
vouched for without the key: it is not finished by a second run but left as an orphan for
vault-prune to sweep.

With --lock-days, every artifact and sidecar of the run is stored with S3 Object Lock until
DAYS days after the run started (one date per run, recorded as vault.lock). The bucket must
have Object Lock enabled, which can only be done when it is created (and turns versioning
on); vault-put checks that first and refuses, storing nothing, when it has not.

S3 credentials come from the environment only: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN (or MINIO_ACCESS_KEY, MINIO_SECRET_KEY). AWS_CA_BUNDLE names a CA file for
an endpoint with a private certificate authority.

Examples:
  dump-pg --dbname app | vault-put --vault s3://backups/stack > run.ndjson
  dump-pg --all --announce | vault-put --vault s3://backups/stack
  dump-pg --all | vault-put --vault s3://backups/stack --encrypt-to /etc/stackvault/recipients.txt
  vault-put --vault file:///srv/vault --keep < manifests.ndjson
  vault-put --create-vault < /dev/null";

/// Upload the artifacts that manifests name into the vault, verified.
///
/// Reads manifests on stdin, uploads each artifact, verifies what was stored, writes its
/// sidecar manifest, and prints the manifest with its vault location on stdout.
#[derive(Debug, Parser)]
#[command(name = "vault-put", version, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// Keep the spool file after a verified upload.
    #[arg(long)]
    keep: bool,

    /// How to prove what was stored. checksum: the server checks what it receives — a file
    /// up to --s3-multipart-threshold against the manifest's SHA-256 (one PUT), larger
    /// files and streams against the CRC32 of every part and of the object — and its echo
    /// is compared with what was sent; proves what the server received (a server that
    /// verifies no checksums is read back instead, with a warning). read-back: the whole
    /// object is read back and its SHA-256 compared — proves what the server returns now,
    /// at the cost of a download. size: the stored size only. In every case a source that
    /// is not what its manifest says is refused before the object is created.
    #[arg(long, value_enum, default_value_t = Verify::Checksum, value_name = "HOW")]
    verify: Verify,

    /// Create the vault first if it is missing: the S3 bucket (one that exists must be
    /// ours) or the directory. For set-up (stackvault-setup); with no input, nothing else
    /// happens. Not with --lock-days: a bucket for Object Lock must be created with it
    /// enabled, by its administrator.
    #[arg(long, conflicts_with = "lock_days")]
    create_vault: bool,

    /// Encrypt each artifact with age to the recipients in FILE (X25519 public keys,
    /// age1…, one a line, # comments), while it streams: the object is a standard age file
    /// ({…}.age) that `age -d -i key.txt` opens, and this host needs no secret key. The
    /// sidecar stays plaintext and records the recipients' fingerprints and both SHA-256s.
    #[arg(long, env = "STACKVAULT_AGE_RECIPIENTS", value_name = "FILE")]
    encrypt_to: Option<std::path::PathBuf>,

    /// Lock each artifact and its sidecar with S3 Object Lock for DAYS days from the start
    /// of the run: the server refuses to delete or overwrite them before that date
    /// (recorded as vault.lock). The bucket must have Object Lock enabled; one without it,
    /// or a directory vault, is refused before anything is stored.
    #[arg(long, env = "STACKVAULT_LOCK_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    lock_days: Option<u32>,

    /// With --lock-days: governance (users with s3:BypassGovernanceRetention may still
    /// delete early) or compliance (nobody can, not even the account's root user).
    #[arg(long, env = "STACKVAULT_LOCK_MODE", value_enum, default_value_t = LockMode::Governance,
          value_name = "MODE", requires = "lock_days")]
    lock_mode: LockMode,

    /// Files larger than this are uploaded in parallel parts. Up to it, a file larger than
    /// a part goes in one streamed PUT carrying its manifest's SHA-256
    /// (x-amz-checksum-sha256), which the server checks before it stores anything — where
    /// a probe shows the server refuses a wrong one; elsewhere it goes in parts. It costs a
    /// third of the client CPU of parts and no part buffers (1 GiB to SeaweedFS: 0.5
    /// CPU-seconds and 6 MiB against 1.5 and 46), in about the same time; a retry sends
    /// the file whole again. At most 5GiB, S3's limit for one PUT; 0: always in parts.
    /// Across a WAN, where several connections move more than one, 64MiB may be faster.
    #[arg(long, value_name = "SIZE", default_value = "2GiB",
          value_parser = vault::args::parse_multipart_threshold)]
    s3_multipart_threshold: u64,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    vault: VaultArgs,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let mut cli = Cli::from_arg_matches(matches)?;
    cli.vault.s3_multipart_threshold = cli.s3_multipart_threshold;
    let recipients = match &cli.encrypt_to {
        Some(path) => Some(vault::crypt::Recipients::from_file(path)?),
        None => None,
    };
    if cli.create_vault {
        let created = cli.vault.create()?;
        cli::info(format!("vault {} is ready", created.location()));
    }
    let backend = match cli.lock_days {
        None => cli.vault.open()?,
        Some(days) => {
            let lock = ObjectLock::for_days(cli.lock_mode, days, manifest::time::Timestamp::now());
            let backend = cli.vault.open_locked(lock)?;
            backend.lock()?; // a bucket that cannot lock is refused before any upload
            backend
        }
    };
    // The spool is only needed to know which files are ours to delete.
    let spool = if cli.keep {
        None
    } else {
        Some(cli.common.spool_dir()?)
    };
    let style = cli.common.progress_style();
    let mut out = cli::manifests_out();
    let mut warned_create_only = false;
    let mut warned_fallback = false;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut followers = Followers::new(scope, &*backend, recipients.as_ref(), style);
        for manifest in cli::manifests_in() {
            let manifest = manifest?;
            if manifest.status == Status::Writing {
                followers.start(manifest);
                continue;
            }
            let followed = followers.finish(&manifest, cli.verify);
            if !manifest.is_ok() {
                cli::emit(&mut out, &manifest)?;
                continue;
            }
            if !warned_create_only {
                warned_create_only = true;
                warn_if_not_create_only(&*backend);
            }
            let stored = followed.unwrap_or_else(|| {
                let progress = progress::for_stderr(style, &format!("upload {}", manifest.id));
                let stored = ops::store_with(
                    &*backend,
                    &manifest,
                    cli.verify,
                    recipients.as_ref(),
                    &*progress,
                );
                progress.finish();
                stored
            });
            match stored {
                Ok(stored) => {
                    if stored.fell_back_to_read_back && !warned_fallback {
                        warned_fallback = true;
                        cli::info(format!(
                            "warning: {} verifies no checksums (it echoed none), so each upload \
                             is read back whole to prove it; pass --verify size to skip that",
                            backend.location()
                        ));
                    }
                    if stored.resumed {
                        cli::info(format!(
                            "{}: the artifact was already stored (an earlier upload stopped \
                             before its sidecar); verified it and wrote the sidecar",
                            manifest.id
                        ));
                    }
                    if let Some(spool) = &spool {
                        delete_if_spooled(spool, &manifest);
                    }
                    cli::emit(&mut out, &stored.manifest)?;
                }
                Err(e) => {
                    let message = format!(
                        "cannot store {} in {}: {}",
                        manifest.id,
                        backend.location(),
                        cli::chain(&e)
                    );
                    let mut failed = manifest;
                    if let Some((key, upload_id)) = e.incomplete_upload() {
                        failed.extra.insert(
                            "incomplete_upload".into(),
                            json!({"url": backend.url_of(key), "upload_id": upload_id}),
                        );
                    }
                    cli::emit_failed(&mut out, failed, message)?;
                }
            }
            cli::stop_if_interrupted()?;
        }
        for failed in followers.unfinished() {
            let message = failed.error.clone().unwrap_or_default();
            cli::emit_failed(&mut out, failed, message)?;
        }
        Ok(())
    })
}

/// Deletes the uploaded file if it is the spool's; a file elsewhere (a hand-typed manifest
/// naming any path) is the operator's and stays.
fn delete_if_spooled(spool: &SpoolDir, manifest: &Manifest) {
    let path = &manifest.artifact.as_ref().expect("stored has one").path;
    if !spool.contains(path) {
        cli::info(format!(
            "kept {}: it is not in the spool {}, so it is not vault-put's to delete",
            quote(path),
            spool.path().display()
        ));
        return;
    }
    if let Err(e) = std::fs::remove_file(path) {
        cli::info(format!(
            "warning: stored {}, but cannot delete {}: {e}",
            manifest.id,
            quote(path)
        ));
    }
}

fn warn_if_not_create_only(backend: &dyn Backend) {
    match backend.create_only() {
        Ok(CreateOnly::Atomic) => {}
        Ok(CreateOnly::CheckThenPut) => cli::info(format!(
            "warning: {} ignores If-None-Match, so objects are protected from being \
             overwritten by a check before each write only: two runs storing the same id at \
             the same moment could overwrite each other",
            backend.location()
        )),
        // The put that follows meets the same problem and reports it per record.
        Err(_) => {}
    }
}
