//! The fake `neo4j-admin` and `neo4j` of testkit (see `testkit::fake_neo4j`).
//!
//! Link or copy it as `neo4j-admin` and `neo4j` (it dispatches on its name), or call it as
//! `fake-neo4j neo4j-admin …` / `fake-neo4j neo4j …`; `fake-neo4j serve` is the fake
//! server process that `neo4j start` runs in the background. The home is
//! `$FAKE_NEO4J_HOME`, else `$NEO4J_HOME`, else the directory above `bin/` when called
//! as `<home>/bin/neo4j-admin`, else the current directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use testkit::fake_neo4j::admin;

fn home_for(argv0: &str) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let absolute = |p: PathBuf| if p.is_absolute() { p } else { cwd.join(p) };
    for var in ["FAKE_NEO4J_HOME", "NEO4J_HOME"] {
        if let Some(h) = std::env::var_os(var) {
            return absolute(PathBuf::from(h));
        }
    }
    let p = absolute(PathBuf::from(argv0));
    if let Some(bin) = p.parent() {
        if bin.file_name().is_some_and(|n| n == "bin") {
            if let Some(h) = bin.parent() {
                if h.join("conf").is_dir() || h.join("data").is_dir() {
                    return h.to_path_buf();
                }
            }
        }
    }
    cwd
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tool, rest): (String, Vec<String>) = match name.as_str() {
        "neo4j-admin" | "neo4j" => (name.clone(), args[1..].to_vec()),
        _ => match args.get(1) {
            Some(t) => (t.clone(), args[2..].to_vec()),
            None => {
                eprintln!("usage: fake-neo4j neo4j-admin|neo4j|serve [ARGS…]");
                std::process::exit(64);
            }
        },
    };
    let home = home_for(&argv0);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&argv0));
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr().lock();
    let code = match tool.as_str() {
        "serve" => admin::serve(&home, &mut stderr),
        "neo4j-admin" | "neo4j" => {
            let mut io = admin::Io {
                stdin: &mut stdin,
                stdout: &mut stdout,
                stderr: &mut stderr,
                home,
            };
            if tool == "neo4j" {
                admin::neo4j(&rest, &mut io, &exe)
            } else {
                admin::neo4j_admin(&rest, &mut io)
            }
        }
        other => {
            eprintln!("fake-neo4j: unknown tool {other}");
            64
        }
    };
    let _ = stdout.flush();
    drop(stdout);
    std::process::exit(code);
}
