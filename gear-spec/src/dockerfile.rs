//! Rendering a layer's Dockerfile: deterministic, cache-friendly, one instruction per idea.
//!
//! The Dockerfile refers to the build context laid out by [`crate::context`]:
//! `copy/` (the layer's copied files), `files/` (sources of `files` entries) and
//! `.cargo-gear/` (generated files, such as a gear's `manifest.json`).

pub mod own;
pub mod parse;

use std::fmt::Write;

use indexmap::IndexMap;

use crate::context;
use crate::diagnostic::Problem;
use crate::fingerprint::Fingerprint;
use crate::layer::{Layer, LayerKind};
use crate::model::{Distro, PyTool};
use crate::rust::{self, BuildPlace, BuildPlan};
use crate::step::{Copy, Python, Recipe, Run, Source, Step};
use own::OwnDockerfile;

/// Where a gear lives in its image.
pub const FLYWHEEL_DIR: &str = "/flywheel/v0";

/// Path of the generated Dockerfile inside the build context.
pub const DOCKERFILE_PATH: &str = ".cargo-gear/Dockerfile";

/// Path of a gear's generated manifest inside the build context.
pub const MANIFEST_PATH: &str = ".cargo-gear/manifest.json";

/// What the renderer needs besides the declaration.
#[derive(Debug, Clone)]
pub struct DockerfileInput<'a> {
    /// The layer.
    pub layer: &'a Layer,
    /// Image reference of the parent, as it goes after `FROM`.
    pub from: &'a str,
    /// Package manager family in force.
    pub distro: Distro,
    /// Where `copy/` goes, when anything is copied.
    pub copy_dest: Option<&'a str>,
    /// `files` entries: (absolute destination, path in the context).
    pub placed: &'a [(String, String)],
    /// For each `python` step, the `[project].dependencies` of a `pip`-tool project.
    pub python_deps: &'a [Vec<String>],
    /// The parent's declared image, whose `FROM` an own Dockerfile rewrites.
    pub parent_image: &'a str,
    /// The layer's own Dockerfile, read (`dockerfile-file`).
    pub own: Option<&'a OwnDockerfile>,
    /// The Cargo package whose binary the image ships.
    pub cargo: Option<&'a BuildPlan>,
}

/// One instruction of a rendered Dockerfile, after expansion of the short form or the
/// steps; rendering an instruction never depends on its neighbours.
#[derive(Debug, Clone, PartialEq)]
enum Instr {
    /// `ARG NAME="default"`.
    Arg(String, String),
    /// `ENV k="v" …`, one instruction for all; `manifest`: the variables also reach a
    /// gear's manifest (every variable of a layer does, through its image).
    Env {
        vars: Vec<(String, String)>,
        manifest: bool,
    },
    /// `RUN` followed by this text, verbatim.
    Run(String),
    /// `RUN` in exec form.
    RunExec(Vec<String>),
    /// `COPY [--chown=…] sources… dest`.
    Copy {
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
    },
    /// `WORKDIR`.
    Workdir(String),
    /// `USER`.
    User(String),
    /// `SHELL` in exec form.
    Shell(Vec<String>),
    /// A raw line.
    Raw(String),
    /// `LABEL k="v" …`.
    Label(Vec<(String, String)>),
    /// `ENTRYPOINT` in exec form.
    Entrypoint(Vec<String>),
    /// `CMD` in exec form.
    Cmd(Vec<String>),
}

impl Instr {
    fn write(&self, out: &mut String) {
        let _ = match self {
            Instr::Arg(name, default) => writeln!(out, "ARG {name}={}", quote(default)),
            Instr::Env { vars, .. } => {
                let pairs: Vec<String> = vars
                    .iter()
                    .map(|(k, v)| format!("{k}={}", quote(v)))
                    .collect();
                writeln!(out, "ENV {}", pairs.join(" \\\n    "))
            }
            Instr::Run(text) => writeln!(out, "RUN {text}"),
            Instr::RunExec(args) => writeln!(out, "RUN {}", exec_form(args)),
            Instr::Copy {
                sources,
                dest,
                chown,
            } => {
                let _ = write!(out, "COPY ");
                if let Some(owner) = chown {
                    let _ = write!(out, "--chown={owner} ");
                }
                for s in sources {
                    let _ = write!(out, "{} ", json_word(s));
                }
                writeln!(out, "{}", json_word(dest))
            }
            Instr::Workdir(dir) => writeln!(out, "WORKDIR {dir}"),
            Instr::User(user) => writeln!(out, "USER {user}"),
            Instr::Shell(args) => writeln!(out, "SHELL {}", exec_form(args)),
            Instr::Raw(line) => writeln!(out, "{line}"),
            Instr::Label(labels) => {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
                    .collect();
                writeln!(out, "LABEL {}", pairs.join(" \\\n      "))
            }
            Instr::Entrypoint(args) => writeln!(out, "ENTRYPOINT {}", exec_form(args)),
            Instr::Cmd(args) => writeln!(out, "CMD {}", exec_form(args)),
        };
    }
}

/// The `RUN` that makes a gear's input and output directories.
const GEAR_DIRS: &str = "[\"mkdir\", \"-p\", \"/flywheel/v0/input\", \"/flywheel/v0/output\"]";

/// Where a gear's generated manifest goes in its build context: `.cargo-gear/`, and for
/// an own Dockerfile also `manifest.json`, where its `COPY manifest.json …` finds it.
pub fn manifest_paths(recipe: &Recipe) -> &'static [&'static str] {
    match recipe {
        Recipe::Own(_) => &[MANIFEST_PATH, "manifest.json"],
        Recipe::Short | Recipe::Steps(_) => &[MANIFEST_PATH],
    }
}

/// Renders the Dockerfile of a built layer. Fails only for an own Dockerfile
/// (`dockerfile-file`) whose last stage does not build on the parent, or that was not read.
pub fn render(input: &DockerfileInput<'_>) -> Result<String, Problem> {
    let layer = input.layer;
    if let Recipe::Own(rel) = &layer.recipe {
        return match input.own {
            Some(own) => own::render(own, layer, input.parent_image, input.from),
            None => Err(Problem::new(
                "gear::dockerfile-file-missing",
                format!("`dockerfile-file = \"{rel}\"` was not read"),
            )
            .at(&layer.source, layer.span(&["dockerfile-file"]))
            .help("check that the file exists and is readable")),
        };
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by cargo-gear from {}. Do not edit.",
        layer.source.display
    );
    if let Some(plan) = input.cargo.filter(|c| c.place == BuildPlace::InImage) {
        let _ = writeln!(out, "FROM {} AS {}", input.from, rust::BUILDER_STAGE);
        for instr in builder_stage(plan) {
            instr.write(&mut out);
        }
    }
    let _ = writeln!(out, "FROM {}", input.from);
    for instr in body(input) {
        instr.write(&mut out);
    }
    Ok(out)
}

/// The instructions after `FROM` of a generated Dockerfile (none for an own one).
fn body(input: &DockerfileInput<'_>) -> Vec<Instr> {
    match &input.layer.recipe {
        Recipe::Short => short_form(input),
        Recipe::Steps(steps) => steps_form(input, steps),
        Recipe::Own(_) => Vec::new(),
    }
}

/// The variables a layer declares for its gear's manifest, in order: short-form `env`,
/// `env` steps marked `manifest = true` (a layer's: all of them), the virtual
/// environment of a `python` step, or the last stage's `ENV`s of an own Dockerfile.
/// Values are as written (`$PATH` unexpanded).
pub fn declared_environment(input: &DockerfileInput<'_>) -> IndexMap<String, String> {
    if let Some(own) = input.own {
        return own::environment(own);
    }
    let mut env = IndexMap::new();
    for instr in body(input) {
        if let Instr::Env {
            vars,
            manifest: true,
        } = instr
        {
            for (k, v) in vars {
                env.shift_remove(&k);
                env.insert(k, v);
            }
        }
    }
    env
}

/// The short form's fixed order: args, env, packages, pip, run, files, the gear's
/// directories, workdir, copy, manifest, labels, raw lines, user, entrypoint, cmd.
fn short_form(input: &DockerfileInput<'_>) -> Vec<Instr> {
    let layer = input.layer;
    let decl = &layer.decl;
    let is_gear = layer.kind == LayerKind::Gear;
    let mut body = Vec::new();
    body.extend(
        decl.args
            .iter()
            .map(|(k, v)| Instr::Arg(k.clone(), v.clone())),
    );
    if !decl.env.is_empty() {
        body.push(Instr::Env {
            vars: pairs(&decl.env),
            manifest: true,
        });
    }
    body.extend(packages(input.distro, &decl.packages).map(Instr::Run));
    if !decl.pip.is_empty() {
        body.push(Instr::Run(pip_install(&pip_words(&decl.pip))));
    }
    body.extend(decl.run.iter().map(|cmd| Instr::Run(shell_lines(cmd))));
    body.extend(input.placed.iter().map(|(dest, src)| Instr::Copy {
        sources: vec![src.clone()],
        dest: dest.clone(),
        chown: None,
    }));
    if is_gear {
        body.push(Instr::Run(GEAR_DIRS.to_string()));
    }
    if let Some(dir) = decl.workdir.as_deref().or(is_gear.then_some(FLYWHEEL_DIR)) {
        body.push(Instr::Workdir(dir.to_string()));
    }
    if let Some(dest) = input.copy_dest {
        body.push(Instr::Copy {
            sources: vec![format!("{}/", context::COPY_DIR)],
            dest: dir_slash(dest),
            chown: None,
        });
    }
    body.extend(input.cargo.into_iter().flat_map(binary_copy));
    body.extend(frame(layer));
    body.extend(decl.dockerfile.iter().cloned().map(Instr::Raw));
    body.extend(decl.user.clone().map(Instr::User));
    body.extend(exec_frame(layer));
    body
}

/// The steps, in order, inside cargo-gear's frame: first the gear's directories and
/// working directory (`/flywheel/v0`, unless the first step sets one), last the manifest,
/// labels, entrypoint and cmd.
fn steps_form(input: &DockerfileInput<'_>, steps: &[Step]) -> Vec<Instr> {
    let layer = input.layer;
    let is_gear = layer.kind == LayerKind::Gear;
    let mut body = Vec::new();
    let mut workdir = None;
    let mut python_deps = input.python_deps.iter();
    if is_gear {
        body.push(Instr::Run(GEAR_DIRS.to_string()));
        if !matches!(steps.first(), Some(Step::Workdir(_))) {
            body.push(Instr::Workdir(FLYWHEEL_DIR.to_string()));
            workdir = Some(FLYWHEEL_DIR.to_string());
        }
    }
    for step in steps {
        match step {
            Step::Run(Run::Shell(cmd)) => body.push(Instr::Run(shell_lines(cmd))),
            Step::Run(Run::Exec(args)) => body.push(Instr::RunExec(args.clone())),
            Step::Packages(list) => body.extend(packages(input.distro, list).map(Instr::Run)),
            Step::Pip(pip) => {
                let mut words = Vec::new();
                if let Some(url) = &pip.index_url {
                    words.push("--index-url".to_string());
                    words.push(shell_word(url));
                }
                if let Some(req) = &pip.requirements {
                    body.push(Instr::Copy {
                        sources: vec![tar_path(context::FILES_DIR, req)],
                        dest: req.clone(),
                        chown: None,
                    });
                    words.push("-r".to_string());
                    words.push(shell_word(req));
                }
                words.extend(pip_words(&pip.packages));
                words.extend(pip.args.iter().map(|a| shell_word(a)));
                let install = pip_install(&words);
                body.push(Instr::Run(if pip.upgrade_pip {
                    format!(
                        "{} \\\n    && {}",
                        pip_install(&["--upgrade".into(), "pip".into()]),
                        install
                    )
                } else {
                    install
                }));
            }
            Step::Python(py) => {
                let venv_root = workdir.as_deref().unwrap_or("/");
                let deps = python_deps.next().map_or(&[][..], Vec::as_slice);
                body.extend(python(py, venv_root, deps));
            }
            Step::Copy(copy) => body.extend(copy_instrs(copy)),
            Step::Env { vars, manifest } => body.push(Instr::Env {
                vars: pairs(vars),
                manifest: *manifest || !is_gear,
            }),
            Step::Arg(args) => {
                body.extend(args.iter().map(|(k, v)| Instr::Arg(k.clone(), v.clone())));
            }
            Step::Workdir(dir) => {
                workdir = Some(match &workdir {
                    Some(cur) if !dir.starts_with('/') => {
                        format!("{}/{dir}", cur.trim_end_matches('/'))
                    }
                    _ => dir.clone(),
                });
                body.push(Instr::Workdir(dir.clone()));
            }
            Step::User(user) => body.push(Instr::User(user.clone())),
            Step::Shell(args) => body.push(Instr::Shell(args.clone())),
            Step::Raw(lines) => body.extend(lines.iter().cloned().map(Instr::Raw)),
        }
    }
    body.extend(input.cargo.into_iter().flat_map(binary_copy));
    body.extend(frame(layer));
    body.extend(exec_frame(layer));
    body
}

/// Where an in-image build compiles, and where its binary is left for the final stage.
const BUILDER_SRC: &str = "/cargo-gear/src";
const BUILDER_OUT: &str = "/cargo-gear/out";

/// The first stage of an in-image Rust build: the workspace's sources, `cargo build`, the
/// binary moved where the final stage copies it from.
fn builder_stage(plan: &BuildPlan) -> Vec<Instr> {
    let args: Vec<String> = plan.cargo_args().iter().map(|a| shell_word(a)).collect();
    let target_dir = match &plan.target {
        Some(t) => format!("target/{t}/{}", plan.profile_dir()),
        None => format!("target/{}", plan.profile_dir()),
    };
    vec![
        Instr::Workdir(BUILDER_SRC.to_string()),
        Instr::Copy {
            sources: vec![format!("{}/", rust::CARGO_DIR)],
            dest: format!("{BUILDER_SRC}/"),
            chown: None,
        },
        Instr::Run(format!(
            "cargo {} \\\n    && mkdir -p {BUILDER_OUT} && cp {target_dir}/{bin} {BUILDER_OUT}/{bin}",
            args.join(" "),
            bin = shell_word(&plan.bin),
        )),
    ]
}

/// The binary of a Rust layer into its place: sent in the context when built on the host,
/// from the builder stage when built in the image. A host-built binary linked against glibc
/// is then checked with the image's `ldd`, when it has one: a library or symbol version the
/// image lacks (a host with a newer glibc than the image's) fails the build there, saying
/// what to do, instead of the gear failing when Flywheel runs it.
fn binary_copy(plan: &BuildPlan) -> Vec<Instr> {
    match plan.place {
        BuildPlace::Host => {
            let mut instrs = vec![Instr::Copy {
                sources: vec![plan.bin_tar_path()],
                dest: plan.to.clone(),
                chown: None,
            }];
            if plan.target.as_deref().is_none_or(|t| t.ends_with("-gnu")) {
                instrs.push(Instr::Run(format!(
                    "if command -v ldd >/dev/null && ldd {bin} 2>&1 | grep 'not found'; then \\\n    \
                     echo 'cargo-gear: {name} needs a C library this image lacks (built on a host with a newer glibc): \
                     set target = \"<arch>-unknown-linux-musl\" or in-image = true in its cargo table' >&2; exit 1; fi",
                    bin = shell_word(&plan.to),
                    name = plan.bin.replace('\'', ""),
                )));
            }
            instrs
        }
        BuildPlace::InImage => vec![Instr::Raw(format!(
            "COPY --from={} {} {}",
            rust::BUILDER_STAGE,
            json_word(&format!("{BUILDER_OUT}/{}", plan.bin)),
            json_word(&plan.to)
        ))],
    }
}

/// The label naming the layer an image was built for, in every frame: the build needs no
/// label of its own for it (each label the classic builder adds is one more step, a
/// container committed).
pub const LAYER_LABEL: &str = "org.cargo-gear.layer";

/// The label holding a built image's full fingerprint: added to the frame's `LABEL` only in
/// the Dockerfile sent to the engine ([`with_fingerprint`]), since the fingerprint covers the
/// planned Dockerfile and cannot be in it.
pub const FINGERPRINT_LABEL: &str = "org.cargo-gear.fingerprint";

/// The Dockerfile the engine builds: `planned` with [`FINGERPRINT_LABEL`] put into the frame's
/// `LABEL` (the last one naming [`LAYER_LABEL`] first, which every frame has), so the label
/// costs the classic builder no step of its own, as a label passed through the API would.
pub fn with_fingerprint(planned: &str, fingerprint: &Fingerprint) -> String {
    let frame_label = format!("LABEL \"{LAYER_LABEL}\"=");
    match planned.rfind(&frame_label) {
        Some(at) => {
            let insert = at + "LABEL ".len();
            format!(
                "{}\"{FINGERPRINT_LABEL}\"=\"{fingerprint}\" {}",
                &planned[..insert],
                &planned[insert..]
            )
        }
        // Not a Dockerfile this module rendered: a LABEL of its own at the end.
        None => format!("{planned}LABEL \"{FINGERPRINT_LABEL}\"=\"{fingerprint}\"\n"),
    }
}

/// A gear's manifest and every layer's labels.
fn frame(layer: &Layer) -> Vec<Instr> {
    let decl = &layer.decl;
    let is_gear = layer.kind == LayerKind::Gear;
    let mut body = Vec::new();
    if is_gear {
        body.push(Instr::Copy {
            sources: vec![MANIFEST_PATH.to_string()],
            dest: format!("{FLYWHEEL_DIR}/manifest.json"),
            chown: None,
        });
    }
    let mut labels: Vec<(String, String)> = vec![(LAYER_LABEL.into(), layer.name.clone())];
    if let (true, Some(version)) = (is_gear, &decl.version) {
        labels.push(("org.opencontainers.image.version".into(), version.clone()));
    }
    // The layer label is cargo-gear's own: a declared one would replace it in the image.
    labels.extend(
        decl.labels
            .iter()
            .filter(|(k, _)| k.as_str() != LAYER_LABEL)
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    body.push(Instr::Label(labels));
    body
}

/// `ENTRYPOINT` and `CMD`, when declared.
fn exec_frame(layer: &Layer) -> Vec<Instr> {
    let decl = &layer.decl;
    let mut body = Vec::new();
    body.extend(decl.entrypoint.clone().map(Instr::Entrypoint));
    body.extend(decl.cmd.clone().map(Instr::Cmd));
    body
}

/// The COPY instructions of a `copy` step: one for all sources with `to`, otherwise one
/// per source at its relative path under the working directory.
fn copy_instrs(copy: &Copy) -> Vec<Instr> {
    let chown = copy.chown.clone();
    match &copy.to {
        Some(to) => vec![Instr::Copy {
            sources: copy.sources.iter().map(source_tar_path).collect(),
            dest: to.clone(),
            chown,
        }],
        None => copy
            .sources
            .iter()
            .map(|s| Instr::Copy {
                sources: vec![source_tar_path(s)],
                dest: relative_dest(s),
                chown: chown.clone(),
            })
            .collect(),
    }
}

/// Where a source sits in the build context (see [`crate::context`]).
pub fn source_tar_path(source: &Source) -> String {
    match source {
        Source::Layer {
            rel,
            ignore_files: true,
        } => tar_path(context::COPY_DIR, rel),
        Source::Layer {
            rel,
            ignore_files: false,
        } => tar_path(context::FILES_DIR, rel),
        Source::Workspace { rel } => tar_path(context::WORKSPACE_DIR, rel),
    }
}

/// `prefix/rel`, or `prefix/` for the whole directory.
fn tar_path(prefix: &str, rel: &str) -> String {
    if rel.is_empty() {
        format!("{prefix}/")
    } else {
        format!("{prefix}/{rel}")
    }
}

/// A source's destination without `to`: its own relative path under the working
/// directory; a glob's directory.
fn relative_dest(source: &Source) -> String {
    let rel = match source {
        Source::Layer { rel, .. } | Source::Workspace { rel } => rel.as_str(),
    };
    if rel.is_empty() {
        return "./".to_string();
    }
    if source.is_glob() {
        return match rel.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => "./".to_string(),
        };
    }
    rel.to_string()
}

/// `dir` with a trailing `/`.
fn dir_slash(dir: &str) -> String {
    if dir.ends_with('/') {
        dir.to_string()
    } else {
        format!("{dir}/")
    }
}

/// Variables as (name, value) pairs.
fn pairs(vars: &IndexMap<String, String>) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Requirements as shell words.
fn pip_words(requirements: &[String]) -> Vec<String> {
    requirements.iter().map(|r| shell_word(r)).collect()
}

/// The settings pip runs with in an image: system packages allowed, quiet as root.
const PIP_ENV: &str =
    "PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore";

/// `pip install --no-cache-dir WORDS…` with [`PIP_ENV`].
fn pip_install(words: &[String]) -> String {
    format!(
        "{PIP_ENV} \\\n    python3 -m pip install --no-cache-dir {}",
        words.join(" ")
    )
}

/// A Python project installed dependencies first: the lock (or the dependency list)
/// before the sources, so that a source edit reuses the dependencies' image layer.
/// `workdir` is the working directory in force (absolute); `deps` the `[project]`
/// dependencies a `pip` project declares.
fn python(py: &Python, workdir: &str, deps: &[String]) -> Vec<Instr> {
    let dest = if py.project.is_empty() {
        "./".to_string()
    } else {
        format!("{}/", py.project)
    };
    let abs = if py.project.is_empty() {
        workdir.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), py.project)
    };
    let venv = format!("{abs}/.venv");
    let mut env = vec![
        ("VIRTUAL_ENV".to_string(), venv.clone()),
        ("PATH".to_string(), format!("{venv}/bin:$PATH")),
    ];
    let project_file = |name: &str| {
        tar_path(
            context::FILES_DIR,
            &if py.project.is_empty() {
                name.to_string()
            } else {
                format!("{}/{name}", py.project)
            },
        )
    };
    let sources = Instr::Copy {
        sources: vec![tar_path(context::COPY_DIR, &py.project)],
        dest: dest.clone(),
        chown: None,
    };
    let extra: Vec<String> = py.args.iter().map(|a| shell_word(a)).collect();
    let with_extra = |cmd: String| {
        if extra.is_empty() {
            cmd
        } else {
            format!("{cmd} {}", extra.join(" "))
        }
    };
    let in_project = |cmd: String| {
        if py.project.is_empty() {
            cmd
        } else {
            format!("cd {} && {cmd}", shell_word(&py.project))
        }
    };
    match py.tool {
        PyTool::Poetry => {
            env.splice(
                0..0,
                [
                    (
                        "POETRY_VIRTUALENVS_IN_PROJECT".to_string(),
                        "true".to_string(),
                    ),
                    ("POETRY_NO_INTERACTION".to_string(), "1".to_string()),
                ],
            );
            let only = if py.groups.is_empty() {
                "main".to_string()
            } else {
                py.groups.join(",")
            };
            let install = format!("poetry install --only {only} --no-ansi");
            vec![
                Instr::Env {
                    vars: env,
                    manifest: true,
                },
                Instr::Copy {
                    sources: vec![project_file("pyproject.toml"), project_file("poetry.lock")],
                    dest: dest.clone(),
                    chown: None,
                },
                Instr::Run(in_project(with_extra(format!("{install} --no-root")))),
                sources,
                Instr::Run(in_project(with_extra(install))),
            ]
        }
        PyTool::Uv => {
            env.splice(
                0..0,
                [
                    ("UV_PROJECT_ENVIRONMENT".to_string(), venv.clone()),
                    ("UV_LINK_MODE".to_string(), "copy".to_string()),
                ],
            );
            let groups: String = py
                .groups
                .iter()
                .map(|g| format!(" --group {}", shell_word(g)))
                .collect();
            let sync = format!("uv sync --locked --no-dev{groups}");
            vec![
                Instr::Env {
                    vars: env,
                    manifest: true,
                },
                Instr::Copy {
                    sources: vec![project_file("pyproject.toml"), project_file("uv.lock")],
                    dest: dest.clone(),
                    chown: None,
                },
                Instr::Run(in_project(with_extra(format!(
                    "{sync} --no-install-project"
                )))),
                sources,
                Instr::Run(in_project(with_extra(sync))),
            ]
        }
        PyTool::Pip => {
            let mut create = format!("python3 -m venv {}", shell_word(&venv));
            if !deps.is_empty() {
                let words: Vec<String> = deps.iter().map(|d| shell_word(d)).collect();
                create.push_str(&with_extra(format!(
                    " \\\n    && {venv}/bin/pip install --no-cache-dir --disable-pip-version-check {}",
                    words.join(" ")
                )));
            }
            vec![
                Instr::Env {
                    vars: env,
                    manifest: true,
                },
                Instr::Run(create),
                sources,
                Instr::Run(in_project(with_extra(
                    "pip install --no-cache-dir --disable-pip-version-check --no-deps ."
                        .to_string(),
                ))),
            ]
        }
    }
}

/// The install command for `packages`, sorted and deduplicated, or None when empty.
pub fn packages(distro: Distro, packages: &[String]) -> Option<String> {
    let mut pkgs: Vec<&str> = packages.iter().map(String::as_str).collect();
    pkgs.sort_unstable();
    pkgs.dedup();
    if pkgs.is_empty() {
        return None;
    }
    let list: Vec<String> = pkgs.iter().map(|p| shell_word(p)).collect();
    let list = list.join(" ");
    Some(match distro {
        Distro::Debian => format!(
            "apt-get update \\\n    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {list} \\\n    && apt-get clean \\\n    && rm -rf /var/lib/apt/lists/*"
        ),
        Distro::Centos => format!(
            "yum install -y {list} \\\n    && yum clean all \\\n    && rm -rf /var/cache/yum"
        ),
        Distro::Alpine => format!("apk add --no-cache {list}"),
    })
}

/// A `run` entry as one RUN instruction: lines not already continued with `\` are
/// joined with `&&`, so a failing line fails the step.
fn shell_lines(cmd: &str) -> String {
    let lines: Vec<&str> = cmd
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let prev = lines[i - 1];
            out.push_str(if prev.ends_with('\\') {
                "\n    "
            } else {
                " \\\n    && "
            });
        }
        out.push_str(if i > 0 { line.trim_start() } else { line });
    }
    out
}

/// Double-quoted Dockerfile value (ENV, ARG, LABEL): `"` and `\` escaped; `$` is left
/// alone so `$PATH`-style references still expand.
fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            '\n' => s.push_str("\\n"),
            _ => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A word for a shell command line: kept as is when it is plain, single-quoted otherwise.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/=+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// A path in a COPY instruction, JSON-quoted when it needs it.
fn json_word(word: &str) -> String {
    if word
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        serde_json::to_string(word).expect("strings serialize")
    } else {
        word.to_string()
    }
}

/// Exec form: a JSON array.
fn exec_form(args: &[String]) -> String {
    serde_json::to_string(args).expect("strings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_label_joins_the_frames_label_in_what_is_built() {
        let planned = "FROM a\nLABEL \"org.cargo-gear.layer\"=\"stage\"\nFROM b\nRUN x\nLABEL \"org.cargo-gear.layer\"=\"g\" \\\n      \"k\"=\"v\"\nCMD [\"y\"]\n";
        let fp = Fingerprint([0xab; 32]);
        let built = with_fingerprint(planned, &fp);
        assert_eq!(
            built,
            format!(
                "FROM a\nLABEL \"org.cargo-gear.layer\"=\"stage\"\nFROM b\nRUN x\nLABEL \"org.cargo-gear.fingerprint\"=\"{fp}\" \"org.cargo-gear.layer\"=\"g\" \\\n      \"k\"=\"v\"\nCMD [\"y\"]\n"
            )
        );
        assert_eq!(
            built.lines().count(),
            planned.lines().count(),
            "no instruction of its own"
        );
        assert!(
            with_fingerprint("FROM a\n", &fp)
                .ends_with(&format!("LABEL \"org.cargo-gear.fingerprint\"=\"{fp}\"\n"))
        );
    }

    #[test]
    fn packages_per_distro() {
        let p = vec!["python3".to_string(), "jq".to_string(), "jq".to_string()];
        insta::assert_snapshot!(packages(Distro::Debian, &p).unwrap(), @r"
        apt-get update \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq python3 \
            && apt-get clean \
            && rm -rf /var/lib/apt/lists/*
        ");
        assert_eq!(
            packages(Distro::Centos, &p).unwrap(),
            "yum install -y jq python3 \\\n    && yum clean all \\\n    && rm -rf /var/cache/yum"
        );
        assert_eq!(
            packages(Distro::Alpine, &p).unwrap(),
            "apk add --no-cache jq python3"
        );
        assert_eq!(packages(Distro::Alpine, &[]), None);
    }

    #[test]
    fn multi_line_run_fails_fast() {
        assert_eq!(shell_lines("a\n  b\n\nc"), "a \\\n    && b \\\n    && c");
        assert_eq!(shell_lines("a && \\\n  b"), "a && \\\n    b");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a "b" \c $PATH"#), r#""a \"b\" \\c $PATH""#);
        assert_eq!(shell_word("numpy>=1.2"), "'numpy>=1.2'");
        assert_eq!(shell_word("flywheel-sdk==19.0"), "flywheel-sdk==19.0");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("x=1"), "x=1");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(json_word("/a b"), "\"/a b\"");
    }

    #[test]
    fn the_layer_label_is_cargo_gears_own() {
        let root = crate::testing::workspace(&[
            (
                "base/Gear.toml",
                "[layer]\nname = \"base\"\nimage = \"debian:12\"\ndistro = \"debian\"\n",
            ),
            (
                "tool/Gear.toml",
                "[layer]\nname = \"tool\"\nfrom = \"base\"\nimage = \"x/tool\"\n\
                 labels = { \"org.cargo-gear.layer\" = \"other\", \"org.example.team\" = \"mri\" }\n",
            ),
        ]);
        let plan = crate::testing::plan_of(root.path()).unwrap_or_else(|p| panic!("{p:?}"));
        let dockerfile = &plan.get("tool").unwrap().built().unwrap().dockerfile;
        assert!(
            dockerfile.contains(&format!("LABEL \"{LAYER_LABEL}\"=\"tool\"")),
            "{dockerfile}"
        );
        assert!(!dockerfile.contains("\"other\""), "{dockerfile}");
        assert!(
            dockerfile.contains("\"org.example.team\"=\"mri\""),
            "{dockerfile}"
        );
    }
}
