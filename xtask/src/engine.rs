//! The Docker engine the tests and the demo use: a reachable one, or a private `dockerd` under target/engine/.
//!
//! Order: `$DOCKER_HOST`, then /var/run/docker.sock, then this workspace's own engine (reused when an
//! earlier `cargo xtask engine start` left it running, started otherwise). An engine that `test` or
//! `demo` started is ephemeral: the last xtask using it stops it (a shared lock counts the users).
//! `engine start` makes it persistent until `engine stop`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{Result, Workspace, cmd, host, sys};

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where this workspace's own engine keeps its state.
pub struct Paths {
    /// target/engine/: log, pidfile, locks, and the data root.
    pub dir: PathBuf,
    /// Downloads and root file systems that outlive the engine's data (target/engine/cache/).
    pub cache: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pidfile: PathBuf,
    socket: PathBuf,
    exec: PathBuf,
    config: PathBuf,
    ephemeral: PathBuf,
    users: PathBuf,
}

impl Paths {
    pub fn new(ws: &Workspace) -> Paths {
        let dir = ws.target.join("engine");
        // Unix socket paths are limited to 107 bytes, and dockerd puts containerd's sockets under its
        // exec root: both go to a short folder named after the workspace when target/ is deep.
        let run = short_run_dir(&ws.root);
        let socket = dir.join("docker.sock");
        let socket = if socket.as_os_str().len() <= 100 {
            socket
        } else {
            run.join("docker.sock")
        };
        Paths {
            cache: dir.join("cache"),
            data: dir.join("data"),
            log: dir.join("dockerd.log"),
            pidfile: dir.join("dockerd.pid"),
            config: dir.join("daemon.json"),
            ephemeral: dir.join("ephemeral"),
            users: dir.join("users.lock"),
            exec: run.join("exec"),
            socket,
            dir,
        }
    }

    /// The `DOCKER_HOST` of the workspace's own engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

fn short_run_dir(root: &Path) -> PathBuf {
    let base = if sys::is_root() && Path::new("/run").is_dir() {
        "/run"
    } else {
        "/tmp"
    };
    let hash = crate::fnv1a(root.as_os_str().as_encoded_bytes());
    PathBuf::from(format!(
        "{base}/cargo-gear-{:012x}",
        hash & 0xffff_ffff_ffff
    ))
}

/// Serializes engine start-up and fixture creation between concurrent xtask runs in one workspace.
pub fn setup_lock(ws: &Workspace) -> Result<File> {
    let paths = Paths::new(ws);
    fs::create_dir_all(&paths.dir)?;
    let file = File::create(paths.dir.join("setup.lock"))?;
    if file.try_lock().is_err() {
        eprintln!("xtask: waiting for another xtask that is setting up the engine…");
        file.lock()?;
    }
    Ok(file)
}

/// A Docker engine in use; dropping it stops the engine if this run started it and is the last user.
pub struct Engine {
    /// The `DOCKER_HOST` value that reaches the engine.
    pub host: String,
    own: Option<Own>,
}

struct Own {
    paths: Paths,
    child: Option<Child>,
    _users: File,
}

/// Whether an engine that xtask starts should outlive the xtask run.
#[derive(Clone, Copy, PartialEq)]
pub enum Lifetime {
    Ephemeral,
    Persistent,
}

impl Engine {
    /// Finds or starts an engine. `Ok(None)` means there is none and xtask may not start one (not
    /// root, or no apt-get to install dockerd); it has then printed what the developer can do.
    pub fn acquire(ws: &Workspace, lifetime: Lifetime) -> Result<Option<Engine>> {
        let paths = Paths::new(ws);
        // A DOCKER_HOST naming this workspace's own engine (exported after `engine start`) is
        // handled below: xtask may start that engine again.
        if let Some(host) = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty() && *h != paths.host())
        {
            if ping(&host) {
                eprintln!("xtask: using the engine at DOCKER_HOST={host}");
                return Ok(Some(Engine { host, own: None }));
            }
            return Err(format!(
                "DOCKER_HOST={host} is set but no Docker engine answers there; \
                 unset it to let xtask use /var/run/docker.sock or start its own engine"
            )
            .into());
        }
        let default = format!("unix://{DEFAULT_SOCKET}");
        if ping(&default) {
            eprintln!("xtask: using the engine at {default}");
            return Ok(Some(Engine {
                host: default,
                own: None,
            }));
        }
        Own::acquire(paths, lifetime)
    }

    /// A `docker` CLI command that talks to this engine.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_CONTEXT");
        cmd
    }

    /// Keeps the engine running after this xtask exits, if it is the workspace's own.
    pub fn persist(&mut self) {
        if let Some(own) = &mut self.own {
            let _ = fs::remove_file(&own.paths.ephemeral);
            // Forget the child: it is in its own process group and keeps running.
            own.child = None;
        }
    }
}

impl Own {
    fn acquire(paths: Paths, lifetime: Lifetime) -> Result<Option<Engine>> {
        fs::create_dir_all(&paths.dir)?;
        let host = paths.host();
        let users = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&paths.users)?;
        if ping(&host) {
            eprintln!("xtask: using this workspace's running engine at {host}");
            users.lock_shared()?;
            if lifetime == Lifetime::Persistent {
                let _ = fs::remove_file(&paths.ephemeral);
            }
            return Ok(Some(Engine {
                host,
                own: Some(Own {
                    paths,
                    child: None,
                    _users: users,
                }),
            }));
        }
        stop_stale(&paths, &host)?;
        // Two dockerds fight over the docker0 bridge and the iptables chains: use one that runs.
        if let Some(host) = running_dockerd() {
            eprintln!("xtask: using the running dockerd at {host} (another workspace's engine?)");
            return Ok(Some(Engine { host, own: None }));
        }
        if !sys::is_root() {
            eprintln!(
                "xtask: no Docker engine answers (DOCKER_HOST unset, {DEFAULT_SOCKET} absent)."
            );
            eprintln!("{}", host::HOW_TO_GET_AN_ENGINE);
            return Ok(None);
        }
        let missing = host::missing_packages();
        if !missing.is_empty() && host::program("apt-get").is_some() {
            eprintln!("xtask: installing {}", missing.join(" "));
            host::apt_install(&missing)?;
        } else if host::program("dockerd").is_none() {
            eprintln!(
                "xtask: no Docker engine answers, and xtask cannot install dockerd without apt-get."
            );
            eprintln!("{}", host::HOW_TO_GET_AN_ENGINE);
            return Ok(None);
        }
        let child = start(&paths)?;
        users.lock_shared()?;
        if lifetime == Lifetime::Ephemeral {
            fs::write(
                &paths.ephemeral,
                "started by `cargo xtask test` or `demo`; the last user stops it\n",
            )?;
        } else {
            let _ = fs::remove_file(&paths.ephemeral);
        }
        Ok(Some(Engine {
            host,
            own: Some(Own {
                paths,
                child: Some(child),
                _users: users,
            }),
        }))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let Some(own) = self.own.take() else { return };
        let Own {
            paths,
            child,
            _users,
        } = own;
        drop(_users);
        if !paths.ephemeral.exists() {
            return;
        }
        let last = File::open(&paths.users)
            .map(|f| f.try_lock().is_ok())
            .unwrap_or(true);
        if !last {
            eprintln!(
                "xtask: another xtask still uses the engine at {}; leaving it running",
                self.host
            );
            return;
        }
        if let Err(e) = stop(&paths, child) {
            eprintln!("xtask: error while stopping dockerd: {e}");
        }
    }
}

/// Starts dockerd in its own process group, logging to target/engine/dockerd.log, and waits for /_ping.
fn start(paths: &Paths) -> Result<Child> {
    let dockerd = host::program("dockerd").ok_or("dockerd is not installed")?;
    for dir in [&paths.data, &paths.exec, &paths.cache] {
        fs::create_dir_all(dir)?;
    }
    if let Some(parent) = paths.socket.parent() {
        fs::create_dir_all(parent)?;
    }
    // Our own (empty) configuration, so that an /etc/docker/daemon.json meant for the system's
    // engine (hosts, data-root, …) does not clash with the flags below.
    fs::write(&paths.config, "{}\n")?;
    let log = File::create(&paths.log)?;
    let mut cmd = Command::new(dockerd);
    cmd.arg("--config-file")
        .arg(&paths.config)
        .arg("--data-root")
        .arg(&paths.data)
        .arg("--exec-root")
        .arg(&paths.exec)
        .arg("--pidfile")
        .arg(&paths.pidfile)
        .arg("--host")
        .arg(paths.host())
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    eprintln!("xtask: $ {}", cmd::display(&cmd));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start dockerd: {e}"))?;
    let host = paths.host();
    loop {
        if ping(&host) {
            eprintln!(
                "xtask: dockerd is up after {:.1} s (log: {})",
                started.elapsed().as_secs_f64(),
                paths.log.display()
            );
            return Ok(child);
        }
        let failure = if let Some(status) = child.try_wait()? {
            format!("dockerd exited ({status}) before answering")
        } else if started.elapsed() > START_TIMEOUT {
            format!(
                "dockerd did not answer on {host} within {} s",
                START_TIMEOUT.as_secs()
            )
        } else if sys::interrupted() {
            "interrupted while waiting for dockerd".to_owned()
        } else {
            sleep(Duration::from_millis(200));
            continue;
        };
        eprintln!("xtask: {failure}; the end of {}:", paths.log.display());
        eprintln!("{}", log_tail(&paths.log, 30));
        let _ = stop(paths, Some(child));
        return Err(failure.into());
    }
}

/// Stops this workspace's engine if it runs (`cargo xtask engine stop`).
pub fn stop_own(ws: &Workspace) -> Result {
    let paths = Paths::new(ws);
    if read_pid(&paths).is_none() {
        eprintln!("xtask: this workspace's engine is not running");
        return Ok(());
    }
    stop(&paths, None)
}

/// SIGTERM to dockerd, which stops its containers and containerd; SIGKILL to its group after a while.
fn stop(paths: &Paths, mut child: Option<Child>) -> Result {
    let pid = match &child {
        Some(child) => child.id() as i32,
        None => match read_pid(paths) {
            Some(pid) => pid,
            None => return Ok(()),
        },
    };
    eprintln!("xtask: stopping dockerd (pid {pid})");
    sys::send_signal(pid, sys::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut alive = || match &mut child {
        Some(child) => child.try_wait().map(|s| s.is_none()).unwrap_or(false),
        None => is_dockerd(pid),
    };
    while alive() {
        if Instant::now() > deadline {
            eprintln!(
                "xtask: dockerd did not stop within {} s; killing its process group",
                STOP_TIMEOUT.as_secs()
            );
            sys::send_signal(-pid, sys::SIGKILL);
            sys::send_signal(pid, sys::SIGKILL);
            if let Some(child) = &mut child {
                child.wait()?;
            }
            break;
        }
        sleep(Duration::from_millis(100));
    }
    let _ = fs::remove_file(&paths.ephemeral);
    // dockerd removes its pidfile when it exits cleanly; after a SIGKILL a stale one would stop the
    // next dockerd from starting while a process (or zombie) with that pid exists.
    if fs::read_to_string(&paths.pidfile).is_ok_and(|p| p.trim() == pid.to_string()) {
        let _ = fs::remove_file(&paths.pidfile);
    }
    Ok(())
}

/// Stops a dockerd of this workspace that runs but does not answer (say, after xtask was SIGKILLed).
/// A busy engine (a loaded machine, a large image removal) can miss one ping: it is asked a few
/// more times before it is declared stale, so a working engine is never killed under another run.
fn stop_stale(paths: &Paths, host: &str) -> Result {
    if read_pid(paths).is_some() {
        for _ in 0..4 {
            sleep(Duration::from_secs(3));
            if ping(host) {
                return Ok(());
            }
        }
        eprintln!("xtask: this workspace's dockerd runs but does not answer; stopping it");
        stop(paths, None)?;
    } else if paths.pidfile.exists() {
        // Left by a dockerd that was killed; its pid may now be a zombie or another program.
        fs::remove_file(&paths.pidfile)?;
    }
    Ok(())
}

/// The pid in dockerd's pidfile, if that process is alive and still a dockerd.
fn read_pid(paths: &Paths) -> Option<i32> {
    let pid = fs::read_to_string(&paths.pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_dockerd(pid).then_some(pid)
}

fn is_dockerd(pid: i32) -> bool {
    // /proc/PID/stat: "PID (COMM) STATE …"; a zombie counts as gone.
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((comm, rest)) = stat.split_once(") ") else {
        return false;
    };
    comm.ends_with("(dockerd") && !rest.starts_with('Z')
}

/// The first `unix://` host of a running dockerd that answers there.
fn running_dockerd() -> Option<String> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort();
    pids.into_iter()
        .filter(|&pid| is_dockerd(pid))
        .find_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let hosts = args
                .iter()
                .enumerate()
                .filter_map(|(i, arg)| match arg.as_str() {
                    "-H" | "--host" => args.get(i + 1).cloned(),
                    _ => arg
                        .strip_prefix("--host=")
                        .or_else(|| arg.strip_prefix("-H="))
                        .map(str::to_owned),
                });
            hosts
                .into_iter()
                .filter(|h| h.starts_with("unix://"))
                .find(|h| ping(h))
        })
}

/// Whether a Docker engine answers at `host` (`unix://…` directly, anything else through the CLI).
pub fn ping(host: &str) -> bool {
    match host.strip_prefix("unix://") {
        Some(socket) => ping_unix(Path::new(socket)).unwrap_or(false),
        None => cmd::succeeds(
            Command::new("docker")
                .args(["version", "--format", "{{.Server.Version}}"])
                .env("DOCKER_HOST", host),
        ),
    }
}

fn ping_unix(socket: &Path) -> std::io::Result<bool> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.starts_with("HTTP/1.")
        && response.lines().next().is_some_and(|l| l.contains(" 200 ")))
}

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
