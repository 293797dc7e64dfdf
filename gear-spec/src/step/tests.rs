//! Tests of ordered steps: checking (every problem, with its place), the Dockerfile they
//! render, the build context they select and the manifest environment rule.

#![cfg(test)]

use std::path::Path;

use crate::testing::{plan_of, problems_of, workspace};

const BASE: (&str, &str) = (
    "layers/base/Gear.toml",
    "[layer]\nname = \"base\"\nimage = \"debian:12\"\ndistro = \"debian\"\n",
);

const STEPS_GEAR: &str = r#"[gear]
name = "steps"
from = "base"
image = "example/steps"
version = "1.0.0"
label = "Steps"
description = "Ordered steps."
author = "A"
license = "MIT"
command = "python3 run.py"
labels = { "org.example.team" = "mri" }
entrypoint = ["/bin/sh", "-c"]

[[gear.steps]]
arg = { DEBIAN_FRONTEND = "noninteractive" }
[[gear.steps]]
run = "curl -fsSL https://example.org/setup.sh | bash -\necho done"
[[gear.steps]]
packages = ["nodejs", "jq"]
[[gear.steps]]
pip = { requirements = "requirements.txt", args = ["--no-deps"], index-url = "http://127.0.0.1:3141/simple" }
[[gear.steps]]
copy = ["."]
[[gear.steps]]
copy = ["scripts/*.sh"]
to = "/flywheel/v0/scripts/"
chmod = "0755"
chown = "1000:1000"
[[gear.steps]]
copy = ["../../dist/tool.pex"]
to = "/opt/tool.pex"
[[gear.steps]]
env = { CONDA_DIR = "/opt/conda", PATH = "/opt/conda/bin:$PATH" }
[[gear.steps]]
env = { FREESURFER_HOME = "/opt/freesurfer" }
manifest = true
[[gear.steps]]
run = { exec = ["/bin/bash", "-c", "echo exec form"] }
[[gear.steps]]
workdir = "/opt/build"
[[gear.steps]]
shell = ["/bin/bash", "-o", "pipefail", "-c"]
[[gear.steps]]
user = "1000:1000"
[[gear.steps]]
dockerfile = ["HEALTHCHECK CMD true"]
"#;

fn steps_workspace() -> tempfile::TempDir {
    workspace(&[
        BASE,
        ("gears/steps/Gear.toml", STEPS_GEAR),
        ("gears/steps/run.py", "print('hi')\n"),
        ("gears/steps/requirements.txt", "numpy\n"),
        ("gears/steps/scripts/a.sh", "echo a\n"),
        ("gears/steps/scripts/b.txt", "b\n"),
        ("gears/steps/.gearignore", "secret.txt\n"),
        ("gears/steps/secret.txt", "s\n"),
        ("dist/tool.pex", "pex\n"),
    ])
}

#[test]
fn steps_render_in_order() {
    let root = steps_workspace();
    let plan = plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let built = plan.get("steps").unwrap().built().unwrap();
    let dockerfile = built
        .dockerfile
        .lines()
        .skip(2)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(dockerfile, @r#"
    RUN ["mkdir", "-p", "/flywheel/v0/input", "/flywheel/v0/output"]
    WORKDIR /flywheel/v0
    ARG DEBIAN_FRONTEND="noninteractive"
    RUN curl -fsSL https://example.org/setup.sh | bash - \
        && echo done
    RUN apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq nodejs \
        && apt-get clean \
        && rm -rf /var/lib/apt/lists/*
    COPY files/requirements.txt requirements.txt
    RUN PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        python3 -m pip install --no-cache-dir --index-url http://127.0.0.1:3141/simple -r requirements.txt --no-deps
    COPY copy/ ./
    COPY --chown=1000:1000 copy/scripts/*.sh /flywheel/v0/scripts/
    COPY ws/dist/tool.pex /opt/tool.pex
    ENV CONDA_DIR="/opt/conda" \
        PATH="/opt/conda/bin:$PATH"
    ENV FREESURFER_HOME="/opt/freesurfer"
    RUN ["/bin/bash","-c","echo exec form"]
    WORKDIR /opt/build
    SHELL ["/bin/bash","-o","pipefail","-c"]
    USER 1000:1000
    HEALTHCHECK CMD true
    COPY .cargo-gear/manifest.json /flywheel/v0/manifest.json
    LABEL "org.cargo-gear.layer"="steps" \
          "org.opencontainers.image.version"="1.0.0" \
          "org.example.team"="mri"
    ENTRYPOINT ["/bin/sh","-c"]
    "#);
}

#[test]
fn steps_select_their_sources() {
    let root = steps_workspace();
    let plan = plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let built = plan.get("steps").unwrap().built().unwrap();
    let files: Vec<(&str, Option<u32>)> = built
        .files
        .iter()
        .map(|f| (f.digest.tar_path.as_str(), f.digest.mode))
        .collect();
    assert_eq!(
        files,
        [
            ("copy/requirements.txt", None),
            ("copy/run.py", None),
            ("copy/scripts/a.sh", Some(0o755)),
            ("copy/scripts/b.txt", None),
            ("files/requirements.txt", None),
            ("ws/dist/tool.pex", None),
        ]
    );
}

#[test]
fn only_marked_env_reaches_the_manifest() {
    let root = steps_workspace();
    let plan = plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let gear = plan.get("steps").unwrap().gear().unwrap();
    let env: Vec<(&str, &str)> = gear
        .manifest
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("FREESURFER_HOME", "/opt/freesurfer")]);
}

#[test]
fn a_change_names_the_step() {
    let root = steps_workspace();
    let before = plan_of(root.path()).unwrap();
    let path = root.path().join("gears/steps/Gear.toml");
    std::fs::write(&path, STEPS_GEAR.replace("echo done", "echo changed")).unwrap();
    let after = plan_of(root.path()).unwrap();
    let (b, a) = (
        before.get("steps").unwrap().built().unwrap(),
        after.get("steps").unwrap().built().unwrap(),
    );
    let changed: Vec<&String> = a
        .sections
        .iter()
        .filter(|(k, v)| b.sections.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(changed, ["step 2 (run)"]);
}

fn gear_with(steps: &str) -> String {
    format!(
        "[gear]\nname = \"g\"\nfrom = \"base\"\nimage = \"x/g\"\nversion = \"1\"\nlabel = \"G\"\ndescription = \"G.\"\nauthor = \"A\"\nlicense = \"MIT\"\ncommand = \"python3 run.py\"\n{steps}"
    )
}

#[test]
fn every_bad_step_is_reported_where_it_is() {
    let text = gear_with(
        "packages = [\"jq\"]\n\n[[gear.steps]]\nto = \"/x\"\n\n[[gear.steps]]\nrun = \"a\"\ncopy = [\"b\"]\n\n[[gear.steps]]\nrun = \"a\"\nchmod = \"0755\"\n\n[[gear.steps]]\npakages = [\"jq\"]\n\n[[gear.steps]]\ncopy = [\"/etc/passwd\"]\nto = \"/x\"\n\n[[gear.steps]]\ncopy = [\"run.py\", \"app\"]\nto = \"/opt\"\n",
    );
    let root = workspace(&[BASE, ("gears/g/Gear.toml", &text), ("gears/g/run.py", "")]);
    insta::assert_snapshot!(problems_of(root.path()).join("\n"), @r#"
    gear::unknown-field: unknown field `pakages` [pakages] (did you mean `packages`?)
    gear::steps-and-short-form: `packages` cannot be used beside `steps`: its place in the Dockerfile would be ambiguous [packages] (move it into a step at the place it belongs, e.g. `[[gear.steps]]` with `packages = …`)
    gear::empty-step: step 1 has no kind [[[gear.steps]]] (add one of `run`, `packages`, `pip`, `python`, `copy`, `env`, `arg`, `workdir`, `user`, `shell`, `dockerfile` to this step)
    gear::step-kinds: step 2 has two kinds: `run` and `copy` [copy] (a step does one thing: split it into two `[[gear.steps]]` tables)
    gear::step-modifier: `chmod` belongs to a `copy` step, not to `run` [chmod] (remove `chmod`, or move it to a `copy` step)
    gear::outside-workspace: step 5: `copy` source `/etc/passwd` is outside the workspace ["/etc/passwd"] (only files of the workspace can be copied: copy or build it into the workspace first)
    gear::copy-dest: step 6: several sources (or a glob) go into a directory, but `to = "/opt"` does not end with `/` ["/opt"] (write `to = "/opt/"`)
    "#);
}

#[test]
fn workspace_sources_stay_in_the_workspace() {
    let text = gear_with(
        "[[gear.steps]]\ncopy = [\"../../../outside.txt\"]\nto = \"/x\"\n\n[[gear.steps]]\ncopy = [\"../../dist/missing.pex\"]\nto = \"/x\"\n\n[[gear.steps]]\ncopy = [\"../../dist/link\"]\nto = \"/x\"\n\n[[gear.steps]]\ncopy = [\"../../dist/tool.pex\"]\n",
    );
    let root = workspace(&[
        BASE,
        ("gears/g/Gear.toml", &text),
        ("gears/g/run.py", ""),
        ("dist/tool.pex", "x"),
    ]);
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", root.path().join("dist/link")).unwrap();
    // Checked when the Gear.toml is read, before any file is looked at.
    let found = problems_of(root.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("gear::outside-workspace: step 1"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with(
            "gear::copy-dest: step 4: a `copy` from outside the gear directory needs `to`"
        ),
        "{found:#?}"
    );
    let root2 = workspace(&[
        BASE,
        (
            "gears/g/Gear.toml",
            &gear_with(
                "[[gear.steps]]\ncopy = [\"../../dist/missing.pex\"]\nto = \"/x\"\n\n[[gear.steps]]\ncopy = [\"../../dist/link\"]\nto = \"/x\"\n",
            ),
        ),
        ("gears/g/run.py", ""),
        ("dist/tool.pex", "x"),
    ]);
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", root2.path().join("dist/link")).unwrap();
    let found = problems_of(root2.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("gear::missing-source: step") || found[0].contains("missing.pex"),
        "{found:#?}"
    );
    assert!(found[1].contains("dist/link"), "{found:#?}");
}

#[test]
fn manifest_is_for_gears_only() {
    let layer = "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\n\n[[layer.steps]]\nenv = { A = \"1\" }\nmanifest = true\n";
    let root = workspace(&[BASE, ("layers/mid/Gear.toml", layer)]);
    assert_eq!(
        problems_of(root.path()),
        [
            "gear::gear-only-key: `manifest` is only for gears' `env` steps [manifest] (a layer's variables reach its gears' manifests through the image's environment: remove `manifest`)"
        ]
    );
}

#[test]
fn a_layers_env_reaches_its_gears_manifest_expanded() {
    let layer = "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\n\n[[layer.steps]]\nenv = { TOOL = \"/opt/tool\", PATH = \"$TOOL/bin:${PATH:-/usr/bin}\" }\n";
    let gear = gear_with("[[gear.steps]]\ncopy = [\"run.py\"]\n")
        .replace("from = \"base\"", "from = \"mid\"");
    let root = workspace(&[
        BASE,
        ("layers/mid/Gear.toml", layer),
        ("gears/g/Gear.toml", &gear),
        ("gears/g/run.py", ""),
    ]);
    let plan = plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let env = &plan.get("g").unwrap().gear().unwrap().manifest.environment;
    assert_eq!(
        env.get("PATH").map(String::as_str),
        Some("/opt/tool/bin:/usr/bin")
    );
    assert_eq!(env.get("TOOL").map(String::as_str), Some("/opt/tool"));
}

/// `check_start` problems' codes for a gear without `command` whose steps are `steps`.
fn start_problems(steps: &str, files: &[(&str, &str)]) -> Vec<&'static str> {
    let text = gear_with(steps).replace("command = \"python3 run.py\"\n", "");
    let mut all = vec![BASE, ("gears/g/Gear.toml", text.as_str())];
    all.extend_from_slice(files);
    let root = workspace(&all);
    let layer = crate::layer::Layer::load(&root.path().join("gears/g"), root.path())
        .unwrap_or_else(|p| panic!("{p:?}"));
    let context = crate::context::select(&layer).unwrap_or_else(|p| panic!("{p:?}"));
    crate::validate::check_start(&layer, context.files.iter().map(|f| f.tar_path.as_str()))
        .iter()
        .map(|p| p.code)
        .collect()
}

#[test]
fn a_run_file_placed_by_a_copy_step_counts() {
    // As flywheel-apps/example-gear does it: the run file copied to a name an env holds.
    let steps = "[[gear.steps]]\nenv = { GEAR_ENTRYPOINT = \"/flywheel/v0/run\" }\n\n[[gear.steps]]\ncopy = [\"entrypoint.sh\"]\nto = \"${GEAR_ENTRYPOINT}\"\n";
    assert!(start_problems(steps, &[("gears/g/entrypoint.sh", "#!/bin/sh\n")]).is_empty());
    let steps = "[[gear.steps]]\ncopy = [\".\"]\n";
    assert!(start_problems(steps, &[("gears/g/run", "#!/bin/sh\n")]).is_empty());
    let steps = "[[gear.steps]]\ncopy = [\"bin\"]\nto = \"/flywheel/v0/\"\n";
    assert!(start_problems(steps, &[("gears/g/bin/run", "#!/bin/sh\n")]).is_empty());
    let steps = "[[gear.steps]]\ncopy = [\"run\"]\nto = \"/opt/\"\n";
    assert_eq!(
        start_problems(steps, &[("gears/g/run", "#!/bin/sh\n")]),
        ["gear::no-command"]
    );
}

/// The Dockerfile body (after `FROM`) of gear `g` whose only step is `python`, in a
/// workspace holding `files` under the gear directory.
fn python_dockerfile(python: &str, files: &[(&str, String)]) -> String {
    let text = gear_with(&format!("[[gear.steps]]\npython = {python}\n")).replace(
        "command = \"python3 run.py\"",
        "command = \"python run.py\"",
    );
    let mut all: Vec<(String, String)> = vec![
        (BASE.0.to_string(), BASE.1.to_string()),
        ("gears/g/Gear.toml".to_string(), text),
        ("gears/g/run.py".to_string(), String::new()),
    ];
    all.extend(
        files
            .iter()
            .map(|(p, t)| (format!("gears/g/{p}"), t.clone())),
    );
    let refs: Vec<(&str, &str)> = all.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let root = workspace(&refs);
    let plan = plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
    let built = plan
        .get("g")
        .and_then(|l| l.built())
        .map(|b| b.dockerfile.clone());
    let dockerfile = built.unwrap_or_default();
    dockerfile.lines().skip(4).collect::<Vec<_>>().join("\n")
}

/// A lock pair of gear-spec's pylock fixtures, as (file, text) under `dir`.
fn lock_pair(fixture: &str, dir: &str, lock: &str) -> Vec<(&'static str, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pylock")
        .join(fixture);
    let read = |f: &str| std::fs::read_to_string(src.join(f)).unwrap_or_default();
    let leak = |p: String| -> &'static str { Box::leak(p.into_boxed_str()) };
    vec![
        (leak(format!("{dir}pyproject.toml")), read("pyproject.toml")),
        (leak(format!("{dir}{lock}")), read(lock)),
    ]
}

#[test]
fn python_projects_render_dependencies_first() {
    let poetry = python_dockerfile(
        "{ tool = \"poetry\" }",
        &lock_pair("poetry2-project", "", "poetry.lock"),
    );
    insta::assert_snapshot!(poetry, @r#"
    ENV POETRY_VIRTUALENVS_IN_PROJECT="true" \
        POETRY_NO_INTERACTION="1" \
        VIRTUAL_ENV="/flywheel/v0/.venv" \
        PATH="/flywheel/v0/.venv/bin:$PATH"
    COPY files/pyproject.toml files/poetry.lock ./
    RUN poetry install --only main --no-ansi --no-root
    COPY copy/ ./
    RUN poetry install --only main --no-ansi
    COPY .cargo-gear/manifest.json /flywheel/v0/manifest.json
    LABEL "org.cargo-gear.layer"="g" \
          "org.opencontainers.image.version"="1"
    "#);
    let uv = python_dockerfile(
        "{ tool = \"uv\", project = \"app\", groups = [\"test\"] }",
        &lock_pair("uv-project", "app/", "uv.lock"),
    );
    insta::assert_snapshot!(uv, @r#"
    ENV UV_PROJECT_ENVIRONMENT="/flywheel/v0/app/.venv" \
        UV_LINK_MODE="copy" \
        VIRTUAL_ENV="/flywheel/v0/app/.venv" \
        PATH="/flywheel/v0/app/.venv/bin:$PATH"
    COPY files/app/pyproject.toml files/app/uv.lock app/
    RUN cd app && uv sync --locked --no-dev --group test --no-install-project
    COPY copy/app app/
    RUN cd app && uv sync --locked --no-dev --group test
    COPY .cargo-gear/manifest.json /flywheel/v0/manifest.json
    LABEL "org.cargo-gear.layer"="g" \
          "org.opencontainers.image.version"="1"
    "#);
    let pip = python_dockerfile(
        "{ tool = \"pip\" }",
        &[(
            "pyproject.toml",
            "[project]\nname = \"p\"\nversion = \"1\"\ndependencies = [\"numpy>=1.2\", \"six\"]\n"
                .to_string(),
        )],
    );
    insta::assert_snapshot!(pip, @r#"
    ENV VIRTUAL_ENV="/flywheel/v0/.venv" \
        PATH="/flywheel/v0/.venv/bin:$PATH"
    RUN python3 -m venv /flywheel/v0/.venv \
        && /flywheel/v0/.venv/bin/pip install --no-cache-dir --disable-pip-version-check 'numpy>=1.2' six
    COPY copy/ ./
    RUN pip install --no-cache-dir --disable-pip-version-check --no-deps .
    COPY .cargo-gear/manifest.json /flywheel/v0/manifest.json
    LABEL "org.cargo-gear.layer"="g" \
          "org.opencontainers.image.version"="1"
    "#);
}

#[test]
fn a_stale_or_missing_lock_is_refused_at_the_step() {
    let mut files = lock_pair("poetry-stale", "", "poetry.lock");
    let text = gear_with("[[gear.steps]]\npython = { tool = \"poetry\" }\n");
    files.push(("Gear.toml", text));
    files.push(("run.py", String::new()));
    let all: Vec<(String, String)> = std::iter::once((BASE.0.to_string(), BASE.1.to_string()))
        .chain(
            files
                .iter()
                .map(|(p, t)| (format!("gears/g/{p}"), t.clone())),
        )
        .collect();
    let refs: Vec<(&str, &str)> = all.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let root = workspace(&refs);
    let found = problems_of(root.path());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("gear::stale-lock:")
            && found[0].contains("[{ tool = \"poetry\" }]")
            && found[0].contains("poetry lock"),
        "{found:#?}"
    );
    std::fs::remove_file(root.path().join("gears/g/poetry.lock")).unwrap();
    let found = problems_of(root.path());
    assert!(found[0].starts_with("gear::missing-lock:"), "{found:#?}");
}
