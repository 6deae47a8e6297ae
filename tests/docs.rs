//! The user documentation's examples must be true.

use std::path::Path;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The `.nf` … `.fi` blocks after `.SH EXAMPLE` in the manifest man page, each one line.
fn man_examples() -> Vec<String> {
    let page = repo_file("man/backup-manifest.5");
    let example = page
        .split(".SH EXAMPLE")
        .nth(1)
        .unwrap()
        .split(".SH ")
        .next()
        .unwrap();
    example
        .split(".nf\n")
        .skip(1)
        .map(|block| {
            block
                .split(".fi")
                .next()
                .unwrap()
                .lines()
                .map(str::trim)
                .collect()
        })
        .collect()
}

#[test]
fn the_manifest_man_page_examples_are_valid_manifests() {
    let examples = man_examples();
    assert_eq!(examples.len(), 2);
    for text in &examples {
        let m = manifest::ndjson::parse_line(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(m.kind, manifest::Kind::Postgres);
    }
    let ok = manifest::ndjson::parse_line(&examples[0]).unwrap();
    let a = ok.artifact.unwrap();
    let v = ok.vault.unwrap();
    assert_eq!((a.bytes, a.sha256), (v.bytes, v.sha256));
    assert!(v
        .url
        .ends_with(&format!("/postgres/2025/01/30/{}.dump", ok.id)));
}

#[test]
fn the_readme_names_the_test_command_that_ci_runs() {
    let ci = repo_file(".ci/run");
    let command = ci
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap()
        .trim();
    assert_eq!(command, "scripts/test");
    assert!(
        repo_file("README.md").contains(&format!("\n{command}\n")),
        "README lacks {command}"
    );
}

#[test]
fn the_readme_shows_the_rules_example_that_the_tests_parse() {
    let example = repo_file("crates/integrity/rules-example.toml");
    assert!(
        repo_file("README.md").contains(&example),
        "README.md must quote crates/integrity/rules-example.toml verbatim"
    );
}
