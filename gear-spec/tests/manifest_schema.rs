//! The vendored Flywheel manifest schema, checked offline with `jsonschema` against real
//! gear manifests: the ones Flywheel accepts pass, the broken ones fail for the
//! documented reason (so the validator is known to enforce the schema).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flywheel")
}

fn validator(formats: bool) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("manifest.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(formats)
        .build(&schema)
        .expect("the Flywheel schema compiles offline")
}

fn real_gear(dir: &str) -> Value {
    let path = fixtures()
        .join("real-gears")
        .join(dir)
        .join("manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(message, instance path, schema path)` of every error.
fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<(String, String, String)> {
    v.iter_errors(instance)
        .map(|e| {
            (
                e.to_string(),
                e.instance_path.to_string(),
                e.schema_path.to_string(),
            )
        })
        .collect()
}

/// Valid with and without format checking (SOURCES.md: "valid / valid").
const VALID: &[&str] = &[
    "flywheel-apps__bids-freesurfer",
    "flywheel-apps__debug-generatefile",
    "flywheel-apps__example-gear",
    "flywheel-apps__pydeface-gear",
    "scitran-apps__dicom-mr-classifier",
];

#[test]
fn every_fixture_is_classified() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixtures().join("real-gears"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut known: Vec<&str> = VALID.to_vec();
    known.extend([
        "Nialljb__fw-SynthSeg-gear",
        "flywheel-apps__GRP-14",
        "flywheel-apps__fmriprep",
    ]);
    known.sort();
    assert_eq!(dirs, known);
}

#[test]
fn valid_real_gears_validate() {
    for formats in [false, true] {
        let v = validator(formats);
        for dir in VALID {
            let errs = errors(&v, &real_gear(dir));
            assert!(errs.is_empty(), "{dir} (formats: {formats}): {errs:#?}");
        }
    }
}

#[test]
fn grp14_breaks_the_name_pattern() {
    for formats in [false, true] {
        let errs = errors(&validator(formats), &real_gear("flywheel-apps__GRP-14"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].1, "/name");
        assert!(errs[0].2.ends_with("/properties/name/pattern"), "{errs:#?}");
    }
}

#[test]
fn fmriprep_has_a_malformed_file_input() {
    for formats in [false, true] {
        let errs = errors(&validator(formats), &real_gear("flywheel-apps__fmriprep"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].1, "/inputs/skull-strip-template");
        assert!(
            errs[0]
                .2
                .contains("/properties/inputs/additionalProperties/anyOf"),
            "{errs:#?}"
        );
    }
}

#[test]
fn synthseg_source_with_trailing_space_fails_only_with_formats() {
    let gear = real_gear("Nialljb__fw-SynthSeg-gear");
    assert!(errors(&validator(false), &gear).is_empty());
    let errs = errors(&validator(true), &gear);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].1, "/source");
}

#[test]
fn draft4_meta_schema_is_enforced_on_config() {
    // Config snippets must be draft-04 schemas: a numeric `exclusiveMaximum` is not one,
    // which is why cargo-gear renders exclusive bounds in the boolean form.
    let v = validator(true);
    let mut m = real_gear("flywheel-apps__debug-generatefile");
    m["config"]["n"] = serde_json::json!({ "type": "integer", "exclusiveMaximum": 5 });
    assert!(!errors(&v, &m).is_empty());
    m["config"]["n"] =
        serde_json::json!({ "type": "integer", "maximum": 5, "exclusiveMaximum": true });
    assert!(errors(&v, &m).is_empty(), "{:#?}", errors(&v, &m));
    m["config"]["n"] = serde_json::json!({ "type": "integer", "default": 1, "optional": true });
    assert!(!errors(&v, &m).is_empty());
}
