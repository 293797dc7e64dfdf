//! Flywheel's own Python gear toolkit (`flywheel-gear-toolkit` from PyPI, which brings the newer
//! `fw-gear` along) in a private venv under `target/engine/fw-venv`, so that the end-to-end tests
//! can check that the `config.json` cargo-gear writes loads in it. Installed once, then reused.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::Command;

use crate::{Result, Workspace, cmd, host};

/// The requirement installed; a venv that has another version is reinstalled.
const PACKAGE: &str = "flywheel-gear-toolkit";
const VERSION: &str = "0.6.22";

/// The variable that gives the tests the venv's interpreter.
pub const ENV: &str = "CARGO_GEAR_TEST_FW_PYTHON";

/// The venv's python, with the toolkit installed (a no-op when it already is).
pub fn ensure(ws: &Workspace) -> Result<PathBuf> {
    let dir = ws.target.join("engine");
    fs::create_dir_all(&dir)?;
    let venv = dir.join("fw-venv");
    let python = venv.join("bin/python");
    // Concurrent xtask runs of one workspace install once.
    let lock = File::create(dir.join("fw-venv.lock"))?;
    if lock.try_lock().is_err() {
        eprintln!("xtask: waiting for another xtask that is installing {PACKAGE}…");
        lock.lock()?;
    }
    if installed(&python) {
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
            .arg(format!("{PACKAGE}=={VERSION}")),
    )?;
    if !installed(&python) {
        return Err(format!(
            "{PACKAGE} {VERSION} is still not importable from {}",
            python.display()
        )
        .into());
    }
    Ok(python)
}

/// Whether `python` has the toolkit, at the pinned version, importable.
fn installed(python: &std::path::Path) -> bool {
    let check = format!(
        "import importlib.metadata as m, flywheel_gear_toolkit, fw_gear; \
         assert m.version('{PACKAGE}') == '{VERSION}'"
    );
    python.is_file() && cmd::succeeds(Command::new(python).args(["-W", "ignore", "-c", &check]))
}
