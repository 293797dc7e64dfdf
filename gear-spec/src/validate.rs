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
use crate::diagnostic::{Problem, did_you_mean};
use crate::layer::{Layer, LayerKind};
use crate::manifest::{GEAR_BUILDER, json_number};
use crate::model::{ConfigDecl, ConfigType, EXTERNAL_KEYS, GEAR_ONLY_KEYS, InputBase};

/// Licenses Flywheel's manifest schema accepts (its `license` enum, in schema order).
pub const FLYWHEEL_LICENSES: &[&str] = &[
    "AFL-1.1",
    "AFL-1.2",
    "AFL-2.0",
    "AFL-2.1",
    "AFL-3.0",
    "APL-1.0",
    "Apache-1.1",
    "Apache-2.0",
    "APSL-1.0",
    "APSL-1.1",
    "APSL-1.2",
    "APSL-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-1.0-cl8",
    "Artistic-2.0",
    "AAL",
    "BSL-1.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "0BSD",
    "CECILL-2.1",
    "CNRI-Python",
    "CDDL-1.0",
    "CPAL-1.0",
    "CPL-1.0",
    "CATOSL-1.1",
    "CUA-OPL-1.0",
    "EPL-1.0",
    "ECL-1.0",
    "ECL-2.0",
    "EFL-1.0",
    "EFL-2.0",
    "Entessa",
    "EUDatagrid",
    "EUPL-1.1",
    "Fair",
    "Flywheel MSA",
    "Frameworx-1.0",
    "AGPL-3.0",
    "GPL-2.0",
    "GPL-3.0",
    "LGPL-2.1",
    "LGPL-3.0",
    "LGPL-2.0",
    "HPND",
    "IPL-1.0",
    "Intel",
    "IPA",
    "ISC",
    "LPPL-1.3c",
    "LiLiQ-P-1.1",
    "LiLiQ-Rplus-1.1",
    "LiLiQ-R-1.1",
    "LPL-1.02",
    "LPL-1.0",
    "MS-PL",
    "MS-RL",
    "MirOS",
    "MIT",
    "Motosoto",
    "MPL-1.0",
    "MPL-1.1",
    "MPL-2.0",
    "MPL-2.0-no-copyleft-exception",
    "Multics",
    "NASA-1.3",
    "Naumen",
    "NGPL",
    "Nokia",
    "NPOSL-3.0",
    "NTP",
    "OCLC-2.0",
    "OGTSL",
    "OSL-1.0",
    "OSL-2.0",
    "OSL-2.1",
    "OSL-3.0",
    "OSET-PL-2.1",
    "PHP-3.0",
    "PostgreSQL",
    "Python-2.0",
    "QPL-1.0",
    "RPSL-1.0",
    "RPL-1.1",
    "RPL-1.5",
    "RSCPL",
    "OFL-1.1",
    "SimPL-2.0",
    "Sleepycat",
    "SISSL",
    "SPL-1.0",
    "Watcom-1.0",
    "UPL-1.0",
    "NCSA",
    "VSL-1.0",
    "W3C",
    "Xnet",
    "Zlib",
    "ZPL-2.0",
    "Other",
];

/// Values of `custom.gear-builder.category` Flywheel knows.
pub const FLYWHEEL_CATEGORIES: &[&str] = &["analysis", "converter", "utility", "classifier", "qa"];

/// Longest gear or layer name (Flywheel's `name` maxLength).
pub const MAX_NAME_LEN: usize = 100;

/// Every code [`check_layer`] can report.
pub const CODES: &[&str] = &[
    "gear::invalid-name",
    "gear::gear-only-key",
    "gear::external-build-key",
    "gear::gear-without-from",
    "gear::digest-on-built-layer",
    "gear::image-has-tag",
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
        let Ok(doc) = toml_edit::Document::parse(self.layer.source.text()) else {
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
    }

    /// Built images are repositories: cargo-gear adds the tag.
    fn image(&mut self) {
        if !self.layer.kind.is_built() {
            return;
        }
        let image = &self.layer.decl.image;
        let Some((repo, what)) = split_reference(image) else {
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
            format!("remove the {what}: `image = \"{repo}\"`; cargo-gear tags the images it builds ({tag_from})"),
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
            if HTTP_URL.is_match(&value) {
                continue;
            }
            let trimmed = value.trim();
            let (message, label, help) = if trimmed.is_empty() {
                (
                    format!("`{field}` is empty"),
                    "empty",
                    format!(
                        "remove `{field}` (cargo-gear writes \"\" when it is not set), or set it to an http(s) URL"
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

/// For a built image reference with a tag or digest: the repository and `"tag"` or
/// `"digest"`. A registry port (`localhost:5000/x`) is not a tag: the tag is a `:` after
/// the last `/`.
fn split_reference(image: &str) -> Option<(&str, &'static str)> {
    if let Some(at) = image.find('@') {
        let repo = &image[..at];
        return Some((split_reference(repo).map_or(repo, |(r, _)| r), "digest"));
    }
    let last = image.rfind('/').map_or(0, |i| i + 1);
    image[last..]
        .find(':')
        .map(|colon| (&image[..last + colon], "tag"))
}

/// The repository part of an image reference.
fn untagged(image: &str) -> &str {
    split_reference(image).map_or(image, |(repo, _)| repo)
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
mod tests {
    use super::*;
    use crate::layer::GEAR_TOML;

    fn load(text: &str) -> Layer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(GEAR_TOML), text).unwrap();
        Layer::load(dir.path(), dir.path()).unwrap_or_else(|p| panic!("{p}"))
    }

    /// A valid gear; tests append keys to its `[gear]` table or add sub-tables.
    const GEAR: &str = r#"[gear]
name = "g"
from = "base"
image = "lab/g"
version = "1.0.0"
label = "G"
description = "Does g."
author = "A"
license = "MIT"
"#;

    fn gear(extra: &str) -> String {
        format!("{GEAR}{extra}")
    }

    /// The text a problem's span covers.
    fn spanned<'a>(layer: &'a Layer, p: &Problem) -> &'a str {
        let span = p.span.unwrap_or_else(|| panic!("no span: {p:?}"));
        &layer.source.text()[span.offset()..][..span.len()]
    }

    /// Checks `text` and expects exactly one problem: returns it and the text it points at.
    fn one(text: &str) -> (Problem, String) {
        let layer = load(text);
        let mut problems = check_layer(&layer);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let p = problems.remove(0);
        assert!(p.label.is_some() && p.help.is_some(), "{p:?}");
        let at = spanned(&layer, &p).to_string();
        (p, at)
    }

    fn all(text: &str) -> (Layer, Vec<Problem>) {
        let layer = load(text);
        let problems = check_layer(&layer);
        (layer, problems)
    }

    #[test]
    fn valid_layers_and_gear_pass() {
        for text in [
            GEAR,
            "[layer]\nname = \"base\"\nimage = \"python:3.12-slim\"\ndigest = \"sha256:abc\"\ndistro = \"debian\"\ndescription = \"x\"\n",
            "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"localhost:5000/lab/mid\"\npackages = [\"jq\"]\n",
        ] {
            let (_, problems) = all(text);
            assert!(problems.is_empty(), "{text}\n{problems:#?}");
        }
    }

    #[test]
    fn gear_name_pattern() {
        let (p, at) = one(&GEAR.replace("name = \"g\"", "name = \"GRP_14\""));
        assert_eq!(p.code, "gear::invalid-name");
        assert_eq!(
            p.message,
            "gear name `GRP_14` is not allowed: Flywheel gear names must match `^[a-z0-9-]+$`"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("use only lowercase letters (a-z), digits and `-`, e.g. `name = \"grp-14\"`")
        );
        assert_eq!(at, "\"GRP_14\"");
    }

    #[test]
    fn layer_name_pattern_says_why() {
        let (p, at) = one("[layer]\nname = \"My Base!\"\nimage = \"x:1\"\n");
        assert_eq!(p.code, "gear::invalid-name");
        assert!(
            p.message.starts_with(
                "layer name `My Base!` is not allowed: layer names become image names"
            ),
            "{}",
            p.message
        );
        assert!(p.help.unwrap().ends_with("e.g. `name = \"my-base\"`"));
        assert_eq!(at, "\"My Base!\"");
    }

    #[test]
    fn name_too_long() {
        let long = "a".repeat(101);
        let (p, at) = one(&GEAR.replace("name = \"g\"", &format!("name = \"{long}\"")));
        assert_eq!(p.code, "gear::invalid-name");
        assert_eq!(
            p.message,
            "gear name is 101 characters long; at most 100 are allowed"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("shorten the name to at most 100 characters")
        );
        assert_eq!(at, format!("\"{long}\""));
        assert!(
            all(&GEAR.replace("name = \"g\"", &format!("name = \"{}\"", "a".repeat(100))))
                .1
                .is_empty()
        );
    }

    #[test]
    fn gear_only_keys_in_layer() {
        let (layer, ps) = all(
            "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\nversion = \"1\"\nrun-file = \"run\"\n\n[layer.config.n]\ntype = \"integer\"\n",
        );
        let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["gear::gear-only-key"; 3]);
        assert_eq!(ps[0].message, "`version` is only for gears");
        assert_eq!(
            ps[0].help.as_deref(),
            Some(
                "rename [layer] to [gear] to make `mid` a Flywheel gear (gears are built `from` a layer), or remove `version`"
            )
        );
        let at: Vec<&str> = ps.iter().map(|p| spanned(&layer, p)).collect();
        assert_eq!(at, ["version", "run-file", "config"]);
    }

    #[test]
    fn external_layer_with_build_keys() {
        let (layer, ps) = all(
            "[layer]\nname = \"base\"\nimage = \"python:3\"\npackages = [\"jq\"]\nenv = { A = \"1\" }\ndistro = \"debian\"\nlabel = \"L\"\n",
        );
        let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "gear::external-build-key",
                "gear::external-build-key",
                "gear::gear-only-key"
            ]
        );
        assert_eq!(
            ps[0].message,
            "`packages` needs a build, but `base` is an external image (a [layer] without `from`)"
        );
        assert_eq!(
            ps[0].help.as_deref(),
            Some(
                "an external image is pulled, not built: move these keys to a layer built `from = \"base\"`, or add `from = …`"
            )
        );
        let at: Vec<&str> = ps.iter().map(|p| spanned(&layer, p)).collect();
        assert_eq!(at, ["packages", "env", "label"]);
    }

    #[test]
    fn gear_without_from() {
        let (p, at) = one(&GEAR.replace("from = \"base\"\n", ""));
        assert_eq!(p.code, "gear::gear-without-from");
        assert_eq!(p.message, "gear `g` has no `from`");
        assert!(
            p.help
                .unwrap()
                .starts_with("add `from = \"<layer name>\"` to [gear]")
        );
        assert_eq!(at, "gear");
    }

    #[test]
    fn digest_on_built_layer_and_gear() {
        let (p, at) = one(
            "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\ndigest = \"sha256:0\"\n",
        );
        assert_eq!(p.code, "gear::digest-on-built-layer");
        assert_eq!(
            p.message,
            "`digest` pins an external image, but `mid` is built by cargo-gear"
        );
        assert!(p.help.unwrap().starts_with("remove `digest`"));
        assert_eq!(at, "digest");
        let (p, at) = one(&gear("digest = \"sha256:0\"\n"));
        assert_eq!(p.code, "gear::digest-on-built-layer");
        assert_eq!(at, "digest");
    }

    #[test]
    fn built_image_with_tag_or_digest() {
        let (p, at) = one(&GEAR.replace("image = \"lab/g\"", "image = \"lab/g:1.0.0\""));
        assert_eq!(p.code, "gear::image-has-tag");
        assert_eq!(p.message, "built image `lab/g:1.0.0` has a tag");
        assert_eq!(
            p.help.as_deref(),
            Some(
                "remove the tag: `image = \"lab/g\"`; cargo-gear tags the images it builds (a gear's tag is its `version`)"
            )
        );
        assert_eq!(at, "\"lab/g:1.0.0\"");

        let (p, _) = one(
            "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"localhost:5000/x/mid:v2@sha256:00\"\n",
        );
        assert_eq!(
            p.message,
            "built image `localhost:5000/x/mid:v2@sha256:00` has a digest"
        );
        assert!(
            p.help
                .unwrap()
                .starts_with("remove the digest: `image = \"localhost:5000/x/mid\"`")
        );

        // A registry port is not a tag; external images may be tagged.
        assert!(
            all("[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"localhost:5000/x/mid\"\n")
                .1
                .is_empty()
        );
        assert!(
            all("[layer]\nname = \"base\"\nimage = \"localhost:5000/x/base:1@sha256:00\"\n")
                .1
                .is_empty()
        );
    }

    #[test]
    fn split_reference_cases() {
        assert_eq!(split_reference("a/b"), None);
        assert_eq!(split_reference("host:5000/a/b"), None);
        assert_eq!(
            split_reference("host:5000/a/b:t"),
            Some(("host:5000/a/b", "tag"))
        );
        assert_eq!(split_reference("b:t"), Some(("b", "tag")));
        assert_eq!(split_reference("b@sha256:x"), Some(("b", "digest")));
    }

    #[test]
    fn missing_manifest_fields_all_reported() {
        let (layer, ps) =
            all("[gear]\nname = \"g\"\nfrom = \"b\"\nimage = \"x/g\"\nauthor = \" \"\n");
        let msgs: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "gear `g` has no `version`",
                "gear `g` has no `label`",
                "gear `g` has no `description`",
                "gear `g` has no `license`",
                "`author` of gear `g` is empty"
            ]
        );
        assert!(ps.iter().all(|p| p.code == "gear::missing-manifest-field"));
        assert_eq!(
            ps[0].help.as_deref(),
            Some(
                "add `version = \"1.0.0\"` to [gear]: Flywheel requires `version` in manifest.json"
            )
        );
        assert_eq!(
            ps[1].help.as_deref(),
            Some("add `label = \"…\"` to [gear]: Flywheel requires `label` in manifest.json")
        );
        assert_eq!(spanned(&layer, &ps[0]), "gear");
        assert_eq!(spanned(&layer, &ps[4]), "\" \"");
    }

    #[test]
    fn version_must_be_a_docker_tag() {
        let (p, at) = one(&GEAR.replace("version = \"1.0.0\"", "version = \"1.0.0+build 5\""));
        assert_eq!(p.code, "gear::invalid-version");
        assert_eq!(
            p.message,
            "version `1.0.0+build 5` cannot be a Docker image tag, and the gear's image is tagged with its version"
        );
        assert_eq!(
            p.help.as_deref(),
            Some(
                "use only letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, e.g. `version = \"1.0.0-build-5\"`"
            )
        );
        assert_eq!(at, "\"1.0.0+build 5\"");
        let (p, _) = one(&GEAR.replace("version = \"1.0.0\"", "version = \".1\""));
        assert_eq!(p.code, "gear::invalid-version");
        let (p, _) = one(&GEAR.replace("version = \"1.0.0\"", "version = \"\""));
        assert_eq!(p.code, "gear::invalid-version");
        assert!(p.help.unwrap().ends_with("e.g. `version = \"1.0.0\"`"));
        assert!(
            all(&GEAR.replace("version = \"1.0.0\"", "version = \"v1.2_rc-3.X\""))
                .1
                .is_empty()
        );
    }

    #[test]
    fn flywheel_max_lengths() {
        let label = "L".repeat(101);
        let (p, at) = one(&GEAR.replace("label = \"G\"", &format!("label = \"{label}\"")));
        assert_eq!(p.code, "gear::too-long");
        assert_eq!(
            p.message,
            "`label` is 101 characters long; Flywheel allows at most 100"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("shorten `label` to at most 100 characters (the description can say more)")
        );
        assert_eq!(at, format!("\"{label}\""));

        // Characters, not bytes: 100 × "é" is fine.
        assert!(
            all(&GEAR.replace("label = \"G\"", &format!("label = \"{}\"", "é".repeat(100))))
                .1
                .is_empty()
        );

        let (_, ps) = all(&gear(&format!(
            "maintainer = \"{}\"\ncite = \"{}\"\n",
            "m".repeat(101),
            "c".repeat(5001)
        ))
        .replace(
            "description = \"Does g.\"",
            &format!("description = \"{}\"", "d".repeat(5001)),
        )
        .replace(
            "author = \"A\"",
            &format!("author = \"{}\"", "a".repeat(101)),
        ));
        let msgs: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "`description` is 5001 characters long; Flywheel allows at most 5000",
                "`author` is 101 characters long; Flywheel allows at most 100",
                "`maintainer` is 101 characters long; Flywheel allows at most 100",
                "`cite` is 5001 characters long; Flywheel allows at most 5000",
            ]
        );
    }

    #[test]
    fn license_suggestions() {
        for (written, suggested) in [
            ("mit", "MIT"),
            ("apache-2.0", "Apache-2.0"),
            ("other", "Other"),
        ] {
            let (p, at) =
                one(&GEAR.replace("license = \"MIT\"", &format!("license = \"{written}\"")));
            assert_eq!(p.code, "gear::unknown-license");
            assert_eq!(
                p.message,
                format!("license `{written}` is not one Flywheel accepts")
            );
            assert_eq!(
                p.help.unwrap(),
                format!(
                    "did you mean `{suggested}`? License identifiers are case-sensitive: `license = \"{suggested}\"`"
                )
            );
            assert_eq!(at, format!("\"{written}\""));
        }
        let (p, _) = one(&GEAR.replace("license = \"MIT\"", "license = \"GPL-3.0-or-later\""));
        assert_eq!(
            p.help.as_deref(),
            Some("did you mean `GPL-3.0`? (`license = \"GPL-3.0\"`)")
        );
        let (p, _) = one(&GEAR.replace("license = \"MIT\"", "license = \"proprietary\""));
        assert!(
            p.help
                .unwrap()
                .starts_with("use an SPDX identifier from Flywheel's list")
        );
    }

    #[test]
    fn licenses_are_the_schema_enum() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/flywheel/manifest.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let licenses: Vec<&str> = schema["properties"]["license"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(licenses, FLYWHEEL_LICENSES);
        for (field, max) in [
            ("label", 100),
            ("description", 5000),
            ("author", 100),
            ("maintainer", 100),
            ("cite", 5000),
            ("version", 100),
            ("name", MAX_NAME_LEN),
        ] {
            assert_eq!(schema["properties"][field]["maxLength"], max, "{field}");
        }
        assert_eq!(schema["definitions"]["uriOrEmpty"]["maxLength"], 1000);
    }

    #[test]
    fn urls_must_be_http() {
        let (layer, ps) = all(&gear(
            "source = \"https://github.com/BBillot/SynthSeg \"\nurl = \"github.com/lab/g\"\n",
        ));
        assert!(ps.iter().all(|p| p.code == "gear::invalid-url"), "{ps:#?}");
        assert_eq!(ps[0].message, "`source` has leading or trailing whitespace");
        assert_eq!(
            ps[0].help.as_deref(),
            Some("remove the whitespace: `source = \"https://github.com/BBillot/SynthSeg\"`")
        );
        assert_eq!(
            spanned(&layer, &ps[0]),
            "\"https://github.com/BBillot/SynthSeg \""
        );
        assert_eq!(
            ps[1].message,
            "`url` `github.com/lab/g` is not an http(s) URL"
        );
        assert_eq!(
            ps[1].help.as_deref(),
            Some("add the scheme: `url = \"https://github.com/lab/g\"`")
        );

        let (_, ps) = all(&gear("source = \"\"\nurl = \"ftp://x/y\"\n"));
        assert_eq!(ps[0].message, "`source` is empty");
        assert_eq!(ps[1].message, "`url` `ftp://x/y` is not an http(s) URL");
        assert!(
            ps[1]
                .help
                .as_deref()
                .unwrap()
                .starts_with("set `url` to a full http:// or https:// address")
        );
        let (_, ps) = all(&gear("url = \"https://example.org/a b\"\n"));
        assert_eq!(ps.len(), 1);

        assert!(
            all(&gear(
                "source = \"http://localhost:8080/x?y=1#z\"\nurl = \"https://example.org\"\n"
            ))
            .1
            .is_empty()
        );
    }

    #[test]
    fn config_default_and_optional() {
        let (p, at) = one(&gear(
            "[gear.config.n]\ntype = \"integer\"\ndefault = 1\noptional = false\n",
        ));
        assert_eq!(p.code, "gear::config-default-and-optional");
        assert_eq!(p.message, "config `n` has both `default` and `optional`");
        assert!(p.help.unwrap().starts_with("remove `optional`"));
        assert_eq!(at, "optional");
    }

    #[test]
    fn config_default_type() {
        let cases = [
            (
                "integer",
                "3.0",
                "`default` of config `c` is a float, but its `type` is integer",
                "write it without a decimal point: `default = 3`",
            ),
            (
                "integer",
                "\"3\"",
                "`default` of config `c` is a string, but its `type` is integer",
                "remove the quotes: `default = 3`",
            ),
            (
                "number",
                "\"0.5\"",
                "`default` of config `c` is a string, but its `type` is number",
                "remove the quotes: `default = 0.5`",
            ),
            (
                "boolean",
                "\"true\"",
                "`default` of config `c` is a string, but its `type` is boolean",
                "remove the quotes: `default = true`",
            ),
            (
                "string",
                "3",
                "`default` of config `c` is an integer, but its `type` is string",
                "quote it: `default = \"3\"`",
            ),
            (
                "array",
                "\"x\"",
                "`default` of config `c` is a string, but its `type` is array",
                "make it a list: `default = [\"x\"]`",
            ),
            (
                "boolean",
                "1",
                "`default` of config `c` is an integer, but its `type` is boolean",
                "give `default` a boolean value, or change `type`",
            ),
        ];
        for (ty, default, message, help) in cases {
            let (p, at) = one(&gear(&format!(
                "[gear.config.c]\ntype = \"{ty}\"\ndefault = {default}\n"
            )));
            assert_eq!(p.code, "gear::config-default-type");
            assert_eq!(p.message, message);
            assert_eq!(p.help.as_deref(), Some(help));
            assert_eq!(at, default);
        }
        for (ty, default) in [
            ("integer", "-3"),
            ("number", "3"),
            ("number", "0.25"),
            ("boolean", "false"),
            ("string", "\"\""),
            ("array", "[1, \"a\"]"),
        ] {
            assert!(
                all(&gear(&format!(
                    "[gear.config.c]\ntype = \"{ty}\"\ndefault = {default}\n"
                )))
                .1
                .is_empty(),
                "{ty} {default}"
            );
        }
    }

    #[test]
    fn config_default_enum() {
        let (p, at) = one(&gear(
            "[gear.config.d]\ntype = \"string\"\ndefault = \"autorecn1\"\nenum = [\"all\", \"autorecon1\", \"autorecon2\"]\n",
        ));
        assert_eq!(p.code, "gear::config-default-enum");
        assert_eq!(
            p.message,
            "`default` \"autorecn1\" of config `d` is not one of its `enum` values"
        );
        assert_eq!(
            p.help.as_deref(),
            Some(
                "did you mean `default = \"autorecon1\"`? (allowed: \"all\", \"autorecon1\", \"autorecon2\")"
            )
        );
        assert_eq!(at, "\"autorecn1\"");
        let (p, _) = one(&gear(
            "[gear.config.n]\ntype = \"integer\"\ndefault = 3\nenum = [1, 2]\n",
        ));
        assert_eq!(
            p.help.as_deref(),
            Some("set `default` to one of the `enum` values (1, 2), or add it to `enum`")
        );
        assert!(
            all(&gear(
                "[gear.config.x]\ntype = \"number\"\ndefault = 1\nenum = [1.0, 2.5]\n"
            ))
            .1
            .is_empty()
        );
    }

    #[test]
    fn config_enum_values_of_wrong_type() {
        let (layer, ps) = all(&gear(
            "[gear.config.n]\ntype = \"integer\"\nenum = [1, \"two\", 3.5]\n",
        ));
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert!(ps.iter().all(|p| p.code == "gear::config-enum-type"));
        assert_eq!(
            ps[0].message,
            "`enum` value \"two\" of config `n` is a string, not an integer"
        );
        assert_eq!(
            ps[0].help.as_deref(),
            Some("make every `enum` value an integer (the config's `type`), or change `type`")
        );
        assert_eq!(spanned(&layer, &ps[0]), "\"two\"");
        assert_eq!(spanned(&layer, &ps[1]), "3.5");
    }

    #[test]
    fn config_default_range() {
        let (p, at) = one(&gear(
            "[gear.config.t]\ntype = \"integer\"\ndefault = 0\nminimum = 1\nmaximum = 64\n",
        ));
        assert_eq!(p.code, "gear::config-default-range");
        assert_eq!(
            p.message,
            "`default` 0 of config `t` is below its `minimum` 1"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("change `default` to a value in the allowed range, or change `minimum`")
        );
        assert_eq!(at, "0");
        let (p, _) = one(&gear(
            "[gear.config.r]\ntype = \"number\"\ndefault = 1.0\nexclusiveMaximum = 1\n",
        ));
        assert_eq!(
            p.message,
            "`default` 1.0 of config `r` is not below its `exclusiveMaximum` 1"
        );
        let (p, _) = one(&gear(
            "[gear.config.r]\ntype = \"number\"\ndefault = 0\nexclusiveMinimum = 0\n",
        ));
        assert_eq!(
            p.message,
            "`default` 0 of config `r` is not above its `exclusiveMinimum` 0"
        );
        let (p, _) = one(&gear(
            "[gear.config.r]\ntype = \"number\"\ndefault = 2.5\nmaximum = 2\n",
        ));
        assert_eq!(
            p.message,
            "`default` 2.5 of config `r` is above its `maximum` 2"
        );
        assert!(
            all(&gear(
                "[gear.config.t]\ntype = \"integer\"\ndefault = 64\nminimum = 1\nmaximum = 64\n"
            ))
            .1
            .is_empty()
        );
    }

    #[test]
    fn config_pattern() {
        let (p, at) = one(&gear(
            "[gear.config.s]\ntype = \"string\"\ndefault = \"-bad\"\npattern = \"^[A-Za-z0-9][A-Za-z0-9._-]*$\"\n",
        ));
        assert_eq!(p.code, "gear::config-default-pattern");
        assert_eq!(
            p.message,
            "`default` \"-bad\" of config `s` does not match its `pattern` `^[A-Za-z0-9][A-Za-z0-9._-]*$`"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("change `default` so that it matches `pattern`, or fix `pattern`")
        );
        assert_eq!(at, "\"-bad\"");

        let (p, at) = one(&gear(
            "[gear.config.s]\ntype = \"string\"\ndefault = \"x\"\npattern = \"(abc\"\n",
        ));
        assert_eq!(p.code, "gear::config-invalid-pattern");
        assert_eq!(
            p.message,
            "`pattern` of config `s` is not a valid regular expression: unclosed group"
        );
        assert!(p.help.unwrap().starts_with("fix the pattern"));
        assert_eq!(at, "\"(abc\"");

        // JSON-Schema patterns are unanchored searches.
        assert!(
            all(&gear(
                "[gear.config.s]\ntype = \"string\"\ndefault = \"sub-01\"\npattern = \"[0-9]+\"\n"
            ))
            .1
            .is_empty()
        );
    }

    #[test]
    fn config_lengths() {
        let (p, at) = one(&gear(
            "[gear.config.s]\ntype = \"string\"\ndefault = \"\"\nminLength = 1\n",
        ));
        assert_eq!(p.code, "gear::config-default-length");
        assert_eq!(
            p.message,
            "`default` of config `s` has 0 characters, but its `minLength` is 1"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("change `default` to have at least 1 characters, or change `minLength`")
        );
        assert_eq!(at, "\"\"");
        let (p, _) = one(&gear(
            "[gear.config.s]\ntype = \"string\"\ndefault = \"éé\"\nmaxLength = 1\n",
        ));
        assert_eq!(
            p.message,
            "`default` of config `s` has 2 characters, but its `maxLength` is 1"
        );
        let (p, _) = one(&gear(
            "[gear.config.a]\ntype = \"array\"\ndefault = [1, 2]\nmaxItems = 1\n",
        ));
        assert_eq!(
            p.message,
            "`default` of config `a` has 2 items, but its `maxItems` is 1"
        );
    }

    #[test]
    fn config_empty_range() {
        let (p, at) = one(&gear(
            "[gear.config.n]\ntype = \"integer\"\nminimum = 10\nmaximum = 5\n",
        ));
        assert_eq!(p.code, "gear::config-empty-range");
        assert_eq!(
            p.message,
            "config `n` allows no value: `minimum` 10 is greater than `maximum` 5"
        );
        assert_eq!(
            p.help.as_deref(),
            Some("fix the bounds so that `minimum` is below `maximum` (swapped?)")
        );
        assert_eq!(at, "10");
        let (p, _) = one(&gear(
            "[gear.config.n]\ntype = \"number\"\nexclusiveMinimum = 1\nmaximum = 1\n",
        ));
        assert_eq!(
            p.message,
            "config `n` allows no value: `exclusiveMinimum` 1 is equal to `maximum` 1"
        );
        let (p, at) = one(&gear(
            "[gear.config.s]\ntype = \"string\"\nminLength = 3\nmaxLength = 2\n",
        ));
        assert_eq!(
            p.message,
            "config `s` allows no value: `minLength` 3 is greater than `maxLength` 2"
        );
        assert_eq!(at, "3");
        assert!(
            all(&gear(
                "[gear.config.n]\ntype = \"integer\"\nminimum = 5\nmaximum = 5\n"
            ))
            .1
            .is_empty()
        );
    }

    #[test]
    fn input_keys_by_base() {
        let (layer, ps) = all(&gear(
            "[gear.inputs.key]\nbase = \"api-key\"\noptional = true\nread-only = true\n\n[gear.inputs.ctx]\nbase = \"context\"\ntype = { enum = [\"x\"] }\nread-only = false\n\n[gear.inputs.f]\nread-only = true\noptional = true\n",
        ));
        let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "gear::input-file-key",
                "gear::input-file-key",
                "gear::input-read-only",
                "gear::input-read-only"
            ]
        );
        assert_eq!(
            ps[0].message,
            "`optional` is only for file inputs, but input `key` is an api-key input"
        );
        assert_eq!(
            ps[0].help.as_deref(),
            Some("remove `optional`: Flywheel accepts it only on inputs with `base = \"file\"`")
        );
        assert_eq!(
            ps[2].message,
            "`read-only` is only for api-key inputs, but input `ctx` is a context input"
        );
        assert_eq!(
            ps[2].help.as_deref(),
            Some(
                "remove `read-only`, or set `base = \"api-key\"` if this input is the gear's API key"
            )
        );
        let at: Vec<&str> = ps.iter().map(|p| spanned(&layer, p)).collect();
        assert_eq!(at, ["optional", "type", "read-only", "read-only"]);
        assert_eq!(
            ps[3].message,
            "`read-only` is only for api-key inputs, but input `f` is a file input"
        );
    }

    #[test]
    fn custom_gear_builder() {
        let (layer, ps) = all(&gear(
            "[gear.custom.gear-builder]\nimage = \"lab/g:0.9\"\ncategory = \"Analysis\"\n",
        ));
        let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["gear::custom-image", "gear::unknown-category"]);
        assert_eq!(
            ps[0].message,
            "`custom.gear-builder.image` is derived from `image` and `version`; remove it"
        );
        assert_eq!(
            ps[0].help.as_deref(),
            Some("remove it: cargo-gear sets it to `image:version` (`\"lab/g:1.0.0\"`)")
        );
        assert_eq!(spanned(&layer, &ps[0]), "image");
        assert_eq!(ps[1].message, "`Analysis` is not a Flywheel gear category");
        assert_eq!(
            ps[1].help.as_deref(),
            Some(
                "did you mean `category = \"analysis\"`? (Flywheel's categories: analysis, converter, utility, classifier, qa)"
            )
        );
        assert_eq!(spanned(&layer, &ps[1]), "\"Analysis\"");

        let (p, _) = one(&gear(
            "[gear.custom]\n\"gear-builder\" = { category = \"convertor\" }\n",
        ));
        assert!(
            p.help
                .unwrap()
                .starts_with("did you mean `category = \"converter\"`?")
        );
        let (p, at) = one(&gear("[gear.custom]\n\"gear-builder\" = \"analysis\"\n"));
        assert_eq!(p.code, "gear::custom-gear-builder");
        assert_eq!(at, "\"analysis\"");
        assert!(
            all(&gear(
                "[gear.custom]\n\"gear-builder\" = { category = \"qa\", other = 1 }\n"
            ))
            .1
            .is_empty()
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = "[gear]\nname = \"Bad Name\"\nimage = \"x/g:latest\"\nversion = \"1 0\"\nlabel = \"L\"\ndescription = \"D\"\nauthor = \"A\"\nlicense = \"mit\"\n\n[gear.config.n]\ntype = \"integer\"\ndefault = 1\noptional = true\n";
        let (_, ps) = all(text);
        let codes: Vec<_> = ps.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                "gear::gear-without-from",
                "gear::invalid-name",
                "gear::image-has-tag",
                "gear::invalid-version",
                "gear::unknown-license",
                "gear::config-default-and-optional",
            ]
        );
    }

    /// What a user sees for a gear with many mistakes: every problem, located.
    #[test]
    fn kitchen_sink_report() {
        let text = r#"[gear]
name = "My_Gear"
image = "lab/my-gear:latest"
digest = "sha256:0"
version = "1.0 beta"
label = "My gear"
description = "Does things."
author = "Lab"
license = "apache-2.0"
source = "https://example.org/src "
url = "example.org"

[gear.inputs.key]
base = "api-key"
optional = true

[gear.inputs.scan]
read-only = true

[gear.config.threads]
type = "integer"
default = 0.5
minimum = 1

[gear.config.mode]
type = "string"
default = "fsat"
enum = ["fast", "slow", 3]
optional = true

[gear.config.ratio]
type = "number"
default = 2
minimum = 1
maximum = 0

[gear.custom.gear-builder]
category = "analyses"
image = "lab/my-gear:1.0"
"#;
        let (_, ps) = all(text);
        let report: Vec<String> = ps
            .iter()
            .map(|p| {
                format!(
                    "{} [{}] {}\n    label: {}\n    help: {}",
                    p.location().unwrap(),
                    p.code,
                    p.message,
                    p.label.as_deref().unwrap(),
                    p.help.as_deref().unwrap()
                )
            })
            .collect();
        insta::assert_snapshot!(report.join("\n"));
    }

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for code in CODES {
            assert!(code.starts_with("gear::") && seen.insert(code), "{code}");
        }
    }

    #[test]
    fn sanitizers() {
        assert_eq!(sanitize_name("GRP_14"), "grp-14");
        assert_eq!(sanitize_name("--A  b--"), "a-b");
        assert_eq!(sanitize_name("__"), "");
        assert_eq!(sanitize_tag(" 1.0+x "), "1.0-x");
        assert_eq!(sanitize_tag("-.1"), "1");
    }
}
