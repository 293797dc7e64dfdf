//! Reading one `Gear.toml` into a [`Layer`]: TOML syntax, unknown fields, the table kind.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::diagnostic::{Problem, SourceFile, did_you_mean, display_path};
use crate::model::{Decl, Distro, GearFile};

/// File name of a layer declaration.
pub const GEAR_TOML: &str = "Gear.toml";

/// What a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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
    /// The declaration.
    pub decl: Decl,
    /// The Gear.toml text, for diagnostics.
    pub source: Arc<SourceFile>,
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

    /// Reads and parses `dir/Gear.toml`; `root` is used to show paths.
    pub fn load(dir: &Path, root: &Path) -> Result<Layer, Problem> {
        let path = dir.join(GEAR_TOML);
        let display = display_path(&path, root);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Problem::new("gear::read", format!("cannot read {display}: {e}"))
                .help("check that the file exists and is readable UTF-8")
        })?;
        Layer::parse(dir, root, SourceFile::new(path, display, text))
    }

    /// Parses a Gear.toml's text, read from `dir/Gear.toml` ([`Layer::load`] after reading
    /// the file; the fuzz entry point [`crate::fuzz`] with text it made).
    pub fn parse(dir: &Path, root: &Path, source: Arc<SourceFile>) -> Result<Layer, Problem> {
        let file: GearFile =
            toml::from_str(source.text()).map_err(|e| toml_problem(&source, &e))?;
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
                return Err(Problem::new(
                    "gear::two-tables",
                    "a Gear.toml declares one layer, but this one has both [layer] and [gear]",
                )
                .at(&source, source.key_span(&["gear"]))
                .label("second declaration")
                .help("move one of them into its own directory with its own Gear.toml"));
            }
            (None, None) => {
                return Err(Problem::new("gear::empty", "this Gear.toml declares nothing")
                    .at(&source, Some((0..0).into()))
                    .help("add a [layer] table (an image or a built layer) or a [gear] table (a Flywheel gear)"));
            }
        };
        Ok(Layer {
            name: decl.name.clone(),
            kind,
            dir: dir.to_path_buf(),
            rel_dir: display_path(dir, root),
            decl,
            source,
        })
    }
}

static UNKNOWN_FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"unknown field `([^`]*)`, expected (?:one of )?(.*)").unwrap());
static UNKNOWN_VARIANT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"unknown variant `([^`]*)`, expected (?:one of )?(.*)").unwrap());
static BACKTICKED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([^`]*)`").unwrap());

/// Turns a TOML or serde error into a problem, with "did you mean" for unknown names.
fn toml_problem(source: &Arc<SourceFile>, e: &toml::de::Error) -> Problem {
    let span = e.span().map(|r| miette::SourceSpan::from(r.start..r.end));
    let message = e.message().trim().to_string();
    for (re, what, code) in [
        (&*UNKNOWN_FIELD, "field", "gear::unknown-field"),
        (&*UNKNOWN_VARIANT, "value", "gear::unknown-value"),
    ] {
        if let Some(caps) = re.captures(&message) {
            let word = &caps[1];
            let expected: Vec<&str> = BACKTICKED
                .captures_iter(caps.get(2).unwrap().as_str())
                .map(|c| c.get(1).unwrap().as_str())
                .collect();
            let help = match did_you_mean(word, expected.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("expected one of: {}", expected.join(", ")),
            };
            return Problem::new(code, format!("unknown {what} `{word}`"))
                .at(source, span)
                .label(format!("unknown {what}"))
                .help(help);
        }
    }
    if message.starts_with("missing field") {
        let field = BACKTICKED
            .captures(&message)
            .map(|c| c[1].to_string())
            .unwrap_or_default();
        return Problem::new("gear::missing-field", message.clone())
            .at(source, span)
            .label("in this table")
            .help(format!("add `{field} = …` to this table"));
    }
    Problem::new("gear::toml", format!("invalid Gear.toml: {message}"))
        .at(source, span)
        .label("here")
        .help("fix the TOML at the marked place; see docs/gear-toml.md for the format")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Layer, Problem> {
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

    #[test]
    fn unknown_field_suggests() {
        let p = load_str("[layer]\nname = \"b\"\nfrom = \"a\"\nimage = \"x/b\"\npakages = []\n")
            .unwrap_err();
        assert_eq!(p.code, "gear::unknown-field");
        assert_eq!(p.message, "unknown field `pakages`");
        assert_eq!(p.help.as_deref(), Some("did you mean `packages`?"));
        assert_eq!(p.location().unwrap(), "Gear.toml:5:1");
    }

    #[test]
    fn syntax_error_located() {
        let p = load_str("[layer]\nname = \"b\nimage = 1\n").unwrap_err();
        assert_eq!(p.code, "gear::toml");
        assert!(
            p.location().unwrap().starts_with("Gear.toml:2:"),
            "{:?}",
            p.location()
        );
    }
}
