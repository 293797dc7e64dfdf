//! `cargo xtask demo`: build the example monorepo with cargo-gear on the fixture images,
//! then run a Python gear and the Rust gear on real inputs as Flywheel would.
//!
//! The demo works on a copy under `target/demo/monorepo` (a build writes each gear's
//! manifest.json with the base image's real environment; the committed examples stay as
//! they are), keeping the copy's `target/` so a second demo finds everything fresh.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::engine::Lifetime;
use crate::network::Needs;
use crate::{Result, Workspace, cmd, fixtures, host, prepare};

/// The external images of examples/monorepo and the local fixtures that replace them.
const SUBSTITUTES: [(&str, &str); 2] = [
    ("freesurfer/freesurfer:7.3.2", fixtures::FREESURFER),
    ("python:3.12-slim", fixtures::DEBIAN_PYTHON),
];

/// The gears the demo runs: each with its input and the output file it shows.
const GEARS: [(&str, &str, &str); 2] = [
    (
        "csv-summary",
        "table=gears/csv-summary/tests/data/example.csv",
        "summary.md",
    ),
    (
        "nifti-stats",
        "image=crates/nifti-stats/tests/data/tiny.nii",
        "nifti-stats.json",
    ),
];

pub fn run(ws: &Workspace) -> Result {
    // Compile first: the engine runs only while it is used, and cannot be knocked over meanwhile.
    cmd::run(ws.cargo().args(["build", "--package", "cargo-gear"]))?;
    let engine = prepare(
        ws,
        Lifetime::Ephemeral,
        &Needs::monorepo("cargo xtask demo"),
    )?
    .ok_or_else(|| {
        format!(
            "the demo needs a Docker engine\n{}",
            host::HOW_TO_GET_AN_ENGINE
        )
    })?;
    let monorepo = ws.target.join("demo/monorepo");
    refresh_copy(&ws.root.join("examples/monorepo"), &monorepo)?;

    let cargo_gear = |args: &[&str]| {
        let mut c = Command::new(ws.target.join("debug/cargo-gear"));
        engine.export(&mut c);
        c.arg("gear").args(args).current_dir(&monorepo);
        for (external, fixture) in SUBSTITUTES {
            c.arg("--substitute").arg(format!("{external}={fixture}"));
        }
        c
    };
    eprintln!(
        "xtask: the example monorepo's layers and gears, in {}",
        monorepo.display()
    );
    cmd::run(&mut cargo_gear(&["graph"]))?;
    eprintln!("xtask: building every stale layer and gear");
    cmd::run(&mut cargo_gear(&["build"]))
        .map_err(|e| format!("building the example gears failed: {e}"))?;
    let runs = monorepo.join("target/gear/runs");
    for (gear, input, output) in GEARS {
        eprintln!("xtask: running the gear `{gear}` on {input}, as Flywheel would");
        cmd::run(&mut cargo_gear(&["run", "-p", gear, "--input", input]))
            .map_err(|e| format!("running {gear} failed: {e}"))?;
        let mut latest: Vec<_> = fs::read_dir(&runs)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{gear}-")))
            })
            .collect();
        latest.sort();
        if let Some(run) = latest.last() {
            let path = run.join("output").join(output);
            let text = fs::read_to_string(&path)?;
            eprintln!("xtask: {}:\n{text}", path.display());
        }
    }
    eprintln!("xtask: demo done");
    Ok(())
}

/// Makes `to` a copy of `from`'s files, leaving `to/target/` alone.
fn refresh_copy(from: &Path, to: &Path) -> Result {
    if to.exists() {
        for entry in fs::read_dir(to)? {
            let entry = entry?;
            if entry.file_name() != "target" {
                let p = entry.path();
                if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(p)?;
                } else {
                    fs::remove_file(p)?;
                }
            }
        }
    }
    copy_tree(from, to)
}

fn copy_tree(from: &Path, to: &Path) -> Result {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_keeps_target_and_replaces_the_rest() {
        let t = std::env::temp_dir().join(format!("xtask-demo-test-{}", std::process::id()));
        let (from, to) = (t.join("from"), t.join("to"));
        fs::create_dir_all(from.join("gears/a")).unwrap();
        fs::write(from.join("gears/a/Gear.toml"), "new").unwrap();
        fs::create_dir_all(to.join("target/gear")).unwrap();
        fs::write(to.join("target/gear/keep"), "cache").unwrap();
        fs::create_dir_all(to.join("stale")).unwrap();
        refresh_copy(&from, &to).unwrap();
        assert_eq!(
            fs::read_to_string(to.join("gears/a/Gear.toml")).unwrap(),
            "new"
        );
        assert!(to.join("target/gear/keep").exists());
        assert!(!to.join("stale").exists());
        fs::remove_dir_all(&t).unwrap();
    }
}
