//! The Flywheel gear manifest (`/flywheel/v0/manifest.json`): built from a gear's
//! declaration and rendered as deterministic, pretty-printed JSON.
//!
//! Key order is fixed so that regenerated manifests diff cleanly:
//!
//! - top level: `name`, `label`, `description`, `author`, `maintainer`, `license`, `url`,
//!   `source`, `cite`, `version`, `environment`, `custom`, `inputs`, `config`, `command`,
//!   `capabilities` (optional ones left out when not declared; `url` and `source`, which
//!   Flywheel's schema requires, are `""` when not declared);
//! - `inputs` and `config` entries: Gear.toml order;
//! - an input: `base`, `description`, `optional`, `read-only`, `type`, `name`, `size`
//!   (the directives' own keys as declared);
//! - a config entry: `type`, `description`, `default`, `optional`, `enum`, `minimum`,
//!   `exclusiveMinimum`, `maximum`, `exclusiveMaximum`, `multipleOf`, `pattern`,
//!   `minLength`, `maxLength`, `items`, `minItems`, `maxItems`;
//! - `custom`: as declared, with `gear-builder.image` set to `image:version` after the
//!   user's other `gear-builder` keys (`gear-builder` itself goes first when the user did
//!   not declare it).
//!
//! Numbers: a bound that is a whole number (`minimum = 1`, stored as `1.0`) is written as
//! an integer. Flywheel's schema is draft-04, where `exclusiveMinimum`/`exclusiveMaximum`
//! are booleans qualifying `minimum`/`maximum`; Gear.toml takes the numeric (draft-06)
//! form, so `exclusiveMaximum = 5` renders as `"maximum": 5, "exclusiveMaximum": true`.
//! When a config sets both an inclusive and an exclusive bound on the same side, the
//! tighter one is written.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::layer::Layer;
use crate::model::{ConfigDecl, ConfigType, InputBase, InputDecl};

/// Key of the gear-builder section in `custom`.
pub const GEAR_BUILDER: &str = "gear-builder";

/// A Flywheel gear manifest. Field order is the output key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Gear name (`^[a-z0-9-]+$`).
    pub name: String,
    /// Human-friendly name.
    pub label: String,
    /// What the gear does.
    pub description: String,
    /// Author of the gear or its algorithm.
    pub author: String,
    /// Maintainer, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// SPDX identifier from Flywheel's list, or `Other`.
    pub license: String,
    /// More information; `""` when not declared.
    pub url: String,
    /// Source code; `""` when not declared.
    pub source: String,
    /// Citations, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cite: Option<String>,
    /// Gear version, also the image tag.
    pub version: String,
    /// Environment of the image: ancestors' `env` overlaid by the gear's own.
    pub environment: IndexMap<String, String>,
    /// Free-form section, with `gear-builder.image` derived.
    pub custom: Map<String, Value>,
    /// Flywheel's own top-level object, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flywheel: Option<Map<String, Value>>,
    /// Inputs, in Gear.toml order.
    pub inputs: IndexMap<String, Input>,
    /// Configuration options, in Gear.toml order.
    pub config: IndexMap<String, Config>,
    /// Command run instead of `/flywheel/v0/run`, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Features the gear requires, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
}

/// One entry of `inputs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    /// `file`, `context` or `api-key`.
    pub base: InputBase,
    /// Shown to the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// File inputs: the gear runs without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// API-key inputs: read-only key.
    #[serde(rename = "read-only", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// File inputs: file type directive.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub file_type: Option<Map<String, Value>>,
    /// File inputs: file name directive.
    #[serde(rename = "name", skip_serializing_if = "Option::is_none")]
    pub file_name: Option<Map<String, Value>>,
    /// File inputs: file size directive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Map<String, Value>>,
}

/// One entry of `config`: a draft-04 JSON-Schema snippet plus `default`/`optional`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ConfigType,
    /// Shown to the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value used when none is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The gear runs without a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Allowed values.
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
    /// Lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Number>,
    /// Draft-04: `minimum` itself is excluded.
    #[serde(rename = "exclusiveMinimum", skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<bool>,
    /// Upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Number>,
    /// Draft-04: `maximum` itself is excluded.
    #[serde(rename = "exclusiveMaximum", skip_serializing_if = "Option::is_none")]
    pub exclusive_maximum: Option<bool>,
    /// Numbers must be a multiple of this.
    #[serde(rename = "multipleOf", skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<Number>,
    /// Strings must match this regular expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Shortest string.
    #[serde(rename = "minLength", skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Longest string.
    #[serde(rename = "maxLength", skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Arrays: schema of the items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Map<String, Value>>,
    /// Fewest array items.
    #[serde(rename = "minItems", skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// Most array items.
    #[serde(rename = "maxItems", skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
}

impl Manifest {
    /// The manifest of a gear. `environment` is computed by the caller: the `env` of the
    /// gear's ancestors, root first, overlaid by the gear's own.
    ///
    /// Meant for gears that passed [`crate::validate::check_layer`]; a required field
    /// that is missing is rendered as `""` rather than refused.
    pub fn for_gear(layer: &Layer, environment: IndexMap<String, String>) -> Manifest {
        let d = &layer.decl;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Manifest {
            name: d.name.clone(),
            label: text(&d.label),
            description: text(&d.description),
            author: text(&d.author),
            maintainer: d.maintainer.clone(),
            license: text(&d.license),
            url: text(&d.url),
            source: text(&d.source),
            cite: d.cite.clone(),
            version: text(&d.version),
            environment,
            custom: custom_with_image(&d.custom, &image_tag(layer)),
            flywheel: d.flywheel.clone(),
            inputs: d
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), Input::from_decl(v)))
                .collect(),
            config: d
                .config
                .iter()
                .map(|(k, v)| (k.clone(), Config::from_decl(v)))
                .collect(),
            command: d.command.clone(),
            capabilities: d.capabilities.clone(),
        }
    }

    /// The manifest as a JSON value (keys in output order).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a manifest is always representable as JSON")
    }

    /// Pretty JSON, 2-space indent, with a trailing newline. Deterministic: the same
    /// manifest always renders to the same bytes.
    pub fn render(&self) -> String {
        let mut out =
            serde_json::to_string_pretty(self).expect("a manifest is always representable as JSON");
        out.push('\n');
        out
    }
}

impl Input {
    /// The manifest form of a declared input.
    pub fn from_decl(d: &InputDecl) -> Input {
        Input {
            base: d.base,
            description: d.description.clone(),
            optional: d.optional,
            read_only: d.read_only,
            file_type: d.file_type.clone(),
            file_name: d.file_name.clone(),
            size: d.size.clone(),
        }
    }
}

impl Config {
    /// The manifest form of a declared config option (see the module docs for the
    /// translation of exclusive bounds to draft-04).
    pub fn from_decl(d: &ConfigDecl) -> Config {
        let (minimum, exclusive_minimum) =
            draft4_bound(d.minimum, d.exclusive_minimum, |a, b| a > b);
        let (maximum, exclusive_maximum) =
            draft4_bound(d.maximum, d.exclusive_maximum, |a, b| a < b);
        Config {
            kind: d.kind,
            description: d.description.clone(),
            default: d.default.clone(),
            optional: d.optional,
            allowed: d.allowed.clone(),
            minimum,
            exclusive_minimum,
            maximum,
            exclusive_maximum,
            multiple_of: d.multiple_of.and_then(json_number),
            pattern: d.pattern.clone(),
            min_length: d.min_length,
            max_length: d.max_length,
            items: d.items.clone(),
            min_items: d.min_items,
            max_items: d.max_items,
        }
    }
}

/// Draft-04 form of one side's bounds: the inclusive bound and the numeric exclusive
/// one become `(bound, Some(true))` when the exclusive one is tighter (`tighter(e, i)`)
/// or alone.
fn draft4_bound(
    inclusive: Option<f64>,
    exclusive: Option<f64>,
    tighter: fn(f64, f64) -> bool,
) -> (Option<Number>, Option<bool>) {
    match (inclusive, exclusive) {
        (Some(i), Some(e)) if !tighter(e, i) && e != i => (json_number(i), None),
        (_, Some(e)) => (json_number(e), Some(true)),
        (Some(i), None) => (json_number(i), None),
        (None, None) => (None, None),
    }
}

/// Largest magnitude below which every whole `f64` is exact (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// An image's environment after `ENV` instructions set `declared` on top of `base`, as
/// Docker computes it: a variable set again keeps its place, and `$NAME`, `${NAME}`,
/// `${NAME:-default}` and `${NAME:+alternative}` in a value expand from what is set so
/// far (`\\$` is a literal `$`), so a manifest gets `PATH=/opt/x/bin:/usr/bin`, not `$PATH`.
pub fn overlay_environment(
    base: Option<&IndexMap<String, String>>,
    declared: &IndexMap<String, String>,
) -> IndexMap<String, String> {
    let mut env = base.cloned().unwrap_or_default();
    for (k, v) in declared {
        let value = expand_vars(v, &env);
        env.insert(k.clone(), value);
    }
    env
}

/// `value` with Docker's variable references expanded from `env` (unset: empty).
pub fn expand_vars(value: &str, env: &IndexMap<String, String>) -> String {
    let lookup = |name: &str| env.get(name).map(String::as_str);
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(['$', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\\$") {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix('\\') {
            out.push('\\');
            rest = after;
            continue;
        }
        let after = &tail[1..];
        if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            let inner = &braced[..end];
            rest = &braced[end + 1..];
            let (name, op) = match inner.find(':') {
                Some(c) => (&inner[..c], Some(&inner[c + 1..])),
                None => (inner, None),
            };
            let set = lookup(name).filter(|v| !v.is_empty());
            match op {
                Some(op) if op.starts_with('-') => {
                    out.push_str(set.unwrap_or(&op[1..]));
                }
                Some(op) if op.starts_with('+') => {
                    if set.is_some() {
                        out.push_str(&op[1..]);
                    }
                }
                _ => out.push_str(lookup(name).unwrap_or_default()),
            }
            continue;
        }
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len == 0 {
            out.push('$');
            rest = after;
        } else {
            out.push_str(lookup(&after[..len]).unwrap_or_default());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// A JSON number for a stored `f64`: whole numbers as integers (`1`, not `1.0`).
/// `None` for NaN and infinities, which JSON cannot represent.
pub fn json_number(x: f64) -> Option<Number> {
    if x.fract() == 0.0 && x.abs() <= EXACT_INT {
        Some(Number::from(x as i64))
    } else {
        Number::from_f64(x)
    }
}

/// `image:version` of a gear: the tag its image is built and pushed as. A layer without
/// `version` (a plain layer, or a gear that failed validation) gets the bare `image`.
pub fn image_tag(layer: &Layer) -> String {
    match layer.decl.version.as_deref() {
        Some(version) => format!("{}:{version}", layer.decl.image),
        None => layer.decl.image.clone(),
    }
}

/// The declared `custom` table with `gear-builder.image` set to `image`, after the
/// user's other `gear-builder` keys. A `gear-builder` that is not a table is replaced.
fn custom_with_image(declared: &Map<String, Value>, image: &str) -> Map<String, Value> {
    let builder = |user: Option<&Value>| {
        let mut b: Map<String, Value> = match user {
            Some(Value::Object(m)) => m
                .iter()
                .filter(|(k, _)| k.as_str() != "image")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        b.insert("image".into(), Value::String(image.into()));
        Value::Object(b)
    };
    let mut out = Map::new();
    if !declared.contains_key(GEAR_BUILDER) {
        out.insert(GEAR_BUILDER.into(), builder(None));
    }
    for (k, v) in declared {
        let v = if k == GEAR_BUILDER {
            builder(Some(v))
        } else {
            v.clone()
        };
        out.insert(k.clone(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::GEAR_TOML;
    use serde_json::json;

    fn load(text: &str) -> Layer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(GEAR_TOML), text).unwrap();
        Layer::load(dir.path(), dir.path()).unwrap()
    }

    const MINIMAL: &str = r#"[gear]
name = "g"
from = "base"
image = "registry.example.org:5000/lab/g"
version = "2.1.0"
label = "G"
description = "Does g."
author = "A"
license = "MIT"
"#;

    #[test]
    fn minimal_gear_renders_required_keys_only() {
        let m = Manifest::for_gear(&load(MINIMAL), IndexMap::new());
        insta::assert_snapshot!(m.render());
    }

    #[test]
    fn render_is_pretty_with_trailing_newline() {
        let m = Manifest::for_gear(&load(MINIMAL), IndexMap::new());
        let out = m.render();
        assert!(out.ends_with("}\n") && !out.ends_with("\n\n"));
        assert!(out.contains("\n  \"name\": \"g\",\n"));
        assert_eq!(out, m.render());
        let keys: Vec<String> = m.to_value().as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "name",
                "label",
                "description",
                "author",
                "license",
                "url",
                "source",
                "version",
                "environment",
                "custom",
                "inputs",
                "config"
            ]
        );
    }

    #[test]
    fn everything_declared() {
        let text = format!(
            r#"{MINIMAL}maintainer = "M <m@example.org>"
source = "https://example.org/src"
url = "https://example.org"
cite = "Someone 2020"
command = "python3 run.py"
capabilities = ["networking"]
env = {{ OWN = "1" }}

[gear.inputs.scan]
size = {{ maximum = 1000000 }}
type = {{ enum = ["nifti", "dicom"] }}
optional = true
description = "A scan."
name = {{ pattern = "\\.nii(\\.gz)?$" }}

[gear.inputs.ctx]
base = "context"

[gear.inputs.key]
read-only = true
base = "api-key"

[gear.config.threads]
maximum = 64
minimum = 1
default = 2
description = "Threads."
type = "integer"

[gear.config.ratio]
type = "number"
exclusiveMinimum = 0
maximum = 1.5
default = 0.5

[gear.config.tight]
type = "number"
minimum = 0
exclusiveMinimum = 0
maximum = 10
exclusiveMaximum = 11
multipleOf = 0.5

[gear.config.mode]
type = "string"
enum = ["fast", "slow"]
optional = true
pattern = "^[a-z]+$"
minLength = 1
maxLength = 8

[gear.config.list]
type = "array"
items = {{ type = "string" }}
minItems = 1
maxItems = 3

[gear.custom.flywheel]
suite = "S"

[gear.custom.gear-builder]
image = "user/set:1"
category = "analysis"
"#
        );
        let env = IndexMap::from([
            ("FLYWHEEL".to_string(), "/flywheel/v0".to_string()),
            ("OWN".to_string(), "1".to_string()),
        ]);
        let m = Manifest::for_gear(&load(&text), env);
        insta::assert_snapshot!(m.render());
    }

    #[test]
    fn gear_builder_image_goes_after_user_keys() {
        let mut declared = Map::new();
        declared.insert("flywheel".into(), json!({"suite": "S"}));
        declared.insert(
            GEAR_BUILDER.into(),
            json!({"image": "old", "category": "qa", "x": 1}),
        );
        let out = custom_with_image(&declared, "r/g:1");
        assert_eq!(
            Value::Object(out.clone()).to_string(),
            r#"{"flywheel":{"suite":"S"},"gear-builder":{"category":"qa","x":1,"image":"r/g:1"}}"#
        );
        // Not declared: gear-builder first.
        declared.shift_remove(GEAR_BUILDER);
        let out = custom_with_image(&declared, "r/g:1");
        assert_eq!(
            Value::Object(out).to_string(),
            r#"{"gear-builder":{"image":"r/g:1"},"flywheel":{"suite":"S"}}"#
        );
        // Not a table: replaced.
        declared.insert(GEAR_BUILDER.into(), json!("oops"));
        let out = custom_with_image(&declared, "r/g:1");
        assert_eq!(out[GEAR_BUILDER], json!({"image": "r/g:1"}));
    }

    #[test]
    fn numbers() {
        assert_eq!(json_number(1.0), Some(Number::from(1)));
        assert_eq!(json_number(-3.0), Some(Number::from(-3)));
        assert_eq!(json_number(0.5).unwrap().to_string(), "0.5");
        assert_eq!(json_number(1e300).unwrap().to_string(), "1e+300");
        assert_eq!(json_number(f64::NAN), None);
        assert_eq!(json_number(-0.0).unwrap().to_string(), "0");
    }

    #[test]
    fn exclusive_bounds_become_draft4() {
        let gt = |a: f64, b: f64| a > b;
        // Alone.
        assert_eq!(
            draft4_bound(None, Some(0.0), gt),
            (Some(Number::from(0)), Some(true))
        );
        // Equal: exclusive is tighter.
        assert_eq!(
            draft4_bound(Some(5.0), Some(5.0), gt),
            (Some(Number::from(5)), Some(true))
        );
        // Inclusive tighter.
        assert_eq!(
            draft4_bound(Some(6.0), Some(5.0), gt),
            (Some(Number::from(6)), None)
        );
        // Exclusive tighter.
        assert_eq!(
            draft4_bound(Some(5.0), Some(5.5), gt),
            (json_number(5.5), Some(true))
        );
    }

    #[test]
    fn image_tag_uses_version() {
        let gear = load(MINIMAL);
        assert_eq!(image_tag(&gear), "registry.example.org:5000/lab/g:2.1.0");
        let layer = load("[layer]\nname = \"l\"\nfrom = \"b\"\nimage = \"x/l\"\n");
        assert_eq!(image_tag(&layer), "x/l");
    }
}
