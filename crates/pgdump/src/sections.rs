//! A restore into a database made for it, in pg_dump's three sections, each table's rows
//! spread over several COPY connections.
//!
//! Why: `pg_restore -j` gives each table to one job, and one COPY is one server backend,
//! so a dump whose bulk is one table (an AI platform's chunks with their embeddings)
//! restores at the speed of one core however many jobs run. Two COPYs of half the rows
//! each took 0.52x the time of one COPY of them all (2 cores, a 248 MB database, 120 989
//! chunks with 384-float embeddings, 2 pairs).
//!
//! How, in the order pg_dump documents for `--section`:
//! 1. `pre-data` (tables, types, functions) by pg_restore;
//! 2. the `TABLE DATA` entries written as one script by one pg_restore (`-L` them, `-f -`)
//!    and their rows dealt to the connections ([`crate::deal`]); the other data entries
//!    (sequence values, large objects), and the tables too when the script is not plain
//!    COPYs, by pg_restore;
//! 3. `post-data` (indexes, constraints, triggers) by `pg_restore -j`.
//!
//! Nothing runs in one transaction: a failure anywhere is the caller's to undo, by dropping
//! the database it created.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use toolkit::child::{self, ChildError, StreamOptions};
use toolkit::progress::Hidden;

use crate::conn::{dbname_conninfo, Pg};
use crate::deal::{copy_batches, Dealer, NotPlainCopy};
use crate::error::Error;

/// Batches queued per connection beyond the one it is sending.
const QUEUED: usize = 2;

/// A pg_restore into `target` with the flags every restore uses.
pub(crate) fn pg_restore(pg: &Pg, target: &str, no_owner: bool) -> Command {
    let mut cmd = pg.tool("pg_restore");
    cmd.args(["--exit-on-error", "--no-password"])
        .arg(format!("--dbname={}", dbname_conninfo(target)));
    if no_owner {
        cmd.args(["--no-owner", "--no-privileges"]);
    }
    cmd
}

/// What a pg_restore that succeeded said: its warnings, if any.
pub(crate) fn warnings_of(said: child::Said) -> Vec<String> {
    [said.stderr, said.stdout]
        .into_iter()
        .filter(|w| !w.is_empty())
        .collect()
}

/// Restores `file` into the empty database `target` with `jobs` connections for the rows
/// and `jobs` pg_restore jobs for the indexes. Returns pg_restore's warnings.
pub(crate) fn restore(
    pg: &Pg,
    target: &str,
    file: &Path,
    jobs: u16,
    no_owner: bool,
) -> Result<Vec<String>, Error> {
    let mut warnings = Vec::new();
    let mut said = |s: child::Said| warnings.extend(warnings_of(s));
    said(child::run(
        pg_restore(pg, target, no_owner)
            .arg("--section=pre-data")
            .arg(file),
    )?);

    let (tables, mut left): (Vec<String>, Vec<String>) = data_entries(pg, file)?
        .into_iter()
        .partition(|entry| is_table_data(entry));
    if !tables.is_empty() && !copy_tables(pg, target, file, &tables, jobs)? {
        left.extend(tables);
    }
    if !left.is_empty() {
        let list = list_file(&left)?;
        said(child::run(
            pg_restore(pg, target, no_owner)
                .arg("--use-list")
                .arg(list.path())
                .arg(file),
        )?);
    }

    said(child::run(
        pg_restore(pg, target, no_owner)
            .args(["--section=post-data", &format!("--jobs={}", jobs.max(1))])
            .arg(file),
    )?);
    Ok(warnings)
}

/// The dump's data entries, as `pg_restore -l` lists them (one line each).
fn data_entries(pg: &Pg, file: &Path) -> Result<Vec<String>, Error> {
    let mut list = Vec::new();
    let mut cmd = pg.tool("pg_restore");
    cmd.args(["--list", "--section=data"]).arg(file);
    child::stream_stdout(
        &mut cmd,
        &mut list,
        "memory",
        StreamOptions::default(),
        &Hidden,
    )?;
    Ok(String::from_utf8_lossy(&list)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Whether an entry line of `pg_restore -l` (`3356; 0 16407 TABLE DATA public chunks
/// postgres`) is a table's rows.
fn is_table_data(entry: &str) -> bool {
    let Some((_id, rest)) = entry.split_once("; ") else {
        return false;
    };
    // The table's oid pair, then the entry's type.
    rest.splitn(3, ' ')
        .nth(2)
        .is_some_and(|kind| kind.starts_with("TABLE DATA "))
}

/// A list file for `pg_restore --use-list` holding `entries`.
fn list_file(entries: &[String]) -> Result<tempfile::NamedTempFile, Error> {
    let io = |source| Error::Io {
        what: "cannot write pg_restore's list of entries to a temporary file".into(),
        source,
    };
    let mut list = tempfile::NamedTempFile::new().map_err(io)?;
    for entry in entries {
        writeln!(list, "{entry}").map_err(io)?;
    }
    list.flush().map_err(io)?;
    Ok(list)
}

/// The rows of the table entries `tables`, written by one pg_restore and dealt over `jobs`
/// connections to `target`. Returns `false` (nothing sent) when the script is not plain
/// COPYs, for pg_restore to restore.
fn copy_tables(
    pg: &Pg,
    target: &str,
    file: &Path,
    tables: &[String],
    jobs: u16,
) -> Result<bool, Error> {
    let mut clients = (0..jobs.max(1))
        .map(|_| pg.connect(target))
        .collect::<Result<Vec<_>, _>>()?;
    let list = list_file(tables)?;
    let mut script = pg.tool("pg_restore");
    script
        .arg("--use-list")
        .arg(list.path())
        .arg("--file=-")
        .arg(file);
    let complete = AtomicBool::new(false);
    let (streamed, finished, copied) = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(clients.len());
        let mut workers = Vec::with_capacity(clients.len());
        for client in clients.iter_mut() {
            let (tx, rx) = sync_channel(QUEUED);
            senders.push(tx);
            let complete = &complete;
            workers.push(scope.spawn(move || copy_batches(client, rx, complete)));
        }
        let mut dealer = Dealer::new(senders);
        let streamed = child::stream_stdout(
            &mut script,
            &mut dealer,
            "the COPY connections",
            StreamOptions::default(),
            &Hidden,
        );
        let finished = dealer.finished();
        if streamed.is_ok() && finished == tables.len() {
            complete.store(true, Ordering::SeqCst);
        }
        drop(dealer); // the connections see the end of their batches
        let copied: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().expect("a COPY connection does not panic"))
            .collect();
        (streamed, finished, copied)
    });
    // A connection's failure is the cause of the stream's.
    for result in copied {
        result?;
    }
    match streamed {
        Ok(_) if finished == tables.len() => Ok(true),
        Ok(_) => Err(Error::Io {
            what: "pg_restore's script of the table data".into(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "it held the rows of {finished} of the {} tables",
                    tables.len()
                ),
            ),
        }),
        Err(ChildError::Io { source, .. })
            if source.get_ref().is_some_and(|e| e.is::<NotPlainCopy>()) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_table_data;

    #[test]
    fn table_data_entries_are_told_from_the_others_by_their_type() {
        let cases = [
            ("3356; 0 16407 TABLE DATA public chunks postgres", true),
            ("3356; 0 16407 TABLE DATA public \"a b\" postgres", true),
            ("3357; 0 0 SEQUENCE SET public s_id_seq postgres", false),
            ("3358; 0 0 BLOBS - BLOBS ", false),
            ("3359; 2613 16500 BLOB - 16500 postgres", false),
            (
                "3360; 0 16410 TABLE public \"TABLE DATA x\" postgres",
                false,
            ),
            ("not an entry", false),
        ];
        for (line, table_data) in cases {
            assert_eq!(is_table_data(line), table_data, "{line}");
        }
    }
}
