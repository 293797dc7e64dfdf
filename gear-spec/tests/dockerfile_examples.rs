//! Snapshots of the Dockerfile generated for every built layer of examples/monorepo.

#[path = "support/examples.rs"]
mod examples;

#[test]
fn example_dockerfiles() {
    let plan = examples::plan();
    let mut built = 0;
    for layer in &plan.layers {
        let Some(b) = layer.built() else {
            continue;
        };
        let dockerfile = &b.dockerfile;
        built += 1;
        // FROM names the parent by content tag: stable as long as the parent's inputs are.
        let parent = &plan.layers[b.parent];
        assert!(dockerfile.contains(&format!("FROM {}\n", parent.reference())));
        insta::assert_snapshot!(format!("dockerfile_{}", layer.name), dockerfile);
    }
    assert_eq!(built, 7);
}
