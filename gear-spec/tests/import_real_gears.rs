//! `cargo gear import` on real public gears (`tests/fixtures/real-gears/`, sources in its
//! SOURCES.md): the Gear.toml each becomes (insta snapshots, with the external layer and the
//! warnings), the manifest round trip (the imported Gear.toml's manifest equals the original
//! manifest.json but for what the build derives), and the Dockerfile round trip (the
//! Dockerfile cargo-gear generates for the imported gear holds the original's instructions in
//! order).

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

/// The instructions a gear's generated Dockerfile must contain in order, an ADD of local
/// files as the COPY it becomes: every
/// instruction of the original but FROM (the parent's content tag replaces it), LABEL,
/// ENTRYPOINT and CMD (the frame writes them from `labels`, `entrypoint`, `cmd`) and the
/// COPY of manifest.json alone into /flywheel/v0 (the frame copies the generated one; with
/// other sources, as in dicom-mr-classifier, the step keeps the others).
fn kept_instructions(dockerfile: &str) -> Vec<parse::Instruction> {
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
        let frame = matches!(i.keyword.as_str(), "FROM" | "LABEL")
            || (matches!(i.keyword.as_str(), "ENTRYPOINT" | "CMD") && i.exec.is_some());
        if frame {
            continue;
        }
        let mut i = i.clone();
        // manifest.json copied into /flywheel/v0: the frame copies the generated one.
        if i.keyword == "COPY"
            && let Some((sources, dest)) = parse::copy_paths(&i, d.escape)
            && ["/flywheel/v0/manifest.json", "/flywheel/v0/"].contains(
                &parse::expand(&dest.text, &vars)
                    .unwrap_or_default()
                    .as_str(),
            )
        {
            let kept: Vec<String> = sources
                .iter()
                .map(|s| s.text.clone())
                .filter(|s| s != "manifest.json")
                .collect();
            if kept.is_empty() {
                continue;
            }
            i.args = format!("{} {}", kept.join(" "), dest.text);
        }
        // ADD of local files is a copy step; of URLs a raw line.
        if i.keyword == "ADD" && !i.args.contains("://") {
            i.keyword = "COPY".into();
        }
        out.push(i);
    }
    out
}

/// An instruction as compared across the round trip: its keyword and its meaning
/// (whitespace runs collapsed; ENV/ARG pairs unquoted; a COPY's sources, without the
/// `copy/` the generated one puts them under and a leading `./`, and destination).
fn meaning(i: &parse::Instruction, escape: char) -> String {
    let collapse = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let body = match i.keyword.as_str() {
        "ENV" | "ARG" => parse::pairs(i, escape)
            .into_iter()
            .map(|p| format!("{}={:?}", p.name, p.value))
            .collect::<Vec<_>>()
            .join(" "),
        "COPY" | "ADD" => match parse::copy_paths(i, escape) {
            Some((sources, dest)) => {
                let sources: Vec<&str> = sources
                    .iter()
                    .map(|s| {
                        let s = s.text.strip_prefix("copy/").unwrap_or(&s.text);
                        match s.trim_start_matches("./") {
                            "" => ".",
                            s => s,
                        }
                    })
                    .collect();
                format!("{sources:?} -> {}", dest.text)
            }
            None => collapse(&i.args),
        },
        _ => match &i.exec {
            Some(exec) => format!("{exec:?}"),
            None => collapse(&i.args),
        },
    };
    format!("{} {body}", i.keyword)
}

/// The original's instructions the generated Dockerfile must hold (see
/// [`kept_instructions`]), with their meaning.
fn original_meanings(dockerfile: &str) -> Vec<String> {
    let escape = parse::parse(dockerfile).unwrap().escape;
    kept_instructions(dockerfile)
        .iter()
        .map(|i| meaning(i, escape))
        .collect()
}

/// The generated Dockerfile's instructions but cargo-gear's frame: FROM, the gear
/// directories, the `WORKDIR /flywheel/v0` before the steps when they do not start with a
/// workdir, the generated manifest's COPY, LABEL, exec-form ENTRYPOINT and CMD.
fn generated_meanings(dockerfile: &str, first_step_is_workdir: bool) -> Vec<String> {
    let d = parse::parse(dockerfile).unwrap();
    let mut out: Vec<String> = Vec::new();
    for i in &d.instructions {
        let frame = match i.keyword.as_str() {
            "FROM" | "LABEL" => true,
            "ENTRYPOINT" | "CMD" => i.exec.is_some(),
            "WORKDIR" => out.is_empty() && !first_step_is_workdir && i.args == "/flywheel/v0",
            "RUN" => i.exec.as_ref().is_some_and(|e| {
                e.starts_with(&["mkdir".to_string()])
                    && e.iter().any(|a| a == "/flywheel/v0/output")
            }),
            "COPY" => i.args.starts_with(".cargo-gear/"),
            _ => false,
        };
        if !frame {
            out.push(meaning(i, d.escape));
        }
    }
    out
}

/// Stub files for every `copy` source of the imported steps, so the gear plans.
fn stub_sources(gear_dir: &Path, gear_toml: &str) {
    let doc: toml_edit::DocumentMut = gear_toml.parse().unwrap();
    let Some(steps) = doc["gear"]
        .get("steps")
        .and_then(|s| s.as_array_of_tables())
    else {
        return;
    };
    for step in steps.iter() {
        let Some(sources) = step.get("copy").and_then(|c| c.as_array()) else {
            continue;
        };
        for source in sources.iter().filter_map(|s| s.as_str()) {
            // The whole directory needs a file of its own (Gear.toml and manifest.json are
            // not copied).
            let source = if source == "." { "run.py" } else { source };
            let path = gear_dir.join(source.trim_end_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "stub\n").unwrap();
        }
    }
}

#[test]
fn generated_dockerfile_holds_the_same_instructions_in_order() {
    let mut checked = 0;
    for (name, manifest, dockerfile) in gears() {
        let Some(dockerfile) = dockerfile else {
            continue;
        };
        let import = Import::new(&manifest, Some(&dockerfile)).unwrap();
        if import.keeps_dockerfile() {
            continue;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let base = import.base().unwrap();
        std::fs::create_dir_all(root.join("layers/base")).unwrap();
        std::fs::write(root.join("layers/base/Gear.toml"), base.layer_toml("base")).unwrap();
        let gear_dir = root.join("gears").join(&name);
        std::fs::create_dir_all(&gear_dir).unwrap();
        // fw-SynthSeg's `source` ends with a space, which validation refuses (a negative
        // fixture for that): trimmed here, where only the Dockerfile matters.
        let mut doc: toml_edit::DocumentMut = import.gear_toml("base").parse().unwrap();
        if let Some(source) = doc["gear"].get("source").and_then(|s| s.as_str()) {
            doc["gear"]["source"] = toml_edit::value(source.trim());
        }
        let toml = doc.to_string();
        std::fs::write(gear_dir.join(GEAR_TOML), &toml).unwrap();
        std::fs::write(gear_dir.join("manifest.json"), &manifest).unwrap();
        stub_sources(&gear_dir, &toml);
        let graph = gear_spec::LayerGraph::load(&[root.join("layers/base"), gear_dir], root)
            .unwrap_or_else(|p| {
                panic!(
                    "{name}: {:?}",
                    p.iter().map(|p| &p.message).collect::<Vec<_>>()
                )
            });
        let all = graph.build_order().to_vec();
        let plan = gear_spec::plan::plan(&graph, &all, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let generated = &plan.get(import.name()).unwrap().built().unwrap().dockerfile;
        let first_is_workdir = toml.contains("[[gear.steps]]\nworkdir")
            && toml.find("[[gear.steps]]\nworkdir") == toml.find("[[gear.steps]]");
        let (ours, theirs) = (
            generated_meanings(generated, first_is_workdir),
            original_meanings(&dockerfile),
        );
        let diff = similar_lines(&theirs, &ours);
        assert!(
            diff.is_empty(),
            "{name}: the generated Dockerfile differs from the original:\n{}\n\n{generated}",
            diff.join("\n")
        );
        checked += 1;
    }
    assert!(checked >= 7, "{checked} gears checked");
}

/// The lines only in `original` (`-`) or only in `generated` (`+`), in order.
fn similar_lines(original: &[String], generated: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let n = original.len().max(generated.len());
    for k in 0..n {
        match (original.get(k), generated.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                if let Some(a) = a {
                    out.push(format!("- {a}"));
                }
                if let Some(b) = b {
                    out.push(format!("+ {b}"));
                }
            }
        }
    }
    out
}
