//! The tidy test: rules of the codebase that neither rustc nor clippy checks, run as ordinary
//! `#[test]`s (`cargo test -p xtask tidy`), in the style of rust-analyzer's.
//!
//! - every `.rs` file opens with a `//!` doc line, and no module is a `mod.rs`;
//! - Docker (`bollard`) is only spoken under `cargo-gear/src/engine*`, and `tokio` only there and
//!   in the places that own the runtime (the session, the scheduler and the commands that wait
//!   on the engine);
//! - gear-spec prints nothing (`println!` and friends): it returns data and problems;
//! - every diagnostic code users see is `gear::kebab-case`;
//! - gear-spec's non-test code calls `unwrap()`/`expect()` only on the invariants listed in
//!   [`INVARIANTS`].

#![cfg(test)]

use std::path::{Path, PathBuf};

use regex::Regex;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace")
        .to_owned()
}

/// Every `.rs` file of the project's crates, relative to the root, `/`-separated, sorted.
fn rust_files() -> Vec<(String, String)> {
    let root = root();
    let mut out = Vec::new();
    for top in ["cargo-gear", "gear-spec", "xtask", "fuzz", "examples"] {
        let dir = root.join(top);
        if !dir.exists() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&dir)
            .into_iter()
            .filter_entry(|e| e.file_name() != "target" && e.file_name() != "corpus")
        {
            let entry = entry.expect("the source tree is readable");
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "rs") {
                let rel = entry
                    .path()
                    .strip_prefix(&root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(entry.path()).expect("source files are UTF-8");
                out.push((rel, text));
            }
        }
    }
    out.sort();
    assert!(out.len() > 50, "found only {} .rs files", out.len());
    out
}

/// The part of a file before its `#[cfg(test)]` module (tests sit at the end of a file).
fn non_test(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Integration tests, benches, and modules compiled only for tests (like this one).
fn is_test_file(path: &str, text: &str) -> bool {
    path.contains("/tests/") || path.contains("/benches/") || text.contains("\n#![cfg(test)]")
}

fn report(what: &str, offenders: Vec<String>) {
    assert!(
        offenders.is_empty(),
        "{what}:\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn every_file_opens_with_a_module_doc_and_no_module_is_mod_rs() {
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        if path.ends_with("/mod.rs") {
            offenders.push(format!(
                "{path}: name it after its module, beside its folder"
            ));
        }
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            offenders.push(format!("{path}: starts with `{first}`, not a `//!` line"));
        }
    }
    report(
        "files without a `//!` opening line, or named mod.rs",
        offenders,
    );
}

/// Files (prefixes) allowed to use tokio: the engine, and the places that own the runtime.
const TOKIO_OWNERS: &[&str] = &[
    "cargo-gear/src/engine",
    "cargo-gear/src/schedule.rs",
    "cargo-gear/src/request.rs",
    "cargo-gear/src/commands/",
    "xtask/",
];

#[test]
fn docker_and_tokio_stay_where_they_belong() {
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        if is_test_file(&path, &text) {
            continue;
        }
        let code = non_test(&text);
        if code.contains("bollard") && !path.starts_with("cargo-gear/src/engine") {
            offenders.push(format!("{path}: bollard outside cargo-gear/src/engine*"));
        }
        if code.contains("tokio") && !TOKIO_OWNERS.iter().any(|p| path.starts_with(p)) {
            offenders.push(format!(
                "{path}: tokio outside the engine and the runtime's owners"
            ));
        }
    }
    report("Docker or tokio out of place", offenders);
}

#[test]
fn gear_spec_prints_nothing() {
    let print = Regex::new(r"\b(e?println!|e?print!|dbg!)").unwrap();
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        if !path.starts_with("gear-spec/src/") {
            continue;
        }
        for (n, line) in non_test(&text).lines().enumerate() {
            if print.is_match(line) && !line.trim_start().starts_with("//") {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    report(
        "gear-spec prints (return data or a Problem instead)",
        offenders,
    );
}

#[test]
fn diagnostic_codes_are_gear_kebab_case() {
    // `code(…)` attributes, and the first argument of `Problem::new`.
    let code =
        Regex::new(r#"\bcode\(\s*"?([A-Za-z0-9_:\-]+)"?\s*\)|Problem::new\(\s*"([^"]*)""#).unwrap();
    let convention = Regex::new(r"^gear::[a-z0-9]+(-[a-z0-9]+)*$").unwrap();
    let mut offenders = Vec::new();
    let mut seen = 0;
    for (path, text) in rust_files() {
        if is_test_file(&path, &text) || path.starts_with("xtask/") {
            continue;
        }
        for caps in code.captures_iter(&text) {
            let Some(found) = caps.get(1).or_else(|| caps.get(2)) else {
                continue;
            };
            seen += 1;
            if !convention.is_match(found.as_str()) {
                let line = text[..found.start()].lines().count();
                offenders.push(format!("{path}:{line}: `{}`", found.as_str()));
            }
        }
    }
    assert!(
        seen > 50,
        "found only {seen} diagnostic codes: is the pattern stale?"
    );
    report(
        "diagnostic codes not of the form gear::kebab-case",
        offenders,
    );
}

/// Invariants under which gear-spec's non-test code may `unwrap()`/`expect()`: each is a
/// pattern of the calling line and why it cannot fail.
const INVARIANTS: &[(&str, &str)] = &[
    (
        r#"Regex::new\(r?#?""#,
        "a regex literal: compiled by the tests of its module, so it is valid",
    ),
    (
        r"\.lock\(\)\.unwrap\(\)",
        "a poisoned mutex means a panic on another thread already: propagate it",
    ),
    (
        r#"serde_(json|yaml_ng)::to_(string|string_pretty|value)\(.*\)\.expect\("#,
        "serializing the crate's own types (string keys, no maps with non-string keys) cannot fail",
    ),
    (
        r#"^\s*\.expect\("[^"]*(serializ|representable)[^"]*"\)"#,
        "the continuation line of such a serialization",
    ),
    (
        r"caps\.get\([0-9]\)\.unwrap\(\)|c\.get\([0-9]\)\.unwrap\(\)",
        "a capture group the matched regex always has",
    ),
];

/// gear-spec files that run only at development time (code generation), where a panic is a
/// bug report to ourselves, not a user's problem.
const DEV_TIME: &[&str] = &["gear-spec/src/schema.rs"];

#[test]
fn gear_spec_unwraps_only_documented_invariants() {
    let call = Regex::new(r"\.unwrap\(\)|\.expect\(").unwrap();
    let allowed: Vec<Regex> = INVARIANTS
        .iter()
        .map(|(p, _)| Regex::new(p).unwrap())
        .collect();
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        if !path.starts_with("gear-spec/src/")
            || DEV_TIME.contains(&path.as_str())
            || is_test_file(&path, &text)
        {
            continue;
        }
        let lines: Vec<&str> = non_test(&text).lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("//") || !call.is_match(line) {
                continue;
            }
            // A call continued from the line above counts with it.
            let joined = match n {
                0 => line.to_string(),
                _ => format!("{} {}", lines[n - 1].trim(), line.trim()),
            };
            if !allowed
                .iter()
                .any(|r| r.is_match(line) || r.is_match(&joined))
            {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    report(
        "unwrap()/expect() in gear-spec outside the documented invariants (return a Problem or an error, or document the invariant in xtask/src/tidy.rs)",
        offenders,
    );
}
