//! Two throwaway Docker registries for the registry tests (`cargo gear push`, `--cache-from`,
//! `--cache-to`, `plan --check-registry`): Debian's `docker-registry` on 127.0.0.1, one open and
//! one behind htpasswd basic auth with a user and password made for this run.
//!
//! Each lives in `target/engine/registry-{plain,auth}-<xtask pid>/` (config, htpasswd, log,
//! storage) on a free port, and is stopped when the [`Registries`] is dropped: at the end of the
//! run, on an error, and after a trapped Ctrl-C. Directories left by an xtask that was killed are
//! cleaned (and their registries stopped) by the next start. Docker engines treat registries on
//! 127.0.0.0/8 as insecure (plain http), so the engine needs no configuration, as long as it runs
//! on this host.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{Result, Workspace, cmd, host, sys};

/// `HOST:PORT` of the registry without auth.
pub const ENV_REGISTRY: &str = "CARGO_GEAR_TEST_REGISTRY";
/// `HOST:PORT` of the registry with basic auth, and its user and password.
pub const ENV_AUTH_REGISTRY: &str = "CARGO_GEAR_TEST_AUTH_REGISTRY";
pub const ENV_AUTH_USER: &str = "CARGO_GEAR_TEST_AUTH_USER";
pub const ENV_AUTH_PASSWORD: &str = "CARGO_GEAR_TEST_AUTH_PASSWORD";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const PIDFILE: &str = "registry.pid";

/// The two running registries; dropping this stops both.
pub struct Registries {
    plain: Registry,
    auth: Registry,
    user: String,
    password: String,
}

/// One `docker-registry serve` child.
struct Registry {
    dir: PathBuf,
    addr: String,
    child: Option<Child>,
}

impl Registries {
    /// Installs `docker-registry` and `apache2-utils` (htpasswd) if needed, and starts both registries.
    pub fn start(ws: &Workspace) -> Result<Registries> {
        host::require("docker-registry")?;
        host::require("apache2-utils")?;
        let base = ws.target.join("engine");
        fs::create_dir_all(&base)?;
        clean_stale(&base);
        let user = format!("cargo-gear-{}", random_hex(4)?);
        let password = random_hex(24)?;
        let pid = std::process::id();
        let plain = Registry::start(&base.join(format!("registry-plain-{pid}")), None)?;
        let htpasswd = bcrypt_line(&user, &password)?;
        let auth = Registry::start(&base.join(format!("registry-auth-{pid}")), Some(&htpasswd))?;
        eprintln!(
            "xtask: registries for the tests: {} (open), {} (basic auth, user {user})",
            plain.addr, auth.addr
        );
        Ok(Registries {
            plain,
            auth,
            user,
            password,
        })
    }

    /// `HOST:PORT` of both registries.
    pub fn addrs(&self) -> [&str; 2] {
        [&self.plain.addr, &self.auth.addr]
    }

    /// Tells a test run where the registries are.
    pub fn export(&self, cmd: &mut Command) {
        cmd.env(ENV_REGISTRY, &self.plain.addr)
            .env(ENV_AUTH_REGISTRY, &self.auth.addr)
            .env(ENV_AUTH_USER, &self.user)
            .env(ENV_AUTH_PASSWORD, &self.password);
    }
}

impl Registry {
    /// Starts a registry with its files in `dir` (emptied first) on a free port of 127.0.0.1,
    /// behind basic auth when given an htpasswd line; waits until `/v2/` answers.
    fn start(dir: &Path, htpasswd: Option<&str>) -> Result<Registry> {
        let program = host::program("docker-registry").ok_or("docker-registry is not installed")?;
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir.join("data"))?;
        let auth = match htpasswd {
            Some(line) => {
                fs::write(dir.join("htpasswd"), format!("{line}\n"))?;
                format!(
                    "auth:\n  htpasswd:\n    realm: cargo-gear-test\n    path: {}\n",
                    dir.join("htpasswd").display()
                )
            }
            None => String::new(),
        };
        // Another program may take the port between our probe and the registry's bind: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let addr = format!("127.0.0.1:{port}");
            let config = dir.join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                     delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
                     http:\n  addr: {addr}\n  secret: {}\n{auth}",
                    dir.join("data").display(),
                    random_hex(16)?,
                ),
            )?;
            let log = dir.join("registry.log");
            let log_file = File::create(&log)?;
            let mut serve = Command::new(&program);
            serve
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                // Its own process group, like dockerd: a Ctrl-C reaches xtask, which stops it.
                .process_group(0);
            eprintln!("xtask: $ {} (log: {})", cmd::display(&serve), log.display());
            let child = serve
                .spawn()
                .map_err(|e| format!("cannot start docker-registry: {e}"))?;
            fs::write(dir.join(PIDFILE), child.id().to_string())?;
            let mut registry = Registry {
                dir: dir.to_owned(),
                addr,
                child: Some(child),
            };
            match registry.wait_until_up() {
                Ok(()) => return Ok(registry),
                Err(e) => {
                    registry.stop();
                    last_error = format!(
                        "{e}; the end of {}:\n{}",
                        log.display(),
                        crate::engine::log_tail(&log, 20)
                    );
                    if sys::interrupted() {
                        break;
                    }
                }
            }
        }
        Err(format!(
            "the registry in {} did not start: {last_error}",
            dir.display()
        )
        .into())
    }

    /// Polls `GET /v2/` until it answers (200 open, 401 with auth).
    fn wait_until_up(&mut self) -> Result {
        let started = Instant::now();
        loop {
            if matches!(v2_status(&self.addr), Some(200 | 401)) {
                return Ok(());
            }
            let child = self.child.as_mut().expect("a started registry");
            if let Some(status) = child.try_wait()? {
                return Err(format!("docker-registry exited ({status}) before answering").into());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "docker-registry did not answer at http://{}/v2/ within {} s",
                    self.addr,
                    START_TIMEOUT.as_secs()
                )
                .into());
            }
            if sys::interrupted() {
                return Err("interrupted while waiting for docker-registry".into());
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then SIGKILL after a while; the storage goes, the config and log stay until
    /// the next start.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate(child.id() as i32, || {
            child.try_wait().map(|s| s.is_none()).unwrap_or(false)
        });
        let _ = child.wait();
        let _ = fs::remove_file(self.dir.join(PIDFILE));
        let _ = fs::remove_dir_all(self.dir.join("data"));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if self.child.is_some() {
            eprintln!("xtask: stopping the registry at {}", self.addr);
            self.stop();
        }
    }
}

/// SIGTERM to `pid`; SIGKILL if it still runs after [`STOP_TIMEOUT`].
fn terminate(pid: i32, mut alive: impl FnMut() -> bool) {
    sys::send_signal(pid, sys::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while alive() {
        if Instant::now() > deadline {
            sys::send_signal(pid, sys::SIGKILL);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while alive() && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
            return;
        }
        sleep(Duration::from_millis(50));
    }
}

/// Removes the `registry-*-<pid>` directories of xtask runs that are gone, stopping their
/// registries if those still run (an xtask killed with SIGKILL cannot stop them itself).
fn clean_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("registry-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if process_name(owner).as_deref() == Some("xtask") {
            continue; // a concurrent `cargo xtask test`'s
        }
        let dir = entry.path();
        // Only the registry serving this directory's config: its pid may be another's now.
        let config = dir.join("config.yml");
        let ours = |pid: i32| {
            process_name(pid).as_deref() == Some("docker-registry")
                && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    c.split(|&b| b == 0)
                        .any(|a| a == config.as_os_str().as_encoded_bytes())
                })
        };
        if let Some(pid) = fs::read_to_string(dir.join(PIDFILE))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|&pid| ours(pid))
        {
            eprintln!("xtask: stopping a registry left by an earlier run (pid {pid})");
            terminate(pid, || ours(pid));
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

/// The command name of a live (not zombie) process, from /proc/PID/stat (at most 15 bytes).
pub fn process_name(pid: i32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.split_once(") ")?;
    let (_, comm) = head.split_once(" (")?;
    (!rest.starts_with('Z')).then(|| comm.to_owned())
}

/// A port of 127.0.0.1 that is free now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The status code of `GET http://ADDR/v2/`, or None when nothing answers.
fn v2_status(addr: &str) -> Option<u16> {
    let addr: SocketAddr = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// `user:$2y$…`: the registry's htpasswd auth accepts bcrypt only. The password goes through
/// htpasswd's stdin, never its command line.
fn bcrypt_line(user: &str, password: &str) -> Result<String> {
    let htpasswd = host::program("htpasswd").ok_or("htpasswd is not installed")?;
    let mut child = Command::new(htpasswd)
        .args(["-n", "-i", "-B", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run htpasswd: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(password.as_bytes())?;
    let out = child.wait_with_output()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !line.starts_with(&format!("{user}:$2")) {
        return Err(format!(
            "htpasswd -nB failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(line)
}

/// `bytes` random bytes from /dev/urandom, in hex.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
