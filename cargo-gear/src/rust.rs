//! Rust gears on the host: what `cargo metadata` and `rustc -vV` say (handed to gear-spec
//! as data), and the one `cargo build` that compiles every stale host-built Rust layer before
//! the image builds, its artifact paths taken from Cargo's JSON messages.
//!
//! This module runs processes (`cargo`, `rustc`, honouring `$CARGO` and `$RUSTC`);
//! gear-spec never does.

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{DependencyKind, Message, TargetKind};
use gear_spec::rust::{BuildPlace, BuildPlan, CargoWorkspace, Package, Toolchain};

use crate::error::CliError;
use crate::progress::Failure;

/// The Cargo workspace at `root` as gear-spec needs it. A missing `Cargo.lock` is created
/// first (`cargo generate-lockfile`): it is part of every Rust layer's fingerprint, and a
/// build must not change it afterwards.
pub fn workspace(root: &Path) -> Result<CargoWorkspace, CliError> {
    let cargo = cargo_program();
    let manifest = root.join("Cargo.toml");
    if !root.join("Cargo.lock").is_file() {
        let status = Command::new(&cargo)
            .args(["generate-lockfile", "--manifest-path"])
            .arg(&manifest)
            .status()
            .map_err(|e| cargo_error(format!("cannot run `{cargo} generate-lockfile`: {e}")))?;
        if !status.success() {
            return Err(cargo_error(format!(
                "`{cargo} generate-lockfile` failed ({status}) for {}",
                manifest.display()
            )));
        }
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|e| {
            cargo_error(format!(
                "cannot read the Cargo workspace of {}: {e}",
                manifest.display()
            ))
        })?;
    let members: Vec<&cargo_metadata::Package> = metadata.workspace_packages();
    let by_dir: HashMap<PathBuf, String> = members
        .iter()
        .filter_map(|p| {
            let dir = p.manifest_path.parent()?.as_std_path();
            Some((
                dir.canonicalize().unwrap_or(dir.to_path_buf()),
                p.name.to_string(),
            ))
        })
        .collect();
    let packages = members
        .iter()
        .map(|p| {
            let mut features: Vec<String> = p.features.keys().cloned().collect();
            features.extend(
                p.dependencies
                    .iter()
                    .filter(|d| d.optional)
                    .map(|d| d.rename.clone().unwrap_or_else(|| d.name.clone())),
            );
            features.sort();
            features.dedup();
            let mut path_deps: Vec<String> = p
                .dependencies
                .iter()
                .filter(|d| d.kind != DependencyKind::Development)
                .filter_map(|d| {
                    let path = d.path.as_ref()?.as_std_path();
                    by_dir
                        .get(&path.canonicalize().unwrap_or(path.to_path_buf()))
                        .cloned()
                })
                .collect();
            path_deps.sort();
            path_deps.dedup();
            Package {
                name: p.name.to_string(),
                manifest_path: p.manifest_path.clone().into_std_path_buf(),
                bins: p
                    .targets
                    .iter()
                    .filter(|t| t.kind.contains(&TargetKind::Bin))
                    .map(|t| t.name.clone())
                    .collect(),
                features,
                path_deps,
            }
        })
        .collect();
    Ok(CargoWorkspace {
        root: metadata.workspace_root.into_std_path_buf(),
        packages,
        toolchain: toolchain(root)?,
    })
}

/// `rustc -vV` and the targets whose standard library the sysroot holds, as rustc runs in
/// `root` (so `rust-toolchain.toml` is honoured).
fn toolchain(root: &Path) -> Result<Toolchain, CliError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let run = |args: &[&str]| -> Result<String, CliError> {
        let out = Command::new(&rustc)
            .args(args)
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| cargo_error(format!("cannot run `{rustc} {}`: {e}", args.join(" "))))?;
        if !out.status.success() {
            return Err(cargo_error(format!(
                "`{rustc} {}` failed ({})",
                args.join(" "),
                out.status
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let version = run(&["-vV"])?;
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_default()
        .to_string();
    let sysroot = run(&["--print", "sysroot"])?;
    let mut targets: Vec<String> = std::fs::read_dir(Path::new(sysroot.trim()).join("lib/rustlib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("lib").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    targets.sort();
    let env = std::env::vars()
        .filter(|(name, _)| gear_spec::rust::is_build_env(name))
        .collect();
    Ok(Toolchain {
        version,
        host,
        targets,
        env,
    })
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn cargo_error(message: String) -> CliError {
    CliError::Workspace {
        message,
        help: "Rust gears need cargo and rustc on PATH (or $CARGO, $RUSTC) and a readable Cargo workspace".into(),
    }
}

/// How cargo-gear was asked to build, passed on to Cargo.
#[derive(Debug, Clone, Copy, Default)]
pub struct CargoFlags {
    /// `--quiet`: Cargo prints only its diagnostics.
    pub quiet: bool,
    /// `--offline`: Cargo uses no network either.
    pub offline: bool,
}

/// What one `cargo build` made of each Rust layer it compiled (by plan slot): the binary,
/// or why there is none.
pub type Binaries = HashMap<usize, Result<PathBuf, Failure>>;

/// One `cargo build` invocation's worth of layers: those sharing profile, target and
/// `--no-default-features` (Cargo takes each once per invocation).
type Group<'a> = Vec<(usize, &'a BuildPlan)>;

/// Compiles the host-built Rust `layers` (by plan slot): one `cargo build --keep-going`
/// for all of them (one per profile and target when they differ), Cargo's own output and
/// diagnostics on stderr. A layer whose binary Cargo did not produce fails with the errors
/// of its package and path dependencies. Returns each layer's binary and how many times
/// Cargo ran.
pub fn compile(root: &Path, layers: &[(usize, BuildPlan)], flags: CargoFlags) -> (Binaries, usize) {
    let mut groups: BTreeMap<(String, Option<String>, bool), Group<'_>> = BTreeMap::new();
    for (i, cargo) in layers.iter().filter(|(_, c)| c.place == BuildPlace::Host) {
        groups
            .entry((
                cargo.profile.clone(),
                cargo.target.clone(),
                cargo.no_default_features,
            ))
            .or_default()
            .push((*i, cargo));
    }
    let mut binaries = Binaries::new();
    let runs = groups.len();
    for group in groups.into_values() {
        binaries.extend(compile_group(root, &group, flags));
    }
    (binaries, runs)
}

/// The arguments of one group's `cargo build`.
fn group_args(group: &Group<'_>) -> Vec<String> {
    let first = group[0].1;
    let mut args = vec![
        "build".to_string(),
        "--locked".to_string(),
        "--keep-going".to_string(),
        "--message-format".to_string(),
        "json".to_string(),
        "--profile".to_string(),
        first.profile.clone(),
    ];
    let mut packages: Vec<&str> = group.iter().map(|(_, c)| c.package.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    for p in packages {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    let mut bins: Vec<&str> = group.iter().map(|(_, c)| c.bin.as_str()).collect();
    bins.sort_unstable();
    bins.dedup();
    for b in bins {
        args.extend(["--bin".to_string(), b.to_string()]);
    }
    let mut features: Vec<String> = group
        .iter()
        .flat_map(|(_, c)| c.features.iter().map(move |f| format!("{}/{f}", c.package)))
        .collect();
    features.sort();
    features.dedup();
    if !features.is_empty() {
        args.extend(["--features".to_string(), features.join(",")]);
    }
    if first.no_default_features {
        args.push("--no-default-features".to_string());
    }
    if let Some(target) = &first.target {
        args.extend(["--target".to_string(), target.clone()]);
    }
    args
}

fn compile_group(root: &Path, group: &Group<'_>, flags: CargoFlags) -> Binaries {
    let cargo = cargo_program();
    let mut args = group_args(group);
    if flags.offline {
        args.push("--offline".to_string());
    }
    if flags.quiet {
        args.push("--quiet".to_string());
    }
    let fail_all = |message: String| -> Binaries {
        group
            .iter()
            .map(|(i, _)| (*i, Err(Failure::new(message.clone()))))
            .collect()
    };
    let child = Command::new(&cargo)
        .args(&args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return fail_all(format!("cannot run `{cargo} {}`: {e}", args.join(" "))),
    };
    // (package name, bin name) → executable; package name → its error messages.
    let mut executables: HashMap<(String, String), PathBuf> = HashMap::new();
    let mut errors: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(stdout) = child.stdout.take() {
        for message in Message::parse_stream(BufReader::new(stdout)).flatten() {
            match message {
                Message::CompilerArtifact(a) => {
                    if let Some(exe) = a.executable
                        && a.target.kind.contains(&TargetKind::Bin)
                    {
                        executables.insert(
                            (package_name(&a.package_id.repr), a.target.name.clone()),
                            exe.into_std_path_buf(),
                        );
                    }
                }
                Message::CompilerMessage(m) => {
                    if let Some(rendered) = &m.message.rendered {
                        crate::output::stderr(rendered);
                        if m.message.level == cargo_metadata::diagnostic::DiagnosticLevel::Error {
                            errors
                                .entry(package_name(&m.package_id.repr))
                                .or_default()
                                .push(rendered.trim_end().to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let status = child.wait();
    let command = format!("cargo {}", args.join(" "));
    group
        .iter()
        .map(|&(i, c)| {
            let found = executables
                .get(&(c.package.clone(), c.bin.clone()))
                .cloned()
                .ok_or_else(|| {
                    let tail: Vec<String> = c
                        .packages
                        .iter()
                        .filter_map(|p| errors.get(p))
                        .flatten()
                        .flat_map(|e| e.lines().map(str::to_string).collect::<Vec<_>>())
                        .collect();
                    // The first error and where it is, as Cargo's first two lines say it.
                    let first = c
                        .packages
                        .iter()
                        .filter_map(|p| errors.get(p)?.first())
                        .next()
                        .map(|e| {
                            e.lines()
                                .take(2)
                                .map(str::trim)
                                .collect::<Vec<_>>()
                                .join(" ")
                        });
                    let why = match (&status, first) {
                        (_, Some(first)) => first,
                        (Ok(s), None) if s.success() => "it reported no such binary".to_string(),
                        (Ok(s), None) => format!("it failed ({s})"),
                        (Err(e), None) => format!("it could not be waited for: {e}"),
                    };
                    Failure {
                        message: format!(
                            "cargo did not build binary `{}` of package `{}`: {why}",
                            c.bin, c.package
                        ),
                        step: Some(command.clone()),
                        tail,
                        help: Some(
                            "fix the compile errors above (Cargo's diagnostics), then build again"
                                .to_string(),
                        ),
                    }
                });
            (i, found)
        })
        .collect()
}

/// The package name in a Cargo package ID: `path+file:///…/name#0.1.0` (the directory's
/// name stands for the package), `path+file:///…#name@0.1.0`, or the older
/// `name 0.1.0 (path+file:///…)`.
fn package_name(id: &str) -> String {
    if let Some((_, fragment)) = id.rsplit_once('#') {
        return match fragment.split_once('@') {
            Some((name, _)) => name.to_string(),
            None => id
                .split_once('#')
                .map(|(url, _)| url.rsplit('/').next().unwrap_or_default().to_string())
                .unwrap_or_default(),
        };
    }
    id.split(' ').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_of_every_id_format() {
        assert_eq!(package_name("path+file:///w/crates/core#0.1.0"), "core");
        assert_eq!(package_name("path+file:///w/crates/x#core@0.1.0"), "core");
        assert_eq!(
            package_name("core 0.1.0 (path+file:///w/crates/core)"),
            "core"
        );
    }
}
