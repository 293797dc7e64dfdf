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
