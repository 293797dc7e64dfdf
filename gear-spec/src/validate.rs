//! Per-layer semantic checks of a parsed Gear.toml: the rules serde cannot express
//! (name and tag syntax, keys in the wrong kind of table, Flywheel's manifest rules,
//! config defaults that contradict their own schema). No filesystem access: the paths in
//! `copy` and `files` are checked elsewhere.
//!
//! [`check_layer`] reports every problem it finds, in file order, each with a stable
//! code from [`CODES`], a span on the offending key or value, and a help line saying
//! what to change.

use std::sync::LazyLock;

use miette::SourceSpan;
use regex::Regex;
use serde_json::Value;

use crate::config::{Violation, check_value, describe, list, show, type_matches};
use crate::context::{COPY_DIR, GEAR_COPY_DEST, RUN_FILE_CANDIDATES};
use crate::diagnostic::{Problem, did_you_mean, escape_controls};
use crate::flywheel::{FLYWHEEL_CATEGORIES, FLYWHEEL_LICENSES, MAX_NAME_LEN};
use crate::layer::{Layer, LayerKind};
use crate::manifest::{GEAR_BUILDER, json_number};
use crate::model::{ConfigDecl, ConfigType, EXTERNAL_KEYS, GEAR_ONLY_KEYS, InputBase};
use crate::platform::Platform;
use crate::reference;
use crate::step::Recipe;

/// Every code [`check_layer`] can report.
pub const CODES: &[&str] = &[
    "gear::invalid-name",
    "gear::gear-only-key",
    "gear::external-build-key",
    "gear::gear-without-from",
    "gear::digest-on-built-layer",
    "gear::platform-on-built-layer",
    "gear::invalid-platform",
    "gear::image-has-tag",
    "gear::invalid-image",
    "gear::invalid-digest",
    "gear::missing-manifest-field",
    "gear::invalid-version",
    "gear::too-long",
    "gear::unknown-license",
    "gear::invalid-url",
    "gear::config-default-and-optional",
    "gear::config-default-type",
    "gear::config-default-enum",
    "gear::config-default-range",
    "gear::config-default-pattern",
    "gear::config-default-length",
    "gear::config-invalid-pattern",
    "gear::config-enum-type",
    "gear::config-empty-range",
    "gear::input-file-key",
    "gear::input-read-only",
    "gear::custom-gear-builder",
    "gear::custom-image",
    "gear::unknown-category",
];

/// Every code [`check_start`] can report.
pub const START_CODES: &[&str] = &["gear::no-command", "gear::command-script-missing"];

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9-]+$").unwrap());
/// A Docker tag, length aside (Flywheel's 100-character `version` limit is stricter than
/// Docker's 128 and is checked separately).
static DOCKER_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$").unwrap());
/// An absolute http(s) URL: a scheme, a host, then no whitespace or characters that are
/// never allowed in a URI.
static HTTP_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^https?://[^\s/?#@<>"{}|\\^`]+(?:[/?#][^\s<>"{}|\\^`]*)?$"#).unwrap()
});

/// Manifest fields a gear must declare.
const REQUIRED: &[&str] = &["version", "label", "description", "author", "license"];

/// Checks one layer on its own and returns every problem found, in file order.
pub fn check_layer(layer: &Layer) -> Vec<Problem> {
    let mut c = Checker {
        layer,
        problems: Vec::new(),
    };
    c.name();
    c.table_keys();
    c.parent_and_digest();
    c.image();
    if layer.kind == LayerKind::Gear {
        c.required_fields();
        c.version();
        c.lengths();
        c.license();
        c.urls();
        c.inputs();
        for (key, config) in &layer.decl.config {
            c.config(key, config);
        }
        c.custom();
    }
    let mut problems = c.problems;
    problems.sort_by_key(|p| p.span.map_or(0, |s| s.offset()));
    problems
}

struct Checker<'a> {
    layer: &'a Layer,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn push(
        &mut self,
        code: &'static str,
        message: String,
        span: Option<SourceSpan>,
        label: &str,
        help: String,
    ) {
        debug_assert!(CODES.contains(&code), "{code} missing from CODES");
        self.problems.push(
            Problem::new(code, message)
                .at(&self.layer.source, span)
                .label(label)
                .help(help),
        );
    }

    /// Span of the value at `keys` inside this layer's table.
    fn value(&self, keys: &[&str]) -> Option<SourceSpan> {
        self.layer.span(keys)
    }

    /// Span of the key at the end of `keys` inside this layer's table.
    fn key(&self, keys: &[&str]) -> Option<SourceSpan> {
        let mut path = vec![self.layer.table()];
        path.extend_from_slice(keys);
        self.layer.source.key_span(&path)
    }

    /// Span of the `[layer]`/`[gear]` table name, for problems about the table as a whole.
    fn table(&self) -> Option<SourceSpan> {
        self.layer.source.key_span(&[self.layer.table()])
    }

    /// The keys written in this layer's table, in file order.
    fn written_keys(&self) -> Vec<String> {
        let Ok(doc) = self.layer.source.document() else {
            return Vec::new();
        };
        let Some(table) = doc
            .as_table()
            .get(self.layer.table())
            .and_then(|t| t.as_table_like())
        else {
            return Vec::new();
        };
        table.iter().map(|(k, _)| k.to_string()).collect()
    }

    fn what(&self) -> &'static str {
        self.layer.table()
    }

    fn name(&mut self) {
        let name = &self.layer.decl.name;
        let span = self.value(&["name"]);
        if !NAME.is_match(name) {
            let message = if self.layer.kind == LayerKind::Gear {
                format!(
                    "gear name `{name}` is not allowed: Flywheel gear names must match `^[a-z0-9-]+$`"
                )
            } else {
                format!(
                    "layer name `{name}` is not allowed: layer names become image names, so they must match `^[a-z0-9-]+$` like gear names"
                )
            };
            let suggestion = sanitize_name(name);
            let help = if suggestion.is_empty() || suggestion == *name {
                "use only lowercase letters (a-z), digits and `-`".to_string()
            } else {
                format!(
                    "use only lowercase letters (a-z), digits and `-`, e.g. `name = \"{suggestion}\"`"
                )
            };
            self.push(
                "gear::invalid-name",
                message,
                span,
                "only a-z, 0-9 and `-` are allowed",
                help,
            );
        }
        let len = name.chars().count();
        if len > MAX_NAME_LEN {
            self.push(
                "gear::invalid-name",
                format!(
                    "{} name is {len} characters long; at most {MAX_NAME_LEN} are allowed",
                    self.what()
                ),
                span,
                "too long",
                format!("shorten the name to at most {MAX_NAME_LEN} characters"),
            );
        }
    }

    /// Gear-only keys in `[layer]`; build keys on an external image.
    fn table_keys(&mut self) {
        if self.layer.kind == LayerKind::Gear {
            return;
        }
        let name = self.layer.decl.name.clone();
        for key in self.written_keys() {
            if GEAR_ONLY_KEYS.contains(&key.as_str()) {
                self.push(
                    "gear::gear-only-key",
                    format!("`{key}` is only for gears"),
                    self.key(&[&key]),
                    "gear-only key in [layer]",
                    format!("rename [layer] to [gear] to make `{name}` a Flywheel gear (gears are built `from` a layer), or remove `{key}`"),
                );
            } else if self.layer.kind == LayerKind::External
                && !EXTERNAL_KEYS.contains(&key.as_str())
            {
                self.push(
                    "gear::external-build-key",
                    format!("`{key}` needs a build, but `{name}` is an external image (a [layer] without `from`)"),
                    self.key(&[&key]),
                    "build key on an external image",
                    format!("an external image is pulled, not built: move these keys to a layer built `from = \"{name}\"`, or add `from = …`"),
                );
            }
        }
    }

    fn parent_and_digest(&mut self) {
        let d = &self.layer.decl;
        if self.layer.kind == LayerKind::Gear && d.from.is_none() {
            self.push(
                "gear::gear-without-from",
                format!("gear `{}` has no `from`", d.name),
                self.table(),
                "this gear has no parent layer",
                "add `from = \"<layer name>\"` to [gear]: a gear is built on a layer (declare the base image as a [layer] without `from`)".into(),
            );
        }
        if self.layer.kind.is_built() && d.digest.is_some() {
            self.push(
                "gear::digest-on-built-layer",
                format!("`digest` pins an external image, but `{}` is built by cargo-gear", d.name),
                self.key(&["digest"]),
                "only for external images",
                "remove `digest`; to pin the base image, set `digest` on the external [layer] at the root of the chain".into(),
            );
        }
        let Some(platform) = &d.platform else {
            return;
        };
        if self.layer.kind.is_built() {
            self.push(
                "gear::platform-on-built-layer",
                format!("`platform` chooses an external image's platform, but `{}` is built by cargo-gear on its parent", d.name),
                self.key(&["platform"]),
                "only for external images",
                "remove `platform`: a built layer has its parent's platform; set `platform` on the external [layer] at the root of the chain, or `platform` under [workspace.metadata.gear] for every chain".into(),
            );
        } else if let Err(e) = platform.parse::<Platform>() {
            self.push(
                "gear::invalid-platform",
                e.to_string(),
                self.value(&["platform"]),
                "not `os/arch`",
                "write the platform as Docker does, e.g. `platform = \"linux/amd64\"` (what Flywheel runs) or `\"linux/arm64\"`".into(),
            );
        }
    }

    /// The image reference as Docker parses it; built images are repositories (cargo-gear
    /// adds the tag); an external image's `digest` must be one Docker accepts.
    fn image(&mut self) {
        let d = &self.layer.decl;
        let image = d.image.clone();
        let parsed = match reference::parse(&image) {
            Ok(parsed) => parsed,
            Err(invalid) => {
                let help = match &invalid.suggestion {
                    Some(fixed) => format!(
                        "write a Docker image reference, e.g. `image = \"{fixed}\"` (lowercase repository path; letters, digits, `.`, `_`, `-` and `/`)"
                    ),
                    None => "write a Docker image reference: `[host[:port]/]path[:tag]`, the path in lowercase letters, digits, `.`, `_`, `-` and `/`".to_string(),
                };
                self.push(
                    "gear::invalid-image",
                    format!(
                        "`image = \"{}\"` is not a valid Docker image reference: {}",
                        escape_controls(&image),
                        invalid.reason
                    ),
                    self.value(&["image"]),
                    "invalid image reference",
                    help,
                );
                return;
            }
        };
        if !self.layer.kind.is_built() {
            if let Some(digest) = d.digest.clone()
                && reference::parse(&format!("{}@{digest}", parsed.name)).is_err()
            {
                self.push(
                    "gear::invalid-digest",
                    format!("`digest = \"{}\"` is not an image digest", escape_controls(&digest)),
                    self.value(&["digest"]),
                    "not `algorithm:hex`",
                    "write the digest Docker shows for the image (`docker images --digests`), e.g. `digest = \"sha256:<64 hexadecimal digits>\"`".into(),
                );
            }
            return;
        }
        let what = if parsed.digest.is_some() {
            "digest"
        } else if parsed.tag.is_some() {
            "tag"
        } else {
            return;
        };
        let tag_from = if self.layer.kind == LayerKind::Gear {
            "a gear's tag is its `version`"
        } else {
            "a layer's tag is derived from its contents"
        };
        self.push(
            "gear::image-has-tag",
            format!("built image `{image}` has a {what}"),
            self.value(&["image"]),
            "repository with a tag",
            format!(
                "remove the {what}: `image = \"{}\"`; cargo-gear tags the images it builds ({tag_from})",
                parsed.name
            ),
        );
    }

    fn required_fields(&mut self) {
        let d = &self.layer.decl;
        for &field in REQUIRED {
            let value = match field {
                "version" => &d.version,
                "label" => &d.label,
                "description" => &d.description,
                "author" => &d.author,
                _ => &d.license,
            };
            let example = match field {
                "version" => "1.0.0",
                "license" => "MIT",
                _ => "…",
            };
            match value {
                None => self.push(
                    "gear::missing-manifest-field",
                    format!("gear `{}` has no `{field}`", d.name),
                    self.table(),
                    "in this table",
                    format!("add `{field} = \"{example}\"` to [gear]: Flywheel requires `{field}` in manifest.json"),
                ),
                // An empty version or license is reported by their own checks.
                Some(v) if v.trim().is_empty() && !matches!(field, "version" | "license") => self.push(
                    "gear::missing-manifest-field",
                    format!("`{field}` of gear `{}` is empty", d.name),
                    self.value(&[field]),
                    "empty",
                    format!("write the gear's {field} here: Flywheel shows it to users"),
                ),
                Some(_) => {}
            }
        }
    }

    fn version(&mut self) {
        let Some(version) = self.layer.decl.version.clone() else {
            return;
        };
        if DOCKER_TAG.is_match(&version) {
            return;
        }
        let fixed = sanitize_tag(&version);
        let help = if DOCKER_TAG.is_match(&fixed) {
            format!(
                "use only letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, e.g. `version = \"{fixed}\"`"
            )
        } else {
            "use only letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, e.g. `version = \"1.0.0\"`".to_string()
        };
        self.push(
            "gear::invalid-version",
            format!("version `{version}` cannot be a Docker image tag, and the gear's image is tagged with its version"),
            self.value(&["version"]),
            "not a valid Docker tag",
            help,
        );
    }

    /// Flywheel's schema maxLengths.
    fn lengths(&mut self) {
        let d = &self.layer.decl;
        let fields: [(&str, &Option<String>, usize); 8] = [
            ("version", &d.version, 100),
            ("label", &d.label, 100),
            ("description", &d.description, 5000),
            ("author", &d.author, 100),
            ("maintainer", &d.maintainer, 100),
            ("cite", &d.cite, 5000),
            ("source", &d.source, 1000),
            ("url", &d.url, 1000),
        ];
        let mut found = Vec::new();
        for (field, value, max) in fields {
            let Some(value) = value else { continue };
            let len = value.chars().count();
            if len > max {
                found.push((field, len, max));
            }
        }
        for (field, len, max) in found {
            let where_else = match field {
                "description" => " (put the details in the gear's README)",
                "label" => " (the description can say more)",
                _ => "",
            };
            self.push(
                "gear::too-long",
                format!("`{field}` is {len} characters long; Flywheel allows at most {max}"),
                self.value(&[field]),
                "too long",
                format!("shorten `{field}` to at most {max} characters{where_else}"),
            );
        }
    }

    fn license(&mut self) {
        let Some(license) = self.layer.decl.license.clone() else {
            return;
        };
        if FLYWHEEL_LICENSES.contains(&license.as_str()) {
            return;
        }
        let help = match suggest_ignoring_case(&license, FLYWHEEL_LICENSES) {
            Some(best) if best.eq_ignore_ascii_case(&license) => {
                format!("did you mean `{best}`? License identifiers are case-sensitive: `license = \"{best}\"`")
            }
            Some(best) => format!("did you mean `{best}`? (`license = \"{best}\"`)"),
            None => "use an SPDX identifier from Flywheel's list (e.g. `MIT`, `Apache-2.0`, `BSD-3-Clause`, `GPL-3.0`), or `Other` for any other license".into(),
        };
        self.push(
            "gear::unknown-license",
            format!("license `{license}` is not one Flywheel accepts"),
            self.value(&["license"]),
            "not in Flywheel's license list",
            help,
        );
    }

    fn urls(&mut self) {
        let d = &self.layer.decl;
        for (field, value) in [("source", d.source.clone()), ("url", d.url.clone())] {
            let Some(value) = value else { continue };
            // "" means none, as in Flywheel's schema (and as for `cite`).
            if value.is_empty() || HTTP_URL.is_match(&value) {
                continue;
            }
            let trimmed = value.trim();
            let (message, label, help) = if trimmed.is_empty() {
                (
                    format!("`{field}` holds only whitespace"),
                    "blank",
                    format!(
                        "write `{field} = \"\"` (no {field}, as when it is not set) or an http(s) URL"
                    ),
                )
            } else if trimmed != value && HTTP_URL.is_match(trimmed) {
                (
                    format!("`{field}` has leading or trailing whitespace"),
                    "whitespace around the URL",
                    format!("remove the whitespace: `{field} = \"{trimmed}\"`"),
                )
            } else if !trimmed.contains("://") && HTTP_URL.is_match(&format!("https://{trimmed}")) {
                (
                    format!("`{field}` `{value}` is not an http(s) URL"),
                    "no http:// or https://",
                    format!("add the scheme: `{field} = \"https://{trimmed}\"`"),
                )
            } else {
                (
                    format!("`{field}` `{value}` is not an http(s) URL"),
                    "not an http(s) URL",
                    format!(
                        "set `{field}` to a full http:// or https:// address without spaces, e.g. `{field} = \"https://github.com/…\"`"
                    ),
                )
            };
            self.push(
                "gear::invalid-url",
                message,
                self.value(&[field]),
                label,
                help,
            );
        }
    }

    fn inputs(&mut self) {
        let inputs = self.layer.decl.inputs.clone();
        for (name, input) in &inputs {
            if input.base != InputBase::File {
                let file_keys = [
                    ("optional", input.optional.is_some()),
                    ("type", input.file_type.is_some()),
                    ("name", input.file_name.is_some()),
                    ("size", input.size.is_some()),
                ];
                for (key, present) in file_keys {
                    if present {
                        self.push(
                            "gear::input-file-key",
                            format!("`{key}` is only for file inputs, but input `{name}` is {} input", an_input(input.base)),
                            self.key(&["inputs", name, key]),
                            "only for file inputs",
                            format!("remove `{key}`: Flywheel accepts it only on inputs with `base = \"file\"`"),
                        );
                    }
                }
            }
            if input.base != InputBase::ApiKey && input.read_only.is_some() {
                self.push(
                    "gear::input-read-only",
                    format!("`read-only` is only for api-key inputs, but input `{name}` is {} input", an_input(input.base)),
                    self.key(&["inputs", name, "read-only"]),
                    "only for api-key inputs",
                    "remove `read-only`, or set `base = \"api-key\"` if this input is the gear's API key".into(),
                );
            }
        }
    }

    fn config(&mut self, key: &str, c: &ConfigDecl) {
        let ty = c.kind.as_str();
        if c.default.is_some() && c.optional.is_some() {
            self.push(
                "gear::config-default-and-optional",
                format!("config `{key}` has both `default` and `optional`"),
                self.key(&["config", key, "optional"]),
                "not together with `default`",
                "remove `optional`: a config with a `default` always has a value, and Flywheel's schema refuses both together".into(),
            );
        }

        if let Some(allowed) = &c.allowed {
            for (n, v) in allowed.iter().enumerate() {
                if !type_matches(c.kind, v) {
                    let span = self
                        .layer
                        .source
                        .array_item_span(&[self.layer.table(), "config", key, "enum"], n)
                        .or_else(|| self.value(&["config", key, "enum"]));
                    self.push(
                        "gear::config-enum-type",
                        format!(
                            "`enum` value {v} of config `{key}` is {}, not {}",
                            describe(v),
                            a_type(c.kind)
                        ),
                        span,
                        "wrong type",
                        format!(
                            "make every `enum` value {} (the config's `type`), or change `type`",
                            a_type(c.kind)
                        ),
                    );
                }
            }
        }

        self.empty_ranges(key, c);

        if let Some(Err(e)) = c.pattern.as_deref().map(Regex::new) {
            self.push(
                        "gear::config-invalid-pattern",
                        format!("`pattern` of config `{key}` is not a valid regular expression: {}", regex_error(&e)),
                        self.value(&["config", key, "pattern"]),
                        "invalid regular expression",
                        "fix the pattern (it is checked with Rust's `regex` syntax, which has no look-around or backreferences; remember to double backslashes in TOML basic strings)".into(),
                    );
        }

        let Some(default) = &c.default else { return };
        let span = self.value(&["config", key, "default"]);
        for violation in check_value(c, default) {
            match violation {
                Violation::Type { found, .. } => self.push(
                    "gear::config-default-type",
                    format!("`default` of config `{key}` is {found}, but its `type` is {ty}"),
                    span,
                    "wrong type",
                    retype_help(c.kind, default),
                ),
                Violation::NotInEnum { allowed, suggestion } => {
                    let help = match suggestion {
                        Some(best) => format!("did you mean `default = \"{best}\"`? (allowed: {})", list(&allowed)),
                        None => format!("set `default` to one of the `enum` values ({}), or add it to `enum`", list(&allowed)),
                    };
                    self.push("gear::config-default-enum", format!("`default` {default} of config `{key}` is not one of its `enum` values"), span, "not in `enum`", help);
                }
                Violation::Range { name, bound, relation } => self.push(
                    "gear::config-default-range",
                    format!("`default` {default} of config `{key}` is {relation} its `{name}` {}", show(bound)),
                    span,
                    "out of range",
                    format!("change `default` to a value in the allowed range, or change `{name}`"),
                ),
                Violation::Pattern { pattern } => self.push(
                    "gear::config-default-pattern",
                    format!("`default` {default} of config `{key}` does not match its `pattern` `{pattern}`"),
                    span,
                    "does not match `pattern`",
                    "change `default` so that it matches `pattern`, or fix `pattern`".into(),
                ),
                Violation::Length { name, bound, len, unit, short } => self.push(
                    "gear::config-default-length",
                    format!("`default` of config `{key}` has {len} {unit}, but its `{name}` is {bound}"),
                    span,
                    if short { "too short" } else { "too long" },
                    format!("change `default` to have {} {bound} {unit}, or change `{name}`", if short { "at least" } else { "at most" }),
                ),
            }
        }
    }

    /// Bounds that leave no allowed value.
    fn empty_ranges(&mut self, key: &str, c: &ConfigDecl) {
        // The tighter of each side's inclusive and exclusive bound: (name, value, exclusive).
        let lower = tighter(
            ("minimum", c.minimum, false),
            ("exclusiveMinimum", c.exclusive_minimum, true),
            |a, b| a > b,
        );
        let upper = tighter(
            ("maximum", c.maximum, false),
            ("exclusiveMaximum", c.exclusive_maximum, true),
            |a, b| a < b,
        );
        if let (Some((lo_name, lo, lo_ex)), Some((hi_name, hi, hi_ex))) = (lower, upper)
            && (lo > hi || (lo == hi && (lo_ex || hi_ex)))
        {
            let relation = if lo > hi { "greater than" } else { "equal to" };
            self.push(
                "gear::config-empty-range",
                format!(
                    "config `{key}` allows no value: `{lo_name}` {} is {relation} `{hi_name}` {}",
                    show(lo),
                    show(hi)
                ),
                self.value(&["config", key, lo_name]),
                "no number satisfies both bounds",
                format!("fix the bounds so that `{lo_name}` is below `{hi_name}` (swapped?)"),
            );
        }
        for (lo_name, lo, hi_name, hi) in [
            ("minLength", c.min_length, "maxLength", c.max_length),
            ("minItems", c.min_items, "maxItems", c.max_items),
        ] {
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo > hi
            {
                self.push(
                    "gear::config-empty-range",
                    format!("config `{key}` allows no value: `{lo_name}` {lo} is greater than `{hi_name}` {hi}"),
                    self.value(&["config", key, lo_name]),
                    "greater than the maximum",
                    format!("fix the bounds so that `{lo_name}` is at most `{hi_name}` (swapped?)"),
                );
            }
        }
    }

    fn custom(&mut self) {
        let Some(builder) = self.layer.decl.custom.get(GEAR_BUILDER).cloned() else {
            return;
        };
        let Value::Object(builder) = builder else {
            self.push(
                "gear::custom-gear-builder",
                format!("`custom.{GEAR_BUILDER}` must be a table"),
                self.value(&["custom", GEAR_BUILDER]),
                "not a table",
                format!("write it as a table, e.g. `\"{GEAR_BUILDER}\" = {{ category = \"analysis\" }}` under [gear.custom]"),
            );
            return;
        };
        if builder.contains_key("image") {
            self.push(
                "gear::custom-image",
                format!(
                    "`custom.{GEAR_BUILDER}.image` is derived from `image` and `version`; remove it"
                ),
                self.key(&["custom", GEAR_BUILDER, "image"]),
                "set by cargo-gear",
                format!(
                    "remove it: cargo-gear sets it to `image:version` (`\"{}:{}\"`)",
                    untagged(&self.layer.decl.image),
                    self.layer.decl.version.as_deref().unwrap_or("<version>")
                ),
            );
        }
        if let Some(category) = builder.get("category") {
            let known = category
                .as_str()
                .is_some_and(|c| FLYWHEEL_CATEGORIES.contains(&c));
            if !known {
                let list = FLYWHEEL_CATEGORIES.join(", ");
                let help = match category
                    .as_str()
                    .and_then(|c| suggest_ignoring_case(c, FLYWHEEL_CATEGORIES))
                {
                    Some(best) => format!(
                        "did you mean `category = \"{best}\"`? (Flywheel's categories: {list})"
                    ),
                    None => format!("use one of Flywheel's categories: {list}"),
                };
                self.push(
                    "gear::unknown-category",
                    format!(
                        "`{}` is not a Flywheel gear category",
                        category
                            .as_str()
                            .map_or_else(|| category.to_string(), str::to_string)
                    ),
                    self.value(&["custom", GEAR_BUILDER, "category"]),
                    "unknown category",
                    help,
                );
            }
        }
    }
}

/// How Flywheel starts a gear, checked against its build context: with a `command`, the
/// script it runs (`./run`, `run.sh` of `bash run.sh`, `/flywheel/v0/x.py` of `python3
/// /flywheel/v0/x.py`) must be among the gear's files; without one Flywheel executes
/// `/flywheel/v0/run`, which must then exist. `files` are the tar paths of the gear's build
/// context ([`crate::context::select`]); `files` destinations count as in the image. A Rust
/// gear without `command` runs its binary.
pub fn check_start<'a>(layer: &Layer, files: impl IntoIterator<Item = &'a str>) -> Vec<Problem> {
    if layer.kind != LayerKind::Gear || (layer.decl.cargo.is_some() && layer.decl.command.is_none())
    {
        return Vec::new();
    }
    let files: Vec<&str> = files.into_iter().collect();
    let placed_by_steps;
    let copied: Vec<&str> = match &layer.recipe {
        Recipe::Short => files
            .iter()
            .filter_map(|f| f.strip_prefix(COPY_DIR)?.strip_prefix('/'))
            .collect(),
        Recipe::Steps(steps) => {
            placed_by_steps = crate::step::gear_paths(steps, files.iter().copied());
            placed_by_steps.iter().map(String::as_str).collect()
        }
        // Where an own Dockerfile puts files is its business: the build will tell.
        Recipe::Own(_) => return Vec::new(),
    };
    let in_image = |rel: &str| {
        copied.contains(&rel)
            || layer
                .decl
                .files
                .keys()
                .any(|dest| dest.trim_end_matches('/') == format!("{GEAR_COPY_DEST}/{rel}"))
    };
    let workdir = layer.decl.workdir.as_deref().unwrap_or(GEAR_COPY_DEST);
    let mut problems = Vec::new();
    match layer.decl.command.as_deref() {
        None if !in_image("run") => {
            let run_file = layer
                .decl
                .run_file
                .as_deref()
                .or_else(|| RUN_FILE_CANDIDATES.into_iter().find(|c| copied.contains(c)));
            let help = match run_file {
                Some(script) => format!(
                    "add `command = \"{}\"` to [gear], or name the script `run`",
                    start_command(script)
                ),
                None => "add `command = \"…\"` (what Flywheel runs, in /flywheel/v0) to [gear], or an executable file named `run` to the gear directory".to_string(),
            };
            problems.push(
                Problem::new(
                    "gear::no-command",
                    format!(
                        "gear `{}` has no `command` and no `run` file: Flywheel would execute /flywheel/v0/run, which its image lacks",
                        layer.name
                    ),
                )
                .at(&layer.source, layer.source.key_span(&["gear"]))
                .label("nothing for Flywheel to run")
                .help(help),
            );
        }
        Some(command) => {
            let Some(script) = command_script(command, workdir) else {
                return problems;
            };
            if in_image(&script) {
                return problems;
            }
            let help = match did_you_mean(&script, copied.iter().copied()) {
                Some(best) => format!(
                    "did you mean `{best}`? (`command = \"{}\"`)",
                    command.replacen(&script, best, 1)
                ),
                None => format!(
                    "add `{script}` to {} (or to its `copy` list), or fix the path in `command`",
                    layer.rel_dir
                ),
            };
            problems.push(
                Problem::new(
                    "gear::command-script-missing",
                    format!(
                        "`command` runs `{script}`, which is not among the files gear `{}` copies into {GEAR_COPY_DEST}",
                        layer.name
                    ),
                )
                .at(&layer.source, layer.span(&["command"]))
                .label("no such file in the gear")
                .help(help),
            );
        }
        None => {}
    }
    problems
}

/// The `command` that starts a run file: `python3 run.py`, `sh run.sh`, `./run.bin`.
fn start_command(script: &str) -> String {
    if script.ends_with(".py") {
        format!("python3 {script}")
    } else if script.ends_with(".sh") {
        format!("sh {script}")
    } else {
        format!("./{script}")
    }
}

/// Interpreters whose first argument that is not an option is the script they run.
static INTERPRETER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:sh|bash|dash|zsh|ksh|python[0-9.]*|Rscript|node|perl|ruby|julia)$")
        .expect("valid regex")
});

/// The gear file a `command` runs, relative to /flywheel/v0: the first word when it is a
/// relative path (`./run`, `bin/run`) or under /flywheel/v0, else the script argument of an
/// interpreter (`bash run.sh`). `None` when the command runs something from the image
/// (`echo`, `/usr/bin/x`), inline code (`python -c`, `-m module`), or when relative paths
/// are resolved in another `workdir`.
pub fn command_script(command: &str, workdir: &str) -> Option<String> {
    let mut words = command
        .split_whitespace()
        .map(|w| w.trim_matches(['"', '\'']))
        .skip_while(|w| w.contains('=') && !w.starts_with(['-', '/', '.']) || *w == "exec");
    let first = words.next()?;
    let path = if first.contains('/') {
        first
    } else if INTERPRETER.is_match(first) {
        let arg = words.find(|w| !w.starts_with('-') || matches!(*w, "-c" | "-m" | "-e"))?;
        if arg.starts_with('-') || arg.contains(['$', '`', ';', '|', '&']) {
            return None;
        }
        arg
    } else {
        return None;
    };
    let rel = match path.strip_prefix(GEAR_COPY_DEST) {
        Some(rest) => rest.strip_prefix('/')?,
        None if path.starts_with('/') => return None,
        None if workdir.trim_end_matches('/') != GEAR_COPY_DEST => return None,
        None => path,
    };
    crate::context::normalize_rel(rel).filter(|r| !r.is_empty())
}

/// A name made valid: lowercase, other characters turned into single `-`, trimmed.
fn sanitize_name(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        let ch = if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            ch
        } else {
            '-'
        };
        if ch == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(ch);
    }
    let out = out.trim_end_matches('-');
    out.chars()
        .take(MAX_NAME_LEN)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// A version made into a Docker tag: other characters turned into `-`, leading `.`/`-`
/// and whitespace dropped.
fn sanitize_tag(version: &str) -> String {
    let mapped: String = version
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_start_matches(['.', '-']).to_string()
}

/// The repository part of an image reference.
fn untagged(image: &str) -> String {
    reference::parse(image).map_or_else(|_| image.to_string(), |r| r.name)
}

/// The candidate matching `word` ignoring case, else the closest one ignoring case.
fn suggest_ignoring_case<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if let Some(exact) = candidates.iter().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(exact);
    }
    let lower: Vec<String> = candidates.iter().map(|c| c.to_ascii_lowercase()).collect();
    let best = did_you_mean(&word.to_ascii_lowercase(), lower.iter().map(String::as_str))?;
    lower.iter().position(|c| c == best).map(|i| candidates[i])
}

/// The tighter of an inclusive and an exclusive bound on one side (exclusive on a tie).
fn tighter<'n>(
    inclusive: (&'n str, Option<f64>, bool),
    exclusive: (&'n str, Option<f64>, bool),
    is_tighter: fn(f64, f64) -> bool,
) -> Option<(&'n str, f64, bool)> {
    match (inclusive.1, exclusive.1) {
        (Some(i), Some(e)) if !is_tighter(e, i) && e != i => Some((inclusive.0, i, false)),
        (_, Some(e)) => Some((exclusive.0, e, true)),
        (Some(i), None) => Some((inclusive.0, i, false)),
        (None, None) => None,
    }
}

fn an_input(base: InputBase) -> &'static str {
    match base {
        InputBase::File => "a file",
        InputBase::Context => "a context",
        InputBase::ApiKey => "an api-key",
    }
}

fn a_type(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::String => "a string",
        ConfigType::Integer => "an integer",
        ConfigType::Number => "a number",
        ConfigType::Boolean => "a boolean",
        ConfigType::Array => "an array",
    }
}

/// What to write instead of a `default` of the wrong type.
fn retype_help(kind: ConfigType, v: &Value) -> String {
    let fix = match (kind, v) {
        (ConfigType::Integer, Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.fract() == 0.0)
            .and_then(json_number)
            .map(|n| format!("write it without a decimal point: `default = {n}`")),
        (ConfigType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .ok()
            .map(|n| format!("remove the quotes: `default = {n}`")),
        (ConfigType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(|_| format!("remove the quotes: `default = {}`", s.trim())),
        (ConfigType::Boolean, Value::String(s)) if matches!(s.as_str(), "true" | "false") => {
            Some(format!("remove the quotes: `default = {s}`"))
        }
        (ConfigType::String, Value::Number(_) | Value::Bool(_)) => {
            Some(format!("quote it: `default = \"{v}\"`"))
        }
        (ConfigType::Array, Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
            Some(format!("make it a list: `default = [{v}]`"))
        }
        _ => None,
    };
    fix.unwrap_or_else(|| format!("give `default` {} value, or change `type`", a_type(kind)))
}

/// The one-line reason of a regex syntax error.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or_default())
        .to_string()
}

#[cfg(test)]
mod tests;
