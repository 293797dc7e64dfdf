//! Flywheel's gear runtime for Rust gears, the counterpart of Python's
//! `flywheel_gear_toolkit.GearContext`: the gear's base directory, its `config.json` with
//! the configuration deserialized into the gear's own type, its file inputs and its output
//! directory.
//!
//! Flywheel starts a gear in `/flywheel/v0` and writes `config.json` there:
//!
//! ```json
//! {"config": {"decimals": 3},
//!  "inputs": {"image": {"base": "file",
//!                       "location": {"path": "/flywheel/v0/input/image/t1.nii", "name": "t1.nii"}}},
//!  "destination": {"type": "acquisition", "id": "…"}}
//! ```
//!
//! `$FLYWHEEL` overrides the base directory, so a gear runs outside its image against a
//! scratch directory laid out the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Where Flywheel puts a gear when `$FLYWHEEL` is not set.
pub const DEFAULT_BASE_DIR: &str = "/flywheel/v0";

/// Exit code of a gear whose job is wrong (bad config, missing input): the user's to fix.
pub const EXIT_BAD_JOB: i32 = 2;
/// Exit code of a gear whose input could not be processed.
pub const EXIT_FAILED: i32 = 1;

/// A problem the gear reports as one clear line, with the exit code it ends with.
#[derive(Debug)]
pub struct GearError {
    /// What went wrong, for the job log.
    pub message: String,
    /// [`EXIT_BAD_JOB`] or [`EXIT_FAILED`].
    pub code: i32,
}

impl GearError {
    /// The job is wrong (configuration, inputs).
    pub fn bad_job(message: impl Into<String>) -> GearError {
        GearError {
            message: message.into(),
            code: EXIT_BAD_JOB,
        }
    }

    /// The input could not be processed.
    pub fn failed(message: impl Into<String>) -> GearError {
        GearError {
            message: message.into(),
            code: EXIT_FAILED,
        }
    }
}

impl fmt::Display for GearError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `config.json` as Flywheel writes it, with the gear's configuration type `C`.
#[derive(Debug, Deserialize)]
struct ConfigJson<C> {
    config: C,
    #[serde(default)]
    inputs: BTreeMap<String, Input>,
}

/// One entry of `inputs`.
#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    /// `file`, `context` or `api-key`.
    pub base: String,
    /// Where a file input is.
    pub location: Option<Location>,
}

/// A file input's place.
#[derive(Debug, Clone, Deserialize)]
pub struct Location {
    /// Its path in the image (`/flywheel/v0/input/NAME/FILE`).
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
}

/// A running gear: its base directory, configuration and inputs.
#[derive(Debug)]
pub struct GearContext<C> {
    /// `$FLYWHEEL`, or `/flywheel/v0`.
    pub base: PathBuf,
    /// The `config` object of `config.json`.
    pub config: C,
    inputs: BTreeMap<String, Input>,
}

impl<C: DeserializeOwned> GearContext<C> {
    /// Reads `config.json` from `$FLYWHEEL` (default `/flywheel/v0`).
    pub fn load() -> Result<GearContext<C>, GearError> {
        let base = std::env::var_os("FLYWHEEL")
            .filter(|b| !b.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_BASE_DIR), PathBuf::from);
        GearContext::load_from(&base)
    }

    /// Reads `base/config.json`.
    pub fn load_from(base: &Path) -> Result<GearContext<C>, GearError> {
        let path = base.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| GearError::bad_job(format!("cannot read {}: {e}", path.display())))?;
        let json: ConfigJson<C> = serde_json::from_str(&text)
            .map_err(|e| GearError::bad_job(format!("invalid {}: {e}", path.display())))?;
        Ok(GearContext {
            base: base.to_path_buf(),
            config: json.config,
            inputs: json.inputs,
        })
    }
}

impl<C> GearContext<C> {
    /// The file of input `name`, under this context's base directory (so that a local run
    /// with `$FLYWHEEL` finds it where Flywheel would have put it).
    pub fn input_path(&self, name: &str) -> Result<PathBuf, GearError> {
        let location = self
            .inputs
            .get(name)
            .and_then(|i| i.location.as_ref())
            .ok_or_else(|| GearError::bad_job(format!("input `{name}` is missing")))?;
        Ok(self.base.join("input").join(name).join(&location.name))
    }

    /// The output directory, created if needed.
    pub fn output_dir(&self) -> Result<PathBuf, GearError> {
        let dir = self.base.join("output");
        std::fs::create_dir_all(&dir)
            .map_err(|e| GearError::failed(format!("cannot create {}: {e}", dir.display())))?;
        Ok(dir)
    }
}

/// Runs a gear's `main`, printing its error and exiting with its code.
pub fn run(main: impl FnOnce() -> Result<(), GearError>) -> ! {
    match main() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Config {
        decimals: u32,
    }

    #[test]
    fn reads_config_and_inputs_under_its_base() {
        let base = std::env::temp_dir().join(format!("flywheel-context-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(
            base.join("config.json"),
            r#"{"config": {"decimals": 2}, "inputs": {"image": {"base": "file",
                "location": {"path": "/flywheel/v0/input/image/t1.nii", "name": "t1.nii"}}},
                "destination": {"type": "acquisition", "id": "x"}}"#,
        )
        .unwrap();
        let gear: GearContext<Config> = GearContext::load_from(&base).unwrap();
        assert_eq!(gear.config.decimals, 2);
        assert_eq!(gear.input_path("image").unwrap(), base.join("input/image/t1.nii"));
        assert_eq!(gear.input_path("other").unwrap_err().code, EXIT_BAD_JOB);
        std::fs::write(base.join("config.json"), r#"{"config": {}}"#).unwrap();
        let bad = GearContext::<Config>::load_from(&base).unwrap_err();
        assert!(bad.message.contains("missing field `decimals`"), "{bad}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
