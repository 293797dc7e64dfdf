//! `cargo xtask bench`: cargo-gear against the status quo on synthetic monorepos, reported as ratios of timings taken in one run.
//!
//! For each size (10, 50 and 200 gears by default) it writes a tree (see [`tree`]: a Cargo
//! workspace by default, `--layout root` for a `--root` tree), builds it once with `cargo gear
//! build`, then times, each pair interleaved run by run:
//!
//! - a no-op `cargo gear build` against a `docker build` loop over the same Dockerfiles and
//!   contexts with a warm docker cache (see [`docker_loop`]);
//! - after one file of one gear changed, `cargo gear build` against `docker build` of that gear
//!   alone;
//! - a cold `cargo gear plan` (hash cache deleted) against a warm one, and `sha256sum` over the
//!   same files for the hashing throughput;
//!
//! and on a 1,000-gear tree a cold and a warm plan (with and without an engine), `git status` of
//! the same tree committed, `graph` and `validate`. Peak memory comes from each process's rusage.
//! Everything runs the release build of cargo-gear against the engine `cargo xtask test` would
//! use. Results go to target/bench/results.md and results.json; the table, ending with issue 14's
//! targets and whether this run met each, is printed. No timing is asserted.

mod docker_loop;
mod measure;
mod report;
mod tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use docker_loop::{DockerLoop, LOOP_PREFIX};
use measure::Out;
use report::{BigResult, Machine, Results, SizeResult};
use tree::{IMAGE_PREFIX, Layout, Tree};

use crate::engine::Lifetime;
use crate::network::Needs;
use crate::{Result, Workspace, cmd, host, prepare};

pub const USAGE: &str = "\
usage: cargo xtask bench [--sizes 10,50,200] [--runs 3] [--files 100] [--big 1000] [--big-files 100]
                         [--layout cargo|root] [--quick] [--keep] [--cargo-gear PATH]

  --sizes N,…     gears per generated monorepo (each also has one shared base layer)
  --runs N        runs of each timing; the report shows medians
  --files N       files per gear
  --big N         gears of the tree whose warm `cargo gear plan` is timed (0: skip)
  --big-files N   files per gear of that tree
  --layout L      cargo: Cargo workspaces listing their layers in [workspace.metadata.gear] (default);
                  root: trees without Cargo, found with --root
  --quick         a smoke run: --sizes 10 --runs 1 --big 100 --big-files 20
  --keep          keep the generated trees and the benchmark's images
  --cargo-gear P  measure this cargo-gear binary instead of building the workspace's release build

Results: target/bench/results.md and target/bench/results.json.";

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    sizes: Vec<usize>,
    runs: usize,
    files: usize,
    big: usize,
    big_files: usize,
    layout: Layout,
    quick: bool,
    keep: bool,
    cargo_gear: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sizes: vec![10, 50, 200],
            runs: 3,
            files: 100,
            big: 1000,
            big_files: 100,
            layout: Layout::Cargo,
            quick: false,
            keep: false,
            cargo_gear: None,
        }
    }
}

impl Options {
    fn parse(args: &[&str]) -> std::result::Result<Options, String> {
        let mut o = Options::default();
        let quick = args.contains(&"--quick");
        if quick {
            o = Options {
                sizes: vec![10],
                runs: 1,
                big: 100,
                big_files: 20,
                quick,
                ..o
            };
        }
        let mut args = args.iter().flat_map(|a| match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => vec![k, v],
            _ => vec![*a],
        });
        let number = |flag: &str, v: Option<&str>| -> std::result::Result<usize, String> {
            v.and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{flag} takes a number"))
        };
        while let Some(arg) = args.next() {
            match arg {
                "--quick" => {}
                "--keep" => o.keep = true,
                "--sizes" => {
                    let v = args.next().ok_or("--sizes takes a list like 10,50,200")?;
                    o.sizes = v
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n > 0))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            format!("--sizes {v}: expected positive numbers like 10,50,200")
                        })?;
                }
                "--runs" => o.runs = number(arg, args.next())?.max(1),
                "--files" => o.files = number(arg, args.next())?.max(1),
                "--big" => o.big = number(arg, args.next())?,
                "--big-files" => o.big_files = number(arg, args.next())?.max(1),
                "--layout" => {
                    o.layout = match args.next() {
                        Some("cargo") => Layout::Cargo,
                        Some("root") => Layout::Root,
                        _ => return Err("--layout takes cargo or root".into()),
                    }
                }
                "--cargo-gear" => {
                    let path = args
                        .next()
                        .ok_or("--cargo-gear takes the path of a binary")?;
                    o.cargo_gear = Some(
                        std::path::absolute(path)
                            .map_err(|e| format!("--cargo-gear {path}: {e}"))?,
                    );
                }
                _ => return Err(format!("unknown argument `{arg}`")),
            }
        }
        Ok(o)
    }
}

/// The programs and places every measurement uses.
struct Tools {
    cargo_gear: PathBuf,
    docker: PathBuf,
    host: String,
    /// target/bench/
    dir: PathBuf,
    /// target/bench/logs/: the last output of every measured command.
    logs: PathBuf,
}

impl Tools {
    /// `cargo-gear gear ARGS` in the tree `root` (with `--root ROOT` for a tree without Cargo),
    /// talking to the benchmark's engine.
    fn gear(&self, root: &Path, layout: Layout, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cargo_gear);
        cmd.arg("gear").args(args);
        if layout == Layout::Root {
            cmd.arg("--root").arg(root);
        }
        cmd.current_dir(root)
            .env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("CARGO_TERM_COLOR")
            .env("NO_COLOR", "1");
        cmd
    }

    fn docker(&self) -> Command {
        let mut cmd = Command::new(&self.docker);
        cmd.env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_CONTEXT");
        cmd
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }
}

fn say(msg: impl AsRef<str>) {
    eprintln!("xtask: bench: {}", msg.as_ref());
}

pub fn run(ws: &Workspace, args: &[&str]) -> Result {
    if args.iter().any(|a| matches!(*a, "-h" | "--help" | "help")) {
        println!("{USAGE}");
        return Ok(());
    }
    let opts = Options::parse(args).map_err(|e| format!("{e}\n{USAGE}"))?;
    let cargo_gear = match &opts.cargo_gear {
        Some(path) => path.clone(),
        None => {
            cmd::run(
                ws.cargo()
                    .args(["build", "--release", "--package", "cargo-gear"]),
            )?;
            ws.target.join("release/cargo-gear")
        }
    };
    // After compiling: the engine runs only while it is used.
    let engine =
        prepare(ws, Lifetime::Ephemeral, &Needs::none("cargo xtask bench"))?.ok_or_else(|| {
            format!(
                "the benchmark needs a Docker engine\n{}",
                host::HOW_TO_GET_AN_ENGINE
            )
        })?;
    let dir = ws.target.join("bench");
    let tools = Tools {
        cargo_gear,
        docker: ["/usr/local/bin/docker"]
            .map(PathBuf::from)
            .into_iter()
            .find(|p| p.is_file())
            .or_else(|| host::program("docker"))
            .ok_or("no docker CLI")?,
        host: engine.host.clone(),
        logs: dir.join("logs"),
        dir,
    };
    fs::create_dir_all(&tools.logs)?;

    let mut results = Results {
        machine: machine(ws, &tools, opts.cargo_gear.is_some()),
        layout: opts.layout.name(),
        quick: opts.quick,
        runs: opts.runs,
        files_per_gear: opts.files,
        ..Results::default()
    };
    say(format!(
        "{} CPUs ({}), Docker Engine {}; sizes {:?}, {} runs each",
        results.machine.cpus,
        results.machine.cpu_model,
        results.machine.docker_server,
        opts.sizes,
        opts.runs
    ));
    // Written after each size too, so that a long run that fails or is stopped keeps what it measured.
    let write = |results: &mut Results| -> Result<String> {
        results.machine.load_after = load_average();
        let markdown = results.markdown();
        fs::write(tools.dir.join("results.md"), &markdown)?;
        fs::write(tools.dir.join("results.json"), results.json())?;
        Ok(markdown)
    };
    for &gears in &opts.sizes {
        results.sizes.push(bench_size(&tools, &opts, gears)?);
        write(&mut results)?;
    }
    if opts.big > 0 {
        results.big = Some(bench_big(&tools, &opts)?);
    }
    let markdown = write(&mut results)?;
    if !opts.keep {
        let _ = fs::remove_dir_all(tools.dir.join("trees"));
    }
    println!("{markdown}");
    say(format!(
        "wrote {} and results.json",
        tools.dir.join("results.md").display()
    ));
    Ok(())
}

/// Generates a tree of `gears` gears, builds it, and measures it.
fn bench_size(t: &Tools, opts: &Options, gears: usize) -> Result<SizeResult> {
    let tag = format!("n{gears}");
    let root = t.dir.join("trees").join(&tag);
    let tree = tree::generate(&root, opts.layout, &tag, gears, opts.files)?;
    say(format!(
        "{tag}: wrote {} gears, {} context files ({:.1} MB) in {:.1} s",
        gears,
        tree.files,
        tree.bytes as f64 / 1e6,
        tree.seconds
    ));
    remove_images(t, &tag);
    settle(&tag, &tree);
    let mut r = SizeResult {
        gears,
        files: tree.files,
        bytes: tree.bytes,
        generate_seconds: tree.seconds,
        ..SizeResult::default()
    };

    let build_log = t.log(&format!("{tag}-build.jsonl"));
    let build = || t.gear(&root, opts.layout, &["build", "--message-format", "json"]);
    r.first_build = measure::run(&mut build(), Out::File(&build_log))?;
    check_build(&build_log, gears as u64 + 1)?;
    say(format!(
        "{tag}: first cargo gear build: {:.1} s",
        r.first_build.wall
    ));
    check_plan(t, &tree)?;

    cmd::stdout(&mut t.gear(&root, opts.layout, &["dockerfile", "--write"]))?;
    let docker_loop = DockerLoop::prepare(&tree, &root.join("target/bench-contexts"))?;
    let loop_log = t.log(&format!("{tag}-docker-build.out"));
    r.first_loop = docker_loop.run(&t.docker, &t.host, &loop_log)?;
    say(format!(
        "{tag}: first docker build loop ({} builds): {:.1} s",
        docker_loop.len(),
        r.first_loop.wall
    ));

    for run in 1..=opts.runs {
        r.noop_build
            .push(measure::run(&mut build(), Out::File(&build_log))?);
        check_build(&build_log, 0)?;
        r.docker_loop
            .push(docker_loop.run(&t.docker, &t.host, &loop_log)?);
        say(format!(
            "{tag}: run {run}/{}: no-op cargo gear build {:.3} s, warm docker build loop {:.2} s",
            opts.runs,
            r.noop_build.samples[run - 1].wall,
            r.docker_loop.samples[run - 1].wall
        ));
    }

    // One file of one gear changed, a new content each run: cargo-gear rebuilds that gear (and
    // sends its context only); docker builds it alone from a change of the same size. Not the
    // same bytes: the Dockerfiles are the same up to the last step, so `docker build` would
    // find the steps cargo-gear just built in the engine's cache; nor the bytes of an earlier
    // `cargo xtask bench`, whose steps the engine may still hold.
    let changed = tree
        .layers
        .iter()
        .find(|l| l.gear)
        .ok_or("a tree without gears")?;
    let rel = changed.files.last().ok_or("a gear without files")?;
    let original = fs::read_to_string(changed.dir.join(rel))?;
    let bench_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for run in 1..=opts.runs {
        let changed_by =
            |who: &str| format!("{original}changed in run {run} of bench {bench_id} for {who}\n");
        fs::write(changed.dir.join(rel), changed_by("cargo-gear"))?;
        docker_loop.write_file(&changed.name, rel, changed_by("docker    ").as_bytes())?;
        r.one_file_build
            .push(measure::run(&mut build(), Out::File(&build_log))?);
        check_build(&build_log, 1)?;
        r.one_file_docker.push(docker_loop.run_one(
            &changed.name,
            &t.docker,
            &t.host,
            &loop_log,
        )?);
        say(format!(
            "{tag}: run {run}/{}: one file changed: cargo gear build {:.2} s, docker build of {} alone {:.2} s",
            opts.runs,
            r.one_file_build.samples[run - 1].wall,
            changed.name,
            r.one_file_docker.samples[run - 1].wall
        ));
    }

    let list = t.log(&format!("{tag}-files.list"));
    write_file_list(&tree, &list)?;
    let hash_cache = root.join("target/gear/hash-cache");
    let plan_log = t.log(&format!("{tag}-plan.out"));
    for run in 1..=opts.runs {
        fs::remove_file(&hash_cache)?;
        r.plan_cold.push(measure::run(
            &mut t.gear(&root, opts.layout, &["plan"]),
            Out::File(&plan_log),
        )?);
        if !hash_cache.is_file() {
            return Err(format!("`cargo gear plan` wrote no {}", hash_cache.display()).into());
        }
        r.plan_warm.push(measure::run(
            &mut t.gear(&root, opts.layout, &["plan"]),
            Out::File(&plan_log),
        )?);
        let mut sha = Command::new("xargs");
        sha.arg("-0").arg("-a").arg(&list).arg("sha256sum");
        r.sha256sum.push(measure::run(&mut sha, Out::Null)?);
        say(format!(
            "{tag}: run {run}/{}: cold plan {:.3} s, warm plan {:.3} s, sha256sum {:.3} s",
            opts.runs,
            r.plan_cold.samples[run - 1].wall,
            r.plan_warm.samples[run - 1].wall,
            r.sha256sum.samples[run - 1].wall
        ));
    }
    if !opts.keep {
        remove_images(t, &tag);
    }
    Ok(r)
}

/// Times the plans of a tree of `opts.big` gears (never built), `git status` of the same tree
/// committed, `graph` and `validate`.
fn bench_big(t: &Tools, opts: &Options) -> Result<BigResult> {
    let tag = format!("big{}", opts.big);
    let root = t.dir.join("trees").join(&tag);
    say(format!(
        "{tag}: writing {} gears × {} files",
        opts.big, opts.big_files
    ));
    let tree = tree::generate(&root, opts.layout, &tag, opts.big, opts.big_files)?;
    say(format!(
        "{tag}: wrote {} context files ({:.0} MB) in {:.1} s",
        tree.files,
        tree.bytes as f64 / 1e6,
        tree.seconds
    ));
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        // No automatic `git gc` (a commit of 100,000 files starts one in the background, which
        // keeps both cores busy for most of a minute).
        cmd.args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
            .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(args)
            .current_dir(&root);
        cmd
    };
    cmd::stdout(&mut git(&["init", "--quiet"]))?;
    cmd::stdout(&mut git(&["add", "--all"]))?;
    cmd::stdout(&mut git(&[
        "commit",
        "--quiet",
        "--message",
        "the benchmark tree",
    ]))?;
    say(format!("{tag}: committed to git"));
    settle(&tag, &tree);
    let log = t.log(&format!("{tag}-plan.out"));
    let gear = |args: &[&str]| t.gear(&root, opts.layout, args);
    let mut r = BigResult {
        layers: opts.big,
        files_per_layer: opts.big_files,
        files: tree.files,
        bytes: tree.bytes,
        generate_seconds: tree.seconds,
        ..BigResult::default()
    };
    // Neither is timed: the first plan finds the members and fills the hash cache, the first
    // status after the commit refreshes git's index.
    cmd::stdout(&mut gear(&["plan"]))?;
    cmd::stdout(&mut git(&["status", "--porcelain"]))?;
    let hash_cache = root.join("target/gear/hash-cache");
    // No engine: a socket path where nothing listens.
    let nowhere = format!("unix://{}", t.dir.join("no-engine.sock").display());
    for run in 1..=opts.runs {
        fs::remove_file(&hash_cache)?;
        r.plan_cold
            .push(measure::run(&mut gear(&["plan"]), Out::File(&log))?);
        r.plan_warm
            .push(measure::run(&mut gear(&["plan"]), Out::File(&log))?);
        r.git_status.push(measure::run(
            &mut git(&["status", "--porcelain"]),
            Out::File(&t.log(&format!("{tag}-git-status.out"))),
        )?);
        r.plan_warm_no_engine.push(measure::run(
            gear(&["plan"]).env("DOCKER_HOST", &nowhere),
            Out::File(&log),
        )?);
        r.graph.push(measure::run(
            &mut gear(&["graph"]),
            Out::File(&t.log(&format!("{tag}-graph.out"))),
        )?);
        r.validate.push(measure::run(
            &mut gear(&["validate"]),
            Out::File(&t.log(&format!("{tag}-validate.out"))),
        )?);
        say(format!(
            "{tag}: run {run}/{}: cold plan {:.3} s, warm plan {:.3} s, git status {:.3} s, without engine {:.3} s, graph {:.3} s, validate {:.3} s",
            opts.runs,
            r.plan_cold.samples[run - 1].wall,
            r.plan_warm.samples[run - 1].wall,
            r.git_status.samples[run - 1].wall,
            r.plan_warm_no_engine.samples[run - 1].wall,
            r.graph.samples[run - 1].wall,
            r.validate.samples[run - 1].wall
        ));
    }
    Ok(r)
}

/// Waits until the tree can be timed ([`Tree::settle`]) and says how long that took.
fn settle(tag: &str, tree: &Tree) {
    say(format!(
        "{tag}: waited {:.0} s for a quiet machine",
        tree.settle()
    ));
}

/// Checks the `build-finished` event of a `--message-format json` build: nothing failed, and
/// `built` layers were built.
fn check_build(log: &Path, built: u64) -> Result {
    let text = fs::read_to_string(log)?;
    let line = text
        .lines()
        .find(|l| l.contains("\"build-finished\""))
        .ok_or_else(|| format!("no build-finished event in {}", log.display()))?;
    let (b, failed) = (json_u64(line, "built"), json_u64(line, "failed"));
    if b != Some(built) || failed != Some(0) {
        return Err(format!(
            "expected {built} layers built and none failed, got: {line} (see {})",
            log.display()
        )
        .into());
    }
    Ok(())
}

/// After the first build: every layer is fresh and its context has exactly the generated files.
fn check_plan(t: &Tools, tree: &Tree) -> Result {
    let json = cmd::stdout(&mut t.gear(&tree.root, tree.layout, &["plan", "--format", "json"]))?;
    let values = |key: &str| -> Vec<String> {
        let prefix = format!("\"{key}\": ");
        json.lines()
            .filter_map(|l| l.trim().strip_prefix(&prefix))
            .map(|v| v.trim_end_matches(',').trim_matches('"').to_owned())
            .collect()
    };
    let (names, files, statuses) = (values("name"), values("files"), values("status"));
    if names.len() != tree.layers.len() + 1
        || files.len() != names.len()
        || statuses.len() != names.len()
    {
        return Err(format!("unexpected `cargo gear plan --format json` output:\n{json}").into());
    }
    for ((name, files), status) in names.iter().zip(&files).zip(&statuses) {
        if status != "fresh" {
            return Err(format!("{name} is {status} right after a build").into());
        }
        if let Some(layer) = tree.layers.iter().find(|l| &l.name == name)
            && files.parse::<usize>().ok() != Some(layer.files.len())
        {
            return Err(format!(
                "{name}: cargo-gear's context has {files} files, the benchmark generated {}",
                layer.files.len()
            )
            .into());
        }
    }
    Ok(())
}

/// The number after `"key":` in one line of compact JSON.
fn json_u64(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The tree's context files, NUL-separated, for `xargs -0 -a`.
fn write_file_list(tree: &Tree, path: &Path) -> Result {
    let mut list = Vec::new();
    for f in tree.context_files() {
        list.extend_from_slice(f.as_os_str().as_encoded_bytes());
        list.push(0);
    }
    fs::write(path, list)?;
    Ok(())
}

/// Removes the images both cargo-gear and the docker loop built for the tree `tag`. Best effort.
fn remove_images(t: &Tools, tag: &str) {
    for prefix in [IMAGE_PREFIX, LOOP_PREFIX] {
        let listed = cmd::stdout(
            t.docker()
                .args(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter"])
                .arg(format!("reference={prefix}/{tag}-*")),
        );
        let mut refs: Vec<String> = match listed {
            Ok(out) => out.lines().map(str::to_owned).collect(),
            Err(e) => {
                say(format!("cannot list the images to remove: {e}"));
                continue;
            }
        };
        // Children before the base they are built on.
        refs.sort_by_key(|r| r.contains(&format!("/{tag}-base:")));
        for chunk in refs.chunks(100) {
            if let Err(e) = cmd::stdout(t.docker().arg("rmi").args(chunk)) {
                say(format!("cannot remove some images: {e}"));
            }
        }
    }
}

fn machine(ws: &Workspace, t: &Tools, own_binary: bool) -> Machine {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mem_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
        .trim_end_matches(" kB")
        .parse()
        .unwrap_or(0.0);
    let docker = |args: &[&str]| cmd::stdout(t.docker().args(args)).unwrap_or_else(|_| "?".into());
    let git = |args: &[&str]| {
        cmd::stdout(Command::new("git").args(args).current_dir(&ws.root)).unwrap_or_default()
    };
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: field(&cpuinfo, "model name"),
        mem_gib: mem_kib / 1024.0 / 1024.0,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        docker_server: docker(&["version", "--format", "{{.Server.Version}}"]),
        storage_driver: docker(&["info", "--format", "{{.Driver}}"]),
        docker_cli: docker(&["version", "--format", "{{.Client.Version}}"]),
        cargo_gear: if own_binary {
            format!("binary {}", t.cargo_gear.display())
        } else {
            format!(
                "{}{} (release build)",
                git(&["rev-parse", "--short", "HEAD"]),
                if dirty {
                    " with uncommitted changes"
                } else {
                    ""
                }
            )
        },
        load_before: load_average(),
        load_after: String::new(),
    }
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews the timings.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        let o = Options::parse(&["--sizes", "5,7", "--runs=2", "--keep"]).unwrap();
        assert_eq!((o.sizes, o.runs, o.keep), (vec![5, 7], 2, true));
        assert_eq!(o.layout, Layout::Cargo);
        let r = Options::parse(&["--layout", "root"]).unwrap();
        assert_eq!(r.layout, Layout::Root);
        assert!(Options::parse(&["--layout", "flat"]).is_err());
        let q = Options::parse(&["--quick", "--sizes", "3"]).unwrap();
        assert_eq!((q.sizes, q.runs, q.big, q.quick), (vec![3], 1, 100, true));
        assert!(Options::parse(&["--sizes", "0"]).is_err());
        assert!(Options::parse(&["--runs"]).is_err());
        assert!(Options::parse(&["--frobnicate"]).is_err());
    }

    #[test]
    fn finds_numbers_in_json_lines() {
        let line = r#"{"event":"build-finished","built":12,"fresh":3,"failed":0,"seconds":1.5}"#;
        assert_eq!(json_u64(line, "built"), Some(12));
        assert_eq!(json_u64(line, "failed"), Some(0));
        assert_eq!(json_u64(line, "pulled"), None);
        assert_eq!(json_u64(r#"{"built": 4}"#, "built"), Some(4));
    }
}
