//! The fake `neo4j-admin` and `neo4j` commands (see `admin-exchanges.md` for the real ones):
//! same arguments accepted and refused, same exit codes, same text on the same stream —
//! log lines (`INFO`/`ERROR`) on **stdout**, summaries and progress on stderr.
//!
//! `neo4j-admin`: `--version`, `--help`, `version`, `help`, `database {dump|load|info|check}`
//! with their options, `database --help`, `dbms set-initial-password`. `neo4j`: `start`,
//! `stop`, `status`, `restart`, `console`, `version`. The state is a `NEO4J_HOME` (see
//! [`super::home`]); `neo4j start` runs the fake server (`fake-neo4j serve`) in the
//! background.

pub mod texts;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dump::{self, DumpError, Header};
use super::home::{self, StoreState};
use super::server::Database;

/// Exit code of a run.
pub type Code = i32;

/// The streams and environment of one run.
pub struct Io<'a> {
    /// Standard input.
    pub stdin: &'a mut dyn Read,
    /// Standard output.
    pub stdout: &'a mut dyn Write,
    /// Standard error.
    pub stderr: &'a mut dyn Write,
    /// `NEO4J_HOME`.
    pub home: PathBuf,
}

const VERBOSE_HINT: &str = "Run with '--verbose' for a more detailed error message.\n";

fn now_log() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.3f+0000")
        .to_string()
}

fn log(io: &mut Io, level: &str, class: &str, msg: &str) {
    let pad = if level == "INFO" { "INFO " } else { level };
    let _ = writeln!(io.stdout, "{} {pad} [o.n.c.d.{class}] {msg}", now_log());
}

fn fail(io: &mut Io, msg: &str) -> Code {
    let _ = write!(io.stderr, "{msg}\n{VERBOSE_HINT}");
    1
}

/// One option of a picocli-style command.
struct Spec {
    long: &'static str,
    short: Option<&'static str>,
    kind: Kind,
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Flag,
    /// `--opt[=true|false]`
    OptBool,
    /// `--opt=<value>` / `--opt <value>`
    Value,
}

struct Parsed {
    flags: Vec<(String, String)>,
    positional: Vec<String>,
    help: bool,
}

impl Parsed {
    fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == long)
    }

    fn value(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == long)
            .map(|(_, v)| v.as_str())
    }

    fn bool(&self, long: &str) -> bool {
        self.value(long)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

fn usage_error(io: &mut Io, msg: &str, help: &str) -> Code {
    let _ = write!(io.stderr, "{msg}\n{help}");
    64
}

fn parse(args: &[String], specs: &[Spec], max_positional: usize) -> Result<Parsed, String> {
    let mut p = Parsed {
        flags: Vec::new(),
        positional: Vec::new(),
        help: false,
    };
    let all: Vec<Spec> = specs
        .iter()
        .map(|s| Spec {
            long: s.long,
            short: s.short,
            kind: s.kind,
        })
        .chain([
            Spec {
                long: "--help",
                short: Some("-h"),
                kind: Kind::Flag,
            },
            Spec {
                long: "--verbose",
                short: None,
                kind: Kind::Flag,
            },
            Spec {
                long: "--expand-commands",
                short: None,
                kind: Kind::Flag,
            },
            Spec {
                long: "--additional-config",
                short: None,
                kind: Kind::Value,
            },
        ])
        .collect();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a.starts_with('-') && a.len() > 1 {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (a.clone(), None),
            };
            let Some(spec) = all
                .iter()
                .find(|s| s.long == name || s.short == Some(name.as_str()))
            else {
                return Err(format!("Unknown option: '{a}'"));
            };
            match spec.kind {
                Kind::Flag => {
                    if inline.is_some() {
                        return Err(format!("Unknown option: '{a}'"));
                    }
                    if spec.long == "--help" {
                        p.help = true;
                    }
                    p.flags.push((spec.long.into(), "true".into()));
                }
                Kind::OptBool => {
                    let v = match inline {
                        Some(v) => v,
                        None => match args.get(i) {
                            Some(n)
                                if n.eq_ignore_ascii_case("true")
                                    || n.eq_ignore_ascii_case("false") =>
                            {
                                i += 1;
                                n.clone()
                            }
                            _ => "true".into(),
                        },
                    };
                    if !(v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
                        return Err(format!(
                            "Invalid value for option '{}': '{v}' is not a boolean",
                            spec.long
                        ));
                    }
                    p.flags.push((spec.long.into(), v));
                }
                Kind::Value => {
                    let v = match inline {
                        Some(v) => v,
                        None => match args.get(i) {
                            Some(n) => {
                                i += 1;
                                n.clone()
                            }
                            None => {
                                return Err(format!(
                                    "Missing required parameter for option '{}' (<{}>)",
                                    spec.long,
                                    spec.long.trim_start_matches('-')
                                ));
                            }
                        },
                    };
                    p.flags.push((spec.long.into(), v));
                }
            }
        } else {
            if p.positional.len() >= max_positional {
                return Err(format!("Unmatched argument at index {}: '{a}'", i - 1));
            }
            p.positional.push(a.clone());
        }
    }
    Ok(p)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => m(&p[1..], n) || (!n.is_empty() && m(p, &n[1..])),
            (Some('?'), Some(_)) => m(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

fn running(io: &Io) -> Option<u32> {
    home::running_pid(&io.home)
}

/// Databases the running server has mounted (Community mounts `system` and `neo4j` only).
fn mounted(io: &Io, db: &str) -> bool {
    running(io).is_some() && (db == "neo4j" || db == "system")
}

fn verbose_header(io: &mut Io, args: &[String]) {
    let h = io.home.display().to_string();
    let text = texts::VERBOSE_HEADER.replace("$NEO4J_HOME", &h).replace(
        "org.neo4j.cli.AdminTool database dump neo4j --to-stdout --verbose",
        &format!("org.neo4j.cli.AdminTool {}", args.join(" ")),
    );
    let _ = io.stdout.write_all(text.as_bytes());
}

/// `neo4j-admin …`.
pub fn neo4j_admin(args: &[String], io: &mut Io) -> Code {
    let first = args.first().map(String::as_str);
    match first {
        None => {
            let _ = write!(
                io.stderr,
                "Missing required subcommand\n{}",
                texts::HELP_TOP
            );
            64
        }
        Some("-V") | Some("--version") | Some("version") => {
            let _ = writeln!(io.stdout, "5.3.0");
            0
        }
        Some("-h") | Some("--help") | Some("help") => {
            let _ = io.stdout.write_all(texts::HELP_TOP.as_bytes());
            0
        }
        Some("--verbose") | Some("--expand-commands") => neo4j_admin(&args[1..], io),
        Some("database") => database(&args[1..], io),
        Some("dbms") => dbms(&args[1..], io),
        Some("server") => {
            let _ = writeln!(
                io.stderr,
                "fake-neo4j: 'neo4j-admin server' commands are not implemented by the fake"
            );
            1
        }
        Some(other) if other.starts_with('-') => {
            usage_error(io, &format!("Unknown option: '{other}'"), texts::HELP_TOP)
        }
        Some(other) => usage_error(
            io,
            &format!("Unmatched argument at index 0: '{other}'"),
            texts::HELP_TOP,
        ),
    }
}

fn dbms(args: &[String], io: &mut Io) -> Code {
    match args.first().map(String::as_str) {
        Some("set-initial-password") => {
            let Some(pw) = args.get(1) else {
                let _ = writeln!(io.stderr, "Missing required parameter: '<password>'");
                return 64;
            };
            let mut c = home::read_config(&io.home);
            c.password = pw.clone();
            if let Err(e) = home::write_config(&io.home, &c) {
                return fail(io, &format!("Failed to set password: {e}"));
            }
            let _ = writeln!(
                io.stdout,
                "Changed password for user '{}'. IMPORTANT: this change will only take effect if performed before the database is started for the first time.",
                c.user
            );
            0
        }
        _ => {
            let _ = writeln!(io.stderr, "fake-neo4j: only 'neo4j-admin dbms set-initial-password' is implemented by the fake");
            64
        }
    }
}

fn database(args: &[String], io: &mut Io) -> Code {
    let sub = args.first().map(String::as_str);
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    match sub {
        None => {
            let _ = write!(
                io.stderr,
                "Missing required subcommand\n{}",
                texts::HELP_DATABASE
            );
            64
        }
        Some("-h") | Some("--help") | Some("help") => {
            let _ = io.stdout.write_all(texts::HELP_DATABASE.as_bytes());
            0
        }
        Some("dump") => dump_cmd(rest, io),
        Some("load") => load_cmd(rest, io),
        Some("info") => info_cmd(rest, io),
        Some("check") => check_cmd(rest, io),
        Some(other @ ("import" | "migrate" | "upload")) => {
            let _ = writeln!(
                io.stderr,
                "fake-neo4j: 'neo4j-admin database {other}' is not implemented by the fake"
            );
            1
        }
        Some(other) if other.starts_with('-') => usage_error(
            io,
            &format!("Unknown option: '{other}'"),
            texts::HELP_DATABASE,
        ),
        Some(other) => usage_error(
            io,
            &format!("Unmatched argument at index 1: '{other}'"),
            texts::HELP_DATABASE,
        ),
    }
}

/// The files of a fake dump of `db`.
pub fn store_files(db: &Database) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "neostore".into(),
            b"fake-neo4j store: see graph.json\n".to_vec(),
        ),
        (
            home::STORE_FILE.into(),
            serde_json::to_vec(&home::database_doc(db)).unwrap_or_default(),
        ),
    ]
}

fn progress_lines(out: &mut dyn Write, header: &Header, files_done: u64, bytes_done: u64) {
    let pct = if header.bytes == 0 {
        100.0
    } else {
        bytes_done as f64 * 100.0 / header.bytes as f64
    };
    let _ = writeln!(
        out,
        "Files: {files_done}/{}, data: {pct:>4.1}%",
        header.files
    );
}

/// Writes a dump of `db` with the progress on stderr.
fn write_dump(db: &Database, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let files = store_files(db);
    let header = Header {
        files: files.len() as u64,
        bytes: files.iter().map(|(_, d)| d.len() as u64).sum(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    dump::write(out, &files, now)?;
    let _ = writeln!(err);
    let mut done = 0;
    for (i, (_, d)) in files.iter().enumerate() {
        done += d.len() as u64;
        progress_lines(err, &header, i as u64 + 1, done);
    }
    let _ = writeln!(
        err,
        "Done: {} files, {} processed.",
        header.files,
        dump::human_bytes(header.bytes)
    );
    Ok(())
}

fn dump_cmd(args: &[String], io: &mut Io) -> Code {
    let specs = [
        Spec {
            long: "--overwrite-destination",
            short: None,
            kind: Kind::OptBool,
        },
        Spec {
            long: "--to-path",
            short: None,
            kind: Kind::Value,
        },
        Spec {
            long: "--to-stdout",
            short: None,
            kind: Kind::Flag,
        },
    ];
    let p = match parse(args, &specs, 1) {
        Ok(p) => p,
        Err(m) => return usage_error(io, &m, texts::HELP_DUMP),
    };
    if p.help {
        let _ = io.stdout.write_all(texts::HELP_DUMP.as_bytes());
        return 0;
    }
    if p.has("--to-path") && p.has("--to-stdout") {
        return usage_error(
            io,
            "Error: --to-path=<path>, --to-stdout are mutually exclusive (specify only one)",
            texts::HELP_DUMP,
        );
    }
    let Some(name) = p.positional.first().cloned() else {
        return usage_error(
            io,
            "Missing required parameter: '<database>'",
            texts::HELP_DUMP,
        );
    };
    if p.has("--verbose") {
        let mut full = vec!["database".to_owned(), "dump".to_owned()];
        full.extend(args.iter().cloned());
        verbose_header(io, &full);
    }
    let to_stdout = p.has("--to-stdout");
    let dest_dir: Option<PathBuf> = if to_stdout {
        None
    } else if let Some(path) = p.value("--to-path") {
        let d = PathBuf::from(path);
        if !d.is_dir() {
            return fail(io, &format!("{path} is not an existing directory"));
        }
        Some(d)
    } else {
        let d = io.home.join("data/dumps");
        let _ = std::fs::create_dir_all(&d);
        Some(d)
    };
    let names: Vec<String> = if is_glob(&name) {
        if to_stdout {
            return fail(io, "Globbing in database name can not be used in combination with standard output. Specify a directory as destination or a single target database");
        }
        let mut all: Vec<String> = home::list_databases(&io.home)
            .into_iter()
            .filter(|n| {
                glob_match(&name, n)
                    && matches!(home::read_database(&io.home, n), StoreState::Ok(_))
            })
            .collect();
        // The system database first, as Neo4j does.
        all.sort_by_key(|n| (n != "system", n.clone()));
        all
    } else {
        vec![name.clone()]
    };
    let overwrite = p.bool("--overwrite-destination");
    let mut failed: Vec<String> = Vec::new();
    let mut first_output = true;
    for db in &names {
        if !to_stdout {
            log(
                io,
                "INFO",
                "DumpCommand",
                &format!("Starting dump of database '{db}'"),
            );
        }
        let result: Result<(), String> = (|| {
            let store = match home::read_database(&io.home, db) {
                StoreState::Missing => return Err(format!("Database does not exist: {db}")),
                StoreState::Corrupt(_) => return Err("Error reading transaction logs, recovery not possible. To force the database to start anyway, you can specify 'internal.dbms.tx_log.fail_on_corrupted_log_files=false'. This will try to recover as much as possible and then truncate the corrupt part of the transaction log. Doing this means your database integrity might be compromised, please consider restoring from a consistent backup instead.".into()),
                StoreState::Ok(d) => d,
            };
            if mounted(io, db) {
                return Err(format!(
                    "The database is in use. Stop database '{db}' and try again."
                ));
            }
            if home::needs_recovery(&io.home, db) {
                return Err("Active logical log detected, this might be a source of inconsistencies.\nPlease recover database before running the dump.\nTo perform recovery please start database and perform clean shutdown.".into());
            }
            match &dest_dir {
                None => {
                    let mut buf = Vec::new();
                    let mut progress = Vec::new();
                    write_dump(&store, &mut buf, &mut progress).map_err(|e| e.to_string())?;
                    io.stdout.write_all(&buf).map_err(|e| e.to_string())?;
                    let _ = io.stderr.write_all(&progress);
                }
                Some(dir) => {
                    let file = dir.join(format!("{db}.dump"));
                    if file.exists() && !overwrite {
                        return Err(format!("Archive already exists: {}", file.display()));
                    }
                    let mut buf = Vec::new();
                    let mut progress = Vec::new();
                    write_dump(&store, &mut buf, &mut progress).map_err(|e| e.to_string())?;
                    std::fs::write(&file, &buf).map_err(|e| e.to_string())?;
                    if !first_output {
                        // Later dumps of a glob print only their totals, as recorded.
                        let files = store_files(&store);
                        let bytes: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
                        let _ = writeln!(
                            io.stderr,
                            "\nDone: {} files, {} processed.",
                            files.len(),
                            dump::human_bytes(bytes)
                        );
                    } else {
                        let _ = io.stderr.write_all(&progress);
                    }
                    first_output = false;
                }
            }
            Ok(())
        })();
        if let Err(m) = result {
            log(
                io,
                "ERROR",
                "DumpCommand",
                &format!("Failed to dump database '{db}': {m}"),
            );
            failed.push(db.clone());
        }
    }
    if !failed.is_empty() {
        let list = failed
            .iter()
            .map(|d| format!("'{d}'"))
            .collect::<Vec<_>>()
            .join(", ");
        log(
            io,
            "ERROR",
            "DumpCommand",
            &format!("Dump failed for databases: {list}"),
        );
        return fail(io, &format!("Dump failed for databases: {list}"));
    }
    if !to_stdout {
        log(io, "INFO", "DumpCommand", "Dump completed successfully");
    }
    0
}

fn load_failed(io: &mut Io, db: &str, msg: &str) -> Code {
    let _ = write!(
        io.stderr,
        "Failed to load database '{db}': {msg}Load failed for databases: '{db}'\nLoad failed for databases: '{db}'\n{VERBOSE_HINT}"
    );
    1
}

fn load_cmd(args: &[String], io: &mut Io) -> Code {
    let specs = [
        Spec {
            long: "--overwrite-destination",
            short: None,
            kind: Kind::OptBool,
        },
        Spec {
            long: "--from-path",
            short: None,
            kind: Kind::Value,
        },
        Spec {
            long: "--from-stdin",
            short: None,
            kind: Kind::Flag,
        },
        Spec {
            long: "--info",
            short: None,
            kind: Kind::Flag,
        },
    ];
    let p = match parse(args, &specs, 1) {
        Ok(p) => p,
        Err(m) => return usage_error(io, &m, texts::HELP_LOAD),
    };
    if p.help {
        let _ = io.stdout.write_all(texts::HELP_LOAD.as_bytes());
        return 0;
    }
    if p.has("--from-path") && p.has("--from-stdin") {
        return usage_error(
            io,
            "Error: --from-path=<path>, --from-stdin are mutually exclusive (specify only one)",
            texts::HELP_LOAD,
        );
    }
    let Some(db) = p.positional.first().cloned() else {
        return usage_error(
            io,
            "Missing required parameter: '<database>'",
            texts::HELP_LOAD,
        );
    };
    if p.has("--verbose") {
        let mut full = vec!["database".to_owned(), "load".to_owned()];
        full.extend(args.iter().cloned());
        verbose_header(io, &full);
    }
    if is_glob(&db) {
        return load_failed(
            io,
            &db,
            "fake-neo4j: globbing in load is not implemented by the fake",
        );
    }
    let from_stdin = p.has("--from-stdin");
    let archive: Option<PathBuf> = if from_stdin {
        None
    } else {
        let dir = p
            .value("--from-path")
            .map(PathBuf::from)
            .unwrap_or_else(|| io.home.join("data/dumps"));
        Some(dir.join(format!("{db}.dump")))
    };
    if p.has("--info") {
        let shown = archive
            .as_ref()
            .map(|a| a.display().to_string())
            .unwrap_or_else(|| "null".into());
        let header = match &archive {
            None => dump::read_header_only(io.stdin),
            Some(a) => match std::fs::File::open(a) {
                Ok(mut f) => dump::read_header_only(&mut f),
                Err(_) => Err(DumpError::Frame(format!(
                    "Archive does not exist: {}",
                    a.display()
                ))),
            },
        };
        return match header {
            Ok(h) => {
                let _ = write!(
                    io.stdout,
                    "Database: {db}\nFormat: Neo4j ZSTD Dump.\nFiles: {}\nBytes: {}\n\n",
                    h.files, h.bytes
                );
                0
            }
            Err(e) => {
                let m = match e {
                    DumpError::Frame(m) | DumpError::Broken(m) => m,
                    DumpError::NotValid => "Not a valid Neo4j archive".into(),
                    DumpError::Truncated => "Truncated source".into(),
                };
                let _ = write!(
                    io.stderr,
                    "Failed to get metadata for dump '{shown}': {m}Print metadata failed for databases: '{db}'\nPrint metadata failed for databases: '{db}'\n{VERBOSE_HINT}"
                );
                1
            }
        };
    }
    if mounted(io, &db) {
        return load_failed(
            io,
            &db,
            &format!("The database is in use. Stop database '{db}' and try again."),
        );
    }
    let exists = !matches!(home::read_database(&io.home, &db), StoreState::Missing);
    if exists && !p.bool("--overwrite-destination") {
        return load_failed(io, &db, &format!("Database already exists: {db}"));
    }
    // The existing database goes first, whatever happens next (SURPRISE 3).
    if let Err(e) = home::destroy_database(&io.home, &db) {
        return load_failed(
            io,
            &db,
            &format!("Unable to prepare the database directory: {e}"),
        );
    }
    let mut file_input;
    let input: &mut dyn Read = match &archive {
        None => io.stdin,
        Some(a) => match std::fs::File::open(a) {
            Ok(f) => {
                file_input = f;
                &mut file_input
            }
            Err(_) => {
                return load_failed(io, &db, &format!("Archive does not exist: {}", a.display()))
            }
        },
    };
    let source = archive
        .as_ref()
        .map(|a| a.display().to_string())
        .unwrap_or_else(|| "reading from stdin".into());
    let store_dir = home::db_dir(&io.home, &db);
    let tx_dir = home::tx_dir(&io.home, &db);
    let progress = std::cell::RefCell::new(Vec::<u8>::new());
    let mut files_done = 0u64;
    let mut bytes_done = 0u64;
    let mut fake_doc: Option<Vec<u8>> = None;
    let mut real_files: Vec<(String, Vec<u8>)> = Vec::new();
    let result = dump::read(
        input,
        &mut |_| {
            let _ = writeln!(progress.borrow_mut());
        },
        &mut |h, e| {
            files_done += 1;
            bytes_done += e.data.len() as u64;
            let pct = if h.bytes == 0 {
                100.0
            } else {
                bytes_done as f64 * 100.0 / h.bytes as f64
            };
            let _ = writeln!(
                progress.borrow_mut(),
                "Files: {files_done}/{}, data: {pct:>4.1}%",
                h.files
            );
            if e.path == home::STORE_FILE {
                fake_doc = Some(e.data.to_vec());
                return Ok(());
            }
            real_files.push((e.path.clone(), Vec::new()));
            let target = if e.path.starts_with("neostore.transaction.db")
                || e.path.starts_with("checkpoint")
            {
                tx_dir.join(&e.path)
            } else {
                store_dir.join(&e.path)
            };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, e.data)
        },
    );
    let _ = io.stderr.write_all(&progress.into_inner());
    match result {
        Err((DumpError::NotValid, _)) | Err((DumpError::Frame(_), None)) => {
            load_failed(io, &db, &format!("Not a valid Neo4j archive: {source}"))
        }
        Err((DumpError::Truncated, h)) => {
            let total = h.map(|h| h.files).unwrap_or(files_done);
            let _ = writeln!(
                io.stderr,
                "Done: {total} files, {} processed.",
                dump::human_bytes(bytes_done)
            );
            load_failed(
                io,
                &db,
                "Unable to load database: ZstdIOException: Truncated source",
            )
        }
        Err((DumpError::Broken(m), _)) | Err((DumpError::Frame(m), Some(_))) => {
            load_failed(io, &db, &format!("Unable to load database: {m}"))
        }
        Ok(r) => {
            let _ = writeln!(
                io.stderr,
                "Done: {} files, {} processed.",
                r.header.files,
                dump::human_bytes(r.bytes)
            );
            let database = if let Some(doc) = fake_doc {
                match serde_json::from_slice::<serde_json::Value>(&doc)
                    .map_err(|e| e.to_string())
                    .and_then(|j| home::database_from_doc(&j, &db))
                {
                    Ok(d) => d,
                    Err(e) => {
                        return load_failed(io, &db, &format!("Unable to load database: {e}"))
                    }
                }
            } else if r.sha256 == super::fixture::DUMP_SHA256
                || store_fingerprint(&store_dir, &tx_dir, &real_files)
                    == super::fixture::STORE_SHA256
            {
                let mut d = super::fixture::database(true);
                d.info.name = db.clone();
                d
            } else {
                return load_failed(
                    io,
                    &db,
                    "Unable to load database: fake-neo4j cannot read the record store of a real Neo4j dump other than the recorded fixture",
                );
            };
            let mut database = database;
            database.info.name = db.clone();
            if let Err(e) = home::write_database(&io.home, &db, &database) {
                return load_failed(io, &db, &format!("Unable to load database: {e}"));
            }
            let _ = home::set_needs_recovery(&io.home, &db, false);
            0
        }
    }
}

use sha2::Digest;

/// SHA-256 over the extracted real store files (path, NUL, content; sorted by path).
fn store_fingerprint(store: &Path, tx: &Path, files: &[(String, Vec<u8>)]) -> String {
    let mut names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    names.sort();
    let mut h = sha2::Sha256::new();
    for n in names {
        let p = if n.starts_with("neostore.transaction.db") || n.starts_with("checkpoint") {
            tx.join(n)
        } else {
            store.join(n)
        };
        let data = std::fs::read(p).unwrap_or_default();
        h.update(format!("./{n}").as_bytes());
        h.update([0u8]);
        h.update(&data);
    }
    format!("{:x}", h.finalize())
}

fn info_block(db: &str, d: &Database, recovery: bool) -> String {
    // After a crash the store files only know the last checkpoint.
    let tx = if recovery {
        d.checkpoint_tx_id
    } else {
        d.last_tx_id
    };
    format!(
        "Database name:                {db}\nDatabase in use:              false\nStore format version:         record-aligned-1.1\nStore format introduced in:   5.0.0\nLast committed transaction id:{}\nStore needs recovery:         {recovery}\n",
        tx
    )
}

const RECOVERY_IMPOSSIBLE: &str = "java.lang.RuntimeException: Error reading transaction logs, recovery not possible. To force the database to start anyway, you can specify 'internal.dbms.tx_log.fail_on_corrupted_log_files=false'. This will try to recover as much as possible and then truncate the corrupt part of the transaction log. Doing this means your database integrity might be compromised, please consider restoring from a consistent backup instead.";

fn info_cmd(args: &[String], io: &mut Io) -> Code {
    let specs = [
        Spec {
            long: "--from-path",
            short: None,
            kind: Kind::Value,
        },
        Spec {
            long: "--format",
            short: None,
            kind: Kind::Value,
        },
    ];
    let p = match parse(args, &specs, 1) {
        Ok(p) => p,
        Err(m) => return usage_error(io, &m, texts::HELP_INFO),
    };
    if p.help {
        let _ = io.stdout.write_all(texts::HELP_INFO.as_bytes());
        return 0;
    }
    let format = p.value("--format").unwrap_or("text").to_owned();
    if format != "text" && format != "json" {
        return usage_error(io, &format!("Invalid value for option '--format': expected one of [text, json] (case-sensitive) but was '{format}'"), texts::HELP_INFO);
    }
    let pattern = p.positional.first().cloned().unwrap_or_else(|| "*".into());
    let names: Vec<String> = if is_glob(&pattern) {
        home::list_databases(&io.home)
            .into_iter()
            .filter(|n| {
                glob_match(&pattern, n)
                    && !matches!(home::read_database(&io.home, n), StoreState::Missing)
            })
            .collect()
    } else {
        vec![pattern.clone()]
    };
    let mut blocks = Vec::new();
    let mut json = Vec::new();
    for db in &names {
        if mounted(io, db) {
            return fail(io, &format!("Failed to execute command as the database '{db}' is in use. Please stop it and try again."));
        }
        match home::read_database(&io.home, db) {
            StoreState::Missing => {
                return fail(
                    io,
                    &format!(
                    "Database does not exist: '{db}'. Directory '{}' does not contain a database",
                    home::db_dir(&io.home, db).display()
                ),
                )
            }
            StoreState::Corrupt(_) => {
                return fail(
                    io,
                    &format!("Failed to execute command: '{RECOVERY_IMPOSSIBLE}'."),
                )
            }
            StoreState::Ok(d) => {
                let rec = home::needs_recovery(&io.home, db);
                blocks.push(info_block(db, &d, rec));
                json.push(serde_json::json!({
                    "databaseName": db, "inUse": false, "storeFormat": "record-aligned-1.1",
                    "storeFormatIntroduced": "5.0.0", "lastCommittedTransaction": d.last_tx_id, "recoveryRequired": rec,
                }));
            }
        }
    }
    if format == "json" {
        let _ = writeln!(io.stdout, "{}", serde_json::Value::Array(json));
    } else {
        let _ = io.stdout.write_all(blocks.join("\n").as_bytes());
    }
    0
}

fn check_cmd(args: &[String], io: &mut Io) -> Code {
    let bool_opts = [
        "--check-counts",
        "--check-graph",
        "--check-indexes",
        "--check-property-owners",
    ];
    let mut specs: Vec<Spec> = bool_opts
        .iter()
        .map(|l| Spec {
            long: l,
            short: None,
            kind: Kind::OptBool,
        })
        .collect();
    for l in [
        "--max-off-heap-memory",
        "--report-path",
        "--threads",
        "--from-path-data",
        "--from-path-txn",
        "--from-path",
        "--temp-path",
    ] {
        specs.push(Spec {
            long: l,
            short: None,
            kind: Kind::Value,
        });
    }
    specs.push(Spec {
        long: "--force",
        short: None,
        kind: Kind::Flag,
    });
    let p = match parse(args, &specs, 1) {
        Ok(p) => p,
        Err(m) => return usage_error(io, &m, texts::HELP_CHECK),
    };
    if p.help {
        let _ = io.stdout.write_all(texts::HELP_CHECK.as_bytes());
        return 0;
    }
    let Some(db) = p.positional.first().cloned() else {
        return usage_error(
            io,
            "Missing required parameter: '<database>'",
            texts::HELP_CHECK,
        );
    };
    if mounted(io, &db) {
        return fail(
            io,
            &format!("The database is in use. Stop database '{db}' and try again."),
        );
    }
    match home::read_database(&io.home, &db) {
        StoreState::Missing => fail(
            io,
            &format!(
                "Database does not exist: '{db}'. Directory '{}' does not contain a database",
                home::db_dir(&io.home, &db).display()
            ),
        ),
        StoreState::Corrupt(_) => {
            let _ = write!(
                io.stderr,
                "Failure when checking for recovery state: {RECOVERY_IMPOSSIBLE}\n{VERBOSE_HINT}"
            );
            74
        }
        StoreState::Ok(d) => {
            if home::needs_recovery(&io.home, &db) {
                return fail(io, "Active logical log detected, this might be a source of inconsistencies.\nPlease recover database before running the check.\nTo perform recovery please start database and perform clean shutdown.");
            }
            let size = std::fs::metadata(home::db_dir(&io.home, &db).join(home::STORE_FILE))
                .map(|m| m.len())
                .unwrap_or(0);
            let _ = d;
            let text = texts::CHECK_OUTPUT
                .replacen(
                    "Store size:880.0KiB",
                    &format!("Store size:{}", dump::human_bytes(size)),
                    1,
                )
                .replacen(
                    "Allocated page cache:880.0KiB",
                    &format!("Allocated page cache:{}", dump::human_bytes(size)),
                    1,
                );
            let _ = io.stdout.write_all(text.as_bytes());
            0
        }
    }
}

// ---------------------------------------------------------------------------------------
// bin/neo4j

fn nofile_warning(io: &mut Io) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    if ok && lim.rlim_cur < 40000 {
        let _ = writeln!(
            io.stderr,
            "WARNING: Max {} open files allowed, minimum of 40000 recommended. See the Neo4j manual.",
            lim.rlim_cur
        );
    }
}

fn directories(io: &mut Io) {
    let h = io.home.display().to_string();
    let _ = write!(
        io.stdout,
        "Directories in use:\nhome:         {h}\nconfig:       {h}/conf\nlogs:         {h}/logs\nplugins:      {h}/plugins\nimport:       {h}/import\ndata:         {h}/data\ncertificates: {h}/certificates\nlicenses:     {h}/licenses\nrun:          {h}/run\n"
    );
}

/// `neo4j …`; `exe` is the fake binary (started again as `fake-neo4j serve`).
pub fn neo4j(args: &[String], io: &mut Io, exe: &Path) -> Code {
    match args.first().map(String::as_str) {
        Some("status") => match running(io) {
            Some(pid) => {
                let _ = writeln!(io.stdout, "Neo4j is running at pid {pid}");
                0
            }
            None => {
                let _ = write!(io.stderr, "Neo4j is not running.\n{VERBOSE_HINT}");
                3
            }
        },
        Some("stop") => stop(io),
        Some("start") => start(io, exe),
        Some("restart") => {
            let c = stop(io);
            if c != 0 {
                return c;
            }
            start(io, exe)
        }
        Some("console") => {
            if let Some(pid) = running(io) {
                let _ = write!(
                    io.stderr,
                    "Neo4j is already running (pid:{pid}).\n{VERBOSE_HINT}"
                );
                return 1;
            }
            directories(io);
            let _ = writeln!(io.stdout, "Starting Neo4j.");
            let _ = io.stdout.flush();
            serve(&io.home.clone(), &mut *io.stderr)
        }
        Some("version") | Some("--version") | Some("-V") => {
            let _ = writeln!(io.stdout, "neo4j 5.3.0");
            0
        }
        Some("-h") | Some("--help") | Some("help") | None => {
            let _ = writeln!(io.stdout, "Usage: neo4j [-hV] [--expand-commands] [--verbose] [COMMAND]\nA partial alias for 'neo4j-admin server'. Commands: console, restart, start, status, stop, version.");
            if args.is_empty() {
                64
            } else {
                0
            }
        }
        Some(other) => {
            let _ = writeln!(io.stderr, "Unmatched argument at index 0: '{other}'");
            64
        }
    }
}

fn stop(io: &mut Io) -> Code {
    let Some(pid) = running(io) else {
        let _ = std::fs::remove_file(io.home.join("run/neo4j.pid"));
        let _ = writeln!(io.stdout, "Neo4j is not running.");
        return 0;
    };
    // SAFETY: the pid is the fake server this home started (its pid file).
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let _ = write!(io.stdout, "Stopping Neo4j");
    let mut waited = 0;
    while home::alive(pid) && waited < 600 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
        if waited % 4 == 0 {
            let _ = write!(io.stdout, ".");
        }
    }
    let _ = writeln!(io.stdout, ".. stopped.");
    let _ = std::fs::remove_file(io.home.join("run/neo4j.pid"));
    0
}

fn start(io: &mut Io, exe: &Path) -> Code {
    if let Some(pid) = running(io) {
        let _ = write!(
            io.stderr,
            "Neo4j is already running (pid:{pid}).\n{VERBOSE_HINT}"
        );
        return 1;
    }
    let run = io.home.join("run");
    let _ = std::fs::create_dir_all(&run);
    let _ = std::fs::remove_file(run.join("http.port"));
    let _ = std::fs::create_dir_all(io.home.join("logs"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(io.home.join("logs/neo4j.log"));
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("serve")
        .env("FAKE_NEO4J_HOME", &io.home)
        .stdin(std::process::Stdio::null());
    if let Ok(l) = log {
        if let Ok(l2) = l.try_clone() {
            cmd.stdout(l).stderr(l2);
        }
    }
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(io, &format!("Unable to start the fake server: {e}")),
    };
    let pid = child.id();
    std::mem::forget(child);
    let _ = std::fs::write(run.join("neo4j.pid"), format!("{pid}\n"));
    let mut port = None;
    for _ in 0..1500 {
        if let Ok(p) = std::fs::read_to_string(run.join("http.port")) {
            if let Ok(p) = p.trim().parse::<u16>() {
                port = Some(p);
                break;
            }
        }
        if !home::alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(port) = port else {
        let _ = std::fs::remove_file(run.join("neo4j.pid"));
        return fail(
            io,
            &format!(
                "Unable to start. See {}/logs/neo4j.log for details.",
                io.home.display()
            ),
        );
    };
    directories(io);
    let _ = write!(
        io.stdout,
        "Starting Neo4j.\nStarted neo4j (pid:{pid}). It is available at http://127.0.0.1:{port}\nThere may be a short delay until the server is ready.\n"
    );
    nofile_warning(io);
    0
}

/// The fake server process (`fake-neo4j serve`, also `neo4j console`): serves the home's
/// `neo4j` and `system` databases over HTTP until SIGTERM/SIGINT, persisting every commit.
pub fn serve(home: &Path, log: &mut dyn Write) -> Code {
    let conf = home::read_config(home);
    let mut dbs = Vec::new();
    for name in ["neo4j", "system"] {
        let db = match home::read_database(home, name) {
            StoreState::Ok(d) => {
                let mut d = *d;
                if home::needs_recovery(home, name) {
                    // Recovery replays the log: committed work survives.
                    d.last_tx_id += 1;
                    d.checkpoint_tx_id = d.last_tx_id;
                    let _ = writeln!(log, "fake-neo4j: recovered database {name}");
                }
                d
            }
            StoreState::Missing => {
                // A directory without a database: a new, empty one (SURPRISE 3).
                let d = super::new_database(name, super::graph::Graph::new());
                if let Err(e) = home::write_database(home, name, &d) {
                    let _ = writeln!(log, "fake-neo4j: cannot create {name}: {e}");
                    return 1;
                }
                d
            }
            StoreState::Corrupt(why) => {
                let _ = writeln!(log, "fake-neo4j: database {name} cannot be started: {why}");
                let mut d = super::new_database(name, super::graph::Graph::new());
                d.available = false;
                d
            }
        };
        if db.available {
            let _ = home::write_database(home, name, &db);
            let _ = home::set_needs_recovery(home, name, true);
        }
        dbs.push(db);
    }
    let system = dbs.pop().unwrap();
    let neo4j = dbs.pop().unwrap();
    toolkit::interrupt::install();
    let server = super::FakeNeo4j::builder()
        .credentials(&conf.user, &conf.password)
        .max_failed_attempts(conf.max_failed_attempts)
        .auth_lock_time(Duration::from_millis(conf.lock_time_ms))
        .db_transaction_timeout(Duration::from_millis(conf.db_transaction_timeout_ms))
        .database(neo4j)
        .system_database(system)
        .home_display(&home.display().to_string())
        .persist_to(home.to_path_buf())
        .port(conf.http_port)
        .start();
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(log, "fake-neo4j: cannot listen: {e}");
            return 1;
        }
    };
    if conf.start_delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(conf.start_delay_ms));
    }
    let run = home.join("run");
    let _ = std::fs::create_dir_all(&run);
    let _ = std::fs::write(run.join("neo4j.pid"), format!("{}\n", std::process::id()));
    let _ = std::fs::write(run.join("http.port"), format!("{}\n", server.addr().port()));
    let _ = writeln!(
        log,
        "fake-neo4j: serving {} on {}",
        home.display(),
        server.url()
    );
    // Until SIGTERM/SIGINT, or until the home is gone (a test's temporary home removed
    // without stopping the server must not leave it running).
    let mut ticks = 0u32;
    while !toolkit::interrupt::is_interrupted() {
        std::thread::sleep(Duration::from_millis(20));
        ticks += 1;
        if ticks.is_multiple_of(50) && !home.join("run").is_dir() {
            let _ = writeln!(log, "fake-neo4j: {} is gone; exiting", home.display());
            return 0;
        }
    }
    let names: Vec<String> = vec!["neo4j".into(), "system".into()];
    for name in &names {
        if let Some(d) = server.database(name) {
            if d.available {
                let mut d = d;
                d.checkpoint_tx_id = d.last_tx_id;
                let _ = home::write_database(home, name, &d);
                let _ = home::set_needs_recovery(home, name, false);
            }
        }
    }
    drop(server);
    let _ = std::fs::remove_file(run.join("http.port"));
    let _ = std::fs::remove_file(run.join("neo4j.pid"));
    let _ = writeln!(log, "fake-neo4j: stopped");
    0
}
