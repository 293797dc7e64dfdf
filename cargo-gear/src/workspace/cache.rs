//! The discovery cache, `target/gear/discovery.json`: what `cargo metadata` said about a
//! Cargo workspace, reused while nothing its answer depends on changed, so that a command
//! does not start cargo every time (20–30 ms: most of a no-op build of a small workspace).
//!
//! Only cargo's answer is cached (workspace root, target directory,
//! `[workspace.metadata.gear]`, the packages' manifests). The `members` globs of
//! `[workspace.metadata.gear]` are expanded and every package directory is looked at for a
//! Gear.toml on every run, so gears added, removed or renamed and a Gear.toml put into a
//! package are seen without asking cargo. The answer is reused while all of these are as
//! they were when it was cached:
//!
//! - the directory the command runs in, the manifest it starts from, and the environment
//!   variables cargo takes its home and target directory from;
//! - the stat of the workspace's manifests (the root's and every package's), of Cargo.lock,
//!   of a `Cargo.toml` in any directory above the root (a workspace being created around
//!   it), and of every cargo configuration file that could apply (`.cargo/config.toml` and
//!   `.cargo/config` in the working directory and each one above it, and in `CARGO_HOME`);
//! - what the globs of the root manifest's `[workspace] members` match (packages added,
//!   removed or renamed under `crates/*`).
//!
//! A stat recorded within [`RACY_WINDOW`](gear_spec::stat::RACY_WINDOW) of the file's
//! last change is not trusted (as in the hash cache). The cache is written only where the
//! command starts from the root manifest and the target directory is the root's `target/`,
//! the directory it is then looked for in. A missing, unreadable or outdated cache is
//! ignored: cargo is asked, as without one.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gear_spec::stat::{FileStat, ns_since_epoch};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The file, under `target/gear/`.
const FILE: &str = "discovery.json";
/// Bumped whenever what is cached or the key changes.
const VERSION: u32 = 1;
/// Environment variables that change where cargo finds its configuration or puts `target/`.
const ENV: [&str; 4] = [
    "CARGO",
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

/// What discovery uses of `cargo metadata`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Metadata {
    pub(super) root: PathBuf,
    pub(super) target_dir: PathBuf,
    /// `[workspace.metadata.gear]` as cargo read it.
    pub(super) gear: Option<serde_json::Value>,
    /// Every workspace package's `Cargo.toml`.
    pub(super) manifests: Vec<PathBuf>,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answered {
    Cache,
    Cargo,
}

/// Everything the cached answer depends on.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Key {
    cwd: PathBuf,
    manifest: PathBuf,
    env: Vec<(String, Option<String>)>,
    /// Each watched file's stat, `None` where there is no such file.
    files: Vec<(PathBuf, Option<FileStat>)>,
    /// What the root manifest's `[workspace] members` globs match, sorted.
    members: Vec<PathBuf>,
}

impl Key {
    /// Whether its stats, recorded at `recorded_ns`, can be trusted (none racy).
    fn trusted_at(&self, recorded_ns: i64) -> bool {
        !self
            .files
            .iter()
            .flat_map(|(_, stat)| stat)
            .any(|stat| stat.is_racy(recorded_ns))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// When the key's stats were recorded, in nanoseconds since the Unix epoch.
    written_ns: i64,
    key: Key,
    metadata: Metadata,
}

/// cargo's answer for the workspace of `manifest`, from the cache when nothing it depends on
/// changed, else from `ask_cargo` (and then cached).
pub(super) fn metadata(
    cwd: &Path,
    manifest: &Path,
    ask_cargo: impl FnOnce() -> Result<Metadata, CliError>,
) -> Result<(Metadata, Answered), CliError> {
    let Some(dir) = manifest.parent() else {
        return Ok((ask_cargo()?, Answered::Cargo));
    };
    let path = dir.join("target").join("gear").join(FILE);
    // Only a workspace root's manifest has members to expand; before cargo runs, so that a
    // package added meanwhile is missing from the key rather than from the answer.
    let members = member_globs(manifest);
    if let Some(members) = &members
        && let Some(stored) = load(&path)
        && stored.key.trusted_at(stored.written_ns)
        && stored.key == key(cwd, manifest, &stored.metadata, members.clone())
    {
        return Ok((stored.metadata, Answered::Cache));
    }
    let metadata = ask_cargo()?;
    if let Some(members) = members
        && metadata.root == dir
        && metadata.target_dir == dir.join("target")
    {
        let written_ns = ns_since_epoch(SystemTime::now());
        let key = key(cwd, manifest, &metadata, members);
        // A key that would never be trusted is not worth writing.
        if key.trusted_at(written_ns) {
            let stored = Stored {
                version: VERSION,
                written_ns,
                key,
                metadata: metadata.clone(),
            };
            // The cache only saves time: failing to write it fails nothing.
            let _ = save(&path, &stored);
        }
    }
    Ok((metadata, Answered::Cargo))
}

fn load(path: &Path) -> Option<Stored> {
    let stored: Stored = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    (stored.version == VERSION).then_some(stored)
}

fn save(path: &Path, stored: &Stored) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = serde_json::to_vec(stored)
        .map_err(std::io::Error::other)
        .and_then(|bytes| fs::write(&tmp, bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// What the globs of `manifest`'s `[workspace] members` match; `None` when it is not a
/// workspace root (no `[workspace]` table) or cannot be read.
fn member_globs(manifest: &Path) -> Option<Vec<PathBuf>> {
    let table: toml::Table = fs::read_to_string(manifest).ok()?.parse().ok()?;
    let workspace = table.get("workspace")?.as_table()?;
    let root = manifest.parent()?;
    let mut matched = Vec::new();
    let patterns = workspace.get("members").and_then(toml::Value::as_array);
    for pattern in patterns
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_str)
    {
        if pattern.contains(['*', '?', '[']) {
            let full = root.join(pattern);
            matched.extend(glob::glob(&full.to_string_lossy()).ok()?.flatten());
        }
    }
    matched.sort();
    Some(matched)
}

fn key(cwd: &Path, manifest: &Path, metadata: &Metadata, members: Vec<PathBuf>) -> Key {
    let env: Vec<(String, Option<String>)> = ENV
        .iter()
        .map(|name| (name.to_string(), std::env::var(name).ok()))
        .collect();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let mut watched: Vec<PathBuf> = vec![metadata.root.join("Cargo.lock")];
    watched.extend(metadata.manifests.iter().cloned());
    watched.push(metadata.root.join("Cargo.toml"));
    watched.extend(
        metadata
            .root
            .ancestors()
            .skip(1)
            .map(|dir| dir.join("Cargo.toml")),
    );
    for dir in cwd.ancestors().chain(cargo_home.as_deref()) {
        let dot_cargo = if cargo_home.as_deref() == Some(dir) {
            dir.to_path_buf()
        } else {
            dir.join(".cargo")
        };
        watched.push(dot_cargo.join("config.toml"));
        watched.push(dot_cargo.join("config"));
    }
    watched.sort();
    watched.dedup();
    let files = watched
        .into_iter()
        .map(|path| {
            let stat = fs::metadata(&path).ok().map(|m| FileStat::of(&m));
            (path, stat)
        })
        .collect();
    Key {
        cwd: cwd.to_path_buf(),
        manifest: manifest.to_path_buf(),
        env,
        files,
        members,
    }
}
