//! `cargo gear clean`: removes cargo-gear's files under `target/gear/` (build records, logs,
//! the hash and discovery caches, written Dockerfiles and configs, run directories), or with
//! `--runs` only the run directories. Images stay: removing them is `prune`'s job.
//!
//! Needs only the workspace's location, not its Gear.toml files, so it works on a workspace
//! whose layers do not load. It waits for a build of the workspace to finish first.

use std::path::{Path, PathBuf};

use crate::cli::{CleanArgs, GlobalArgs};
use crate::error::CliError;
use crate::local_run::{human_size, walk};
use crate::lock::BuildLock;
use crate::output::Output;
use crate::workspace;

/// The lock file itself stays: a build waiting on it keeps its lock.
const LOCK_FILE: &str = "build.lock";

/// Removes the files and says how many and how large, like `cargo clean`.
pub fn run(global: &GlobalArgs, cwd: &Path, args: &CleanArgs) -> Result<(), CliError> {
    let out = Output::new(global.color, global.quiet);
    // Discovery's cache is among what is removed: it must not be written again.
    let ws = workspace::discover_with(
        cwd,
        global.manifest_path.as_deref(),
        global.root.as_deref(),
        workspace::Cached::No,
    )?;
    let gear_dir = ws.gear_dir();
    let doomed: Vec<PathBuf> = if args.runs {
        vec![gear_dir.join("runs")]
    } else {
        match std::fs::read_dir(&gear_dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.path()))
                .filter(|p| !p.as_ref().is_ok_and(|p| p.ends_with(LOCK_FILE)))
                .collect::<Result<_, _>>()
                .map_err(|e| CliError::io("read", &gear_dir, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(CliError::io("read", &gear_dir, e)),
        }
    };
    let doomed: Vec<PathBuf> = doomed.into_iter().filter(|p| p.exists()).collect();
    if doomed.is_empty() {
        out.status(
            "Removed",
            format!("nothing: {} is clean", what(args, &gear_dir)),
        );
        return Ok(());
    }
    let _lock = BuildLock::acquire(&gear_dir, &out)?;
    let mut files = Vec::new();
    for path in &doomed {
        if path.is_dir() {
            walk(path, &mut files);
        } else {
            files.push((path.clone(), path.metadata().map_or(0, |m| m.len())));
        }
    }
    for path in &doomed {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.map_err(|e| CliError::io("remove", path, e))?;
    }
    let bytes = files.iter().map(|(_, size)| size).sum();
    out.status(
        "Removed",
        format!(
            "{} files, {} total ({})",
            files.len(),
            human_size(bytes),
            what(args, &gear_dir)
        ),
    );
    Ok(())
}

/// What the command cleans, for its message.
fn what(args: &CleanArgs, gear_dir: &Path) -> String {
    if args.runs {
        format!("run directories in {}", gear_dir.join("runs").display())
    } else {
        gear_dir.display().to_string()
    }
}
