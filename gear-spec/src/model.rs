//! The `Gear.toml` data model: what a user may write, exactly as deserialized.
//!
//! Each `Gear.toml` declares one layer, in a `[layer]` table (an external image or a
//! layer built on a parent) or a `[gear]` table (a built layer that is also a Flywheel
//! gear). The doc comments here are the field reference: `cargo xtask codegen` turns
//! them into `schemas/gear.schema.json` and `docs/gear-toml.md`.
//!
//! serde ignores unknown keys here on purpose: [`crate::layer`] reports every one of them
//! (with a "did you mean" taken from this model's schema), where `deny_unknown_fields`
//! would stop at the first. The schema still refuses them (`schemars(deny_unknown_fields)`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One `Gear.toml` file: exactly one of `[layer]` or `[gear]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(
    title = "Gear.toml",
    description = "A cargo-gear layer or Flywheel gear declaration"
)]
pub struct GearFile {
    /// An external image (no `from`) or a layer built on a parent layer.
    pub layer: Option<Decl>,
    /// A Flywheel gear: a built layer plus everything the gear manifest needs.
    pub gear: Option<Decl>,
}
/// Package manager family of an image, used to render `packages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    /// Debian and Ubuntu: `apt-get`.
    Debian,
    /// CentOS, RHEL, Rocky, Fedora: `yum`.
    Centos,
    /// Alpine: `apk`.
    Alpine,
}

impl Distro {
    /// The name as written in Gear.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Distro::Debian => "debian",
            Distro::Centos => "centos",
            Distro::Alpine => "alpine",
        }
    }
}

/// The body of `[layer]` or `[gear]`. Keys marked "gears only" are refused in `[layer]`
/// ([`GEAR_ONLY_KEYS`]); `digest` is refused in `[gear]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct Decl {
    /// Unique name of the layer in the workspace; children refer to it in `from`.
    /// Gears: `^[a-z0-9-]+$`, at most 100 characters.
    pub name: String,
    /// External layers: the full image reference (`repo[:tag]`). Built layers and gears:
    /// the repository without a tag, not their parent's; cargo-gear derives the tags.
    /// Checked against Docker's reference grammar (lowercase repository path).
    pub image: String,
    /// Name of the parent layer. Without it a `[layer]` is an external image, pulled and
    /// never built. Required for gears.
    pub from: Option<String>,
    /// External layers only: pin the image to this digest (`sha256:…`). It wins over the
    /// digest `Gear.lock` records, and `cargo gear update` leaves it alone.
    pub digest: Option<String>,
    /// The platform (`os/arch[/variant]`) the image is pulled or built for. Default: the
    /// workspace's `platform`, else `linux/amd64`, what Flywheel runs. Built layers inherit
    /// their parent's; set it where the chain starts (e.g. `linux/arm64` on an external
    /// layer, for a local debug image that will not run on Flywheel).
    pub platform: Option<String>,
    /// Package manager family (`debian`, `centos`, `alpine`). Set it on external layers;
    /// built layers inherit their parent's unless they set their own.
    pub distro: Option<Distro>,
    /// OS packages to install, rendered for the distro family: sorted,
    /// without recommends, package caches cleaned.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Python requirements installed with `python3 -m pip install --no-cache-dir`.
    #[serde(default)]
    pub pip: Vec<String>,
    /// Environment variables set in the image (and, for gears, in the manifest's `environment`).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Build arguments (`ARG NAME=default`), part of the fingerprint.
    #[serde(default)]
    pub args: IndexMap<String, String>,
    /// Image labels.
    #[serde(default)]
    pub labels: IndexMap<String, String>,
    /// User the image runs as (`USER`).
    pub user: Option<String>,
    /// Working directory (`WORKDIR`). Gears default to `/flywheel/v0`.
    pub workdir: Option<String>,
    /// Shell commands, one `RUN` each, after packages and pip.
    #[serde(default)]
    pub run: Vec<String>,
    /// Files and directories of this directory copied into the image, relative paths.
    /// Gears: default is the whole gear directory minus what `.gearignore` and
    /// `.dockerignore` exclude, copied under `/flywheel/v0`. Layers: default none,
    /// copied under `workdir` (or `/`). Paths are `/`-separated: an empty entry, a `\` or
    /// a NUL is refused (`"."` is the whole directory).
    pub copy: Option<Vec<String>>,
    /// Extra files placed at absolute paths: `{ "/absolute/dest" = "relative/source" }`.
    /// A destination may not climb above `/` with `..`.
    #[serde(default)]
    pub files: IndexMap<String, String>,
    /// Raw Dockerfile lines appended after everything else (escape hatch).
    #[serde(default)]
    pub dockerfile: Vec<String>,
    /// Ordered build steps, as `[[gear.steps]]` / `[[layer.steps]]` tables, each with exactly
    /// one kind key (`run`, `packages`, `pip`, `python`, `copy`, `env`, `arg`, `workdir`,
    /// `user`, `shell`, `dockerfile`) and that kind's modifiers. Rendered in the order
    /// written; replaces the order-dependent short-form keys (`args`, `env`, `packages`,
    /// `pip`, `run`, `files`, `copy`, `workdir`, `user`, `dockerfile`), which may not be set
    /// beside it. `labels`, `entrypoint` and `cmd` stay top-level keys.
    #[serde(default)]
    pub steps: Vec<StepDecl>,
    /// Your own Dockerfile, relative to this directory (e.g. `"Dockerfile"`), instead of
    /// steps or the short-form keys. Its `FROM` of the parent's image (any stage; tag or
    /// digest aside) is rewritten to the parent's content tag, its build context is this
    /// directory (ignore files applied) with the generated `manifest.json` at
    /// `manifest.json`; a gear's manifest and the labels are appended. Multi-stage builds
    /// work; BuildKit-only syntax (heredocs, `--mount`, `--chmod`…) is refused.
    pub dockerfile_file: Option<String>,
    /// `ENTRYPOINT` in exec form.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD` in exec form.
    pub cmd: Option<Vec<String>>,
    /// A binary of a package of the same Cargo workspace, built with Cargo and copied into
    /// the image (see "Rust gears"): `{ package = "nifti-stats" }`. A gear without `command`
    /// runs it; a gear with it copies no files of its directory unless `copy` says so.
    pub cargo: Option<CargoDecl>,

    /// Gears only, required: the gear version, single source of the image tag (`image:version`).
    pub version: Option<String>,
    /// Gears only, required: human-friendly name (at most 100 characters).
    pub label: Option<String>,
    /// What the layer or gear does. Required for gears: 1-4 sentences, at most 5000 characters.
    pub description: Option<String>,
    /// Gears only, required: author of the gear or its algorithm.
    pub author: Option<String>,
    /// Gears only: maintainer, when different from the author.
    pub maintainer: Option<String>,
    /// Gears only, required: an SPDX identifier from Flywheel's list, or `Other`.
    pub license: Option<String>,
    /// Gears only: URL of the gear's source code (http or https). `""` means none, as in
    /// Flywheel's schema; the manifest gets `""` when it is not set.
    pub source: Option<String>,
    /// Gears only: URL with more information about the gear (http or https). `""` means
    /// none, as in Flywheel's schema; the manifest gets `""` when it is not set.
    pub url: Option<String>,
    /// Gears only: citations for the algorithms used. `""` means none, as for `source`
    /// and `url`.
    pub cite: Option<String>,
    /// Gears only: command Flywheel runs (in `/flywheel/v0`) instead of `/flywheel/v0/run`.
    /// A gear needs one or a `run` file; the script it names (`./run`, `run.sh` of
    /// `bash run.sh`) must be among the gear's files.
    pub command: Option<String>,
    /// Gears only: features the gear requires, e.g. `networking`.
    pub capabilities: Option<Vec<String>>,
    /// Gears only: the file of the gear directory made executable as the run file.
    /// Default: the first of `run`, `run.py`, `run.sh` that exists.
    pub run_file: Option<String>,
    /// Gears only: inputs, in order, as `[gear.inputs.NAME]`.
    #[serde(default)]
    pub inputs: IndexMap<String, InputDecl>,
    /// Gears only: configuration options, in order, as `[gear.config.KEY]`.
    #[serde(default)]
    pub config: IndexMap<String, ConfigDecl>,
    /// Gears only: the manifest's top-level `flywheel` key, passed through unchanged, of any
    /// type (Flywheel's schema: "currently unused, ignored if present"; some real
    /// manifests carry it, e.g. `flywheel = "0"`).
    pub flywheel: Option<serde_json::Value>,
    /// Gears only: the free-form `custom` section of the manifest (`gear-builder.category`,
    /// `flywheel.suite`, `flywheel.classification`, …). `gear-builder.image` is derived.
    #[serde(default)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// Keys that only a `[gear]` may have (Gear.toml spelling).
pub const GEAR_ONLY_KEYS: &[&str] = &[
    "version",
    "label",
    "author",
    "maintainer",
    "license",
    "source",
    "url",
    "cite",
    "command",
    "capabilities",
    "run-file",
    "flywheel",
    "inputs",
    "config",
    "custom",
];

/// Keys an external layer (a `[layer]` without `from`) may have.
pub const EXTERNAL_KEYS: &[&str] = &[
    "name",
    "image",
    "digest",
    "platform",
    "distro",
    "description",
];

/// `[gear.cargo]` / `[layer.cargo]`: the binary of a Cargo package of the workspace that
/// the image ships. Its fingerprint covers the package's and its path dependencies' files
/// (those `cargo package` would take: `include`/`exclude`, `.gitignore`), the workspace's
/// `Cargo.toml`, `Cargo.lock` and `.cargo/config.toml`, these settings and the toolchain
/// (`rustc -vV`), so a Rust gear is known fresh without compiling.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct CargoDecl {
    /// The package (its `name` in Cargo.toml), a member of the workspace.
    pub package: String,
    /// The binary target; required when the package has several.
    pub bin: Option<String>,
    /// Features to enable (`--features`).
    #[serde(default)]
    pub features: Vec<String>,
    /// Build without the package's default features (`--no-default-features`).
    #[serde(default)]
    pub no_default_features: bool,
    /// The Cargo profile. Default `release`.
    pub profile: Option<String>,
    /// The target triple, e.g. `x86_64-unknown-linux-musl` (a static binary that runs on any
    /// base image); installed with `rustup target add`. Default: the host's.
    pub target: Option<String>,
    /// Where the binary goes in the image. Default `/usr/local/bin/<bin>` (on `PATH`).
    pub to: Option<String>,
    /// Build the binary inside the image build instead of on the host: a first stage
    /// `FROM` the parent layer (which must have `cargo`) compiles the package's sources with
    /// `cargo build --locked`, and the binary is copied from it. For hosts whose C library
    /// or architecture differs from the image's.
    #[serde(default)]
    pub in_image: bool,
}

impl CargoDecl {
    /// The profile in force.
    pub fn profile(&self) -> &str {
        self.profile.as_deref().unwrap_or("release")
    }
}

/// Kind of gear input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InputBase {
    /// A file chosen when the gear is run.
    #[default]
    File,
    /// A value looked up from the run's context.
    Context,
    /// An API key provisioned for the job.
    ApiKey,
}

impl InputBase {
    /// The name used in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            InputBase::File => "file",
            InputBase::Context => "context",
            InputBase::ApiKey => "api-key",
        }
    }
}

/// `[gear.inputs.NAME]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct InputDecl {
    /// `file` (default), `context` or `api-key`.
    #[serde(default)]
    pub base: InputBase,
    /// Shown to the user running the gear.
    pub description: Option<String>,
    /// File inputs: the gear runs without it.
    pub optional: Option<bool>,
    /// File inputs: filter on Flywheel file type, e.g. `{ enum = ["nifti"] }`.
    #[serde(rename = "type")]
    pub file_type: Option<serde_json::Map<String, serde_json::Value>>,
    /// File inputs: filter on file name, e.g. `{ pattern = "\\.nii(\\.gz)?$" }`.
    #[serde(rename = "name")]
    pub file_name: Option<serde_json::Map<String, serde_json::Value>>,
    /// File inputs: filter on size, e.g. `{ maximum = 1000000 }`.
    pub size: Option<serde_json::Map<String, serde_json::Value>>,
    /// API-key inputs: request a read-only key.
    pub read_only: Option<bool>,
}

/// Type of a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// Text.
    String,
    /// Whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
}

impl ConfigType {
    /// The JSON-Schema type name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::String => "string",
            ConfigType::Integer => "integer",
            ConfigType::Number => "number",
            ConfigType::Boolean => "boolean",
            ConfigType::Array => "array",
        }
    }
}

/// `[gear.config.KEY]`: a JSON-Schema snippet with Flywheel's `default`/`optional`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ConfigDecl {
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ConfigType,
    /// Shown to the user running the gear.
    pub description: Option<String>,
    /// Value used when none is given. Not together with `optional`.
    pub default: Option<serde_json::Value>,
    /// The gear runs without a value. Not together with `default`.
    pub optional: Option<bool>,
    /// Allowed values.
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// Smallest allowed number.
    pub minimum: Option<f64>,
    /// Largest allowed number.
    pub maximum: Option<f64>,
    /// Numbers must be greater than this.
    #[serde(rename = "exclusiveMinimum")]
    pub exclusive_minimum: Option<f64>,
    /// Numbers must be less than this.
    #[serde(rename = "exclusiveMaximum")]
    pub exclusive_maximum: Option<f64>,
    /// Numbers must be a multiple of this.
    #[serde(rename = "multipleOf")]
    pub multiple_of: Option<f64>,
    /// Strings must match this regular expression.
    pub pattern: Option<String>,
    /// Shortest allowed string.
    #[serde(rename = "minLength")]
    pub min_length: Option<u64>,
    /// Longest allowed string.
    #[serde(rename = "maxLength")]
    pub max_length: Option<u64>,
    /// Arrays: schema of the items, e.g. `{ type = "string" }`.
    pub items: Option<serde_json::Map<String, serde_json::Value>>,
    /// Fewest array items.
    #[serde(rename = "minItems")]
    pub min_items: Option<u64>,
    /// Most array items.
    #[serde(rename = "maxItems")]
    pub max_items: Option<u64>,
}

/// One `[[gear.steps]]` / `[[layer.steps]]` table as written: exactly one kind key plus that
/// kind's modifiers. Checked into a [`crate::step::Step`] when the Gear.toml is read; a
/// table with no kind, two kinds or a modifier of another kind is a problem there.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct StepDecl {
    /// A shell command (`RUN`); lines not continued with `\` are joined with `&&`.
    /// `{ exec = ["prog", "arg"] }` is the exec form.
    pub run: Option<RunDecl>,
    /// OS packages installed with the distro's package manager (sorted, caches cleaned).
    pub packages: Option<Vec<String>>,
    /// Python requirements installed with pip: a list of requirements, or a table
    /// `{ packages = [...], requirements = "file", args = [...], index-url = "...",
    /// upgrade-pip = true }`; `requirements` is copied in first.
    pub pip: Option<PipDecl>,
    /// A Python project installed dependencies first:
    /// `{ tool = "poetry" | "uv" | "pip", project = ".", groups = [...], args = [...] }`.
    pub python: Option<PythonDecl>,
    /// Paths to copy (`COPY`): files or directories of the layer directory (globs
    /// allowed), or anywhere in the workspace with `to` set. Without `to` each lands at the
    /// same relative path under the working directory.
    pub copy: Option<Vec<String>>,
    /// Environment variables (`ENV`). In a gear they stay in the image only unless
    /// `manifest = true` is set beside them.
    pub env: Option<IndexMap<String, String>>,
    /// Build arguments (`ARG NAME=default`), part of the fingerprint.
    pub arg: Option<IndexMap<String, String>>,
    /// Working directory (`WORKDIR`) from this step on.
    pub workdir: Option<String>,
    /// User (`USER`) from this step on.
    pub user: Option<String>,
    /// Shell used by later shell-form steps (`SHELL`), exec form.
    pub shell: Option<Vec<String>>,
    /// Raw Dockerfile lines, verbatim (escape hatch; may not `COPY`/`ADD` from the
    /// build context).
    pub dockerfile: Option<Vec<String>>,
    /// `copy` only: destination in the image, as Docker's `COPY` takes it; required for
    /// sources outside the layer directory; must end with `/` for several sources or a glob.
    pub to: Option<String>,
    /// `copy` only: file mode of every copied file, octal (`"0755"`).
    pub chmod: Option<String>,
    /// `copy` only: owner of the copied files (`COPY --chown`), e.g. `"1000:1000"`.
    pub chown: Option<String>,
    /// `copy` only: `false` copies the sources even where `.gearignore`/`.dockerignore`
    /// exclude them. Default `true`.
    pub ignore_files: Option<bool>,
    /// `env` only, gears only: also put these variables in the manifest's `environment`.
    pub manifest: Option<bool>,
}

/// A `run` step: a shell command, or `{ exec = [...] }`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RunDecl {
    /// Shell form.
    Shell(String),
    /// Exec form.
    Exec(RunExec),
}

/// The exec form of a `run` step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RunExec {
    /// The program and its arguments.
    pub exec: Vec<String>,
}

/// A `pip` step: a list of requirements, or a table.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PipDecl {
    /// Requirements, as for the short-form `pip`.
    List(Vec<String>),
    /// Requirements with a requirements file and pip options.
    Table(PipTable),
}

/// The table form of a `pip` step.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct PipTable {
    /// Requirements to install.
    #[serde(default)]
    pub packages: Vec<String>,
    /// A requirements file of the layer directory, copied in first (`-r FILE`).
    pub requirements: Option<String>,
    /// More arguments for `pip install`.
    #[serde(default)]
    pub args: Vec<String>,
    /// `--index-url`.
    pub index_url: Option<String>,
    /// Upgrade pip itself first.
    #[serde(default)]
    pub upgrade_pip: bool,
}

/// A `python` step: a Python project installed dependencies first.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct PythonDecl {
    /// The tool that installs it. Its lock file (`poetry.lock`, `uv.lock`) must be up to
    /// date with `pyproject.toml`; `pip` reads `[project].dependencies`.
    pub tool: PyTool,
    /// The project directory, relative to the layer directory. Default `.`.
    pub project: Option<String>,
    /// Dependency groups to install (poetry `--only`, uv `--group`). Default: main only.
    #[serde(default)]
    pub groups: Vec<String>,
    /// More arguments for both install commands.
    #[serde(default)]
    pub args: Vec<String>,
}

/// The tool that installs a Python project (see [`crate::pylock`] for its lock checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PyTool {
    /// Poetry ≥ 1.2 (`poetry install --only main`), with `poetry.lock`.
    Poetry,
    /// uv (`uv sync --locked`), with `uv.lock`.
    Uv,
    /// pip, dependencies from `[project].dependencies`.
    Pip,
}

/// Deserializes a value that is either a sequence/string (`Short`) or a table, through
/// `visit_map` so that unknown keys of the table still reach serde_ignored.
macro_rules! string_or_table {
    ($ty:ident, $expecting:literal, $short:ident: $short_ty:ty => $short_variant:expr, $table:ty => $table_variant:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        let $short: $short_ty = Deserialize::deserialize(
                            serde::de::value::StrDeserializer::<E>::new(v),
                        )?;
                        Ok($short_variant)
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        a: A,
                    ) -> Result<$ty, A::Error> {
                        let $short: $short_ty = Deserialize::deserialize(
                            serde::de::value::SeqAccessDeserializer::new(a),
                        )?;
                        Ok($short_variant)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        a: A,
                    ) -> Result<$ty, A::Error> {
                        let table: $table = Deserialize::deserialize(
                            serde::de::value::MapAccessDeserializer::new(a),
                        )?;
                        Ok($table_variant(table))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_or_table!(RunDecl, "a command string or a table `{ exec = [...] }`", s: String => RunDecl::Shell(s), RunExec => RunDecl::Exec);
string_or_table!(PipDecl, "a list of requirements or a table", l: Vec<String> => PipDecl::List(l), PipTable => PipDecl::Table);
