//! Rust gears on the real engine (issue 10): Cargo packages of the workspace built into gears.
//! A scratch Cargo workspace with a shared path dependency, an unrelated crate and three
//! binaries: built from nothing with one `cargo build`, fully fresh without running Cargo
//! (the `cargo_invocations` of the JSON events), each edit rebuilding exactly the gears whose
//! binary it reaches, a compile error failing its gear with Cargo's diagnostic and skipping
//! its dependents, `cargo gear run` of a Rust gear; and the in-image variant, built in a
//! stage `FROM` a layer with Debian's `cargo`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::scratch::{self, Build, Plan};
use crate::support;

const TIMEOUT: Duration = Duration::from_secs(900);

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let old = std::fs::read_to_string(path).unwrap();
    write(path, &(old + text));
}

/// `[package]` of a crate; `rust-version` keeps Cargo.lock at version 3, which Debian
/// bookworm's cargo reads.
fn package(name: &str, deps: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\nrust-version = \"1.63\"\n\n[dependencies]\n{deps}"
    )
}

/// A gear named `name` built `from` a layer, shipping package `name`'s binary.
fn rust_gear(name: &str, from: &str, id: &str, cargo_extra: &str) -> String {
    format!(
        "[gear]\nname = \"{name}\"\nfrom = \"{from}\"\nimage = \"cargo-gear-test/{id}-{name}\"\n\
         version = \"0.1.0\"\nlabel = \"{name}\"\ndescription = \"A Rust gear.\"\n\
         author = \"cargo-gear tests\"\nlicense = \"MIT\"\n{labels}\n\
         [gear.inputs.data]\nbase = \"file\"\n\n[gear.cargo]\npackage = \"{name}\"\n{cargo_extra}",
        labels = scratch::labels_line(id),
    )
}

/// A binary that writes `output/<name>.txt`: its greeting (from `shared` when it uses it)
/// and the size of its input `data`.
fn main_rs(name: &str, uses_shared: bool) -> String {
    let greeting = if uses_shared {
        "shared::greeting()".to_string()
    } else {
        format!("\"{name}\"")
    };
    format!(
        r#"use std::fs;
fn main() {{
    let dir = std::env::var("FLYWHEEL").unwrap_or_else(|_| "/flywheel/v0".to_string());
    let size: u64 = fs::read_dir(format!("{{dir}}/input/data"))
        .map(|d| d.flatten().map(|e| e.metadata().map(|m| m.len()).unwrap_or(0)).sum())
        .unwrap_or(0);
    let text = format!("{{}} {{size}}\n", {greeting});
    print!("{{text}}");
    if fs::write(format!("{{dir}}/output/{name}.txt"), text).is_err() {{
        std::process::exit(2);
    }}
}}
"#
    )
}

/// The scratch workspace: crates `shared` (library), `unrelated` (library), `alpha` and
/// `beta` (binaries using `shared`), `gamma` (a binary on its own); gears `alpha`, `beta`,
/// `gamma` on the Debian fixture, and a layer `alpha-child` built on `alpha`.
fn workspace(root: &Path, id: &str) {
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/*\"]\n\n\
         [workspace.metadata.gear]\nmembers = [\"layers/*\", \"gears/*\"]\n",
    );
    write(&root.join(".gitignore"), "target/\n");
    write(
        &root.join("crates/shared/Cargo.toml"),
        &package("shared", ""),
    );
    write(
        &root.join("crates/shared/src/lib.rs"),
        "pub fn greeting() -> &'static str {\n    \"hello\"\n}\n",
    );
    write(
        &root.join("crates/unrelated/Cargo.toml"),
        &package("unrelated", ""),
    );
    write(&root.join("crates/unrelated/src/lib.rs"), "pub fn x() {}\n");
    for (name, shared) in [("alpha", true), ("beta", true), ("gamma", false)] {
        let deps = if shared {
            "shared = { path = \"../shared\" }\n"
        } else {
            ""
        };
        write(
            &root.join(format!("crates/{name}/Cargo.toml")),
            &package(name, deps),
        );
        write(
            &root.join(format!("crates/{name}/src/main.rs")),
            &main_rs(name, shared),
        );
        write(
            &root.join(format!("gears/{name}/Gear.toml")),
            &rust_gear(name, "base", id, ""),
        );
    }
    write(
        &root.join("layers/base/Gear.toml"),
        &format!(
            "[layer]\nname = \"base\"\nimage = \"{}\"\ndistro = \"debian\"\n",
            support::DEBIAN_PYTHON
        ),
    );
    write(
        &root.join("layers/alpha-child/Gear.toml"),
        &format!(
            "[layer]\nname = \"alpha-child\"\nfrom = \"alpha\"\nimage = \"cargo-gear-test/{id}-alpha-child\"\n{}run = [\"alpha > /alpha.txt\"]\n",
            scratch::labels_line(id)
        ),
    );
}

/// `cargo-gear gear ARGS` in the workspace (a Cargo workspace: no `--root`), its own target
/// directory.
fn gear(root: &Path, args: &[&str]) -> Command {
    let mut cmd = scratch::gear_command(root, args, &[]);
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd
}

fn build(root: &Path, args: &[&str]) -> Build {
    let mut all = vec!["build", "--message-format", "json"];
    all.extend_from_slice(args);
    Build::parse(scratch::run_to_end(gear(root, &all), TIMEOUT))
}

fn plan(root: &Path) -> Plan {
    let out = scratch::run_to_end(gear(root, &["plan", "--format", "json"]), TIMEOUT);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    Plan::parse(&out.stdout)
}

/// `cargo gear run -p GEAR --input data=FILE`, FILE holding `contents`.
fn run_on(root: &Path, gear_name: &str, contents: &str) -> scratch::Out {
    let input = root.join("input.bin");
    write(&input, contents);
    let data = format!("data={}", input.display());
    let out = scratch::run_to_end(
        gear(root, &["run", "-p", gear_name, "--input", &data]),
        TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

/// The output file `file` of the one run of `gear_name` under `target/gear/runs`.
fn run_output(root: &Path, gear_name: &str, file: &str) -> String {
    let runs: Vec<_> = std::fs::read_dir(root.join("target/gear/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{gear_name}-"))
        })
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    std::fs::read_to_string(runs[0].join("output").join(file)).unwrap()
}

/// The `cargo-finished` events: (layers compiled for, layers that failed).
fn cargo_runs(build: &Build) -> Vec<(Vec<String>, Vec<String>)> {
    build
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            scratch::BuildEvent::CargoFinished(c) => Some((c.layers.clone(), c.failed.clone())),
            _ => None,
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    scratch::names(names)
}

/// The scratch workspace of one test on the engine; removes the test's images when the test
/// ends, however it ends.
struct Scratch {
    id: String,
    root: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
    engine: cargo_gear::engine::Engine,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// The scratch [`workspace`] of the test `test`; None (after a note) when the engine
    /// tests are skipped.
    fn new(test: &str) -> Option<Scratch> {
        Scratch::with(test, workspace)
    }

    /// A scratch workspace that `populate` writes at its root, given the test's ID.
    fn with(test: &str, populate: impl FnOnce(&Path, &str)) -> Option<Scratch> {
        let (rt, engine) = scratch::connect()?;
        rt.block_on(support::require_fixture(&engine, support::DEBIAN_PYTHON));
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("ws");
        let id = support::unique(test);
        populate(&root, &id);
        Some(Scratch {
            id,
            root,
            rt,
            engine,
            _dir: dir,
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.rt.block_on(scratch::remove_labelled_images(
            self.engine.docker(),
            &self.id,
        ));
    }
}

#[test]
fn rust_gears_rebuild_exactly_what_an_edit_reaches() {
    let Some(s) = Scratch::new("rust") else {
        return;
    };
    scenario(&s.root);
}

fn scenario(root: &Path) {
    // From nothing: one cargo build for the three Rust gears, then their images.
    let first = build(root, &[]);
    first.assert_success();
    assert_eq!(
        first.with_outcome(support_outcome::BUILT),
        set(&["alpha", "alpha-child", "beta", "gamma"])
    );
    assert_eq!(
        cargo_runs(&first),
        [(
            vec!["alpha".to_string(), "beta".to_string(), "gamma".to_string()],
            vec![]
        )]
    );
    assert_eq!(first.end().cargo_invocations, 1);

    // Again: everything fresh, and Cargo is not run at all.
    let again = build(root, &[]);
    again.assert_success();
    assert_eq!(again.counts(), [0, 5, 0, 0, 0]);
    assert_eq!(again.end().cargo_invocations, 0);
    assert!(cargo_runs(&again).is_empty(), "{:?}", again.events);

    // An unrelated crate of the workspace: nothing is stale.
    append(&root.join("crates/unrelated/src/lib.rs"), "pub fn y() {}\n");
    assert!(plan(root).stale().is_empty(), "{:?}", plan(root).0);

    // The gear's own crate: that gear only.
    append(&root.join("crates/gamma/src/main.rs"), "// edited\n");
    let p = plan(root);
    assert_eq!(p.stale(), ["gamma"].into_iter().collect());
    assert_eq!(
        p.status("gamma"),
        ("stale", vec!["file crates/gamma/src/main.rs changed"])
    );
    let one = build(root, &[]);
    one.assert_success();
    assert_eq!(one.with_outcome(support_outcome::BUILT), set(&["gamma"]));
    assert_eq!(cargo_runs(&one), [(vec!["gamma".to_string()], vec![])]);

    // The shared path dependency: exactly the gears using it (and what is built on them).
    append(&root.join("crates/shared/src/lib.rs"), "pub fn more() {}\n");
    let p = plan(root);
    assert_eq!(
        p.stale(),
        ["alpha", "alpha-child", "beta"].into_iter().collect()
    );
    assert_eq!(
        p.status("alpha"),
        ("stale", vec!["file crates/shared/src/lib.rs changed"])
    );
    assert_eq!(
        p.status("alpha-child"),
        ("stale", vec!["parent alpha changed"])
    );
    let shared = build(root, &[]);
    shared.assert_success();
    assert_eq!(
        shared.with_outcome(support_outcome::BUILT),
        set(&["alpha", "alpha-child", "beta"])
    );

    // A compile error: that gear fails with Cargo's diagnostic, its dependents are skipped,
    // and with --keep-going the other stale Rust gear is still compiled and built.
    append(&root.join("crates/alpha/src/main.rs"), "fn broken( {\n");
    append(&root.join("crates/beta/src/main.rs"), "// edited\n");
    let broken = build(root, &["--keep-going"]);
    broken.assert_code(1);
    assert_eq!(broken.outcome("alpha"), support_outcome::FAILED);
    assert_eq!(broken.outcome("alpha-child"), support_outcome::SKIPPED);
    assert_eq!(broken.outcome("beta"), support_outcome::BUILT);
    let failure = broken.finished("alpha").failure.as_ref().unwrap();
    assert!(
        failure.error.contains("unclosed delimiter")
            && failure.error.contains("crates/alpha/src/main.rs"),
        "{failure:?}"
    );
    assert!(
        broken
            .out
            .stderr
            .contains("error: this file contains an unclosed delimiter"),
        "Cargo's own diagnostic on stderr:\n{}",
        broken.out.stderr
    );
    assert_eq!(
        cargo_runs(&broken),
        [(
            vec!["alpha".to_string(), "beta".to_string()],
            vec!["alpha".to_string()]
        )]
    );

    // `cargo gear run` of a Rust gear: its binary, from PATH, writes the output.
    run_on(root, "gamma", "0123456789");
    assert_eq!(run_output(root, "gamma", "gamma.txt"), "gamma 10\n");
}

/// Outcomes, by the binary's own type.
mod support_outcome {
    use cargo_gear::progress::Outcome;
    pub const BUILT: Outcome = Outcome::Built;
    pub const FAILED: Outcome = Outcome::Failed;
    pub const SKIPPED: Outcome = Outcome::Skipped;
}

#[test]
fn an_in_image_rust_gear_builds_in_a_stage_from_a_layer_with_cargo() {
    let Some(s) = Scratch::new("rust-in-image") else {
        return;
    };
    let (root, id) = (&s.root, &s.id);
    write(
        &root.join("layers/rust-builder/Gear.toml"),
        &format!(
            "[layer]\nname = \"rust-builder\"\nfrom = \"base\"\nimage = \"cargo-gear-test/{id}-rust-builder\"\n{}packages = [\"cargo\"]\n",
            scratch::labels_line(id)
        ),
    );
    write(
        &root.join("gears/beta/Gear.toml"),
        &rust_gear("beta", "rust-builder", id, "in-image = true\n"),
    );
    let dockerfile = scratch::run_to_end(gear(root, &["dockerfile", "-p", "beta"]), TIMEOUT);
    assert!(
        dockerfile.stdout.contains(" AS cargo-build\n")
            && dockerfile
                .stdout
                .contains("COPY --from=cargo-build /cargo-gear/out/beta /usr/local/bin/beta"),
        "{}",
        dockerfile.stdout
    );
    let built = build(root, &["-p", "beta"]);
    built.assert_success();
    assert_eq!(built.outcome("beta"), support_outcome::BUILT);
    // Nothing is compiled on the host for an in-image gear.
    assert_eq!(built.end().cargo_invocations, 0);

    let out = run_on(root, "beta", "abc");
    assert!(out.stdout.contains("hello 3"), "{}", out.stdout);
    assert_eq!(run_output(root, "beta", "beta.txt"), "hello 3\n");

    // Its sources are in its build context: an edit of the shared crate makes it stale.
    append(&root.join("crates/shared/src/lib.rs"), "pub fn more() {}\n");
    assert_eq!(
        plan(root).status("beta"),
        ("stale", vec!["file crates/shared/src/lib.rs changed"])
    );
}

/// A host-built binary the image cannot load (stood in for by an `ldd` that reports a missing
/// library, as it does for a glibc older than the host's) fails its build with what to do.
#[test]
fn a_host_binary_the_image_cannot_load_fails_its_build_saying_what_to_do() {
    let Some(s) = Scratch::new("rust-ldd") else {
        return;
    };
    let (root, id) = (&s.root, &s.id);
    write(
        &root.join("layers/old-libc/Gear.toml"),
        &format!(
            "[layer]\nname = \"old-libc\"\nfrom = \"base\"\nimage = \"cargo-gear-test/{id}-old-libc\"\n{}\
             run = [\"printf '#!/bin/sh\\\\necho \\\"libc.so.6: version GLIBC_9.99 not found\\\"\\\\n' > /usr/local/bin/ldd && chmod +x /usr/local/bin/ldd\"]\n",
            scratch::labels_line(id)
        ),
    );
    write(
        &root.join("gears/gamma/Gear.toml"),
        &rust_gear("gamma", "old-libc", id, ""),
    );
    let out = scratch::run_to_end(gear(root, &["build", "-p", "gamma"]), TIMEOUT);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.message().contains(
            "cargo-gear: gamma needs a C library this image lacks (built on a host with a newer glibc)"
        ) && out.message().contains("in-image = true"),
        "{}",
        out.stderr
    );
}

/// The example monorepo's Rust gear does its work: `cargo gear run` of `nifti-stats` on a
/// NIfTI-1 image writes its statistics, rounded as configured; a compressed image is refused
/// with exit code 1.
#[test]
fn the_example_rust_gear_computes_nifti_statistics() {
    let Some(s) = Scratch::with("rust-example", |root, id| {
        scratch::copy_monorepo_with_rust(root);
        scratch::isolate(root, id);
    }) else {
        return;
    };
    let root = &s.root;
    let run = |input: &Path| {
        let mut cmd = scratch::gear_command(
            root,
            &[
                "run",
                "-p",
                "nifti-stats",
                "--input",
                &format!("image={}", input.display()),
                "--config",
                "decimals=2",
            ],
            &scratch::SUBSTITUTES,
        );
        cmd.env_remove("CARGO_TARGET_DIR");
        scratch::run_to_end(cmd, TIMEOUT)
    };
    let tiny = root.join("crates/nifti-stats/tests/data/tiny.nii");
    let out = run(&tiny);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let stats: serde_json::Value =
        serde_json::from_str(&run_output(root, "nifti-stats", "nifti-stats.json")).unwrap();
    assert_eq!(
        stats,
        serde_json::json!({"dims": [2, 2, 1], "voxel_size": [1.5, 1.5, 1.5], "datatype": "int16",
                           "voxels": 4, "nonzero": 3, "min": 0.0, "max": 3.0, "mean": 1.5,
                           "std": 1.12})
    );

    let gz = root.join("t1.nii.gz");
    std::fs::write(&gz, [&[0x1f, 0x8b][..], &[0; 400]].concat()).unwrap();
    let refused = run(&gz);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("a compressed image (.nii.gz): decompress it first"),
        "{}",
        refused.stderr
    );
}
