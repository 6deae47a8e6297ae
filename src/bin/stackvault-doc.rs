//! `stackvault-doc`: man pages and shell completions of the stackvault tools, generated from
//! their clap definitions (after uutils' `uudoc`).
//!
//! ```text
//! stackvault-doc man DIR                 one roff page per tool and per subcommand
//! stackvault-doc completions SHELL DIR   bash, zsh or fish completion scripts
//! ```
//!
//! The pages in `man/` are committed; the unit test below fails when they are stale.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{value_parser, Arg, ArgMatches, Command};
use clap_complete::{Generator, Shell};
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

/// The documented tools, by hand (as uudoc lists the utilities).
const TOOLS: [fn() -> Command; 9] = [
    dump_pg::command,
    snap_qdrant::command,
    dump_neo4j::command,
    vault_put::command,
    vault_get::command,
    vault_ledger::command,
    vault_prune::command,
    integrity_check::command,
    vault_copy::command,
];

/// The shell wrappers of `bin-wrappers/`: their `--help` is a heredoc between `<<'HELP'`
/// and `HELP` in the script, and their page is rendered from that same text.
const WRAPPERS: [(&str, &str); 5] = [
    (
        "stackvault-setup",
        include_str!("../../bin-wrappers/stackvault-setup"),
    ),
    (
        "stackvault-smoke",
        include_str!("../../bin-wrappers/stackvault-smoke"),
    ),
    (
        "stackvault-nightly",
        include_str!("../../bin-wrappers/stackvault-nightly"),
    ),
    (
        "stackvault-dr-drill",
        include_str!("../../bin-wrappers/stackvault-dr-drill"),
    ),
    (
        "stackvault-restore",
        include_str!("../../bin-wrappers/stackvault-restore"),
    ),
];

/// The `--help` text of a wrapper script: what `usage()` prints.
fn wrapper_help(script: &str) -> &str {
    let start = script
        .find("<<'HELP'\n")
        .map(|i| i + "<<'HELP'\n".len())
        .expect("a wrapper's help is a <<'HELP' heredoc");
    let end = script[start..]
        .find("\nHELP\n")
        .expect("the heredoc ends with HELP");
    &script[start..start + end + 1]
}

/// A wrapper's page from its `--help`: the first line is `name - summary`, then `Usage:`,
/// then `Options:`; the rest is split as a tool's `after_long_help` is.
fn wrapper_page<'a>(help: &str, see_also: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let (first, rest) = help.split_once("\n\n").expect("a summary line");
    let (name, summary) = first.split_once(" - ").expect("name - summary");
    let mut paras: Vec<&str> = rest.split("\n\n").collect();
    let usage = paras.remove(0);
    let mut head = Roff::new();
    head.control("SH", ["NAME"])
        .text([roman(format!("{name} - {summary}"))]);
    head.control("SH", ["SYNOPSIS"]).control("nf", []);
    for line in usage.lines() {
        let line = line.strip_prefix("Usage: ").unwrap_or(line);
        head.text([roman(line.trim())]);
    }
    head.control("fi", []);
    let options = paras.iter().position(|p| p.starts_with("Options:\n"));
    let options = options.map(|i| paras.remove(i));
    let (prose, sections) = split_after_help(&paras.join("\n\n"));
    let mut out = Roff::new().render();
    let preamble = out.clone();
    out.push_str(&format!(
        ".TH {} 1 \"\" \"stackvault {}\" stackvault\n",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    ));
    let mut parts = vec![head];
    let mut description = Roff::new();
    description.control("SH", ["DESCRIPTION"]);
    parts.push(description);
    parts.push(prose);
    if let Some(options) = options {
        let (_, mut sections) = split_after_help(options);
        parts.append(&mut sections);
    }
    parts.extend(sections);
    parts.push(see_also_section(see_also));
    for part in parts {
        let text = part.render();
        out.push_str(text.strip_prefix(&preamble).unwrap_or(&text));
    }
    out.into_bytes()
}

fn see_also_section<'a>(see_also: impl Iterator<Item = (&'a str, &'a str)>) -> Roff {
    let mut refs = Roff::new();
    refs.control("SH", ["SEE ALSO"]);
    let mut line = vec![];
    for (i, (name, section)) in see_also.enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        line.extend([roman(sep), bold(name), roman(format!("({section})"))]);
    }
    refs.text(line);
    refs
}

/// Every man page, in memory: (file name, roff source). Each tool comes with one page per
/// subcommand (`dump-pg-restore.1` for `dump-pg restore`), each wrapper with one.
fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut commands = vec![];
    for tool in TOOLS {
        // Env values would otherwise depend on the environment the pages are generated in.
        let mut cmd = hide_env_values(tool()).disable_help_subcommand(true);
        // Building names each subcommand "dump-pg-restore" (title, file) and
        // "dump-pg restore" (synopsis).
        cmd.build();
        let subs: Vec<Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .cloned()
            .collect();
        commands.push(cmd);
        commands.extend(subs);
    }
    let mut names: Vec<String> = commands.iter().map(display_name).collect();
    names.extend(WRAPPERS.iter().map(|(name, _)| name.to_string()));
    let see_also = |name: &str| {
        names
            .iter()
            .filter(|n| **n != name)
            .map(|n| (n.clone(), "1"))
            .chain([("backup-manifest".to_owned(), "5")])
            .collect::<Vec<_>>()
    };
    let mut pages: Vec<(String, Vec<u8>)> = commands
        .into_iter()
        .map(|cmd| {
            let name = display_name(&cmd);
            let refs = see_also(&name);
            let refs = refs.iter().map(|(n, s)| (n.as_str(), *s));
            (format!("{name}.1"), page(cmd, refs))
        })
        .collect();
    for (name, script) in WRAPPERS {
        let refs = see_also(name);
        let refs = refs.iter().map(|(n, s)| (n.as_str(), *s));
        pages.push((
            format!("{name}.1"),
            wrapper_page(wrapper_help(script), refs),
        ));
    }
    pages
}

fn display_name(cmd: &Command) -> String {
    cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned()
}

use toolkit::cli::hide_env_values;

/// One page. clap_mangen's own `render` would put `after_long_help` verbatim under a heading
/// "EXTRA", with the example lines filled into one paragraph; so the page is assembled from
/// Man's section renderers, and `after_long_help` is split into DESCRIPTION paragraphs and
/// sections of its own (EXIT STATUS, EXAMPLES).
fn page<'a>(cmd: Command, see_also: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let after = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|s| s.to_string());
    let (prose, sections) = split_after_help(after.as_deref().unwrap_or(""));
    let refs = see_also_section(see_also);

    // The title line by hand: no date, so that the pages do not change from one run to the
    // next (Man::render_title writes an empty date as nothing at all, which moves the source
    // into the date's place in the footer).
    let title = format!(
        ".TH {} 1 \"\" \"stackvault {}\" stackvault\n",
        display_name(&cmd).to_uppercase(),
        env!("CARGO_PKG_VERSION")
    );
    let man = Man::new(cmd.clone());
    type Render<'r> = Box<dyn Fn(&mut dyn Write) -> io::Result<()> + 'r>;
    let mut parts: Vec<Render> = vec![
        Box::new(|w| w.write_all(title.as_bytes())),
        Box::new(|w| man.render_name_section(w)),
        Box::new(|w| man.render_synopsis_section(w)),
        Box::new(|w| man.render_description_section(w)),
        Box::new(|w| prose.to_writer(w)),
    ];
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        parts.push(Box::new(|w| man.render_options_section(w)));
    }
    if cmd.has_subcommands() {
        parts.push(Box::new(|w| man.render_subcommands_section(w)));
    }
    parts.extend(
        sections
            .iter()
            .map(|s| Box::new(|w: &mut dyn Write| s.to_writer(w)) as Render),
    );
    if cmd.get_version().is_some() {
        parts.push(Box::new(|w| man.render_version_section(w)));
    }
    parts.push(Box::new(|w| refs.to_writer(w)));

    // Every renderer starts with roff's apostrophe preamble: keep the first one only.
    let preamble = Roff::new().render();
    let mut out = preamble.clone();
    for render in parts {
        let mut buf = vec![];
        render(&mut buf).expect("writing to memory");
        let text = String::from_utf8(buf).expect("roff renders UTF-8");
        out.push_str(text.strip_prefix(&preamble).unwrap_or(&text));
    }
    out.into_bytes()
}

/// Splits `after_long_help` at blank lines. A paragraph headed `Examples:`, `Exit status:`…
/// whose other lines are indented becomes a section (EXAMPLES, EXIT STATUS…), sorted as
/// man-pages(7) orders them; any other paragraph goes to DESCRIPTION.
fn split_after_help(text: &str) -> (Roff, Vec<Roff>) {
    let mut prose = Roff::new();
    let mut sections = vec![];
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let (first, body) = para.split_once('\n').unwrap_or((para, ""));
        let heading = first.strip_suffix(':').filter(|h| !h.starts_with(' '));
        let Some(heading) = heading.filter(|_| body.lines().all(|l| l.starts_with("  "))) else {
            prose.control("PP", []);
            for line in para.lines() {
                prose.text([roman(line.trim())]);
            }
            continue;
        };
        let title = match heading.to_uppercase().as_str() {
            "EXAMPLE" => "EXAMPLES".to_owned(),
            other => other.to_owned(),
        };
        let mut roff = Roff::new();
        roff.control("SH", [title.as_str()]);
        if title == "EXIT STATUS" {
            // "  0  meaning" lines, one tagged paragraph per code; a line that does not
            // start with a code continues the meaning above it.
            let mut entries: Vec<(&str, String)> = vec![];
            for line in body.lines().map(str::trim) {
                match (line.split_once("  "), entries.last_mut()) {
                    (Some((code, meaning)), _) if code.chars().all(|c| c.is_ascii_digit()) => {
                        entries.push((code, meaning.trim().to_owned()));
                    }
                    (_, Some((_, meaning))) => {
                        meaning.push(' ');
                        meaning.push_str(line);
                    }
                    (_, None) => entries.push((line, String::new())),
                }
            }
            for (code, meaning) in &entries {
                roff.control("TP", [])
                    .text([bold(*code)])
                    .text([roman(meaning.as_str())]);
            }
        } else {
            roff.control("RS", ["4"]).control("nf", []);
            for line in body.lines() {
                roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
            }
            roff.control("fi", []).control("RE", []);
        }
        sections.push((title, roff));
    }
    sections.sort_by_key(|(title, _)| match title.as_str() {
        "EXIT STATUS" => 0,
        "EXAMPLES" => 2,
        _ => 1,
    });
    (prose, sections.into_iter().map(|(_, roff)| roff).collect())
}

/// Completion scripts for `shell`: (file name, script), one per tool.
fn completions(shell: Shell) -> Vec<(String, Vec<u8>)> {
    TOOLS
        .iter()
        .map(|tool| {
            let mut cmd = tool();
            let name = cmd.get_name().to_owned();
            let mut script = vec![];
            clap_complete::generate(shell, &mut cmd, &name, &mut script);
            (shell.file_name(&name), script)
        })
        .collect()
}

fn cli() -> Command {
    let dir = Arg::new("dir")
        .value_name("DIR")
        .required(true)
        .value_parser(value_parser!(PathBuf))
        .help("Output directory (created if missing)");
    Command::new("stackvault-doc")
        .about("Write the man pages and shell completions of the stackvault tools")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommand(
            Command::new("man")
                .about("Write one roff man page per tool and per subcommand into DIR")
                .arg(dir.clone()),
        )
        .subcommand(
            Command::new("completions")
                .about("Write the completion script of every tool for SHELL into DIR")
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(["bash", "zsh", "fish"]),
                )
                .arg(dir),
        )
}

fn run(matches: &ArgMatches) -> Result<(), String> {
    let (files, sub) = match matches.subcommand() {
        Some(("man", sub)) => (man_pages(), sub),
        Some(("completions", sub)) => {
            let shell: &String = sub.get_one("shell").expect("required");
            (completions(shell.parse().expect("bash, zsh or fish")), sub)
        }
        _ => unreachable!("subcommand_required"),
    };
    let dir: &PathBuf = sub.get_one("dir").expect("required");
    write_all(dir, &files)
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(matches) => matches,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's message starts with "error: ".
            eprint!("stackvault-doc: {}", e.render());
            return ExitCode::from(2);
        }
    };
    match run(&matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stackvault-doc: error: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_pages_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        for (name, bytes) in man_pages() {
            let committed = std::fs::read(dir.join(&name)).unwrap_or_default();
            assert!(
                committed == bytes,
                "man/{name} is missing or stale: run `cargo run --bin stackvault-doc -- man man/` \
                 and commit the result"
            );
        }
    }

    #[test]
    fn every_page_has_the_exit_status_table() {
        for (name, bytes) in man_pages() {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.contains(".SH \"EXIT STATUS\""),
                "{name}: no Exit status section"
            );
            for code in ["\\fB0\\fR", "\\fB1\\fR", "\\fB2\\fR"] {
                assert!(text.contains(code), "{name}: exit status {code} missing");
            }
            assert!(text.contains(".SH EXAMPLES"), "{name}: no examples");
            assert!(!text.contains(".SH EXTRA"), "{name}: raw after_long_help");
        }
    }

    #[test]
    fn subcommand_page_has_its_flags_and_long_help() {
        let pages = man_pages();
        let (_, restore) = pages
            .iter()
            .find(|(n, _)| n == "dump-pg-restore.1")
            .unwrap();
        let text = String::from_utf8_lossy(restore);
        assert!(text.starts_with(".ie") && text.contains(".TH DUMP-PG-RESTORE 1 \"\" "));
        assert!(text.contains("\\fBdump\\-pg restore\\fR"), "synopsis");
        assert!(text.contains("\\fB\\-\\-target\\-db\\fR"));
        assert!(text.contains("pg_restore runs in"));
        assert_eq!(text.matches(".ie ").count(), 1, "one preamble");
    }

    #[test]
    fn a_wrapper_page_is_its_help() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, script) in WRAPPERS {
            let out = std::process::Command::new(repo.join("bin-wrappers").join(name))
                .arg("--help")
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                wrapper_help(script),
                "{name}"
            );
        }
        let pages = man_pages();
        let (_, page) = pages
            .iter()
            .find(|(n, _)| n == "stackvault-nightly.1")
            .unwrap();
        let text = String::from_utf8_lossy(page);
        assert!(text.contains(".TH STACKVAULT-NIGHTLY 1 \"\" "));
        assert!(text.contains(".SH OPTIONS") && text.contains(".SH ENVIRONMENT"));
        assert!(text.contains("\\-\\-only KINDS"), "{text}");
        assert_eq!(text.matches(".ie ").count(), 1, "one preamble");
    }

    #[test]
    fn env_values_are_hidden_everywhere() {
        fn check(cmd: &Command) {
            for arg in cmd.get_arguments().filter(|a| a.get_env().is_some()) {
                assert!(
                    arg.is_hide_env_values_set(),
                    "{}: --{:?}",
                    cmd.get_name(),
                    arg.get_long()
                );
            }
            cmd.get_subcommands().for_each(check);
        }
        for tool in TOOLS {
            check(&hide_env_values(tool()));
        }
    }
}
