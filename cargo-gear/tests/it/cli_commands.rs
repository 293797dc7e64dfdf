//! The engine-free commands on the example monorepo and on scratch copies of it.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn monorepo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/monorepo")
        .canonicalize()
        .unwrap()
}

/// `cargo-gear gear ARGS` in `dir`, colors off.
fn gear(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("cargo-gear")
        .unwrap()
        .current_dir(dir)
        .arg("gear")
        .args(args)
        .env("CARGO_TERM_COLOR", "never")
        // No engine: commands that only plan must keep working, with status "unknown".
        .env("DOCKER_HOST", "unix:///nonexistent/cargo-gear-test.sock")
        // Files land in the scratch workspace's own target/.
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap()
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Copies a directory tree (files and executable bits), skipping `target/`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn scratch_monorepo() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("monorepo");
    copy_tree(&monorepo(), &root);
    (t, root)
}

#[test]
fn graph_formats() {
    let root = monorepo();
    insta::assert_snapshot!("graph_tree", stdout_of(&gear(&root, &["graph"])));
    insta::assert_snapshot!(
        "graph_dot",
        stdout_of(&gear(&root, &["graph", "--format", "dot"]))
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&gear(&root, &["graph", "--format", "json"]))).unwrap();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 9);
    let recon = layers.iter().find(|l| l["name"] == "recon-all").unwrap();
    assert_eq!(recon["kind"], "gear");
    assert_eq!(recon["parent"], "fw-freesurfer");
    assert_eq!(recon["image"], "example/recon-all");
    let fs = layers.iter().find(|l| l["name"] == "freesurfer").unwrap();
    assert_eq!(fs["kind"], "external");
    assert!(fs["parent"].is_null());
}

#[test]
fn plan_json_lists_layers_in_build_order() {
    let root = monorepo();
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&gear(&root, &["plan", "--format", "json"]))).unwrap();
    let layers = json["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("freesurfer") < pos("fw-freesurfer") && pos("fw-freesurfer") < pos("recon-all"));
    assert!(pos("python") < pos("fw-python") && pos("fw-python") < pos("csv-summary"));
    for l in layers {
        let fp = l["fingerprint"].as_str().unwrap();
        assert!(fp.starts_with("sha256:") && fp.len() == 71, "{fp}");
        assert_eq!(l["status"], "unknown");
        assert!(l["reasons"].as_array().unwrap().is_empty());
    }
    // A child's content tag is derived from its own fingerprint.
    let recon = layers.iter().find(|l| l["name"] == "recon-all").unwrap();
    let short = &recon["fingerprint"].as_str().unwrap()[7..19];
    assert_eq!(
        recon["content_tag"],
        format!("example/recon-all:gear-{short}")
    );
    assert_eq!(recon["version_tag"], "example/recon-all:0.1.0");
}

#[test]
fn plan_selection_includes_ancestors_only() {
    let root = monorepo();
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&gear(
        &root,
        &["plan", "-p", "csv-summary", "--format", "json"],
    )))
    .unwrap();
    let names: Vec<&str> = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["python", "fw-python", "csv-summary"]);
}

#[test]
fn substitution_changes_from_and_fingerprint() {
    let root = monorepo();
    let plain = stdout_of(&gear(&root, &["dockerfile", "-p", "fw-python"]));
    let subst = stdout_of(&gear(
        &root,
        &[
            "dockerfile",
            "-p",
            "fw-python",
            "--substitute",
            "python:3.12-slim=mirror.local/python:3.12-slim",
        ],
    ));
    assert!(plain.contains("FROM python:3.12-slim\n"), "{plain}");
    assert!(
        subst.contains("FROM mirror.local/python:3.12-slim\n"),
        "{subst}"
    );
    let fp = |args: &[&str]| -> String {
        let json: serde_json::Value = serde_json::from_str(&stdout_of(&gear(&root, args))).unwrap();
        json["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "csv-summary")
            .unwrap()["fingerprint"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(
        fp(&["plan", "--format", "json"]),
        fp(&[
            "plan",
            "--format",
            "json",
            "--substitute",
            "python:3.12-slim=mirror.local/python:3.12-slim"
        ])
    );
}

#[test]
fn dockerfile_of_external_layer_is_refused() {
    let out = gear(&monorepo(), &["dockerfile", "-p", "freesurfer"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("external image freesurfer/freesurfer:7.3.2"),
        "{err}"
    );
}

#[test]
fn unknown_package_suggests() {
    let out = gear(&monorepo(), &["plan", "-p", "csv-sumary"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no layer named `csv-sumary`") && err.contains("did you mean `csv-summary`?"),
        "{err}"
    );
}

#[test]
fn dockerfile_write_and_determinism() {
    let (_t, root) = scratch_monorepo();
    let first = stdout_of(&gear(&root, &["dockerfile", "-p", "recon-all"]));
    let second = stdout_of(&gear(&root, &["dockerfile", "-p", "recon-all"]));
    assert_eq!(first, second);
    let out = gear(&root, &["dockerfile", "--write"]);
    assert!(out.status.success());
    let written =
        std::fs::read_to_string(root.join("target/gear/dockerfiles/recon-all.Dockerfile")).unwrap();
    assert_eq!(written, first);
    assert!(
        !root
            .join("target/gear/dockerfiles/freesurfer.Dockerfile")
            .exists()
    );
}

#[test]
fn committed_manifests_are_current() {
    let out = gear(&monorepo(), &["manifest", "--check"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn manifest_check_shows_diff_then_manifest_fixes_it() {
    let (_t, root) = scratch_monorepo();
    let toml = root.join("gears/csv-summary/Gear.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    std::fs::write(&toml, text).unwrap();

    let out = gear(&root, &["manifest", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(
        diff.contains("--- a/gears/csv-summary/manifest.json"),
        "{diff}"
    );
    assert!(
        diff.contains("-  \"version\": \"0.1.0\",") && diff.contains("+  \"version\": \"0.2.0\","),
        "{diff}"
    );
    assert!(
        diff.contains("+      \"image\": \"example/csv-summary:0.2.0\""),
        "{diff}"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("1 of 5 gear manifests are stale"), "{err}");

    assert!(gear(&root, &["manifest"]).status.success());
    assert!(gear(&root, &["manifest", "--check"]).status.success());
    let written = std::fs::read_to_string(root.join("gears/csv-summary/manifest.json")).unwrap();
    assert!(written.ends_with("}\n"));
}

#[test]
fn init_scaffolds_a_gear_that_validates() {
    let (_t, root) = scratch_monorepo();
    let out = gear(&root, &["init", "my-gear", "--from", "fw-python"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.join("gears/my-gear");
    for f in [
        "Gear.toml",
        "run.py",
        "app/main.py",
        "utils/__init__.py",
        "docs/usage.md",
        "README.md",
        "manifest.json",
    ] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_ne!(
            std::fs::metadata(dir.join("run.py"))
                .unwrap()
                .permissions()
                .mode()
                & 0o111,
            0
        );
    }
    let toml = std::fs::read_to_string(dir.join("Gear.toml")).unwrap();
    assert!(toml.contains("image = \"example/my-gear\""), "{toml}");
    // Run directories (inputs, API keys) under target/ stay out of git.
    let ignore = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    assert!(
        ignore
            .lines()
            .any(|l| l.trim_end_matches('/').trim_start_matches('/') == "target"),
        "{ignore}"
    );
    let out = gear(&root, &["validate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gear(&root, &["manifest", "--check"]).status.success());
    // Never overwrites.
    assert_eq!(
        gear(&root, &["init", "my-gear", "--from", "fw-python"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        gear(&root, &["init", "My_Gear", "--from", "fw-python"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn both_spellings_and_help() {
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .args(["gear", "--help"])
        .env("CARGO_TERM_COLOR", "never")
        .output()
        .unwrap();
    insta::assert_snapshot!("help", String::from_utf8(out.stdout).unwrap());
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("gear"));
}

#[cfg(unix)]
#[test]
fn broken_pipe_exits_zero() {
    use std::process::{Command as Std, Stdio};
    // Enough layers that the JSON graph is far larger than a pipe buffer: with the reading
    // end closed and never read, the write must fail with EPIPE.
    let t = tempfile::tempdir().unwrap();
    let mut files = vec![(
        "base/Gear.toml".to_string(),
        "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n".to_string(),
    )];
    for i in 0..400 {
        files.push((
            format!("l{i}/Gear.toml"),
            format!("[layer]\nname = \"l{i}\"\nfrom = \"base\"\nimage = \"x/l{i}\"\n"),
        ));
    }
    for (path, text) in &files {
        let p = t.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let bin = assert_cmd::cargo::cargo_bin("cargo-gear");
    let mut child = Std::new(bin)
        .current_dir(t.path())
        .args(["gear", "graph", "--format", "json", "--root", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_color_is_honoured() {
    let (_t, root) = scratch_monorepo();
    std::fs::write(
        root.join("gears/hello/Gear.toml"),
        "[gear]\nname = \"hello\"\nfrom = \"nope\"\n",
    )
    .unwrap();
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .current_dir(&root)
        .args(["gear", "validate", "--color", "always"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
    let out = Command::cargo_bin("cargo-gear")
        .unwrap()
        .current_dir(&root)
        .args(["gear", "validate"])
        .env_remove("CARGO_TERM_COLOR")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
}

#[test]
fn discovery_finds_metadata_members_and_packages_with_a_gear_toml() {
    let t = tempfile::tempdir().unwrap();
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\"]\n\n[workspace.metadata.gear]\nmembers = [\"layers/*\"]\n",
        ),
        (
            "layers/base/Gear.toml",
            "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n",
        ),
        (
            "crates/tool/Cargo.toml",
            "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        ),
        ("crates/tool/src/lib.rs", ""),
        (
            "crates/tool/Gear.toml",
            "[layer]\nname = \"tool\"\nfrom = \"base\"\nimage = \"x/tool\"\ncopy = [\"src\"]\n",
        ),
        (
            "crates/other/Cargo.toml",
            "[package]\nname = \"other\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
        ),
        ("crates/other/src/lib.rs", ""),
        (
            "stray/Gear.toml",
            "[layer]\nname = \"stray\"\nimage = \"x:1\"\n",
        ),
    ];
    for (path, text) in files {
        let p = t.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    // From a subdirectory, like cargo.
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&gear(
        &t.path().join("crates/tool/src"),
        &["graph", "--format", "json"],
    )))
    .unwrap();
    let names: Vec<&str> = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    // A Gear.toml outside the members and packages is not part of the workspace.
    assert_eq!(names, ["base", "tool"]);

    // A member pattern matching a directory without a Gear.toml is an error naming it.
    std::fs::create_dir_all(t.path().join("layers/empty")).unwrap();
    let out = gear(t.path(), &["graph"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("layers/empty matches gear member pattern `layers/*` but has no Gear.toml"),
        "{err}"
    );
}

/// What bash completes for `cargo gear WORDS…` once cargo hands the words to `cargo-gear`
/// (the last word is the one being completed).
#[cfg(unix)]
fn bash_completions(script: &str, words: &[&str]) -> String {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("cargo-gear.bash");
    std::fs::write(&path, script).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len();
    let prev = if cword > 1 {
        quoted[cword - 2].clone()
    } else {
        "cargo-gear".into()
    };
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(cargo-gear {}); COMP_CWORD={cword}; \
             _cargo__gear cargo-gear {} {prev}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            quoted.join(" "),
            quoted[cword - 1],
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_for_every_shell() {
    let here = std::env::temp_dir();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = stdout_of(&gear(&here, &["completions", shell]));
        for command in ["validate", "build", "completions", "init"] {
            assert!(script.contains(command), "{shell}: no `{command}`");
        }
    }
    // zsh: cargo's `_cargo` calls `_cargo-gear` for `cargo gear …`.
    assert!(stdout_of(&gear(&here, &["completions", "zsh"])).starts_with("#compdef cargo-gear\n"));
    // fish and PowerShell: `cargo gear …` itself.
    let fish = stdout_of(&gear(&here, &["completions", "fish"]));
    assert!(fish.contains("complete -c cargo "), "{fish}");
    #[cfg(unix)]
    {
        // bash: cargo's completion hands `cargo gear build --ke` to `cargo-gear build --ke`.
        let bash = stdout_of(&gear(&here, &["completions", "bash"]));
        assert!(bash.contains("complete -F _cargo__gear"), "{bash}");
        assert_eq!(bash_completions(&bash, &["bu"]), "build\n");
        assert_eq!(
            bash_completions(&bash, &["build", "--ke"]),
            "--keep-going\n"
        );
        assert!(
            bash_completions(&bash, &["completions", ""])
                .contains("\nbash\nzsh\nfish\npowershell\n")
        );
    }
    let out = gear(&here, &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

/// stderr of a successful command with the scratch root's path as `[ROOT]`.
fn stderr_in(root: &Path, out: &std::process::Output) -> String {
    stdout_of(out);
    String::from_utf8(out.stderr.clone())
        .unwrap()
        .replace(&root.display().to_string(), "[ROOT]")
}

#[test]
fn clean_removes_state_and_runs_and_runs_only_with_runs() {
    let (_t, root) = scratch_monorepo();
    let gear_dir = root.join("target/gear");
    let files = [
        ("state/csv-summary.json", "{}"),
        ("logs/csv-summary.log", "step 1/3\n"),
        ("hash-cache", "cache"),
        ("runs/hello-0.1.0-20260101T000000Z/output/out.txt", "12345"),
        ("runs/hello-0.1.0-20260101T000000Z/config.json", "{}"),
        ("build.lock", ""),
    ];
    for (path, text) in files {
        let p = gear_dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    // Works when the layers do not load: it needs only where the workspace is.
    std::fs::write(root.join("gears/hello/Gear.toml"), "[gear\n").unwrap();

    let runs = stderr_in(&root, &gear(&root, &["clean", "--runs"]));
    insta::assert_snapshot!("clean_runs", runs);
    assert!(!gear_dir.join("runs").exists());
    assert!(gear_dir.join("state/csv-summary.json").is_file());

    let all = stderr_in(&root, &gear(&root, &["clean"]));
    insta::assert_snapshot!("clean_all", all);
    let left: Vec<_> = std::fs::read_dir(&gear_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["build.lock"],
        "the lock file stays for a waiting build"
    );

    let again = stderr_in(&root, &gear(&root, &["clean"]));
    insta::assert_snapshot!("clean_nothing", again);
    // Images are prune's job: clean never asks the engine (there is none here).
}

#[test]
fn an_undeclared_input_shows_the_block_to_add() {
    let out = gear(
        &monorepo(),
        &["run", "-p", "csv-summary", "-i", "scan=scan.nii.gz"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    insta::assert_snapshot!("undeclared_input", err);
    // A near miss is a typo, not a new input: no block.
    let out = gear(
        &monorepo(),
        &["run", "-p", "csv-summary", "-i", "tabel=data.csv"],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("did you mean `table`?"), "{err}");
    assert!(!err.contains("[gear.inputs."), "{err}");
}

/// The JSON lines of a `--format json` command, each checked against the published schema.
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    let schema: serde_json::Value =
        serde_json::from_str(&cargo_gear::diagnostics::json_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{line}: {errors:?}");
            v
        })
        .collect()
}

#[test]
fn json_output_schema() {
    insta::assert_snapshot!("json_schema", cargo_gear::diagnostics::json_schema());
}

/// A scratch copy of the monorepo with two problems: two layers on parents that do not exist.
fn two_problems() -> (tempfile::TempDir, PathBuf) {
    let (t, root) = scratch_monorepo();
    std::fs::write(
        root.join("gears/hello/Gear.toml"),
        "[layer]\nname = \"hello\"\nfrom = \"nope\"\nimage = \"x/hello\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("gears/extra")).unwrap();
    std::fs::write(
        root.join("gears/extra/Gear.toml"),
        "[layer]\nname = \"extra\"\nimage = \"x/extra\"\nfrom = \"fw-pyton\"\n",
    )
    .unwrap();
    (t, root)
}

#[test]
fn validate_json_emits_every_diagnostic_then_how_it_ended() {
    let (_t, root) = two_problems();
    let out = gear(&root, &["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    insta::assert_json_snapshot!("validate_json_problems", lines);
    // Where the terminal's report points.
    let human = String::from_utf8(gear(&root, &["validate"]).stderr).unwrap();
    for d in lines.iter().filter(|l| l["event"] == "diagnostic") {
        let at = format!(
            "╭─[{}:{}:{}]",
            d["file"].as_str().unwrap(),
            d["line"],
            d["column"]
        );
        assert!(human.contains(&at), "{at} in {human}");
    }

    let out = gear(&monorepo(), &["validate", "--format", "json"]);
    assert_eq!(
        json_lines(&out),
        [
            serde_json::json!({"event": "validate-finished", "success": true, "errors": 0, "warnings": 0})
        ]
    );
    assert!(out.status.success());
}

#[test]
fn why_json_emits_the_layer_or_the_diagnostics() {
    let out = gear(&monorepo(), &["why", "csv-summary", "--format", "json"]);
    let lines = json_lines(&out);
    assert!(out.status.success());
    assert_eq!(lines.len(), 2, "{lines:?}");
    let layer = &lines[0];
    assert_eq!(layer["event"], "layer");
    assert_eq!(layer["name"], "csv-summary");
    assert_eq!(layer["kind"], "gear");
    assert_eq!(layer["status"], "unknown");
    assert_eq!(layer["engine"], false);
    assert_eq!(layer["parent"]["name"], "fw-python");
    assert_eq!(layer["version_tag"], "example/csv-summary:0.1.0");
    assert_eq!(lines[1]["event"], "why-finished");
    assert_eq!(lines[1]["success"], true);

    let out = gear(&monorepo(), &["why", "csv-sumary", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_json_snapshot!("why_json_unknown_layer", json_lines(&out));
}

/// Several problems render each like a single one: a code line, the message, its snippet
/// and help; no `Error:` prefix of miette's related diagnostics; then how many.
#[test]
fn one_rendering_for_one_or_many_problems() {
    let (_t, root) = two_problems();
    let out = gear(&root, &["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let many = String::from_utf8(out.stderr).unwrap();
    insta::assert_snapshot!("validate_two_problems", many);
    assert!(!many.contains("Error:"), "{many}");

    std::fs::remove_dir_all(root.join("gears/extra")).unwrap();
    let out = gear(&root, &["validate"]);
    let one = String::from_utf8(out.stderr).unwrap();
    let unknown_parent = |text: &str| {
        let start = text.find("gear::unknown-parent").unwrap();
        let rest = &text[start..];
        rest[..rest.find("\n\n  × ").map_or(rest.len(), |e| e)]
            .trim_end()
            .to_string()
    };
    assert_eq!(unknown_parent(&one), unknown_parent(&many));
}

#[test]
fn init_from_an_unknown_layer_prints_the_external_layer_block() {
    let (_t, root) = scratch_monorepo();
    let out = gear(&root, &["init", "my-gear", "--from", "fw-pyton"]);
    insta::assert_snapshot!("init_unknown_from", stderr_in(&root, &out));
    let out = gear(&root, &["init", "other", "--from", "matlab"]);
    let err = stderr_in(&root, &out);
    assert!(
        err.contains("name = \"matlab\"\nimage = \"REPOSITORY:TAG\""),
        "{err}"
    );
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn init_from_an_image_reference_declares_the_external_layer() {
    let (_t, root) = scratch_monorepo();
    // Declared already: the gear is built on that layer.
    let out = gear(&root, &["init", "on-python", "--from", "python:3.12-slim"]);
    let err = stderr_in(&root, &out);
    assert!(!err.contains("external layer"), "{err}");
    let toml = std::fs::read_to_string(root.join("gears/on-python/Gear.toml")).unwrap();
    assert!(toml.contains("from = \"python\"\n"), "{toml}");
    // New: an external layer under layers/, named after the image (its tag when the name is taken).
    let out = gear(
        &root,
        &["init", "on-alpine", "--from", "python:3.11-alpine"],
    );
    insta::assert_snapshot!("init_from_image", stderr_in(&root, &out));
    let layer = std::fs::read_to_string(root.join("layers/python-3-11-alpine/Gear.toml")).unwrap();
    insta::assert_snapshot!("init_from_image_layer", layer);
    let toml = std::fs::read_to_string(root.join("gears/on-alpine/Gear.toml")).unwrap();
    assert!(toml.contains("from = \"python-3-11-alpine\"\n"), "{toml}");
    assert!(gear(&root, &["validate"]).status.success());
    assert!(gear(&root, &["manifest", "--check"]).status.success());
}

#[test]
fn init_namespaces_the_image_or_says_why_it_matters() {
    let (_t, root) = scratch_monorepo();
    let image_of = |gear_name: &str| {
        let toml =
            std::fs::read_to_string(root.join(format!("gears/{gear_name}/Gear.toml"))).unwrap();
        toml.lines()
            .find(|l| l.starts_with("image = "))
            .unwrap()
            .to_string()
    };
    // An external parent's namespace is its vendor's: the workspace's is used instead.
    assert!(
        gear(&root, &["init", "on-fs", "--from", "freesurfer"])
            .status
            .success()
    );
    assert_eq!(image_of("on-fs"), "image = \"example/on-fs\"");
    assert!(
        gear(
            &root,
            &[
                "init",
                "mine",
                "--from",
                "fw-python",
                "--namespace",
                "my-lab"
            ]
        )
        .status
        .success()
    );
    assert_eq!(image_of("mine"), "image = \"my-lab/mine\"");

    // Nothing to take a namespace from: a comment says why one matters.
    let t = tempfile::tempdir().unwrap();
    let out = gear(t.path(), &["init", "solo", "--from", "python:3.12-slim"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = std::fs::read_to_string(t.path().join("solo/Gear.toml")).unwrap();
    insta::assert_snapshot!("init_without_namespace", toml);
    assert!(gear(t.path(), &["validate"]).status.success());
}

/// A real gear fixture of gear-spec (sources in its SOURCES.md).
fn real_gear(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gear-spec/tests/fixtures/real-gears")
        .join(name)
}

/// The scratch monorepo with real gears copied under `incoming/`, outside its members.
fn monorepo_with_incoming(gears: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let (t, root) = scratch_monorepo();
    for name in gears {
        copy_tree(&real_gear(name), &root.join("incoming").join(name));
    }
    (t, root)
}

#[test]
fn import_dry_run_prints_the_gear_toml_files_and_writes_nothing() {
    let (_t, root) = monorepo_with_incoming(&["flywheel-apps__debug-generatefile"]);
    let out = gear(
        &root,
        &[
            "import",
            "incoming/flywheel-apps__debug-generatefile",
            "--dry-run",
        ],
    );
    insta::assert_snapshot!("import_dry_run", stdout_of(&out));
    insta::assert_snapshot!("import_dry_run_warnings", stderr_in(&root, &out));
    assert!(!root.join("layers/ubuntu").exists());
    assert!(
        !root
            .join("incoming/flywheel-apps__debug-generatefile/Gear.toml")
            .exists()
    );
}

#[test]
fn import_into_the_workspace_shares_one_external_layer() {
    let (_t, root) = monorepo_with_incoming(&[
        "flywheel-apps__debug-generatefile",
        "flywheel-apps__example-gear",
        "scitran-apps__dicom-mr-classifier",
    ]);
    // A second gear on ubuntu:trusty.
    let other = root.join("incoming/other");
    copy_tree(&real_gear("flywheel-apps__debug-generatefile"), &other);
    let manifest = std::fs::read_to_string(other.join("manifest.json")).unwrap();
    std::fs::write(
        other.join("manifest.json"),
        manifest.replace("\"debug-generatefile\"", "\"other\""),
    )
    .unwrap();

    let out = gear(
        &root,
        &[
            "import",
            "incoming/flywheel-apps__debug-generatefile",
            "--into",
            "gears/debug-generatefile",
        ],
    );
    insta::assert_snapshot!("import_into", stderr_in(&root, &out));
    let layer = std::fs::read_to_string(root.join("layers/ubuntu/Gear.toml")).unwrap();
    assert!(layer.contains("image = \"ubuntu:trusty\""), "{layer}");
    let copied = root.join("gears/debug-generatefile");
    for file in ["Dockerfile", "manifest.json", "Gear.toml"] {
        assert!(copied.join(file).is_file(), "{file}");
    }
    let toml = std::fs::read_to_string(copied.join("Gear.toml")).unwrap();
    assert!(toml.contains("from = \"ubuntu\""), "{toml}");

    // The second gear on the same image reuses the layer the first one created; a gear on
    // python:3.7-buster gets a new one named after its tag (`python` is the workspace's
    // python:3.12-slim).
    let out = gear(
        &root,
        &[
            "import",
            "incoming/other",
            "incoming/scitran-apps__dicom-mr-classifier",
        ],
    );
    let stderr = stderr_in(&root, &out);
    assert!(!stderr.contains("external layer `ubuntu"), "{stderr}");
    let toml = std::fs::read_to_string(other.join("Gear.toml")).unwrap();
    assert!(toml.contains("from = \"ubuntu\""), "{toml}");
    let layer = std::fs::read_to_string(root.join("layers/python-3-7-buster/Gear.toml")).unwrap();
    assert!(layer.contains("image = \"python:3.7-buster\""), "{layer}");
    let layers: Vec<_> = std::fs::read_dir(root.join("layers")).unwrap().collect();
    assert_eq!(
        layers.len(),
        6,
        "freesurfer, fw-freesurfer, fw-python, python + 2 new"
    );

    // --from names the parent: no external layer.
    let out = gear(
        &root,
        &[
            "import",
            "incoming/flywheel-apps__example-gear",
            "--from",
            "fw-python",
        ],
    );
    stdout_of(&out);
    let toml = std::fs::read_to_string(root.join("incoming/flywheel-apps__example-gear/Gear.toml"))
        .unwrap();
    assert!(toml.contains("from = \"fw-python\""), "{toml}");
    assert!(!root.join("layers/ubuntu-14-04").exists());
}

#[test]
fn import_never_overwrites_without_force() {
    let (_t, root) = monorepo_with_incoming(&["flywheel-apps__debug-generatefile"]);
    let dir = "incoming/flywheel-apps__debug-generatefile";
    std::fs::write(root.join(dir).join("Gear.toml"), "# mine\n").unwrap();
    let out = gear(&root, &["import", dir]);
    assert!(!out.status.success());
    insta::assert_snapshot!(
        "import_existing_gear_toml",
        String::from_utf8_lossy(&out.stderr).replace(&root.display().to_string(), "[ROOT]")
    );
    assert_eq!(
        std::fs::read_to_string(root.join(dir).join("Gear.toml")).unwrap(),
        "# mine\n"
    );
    assert!(!root.join("layers/ubuntu").exists(), "nothing written");

    // --into an existing directory with one of the gear's files: refused, then --force.
    std::fs::remove_file(root.join(dir).join("Gear.toml")).unwrap();
    std::fs::create_dir_all(root.join("gears/dg")).unwrap();
    std::fs::write(root.join("gears/dg/Dockerfile"), "old").unwrap();
    let out = gear(&root, &["import", dir, "--into", "gears/dg"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gears/dg/Dockerfile already exists"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    let out = gear(&root, &["import", dir, "--into", "gears/dg", "--force"]);
    stdout_of(&out);
    assert_ne!(
        std::fs::read_to_string(root.join("gears/dg/Dockerfile")).unwrap(),
        "old"
    );
    assert!(root.join("gears/dg/Gear.toml").is_file());
}

#[test]
fn import_errors_name_the_file_and_the_fix() {
    let (_t, root) = monorepo_with_incoming(&["flywheel-apps__pydeface-gear"]);
    let show = |out: &std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).replace(&root.display().to_string(), "[ROOT]")
    };
    std::fs::create_dir_all(root.join("incoming/empty")).unwrap();
    insta::assert_snapshot!(
        "import_no_manifest",
        show(&gear(&root, &["import", "incoming/empty"]))
    );
    std::fs::create_dir_all(root.join("incoming/broken")).unwrap();
    std::fs::write(
        root.join("incoming/broken/manifest.json"),
        "{\n  \"name\": \"broken\",\n  \"version\": 1.0.0\n}\n",
    )
    .unwrap();
    insta::assert_snapshot!(
        "import_manifest_not_json",
        show(&gear(&root, &["import", "incoming/broken"]))
    );
    std::fs::write(
        root.join("incoming/broken/manifest.json"),
        "{\"name\": \"broken\"}",
    )
    .unwrap();
    std::fs::write(
        root.join("incoming/broken/Dockerfile"),
        "FROM debian\nRUN <<EOF\necho never ends\n",
    )
    .unwrap();
    insta::assert_snapshot!(
        "import_dockerfile_unreadable",
        show(&gear(&root, &["import", "incoming/broken"]))
    );
    // No Dockerfile: --from is needed, and then the manifest alone is imported.
    let dir = "incoming/flywheel-apps__pydeface-gear";
    insta::assert_snapshot!("import_no_dockerfile", show(&gear(&root, &["import", dir])));
    let out = gear(&root, &["import", dir, "--from", "fw-python"]);
    insta::assert_snapshot!("import_no_dockerfile_from", stderr_in(&root, &out));
    assert!(root.join(dir).join("Gear.toml").is_file());
    // --into with several gears.
    let out = gear(&root, &["import", dir, "incoming/broken", "--into", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn import_in_place_under_a_members_glob_reuses_the_workspace_layer() {
    let (_t, root) = scratch_monorepo();
    // A gear copied into gears/ has no Gear.toml yet (which discovery otherwise refuses); it
    // builds on python:3.12-slim, the workspace's layer `python`.
    let dir = root.join("gears/newcomer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{"name": "newcomer", "version": "1.0.0", "label": "Newcomer", "description": "A gear.",
  "author": "me", "license": "MIT", "command": "python3 run.py", "inputs": {}, "config": {},
  "custom": {"gear-builder": {"image": "example/newcomer:1.0.0"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM python:3.12-slim\nCOPY run.py /flywheel/v0/run.py\n",
    )
    .unwrap();
    std::fs::write(dir.join("run.py"), "print('hi')\n").unwrap();
    let out = gear(&root, &["import", "gears/newcomer"]);
    let stderr = stderr_in(&root, &out);
    assert!(!stderr.contains("Created"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let toml = std::fs::read_to_string(dir.join("Gear.toml")).unwrap();
    assert!(toml.contains("from = \"python\""), "{toml}");
    // The imported gear validates with the rest of the workspace.
    stdout_of(&gear(&root, &["validate"]));
}
