//! Podman, the second engine of the tests (cargo-gear/tests/it/engine_podman.rs): Debian's
//! podman serving its Docker-compatible API (`podman system service --time=0 unix://…`) for
//! one `cargo xtask test` run, with everything of its own, so that it leaves the Docker engine
//! alone.
//!
//! - Storage under target/engine/podman-<xtask pid>/storage, its run root, temporary files and
//!   socket under a short folder (`/run/cargo-gear-podman-<pid>/`: conmon's sockets live
//!   there), not /var/lib/containers or /run/libpod. Only two small caches are shared with
//!   any other Podman: containers/image's in /var/lib/containers/cache and CNI's results in
//!   /var/lib/cni.
//! - Containers join a CNI network of its own, `cgear-podman`, on a bridge of its own
//!   (`cgpod-…`, a free /24 of 10.214.0.0/16) without masquerading, port mapping or firewall
//!   plugins: no iptables rule and no `cni-podman0`, nothing near the dockerd's bridge or its
//!   DOCKER chains. Build steps use the host's network (buildah's default through the API).
//! - The test registries (plain HTTP on 127.0.0.1, which Docker trusts and Podman does not)
//!   are `insecure` in its registries.conf; short names are never looked up on Docker Hub.
//! - Lower default rlimits (`nofile`, `nproc`): podman asks runc for the host's maximum, which
//!   some sandboxes refuse ("error setting rlimits for ready process"); the test detects that
//!   failure if it happens anyway and skips only the run.
//!
//! The busybox fixture is copied from the Docker engine (`docker save`, then a load through
//! Podman's API). The service is stopped, its bridge deleted and its folders removed when the
//! [`Podman`] is dropped; those of an xtask that was killed are cleaned by the next start.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::engine::{self, Engine};
use crate::{Result, Workspace, cmd, fixtures, host, registry, sys};

/// `unix://…` of the Podman service.
pub const ENV_HOST: &str = "CARGO_GEAR_TEST_PODMAN_HOST";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const NETWORK: &str = "cgear-podman";

/// A running `podman system service`; dropping it stops it and removes its files.
pub struct Podman {
    /// target/engine/podman-<pid>/: configuration, storage, log.
    dir: PathBuf,
    /// The short folder of its run root and socket.
    run: PathBuf,
    bridge: String,
    child: Option<Child>,
    /// `unix://…/podman.sock`.
    pub host: String,
}

impl Podman {
    /// Installs podman if needed, writes its configuration, starts the service, and loads the
    /// busybox fixture from `docker`; `registries` are the test registries' `HOST:PORT`.
    pub fn start(ws: &Workspace, docker: &Engine, registries: &[&str]) -> Result<Podman> {
        host::require("podman")?;
        let base = ws.target.join("engine");
        clean_stale(&base);
        let pid = std::process::id();
        let dir = base.join(format!("podman-{pid}"));
        let run = short_dir(pid);
        for d in [&dir, &run] {
            if d.exists() {
                fixtures::unmount_below(d);
                fs::remove_dir_all(d)?;
            }
        }
        fs::create_dir_all(dir.join("cni"))?;
        fs::create_dir_all(&run)?;
        let bridge = format!("cgpod-{pid:x}");
        let ip = host::program("ip").ok_or("`ip` (Debian's iproute2) is not installed")?;
        let routes = cmd::stdout(Command::new(ip).args(["-4", "route", "show", "table", "all"]))?;
        let subnet = engine::free_subnet(&routes, 214, &bridge)?;
        configure(&dir, &run, &bridge, &subnet, registries)?;

        let socket = run.join("podman.sock");
        let host = format!("unix://{}", socket.display());
        let log = fs::File::create(dir.join("service.log"))?;
        let mut service = Command::new("podman");
        service
            .args(["system", "service", "--time=0"])
            .arg(&host)
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        eprintln!("xtask: $ {}", cmd::display(&service));
        let child = service
            .spawn()
            .map_err(|e| format!("cannot start podman: {e}"))?;
        fs::write(dir.join("service.pid"), child.id().to_string())?;
        let mut podman = Podman {
            dir,
            run,
            bridge,
            child: Some(child),
            host,
        };
        podman.wait_until_up()?;
        podman.load(docker, fixtures::BUSYBOX)?;
        eprintln!(
            "xtask: Podman for the tests at {} (bridge {}, {subnet}.0/24)",
            podman.host, podman.bridge
        );
        Ok(podman)
    }

    /// Tells a test run where Podman is.
    pub fn export(&self, cmd: &mut Command) {
        cmd.env(ENV_HOST, &self.host);
    }

    fn wait_until_up(&mut self) -> Result {
        let started = Instant::now();
        loop {
            if engine::ping(&self.host) {
                return Ok(());
            }
            let child = self.child.as_mut().ok_or("podman is not running")?;
            let failure = if let Some(status) = child.try_wait()? {
                format!("podman exited ({status}) before answering")
            } else if started.elapsed() > START_TIMEOUT {
                format!("podman did not answer within {} s", START_TIMEOUT.as_secs())
            } else if sys::interrupted() {
                "interrupted while waiting for podman".to_owned()
            } else {
                sleep(Duration::from_millis(200));
                continue;
            };
            let log = self.dir.join("service.log");
            return Err(format!(
                "{failure}; the end of {}:\n{}",
                log.display(),
                engine::log_tail(&log, 20)
            )
            .into());
        }
    }

    /// Copies `image` from the Docker engine (a podman short name resolves to the loaded
    /// `localhost/…` image).
    fn load(&self, docker: &Engine, image: &str) -> Result {
        let tar = self.dir.join("fixture.tar");
        cmd::run_quiet(
            docker
                .docker()
                .arg("save")
                .arg("--output")
                .arg(&tar)
                .arg(image),
        )?;
        cmd::run_quiet(
            Engine::at(&self.host)
                .docker()
                .arg("load")
                .arg("--input")
                .arg(&tar),
        )?;
        fs::remove_file(&tar)?;
        Ok(())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            sys::send_signal(pid, sys::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while child.try_wait().map(|s| s.is_none()).unwrap_or(false) {
                if Instant::now() > deadline {
                    sys::send_signal(-pid, sys::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                sleep(Duration::from_millis(100));
            }
        }
        remove(&self.dir, &self.run, &self.bridge);
    }
}

/// The service's files, its bridge and its mounts, once it has stopped.
fn remove(dir: &Path, run: &Path, bridge: &str) {
    if let Some(ip) = host::program("ip")
        && cmd::succeeds(Command::new(&ip).args(["link", "show", bridge]))
    {
        cmd::succeeds(Command::new(&ip).args(["link", "delete", bridge]));
    }
    for d in [dir, run] {
        fixtures::unmount_below(d);
        let _ = fs::remove_dir_all(d);
    }
}

/// `/run/cargo-gear-podman-<pid>` (or under /tmp without root).
fn short_dir(pid: u32) -> PathBuf {
    let base = if sys::is_root() && Path::new("/run").is_dir() {
        "/run"
    } else {
        "/tmp"
    };
    PathBuf::from(format!("{base}/cargo-gear-podman-{pid}"))
}

/// containers.conf, storage.conf, registries.conf and the CNI network in `dir`.
fn configure(dir: &Path, run: &Path, bridge: &str, subnet: &str, registries: &[&str]) -> Result {
    let cni = dir.join("cni");
    fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{events}\"\n\
             tmp_dir = \"{tmp}\"\n\
             [network]\n\
             network_backend = \"cni\"\n\
             network_config_dir = \"{cni}\"\n\
             default_network = \"{NETWORK}\"\n",
            events = dir.join("events.log").display(),
            tmp = run.join("libpod").display(),
            cni = cni.display(),
        ),
    )?;
    fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"overlay\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
            run.join("storage").display(),
            dir.join("storage").display()
        ),
    )?;
    let mut conf = String::from("unqualified-search-registries = []\n");
    for addr in registries {
        conf += &format!("\n[[registry]]\nlocation = \"{addr}\"\ninsecure = true\n");
    }
    fs::write(dir.join("registries.conf"), conf)?;
    // JSON strings as Rust debug strings: the same for these plain paths and names.
    let network = format!(
        "{{\n  \"cniVersion\": \"0.4.0\",\n  \"name\": {NETWORK:?},\n  \"plugins\": [{{\n    \
         \"type\": \"bridge\", \"bridge\": {bridge:?}, \"isGateway\": false, \"ipMasq\": false,\n    \
         \"hairpinMode\": true,\n    \"ipam\": {{\"type\": \"host-local\", \"dataDir\": {ipam:?}, \
         \"routes\": [], \"ranges\": [[{{\"subnet\": \"{subnet}.0/24\"}}]]}}\n  }}]\n}}\n",
        ipam = dir.join("cni-ipam").display().to_string(),
    );
    fs::write(cni.join(format!("{NETWORK}.conflist")), network)?;
    Ok(())
}

/// Stops the services and removes the files of `podman-<pid>` folders whose xtask is gone.
fn clean_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("podman-")
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if registry::process_name(owner as i32).as_deref() == Some("xtask") {
            continue; // a concurrent `cargo xtask test`'s
        }
        let dir = entry.path();
        let run = short_dir(owner);
        let socket = run.join("podman.sock");
        // Only the service serving this socket: its pid may be another program's now.
        if let Some(pid) = fs::read_to_string(dir.join("service.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            && registry::process_name(pid).as_deref() == Some("podman")
            && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0)
                    .any(|a| a.ends_with(socket.as_os_str().as_encoded_bytes()))
            })
        {
            sys::send_signal(-pid, sys::SIGKILL);
            sleep(Duration::from_millis(500));
        }
        remove(&dir, &run, &format!("cgpod-{owner:x}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The iptables rules of every table, without counters.
    fn iptables() -> String {
        cmd::stdout(&mut Command::new("iptables-save"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(':'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Podman serves the Docker API with the fixture, runs a container on its own bridge, and
    /// leaves the host's firewall and the Docker engine's bridge as they were; stopped, it
    /// leaves nothing behind.
    #[test]
    fn podman_runs_beside_the_docker_engine_without_touching_it() {
        let Some(docker) = crate::testing::engine() else {
            return;
        };
        assert!(sys::is_root(), "this engine test needs root (podman)");
        let ws = Workspace::new();
        let rules = iptables();
        let podman = Podman::start(&ws, &docker, &["127.0.0.1:5999"]).unwrap();
        let (dir, run, bridge) = (
            podman.dir.clone(),
            podman.run.clone(),
            podman.bridge.clone(),
        );
        let version = cmd::stdout(Engine::at(&podman.host).docker().args([
            "version",
            "--format",
            "{{range .Server.Components}}{{.Name}} {{end}}",
        ]))
        .unwrap();
        assert!(version.contains("Podman Engine"), "{version}");
        let ran = cmd::stdout(Engine::at(&podman.host).docker().args([
            "run",
            "--rm",
            fixtures::BUSYBOX,
            "sh",
            "-c",
            "echo ran; ip -4 addr show eth0",
        ]));
        match ran {
            Ok(out) => {
                assert!(out.starts_with("ran"), "{out}");
                assert!(out.contains("inet 10.214."), "on its own network: {out}");
            }
            // Some sandboxes refuse the rlimits; the network was not the point then.
            Err(e) if e.to_string().contains("rlimit") => {
                eprintln!("note: podman cannot start containers here: {e}");
            }
            Err(e) => panic!("{e}"),
        }
        assert_eq!(iptables(), rules, "podman changed the firewall");
        drop(podman);
        assert!(!dir.exists() && !run.exists());
        assert!(!cmd::succeeds(
            Command::new("ip").args(["link", "show", &bridge])
        ));
        // The Docker engine still answers and builds on.
        assert!(docker.answers());
    }
}
