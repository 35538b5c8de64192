//! The user guide held to the code: the "## Layout" section of docs/development.md names
//! every top-level directory git tracks (each crate among them) and every first-level module
//! of each crate's `src/`, and every repository path it names exists. A module added, renamed
//! or removed fails here, by its path, until the Layout says so.
//!
//! A module counts as named when its path appears whole (`collector/src/mesh.rs`,
//! `src/gate/`), or, in the tree, under its crate's line as `src/mesh.rs` or `mesh.rs`. A name
//! only counts when no path character comes right before it, so `store/history.rs` does not
//! name a first-level `history.rs`, nor `agent/src/cli.rs` the binary's `src/cli.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::machine;
use crate::support::repo_path;

const LAYOUT_DOC: &str = "docs/development.md";

#[test]
fn layout_names_every_directory_and_module() {
    let _turn = machine::shared();
    let section = layout_section();
    let top = top_level_dirs();
    let mut problems = Vec::new();

    for dir in &top {
        if !names(&section, &format!("{dir}/")) {
            problems.push(format!("the top-level directory {dir}/ is not named"));
        }
    }
    for krate in crates(&top) {
        let label = if krate.is_empty() {
            "src/"
        } else {
            krate.as_str()
        };
        let under = part(&section, label);
        for module in modules(&krate) {
            let path = format!("{krate}src/{module}");
            let named = names(&section, &path)
                || names(&under, &format!("src/{module}"))
                || names(&under, &module);
            if !named {
                problems.push(format!(
                    "the module {path} is not named (write `{path}`, or `{module}` in the \
                     lines under `{label}`)"
                ));
            }
        }
    }
    for (path, dir) in repo_paths(&section, &top) {
        let root = repo_path("");
        let found = exists(&root, &path) || dir.is_some_and(|d| exists(&root.join(d), &path));
        if !found {
            problems.push(format!("{path} is named, but no such path exists"));
        }
    }

    assert!(
        problems.is_empty(),
        "{LAYOUT_DOC} \"## Layout\" is out of step with the tree:\n  {}",
        problems.join("\n  ")
    );
}

/// The "## Layout" section: from its heading to the next "## " heading.
fn layout_section() -> String {
    let text = std::fs::read_to_string(repo_path(LAYOUT_DOC))
        .unwrap_or_else(|e| panic!("{LAYOUT_DOC}: {e}"));
    text.split("\n## ")
        .find(|s| s.starts_with("Layout\n"))
        .unwrap_or_else(|| panic!("{LAYOUT_DOC} has no \"## Layout\" section"))
        .to_owned()
}

/// The repository's top-level directories that git tracks files in (and that are there), or,
/// without git, every top-level directory but hidden ones and `target`.
fn top_level_dirs() -> BTreeSet<String> {
    let root = repo_path("");
    let listed = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output()
        .ok()
        .filter(|out| out.status.success());
    match listed {
        Some(out) => String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter_map(|file| file.split_once('/').map(|(dir, _)| dir.to_owned()))
            .filter(|dir| root.join(dir).is_dir())
            .collect(),
        None => {
            eprintln!("git ls-files failed: checking every top-level directory instead");
            std::fs::read_dir(&root)
                .unwrap()
                .map(|entry| entry.unwrap())
                .filter(|entry| entry.path().is_dir())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|dir| !dir.starts_with('.') && dir != "target")
                .collect()
        }
    }
}

/// Each crate as the prefix of its `src/`: `""` for the root package, `"agent/"` for a
/// top-level directory with a Cargo.toml and a src/.
fn crates(top: &BTreeSet<String>) -> Vec<String> {
    let root = repo_path("");
    let mut crates = Vec::new();
    if root.join("src").is_dir() {
        crates.push(String::new());
    }
    for dir in top {
        if root.join(dir).join("Cargo.toml").is_file() && root.join(dir).join("src").is_dir() {
            crates.push(format!("{dir}/"));
        }
    }
    crates
}

/// The first-level modules of a crate's src/: `name.rs` for each file but lib.rs and main.rs,
/// `name/` for each directory.
fn modules(krate: &str) -> BTreeSet<String> {
    let src = repo_path(&format!("{krate}src"));
    std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .map(|entry| entry.unwrap())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                None
            } else if entry.path().is_dir() {
                Some(format!("{name}/"))
            } else if name.ends_with(".rs") && name != "lib.rs" && name != "main.rs" {
                Some(name)
            } else {
                None
            }
        })
        .collect()
}

/// Whether `name` occurs in `text` with no path character right before it.
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_path_char(c))
    })
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')
}

/// The lines of the tree under `dir`: from each line that starts at column 0 with `dir` to
/// the next line that starts at column 0.
fn part(section: &str, dir: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in section.lines() {
        if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            inside = line.split_whitespace().next() == Some(dir);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every word of the section that looks like a repository path (a `/` in it, and its first
/// part a top-level directory), with the top-level directory whose tree lines it is in, if
/// any: a tree may name paths relative to it.
fn repo_paths(section: &str, top: &BTreeSet<String>) -> Vec<(String, Option<String>)> {
    let mut paths = Vec::new();
    let mut dir: Option<String> = None;
    for line in section.lines() {
        if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            dir = line
                .split_whitespace()
                .next()
                .and_then(|word| word.strip_suffix('/'))
                .filter(|word| top.contains(*word))
                .map(str::to_owned);
        }
        let words = line.split(|c: char| c.is_whitespace() || "`()[],;:\"'".contains(c));
        for word in words {
            let word = word.trim_end_matches('.');
            let looks_like_path = word
                .split_once('/')
                .is_some_and(|(first, _)| top.contains(first));
            if looks_like_path {
                paths.push((word.to_owned(), dir.clone()));
            }
        }
    }
    paths
}

/// Whether `path` exists under `base`; for a glob (`dashboards/grafana/*.json`), whether the
/// directory before its first `*` does.
fn exists(base: &Path, path: &str) -> bool {
    match path.split_once('*') {
        Some((before, _)) => base.join(before).is_dir(),
        None => base.join(path).exists(),
    }
}
