//! `cargo xtask demo`: build the example monorepo with cargo-gear on the fixture images, then run a gear.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::engine::Lifetime;
use crate::{Result, Workspace, cmd, fixtures, host, prepare};

/// The external images of examples/monorepo and the local fixtures that replace them.
const SUBSTITUTES: [(&str, &str); 2] = [
    ("freesurfer/freesurfer:7.3.2", fixtures::FREESURFER),
    ("python:3.12-slim", fixtures::DEBIAN_PYTHON),
];

pub fn run(ws: &Workspace) -> Result {
    let engine = prepare(ws, Lifetime::Ephemeral)?.ok_or_else(|| {
        format!(
            "the demo needs a Docker engine\n{}",
            host::HOW_TO_GET_AN_ENGINE
        )
    })?;
    cmd::run(ws.cargo().args(["build", "--package", "cargo-gear"]))?;
    let monorepo = ws.root.join("examples/monorepo");
    let mut build = Command::new(ws.target.join("debug/cargo-gear"));
    build.args(["gear", "build"]);
    for (external, fixture) in SUBSTITUTES {
        build
            .arg("--substitute")
            .arg(format!("{external}={fixture}"));
    }
    build
        .current_dir(&monorepo)
        .env("DOCKER_HOST", &engine.host);
    eprintln!(
        "xtask: building every layer and gear of {}",
        monorepo.display()
    );
    cmd::run(&mut build).map_err(|e| format!("building the example gears failed: {e}"))?;

    let gear = python_gear(&monorepo)?;
    eprintln!(
        "xtask: running the gear `{}` (image {}:{}) on the python chain, with the image's own entrypoint",
        gear.name, gear.image, gear.version
    );
    cmd::run(
        engine
            .docker()
            .args(["run", "--rm", &format!("{}:{}", gear.image, gear.version)]),
    )?;
    eprintln!("xtask: demo done");
    Ok(())
}

/// The `[gear]` or `[layer]` table of a Gear.toml, as far as the demo needs it.
#[derive(Clone, Default)]
struct Entry {
    is_gear: bool,
    name: String,
    from: Option<String>,
    image: String,
    version: String,
    has_entrypoint: bool,
}

/// The first gear (by directory name) built on `python:3.12-slim`, preferring one with its own
/// entrypoint, which runs without a Flywheel job's inputs and config.
fn python_gear(monorepo: &Path) -> Result<Entry> {
    let mut entries = BTreeMap::new();
    for group in ["layers", "gears"] {
        let mut dirs: Vec<_> = fs::read_dir(monorepo.join(group))?
            .flatten()
            .map(|e| e.path())
            .collect();
        dirs.sort();
        for dir in dirs {
            if let Ok(text) = fs::read_to_string(dir.join("Gear.toml")) {
                let entry = parse(&text);
                entries.insert(entry.name.clone(), entry);
            }
        }
    }
    let on_python = |entry: &Entry| {
        let mut current = entry;
        for _ in 0..entries.len() {
            match current.from.as_ref().and_then(|from| entries.get(from)) {
                Some(parent) => current = parent,
                None => break,
            }
        }
        current.image == "python:3.12-slim"
    };
    let mut gears: Vec<&Entry> = entries
        .values()
        .filter(|e| e.is_gear && on_python(e))
        .collect();
    gears.sort_by_key(|e| !e.has_entrypoint);
    let gear = gears
        .first()
        .ok_or("no gear of examples/monorepo is built on python:3.12-slim")?;
    Ok((*gear).clone())
}

/// Reads the top-level keys of the `[gear]` or `[layer]` table, line by line.
fn parse(text: &str) -> Entry {
    let mut entry = Entry::default();
    let mut in_table = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[gear]" || line == "[layer]";
            entry.is_gear |= line == "[gear]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !in_table {
            continue;
        }
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim() {
            "name" => entry.name = value,
            "from" => entry.from = Some(value),
            "image" => entry.image = value,
            "version" => entry.version = value,
            "entrypoint" => entry.has_entrypoint = true,
            _ => {}
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_python_gear_with_an_entrypoint() {
        let dir = std::env::temp_dir().join(format!("xtask-demo-test-{}", std::process::id()));
        let files = [
            (
                "layers/python",
                "[layer]\nname = \"python\"\nimage = \"python:3.12-slim\"\n",
            ),
            (
                "layers/fs",
                "[layer]\nname = \"fs\"\nimage = \"freesurfer/freesurfer:7.3.2\"\n",
            ),
            (
                "layers/fw-python",
                "[layer]\nname = \"fw-python\"\nfrom = \"python\"\nimage = \"example/fw-python\"\n",
            ),
            (
                "gears/a-fs",
                "[gear]\nname = \"a-fs\"\nfrom = \"fs\"\nimage = \"example/a\"\nversion = \"1\"\nentrypoint = [\"/x\"]\n",
            ),
            (
                "gears/b-py",
                "[gear]\nname = \"b-py\"\nfrom = \"fw-python\"\nimage = \"example/b\"\nversion = \"0.1.0\"\n",
            ),
            (
                "gears/c-py",
                "# c\n[gear]\nname = \"c-py\"\nfrom = \"fw-python\"\nimage = \"example/c\"\nversion = \"2.0.0\"\nentrypoint = [\"/bin/sh\"]\n\n[gear.config.x]\nimage = \"no\"\n",
            ),
        ];
        for (sub, text) in files {
            fs::create_dir_all(dir.join(sub)).unwrap();
            fs::write(dir.join(sub).join("Gear.toml"), text).unwrap();
        }
        let gear = python_gear(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            (
                gear.name.as_str(),
                gear.image.as_str(),
                gear.version.as_str()
            ),
            ("c-py", "example/c", "2.0.0")
        );
    }
}
