//! Finding the workspace: a Cargo workspace (via cargo_metadata) or a scanned directory tree.
//!
//! In a Cargo workspace, Gear.toml files are found in the directories matched by
//! `[workspace.metadata.gear] members` and in the directory of every workspace package
//! that has one. Outside one, the `--root` tree (default: the enclosing git repository,
//! else the current directory) is scanned. What `cargo metadata` answers is cached
//! (see [`cache`]).

mod cache;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use crate::error::CliError;
use gear_spec::diagnostic::did_you_mean;
use gear_spec::layer::GEAR_TOML;
use gear_spec::platform::Platform;

/// Where the Gear.toml files are and the settings around them.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace root; paths in messages are shown relative to it.
    pub root: PathBuf,
    /// Directories holding a Gear.toml, sorted.
    pub layer_dirs: Vec<PathBuf>,
    /// `[workspace.metadata.gear.substitute]`.
    pub substitutions: BTreeMap<String, String>,
    /// `[workspace.metadata.gear] registry`: the team registry, `HOST[:PORT]/PREFIX`.
    pub registry: Option<String>,
    /// `[workspace.metadata.gear] cache`: builds look stale layers up in the registry.
    pub cache: bool,
    /// `[workspace.metadata.gear] platform`: every chain's platform unless its external
    /// layer sets one (default `linux/amd64`, what Flywheel runs).
    pub platform: Platform,
    /// cargo's target directory; cargo-gear's files go under `target/gear/`.
    pub target_dir: PathBuf,
    /// Whether this is a Cargo workspace (else a scanned tree).
    pub cargo: bool,
    /// `[workspace.metadata.gear] members`: globs relative to the root (none for a scanned
    /// tree, where every directory is found).
    pub members: Vec<String>,
    /// What discovery found suspicious but not fatal (e.g. a `members` glob matching no
    /// directory), for the command to print as warnings.
    pub warnings: Vec<String>,
}

impl Workspace {
    /// `target/gear`.
    pub fn gear_dir(&self) -> PathBuf {
        self.target_dir.join("gear")
    }
}

/// `[workspace.metadata.gear]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GearMetadata {
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    substitute: BTreeMap<String, String>,
    registry: Option<String>,
    #[serde(default)]
    cache: bool,
    platform: Option<String>,
}

/// Finds the workspace for a command run in `cwd`.
pub fn discover(
    cwd: &Path,
    manifest_path: Option<&Path>,
    root: Option<&Path>,
) -> Result<Workspace, CliError> {
    discover_with(cwd, manifest_path, root, Cached::Yes)
}

/// Whether discovery may use and write its cache (`clean` removes it, and must not write it
/// again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    Yes,
    No,
}

/// [`discover`], with or without the discovery cache.
pub fn discover_with(
    cwd: &Path,
    manifest_path: Option<&Path>,
    root: Option<&Path>,
    cached: Cached,
) -> Result<Workspace, CliError> {
    if let Some(root) = root {
        let root = absolute(cwd, root);
        if !root.is_dir() {
            return Err(CliError::usage(
                format!("--root {} is not a directory", root.display()),
                "pass a directory that holds Gear.toml files",
            ));
        }
        return Ok(scan(root));
    }
    let manifest = match manifest_path {
        Some(p) => Some(absolute(cwd, p)),
        None => find_upwards(cwd, "Cargo.toml"),
    };
    match manifest {
        Some(manifest) => cargo_workspace(cwd, &manifest, cached).map(|(ws, _)| ws),
        None => {
            let root = find_upwards(cwd, ".git")
                .and_then(|g| g.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| cwd.to_path_buf());
            Ok(scan(root))
        }
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    p.canonicalize().unwrap_or(p)
}

fn find_upwards(start: &Path, name: &str) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join(name)).find(|p| p.exists())
}

/// `cargo metadata`'s answer for the workspace of `manifest`.
fn ask_cargo(manifest: &Path) -> Result<cache::Metadata, CliError> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .no_deps()
        .exec()
        .map_err(|e| CliError::Workspace {
            message: format!("cannot read the Cargo workspace of {}: {e}", manifest.display()),
            help: "fix the Cargo.toml, or pass --root DIR to scan a directory for Gear.toml files instead".into(),
        })?;
    Ok(cache::Metadata {
        root: metadata.workspace_root.into_std_path_buf(),
        target_dir: metadata.target_directory.into_std_path_buf(),
        gear: metadata.workspace_metadata.get("gear").cloned(),
        manifests: metadata
            .packages
            .into_iter()
            .map(|p| p.manifest_path.into_std_path_buf())
            .collect(),
    })
}

/// The Cargo workspace of `manifest`, and whether cargo or the cache answered.
fn cargo_workspace(
    cwd: &Path,
    manifest: &Path,
    cached: Cached,
) -> Result<(Workspace, cache::Answered), CliError> {
    let (metadata, answered) = match cached {
        Cached::Yes => cache::metadata(cwd, manifest, || ask_cargo(manifest))?,
        Cached::No => (ask_cargo(manifest)?, cache::Answered::Cargo),
    };
    let root = metadata.root;
    let root_manifest = root.join("Cargo.toml");
    let gear: GearMetadata = match metadata.gear {
        Some(v) => serde_json::from_value(v).map_err(|e| CliError::Workspace {
            message: format!("invalid [workspace.metadata.gear] in {}: {e}", root_manifest.display()),
            help: "allowed keys: members = [\"layers/*\", …], exclude = [\"…\"], substitute = { \"FROM\" = \"TO\" }, registry = \"HOST[:PORT]/PREFIX\", cache = true, platform = \"linux/amd64\"".into(),
        })?,
        None => GearMetadata::default(),
    };
    let platform = match gear.platform.as_deref().map(str::parse::<Platform>) {
        None => Platform::flywheel(),
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return Err(CliError::Workspace {
                message: format!(
                    "invalid `platform` under [workspace.metadata.gear] in {}: {e}",
                    root_manifest.display()
                ),
                help: "write it as Docker does: platform = \"linux/amd64\" (what Flywheel runs), or remove it".into(),
            });
        }
    };

    let excluded: Vec<PathBuf> = gear.exclude.iter().map(|e| root.join(e)).collect();
    let mut dirs = Vec::new();
    let mut warnings = Vec::new();
    for pattern in &gear.members {
        let full = root.join(pattern);
        let entries = glob::glob(&full.to_string_lossy()).map_err(|e| CliError::Workspace {
            message: format!(
                "invalid pattern `{pattern}` in [workspace.metadata.gear] members of {}: {e}",
                root_manifest.display()
            ),
            help: "use glob patterns relative to the workspace root, like \"gears/*\"".into(),
        })?;
        let mut matched = false;
        for entry in entries.flatten() {
            if !entry.is_dir() {
                continue;
            }
            matched = true;
            if excluded.iter().any(|x| entry.starts_with(x)) {
                continue;
            }
            if !entry.join(GEAR_TOML).is_file() {
                return Err(CliError::Workspace {
                    message: format!(
                        "{} matches gear member pattern `{pattern}` but has no Gear.toml",
                        gear_spec::diagnostic::display_path(&entry, &root)
                    ),
                    help: format!(
                        "add a Gear.toml there, or list it in `exclude` under [workspace.metadata.gear] in {}",
                        root_manifest.display()
                    ),
                });
            }
            dirs.push(entry);
        }
        if !matched {
            warnings.push(unmatched_member(&root, pattern));
        }
    }
    for manifest in &metadata.manifests {
        if let Some(dir) = manifest.parent()
            && dir.join(GEAR_TOML).is_file()
        {
            dirs.push(dir.to_path_buf());
        }
    }
    dirs.sort();
    dirs.dedup();
    let ws = Workspace {
        root,
        layer_dirs: dirs,
        substitutions: gear.substitute,
        registry: gear.registry,
        cache: gear.cache,
        platform,
        target_dir: metadata.target_dir,
        cargo: true,
        members: gear.members,
        warnings,
    };
    Ok((ws, answered))
}

/// The warning for a `members` glob that matches no directory, with the pattern it was
/// probably meant to be when one literal directory name in it is misspelt.
fn unmatched_member(root: &Path, pattern: &str) -> String {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let mut dir = root.to_path_buf();
    let mut suggestion = None;
    for (i, part) in parts.iter().enumerate() {
        if part.contains(['*', '?', '[']) {
            break;
        }
        if dir.join(part).is_dir() {
            dir.push(part);
            continue;
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.') && n != "target")
                    .collect()
            })
            .unwrap_or_default();
        if let Some(best) = did_you_mean(part, names.iter().map(String::as_str)) {
            let mut fixed = parts.clone();
            fixed[i] = best;
            suggestion = Some(fixed.join("/"));
        }
        break;
    }
    let what =
        format!("`members` glob `{pattern}` under [workspace.metadata.gear] matches no directory");
    match suggestion {
        Some(s) => format!("{what}: did you mean `{s}`?"),
        None => format!("{what}: fix or remove it"),
    }
}

/// Every directory under `root` holding a Gear.toml, skipping build output and hidden dirs.
fn scan(root: PathBuf) -> Workspace {
    let mut dirs = scan_dir(&root);
    dirs.sort();
    Workspace {
        target_dir: root.join("target"),
        root,
        layer_dirs: dirs,
        substitutions: BTreeMap::new(),
        registry: None,
        cache: false,
        platform: Platform::flywheel(),
        cargo: false,
        members: Vec::new(),
        warnings: Vec::new(),
    }
}

/// [`scan`] below `dir`: subdirectories in parallel (a large tree is most of a warm plan's
/// system time), and `dir`'s own entries say whether it holds a Gear.toml (no stat of a
/// Gear.toml path in every directory).
fn scan_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // Perhaps searchable but not readable.
        let holds = dir.join(GEAR_TOML).is_file();
        return holds.then(|| dir.to_path_buf()).into_iter().collect();
    };
    let mut found = Vec::new();
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        // A symlink counts when it leads to a file.
        if name == GEAR_TOML
            && (file_type.is_file() || (file_type.is_symlink() && entry.path().is_file()))
        {
            found.push(dir.to_path_buf());
            continue;
        }
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if file_type.is_dir() {
            subdirs.push(entry.path());
        }
    }
    let nested: Vec<Vec<PathBuf>> = subdirs.par_iter().map(|d| scan_dir(d)).collect();
    found.extend(nested.into_iter().flatten());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer directories found, relative to the root.
    fn scanned(ws: &Workspace) -> Vec<String> {
        ws.layer_dirs
            .iter()
            .map(|d| gear_spec::diagnostic::display_path(d, &ws.root))
            .collect()
    }

    #[test]
    fn scan_skips_target_and_hidden() {
        let t = tempfile::tempdir().unwrap();
        for d in ["a", "b/c", "target/x", ".hidden/y"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
            std::fs::write(t.path().join(d).join(GEAR_TOML), "").unwrap();
        }
        let ws = discover(t.path(), None, Some(t.path())).unwrap();
        assert_eq!(scanned(&ws), ["a", "b/c"]);
        assert!(!ws.cargo);
    }

    #[cfg(unix)]
    #[test]
    fn scan_follows_a_linked_gear_toml_and_enters_a_directory_so_named() {
        let t = tempfile::tempdir().unwrap();
        for d in ["a", "l", "d/Gear.toml"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        std::fs::write(t.path().join("a").join(GEAR_TOML), "").unwrap();
        std::fs::write(t.path().join("d/Gear.toml").join(GEAR_TOML), "").unwrap();
        std::os::unix::fs::symlink("../a/Gear.toml", t.path().join("l").join(GEAR_TOML)).unwrap();
        std::os::unix::fs::symlink("nowhere", t.path().join("d").join("x")).unwrap();
        let ws = discover(t.path(), None, Some(t.path())).unwrap();
        assert_eq!(scanned(&ws), ["a", "d/Gear.toml", "l"]);
    }

    #[test]
    fn unmatched_members_suggest_a_close_directory() {
        let t = tempfile::tempdir().unwrap();
        for d in ["gears/a", "layers/base"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        assert_eq!(
            unmatched_member(t.path(), "gaers/*"),
            "`members` glob `gaers/*` under [workspace.metadata.gear] matches no directory: did you mean `gears/*`?"
        );
        assert_eq!(
            unmatched_member(t.path(), "layers/bsae"),
            "`members` glob `layers/bsae` under [workspace.metadata.gear] matches no directory: did you mean `layers/base`?"
        );
        assert_eq!(
            unmatched_member(t.path(), "tools/*"),
            "`members` glob `tools/*` under [workspace.metadata.gear] matches no directory: fix or remove it"
        );
    }

    /// The discovery cache answers for an unchanged workspace, and what it answers is
    /// always what cargo would: gears added, renamed or removed and a Gear.toml put into a
    /// package are seen with the cache, packages added, removed or renamed make cargo be
    /// asked again.
    #[test]
    fn discovery_cache_sees_members_come_and_go() {
        use cache::Answered::{Cache, Cargo};
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let package = |name: &str| {
            write(
                &format!("crates/{name}/Cargo.toml"),
                &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
            );
            write(&format!("crates/{name}/src/lib.rs"), "");
        };
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n\n[workspace.metadata.gear]\nmembers = [\"gears/*\"]\n",
        );
        package("a");
        // Without a Gear.toml; it keeps `crates/*` matching when a is removed.
        package("k");
        write("gears/one/Gear.toml", "");
        // The manifests must be older than the racy window for their stat to be trusted.
        std::thread::sleep(gear_spec::stat::RACY_WINDOW + std::time::Duration::from_millis(100));
        let manifest = root.join("Cargo.toml");
        let discover = || {
            let (ws, answered) = cargo_workspace(&root, &manifest, Cached::Yes).unwrap();
            (scanned(&ws), answered)
        };

        assert_eq!(discover(), (vec!["gears/one".to_owned()], Cargo));
        assert!(root.join("target/gear/discovery.json").is_file());
        assert_eq!(discover(), (vec!["gears/one".to_owned()], Cache));
        // Gears come, are renamed and go: the members globs are expanded on every run.
        write("gears/two/Gear.toml", "");
        assert_eq!(
            discover(),
            (vec!["gears/one".into(), "gears/two".into()], Cache)
        );
        std::fs::rename(root.join("gears/two"), root.join("gears/three")).unwrap();
        assert_eq!(
            discover(),
            (vec!["gears/one".into(), "gears/three".into()], Cache)
        );
        std::fs::remove_dir_all(root.join("gears/three")).unwrap();
        assert_eq!(discover(), (vec!["gears/one".to_owned()], Cache));
        // A Gear.toml in a package directory.
        write("crates/a/Gear.toml", "");
        assert_eq!(
            discover(),
            (vec!["crates/a".into(), "gears/one".into()], Cache)
        );
        // Packages come, are renamed and go: cargo is asked again.
        package("b");
        write("crates/b/Gear.toml", "");
        let with_b = vec!["crates/a".into(), "crates/b".into(), "gears/one".into()];
        assert_eq!(discover(), (with_b, Cargo));
        std::fs::rename(root.join("crates/b"), root.join("crates/c")).unwrap();
        let with_c = vec!["crates/a".into(), "crates/c".into(), "gears/one".into()];
        assert_eq!(discover(), (with_c, Cargo));
        // Back to the packages the cache was written for (the answers with b and c were not
        // cached: their manifests were too new to be trusted).
        std::fs::remove_dir_all(root.join("crates/c")).unwrap();
        assert_eq!(
            discover(),
            (vec!["crates/a".into(), "gears/one".into()], Cache)
        );
        // A package the cached answer has, removed.
        std::fs::remove_dir_all(root.join("crates/a")).unwrap();
        assert_eq!(discover(), (vec!["gears/one".to_owned()], Cargo));
        // A changed root manifest.
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n\n[workspace.metadata.gear]\nmembers = [\"gears/*\"]\nexclude = [\"gears/one\"]\n",
        );
        assert_eq!(discover(), (Vec::<String>::new(), Cargo));
    }
}
