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

/// The example monorepo as one input reaches the generators: every built layer gets a
/// Dockerfile and every gear a manifest.
#[test]
fn the_examples_reach_the_generators() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/monorepo");
    let mut files: Vec<PathBuf> = ["layers", "gears"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path().join("Gear.toml"))
        .collect();
    files.sort();
    let texts: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let out = front_end(&texts.join(&0u8));
    check("examples", &out);
    assert_eq!(out.report, None);
    let gears = files
        .iter()
        .filter(|f| f.starts_with(root.join("gears")))
        .count();
    assert_eq!(out.manifests.len(), gears);
    assert!(out.dockerfiles.len() >= gears);
    assert!(out.dockerfiles.iter().all(|d| d.contains("FROM ")));
}

/// The report of an input, without color (an input of odd length is rendered in color, so
/// one is made even with a trailing newline).
fn report(text: &str) -> String {
    let text = if text.len() % 2 == 1 {
        format!("{text}\n")
    } else {
        text.to_string()
    };
    let out = front_end(text.as_bytes());
    check("report", &out);
    out.report.unwrap()
}

#[test]
fn a_span_past_column_65535_is_shown_in_a_window_with_its_real_location() {
    // Was: miette's "Formatting argument out of range" panic.
    let text = format!(
        "[layer]\nname = \"a\"\nimage = \"x/a\"\n{}from = \"nope\"\n",
        " ".repeat(70_000)
    );
    let out = front_end(text.as_bytes());
    assert_eq!(out.locations, ["l0/Gear.toml:4:70008"]);
    let report = report(&text);
    assert!(report.contains("gear::unknown-parent"), "{report}");
    assert!(report.contains("[l0/Gear.toml:4:70008]"), "{report}");
    assert!(report.contains(" 4 │                 "), "{report}");
    assert!(report.contains("from = \"nope\""), "{report}");
    assert!(report.contains("no layer has this name"), "{report}");
    assert!(report.lines().all(|l| l.chars().count() < 200), "{report}");
    let odd = if text.len() % 2 == 1 {
        text.clone()
    } else {
        format!("{text}\n")
    };
    let colored = front_end(odd.as_bytes()).report.unwrap();
    assert!(
        colored.contains("\u{1b}[31mgear::unknown-parent"),
        "{colored}"
    );
    assert!(colored.contains("l0/Gear.toml:4:70008"), "{colored}");
}

#[test]
fn a_control_character_in_a_70000_character_string_is_shown_in_a_window() {
    // Was: the same panic, from the TOML error's span.
    let text = format!(
        "[layer]\nname = \"a\"\nimage = \"{}\u{1}\"\n",
        "x".repeat(70_000)
    );
    let report = report(&text);
    assert!(report.contains("gear::toml"), "{report}");
    assert!(report.contains("[l0/Gear.toml:3:70010]"), "{report}");
    assert!(report.lines().all(|l| l.chars().count() < 200), "{report}");
}

#[test]
fn tabs_count_four_columns_and_get_a_window_too() {
    // 20,000 tabs are 80,000 columns in miette's renderer.
    let text = format!(
        "[layer]\nname = \"a\"\nimage = \"x/a\"\n{}from = \"nope\"\n",
        "\t".repeat(20_000)
    );
    let report = report(&text);
    assert!(report.contains("[l0/Gear.toml:4:20008]"), "{report}");
}

#[test]
fn a_long_line_next_to_the_span_is_left_out() {
    let text = format!(
        "[layer]\nname = \"a\"\nimage = \"x/a\" # {}\nfrom = \"nope\"\n",
        "#".repeat(70_000)
    );
    let report = report(&text);
    assert!(report.contains("[l0/Gear.toml:4:8]"), "{report}");
    assert!(report.contains(" 4 │ from = \"nope\""), "{report}");
    assert!(!report.contains("###"), "{report}");
}

#[test]
fn short_lines_are_shown_whole() {
    let text = "[layer]\nname = \"a\"\nimage = \"x/a\"\nfrom = \"nope\"\n";
    let report = report(text);
    assert!(report.contains(" 3 │ image = \"x/a\""), "{report}");
    assert!(report.contains(" 4 │ from = \"nope\""), "{report}");
}
