//! `cargo gear import`: an existing gear directory's `manifest.json` and `Dockerfile` turned
//! into a Gear.toml, without touching the filesystem.
//!
//! Manifest fields become `[gear]` keys (inputs and config in their order; draft-04 boolean
//! `exclusiveMinimum`/`exclusiveMaximum` become Gear.toml's numeric bounds; `environment` is
//! not copied, the build fills it; `custom.gear-builder.image` is derived by cargo-gear, so it
//! becomes `image`, the repository without its tag). Dockerfile instructions become ordered
//! `[[gear.steps]]` where they map exactly, raw `dockerfile` steps where Gear.toml has no typed
//! step, and the whole gear keeps its Dockerfile (`dockerfile-file = "Dockerfile"`) when one
//! instruction needs it (several FROM, ARG before FROM, `COPY --from`, heredocs, RUN flags,
//! BuildKit-only COPY flags, ADD of a local archive). The `FROM` image becomes an external
//! layer ([`BaseImage`]). Every instruction or manifest key not carried over exactly is a
//! [`Warning`] naming its file and line.

use std::ops::Range;

use indexmap::IndexMap;
use serde_json::Value;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use crate::dockerfile::FLYWHEEL_DIR;
use crate::dockerfile::parse::{self, Dockerfile, Instruction, ParseError};
use crate::manifest::GEAR_BUILDER;
use crate::model::Distro;

/// Which of the imported files a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `manifest.json`.
    Manifest,
    /// `Dockerfile`.
    Dockerfile,
}

/// Something not carried over exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `gear::import-…`.
    pub code: &'static str,
    /// The file.
    pub source: Source,
    /// 1-based line.
    pub line: usize,
    /// Byte range in the file.
    pub span: Range<usize>,
    /// What it is about: the instruction's first line, or the manifest key.
    pub subject: String,
    /// What happened to it.
    pub message: String,
}

/// Why nothing could be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// manifest.json is not JSON.
    #[error("manifest.json is not valid JSON: {message}")]
    ManifestSyntax {
        /// serde_json's message.
        message: String,
        /// Byte offset of the error.
        offset: usize,
    },
    /// manifest.json is JSON but not an object.
    #[error("manifest.json is not a JSON object")]
    ManifestNotObject,
    /// manifest.json has no string `name`.
    #[error("manifest.json has no `name` string")]
    ManifestName,
    /// The Dockerfile cannot be split.
    #[error("the Dockerfile cannot be read: {0}")]
    Dockerfile(#[from] ParseError),
}

/// The image a gear's Dockerfile starts `FROM`, to become an external layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference, e.g. `bids/freesurfer:v6.0.1-5`.
    pub image: String,
    /// The package manager family, when the reference or the Dockerfile's RUN lines make it
    /// obvious.
    pub distro: Option<Distro>,
}

impl BaseImage {
    /// The layer's name: the repository's last path component, with the tag when that name
    /// is `taken` (`python`, `python-3-12-slim`).
    pub fn layer_name(&self, taken: impl Fn(&str) -> bool) -> String {
        external_layer_name(&self.image, taken)
    }

    /// The external layer's Gear.toml.
    pub fn layer_toml(&self, name: &str) -> String {
        let mut out = format!("[layer]\nname = \"{name}\"\nimage = \"{}\"\n", self.image);
        if let Some(distro) = self.distro {
            out.push_str(&format!(
                "distro = \"{}\"  # debian (apt) | centos (yum) | alpine (apk): guessed\n",
                distro.as_str()
            ));
        }
        out
    }
}

/// The name of an external layer for `reference`: its repository's last path component
/// (lowercase, other characters as `-`), with the tag appended when that name is `taken`.
pub fn external_layer_name(reference: &str, taken: impl Fn(&str) -> bool) -> String {
    let (repo, tag) = split_tag(crate::reference::without_digest(reference));
    let slug = |s: &str| {
        let s: String = s
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        s.trim_matches('-').to_string()
    };
    let base = slug(repo.rsplit('/').next().unwrap_or(repo));
    match tag {
        Some(tag) if taken(&base) => format!("{base}-{}", slug(tag)),
        _ => base,
    }
}

/// `repo:tag` → (`repo`, `tag`); a `:` of a registry port is not a tag.
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (reference, None),
    }
}

/// The distro family an image reference names, when it names one.
pub fn distro_of_reference(reference: &str) -> Option<Distro> {
    let lower = reference.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["alpine"]) {
        Some(Distro::Alpine)
    } else if has(&[
        "centos",
        "rocky",
        "alma",
        "fedora",
        "amazonlinux",
        "ubi",
        "rhel",
    ]) {
        Some(Distro::Centos)
    } else if has(&[
        "debian", "ubuntu", "buster", "bullseye", "bookworm", "trixie", "stretch", "jessie",
        "trusty", "xenial", "bionic", "focal", "jammy", "noble",
    ]) || lower.starts_with("python:")
    {
        Some(Distro::Debian)
    } else {
        None
    }
}

/// The distro family the RUN lines' package manager shows, when they use exactly one.
fn distro_of_runs(dockerfile: &Dockerfile) -> Option<Distro> {
    let mut found = Vec::new();
    for i in dockerfile
        .instructions
        .iter()
        .filter(|i| i.keyword == "RUN")
    {
        let words: Vec<&str> = i
            .args
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .collect();
        for (w, d) in [
            ("apt-get", Distro::Debian),
            ("apt", Distro::Debian),
            ("yum", Distro::Centos),
            ("dnf", Distro::Centos),
            ("apk", Distro::Alpine),
        ] {
            if words.contains(&w) && !found.contains(&d) {
                found.push(d);
            }
        }
    }
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// A manifest.json and Dockerfile, read and mapped; [`Import::gear_toml`] writes the result.
#[derive(Debug, Clone)]
pub struct Import {
    manifest: serde_json::Map<String, Value>,
    manifest_text: String,
    base: Option<BaseImage>,
    build: Build,
    labels: IndexMap<String, String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    warnings: Vec<Warning>,
}

/// How the image is built.
#[derive(Debug, Clone)]
enum Build {
    /// No Dockerfile: nothing but the frame.
    Nothing,
    /// Ordered steps.
    Steps(Vec<Placed>),
    /// The gear's own Dockerfile.
    DockerfileFile,
}

/// A step with the comments written above its instruction.
#[derive(Debug, Clone)]
struct Placed {
    step: Step,
    comments: Vec<String>,
}

/// One `[[gear.steps]]` table.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Run(String),
    RunExec(Vec<String>),
    Copy {
        sources: Vec<String>,
        to: String,
        chmod: Option<String>,
        chown: Option<String>,
    },
    Env {
        vars: Vec<(String, String)>,
        manifest: bool,
    },
    Arg(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Shell(Vec<String>),
    Raw(Vec<String>),
}

/// The instruction kinds that take ordinary instructions' place as raw lines.
const RAW_KINDS: &[&str] = &[
    "MAINTAINER",
    "EXPOSE",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
];

/// File extensions Docker's ADD unpacks.
const ARCHIVES: &[&str] = &[
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst",
];

/// The copy flags a `copy` step expresses.
const COPY_FLAGS: &[&str] = &["chown", "chmod"];

impl Import {
    /// Reads `manifest` (manifest.json's text) and `dockerfile` (the Dockerfile's, when the
    /// gear has one) and maps them; the warnings come in file order, manifest first.
    pub fn new(manifest: &str, dockerfile: Option<&str>) -> Result<Import, ImportError> {
        let value: Value =
            serde_json::from_str(manifest).map_err(|e| ImportError::ManifestSyntax {
                message: e.to_string(),
                offset: offset_of(manifest, e.line(), e.column()),
            })?;
        let Value::Object(map) = value else {
            return Err(ImportError::ManifestNotObject);
        };
        if !map.get("name").is_some_and(Value::is_string) {
            return Err(ImportError::ManifestName);
        }
        let mut import = Import {
            manifest: map,
            manifest_text: manifest.to_string(),
            base: None,
            build: Build::Nothing,
            labels: IndexMap::new(),
            entrypoint: None,
            cmd: None,
            warnings: Vec::new(),
        };
        import.check_manifest();
        if let Some(text) = dockerfile {
            let parsed = parse::parse(text)?;
            import.map_dockerfile(&parsed);
        }
        Ok(import)
    }

    /// The image the Dockerfile builds on, when it names one.
    pub fn base(&self) -> Option<&BaseImage> {
        self.base.as_ref()
    }

    /// What was not carried over exactly, in file order (manifest first).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Whether the gear keeps its own Dockerfile (`dockerfile-file`).
    pub fn keeps_dockerfile(&self) -> bool {
        matches!(self.build, Build::DockerfileFile)
    }

    /// The name manifest.json gives the gear.
    pub fn name(&self) -> &str {
        self.manifest
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A warning at `line` (with `span`) of `source`.
    fn warn(
        &mut self,
        code: &'static str,
        source: Source,
        at: (usize, Range<usize>),
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.warnings.push(Warning {
            code,
            source,
            line: at.0,
            span: at.1,
            subject: subject.into(),
            message: message.into(),
        });
    }

    /// A warning about an instruction.
    fn warn_at(&mut self, code: &'static str, i: &Instruction, message: impl Into<String>) {
        let first = i.lines.first().map_or("", |l| l.trim());
        self.warn(
            code,
            Source::Dockerfile,
            (i.start_line, i.span.clone()),
            first,
            message,
        );
    }

    /// A warning about the manifest key at `path`.
    fn warn_key(&mut self, path: &[&str], message: impl Into<String>) {
        let offset = locate(&self.manifest_text, path);
        let line = self.manifest_text[..offset].matches('\n').count() + 1;
        let len = path.last().map_or(0, |k| k.len() + 2);
        let span = offset..(offset + len).min(self.manifest_text.len());
        self.warn(
            "gear::import-manifest",
            Source::Manifest,
            (line, span),
            path.join("."),
            message,
        );
    }

    fn map_dockerfile(&mut self, d: &Dockerfile) {
        let froms: Vec<&Instruction> = d
            .instructions
            .iter()
            .filter(|i| i.keyword == "FROM")
            .collect();
        self.base = self.base_image(d);
        let reasons = own_dockerfile_reasons(d);
        if !reasons.is_empty() {
            for (i, reason) in reasons {
                self.warn_at(
                    "gear::import-dockerfile-file",
                    i,
                    format!("{reason}: the gear keeps its Dockerfile (`dockerfile-file = \"Dockerfile\"`) instead of steps"),
                );
            }
            self.build = Build::DockerfileFile;
            return;
        }
        if froms.is_empty() {
            self.build = Build::Steps(Vec::new());
            return;
        }
        let env = self.manifest_environment();
        let mut vars: IndexMap<String, String> = IndexMap::new();
        let mut workdir: Option<String> = Some("/".into());
        let mut steps: Vec<Placed> = Vec::new();
        for i in &d.instructions {
            self.check_swallowed(i);
            let step = match i.keyword.as_str() {
                "FROM" => None,
                "ENV" => Some(self.env_step(i, d.escape, &env, &mut vars)),
                "ARG" => Some(self.arg_step(i, d.escape, &mut vars)),
                "LABEL" => self.labels(i, d.escape),
                "RUN" => Some(match &i.exec {
                    Some(exec) => Step::RunExec(exec.clone()),
                    None => Step::Run(i.body_lines(d.escape)),
                }),
                "COPY" | "ADD" => self.copy_step(i, d.escape, &vars, workdir.as_deref()),
                "WORKDIR" => {
                    let dir = words_text(&i.args, d.escape);
                    workdir = match (parse::expand(&dir, &vars), workdir) {
                        (Some(abs), _) if abs.starts_with('/') => Some(abs),
                        (Some(rel), Some(base)) => {
                            Some(format!("{}/{rel}", base.trim_end_matches('/')))
                        }
                        _ => None,
                    };
                    Some(Step::Workdir(dir))
                }
                "USER" => Some(Step::User(i.args.clone())),
                "SHELL" => Some(match &i.exec {
                    Some(exec) => Step::Shell(exec.clone()),
                    None => Step::Raw(vec![i.original.trim_end().to_string()]),
                }),
                "ENTRYPOINT" | "CMD" => self.exec_key(i),
                kind => {
                    if !RAW_KINDS.contains(&kind) {
                        self.warn_at(
                            "gear::import-inexact",
                            i,
                            format!("`{kind}` is no Dockerfile instruction cargo-gear knows: kept as a raw `dockerfile` line"),
                        );
                    }
                    Some(Step::Raw(vec![i.original.trim_end().to_string()]))
                }
            };
            let Some(step) = step else { continue };
            // Consecutive raw lines share one step.
            if let (
                Step::Raw(new),
                Some(Placed {
                    step: Step::Raw(lines),
                    comments,
                }),
            ) = (&step, steps.last_mut())
            {
                lines.extend(new.iter().cloned());
                comments.extend(i.comments.iter().cloned());
                continue;
            }
            steps.push(Placed {
                step,
                comments: i.comments.clone(),
            });
        }
        self.build = Build::Steps(steps);
    }

    /// The final stage's base image, with global ARG defaults expanded and stage names
    /// followed.
    fn base_image(&self, d: &Dockerfile) -> Option<BaseImage> {
        let mut globals: IndexMap<String, String> = IndexMap::new();
        let mut stages: IndexMap<String, String> = IndexMap::new();
        let mut last = None;
        for i in &d.instructions {
            match i.keyword.as_str() {
                "ARG" if last.is_none() => {
                    for p in parse::pairs(i, d.escape) {
                        if let Some(v) = p.value {
                            globals.insert(p.name, v);
                        }
                    }
                }
                "FROM" => {
                    let from = parse::from(i, d.escape);
                    let image = parse::expand(&from.image, &globals)?;
                    let image = stages.get(&image).cloned().unwrap_or(image);
                    if let Some(alias) = from.alias {
                        stages.insert(alias, image.clone());
                    }
                    last = Some(image);
                }
                _ => {}
            }
        }
        let image = last?;
        let distro = distro_of_reference(&image).or_else(|| distro_of_runs(d));
        Some(BaseImage { image, distro })
    }

    /// manifest.json's `environment`, as strings.
    fn manifest_environment(&self) -> IndexMap<String, String> {
        self.manifest
            .get("environment")
            .and_then(Value::as_object)
            .map(|env| {
                env.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Warns when a continuation line of `i` starts like an instruction: Docker reads it as
    /// part of `i` (a `\` too many on the line before).
    fn check_swallowed(&mut self, i: &Instruction) {
        let swallowed = i.lines.iter().skip(1).find(|l| {
            let word = l.split_whitespace().next().unwrap_or_default();
            KEYWORDS.contains(&word.to_ascii_uppercase().as_str())
                && word.chars().all(|c| c.is_ascii_uppercase())
        });
        if let Some(line) = swallowed {
            self.warn_at(
                "gear::import-continuation",
                i,
                format!(
                    "the line `{}` is part of this {} (the line before it ends with a continuation), as Docker reads it; imported the same way",
                    line.trim(),
                    i.keyword
                ),
            );
        }
    }

    fn env_step(
        &mut self,
        i: &Instruction,
        escape: char,
        manifest_env: &IndexMap<String, String>,
        vars: &mut IndexMap<String, String>,
    ) -> Step {
        let pairs = parse::pairs(i, escape);
        if pairs.iter().any(|p| p.literal_dollar) {
            self.warn_at(
                "gear::import-inexact",
                i,
                "a quoted `$` would be expanded in a generated ENV: kept as a raw `dockerfile` line (image only, not in the manifest's environment)",
            );
            for p in &pairs {
                vars.shift_remove(&p.name);
            }
            return Step::Raw(vec![i.original.trim_end().to_string()]);
        }
        let mut vars_out = Vec::new();
        let mut matched = 0;
        let mut differing = Vec::new();
        for p in pairs {
            let value = p.value.unwrap_or_default();
            let expanded = parse::expand(&value, vars);
            match manifest_env.get(&p.name) {
                Some(m) if *m == value || Some(m) == expanded.as_ref() => matched += 1,
                Some(m) => differing.push(format!("{}={m:?}", p.name)),
                None => {}
            }
            match expanded {
                Some(v) => vars.insert(p.name.clone(), v),
                None => vars.shift_remove(&p.name),
            };
            vars_out.push((p.name, value));
        }
        let manifest = matched == vars_out.len();
        if !manifest && !differing.is_empty() {
            self.warn_at(
                "gear::import-inexact",
                i,
                format!(
                    "manifest.json's environment has {} instead: imported as an image-only env step; the build writes the image's value into the manifest",
                    differing.join(", ")
                ),
            );
        }
        Step::Env {
            vars: vars_out,
            manifest,
        }
    }

    fn arg_step(
        &mut self,
        i: &Instruction,
        escape: char,
        vars: &mut IndexMap<String, String>,
    ) -> Step {
        let mut out = Vec::new();
        for p in parse::pairs(i, escape) {
            let value = match p.value {
                Some(v) => v,
                None => {
                    self.warn_at(
                        "gear::import-inexact",
                        i,
                        format!("`ARG {}` has no default: imported with the default \"\" (set, but empty)", p.name),
                    );
                    String::new()
                }
            };
            match parse::expand(&value, vars) {
                Some(v) => vars.insert(p.name.clone(), v),
                None => vars.shift_remove(&p.name),
            };
            out.push((p.name, value));
        }
        Step::Arg(out)
    }

    /// Collects a LABEL into the gear's `labels`; None unless it must stay a raw line.
    fn labels(&mut self, i: &Instruction, escape: char) -> Option<Step> {
        let pairs = parse::pairs(i, escape);
        if pairs.iter().any(|p| p.literal_dollar) {
            self.warn_at(
                "gear::import-inexact",
                i,
                "a quoted `$` would be expanded in a generated LABEL: kept as a raw `dockerfile` line",
            );
            return Some(Step::Raw(vec![i.original.trim_end().to_string()]));
        }
        for p in pairs {
            self.labels.insert(p.name, p.value.unwrap_or_default());
        }
        None
    }

    fn copy_step(
        &mut self,
        i: &Instruction,
        escape: char,
        vars: &IndexMap<String, String>,
        workdir: Option<&str>,
    ) -> Option<Step> {
        let Some((sources, dest)) = parse::copy_paths(i, escape) else {
            self.warn_at(
                "gear::import-inexact",
                i,
                "it names no source and destination: kept as a raw `dockerfile` line",
            );
            return Some(Step::Raw(vec![i.original.trim_end().to_string()]));
        };
        if i.keyword == "ADD" && sources.iter().all(|s| is_url(&s.text)) {
            return Some(Step::Raw(vec![i.original.trim_end().to_string()]));
        }
        // The frame copies the generated manifest to /flywheel/v0/manifest.json.
        let target = parse::expand(&dest.text, vars).and_then(|d| match d.starts_with('/') {
            true => Some(d),
            false => workdir.map(|w| format!("{w}/{d}")),
        });
        let manifest_dest = target.map(|t| {
            let t = lexical(&t);
            t == format!("{FLYWHEEL_DIR}/manifest.json") || t == FLYWHEEL_DIR
        });
        let mut kept = Vec::new();
        for s in &sources {
            let source = normalize_source(&s.text);
            if source == "manifest.json" {
                match manifest_dest {
                    Some(true) => continue,
                    Some(false) => {}
                    None => self.warn_at(
                        "gear::import-inexact",
                        i,
                        "cannot tell whether this copies manifest.json to /flywheel/v0 (its destination uses a variable set outside this Dockerfile): kept; the build also copies the generated manifest there",
                    ),
                }
            }
            kept.push(source);
        }
        if kept.is_empty() {
            return None;
        }
        Some(Step::Copy {
            sources: kept,
            to: dest.text,
            chmod: i.flag("chmod").map(str::to_string),
            chown: i.flag("chown").map(str::to_string),
        })
    }

    /// ENTRYPOINT or CMD: exec form to the gear's `entrypoint`/`cmd` (None), shell form a
    /// raw line.
    fn exec_key(&mut self, i: &Instruction) -> Option<Step> {
        let Some(exec) = &i.exec else {
            return Some(Step::Raw(vec![i.original.trim_end().to_string()]));
        };
        let earlier = match i.keyword.as_str() {
            "ENTRYPOINT" => self.entrypoint.replace(exec.clone()),
            _ => self.cmd.replace(exec.clone()),
        };
        if earlier.is_some() {
            self.warn_at(
                "gear::import-inexact",
                i,
                format!(
                    "a second {}: the last one wins, the earlier one is dropped",
                    i.keyword
                ),
            );
        }
        None
    }

    /// The Gear.toml of the gear, built on the layer `parent`.
    pub fn gear_toml(&self, parent: &str) -> String {
        let mut doc = DocumentMut::new();
        let mut gear = Table::new();
        gear.decor_mut().set_prefix(
            "# Imported by `cargo gear import` from manifest.json and the Dockerfile.\n\
             # manifest.json is now generated from this file: `cargo gear manifest`.\n",
        );
        let m = &self.manifest;
        let text = |key: &str| m.get(key).and_then(Value::as_str).map(str::to_string);
        gear.insert("name", toml_edit::value(self.name()));
        gear.insert("from", toml_edit::value(parent));
        let (image, image_comment) = self.image();
        gear.insert("image", toml_edit::value(image));
        if let Some(comment) = image_comment
            && let Some(mut key) = gear.key_mut("image")
        {
            key.leaf_decor_mut().set_prefix(comment);
        }
        for key in TEXT_KEYS {
            if let Some(v) = text(key) {
                gear.insert(key, toml_edit::value(v));
            }
        }
        if let Some(caps) = m.get("capabilities").and_then(json_to_toml) {
            gear.insert("capabilities", Item::Value(caps));
        }
        if let Some(flywheel) = m.get("flywheel").and_then(json_to_toml) {
            gear.insert("flywheel", Item::Value(flywheel));
        }
        if !self.labels.is_empty() {
            let mut labels = InlineTable::new();
            for (k, v) in &self.labels {
                labels.insert(k, v.as_str().into());
            }
            gear.insert("labels", toml_edit::value(labels));
        }
        if let Some(ep) = &self.entrypoint {
            gear.insert("entrypoint", toml_edit::value(string_array(ep)));
        }
        if let Some(cmd) = &self.cmd {
            gear.insert("cmd", toml_edit::value(string_array(cmd)));
        }
        match &self.build {
            Build::Nothing => {}
            Build::DockerfileFile => {
                gear.insert("dockerfile-file", toml_edit::value("Dockerfile"));
            }
            Build::Steps(steps) if steps.is_empty() => {}
            Build::Steps(steps) => {
                let mut aot = ArrayOfTables::new();
                for placed in steps {
                    aot.push(step_table(placed));
                }
                gear.insert("steps", Item::ArrayOfTables(aot));
            }
        }
        if let Some(inputs) = m.get("inputs").and_then(Value::as_object) {
            gear.insert("inputs", Item::Table(entries(inputs, input_entry)));
        }
        if let Some(config) = m.get("config").and_then(Value::as_object) {
            gear.insert("config", Item::Table(entries(config, config_entry)));
        }
        if let Some(custom) = self.custom() {
            let mut table = json_table(&custom);
            table.set_implicit(true);
            gear.insert("custom", Item::Table(table));
        }
        doc.insert("gear", Item::Table(gear));
        doc.to_string()
    }

    /// `image`: the repository of `custom.gear-builder.image`, else of the legacy
    /// `custom.docker-image`, else the gear's name; with a comment when it is a guess.
    fn image(&self) -> (String, Option<&'static str>) {
        let custom = self.manifest.get("custom");
        let declared = custom
            .and_then(|c| c.get(GEAR_BUILDER))
            .and_then(|b| b.get("image"))
            .or_else(|| custom.and_then(|c| c.get("docker-image")))
            .and_then(Value::as_str);
        match declared {
            Some(reference) => (
                split_tag(crate::reference::without_digest(reference))
                    .0
                    .to_string(),
                None,
            ),
            None => (
                self.name().to_string(),
                Some(
                    "# manifest.json names no image: prefix your registry namespace (`my-lab/NAME`).\n",
                ),
            ),
        }
    }

    /// `custom` without the derived `gear-builder.image` (and without a `gear-builder`
    /// left empty by that).
    fn custom(&self) -> Option<serde_json::Map<String, Value>> {
        let mut custom = self.manifest.get("custom")?.as_object()?.clone();
        if let Some(Value::Object(builder)) = custom.get_mut(GEAR_BUILDER) {
            builder.shift_remove("image");
            if builder.is_empty() {
                custom.shift_remove(GEAR_BUILDER);
            }
        }
        (!custom.is_empty()).then_some(custom)
    }

    /// The manifest warnings: keys with no Gear.toml field, input and config keys that do
    /// not map, an image tag other than the version, nulls TOML cannot hold.
    fn check_manifest(&mut self) {
        let m = self.manifest.clone();
        for (key, value) in &m {
            match key.as_str() {
                key if key == "name" || TEXT_KEYS.contains(&key) => {
                    if !value.is_string() {
                        self.warn_key(&[key], "not a string: dropped");
                    }
                }
                "capabilities" | "flywheel" | "environment" | "inputs" | "config" | "custom" => {}
                other => self.warn_key(
                    &[other],
                    format!("Gear.toml has no `{other}` field: dropped"),
                ),
            }
        }
        for (section, known) in [("inputs", INPUT_KEYS), ("config", CONFIG_KEYS)] {
            let Some(entries) = m.get(section).and_then(Value::as_object) else {
                continue;
            };
            for (name, entry) in entries {
                let Some(entry) = entry.as_object() else {
                    self.warn_key(&[section, name], "not an object: dropped");
                    continue;
                };
                for key in entry.keys() {
                    if !known.contains(&key.as_str()) {
                        self.warn_key(
                            &[section, name, key],
                            format!("`{key}` is not a key of [gear.{section}.NAME] (nor of Flywheel's manifest schema there): dropped"),
                        );
                    }
                }
            }
        }
        let custom = m.get("custom");
        let tag = custom
            .and_then(|c| c.get(GEAR_BUILDER))
            .and_then(|b| b.get("image"))
            .and_then(Value::as_str)
            .and_then(|r| split_tag(crate::reference::without_digest(r)).1);
        let version = m.get("version").and_then(Value::as_str);
        if let (Some(tag), Some(version)) = (tag, version)
            && tag != version
        {
            self.warn_key(
                &["custom", GEAR_BUILDER, "image"],
                format!("its tag `{tag}` is not the version `{version}`: cargo-gear tags the image `image:version`"),
            );
        }
        if custom.is_some_and(has_null) || m.get("flywheel").is_some_and(has_null) {
            self.warn_key(&["custom"], "TOML has no null: null values are dropped");
        }
    }
}

/// The manifest's text fields after `name`, in the order the Gear.toml gets them; the same
/// keys in Gear.toml.
const TEXT_KEYS: &[&str] = &[
    "version",
    "label",
    "description",
    "author",
    "maintainer",
    "license",
    "source",
    "url",
    "cite",
    "command",
];

/// The upper-case instruction keywords, to spot one swallowed by a continuation.
const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Keys of `[gear.inputs.NAME]` in manifest spelling.
const INPUT_KEYS: &[&str] = &[
    "base",
    "description",
    "optional",
    "type",
    "name",
    "size",
    "read-only",
];

/// Keys of `[gear.config.KEY]` in manifest spelling.
const CONFIG_KEYS: &[&str] = &[
    "type",
    "description",
    "default",
    "optional",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "pattern",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
];

/// Why the whole gear must keep its Dockerfile: each instruction that needs it, with why.
fn own_dockerfile_reasons(d: &Dockerfile) -> Vec<(&Instruction, String)> {
    let mut out = Vec::new();
    let mut froms = 0;
    for i in &d.instructions {
        let kw = i.keyword.as_str();
        if kw == "FROM" {
            froms += 1;
            if froms == 2 {
                out.push((i, "a second FROM (a multi-stage build)".to_string()));
            }
            let from = parse::from(i, d.escape);
            if from.image.contains('$') {
                out.push((i, "FROM names its image through a variable".into()));
            }
            if !i.flags.is_empty() {
                out.push((i, format!("FROM {}", i.flags.join(" "))));
            }
            continue;
        }
        if froms == 0 {
            out.push((i, format!("{kw} before FROM")));
        }
        if !i.heredocs.is_empty() {
            out.push((i, format!("a heredoc (`<<{}`)", i.heredocs[0].name)));
        }
        if kw == "RUN" && !i.flags.is_empty() {
            out.push((i, format!("RUN {}", i.flags.join(" "))));
        }
        if kw == "COPY" || kw == "ADD" {
            if let Some(stage) = i.flag("from") {
                out.push((i, format!("{kw} --from={stage}")));
            }
            let other: Vec<&String> = i
                .flags
                .iter()
                .filter(|f| {
                    let name = f.trim_start_matches('-').split('=').next().unwrap_or("");
                    !COPY_FLAGS.contains(&name) && name != "from"
                })
                .collect();
            if !other.is_empty() {
                out.push((
                    i,
                    format!(
                        "{kw} {} (BuildKit only)",
                        other
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                ));
            }
            if let Some((sources, _)) = parse::copy_paths(i, d.escape) {
                let urls = sources.iter().filter(|s| is_url(&s.text)).count();
                if kw == "ADD" && urls > 0 && urls < sources.len() {
                    out.push((i, "ADD of URLs and local files together".into()));
                }
                if kw == "ADD"
                    && sources
                        .iter()
                        .any(|s| !is_url(&s.text) && ARCHIVES.iter().any(|a| s.text.ends_with(a)))
                {
                    out.push((i, "ADD of a local archive (Docker unpacks it)".into()));
                }
                if sources.iter().any(|s| s.text.contains('$')) {
                    out.push((i, format!("a {kw} source named through a variable")));
                }
            }
        }
    }
    out
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://") || source.starts_with("git@")
}

/// A COPY source as a step source: `./x` → `x`, `./` → `.`.
fn normalize_source(source: &str) -> String {
    let s = source.trim_start_matches("./");
    if s.is_empty() { ".".into() } else { s.into() }
}

/// An absolute path with `.`, `..` and repeated or trailing `/` resolved lexically.
fn lexical(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The words of `args`, unquoted, joined by a space (WORKDIR's path).
fn words_text(args: &str, escape: char) -> String {
    parse::words(args, escape)
        .into_iter()
        .map(|w| w.text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `[[gear.steps]]` table of a step.
fn step_table(placed: &Placed) -> Table {
    let mut t = Table::new();
    match &placed.step {
        Step::Run(text) => {
            t.insert("run", toml_edit::value(text.as_str()));
        }
        Step::RunExec(exec) => {
            let mut inline = InlineTable::new();
            inline.insert("exec", string_array(exec).into());
            t.insert("run", toml_edit::value(inline));
        }
        Step::Copy {
            sources,
            to,
            chmod,
            chown,
        } => {
            t.insert("copy", toml_edit::value(string_array(sources)));
            t.insert("to", toml_edit::value(to.as_str()));
            if let Some(chmod) = chmod {
                t.insert("chmod", toml_edit::value(chmod.as_str()));
            }
            if let Some(chown) = chown {
                t.insert("chown", toml_edit::value(chown.as_str()));
            }
        }
        Step::Env { vars, manifest } => {
            t.insert("env", toml_edit::value(pairs_table(vars)));
            if *manifest {
                t.insert("manifest", toml_edit::value(true));
            }
        }
        Step::Arg(vars) => {
            t.insert("arg", toml_edit::value(pairs_table(vars)));
        }
        Step::Workdir(dir) => {
            t.insert("workdir", toml_edit::value(dir.as_str()));
        }
        Step::User(user) => {
            t.insert("user", toml_edit::value(user.as_str()));
        }
        Step::Shell(shell) => {
            t.insert("shell", toml_edit::value(string_array(shell)));
        }
        Step::Raw(lines) => {
            t.insert("dockerfile", toml_edit::value(string_array(lines)));
        }
    }
    let comments: String = placed
        .comments
        .iter()
        .map(|c| format!("# {c}\n").replace("# \n", "#\n"))
        .collect();
    t.decor_mut().set_prefix(format!("\n{comments}"));
    t
}

fn pairs_table(vars: &[(String, String)]) -> InlineTable {
    let mut t = InlineTable::new();
    for (k, v) in vars {
        t.insert(k, v.as_str().into());
    }
    t
}

fn string_array(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

/// `[gear.inputs]` / `[gear.config]`: one table per entry, in manifest order.
fn entries(
    map: &serde_json::Map<String, Value>,
    entry: fn(&serde_json::Map<String, Value>) -> Table,
) -> Table {
    let mut out = Table::new();
    out.set_implicit(true);
    for (name, value) in map {
        if let Some(obj) = value.as_object() {
            out.insert(name, Item::Table(entry(obj)));
        }
    }
    out
}

fn input_entry(obj: &serde_json::Map<String, Value>) -> Table {
    let mut t = Table::new();
    for (k, v) in obj {
        if INPUT_KEYS.contains(&k.as_str())
            && let Some(v) = json_to_toml(v)
        {
            t.insert(k, Item::Value(v));
        }
    }
    t
}

/// A config entry; draft-04 boolean exclusive bounds become Gear.toml's numeric ones
/// (`maximum = 5, exclusiveMaximum = true` → `exclusiveMaximum = 5`).
fn config_entry(obj: &serde_json::Map<String, Value>) -> Table {
    let mut t = Table::new();
    let exclusive = |bound: &str, flag: &str| {
        obj.get(flag) == Some(&Value::Bool(true)) && obj.contains_key(bound)
    };
    for (k, v) in obj {
        if !CONFIG_KEYS.contains(&k.as_str()) {
            continue;
        }
        let value = match k.as_str() {
            "minimum" if exclusive("minimum", "exclusiveMinimum") => continue,
            "maximum" if exclusive("maximum", "exclusiveMaximum") => continue,
            "exclusiveMinimum" | "exclusiveMaximum" if v.is_boolean() => {
                let bound = if k == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                match (v, obj.get(bound)) {
                    (Value::Bool(true), Some(b)) => b,
                    _ => continue,
                }
            }
            _ => v,
        };
        if let Some(value) = json_to_toml(value) {
            t.insert(k, Item::Value(value));
        }
    }
    t
}

/// A JSON value as TOML; None for null (TOML has none). Arrays drop their nulls.
fn json_to_toml(v: &Value) -> Option<toml_edit::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            (None, None) => return None,
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut a = Array::new();
            for item in items.iter().filter_map(json_to_toml) {
                a.push(item);
            }
            a.into()
        }
        Value::Object(map) => {
            let mut t = InlineTable::new();
            for (k, v) in map {
                if let Some(v) = json_to_toml(v) {
                    t.insert(k, v);
                }
            }
            t.into()
        }
    })
}

/// A JSON object as a TOML table: nested objects as sub-tables, the rest as values.
fn json_table(map: &serde_json::Map<String, Value>) -> Table {
    let mut t = Table::new();
    for (k, v) in map {
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                t.insert(k, Item::Table(json_table(inner)));
            }
            _ => {
                if let Some(v) = json_to_toml(v) {
                    t.insert(k, Item::Value(v));
                }
            }
        }
    }
    t
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(m) => m.values().any(has_null),
        _ => false,
    }
}

/// Byte offset of 1-based `line` and `column` in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

/// Where the key at `path` is written in a JSON text: each key searched after the one
/// before (`"inputs"`, then `"dicom"` after it…). The start of the text when not found.
fn locate(text: &str, path: &[&str]) -> usize {
    let mut at = 0;
    for key in path {
        let needle = format!("\"{key}\"");
        match text[at..].find(&needle) {
            Some(i) => at += i,
            None => return at,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"name": "g", "version": "1.0", "environment": {"FLYWHEEL": "/flywheel/v0", "PATH": "/x"},
        "custom": {"gear-builder": {"image": "lab/g:1.0", "category": "analysis"}}}"#;

    fn gear(dockerfile: &str) -> (String, Vec<String>) {
        let import = Import::new(MANIFEST, Some(dockerfile)).unwrap();
        let warnings = import
            .warnings()
            .iter()
            .map(|w| format!("{}:{} {}: {}", w.line, w.code, w.subject, w.message))
            .collect();
        (import.gear_toml("base"), warnings)
    }

    #[test]
    fn manifest_copies_are_dropped_and_other_sources_kept() {
        let (toml, warnings) = gear(
            "FROM python:3.12\nENV FLYWHEEL /flywheel/v0\nWORKDIR $FLYWHEEL\nCOPY manifest.json .\nCOPY run manifest.json ${FLYWHEEL}/\nCOPY manifest.json /opt/m.json\nCOPY ./ $FLYWHEEL/\n",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!toml.contains("to = \".\""), "{toml}");
        assert!(
            toml.contains("copy = [\"run\"]\nto = \"${FLYWHEEL}/\""),
            "{toml}"
        );
        assert!(
            toml.contains("copy = [\"manifest.json\"]\nto = \"/opt/m.json\""),
            "{toml}"
        );
        assert!(
            toml.contains("copy = [\".\"]\nto = \"$FLYWHEEL/\""),
            "{toml}"
        );
        assert!(
            toml.contains("env = { FLYWHEEL = \"/flywheel/v0\" }\nmanifest = true"),
            "{toml}"
        );
    }

    #[test]
    fn env_marked_for_the_manifest_only_when_every_variable_matches() {
        let (toml, warnings) = gear("FROM a\nENV FLYWHEEL=/flywheel/v0 PATH=/y\nENV OTHER=1\n");
        assert!(!toml.contains("manifest = true"), "{toml}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("PATH=\"/x\""), "{warnings:?}");
        assert!(
            warnings[0].starts_with("2:gear::import-inexact"),
            "{warnings:?}"
        );
    }

    #[test]
    fn whole_dockerfile_when_an_instruction_needs_it() {
        for (dockerfile, reason) in [
            ("ARG B=a\nFROM ${B}\n", "ARG before FROM"),
            (
                "FROM a AS x\nFROM a\nCOPY --from=x /a /a\n",
                "a second FROM",
            ),
            ("FROM a\nRUN <<EOF\nx\nEOF\n", "a heredoc"),
            (
                "FROM a\nRUN --mount=type=cache,target=/c x\n",
                "RUN --mount",
            ),
            ("FROM a\nADD lib.tar.gz /opt/\n", "local archive"),
            ("FROM a\nCOPY --link a /a\n", "--link (BuildKit only)"),
        ] {
            let import = Import::new(MANIFEST, Some(dockerfile)).unwrap();
            assert!(import.keeps_dockerfile(), "{dockerfile}");
            let toml = import.gear_toml("base");
            assert!(toml.contains("dockerfile-file = \"Dockerfile\""), "{toml}");
            assert!(!toml.contains("[[gear.steps]]"), "{toml}");
            assert!(
                import.warnings().iter().any(|w| w.message.contains(reason)),
                "{dockerfile}: {:?}",
                import.warnings()
            );
        }
        // The base of an ARG-named FROM is its default; a stage name is followed.
        let import =
            Import::new(MANIFEST, Some("ARG B=debian:12\nFROM ${B} AS s\nFROM s\n")).unwrap();
        assert_eq!(import.base().unwrap().image, "debian:12");
    }

    #[test]
    fn raw_lines_and_top_level_keys() {
        let (toml, warnings) = gear(
            "FROM a\nMAINTAINER me\nEXPOSE 80\nLABEL a=b c=\"d e\"\nCMD echo hi\nENTRYPOINT [\"/r\"]\nENTRYPOINT [\"/s\"]\nADD https://x/y /y\nSHELL [\"/bin/bash\", \"-c\"]\nUSER 1000\nRUN [\"a\", \"b\"]\nARG X\n",
        );
        // Raw lines next to each other share a step (LABEL and ENTRYPOINT are keys).
        assert!(
            toml.contains("dockerfile = [\"MAINTAINER me\", \"EXPOSE 80\", \"CMD echo hi\", \"ADD https://x/y /y\"]"),
            "{toml}"
        );
        assert!(
            toml.contains("labels = { a = \"b\", c = \"d e\" }"),
            "{toml}"
        );
        assert!(toml.contains("entrypoint = [\"/s\"]"), "{toml}");
        assert!(toml.contains("shell = [\"/bin/bash\", \"-c\"]"), "{toml}");
        assert!(toml.contains("user = \"1000\""), "{toml}");
        assert!(toml.contains("run = { exec = [\"a\", \"b\"] }"), "{toml}");
        assert!(toml.contains("arg = { X = \"\" }"), "{toml}");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("second ENTRYPOINT"), "{warnings:?}");
        assert!(warnings[1].contains("no default"), "{warnings:?}");
    }

    #[test]
    fn quoted_dollar_stays_raw() {
        let (toml, warnings) = gear("FROM a\nENV A='$HOME'\n");
        assert!(toml.contains("dockerfile = [\"ENV A='$HOME'\"]"), "{toml}");
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn continuation_swallowing_an_instruction_is_flagged() {
        let (toml, warnings) = gear("FROM a\nRUN chmod +x /r \\\nENTRYPOINT [\"/r\"]\n");
        assert!(!toml.contains("entrypoint ="), "{toml}");
        assert!(
            toml.contains("run = '''\nchmod +x /r \\\nENTRYPOINT [\"/r\"]'''"),
            "{toml}"
        );
        assert!(
            warnings[0].contains("gear::import-continuation"),
            "{warnings:?}"
        );
    }

    #[test]
    fn image_and_custom() {
        let import = Import::new(MANIFEST, None).unwrap();
        let toml = import.gear_toml("p");
        assert!(toml.contains("image = \"lab/g\""), "{toml}");
        assert!(
            toml.contains("[gear.custom.gear-builder]\ncategory = \"analysis\""),
            "{toml}"
        );
        assert!(!toml.contains("lab/g:1.0"), "{toml}");
        assert!(!toml.contains("environment"), "{toml}");
        assert!(import.base().is_none());
        let m = r#"{"name": "g", "version": "2", "custom": {"gear-builder": {"image": "reg:5000/lab/g:1"}}}"#;
        let import = Import::new(m, None).unwrap();
        assert!(import.gear_toml("p").contains("image = \"reg:5000/lab/g\""));
        assert!(!import.gear_toml("p").contains("gear-builder"));
        assert_eq!(import.warnings().len(), 1, "{:?}", import.warnings());
        assert_eq!(import.warnings()[0].line, 1);
    }

    #[test]
    fn config_bounds_and_unknown_keys() {
        let m = r#"{"name": "g",
  "config": {"n": {"type": "number", "maximum": 5, "exclusiveMaximum": true, "minimum": 1, "exclusiveMinimum": false, "id": 3}},
  "inputs": {"f": {"base": "file", "enum": ["nifti"]}},
  "docker-image": "x"}"#;
        let import = Import::new(m, None).unwrap();
        let toml = import.gear_toml("p");
        assert!(
            toml.contains(
                "[gear.config.n]\ntype = \"number\"\nexclusiveMaximum = 5\nminimum = 1\n"
            ),
            "{toml}"
        );
        let w: Vec<(usize, &str)> = import
            .warnings()
            .iter()
            .map(|w| (w.line, w.subject.as_str()))
            .collect();
        assert_eq!(
            w,
            [
                (4, "docker-image"),
                (3, "inputs.f.enum"),
                (2, "config.n.id")
            ]
        );
    }

    #[test]
    fn flywheel_object_passes_through() {
        let m = r#"{"name": "g", "flywheel": {"suite": "x", "n": [1, 2]}}"#;
        let import = Import::new(m, None).unwrap();
        assert!(import.warnings().is_empty());
        assert!(
            import
                .gear_toml("p")
                .contains("flywheel = { suite = \"x\", n = [1, 2] }")
        );
        // Flywheel ignores the key, whatever its type: it passes through as written.
        let import = Import::new(r#"{"name": "g", "flywheel": "0"}"#, None).unwrap();
        assert!(import.gear_toml("p").contains("flywheel = \"0\""));
        assert!(import.warnings().is_empty());
    }

    #[test]
    fn manifest_errors() {
        assert!(matches!(
            Import::new("{\n  \"name\": }", None),
            Err(ImportError::ManifestSyntax { offset: 12, .. })
        ));
        assert_eq!(
            Import::new("[]", None).unwrap_err(),
            ImportError::ManifestNotObject
        );
        assert_eq!(
            Import::new("{}", None).unwrap_err(),
            ImportError::ManifestName
        );
        assert!(matches!(
            Import::new(MANIFEST, Some("FROM a\nRUN <<EOF\n")),
            Err(ImportError::Dockerfile(ParseError::UnterminatedHeredoc {
                line: 2,
                ..
            }))
        ));
    }

    #[test]
    fn base_images() {
        let base = |d: &str| Import::new(MANIFEST, Some(d)).unwrap().base().cloned();
        let b = base("FROM bids/freesurfer:v6 AS x\nRUN apt-get update\n").unwrap();
        assert_eq!(
            (b.image.as_str(), b.distro),
            ("bids/freesurfer:v6", Some(Distro::Debian))
        );
        assert_eq!(
            base("FROM lab/fs\nRUN dnf install x && apt list\n")
                .unwrap()
                .distro,
            None
        );
        assert_eq!(
            base("FROM lab/x-centos9\n").unwrap().distro,
            Some(Distro::Centos)
        );
        assert_eq!(b.layer_name(|_| false), "freesurfer");
        assert_eq!(b.layer_name(|n| n == "freesurfer"), "freesurfer-v6");
        assert!(b.layer_toml("freesurfer").contains("distro = \"debian\""));
        assert_eq!(external_layer_name("localhost:5000/base", |_| true), "base");
        assert_eq!(
            external_layer_name("debian@sha256:0123", |_| false),
            "debian"
        );
    }

    proptest::proptest! {
        /// Any Dockerfile imports to a Gear.toml that is valid TOML, or fails to split.
        #[test]
        fn any_dockerfile_imports_to_valid_toml(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "FROM a\n", "FROM a AS b\n", "ARG X\n", "ARG X=${Y:-z}\n", "ENV A=$B C=\"d e\"\n",
                "ENV K v w\n", "ENV Q='$q'\n", "LABEL x y\n", "LABEL \"a b\"=c\n",
                "ENTRYPOINT [\"a\"]\n", "CMD x\n", "RUN a \\\n", "RUN '''x'\\\n", "RUN [\"x\"]\n",
                "COPY manifest.json /flywheel/v0/\n", "COPY --from=b / /\n", "COPY a b c/\n",
                "ADD x.tar /\n", "ADD https://x /y\n", "WORKDIR rel\n", "USER u\n", "SHELL x\n",
                "# c\n", "\n", "RUN <<E\nx\nE\n", "HEALTHCHECK NONE\n", "BOGUS x\n", "COPY\n",
            ]), 0..12)
        ) {
            let text: String = parts.concat();
            if let Ok(import) = Import::new(MANIFEST, Some(&text)) {
                let toml = import.gear_toml("p");
                proptest::prop_assert!(toml.parse::<DocumentMut>().is_ok(), "{}", toml);
            }
        }
    }
}
