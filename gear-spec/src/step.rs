//! Ordered build steps: `[[gear.steps]]` / `[[layer.steps]]` tables checked into [`Step`]s.
//!
//! A layer is built either from the short-form keys (`packages`, `pip`, `run`, `copy`…),
//! which render in a fixed, documented order, or from ordered `steps`, each exactly one
//! kind. [`Recipe`] says which; [`crate::dockerfile`] renders both through the same
//! instructions. Every problem of every step is reported, with a span into the Gear.toml.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::context::{GEAR_COPY_DEST, normalize_rel};
use crate::diagnostic::{Problem, SourceFile};
use crate::manifest::expand_vars;
use crate::model::{Decl, PipDecl, PyTool, RunDecl, StepDecl};

/// How a built layer's Dockerfile body is declared.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Recipe {
    /// The short-form keys, in their fixed order (see docs/gear-toml.md).
    #[default]
    Short,
    /// Ordered steps, as written.
    Steps(Vec<Step>),
    /// The layer's own Dockerfile (`dockerfile-file`), relative to its directory.
    Own(String),
}

impl Recipe {
    /// The steps, when the layer declares them.
    pub fn steps(&self) -> &[Step] {
        match self {
            Recipe::Short | Recipe::Own(_) => &[],
            Recipe::Steps(steps) => steps,
        }
    }
}

/// One checked build step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `RUN`.
    Run(Run),
    /// OS packages for the distro in force.
    Packages(Vec<String>),
    /// `pip install`.
    Pip(Pip),
    /// A Python project, dependencies first.
    Python(Python),
    /// `COPY`.
    Copy(Copy),
    /// `ENV`; `manifest` also puts the variables in a gear's manifest.
    Env {
        /// The variables, in order.
        vars: IndexMap<String, String>,
        /// Whether they also reach the manifest's `environment`.
        manifest: bool,
    },
    /// `ARG NAME=default`, one per entry.
    Arg(IndexMap<String, String>),
    /// `WORKDIR`.
    Workdir(String),
    /// `USER`.
    User(String),
    /// `SHELL`.
    Shell(Vec<String>),
    /// Raw Dockerfile lines.
    Raw(Vec<String>),
}

impl Step {
    /// The kind key as written in Gear.toml.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Run(_) => "run",
            Step::Packages(_) => "packages",
            Step::Pip(_) => "pip",
            Step::Python(_) => "python",
            Step::Copy(_) => "copy",
            Step::Env { .. } => "env",
            Step::Arg(_) => "arg",
            Step::Workdir(_) => "workdir",
            Step::User(_) => "user",
            Step::Shell(_) => "shell",
            Step::Raw(_) => "dockerfile",
        }
    }
}

/// A command: shell form (lines joined with `&&`) or exec form.
#[derive(Debug, Clone, PartialEq)]
pub enum Run {
    /// Shell form, as written.
    Shell(String),
    /// Exec form.
    Exec(Vec<String>),
}

/// A `pip` step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pip {
    /// Requirements.
    pub packages: Vec<String>,
    /// A requirements file of the layer directory (normalized relative path).
    pub requirements: Option<String>,
    /// More `pip install` arguments.
    pub args: Vec<String>,
    /// `--index-url`.
    pub index_url: Option<String>,
    /// Upgrade pip first.
    pub upgrade_pip: bool,
}

/// A `python` step.
#[derive(Debug, Clone, PartialEq)]
pub struct Python {
    /// The installing tool.
    pub tool: PyTool,
    /// The project directory, relative to the layer directory (`""` is the directory).
    pub project: String,
    /// Dependency groups; empty means main only.
    pub groups: Vec<String>,
    /// More arguments for both installs.
    pub args: Vec<String>,
}

/// A `copy` step.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// Its position among the layer's steps (0-based), for spans.
    pub index: usize,
    /// The sources.
    pub sources: Vec<Source>,
    /// The destination as written (`to`), or none: each source at its relative path.
    pub to: Option<String>,
    /// File mode of the copied files.
    pub mode: Option<u32>,
    /// `--chown`.
    pub chown: Option<String>,
}

/// Where a copied path comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path of the layer directory (normalized, `""` is the directory; may be a glob).
    Layer {
        /// The path relative to the layer directory.
        rel: String,
        /// Whether `.gearignore` / `.dockerignore` apply.
        ignore_files: bool,
    },
    /// A path of the workspace outside the layer directory (normalized, relative to the
    /// workspace root).
    Workspace {
        /// The path relative to the workspace root.
        rel: String,
    },
}

impl Source {
    /// Whether the path is a glob (Docker's `COPY` pattern syntax).
    pub fn is_glob(&self) -> bool {
        let rel = match self {
            Source::Layer { rel, .. } | Source::Workspace { rel } => rel,
        };
        rel.contains(['*', '?', '['])
    }
}

/// Where a gear's steps put the context's files under `/flywheel/v0`, as paths relative
/// to it (what Flywheel's `command` or `/flywheel/v0/run` can name). Follows `workdir`
/// steps from `/flywheel/v0` and expands `$VAR` in `to` from earlier `env` steps. `files` are
/// the tar paths of the build context.
pub fn gear_paths<'a>(steps: &[Step], files: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let files: Vec<&str> = files.into_iter().collect();
    let mut workdir = GEAR_COPY_DEST.to_string();
    let mut env = IndexMap::new();
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Workdir(dir) => {
                workdir = if dir.starts_with('/') {
                    expand_vars(dir, &env)
                } else {
                    format!(
                        "{}/{}",
                        workdir.trim_end_matches('/'),
                        expand_vars(dir, &env)
                    )
                };
            }
            Step::Env { vars, .. } => {
                for (k, v) in vars {
                    let value = expand_vars(v, &env);
                    env.insert(k.clone(), value);
                }
            }
            Step::Copy(copy) => {
                let to = copy.to.as_deref().map(|t| {
                    let t = expand_vars(t, &env);
                    if t.starts_with('/') {
                        t
                    } else {
                        format!("{}/{t}", workdir.trim_end_matches('/'))
                    }
                });
                let single = copy.sources.len() == 1;
                for source in &copy.sources {
                    let prefix = crate::dockerfile::source_tar_path(source);
                    let base = prefix.trim_end_matches('/');
                    for f in &files {
                        let Some(rest) = f.strip_prefix(base) else {
                            continue;
                        };
                        let in_dir = rest.strip_prefix('/');
                        let dest = match (&to, in_dir) {
                            // The named file itself.
                            (Some(to), None) if rest.is_empty() => {
                                if to.ends_with('/') || !single {
                                    let name = base.rsplit('/').next().unwrap_or(base);
                                    format!("{to}{name}")
                                } else {
                                    to.clone()
                                }
                            }
                            // A file under a named directory: its contents go into `to`.
                            (Some(to), Some(under)) => {
                                format!("{}/{under}", to.trim_end_matches('/'))
                            }
                            (None, _) if rest.is_empty() || in_dir.is_some() => {
                                let rel = f.split_once('/').map_or("", |(_, r)| r);
                                format!("{}/{rel}", workdir.trim_end_matches('/'))
                            }
                            _ => continue,
                        };
                        if let Some(rel) = dest
                            .strip_prefix(GEAR_COPY_DEST)
                            .and_then(|d| d.strip_prefix('/'))
                        {
                            out.push(rel.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Kind keys of a step table, in the order the model declares them.
pub const KINDS: &[&str] = &[
    "run",
    "packages",
    "pip",
    "python",
    "copy",
    "env",
    "arg",
    "workdir",
    "user",
    "shell",
    "dockerfile",
];

/// Modifiers, and the kind each belongs to.
const MODIFIERS: &[(&str, &str)] = &[
    ("to", "copy"),
    ("chmod", "copy"),
    ("chown", "copy"),
    ("ignore-files", "copy"),
    ("manifest", "env"),
];

/// Short-form keys whose place in the Dockerfile is fixed: not allowed beside `steps`.
pub const SHORT_FORM_KEYS: &[&str] = &[
    "args",
    "env",
    "packages",
    "pip",
    "run",
    "files",
    "copy",
    "workdir",
    "user",
    "dockerfile",
];

/// Where a layer sits, for classifying `copy` sources.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// `[layer]` or `[gear]`.
    pub table: &'static str,
    /// The layer directory relative to the workspace root (`/`-separated; `None` when the
    /// directory is not under the root, and then no workspace source is possible).
    pub dir_in_root: Option<&'a str>,
}

/// The recipe of a declaration: its steps checked (every problem pushed to `problems`,
/// bad steps left out), or the short form.
pub fn recipe(
    decl: &Decl,
    place: Place<'_>,
    source: &Arc<SourceFile>,
    problems: &mut Vec<Problem>,
) -> Recipe {
    let written = written_keys(source, place.table);
    if let Some(file) = &decl.dockerfile_file {
        for key in SHORT_FORM_KEYS.iter().chain(&["steps"]) {
            if written.iter().any(|k| k == key) {
                problems.push(
                    Problem::new(
                        "gear::dockerfile-file-and-steps",
                        format!("`{key}` cannot be used beside `dockerfile-file`: the Dockerfile says how the image is built"),
                    )
                    .at(source, source.key_span(&[place.table, key]))
                    .label("ignored by an own Dockerfile")
                    .help("write it in the Dockerfile, or remove `dockerfile-file` to build from steps"),
                );
            }
        }
        return match normalize_rel(file).filter(|f| !f.is_empty()) {
            Some(rel) => Recipe::Own(rel),
            None => {
                problems.push(
                    Problem::new(
                        "gear::path-escape",
                        format!("`dockerfile-file = \"{file}\"` is not a file of this directory"),
                    )
                    .at(source, source.value_span(&[place.table, "dockerfile-file"]))
                    .label("outside the directory")
                    .help("name the Dockerfile relative to this directory, e.g. `dockerfile-file = \"Dockerfile\"`"),
                );
                Recipe::Short
            }
        };
    }
    if decl.steps.is_empty() {
        return Recipe::Short;
    }
    for key in SHORT_FORM_KEYS {
        if written.iter().any(|k| k == key) {
            problems.push(
                Problem::new(
                    "gear::steps-and-short-form",
                    format!("`{key}` cannot be used beside `steps`: its place in the Dockerfile would be ambiguous"),
                )
                .at(source, source.key_span(&[place.table, key]))
                .label("short-form key")
                .help(format!("move it into a step at the place it belongs, e.g. `[[{}.steps]]` with `{key} = …`", place.table)),
            );
        }
    }
    let steps = decl
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| check(s, i, place, source, problems))
        .collect();
    Recipe::Steps(steps)
}

/// Keys written in `[table]`, in file order.
fn written_keys(source: &SourceFile, table: &str) -> Vec<String> {
    source
        .document()
        .ok()
        .and_then(|d| d.get(table))
        .and_then(|t| t.as_table_like())
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// Checks one step table: exactly one kind, only that kind's modifiers, valid values.
fn check(
    decl: &StepDecl,
    index: usize,
    place: Place<'_>,
    source: &Arc<SourceFile>,
    problems: &mut Vec<Problem>,
) -> Option<Step> {
    let n = index.to_string();
    let keys = |key: &str| [place.table, "steps", n.as_str(), key].map(str::to_string);
    let span_of = |key: &str| {
        let k = keys(key);
        source.key_span(&k.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let value_span = |key: &str| {
        let k = keys(key);
        source.value_span(&k.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let table = [place.table, "steps", n.as_str()];
    let present = written_step_keys(source, &table);
    let kinds: Vec<&str> = present
        .iter()
        .filter_map(|k| KINDS.iter().find(|kind| *kind == k).copied())
        .collect();
    let number = index + 1;
    let kind = match kinds.as_slice() {
        [] => {
            // A table of unknown keys only has those reported as unknown fields already.
            if present
                .iter()
                .all(|k| MODIFIERS.iter().any(|(m, _)| m == k))
            {
                problems.push(
                    Problem::new("gear::empty-step", format!("step {number} has no kind"))
                        .at(source, source.value_span(&table))
                        .label("no kind key")
                        .help(format!("add one of `{}` to this step", KINDS.join("`, `"))),
                );
            }
            return None;
        }
        [kind] => *kind,
        [first, second, ..] => {
            problems.push(
                Problem::new(
                    "gear::step-kinds",
                    format!("step {number} has two kinds: `{first}` and `{second}`"),
                )
                .at(source, span_of(second))
                .label("second kind")
                .help(format!(
                    "a step does one thing: split it into two `[[{}.steps]]` tables",
                    place.table
                )),
            );
            return None;
        }
    };
    let mut ok = true;
    for key in &present {
        if let Some((_, owner)) = MODIFIERS.iter().find(|(m, _)| m == key)
            && *owner != kind
        {
            ok = false;
            problems.push(
                Problem::new(
                    "gear::step-modifier",
                    format!("`{key}` belongs to a `{owner}` step, not to `{kind}`"),
                )
                .at(source, span_of(key))
                .label(format!("not a `{kind}` modifier"))
                .help(format!("remove `{key}`, or move it to a `{owner}` step")),
            );
        }
    }
    if kind == "env" && place.table == "layer" && decl.manifest.is_some() {
        ok = false;
        problems.push(
            Problem::new("gear::gear-only-key", "`manifest` is only for gears' `env` steps")
                .at(source, span_of("manifest"))
                .label("in a [layer]")
                .help("a layer's variables reach its gears' manifests through the image's environment: remove `manifest`"),
        );
    }
    let mut bad = |key: &str, code: &'static str, message: String, label: &str, help: String| {
        problems.push(
            Problem::new(code, message)
                .at(source, value_span(key))
                .label(label.to_string())
                .help(help),
        );
    };
    let step = match kind {
        "run" => match decl.run.clone()? {
            RunDecl::Shell(s) if s.trim().is_empty() => {
                bad(
                    "run",
                    "gear::empty-step",
                    format!("step {number}: `run` is empty"),
                    "empty command",
                    "write the command to run, or remove the step".into(),
                );
                return None;
            }
            RunDecl::Shell(s) => Step::Run(Run::Shell(s)),
            RunDecl::Exec(e) if e.exec.is_empty() => {
                bad(
                    "run",
                    "gear::empty-step",
                    format!("step {number}: `run.exec` is empty"),
                    "empty command",
                    "name the program and its arguments, e.g. `{ exec = [\"/bin/true\"] }`".into(),
                );
                return None;
            }
            RunDecl::Exec(e) => Step::Run(Run::Exec(e.exec)),
        },
        "packages" => Step::Packages(decl.packages.clone()?),
        "pip" => match decl.pip.clone()? {
            PipDecl::List(packages) => Step::Pip(Pip {
                packages,
                ..Pip::default()
            }),
            PipDecl::Table(t) => {
                let requirements = match &t.requirements {
                    Some(r) => match normalize_rel(r).filter(|r| !r.is_empty()) {
                        Some(r) => Some(r),
                        None => {
                            bad(
                                "pip",
                                "gear::path-escape",
                                format!(
                                    "step {number}: requirements file `{r}` is not a file of the {}",
                                    place.table
                                ),
                                "outside the directory",
                                "name a requirements file relative to this directory".into(),
                            );
                            return None;
                        }
                    },
                    None => None,
                };
                if t.packages.is_empty() && requirements.is_none() {
                    bad(
                        "pip",
                        "gear::empty-step",
                        format!("step {number}: `pip` installs nothing"),
                        "no packages, no requirements",
                        "add `packages = [...]` or `requirements = \"requirements.txt\"`".into(),
                    );
                    return None;
                }
                Step::Pip(Pip {
                    packages: t.packages,
                    requirements,
                    args: t.args,
                    index_url: t.index_url,
                    upgrade_pip: t.upgrade_pip,
                })
            }
        },
        "python" => {
            let p = decl.python.clone()?;
            let written = p.project.clone().unwrap_or_else(|| ".".into());
            let Some(project) = normalize_rel(&written) else {
                bad(
                    "python",
                    "gear::path-escape",
                    format!(
                        "step {number}: project `{written}` is not inside the {} directory",
                        place.table
                    ),
                    "outside the directory",
                    "name the project's directory relative to this one (`.` is this directory)"
                        .into(),
                );
                return None;
            };
            Step::Python(Python {
                tool: p.tool,
                project,
                groups: p.groups,
                args: p.args,
            })
        }
        "copy" => {
            let written = decl.copy.clone()?;
            if written.is_empty() {
                bad(
                    "copy",
                    "gear::empty-step",
                    format!("step {number}: `copy` names nothing"),
                    "empty list",
                    "name the files or directories to copy (`\".\"` is the whole directory)".into(),
                );
                return None;
            }
            let ignore_files = decl.ignore_files.unwrap_or(true);
            let mut sources = Vec::new();
            for (i, path) in written.iter().enumerate() {
                let item = source.array_item_span(&[place.table, "steps", &n, "copy"], i);
                match classify(path, ignore_files, place) {
                    Ok(s) => sources.push(s),
                    Err((code, why, help)) => {
                        ok = false;
                        problems.push(
                            Problem::new(
                                code,
                                format!("step {number}: `copy` source `{path}` {why}"),
                            )
                            .at(source, item)
                            .label("this source")
                            .help(help),
                        );
                    }
                }
            }
            let needs_to = sources
                .iter()
                .any(|s| matches!(s, Source::Workspace { .. }));
            if needs_to && decl.to.is_none() {
                ok = false;
                problems.push(
                    Problem::new(
                        "gear::copy-dest",
                        format!(
                            "step {number}: a `copy` from outside the {} directory needs `to`",
                            place.table
                        ),
                    )
                    .at(source, value_span("copy"))
                    .label("no destination")
                    .help(
                        "add `to = \"/absolute/path\"` beside `copy`: where it goes in the image",
                    ),
                );
            }
            if let Some(to) = &decl.to
                && (sources.len() > 1 || sources.iter().any(Source::is_glob))
                && !to.ends_with('/')
            {
                ok = false;
                problems.push(
                    Problem::new(
                        "gear::copy-dest",
                        format!("step {number}: several sources (or a glob) go into a directory, but `to = \"{to}\"` does not end with `/`"),
                    )
                    .at(source, value_span("to"))
                    .label("not a directory")
                    .help(format!("write `to = \"{to}/\"`")),
                );
            }
            let mode = match &decl.chmod {
                None => None,
                Some(m) => match u32::from_str_radix(m.trim_start_matches("0o"), 8) {
                    Ok(mode) if mode <= 0o7777 => Some(mode),
                    _ => {
                        ok = false;
                        problems.push(
                            Problem::new(
                                "gear::chmod",
                                format!(
                                    "step {number}: `chmod = \"{m}\"` is not an octal file mode"
                                ),
                            )
                            .at(source, value_span("chmod"))
                            .label("not a mode")
                            .help("write the mode in octal, e.g. `chmod = \"0755\"`"),
                        );
                        None
                    }
                },
            };
            Step::Copy(Copy {
                index,
                sources,
                to: decl.to.clone(),
                mode,
                chown: decl.chown.clone(),
            })
        }
        "env" => Step::Env {
            vars: decl.env.clone()?,
            manifest: decl.manifest.unwrap_or(false),
        },
        "arg" => Step::Arg(decl.arg.clone()?),
        "workdir" => Step::Workdir(decl.workdir.clone()?),
        "user" => Step::User(decl.user.clone()?),
        "shell" => Step::Shell(decl.shell.clone()?),
        "dockerfile" => Step::Raw(decl.dockerfile.clone()?),
        _ => return None,
    };
    ok.then_some(step)
}

/// Keys written in one step table (an `[[…steps]]` table or an inline table of `steps`).
fn written_step_keys(source: &SourceFile, keys: &[&str]) -> Vec<String> {
    let Ok(doc) = source.document() else {
        return Vec::new();
    };
    let mut item = doc.as_item();
    for key in &keys[..keys.len() - 1] {
        match item.as_table_like().and_then(|t| t.get(key)) {
            Some(next) => item = next,
            None => return Vec::new(),
        }
    }
    let Ok(i) = keys[keys.len() - 1].parse::<usize>() else {
        return Vec::new();
    };
    let table: Option<&dyn toml_edit::TableLike> = match item {
        toml_edit::Item::ArrayOfTables(a) => a.get(i).map(|t| t as &dyn toml_edit::TableLike),
        toml_edit::Item::Value(toml_edit::Value::Array(a)) => a
            .get(i)
            .and_then(|v| v.as_inline_table())
            .map(|t| t as &dyn toml_edit::TableLike),
        _ => None,
    };
    table
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// A `copy` source as written, classified: a path of the layer directory, or (climbing
/// out of it with `..`) one of the workspace. Returns (code, why, help) when it is
/// neither.
fn classify(
    path: &str,
    ignore_files: bool,
    place: Place<'_>,
) -> Result<Source, (&'static str, String, String)> {
    if path.is_empty() {
        return Err((
            "gear::empty-path",
            "is empty".into(),
            "name a file or directory (`\".\"` is the whole directory), or remove the entry".into(),
        ));
    }
    if path.contains(['\\', '\0']) {
        return Err((
            "gear::path-character",
            "contains a `\\` or a NUL, which a Docker build context cannot hold".into(),
            format!(
                "separate directories with `/`: `\"{}\"`",
                path.replace('\\', "/").replace('\0', "")
            ),
        ));
    }
    if let Some(rel) = normalize_rel(path) {
        return Ok(Source::Layer { rel, ignore_files });
    }
    let outside = || {
        (
            "gear::outside-workspace",
            "is outside the workspace".to_string(),
            "only files of the workspace can be copied: copy or build it into the workspace first"
                .to_string(),
        )
    };
    if path.starts_with('/') {
        return Err(outside());
    }
    let dir = place.dir_in_root.ok_or_else(outside)?;
    let joined = if dir.is_empty() {
        path.to_string()
    } else {
        format!("{dir}/{path}")
    };
    let rel = normalize_rel(&joined).ok_or_else(outside)?;
    if rel.is_empty() {
        return Err((
            "gear::path-escape",
            "is the whole workspace".into(),
            "name a file or directory of the workspace".into(),
        ));
    }
    Ok(Source::Workspace { rel })
}

#[cfg(test)]
mod tests;
