//! Python packages from PyPI in private venvs under `target/engine/NAME`: made once, checked by
//! an import, reinstalled when the check fails. Flywheel's gear toolkit (`toolkit.rs`) and
//! BuildKit's Dockerfile parser (`dockerfile_oracle.rs`) live in one each.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, Workspace, cmd, host};

/// A venv to provide.
pub struct Venv<'a> {
    /// Directory name under `target/engine/`.
    pub name: &'a str,
    /// The pinned requirement, `package==version`.
    pub requirement: &'a str,
    /// Python code that succeeds when the venv has what is needed at the right version.
    pub check: &'a str,
}

impl Venv<'_> {
    /// The venv's python, with the requirement installed (a no-op when it already is).
    pub fn ensure(&self, ws: &Workspace) -> Result<PathBuf> {
        let dir = ws.target.join("engine");
        fs::create_dir_all(&dir)?;
        let venv = dir.join(self.name);
        let python = venv.join("bin/python");
        // Concurrent xtask runs of one workspace install once.
        let lock = File::create(dir.join(format!("{}.lock", self.name)))?;
        if lock.try_lock().is_err() {
            eprintln!(
                "xtask: waiting for another xtask that is installing {}…",
                self.requirement
            );
            lock.lock()?;
        }
        if self.installed(&python) {
            return Ok(python);
        }
        let python3 = host::program("python3").ok_or("python3 is not installed")?;
        let _ = fs::remove_dir_all(&venv);
        let mut create = Command::new(&python3);
        create.args(["-m", "venv"]).arg(&venv);
        if cmd::run_quiet(&mut create).is_err() {
            // Debian's python3 makes venvs with pip only with python3-venv.
            if !host::can_install() {
                return Err(format!(
                    "`{}` failed: install python3-venv (Debian) and re-run",
                    cmd::display(&create)
                )
                .into());
            }
            host::apt_install(&["python3-venv"])?;
            let _ = fs::remove_dir_all(&venv);
            cmd::run_quiet(&mut create)?;
        }
        cmd::run_quiet(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(self.requirement),
        )?;
        if !self.installed(&python) {
            return Err(format!(
                "{} is still not importable from {}",
                self.requirement,
                python.display()
            )
            .into());
        }
        Ok(python)
    }

    /// Whether `python` passes the check.
    fn installed(&self, python: &Path) -> bool {
        python.is_file()
            && cmd::succeeds(Command::new(python).args(["-W", "ignore", "-c", self.check]))
    }
}
