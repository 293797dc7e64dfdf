//! Flywheel's own Python gear toolkit (`flywheel-gear-toolkit` from PyPI, which brings the newer
//! `fw-gear` along) in a private venv under `target/engine/fw-venv`, so that the end-to-end tests
//! can check that the `config.json` cargo-gear writes loads in it. Installed once, then reused.

use std::path::PathBuf;

use crate::pyvenv::Venv;
use crate::{Result, Workspace};

/// The requirement installed; a venv that has another version is reinstalled.
const PACKAGE: &str = "flywheel-gear-toolkit";
const VERSION: &str = "0.6.22";

/// The variable that gives the tests the venv's interpreter.
pub const ENV: &str = "CARGO_GEAR_TEST_FW_PYTHON";

/// The venv's python, with the toolkit installed (a no-op when it already is).
pub fn ensure(ws: &Workspace) -> Result<PathBuf> {
    Venv {
        name: "fw-venv",
        requirement: &format!("{PACKAGE}=={VERSION}"),
        check: &format!(
            "import importlib.metadata as m, flywheel_gear_toolkit, fw_gear; \
             assert m.version('{PACKAGE}') == '{VERSION}'"
        ),
    }
    .ensure(ws)
}
