//! `cargo gear import` of real public gears, then build and run on the real engine, their
//! base images substituted by the Debian fixture (no registry is reachable): the imported
//! steps build (the RUN installing jq, the ENV variables, the COPY of the run script) and
//! the gear runs as Flywheel runs it.

use std::path::{Path, PathBuf};

use crate::support;

/// A real gear fixture of gear-spec (sources in its SOURCES.md).
fn real_gear(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gear-spec/tests/fixtures/real-gears")
        .join(name)
}

fn write(path: &Path, text: &str, executable: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn ok(out: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{what} failed:\n{stderr}");
    stderr
}

/// Copies the fixture `name` with `files` (its sources the fixture lacks) to
/// `root/incoming/name`, imports it into `root/gears/name`, and points the imported gear at a
/// test image with the test label.
fn import(root: &Path, name: &str, files: &[(&str, &str)], id: &str) -> PathBuf {
    let incoming = root.join("incoming").join(name);
    for file in ["manifest.json", "Dockerfile"] {
        let text = std::fs::read_to_string(real_gear(name).join(file)).unwrap();
        write(&incoming.join(file), &text, false);
    }
    for (file, text) in files {
        write(&incoming.join(file), text, text.starts_with("#!"));
    }
    let gear = root.join("gears").join(name);
    ok(
        &support::cargo_gear(
            root,
            &[
                "import",
                incoming.to_str().unwrap(),
                "--into",
                gear.to_str().unwrap(),
            ],
        ),
        "import",
    );
    let path = gear.join("Gear.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc["gear"]["image"] = toml_edit::value(format!("cargo-gear-test/{id}"));
    let labels = doc["gear"]
        .as_table_mut()
        .unwrap()
        .entry("labels")
        .or_insert(toml_edit::value(toml_edit::InlineTable::new()));
    labels
        .as_inline_table_mut()
        .unwrap()
        .insert(support::TEST_LABEL, id.into());
    std::fs::write(&path, doc.to_string()).unwrap();
    gear
}

/// The run directory `cargo gear run` reported.
fn run_dir(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Run dir "))
        .unwrap_or_else(|| panic!("no run directory in:\n{stderr}"));
    PathBuf::from(line)
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_real_gears_build_and_run() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::DEBIAN_PYTHON).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");

    // debug-generatefile: FROM ubuntu:trusty, LABEL, RUN apt-get install jq, ENV FLYWHEEL,
    // RUN mkdir, COPY run, COPY manifest.json (dropped), ENTRYPOINT; command `./run`. The
    // run script (not in the fixture) needs jq, so it proves the RUN step ran.
    let id = support::unique("import-dg");
    import(
        &root,
        "flywheel-apps__debug-generatefile",
        &[(
            "run",
            "#!/bin/sh\nset -e\nsize=$(jq -r .config.size \"$FLYWHEEL/config.json\")\nhead -c \"$size\" /dev/zero > \"$FLYWHEEL/output/generated.bin\"\n",
        )],
        &id,
    );
    // example-gear: FROM ubuntu:14.04, ENV with variables referring to earlier ones, COPY of
    // manifest.json to "${GEAR_MANIFEST_FILE}" (dropped), COPY entrypoint.sh to
    // "${GEAR_ENTRYPOINT}" (= /flywheel/v0/run, the run file), WORKDIR; no command.
    let id2 = support::unique("import-ex");
    import(
        &root,
        "flywheel-apps__example-gear",
        &[(
            "entrypoint.sh",
            "#!/bin/sh\nset -e\nfor f in \"$GEAR_INPUT_DIR\"/*/*; do basename \"$f\"; done > \"$GEAR_OUTPUT_DIR/names.txt\"\n",
        )],
        &id2,
    );
    let substitute: Vec<String> = ["ubuntu:trusty", "ubuntu:14.04"]
        .iter()
        .map(|base| format!("{base}={}", support::DEBIAN_PYTHON))
        .collect();
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = Vec::new();
        for s in &substitute {
            all.extend(["--substitute", s.as_str()]);
        }
        all.extend_from_slice(args);
        support::cargo_gear(&root, &all)
    };
    ok(&with(&["build"]), "build");

    let stderr = ok(
        &with(&["run", "-p", "debug-generatefile", "--config", "size=5"]),
        "run debug-generatefile",
    );
    let generated = run_dir(&stderr).join("output/generated.bin");
    assert_eq!(std::fs::read(&generated).unwrap(), vec![0u8; 5]);

    let inputs = dir.path().join("inputs");
    write(&inputs.join("a.dcm"), "dicom", false);
    write(&inputs.join("b.txt"), "text", false);
    let dicom = format!("dicom={}", inputs.join("a.dcm").display());
    let file = format!("file={}", inputs.join("b.txt").display());
    let stderr = ok(
        &with(&[
            "run",
            "-p",
            "flywheel-example-gear",
            "--input",
            &dicom,
            "--input",
            &file,
        ]),
        "run flywheel-example-gear",
    );
    let names = std::fs::read_to_string(run_dir(&stderr).join("output/names.txt"))
        .unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(names, "a.dcm\nb.txt\n");

    // The manifest `cargo gear manifest` writes for an imported gear is the original's but
    // for what the build derives.
    ok(&with(&["manifest", "-p", "debug-generatefile"]), "manifest");
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root.join("gears/flywheel-apps__debug-generatefile/manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let original: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            real_gear("flywheel-apps__debug-generatefile").join("manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for key in [
        "name", "label", "config", "inputs", "command", "author", "license",
    ] {
        assert_eq!(written[key], original[key], "{key}");
    }
}
