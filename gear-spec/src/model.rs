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
    /// External layers only: pin the image to this digest (`sha256:…`).
    pub digest: Option<String>,
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
    /// `ENTRYPOINT` in exec form.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD` in exec form.
    pub cmd: Option<Vec<String>>,

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
    "inputs",
    "config",
    "custom",
];

/// Keys an external layer (a `[layer]` without `from`) may have.
pub const EXTERNAL_KEYS: &[&str] = &["name", "image", "digest", "distro", "description"];

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
