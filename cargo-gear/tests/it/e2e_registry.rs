//! End-to-end tests of the team registry (issue "Share and ship"): `cargo gear push`,
//! `build --cache-from`/`--cache-to`, `plan --check-registry` and `prune`, driving the real
//! binary against the real engine and the two registries `cargo xtask test` starts (one
//! open, one behind htpasswd basic auth; see xtask/src/registry.rs).
//!
//! Each test works on its own scratch copy of examples/monorepo whose built layers are
//! `cargo-gear-test/<unique>-…` with the label `cargo-gear.test=<unique>`, and pushes under
//! its own registry prefix `<unique>`: no two tests (or test runs) share an image or a
//! registry repository. What a test finds in the registry is read with plain HTTP
//! (`/v2/_catalog`, `/v2/<name>/tags/list`, manifest digests), not through the engine.
//!
//! Run with `cargo xtask test -- --test it e2e_registry::`.

use crate::scratch;
use crate::support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bollard::query_parameters::ListImagesOptions;
use cargo_gear::progress::Outcome;
use scratch::{BUILT, Build, EXTERNAL, FREESURFER, GEARS, Plan, SUBSTITUTES, names, read, write};
use serde_json::Value;
/// `-p` arguments selecting the quick python chain: python, fw-python, csv-summary, hello.
const PYTHON_CHAIN: [&str; 4] = ["-p", "csv-summary", "-p", "hello"];
const PYTHON_BUILT: [&str; 3] = ["fw-python", "csv-summary", "hello"];

/// Long enough for a cold build (apt and pip in the FreeSurfer stand-in) or push.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// A push that must fail or succeed in a bounded time.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Any one HTTP exchange with a registry.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// A scratch workspace with its registry prefix
// ---------------------------------------------------------------------------------------

/// The shared scratch workspace with a registry prefix, credentials and what these tests
/// ask of the engine.
struct Scratch {
    ws: scratch::Workspace,
    /// `DOCKER_CONFIG` of every command: empty (no credentials) unless a test writes one.
    docker_config: PathBuf,
    /// Prepended to `PATH` (credential helpers).
    bin: PathBuf,
    reg: support::Registries,
    /// Everything every command printed, stdout and stderr.
    printed: RefCell<String>,
}

impl std::ops::Deref for Scratch {
    type Target = scratch::Workspace;
    fn deref(&self) -> &scratch::Workspace {
        &self.ws
    }
}

impl Scratch {
    /// The scratch workspace, or None (after a note) when the registry tests are skipped.
    fn new(test: &str) -> Option<Scratch> {
        let reg = support::registry()?;
        let ws = scratch::Workspace::new(test, &[support::DEBIAN_PYTHON, FREESURFER])?;
        let docker_config = ws.scratch_dir().join("docker-config");
        let bin = ws.scratch_dir().join("bin");
        std::fs::create_dir_all(&docker_config).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        Some(Scratch {
            ws,
            docker_config,
            bin,
            reg,
            printed: RefCell::new(String::new()),
        })
    }

    /// `cargo-gear-test/<id>-`: the start of every image repository of this workspace.
    fn image_prefix(&self) -> String {
        scratch::image_prefix(&self.id)
    }

    /// The local image repository of a built layer.
    fn repo(&self, layer: &str) -> String {
        format!("{}{layer}", self.image_prefix())
    }

    /// `127.0.0.1:PORT/<id>` on the open registry: this test's part of it.
    fn registry(&self) -> String {
        format!("{}/{}", self.reg.open, self.id)
    }

    /// The registry repository (`<id>/cargo-gear-test/<id>-LAYER`) of a built layer.
    fn remote_repo(&self, layer: &str) -> String {
        format!("{}/{}", self.id, self.repo(layer))
    }

    /// Appends a comment to a gear's program (app/main.py, or run.sh): a change of that
    /// gear only.
    fn change(&self, gear: &str, marker: &str) {
        let main_py = self.path(&format!("gears/{gear}/app/main.py"));
        let file = if main_py.exists() {
            main_py
        } else {
            self.path(&format!("gears/{gear}/run.sh"))
        };
        write(&file, &format!("{}\n# {marker} {}\n", read(&file), self.id));
    }

    /// Writes `$DOCKER_CONFIG/config.json`.
    fn docker_config(&self, json: &Value) {
        write(&self.docker_config.join("config.json"), &json.to_string());
    }

    // --- cargo gear -----------------------------------------------------------------

    /// `cargo-gear gear ARGS --substitute …` in the workspace.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command_with(args, &SUBSTITUTES);
        let path = std::env::join_paths(std::iter::once(self.bin.clone()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        cmd.env("DOCKER_CONFIG", &self.docker_config)
            .env("PATH", path);
        cmd
    }

    /// Runs `cargo gear ARGS` to its end (killed after [`COMMAND_TIMEOUT`]).
    fn run(&self, args: &[&str]) -> scratch::Out {
        let started = Instant::now();
        let out = scratch::run_to_end(self.command(args), COMMAND_TIMEOUT);
        eprintln!(
            "{}: cargo gear {} took {:.1} s (exit {:?})",
            self.id,
            args.join(" "),
            started.elapsed().as_secs_f64(),
            out.code
        );
        let mut printed = self.printed.borrow_mut();
        printed.push_str(&out.stdout);
        printed.push_str(&out.stderr);
        out
    }

    /// `cargo gear ARGS`, which must succeed.
    fn ok(&self, args: &[&str]) -> scratch::Out {
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(0),
            "cargo gear {args:?} failed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    /// `cargo gear build --message-format json ARGS`.
    fn build(&self, args: &[&str]) -> Build {
        let mut all = vec!["build", "--message-format", "json"];
        all.extend_from_slice(args);
        Build::parse(self.run(&all))
    }

    /// `cargo gear plan --format json ARGS`.
    fn plan(&self, args: &[&str]) -> Plan {
        let mut all = vec!["plan", "--format", "json"];
        all.extend_from_slice(args);
        Plan::parse(&self.ok(&all).stdout)
    }

    /// `cargo gear run -p csv-summary` on its example data: the summary must be the expected one.
    fn run_csv_summary(&self) -> scratch::Out {
        let out = self.ok(&[
            "run",
            "-p",
            "csv-summary",
            "--input",
            "table=gears/csv-summary/tests/data/example.csv",
        ]);
        let runs = self.path("target/gear/runs");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("csv-summary-")
            })
            .collect();
        dirs.sort();
        let summary = dirs
            .last()
            .expect("a run directory")
            .join("output/summary.json");
        let summary: Value = serde_json::from_str(&read(&summary)).unwrap();
        let expected: Value = serde_json::from_str(&read(
            &self.path("gears/csv-summary/tests/data/expected-summary.json"),
        ))
        .unwrap();
        assert_eq!(summary, expected, "csv-summary's output");
        out
    }

    // --- the engine -------------------------------------------------------------------

    /// Every image of the engine (intermediate ones too).
    fn all_images(&self) -> Vec<bollard::models::ImageSummary> {
        let options = ListImagesOptions {
            all: true,
            ..Default::default()
        };
        self.rt
            .block_on(self.engine.docker().list_images(Some(options)))
            .unwrap()
    }

    /// Every local tag naming one of this workspace's repositories (also under a registry
    /// name), with its image ID.
    fn local_tags(&self) -> BTreeMap<String, String> {
        let prefix = self.image_prefix();
        self.all_images()
            .into_iter()
            .flat_map(|i| i.repo_tags.into_iter().map(move |t| (t, i.id.clone())))
            .filter(|(t, _)| t.contains(&prefix))
            .collect()
    }

    /// The image IDs of the current content tags of `layers`.
    fn ids(&self, plan: &Plan, layers: &[&str]) -> BTreeMap<String, String> {
        layers
            .iter()
            .map(|l| {
                let tag = plan.content_tag(l);
                let id = self
                    .image(tag)
                    .unwrap_or_else(|| panic!("no image {tag}"))
                    .id;
                (l.to_string(), id)
            })
            .collect()
    }

    /// Another machine, as far as this workspace goes: removes every local image of its
    /// repositories (and the images built on them), and its build records.
    fn forget_everything_local(&self) {
        self.remove_images();
        let state = self.path("target/gear/state");
        if state.exists() {
            std::fs::remove_dir_all(state).unwrap();
        }
        assert!(self.local_tags().is_empty(), "{:#?}", self.local_tags());
    }

    /// Removes the images that are this workspace's (a tag in its repositories, or its
    /// label) and every image built on one of them, children first, by ID. Without pruning
    /// their parents: the shared, unlabelled build cache below them stays.
    fn remove_images(&self) {
        let prefix = self.image_prefix();
        let label = (support::TEST_LABEL.to_owned(), self.id.clone());
        let images = self.all_images();
        let mut ours: HashSet<String> = images
            .iter()
            .filter(|i| {
                i.repo_tags.iter().any(|t| t.contains(&prefix))
                    || i.labels.get(&label.0) == Some(&label.1)
            })
            .map(|i| i.id.clone())
            .collect();
        loop {
            let before = ours.len();
            for i in &images {
                if ours.contains(&i.parent_id) {
                    ours.insert(i.id.clone());
                }
            }
            if ours.len() == before {
                break;
            }
        }
        let left: Vec<_> = images
            .into_iter()
            .filter(|i| ours.contains(&i.id))
            .collect();
        self.rt
            .block_on(scratch::remove_children_first(self.engine.docker(), left));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove_images();
    }
}

// ---------------------------------------------------------------------------------------
// Builds and plans
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// The registry, over plain HTTP
// ---------------------------------------------------------------------------------------

/// The repositories of the registry's catalog that start with `prefix`, following its pages.
fn catalog(addr: &str, prefix: &str, auth: Option<(&str, &str)>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut path = "/v2/_catalog?n=100".to_owned();
    loop {
        let r = support::http("GET", addr, &path, auth, None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        for repo in v["repositories"].as_array().into_iter().flatten() {
            let repo = repo.as_str().unwrap();
            if repo.starts_with(prefix) {
                found.insert(repo.to_owned());
            }
        }
        // Link: </v2/_catalog?last=…&n=100>; rel="next"
        match r
            .header("Link")
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, l)| l.split_once('>'))
        {
            Some((next, _)) => path = next.to_owned(),
            None => return found,
        }
    }
}

/// The tags of a registry repository (empty when it does not exist).
pub(crate) fn tags(addr: &str, repo: &str, auth: Option<(&str, &str)>) -> BTreeSet<String> {
    let r = support::http("GET", addr, &format!("/v2/{repo}/tags/list"), auth, None);
    if r.status == 404 {
        return BTreeSet::new();
    }
    assert_eq!(r.status, 200, "tags of {repo}: {}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// The manifest digest the registry holds for `repo:tag`.
fn digest(addr: &str, repo: &str, tag: &str, auth: Option<(&str, &str)>) -> Option<String> {
    let r = support::http(
        "HEAD",
        addr,
        &format!("/v2/{repo}/manifests/{tag}"),
        auth,
        None,
    );
    match r.status {
        404 => None,
        200 => Some(
            r.header("Docker-Content-Digest")
                .expect("a digest header")
                .to_owned(),
        ),
        other => panic!("HEAD manifest {repo}:{tag}: {other}"),
    }
}

/// A registry that stops answering in the middle of a build: a proxy to a real registry
/// that forwards requests until one's path contains `dies_at`, then resets that connection
/// and every later one (a registry that crashed, or a network that went away).
struct DyingRegistry {
    addr: String,
    dead: Arc<AtomicBool>,
}

impl DyingRegistry {
    fn start(upstream: &str, dies_at: String) -> DyingRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let dead = Arc::new(AtomicBool::new(false));
        let (upstream, flag) = (upstream.to_owned(), dead.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let (upstream, dies_at, flag) = (upstream.clone(), dies_at.clone(), flag.clone());
                std::thread::spawn(move || proxy(client, &upstream, &dies_at, &flag));
            }
        });
        DyingRegistry { addr, dead }
    }
}

/// Forwards one client connection request by request (the engine keeps connections open).
fn proxy(client: TcpStream, upstream: &str, dies_at: &str, dead: &AtomicBool) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(mut from_server), Ok(mut to_client)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let mut to_server = server;
    let mut requests = BufReader::new(client);
    // The engine tries TLS first (and takes a plain HTTP answer as "use http"): what is not
    // an HTTP request goes through as it is.
    if requests
        .fill_buf()
        .is_ok_and(|b| b.first().is_some_and(|c| !c.is_ascii_uppercase()))
    {
        let _ = std::io::copy(&mut requests, &mut to_server);
        return;
    }
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match requests.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let path = head.split_whitespace().nth(1).unwrap_or("");
        if dead.load(Ordering::SeqCst) || path.contains(dies_at) {
            dead.store(true, Ordering::SeqCst);
            let _ = requests.get_ref().shutdown(Shutdown::Both);
            let _ = to_server.shutdown(Shutdown::Both);
            return;
        }
        let length: u64 = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        if to_server.write_all(head.as_bytes()).is_err()
            || std::io::copy(&mut (&mut requests).take(length), &mut to_server).is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

/// `names` → `outcome` for each.
fn all(names: &[&str], outcome: Outcome) -> BTreeMap<String, Outcome> {
    names.iter().map(|n| (n.to_string(), outcome)).collect()
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

/// `cargo gear push` after a build puts every built layer's content tag, and every gear's
/// version tag, in the registry under the prefix (`REGISTRY/PREFIX/<local image>`); a gear's
/// version tag is the same manifest as its content tag; a second push sends nothing; and
/// no registry name is left on the local images.
#[test]
fn push_puts_every_content_tag_and_version_tag_in_the_registry() {
    let Some(ws) = Scratch::new("reg-push") else {
        return;
    };
    ws.build(&[]).assert_success();
    let plan = ws.plan(&[]);
    let out = ws.ok(&["push", "--registry", &ws.registry()]);
    let reg = ws.reg.open.as_str();

    let expected: BTreeSet<String> = BUILT.iter().map(|l| ws.remote_repo(l)).collect();
    assert_eq!(
        catalog(reg, &format!("{}/", ws.id), None),
        expected,
        "the catalog"
    );
    for layer in BUILT {
        let mut want = names(&[plan.content_tag_name(layer)]);
        if GEARS.contains(&layer) {
            want.insert(plan.version(layer).to_owned());
        }
        assert_eq!(
            tags(reg, &ws.remote_repo(layer), None),
            want,
            "tags of {layer}"
        );
        assert!(
            out.stderr.contains(&format!(
                "Pushed {}/{}",
                ws.registry(),
                plan.content_tag(layer)
            )),
            "{}",
            out.stderr
        );
    }
    for gear in GEARS {
        let repo = ws.remote_repo(gear);
        let content = digest(reg, &repo, plan.content_tag_name(gear), None);
        assert!(content.is_some());
        assert_eq!(
            digest(reg, &repo, plan.version(gear), None),
            content,
            "{gear}"
        );
    }
    // The registry names served the push; the local images keep their own names only.
    assert!(
        ws.local_tags()
            .keys()
            .all(|t| t.starts_with("cargo-gear-test/")),
        "{:#?}",
        ws.local_tags()
    );

    let again = ws.ok(&["push", "--registry", &ws.registry()]);
    assert!(
        !again.stderr.contains("Pushing"),
        "nothing is pushed again:\n{}",
        again.stderr
    );
    assert_eq!(
        again.stderr.matches("already in the registry").count(),
        BUILT.len()
    );
    assert_eq!(
        again.stderr.matches("already there, same digest").count(),
        GEARS.len()
    );
}

/// A second machine: with none of the workspace's images and no build records, `plan
/// --check-registry` says every built layer is `in-registry`, and `build --cache-from`
/// builds nothing: every built layer is pulled (the very images pushed), records are
/// written, gears get their version tags, and the gears run.
#[test]
fn a_second_machine_pulls_every_layer_instead_of_building_and_the_gears_run() {
    let Some(ws) = Scratch::new("reg-pull") else {
        return;
    };
    ws.build(&[]).assert_success();
    let plan = ws.plan(&[]);
    let ids = ws.ids(&plan, &BUILT);
    ws.ok(&["push", "--registry", &ws.registry()]);

    ws.forget_everything_local();
    let checked = ws.plan(&["--check-registry", "--registry", &ws.registry()]);
    for layer in BUILT {
        assert_eq!(checked.status(layer).0, "in-registry", "{layer}");
    }
    for layer in EXTERNAL {
        assert_eq!(checked.status(layer).0, "fresh", "{layer}");
    }
    let human = ws.ok(&["plan", "--check-registry", "--registry", &ws.registry()]);
    assert_eq!(
        human.stdout.matches("in-registry").count(),
        BUILT.len(),
        "{}",
        human.stdout
    );

    let build = ws.build(&["--cache-from", &ws.registry()]);
    build.assert_success();
    assert_eq!(build.counts(), [0, 2, 6, 0, 0], "{}", build.out.stderr);
    assert_eq!(
        build.outcomes(),
        all(&BUILT, Outcome::Pulled)
            .into_iter()
            .chain(all(&EXTERNAL, Outcome::Fresh))
            .collect()
    );
    assert_eq!(
        ws.ids(&plan, &BUILT),
        ids,
        "the pulled images are the pushed ones"
    );
    for gear in GEARS {
        assert_eq!(
            ws.image(plan.version_tag(gear)).map(|i| i.id),
            Some(ids[gear].clone()),
            "{gear}'s version tag"
        );
    }
    ws.assert_records_match_images(&plan);
    for layer in BUILT {
        assert!(
            ws.path(&format!("target/gear/state/{layer}.json")).exists(),
            "{layer}"
        );
    }
    assert!(
        ws.local_tags()
            .keys()
            .all(|t| t.starts_with("cargo-gear-test/")),
        "no registry name is left behind: {:#?}",
        ws.local_tags()
    );
    assert!(ws.plan(&[]).statuses().values().all(|s| s == "fresh"));

    let run = ws.run_csv_summary();
    assert!(
        !run.stderr.contains("Building"),
        "nothing is built to run:\n{}",
        run.stderr
    );
    let again = ws.build(&["--cache-from", &ws.registry()]);
    again.assert_success();
    assert_eq!(again.counts(), [0, 8, 0, 0, 0]);

    // A forced rebuild of a pulled gear (no build cache for it here: a new image) moves its
    // version tag along with the content tag, and `prune` leaves the version tag alone.
    ws.build(&["-p", "hello", "--force"]).assert_success();
    let rebuilt = ws.image(plan.content_tag("hello")).unwrap().id;
    assert_ne!(rebuilt, ids["hello"], "a new image");
    let version = |ws: &Scratch| ws.image(plan.version_tag("hello")).map(|i| i.id);
    assert_eq!(
        version(&ws),
        Some(rebuilt.clone()),
        "the version tag follows the content tag"
    );
    ws.ok(&["prune"]);
    assert_eq!(version(&ws), Some(rebuilt), "prune keeps the version tag");
}

/// On the second machine, one gear changed: `build --cache-from` builds that gear only (on
/// its pulled parent) and pulls everything else.
#[test]
fn one_changed_gear_is_built_on_its_pulled_parent_and_the_rest_pulled() {
    let Some(ws) = Scratch::new("reg-change") else {
        return;
    };
    ws.build(&PYTHON_CHAIN).assert_success();
    ws.ok(&[&["push", "--registry", &ws.registry()][..], &PYTHON_CHAIN].concat());
    ws.forget_everything_local();
    ws.change("csv-summary", "changed on the second machine");

    let plan = ws.plan(&PYTHON_CHAIN);
    let checked = ws.plan(
        &[
            &["--check-registry", "--registry", &ws.registry()][..],
            &PYTHON_CHAIN,
        ]
        .concat(),
    );
    assert_eq!(checked.status("fw-python").0, "in-registry");
    assert_eq!(checked.status("hello").0, "in-registry");
    assert_eq!(
        checked.status("csv-summary").0,
        "stale",
        "the registry lacks the new content tag"
    );

    let build = ws.build(&[&["--cache-from", &ws.registry()][..], &PYTHON_CHAIN].concat());
    build.assert_success();
    assert_eq!(build.counts(), [1, 1, 2, 0, 0], "{}", build.out.stderr);
    assert_eq!(build.outcome("csv-summary"), Outcome::Built);
    assert_eq!(build.outcome("fw-python"), Outcome::Pulled);
    assert_eq!(build.outcome("hello"), Outcome::Pulled);
    assert_eq!(build.outcome("python"), Outcome::Fresh);
    assert!(
        !build.out.stderr.contains("warning"),
        "{}",
        build.out.stderr
    );

    // Built on the pulled fw-python, with the change in it.
    let parent = ws.image(plan.content_tag("fw-python")).unwrap().id;
    let history: Vec<String> = ws
        .rt
        .block_on(
            ws.engine
                .docker()
                .image_history(plan.content_tag("csv-summary")),
        )
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert!(
        history.contains(&parent),
        "csv-summary is built on the pulled fw-python"
    );
    ws.assert_records_match_images(&plan);
    ws.run_csv_summary();
}

/// Flywheel gear versions are immutable: building a changed gear under a version the
/// registry holds with other contents warns, and pushing it fails (the new content tag is pushed, the version
/// tag is not); `--force` overwrites it with the new digest; a bumped version needs no force.
#[test]
fn pushing_a_changed_gear_under_its_old_version_is_refused_unless_forced() {
    let Some(ws) = Scratch::new("reg-immutable") else {
        return;
    };
    let reg = ws.reg.open.as_str();
    let repo = ws.remote_repo("csv-summary");
    let push = |extra: &[&str]| {
        ws.run(
            &[
                &["push", "-p", "csv-summary", "--registry", &ws.registry()][..],
                extra,
            ]
            .concat(),
        )
    };
    assert_eq!(push(&[]).code, Some(0));
    let first = ws.plan(&["-p", "csv-summary"]);
    let old = digest(reg, &repo, "0.1.0", None).expect("0.1.0 pushed");

    ws.change("csv-summary", "changed without a new version");
    // Building it already says what push will refuse.
    let build = ws.run(&["build", "-p", "csv-summary", "--registry", &ws.registry()]);
    assert_eq!(build.code, Some(0), "{}", build.stderr);
    assert!(
        build.message().contains(&format!(
            "warning: {reg}/{repo}:0.1.0 already exists in the registry with other contents"
        )),
        "{}",
        build.stderr
    );
    let refused = push(&[]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let message = refused.message();
    assert!(
        message.contains("immutable") && message.contains("bump `version`"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{reg}/{repo}:0.1.0")),
        "names the tag: {message}"
    );
    let plan = ws.plan(&["-p", "csv-summary"]);
    let new = digest(reg, &repo, plan.content_tag_name("csv-summary"), None)
        .expect("the new content tag is pushed");
    assert_ne!(new, old);
    assert_eq!(
        digest(reg, &repo, "0.1.0", None),
        Some(old.clone()),
        "the version tag is untouched"
    );
    assert_eq!(
        digest(reg, &repo, first.content_tag_name("csv-summary"), None),
        Some(old.clone()),
        "the old content tag stays"
    );

    let forced = push(&["--force"]);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert!(forced.stderr.contains("(--force)"), "{}", forced.stderr);
    assert_eq!(
        digest(reg, &repo, "0.1.0", None),
        Some(new.clone()),
        "0.1.0 is the new contents"
    );

    // The way it should be done: a new version.
    let toml = ws.path("gears/csv-summary/Gear.toml");
    write(
        &toml,
        &read(&toml).replace("version = \"0.1.0\"", "version = \"0.1.1\""),
    );
    ws.change("csv-summary", "changed again, with a new version");
    assert_eq!(push(&[]).code, Some(0));
    let bumped = ws.plan(&["-p", "csv-summary"]);
    let newest = digest(reg, &repo, bumped.content_tag_name("csv-summary"), None);
    assert_eq!(digest(reg, &repo, "0.1.1", None), newest);
    assert_eq!(
        digest(reg, &repo, "0.1.0", None),
        Some(new),
        "0.1.0 untouched"
    );
}

/// The registry with basic auth: without credentials, push fails naming the registry and
/// `docker login`, and a `--cache-from` build falls back to building with that warning;
/// with the docker CLI's credentials (an `auths` entry, or a credential helper) push and
/// pull work; wrong ones are refused. The password shows in no output of any command,
/// nor in the build logs and records.
#[test]
fn the_auth_registry_takes_the_docker_cli_credentials_and_never_shows_the_password() {
    let Some(ws) = Scratch::new("reg-auth") else {
        return;
    };
    let (host, user, password) = (
        ws.reg.auth.clone(),
        ws.reg.user.clone(),
        ws.reg.password.clone(),
    );
    let registry = format!("{host}/{}", ws.id);
    let creds = Some((user.as_str(), password.as_str()));
    let auth_entry = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let refused_as_expected = |out: &scratch::Out, what: &str| {
        assert_eq!(out.code, Some(1), "{what}: {}", out.stderr);
        let message = out.message();
        assert!(
            message.contains(&format!("registry {host} refused access"))
                && message.contains(&format!("docker login {host}")),
            "{what}: {message}"
        );
    };
    ws.build(&["-p", "hello"]).assert_success();

    // No credentials.
    refused_as_expected(
        &ws.run(&["push", "-p", "hello", "--registry", &registry]),
        "no credentials",
    );
    assert!(
        catalog(&host, &format!("{}/", ws.id), creds).is_empty(),
        "nothing was pushed"
    );

    // Wrong credentials.
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{user}:not-{password}"));
    ws.docker_config(&serde_json::json!({"auths": {host.as_str(): {"auth": wrong}}}));
    refused_as_expected(
        &ws.run(&["push", "-p", "hello", "--registry", &registry]),
        "a wrong password",
    );

    // `docker login`'s entry.
    ws.docker_config(&serde_json::json!({"auths": {host.as_str(): {"auth": auth_entry}}}));
    ws.ok(&["push", "-p", "hello", "--registry", &registry]);
    let repo = ws.remote_repo("hello");
    assert_eq!(
        catalog(&host, &format!("{}/", ws.id), creds),
        names(&[&ws.remote_repo("fw-python"), &repo])
    );
    assert_eq!(
        support::http("GET", &host, &format!("/v2/{repo}/tags/list"), None, None).status,
        401,
        "the registry wants auth"
    );
    let plan = ws.plan(&["-p", "hello"]);
    assert_eq!(
        tags(&host, &repo, creds),
        names(&[plan.content_tag_name("hello"), "1.0.0"])
    );

    // A credential helper (`credsStore`), as Docker Desktop or `pass` set up.
    let helper = ws.bin.join("docker-credential-cargo-gear-test");
    write(
        &helper,
        &format!(
            "#!/bin/sh\nread host\n[ \"$host\" = \"{host}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\n\
             printf '%s' '{}'\n",
            serde_json::json!({"ServerURL": host, "Username": user, "Secret": password})
        ),
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    ws.docker_config(&serde_json::json!({"credsStore": "cargo-gear-test"}));
    ws.forget_everything_local();
    let checked = ws.plan(&["-p", "hello", "--check-registry", "--registry", &registry]);
    assert_eq!(checked.status("hello").0, "in-registry");
    let build = ws.build(&["-p", "hello", "--cache-from", &registry]);
    build.assert_success();
    assert_eq!(build.counts(), [0, 1, 2, 0, 0], "{}", build.out.stderr);

    // Without credentials again: the cache cannot be read, so the build builds, and says why.
    std::fs::remove_file(ws.docker_config.join("config.json")).unwrap();
    ws.forget_everything_local();
    let build = ws.build(&["-p", "hello", "--cache-from", &registry]);
    build.assert_success();
    assert_eq!(build.counts(), [2, 1, 0, 0, 0], "{}", build.out.stderr);
    let message = build.out.message();
    assert!(
        message.contains(&format!("warning: registry cache {registry}"))
            && message.contains(&format!("docker login {host}")),
        "{message}"
    );

    let printed = ws.printed.borrow();
    assert!(!printed.is_empty());
    for secret in [password.as_str(), auth_entry.as_str()] {
        assert!(
            !printed.contains(secret),
            "a command printed the password:\n{printed}"
        );
    }
    for dir in ["target/gear/logs", "target/gear/state"] {
        for entry in std::fs::read_dir(ws.path(dir)).unwrap() {
            let path = entry.unwrap().path();
            assert!(
                !read(&path).contains(password.as_str()),
                "{} holds the password",
                path.display()
            );
        }
    }
}

/// A `--cache-from` registry that does not answer (nothing listens at 127.0.0.1:9): the
/// build still succeeds by building every stale layer, with a warning naming the registry;
/// nothing is marked pulled, and every record names a built image.
#[test]
fn an_unreachable_registry_cache_falls_back_to_building() {
    let Some(ws) = Scratch::new("reg-unreachable") else {
        return;
    };
    let nowhere = format!("127.0.0.1:9/{}", ws.id);
    let build = ws.build(&[&["--cache-from", &nowhere][..], &PYTHON_CHAIN].concat());
    build.assert_success();
    assert_eq!(build.counts(), [3, 1, 0, 0, 0], "{}", build.out.stderr);
    assert_eq!(
        build.outcomes(),
        all(&PYTHON_BUILT, Outcome::Built)
            .into_iter()
            .chain(all(&["python"], Outcome::Fresh))
            .collect()
    );
    for layer in PYTHON_BUILT {
        assert!(
            build.out.stderr.contains(&format!(
                "warning: registry cache {nowhere}: registry 127.0.0.1:9"
            )) && build
                .out
                .stderr
                .contains(&format!("building {layer} instead")),
            "{}",
            build.out.stderr
        );
    }
    let plan = ws.plan(&PYTHON_CHAIN);
    ws.assert_records_match_images(&plan);
    assert!(plan.statuses().values().all(|s| s == "fresh"));

    // `plan --check-registry` warns and goes on.
    ws.change("hello", "stale again");
    let out = ws.ok(&[
        "plan",
        "-p",
        "hello",
        "--check-registry",
        "--registry",
        &nowhere,
    ]);
    assert!(
        out.stderr.contains("warning: cannot check the registry"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains(" stale "), "{}", out.stdout);
}

/// A registry that dies in the middle of a build (after fw-python was pulled, while
/// csv-summary is pulled): fw-python is `pulled`, csv-summary and hello are built instead,
/// each with a warning; nothing half-pulled is tagged or recorded.
#[test]
fn a_registry_that_dies_mid_build_leaves_the_rest_to_be_built() {
    let Some(ws) = Scratch::new("reg-dies") else {
        return;
    };
    ws.build(&PYTHON_CHAIN).assert_success();
    ws.ok(&[&["push", "--registry", &ws.registry()][..], &PYTHON_CHAIN].concat());
    ws.forget_everything_local();

    // It dies at the first request for a blob of csv-summary (after its manifest was found).
    let dying = DyingRegistry::start(
        &ws.reg.open,
        format!("/{}/blobs/", ws.remote_repo("csv-summary")),
    );
    let cache = format!("{}/{}", dying.addr, ws.id);
    // One at a time, in plan order: fw-python, csv-summary, hello.
    let build = ws.build(&[&["--cache-from", &cache, "-j", "1"][..], &PYTHON_CHAIN].concat());
    build.assert_success();
    assert!(
        dying.dead.load(Ordering::SeqCst),
        "the registry died during the build"
    );
    assert_eq!(build.outcome("fw-python"), Outcome::Pulled);
    assert_eq!(build.outcome("csv-summary"), Outcome::Built);
    assert_eq!(build.outcome("hello"), Outcome::Built);
    assert_eq!(build.counts(), [2, 1, 1, 0, 0]);
    // csv-summary was found in the registry, which died while it was being pulled.
    let csv_summary = format!("could not pull `{cache}/{}:", ws.repo("csv-summary"));
    assert!(
        build.out.stderr.contains(&csv_summary),
        "{}",
        build.out.stderr
    );
    for layer in ["csv-summary", "hello"] {
        assert!(
            build
                .out
                .stderr
                .contains(&format!("building {layer} instead")),
            "{}",
            build.out.stderr
        );
    }
    let plan = ws.plan(&PYTHON_CHAIN);
    ws.assert_records_match_images(&plan);
    assert!(plan.statuses().values().all(|s| s == "fresh"));
    assert!(
        ws.local_tags()
            .keys()
            .all(|t| t.starts_with("cargo-gear-test/")),
        "{:#?}",
        ws.local_tags()
    );
    ws.run_csv_summary();
}

/// A registry that dies in the middle of `cargo gear push` (SIGKILLed at the first blob
/// upload of csv-summary, after fw-python went through): the push fails with a message
/// naming the image and the cause, and once the registry is back, a push completes it: every
/// content and version tag of the chain is there, each version tag on its content tag's
/// manifest. csv-summary is changed first, so that no other push on the engine shares the
/// layer whose upload breaks (the engine makes pushes of one layer wait for each other).
#[test]
fn a_registry_that_dies_mid_push_fails_with_its_cause_and_the_next_push_completes() {
    let Some(ws) = Scratch::new("reg-push-dies") else {
        return;
    };
    ws.change("csv-summary", "pushed while its registry dies");
    ws.build(&PYTHON_CHAIN).assert_success();
    let plan = ws.plan(&PYTHON_CHAIN);
    let mut registry = Throwaway::start(&ws.scratch_dir().join("registry"));
    let prefix = format!("{}/{}", registry.addr, ws.id);
    let push = [&["push", "--registry", &prefix][..], &PYTHON_CHAIN].concat();

    let child = ws.command(&push);
    let uploads = format!("/{}/blobs/uploads/", ws.remote_repo("csv-summary"));
    let failed = std::thread::scope(|s| {
        let pushing = s.spawn(|| scratch::run_to_end(child, PUSH_TIMEOUT));
        let deadline = Instant::now() + PUSH_TIMEOUT;
        while !registry.log().contains(&uploads) {
            assert!(
                Instant::now() < deadline && !pushing.is_finished(),
                "the push never reached csv-summary's blobs:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        registry.kill();
        pushing.join().unwrap()
    });
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let message = failed.message();
    eprintln!("the push's report of the dead registry: {message}");
    // Without whitespace: miette may wrap the long image name anywhere.
    let squashed: String = message.split_whitespace().collect();
    let image = format!("{prefix}/{}", plan.content_tag("csv-summary"));
    assert!(squashed.contains(&image), "names the image: {message}");
    // The cause: what the engine said about the dead registry, after the summary.
    let cause = squashed.split_once(&image).map_or("", |(_, rest)| rest);
    assert!(
        ["connectionrefused", "connectionreset", "eof", "brokenpipe"]
            .iter()
            .any(|c| cause.to_lowercase().contains(c)),
        "gives the cause: {message}"
    );
    assert!(
        ws.local_tags().keys().all(|t| !t.contains(&registry.addr)),
        "no registry name stays on a local image: {:#?}",
        ws.local_tags()
    );

    registry.restart();
    ws.ok(&push);
    for layer in PYTHON_BUILT {
        let mut want = names(&[plan.content_tag_name(layer)]);
        if GEARS.contains(&layer) {
            want.insert(plan.version(layer).to_owned());
        }
        let repo = ws.remote_repo(layer);
        assert_eq!(tags(&registry.addr, &repo, None), want, "tags of {layer}");
        if GEARS.contains(&layer) {
            assert_eq!(
                digest(&registry.addr, &repo, plan.version(layer), None),
                digest(&registry.addr, &repo, plan.content_tag_name(layer), None),
                "{layer}"
            );
        }
    }
}

/// A registry of one test, started as `cargo xtask test` starts its registries (Debian's
/// `docker-registry serve` with a config of ours, storage in `dir`), on a free port of
/// 127.0.0.1; killed when dropped.
struct Throwaway {
    dir: PathBuf,
    addr: String,
    child: Option<std::process::Child>,
}

impl Throwaway {
    fn start(dir: &Path) -> Throwaway {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::create_dir_all(dir.join("data")).unwrap();
        write(
            &dir.join("config.yml"),
            &format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: {}\n",
                dir.join("data").display(),
                support::unique("secret"),
            ),
        );
        let mut registry = Throwaway {
            dir: dir.to_owned(),
            addr,
            child: None,
        };
        registry.restart();
        registry
    }

    /// Starts the registry (again, on the same port and storage); waits until `/v2/` answers.
    fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "docker-registry (Debian's docker-registry, which `cargo xtask test` installs)",
            );
        self.child = Some(child);
        let deadline = Instant::now() + HTTP_TIMEOUT;
        while TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            support::http("GET", &self.addr, "/v2/", None, None).status,
            200
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// SIGKILL: a registry that dies.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `prune` after two rebuilds of a changed gear (the first build pushed with `--cache-to`,
/// so its images also had registry names): `--dry-run` lists the two stale images and
/// removes nothing; `prune` removes exactly those (the images are gone, not just untagged),
/// keeps every current content and version tag, and the gear still runs. A second
/// workspace with the same layer names in other repositories keeps all its images, stale
/// ones included.
#[test]
fn prune_removes_only_this_workspaces_stale_images() {
    let (Some(ws), Some(other)) = (Scratch::new("reg-prune"), Scratch::new("reg-prune-other"))
    else {
        return;
    };
    let first = ws.build(&[&["--cache-to", &ws.registry()][..], &PYTHON_CHAIN].concat());
    first.assert_success();
    let plan0 = ws.plan(&PYTHON_CHAIN);
    for layer in PYTHON_BUILT {
        assert_eq!(
            tags(&ws.reg.open, &ws.remote_repo(layer), None),
            names(&[plan0.content_tag_name(layer)]),
            "--cache-to pushed {layer}'s content tag"
        );
    }
    let stale0 = ws.image(plan0.content_tag("csv-summary")).unwrap().id;
    ws.change("csv-summary", "first change");
    ws.build(&PYTHON_CHAIN).assert_success();
    let stale1 = ws
        .image(ws.plan(&PYTHON_CHAIN).content_tag("csv-summary"))
        .unwrap()
        .id;
    ws.change("csv-summary", "second change");
    ws.build(&PYTHON_CHAIN).assert_success();
    let plan = ws.plan(&PYTHON_CHAIN);
    let current = ws.ids(&plan, &PYTHON_BUILT);

    other.build(&PYTHON_CHAIN).assert_success();
    other.change("csv-summary", "a change in the other workspace");
    other.build(&PYTHON_CHAIN).assert_success();
    let other_before = other.local_tags();
    assert_eq!(
        other_before
            .keys()
            .filter(|t| t.contains("csv-summary:gear-"))
            .count(),
        2,
        "the other workspace has a stale csv-summary too: {other_before:#?}"
    );

    let before = ws.local_tags();
    let dry = ws.ok(&["prune", "--dry-run"]);
    assert_eq!(ws.local_tags(), before, "--dry-run removes nothing");
    let would: Vec<&str> = dry
        .stderr
        .lines()
        .filter(|l| l.contains("Would remove"))
        .collect();
    assert_eq!(would.len(), 2, "{}", dry.stderr);
    for tag in before
        .iter()
        .filter(|(_, id)| **id == stale0 || **id == stale1)
        .map(|(t, _)| t)
    {
        assert!(
            dry.stderr.contains(tag.as_str()),
            "{tag} is listed:\n{}",
            dry.stderr
        );
    }
    assert!(dry.stderr.contains("Would free 2 images"), "{}", dry.stderr);

    let pruned = ws.ok(&["prune"]);
    assert!(
        pruned.stderr.contains("Freed 2 images"),
        "{}",
        pruned.stderr
    );
    for id in [&stale0, &stale1] {
        assert!(ws.image(id).is_none(), "the stale image {id} is gone");
    }
    let after = ws.local_tags();
    let mut expected: BTreeMap<String, String> = PYTHON_BUILT
        .iter()
        .map(|l| (plan.content_tag(l).to_owned(), current[*l].clone()))
        .collect();
    for gear in ["csv-summary", "hello"] {
        expected.insert(plan.version_tag(gear).to_owned(), current[gear].clone());
    }
    assert_eq!(
        after, expected,
        "exactly the current content and version tags remain"
    );
    assert_eq!(
        other.local_tags(),
        other_before,
        "the other workspace's images are untouched"
    );

    let run = ws.run_csv_summary();
    assert!(!run.stderr.contains("Building"), "{}", run.stderr);
    let again = ws.ok(&["prune"]);
    assert!(again.stderr.contains("Freed 0 images"), "{}", again.stderr);

    // Edited but not rebuilt: the image the gear's version tag names stays.
    ws.change("csv-summary", "not built yet");
    ws.ok(&["prune"]);
    assert_eq!(
        ws.image(plan.version_tag("csv-summary")).map(|i| i.id),
        Some(current["csv-summary"].clone()),
        "prune keeps what the version tag names"
    );
}
