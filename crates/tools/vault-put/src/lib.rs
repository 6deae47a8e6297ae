//! `vault-put`: uploads the artifact each manifest names into the vault, verifies it,
//! writes the sidecar, and passes the manifest on with a `vault` section.

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use toolkit::cli::{self, EXIT_CODES_HELP};
use toolkit::progress;
use vault::args::VaultArgs;
use vault::ops::{self, Verify};

const AFTER_HELP: &str = "\
Each artifact goes to {prefix}/{kind}/YYYY/MM/DD/{id}.{ext}, with its manifest beside it as
{…}.manifest.json, so the vault lists and restores without any other catalogue. Objects are
never overwritten: a second put of the same id is refused. The spool file is deleted only
after the stored object was verified (--keep keeps it); on any failure it stays, and the
manifest is passed on with \"status\":\"failed\". Manifests that arrive failed are passed on
untouched.

S3 credentials come from the environment only: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN (or MINIO_ACCESS_KEY, MINIO_SECRET_KEY).

Examples:
  dump-pg --dbname app | vault-put --vault s3://backups/stack > run.ndjson
  vault-put --vault file:///srv/vault --keep < manifests.ndjson";

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

    /// How to verify what was stored: read-back re-reads the whole object and compares size
    /// and SHA-256; size compares the size only (the upload is hashed as it is sent either way).
    #[arg(long, value_enum, default_value_t = VerifyArg::ReadBack, value_name = "HOW")]
    verify: VerifyArg,

    /// Never show progress on stderr.
    #[arg(long)]
    no_progress: bool,

    #[command(flatten)]
    vault: VaultArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerifyArg {
    ReadBack,
    Size,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    let backend = cli.vault.open()?;
    let verify = match cli.verify {
        VerifyArg::ReadBack => Verify::ReadBack,
        VerifyArg::Size => Verify::Size,
    };
    let style = progress::style(cli.no_progress);
    let mut out = cli::manifests_out();
    for manifest in cli::manifests_in() {
        let manifest = manifest?;
        if !manifest.is_ok() {
            cli::emit(&mut out, &manifest)?;
            continue;
        }
        let progress = progress::for_stderr(style, &format!("upload {}", manifest.id));
        let stored = ops::store(&*backend, &manifest, verify, &*progress);
        progress.finish();
        match stored {
            Ok(stored) => {
                let path = &manifest.artifact.as_ref().expect("stored has one").path;
                if !cli.keep {
                    if let Err(e) = std::fs::remove_file(path) {
                        cli::info(format!(
                            "warning: stored {}, but cannot delete {}: {e}",
                            manifest.id,
                            path.display()
                        ));
                    }
                }
                cli::emit(&mut out, &stored)?;
            }
            Err(e) => {
                let message = format!(
                    "cannot store {} in {}: {}",
                    manifest.id,
                    backend.location(),
                    cli::chain(&e)
                );
                cli::emit_failed(&mut out, manifest, message)?;
            }
        }
        cli::stop_if_interrupted()?;
    }
    Ok(())
}
