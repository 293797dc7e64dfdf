//! Shared by the end-to-end tests that drive the cargo-gear binary on a scratch copy of
//! examples/monorepo (e2e_build, e2e_run, e2e_registry): the example's layers, the copy and
//! its isolation (each built layer gets the test's own image repository and label), the
//! `cargo-gear gear` command line, builds and their JSON events (as the binary's own types),
//! plans, and removing a test's images. Uses [`crate::support`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ImageSummary;
use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use cargo_gear::engine::{Engine, ImageInfo};
use cargo_gear::progress::Outcome;
pub use cargo_gear::progress::events::{BuildEvent, BuildFinished, LayerFinished, LayerStarted};
use cargo_gear::schedule::FINGERPRINT_LABEL;
use serde_json::Value;

use crate::support;

/// The FreeSurfer stand-in image `cargo xtask engine start` creates.
pub const FREESURFER: &str = "cargo-gear-fixture/freesurfer:7.3.2";
/// `--substitute` of every command: the examples' Docker Hub images by the local fixtures.
pub const SUBSTITUTES: [(&str, &str); 2] = [
    ("freesurfer/freesurfer:7.3.2", FREESURFER),
    ("python:3.12-slim", support::DEBIAN_PYTHON),
];

/// The example's external layers, its built layers, and the gears among those.
pub const EXTERNAL: [&str; 2] = ["freesurfer", "python"];
pub const BUILT: [&str; 6] = [
    "fw-freesurfer",
    "fs-license-check",
    "recon-all",
    "fw-python",
    "csv-summary",
    "hello",
];
pub const GEARS: [&str; 4] = ["fs-license-check", "recon-all", "csv-summary", "hello"];

// ---------------------------------------------------------------------------------------
// The scratch copy
// ---------------------------------------------------------------------------------------

/// A current-thread runtime and the engine, or None (after a note) when the engine tests are
/// skipped.
pub fn connect() -> Option<(tokio::runtime::Runtime, Engine)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(support::engine())?;
    Some((rt, engine))
}

/// A scratch copy of examples/monorepo whose built layers are this test's own (see
/// [`isolate`]); removes the images carrying its label when dropped. Each test file wraps it
/// with what its scenarios need.
pub struct Workspace {
    /// Unique name: in image repositories and the `cargo-gear.test` label.
    pub id: String,
    /// The copy's root, canonical (as cargo metadata reports it, so every path cargo-gear
    /// prints starts with it).
    pub root: PathBuf,
    pub engine: Engine,
    pub rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Workspace {
    /// The scratch workspace of the test `test` (which needs the `fixtures` images), or None
    /// (after a note) when the engine tests are skipped.
    pub fn new(test: &str, fixtures: &[&str]) -> Option<Workspace> {
        let (rt, engine) = connect()?;
        for fixture in fixtures {
            rt.block_on(support::require_fixture(&engine, fixture));
        }
        let id = support::unique(test);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("monorepo");
        copy_monorepo(&root);
        isolate(&root, &id);
        Some(Workspace {
            id,
            root,
            engine,
            rt,
            dir,
        })
    }

    /// The temporary directory holding the copy (room for other files of the test).
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// `target/gear/state/NAME.json`.
    pub fn record_path(&self, name: &str) -> PathBuf {
        record_path(&self.root, name)
    }

    /// The build record of `name`, if there is one.
    pub fn record(&self, name: &str) -> Option<Value> {
        record(&self.root, name)
    }

    /// `target/gear/logs/NAME.log`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.path(&format!("target/gear/logs/{name}.log"))
    }

    /// Adds a `[layer]` built on `from` whose only step is `run`, with this test's image
    /// repository and label.
    pub fn add_layer(&self, name: &str, from: &str, run: &str) {
        let toml = format!(
            "[layer]\nname = \"{name}\"\nfrom = \"{from}\"\nimage = \"{prefix}{name}\"\n{labels}\
             run = [{run}]\n",
            prefix = image_prefix(&self.id),
            labels = labels_line(&self.id),
            run = serde_json::json!(run),
        );
        let dir = self.path(&format!("layers/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir.join("Gear.toml"), &toml);
    }

    /// `cargo-gear gear ARGS --substitute FROM=TO…` in the workspace, with its own target/
    /// whatever this test run uses.
    pub fn command_with(&self, args: &[&str], substitutes: &[(&str, &str)]) -> Command {
        let mut cmd = gear_command(&self.root, args, substitutes);
        cmd.env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        cmd
    }

    /// `cargo gear plan --format json` with `substitutes`, which must succeed.
    pub fn plan_with(&self, args: &[&str], substitutes: &[(&str, &str)]) -> Plan {
        let mut all = vec!["plan", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.command_with(&all, substitutes).output().unwrap();
        assert!(
            out.status.success(),
            "cargo gear {all:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Plan::parse(&String::from_utf8(out.stdout).unwrap())
    }

    /// Starts `cargo gear build --message-format json ARGS` with `substitutes`.
    pub fn spawn_build_with(&self, args: &[&str], substitutes: &[(&str, &str)]) -> Running {
        let mut all = vec!["build", "--message-format", "json"];
        all.extend_from_slice(args);
        Running::spawn(self.command_with(&all, substitutes))
    }

    pub fn image(&self, reference: &str) -> Option<ImageInfo> {
        self.rt.block_on(self.engine.image(reference)).unwrap()
    }

    /// Every build record names an image that exists under the layer's content tag with
    /// the recorded fingerprint: nothing is recorded that was not built and tagged.
    pub fn assert_records_match_images(&self, plan: &Plan) {
        assert_records_match_images(&self.root, plan, |tag| self.image(tag));
    }
}

impl Drop for Workspace {
    /// Removes every image carrying this test's label, children first. By ID, which is
    /// safe because only this test's images carry its label; without pruning, so that the
    /// unlabelled intermediate images above them stay as docker's build cache.
    fn drop(&mut self) {
        self.rt
            .block_on(remove_labelled_images(self.engine.docker(), &self.id));
    }
}

/// Copies examples/monorepo (without its `target/`) to `to`, without its Rust gear
/// (`gears/nifti-stats` and the `crates/` it is built from): the scenarios here are about
/// layers and gears in general, and each copy would compile the gear's dependencies from
/// nothing. `e2e_rust` builds and runs it ([`copy_monorepo_with_rust`]).
pub fn copy_monorepo(to: &Path) {
    copy_monorepo_with_rust(to);
    std::fs::remove_dir_all(to.join("gears/nifti-stats")).unwrap();
    std::fs::remove_dir_all(to.join("crates")).unwrap();
    // Cargo reads a `members` glob that matches nothing as a path.
    let manifest = to.join("Cargo.toml");
    let text = read(&manifest);
    assert!(text.contains("members = [\"crates/*\"]"), "{text}");
    write(
        &manifest,
        &text.replace("members = [\"crates/*\"]", "members = []"),
    );
}

/// Copies examples/monorepo (without its `target/`) to `to`, whole.
pub fn copy_monorepo_with_rust(to: &Path) {
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/monorepo"),
        to,
    );
}

/// `cargo-gear-test/<id>-`: the start of every image repository of the test `id`.
pub fn image_prefix(id: &str) -> String {
    format!("cargo-gear-test/{id}-")
}

/// `labels = { "cargo-gear.test" = "<id>" }` and a newline: the line a layer of the test `id`
/// carries.
pub fn labels_line(id: &str) -> String {
    format!("labels = {{ \"{}\" = \"{id}\" }}\n", support::TEST_LABEL)
}

/// `cargo-gear.test=<id>`: the label filter of the test `id`'s images and containers.
pub fn label_filter(id: &str) -> String {
    format!("{}={id}", support::TEST_LABEL)
}

/// Gives every built layer of the copy at `root` the test `id`'s image repository
/// (`image = "example/X"` becomes `image = "cargo-gear-test/<id>-X"`) and label.
pub fn isolate(root: &Path, id: &str) {
    let mut rewritten = 0;
    for toml in gear_tomls(root) {
        let mut out = String::new();
        for line in read(&toml).lines() {
            match line.strip_prefix("image = \"example/") {
                Some(rest) => {
                    out += &format!("image = \"{}{rest}\n", image_prefix(id));
                    out += &labels_line(id);
                    rewritten += 1;
                }
                None => {
                    out += line;
                    out.push('\n');
                }
            }
        }
        write(&toml, &out);
    }
    // The Rust gear is in the copies of `copy_monorepo_with_rust` only.
    let rust = usize::from(root.join("gears/nifti-stats").is_dir());
    assert_eq!(
        rewritten,
        BUILT.len() + rust,
        "every built layer of the example has an `image = \"example/…\"` line"
    );
}

/// The Gear.toml files of `layers/*` and `gears/*`.
pub fn gear_tomls(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for group in ["layers", "gears"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap() {
            let toml = entry.unwrap().path().join("Gear.toml");
            if toml.is_file() {
                out.push(toml);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// A gear on busybox, for other engines
// ---------------------------------------------------------------------------------------

/// A workspace of the busybox fixture (`base`) and a gear on it (`probe`: a `run` step, and
/// a program that prints what the step wrote and leaves an output file), with this test's
/// image repository and label: for the engines other than the suite's (a TLS listener,
/// Podman), which hold only the busybox fixture. Every command talks to the engine `env`
/// names, whatever the test process's own `DOCKER_*` say.
pub struct BusyboxGear {
    pub id: String,
    pub root: PathBuf,
    env: Vec<(&'static str, std::ffi::OsString)>,
    /// The engine, when the test connects to it ([`BusyboxGear::connect`]); the test's
    /// images are removed from it when dropped.
    engine: Option<(tokio::runtime::Runtime, Engine)>,
    _dir: tempfile::TempDir,
}

/// `ROOT/base/Gear.toml`: the external layer `base`, the busybox fixture.
pub fn write_busybox_base(root: &Path) {
    std::fs::create_dir_all(root.join("base")).unwrap();
    write(
        &root.join("base/Gear.toml"),
        &format!(
            "[layer]\nname = \"base\"\nimage = \"{}\"\ndistro = \"alpine\"\n",
            support::BUSYBOX
        ),
    );
}

/// What the `probe` gear prints when it runs.
pub const PROBE_SAYS: &str = "probe ran:";

impl BusyboxGear {
    pub fn new(test: &str, env: Vec<(&'static str, std::ffi::OsString)>) -> BusyboxGear {
        let id = support::unique(test);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        write_busybox_base(&root);
        std::fs::create_dir_all(root.join("probe")).unwrap();
        write(
            &root.join("probe/Gear.toml"),
            &format!(
                "[gear]\nname = \"probe\"\nfrom = \"base\"\nimage = \"{prefix}probe\"\n{labels}\
                 version = \"1.0.0\"\nlabel = \"Probe\"\n\
                 description = \"A gear of cargo-gear's engine tests.\"\n\
                 author = \"cargo-gear tests\"\nlicense = \"MIT\"\ncommand = \"sh run.sh\"\n\
                 run = [\"echo built-{id} > /built\"]\n",
                prefix = image_prefix(&id),
                labels = labels_line(&id),
            ),
        );
        let gear = BusyboxGear {
            id,
            root,
            env,
            engine: None,
            _dir: dir,
        };
        gear.change_program("");
        gear
    }

    /// Connects to the engine at `address` (the one `env` names), which must hold the
    /// busybox fixture; the test's images are removed from it when the workspace is dropped.
    pub fn connect(&mut self, address: &cargo_gear::engine::EngineAddress) -> &Engine {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let engine = rt
            .block_on(Engine::connect_to(address))
            .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
        rt.block_on(support::require_fixture(&engine, support::BUSYBOX));
        &self.engine.insert((rt, engine)).1
    }

    /// The image `reference` in the engine [`BusyboxGear::connect`] connected to.
    pub fn image(&self, reference: &str) -> Option<ImageInfo> {
        let (rt, engine) = self.engine.as_ref().expect("connected");
        rt.block_on(engine.image(reference)).unwrap()
    }

    /// Removes `reference` from that engine.
    pub fn remove_image(&self, reference: &str) -> bool {
        let (rt, engine) = self.engine.as_ref().expect("connected");
        rt.block_on(engine.remove_image(reference, true)).unwrap()
    }

    /// Rewrites the gear's program with `comment` in it: a change of `probe` only.
    pub fn change_program(&self, comment: &str) {
        write(
            &self.root.join("probe/run.sh"),
            &format!(
                "#!/bin/sh\n# {comment}\nset -eu\necho \"{PROBE_SAYS} $(cat /built)\"\n\
                 mkdir -p /flywheel/v0/output\necho ok > /flywheel/v0/output/ok.txt\n"
            ),
        );
    }

    /// The local image repository of `probe`.
    pub fn probe_repo(&self) -> String {
        format!("{}probe", image_prefix(&self.id))
    }

    /// `cargo-gear gear --root ROOT ARGS` talking to this workspace's engine.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut all = vec!["--root", self.root.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut cmd = gear_command(&self.root, &all, &[]);
        for var in [
            "DOCKER_HOST",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_CONTEXT",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `cargo gear ARGS` to its end (killed after `timeout`).
    pub fn gear(&self, args: &[&str], timeout: Duration) -> Out {
        run_to_end(self.command(args), timeout)
    }

    /// `cargo gear build --message-format json ARGS`, to its end.
    pub fn build(&self, args: &[&str], timeout: Duration) -> Build {
        let mut all = vec!["build", "--message-format", "json"];
        all.extend_from_slice(args);
        Running::spawn(self.command(&all)).finish(timeout)
    }

    /// `cargo gear plan --format json ARGS`, which must succeed.
    pub fn plan(&self, args: &[&str], timeout: Duration) -> Plan {
        let mut all = vec!["plan", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.gear(&all, timeout);
        assert_eq!(out.code, Some(0), "cargo gear {all:?}:\n{}", out.stderr);
        Plan::parse(&out.stdout)
    }
}

impl Drop for BusyboxGear {
    fn drop(&mut self) {
        if let Some((rt, engine)) = &self.engine {
            rt.block_on(remove_labelled_images(engine.docker(), &self.id));
        }
    }
}

// ---------------------------------------------------------------------------------------
// cargo gear
// ---------------------------------------------------------------------------------------

/// `cargo-gear gear ARGS --substitute FROM=TO…` in `root`, colors off.
pub fn gear_command(root: &Path, args: &[&str], substitutes: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("cargo-gear"));
    cmd.current_dir(root)
        .arg("gear")
        .args(args)
        .env("CARGO_TERM_COLOR", "never");
    for (from, to) in substitutes {
        cmd.arg("--substitute").arg(format!("{from}={to}"));
    }
    cmd
}

// ---------------------------------------------------------------------------------------
// Finished commands, builds and their JSON events
// ---------------------------------------------------------------------------------------

/// A finished command.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stderr with miette's line wrapping and box drawing undone, whitespace collapsed.
    pub fn message(&self) -> String {
        self.stderr
            .split_whitespace()
            .filter(|w| *w != "│")
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs `cmd` with its output captured, killing it after `timeout`.
pub fn run_to_end(cmd: Command, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    let mut child = spawn_piped(cmd);
    let stdout = read_to_end(child.stdout.take().unwrap());
    let stderr = read_to_end(child.stderr.take().unwrap());
    let status = wait(&mut child, timeout, &what);
    Out {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Starts `cmd` with no stdin and its stdout and stderr piped.
fn spawn_piped(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// A thread reading `pipe` to its end.
fn read_to_end(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Waits for `child` to exit; kills it and panics after `timeout`.
fn wait(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `cargo gear build --message-format json` in progress: its events, typed as the binary
/// emits them, as they come.
pub struct Running {
    child: Child,
    events: mpsc::Receiver<(Instant, BuildEvent)>,
    seen: Vec<(Instant, BuildEvent)>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    pub fn spawn(cmd: Command) -> Running {
        let mut child = spawn_piped(cmd);
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let event = parse_event(&line.unwrap());
                if tx.send((Instant::now(), event)).is_err() {
                    break;
                }
            }
        });
        Running {
            stderr: read_to_end(child.stderr.take().unwrap()),
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits for the first event (seen or to come) that `matches`.
    pub fn wait_for(
        &mut self,
        what: &str,
        matches: impl Fn(&BuildEvent) -> bool,
        timeout: Duration,
    ) -> BuildEvent {
        if let Some((_, e)) = self.seen.iter().find(|(_, e)| matches(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((at, e)) => {
                    let found = matches(&e);
                    self.seen.push((at, e.clone()));
                    if found {
                        return e;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no event for {what} within {timeout:?}; events so far: {:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Waits for `layer` to start building.
    pub fn wait_started(&mut self, layer: &str, timeout: Duration) {
        self.wait_for(
            &format!("{layer} to start"),
            |e| matches!(e, BuildEvent::LayerStarted(s) if s.name == layer),
            timeout,
        );
    }

    /// SIGINT, as Ctrl-C sends it.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed");
    }

    /// Waits for the process to exit (killing it after `timeout`) and collects everything.
    pub fn finish(mut self, timeout: Duration) -> Build {
        let status = wait(&mut self.child, timeout, "cargo gear build");
        // The reader thread ends with stdout; then the channel disconnects.
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(30)) {
            self.seen.push(event);
        }
        Build {
            out: Out {
                code: status.code(),
                stdout: String::new(),
                stderr: self.stderr.join().unwrap(),
            },
            events: self.seen,
        }
    }
}

/// One line of `--message-format json`, as the binary's own type.
pub fn parse_event(line: &str) -> BuildEvent {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a build event ({e}): {line}"))
}

/// A finished `cargo gear build --message-format json`: exit code and stderr (`out`; its
/// stdout is in `events`), and the events with the moment each arrived.
#[derive(Debug)]
pub struct Build {
    pub out: Out,
    pub events: Vec<(Instant, BuildEvent)>,
}

impl Build {
    /// A finished build whose stdout holds its events.
    pub fn parse(out: Out) -> Build {
        let events = out
            .stdout
            .lines()
            .map(|line| (Instant::now(), parse_event(line)))
            .collect();
        Build { out, events }
    }

    pub fn assert_success(&self) -> &Build {
        self.assert_code(0)
    }

    pub fn assert_code(&self, code: i32) -> &Build {
        assert_eq!(
            self.out.code,
            Some(code),
            "exit code of cargo gear build; stderr:\n{}",
            self.out.stderr
        );
        self
    }

    /// The `layer-finished` events.
    pub fn layers_finished(&self) -> impl Iterator<Item = &LayerFinished> {
        self.events.iter().filter_map(|(_, e)| match e {
            BuildEvent::LayerFinished(f) => Some(f),
            _ => None,
        })
    }

    /// The `layer-started` events.
    pub fn layers_started(&self) -> impl Iterator<Item = &LayerStarted> {
        self.events.iter().filter_map(|(_, e)| match e {
            BuildEvent::LayerStarted(s) => Some(s),
            _ => None,
        })
    }

    /// The one `layer-finished` event of `name`.
    pub fn finished(&self, name: &str) -> &LayerFinished {
        let found: Vec<_> = self.layers_finished().filter(|e| e.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one layer-finished event for {name}: {found:#?}\n{}",
            self.out.stderr
        );
        found[0]
    }

    pub fn outcome(&self, name: &str) -> Outcome {
        self.finished(name).outcome
    }

    /// Layer name → outcome.
    pub fn outcomes(&self) -> BTreeMap<String, Outcome> {
        self.layers_finished()
            .map(|e| (e.name.clone(), e.outcome))
            .collect()
    }

    /// The names of the layers that finished with `outcome`.
    pub fn with_outcome(&self, outcome: Outcome) -> BTreeSet<String> {
        self.layers_finished()
            .filter(|e| e.outcome == outcome)
            .map(|e| e.name.clone())
            .collect()
    }

    /// The final event, which must be `build-finished` (and the only one).
    pub fn end(&self) -> &BuildFinished {
        let ends = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, BuildEvent::BuildFinished(_)))
            .count();
        match self.events.last() {
            Some((_, BuildEvent::BuildFinished(f))) if ends == 1 => f,
            _ => panic!(
                "the build ends with one build-finished event: {:#?}\n{}",
                self.events, self.out.stderr
            ),
        }
    }

    /// Built, fresh, pulled, failed, skipped, from the final `build-finished` event.
    pub fn counts(&self) -> [usize; 5] {
        let f = self.end();
        [f.built, f.fresh, f.pulled, f.failed, f.skipped]
    }

    /// Position of `name`'s `layer-started` event among all events.
    pub fn started_at(&self, name: &str) -> usize {
        self.position(
            name,
            |e| matches!(e, BuildEvent::LayerStarted(s) if s.name == name),
        )
    }

    /// Position of `name`'s `layer-finished` event among all events.
    pub fn finished_at(&self, name: &str) -> usize {
        self.position(
            name,
            |e| matches!(e, BuildEvent::LayerFinished(f) if f.name == name),
        )
    }

    fn position(&self, name: &str, matches: impl Fn(&BuildEvent) -> bool) -> usize {
        self.events
            .iter()
            .position(|(_, e)| matches(e))
            .unwrap_or_else(|| panic!("no such event for {name}: {:#?}", self.events))
    }
}

/// `cargo gear plan --format json`'s layers. Each test file adds the questions it asks.
pub struct Plan(pub Vec<Value>);

impl Plan {
    /// From the stdout of `cargo gear plan --format json`.
    pub fn parse(stdout: &str) -> Plan {
        let v: Value = serde_json::from_str(stdout).unwrap();
        Plan(v["layers"].as_array().unwrap().clone())
    }

    pub fn layer(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not planned"))
    }

    pub fn version_tag(&self, name: &str) -> &str {
        self.layer(name)["version_tag"].as_str().unwrap()
    }

    pub fn parent(&self, name: &str) -> &str {
        self.layer(name)["parent"].as_str().unwrap()
    }

    /// The reference that proves the layer exists: content tag, or the external image.
    pub fn reference(&self, name: &str) -> &str {
        let l = self.layer(name);
        l["content_tag"]
            .as_str()
            .unwrap_or_else(|| l["image"].as_str().unwrap())
    }

    /// The external layer at the root of `name`'s chain.
    pub fn root<'a>(&'a self, mut name: &'a str) -> &'a str {
        while let Some(p) = self.layer(name)["parent"].as_str() {
            name = p;
        }
        name
    }

    /// Status and reasons.
    pub fn status(&self, name: &str) -> (&str, Vec<&str>) {
        let l = self.layer(name);
        let reasons = l["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        (l["status"].as_str().unwrap(), reasons)
    }

    pub fn stale(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .filter(|l| l["status"] != "fresh")
            .map(|l| l["name"].as_str().unwrap())
            .collect()
    }

    pub fn content_tag(&self, name: &str) -> &str {
        self.layer(name)["content_tag"].as_str().unwrap()
    }

    /// The tag part of a layer's content tag, `gear-<12 hex>`.
    pub fn content_tag_name(&self, name: &str) -> &str {
        self.content_tag(name).rsplit_once(':').unwrap().1
    }

    pub fn version(&self, name: &str) -> &str {
        self.version_tag(name).rsplit_once(':').unwrap().1
    }

    /// Layer name → status.
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|l| {
                (
                    l["name"].as_str().unwrap().to_owned(),
                    l["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// `target/gear/state/NAME.json` of the workspace at `root`.
pub fn record_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("target/gear/state/{name}.json"))
}

/// The build record of `name`, if there is one.
pub fn record(root: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(record_path(root, name)).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// Every build record of the workspace at `root` names an image (found with `image`) that
/// exists under the layer's content tag with the recorded fingerprint: nothing is recorded
/// that was not built and tagged.
pub fn assert_records_match_images(
    root: &Path,
    plan: &Plan,
    image: impl Fn(&str) -> Option<ImageInfo>,
) {
    for layer in &plan.0 {
        let name = layer["name"].as_str().unwrap();
        let Some(record) = record(root, name) else {
            continue;
        };
        let tag = format!(
            "{}:gear-{}",
            layer["image"].as_str().unwrap(),
            short(&record["fingerprint"])
        );
        let image =
            image(&tag).unwrap_or_else(|| panic!("{name} has a build record but no image {tag}"));
        assert_eq!(record["image_id"], image.id.as_str(), "{name}");
        assert_eq!(
            image.labels.get(FINGERPRINT_LABEL).map(String::as_str),
            Some(record["fingerprint"].as_str().unwrap()),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Clean-up
// ---------------------------------------------------------------------------------------

/// Removes every image carrying the test `id`'s label, children first (see
/// [`remove_children_first`]).
pub async fn remove_labelled_images(docker: &Docker, id: &str) {
    let options = ListImagesOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![label_filter(id)],
        )])),
        ..Default::default()
    };
    let Ok(images) = docker.list_images(Some(options)).await else {
        return;
    };
    remove_children_first(docker, images).await;
}

/// Removes `images`, children first, by ID (safe when only the test's images are given),
/// without pruning, so that the unlabelled intermediate images above them stay as docker's
/// build cache. Errors are ignored: this is clean-up.
pub async fn remove_children_first(docker: &Docker, mut left: Vec<ImageSummary>) {
    while !left.is_empty() {
        let parents: HashSet<String> = left.iter().map(|i| i.parent_id.clone()).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) =
            left.into_iter().partition(|i| !parents.contains(&i.id));
        if leaves.is_empty() {
            break;
        }
        for image in leaves {
            let options = RemoveImageOptions {
                force: true,
                noprune: true,
            };
            let _ = docker.remove_image(&image.id, Some(options), None).await;
        }
        left = rest;
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Copies a directory tree (files and executable bits), skipping `target/`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

pub fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The first 12 hex digits of a `sha256:…` fingerprint.
pub fn short(fingerprint: &Value) -> String {
    fingerprint.as_str().unwrap().trim_start_matches("sha256:")[..12].to_owned()
}
