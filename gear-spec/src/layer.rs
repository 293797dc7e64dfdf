//! Reading one `Gear.toml` into a [`Layer`]: TOML syntax, unknown fields, the table kind.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use serde_json::Value;

use crate::diagnostic::{Problem, Problems, SourceFile, did_you_mean, display_path};
use crate::model::{Decl, Distro, GearFile};
use crate::step::{self, Recipe};

/// File name of a layer declaration.
pub const GEAR_TOML: &str = "Gear.toml";

/// What a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// An image pulled from a registry, never built.
    External,
    /// A layer built on a parent.
    Layer,
    /// A built layer that is a Flywheel gear.
    Gear,
}

impl LayerKind {
    /// Lowercase name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::External => "external",
            LayerKind::Layer => "layer",
            LayerKind::Gear => "gear",
        }
    }

    /// Whether cargo-gear builds it.
    pub fn is_built(self) -> bool {
        self != LayerKind::External
    }
}

/// A declared layer: its Gear.toml, parsed.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Unique name.
    pub name: String,
    /// External, layer or gear.
    pub kind: LayerKind,
    /// Absolute directory holding the Gear.toml.
    pub dir: PathBuf,
    /// The directory as shown to users (relative to the workspace root).
    pub rel_dir: String,
    /// The workspace root: `copy` steps may take files from anywhere under it.
    pub root: PathBuf,
    /// The declaration.
    pub decl: Decl,
    /// The Gear.toml text, for diagnostics.
    pub source: Arc<SourceFile>,
    /// How the Dockerfile body is declared: short-form keys or ordered steps.
    pub recipe: Recipe,
}

impl Layer {
    /// The table name in Gear.toml (`layer` or `gear`).
    pub fn table(&self) -> &'static str {
        if self.kind == LayerKind::Gear {
            "gear"
        } else {
            "layer"
        }
    }

    /// Span of a key's value in this layer's table, for diagnostics.
    pub fn span(&self, keys: &[&str]) -> Option<miette::SourceSpan> {
        let mut path = vec![self.table()];
        path.extend_from_slice(keys);
        self.source.value_span(&path)
    }

    /// The distro set on this layer itself, if any.
    pub fn own_distro(&self) -> Option<Distro> {
        self.decl.distro
    }

    /// Reads and parses `dir/Gear.toml`; `root` is used to show paths. Every problem of
    /// the file is returned (all unknown keys, not just the first).
    pub fn load(dir: &Path, root: &Path) -> Result<Layer, Problems> {
        let mut problems = Problems::default();
        match Layer::read(dir, root, &mut problems) {
            Some(layer) if problems.is_empty() => Ok(layer),
            _ => Err(problems),
        }
    }

    /// Reads `dir/Gear.toml` as far as it goes: every problem found is added to
    /// `problems`, and the layer is returned when its declaration could be read (unknown
    /// keys are reported and skipped), so that the other checks still see it.
    pub fn read(dir: &Path, root: &Path, problems: &mut Problems) -> Option<Layer> {
        let path = dir.join(GEAR_TOML);
        let display = display_path(&path, root);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                problems.push(
                    Problem::new("gear::read", format!("cannot read {display}: {e}"))
                        .help("check that the file exists and is readable UTF-8"),
                );
                return None;
            }
        };
        Layer::parse(dir, root, SourceFile::new(path, display, text), problems)
    }

    /// Parses a Gear.toml's text, as [`Layer::read`] does after reading `dir/Gear.toml`
    /// (the fuzz entry point [`crate::fuzz`] hands it text it made): problems are added to
    /// `problems`, the layer is returned when its declaration could be read.
    pub fn parse(
        dir: &Path,
        root: &Path,
        source: Arc<SourceFile>,
        problems: &mut Problems,
    ) -> Option<Layer> {
        let doc = match source.document() {
            Ok(doc) => doc,
            Err(e) => {
                let span = e.span().map(|r| miette::SourceSpan::from(r.start..r.end));
                problems.push(syntax_problem(&source, e.message(), span));
                return None;
            }
        };
        let datetimes = datetime_problems(&source, doc);
        if !datetimes.is_empty() {
            problems.extend(datetimes);
            return None;
        }
        let mut unknown = Vec::new();
        let parsed = toml::Deserializer::parse(source.text())
            .and_then(|de| serde_ignored::deserialize(de, |path| unknown.push(path_keys(&path))));
        let mut found: Vec<Problem> = unknown
            .iter()
            .map(|keys| unknown_field(&source, keys))
            .collect();
        let file: GearFile = match parsed {
            Ok(file) => file,
            Err(e) => {
                found.push(serde_problem(&source, doc, &e));
                found.sort_by_key(|p| p.span.map_or(0, |s| s.offset()));
                problems.extend(found);
                return None;
            }
        };
        let had_unknown = !found.is_empty();
        problems.extend(found);
        let (kind, decl) = match (file.layer, file.gear) {
            (Some(decl), None) => {
                let kind = if decl.from.is_some() {
                    LayerKind::Layer
                } else {
                    LayerKind::External
                };
                (kind, decl)
            }
            (None, Some(decl)) => (LayerKind::Gear, decl),
            (Some(_), Some(_)) => {
                problems.push(
                    Problem::new(
                        "gear::two-tables",
                        "a Gear.toml declares one layer, but this one has both [layer] and [gear]",
                    )
                    .at(&source, source.key_span(&["gear"]))
                    .label("second declaration")
                    .help("move one of them into its own directory with its own Gear.toml"),
                );
                return None;
            }
            (None, None) => {
                // An unknown top-level key (e.g. `[gaer]`) already says why.
                if !had_unknown {
                    problems.push(Problem::new("gear::empty", "this Gear.toml declares nothing")
                        .at(&source, Some((0..0).into()))
                        .help("add a [layer] table (an image or a built layer) or a [gear] table (a Flywheel gear)"));
                }
                return None;
            }
        };
        let dir_in_root = dir.strip_prefix(root).ok().and_then(|d| {
            d.components()
                .map(|c| c.as_os_str().to_str())
                .collect::<Option<Vec<_>>>()
                .map(|parts| parts.join("/"))
        });
        let place = step::Place {
            table: if kind == LayerKind::Gear {
                "gear"
            } else {
                "layer"
            },
            dir_in_root: dir_in_root.as_deref(),
        };
        let mut found = Vec::new();
        let recipe = step::recipe(&decl, place, &source, &mut found);
        problems.extend(found);
        Some(Layer {
            name: decl.name.clone(),
            kind,
            dir: dir.to_path_buf(),
            rel_dir: display_path(dir, root),
            root: root.to_path_buf(),
            decl,
            source,
            recipe,
        })
    }
}

/// The model's JSON Schema: the keys each table accepts and the values each enum
/// accepts, for "did you mean" (never parsed out of serde's error wording).
static MODEL_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    serde_json::to_value(schemars::schema_for!(GearFile))
        .expect("the model's schema serializes to JSON")
});

/// The schema of the value at `keys` (table keys or array indices from the top of the
/// file), when the model declares one there.
fn schema_at(keys: &[impl AsRef<str>]) -> Option<&'static Value> {
    let root = &*MODEL_SCHEMA;
    let mut node = resolve(root, root)?;
    for key in keys {
        let key = key.as_ref();
        let next = node
            .get("properties")
            .and_then(|p| p.get(key))
            .or_else(|| key.parse::<usize>().ok().and_then(|_| node.get("items")))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        node = resolve(root, next)?;
    }
    Some(node)
}

/// Follows `$ref`s and takes the non-null branch of an optional value.
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> Option<&'a Value> {
    // Bounded: the model's definitions do not refer to themselves.
    for _ in 0..8 {
        if let Some(target) = node.get("$ref").and_then(Value::as_str) {
            node = root.pointer(target.strip_prefix('#')?)?;
        } else if let Some(branches) = node.get("anyOf").and_then(Value::as_array) {
            node = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))?;
        } else {
            break;
        }
    }
    Some(node)
}

/// The keys a table of the model accepts, in declaration order.
fn field_names(schema: &Value) -> Vec<&str> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The values a string enum of the model accepts.
fn enum_values(schema: &Value) -> Vec<&str> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().filter_map(Value::as_str).collect();
    }
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .map(|b| b.iter().filter_map(|b| b.get("const")?.as_str()).collect())
        .unwrap_or_default()
}

/// The TOML kind of value a schema expects: `Some("table")`, `Some("string")`…
fn expected_kind(schema: &Value) -> Option<&'static str> {
    let ty = match schema.get("type")? {
        Value::String(t) => t.as_str(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")?,
        _ => return None,
    };
    Some(match ty {
        "object" => "table",
        "array" => "list",
        "string" => "string",
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        _ => return None,
    })
}

/// The keys of a serde_ignored path, from the top of the file.
fn path_keys(path: &serde_ignored::Path<'_>) -> Vec<String> {
    let mut keys = Vec::new();
    let mut at = path;
    loop {
        match at {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Map { parent, key } => {
                keys.push(key.clone());
                at = parent;
            }
            serde_ignored::Path::Seq { parent, index } => {
                keys.push(index.to_string());
                at = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => at = parent,
        }
    }
    keys.reverse();
    keys
}

/// `keys` as a TOML dotted key: `layer.files."/opt/x"`.
fn dotted(keys: &[&str]) -> String {
    let bare = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    keys.iter()
        .map(|k| {
            if bare(k) {
                k.to_string()
            } else {
                format!("{k:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `[gear.inputs.x]`-style name of the table holding `keys`' last key.
fn table_name(keys: &[impl AsRef<str>]) -> String {
    let parents: Vec<&str> = keys[..keys.len().saturating_sub(1)]
        .iter()
        .map(AsRef::as_ref)
        .collect();
    if parents.is_empty() {
        "the top level".to_string()
    } else {
        format!("[{}]", dotted(&parents))
    }
}

/// A key the model does not have, with the closest one it has.
fn unknown_field(source: &Arc<SourceFile>, keys: &[String]) -> Problem {
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let word = refs.last().copied().unwrap_or_default();
    let known = schema_at(&refs[..refs.len().saturating_sub(1)])
        .map(field_names)
        .unwrap_or_default();
    let help = match did_you_mean(word, known.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if known.is_empty() => "remove it".to_string(),
        None => format!(
            "remove it; {} accepts: {}",
            table_name(&refs),
            known.join(", ")
        ),
    };
    Problem::new("gear::unknown-field", format!("unknown field `{word}`"))
        .at(source, source.key_span(&refs))
        .label("unknown field")
        .help(help)
}

/// Every TOML date-time in the file: Gear.toml never takes one, and serde would read it
/// as a table with a private key (`env = 1979-05-27T07:32:00Z` became
/// `ENV $__toml_private_datetime=…`).
fn datetime_problems(source: &Arc<SourceFile>, doc: &toml_edit::Document<String>) -> Vec<Problem> {
    fn walk(item: &toml_edit::Item, keys: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        if let Some(table) = item.as_table_like() {
            for (k, v) in table.iter() {
                keys.push(k.to_string());
                walk(v, keys, out);
                keys.pop();
            }
        } else if let toml_edit::Item::ArrayOfTables(tables) = item {
            for (i, t) in tables.iter().enumerate() {
                keys.push(i.to_string());
                walk(&toml_edit::Item::Table(t.clone()), keys, out);
                keys.pop();
            }
        } else if let Some(value) = item.as_value() {
            match value {
                toml_edit::Value::Datetime(dt) => out.push((keys.clone(), dt.value().to_string())),
                toml_edit::Value::Array(array) => {
                    for (i, v) in array.iter().enumerate() {
                        keys.push(i.to_string());
                        walk(&toml_edit::Item::Value(v.clone()), keys, out);
                        keys.pop();
                    }
                }
                _ => {}
            }
        }
    }
    let mut found = Vec::new();
    walk(doc.as_item(), &mut Vec::new(), &mut found);
    found
        .into_iter()
        .map(|(keys, raw)| {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let key = refs
                .iter()
                .rev()
                .find(|k| k.parse::<usize>().is_err())
                .copied()
                .unwrap_or("value");
            let expected = schema_at(&refs).and_then(expected_kind);
            let help = match expected {
                Some("table") => {
                    format!("write a table here, e.g. `{key} = {{ NAME = \"value\" }}`")
                }
                Some("string") | None => format!("quote it to write a string: `\"{raw}\"`"),
                Some(kind) => format!("write a {kind} here"),
            };
            let span = match refs.split_last() {
                Some((index, parent)) if index.parse::<usize>().is_ok() => {
                    source.array_item_span(parent, index.parse().unwrap_or_default())
                }
                _ => source.value_span(&refs),
            };
            Problem::new(
                "gear::datetime",
                format!(
                    "`{}` is a TOML date-time, but {} belongs here",
                    dotted(&refs),
                    match expected {
                        Some(kind) => format!("a {kind}"),
                        None => "text".to_string(),
                    }
                ),
            )
            .at(source, span)
            .label("a TOML date-time (unquoted)")
            .help(help)
        })
        .collect()
}

/// A serde error (a wrong type, an unknown enum value, a missing key), located by its
/// span and explained from the model's schema, not from serde's wording.
fn serde_problem(
    source: &Arc<SourceFile>,
    doc: &toml_edit::Document<String>,
    e: &toml::de::Error,
) -> Problem {
    let span = e.span();
    let located = span.as_ref().and_then(|span| {
        let mut keys = Vec::new();
        find_span(doc.as_item(), span, &mut keys).map(|item| (keys, item))
    });
    if let Some((keys, item)) = located {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let schema = schema_at(&refs);
        let allowed = schema.map(enum_values).unwrap_or_default();
        if let Some(word) = item.as_str()
            && !allowed.is_empty()
            && !allowed.contains(&word)
        {
            let help = match did_you_mean(word, allowed.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("expected one of: {}", allowed.join(", ")),
            };
            return Problem::new("gear::unknown-value", format!("unknown value `{word}`"))
                .at(source, source.value_span(&refs))
                .label("unknown value")
                .help(help);
        }
        if let Some(table) = item.as_table_like() {
            let required: Vec<&str> = schema
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(field) = required.iter().find(|f| !table.contains_key(f)) {
                let table = if refs.is_empty() {
                    "the file".to_string()
                } else {
                    format!("[{}]", dotted(&refs))
                };
                return Problem::new(
                    "gear::missing-field",
                    format!("missing field `{field}` in {table}"),
                )
                .at(source, span.map(|r| (r.start..r.end).into()))
                .label("in this table")
                .help(format!("add `{field} = …` to this table"));
            }
        }
    }
    syntax_problem(
        source,
        e.message(),
        span.map(|r| miette::SourceSpan::from(r.start..r.end)),
    )
}

/// The item of the document spanning exactly `span`, and the keys leading to it.
fn find_span<'a>(
    item: &'a toml_edit::Item,
    span: &std::ops::Range<usize>,
    keys: &mut Vec<String>,
) -> Option<&'a toml_edit::Item> {
    if item.span().as_ref() == Some(span) {
        return Some(item);
    }
    let table = item.as_table_like()?;
    for (k, v) in table.iter() {
        keys.push(k.to_string());
        if let Some(found) = find_span(v, span, keys) {
            return Some(found);
        }
        keys.pop();
    }
    None
}

/// Invalid TOML, or a value of the wrong type: serde's message at the marked place.
fn syntax_problem(
    source: &Arc<SourceFile>,
    message: &str,
    span: Option<miette::SourceSpan>,
) -> Problem {
    Problem::new(
        "gear::toml",
        format!("invalid Gear.toml: {}", message.trim()),
    )
    .at(source, span)
    .label("here")
    .help("fix the TOML at the marked place; see docs/gear-toml.md for the format")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Layer, Problems> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(GEAR_TOML), text).unwrap();
        Layer::load(dir.path(), dir.path())
    }

    #[test]
    fn kinds() {
        let ext = load_str("[layer]\nname = \"a\"\nimage = \"x/y:1\"\n").unwrap();
        assert_eq!(ext.kind, LayerKind::External);
        let built = load_str("[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\n").unwrap();
        assert_eq!(built.kind, LayerKind::Layer);
        let gear =
            load_str("[gear]\nname = \"c\"\nfrom = \"b\"\nimage = \"x/c\"\nversion = \"1\"\n")
                .unwrap();
        assert_eq!(gear.kind, LayerKind::Gear);
    }

    /// The only problem of `text`.
    fn one(text: &str) -> Problem {
        let problems = load_str(text).unwrap_err().into_vec();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        problems.into_iter().next().unwrap()
    }

    #[test]
    fn unknown_field_suggests() {
        let p = one("[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\npakages = []\n");
        assert_eq!(p.code, "gear::unknown-field");
        assert_eq!(p.message, "unknown field `pakages`");
        assert_eq!(p.help.as_deref(), Some("did you mean `packages`?"));
        assert_eq!(p.location().unwrap(), "Gear.toml:5:1");
    }

    #[test]
    fn every_unknown_field_is_reported_with_the_layer_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(GEAR_TOML),
            "[gear]\nname = \"g\"\nimage = \"x/g\"\nlicence = \"MIT\"\nzzz = 1\n\n[gear.inputs.scan]\ntpye = {}\n\n[gear.config.n]\ntype = \"integer\"\ndefualt = 1\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let layer = Layer::read(dir.path(), dir.path(), &mut problems);
        assert_eq!(layer.map(|l| l.name).as_deref(), Some("g"));
        let found: Vec<(&str, Option<&str>)> = problems
            .iter()
            .map(|p| (p.message.as_str(), p.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("unknown field `licence`", Some("did you mean `license`?")),
                (
                    "unknown field `zzz`",
                    Some(
                        "remove it; [gear] accepts: name, image, from, digest, platform, distro, packages, pip, env, args, labels, user, workdir, run, copy, files, dockerfile, steps, dockerfile-file, entrypoint, cmd, cargo, version, label, description, author, maintainer, license, source, url, cite, command, capabilities, run-file, inputs, config, flywheel, custom"
                    )
                ),
                ("unknown field `tpye`", Some("did you mean `type`?")),
                ("unknown field `defualt`", Some("did you mean `default`?")),
            ]
        );
        let locations: Vec<String> = problems.iter().filter_map(Problem::location).collect();
        assert_eq!(
            locations,
            [
                "Gear.toml:4:1",
                "Gear.toml:5:1",
                "Gear.toml:8:1",
                "Gear.toml:12:1"
            ]
        );
    }

    #[test]
    fn unknown_top_level_table() {
        let p = one("[gaer]\nname = \"g\"\n");
        assert_eq!(p.message, "unknown field `gaer`");
        assert_eq!(p.help.as_deref(), Some("did you mean `gear`?"));
    }

    #[test]
    fn unknown_enum_value_suggests_from_the_model() {
        let p = one("[layer]\nname = \"a\"\nimage = \"x\"\ndistro = \"debain\"\n");
        assert_eq!(p.code, "gear::unknown-value");
        assert_eq!(p.message, "unknown value `debain`");
        assert_eq!(p.help.as_deref(), Some("did you mean `debian`?"));
        assert_eq!(p.location().unwrap(), "Gear.toml:4:10");
        let p = one("[gear]\nname = \"g\"\nimage = \"x\"\n[gear.inputs.k]\nbase = \"apikey\"\n");
        assert_eq!(p.help.as_deref(), Some("did you mean `api-key`?"));
    }

    #[test]
    fn missing_field_names_it() {
        let p = one("[layer]\nname = \"a\"\n");
        assert_eq!(p.code, "gear::missing-field");
        assert_eq!(p.message, "missing field `image` in [layer]");
        assert_eq!(p.help.as_deref(), Some("add `image = …` to this table"));
    }

    #[test]
    fn datetimes_in_steps_are_refused_where_they_land() {
        let problems = load_str(
            "[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\n\n[[layer.steps]]\nrun = \"x\"\n\n[[layer.steps]]\nenv = 1979-05-27T07:32:00Z\n",
        )
        .unwrap_err();
        let found: Vec<(&str, String)> = problems
            .iter()
            .map(|p| (p.message.as_str(), p.location().unwrap()))
            .collect();
        assert_eq!(
            found,
            [(
                "`layer.steps.1.env` is a TOML date-time, but a table belongs here",
                "Gear.toml:10:7".to_string()
            )]
        );
    }

    #[test]
    fn datetimes_are_refused_where_they_land() {
        let problems = load_str(
            "[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\nenv = 1979-05-27T07:32:00Z\nfiles = { \"/a\" = 1979-05-27 }\nrun = [07:32:00]\n",
        )
        .unwrap_err();
        let found: Vec<(&str, String, Option<&str>)> = problems
            .iter()
            .map(|p| (p.message.as_str(), p.location().unwrap(), p.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "`layer.env` is a TOML date-time, but a table belongs here",
                    "Gear.toml:5:7".to_string(),
                    Some("write a table here, e.g. `env = { NAME = \"value\" }`")
                ),
                (
                    "`layer.files.\"/a\"` is a TOML date-time, but a string belongs here",
                    "Gear.toml:6:18".to_string(),
                    Some("quote it to write a string: `\"1979-05-27\"`")
                ),
                (
                    "`layer.run.0` is a TOML date-time, but a string belongs here",
                    "Gear.toml:7:8".to_string(),
                    Some("quote it to write a string: `\"07:32:00\"`")
                ),
            ]
        );
    }

    #[test]
    fn syntax_error_located() {
        let p = one("[layer]\nname = \"b\nimage = 1\n");
        assert_eq!(p.code, "gear::toml");
        assert!(
            p.location().unwrap().starts_with("Gear.toml:2:"),
            "{:?}",
            p.location()
        );
    }
}
