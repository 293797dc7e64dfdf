//! End-to-end tests of `cargo gear run`, `shell` and `config` on a real Docker engine (issue
//! "Run and debug gears locally").
//!
//! Each test drives the real binary on its own scratch copy of examples/monorepo, in which every
//! built layer's `image = "example/…"` becomes `cargo-gear-test/<unique>-…` with the label
//! `cargo-gear.test=<unique>`: no two tests (of this file or another) share an image, and a
//! test's clean-up removes exactly the images carrying its label. Builds stay fast through
//! docker's (shared, unlabelled) layer cache. The examples' `python:3.12-slim` is the fixture
//! image of `cargo xtask engine start`, through `--substitute`.
//!
//! Besides the example's gears, some tests add scratch gears: `strict` (every kind of config
//! rule, a required config value without default, an API-key input; its run.py reports what
//! reached it and exits with `exit_code`) and `exits` (`command = "sh -c '…; exit 3'"`).
//!
//! Run with `CARGO_GEAR_TEST_ENGINE=1 cargo test -p cargo-gear --test it e2e_run::`; the toolkit test
//! also wants `CARGO_GEAR_TEST_FW_PYTHON` (`cargo xtask test` sets both).

use crate::scratch;
use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use scratch::{read, write};
use serde_json::{Value, json};

/// `--substitute` of every command: only the python chain's base (these tests build no
/// FreeSurfer layer).
const SUBSTITUTE: (&str, &str) = ("python:3.12-slim", support::DEBIAN_PYTHON);
/// Long enough for a cold build of fw-python (apt) on a slow machine.
const TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A path that exists nowhere.
const NOWHERE: &str = "/nonexistent/cargo-gear-e2e/notes.txt";
/// The environment variable the API-key tests pass with `--api-key-env`.
const KEY_VAR: &str = "MY_KEY";
/// Where the scratch gears' image files are found inside the container.
const FLYWHEEL: &str = "/flywheel/v0";

/// The `strict` gear's run.py: prints a digest of the API key (never the key), the config it
/// got and its inputs' paths, then exits with config `exit_code`.
const STRICT_RUN_PY: &str = r#"import json, sys
c = json.load(open("/flywheel/v0/config.json"))
key = c["inputs"].get("api_key", {}).get("key", "")
h = 0xcbf29ce484222325
for b in key.encode():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("key fnv1a: %016x" % h)
print("config: " + json.dumps(c["config"], sort_keys=True))
print("table: " + open(c["inputs"]["table"]["location"]["path"]).readline().strip())
print("gear output on stderr", file=sys.stderr)
sys.exit(c["config"]["exit_code"])
"#;

// ---------------------------------------------------------------------------------------
// A scratch workspace on the engine
// ---------------------------------------------------------------------------------------

/// The shared scratch workspace with what these tests ask of it.
struct Scratch(scratch::Workspace);

impl std::ops::Deref for Scratch {
    type Target = scratch::Workspace;
    fn deref(&self) -> &scratch::Workspace {
        &self.0
    }
}

impl Scratch {
    /// The scratch workspace, or None (after a note) when the engine tests are skipped.
    fn new(test: &str) -> Option<Scratch> {
        scratch::Workspace::new(&format!("run-{test}"), &[support::DEBIAN_PYTHON]).map(Scratch)
    }

    /// The example CSV of csv-summary.
    fn table(&self) -> PathBuf {
        self.path("gears/csv-summary/tests/data/example.csv")
    }

    /// Adds a gear on fw-python: `[gear]` with this test's image and label, `body` after it,
    /// and `files` in its directory.
    fn add_gear(&self, name: &str, gear_keys: &str, body: &str, files: &[(&str, &str)]) {
        let dir = self.path(&format!("gears/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let toml = format!(
            "[gear]\nname = \"{name}\"\nfrom = \"fw-python\"\nimage = \"{prefix}{name}\"\n{labels}\
             label = \"{name}\"\ndescription = \"A scratch gear of cargo-gear's tests.\"\n\
             author = \"cargo-gear tests\"\nlicense = \"MIT\"\n{gear_keys}\n{body}",
            prefix = scratch::image_prefix(&self.id),
            labels = scratch::labels_line(&self.id),
        );
        write(&dir.join("Gear.toml"), &toml);
        for (file, text) in files {
            write(&dir.join(file), text);
        }
    }

    /// The `strict` gear (see the module docs).
    fn add_strict(&self) {
        let body = r#"
[gear.inputs.table]
base = "file"
type = { enum = ["tabular data"] }

[gear.inputs.notes]
base = "file"
optional = true

[gear.inputs.api_key]
base = "api-key"
read-only = true

[gear.config.threshold]
type = "number"
minimum = 0

[gear.config.mode]
type = "string"
enum = ["fast", "slow"]
default = "fast"

[gear.config.subject]
type = "string"
pattern = "^sub-[0-9]+$"
default = "sub-01"

[gear.config.retries]
type = "integer"
default = 1
minimum = 0
maximum = 5

[gear.config.exit_code]
type = "integer"
default = 0
"#;
        self.add_gear(
            "strict",
            "version = \"0.2.0\"\ncommand = \"python3 run.py\"",
            body,
            &[("run.py", STRICT_RUN_PY)],
        );
    }

    // --- cargo gear -------------------------------------------------------------------

    /// `cargo-gear gear ARGS --substitute …` in the workspace root, colors off, no API key
    /// in the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_with(args, &[SUBSTITUTE]);
        cmd.env_remove(KEY_VAR);
        cmd
    }

    /// Runs `cargo gear ARGS` to its end.
    fn gear(&self, args: &[&str]) -> Run {
        self.gear_with(args, &[])
    }

    /// Runs `cargo gear ARGS` with extra environment variables, to its end (at most [`TIMEOUT`]).
    fn gear_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = assert_cmd::Command::from_std(self.command(args));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let out = cmd.timeout(TIMEOUT).output().unwrap();
        Run::new(
            format!("cargo gear {}", args.join(" ")),
            out,
            started.elapsed(),
        )
    }

    /// `cargo gear run -p GEAR ARGS`.
    fn run(&self, gear: &str, args: &[&str]) -> Run {
        self.run_with(gear, args, &[])
    }

    fn run_with(&self, gear: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec!["run", "-p", gear];
        all.extend_from_slice(args);
        self.gear_with(&all, env)
    }

    /// `target/gear/runs`.
    fn runs_dir(&self) -> PathBuf {
        self.path("target/gear/runs")
    }

    /// The run directories, oldest first.
    fn run_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.runs_dir()) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        dirs.sort_by_key(|d| (std::fs::metadata(d).unwrap().modified().unwrap(), d.clone()));
        dirs
    }

    /// The run directory a successful or failed `cargo gear run` reported ("Run dir PATH").
    fn run_dir_of(&self, run: &Run) -> PathBuf {
        let line = run
            .stderr
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("Run dir "))
            .unwrap_or_else(|| panic!("{} names no run directory:\n{}", run.what, run.stderr));
        let dir = PathBuf::from(line);
        assert!(
            dir.starts_with(self.runs_dir()),
            "{} is under target/gear/runs",
            dir.display()
        );
        dir
    }

    // --- the engine -------------------------------------------------------------------

    /// The names of the containers created from this test's images between `since` and
    /// `until` (engine events), whatever became of them since.
    fn containers_created(&self, since: SystemTime, until: SystemTime) -> Vec<String> {
        let options = EventsOptions {
            since: Some(unix(since)),
            until: Some(unix(until)),
            filters: Some(HashMap::from([
                ("type".to_owned(), vec!["container".to_owned()]),
                ("event".to_owned(), vec!["create".to_owned()]),
                ("label".to_owned(), vec![scratch::label_filter(&self.id)]),
            ])),
        };
        let events: Vec<_> = self
            .rt
            .block_on(self.engine.docker().events(Some(options)).collect());
        events
            .into_iter()
            .map(|e| e.unwrap())
            .filter_map(|e| e.actor?.attributes?.remove("name"))
            // Build steps run in unnamed containers; `cargo gear run/shell` names its own.
            .filter(|name| name.starts_with("cargo-gear-"))
            .collect()
    }
}

/// A finished `cargo gear` command.
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(what: String, out: Output, took: Duration) -> Run {
        eprintln!(
            "{what}: exit {:?} in {:.1} s",
            out.status.code(),
            took.as_secs_f64()
        );
        Run {
            what,
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "exit code of {}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    fn success(self) -> Run {
        self.expect_code(0)
    }

    /// stderr with miette's line wrapping undone (where it wraps depends on path lengths).
    fn message(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        let mut in_help = false;
        for line in self.stderr.lines() {
            let continued = line
                .strip_prefix("  │ ")
                .or_else(|| line.strip_prefix("        ").filter(|_| in_help));
            match (continued, lines.last_mut()) {
                (Some(rest), Some(last)) => {
                    last.push(' ');
                    last.push_str(rest.trim_start());
                }
                _ => {
                    in_help = line.starts_with("  help: ");
                    lines.push(line.to_owned());
                }
            }
        }
        lines.join("\n")
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `SECONDS.NANOSECONDS`, as the engine's `since`/`until` take it.
fn unix(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// 64-bit FNV-1a, as the `strict` gear prints it for its API key.
fn fnv1a(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// `--input table=PATH`.
fn input(name: &str, path: &Path) -> String {
    format!("{name}={}", path.display())
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Asserts every number in `v` has at most `places` decimals.
fn assert_rounded(v: &Value, places: i32, at: &str) {
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap();
            let scaled = x * 10f64.powi(places);
            assert!(
                (scaled - scaled.round()).abs() < 1e-6,
                "{at}: {x} has more than {places} decimals"
            );
        }
        Value::Array(items) => items.iter().for_each(|i| assert_rounded(i, places, at)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, i)| assert_rounded(i, places, &format!("{at}.{k}"))),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// 1. A run of the example gear
// ---------------------------------------------------------------------------------------

/// `cargo gear run -p csv-summary --input table=…` builds the gear, runs it in Flywheel's
/// layout, and its summary.json is the expected one; stderr lists the outputs with sizes.
#[test]
fn run_writes_the_expected_summary_in_the_run_dir() {
    let Some(ws) = Scratch::new("summary") else {
        return;
    };
    let run = ws
        .run("csv-summary", &["--input", &input("table", &ws.table())])
        .success();

    let dir = ws.run_dir_of(&run);
    assert_eq!(
        ws.run_dirs(),
        std::slice::from_ref(&dir),
        "one run, one run directory"
    );
    let name = dir.file_name().unwrap().to_str().unwrap();
    let stamp = name
        .strip_prefix("csv-summary-0.1.0-")
        .unwrap_or_else(|| panic!("run dir {name} is GEAR-VERSION-TIMESTAMP"));
    assert!(
        stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
        "timestamp {stamp}"
    );

    // Flywheel's layout: the input under input/NAME/BASENAME, config.json pointing at it.
    assert_eq!(
        read(&dir.join("input/table/example.csv")),
        read(&ws.table())
    );
    let config = json_file(&dir.join("config.json"));
    assert_eq!(
        config["inputs"]["table"]["location"]["path"],
        "/flywheel/v0/input/table/example.csv"
    );
    assert!(dir.join("work").is_dir());

    let expected = json_file(&ws.path("gears/csv-summary/tests/data/expected-summary.json"));
    assert_eq!(json_file(&dir.join("output/summary.json")), expected);

    // Every output file is listed with its size.
    let mut outputs = files_under(&dir.join("output"));
    outputs.sort();
    assert_eq!(outputs.len(), 2, "summary.json and summary.md: {outputs:?}");
    for file in outputs {
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size < 1024, "{} is small", file.display());
        let line = format!(
            "Output output/{} ({size} B)",
            file.file_name().unwrap().to_str().unwrap()
        );
        assert!(
            run.stderr.contains(&line),
            "stderr lists `{line}`:\n{}",
            run.stderr
        );
    }
    // The gear's log lines come through (the gear logs on stderr).
    assert!(
        run.stderr
            .contains("csv-summary: wrote /flywheel/v0/output/summary.json"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------
// 2. Config defaults
// ---------------------------------------------------------------------------------------

/// Defaults fill config.json when nothing is given; a given value wins, reaches the gear and
/// changes its result.
#[test]
fn config_defaults_apply_and_given_values_win() {
    let Some(ws) = Scratch::new("defaults") else {
        return;
    };
    let table = input("table", &ws.table());

    let run = ws.run("csv-summary", &["--input", &table]).success();
    let dir = ws.run_dir_of(&run);
    let config = json_file(&dir.join("config.json"));
    // Every key with a default; the optional `columns`, without one, is absent.
    assert_eq!(config["config"], json!({"delimiter": ",", "precision": 3}));
    assert_eq!(json_file(&dir.join("output/summary.json"))["precision"], 3);

    let run = ws
        .run(
            "csv-summary",
            &[
                "--input",
                &table,
                "--config",
                "precision=2",
                "--config",
                "columns=age,weight_kg",
            ],
        )
        .success();
    let dir = ws.run_dir_of(&run);
    assert_eq!(ws.run_dirs().len(), 2, "each run has its own directory");
    let config = json_file(&dir.join("config.json"));
    assert_eq!(
        config["config"],
        json!({"delimiter": ",", "columns": ["age", "weight_kg"], "precision": 2})
    );
    let summary = json_file(&dir.join("output/summary.json"));
    assert_eq!(summary["precision"], 2);
    assert_eq!(
        summary["columns"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["age", "weight_kg"]
    );
    assert_rounded(&summary["columns"], 2, "columns");
    // 36.875 and 73.414… at three places; rounded to two.
    assert_eq!(summary["columns"]["age"]["mean"], json!(36.88));
    assert_eq!(summary["columns"]["weight_kg"]["mean"], json!(73.41));
}

// ---------------------------------------------------------------------------------------
// 3. Invalid runs
// ---------------------------------------------------------------------------------------

/// Every invalid request is refused with exit code 1 and a message naming the key and the
/// rule, before any container starts: with the images already built (so a run that got past
/// the checks would start one at once), no run directory appears and the engine records no
/// container created from this test's images, while a valid run afterwards is seen by the
/// same check.
#[test]
fn invalid_runs_are_refused_before_any_container_starts() {
    let Some(ws) = Scratch::new("invalid") else {
        return;
    };
    ws.add_strict();
    ws.gear(&["build", "-p", "csv-summary", "-p", "strict"])
        .success();
    let table = input("table", &ws.table());
    let key = [(KEY_VAR, "a-key-for-the-invalid-runs")];
    let not_a_file = input("table", &ws.path("gears"));
    let since = SystemTime::now();

    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("unknown input", "csv-summary", vec!["--input", "tabel=data.csv"], &[],
            &["gear::run-unknown-input", "gear `csv-summary` has no input `tabel`", "did you mean `table`?"]),
        ("unknown config key", "csv-summary", vec!["--input", &table, "--config", "precison=2"], &[],
            &["gear::run-unknown-config", "gear `csv-summary` has no config `precison`", "did you mean `precision`?"]),
        ("unknown config key, nothing close", "csv-summary", vec!["--input", &table, "--config", "verbose=true"], &[],
            &["has no config `verbose`", "its config keys: delimiter, columns, precision"]),
        ("missing required input", "csv-summary", vec![], &[],
            &["gear::run-missing-input", "gear `csv-summary` needs input `table`, which was not given", "--input table=PATH"]),
        ("missing required config value", "strict", vec!["--input", &table, "--api-key-env", KEY_VAR], &key,
            &["gear::run-missing-config", "gear `strict` needs config `threshold`, which has no default and was not given", "--config threshold=VALUE (number)"]),
        ("wrong type", "csv-summary", vec!["--input", &table, "--config", "precision=abc"], &[],
            &["gear::run-config-type", "config `precision`: `abc` is not an integer", "`precision` is of type integer"]),
        ("above maximum", "csv-summary", vec!["--input", &table, "--config", "precision=20"], &[],
            &["gear::run-config-invalid", "config `precision`: 20 is above its `maximum` 10"]),
        ("below minimum", "csv-summary", vec!["--input", &table, "--config", "precision=-1"], &[],
            &["config `precision`: -1 is below its `minimum` 0"]),
        ("outside enum", "strict", vec!["--input", &table, "--api-key-env", KEY_VAR, "--config", "threshold=1", "--config", "mode=medium"], &key,
            &["config `mode`: \"medium\" is not one of the `enum` values (\"fast\", \"slow\")"]),
        ("pattern mismatch", "strict", vec!["--input", &table, "--api-key-env", KEY_VAR, "--config", "threshold=1", "--config", "subject=subject-1"], &key,
            &["config `subject`: \"subject-1\" does not match its `pattern` `^sub-[0-9]+$`"]),
        ("length below minLength", "csv-summary", vec!["--input", &table, "--config", "delimiter="], &[],
            &["config `delimiter`: \"\" has 0 characters, but its `minLength` is 1"]),
        ("input path that does not exist", "csv-summary", vec!["--input", "table=missing.csv"], &[],
            &["gear::run-input-not-found", "input `table`:", "/monorepo/missing.csv cannot be read", "pass the path of an existing file"]),
        ("input that is a directory", "csv-summary", vec!["--input", &not_a_file], &[],
            &["gear::run-input-not-a-file", "is not a file"]),
        ("api-key input with no key", "strict", vec!["--input", &table, "--config", "threshold=1"], &[],
            &["gear::run-missing-api-key", "gear `strict` has API-key input `api_key`, but no key was supplied", "--api-key-env VAR"]),
        ("api-key variable not set", "strict", vec!["--input", &table, "--config", "threshold=1", "--api-key-env", "CARGO_GEAR_E2E_UNSET"], &[],
            &["gear::run-api-key-env", "environment variable `CARGO_GEAR_E2E_UNSET` (from --api-key-env) is not set"]),
        ("malformed --input", "csv-summary", vec!["--input", "table"], &[],
            &["gear::run-argument", "invalid --input `table`", "--input NAME=VALUE"]),
        ("malformed destination", "csv-summary", vec!["--input", &table, "--destination", "acquisition"], &[],
            &["gear::run-destination", "invalid destination `acquisition`"]),
    ];
    for (what, gear, args, env, expected) in cases {
        let run = ws.run_with(gear, args, env).expect_code(1);
        let message = run.message();
        for fragment in *expected {
            assert!(
                message.contains(fragment),
                "{what}: the message says `{fragment}`:\n{message}"
            );
        }
        assert_eq!(run.stdout, "", "{what}: nothing on stdout");
        assert!(
            !run.stderr.contains("Running"),
            "{what}: nothing ran:\n{}",
            run.stderr
        );
        assert!(
            !ws.runs_dir().exists(),
            "{what}: no run directory was created"
        );
    }

    // Several problems at once: all reported, in one go.
    let notes = format!("notes={NOWHERE}");
    let run = ws
        .run(
            "strict",
            &[
                "--input",
                "tabel=data.csv",
                "--input",
                &notes,
                "--config",
                "mode=medium",
                "--config",
                "subject=subject-1",
                "--config",
                "retries=9",
                "--config",
                "exit_code=abc",
                "--config",
                "colour=red",
            ],
        )
        .expect_code(1);
    assert_eq!(run.stdout, "");
    let root = regex_escape(&ws.root.display().to_string());
    insta::with_settings!({ filters => vec![(root.as_str(), "[ROOT]")] }, {
        insta::assert_snapshot!("invalid_run_every_problem", run.stderr);
    });
    assert!(!ws.runs_dir().exists(), "no run directory was created");

    let until = SystemTime::now();
    let created = ws.containers_created(since, until);
    assert!(
        created.is_empty(),
        "no container was created for an invalid run: {created:?}"
    );

    // The control: the same check sees the container of a valid run.
    let run = ws.run("csv-summary", &["--input", &table]).success();
    let created = ws.containers_created(until, SystemTime::now());
    assert_eq!(
        created.len(),
        1,
        "the valid run's container is seen: {created:?}\n{}",
        run.stderr
    );
    assert!(
        created[0].starts_with("cargo-gear-csv-summary-"),
        "{created:?}"
    );
    assert_eq!(ws.run_dirs().len(), 1);
}

/// An invalid run: what it is, the gear, its arguments and environment, what the message says.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<&'a str>,
    &'a [(&'a str, &'a str)],
    &'a [&'a str],
);

fn regex_escape(s: &str) -> String {
    s.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

// ---------------------------------------------------------------------------------------
// 4. Exit codes
// ---------------------------------------------------------------------------------------

/// The gear's exit code is `cargo gear run`'s: 3 from a manifest `command` run through
/// `sh -c`, and any code from a Python gear; its output and run directory are still reported.
#[test]
fn the_gears_exit_code_is_propagated() {
    let Some(ws) = Scratch::new("exit") else {
        return;
    };
    ws.add_gear(
        "exits",
        "version = \"1.0.0\"\ncommand = \"sh -c 'echo about to fail; exit 3'\"",
        "",
        &[],
    );
    ws.add_strict();

    let run = ws.run("exits", &[]).expect_code(3);
    assert_eq!(
        run.stdout, "about to fail\n",
        "the gear's stdout is cargo gear's stdout"
    );
    assert!(
        run.stderr.contains("gear `exits` exited with code 3"),
        "{}",
        run.stderr
    );
    ws.run_dir_of(&run);

    let key = [(KEY_VAR, "a-key-for-the-exit-code-runs")];
    let table = input("table", &ws.table());
    for code in ["42", "0", "1"] {
        let config = format!("exit_code={code}");
        let args = [
            "--input",
            &table,
            "--api-key-env",
            KEY_VAR,
            "--config",
            "threshold=0.5",
            "--config",
            &config,
        ];
        let run = ws
            .run_with("strict", &args, &key)
            .expect_code(code.parse().unwrap());
        assert!(
            run.stdout.contains("\"exit_code\": "),
            "the gear ran: {}",
            run.stdout
        );
        assert!(
            run.stderr.contains("gear output on stderr"),
            "the gear's stderr is cargo gear's stderr: {}",
            run.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------
// 5. The API key
// ---------------------------------------------------------------------------------------

/// The key from `--api-key-env` reaches the gear in config.json (inputs.api_key.key, file mode
/// 0600) and never shows on stdout or stderr — on success, when the gear fails, when the run
/// is refused — nor in any other file under target/gear.
#[cfg(unix)]
#[test]
fn the_api_key_reaches_the_gear_and_nothing_else() {
    let Some(ws) = Scratch::new("apikey") else {
        return;
    };
    ws.add_strict();
    let secret = format!("a-unique-secret-value-{}", support::unique("key"));
    let env = [(KEY_VAR, secret.as_str())];
    let table = input("table", &ws.table());
    let base = [
        "--input",
        table.as_str(),
        "--api-key-env",
        KEY_VAR,
        "--config",
        "threshold=0.5",
    ];

    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let assert_hidden = |run: &Run| {
        assert!(
            !run.stdout.contains(&secret),
            "{}: the key is on stdout:\n{}",
            run.what,
            run.stdout
        );
        assert!(
            !run.stderr.contains(&secret),
            "{}: the key is on stderr:\n{}",
            run.what,
            run.stderr
        );
    };

    // Success: the gear got the key (it prints a digest of what it got).
    let ok = ws.run_with("strict", &base, &env).success();
    assert_hidden(&ok);
    assert!(
        ok.stdout
            .contains(&format!("key fnv1a: {}", fnv1a(secret.as_bytes()))),
        "the gear got the key:\n{}",
        ok.stdout
    );
    let dir = ws.run_dir_of(&ok);
    let config_path = dir.join("config.json");
    let config = json_file(&config_path);
    assert_eq!(
        config["inputs"]["api_key"],
        json!({"base": "api-key", "key": secret})
    );
    assert_eq!(
        mode(&config_path),
        0o600,
        "config.json holding the key is its owner's only"
    );

    // The gear fails.
    let failed = ws
        .run_with("strict", &strs(&with(&["--config", "exit_code=5"])), &env)
        .expect_code(5);
    assert_hidden(&failed);
    assert_eq!(mode(&ws.run_dir_of(&failed).join("config.json")), 0o600);

    // Refused runs: a validation problem with the key set, and the key on the command line.
    let refused = ws
        .run_with("strict", &strs(&with(&["--config", "mode=medium"])), &env)
        .expect_code(1);
    assert_hidden(&refused);
    let on_command_line = format!("api_key={secret}");
    let refused = ws
        .run_with(
            "strict",
            &[
                "--input",
                &table,
                "--config",
                "threshold=0.5",
                "--input",
                &on_command_line,
            ],
            &env,
        )
        .expect_code(1);
    assert!(
        refused
            .stderr
            .contains("is an API key, which is never given on the command line"),
        "{}",
        refused.stderr
    );
    assert_hidden(&refused);

    // `cargo gear config` writes it too, privately (even over a readable file), without showing it.
    let saved = ws.path("target/gear/config/strict.json");
    std::fs::create_dir_all(saved.parent().unwrap()).unwrap();
    write(&saved, "{}\n");
    std::fs::set_permissions(&saved, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let written = ws
        .gear_with(
            &[
                "config",
                "-p",
                "strict",
                "--input",
                &table,
                "--api-key-env",
                KEY_VAR,
                "--config",
                "threshold=0.5",
            ],
            &env,
        )
        .success();
    assert_hidden(&written);
    assert_eq!(
        json_file(&saved)["inputs"]["api_key"]["key"],
        secret.as_str()
    );
    assert_eq!(mode(&saved), 0o600);

    // The key is in the run directories' config.json and the saved config, nowhere else:
    // not in the build logs, build records, inputs or outputs.
    let logs = files_under(&ws.path("target/gear/logs"));
    assert!(!logs.is_empty(), "the builds left logs");
    let mut holders = Vec::new();
    for file in files_under(&ws.path("target/gear")) {
        let bytes = std::fs::read(&file).unwrap();
        if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
            holders.push(file.strip_prefix(&ws.root).unwrap().to_path_buf());
        }
    }
    holders.sort();
    let runs: Vec<PathBuf> = ws
        .run_dirs()
        .iter()
        .map(|d| {
            d.join("config.json")
                .strip_prefix(&ws.root)
                .unwrap()
                .to_path_buf()
        })
        .collect();
    assert_eq!(runs.len(), 2, "two runs got past the checks");
    let mut expected = runs;
    expected.push(PathBuf::from("target/gear/config/strict.json"));
    expected.sort();
    assert_eq!(holders, expected, "the files that hold the key");
}

// ---------------------------------------------------------------------------------------
// 6. Flywheel's toolkit reads the config.json
// ---------------------------------------------------------------------------------------

/// The Python of a venv with flywheel-gear-toolkit, or None (after a note) when there is none
/// and the test may skip.
fn fw_python() -> Option<PathBuf> {
    match std::env::var_os("CARGO_GEAR_TEST_FW_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "CI=true but CARGO_GEAR_TEST_FW_PYTHON is unset: `cargo xtask test` installs \
             flywheel-gear-toolkit into target/engine/fw-venv and sets it"
        ),
        _ => {
            eprintln!(
                "note: skipping a Flywheel toolkit test: CARGO_GEAR_TEST_FW_PYTHON is unset \
                 (`cargo xtask test` installs flywheel-gear-toolkit and sets it)"
            );
            None
        }
    }
}

/// Loads a run directory's config.json with Flywheel's toolkits and prints what they read.
const TOOLKIT_PY: &str = r#"
import json, logging, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
run_dir, manifest_path = sys.argv[1], sys.argv[2]
config_path = run_dir + "/config.json"

from flywheel_gear_toolkit import GearToolkitContext
gtk = GearToolkitContext(gear_path=run_dir, manifest_path=manifest_path, config_path=config_path, log_metadata=False)

import jsonschema
from fw_gear.context import GearContext
from fw_gear.manifest import Manifest
fw = GearContext(gear_path=run_dir, manifest_path=manifest_path, config_path=config_path)
manifest = Manifest(manifest_path)
manifest_errors = manifest._validate()
schema = manifest.derive_config_schema(full=True)
with open(config_path) as f:
    config_errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(json.load(f))]

print(json.dumps({
    "gtk": {
        "config": gtk.config,
        "table_path": gtk.get_input_path("table"),
        "table_name": gtk.get_input_filename("table"),
        "table_type": gtk.get_input_file_object_value("table", "type"),
        "destination": gtk.destination,
        "manifest_name": gtk.manifest["name"],
    },
    "fw_gear": {
        "config": fw.config.opts,
        "table_path": fw.config.get_input_path("table"),
        "destination": fw.config.destination,
    },
    "manifest_errors": manifest_errors,
    "config_errors": config_errors,
}))
"#;

/// The config.json of `cargo gear run` loads in Flywheel's own toolkits (flywheel-gear-toolkit's
/// GearToolkitContext and fw-gear's GearContext), which read back the config values, the input's
/// path and the destination unchanged; it satisfies the config schema fw-gear derives from the
/// gear's manifest, and that manifest passes fw-gear's validation.
#[test]
fn flywheels_toolkit_loads_the_config_json() {
    let Some(ws) = Scratch::new("toolkit") else {
        return;
    };
    let Some(python) = fw_python() else { return };
    let run = ws
        .run(
            "csv-summary",
            &[
                "--input",
                &input("table", &ws.table()),
                "--config",
                "precision=5",
                "--config",
                "columns=age,score",
                "--destination",
                "session/5f2b0c0ffee",
            ],
        )
        .success();
    let dir = ws.run_dir_of(&run);
    ws.gear(&["manifest", "-p", "csv-summary"]).success();
    let manifest = ws.path("gears/csv-summary/manifest.json");

    let out = Command::new(&python)
        .args(["-c", TOOLKIT_PY])
        .arg(&dir)
        .arg(&manifest)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "the toolkit script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let read: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));

    let config = json!({"delimiter": ",", "columns": ["age", "score"], "precision": 5});
    let destination = json!({"type": "session", "id": "5f2b0c0ffee"});
    let path = "/flywheel/v0/input/table/example.csv";
    assert_eq!(
        read["gtk"],
        json!({
            "config": config,
            "table_path": path,
            "table_name": "example.csv",
            "table_type": "tabular data",
            "destination": destination,
            "manifest_name": "csv-summary",
        })
    );
    assert_eq!(
        read["fw_gear"],
        json!({"config": config, "table_path": path, "destination": destination})
    );
    assert_eq!(
        read["manifest_errors"],
        json!([]),
        "fw-gear validates the manifest"
    );
    assert_eq!(
        read["config_errors"],
        json!([]),
        "config.json satisfies the manifest's config schema"
    );
    // The path the toolkit hands the gear is the run directory's input file.
    let host = dir.join(Path::new(path).strip_prefix(FLYWHEEL).unwrap());
    assert_eq!(read_bytes(&host), read_bytes(&ws.table()));
    assert_eq!(
        json_file(&dir.join("output/summary.json"))["precision"],
        5,
        "and the gear ran on it"
    );
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// 7. cargo gear shell
// ---------------------------------------------------------------------------------------

/// A `cargo gear shell` fed a script on standard input; the script prints READY, then waits for
/// a line that [`Shell::resume`] sends.
struct Shell {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Shell {
    fn start(ws: &Scratch, args: &[&str]) -> Shell {
        let mut all = vec!["shell", "-p", "csv-summary"];
        all.extend_from_slice(args);
        let mut child = ws
            .command(&all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut shell = Shell {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        };
        shell.send("echo READY\nread go\n");
        shell
    }

    fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for READY: the shell runs in the container (after any build).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line == "READY" => return,
                Ok(line) => self.stdout.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("the shell never said READY; stdout: {:?}", self.stdout);
                }
            }
        }
    }

    /// Sends the rest of the script, closes standard input, and collects everything.
    fn finish(mut self, script: &str) -> (Option<i32>, Vec<String>, String) {
        self.send(&format!("go\n{script}"));
        drop(self.child.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the shell did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.stdout.extend(self.lines.iter());
        (status.code(), self.stdout, self.stderr.join().unwrap())
    }
}

/// `cargo gear shell --mount-src`, non-interactive: a script on standard input runs in the
/// gear's image, sees the gear's host files live (edited after the shell started, so after any
/// build), and its exit code is cargo gear's. Without `--mount-src` it sees the image's copy.
#[test]
fn shell_runs_a_piped_script_on_live_sources() {
    let Some(ws) = Scratch::new("shell") else {
        return;
    };
    let marker = format!("# edited on the host {}", support::unique("m"));
    let script = format!(
        "tail -n 1 {FLYWHEEL}/app/main.py\ntail -n 1 {FLYWHEEL}/run.py\n\
         cat {FLYWHEEL}/app/added.txt 2>/dev/null || echo no added.txt\n\
         test -f {FLYWHEEL}/config.json && test -d {FLYWHEEL}/input && echo run layout\nexit 7\n"
    );
    let sources = ["gears/csv-summary/app/main.py", "gears/csv-summary/run.py"];
    let originals: Vec<(&str, String)> = sources.iter().map(|f| (*f, read(&ws.path(f)))).collect();
    let edit = |ws: &Scratch| {
        for file in sources {
            // In place, as editors that keep the file's inode do: single-file binds see it.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(ws.path(file))
                .unwrap();
            writeln!(f, "{marker}").unwrap();
        }
        write(
            &ws.path("gears/csv-summary/app/added.txt"),
            "added on the host\n",
        );
    };

    let started = Instant::now();
    let mut shell = Shell::start(&ws, &["--mount-src"]);
    shell.wait_ready();
    edit(&ws);
    let (code, stdout, stderr) = shell.finish(&script);
    eprintln!(
        "cargo gear shell --mount-src: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(7), "the shell's exit code; stderr:\n{stderr}");
    assert_eq!(
        stdout,
        [
            marker.as_str(),
            marker.as_str(),
            "added on the host",
            "run layout"
        ],
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("Shell"), "{stderr}");

    // Without --mount-src, the same edit (undone first, then redone once the shell runs)
    // is not seen: the shell has the image's files.
    for (file, text) in &originals {
        write(&ws.path(file), text);
    }
    std::fs::remove_file(ws.path("gears/csv-summary/app/added.txt")).unwrap();
    let mut shell = Shell::start(&ws, &[]);
    shell.wait_ready();
    edit(&ws);
    let (code, stdout, stderr) = shell.finish(&script);
    assert_eq!(code, Some(7), "stderr:\n{stderr}");
    let last = |text: &str| text.lines().last().unwrap().to_owned();
    assert_eq!(
        stdout,
        [
            last(&originals[0].1),
            last(&originals[1].1),
            "no added.txt".into(),
            "run layout".into()
        ],
        "stderr:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// 8. cargo gear config
// ---------------------------------------------------------------------------------------

/// `cargo gear config` writes target/gear/config/GEAR.json in the shape of a run's config.json
/// (the same document for the same arguments), and `cargo gear run --config-file` of it runs
/// with its values; `--config` still wins over the file.
#[test]
fn config_writes_a_config_json_that_runs_use() {
    let Some(ws) = Scratch::new("config") else {
        return;
    };
    let table = input("table", &ws.table());
    let args = [
        "--input",
        table.as_str(),
        "--config",
        "precision=1",
        "--config",
        "delimiter=,",
    ];

    let mut config_args = vec!["config", "-p", "csv-summary"];
    config_args.extend_from_slice(&args);
    let written = ws.gear(&config_args).success();
    let saved = ws.path("target/gear/config/csv-summary.json");
    assert!(
        written.stderr.contains("Wrote ")
            && written
                .stderr
                .contains("target/gear/config/csv-summary.json"),
        "{}",
        written.stderr
    );
    assert!(!ws.runs_dir().exists(), "`cargo gear config` runs nothing");
    let saved_json = json_file(&saved);
    assert_eq!(
        saved_json["config"],
        json!({"delimiter": ",", "precision": 1})
    );

    // A run with the same arguments writes the same document.
    let run = ws.run("csv-summary", &args).success();
    assert_eq!(
        json_file(&ws.run_dir_of(&run).join("config.json")),
        saved_json
    );

    // A run from the file gets the file's values.
    let file = saved.display().to_string();
    let run = ws
        .run("csv-summary", &["--input", &table, "--config-file", &file])
        .success();
    let dir = ws.run_dir_of(&run);
    assert_eq!(
        json_file(&dir.join("config.json"))["config"],
        json!({"delimiter": ",", "precision": 1})
    );
    let summary = json_file(&dir.join("output/summary.json"));
    assert_eq!(summary["precision"], 1);
    assert_rounded(&summary["columns"], 1, "columns");

    // --config wins over the file; a relative --config-file is taken from the working directory.
    let run = ws
        .run(
            "csv-summary",
            &[
                "--input",
                &table,
                "--config-file",
                "target/gear/config/csv-summary.json",
                "--config",
                "precision=0",
            ],
        )
        .success();
    let dir = ws.run_dir_of(&run);
    assert_eq!(
        json_file(&dir.join("config.json"))["config"],
        json!({"delimiter": ",", "precision": 0})
    );
    assert_eq!(json_file(&dir.join("output/summary.json"))["precision"], 0);

    // The file's values are checked like the command line's.
    write(
        &ws.path("bad.json"),
        r#"{"precision": 11, "delimeter": ";"}"#,
    );
    let refused = ws
        .run(
            "csv-summary",
            &["--input", &table, "--config-file", "bad.json"],
        )
        .expect_code(1);
    let message = refused.message();
    assert!(
        message.contains("config `precision`: 11 is above its `maximum` 10"),
        "{message}"
    );
    assert!(message.contains("has no config `delimeter`"), "{message}");
    // A file that cannot be read is one more problem, reported with the others.
    let refused = ws
        .run(
            "csv-summary",
            &[
                "--input",
                "tabel=data.csv",
                "--config-file",
                "missing.json",
                "--config",
                "precision=abc",
            ],
        )
        .expect_code(1);
    let message = refused.message();
    assert!(message.contains("4 problems found"), "{message}");
    assert!(
        message.contains("gear::run-config-file")
            && message.contains("/monorepo/missing.json: No such file"),
        "{message}"
    );
    assert!(
        message.contains("has no input `tabel`") && message.contains("`abc` is not an integer"),
        "{message}"
    );
    assert_eq!(
        ws.run_dirs().len(),
        3,
        "the refused runs made no run directory"
    );
}

/// `cargo gear init` on a parent that pip-installs Flywheel's toolkit (flywheel-gear-toolkit
/// or fw-gear) scaffolds a run.py that reads the job through its context, else one that reads
/// config.json as JSON; each runs with the real toolkit against a run directory's layout.
#[test]
fn init_scaffolds_run_py_for_the_parents_toolkit() {
    let Some(python) = fw_python() else {
        return;
    };
    for (pip, marker) in [
        ("", "json.load"),
        (
            "flywheel-gear-toolkit>=0.6",
            "GearToolkitContext(gear_path=FLYWHEEL)",
        ),
        ("fw_gear", "from fw_gear.context import GearContext"),
    ] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            write(path, text);
        };
        write(
            &root.join("base/Gear.toml"),
            "[layer]\nname = \"base\"\nimage = \"python:3.12-slim\"\n",
        );
        let pip = if pip.is_empty() {
            String::new()
        } else {
            format!("pip = [\"{pip}\"]\n")
        };
        write(
            &root.join("fw-base/Gear.toml"),
            &format!(
                "[layer]\nname = \"fw-base\"\nfrom = \"base\"\nimage = \"lab/fw-base\"\n{pip}"
            ),
        );
        let out = scratch::gear_command(root, &["init", "g", "--from", "fw-base"], &[])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run_py = read(&root.join("g/run.py"));
        assert!(run_py.contains(marker), "{pip}: {run_py}");

        // Flywheel's layout: config.json, manifest.json, input/NAME/FILE, output/.
        let fw = root.join("fw");
        write(&fw.join("input/input-file/in.txt"), "hello\n");
        std::fs::create_dir_all(fw.join("output")).unwrap();
        std::fs::copy(root.join("g/manifest.json"), fw.join("manifest.json")).unwrap();
        let input = fw.join("input/input-file/in.txt");
        let config = serde_json::json!({
            "config": {"debug": true},
            "inputs": {"input-file": {
                "base": "file",
                "hierarchy": {"type": "acquisition", "id": "0"},
                "location": {"path": input, "name": "in.txt"},
                "object": {"type": "text", "mimetype": "text/plain", "modality": null,
                           "classification": {}, "tags": [], "info": {}, "size": 6},
            }},
            "destination": {"type": "acquisition", "id": "0"},
        });
        write(&fw.join("config.json"), &config.to_string());
        let ran = Command::new(&python)
            .arg(root.join("g/run.py"))
            .env("FLYWHEEL", &fw)
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{pip}: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
        assert_eq!(
            read(&fw.join("output/result.txt")),
            "in.txt: 6 bytes\n",
            "{pip}"
        );
    }
}
