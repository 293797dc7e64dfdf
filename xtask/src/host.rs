//! The host's tools: finding programs, and installing the Debian packages xtask needs with apt-get.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cmd, sys};

/// A Debian package, with a check that tells whether what xtask uses of it is there.
type Package = (&'static str, fn() -> bool);

/// Every Debian package the engine and fixtures need.
pub const PACKAGES: [Package; 7] = [
    ("docker.io", || {
        program("dockerd").is_some() && program("docker").is_some()
    }),
    // ip, for the private engine's own bridge.
    ("iproute2", || program("ip").is_some()),
    ("debootstrap", || program("debootstrap").is_some()),
    ("busybox-static", || static_busybox().is_some()),
    ("docker-registry", || program("docker-registry").is_some()),
    // htpasswd, for the registry with basic auth.
    ("apache2-utils", || program("htpasswd").is_some()),
    // The certificates of the engine's TLS listener (tls.rs).
    ("openssl", || program("openssl").is_some()),
];

/// Debian packages of other tests, installed only when those run: Podman, the second engine
/// (podman.rs).
const TEST_PACKAGES: [Package; 1] = [("podman", || program("podman").is_some())];

/// What a developer without root has to do to get an engine, printed when xtask cannot.
pub const HOW_TO_GET_AN_ENGINE: &str = "\
xtask starts its own Docker engine only as root (it installs Debian's docker.io with apt-get
and runs a private dockerd under target/engine/). As a regular user, either
  - run it as root:             sudo -E cargo xtask test
  - or start an engine yourself:
        sudo apt-get install -y docker.io debootstrap busybox-static docker-registry apache2-utils
        sudo systemctl start docker        # or: sudo dockerd &
        sudo usermod -aG docker \"$USER\"    # then log in again
    and re-run `cargo xtask test` (it reuses $DOCKER_HOST, the current docker context or
    /var/run/docker.sock).";

/// Finds `name` on PATH, or in the sbin folders a non-login root shell may lack.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The statically linked busybox (Debian's busybox-static), which runs in an empty image.
pub fn static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| is_static_elf(p))
}

/// True for a 64-bit little-endian ELF file without a PT_INTERP program header.
fn is_static_elf(path: &Path) -> bool {
    let Ok(elf) = fs::read(path) else {
        return false;
    };
    if elf.len() < 64 || &elf[..6] != b"\x7fELF\x02\x01" {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        elf.get(at..at + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// The packages of [`PACKAGES`] that are not installed.
pub fn missing_packages() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .filter(|(_, present)| !present())
        .map(|(pkg, _)| *pkg)
        .collect()
}

/// Installs `package` unless it is there; without root or apt-get, says what to install instead.
pub fn require(package: &str) -> Result {
    let (_, present) = PACKAGES
        .iter()
        .chain(&TEST_PACKAGES)
        .find(|(p, _)| *p == package)
        .expect("a known package");
    if present() {
        return Ok(());
    }
    if !can_install() {
        return Err(format!(
            "xtask needs Debian's `{package}`: run `sudo apt-get install -y {package}`"
        )
        .into());
    }
    apt_install(&[package])
}

/// Whether xtask may install packages itself: root, on a system with apt-get.
pub fn can_install() -> bool {
    sys::is_root() && program("apt-get").is_some()
}

/// `apt-get update && apt-get install -y PACKAGES`, without starting any service they bring.
///
/// Debian starts a package's service on install unless /usr/sbin/policy-rc.d says no; xtask runs its
/// own dockerd, and a system docker-registry would hold the port of the registry tests later.
pub fn apt_install(packages: &[&str]) -> Result {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        fs::write(
            policy,
            "#!/bin/sh\n# written by cargo-gear's xtask during apt-get install\nexit 101\n",
        )?;
        cmd::run(Command::new("chmod").args(["0755"]).arg(policy))?;
    }
    let result = (|| {
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
        cmd::run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    })();
    if own_policy {
        let _ = fs::remove_file(policy);
    }
    result?;
    if packages.contains(&"docker-registry") {
        disable_service("docker-registry");
    }
    Ok(())
}

/// Stops and disables a system service, best effort, under systemd or sysvinit.
fn disable_service(name: &str) {
    if Path::new("/run/systemd/system").exists() {
        cmd::succeeds(Command::new("systemctl").args(["disable", "--now", name]));
    } else if Path::new("/etc/init.d").join(name).exists() {
        cmd::succeeds(Command::new("service").args([name, "stop"]));
        cmd::succeeds(Command::new("update-rc.d").args([name, "disable"]));
    }
}
