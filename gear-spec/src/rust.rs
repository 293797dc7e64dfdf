//! Rust gears: a `[gear.cargo]` (or `[layer.cargo]`) package of the Cargo workspace,
//! resolved against the workspace's packages, and the files its fingerprint covers.
//!
//! gear-spec runs neither cargo nor rustc: cargo-gear hands in what `cargo metadata` and
//! `rustc -vV` say as a [`CargoWorkspace`]. From it, [`resolve`] checks the declaration
//! (unknown package or binary with "did you mean", a package without binaries, a target
//! that is not installed), and selects the files that reach the binary without compiling
//! it: the package's and its path dependencies' files as `cargo package` takes them
//! (`include`/`exclude`, `.gitignore`, no nested packages, no `target/`), the workspace's
//! `Cargo.toml`, `Cargo.lock`, `.cargo/config.toml` and toolchain file. They sit in the
//! build context under [`CARGO_DIR`] by their path from the workspace root, so a change is
//! reported as `file crates/dicom-core/src/lib.rs changed`; the build settings and the
//! toolchain are a generated file ([`SETTINGS_PATH`]) of the context, like a manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::context::ContextFile;
use crate::diagnostic::{Problem, Problems, did_you_mean, display_path};
use crate::layer::Layer;
use crate::model::CargoDecl;
use crate::step::Recipe;

/// Tar directory of the Rust sources, by path from the workspace root.
pub const CARGO_DIR: &str = "cargo";
/// Tar path of the generated build settings (package, binary, profile, features, target,
/// toolchain): sent in the context and fingerprinted like any generated file.
pub const SETTINGS_PATH: &str = ".cargo-gear/cargo.json";
/// Tar directory of binaries built on the host.
pub const BIN_DIR: &str = ".cargo-gear/bin";
/// Where a binary goes without `to`.
pub const DEFAULT_BIN_DIR: &str = "/usr/local/bin";
/// Name of the builder stage of an `in-image` build.
pub const BUILDER_STAGE: &str = "cargo-build";
/// Workspace files that change what Cargo builds, besides the packages' own.
pub const WORKSPACE_FILES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    ".cargo/config.toml",
    ".cargo/config",
    "rust-toolchain.toml",
    "rust-toolchain",
];

/// The Cargo workspace as cargo-gear found it (`cargo metadata`, `rustc -vV`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoWorkspace {
    /// The workspace root (where `Cargo.lock` is).
    pub root: PathBuf,
    /// Its member packages.
    pub packages: Vec<Package>,
    /// The host's toolchain.
    pub toolchain: Toolchain,
}

/// A package of the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    /// Its name.
    pub name: String,
    /// Its `Cargo.toml`, absolute.
    pub manifest_path: PathBuf,
    /// Its binary targets.
    pub bins: Vec<String>,
    /// Its features (including the implicit ones of optional dependencies).
    pub features: Vec<String>,
    /// Names of the workspace packages it depends on by path (normal and build
    /// dependencies; dev-dependencies never reach a binary).
    pub path_deps: Vec<String>,
}

impl Package {
    /// The package's directory.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// The host's Rust toolchain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toolchain {
    /// `rustc -vV`, verbatim: part of every host-built Rust gear's fingerprint.
    pub version: String,
    /// The host triple.
    pub host: String,
    /// Targets whose standard library is installed.
    pub targets: Vec<String>,
    /// The environment Cargo reads that changes what it compiles ([`BUILD_ENV`]), as set
    /// when planning: part of every host-built Rust gear's fingerprint.
    pub env: BTreeMap<String, String>,
}

/// Whether Cargo compiles differently when the environment variable `name` is set: the
/// flags it passes to rustc, its profiles, its per-target flags and linkers, its default
/// target. (Variables that only move files, pick a cache or a wrapper do not count.)
pub fn is_build_env(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
    ];
    let per_target = name
        .strip_prefix("CARGO_TARGET_")
        .is_some_and(|rest| rest.ends_with("_RUSTFLAGS") || rest.ends_with("_LINKER"));
    EXACT.contains(&name) || name.starts_with("CARGO_PROFILE_") || per_target
}

/// Where a Rust gear's binary is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildPlace {
    /// On the host, one `cargo build` for every stale Rust gear; the binary is sent in the
    /// build context at [`BuildPlan::bin_tar_path`].
    Host,
    /// In a first stage of the image build, `FROM` the parent layer.
    InImage,
}

/// A resolved `[gear.cargo]`: what to build and where the binary goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildPlan {
    /// The package.
    pub package: String,
    /// The binary target.
    pub bin: String,
    /// Features, as declared.
    pub features: Vec<String>,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// The profile.
    pub profile: String,
    /// The target triple, when not the host's.
    pub target: Option<String>,
    /// The triple the binary is built for: `target`, or the host's (in the image: the
    /// parent's, unknown here).
    pub triple: Option<String>,
    /// Where the binary goes in the image.
    pub to: String,
    /// Host or in-image.
    pub place: BuildPlace,
    /// The package and its path dependencies, whose compile errors fail this layer.
    pub packages: Vec<String>,
    /// The generated settings file ([`SETTINGS_PATH`]): these settings and, built on the
    /// host, the host's toolchain (an in-image build's is the parent's, fingerprinted with it).
    #[serde(skip)]
    pub settings: String,
}

impl BuildPlan {
    /// Where the host-built binary sits in the build context.
    pub fn bin_tar_path(&self) -> String {
        format!("{BIN_DIR}/{}", self.bin)
    }

    /// Cargo's output directory of the profile under the target directory
    /// (`release`, `debug` for `dev` and `test`, the profile's name otherwise).
    pub fn profile_dir(&self) -> &str {
        match self.profile.as_str() {
            "dev" | "test" => "debug",
            "bench" => "release",
            other => other,
        }
    }

    /// The `cargo build` arguments for this binary alone.
    pub fn cargo_args(&self) -> Vec<String> {
        let mut args = vec![
            "build".to_string(),
            "--locked".to_string(),
            "--profile".to_string(),
            self.profile.clone(),
            "-p".to_string(),
            self.package.clone(),
            "--bin".to_string(),
            self.bin.clone(),
        ];
        if self.no_default_features {
            args.push("--no-default-features".to_string());
        }
        if !self.features.is_empty() {
            args.push("--features".to_string());
            args.push(self.features.join(","));
        }
        if let Some(target) = &self.target {
            args.push("--target".to_string());
            args.push(target.clone());
        }
        args
    }

    /// The generated settings file: everything besides the sources that decides the binary.
    fn settings_text(&self, toolchain: Option<&Toolchain>) -> String {
        let mut value = serde_json::json!({
            "package": self.package,
            "bin": self.bin,
            "features": self.features,
            "no-default-features": self.no_default_features,
            "profile": self.profile,
            "target": self.target,
            "to": self.to,
            "place": self.place,
        });
        if let Some(t) = toolchain {
            value["rustc"] = serde_json::Value::String(t.version.clone());
            if !t.env.is_empty() {
                value["env"] = serde_json::json!(t.env);
            }
        }
        // Invariant: a JSON value built from strings and booleans always serializes.
        let mut text = serde_json::to_string_pretty(&value).expect("settings serialize");
        text.push('\n');
        text
    }
}

/// A resolved Rust layer: its build and the files its fingerprint covers.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What to build.
    pub plan: BuildPlan,
    /// Source files, under [`CARGO_DIR`], sorted.
    pub files: Vec<ContextFile>,
}

/// Checks `[…cargo]` of `layer` against the workspace and selects its source files. Every
/// problem is located in the Gear.toml.
pub fn resolve(
    layer: &Layer,
    decl: &CargoDecl,
    ws: Option<&CargoWorkspace>,
) -> Result<Resolved, Problems> {
    let mut problems = Problems::default();
    let at = |keys: &[&str]| {
        let mut path = vec!["cargo"];
        path.extend_from_slice(keys);
        layer.span(&path)
    };
    let Some(ws) = ws else {
        problems.push(
            Problem::new(
                "gear::cargo-no-workspace",
                format!("{} `{}` builds a Cargo package, but no Cargo workspace was found", layer.table(), layer.name),
            )
            .at(&layer.source, at(&[]))
            .label("needs a Cargo workspace")
            .help("run cargo gear in a Cargo workspace (a Cargo.toml with [workspace] whose members include the package), not with --root"),
        );
        return Err(problems);
    };
    if let Recipe::Own(_) = layer.recipe {
        problems.push(
            Problem::new(
                "gear::cargo-own-dockerfile",
                "`cargo` cannot be combined with `dockerfile-file`",
            )
            .at(&layer.source, at(&[]))
            .label("a binary built by cargo-gear")
            .help("build the binary in your Dockerfile, or replace `dockerfile-file` by steps"),
        );
        return Err(problems);
    }
    let by_name: BTreeMap<&str, &Package> =
        ws.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let Some(package) = by_name.get(decl.package.as_str()) else {
        let help = match did_you_mean(&decl.package, by_name.keys().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None if by_name.is_empty() => "the workspace has no packages: add the crate to `[workspace] members` in the root Cargo.toml".to_string(),
            None => format!(
                "name a package of the workspace: {}",
                by_name.keys().copied().collect::<Vec<_>>().join(", ")
            ),
        };
        problems.push(
            Problem::new(
                "gear::cargo-unknown-package",
                format!("no package named `{}` in the Cargo workspace", decl.package),
            )
            .at(&layer.source, at(&["package"]))
            .label("not a workspace member")
            .help(help),
        );
        return Err(problems);
    };
    let bin = match (&decl.bin, package.bins.as_slice()) {
        (_, []) => {
            problems.push(
                Problem::new(
                    "gear::cargo-no-binary",
                    format!("package `{}` has no binary target", package.name),
                )
                .at(&layer.source, at(&["package"]))
                .label("a library only")
                .help(format!(
                    "add `src/main.rs` (or a [[bin]] target) to {}, or name a package that has one",
                    display_path(&package.manifest_path, &ws.root)
                )),
            );
            None
        }
        (None, [only]) => Some(only.clone()),
        (None, several) => {
            problems.push(
                Problem::new(
                    "gear::cargo-bin-ambiguous",
                    format!(
                        "package `{}` has {} binaries: {}",
                        package.name,
                        several.len(),
                        several.join(", ")
                    ),
                )
                .at(&layer.source, at(&["package"]))
                .label("which binary?")
                .help(format!("choose one with `bin = \"{}\"`", several[0])),
            );
            None
        }
        (Some(bin), bins) if bins.contains(bin) => Some(bin.clone()),
        (Some(bin), bins) => {
            let help = match did_you_mean(bin, bins.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("package `{}` has: {}", package.name, bins.join(", ")),
            };
            problems.push(
                Problem::new(
                    "gear::cargo-unknown-bin",
                    format!("package `{}` has no binary named `{bin}`", package.name),
                )
                .at(&layer.source, at(&["bin"]))
                .label("no such binary")
                .help(help),
            );
            None
        }
    };
    for (i, feature) in decl.features.iter().enumerate() {
        // `dep/feature` and `dep?/feature` name a dependency's feature: Cargo checks those.
        if feature.contains('/') || package.features.contains(feature) {
            continue;
        }
        let help = match did_you_mean(feature, package.features.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None if package.features.is_empty() => {
                format!("package `{}` declares no features", package.name)
            }
            None => format!(
                "package `{}` has: {}",
                package.name,
                package.features.join(", ")
            ),
        };
        problems.push(
            Problem::new(
                "gear::cargo-unknown-feature",
                format!("package `{}` has no feature `{feature}`", package.name),
            )
            .at(
                &layer.source,
                layer
                    .source
                    .array_item_span(&[layer.table(), "cargo", "features"], i),
            )
            .label("no such feature")
            .help(help),
        );
    }
    let place = if decl.in_image {
        BuildPlace::InImage
    } else {
        BuildPlace::Host
    };
    if let (BuildPlace::Host, Some(target)) = (place, &decl.target)
        && !ws.toolchain.targets.contains(target)
    {
        problems.push(
            Problem::new(
                "gear::cargo-target-missing",
                format!("the Rust target `{target}` is not installed on this host"),
            )
            .at(&layer.source, at(&["target"]))
            .label("not installed")
            .help(format!(
                "install it with `rustup target add {target}` (installed: {}), or build in the image with `in-image = true`",
                ws.toolchain.targets.join(", ")
            )),
        );
    }
    let to = match &decl.to {
        Some(to) if !to.starts_with('/') || to.ends_with('/') => {
            problems.push(
                Problem::new(
                    "gear::cargo-to-not-absolute",
                    format!("`to = \"{to}\"` is not an absolute file path"),
                )
                .at(&layer.source, at(&["to"]))
                .label("where the binary goes")
                .help(format!(
                    "write the binary's path in the image, e.g. `to = \"{DEFAULT_BIN_DIR}/{}\"`",
                    bin.as_deref().unwrap_or("tool")
                )),
            );
            None
        }
        Some(to) => Some(to.clone()),
        None => bin.as_ref().map(|b| format!("{DEFAULT_BIN_DIR}/{b}")),
    };
    let (Some(bin), Some(to)) = (bin, to) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }

    // The package and its path dependencies, transitively; in-image builds take the whole
    // workspace, as Cargo loads every member.
    let closure: BTreeSet<&str> = match place {
        BuildPlace::Host => {
            let mut seen = BTreeSet::new();
            let mut todo = vec![package.name.as_str()];
            while let Some(name) = todo.pop() {
                if seen.insert(name)
                    && let Some(p) = by_name.get(name)
                {
                    todo.extend(p.path_deps.iter().map(String::as_str));
                }
            }
            seen
        }
        BuildPlace::InImage => by_name.keys().copied().collect(),
    };
    let mut files = BTreeMap::new();
    let root = std::fs::canonicalize(&ws.root).unwrap_or_else(|_| ws.root.clone());
    for name in &closure {
        let Some(p) = by_name.get(name) else { continue };
        if let Err(e) = package_files(p.dir(), &root, &mut files) {
            problems.push(
                Problem::new(
                    "gear::cargo-read",
                    format!("cannot list the files of package `{}`: {e}", p.name),
                )
                .at(&layer.source, at(&["package"]))
                .help("check that the package directory is readable"),
            );
        }
    }
    for rel in WORKSPACE_FILES {
        let path = root.join(rel);
        if path.is_file() {
            add_file(&path, &root, &mut files);
        }
    }
    let mut plan = BuildPlan {
        package: package.name.clone(),
        bin,
        features: decl.features.clone(),
        no_default_features: decl.no_default_features,
        profile: decl.profile().to_string(),
        target: decl.target.clone(),
        triple: match place {
            BuildPlace::Host => Some(
                decl.target
                    .clone()
                    .unwrap_or_else(|| ws.toolchain.host.clone()),
            ),
            BuildPlace::InImage => decl.target.clone(),
        },
        to,
        place,
        packages: closure.iter().map(|s| s.to_string()).collect(),
        settings: String::new(),
    };
    plan.settings = plan.settings_text((place == BuildPlace::Host).then_some(&ws.toolchain));
    problems.into_result(Resolved {
        plan,
        files: files.into_values().collect(),
    })
}

/// A binary built for `triple` in an image of `platform` would not run there: the problem,
/// located at the layer's `target` (or `cargo` table).
pub fn check_platform(
    layer: &Layer,
    plan: &BuildPlan,
    platform: &crate::platform::Platform,
) -> Option<Problem> {
    let triple = plan.triple.as_deref()?;
    let arch = triple.split('-').next().unwrap_or_default();
    if triple.contains("-linux") && platform.matches("linux", arch, None) {
        return None;
    }
    let keys: &[&str] = if plan.target.is_some() {
        &["cargo", "target"]
    } else {
        &["cargo"]
    };
    let image_arch = platform.to_string();
    let image_arch = image_arch.split('/').nth(1).unwrap_or_default();
    let musl = match image_arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    };
    Some(
        Problem::new(
            "gear::cargo-platform",
            format!(
                "{} `{}` is for {platform}, but its binary would be built for {triple}",
                layer.table(),
                layer.name
            ),
        )
        .at(&layer.source, layer.span(keys))
        .label("the binary's target")
        .help(format!(
            "build it for the image: `target = \"{musl}-unknown-linux-musl\"` (after `rustup target add {musl}-unknown-linux-musl`), or `in-image = true`"
        )),
    )
}

/// Adds `path` (under `root`) to `files` at `cargo/<path from root>`.
fn add_file(path: &Path, root: &Path, files: &mut BTreeMap<String, ContextFile>) {
    let Ok(rel) = path.strip_prefix(root) else {
        return;
    };
    let Some(parts) = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let tar_path = format!("{CARGO_DIR}/{}", parts.join("/"));
    files.insert(
        tar_path.clone(),
        ContextFile {
            tar_path,
            source: path.to_path_buf(),
            executable: false,
            mode: None,
            stat: None,
        },
    );
}

/// The files `cargo package` would take from the package in `dir`: `include` (only those,
/// and `Cargo.toml`) or everything not excluded by `exclude` or `.gitignore`, without hidden
/// directories, nested packages and `target/`.
fn package_files(
    dir: &Path,
    root: &Path,
    files: &mut BTreeMap<String, ContextFile>,
) -> std::io::Result<()> {
    let dir = std::fs::canonicalize(dir)?;
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let (include, exclude) = include_exclude(&manifest, root);
    let include = patterns(&dir, &include);
    let exclude = patterns(&dir, &exclude);
    let top = dir.clone();
    let walk = ignore::WalkBuilder::new(&dir)
        .hidden(false)
        .parents(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .ignore(false)
        .require_git(false)
        .sort_by_file_name(Ord::cmp)
        .filter_entry(move |e| {
            let path = e.path();
            if path == top || !e.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            !(name.starts_with('.')
                || (path.parent() == Some(top.as_path()) && name == "target")
                || path.join("Cargo.toml").is_file())
        })
        .build();
    for entry in walk {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(&dir) else {
            continue;
        };
        if cargo_gear_file(path) {
            continue;
        }
        let is_manifest = rel == Path::new("Cargo.toml");
        let kept = match &include {
            Some(inc) => is_manifest || inc.matched_path_or_any_parents(rel, false).is_ignore(),
            None => !exclude
                .as_ref()
                .is_some_and(|exc| exc.matched_path_or_any_parents(rel, false).is_ignore()),
        };
        if kept {
            add_file(path, root, files);
        }
    }
    Ok(())
}

/// A file of cargo-gear's own in a package that is also a layer directory: the Gear.toml
/// and ignore files ([`crate::context::ALWAYS_EXCLUDED`]) and the generated `manifest.json`
/// beside a Gear.toml, which a build rewrites. They never reach the binary, and the
/// manifest is fingerprinted as the manifest.
fn cargo_gear_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    crate::context::ALWAYS_EXCLUDED.contains(&name)
        || (name == "manifest.json"
            && path
                .parent()
                .is_some_and(|d| d.join(crate::layer::GEAR_TOML).is_file()))
}

/// `package.include` and `package.exclude` of a Cargo.toml, following `{ workspace = true }`
/// to the workspace root's `[workspace.package]`.
fn include_exclude(manifest: &str, root: &Path) -> (Vec<String>, Vec<String>) {
    let doc: toml::Table = manifest.parse().unwrap_or_default();
    let workspace = || -> Option<toml::Table> {
        std::fs::read_to_string(root.join("Cargo.toml"))
            .ok()?
            .parse()
            .ok()
    };
    let list = |key: &str| -> Vec<String> {
        let value = doc.get("package").and_then(|p| p.get(key));
        let value = match value {
            Some(toml::Value::Table(t))
                if t.get("workspace").and_then(toml::Value::as_bool) == Some(true) =>
            {
                workspace().and_then(|w| w.get("workspace")?.get("package")?.get(key).cloned())
            }
            other => other.cloned(),
        };
        value
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    (list("include"), list("exclude"))
}

/// A gitignore-syntax matcher of `patterns` relative to `dir` (None when there are none).
fn patterns(dir: &Path, patterns: &[String]) -> Option<Gitignore> {
    if patterns.is_empty() {
        return None;
    }
    let mut builder = GitignoreBuilder::new(dir);
    for p in patterns {
        let _ = builder.add_line(None, p);
    }
    builder.build().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plan::{Plan, PlanOptions};
    use crate::testing;

    /// A Cargo workspace with `tool` (a binary using the path dependency `shared`) and an
    /// unrelated library, and a gear shipping `tool` with `cargo` as its `[gear.cargo]` body.
    fn rust_workspace(cargo: &str) -> tempfile::TempDir {
        let package = |name: &str, deps: &str| {
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n[dependencies]\n{deps}")
        };
        testing::workspace(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n"),
            ("Cargo.lock", "version = 3\n"),
            ("crates/shared/Cargo.toml", &package("shared", "")),
            ("crates/shared/src/lib.rs", "pub fn f() {}\n"),
            ("crates/unrelated/Cargo.toml", &package("unrelated", "")),
            ("crates/unrelated/src/lib.rs", "pub fn g() {}\n"),
            (
                "crates/tool/Cargo.toml",
                &package("tool", "shared = { path = \"../shared\" }\n"),
            ),
            ("crates/tool/src/main.rs", "fn main() {}\n"),
            (
                "layers/base/Gear.toml",
                "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n",
            ),
            (
                "gears/tool/Gear.toml",
                &format!(
                    "[gear]\nname = \"tool\"\nfrom = \"base\"\nimage = \"lab/tool\"\nversion = \"1.0.0\"\n\
                     label = \"Tool\"\ndescription = \"A tool.\"\nauthor = \"Lab\"\nlicense = \"MIT\"\n\
                     [gear.cargo]\n{cargo}"
                ),
            ),
        ])
    }

    /// What `cargo metadata` and `rustc -vV` would say of [`rust_workspace`].
    fn cargo_of(root: &Path, rustc: &str) -> CargoWorkspace {
        let root = std::fs::canonicalize(root).unwrap();
        let package = |name: &str, bins: &[&str], deps: &[&str]| Package {
            name: name.into(),
            manifest_path: root.join(format!("crates/{name}/Cargo.toml")),
            bins: bins.iter().map(|b| b.to_string()).collect(),
            features: Vec::new(),
            path_deps: deps.iter().map(|d| d.to_string()).collect(),
        };
        CargoWorkspace {
            packages: vec![
                package("shared", &[], &[]),
                package("tool", &["tool"], &["shared"]),
                package("unrelated", &[], &[]),
            ],
            toolchain: Toolchain {
                version: rustc.into(),
                host: "x86_64-unknown-linux-gnu".into(),
                targets: vec!["x86_64-unknown-linux-gnu".into()],
                env: BTreeMap::new(),
            },
            root,
        }
    }

    fn plan(root: &Path, rustc: &str) -> Plan {
        let graph = crate::LayerGraph::load(&testing::dirs(root), root).unwrap();
        let all = graph.build_order().to_vec();
        let opts = PlanOptions {
            cargo: Some(Arc::new(cargo_of(root, rustc))),
            ..Default::default()
        };
        crate::plan::plan(&graph, &all, &opts).unwrap()
    }

    #[test]
    fn a_host_gear_is_fingerprinted_by_what_reaches_its_binary() {
        let ws = rust_workspace("package = \"tool\"\n");
        let root = ws.path();
        let before = plan(root, "rustc 1.0.0");
        let tool = before.get("tool").unwrap();
        let files: Vec<&str> = tool
            .built()
            .unwrap()
            .files
            .iter()
            .map(|f| f.digest.tar_path.as_str())
            .collect();
        assert_eq!(
            files,
            [
                "cargo/Cargo.lock",
                "cargo/Cargo.toml",
                "cargo/crates/shared/Cargo.toml",
                "cargo/crates/shared/src/lib.rs",
                "cargo/crates/tool/Cargo.toml",
                "cargo/crates/tool/src/main.rs",
            ]
        );
        assert_eq!(
            tool.gear().unwrap().manifest.command.as_deref(),
            Some("/usr/local/bin/tool")
        );
        let fingerprint = |p: &Plan| p.get("tool").unwrap().fingerprint;
        std::fs::write(root.join("crates/unrelated/src/lib.rs"), "pub fn h() {}\n").unwrap();
        assert_eq!(fingerprint(&plan(root, "rustc 1.0.0")), tool.fingerprint);
        assert_ne!(fingerprint(&plan(root, "rustc 1.0.1")), tool.fingerprint);
        // RUSTFLAGS and the like change the binary: they change the fingerprint.
        let graph = crate::LayerGraph::load(&testing::dirs(root), root).unwrap();
        let mut cargo = cargo_of(root, "rustc 1.0.0");
        cargo
            .toolchain
            .env
            .insert("RUSTFLAGS".into(), "-C target-cpu=native".into());
        let opts = PlanOptions {
            cargo: Some(Arc::new(cargo)),
            ..Default::default()
        };
        let flagged = crate::plan::plan(&graph, graph.build_order(), &opts).unwrap();
        assert_ne!(fingerprint(&flagged), tool.fingerprint);
        std::fs::write(root.join("crates/shared/src/lib.rs"), "pub fn f2() {}\n").unwrap();
        assert_ne!(fingerprint(&plan(root, "rustc 1.0.0")), tool.fingerprint);
    }

    #[test]
    fn the_build_environment_is_what_changes_cargos_output() {
        for name in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
        ] {
            assert!(is_build_env(name), "{name}");
        }
        for name in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_TERM_COLOR",
            "PATH",
        ] {
            assert!(!is_build_env(name), "{name}");
        }
    }

    #[test]
    fn a_host_binary_for_another_architecture_than_the_image_is_refused() {
        let ws = rust_workspace("package = \"tool\"\n");
        let root = ws.path();
        let graph = crate::LayerGraph::load(&testing::dirs(root), root).unwrap();
        let all = graph.build_order().to_vec();
        let opts = PlanOptions {
            cargo: Some(Arc::new(cargo_of(root, "rustc 1.0.0"))),
            platform: "linux/arm64".parse().unwrap(),
            ..Default::default()
        };
        let Err(crate::plan::PlanError::Invalid(problems)) = crate::plan::plan(&graph, &all, &opts)
        else {
            panic!("planned for arm64");
        };
        let p = problems.iter().next().unwrap();
        assert_eq!(p.code, "gear::cargo-platform");
        assert_eq!(
            p.message,
            "gear `tool` is for linux/arm64, but its binary would be built for x86_64-unknown-linux-gnu"
        );
        assert!(
            p.help
                .as_deref()
                .unwrap()
                .contains("aarch64-unknown-linux-musl")
        );
    }

    #[test]
    fn an_in_image_gear_builds_in_a_stage_from_its_parent_with_the_whole_workspace() {
        let ws = rust_workspace("package = \"tool\"\nin-image = true\nprofile = \"dev\"\n");
        let root = ws.path();
        let planned = plan(root, "rustc 1.0.0");
        let tool = planned.get("tool").unwrap().built().unwrap();
        insta::assert_snapshot!(tool.dockerfile);
        assert!(
            tool.files
                .iter()
                .any(|f| f.digest.tar_path == "cargo/crates/unrelated/src/lib.rs")
        );
        // The host's toolchain does not build it.
        assert_eq!(
            plan(root, "rustc 9.9.9").get("tool").unwrap().fingerprint,
            planned.get("tool").unwrap().fingerprint
        );
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn tar_paths(dir: &Path, root: &Path) -> Vec<String> {
        let mut files = BTreeMap::new();
        package_files(dir, root, &mut files).unwrap();
        files.into_keys().collect()
    }

    #[test]
    fn package_files_are_what_cargo_package_takes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        write(&root, "Cargo.toml", "[workspace]\nmembers = [\"a\"]\n");
        write(
            &root,
            "a/Cargo.toml",
            "[package]\nname = \"a\"\nexclude = [\"*.bak\"]\n",
        );
        write(&root, "a/src/main.rs", "fn main() {}\n");
        write(&root, "a/src/old.bak", "");
        write(&root, "a/.gitignore", "ignored.txt\n");
        write(&root, "a/ignored.txt", "");
        write(&root, "a/target/release/a", "");
        write(&root, "a/.hidden/x", "");
        write(&root, "a/nested/Cargo.toml", "[package]\nname = \"n\"\n");
        write(&root, "a/nested/src/lib.rs", "");
        // The package is also a gear's directory.
        write(&root, "a/Gear.toml", "[gear]\n");
        write(&root, "a/manifest.json", "{}\n");
        write(&root, "a/.gearignore", "x\n");
        assert_eq!(
            tar_paths(&root.join("a"), &root),
            [
                "cargo/a/.gitignore",
                "cargo/a/Cargo.toml",
                "cargo/a/src/main.rs"
            ]
        );
    }

    #[test]
    fn include_takes_only_its_files_and_the_manifest_and_follows_the_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        write(
            &root,
            "Cargo.toml",
            "[workspace]\nmembers = [\"a\"]\n[workspace.package]\ninclude = [\"src/**\"]\n",
        );
        write(
            &root,
            "a/Cargo.toml",
            "[package]\nname = \"a\"\ninclude.workspace = true\n",
        );
        write(&root, "a/src/main.rs", "fn main() {}\n");
        write(&root, "a/README.md", "");
        assert_eq!(
            tar_paths(&root.join("a"), &root),
            ["cargo/a/Cargo.toml", "cargo/a/src/main.rs"]
        );
    }

    #[test]
    fn cargo_args_and_profile_dirs() {
        let plan = BuildPlan {
            package: "p".into(),
            bin: "b".into(),
            features: vec!["x".into(), "y".into()],
            no_default_features: true,
            profile: "dev".into(),
            target: Some("x86_64-unknown-linux-musl".into()),
            triple: Some("x86_64-unknown-linux-musl".into()),
            to: "/usr/local/bin/b".into(),
            place: BuildPlace::Host,
            packages: vec!["p".into()],
            settings: String::new(),
        };
        assert_eq!(
            plan.cargo_args().join(" "),
            "build --locked --profile dev -p p --bin b --no-default-features --features x,y --target x86_64-unknown-linux-musl"
        );
        assert_eq!(plan.profile_dir(), "debug");
        assert_eq!(plan.bin_tar_path(), ".cargo-gear/bin/b");
    }
}
