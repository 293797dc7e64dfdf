//! Shared by the end-to-end tests that drive the cargo-gear binary on a scratch copy of
//! examples/monorepo (e2e_build, e2e_run, e2e_registry): the example's layers, the copy and
//! its isolation (each built layer gets the test's own image repository and label), the
//! `cargo-gear gear` command line, JSON events and plans, and removing a test's images.
//! Include it beside support/engine.rs, which it uses as `crate::support`:
//! `#[path = "support/engine.rs"] mod support;` and `#[path = "support/scratch.rs"] mod scratch;`.

#![allow(dead_code)] // Each test crate uses a different part.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::Docker;
use bollard::models::ImageSummary;
use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use cargo_gear::engine::{Engine, ImageInfo};
use cargo_gear::schedule::FINGERPRINT_LABEL;
use serde_json::Value;

use crate::support;

/// The FreeSurfer stand-in image `cargo xtask engine start` creates.
pub const FREESURFER: &str = "cargo-gear-fixture/freesurfer:7.3.2";
/// `--substitute` of every command: the examples' Docker Hub images by the local fixtures.
pub const SUBSTITUTES: [(&str, &str); 2] = [
    ("freesurfer/freesurfer:7.3.2", FREESURFER),
    ("python:3.12-slim", support::DEBIAN_PYTHON),
];

/// The example's external layers, its built layers, and the gears among those.
pub const EXTERNAL: [&str; 2] = ["freesurfer", "python"];
pub const BUILT: [&str; 6] = [
    "fw-freesurfer",
    "fs-license-check",
    "recon-all",
    "fw-python",
    "csv-summary",
    "hello",
];
pub const GEARS: [&str; 4] = ["fs-license-check", "recon-all", "csv-summary", "hello"];

// ---------------------------------------------------------------------------------------
// The scratch copy
// ---------------------------------------------------------------------------------------

/// A current-thread runtime and the engine, or None (after a note) when the engine tests are
/// skipped.
pub fn connect() -> Option<(tokio::runtime::Runtime, Engine)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(support::engine())?;
    Some((rt, engine))
}

/// Copies examples/monorepo (without its `target/`) to `to`.
pub fn copy_monorepo(to: &Path) {
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/monorepo"),
        to,
    );
}

/// `cargo-gear-test/<id>-`: the start of every image repository of the test `id`.
pub fn image_prefix(id: &str) -> String {
    format!("cargo-gear-test/{id}-")
}

/// `labels = { "cargo-gear.test" = "<id>" }` and a newline: the line a layer of the test `id`
/// carries.
pub fn labels_line(id: &str) -> String {
    format!("labels = {{ \"{}\" = \"{id}\" }}\n", support::TEST_LABEL)
}

/// `cargo-gear.test=<id>`: the label filter of the test `id`'s images and containers.
pub fn label_filter(id: &str) -> String {
    format!("{}={id}", support::TEST_LABEL)
}

/// Gives every built layer of the copy at `root` the test `id`'s image repository
/// (`image = "example/X"` becomes `image = "cargo-gear-test/<id>-X"`) and label.
pub fn isolate(root: &Path, id: &str) {
    let mut rewritten = 0;
    for toml in gear_tomls(root) {
        let mut out = String::new();
        for line in read(&toml).lines() {
            match line.strip_prefix("image = \"example/") {
                Some(rest) => {
                    out += &format!("image = \"{}{rest}\n", image_prefix(id));
                    out += &labels_line(id);
                    rewritten += 1;
                }
                None => {
                    out += line;
                    out.push('\n');
                }
            }
        }
        write(&toml, &out);
    }
    assert_eq!(
        rewritten,
        BUILT.len(),
        "every built layer of the example has an `image = \"example/…\"` line"
    );
}

/// The Gear.toml files of `layers/*` and `gears/*`.
pub fn gear_tomls(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for group in ["layers", "gears"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let toml = entry.unwrap().path().join("Gear.toml");
            if toml.is_file() {
                out.push(toml);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// cargo gear
// ---------------------------------------------------------------------------------------

/// `cargo-gear gear ARGS --substitute FROM=TO…` in `root`, colors off.
pub fn gear_command(root: &Path, args: &[&str], substitutes: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("cargo-gear"));
    cmd.current_dir(root)
        .arg("gear")
        .args(args)
        .env("CARGO_TERM_COLOR", "never");
    for (from, to) in substitutes {
        cmd.arg("--substitute").arg(format!("{from}={to}"));
    }
    cmd
}

/// One line of `--message-format json`.
pub fn parse_event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"))
}

/// Built, fresh, pulled, failed, skipped, from the final event, which must be `build-finished`.
pub fn counts(last: Option<&Value>) -> [u64; 5] {
    let last = last.expect("events");
    assert_eq!(
        last["event"], "build-finished",
        "the last event ends the build"
    );
    ["built", "fresh", "pulled", "failed", "skipped"].map(|k| last[k].as_u64().unwrap())
}

/// `cargo gear plan --format json`'s layers. Each test file adds the questions it asks.
pub struct Plan(pub Vec<Value>);

impl Plan {
    /// From the stdout of `cargo gear plan --format json`.
    pub fn parse(stdout: &str) -> Plan {
        let v: Value = serde_json::from_str(stdout).unwrap();
        Plan(v["layers"].as_array().unwrap().clone())
    }

    pub fn layer(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not planned"))
    }

    pub fn version_tag(&self, name: &str) -> &str {
        self.layer(name)["version_tag"].as_str().unwrap()
    }
}

/// `target/gear/state/NAME.json` of the workspace at `root`.
pub fn record_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("target/gear/state/{name}.json"))
}

/// The build record of `name`, if there is one.
pub fn record(root: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(record_path(root, name)).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// Every build record of the workspace at `root` names an image (found with `image`) that
/// exists under the layer's content tag with the recorded fingerprint: nothing is recorded
/// that was not built and tagged.
pub fn assert_records_match_images(
    root: &Path,
    plan: &Plan,
    image: impl Fn(&str) -> Option<ImageInfo>,
) {
    for layer in &plan.0 {
        let name = layer["name"].as_str().unwrap();
        let Some(record) = record(root, name) else {
            continue;
        };
        let tag = format!(
            "{}:gear-{}",
            layer["image"].as_str().unwrap(),
            short(&record["fingerprint"])
        );
        let image =
            image(&tag).unwrap_or_else(|| panic!("{name} has a build record but no image {tag}"));
        assert_eq!(record["image_id"], image.id.as_str(), "{name}");
        assert_eq!(
            image.labels.get(FINGERPRINT_LABEL).map(String::as_str),
            Some(record["fingerprint"].as_str().unwrap()),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Clean-up
// ---------------------------------------------------------------------------------------

/// Removes every image carrying the test `id`'s label, children first (see
/// [`remove_children_first`]).
pub async fn remove_labelled_images(docker: &Docker, id: &str) {
    let options = ListImagesOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![label_filter(id)],
        )])),
        ..Default::default()
    };
    let Ok(images) = docker.list_images(Some(options)).await else {
        return;
    };
    remove_children_first(docker, images).await;
}

/// Removes `images`, children first, by ID (safe when only the test's images are given),
/// without pruning, so that the unlabelled intermediate images above them stay as docker's
/// build cache. Errors are ignored: this is clean-up.
pub async fn remove_children_first(docker: &Docker, mut left: Vec<ImageSummary>) {
    while !left.is_empty() {
        let parents: HashSet<String> = left.iter().map(|i| i.parent_id.clone()).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) =
            left.into_iter().partition(|i| !parents.contains(&i.id));
        if leaves.is_empty() {
            break;
        }
        for image in leaves {
            let options = RemoveImageOptions {
                force: true,
                noprune: true,
            };
            let _ = docker.remove_image(&image.id, Some(options), None).await;
        }
        left = rest;
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Copies a directory tree (files and executable bits), skipping `target/`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The first 12 hex digits of a `sha256:…` fingerprint.
pub fn short(fingerprint: &Value) -> String {
    fingerprint.as_str().unwrap().trim_start_matches("sha256:")[..12].to_owned()
}
