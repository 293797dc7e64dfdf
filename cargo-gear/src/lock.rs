//! The workspace build lock under `target/gear/`: two builds of one workspace run one after the other.

use std::fs::File;
use std::path::Path;

use crate::error::CliError;
use crate::output::Output;

/// Held for the duration of a build; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct BuildLock {
    _file: File,
}

impl BuildLock {
    /// Takes the lock, waiting (and saying so) while another build holds it.
    pub fn acquire(gear_dir: &Path, out: &Output) -> Result<BuildLock, CliError> {
        std::fs::create_dir_all(gear_dir).map_err(|e| CliError::io("create", gear_dir, e))?;
        let path = gear_dir.join("build.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                out.status(
                    "Blocking",
                    format!("waiting for file lock on {}", path.display()),
                );
                file.lock().map_err(|e| CliError::io("lock", &path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(CliError::io("lock", &path, e)),
        }
        Ok(BuildLock { _file: file })
    }
}
