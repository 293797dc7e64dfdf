//! `cargo gear ci` on bad input (issue 11): a workspace with validation errors fails exactly
//! like `cargo gear validate` (exit code 1, the same diagnostics, no pipeline on stdout), before
//! any engine or registry is asked; an unknown CI flavour, or none, is a usage error (exit 2).

use std::path::Path;

use assert_cmd::Command;

/// A nowhere registry: the command must fail before it would ask one.
const NOWHERE: &str = "127.0.0.1:9/never-asked";

/// `cargo-gear gear ARGS --root ROOT`, colors off: (exit code, stdout, stderr).
fn gear(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .arg("gear")
        .args(args)
        .args(["--color", "never", "--root"])
        .arg(root)
        .env_remove("CARGO_TERM_COLOR")
        // No engine either: nothing may be asked before the workspace is valid.
        .env("DOCKER_HOST", "tcp://127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A workspace of two Gear.toml files, the gear's ending with `gear_extra`.
fn workspace(gear_from: &str, gear_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "base/Gear.toml",
            "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n".to_owned(),
        ),
        (
            "g/Gear.toml",
            format!(
                "[gear]\nname = \"g\"\nfrom = \"{gear_from}\"\nimage = \"example/g\"\nversion = \"1.0.0\"\n\
                 label = \"G\"\ndescription = \"A gear\"\nauthor = \"Lab\"\n{gear_extra}"
            ),
        ),
    ];
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// For every CI flavour, with and without `--registry`: `ci` fails with `validate`'s exit
/// code and stderr, and prints no pipeline.
fn fails_like_validate(root: &Path) {
    let (code, stdout, expected) = gear(root, &["validate"]);
    assert_eq!(code, 1, "validate fails:\n{expected}");
    assert_eq!(stdout, "");
    assert!(expected.contains("gear::"), "{expected}");
    for format in ["gitlab", "github", "github-workflow"] {
        for registry in [&["--registry", NOWHERE][..], &[]] {
            let args = [&["ci", "--format", format][..], registry].concat();
            let (code, stdout, stderr) = gear(root, &args);
            assert_eq!(code, 1, "{args:?}:\n{stderr}");
            assert_eq!(stdout, "", "{args:?} printed a pipeline");
            assert_eq!(stderr, expected, "{args:?} fails like validate");
        }
    }
}

#[test]
fn ci_on_a_gear_toml_that_does_not_parse_fails_like_validate() {
    let dir = workspace("base", "license = \"MIT\"\nbogus = 1\n");
    fails_like_validate(dir.path());
}

#[test]
fn ci_on_a_workspace_with_several_semantic_problems_fails_like_validate() {
    let dir = workspace("nowhere", "license = \"Not-A-License\"\n");
    fails_like_validate(dir.path());
}

#[test]
fn an_unknown_ci_flavour_is_a_usage_error() {
    let dir = workspace("base", "license = \"MIT\"\n");
    let (code, stdout, stderr) = gear(dir.path(), &["ci", "--format", "jenkins"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_missing_ci_flavour_is_a_usage_error() {
    let dir = workspace("base", "license = \"MIT\"\n");
    let (code, stdout, stderr) = gear(dir.path(), &["ci"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.contains("the following required arguments were not provided")
            && stderr.contains("--format <FORMAT>"),
        "{stderr}"
    );
}
