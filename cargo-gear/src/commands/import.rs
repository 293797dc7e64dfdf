//! `cargo gear import`: existing gear directories (manifest.json, Dockerfile, run script)
//! into Gear.toml files, with [`gear_spec::import`] doing the mapping.
//!
//! Without `--into` the Gear.toml is written into the gear's directory; with it, the gear's
//! files are copied to a new directory first. The Dockerfile's `FROM` image becomes an
//! external layer written where the workspace's `members` globs find it (`layers/NAME` for
//! `layers/*`), unless the workspace already declares one with that image or `--from` names
//! the parent. Nothing is overwritten without `--force`, and every check is made before the
//! first file is written. Warnings (what did not map exactly) are miette diagnostics on
//! stderr, pointing into the Dockerfile or manifest.json.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gear_spec::diagnostic::{Problem, SourceFile, display_path};
use gear_spec::import::{Import, ImportError, Source, Warning};
use gear_spec::layer::{GEAR_TOML, Layer, LayerKind};
use miette::{Diagnostic, LabeledSpan, Severity, SourceCode};

use crate::cli::{GlobalArgs, ImportArgs};
use crate::error::CliError;
use crate::output::{self, Output};
use crate::workspace::{self, Workspace};

/// A layer the workspace already has: its name, kind and image.
struct Known {
    name: String,
    kind: LayerKind,
    image: String,
}

/// One gear to write.
struct Planned {
    /// Where the Gear.toml goes.
    gear_toml: PathBuf,
    /// Its text.
    toml: String,
    /// Files to copy first (`--into`): (from, to).
    copies: Vec<(PathBuf, PathBuf)>,
}

/// An external layer to create.
struct NewLayer {
    name: String,
    image: String,
    dir: PathBuf,
    toml: String,
}

/// Imports every DIR, or writes nothing when one of them fails.
pub fn run(global: &GlobalArgs, cwd: &Path, args: &ImportArgs) -> Result<(), CliError> {
    let out = Output::new(global.color, global.quiet);
    if args.into.is_some() && args.dirs.len() > 1 {
        return Err(CliError::usage(
            "--into takes one gear directory",
            "import the gears one at a time, each with its own --into PATH",
        ));
    }
    let ws = discover(global, cwd, &out);
    let shown_root = ws.as_ref().map_or(cwd, |w| w.root.as_path()).to_path_buf();
    let show = |p: &Path| display_path(p, &shown_root);
    let mut known = known_layers(ws.as_ref());
    if let Some(from) = &args.from
        && !known.iter().any(|k| &k.name == from)
    {
        out.warn(format!(
            "the workspace has no layer named `{from}` yet: declare it before building the imported gear"
        ));
    }
    let layers_dir = layers_dir(ws.as_ref(), &known, cwd);
    let mut gears = Vec::new();
    let mut new_layers: Vec<NewLayer> = Vec::new();
    for dir in &args.dirs {
        let dir = cwd.join(dir);
        let (import, files) = read(&dir, &show)?;
        for warning in import.warnings() {
            print_warning(warning, &files);
        }
        let parent = match (&args.from, import.base()) {
            (Some(from), _) => from.clone(),
            (None, Some(base)) => {
                let reuse = known
                    .iter()
                    .find(|k| k.kind == LayerKind::External && k.image == base.image)
                    .map(|k| k.name.clone());
                match reuse {
                    Some(name) => name,
                    None => {
                        let name = base.layer_name(|n| known.iter().any(|k| k.name == n));
                        let layer_dir = layers_dir.join(&name);
                        let toml = base.layer_toml(&name);
                        refuse_existing(&layer_dir.join(GEAR_TOML), args.force, &show)?;
                        known.push(Known {
                            name: name.clone(),
                            kind: LayerKind::External,
                            image: base.image.clone(),
                        });
                        new_layers.push(NewLayer {
                            name: name.clone(),
                            image: base.image.clone(),
                            dir: layer_dir,
                            toml,
                        });
                        name
                    }
                }
            }
            (None, None) => {
                return Err(Problem::new(
                    "gear::import-no-base",
                    format!(
                        "{} names no image to build on: it has no Dockerfile with a FROM",
                        show(&dir)
                    ),
                )
                .help("pass --from LAYER: the workspace layer the gear is built on (e.g. an external layer of the image it ran in)")
                .into());
            }
        };
        if files.dockerfile.is_none() {
            let warning = Problem::new(
                "gear::import-no-dockerfile",
                format!(
                    "{} has no Dockerfile: only the manifest is imported",
                    show(&dir)
                ),
            )
            .help("add steps to the Gear.toml for what the gear's image needs besides its parent");
            output::stderr(&format!("{:?}\n", miette::Report::new(AsWarning(warning))));
        }
        let target = match &args.into {
            Some(into) => cwd.join(into),
            None => dir.clone(),
        };
        let gear_toml = target.join(GEAR_TOML);
        refuse_existing(&gear_toml, args.force, &show)?;
        let mut copies = Vec::new();
        if args.into.is_some() {
            for file in gear_files(&dir)? {
                let to = target.join(file.strip_prefix(&dir).unwrap_or(&file));
                refuse_existing(&to, args.force, &show)?;
                copies.push((file, to));
            }
        }
        gears.push(Planned {
            gear_toml,
            toml: import.gear_toml(&parent),
            copies,
        });
    }
    if args.dry_run {
        let mut text = String::new();
        for layer in &new_layers {
            text.push_str(&format!(
                "# {}\n{}\n",
                show(&layer.dir.join(GEAR_TOML)),
                layer.toml
            ));
        }
        for gear in &gears {
            text.push_str(&format!("# {}\n{}\n", show(&gear.gear_toml), gear.toml));
        }
        output::stdout(&text);
        return Ok(());
    }
    for layer in &new_layers {
        write(&layer.dir.join(GEAR_TOML), &layer.toml)?;
        out.status(
            "Created",
            format!(
                "external layer `{}` ({}) in {}",
                layer.name,
                layer.image,
                show(&layer.dir)
            ),
        );
    }
    for gear in &gears {
        for (from, to) in &gear.copies {
            copy(from, to)?;
        }
        write(&gear.gear_toml, &gear.toml)?;
        out.status("Imported", show(&gear.gear_toml));
    }
    warn_unfound(&out, global, cwd, &gears, &new_layers, &show);
    Ok(())
}

/// The workspace, if any. A gear copied under a `members` glob has no Gear.toml yet, which
/// Cargo-workspace discovery refuses: then the tree of the nearest Cargo.toml is scanned
/// instead (its layers found, new ones under its `layers/`).
fn discover(global: &GlobalArgs, cwd: &Path, out: &Output) -> Option<Workspace> {
    let error =
        match workspace::discover(cwd, global.manifest_path.as_deref(), global.root.as_deref()) {
            Ok(ws) => return Some(ws),
            Err(e) => e,
        };
    let manifest = match &global.manifest_path {
        Some(p) => Some(cwd.join(p)),
        None => cwd
            .ancestors()
            .map(|d| d.join("Cargo.toml"))
            .find(|p| p.is_file()),
    };
    let scanned = manifest
        .as_deref()
        .and_then(Path::parent)
        .and_then(|root| workspace::discover(cwd, None, Some(root)).ok());
    if scanned.is_none() {
        out.warn(format!(
            "{error}: new layers go under {}",
            cwd.join("layers").display()
        ));
    }
    scanned
}

/// manifest.json and the Dockerfile of the gear directory, for the warnings' snippets.
struct Files {
    manifest: Arc<SourceFile>,
    dockerfile: Option<Arc<SourceFile>>,
}

/// Reads DIR's manifest.json and Dockerfile and maps them; every error names its file and
/// what to do.
fn read(dir: &Path, show: &dyn Fn(&Path) -> String) -> Result<(Import, Files), CliError> {
    if !dir.is_dir() {
        return Err(CliError::usage(
            format!("{} is not a directory", show(dir)),
            "pass the directory of a gear: the one holding its manifest.json",
        ));
    }
    let manifest_path = dir.join("manifest.json");
    let manifest_text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Problem::new(
                "gear::import-no-manifest",
                format!("{} has no manifest.json", show(dir)),
            )
            .help("import the directory of a Flywheel gear: it holds manifest.json, and usually a Dockerfile and the run script")
            .into());
        }
        Err(e) => return Err(CliError::io("read", manifest_path, e)),
    };
    let dockerfile_path = dir.join("Dockerfile");
    let dockerfile_text = match std::fs::read_to_string(&dockerfile_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(CliError::io("read", dockerfile_path, e)),
    };
    let manifest = SourceFile::new(manifest_path.clone(), show(&manifest_path), manifest_text);
    let dockerfile = dockerfile_text
        .as_ref()
        .map(|t| SourceFile::new(dockerfile_path.clone(), show(&dockerfile_path), t.clone()));
    let import = Import::new(manifest.text(), dockerfile_text.as_deref()).map_err(|e| {
        let problem = match &e {
            ImportError::ManifestSyntax { offset, message } => Problem::new(
                "gear::import-manifest-json",
                format!("{} is not valid JSON", manifest.display),
            )
            .at(&manifest, Some((*offset..*offset).into()))
            .label(message.clone())
            .help("fix the JSON (Flywheel could not read it either), then import again"),
            ImportError::ManifestNotObject | ImportError::ManifestName => Problem::new(
                "gear::import-manifest-json",
                format!("{}: {e}", manifest.display),
            )
            .at(&manifest, Some((0..0).into()))
            .help("a gear manifest is a JSON object with at least `name`"),
            ImportError::Dockerfile(parse) => {
                let file = dockerfile.as_ref().unwrap_or(&manifest);
                Problem::new(
                    "gear::import-dockerfile",
                    format!("{} cannot be read: {parse}", file.display),
                )
                .at(file, Some(line_span(file.text(), parse.line())))
                .help("fix the Dockerfile (`docker build` refuses it too), then import again")
            }
        };
        CliError::from(problem)
    })?;
    Ok((
        import,
        Files {
            manifest,
            dockerfile,
        },
    ))
}

/// The byte span of 1-based `line` of `text`.
fn line_span(text: &str, line: usize) -> miette::SourceSpan {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let len = text[start.min(text.len())..]
        .find(['\r', '\n'])
        .unwrap_or(text.len() - start.min(text.len()));
    (start..start + len).into()
}

/// Prints an import warning as a diagnostic pointing at its instruction or key.
fn print_warning(w: &Warning, files: &Files) {
    let file = match w.source {
        Source::Dockerfile => files.dockerfile.as_ref().unwrap_or(&files.manifest),
        Source::Manifest => &files.manifest,
    };
    let span = line_span(file.text(), w.line);
    let span = (w.span.start.max(span.offset())..span.offset() + span.len()).into();
    let message = match w.source {
        Source::Dockerfile => w.message.clone(),
        Source::Manifest => format!("`{}`: {}", w.subject, w.message),
    };
    let problem = Problem::new(w.code, message)
        .at(file, Some(span))
        .label(match w.source {
            Source::Dockerfile => "this instruction",
            Source::Manifest => "this key",
        });
    output::stderr(&format!("{:?}\n", miette::Report::new(AsWarning(problem))));
}

/// A problem shown as a warning.
#[derive(Debug)]
struct AsWarning(Problem);

impl fmt::Display for AsWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AsWarning {}

impl Diagnostic for AsWarning {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Diagnostic::code(&self.0)
    }
    fn severity(&self) -> Option<Severity> {
        Some(Severity::Warning)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Diagnostic::help(&self.0)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Diagnostic::source_code(&self.0)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Diagnostic::labels(&self.0)
    }
}

/// The layers the workspace declares (those whose Gear.toml loads).
fn known_layers(ws: Option<&Workspace>) -> Vec<Known> {
    let Some(ws) = ws else { return Vec::new() };
    ws.layer_dirs
        .iter()
        .filter_map(|dir| Layer::load(dir, &ws.root).ok())
        .map(|l| Known {
            name: l.name,
            kind: l.kind,
            image: l.decl.image,
        })
        .collect()
}

/// Where new external layers go: the directory of a `members` glob `DIR/*` (the one that
/// already holds an external layer, else `layers/*`, else the first), else `layers/` under
/// the workspace root (or the current directory outside a workspace).
fn layers_dir(ws: Option<&Workspace>, known: &[Known], cwd: &Path) -> PathBuf {
    let Some(ws) = ws else {
        return cwd.join("layers");
    };
    let dirs: Vec<&str> = ws
        .members
        .iter()
        .filter_map(|m| m.trim_start_matches("./").strip_suffix("/*"))
        .filter(|d| !d.contains(['*', '?', '[']))
        .collect();
    let holds_external = |d: &str| {
        let base = ws.root.join(d);
        known.iter().any(|k| {
            k.kind == LayerKind::External
                && ws
                    .layer_dirs
                    .iter()
                    .any(|l| l.parent() == Some(base.as_path()) && l.ends_with(&k.name))
        })
    };
    let chosen = dirs
        .iter()
        .find(|d| holds_external(d))
        .or_else(|| dirs.iter().find(|d| **d == "layers"))
        .or_else(|| dirs.first());
    ws.root.join(chosen.copied().unwrap_or("layers"))
}

/// An error when `path` exists and `--force` was not given.
fn refuse_existing(
    path: &Path,
    force: bool,
    show: &dyn Fn(&Path) -> String,
) -> Result<(), CliError> {
    if force || !path.exists() {
        return Ok(());
    }
    Err(Problem::new(
        "gear::import-exists",
        format!("{} already exists", show(path)),
    )
    .help("pass --force to overwrite it, or --into PATH to import into a new directory")
    .into())
}

/// The files under `dir` (not `.git`), sorted.
fn gear_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| CliError::io("read", &d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CliError::io("read", &d, e))?;
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a file and its directory.
fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| CliError::io("write", path, e))
}

/// Copies a file (with its permissions) and creates its directory.
fn copy(from: &Path, to: &Path) -> Result<(), CliError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| CliError::io("copy", from, e))
}

/// Warns when the workspace does not find a directory just written.
fn warn_unfound(
    out: &Output,
    global: &GlobalArgs,
    cwd: &Path,
    gears: &[Planned],
    layers: &[NewLayer],
    show: &dyn Fn(&Path) -> String,
) {
    let Ok(ws) = workspace::discover(cwd, global.manifest_path.as_deref(), global.root.as_deref())
    else {
        return;
    };
    let found = |dir: &Path| {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        ws.layer_dirs
            .iter()
            .any(|d| d.canonicalize().unwrap_or_else(|_| d.clone()) == dir)
    };
    let missing: Vec<String> = layers
        .iter()
        .map(|l| l.dir.clone())
        .chain(
            gears
                .iter()
                .filter_map(|g| g.gear_toml.parent().map(Path::to_path_buf)),
        )
        .filter(|d| !found(d))
        .map(|d| show(&d))
        .collect();
    if !missing.is_empty() {
        out.warn(format!(
            "the workspace does not find {}: list them in [workspace.metadata.gear] members (a Cargo workspace) or move them under the --root tree",
            missing.join(", ")
        ));
    }
}
