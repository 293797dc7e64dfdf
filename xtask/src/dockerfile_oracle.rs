//! `cargo xtask dockerfile-oracle`: BuildKit's own Dockerfile parser (the Go parser, compiled
//! into PyPI's `dockerfile` package by asottile) in a venv under `target/engine/dockerfile-oracle`,
//! run over every Dockerfile fixture of gear-spec to write the golden file beside it
//! (`Dockerfile` → `Dockerfile.buildkit.json`, `x.Dockerfile` → `x.Dockerfile.buildkit.json`).
//! `gear-spec/tests/dockerfile_oracle.rs` compares gear-spec's splitter with them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pyvenv::Venv;
use crate::{Result, Workspace, cmd};

const PACKAGE: &str = "dockerfile";
const VERSION: &str = "3.4.0";

/// Where the fixtures are, relative to the workspace root.
const FIXTURES: &str = "gear-spec/tests/fixtures";

/// Reads each file named on the command line with BuildKit's parser and writes its
/// instructions (or its error) as JSON to `<file>.buildkit.json`.
const SCRIPT: &str = r#"
import json, sys
import dockerfile

for path in sys.argv[1:]:
    try:
        commands = [
            {
                "cmd": c.cmd,
                "original": c.original,
                "start_line": c.start_line,
                "end_line": c.end_line,
                "flags": list(c.flags),
                "json": c.json,
                "value": list(c.value),
                "heredocs": [{"name": h.name, "content": h.content} for h in c.heredocs],
            }
            for c in dockerfile.parse_file(path)
        ]
        out = {"instructions": commands}
    except dockerfile.GoParseError as e:
        out = {"error": str(e)}
    with open(path + ".buildkit.json", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
"#;

pub fn run(ws: &Workspace) -> Result {
    let python = Venv {
        name: "dockerfile-oracle",
        requirement: &format!("{PACKAGE}=={VERSION}"),
        check: &format!(
            "import importlib.metadata as m, dockerfile; assert m.version('{PACKAGE}') == '{VERSION}'"
        ),
    }
    .ensure(ws)?;
    let mut inputs = Vec::new();
    dockerfiles(&ws.root.join(FIXTURES), &mut inputs)?;
    inputs.sort();
    cmd::run(
        Command::new(python)
            .args(["-c", SCRIPT])
            .args(&inputs)
            .current_dir(&ws.root),
    )?;
    eprintln!(
        "xtask: wrote {} BuildKit parses ({PACKAGE} {VERSION}) under {FIXTURES}",
        inputs.len()
    );
    Ok(())
}

/// Every `Dockerfile` and `*.Dockerfile` under `dir`.
fn dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) -> Result {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            dockerfiles(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "Dockerfile" || n.ends_with(".Dockerfile"))
        {
            out.push(path);
        }
    }
    Ok(())
}
