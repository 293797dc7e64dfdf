//! Every class of bad Gear.toml input: exit code 1 and a diagnostic naming the file,
//! line and column, and what to change (snapshots of stderr).

use std::path::Path;

use assert_cmd::Command;

/// Writes `files` (path, contents) under a fresh directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    dir
}

/// Runs `cargo gear validate --root DIR` and returns (exit code, stderr).
fn validate(root: &Path) -> (i32, String) {
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .args(["gear", "validate", "--color", "never", "--root"])
        .arg(root)
        .env_remove("CARGO_TERM_COLOR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const BASE: (&str, &str) = (
    "base/Gear.toml",
    "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n",
);

fn gear(extra: &str) -> String {
    format!(
        "[gear]\nname = \"g\"\nfrom = \"base\"\nimage = \"example/g\"\nversion = \"1.0.0\"\nlabel = \"G\"\ndescription = \"A gear\"\nauthor = \"Lab\"\nlicense = \"MIT\"\n{extra}"
    )
}

macro_rules! bad {
    ($name:ident, $files:expr) => {
        #[test]
        fn $name() {
            let dir = tree(&$files);
            let (code, stderr) = validate(dir.path());
            assert_eq!(code, 1, "stderr:\n{stderr}");
            insta::assert_snapshot!(stderr);
        }
    };
}

bad!(
    toml_syntax,
    [
        BASE,
        ("g/Gear.toml", "[layer]\nname = \"g\nimage = \"x\"\n")
    ]
);
bad!(
    unknown_field,
    [
        BASE,
        (
            "g/Gear.toml",
            "[layer]\nname = \"g\"\nfrom = \"base\"\nimage = \"x/g\"\npakages = [\"jq\"]\n"
        )
    ]
);
bad!(
    several_unknown_fields_and_other_problems,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("pakages = [\"jq\"]\ncomand = \"./run\"\n[gear.inputs.scan]\ntpye = { enum = [\"nifti\"] }\n")
                .replace("license = \"MIT\"", "license = \"mit\"")
        )
    ]
);
bad!(
    unknown_parent,
    [
        BASE,
        (
            "g/Gear.toml",
            "[layer]\nname = \"g\"\nfrom = \"bsae\"\nimage = \"x/g\"\n"
        )
    ]
);
bad!(
    cycle,
    [
        (
            "a/Gear.toml",
            "[layer]\nname = \"a\"\nfrom = \"c\"\nimage = \"x/a\"\n"
        ),
        (
            "b/Gear.toml",
            "[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\n"
        ),
        (
            "c/Gear.toml",
            "[layer]\nname = \"c\"\nfrom = \"b\"\nimage = \"x/c\"\n"
        ),
    ]
);
bad!(
    duplicate_name,
    [
        BASE,
        (
            "other/Gear.toml",
            "[layer]\nname = \"base\"\nimage = \"debian:trixie\"\n"
        )
    ]
);
bad!(
    external_with_build_fields,
    [(
        "base/Gear.toml",
        "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\npackages = [\"jq\"]\nrun = [\"true\"]\n"
    )]
);
bad!(
    gear_name_pattern,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("").replace("name = \"g\"", "name = \"My_Gear\"")
        )
    ]
);
bad!(
    gear_name_too_long,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("").replace("name = \"g\"", &format!("name = \"{}\"", "a".repeat(101)))
        )
    ]
);
bad!(
    config_default_wrong_type,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("[gear.config.n]\ntype = \"integer\"\ndefault = \"three\"\n")
        )
    ]
);
bad!(
    config_default_outside_enum,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear(
                "[gear.config.mode]\ntype = \"string\"\nenum = [\"fast\", \"slow\"]\ndefault = \"medium\"\n"
            )
        )
    ]
);
bad!(
    config_default_above_maximum,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("[gear.config.n]\ntype = \"integer\"\nminimum = 1\nmaximum = 8\ndefault = 64\n")
        )
    ]
);
bad!(
    config_default_and_optional,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("[gear.config.n]\ntype = \"integer\"\ndefault = 1\noptional = true\n")
        )
    ]
);
bad!(
    license_unknown,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("").replace("license = \"MIT\"", "license = \"mit-0\"")
        )
    ]
);
bad!(
    copy_path_escapes,
    [BASE, ("g/Gear.toml", &gear("copy = [\"../base\"]\n"))]
);
bad!(
    copy_path_missing,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        ("g/Gear.toml", &gear("copy = [\"run.pyy\"]\n"))
    ]
);
bad!(
    files_source_missing,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("files = { \"/opt/license.txt\" = \"license.txt\" }\n")
        )
    ]
);
bad!(
    several_problems_at_once,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("[gear.config.n]\ntype = \"integer\"\ndefault = 1.5\n")
                .replace("license = \"MIT\"", "license = \"Apache\"")
        ),
        (
            "h/Gear.toml",
            "[layer]\nname = \"h\"\nfrom = \"nowhere\"\nimage = \"x/h\"\n"
        ),
    ]
);

bad!(
    datetime_where_a_table_or_string_belongs,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        (
            "g/Gear.toml",
            &gear("env = 1979-05-27T07:32:00Z\nfiles = { \"/opt/x\" = 1979-05-27 }\n")
        )
    ]
);
bad!(
    copy_empty_entry_and_backslash,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        (
            "g/Gear.toml",
            &gear("copy = [\"run.py\", \"\", \"app\\\\main.py\"]\n")
        )
    ]
);
bad!(
    files_destination_above_root,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        (
            "g/Gear.toml",
            &gear("files = { \"/../../etc/x\" = \"run.py\" }\n")
        )
    ]
);
#[cfg(unix)]
bad!(
    file_name_with_backslash,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        ("g/data\\x.txt", "1\n"),
        ("g/Gear.toml", &gear(""))
    ]
);

bad!(
    image_not_a_docker_reference,
    [
        BASE,
        (
            "g/Gear.toml",
            &gear("").replace("image = \"example/g\"", "image = \"Newcomer/Word Count\"")
        )
    ]
);
bad!(
    command_script_missing,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        ("g/Gear.toml", &gear("command = \"python3 rnu.py\"\n"))
    ]
);
bad!(
    gear_without_command_or_run_file,
    [BASE, ("g/run.sh", "echo hi\n"), ("g/Gear.toml", &gear(""))]
);
bad!(
    gear_built_into_its_parents_image,
    [
        BASE,
        ("g/run.py", "print(1)\n"),
        (
            "g/Gear.toml",
            &gear("command = \"python3 run.py\"\n").replace(
                "image = \"example/g\"",
                "image = \"docker.io/library/debian\""
            )
        )
    ]
);

#[test]
fn registry_port_out_of_range() {
    let dir = tree(&[BASE]);
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .args(["gear", "validate", "--color", "never", "--registry"])
        .arg("127.0.0.1:99999/team")
        .arg("--root")
        .arg(dir.path())
        .env_remove("CARGO_TERM_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn members_glob_matching_nothing_warns() {
    let dir = tree(&[
        (
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\n\n[workspace.metadata.gear]\nmembers = [\"layers/*\", \"gaers/*\"]\n",
        ),
        ("layers/base/Gear.toml", BASE.1),
        ("gears/g/Gear.toml", &gear("command = \"python3 run.py\"\n")),
        ("gears/g/run.py", "print(1)\n"),
    ]);
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .args(["gear", "validate", "--color", "never", "--manifest-path"])
        .arg(dir.path().join("Cargo.toml"))
        .env_remove("CARGO_TERM_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&dir.path().display().to_string(), "[ROOT]");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    insta::assert_snapshot!(stderr);
}

#[cfg(unix)]
#[test]
fn symlink_pointing_outside() {
    let dir = tree(&[
        BASE,
        ("g/Gear.toml", &gear("")),
        ("secret.txt", "outside\n"),
    ]);
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), dir.path().join("g/link.txt"))
        .unwrap();
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 1, "stderr:\n{stderr}");
    let stderr = stderr.replace(&dir.path().display().to_string(), "[ROOT]");
    insta::assert_snapshot!(stderr);
}

#[test]
fn valid_tree_passes() {
    let dir = tree(&[
        BASE,
        ("g/Gear.toml", &gear("command = \"python3 run.py\"\n")),
        ("g/run.py", "print(1)\n"),
    ]);
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(stderr.contains("Checked 2 layers (1 gears)"), "{stderr}");
}

// Was a panic (exit 101): miette cannot draw a label past column 65,535. The line is shown
// cut around the span, with its real line and column.
bad!(
    span_past_column_65535,
    [
        BASE,
        (
            "g/Gear.toml",
            &format!(
                "[layer]\nname = \"g\"\nimage = \"x/g\"\n{}from = \"nope\"\n",
                " ".repeat(70_000)
            )
        )
    ]
);

/// Was a panic (exit 101): the report printed with `eprintln!` to a closed stderr, as in
/// `cargo gear validate 2>&1 | head -1`. The reader of the pipe is closed before the
/// command starts, so every write fails; the command still ends with its own exit code.
#[test]
fn closed_stderr_is_not_a_panic() {
    let dir = tree(&[
        BASE,
        (
            "g/Gear.toml",
            "[layer]\nname = \"g\"\nfrom = \"bsae\"\nimage = \"x/g\"\n",
        ),
    ]);
    for args in [
        &["validate"][..],
        &["validate", "--color", "always"],
        &["dockerfile"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-gear"))
            .arg("gear")
            .args(args)
            .arg("--root")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{args:?} (a panic exits with 101)");
    }
}

bad!(
    cargo_without_a_cargo_workspace,
    [
        BASE,
        ("g/Gear.toml", &gear("[gear.cargo]\npackage = \"tool\"\n"))
    ]
);
bad!(
    cargo_on_an_external_layer,
    [(
        "base/Gear.toml",
        "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n[layer.cargo]\npackage = \"tool\"\n"
    )]
);

/// A Cargo workspace with a library `shared` and a binary `tool`, whose gears `gears/*`
/// are `Gear.toml` bodies built `from` an external `base`.
fn rust_workspace(gears: &[(&str, &str)]) -> tempfile::TempDir {
    let mut files: Vec<(String, String)> = vec![
        (
            "Cargo.toml".into(),
            "[workspace]\nresolver = \"2\"\nmembers = [\"crates/*\"]\n\n[workspace.metadata.gear]\nmembers = [\"layers/*\", \"gears/*\"]\n".into(),
        ),
        (
            "crates/shared/Cargo.toml".into(),
            "[package]\nname = \"shared\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into(),
        ),
        ("crates/shared/src/lib.rs".into(), "pub fn f() {}\n".into()),
        (
            "crates/tool/Cargo.toml".into(),
            "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[features]\nfast = []\n".into(),
        ),
        ("crates/tool/src/main.rs".into(), "fn main() {}\n".into()),
        (
            "layers/base/Gear.toml".into(),
            "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n".into(),
        ),
    ];
    for (name, cargo) in gears {
        files.push((
            format!("gears/{name}/Gear.toml"),
            format!(
                "[gear]\nname = \"{name}\"\nfrom = \"base\"\nimage = \"example/{name}\"\nversion = \"1.0.0\"\nlabel = \"G\"\ndescription = \"A gear\"\nauthor = \"Lab\"\nlicense = \"MIT\"\n\n[gear.cargo]\n{cargo}"
            ),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    tree(&refs)
}

/// Bad `[gear.cargo]` declarations fail the plan (`validate`, and `build` before any image is
/// built), each located in its Gear.toml: an unknown package, a package without binaries, a
/// binary or feature that does not exist, a target that is not installed.
#[test]
fn rust_gear_declarations() {
    let dir = rust_workspace(&[
        ("a-package", "package = \"tol\"\n"),
        ("b-library", "package = \"shared\"\n"),
        ("c-bin", "package = \"tool\"\nbin = \"tol\"\n"),
        ("d-feature", "package = \"tool\"\nfeatures = [\"fats\"]\n"),
        (
            "e-target",
            "package = \"tool\"\ntarget = \"cargo-gear-test-unknown-none\"\n",
        ),
    ]);
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .args(["gear", "validate", "--color", "never"])
        .current_dir(dir.path())
        .env_remove("CARGO_TERM_COLOR")
        .env_remove("CARGO_TARGET_DIR")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    // The installed targets depend on the host.
    let stderr = mask_installed(&stderr);
    insta::assert_snapshot!(stderr);
}

/// `(installed: …)` with the host's list replaced, for a stable snapshot.
fn mask_installed(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("(installed: ") {
        out.push_str(&rest[..at]);
        out.push_str("(installed: …)");
        let tail = &rest[at..];
        rest = &tail[tail.find(')').map_or(tail.len(), |i| i + 1)..];
    }
    out.push_str(rest);
    out
}
