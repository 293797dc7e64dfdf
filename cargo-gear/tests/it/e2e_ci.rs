//! `cargo gear ci` proven on a real CI engine (issue 11): the GitLab pipeline generated for a
//! scratch copy of examples/monorepo runs in `gitlab-ci-local` (shell executor, each job in its
//! own copy of the repository) against the real engine and a throwaway registry; the generated
//! GitHub workflow passes actionlint.
//!
//! Each job starts on a fresh engine, as far as the workspace goes: a `before_script` (GitLab's
//! `default:`, added to the generated file) removes every local image carrying the test's label,
//! so a job can only pull its parents from the registry or build them, and
//! `--no-build-ancestors` forbids building them. The jobs run one at a time
//! (`--concurrency 1`): they share one engine here, and a job's clean-up must not remove the
//! parent another job is building on. What each job did is read from its status lines
//! (`Built NAME`, `Pulled REF`, `Fresh NAME`, `Finished …`), which the unmodified generated
//! command prints.
//!
//! The tools come from `cargo xtask test` (xtask/src/citools.rs) through
//! `CARGO_GEAR_TEST_GITLAB_CI_LOCAL` and `CARGO_GEAR_TEST_ACTIONLINT`; where the engine tests
//! must run (`CARGO_GEAR_TEST_ENGINE=1`, `CI=true`) a missing tool fails the test.
//!
//! Run with `cargo xtask test -- --test e2e_ci`.

use crate::scratch;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cargo_gear::engine::Engine;
use cargo_gear::progress::Outcome;
use cargo_gear::schedule::FINGERPRINT_LABEL;
use scratch::{BUILT, EXTERNAL, Plan, SUBSTITUTES, names, read, write};
use serde_json::Value;

/// One `cargo gear` command, cold builds included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// One whole pipeline run by gitlab-ci-local: six cold builds one after the other.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(40 * 60);
/// `git`, actionlint and other quick tools.
const TOOL_TIMEOUT: Duration = Duration::from_secs(2 * 60);

const ENV_GITLAB_CI_LOCAL: &str = "CARGO_GEAR_TEST_GITLAB_CI_LOCAL";
const ENV_ACTIONLINT: &str = "CARGO_GEAR_TEST_ACTIONLINT";

// ---------------------------------------------------------------------------------------
// The CI tools
// ---------------------------------------------------------------------------------------

/// The tool named by the variable `var`, or `None` (after a note) when the engine tests are
/// skipped. Panics when they must run and the variable is unset or names no file.
fn tool(var: &str) -> Option<PathBuf> {
    if let Some(reason) = support::skip_reason() {
        eprintln!("note: skipping a CI pipeline test: {reason}");
        return None;
    }
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.is_file() => Some(path),
        other => panic!(
            "the CI pipeline tests must run here (CARGO_GEAR_TEST_ENGINE=1 or CI=true) but {var} is \
             {other:?}: `cargo xtask test` installs the tool (xtask/src/citools.rs) and sets it"
        ),
    }
}

/// Runs `cmd` to its end with its output captured, killed after `timeout`.
fn run(cmd: Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    assert_cmd::Command::from_std(cmd)
        .timeout(timeout)
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------
// A scratch monorepo in a git repository, with its registry prefix
// ---------------------------------------------------------------------------------------

/// A scratch copy of examples/monorepo, committed to a fresh git repository, whose images are
/// this test's own; removes them when dropped.
struct Repo {
    /// Unique: in image repositories, the `cargo-gear.test` label and the registry prefix.
    id: String,
    root: PathBuf,
    /// `DOCKER_CONFIG` of every command: empty (the open registry needs no credentials).
    docker_config: PathBuf,
    /// gitlab-ci-local's `--home` (no user variables file).
    ci_home: PathBuf,
    /// `HOST:PORT` of the open throwaway registry.
    registry_host: String,
    _dir: tempfile::TempDir,
    engine: Engine,
    rt: tokio::runtime::Runtime,
}

impl Repo {
    fn new(test: &str) -> Option<Repo> {
        let (rt, engine) = scratch::connect()?;
        let reg = support::registry()?;
        rt.block_on(support::require_fixture(&engine, support::DEBIAN_PYTHON));
        rt.block_on(support::require_fixture(&engine, scratch::FREESURFER));
        let id = support::unique(test);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("monorepo");
        scratch::copy_monorepo(&root);
        scratch::isolate(&root, &id);
        write(&root.join(".gitignore"), "/target/\n/.gitlab-ci-local/\n");
        let docker_config = dir.path().join("docker-config");
        let ci_home = dir.path().join("ci-home");
        std::fs::create_dir_all(&docker_config).unwrap();
        std::fs::create_dir_all(&ci_home).unwrap();
        let repo = Repo {
            id,
            root,
            docker_config,
            ci_home,
            registry_host: reg.open,
            _dir: dir,
            engine,
            rt,
        };
        repo.git(&["init", "--quiet", "--initial-branch", "main"]);
        repo.commit("the example monorepo");
        Some(repo)
    }

    /// `HOST:PORT/<id>`: this test's part of the registry, the `--registry` of every pipeline.
    fn registry(&self) -> String {
        format!("{}/{}", self.registry_host, self.id)
    }

    fn git(&self, args: &[&str]) {
        let mut cmd = Command::new("git");
        cmd.current_dir(&self.root)
            .args([
                "-c",
                "user.name=cargo-gear test",
                "-c",
                "user.email=test@invalid",
            ])
            .args(args);
        let out = run(cmd, TOOL_TIMEOUT);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    }

    /// Commits everything (the generated manifests too).
    fn commit(&self, message: &str) {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "--message", message]);
    }

    /// The one-file change of a gear: a comment appended to hello's run.sh.
    fn change_hello(&self) {
        let file = self.root.join("gears/hello/run.sh");
        write(
            &file,
            &format!("{}\n# changed by {}\n", read(&file), self.id),
        );
    }

    /// `cargo-gear gear ARGS --substitute …` in the workspace, to its end; must succeed.
    /// Returns (stdout, stderr).
    fn gear(&self, args: &[&str]) -> (String, String) {
        let mut cmd = scratch::gear_command(&self.root, args, &SUBSTITUTES);
        cmd.env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        let out = run(cmd, COMMAND_TIMEOUT);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "cargo gear {args:?} failed:\n{stdout}\n{stderr}"
        );
        (stdout, stderr)
    }

    /// `cargo gear ci --format gitlab --registry R`: the pipeline and what it said on stderr.
    fn gitlab_pipeline(&self) -> (String, String) {
        self.gear(&["ci", "--format", "gitlab", "--registry", &self.registry()])
    }

    fn plan(&self, args: &[&str]) -> Plan {
        let all = [&["plan", "--format", "json"][..], args].concat();
        Plan::parse(&self.gear(&all).0)
    }

    /// The jobs gitlab-ci-local finds in the pipeline `file` (it validates the file against
    /// GitLab's schema first): job name → the jobs it needs.
    fn list_jobs(&self, gitlab_ci_local: &Path, file: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut cmd = self.gitlab_ci_local(gitlab_ci_local, file);
        cmd.arg("--list-json");
        let out = run(cmd, TOOL_TIMEOUT);
        assert!(
            out.status.success(),
            "gitlab-ci-local --list-json:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let jobs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        jobs.iter()
            .map(|j| {
                let needs = j["needs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| n["job"].as_str().unwrap().to_owned())
                    .collect();
                (j["name"].as_str().unwrap().to_owned(), needs)
            })
            .collect()
    }

    /// Writes `pipeline` (generated by `cargo gear ci`) as `file` with the fresh-engine
    /// `before_script` in front, commits it, and runs it with gitlab-ci-local, which must
    /// succeed. Returns what each job printed.
    fn run_pipeline(&self, gitlab_ci_local: &Path, file: &str, pipeline: &str) -> Jobs {
        write(
            &self.root.join(file),
            &format!("{}{pipeline}", self.fresh_engine_default()),
        );
        self.commit(&format!("the pipeline {file}"));
        let mut cmd = self.gitlab_ci_local(gitlab_ci_local, file);
        cmd.args(["--concurrency", "1", "--shell-isolation"]);
        let out = run(cmd, PIPELINE_TIMEOUT);
        // The jobs' stdout lines come on its stdout, their stderr lines on its stderr.
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        eprintln!(
            "{}: gitlab-ci-local --file {file}:\n{stdout}\n{stderr}",
            self.id
        );
        assert!(
            out.status.success(),
            "the pipeline {file} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        Jobs::parse(&format!("{stdout}\n{stderr}"))
    }

    /// `gitlab-ci-local --file FILE` in the repository, with `cargo-gear` (this test's build)
    /// and cargo on PATH and this test's engine and docker config.
    fn gitlab_ci_local(&self, program: &Path, file: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_cargo-gear"))
            .parent()
            .unwrap();
        let cargo = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .and_then(|c| c.parent().map(Path::to_owned));
        let path = std::env::join_paths([bin.to_owned()].into_iter().chain(cargo).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root)
            .args(["--file", file, "--home"])
            .arg(&self.ci_home)
            .args(["--no-color", "--max-job-name-padding", "0"])
            .env("PATH", path)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        cmd
    }

    /// GitLab's `default: before_script:` that gives every job a fresh engine as far as this
    /// workspace goes: every image with the test's label is removed, children first (a round
    /// removes the leaves), and the job fails if one is left.
    fn fresh_engine_default(&self) -> String {
        let filter = format!("label={}", scratch::label_filter(&self.id));
        let script = format!(
            "for _ in $(seq 20); do ids=$(docker images -aq --filter {filter} | sort -u); \
             [ -z \"$ids\" ] && break; docker rmi --force --no-prune $ids >/dev/null 2>&1 || true; done; \
             test -z \"$(docker images -aq --filter {filter})\""
        );
        format!(
            "default:\n  before_script:\n  - {}\n",
            serde_json::to_string(&script).unwrap()
        )
    }

    /// Another machine, as far as this workspace goes: no local image of it.
    fn forget_local_images(&self) {
        self.rt.block_on(scratch::remove_labelled_images(
            self.engine.docker(),
            &self.id,
        ));
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        self.forget_local_images();
    }
}

// ---------------------------------------------------------------------------------------
// What the jobs did
// ---------------------------------------------------------------------------------------

/// Each job's output lines (gitlab-ci-local prints them as `JOB > LINE`, on its stdout or
/// stderr as the job did), and the jobs that passed.
struct Jobs {
    lines: BTreeMap<String, Vec<String>>,
    passed: BTreeSet<String>,
}

impl Jobs {
    fn parse(stdout: &str) -> Jobs {
        let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut passed = BTreeSet::new();
        for line in stdout.lines() {
            if let Some((job, said)) = line.split_once(" > ")
                && !job.contains(' ')
            {
                lines
                    .entry(job.to_owned())
                    .or_default()
                    .push(said.trim().to_owned());
            } else if let Some(job) = line.trim().strip_prefix("PASS ") {
                passed.insert(job.trim().to_owned());
            }
        }
        Jobs { lines, passed }
    }

    /// The messages of the status lines `VERB MESSAGE` a job printed.
    fn status(&self, job: &str, verb: &str) -> Vec<&str> {
        self.lines
            .get(job)
            .unwrap_or_else(|| panic!("the job {job} printed nothing"))
            .iter()
            .filter_map(|l| l.strip_prefix(verb)?.strip_prefix(' '))
            .collect()
    }

    /// The first word of each `VERB` status line of a job: the layer for `Built` and
    /// `Fresh`, the image reference for `Pulled`.
    fn firsts(&self, job: &str, verb: &str) -> BTreeSet<String> {
        self.status(job, verb)
            .iter()
            .map(|m| m.split_whitespace().next().unwrap().to_owned())
            .collect()
    }

    /// A job's `Finished` summary without its time: `1 built, 1 fresh, 1 pulled`.
    fn summary(&self, job: &str) -> String {
        let finished = self.status(job, "Finished");
        assert_eq!(finished.len(), 1, "{job}: {finished:?}");
        finished[0].rsplit_once(" in ").unwrap().0.to_owned()
    }

    /// Asserts that the jobs are exactly one per layer of `layers` and that each built its
    /// layer and nothing else, pulled every built ancestor from the registry and found its
    /// external root in the engine. Returns how often each layer was built across the jobs.
    fn assert_each_built_its_layer_on_pulled_parents(
        &self,
        plan: &Plan,
        layers: &[&str],
    ) -> BTreeMap<String, usize> {
        let jobs: BTreeSet<String> = layers.iter().map(|l| format!("build:{l}")).collect();
        assert_eq!(self.passed, jobs, "every job passed, and only these ran");
        assert_eq!(
            self.lines.keys().cloned().collect::<BTreeSet<_>>(),
            jobs,
            "the jobs that printed"
        );
        let mut built: BTreeMap<String, usize> = BTreeMap::new();
        for layer in layers {
            let job = format!("build:{layer}");
            for message in self.status(&job, "Built") {
                let name = message.split_whitespace().next().unwrap();
                *built.entry(name.to_owned()).or_default() += 1;
            }
            assert_eq!(self.firsts(&job, "Built"), names(&[layer]), "{job} built");
            let ancestors = ancestors(plan, layer);
            let (external, parents): (Vec<&str>, Vec<&str>) = ancestors
                .iter()
                .partition(|a| plan.layer(a)["kind"] == "external");
            let pulled: Vec<&str> = parents.iter().map(|p| content_tag(plan, p)).collect();
            assert_eq!(
                self.firsts(&job, "Pulled"),
                names(&pulled),
                "{job} pulled its built ancestors from the registry"
            );
            assert_eq!(
                self.firsts(&job, "Fresh"),
                names(&external),
                "{job} found its base image in the engine"
            );
            let expected = match parents.len() {
                0 => "1 built, 1 fresh".to_owned(),
                n => format!("1 built, 1 fresh, {n} pulled"),
            };
            assert_eq!(self.summary(&job), expected, "{job}");
        }
        built
    }
}

/// The ancestors of `layer` in `plan`, parent first.
fn ancestors<'p>(plan: &'p Plan, layer: &str) -> Vec<&'p str> {
    let mut out = Vec::new();
    let mut at = plan.layer(layer)["parent"].as_str();
    while let Some(parent) = at {
        out.push(parent);
        at = plan.layer(parent)["parent"].as_str();
    }
    out
}

fn content_tag<'p>(plan: &'p Plan, layer: &str) -> &'p str {
    plan.layer(layer)["content_tag"].as_str().unwrap()
}

fn fingerprint<'p>(plan: &'p Plan, layer: &str) -> &'p str {
    plan.layer(layer)["fingerprint"].as_str().unwrap()
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

/// The whole story of issue 11 on gitlab-ci-local: the pipeline of a workspace the registry
/// has never seen builds each of the six layers exactly once, each job on a fresh engine
/// pulling its parents; the registry then holds every layer with its planned fingerprint
/// (a fresh engine pulls all six and builds none); with nothing changed the next pipeline
/// is the single nothing-to-build job; after one file of one gear changes, the next has
/// exactly that gear's job, which builds it on its pulled parent.
#[test]
fn the_gitlab_pipeline_builds_every_layer_once_on_fresh_engines() {
    let Some(gitlab_ci_local) = tool(ENV_GITLAB_CI_LOCAL) else {
        return;
    };
    let Some(repo) = Repo::new("ci-gitlab") else {
        return;
    };
    // The bases pinned in a committed Gear.lock: every job builds on them, `--locked`.
    repo.gear(&["update"]);
    repo.commit("Gear.lock");
    let plan = repo.plan(&[]);

    // 1. Everything to build.
    let (pipeline, said) = repo.gitlab_pipeline();
    assert_eq!(
        pipeline.matches(" --locked build -p ").count(),
        BUILT.len(),
        "{pipeline}"
    );
    assert!(
        said.contains(&format!(
            "{} layer(s) to build, missing from {}",
            BUILT.len(),
            repo.registry()
        )),
        "{said}"
    );
    write(&repo.root.join("all.yml"), &pipeline);
    let listed = repo.list_jobs(&gitlab_ci_local, "all.yml");
    let expected: BTreeMap<String, BTreeSet<String>> = BUILT
        .iter()
        .map(|l| {
            let parent = plan.layer(l)["parent"].as_str().unwrap();
            let needs = if plan.layer(parent)["kind"] == "external" {
                BTreeSet::new()
            } else {
                names(&[&format!("build:{parent}")])
            };
            (format!("build:{l}"), needs)
        })
        .collect();
    assert_eq!(listed, expected, "one job per layer, needing its parent's");
    let jobs = repo.run_pipeline(&gitlab_ci_local, "all.yml", &pipeline);
    let built = jobs.assert_each_built_its_layer_on_pulled_parents(&plan, &BUILT);
    assert_eq!(
        built,
        BUILT.iter().map(|l| (l.to_string(), 1)).collect(),
        "every layer built exactly once across all jobs"
    );

    // The registry has every layer, with its planned fingerprint.
    repo.forget_local_images();
    let checked = repo.plan(&["--check-registry", "--registry", &repo.registry()]);
    for layer in BUILT {
        assert_eq!(checked.layer(layer)["status"], "in-registry", "{layer}");
    }
    let (stdout, stderr) = repo.gear(&[
        "build",
        "--message-format",
        "json",
        "--cache-from",
        &repo.registry(),
    ]);
    let build = scratch::Build::parse(scratch::Out {
        code: Some(0),
        stdout,
        stderr,
    });
    assert_eq!(
        build.counts(),
        [0, EXTERNAL.len(), BUILT.len(), 0, 0],
        "a fresh engine pulls every built layer and builds none"
    );
    for layer in BUILT {
        let finished = build.finished(layer);
        assert_eq!(finished.outcome, Outcome::Pulled, "{layer}");
        assert_eq!(finished.fingerprint, fingerprint(&plan, layer));
        let image = repo
            .rt
            .block_on(repo.engine.image(content_tag(&plan, layer)))
            .unwrap()
            .unwrap_or_else(|| panic!("{layer} was pulled"));
        assert_eq!(
            image.labels.get(FINGERPRINT_LABEL).map(String::as_str),
            Some(fingerprint(&plan, layer)),
            "the image of {layer} has its planned fingerprint"
        );
    }

    // 2. Nothing changed: the nothing-to-build pipeline, which runs.
    let (pipeline, said) = repo.gitlab_pipeline();
    assert!(said.contains("nothing to build"), "{said}");
    write(&repo.root.join("nothing.yml"), &pipeline);
    assert_eq!(
        repo.list_jobs(&gitlab_ci_local, "nothing.yml"),
        BTreeMap::from([("nothing-to-build".to_owned(), BTreeSet::new())])
    );
    let jobs = repo.run_pipeline(&gitlab_ci_local, "nothing.yml", &pipeline);
    assert_eq!(jobs.passed, names(&["nothing-to-build"]));
    assert!(
        jobs.lines["nothing-to-build"]
            .iter()
            .any(|l| l.contains("every layer is already in the registry")),
        "{:?}",
        jobs.lines
    );

    // 3. One file of one gear changed: exactly that gear's job, on its pulled parent.
    repo.change_hello();
    repo.commit("hello changed");
    let changed = repo.plan(&[]);
    assert_ne!(fingerprint(&changed, "hello"), fingerprint(&plan, "hello"));
    let (pipeline, said) = repo.gitlab_pipeline();
    assert!(said.contains("1 layer(s) to build"), "{said}");
    write(&repo.root.join("one.yml"), &pipeline);
    assert_eq!(
        repo.list_jobs(&gitlab_ci_local, "one.yml"),
        BTreeMap::from([("build:hello".to_owned(), BTreeSet::new())]),
        "exactly one job, needing none (its parent is in the registry)"
    );
    let jobs = repo.run_pipeline(&gitlab_ci_local, "one.yml", &pipeline);
    let built = jobs.assert_each_built_its_layer_on_pulled_parents(&changed, &["hello"]);
    assert_eq!(built, BTreeMap::from([("hello".to_owned(), 1)]));
    let (pipeline, said) = repo.gitlab_pipeline();
    assert!(
        said.contains("nothing to build") && pipeline.contains("nothing-to-build:"),
        "the changed gear is in the registry now: {said}\n{pipeline}"
    );
}

/// `cargo gear ci --format github-workflow` passes actionlint, which does find a mistake put
/// into the same workflow (a wave needing a job that does not exist), so the check is no no-op.
#[test]
fn the_github_workflow_passes_actionlint() {
    let Some(actionlint) = tool(ENV_ACTIONLINT) else {
        return;
    };
    let Some(repo) = Repo::new("ci-github") else {
        return;
    };
    let (workflow, said) = repo.gear(&[
        "ci",
        "--format",
        "github-workflow",
        "--registry",
        &repo.registry(),
    ]);
    // No Gear.lock committed: the jobs resolve the tags themselves, and the user is told.
    assert!(
        said.contains("Gear.lock pins no digest for ")
            && said.contains("python:3.12-slim (as cargo-gear-fixture/debian-python:bookworm, linux/amd64) (layer `python`)")
            && !workflow.contains("--locked"),
        "{said}\n{workflow}"
    );
    let lint = |name: &str, text: &str| {
        let file = repo.root.join(name);
        write(&file, text);
        let mut cmd = Command::new(&actionlint);
        cmd.arg(&file);
        let out = run(cmd, TOOL_TIMEOUT);
        (out.status.code(), text_of(&out))
    };
    let (code, findings) = lint("gears.yml", &workflow);
    assert_eq!(
        code,
        Some(0),
        "actionlint on the generated workflow:\n{findings}\n{workflow}"
    );

    let broken = workflow.replacen("    needs: plan\n", "    needs: nowhere\n", 1);
    assert_ne!(broken, workflow);
    let (code, findings) = lint("broken.yml", &broken);
    assert_eq!(code, Some(1), "{findings}");
    assert!(
        findings.contains("needs job \"nowhere\" which does not exist"),
        "{findings}"
    );
}

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}
