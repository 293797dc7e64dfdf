//! End-to-end tests of `cargo gear build` on a real Docker engine (issue "Real builds").
//!
//! Each test drives the real binary on its own scratch copy of examples/monorepo, in which
//! every built layer's `image = "example/…"` becomes `cargo-gear-test/<unique>-…` and gets
//! the label `cargo-gear.test=<unique>`. No two tests (or test runs) share a tag or a final
//! image, so "from nothing" is from nothing, and a test's clean-up removes exactly the
//! images carrying its label (without pruning the shared, unlabelled build cache above
//! them: docker's layer cache keeps repeated apt and pip steps fast). The external images
//! are the fixtures of `cargo xtask engine start`, through `--substitute`.
//!
//! Run with `CARGO_GEAR_TEST_ENGINE=1 cargo test -p cargo-gear --test it e2e_build::`.

use crate::scratch;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use bollard::query_parameters::ListContainersOptions;
use cargo_gear::engine::{RunSpec, StdStream};
use cargo_gear::progress::Outcome;
use cargo_gear::schedule::FINGERPRINT_LABEL;
use scratch::{
    BUILT, Build, BuildEvent, EXTERNAL, FREESURFER, GEARS, Plan, Running, SUBSTITUTES, names, read,
    write,
};
use serde_json::{Value, json};

/// Long enough for a cold build (apt and pip in the FreeSurfer stand-in).
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

// ---------------------------------------------------------------------------------------
// A scratch workspace on the engine
// ---------------------------------------------------------------------------------------

/// The shared scratch workspace with the fixture substitutions and what these tests ask of
/// the engine.
struct Workspace(scratch::Workspace);

impl std::ops::Deref for Workspace {
    type Target = scratch::Workspace;
    fn deref(&self) -> &scratch::Workspace {
        &self.0
    }
}

impl Workspace {
    /// The scratch workspace, or None (after a note) when the engine tests are skipped.
    fn new(test: &str) -> Option<Workspace> {
        scratch::Workspace::new(test, &[support::DEBIAN_PYTHON, FREESURFER]).map(Workspace)
    }

    // --- cargo gear -----------------------------------------------------------------

    /// `cargo-gear gear ARGS` with the fixture substitutions.
    fn command(&self, args: &[&str]) -> Command {
        self.command_with(args, &SUBSTITUTES)
    }

    /// The stdout of a command that must succeed.
    fn stdout(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "cargo gear {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `cargo gear plan --format json`.
    fn plan(&self) -> Plan {
        self.plan_with(&[], &SUBSTITUTES)
    }

    fn spawn_build(&self, args: &[&str]) -> Running {
        self.spawn_build_with(args, &SUBSTITUTES)
    }

    /// Runs `cargo gear build --message-format json ARGS` to its end.
    fn build(&self, args: &[&str]) -> Build {
        let started = Instant::now();
        let build = self.spawn_build(args).finish(BUILD_TIMEOUT);
        eprintln!(
            "{}: cargo gear build {args:?} took {:.1} s",
            self.id,
            started.elapsed().as_secs_f64()
        );
        build
    }

    // --- the engine -------------------------------------------------------------------

    /// The IDs of the images in `reference`'s history (present ones; others are `<missing>`).
    fn history(&self, reference: &str) -> Vec<String> {
        let items = self
            .rt
            .block_on(self.engine.docker().image_history(reference))
            .unwrap();
        items.into_iter().map(|i| i.id).collect()
    }

    /// Runs a container to its end: (exit code, stdout, stderr).
    fn run(&self, spec: RunSpec) -> (i64, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = self
            .rt
            .block_on(
                self.engine
                    .run_container(spec, &mut |stream, bytes| match stream {
                        StdStream::Stdout => out.extend_from_slice(bytes),
                        StdStream::Stderr => err.extend_from_slice(bytes),
                    }),
            )
            .unwrap();
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// `cat FILE` in a container of `image` (whatever its entrypoint).
    fn cat(&self, image: &str, file: &str) -> String {
        let (code, out, err) = self.run(RunSpec {
            image: image.into(),
            entrypoint: Some(vec!["cat".into()]),
            cmd: Some(vec![file.into()]),
            auto_remove: true,
            ..Default::default()
        });
        assert_eq!(code, 0, "cat {file} in {image}: {err}");
        out
    }

    /// Whether a container (running or not) has `needle` in its command.
    fn container_running(&self, needle: &str) -> bool {
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let containers = self
            .rt
            .block_on(self.engine.docker().list_containers(Some(options)))
            .unwrap();
        containers
            .iter()
            .any(|c| c.command.as_deref().unwrap_or("").contains(needle))
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// `NAME=value` lines as a map.
fn env_map(env: &[String]) -> BTreeMap<String, String> {
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Polls `done` until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// Whether `text` has a line that is `line` (command output, not the `Step` echoing it).
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

/// Whether `text` has a line reporting the failing step `Step N/M : RUN {command}`.
fn has_step_line(text: &str, command: &str) -> bool {
    let suffix = format!(" : RUN {command}");
    text.lines().any(|line| {
        let Some(at) = line.find("Step ") else {
            return false;
        };
        let rest = &line[at + 5..];
        let Some(end) = rest.find(&suffix) else {
            return false;
        };
        let (n, m) = rest[..end].split_once('/').unwrap_or(("", ""));
        !n.is_empty() && !m.is_empty() && n.chars().chain(m.chars()).all(|c| c.is_ascii_digit())
    })
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

/// From nothing: each built layer built once, parents first, each child `FROM` its
/// parent's content tag; the externals are fresh; the records name the images; each
/// gear's manifest in its image is the one written beside its Gear.toml, with the real
/// image environment; and the gears run.
#[test]
fn builds_the_monorepo_from_nothing_and_the_gears_run() {
    let Some(ws) = Workspace::new("from-nothing") else {
        return;
    };
    let plan = ws.plan();
    for name in BUILT {
        assert_eq!(plan.status(name), ("stale", vec!["never built"]), "{name}");
    }
    for name in EXTERNAL {
        assert_eq!(
            plan.status(name),
            ("fresh", vec![]),
            "{name}: the fixture is in the engine"
        );
    }

    let build = ws.build(&[]);
    build.assert_success();
    assert_eq!(build.counts(), [6, 2, 0, 0, 0]);
    for name in BUILT {
        assert_eq!(build.outcome(name), Outcome::Built, "{name}");
    }
    for (name, (_, fixture)) in EXTERNAL.iter().zip(SUBSTITUTES) {
        assert_eq!(build.outcome(name), Outcome::Fresh, "{name}");
        assert_eq!(
            build.finished(name).image,
            fixture,
            "{name} is the substituted fixture"
        );
    }

    for name in BUILT {
        let parent = plan.parent(name);
        // Dependency order: a layer starts only after its parent finished.
        if plan.layer(parent)["kind"] != "external" {
            assert!(
                build.finished_at(parent) < build.started_at(name),
                "{parent} before {name}"
            );
        }
        // Its Dockerfile starts FROM the parent's content tag, and its image really has the
        // parent's image in its history.
        let dockerfile = ws.stdout(&["dockerfile", "-p", name]);
        let from = dockerfile.lines().find(|l| l.starts_with("FROM ")).unwrap();
        assert_eq!(from, format!("FROM {}", plan.reference(parent)), "{name}");
        let parent_id = ws.image(plan.reference(parent)).unwrap().id;
        assert!(
            ws.history(plan.reference(name)).contains(&parent_id),
            "{name}'s image is built on {parent}'s"
        );
        // The image carries its fingerprint, and the build record names it.
        let fingerprint = plan.layer(name)["fingerprint"].as_str().unwrap();
        assert_eq!(build.finished(name).fingerprint, fingerprint);
        let image = ws
            .image(plan.reference(name))
            .unwrap_or_else(|| panic!("{name} has no content tag"));
        assert_eq!(
            image.labels.get(FINGERPRINT_LABEL).map(String::as_str),
            Some(fingerprint),
            "{name}"
        );
        let record = ws
            .record(name)
            .unwrap_or_else(|| panic!("{name} has no build record"));
        assert_eq!(record["fingerprint"], fingerprint, "{name}");
        assert_eq!(record["image_id"], image.id.as_str(), "{name}");
    }

    for gear in GEARS {
        // The version tag names the same image as the content tag.
        let image = ws.image(plan.reference(gear)).unwrap();
        assert_eq!(
            ws.image(plan.version_tag(gear)).map(|i| i.id),
            Some(image.id.clone()),
            "{gear}"
        );
        // /flywheel/v0/manifest.json in the image is the manifest.json the build wrote.
        let written = read(&ws.path(&format!("gears/{gear}/manifest.json")));
        assert_eq!(
            ws.cat(plan.reference(gear), "/flywheel/v0/manifest.json"),
            written,
            "{gear}"
        );
        let manifest: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            manifest["custom"]["gear-builder"]["image"],
            plan.version_tag(gear)
        );
        // Its environment is the image's: the base image's PATH and the declared FLYWHEEL.
        let environment: BTreeMap<String, String> =
            serde_json::from_value(manifest["environment"].clone()).unwrap();
        assert_eq!(
            environment,
            env_map(&image.env),
            "{gear}: manifest environment = image environment"
        );
        let base = env_map(&ws.image(plan.reference(plan.root(gear))).unwrap().env);
        assert_eq!(environment.get("PATH"), base.get("PATH"), "{gear}");
        assert_eq!(
            environment.get("FLYWHEEL").map(String::as_str),
            Some("/flywheel/v0"),
            "{gear}"
        );
    }

    // csv-summary on its example data, the way Flywheel runs it: config.json, the input
    // and the output directory mounted under /flywheel/v0, the manifest's command.
    let job = ws.path("target/job");
    std::fs::create_dir_all(job.join("input/table")).unwrap();
    std::fs::create_dir_all(job.join("output")).unwrap();
    let data = ws.path("gears/csv-summary/tests/data");
    std::fs::copy(
        data.join("example.csv"),
        job.join("input/table/example.csv"),
    )
    .unwrap();
    let config = json!({
        "config": {"delimiter": ",", "precision": 3},
        "inputs": {"table": {
            "base": "file",
            "location": {"path": "/flywheel/v0/input/table/example.csv", "name": "example.csv"},
            "object": {"type": "tabular data", "mimetype": "text/csv"},
        }},
        "destination": {"type": "acquisition", "id": "000000000000000000000000"},
    });
    write(&job.join("config.json"), &config.to_string());
    let command: Value =
        serde_json::from_str(&read(&ws.path("gears/csv-summary/manifest.json"))).unwrap();
    let owner = {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&job).unwrap();
        format!("{}:{}", meta.uid(), meta.gid())
    };
    let (code, _, err) = ws.run(RunSpec {
        image: plan.version_tag("csv-summary").into(),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            command["command"].as_str().unwrap().into(),
        ]),
        binds: vec![
            format!(
                "{}:/flywheel/v0/config.json:ro",
                job.join("config.json").display()
            ),
            format!("{}:/flywheel/v0/input:ro", job.join("input").display()),
            format!("{}:/flywheel/v0/output", job.join("output").display()),
        ],
        user: Some(owner),
        auto_remove: true,
        ..Default::default()
    });
    assert_eq!(code, 0, "csv-summary failed:\n{err}");
    let summary: Value = serde_json::from_str(&read(&job.join("output/summary.json"))).unwrap();
    let expected: Value = serde_json::from_str(&read(&data.join("expected-summary.json"))).unwrap();
    assert_eq!(summary, expected);

    // hello, through its entrypoint.
    let (code, out, err) = ws.run(RunSpec {
        image: plan.version_tag("hello").into(),
        auto_remove: true,
        ..Default::default()
    });
    assert_eq!(
        (code, out.trim()),
        (0, "Hello from the hello gear!"),
        "{err}"
    );

    // fs-license-check finds FREESURFER_HOME and the license fw-freesurfer placed there.
    let (code, out, err) = ws.run(RunSpec {
        image: plan.version_tag("fs-license-check").into(),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            "python3 run.py >&2 && cat output/license-report.json".into(),
        ]),
        auto_remove: true,
        ..Default::default()
    });
    assert_eq!(code, 0, "fs-license-check failed:\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["license_path"], "/usr/local/freesurfer/license.txt");
    assert_eq!(
        (&report["license_exists"], &report["ok"]),
        (&json!(true), &json!(true)),
        "{report:#}"
    );
}

/// A second build finds everything fresh and sends nothing to the engine: no layer
/// starts, no build log or record is touched, every tag names the same image.
#[test]
fn a_second_build_is_all_fresh_and_sends_nothing() {
    let Some(ws) = Workspace::new("rebuild") else {
        return;
    };
    ws.build(&[]).assert_success();
    let plan = ws.plan();
    assert!(
        plan.stale().is_empty(),
        "fresh after the build: {:?}",
        plan.stale()
    );

    // Backdate every log, record and written manifest: any write would show.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let mut touched: Vec<PathBuf> = Vec::new();
    for name in BUILT {
        touched.push(ws.log_path(name));
        touched.push(ws.record_path(name));
    }
    for gear in GEARS {
        touched.push(ws.path(&format!("gears/{gear}/manifest.json")));
    }
    for path in &touched {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let ids: Vec<String> = BUILT
        .iter()
        .map(|n| ws.image(plan.reference(n)).unwrap().id)
        .collect();

    let again = ws.build(&[]);
    again.assert_success();
    assert_eq!(again.counts(), [0, 8, 0, 0, 0]);
    assert_eq!(
        again.with_outcome(Outcome::Fresh),
        names(&[&EXTERNAL[..], &BUILT[..]].concat())
    );
    assert_eq!(
        again.layers_started().count(),
        0,
        "no layer was started, so no context was sent"
    );
    for path in &touched {
        assert_eq!(
            std::fs::metadata(path).unwrap().modified().unwrap(),
            old,
            "{} was rewritten",
            path.display()
        );
    }
    let ids_again: Vec<String> = BUILT
        .iter()
        .map(|n| ws.image(plan.reference(n)).unwrap().id)
        .collect();
    assert_eq!(ids, ids_again);
}

/// One changed file of one gear: `plan` says exactly that gear is stale and why, and the
/// build rebuilds exactly that gear, with the change in its image.
#[test]
fn changing_a_gear_file_rebuilds_only_that_gear() {
    let Some(ws) = Workspace::new("gear-file") else {
        return;
    };
    ws.build(&[]).assert_success();
    let main_py = ws.path("gears/csv-summary/app/main.py");
    let marker = format!("# changed by the e2e test {}", ws.id);
    write(&main_py, &format!("{}\n{marker}\n", read(&main_py)));

    let plan = ws.plan();
    assert_eq!(
        plan.status("csv-summary"),
        ("stale", vec!["file app/main.py changed"])
    );
    assert_eq!(
        plan.stale(),
        BTreeSet::from(["csv-summary"]),
        "every other layer is fresh"
    );

    let build = ws.build(&[]);
    build.assert_success();
    assert_eq!(build.with_outcome(Outcome::Built), names(&["csv-summary"]));
    assert_eq!(build.counts(), [1, 7, 0, 0, 0]);
    // Rebuilding a version never pushed is the normal dev loop: not a word about it.
    assert!(
        !build.out.stderr.contains("warning"),
        "{}",
        build.out.stderr
    );
    let main_in_image = ws.cat(plan.reference("csv-summary"), "/flywheel/v0/app/main.py");
    assert!(
        main_in_image.ends_with(&format!("{marker}\n")),
        "the new image has the change"
    );
    assert!(ws.plan().stale().is_empty());
}

/// `--force` rebuilds a fresh layer, with the engine reusing its cached steps; `--no-cache`
/// makes the engine run every step again.
#[test]
fn no_cache_runs_every_step_again_where_force_reuses_the_engine_cache() {
    let Some(ws) = Workspace::new("no-cache") else {
        return;
    };
    ws.add_layer("stamp", "python", "date +%s%N > /stamp");
    ws.build(&["-p", "stamp"]).assert_success();
    let stamp = || ws.cat(ws.plan().reference("stamp"), "/stamp");
    let first = stamp();

    let forced = ws.build(&["-p", "stamp", "--force"]);
    forced.assert_success();
    assert_eq!(forced.outcome("stamp"), Outcome::Built);
    let log = read(&ws.log_path("stamp"));
    assert!(log.contains("Using cache"), "{log}");
    assert_eq!(stamp(), first, "the cached step was reused");

    let uncached = ws.build(&["-p", "stamp", "--force", "--no-cache"]);
    uncached.assert_success();
    assert_eq!(uncached.outcome("stamp"), Outcome::Built);
    let log = read(&ws.log_path("stamp"));
    assert!(!log.contains("Using cache"), "{log}");
    assert_ne!(stamp(), first, "the step ran again");

    // Alone, --no-cache changes how layers are built, not which: a fresh layer stays.
    let fresh = ws.build(&["-p", "stamp", "--no-cache"]);
    fresh.assert_success();
    assert_eq!(fresh.outcome("stamp"), Outcome::Fresh);
}

/// A change to the shared base fw-python rebuilds it and its descendants (csv-summary,
/// hello) and nothing else: the FreeSurfer chain stays fresh.
#[test]
fn changing_a_shared_base_rebuilds_it_and_its_descendants_only() {
    let Some(ws) = Workspace::new("shared-base") else {
        return;
    };
    ws.build(&[]).assert_success();
    let toml = ws.path("layers/fw-python/Gear.toml");
    let text = read(&toml);
    assert!(text.contains("PYTHONUNBUFFERED = \"1\""));
    write(
        &toml,
        &text.replace("PYTHONUNBUFFERED = \"1\"", "PYTHONUNBUFFERED = \"0\""),
    );

    let plan = ws.plan();
    assert_eq!(
        plan.status("fw-python"),
        ("stale", vec!["Dockerfile changed (env)"])
    );
    for child in ["csv-summary", "hello"] {
        let (status, reasons) = plan.status(child);
        assert_eq!(
            (status, reasons.first().copied()),
            ("stale", Some("parent fw-python changed")),
            "{child}: {reasons:?}"
        );
    }
    assert_eq!(
        plan.stale(),
        BTreeSet::from(["fw-python", "csv-summary", "hello"])
    );

    let build = ws.build(&[]);
    build.assert_success();
    assert_eq!(
        build.with_outcome(Outcome::Built),
        names(&["fw-python", "csv-summary", "hello"])
    );
    assert_eq!(
        build.with_outcome(Outcome::Fresh),
        names(&[
            "freesurfer",
            "fw-freesurfer",
            "fs-license-check",
            "recon-all",
            "python"
        ])
    );
    for child in ["csv-summary", "hello"] {
        let dockerfile = ws.stdout(&["dockerfile", "-p", child]);
        assert!(
            dockerfile.contains(&format!("FROM {}\n", plan.reference("fw-python"))),
            "{child} is built on the new fw-python"
        );
        let written = read(&ws.path(&format!("gears/{child}/manifest.json")));
        let manifest: Value = serde_json::from_str(&written).unwrap();
        assert_eq!(manifest["environment"]["PYTHONUNBUFFERED"], "0", "{child}");
        assert_eq!(
            ws.cat(plan.reference(child), "/flywheel/v0/manifest.json"),
            written,
            "{child}"
        );
    }
    assert!(ws.plan().stale().is_empty());
}

/// A failing `run` step: the layer fails with its step and output on stderr, its dependent
/// is skipped, nothing is tagged or recorded for either, and the exit code is 1. With
/// `--keep-going` everything else is built; without, everything else is still fresh.
#[test]
fn a_failing_step_fails_its_layer_and_skips_its_dependents() {
    let Some(ws) = Workspace::new("failing") else {
        return;
    };
    const FAILING_RUN: &str = "echo about to fail; exit 7";
    ws.add_layer("failing", "fw-python", FAILING_RUN);
    ws.add_layer("after-failing", "failing", "echo never");
    let plan = ws.plan();

    let check_failure = |build: &Build| {
        build.assert_code(1);
        assert_eq!(build.outcome("failing"), Outcome::Failed);
        assert_eq!(build.outcome("after-failing"), Outcome::Skipped);
        let event = build.finished("failing");
        let step = event.failure.as_ref().and_then(|f| f.step.as_deref());
        assert!(
            step.is_some_and(|step| has_step_line(step, FAILING_RUN)),
            "{event:?}"
        );
        assert!(
            has_step_line(&build.out.stderr, FAILING_RUN),
            "stderr shows the failing step:\n{}",
            build.out.stderr
        );
        assert!(
            build.out.stderr.contains("│ about to fail"),
            "stderr shows the command's output:\n{}",
            build.out.stderr
        );
        assert!(
            build.out.stderr.contains("returned a non-zero code: 7"),
            "{}",
            build.out.stderr
        );
        for name in ["failing", "after-failing"] {
            assert_eq!(
                ws.image(plan.reference(name)).map(|i| i.id),
                None,
                "{name} has no content tag"
            );
            assert!(!ws.record_path(name).exists(), "{name} has no build record");
        }
        assert!(
            has_line(&read(&ws.log_path("failing")), "about to fail"),
            "the log has the command's output"
        );
    };

    let keep_going = ws.build(&["--keep-going"]);
    check_failure(&keep_going);
    assert_eq!(
        keep_going.with_outcome(Outcome::Built),
        names(&BUILT),
        "--keep-going builds every layer the failure does not affect"
    );
    assert_eq!(keep_going.counts(), [6, 2, 0, 1, 1]);
    ws.assert_records_match_images(&plan);

    let stop = ws.build(&[]);
    check_failure(&stop);
    assert_eq!(stop.counts(), [0, 8, 0, 1, 1]);
}

/// SIGINT in the middle of a layer's step: the build stops at once with exit code 130, the
/// engine drops the step, and nothing is recorded or tagged for the interrupted layer. The
/// next build, unchanged, completes it.
#[test]
fn an_interrupted_build_records_nothing_unfinished_and_the_next_completes_it() {
    let Some(ws) = Workspace::new("interrupt") else {
        return;
    };
    // Unique markers: docker must not have this step in its cache.
    let (sleeping, slept) = (format!("sleeping-{}", ws.id), format!("slept-{}", ws.id));
    ws.add_layer(
        "sleepy",
        "fw-python",
        &format!("echo {sleeping}; sleep 20; echo {slept}"),
    );
    let plan = ws.plan();

    let mut running = ws.spawn_build(&[]);
    running.wait_started("sleepy", BUILD_TIMEOUT);
    let log = ws.log_path("sleepy");
    assert!(
        wait_until(Duration::from_secs(120), || std::fs::read_to_string(&log)
            .is_ok_and(|l| has_line(&l, &sleeping))),
        "sleepy's step never started"
    );
    let signalled = Instant::now();
    running.interrupt();
    let build = running.finish(Duration::from_secs(60));
    let took = signalled.elapsed();
    build.assert_code(130);
    assert!(
        build.out.stderr.contains("interrupted"),
        "{}",
        build.out.stderr
    );
    // The JSON stream still ends with build-finished, saying it was interrupted; sleepy
    // never finished.
    let end = build.end();
    assert!(end.interrupted, "{end:?}");
    assert_eq!(end.failed, 0, "{end:?}");
    assert!(
        build.layers_finished().all(|f| f.name != "sleepy"),
        "{:#?}",
        build.events
    );
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGINT: it waited for the step"
    );

    assert!(
        !ws.record_path("sleepy").exists(),
        "no record for the interrupted layer"
    );
    assert_eq!(
        ws.image(plan.reference("sleepy")).map(|i| i.id),
        None,
        "no content tag for the interrupted layer"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !ws.container_running(&sleeping)),
        "the engine stopped the step's container"
    );
    assert!(
        !has_line(&read(&log), &slept),
        "the step did not run to its end"
    );
    ws.assert_records_match_images(&plan);

    let again = ws.build(&[]);
    again.assert_success();
    assert!(!again.end().interrupted);
    assert_eq!(again.outcome("sleepy"), Outcome::Built);
    assert!(
        again.with_outcome(Outcome::Failed).is_empty()
            && again.with_outcome(Outcome::Skipped).is_empty()
    );
    assert!(has_line(&read(&log), &slept), "the step ran to its end");
    assert!(ws.record("sleepy").is_some());
    ws.assert_records_match_images(&plan);
    assert!(ws.plan().stale().is_empty());
}

/// Two builds of one workspace at once: the second waits for the first's lock (and says
/// so), both succeed, and the second finds everything fresh.
#[test]
fn two_builds_at_once_are_serialized_by_the_lock() {
    let Some(ws) = Workspace::new("lock") else {
        return;
    };
    // A step long enough for the second build to find the lock taken.
    ws.add_layer(
        "slow",
        "fw-python",
        &format!("echo slow-{}; sleep 8", ws.id),
    );

    let mut first = ws.spawn_build(&[]);
    // The lock is taken before the first event.
    first.wait_for(
        "the first build to start",
        |e| matches!(e, BuildEvent::LayerStarted(_)),
        BUILD_TIMEOUT,
    );
    let second = ws.spawn_build(&[]);
    let first = first.finish(BUILD_TIMEOUT);
    let second = second.finish(BUILD_TIMEOUT);

    first.assert_success();
    second.assert_success();
    let lock = ws.path("target/gear/build.lock");
    assert!(
        second.out.stderr.contains(&format!(
            "Blocking waiting for file lock on {}",
            lock.display()
        )),
        "{}",
        second.out.stderr
    );
    assert_eq!(first.counts(), [7, 2, 0, 0, 0]);
    assert_eq!(second.counts(), [0, 9, 0, 0, 0]);
    let (first_done, _) = first.events.last().unwrap();
    let (second_began, _) = second.events.first().unwrap();
    assert!(
        second_began >= first_done,
        "the second build reported nothing before the first ended"
    );
}

/// Without build records (a build from another checkout or state directory, or records
/// cleaned), a layer whose image exists with its fingerprint is fresh.
#[test]
fn without_build_records_the_labelled_images_are_fresh() {
    let Some(ws) = Workspace::new("no-records") else {
        return;
    };
    ws.build(&[]).assert_success();
    std::fs::remove_dir_all(ws.path("target/gear/state")).unwrap();

    let plan = ws.plan();
    for name in EXTERNAL.iter().chain(&BUILT) {
        assert_eq!(plan.status(name), ("fresh", vec![]), "{name}");
    }
    let why = ws.stdout(&["why", "csv-summary"]);
    assert!(
        why.contains("csv-summary (gear): fresh") && why.contains("no build record here"),
        "{why}"
    );
    let build = ws.build(&[]);
    build.assert_success();
    assert_eq!(build.counts(), [0, 8, 0, 0, 0]);
}

/// `--offline` with a substitute image the engine does not have: the external layer fails
/// naming the image, its descendants are skipped, nothing is pulled or built.
#[test]
fn offline_build_with_a_missing_substitute_fails_naming_the_image() {
    let Some(ws) = Workspace::new("offline") else {
        return;
    };
    let missing = format!("cargo-gear-test/{}-missing-python:1", ws.id);
    let substitutes = [SUBSTITUTES[0], ("python:3.12-slim", missing.as_str())];
    let build = ws
        .spawn_build_with(&["--offline", "-p", "hello"], &substitutes)
        .finish(BUILD_TIMEOUT);
    build.assert_code(1);
    assert_eq!(build.outcome("python"), Outcome::Failed);
    assert_eq!(build.finished("python").image, missing.as_str());
    let error = &build.finished("python").failure.as_ref().unwrap().error;
    assert!(
        error.contains(&missing) && error.contains("--offline"),
        "{error}"
    );
    assert!(build.out.stderr.contains(&missing), "{}", build.out.stderr);
    assert_eq!(build.outcome("fw-python"), Outcome::Skipped);
    assert_eq!(build.outcome("hello"), Outcome::Skipped);
    assert_eq!(build.counts(), [0, 0, 0, 1, 2]);
    assert!(
        !ws.path("target/gear/state").exists(),
        "nothing was recorded"
    );
}
