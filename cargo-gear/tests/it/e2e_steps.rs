//! Ordered build steps on the real engine (issue 9): packages from a repository that an
//! earlier `run` step adds, a requirements file copied in before `pip`, `copy` with `to`,
//! a glob and `chmod`, a file of the workspace outside the gear, image-only and manifest
//! environment, a second working directory and a `user` step.

use crate::support;

use std::path::Path;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A local apt repository with one package, `cg-hello`, made inside the image: installing
/// it proves the `packages` step ran after this one.
const LOCAL_REPO: &str = r#"mkdir -p /tmp/pkg/DEBIAN /srv/repo
printf 'Package: cg-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test package\n' > /tmp/pkg/DEBIAN/control
dpkg-deb --build /tmp/pkg /srv/repo/cg-hello_1.0_all.deb
cd /srv/repo && { dpkg-deb -f cg-hello_1.0_all.deb; echo "Filename: ./cg-hello_1.0_all.deb"; echo "Size: $(stat -c%s cg-hello_1.0_all.deb)"; echo "SHA256: $(sha256sum cg-hello_1.0_all.deb | cut -d' ' -f1)"; echo; } > Packages
echo 'deb [trusted=yes] file:/srv/repo ./' > /etc/apt/sources.list.d/local.list"#;

fn workspace(root: &Path, image: &str, id: &str) {
    write(
        &root.join("layers/base/Gear.toml"),
        &format!(
            "[layer]\nname = \"base\"\nimage = \"{}\"\ndistro = \"debian\"\n",
            support::DEBIAN_PYTHON
        ),
    );
    write(
        &root.join("gears/steps/Gear.toml"),
        &format!(
            r#"[gear]
name = "steps"
from = "base"
image = "{image}"
version = "1.0.0"
label = "Steps"
description = "Ordered steps on the engine."
author = "cargo-gear tests"
license = "MIT"
command = "python3 run.py"
labels = {{ "{label}" = "{id}" }}

[[gear.steps]]
run = '''{LOCAL_REPO}'''
[[gear.steps]]
packages = ["cg-hello"]
[[gear.steps]]
pip = {{ requirements = "requirements.txt", args = ["--no-deps"] }}
[[gear.steps]]
copy = ["."]
[[gear.steps]]
copy = ["scripts/*.sh"]
to = "/opt/scripts/"
chmod = "0750"
[[gear.steps]]
copy = ["../../dist/tool.txt"]
to = "/opt/tool.txt"
[[gear.steps]]
env = {{ CONDA_DIR = "/opt/conda", PATH = "/opt/conda/bin:$PATH" }}
[[gear.steps]]
env = {{ FREESURFER_HOME = "/opt/freesurfer" }}
manifest = true
[[gear.steps]]
workdir = "/opt/build"
[[gear.steps]]
run = "pwd > /opt/pwd.txt"
[[gear.steps]]
user = "nobody"
"#,
            label = support::TEST_LABEL
        ),
    );
    write(&root.join("gears/steps/run.py"), "print('steps')\n");
    write(&root.join("gears/steps/requirements.txt"), "six==1.16.0\n");
    write(&root.join("gears/steps/scripts/a.sh"), "echo a\n");
    write(&root.join("gears/steps/scripts/b.txt"), "b\n");
    write(&root.join("dist/tool.txt"), "built elsewhere\n");
}

/// The plan's view of the gear `steps`: (content tag, status, reasons).
fn planned(root: &Path) -> (String, String, Vec<String>) {
    planned_layer(root, "steps")
}

/// The plan's view of layer `name`: (content tag, status, reasons).
fn planned_layer(root: &Path, name: &str) -> (String, String, Vec<String>) {
    let out = support::cargo_gear(root, &["plan", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap()
        .clone();
    let reasons = layer["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    (
        layer["content_tag"].as_str().unwrap().to_string(),
        layer["status"].as_str().unwrap().to_string(),
        reasons,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ordered_steps_build_as_written() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::DEBIAN_PYTHON).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let id = support::unique("steps");
    let image = format!("cargo-gear-test/{id}");
    workspace(&root, &image, &id);

    let built = support::cargo_gear(&root, &["build"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (tag, status, _) = planned(&root);
    assert_eq!(status, "fresh");

    let (code, out) = support::sh(
        &engine,
        &tag,
        "dpkg -s cg-hello | grep -c '^Status: install ok installed' \
         && python3 -c 'import six; print(six.__version__)' \
         && stat -c '%a %U' /opt/scripts/a.sh && ls /opt/scripts \
         && cat /opt/tool.txt /opt/pwd.txt && id -un \
         && python3 -c 'import json; print(\" \".join(sorted(json.load(open(\"/flywheel/v0/manifest.json\"))[\"environment\"])))' \
         && echo \"$CONDA_DIR $FREESURFER_HOME\"",
    )
    .await;
    assert_eq!(
        (code, out.lines().collect::<Vec<_>>()),
        (
            0,
            vec![
                "1",
                "1.16.0",
                "750 root",
                "a.sh",
                "built elsewhere",
                "/opt/build",
                "nobody",
                &*manifest_keys(&engine).await.join(" "),
                "/opt/conda /opt/freesurfer",
            ]
        ),
        "{out}"
    );

    // A workspace artifact is fingerprinted like a context file.
    write(&root.join("dist/tool.txt"), "built again\n");
    let (_, status, reasons) = planned(&root);
    assert_eq!(status, "stale");
    assert_eq!(reasons, ["file ws/dist/tool.txt changed"]);

    engine.remove_image(&tag, true).await.unwrap();
    let _ = engine.remove_image(&format!("{image}:1.0.0"), true).await;
}

/// The manifest's environment keys: the parent image's variables plus FREESURFER_HOME,
/// never the image-only CONDA_DIR.
async fn manifest_keys(engine: &cargo_gear::engine::Engine) -> Vec<String> {
    let parent = engine.image(support::DEBIAN_PYTHON).await.unwrap().unwrap();
    let mut keys: Vec<String> = parent
        .env
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    keys.push("FREESURFER_HOME".into());
    keys.sort();
    keys.dedup();
    assert!(!keys.contains(&"CONDA_DIR".to_string()));
    keys
}

/// Copies the poetry fixture project (cargo-gear/tests/fixtures/poetry-project) to `dest`.
fn poetry_project(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/poetry-project");
    for rel in [
        "pyproject.toml",
        "poetry.lock",
        "hello_gear/__init__.py",
        "README.md",
    ] {
        write(
            &dest.join(rel),
            &std::fs::read_to_string(src.join(rel)).unwrap(),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poetry_project_installs_dependencies_first_and_runs_in_its_environment() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::PYTHON_POETRY).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let id = support::unique("poetry");
    let image = format!("cargo-gear-test/{id}");
    write(
        &root.join("layers/base/Gear.toml"),
        &format!(
            "[layer]\nname = \"base\"\nimage = \"{}\"\ndistro = \"debian\"\n",
            support::PYTHON_POETRY
        ),
    );
    write(
        &root.join("gears/hello/Gear.toml"),
        &format!(
            "[gear]\nname = \"hello\"\nfrom = \"base\"\nimage = \"{image}\"\nversion = \"0.1.0\"\n\
             label = \"Hello\"\ndescription = \"A poetry gear.\"\nauthor = \"cargo-gear tests\"\n\
             license = \"MIT\"\ncommand = \"hello-gear\"\nlabels = {{ \"{}\" = \"{id}\" }}\n\n\
             [[gear.steps]]\npython = {{ tool = \"poetry\" }}\n",
            support::TEST_LABEL
        ),
    );
    let gear = root.join("gears/hello");
    poetry_project(&gear);
    // A host virtual environment is never sent.
    write(&gear.join(".venv/bin/python"), "not this one\n");

    let built = support::cargo_gear(&root, &["build"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = support::cargo_gear(&root, &["plan", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tag = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "hello")
        .unwrap()["content_tag"]
        .as_str()
        .unwrap()
        .to_string();
    // The command of the manifest runs inside the project's environment.
    let (code, out) = support::sh(
        &engine,
        &tag,
        "cd /flywheel/v0 && hello-gear && python3 -c 'import json; e = json.load(open(\"manifest.json\"))[\"environment\"]; print(e[\"VIRTUAL_ENV\"]); print(e[\"PATH\"].split(\":\")[0])' && cat .venv/bin/python | head -c 0",
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "hello-gear ran in /flywheel/v0/.venv\n/flywheel/v0/.venv\n/flywheel/v0/.venv/bin\n"
        )
    );

    // A lock out of date with pyproject.toml is refused before anything is built.
    let pyproject = gear.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    write(
        &pyproject,
        &text.replace("dependencies = []", "dependencies = [\"six\"]"),
    );
    let refused = support::cargo_gear(&root, &["build"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("gear::stale-lock")
            && stderr.contains("poetry.lock")
            && stderr.contains("pyproject.toml")
            && stderr.contains("poetry lock"),
        "{stderr}"
    );

    engine.remove_image(&tag, true).await.unwrap();
    let _ = engine.remove_image(&format!("{image}:0.1.0"), true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_own_multi_stage_dockerfile_builds_on_the_parent() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let id = support::unique("own");
    let image = format!("cargo-gear-test/{id}");
    write(
        &root.join("layers/base/Gear.toml"),
        &format!(
            "[layer]\nname = \"base\"\nimage = \"{}\"\ndistro = \"alpine\"\n",
            support::BUSYBOX
        ),
    );
    write(
        &root.join("gears/own/Gear.toml"),
        &format!(
            "[gear]\nname = \"own\"\nfrom = \"base\"\nimage = \"{image}\"\nversion = \"2.0.0\"\n\
             label = \"Own\"\ndescription = \"An own Dockerfile.\"\nauthor = \"cargo-gear tests\"\n\
             license = \"MIT\"\ndockerfile-file = \"Dockerfile\"\nlabels = {{ \"{}\" = \"{id}\" }}\n",
            support::TEST_LABEL
        ),
    );
    let dockerfile = format!(
        "FROM {busybox} AS build\nRUN mkdir -p /out && echo made in a stage > /out/artifact.txt\n\
         FROM {busybox}\nCOPY --from=build /out/artifact.txt /opt/artifact.txt\n\
         COPY run /flywheel/v0/run\nCOPY manifest.json /flywheel/v0/manifest.json\n",
        busybox = support::BUSYBOX
    );
    write(&root.join("gears/own/Dockerfile"), &dockerfile);
    write(&root.join("gears/own/run"), "#!/bin/sh\necho run\n");

    let built = support::cargo_gear(&root, &["build"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (tag, status, _) = planned_layer(&root, "own");
    assert_eq!(status, "fresh");
    let (code, out) = support::sh(
        &engine,
        &tag,
        "cat /opt/artifact.txt && grep -c '\"name\": \"own\"' /flywheel/v0/manifest.json",
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "made in a stage\n1\n"));

    write(
        &root.join("gears/own/Dockerfile"),
        &dockerfile.replace("made in a stage", "made again"),
    );
    let (_, status, reasons) = planned_layer(&root, "own");
    assert_eq!(
        (status.as_str(), reasons),
        (
            "stale",
            vec!["Dockerfile changed (dockerfile-file)".to_string()]
        )
    );

    engine.remove_image(&tag, true).await.unwrap();
    let _ = engine.remove_image(&format!("{image}:2.0.0"), true).await;
}
