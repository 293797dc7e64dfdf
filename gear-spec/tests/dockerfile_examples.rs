//! Snapshots of the Dockerfile generated for every built layer of examples/monorepo.

use std::path::{Path, PathBuf};

use gear_spec::LayerGraph;
use gear_spec::plan::{self, PlanOptions};

fn example_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for group in ["layers", "gears"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            dirs.push(entry.unwrap().path());
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn example_dockerfiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/monorepo")
        .canonicalize()
        .unwrap();
    let graph = LayerGraph::load(&example_dirs(&root), &root).unwrap_or_else(|p| panic!("{p:?}"));
    let all = graph.build_order().to_vec();
    let plan = plan::plan(&graph, &all, &PlanOptions::default()).unwrap();
    let mut built = 0;
    for layer in &plan.layers {
        let Some(dockerfile) = &layer.dockerfile else {
            continue;
        };
        built += 1;
        // FROM names the parent by content tag: stable as long as the parent's inputs are.
        let parent = plan.get(layer.parent.as_deref().unwrap()).unwrap();
        assert!(dockerfile.contains(&format!("FROM {}\n", parent.reference())));
        insta::assert_snapshot!(format!("dockerfile_{}", layer.name), dockerfile);
    }
    assert_eq!(built, 6);
}
