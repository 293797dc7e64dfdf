//! Project automation (`cargo xtask …`): the test harness with its Docker engine and fixtures, the demo.

mod bench;
mod citools;
mod cmd;
mod codegen;
mod demo;
mod dockerfile_oracle;
mod engine;
mod fixtures;
mod fuzz;
mod host;
mod network;
mod podman;
mod pyvenv;
mod registry;
mod sys;
#[cfg(test)]
mod testing;
mod tidy;
mod tls;
mod toolkit;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use engine::{Engine, Lifetime};
use network::Needs;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
usage: cargo xtask <command>

  test [-- ARGS…]   run the whole test suite against a Docker engine with the fixture images
                    (the doctests when no ARGS are given, then cargo nextest run --workspace ARGS…;
                    cargo test --workspace ARGS… without nextest)
  demo              build (a copy of) the example monorepo with cargo-gear, then run a gear on a real input
  fuzz [--seconds N] [--update-corpus] [-- LIBFUZZER-FLAGS…]
                    fuzz the Gear.toml front end with libFuzzer (cargo-fuzz, installed if missing)
                    for N seconds (600), print the figures, fail on a crash; with CI=true `test`
                    ends with 60 s of it
  codegen           regenerate schemas/gear.schema.json and docs/gear-toml.md (a test fails when stale)
  dockerfile-oracle regenerate the golden files of gear-spec's Dockerfile parser: BuildKit's own
                    parse (PyPI `dockerfile`, in target/engine/dockerfile-oracle) of each fixture
  bench [--quick]   time cargo-gear against a `docker build` loop on generated monorepos
                    (`cargo xtask bench --help`; results in target/bench/results.md)
  engine start      start this workspace's engine (or find one), make the fixtures, leave it running
  engine stop       stop this workspace's engine
  engine env        print `export DOCKER_HOST=…` for the engine xtask would use
  engine fixtures   make the fixture images on the running engine (never starts one)

The engine is $DOCKER_HOST, else the current docker context's, else /var/run/docker.sock, else
another dockerd running on the machine whose containers reach what the builds need (checked first),
else a private dockerd under target/engine/ on a bridge of its own that xtask starts as root
(installing Debian's docker.io first if needed). Before the first build, a container checks that it
reaches what the builds download (`demo`: the Debian mirror and PyPI). With CI=true a missing engine
fails `test`; otherwise the engine tests skip themselves.";

/// The cargo workspace xtask belongs to.
pub struct Workspace {
    pub root: PathBuf,
    pub target: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask/ is in the workspace")
            .to_owned();
        let target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Workspace { root, target }
    }

    /// A `cargo` command (the one running xtask, when there is one) in the workspace root.
    fn cargo(&self) -> Command {
        let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&self.root);
        cmd
    }
}

/// 64-bit FNV-1a: a stable hash for cache keys and short names.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() -> ExitCode {
    sys::trap_signals();
    let args: Vec<String> = env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ws = Workspace::new();
    let result = match args.as_slice() {
        ["test", rest @ ..] => test(&ws, rest.strip_prefix(&["--"]).unwrap_or(rest)),
        ["demo"] => demo::run(&ws).map(|()| ExitCode::SUCCESS),
        ["codegen"] => codegen::run(&ws).map(|()| ExitCode::SUCCESS),
        ["dockerfile-oracle"] => dockerfile_oracle::run(&ws).map(|()| ExitCode::SUCCESS),
        ["fuzz", rest @ ..] => fuzz::cli(&ws, rest).map(|()| ExitCode::SUCCESS),
        ["bench", rest @ ..] => bench::run(&ws, rest).map(|()| ExitCode::SUCCESS),
        ["engine", "start"] => engine_start(&ws).map(|()| ExitCode::SUCCESS),
        ["engine", "stop"] => engine::stop_own(&ws).map(|()| ExitCode::SUCCESS),
        ["engine", "env"] => engine_env(&ws),
        ["engine", "fixtures"] => engine_fixtures(&ws),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("xtask: error: {e}");
        ExitCode::FAILURE
    })
}

/// An engine with current fixtures whose containers reach what `needs` lists, or `None` when
/// there is none and xtask may not start one.
fn prepare(ws: &Workspace, lifetime: Lifetime, needs: &Needs) -> Result<Option<Engine>> {
    let _setup = engine::setup_lock(ws)?;
    Engine::acquire(ws, lifetime, needs)
}

/// How long `cargo xtask test` fuzzes with CI=true, after the suite passed.
const CI_FUZZ_SECONDS: u64 = 60;

fn test(ws: &Workspace, args: &[&str]) -> Result<ExitCode> {
    let ci = env::var("CI").is_ok_and(|v| v == "true");
    let nextest = cmd::succeeds(ws.cargo().args(["nextest", "--version"]));
    // Compile first: the engine runs only while it is used, and cannot be knocked over meanwhile.
    let mut compile = ws.cargo();
    if nextest {
        compile.args(["nextest", "run", "--workspace", "--no-run"]);
    } else {
        compile.args(["test", "--workspace", "--no-run"]);
    }
    cmd::run(compile.args(args))?;
    // The end-to-end tests build examples/monorepo.
    let engine = prepare(
        ws,
        Lifetime::Ephemeral,
        &Needs::monorepo("cargo xtask test"),
    )?;
    if engine.is_none() {
        if ci {
            return Err("CI=true and no Docker engine: the engine tests must run in CI".into());
        }
        eprintln!("xtask: running the tests WITHOUT an engine: the engine tests skip themselves");
    }
    // Flywheel's gear toolkit, for the tests that load cargo-gear's config.json with it.
    let fw_python = toolkit::ensure(ws)
        .map_err(|e| {
            eprintln!(
                "xtask: no Flywheel gear toolkit ({e}): the tests that need it skip themselves"
            );
        })
        .ok();
    // gitlab-ci-local and actionlint, for the pipeline tests (e2e_ci); they fail without them.
    let ci_tools = citools::ensure(ws)
        .map_err(|e| eprintln!("xtask: no CI tools ({e}): the pipeline tests will fail"))
        .ok();
    // The registry tests' two registries; like the engine tests, they must run with an engine.
    let registries = engine.as_ref().and_then(|_| {
        registry::Registries::start(ws)
            .map_err(|e| eprintln!("xtask: no test registries ({e}): the registry tests will fail"))
            .ok()
    });
    // Podman, the second engine of the tests, with the busybox fixture; the Podman tests fail
    // without it.
    let podman = engine.as_ref().and_then(|docker| {
        let addrs: Vec<&str> = registries.iter().flat_map(|r| r.addrs()).collect();
        podman::Podman::start(ws, docker, &addrs)
            .map_err(|e| eprintln!("xtask: no Podman engine ({e}): the Podman tests will fail"))
            .ok()
    });
    let with_engine = |cmd: &mut Command| {
        match &engine {
            Some(engine) => engine
                .export(cmd)
                .env("CARGO_GEAR_TEST_ENGINE", "1")
                .env("CARGO_GEAR_TEST_FIXTURES", "1"),
            None => cmd
                .env_remove("CARGO_GEAR_TEST_ENGINE")
                .env_remove("CARGO_GEAR_TEST_FIXTURES"),
        };
        if let Some(python) = &fw_python {
            cmd.env(toolkit::ENV, python);
        }
        if let Some(registries) = &registries {
            registries.export(cmd);
        }
        if let Some(tools) = &ci_tools {
            tools.export(cmd);
        }
        if let Some(listener) = engine.as_ref().and_then(|e| e.tls_listener.as_ref()) {
            listener.export(cmd);
        }
        if let Some(podman) = &podman {
            podman.export(cmd);
        }
    };
    // nextest does not run doctests: they run first, so that the main suite's summary ends the output.
    let mut doc_code = 0;
    if nextest && args.is_empty() {
        let mut doctests = ws.cargo();
        doctests.args(["test", "--workspace", "--doc"]);
        with_engine(&mut doctests);
        eprintln!("xtask: $ {}", cmd::display(&doctests));
        doc_code = cmd::code(cmd::status(&mut doctests)?);
    }
    let mut tests = ws.cargo();
    if nextest {
        tests.args(["nextest", "run", "--workspace"]);
    } else {
        tests.args(["test", "--workspace"]);
    }
    tests.args(args);
    with_engine(&mut tests);
    eprintln!("xtask: $ {}", cmd::display(&tests));
    let mut code = cmd::code(cmd::status(&mut tests)?);
    if code == 0 && doc_code != 0 {
        eprintln!("xtask: the tests passed but the doctests failed (exit code {doc_code})");
        code = doc_code;
    }
    if ci && code == 0 {
        fuzz::run(ws, CI_FUZZ_SECONDS, &[])?;
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn engine_start(ws: &Workspace) -> Result {
    let needs = Needs::none("cargo xtask engine start");
    let mut engine = prepare(ws, Lifetime::Persistent, &needs)?.ok_or("no Docker engine")?;
    engine.persist();
    println!("export DOCKER_HOST={}", engine.host);
    Ok(())
}

fn engine_fixtures(ws: &Workspace) -> Result<ExitCode> {
    let _setup = engine::setup_lock(ws)?;
    match Engine::running(ws)? {
        Some(engine) => {
            fixtures::ensure(&engine, ws)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("xtask: no Docker engine answers; start one with `cargo xtask engine start`");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn engine_env(ws: &Workspace) -> Result<ExitCode> {
    match Engine::running(ws)? {
        Some(engine) => {
            println!("export DOCKER_HOST={}", engine.host);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("xtask: no Docker engine answers; start one with `cargo xtask engine start`");
            Ok(ExitCode::FAILURE)
        }
    }
}
