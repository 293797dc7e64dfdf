//! Messages that lead to the fix, where they need a Docker engine: a failed pull of an
//! external layer names both ways to build on another image.
//!
//! Run with `CARGO_GEAR_TEST_ENGINE=1 cargo test -p cargo-gear --test e2e_hints`.

use crate::scratch;

/// An external image on a registry host that never resolves (`.invalid`), and a layer on it.
const UNPULLABLE: &str = "cargo-gear-test.invalid/python:3.12-slim";

#[test]
fn a_failed_pull_shows_both_substitutes_with_the_reference() {
    if scratch::connect().is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for (path, text) in [
        (
            "python/Gear.toml",
            format!("[layer]\nname = \"python\"\nimage = \"{UNPULLABLE}\"\n"),
        ),
        (
            "mine/Gear.toml",
            "[layer]\nname = \"mine\"\nfrom = \"python\"\nimage = \"cargo-gear-test/never-built\"\n"
                .to_string(),
        ),
    ] {
        let p = t.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let out = scratch::gear_command(t.path(), &["build", "--root", "."], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    insta::with_settings!({filters => vec![
        // The engine's own words (resolver address and all) vary by machine.
        (r"could not pull `([^`]+)`: .*", "could not pull `$1`: [ENGINE MESSAGE]"),
        (r"in \d+\.\ds", "in [TIME]"),
    ]}, {
        insta::assert_snapshot!("failed_pull", stderr);
    });
    // The example keeps the image's path on a registry of one's own.
    assert!(
        stderr.contains(&format!(
            "--substitute {UNPULLABLE}=registry.example.org/python:3.12-slim"
        )),
        "{stderr}"
    );
}
