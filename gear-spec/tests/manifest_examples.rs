//! Manifests of the example gears in `examples/monorepo`: snapshots, Flywheel's schema,
//! and the gear-builder image rule.

use std::path::Path;

use gear_spec::manifest::Manifest;
use serde_json::Value;

#[path = "support/examples.rs"]
mod examples;

/// `(gear name, manifest)` for every example gear, in name order, as the plan makes them
/// (a Rust gear's `command` comes from its resolved binary).
fn example_manifests() -> Vec<(String, Manifest)> {
    let mut gears: Vec<(String, Manifest)> = examples::plan()
        .layers
        .iter()
        .filter_map(|l| Some((l.name.clone(), l.gear()?.manifest.clone())))
        .collect();
    gears.sort_by(|a, b| a.0.cmp(&b.0));
    gears
}

fn flywheel_validator() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flywheel/manifest.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the Flywheel schema compiles offline")
}

#[test]
fn examples_are_all_there() {
    let names: Vec<String> = example_manifests().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "csv-summary",
            "fs-license-check",
            "hello",
            "nifti-stats",
            "recon-all"
        ]
    );
}

#[test]
fn example_manifests_snapshot() {
    for (name, manifest) in example_manifests() {
        insta::assert_snapshot!(name.clone(), manifest.render());
    }
}

#[test]
fn example_manifests_match_flywheel_schema() {
    let validator = flywheel_validator();
    for (name, manifest) in example_manifests() {
        let value: Value = serde_json::from_str(&manifest.render()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn example_manifests_image_tag_is_version() {
    for (name, manifest) in example_manifests() {
        let image = manifest.custom["gear-builder"]["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no gear-builder.image"));
        let (repo, tag) = image.rsplit_once(':').unwrap();
        assert!(!tag.contains('/'), "{name}: {image} has no tag");
        assert_eq!(tag, manifest.version, "{name}");
        assert!(repo.starts_with("example/"), "{name}: {image}");
    }
}

/// Same content as the hand-written manifest.json next to each example Gear.toml (key
/// order aside); the CLI regenerates those files, so this compares values, not bytes.
#[test]
fn example_manifests_agree_with_checked_in_values() {
    for (name, manifest) in example_manifests() {
        let path = examples::root()
            .join("gears")
            .join(&name)
            .join("manifest.json");
        let checked_in: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let generated: Value = serde_json::from_str(&manifest.render()).unwrap();
        assert_eq!(generated, checked_in, "{name}");
    }
}
