//! The Docker engine the tests and the demo use: a reachable one, or a private `dockerd` under target/engine/.
//!
//! Order: the engine the user points at (`$DOCKER_HOST`, the current docker context,
//! /var/run/docker.sock), then this workspace's own engine when an earlier `cargo xtask engine
//! start` left it running, then another dockerd found running on the machine, but only after
//! checking that its containers reach what the builds need ([`network`]); otherwise xtask starts
//! its own. Every engine gets the fixtures and that check before the first build.
//!
//! The own engine runs on a bridge of its own (`cgear-…`, a free /24 under 10.213.0.0/16), not
//! docker0: a dockerd started later with `--bridge none` deletes docker0, which would break every
//! later build step. An engine that `test` or `demo` started is ephemeral: the last xtask using it
//! stops it (a shared lock counts the users) and removes the bridge. `engine start` makes it
//! persistent until `engine stop`.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::network::Needs;
use crate::{Result, Workspace, cmd, fixtures, host, registry, sys, tls};

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
    /// The certificates of the TLS listener, and the file naming its address while it runs.
    tls: PathBuf,
    /// The bridge dockerd's default network uses (`--bridge`), created by xtask.
    bridge: String,
    /// The network namespace (under /run/netns/) the engine runs in; `None` for the host's.
    netns: Option<String>,
}

impl Paths {
    pub fn new(ws: &Workspace) -> Paths {
        let run = short_run_dir(&ws.root);
        Paths::under(ws.target.join("engine"), &run, bridge_name(&ws.root), None)
    }

    /// An engine with everything under `dir` and `run` (short: it holds containerd's sockets),
    /// running in the network namespace `netns`: for tests that start engines of their own.
    #[cfg(test)]
    pub fn scratch(dir: &Path, run: &Path, netns: &str) -> Paths {
        Paths::under(
            dir.to_owned(),
            run,
            bridge_name(dir),
            Some(netns.to_owned()),
        )
    }

    fn under(dir: PathBuf, run: &Path, bridge: String, netns: Option<String>) -> Paths {
        // Unix socket paths are limited to 107 bytes, and dockerd puts containerd's sockets under its
        // exec root: both go to a short folder named after the workspace when target/ is deep.
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
            tls: dir.join("tls"),
            exec: run.join("exec"),
            bridge,
            netns,
            socket,
            dir,
        }
    }

    /// The `DOCKER_HOST` of the workspace's own engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The TLS listener of the running engine, if it has one (see [`tls`]).
    fn tls_endpoint(&self) -> Option<tls::Endpoint> {
        let host = fs::read_to_string(self.tls_listening()).ok()?;
        Some(tls::Endpoint {
            host: host.trim().to_owned(),
            certs: tls::Certs::at(&self.tls),
        })
    }

    /// Holds the TLS listener's `tcp://` address while the engine runs.
    fn tls_listening(&self) -> PathBuf {
        self.tls.join("listening")
    }

    /// `program` in the engine's network namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match &self.netns {
            Some(netns) => {
                // Not `ip netns exec`: it remounts /sys, hiding the cgroup mounts dockerd needs.
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net=/run/netns/{netns}")).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }
}

/// The own engine's bridge: `cgear-` and 8 hex digits of the workspace's path (at most 15 bytes).
fn bridge_name(root: &Path) -> String {
    let hash = crate::fnv1a(root.as_os_str().as_encoded_bytes());
    format!("cgear-{:08x}", hash & 0xffff_ffff)
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
    /// `DOCKER_CERT_PATH` for a docker context's engine that wants TLS.
    tls: Option<PathBuf>,
    /// The engine's second listener, `tcp://127.0.0.1:PORT` with `--tlsverify`: only this
    /// workspace's own engine has one.
    pub tls_listener: Option<tls::Endpoint>,
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
    /// The engine at `host`, which xtask neither started nor stops.
    pub fn at(host: impl Into<String>) -> Engine {
        Engine {
            host: host.into(),
            tls: None,
            tls_listener: None,
            own: None,
        }
    }

    /// Finds or starts an engine, makes the fixtures and checks that its containers reach what
    /// `needs` lists. `Ok(None)` means there is none and xtask may not start one (not root, or no
    /// apt-get to install dockerd); it has then printed what the developer can do.
    pub fn acquire(ws: &Workspace, lifetime: Lifetime, needs: &Needs) -> Result<Option<Engine>> {
        let paths = Paths::new(ws);
        if let Some(engine) = Engine::pointed_at(&paths)? {
            engine.make_ready(ws, needs)?;
            return Ok(Some(engine));
        }
        Own::acquire(ws, paths, lifetime, needs)
    }

    /// The engine the user points at: `$DOCKER_HOST`, the current docker context, or
    /// /var/run/docker.sock. One named explicitly that does not answer is an error.
    fn pointed_at(paths: &Paths) -> Result<Option<Engine>> {
        // A DOCKER_HOST naming this workspace's own engine (exported after `engine start`) is
        // left to `Own::acquire`: xtask may start that engine again.
        if let Some(host) = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty() && *h != paths.host())
        {
            let engine = Engine::at(&host);
            if engine.answers() {
                eprintln!("xtask: using the engine at DOCKER_HOST={host}");
                return Ok(Some(engine));
            }
            return Err(format!(
                "DOCKER_HOST={host} is set but no Docker engine answers there; \
                 unset it to let xtask use /var/run/docker.sock or start its own engine"
            )
            .into());
        }
        if let Some((name, engine)) = current_context() {
            if engine.answers() {
                eprintln!(
                    "xtask: using the engine of the docker context `{name}` at {}",
                    engine.host
                );
                return Ok(Some(engine));
            }
            return Err(format!(
                "the current docker context `{name}` points at {} but no Docker engine answers \
                 there; `docker context use default` to let xtask use /var/run/docker.sock or \
                 start its own engine",
                engine.host
            )
            .into());
        }
        let default = Engine::at(format!("unix://{DEFAULT_SOCKET}"));
        if default.answers() {
            eprintln!("xtask: using the engine at {}", default.host);
            return Ok(Some(default));
        }
        Ok(None)
    }

    /// The engine `cargo xtask engine env` names: the one the user points at, else this
    /// workspace's own if it runs.
    pub fn running(ws: &Workspace) -> Result<Option<Engine>> {
        let paths = Paths::new(ws);
        if let Some(engine) = Engine::pointed_at(&paths)? {
            return Ok(Some(engine));
        }
        let own = Engine::at(paths.host());
        Ok(own.answers().then_some(own))
    }

    /// Whether the engine answers its `/_ping`.
    pub fn answers(&self) -> bool {
        match self.host.strip_prefix("unix://") {
            Some(socket) => ping_unix(Path::new(socket)).unwrap_or(false),
            None => cmd::succeeds(self.export(&mut Command::new("docker")).args([
                "version",
                "--format",
                "{{.Server.Version}}",
            ])),
        }
    }

    /// The fixtures, then the check that containers reach what the builds need.
    fn make_ready(&self, ws: &Workspace, needs: &Needs) -> Result {
        fixtures::ensure(self, ws)?;
        needs.check(self, None)?;
        Ok(())
    }

    /// Points `cmd` (the docker CLI, cargo-gear, a test) at this engine.
    pub fn export<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_CONTEXT");
        match &self.tls {
            Some(dir) => cmd
                .env("DOCKER_CERT_PATH", dir)
                .env("DOCKER_TLS_VERIFY", "1"),
            None => cmd,
        }
    }

    /// A `docker` CLI command that talks to this engine.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        self.export(&mut cmd);
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

/// The current docker context's name and engine, unless it is `default` (which is DOCKER_HOST or
/// /var/run/docker.sock) or there is no docker CLI.
fn current_context() -> Option<(String, Engine)> {
    host::program("docker")?;
    let out = cmd::stdout(Command::new("docker").env_remove("DOCKER_HOST").args([
        "context",
        "inspect",
        "--format",
        "{{.Name}}\t{{.Endpoints.docker.Host}}\t{{.Storage.TLSPath}}",
    ]))
    .ok()?;
    let mut fields = out.split('\t');
    let (name, host, tls) = (fields.next()?, fields.next()?, fields.next()?);
    if name == "default" || host.is_empty() {
        return None;
    }
    let tls = Path::new(tls).join("docker");
    Some((
        name.to_owned(),
        Engine {
            host: host.to_owned(),
            tls: tls.join("ca.pem").is_file().then_some(tls),
            tls_listener: None,
            own: None,
        },
    ))
}

impl Own {
    fn acquire(
        ws: &Workspace,
        paths: Paths,
        lifetime: Lifetime,
        needs: &Needs,
    ) -> Result<Option<Engine>> {
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
            let engine = Engine {
                host,
                tls: None,
                tls_listener: paths.tls_endpoint(),
                own: Some(Own {
                    paths,
                    child: None,
                    _users: users,
                }),
            };
            engine.make_ready(ws, needs)?;
            return Ok(Some(engine));
        }
        stop_stale(&paths, &host)?;
        let others = other_dockerds();
        for other in &others {
            if let Some(engine) = other.usable(ws, needs) {
                return Ok(Some(engine));
            }
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
        if let Some(other) = others.first() {
            eprintln!("{}", iptables_note(other.pid, &paths.bridge));
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
        let engine = Engine {
            host,
            tls: None,
            tls_listener: paths.tls_endpoint(),
            own: Some(Own {
                paths,
                child: Some(child),
                _users: users,
            }),
        };
        engine.make_ready(ws, needs)?;
        Ok(Some(engine))
    }
}

/// What xtask says before starting its engine while another dockerd runs: their iptables rules
/// share chains (seen with Docker 28: the one that starts last flushes the other's).
fn iptables_note(other: i32, bridge: &str) -> String {
    format!(
        "xtask: note: another dockerd runs on this machine (pid {other}). Both use iptables' \
         DOCKER and DOCKER-ISOLATION-STAGE-* chains, and a dockerd that starts flushes them: the \
         other engine's published ports (`docker run -p`) stop working until it restarts, and \
         this engine's when the other one restarts. Outbound traffic is not affected (this engine \
         has its own bridge {bridge} and NAT rule), and cargo-gear publishes no ports. To avoid \
         it, run a single engine and point xtask at it (DOCKER_HOST), or start the other one with \
         `--iptables=false`."
    )
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

/// Starts dockerd on its own bridge in its own process group, logging to target/engine/dockerd.log,
/// and waits for /_ping.
pub fn start(paths: &Paths) -> Result<Child> {
    create_bridge(paths)?;
    launch(paths, &paths.bridge)
}

/// Starts dockerd with `--bridge BRIDGE`, listening on its unix socket and on
/// `tcp://127.0.0.1:PORT` with TLS ([`tls`]), and waits for /_ping.
fn launch(paths: &Paths, bridge: &str) -> Result<Child> {
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
    let certs = tls::Certs::ensure(&paths.tls)?;
    let _ = fs::remove_file(paths.tls_listening());
    let tls_host = format!("tcp://127.0.0.1:{}", registry::free_port()?);
    let log = File::create(&paths.log)?;
    let mut cmd = paths.command(dockerd);
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
        .arg("--host")
        .arg(&tls_host)
        .args(certs.dockerd_args())
        .arg("--bridge")
        .arg(bridge)
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
                "xtask: dockerd is up after {:.1} s (log: {}), also at {tls_host} with TLS",
                started.elapsed().as_secs_f64(),
                paths.log.display()
            );
            fs::write(paths.tls_listening(), format!("{tls_host}\n"))?;
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

/// Creates the engine's bridge (if it does not exist) with the first free /24 of 10.213.0.0/16
/// from a number derived from its name, and brings it up; dockerd takes its address as the
/// default network's subnet.
fn create_bridge(paths: &Paths) -> Result {
    let ip = host::program("ip").ok_or("`ip` (Debian's iproute2) is not installed")?;
    let ip = |args: &[&str]| cmd::stdout(paths.command(&ip).args(args));
    let bridge = paths.bridge.as_str();
    if ip(&["link", "show", bridge]).is_err() {
        ip(&["link", "add", bridge, "type", "bridge"])?;
    }
    if !ip(&["-4", "-o", "addr", "show", "dev", bridge])?.contains(" inet ") {
        let routes = ip(&["-4", "route", "show", "table", "all"])?;
        let subnet = free_subnet(&routes, 213, bridge)?;
        ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", bridge])?;
    }
    ip(&["link", "set", bridge, "up"])?;
    Ok(())
}

/// `10.SECOND.N`: the first /24 of 10.SECOND.0.0/16, from a number derived from `bridge`, that
/// no route of `routes` (`ip -4 route show table all`) overlaps.
pub fn free_subnet(routes: &str, second: u8, bridge: &str) -> Result<String> {
    let taken: Vec<(u32, u32)> = routes
        .lines()
        .filter_map(|l| parse_cidr(l.split_whitespace().find(|w| w.contains('.'))?))
        .collect();
    let start = crate::fnv1a(bridge.as_bytes()) as u32;
    let third = (0..256)
        .map(|i| (start.wrapping_add(i) & 0xff) as u8)
        .find(|&n| {
            let subnet = (u32::from_be_bytes([10, second, n, 0]), 24);
            !taken.iter().any(|&t| overlaps(t, subnet))
        })
        .ok_or_else(|| format!("no free /24 in 10.{second}.0.0/16 for the bridge {bridge}"))?;
    Ok(format!("10.{second}.{third}"))
}

/// `A.B.C.D/N` or `A.B.C.D` (a /32) as (address, prefix length).
fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (addr, len) = text.split_once('/').unwrap_or((text, "32"));
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|&l| l <= 32)?;
    Some((u32::from(addr), len))
}

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    let len = a.1.min(b.1);
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    a.0 & mask == b.0 & mask
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
    let _ = fs::remove_file(paths.tls_listening());
    // dockerd leaves a bridge it was given alone.
    let ip = host::program("ip").unwrap_or_else(|| "ip".into());
    if cmd::succeeds(paths.command(&ip).args(["link", "show", &paths.bridge])) {
        cmd::succeeds(paths.command(&ip).args(["link", "delete", &paths.bridge]));
    }
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

/// A dockerd running on the machine that this workspace did not start.
struct Dockerd {
    pid: i32,
    /// Its first `unix://` host that answers.
    host: Option<String>,
    /// Started with `--bridge none`: containers on its default network have none.
    bridge_none: bool,
}

impl Dockerd {
    /// This dockerd as the engine to use, if its containers reach what the builds need.
    fn usable(&self, ws: &Workspace, needs: &Needs) -> Option<Engine> {
        let pid = self.pid;
        let Some(host) = &self.host else {
            eprintln!("xtask: not using the running dockerd (pid {pid}): no unix socket answers");
            return None;
        };
        if self.bridge_none && !needs.list.is_empty() {
            eprintln!(
                "xtask: not using the running dockerd (pid {pid}) at {host}: it was started with \
                 `--bridge none`, so its containers have no network"
            );
            return None;
        }
        eprintln!(
            "xtask: found a running dockerd that this workspace did not start (pid {pid}) at \
             {host}; checking that {}",
            needs.describe()
        );
        let engine = Engine::at(host);
        match engine.make_ready(ws, needs) {
            Ok(()) => {
                eprintln!(
                    "xtask: using the running dockerd (pid {pid}) at {host}, not this workspace's: \
                     {}",
                    needs.describe()
                );
                Some(engine)
            }
            Err(e) => {
                eprintln!("xtask: not using the running dockerd (pid {pid}) at {host}: {e}");
                None
            }
        }
    }
}

/// Every other dockerd running on the machine (this workspace's own is not running when called).
fn other_dockerds() -> Vec<Dockerd> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid| is_dockerd(pid))
        .collect();
    pids.sort();
    pids.into_iter()
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let (hosts, bridges) = (
                option(&args, "-H", "--host"),
                option(&args, "-b", "--bridge"),
            );
            Some(Dockerd {
                pid,
                host: hosts
                    .into_iter()
                    .filter(|h| h.starts_with("unix://"))
                    .find(|h| ping(h)),
                bridge_none: bridges.iter().any(|b| b == "none"),
            })
        })
        .collect()
}

/// The values of a command-line option given as `-s V`, `-s=V`, `--long V` or `--long=V`.
fn option(args: &[String], short: &str, long: &str) -> Vec<String> {
    args.iter()
        .enumerate()
        .filter_map(|(i, arg)| {
            if arg == short || arg == long {
                return args.get(i + 1).cloned();
            }
            [short, long]
                .iter()
                .find_map(|o| arg.strip_prefix(o)?.strip_prefix('='))
                .map(str::to_owned)
        })
        .collect()
}

/// Whether a Docker engine answers at `host` (`unix://…` directly, anything else through the CLI).
pub fn ping(host: &str) -> bool {
    Engine::at(host).answers()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_overlap_under_the_shorter_prefix() {
        let cidr = |s| parse_cidr(s).unwrap();
        assert!(overlaps(cidr("10.213.7.0/24"), cidr("10.0.0.0/8")));
        assert!(overlaps(cidr("10.213.7.0/24"), cidr("10.213.7.9")));
        assert!(!overlaps(cidr("10.213.7.0/24"), cidr("10.213.8.0/24")));
        assert!(!overlaps(cidr("10.213.7.0/24"), cidr("172.17.0.0/16")));
        assert!(overlaps(cidr("10.213.7.0/24"), cidr("0.0.0.0/0")));
        assert_eq!(parse_cidr("default"), None);
    }

    #[test]
    fn options_in_every_spelling() {
        let args: Vec<String> = ["dockerd", "-H", "unix:///a", "--host=unix:///b", "-b=none"]
            .map(str::to_owned)
            .into();
        assert_eq!(option(&args, "-H", "--host"), ["unix:///a", "unix:///b"]);
        assert_eq!(option(&args, "-b", "--bridge"), ["none"]);
    }

    /// A network namespace with engines in it, all removed when dropped.
    struct Scene {
        netns: String,
        dir: PathBuf,
        run: PathBuf,
        engines: Vec<(Paths, Child)>,
    }

    impl Scene {
        fn new() -> Scene {
            let name = format!("xtask-{}", std::process::id());
            let scene = Scene {
                dir: std::env::temp_dir().join(&name),
                run: PathBuf::from("/run").join(&name),
                netns: name,
                engines: Vec::new(),
            };
            cmd::run(Command::new("ip").args(["netns", "add", &scene.netns])).unwrap();
            cmd::run(
                scene
                    .paths("lo")
                    .command("ip")
                    .args(["link", "set", "lo", "up"]),
            )
            .unwrap();
            scene
        }

        fn paths(&self, name: &str) -> Paths {
            Paths::scratch(&self.dir.join(name), &self.run.join(name), &self.netns)
        }

        fn ip(&self, args: &[&str]) -> bool {
            cmd::succeeds(self.paths("lo").command("ip").args(args))
        }
    }

    impl Drop for Scene {
        fn drop(&mut self) {
            for (paths, child) in self.engines.drain(..).rev() {
                let _ = stop(&paths, Some(child));
            }
            cmd::succeeds(Command::new("ip").args(["netns", "delete", &self.netns]));
            for dir in [&self.dir, &self.run] {
                fixtures::unmount_below(dir);
                let _ = fs::remove_dir_all(dir);
            }
        }
    }

    /// The own engine also listens on `tcp://127.0.0.1:PORT`, with TLS, for clients holding a
    /// certificate of its CA only; the address is recorded while it runs. In a network
    /// namespace of its own, like the test below.
    #[test]
    fn own_engine_listens_on_tcp_with_tls_for_its_clients_only() {
        if !crate::testing::engine_tests_run() {
            return;
        }
        assert!(
            sys::is_root(),
            "this engine test needs root (ip netns, dockerd)"
        );
        let mut scene = Scene::new();
        let own = scene.paths("own");
        let child = start(&own).unwrap();
        let listener = own
            .tls_endpoint()
            .expect("a running engine names its TLS listener");
        let listening = own.tls_listening();
        scene.engines.push((own, child));
        let own = &scene.engines[0].0;
        assert!(
            listener.host.starts_with("tcp://127.0.0.1:"),
            "{}",
            listener.host
        );
        let version = |certs: Option<&Path>| {
            let mut docker = own.command("docker");
            docker
                .env("DOCKER_HOST", &listener.host)
                .env_remove("DOCKER_CONTEXT")
                .args(["version", "--format", "{{.Server.Version}}"]);
            match certs {
                Some(dir) => docker
                    .env("DOCKER_TLS_VERIFY", "1")
                    .env("DOCKER_CERT_PATH", dir),
                None => docker
                    .env_remove("DOCKER_TLS_VERIFY")
                    .env_remove("DOCKER_CERT_PATH"),
            };
            cmd::stdout(&mut docker).map_err(|e| e.to_string())
        };
        let client = listener.certs.client_dir();
        assert!(!version(Some(&client)).unwrap().is_empty());

        // Another CA's client is refused (and trusts not the engine); plain HTTP is refused.
        let stranger = version(Some(&listener.certs.stranger_dir())).unwrap_err();
        assert!(stranger.contains("certificate"), "{stranger}");
        assert!(version(None).is_err());

        let (paths, child) = scene.engines.pop().unwrap();
        stop(&paths, Some(child)).unwrap();
        assert!(
            !listening.exists(),
            "a stopped engine names no TLS listener"
        );
    }

    /// Issue 16: another engine started with `--bridge none` while this workspace's engine runs
    /// deletes docker0. The own engine is on a bridge of its own, so the build that follows (a
    /// cargo-gear layer with a `run` step, on the busybox fixture: the namespace has no route to
    /// the Debian mirror) still succeeds. Everything happens in a network namespace of its own,
    /// which also holds the docker0 the intruder deletes; the host's network is not touched.
    #[test]
    fn own_engine_survives_a_dockerd_started_with_bridge_none() {
        if !crate::testing::engine_tests_run() {
            return;
        }
        assert!(
            sys::is_root(),
            "this engine test needs root (ip netns, dockerd)"
        );
        let ws = Workspace::new();
        cmd::run(ws.cargo().args(["build", "--package", "cargo-gear"])).unwrap();
        let mut scene = Scene::new();

        let own = scene.paths("own");
        let child = start(&own).unwrap();
        let engine = Engine::at(own.host());
        let bridge = own.bridge.clone();
        scene.engines.push((own, child));

        // What a dockerd on the default bridge would have; the intruder deletes it.
        assert!(scene.ip(&["link", "add", "docker0", "type", "bridge"]));
        let intruder = scene.paths("intruder");
        let child = launch(&intruder, "none").unwrap();
        scene.engines.push((intruder, child));
        assert!(
            !scene.ip(&["link", "show", "docker0"]),
            "a dockerd started with `--bridge none` deletes docker0 (the hazard of issue 16)"
        );
        assert!(scene.ip(&["link", "show", &bridge]));

        let own = &scene.engines[0].0;
        fixtures::busybox(&engine, own).unwrap();
        let tree = scene.dir.join("tree");
        fs::create_dir_all(tree.join("base")).unwrap();
        fs::create_dir_all(tree.join("probe")).unwrap();
        fs::write(
            tree.join("base/Gear.toml"),
            format!(
                "[layer]\nname = \"base\"\nimage = \"{}\"\ndistro = \"alpine\"\n",
                fixtures::BUSYBOX
            ),
        )
        .unwrap();
        fs::write(
            tree.join("probe/Gear.toml"),
            "[layer]\nname = \"probe\"\nfrom = \"base\"\nimage = \"xtask-test/probe\"\n\
             run = [\"echo built on $(hostname) > /built\"]\n",
        )
        .unwrap();
        let mut build = Command::new(ws.target.join("debug/cargo-gear"));
        engine
            .export(&mut build)
            .args(["gear", "--root"])
            .arg(&tree)
            .arg("build")
            .env("NO_COLOR", "1");
        cmd::run(&mut build).unwrap();
        let image = cmd::stdout(engine.docker().args([
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "xtask-test/probe",
        ]))
        .unwrap();
        let built = cmd::stdout(
            engine
                .docker()
                .args(["run", "--rm", &image, "cat", "/built"]),
        );
        assert!(built.unwrap().starts_with("built on "));
    }
}
