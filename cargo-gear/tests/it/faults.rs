//! Faults as tests (issue "Faults as tests"): the engine killed mid-build, a full disk under
//! the target directory, an unusable `build.lock`. Each must end in a clear message and
//! leave a next build that is correct. (A registry dying mid-push is in `e2e_registry`,
//! beside the registries it needs.)
//!
//! They build a tiny `--root` tree on the busybox fixture (no network needed). The engine
//! test starts and kills a PRIVATE dockerd (its own data root, exec root, socket and bridge,
//! no iptables), never the shared engine. Mounts (tmpfs) and the private dockerd need root:
//! without it these tests are skipped with a note, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptions;
use cargo_gear::engine::{Engine, EngineAddress};
use cargo_gear::progress::Outcome;

use crate::scratch::{self, Build, Running, read, write};
use crate::support;

/// Any build of the tiny tree, including a busybox step that sleeps.
const BUILD_TIMEOUT: Duration = Duration::from_secs(180);
/// Starting or stopping the private dockerd.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Root
// ---------------------------------------------------------------------------------------

/// Whether the tests that mount or start dockerd may run: `false` (after a note) when the
/// engine tests are skipped, or when not root outside CI.
fn privileged() -> bool {
    if let Some(reason) = support::skip_reason() {
        eprintln!("note: skipping a fault test: {reason}");
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the fault tests mount file systems and start a dockerd: they must run as root in CI"
    );
    eprintln!("note: skipping a fault test: it needs root (mounts, a private dockerd)");
    false
}

/// Runs a command that must succeed, within `ENGINE_TIMEOUT`.
fn sh(program: &str, args: &[&str]) {
    let out = scratch::run_to_end(
        {
            let mut cmd = Command::new(program);
            cmd.args(args);
            cmd
        },
        ENGINE_TIMEOUT,
    );
    assert_eq!(
        out.code,
        Some(0),
        "{program} {args:?}: {}{}",
        out.stdout,
        out.stderr
    );
}

/// A tmpfs of `size` mounted on a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        sh(
            "mount",
            &["-t", "tmpfs", "-o", options, "tmpfs", at.to_str().unwrap()],
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

// ---------------------------------------------------------------------------------------
// A tiny tree on busybox
// ---------------------------------------------------------------------------------------

/// A `--root` tree: `base` (the busybox fixture) and `mid` on it, whose step is `run`.
struct Tiny {
    id: String,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tiny {
    fn new(test: &str, run: &str) -> Tiny {
        let id = support::unique(test);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("tree");
        scratch::write_busybox_base(&root);
        std::fs::create_dir_all(root.join("mid/data")).unwrap();
        write(&root.join("mid/data/payload.txt"), &format!("{id}\n"));
        let tiny = Tiny {
            id,
            root,
            _dir: dir,
        };
        tiny.set_run(run);
        tiny
    }

    /// Rewrites `mid`'s Gear.toml with the step `run`.
    fn set_run(&self, run: &str) {
        write(
            &self.root.join("mid/Gear.toml"),
            &format!(
                "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"{}mid\"\ncopy = [\"data\"]\n\
                 {}run = [{}]\n",
                scratch::image_prefix(&self.id),
                scratch::labels_line(&self.id),
                serde_json::json!(run),
            ),
        );
    }

    fn target(&self) -> PathBuf {
        self.root.join("target")
    }

    fn record_path(&self) -> PathBuf {
        self.target().join("gear/state/mid.json")
    }

    /// `cargo-gear gear --root ROOT ARGS` against the engine at `host` (the shared one when
    /// `None`).
    fn command(&self, host: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = scratch::gear_command(&self.root, &[], &[]);
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        if let Some(host) = host {
            cmd.env("DOCKER_HOST", host);
        }
        cmd
    }

    fn spawn_build(&self, host: Option<&str>) -> Running {
        Running::spawn(self.command(host, &["build", "--message-format", "json"]))
    }

    fn build(&self, host: Option<&str>) -> Build {
        self.spawn_build(host).finish(BUILD_TIMEOUT)
    }

    /// `mid`'s content tag, from `cargo gear plan --format json`.
    fn content_tag(&self, host: Option<&str>) -> String {
        let out = scratch::run_to_end(
            self.command(host, &["plan", "--format", "json"]),
            BUILD_TIMEOUT,
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        scratch::Plan::parse(&out.stdout)
            .layer("mid")
            .get("content_tag")
            .and_then(|t| t.as_str())
            .unwrap()
            .to_owned()
    }

    /// The record of `mid` names the image under its content tag, with its fingerprint.
    fn assert_record_matches(&self, engine: &Engine, rt: &tokio::runtime::Runtime, tag: &str) {
        let record: serde_json::Value = serde_json::from_str(&read(&self.record_path())).unwrap();
        let image = rt
            .block_on(engine.image(tag))
            .unwrap()
            .unwrap_or_else(|| panic!("a record but no image {tag}"));
        assert_eq!(record["image_id"], image.id.as_str());
        assert!(
            tag.ends_with(&scratch::short(&record["fingerprint"])),
            "{tag}"
        );
    }
}

/// Every file name under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// A full disk
// ---------------------------------------------------------------------------------------

/// The target directory on a full tmpfs: the layer is built and tagged (the engine has its
/// own disk), but its build record cannot be written: a warning names the file and the
/// cause, no record (old or partial) is left and no temporary file either. With space
/// again, a change rebuilds the layer and records it.
#[test]
fn a_full_disk_under_target_names_the_record_and_the_next_build_is_correct() {
    let Some(shared) = OnShared::new("fault-disk", "echo one") else {
        return;
    };
    let (rt, engine, tiny) = (&shared.rt, &shared.engine, &shared.tiny);

    // A first build with space: a record.
    let _tmpfs = Tmpfs::mount(&tiny.target(), "size=1m");
    let first = tiny.build(None);
    first.assert_success();
    assert!(tiny.record_path().is_file());

    // A change, then the disk fills up.
    tiny.set_run("echo two");
    let filler = tiny.target().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    drop(file);
    let full = tiny.build(None);
    full.assert_success();
    assert_eq!(full.outcome("mid"), Outcome::Built);
    let message = full.out.message();
    let state = tiny.target().join("gear/state");
    assert!(
        message.contains(&format!(
            "cannot write the build record of mid: cannot write {}/.mid.json.tmp-",
            state.display()
        )) && message.contains("No space left on device"),
        "names the file and the cause: {message}"
    );
    assert!(
        !tiny.record_path().exists(),
        "no record of other inputs stays: {:?}",
        files_under(&state)
    );
    assert!(
        files_under(&state).is_empty(),
        "no temporary file: {:?}",
        files_under(&state)
    );
    let built = tiny.content_tag(None);
    assert!(rt.block_on(engine.image(&built)).unwrap().is_some());

    // Space again: a change is built and recorded.
    std::fs::remove_file(&filler).unwrap();
    tiny.set_run("echo three");
    let again = tiny.build(None);
    again.assert_success();
    assert_eq!(again.outcome("mid"), Outcome::Built);
    assert!(
        !again.out.stderr.contains("warning"),
        "{}",
        again.out.stderr
    );
    tiny.assert_record_matches(engine, rt, &tiny.content_tag(None));
}

// ---------------------------------------------------------------------------------------
// An unusable build.lock
// ---------------------------------------------------------------------------------------

/// `target/gear/build.lock` a directory, then `target/` read-only: each build fails before
/// touching the engine's images with `gear::build-lock`, the path, the cause and what to
/// do; once fixed, the build succeeds.
#[test]
fn an_unusable_build_lock_names_the_path_and_what_to_do() {
    let Some(shared) = OnShared::new("fault-lock", "echo locked") else {
        return;
    };
    let (rt, engine, tiny) = (&shared.rt, &shared.engine, &shared.tiny);
    let gear = tiny.target().join("gear");

    let lock = gear.join("build.lock");
    std::fs::create_dir_all(&lock).unwrap();
    let refused = tiny.build(None);
    refused.assert_code(1);
    let message = refused.out.message();
    for part in [
        "gear::build-lock",
        &format!("cannot open the build lock {}", lock.display()),
        "Is a directory",
        "remove or rename",
    ] {
        assert!(message.contains(part), "{part:?} in: {message}");
    }
    assert!(refused.events.is_empty(), "{:#?}", refused.events);
    std::fs::remove_dir(&lock).unwrap();

    std::fs::remove_dir_all(tiny.target()).unwrap();
    {
        let _ro = Tmpfs::mount(&tiny.target(), "ro,size=1m");
        let refused = tiny.build(None);
        refused.assert_code(1);
        let message = refused.out.message();
        for part in [
            "gear::build-lock",
            &format!("cannot create the directory {}", gear.display()),
            "Read-only file system",
            "CARGO_TARGET_DIR",
        ] {
            assert!(message.contains(part), "{part:?} in: {message}");
        }
    }

    let built = tiny.build(None);
    built.assert_success();
    assert_eq!(built.outcome("mid"), Outcome::Built);
    tiny.assert_record_matches(engine, rt, &tiny.content_tag(None));
}

// ---------------------------------------------------------------------------------------
// The engine killed mid-build
// ---------------------------------------------------------------------------------------

/// A dockerd of this test only: its own data root, exec root, pidfile and socket under a
/// short temporary directory, its own bridge, no iptables; stopped (and its bridge deleted)
/// when dropped.
struct PrivateEngine {
    dir: tempfile::TempDir,
    bridge: String,
    child: Option<Child>,
}

impl PrivateEngine {
    fn start() -> PrivateEngine {
        // Short: unix socket paths are limited to 107 bytes (containerd's are under exec-root).
        let dir = tempfile::Builder::new()
            .prefix("cgf")
            .tempdir_in("/tmp")
            .unwrap();
        let bridge = format!("cgf{}", std::process::id() % 100_000);
        let _ = Command::new("ip")
            .args(["link", "del", &bridge])
            .stderr(Stdio::null())
            .status();
        sh("ip", &["link", "add", &bridge, "type", "bridge"]);
        let subnet = 16 + std::process::id() % 200;
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("10.251.{subnet}.1/24"),
                "dev",
                &bridge,
            ],
        );
        sh("ip", &["link", "set", &bridge, "up"]);
        std::fs::write(dir.path().join("daemon.json"), "{}\n").unwrap();
        let mut engine = PrivateEngine {
            dir,
            bridge,
            child: None,
        };
        engine.run();
        engine
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("d.sock").display())
    }

    /// Starts dockerd (again) on the same directories and waits until it answers.
    fn run(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .unwrap();
        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--host")
            .arg(self.host())
            .args(["--bridge", &self.bridge])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().expect("dockerd"));
        let deadline = Instant::now() + ENGINE_TIMEOUT;
        while self.connect().is_none() {
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not answer within {ENGINE_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn connect(&self) -> Option<(tokio::runtime::Runtime, Engine)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let address = EngineAddress::Unix(self.dir.path().join("d.sock"));
        let engine = rt.block_on(Engine::connect_to(&address)).ok()?;
        Some((rt, engine))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// SIGKILL to dockerd, its containerd and the containers' shims: an engine whose host
    /// went down under it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill has no memory preconditions; the group is dockerd's own.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
        self.kill_the_rest();
    }

    /// SIGKILL to every process whose command line names this engine's directory (containerd,
    /// shims), until none is left.
    fn kill_the_rest(&self) {
        let dir = self.dir.path().to_string_lossy().into_owned();
        let deadline = Instant::now() + ENGINE_TIMEOUT;
        loop {
            let pids = processes_mentioning(&dir);
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                // SAFETY: as above; these processes are this engine's.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // A pidfile naming a process that is gone (or a zombie not yet reaped) would make
        // the next dockerd wait for that containerd instead of starting its own.
        for pidfile in ["dockerd.pid", "x/containerd/containerd.pid"] {
            let _ = std::fs::remove_file(self.dir.path().join(pidfile));
        }
    }

    /// SIGTERM (dockerd stops its containers and containerd), SIGKILL after a while.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: as in `kill`.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + ENGINE_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            // SAFETY: as in `kill`.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
        }
        self.kill_the_rest();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        self.stop();
        // What dockerd left mounted (network namespaces, overlays), deepest first; then its
        // bridge.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(self.dir.path()))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// The processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// Copies an image from the shared engine into the one at `host` (`docker save | docker load`).
fn copy_image(image: &str, to_host: &str) {
    let shared = std::env::var("DOCKER_HOST").unwrap_or_default();
    let script = "docker -H \"$FROM\" save \"$IMAGE\" | docker -H \"$TO\" load";
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .env("IMAGE", image)
        .env("TO", to_host)
        .env(
            "FROM",
            if shared.is_empty() {
                format!("unix://{}", cargo_gear::engine::DEFAULT_SOCKET)
            } else {
                shared
            },
        );
    let out = scratch::run_to_end(cmd, ENGINE_TIMEOUT);
    assert_eq!(out.code, Some(0), "copying {image}: {}", out.stderr);
}

/// The IDs of every container of the engine, running or not.
fn containers(rt: &tokio::runtime::Runtime, engine: &Engine) -> Vec<String> {
    let options = ListContainersOptions {
        all: true,
        ..Default::default()
    };
    rt.block_on(engine.docker().list_containers(Some(options)))
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// The engine is SIGKILLed while a step runs: the build fails within bounds with a message
/// that gives the cause, records nothing and tags nothing; the step container survives the
/// engine's restart (exited); the next build removes it (and no other container), builds
/// the layer and records it.
#[test]
fn a_killed_engine_fails_the_build_with_its_cause_and_the_next_build_recovers() {
    if !privileged() {
        return;
    }
    let Some((shared_rt, shared)) = scratch::connect() else {
        return;
    };
    shared_rt.block_on(support::require_fixture(&shared, support::BUSYBOX));
    let mut private = PrivateEngine::start();
    let host = private.host();
    copy_image(support::BUSYBOX, &host);

    let tiny = Tiny::new("fault-engine", "");
    let (started, finished) = (format!("started-{}", tiny.id), format!("done-{}", tiny.id));
    tiny.set_run(&format!("echo {started}; sleep 30; echo {finished}"));
    let tag = tiny.content_tag(Some(&host));
    // A container of someone else, which the clean-up must leave alone.
    let (rt, engine) = private.connect().unwrap();
    let bystander = rt
        .block_on(engine.docker().create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(support::BUSYBOX.to_owned()),
                cmd: Some(vec!["true".to_owned()]),
                ..Default::default()
            },
        ))
        .unwrap()
        .id;

    let mut running = tiny.spawn_build(Some(&host));
    running.wait_started("mid", BUILD_TIMEOUT);
    let log = tiny.target().join("gear/logs/mid.log");
    let deadline = Instant::now() + BUILD_TIMEOUT;
    while !read_or_empty(&log).lines().any(|l| l.trim() == started) {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((rt, engine));
    private.kill();
    let failed = running.finish(ENGINE_TIMEOUT);
    failed.assert_code(1);
    assert_eq!(failed.outcome("mid"), Outcome::Failed);
    let error = &failed.finished("mid").failure.as_ref().unwrap().error;
    let message = failed.out.message();
    eprintln!("the build's report of the killed engine: {message}");
    // The summary, then what the connection said: not just "could not build".
    let summary = format!("Docker engine at {host}: could not build");
    assert!(error.starts_with(&summary), "{error}");
    let cause = error.split_once("`: ").map_or("", |(_, cause)| cause);
    assert!(!cause.trim().is_empty(), "the cause: {error}");
    assert!(message.contains(error.as_str()), "{message}");
    assert!(!tiny.record_path().exists(), "no record");
    assert!(
        !read_or_empty(&log).lines().any(|l| l.trim() == finished),
        "the step did not end"
    );

    private.run();
    let (rt, engine) = private.connect().unwrap();
    assert!(rt.block_on(engine.image(&tag)).unwrap().is_none(), "no tag");
    let journal = tiny.target().join("gear/logs/mid.containers");
    let noted: Vec<String> = read(&journal).lines().map(str::to_owned).collect();
    assert_eq!(noted.len(), 1, "{noted:?}");
    let left: Vec<String> = containers(&rt, &engine)
        .into_iter()
        .filter(|c| c.starts_with(&noted[0]))
        .collect();
    assert_eq!(
        left.len(),
        1,
        "the killed build's step container is still there"
    );

    let again = tiny.build(Some(&host));
    again.assert_success();
    assert_eq!(again.outcome("mid"), Outcome::Built);
    assert!(
        again
            .out
            .stderr
            .contains("Removed 1 step container(s) left by a build the engine did not finish"),
        "{}",
        again.out.stderr
    );
    let now = containers(&rt, &engine);
    assert!(!now.contains(&left[0]), "the leftover is gone: {now:?}");
    assert!(now.contains(&bystander), "other containers stay: {now:?}");
    assert!(!journal.exists());
    assert!(read(&log).lines().any(|l| l.trim() == finished));
    tiny.assert_record_matches(&engine, &rt, &tag);
}

fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A tiny tree built on the shared engine; its images are removed when dropped.
struct OnShared {
    tiny: Tiny,
    rt: tokio::runtime::Runtime,
    engine: Engine,
}

impl OnShared {
    /// Or None (after a note) when the fault tests are skipped.
    fn new(test: &str, run: &str) -> Option<OnShared> {
        if !privileged() {
            return None;
        }
        let (rt, engine) = scratch::connect()?;
        rt.block_on(support::require_fixture(&engine, support::BUSYBOX));
        let tiny = Tiny::new(test, run);
        Some(OnShared { tiny, rt, engine })
    }
}

impl Drop for OnShared {
    fn drop(&mut self) {
        self.rt.block_on(scratch::remove_labelled_images(
            self.engine.docker(),
            &self.tiny.id,
        ));
    }
}
