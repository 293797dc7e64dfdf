//! gear-spec's Dockerfile splitter against BuildKit's own parser: for every Dockerfile fixture
//! (real gears and synthetic edge files), the golden `*.buildkit.json` beside it holds
//! BuildKit's parse, made by `cargo xtask dockerfile-oracle`. The splitter must find the same
//! instructions: keyword, lines, flags, exec form, the logical line, heredocs.

use std::path::{Path, PathBuf};

use gear_spec::dockerfile::parse::{self, Instruction};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every golden file under `dir`.
fn goldens(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            goldens(&path, out);
        } else if path.to_string_lossy().ends_with(".buildkit.json") {
            out.push(path);
        }
    }
}

/// BuildKit's `value` for the instructions whose value is the arguments as one string
/// (shell form) or the exec form's strings.
fn command_value(i: &Instruction) -> Option<Vec<String>> {
    if !matches!(i.keyword.as_str(), "RUN" | "CMD" | "ENTRYPOINT" | "SHELL") {
        return None;
    }
    if !i.heredocs.is_empty() {
        return None;
    }
    Some(i.exec.clone().unwrap_or_else(|| vec![i.args.clone()]))
}

/// Where the splitter and BuildKit differ for one file.
fn differences(dockerfile: &Path, golden: &Value) -> Vec<String> {
    let text = std::fs::read_to_string(dockerfile).unwrap();
    let ours = parse::parse(&text);
    let Some(theirs) = golden["instructions"].as_array() else {
        return match ours {
            Err(_) => vec![],
            Ok(_) => vec![format!(
                "BuildKit refuses it ({}), the splitter does not",
                golden["error"]
            )],
        };
    };
    let ours = match ours {
        Ok(d) => d.instructions,
        Err(e) => return vec![format!("the splitter refuses it: {e}")],
    };
    let mut out = Vec::new();
    if ours.len() != theirs.len() {
        out.push(format!(
            "{} instructions, BuildKit has {}",
            ours.len(),
            theirs.len()
        ));
    }
    for (n, (i, t)) in ours.iter().zip(theirs).enumerate() {
        let mut check = |what: &str, ours: Value, theirs: &Value| {
            if &ours != theirs {
                out.push(format!(
                    "instruction {n} (line {}): {what} is {ours}, BuildKit has {theirs}",
                    i.start_line
                ));
            }
        };
        let keyword = t["cmd"].as_str().unwrap_or_default().to_ascii_uppercase();
        check("keyword", i.keyword.clone().into(), &keyword.into());
        check("start line", i.start_line.into(), &t["start_line"]);
        check("end line", i.end_line.into(), &t["end_line"]);
        check("flags", i.flags.clone().into(), &t["flags"]);
        check("exec form", i.exec.is_some().into(), &t["json"]);
        // With heredocs, BuildKit's `original` also holds the bodies: compare the first line.
        let original = t["original"].as_str().unwrap_or_default();
        let original = match i.heredocs.is_empty() {
            true => original,
            false => original.lines().next().unwrap_or_default(),
        };
        check(
            "the logical line",
            i.original.clone().into(),
            &original.into(),
        );
        if let Some(value) = command_value(i) {
            check("value", value.into(), &t["value"]);
        }
        let heredocs: Vec<Value> = i
            .heredocs
            .iter()
            .map(|h| serde_json::json!({ "name": h.name, "content": h.content }))
            .collect();
        check("heredocs", heredocs.into(), &t["heredocs"]);
    }
    out
}

#[test]
fn the_splitter_agrees_with_buildkit_on_every_fixture() {
    let mut files = Vec::new();
    goldens(&fixtures(), &mut files);
    files.sort();
    assert!(
        files.len() >= 16,
        "golden files are missing: run `cargo xtask dockerfile-oracle`"
    );
    let mut report = Vec::new();
    for golden in &files {
        let dockerfile = PathBuf::from(
            golden
                .to_string_lossy()
                .strip_suffix(".buildkit.json")
                .unwrap(),
        );
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
        for d in differences(&dockerfile, &expected) {
            report.push(format!("{}: {d}", dockerfile.display()));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn every_fixture_dockerfile_has_its_golden_file() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                walk(&path, out);
            } else if name == "Dockerfile" || name.ends_with(".Dockerfile") {
                out.push(path);
            }
        }
    }
    let mut dockerfiles = Vec::new();
    walk(&fixtures(), &mut dockerfiles);
    let missing: Vec<String> = dockerfiles
        .iter()
        .filter(|d| !Path::new(&format!("{}.buildkit.json", d.display())).is_file())
        .map(|d| d.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "no golden file (run `cargo xtask dockerfile-oracle`): {missing:?}"
    );
}
