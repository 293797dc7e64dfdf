//! The fuzz entry point (`gear_spec::fuzz::front_end`) over every input the fuzzer keeps:
//! its corpus and each crash it ever found (`fuzz/regressions/`), plus the crashes that
//! came before the fuzzer (long lines past miette's 65,535 columns). None may panic.

use std::path::{Path, PathBuf};

use gear_spec::fuzz::{FrontEnd, front_end};

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(sub)
}

/// Every file of a fuzz directory, sorted, with its name.
fn inputs(sub: &str) -> Vec<(String, Vec<u8>)> {
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(fuzz_dir(sub))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    inputs.sort();
    inputs
}

/// What holds for any input: problems or generated files, never both, and every problem
/// rendered in full.
fn check(name: &str, out: &FrontEnd) {
    match &out.report {
        None => assert!(out.locations.is_empty(), "{name}"),
        Some(report) => {
            assert!(
                out.dockerfiles.is_empty() && out.manifests.is_empty(),
                "{name}: generated files for invalid input"
            );
            assert!(report.contains("gear::"), "{name}: no code in\n{report}");
        }
    }
}

#[test]
fn corpus_and_regressions_do_not_panic() {
    let corpus = inputs("corpus/gear_toml");
    assert!(corpus.len() > 20, "the committed corpus is missing");
    let regressions = inputs("regressions");
    for (name, data) in corpus.iter().chain(&regressions) {
        check(name, &front_end(data));
    }
}

/// The example monorepo reaches the generators, one input per chain (an input holds at most
/// eight Gear.toml files): every built layer gets a Dockerfile and every gear a manifest.
#[test]
fn the_examples_reach_the_generators() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/monorepo");
    let mut files: Vec<PathBuf> = ["layers", "gears"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path().join("Gear.toml"))
        .collect();
    files.sort();
    let chains: [&[&str]; 2] = [
        &[
            "freesurfer",
            "fw-freesurfer",
            "recon-all",
            "fs-license-check",
        ],
        &["python", "fw-python", "csv-summary", "hello", "nifti-stats"],
    ];
    let in_chain = |f: &PathBuf, chain: &[&str]| {
        chain
            .iter()
            .any(|name| f.parent().unwrap().file_name().unwrap() == *name)
    };
    assert!(
        files.iter().all(|f| chains.iter().any(|c| in_chain(f, c))),
        "every example layer is in a chain: {files:?}"
    );
    let (mut manifests, mut dockerfiles) = (0, Vec::new());
    for chain in chains {
        let texts: Vec<Vec<u8>> = files
            .iter()
            .filter(|f| in_chain(f, chain))
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        let out = front_end(&texts.join(&0u8));
        check("examples", &out);
        assert_eq!(out.report, None);
        manifests += out.manifests.len();
        dockerfiles.extend(out.dockerfiles);
    }
    let gears = files
        .iter()
        .filter(|f| f.starts_with(root.join("gears")))
        .count();
    assert_eq!(manifests, gears);
    assert!(dockerfiles.len() >= gears);
    assert!(dockerfiles.iter().all(|d| d.contains("FROM ")));
}

/// The report of an input, in color or not: an input of odd length is rendered in color,
/// so a trailing newline is added where the length has the other parity.
fn report(text: &str, color: bool) -> String {
    let mut text = text.to_string();
    if (text.len() % 2 == 1) != color {
        text.push('\n');
    }
    let out = front_end(text.as_bytes());
    check("report", &out);
    out.report.unwrap()
}

/// A layer built from an unknown parent, with `indent` before its `from` (line 4).
fn from_nope_after(indent: &str) -> String {
    format!("[layer]\nname = \"a\"\nimage = \"x/a\"\n{indent}from = \"nope\"\n")
}

/// Asserts that a report has `parts` and no line a terminal cannot take.
fn assert_shows(report: &str, parts: &[&str]) {
    for part in parts {
        assert!(report.contains(part), "no {part:?} in\n{report}");
    }
    assert!(report.lines().all(|l| l.chars().count() < 200), "{report}");
}

#[test]
fn a_span_past_column_65535_is_shown_in_a_window_with_its_real_location() {
    // Was: miette's "Formatting argument out of range" panic.
    let text = from_nope_after(&" ".repeat(70_000));
    assert_eq!(
        front_end(text.as_bytes()).locations,
        ["l0/Gear.toml:4:70008"]
    );
    assert_shows(
        &report(&text, false),
        &[
            "gear::unknown-parent",
            "[l0/Gear.toml:4:70008]",
            " 4 │                 ",
            "from = \"nope\"",
            "no layer has this name",
        ],
    );
    assert_shows(
        &report(&text, true),
        &["\u{1b}[31mgear::unknown-parent", "l0/Gear.toml:4:70008"],
    );
}

#[test]
fn a_control_character_in_a_70000_character_string_is_shown_in_a_window() {
    // Was: the same panic, from the TOML error's span.
    let text = format!(
        "[layer]\nname = \"a\"\nimage = \"{}\u{1}\"\n",
        "x".repeat(70_000)
    );
    assert_shows(
        &report(&text, false),
        &["gear::toml", "[l0/Gear.toml:3:70010]"],
    );
}

#[test]
fn tabs_count_four_columns_and_get_a_window_too() {
    // 20,000 tabs are 80,000 columns in miette's renderer.
    let text = from_nope_after(&"\t".repeat(20_000));
    assert_shows(&report(&text, false), &["[l0/Gear.toml:4:20008]"]);
}

#[test]
fn a_long_line_next_to_the_span_is_left_out() {
    let text = format!(
        "[layer]\nname = \"a\"\nimage = \"x/a\" # {}\nfrom = \"nope\"\n",
        "#".repeat(70_000)
    );
    let report = report(&text, false);
    assert_shows(&report, &["[l0/Gear.toml:4:8]", " 4 │ from = \"nope\""]);
    assert!(!report.contains("###"), "{report}");
}

#[test]
fn short_lines_are_shown_whole() {
    assert_shows(
        &report(&from_nope_after(""), false),
        &[" 3 │ image = \"x/a\"", " 4 │ from = \"nope\""],
    );
}
