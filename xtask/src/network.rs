//! Before the first build: whether a container on the engine reaches what the build downloads.
//!
//! Each need is probed by one short container on the engine's default network (where builds run
//! their steps) from the Debian fixture, which carries the host's apt and pip settings (mirror,
//! proxy, CA): apt's own `apt-helper` fetches the mirror's `Release.gpg`, pip looks the Flywheel
//! toolkit up in its index. Without needs, one container that runs `true` shows that containers
//! start at all (a vanished bridge fails there). What cannot be reached stops xtask with a message
//! that names it and the ways to provide it, instead of a failed `apt-get` minutes into a build.

use std::fmt;

use crate::engine::Engine;
use crate::fixtures::{self, host_config};

/// How long one probe waits for a connection or an answer, in seconds.
const TIMEOUT: &str = "10";

/// Something a build downloads from, and how to tell whether a container reaches it.
pub struct Need {
    /// What it is, as a user knows it ("the Debian mirror http://deb.debian.org/debian").
    what: String,
    /// Which build steps download from it.
    used_by: &'static str,
    /// The probe, run in the Debian fixture; exit 0 means reached.
    probe: Vec<String>,
}

impl Need {
    /// The Debian mirror the fixture's apt uses (the host's), for the layers' `packages`.
    pub fn debian_mirror(used_by: &'static str) -> Need {
        let (mirror, _) = host_config::mirrors();
        let timeout = format!("Acquire::http::Timeout={TIMEOUT}");
        let https_timeout = format!("Acquire::https::Timeout={TIMEOUT}");
        Need {
            what: format!("the Debian mirror {mirror}"),
            used_by,
            probe: [
                "/usr/lib/apt/apt-helper",
                "-o",
                &timeout,
                "-o",
                &https_timeout,
                "-o",
                "Acquire::Retries=0",
                "download-file",
                &format!("{mirror}/dists/bookworm/Release.gpg"),
                "/tmp/Release.gpg",
            ]
            .map(str::to_owned)
            .into(),
        }
    }

    /// The Python package index the fixture's pip uses (PyPI unless the host's pip settings name
    /// another), for the layers' `pip` packages.
    pub fn python_index(used_by: &'static str) -> Need {
        Need {
            what: "PyPI (or the index-url of the host's pip settings)".to_owned(),
            used_by,
            probe: [
                "python3",
                "-m",
                "pip",
                "index",
                "versions",
                "-vv",
                "--disable-pip-version-check",
                "--timeout",
                TIMEOUT,
                "--retries",
                "0",
                "flywheel-gear-toolkit",
            ]
            .map(str::to_owned)
            .into(),
        }
    }
}

/// Why the builds would fail on an engine: no container starts, or what containers cannot reach.
#[derive(Debug)]
pub enum Unreachable {
    /// docker could not start a container on the engine's default network.
    NoContainer {
        host: String,
        /// `cargo xtask demo`, …: what to run again.
        command: &'static str,
        error: String,
    },
    /// Containers start but do not reach these needs: (what, used by, error).
    Needs {
        host: String,
        command: &'static str,
        missing: Vec<(String, &'static str, String)>,
    },
}

impl std::error::Error for Unreachable {}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreachable::NoContainer {
                host,
                command,
                error,
            } => write!(
                f,
                "a container cannot start on the default network of the engine at {host}: \
                 {error}\nThe engine's bridge may be gone (a dockerd started with `--bridge none` \
                 deletes docker0): restart that engine, or unset DOCKER_HOST and run `{command}` \
                 again to let xtask start its own engine on a bridge of its own."
            ),
            Unreachable::Needs {
                host,
                command,
                missing,
            } => {
                writeln!(
                    f,
                    "containers on the engine at {host} cannot reach what the build downloads:"
                )?;
                for (what, used_by, error) in missing {
                    writeln!(f, "  - {what}, for {used_by}: {error}")?;
                }
                write!(
                    f,
                    "Give the containers a way there, then run `{command}` again; any one of:\n\
                     \x20 - a proxy: set http_proxy and https_proxy (or Acquire::http::Proxy in \
                     /etc/apt/apt.conf.d/ and proxy in pip.conf) on the host; xtask copies them \
                     into the Debian fixture every layer builds on\n\
                     \x20 - a mirror: a reachable Debian mirror in the host's \
                     /etc/apt/sources.list.d/ and a package index (index-url in pip.conf); the \
                     fixture uses the host's\n\
                     \x20 - prepared images: base images that already hold the packages, given to \
                     `cargo gear build --substitute IMAGE=PREPARED`"
                )
            }
        }
    }
}

/// What a command's builds download, checked on its engine before the first build.
pub struct Needs {
    /// The command to run again once the containers reach what they need (`cargo xtask demo`).
    pub command: &'static str,
    pub list: Vec<Need>,
}

impl Needs {
    /// What building examples/monorepo downloads (the demo, the end-to-end tests): the apt and pip
    /// packages of its layers.
    pub fn monorepo(command: &'static str) -> Needs {
        Needs {
            command,
            list: vec![
                Need::debian_mirror("the `packages` of examples/monorepo's layers (apt-get)"),
                Need::python_index("the `pip` packages of examples/monorepo's layers"),
            ],
        }
    }

    /// Nothing but containers that start (the benchmark's builds download nothing).
    pub fn none(command: &'static str) -> Needs {
        Needs {
            command,
            list: Vec::new(),
        }
    }

    /// Runs each need's probe in a container on `engine` (on `network`, else the default network).
    pub fn check(&self, engine: &Engine, network: Option<&str>) -> Result<(), Unreachable> {
        let no_container = |error| Unreachable::NoContainer {
            host: engine.host.clone(),
            command: self.command,
            error,
        };
        if self.list.is_empty() {
            return match run(engine, network, fixtures::BUSYBOX, &["true"]) {
                Ok(()) => Ok(()),
                Err(Failed::Probe(error) | Failed::Docker(error)) => Err(no_container(error)),
            };
        }
        let mut missing = Vec::new();
        for need in &self.list {
            let probe: Vec<&str> = need.probe.iter().map(String::as_str).collect();
            match run(engine, network, fixtures::DEBIAN_PYTHON, &probe) {
                Ok(()) => {}
                Err(Failed::Probe(error)) => {
                    missing.push((need.what.clone(), need.used_by, error));
                }
                Err(Failed::Docker(error)) => return Err(no_container(error)),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Unreachable::Needs {
                host: engine.host.clone(),
                command: self.command,
                missing,
            })
        }
    }

    /// What was checked, for a line of output: "its containers reach the Debian mirror … and PyPI".
    pub fn describe(&self) -> String {
        if self.list.is_empty() {
            return "its containers start".to_owned();
        }
        let whats: Vec<&str> = self.list.iter().map(|n| n.what.as_str()).collect();
        format!("its containers reach {}", whats.join(" and "))
    }
}

/// How a probe failed, with the line of its output that says why.
enum Failed {
    /// The probe ran and failed.
    Probe(String),
    /// docker failed (exit code 125): the container did not start.
    Docker(String),
}

/// `docker run --rm [--network NETWORK] IMAGE PROBE…` on `engine`.
fn run(engine: &Engine, network: Option<&str>, image: &str, probe: &[&str]) -> Result<(), Failed> {
    let mut docker = engine.docker();
    docker.args(["run", "--rm"]);
    if let Some(network) = network {
        docker.args(["--network", network]);
    }
    docker.arg(image).args(probe);
    let out = docker
        .output()
        .map_err(|e| Failed::Docker(format!("cannot run docker: {e}")))?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(125) => Err(Failed::Docker(reason(&text(&out.stderr)))),
        _ => Err(Failed::Probe(reason(&format!(
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )))),
    }
}

/// The one line of a failed probe's output that says why: apt's, pip's or docker's error.
fn reason(output: &str) -> String {
    let lines: Vec<&str> = output.lines().map(str::trim).collect();
    let found = lines.iter().find_map(|line| {
        if let Some(rest) = line.strip_prefix("E: Failed to fetch ") {
            // "E: Failed to fetch URL  REASON"
            return Some(rest.split_once("  ").map_or(rest, |(_, r)| r).trim());
        }
        if line.starts_with("Could not fetch URL ") {
            let cause = line
                .split_once("Failed to establish a new connection: ")
                .map(|(_, c)| c.split("'))").next().unwrap_or(c))
                .or_else(|| line.split_once(": ").map(|(_, c)| c));
            return Some(cause.unwrap_or(line).trim_end_matches(" - skipping"));
        }
        line.strip_prefix("docker: Error response from daemon: ")
    });
    found
        .or_else(|| lines.iter().rev().find(|l| !l.is_empty()).copied())
        .unwrap_or("no output")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine of `cargo xtask test` and the message `command`'s check gives on `network`,
    /// or `None` when the engine tests are skipped.
    fn message_on(network: &str, command: &'static str) -> Option<(String, String)> {
        let engine = crate::testing::engine()?;
        let error = Needs::monorepo(command)
            .check(&engine, Some(network))
            .expect_err("the check fails");
        Some((engine.host.clone(), error.to_string()))
    }

    /// A container without network (`--network none`, the engine and fixtures of `cargo xtask
    /// test`) stops the demo before its first build, naming what is missing and how to provide it.
    #[test]
    fn a_container_without_network_gives_the_up_front_message() {
        let Some((host, message)) = message_on("none", "cargo xtask demo") else {
            return;
        };
        let (mirror, _) = host_config::mirrors();
        let mirror_host = mirror.split('/').nth(2).expect("a URL with a host");
        assert_eq!(
            message,
            format!(
                "containers on the engine at {host} cannot reach what the build downloads:
  - the Debian mirror {mirror}, for the `packages` of examples/monorepo's layers (apt-get): \
Temporary failure resolving '{mirror_host}'
  - PyPI (or the index-url of the host's pip settings), for the `pip` packages of \
examples/monorepo's layers: [Errno -3] Temporary failure in name resolution
Give the containers a way there, then run `cargo xtask demo` again; any one of:
  - a proxy: set http_proxy and https_proxy (or Acquire::http::Proxy in /etc/apt/apt.conf.d/ \
and proxy in pip.conf) on the host; xtask copies them into the Debian fixture every layer builds on
  - a mirror: a reachable Debian mirror in the host's /etc/apt/sources.list.d/ and a package \
index (index-url in pip.conf); the fixture uses the host's
  - prepared images: base images that already hold the packages, given to \
`cargo gear build --substitute IMAGE=PREPARED`"
            )
        );
    }

    /// A container that docker cannot start (here: on a network that does not exist; in issue 16:
    /// on a bridge another dockerd deleted) stops xtask with docker's error and the way out.
    #[test]
    fn a_container_that_cannot_start_gives_the_up_front_message() {
        let Some((host, message)) = message_on("xtask-no-such-network", "cargo xtask test") else {
            return;
        };
        assert_eq!(
            message,
            format!(
                "a container cannot start on the default network of the engine at {host}: network \
                 xtask-no-such-network not found\nThe engine's bridge may be gone (a dockerd \
                 started with `--bridge none` deletes docker0): restart that engine, or unset \
                 DOCKER_HOST and run `cargo xtask test` again to let xtask start its own engine \
                 on a bridge of its own."
            )
        );
    }

    /// On the same engine's default network, the containers of `cargo xtask test` reach both.
    #[test]
    fn containers_on_the_default_network_reach_the_mirror_and_the_index() {
        let Some(engine) = crate::testing::engine() else {
            return;
        };
        if let Err(e) = Needs::monorepo("cargo xtask test").check(&engine, None) {
            panic!("{e}");
        }
    }

    #[test]
    fn reason_of_an_apt_failure_is_apts_own() {
        let out = "Err:1 http://deb.debian.org/debian/dists/bookworm/Release.gpg\n  \
                   Temporary failure resolving 'deb.debian.org'\n\nE: Failed to fetch \
                   http://deb.debian.org/debian/dists/bookworm/Release.gpg  Temporary failure \
                   resolving 'deb.debian.org'\nE: Download Failed\n";
        assert_eq!(reason(out), "Temporary failure resolving 'deb.debian.org'");
    }

    #[test]
    fn reason_of_a_pip_failure_is_the_connection_error() {
        let out = "Fetching project page and analyzing links: https://pypi.org/simple/x/\n\
                   Could not fetch URL https://pypi.org/simple/x/: connection error: \
                   HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: \
                   /simple/x/ (Caused by NewConnectionError('<pip._vendor.urllib3.connection.\
                   HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] \
                   Temporary failure in name resolution')) - skipping\n\
                   ERROR: No matching distribution found for x\n";
        assert_eq!(
            reason(out),
            "[Errno -3] Temporary failure in name resolution"
        );
    }

    #[test]
    fn reason_of_a_container_that_does_not_start_is_dockers() {
        let out = "\ndocker: Error response from daemon: failed to create endpoint x on network \
                   bridge: could not find bridge docker0: route ip+net: no such network interface\n\n\
                   Run 'docker run --help' for more information\n";
        assert_eq!(
            reason(out),
            "failed to create endpoint x on network bridge: could not find bridge docker0: \
             route ip+net: no such network interface"
        );
    }
}
