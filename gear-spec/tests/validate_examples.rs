//! The example monorepo's Gear.toml files pass the per-layer checks.

use gear_spec::validate::check_layer;

#[path = "support/examples.rs"]
mod examples;

#[test]
fn example_layers_have_no_problems() {
    let graph = examples::graph();
    for layer in graph.layers() {
        let problems = check_layer(layer);
        assert!(problems.is_empty(), "{}: {problems:#?}", layer.rel_dir);
    }
    assert_eq!(graph.layers().len(), 9);
}
