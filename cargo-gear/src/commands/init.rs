//! `cargo gear init`: scaffold a gear directory in the standard Flywheel layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gear_spec::LayerGraph;
use gear_spec::layer::LayerKind;
use gear_spec::model::Distro;

use crate::cli::{GlobalArgs, InitArgs};
use crate::error::CliError;
use crate::request::Session;
use crate::workspace;

/// How the scaffolded run.py reads its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Flywheel's `flywheel-gear-toolkit` (`GearToolkitContext`), installed by an ancestor.
    Toolkit,
    /// Flywheel's newer `fw-gear` (`GearContext`), installed by an ancestor.
    FwGear,
    /// Neither: config.json read as plain JSON.
    Json,
}

impl Context {
    /// The context of a gear built on `parent`: whichever toolkit the parent or one of its
    /// ancestors installs with `pip`.
    fn of(graph: &LayerGraph, parent: usize) -> Context {
        let installed = |package: &str| {
            std::iter::once(parent)
                .chain(graph.ancestors(parent))
                .flat_map(|i| &graph.layer(i).decl.pip)
                .any(|req| requirement_name(req) == package)
        };
        if installed("flywheel-gear-toolkit") {
            Context::Toolkit
        } else if installed("fw-gear") {
            Context::FwGear
        } else {
            Context::Json
        }
    }
}

/// The normalized project name of a pip requirement: `Flywheel_Gear_Toolkit[sdk]>=0.6` →
/// `flywheel-gear-toolkit`.
fn requirement_name(req: &str) -> String {
    req.trim()
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .replace(['_', '.'], "-")
}

/// The scaffolded run.py: the job's config, input path and output directory, read through
/// the context, handed to `app.main.run`.
fn run_py(name: &str, context: Context) -> String {
    let (intro, imports, body) = match context {
        Context::Toolkit => (
            "through Flywheel's gear toolkit (flywheel-gear-toolkit)",
            "import os\nimport sys\n\nfrom flywheel_gear_toolkit import GearToolkitContext\n",
            r#"def main() -> int:
    with GearToolkitContext(gear_path=FLYWHEEL) as context:
        context.init_logging()
        return run(
            context.get_input_path("input-file"),
            output_dir=str(context.output_dir),
            debug=bool(context.config.get("debug")),
        )
"#,
        ),
        Context::FwGear => (
            "through Flywheel's gear context (fw-gear)",
            "import os\nimport sys\n\nfrom fw_gear.context import GearContext\n",
            r#"def main() -> int:
    with GearContext(
        gear_path=FLYWHEEL,
        manifest_path=os.path.join(FLYWHEEL, "manifest.json"),
        config_path=os.path.join(FLYWHEEL, "config.json"),
    ) as context:
        context.init_logging()
        return run(
            str(context.config.get_input_path("input-file")),
            output_dir=str(context.output_dir),
            debug=bool(context.config.opts.get("debug")),
        )
"#,
        ),
        Context::Json => (
            "as plain JSON",
            "import json\nimport os\nimport sys\n",
            r#"def main() -> int:
    with open(os.path.join(FLYWHEEL, "config.json"), encoding="utf-8") as f:
        job = json.load(f)
    return run(
        job["inputs"]["input-file"]["location"]["path"],
        output_dir=os.path.join(FLYWHEEL, "output"),
        debug=bool(job["config"].get("debug")),
    )
"#,
        ),
    };
    format!(
        r#"#!/usr/bin/env python3
"""Entry point of the {name} gear: reads /flywheel/v0/config.json {intro} and runs the app."""

{imports}
# Make app/ and utils/ importable however the script is started.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app.main import run  # noqa: E402

FLYWHEEL = os.environ.get("FLYWHEEL", "/flywheel/v0")


{body}

if __name__ == "__main__":
    sys.exit(main())
"#
    )
}

/// Files of a new gear: (path relative to the gear directory, contents, executable).
fn files(
    name: &str,
    from: &str,
    image: &Image,
    context: Context,
) -> Vec<(&'static str, String, bool)> {
    let module = name.replace('-', "_");
    let image = match image {
        Image::Namespaced(image) => format!("image = \"{image}\""),
        Image::Bare(image) => format!(
            "# No namespace: a bare name reads as a Docker Hub official image (`library/{name}`), where\n\
             # a push is refused and a pull gets someone else's image, and teams' gears collide.\n\
             # Prefix your lab's or team's, e.g. \"my-lab/{name}\" (`cargo gear init --namespace my-lab`);\n\
             # `cargo gear push` then puts it under the registry as REGISTRY/my-lab/{name}.\n\
             image = \"{image}\""
        ),
    };
    vec![
        (
            "Gear.toml",
            format!(
                r#"[gear]
name = "{name}"
from = "{from}"
{image}
version = "0.1.0"
label = "{name}"
description = "TODO: what {name} does, in one to four sentences."
author = "TODO: author"
license = "MIT"
command = "python3 run.py"

[gear.inputs.input-file]
base = "file"
description = "The file to process."

[gear.config.debug]
type = "boolean"
default = false
description = "Log debugging output."

[gear.custom.gear-builder]
category = "analysis"
"#
            ),
            false,
        ),
        ("run.py", run_py(name, context), true),
        (
            "app/__init__.py",
            format!("\"\"\"The {name} gear's application code.\"\"\"\n"),
            false,
        ),
        (
            "app/main.py",
            format!(
                r#""""What the {module} gear does."""

import logging
import os

log = logging.getLogger(__name__)


def run(input_path: str, output_dir: str, debug: bool = False) -> int:
    """Runs the gear on one input file; returns the process exit code."""
    if debug:
        log.setLevel(logging.DEBUG)
    log.debug("reading %s", input_path)
    with open(input_path, "rb") as f:
        size = len(f.read())
    with open(os.path.join(output_dir, "result.txt"), "w", encoding="utf-8") as out:
        out.write(f"{{os.path.basename(input_path)}}: {{size}} bytes\n")
    return 0
"#
            ),
            false,
        ),
        (
            "utils/__init__.py",
            "\"\"\"Helpers shared by the gear's code.\"\"\"\n".to_string(),
            false,
        ),
        (
            "docs/usage.md",
            format!("# Using {name}\n\nTODO: inputs, configuration and outputs.\n"),
            false,
        ),
        (
            "README.md",
            format!(
                "# {name}\n\nA Flywheel gear built with cargo-gear on `{from}`.\n\n```sh\ncargo gear build -p {name}\ncargo gear manifest -p {name}\n```\n"
            ),
            false,
        ),
        (
            ".gearignore",
            "__pycache__/\n*.pyc\ntests/\n".to_string(),
            false,
        ),
    ]
}

/// The scaffolded gear's image repository.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Image {
    /// `namespace/name`.
    Namespaced(String),
    /// Just the gear's name, with a comment saying why a namespace matters.
    Bare(String),
}

impl Image {
    /// `--namespace`, else the parent's namespace when it is built here, else the one most
    /// of the workspace's built layers use, else none.
    fn choose(
        name: &str,
        namespace: Option<&str>,
        graph: Option<&LayerGraph>,
        parent: Option<usize>,
    ) -> Image {
        let namespace_of = |i: usize| {
            let layer = graph?.layer(i);
            if layer.kind == LayerKind::External {
                return None;
            }
            layer
                .decl
                .image
                .rsplit_once('/')
                .map(|(ns, _)| ns.to_string())
        };
        let workspace = || {
            let graph = graph?;
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for i in 0..graph.layers().len() {
                if let Some(ns) = namespace_of(i) {
                    *counts.entry(ns).or_default() += 1;
                }
            }
            // The most used; ties to the first by name.
            counts
                .into_iter()
                .rev()
                .max_by_key(|(_, n)| *n)
                .map(|(ns, _)| ns)
        };
        let chosen = namespace
            .map(|ns| ns.trim_end_matches('/').to_string())
            .or_else(|| parent.and_then(namespace_of))
            .or_else(workspace);
        match chosen {
            Some(ns) => Image::Namespaced(format!("{ns}/{name}")),
            None => Image::Bare(name.to_string()),
        }
    }
}

/// Whether `--from` is an image reference rather than a layer name (names have no `:`, `/`
/// or `@`).
fn is_reference(from: &str) -> bool {
    from.contains([':', '/', '@'])
}

/// An external layer declaring `reference`: its name (the repository's last component, and
/// its tag when that name is taken), its Gear.toml, the distro guessed from the reference.
fn external_layer(reference: &str, taken: impl Fn(&str) -> bool) -> (String, String) {
    let name = gear_spec::import::external_layer_name(reference, taken);
    let distro = gear_spec::import::distro_of_reference(reference).unwrap_or(Distro::Debian);
    let toml = format!(
        "[layer]\nname = \"{name}\"\nimage = \"{reference}\"\ndistro = \"{}\"  # debian (apt) | centos (yum) | alpine (apk): guessed from the reference\n",
        distro.as_str()
    );
    (name, toml)
}

/// Creates the gear directory (and, for `--from IMAGE`, the external layer), refusing to
/// overwrite anything.
pub fn run(global: &GlobalArgs, cwd: &Path, args: &InitArgs) -> Result<(), CliError> {
    let name = args.name.as_str();
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(CliError::usage(
            format!("`{name}` is not a valid gear name"),
            "use lowercase letters, digits and dashes (at most 100 characters), e.g. `my-gear`",
        ));
    }
    let ws = workspace::discover(cwd, global.manifest_path.as_deref(), global.root.as_deref()).ok();
    let dir: PathBuf = match (&args.path, &ws) {
        (Some(p), _) => cwd.join(p),
        (None, Some(ws)) if ws.root.join("gears").is_dir() => ws.root.join("gears").join(name),
        _ => cwd.join(name),
    };
    if dir.exists() {
        return Err(CliError::usage(
            format!("{} already exists", dir.display()),
            "choose another name or pass --path DIR",
        ));
    }
    let session = ws.as_ref().and_then(|_| Session::load(global, cwd).ok());
    let graph = session.as_ref().map(|s| &s.graph);
    let find = |layer: &str| graph.and_then(|g| g.find(layer));
    // An image reference: the external layer declaring it, or a new one.
    let mut new_external = None;
    let from = if find(&args.from).is_none() && is_reference(&args.from) {
        let declared = graph.and_then(|g| {
            g.layers()
                .iter()
                .find(|l| l.kind == LayerKind::External && l.decl.image == args.from)
        });
        match declared {
            Some(layer) => layer.name.clone(),
            None => {
                let (layer, toml) = external_layer(&args.from, |n| find(n).is_some());
                let layers = ws
                    .as_ref()
                    .map(|w| w.root.join("layers"))
                    .filter(|d| d.is_dir());
                let parent_dir =
                    layers.unwrap_or_else(|| dir.parent().unwrap_or(cwd).to_path_buf());
                let layer_dir = parent_dir.join(&layer);
                if layer_dir.exists() {
                    return Err(CliError::usage(
                        format!("{} already exists", layer_dir.display()),
                        format!(
                            "declare `{}` there yourself and pass --from with its layer name",
                            args.from
                        ),
                    ));
                }
                new_external = Some((layer_dir, toml));
                layer
            }
        }
    } else {
        args.from.clone()
    };
    let parent = find(&from);
    let image = Image::choose(name, args.namespace.as_deref(), graph, parent);
    let context = match (graph, parent) {
        (Some(g), Some(p)) => Context::of(g, p),
        _ => Context::Json,
    };
    let out = crate::output::Output::new(global.color, global.quiet);
    if let Some((layer_dir, toml)) = &new_external {
        write(&layer_dir.join("Gear.toml"), toml, false)?;
        out.status(
            "Created",
            format!(
                "external layer `{from}` ({}) in {}",
                args.from,
                layer_dir.display()
            ),
        );
    }
    for (rel, contents, executable) in files(name, &from, &image, context) {
        write(&dir.join(rel), &contents, executable)?;
    }
    out.status("Created", format!("gear `{name}` in {}", dir.display()));
    if let Some(ws) = &ws {
        ignore_target(&ws.root, &out)?;
    }
    // The new gear is part of the workspace now: write its manifest.json, which also
    // proves that it validates.
    let session = Session::load(global, cwd).ok();
    if let Some(session) = session.filter(|s| s.graph.find(&from).is_some()) {
        let selection = crate::cli::Selection {
            packages: vec![name.to_string()],
            workspace: false,
        };
        return crate::commands::manifest::run(&session, &selection, false);
    }
    if new_external.is_some() {
        out.warn(format!(
            "the workspace does not find the new directories: list them in [workspace.metadata.gear] members (a Cargo workspace) or move them under the --root tree, then run `cargo gear manifest -p {name}`"
        ));
        return Ok(());
    }
    let near = graph
        .and_then(|g| g.suggest(&from))
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    out.warn(format!(
        "no layer named `{from}` in this workspace yet{near}. If it is an image to pull, declare it \
         in layers/{from}/Gear.toml (or pass `--from IMAGE:TAG` to have init do it):\n\n\
         [layer]\n\
         name = \"{from}\"\n\
         image = \"REPOSITORY:TAG\"  # the image to pull, e.g. python:3.12-slim\n\
         distro = \"debian\"  # debian (apt) | centos (yum) | alpine (apk)\n\n\
         then run `cargo gear manifest -p {name}`"
    ));
    Ok(())
}

/// Writes a new file (and its directory).
fn write(path: &Path, contents: &str, executable: bool) -> Result<(), CliError> {
    let parent = path.parent().expect("file paths have a parent");
    std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
    std::fs::write(path, contents).map_err(|e| CliError::io("write", path, e))?;
    if executable {
        crate::local_run::set_mode(path, 0o755)?;
    }
    Ok(())
}

/// Keeps `target/` (build records, run directories with inputs and API keys) out of git.
fn ignore_target(root: &Path, out: &crate::output::Output) -> Result<(), CliError> {
    let path = root.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(CliError::io("read", &path, e)),
    };
    if text
        .lines()
        .map(str::trim)
        .any(|l| matches!(l, "target" | "target/" | "/target" | "/target/"))
    {
        return Ok(());
    }
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    std::fs::write(&path, format!("{text}{sep}/target/\n"))
        .map_err(|e| CliError::io("write", &path, e))?;
    out.status(
        "Updated",
        format!(
            "{}: ignoring /target/ (build records and run directories stay out of git)",
            path.display()
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_are_normalized() {
        for (req, name) in [
            ("flywheel-gear-toolkit", "flywheel-gear-toolkit"),
            ("Flywheel_Gear_Toolkit[sdk]>=0.6", "flywheel-gear-toolkit"),
            ("fw-gear==0.1.3", "fw-gear"),
            (" fw.gear ; python_version>'3.8'", "fw-gear"),
            ("flywheel-sdk", "flywheel-sdk"),
        ] {
            assert_eq!(requirement_name(req), name, "{req}");
        }
    }

    #[test]
    fn external_layers_are_named_after_the_image() {
        let name =
            |reference: &str, taken: &[&str]| external_layer(reference, |n| taken.contains(&n)).0;
        assert_eq!(name("python:3.12-slim", &[]), "python");
        assert_eq!(name("python:3.12-slim", &["python"]), "python-3-12-slim");
        assert_eq!(name("ghcr.io/acme/My_Tools:2", &[]), "my-tools");
        assert_eq!(name("localhost:5000/base", &[]), "base");
        assert_eq!(name("debian@sha256:0123", &[]), "debian");
        let (_, toml) = external_layer("rockylinux:9", |_| false);
        assert!(toml.contains("distro = \"centos\""), "{toml}");
    }
}
