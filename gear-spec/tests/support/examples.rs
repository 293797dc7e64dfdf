//! The example monorepo (`examples/monorepo`) as the tests load it. Include it with
//! `#[path = "support/examples.rs"] mod examples;`.

#![allow(dead_code)] // Each test crate uses a part.

use std::path::{Path, PathBuf};

use gear_spec::LayerGraph;
use gear_spec::layer::GEAR_TOML;

/// The example monorepo's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/monorepo")
        .canonicalize()
        .unwrap()
}

/// Its layer and gear directories (`layers/*`, `gears/*` holding a Gear.toml), sorted.
pub fn dirs() -> Vec<PathBuf> {
    let root = root();
    let mut dirs: Vec<PathBuf> = ["layers", "gears"]
        .iter()
        .flat_map(|group| std::fs::read_dir(root.join(group)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(GEAR_TOML).is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Every layer and gear, loaded, checked and resolved; panics on any problem.
pub fn graph() -> LayerGraph {
    LayerGraph::load(&dirs(), &root()).unwrap_or_else(|p| panic!("{p:?}"))
}

/// The example's Cargo workspace as cargo-gear hands it to the plan (`cargo metadata`), with
/// a fixed toolchain so that fingerprints do not depend on the host's rustc.
pub fn cargo() -> gear_spec::rust::CargoWorkspace {
    let root = root();
    let package = |name: &str, bins: &[&str], path_deps: &[&str]| gear_spec::rust::Package {
        name: name.to_string(),
        manifest_path: root.join("crates").join(name).join("Cargo.toml"),
        bins: bins.iter().map(|b| b.to_string()).collect(),
        features: Vec::new(),
        path_deps: path_deps.iter().map(|d| d.to_string()).collect(),
    };
    gear_spec::rust::CargoWorkspace {
        packages: vec![
            package("flywheel-context", &[], &[]),
            package("nifti-stats", &["nifti-stats"], &["flywheel-context"]),
        ],
        toolchain: gear_spec::rust::Toolchain {
            version: "rustc 1.89.0 (example)\nhost: x86_64-unknown-linux-gnu\n".to_string(),
            host: "x86_64-unknown-linux-gnu".to_string(),
            targets: vec!["x86_64-unknown-linux-gnu".to_string()],
            env: Default::default(),
        },
        root,
    }
}

/// Plan options for the example: its Cargo workspace, no hash cache.
pub fn plan_options() -> gear_spec::plan::PlanOptions {
    gear_spec::plan::PlanOptions {
        cargo: Some(std::sync::Arc::new(cargo())),
        ..Default::default()
    }
}

/// Every layer of the example, planned.
pub fn plan() -> gear_spec::plan::Plan {
    let graph = graph();
    let all = graph.build_order().to_vec();
    gear_spec::plan::plan(&graph, &all, &plan_options()).unwrap_or_else(|e| panic!("{e:?}"))
}
