//! `cargo gear init`: scaffold a gear directory in the standard Flywheel layout.

use std::path::{Path, PathBuf};

use crate::cli::GlobalArgs;
use crate::error::CliError;
use crate::request::Session;
use crate::workspace;

/// Files of a new gear: (path relative to the gear directory, contents, executable).
fn files(name: &str, from: &str, image: &str) -> Vec<(&'static str, String, bool)> {
    let module = name.replace('-', "_");
    vec![
        (
            "Gear.toml",
            format!(
                r#"[gear]
name = "{name}"
from = "{from}"
image = "{image}"
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
        (
            "run.py",
            format!(
                r#"#!/usr/bin/env python3
"""Entry point of the {name} gear: reads /flywheel/v0/config.json and runs the app."""

import json
import os
import sys

from app.main import run

FLYWHEEL = os.environ.get("FLYWHEEL", "/flywheel/v0")


def main() -> int:
    with open(os.path.join(FLYWHEEL, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    return run(config, output_dir=os.path.join(FLYWHEEL, "output"))


if __name__ == "__main__":
    sys.exit(main())
"#
            ),
            true,
        ),
        (
            "app/__init__.py",
            format!("\"\"\"The {name} gear's application code.\"\"\"\n"),
            false,
        ),
        (
            "app/main.py",
            format!(
                r#""""What the {module} gear does."""

import os

from utils.io import input_path


def run(config: dict, output_dir: str) -> int:
    """Runs the gear; returns the process exit code."""
    path = input_path(config, "input-file")
    with open(path, "rb") as f:
        size = len(f.read())
    with open(os.path.join(output_dir, "result.txt"), "w", encoding="utf-8") as out:
        out.write(f"{{os.path.basename(path)}}: {{size}} bytes\n")
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
            "utils/io.py",
            r#""""Reading Flywheel's config.json."""


def input_path(config: dict, name: str) -> str:
    """The path of a file input inside the container."""
    return config["inputs"][name]["location"]["path"]
"#
            .to_string(),
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

/// Creates the gear directory, refusing to overwrite anything.
pub fn run(
    global: &GlobalArgs,
    cwd: &Path,
    name: &str,
    from: &str,
    path: Option<&Path>,
) -> Result<(), CliError> {
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
    let dir: PathBuf = match (path, &ws) {
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
    // The image repository follows the parent's, e.g. example/fw-python → example/NAME.
    let parent_image = ws
        .as_ref()
        .and_then(|_| Session::load(global, cwd).ok())
        .and_then(|s| {
            let i = s.graph.find(from)?;
            Some(s.graph.layer(i).decl.image.clone())
        });
    let image = match parent_image.as_deref().and_then(|img| img.rsplit_once('/')) {
        Some((repo, _)) => format!("{repo}/{name}"),
        None => name.to_string(),
    };
    for (rel, contents, executable) in files(name, from, &image) {
        let path = dir.join(rel);
        let parent = path.parent().expect("file paths have a parent");
        std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
        std::fs::write(&path, contents).map_err(|e| CliError::io("write", &path, e))?;
        if executable {
            crate::job::set_mode(&path, 0o755)?;
        }
    }
    let out = crate::output::Output::new(global.color, global.quiet);
    out.status("Created", format!("gear `{name}` in {}", dir.display()));
    if let Some(ws) = &ws {
        ignore_target(&ws.root, &out)?;
    }
    if parent_image.is_none() {
        out.warn(format!("no layer named `{from}` was found in this workspace yet: declare it, then run `cargo gear manifest -p {name}`"));
        return Ok(());
    }
    // The new gear is part of the workspace now: write its manifest.json, which also
    // proves that it validates.
    let session = Session::load(global, &dir)?;
    let selection = crate::cli::Selection {
        packages: vec![name.to_string()],
        workspace: false,
    };
    crate::commands::manifest::run(&session, &selection, false)
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
