//! `cargo gear import` on real public gears (`tests/fixtures/real-gears/`, sources in its
//! SOURCES.md): the Gear.toml each becomes (insta snapshots, with the external layer and the
//! warnings), the manifest round trip (the imported Gear.toml's manifest equals the original
//! manifest.json but for what the build derives), and the Dockerfile round trip over the
//! parsed instructions.

use std::path::{Path, PathBuf};

use gear_spec::Problems;
use gear_spec::diagnostic::SourceFile;
use gear_spec::dockerfile::parse;
use gear_spec::import::{Import, Source};
use gear_spec::layer::{GEAR_TOML, Layer};
use gear_spec::manifest::Manifest;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-gears")
}

/// Each fixture: (directory name, manifest.json, Dockerfile).
fn gears() -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(p.join("manifest.json")).unwrap(),
                std::fs::read_to_string(p.join("Dockerfile")).ok(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 11, "fixtures are missing");
    out
}

/// The parent a gear is imported onto: its base's layer name, or `base` when it has no
/// Dockerfile (`cargo gear import --from base`).
fn parent(import: &Import) -> String {
    import
        .base()
        .map_or("base".to_string(), |b| b.layer_name(|_| false))
}

#[test]
fn imported_gear_toml_of_every_real_gear() {
    for (name, manifest, dockerfile) in gears() {
        let import = Import::new(&manifest, dockerfile.as_deref()).unwrap();
        let parent = parent(&import);
        let mut out = import.gear_toml(&parent);
        if let Some(base) = import.base() {
            out.push_str(&format!("\n# ---- layers/{parent}/Gear.toml\n"));
            out.push_str(&base.layer_toml(&parent));
        }
        out.push_str("\n# ---- warnings\n");
        for w in import.warnings() {
            let file = match w.source {
                Source::Manifest => "manifest.json",
                Source::Dockerfile => "Dockerfile",
            };
            out.push_str(&format!(
                "{file}:{} {} `{}`: {}\n",
                w.line, w.code, w.subject, w.message
            ));
        }
        insta::assert_snapshot!(name, out);
    }
}

/// Keys the lead adds to the model on main (issue 9); until then the loader reports them as
/// unknown and the manifest lacks `flywheel`. Read from the model's schema, so this test
/// tightens by itself when they land.
fn pending_keys() -> Vec<&'static str> {
    let schema = gear_spec::schema::json_schema();
    let schema: Value = serde_json::from_str(&schema).unwrap();
    let known = |key: &str| {
        schema["$defs"]
            .as_object()
            .unwrap()
            .values()
            .any(|d| d["properties"].get(key).is_some())
    };
    ["steps", "flywheel", "dockerfile-file"]
        .into_iter()
        .filter(|k| !known(k))
        .collect()
}

/// What the build derives, removed from a manifest before comparing: `environment` (the
/// build fills it from the image), `custom.gear-builder.image` (`image:version`), and a
/// `gear-builder` left empty by that.
fn without_derived(mut m: Value) -> Value {
    let obj = m.as_object_mut().unwrap();
    obj.shift_remove("environment");
    if let Some(custom) = obj.get_mut("custom").and_then(Value::as_object_mut) {
        if let Some(builder) = custom
            .get_mut("gear-builder")
            .and_then(Value::as_object_mut)
        {
            builder.shift_remove("image");
            if builder.is_empty() {
                custom.shift_remove("gear-builder");
            }
        }
        if custom.is_empty() {
            obj.shift_remove("custom");
        }
    }
    m
}

/// Where two JSON values differ, as JSON pointers; numbers compare by value (`1` = `1.0`),
/// objects regardless of key order.
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let path = format!("{at}/{k}");
                match y.get(k) {
                    Some(w) => differences(v, w, &path, out),
                    None => out.push(format!("{path}: only in the original")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{at}/{k}: only in the imported gear's manifest"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (n, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, &format!("{at}/{n}"), out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => out.push(format!("{at}: {a} in the original, {b} imported")),
    }
}

/// Differences each fixture is expected to have, with the warning that says so.
const EXPECTED: &[(&str, &str)] = &[
    // `"flywheel": "0"`: Gear.toml's `flywheel` is a table (warning: `flywheel` … dropped).
    (
        "flywheel-apps__example-gear",
        "/flywheel: only in the original",
    ),
    (
        "scitran-apps__dicom-mr-classifier",
        "/flywheel: only in the original",
    ),
    // Flywheel's schema refuses `enum` on a file input; Gear.toml has no place for it
    // (warning: `inputs.skull-strip-template.enum` … dropped).
    (
        "flywheel-apps__fmriprep",
        "/inputs/skull-strip-template/enum: only in the original",
    ),
];

#[test]
fn manifest_round_trip_of_every_real_gear() {
    let pending = pending_keys();
    for (name, manifest, dockerfile) in gears() {
        let import = Import::new(&manifest, dockerfile.as_deref()).unwrap();
        let toml = import.gear_toml(&parent(&import));
        let dir = fixtures().join(&name);
        let source = SourceFile::new(dir.join(GEAR_TOML), format!("{name}/Gear.toml"), toml);
        let mut problems = Problems::default();
        let layer = Layer::parse(&dir, &fixtures(), source, &mut problems).unwrap_or_else(|| {
            panic!("{name}: the imported Gear.toml does not load: {problems:?}")
        });
        let unexpected: Vec<String> = problems
            .iter()
            .filter(|p| {
                !(p.code == "gear::unknown-field"
                    && pending
                        .iter()
                        .any(|k| p.message == format!("unknown field `{k}`")))
            })
            .map(|p| format!("{}: {}", p.code, p.message))
            .collect();
        assert!(unexpected.is_empty(), "{name}: {unexpected:?}");

        let original: Value = serde_json::from_str(&manifest).unwrap();
        let imported = Manifest::for_gear(&layer, Default::default()).to_value();
        let mut found = Vec::new();
        differences(
            &without_derived(original),
            &without_derived(imported),
            "",
            &mut found,
        );
        let expected: Vec<&str> = EXPECTED
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .chain(
                pending
                    .contains(&"flywheel")
                    .then_some("/flywheel: only in the original"),
            )
            .collect();
        found.retain(|d| !expected.contains(&d.as_str()));
        assert!(
            found.is_empty(),
            "{name}: the manifest differs:\n{}",
            found.join("\n")
        );
    }
}

/// The instructions a gear's generated Dockerfile must contain in order: every
/// instruction of the original but FROM (the parent's content tag replaces it), LABEL,
/// ENTRYPOINT and CMD (the frame writes them from `labels`, `entrypoint`, `cmd`) and the
/// COPY of manifest.json alone into /flywheel/v0 (the frame copies the generated one; with
/// other sources, as in dicom-mr-classifier, the step keeps the others).
fn expected_sequence(dockerfile: &str) -> Vec<String> {
    let d = parse::parse(dockerfile).unwrap();
    let mut vars = indexmap::IndexMap::new();
    let mut out = Vec::new();
    for i in &d.instructions {
        if i.keyword == "ENV" {
            for p in parse::pairs(i, d.escape) {
                let value = parse::expand(&p.value.unwrap_or_default(), &vars);
                vars.insert(p.name, value.unwrap_or_default());
            }
        }
        let copies_manifest = i.keyword == "COPY"
            && parse::copy_paths(i, d.escape).is_some_and(|(sources, dest)| {
                let dest = parse::expand(&dest.text, &vars).unwrap_or_default();
                sources.len() == 1
                    && sources[0].text == "manifest.json"
                    && ["/flywheel/v0/manifest.json", "/flywheel/v0/"].contains(&dest.as_str())
            });
        let frame = matches!(i.keyword.as_str(), "FROM" | "LABEL")
            || (matches!(i.keyword.as_str(), "ENTRYPOINT" | "CMD") && i.exec.is_some());
        if copies_manifest || frame {
            continue;
        }
        out.push(match i.keyword.as_str() {
            // ADD of local files is a copy step; of URLs a raw line.
            "ADD" if !i.args.contains("://") => "COPY".to_string(),
            k => k.to_string(),
        });
    }
    out
}

/// The instruction kinds the imported steps stand for, in order (each `dockerfile` line is
/// one instruction; a `copy` of sources is one COPY).
fn step_sequence(gear_toml: &str) -> Vec<String> {
    let doc: toml_edit::DocumentMut = gear_toml.parse().unwrap();
    let Some(steps) = doc["gear"]
        .get("steps")
        .and_then(|s| s.as_array_of_tables())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for step in steps.iter() {
        let kind = [
            "run",
            "copy",
            "env",
            "arg",
            "workdir",
            "user",
            "shell",
            "dockerfile",
        ]
        .into_iter()
        .find(|k| step.contains_key(k))
        .unwrap();
        match kind {
            "dockerfile" => {
                for line in step[kind].as_array().unwrap() {
                    let line = line.as_str().unwrap();
                    out.push(line.split_whitespace().next().unwrap().to_ascii_uppercase());
                }
            }
            _ => out.push(kind.to_ascii_uppercase()),
        }
    }
    out
}

#[test]
fn steps_stand_for_the_same_instructions_in_the_same_order() {
    let mut checked = 0;
    for (name, manifest, dockerfile) in gears() {
        let Some(dockerfile) = dockerfile else {
            continue;
        };
        let import = Import::new(&manifest, Some(&dockerfile)).unwrap();
        if import.keeps_dockerfile() {
            continue;
        }
        checked += 1;
        assert_eq!(
            step_sequence(&import.gear_toml("base")),
            expected_sequence(&dockerfile),
            "{name}"
        );
    }
    assert!(checked >= 7, "{checked} gears checked");
}
