//! The workspace build lock under `target/gear/`: two builds of one workspace run one after the other.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::output::Output;

/// Held for the duration of a build; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct BuildLock {
    _file: File,
}

/// The build lock (or the directory it lives in) cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot {action} {}", path.display())]
#[diagnostic(code("gear::build-lock"), help("{help}"))]
pub struct LockError {
    /// What was tried: `create the directory`, `open the build lock`, `lock`.
    action: &'static str,
    /// The directory or the lock file.
    path: PathBuf,
    /// What to do about it.
    help: String,
    #[source]
    source: std::io::Error,
}

impl LockError {
    fn new(action: &'static str, path: &Path, source: std::io::Error) -> LockError {
        let shown = path.display();
        let help = match source.kind() {
            ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
                format!(
                    "{shown} must be a file cargo-gear creates (and every path above it a directory): \
                     remove or rename what is there; no build holds a lock on it"
                )
            }
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => format!(
                "cargo-gear writes its state, logs and lock under the target directory: make \
                 {shown} writable, or build with CARGO_TARGET_DIR set to a writable directory"
            ),
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => format!(
                "the file system of {shown} is full: free some space (`cargo gear prune`, \
                 `cargo clean`) and build again"
            ),
            _ if action == "lock" => format!(
                "the file system of {shown} refuses file locks (some network file systems \
                 do): build with CARGO_TARGET_DIR on a local disk"
            ),
            _ => format!("check that cargo-gear can create and write {shown}"),
        };
        LockError {
            action,
            path: path.to_path_buf(),
            help,
            source,
        }
    }
}

impl BuildLock {
    /// Takes the lock, waiting (and saying so) while another build holds it.
    pub fn acquire(gear_dir: &Path, out: &Output) -> Result<BuildLock, LockError> {
        std::fs::create_dir_all(gear_dir)
            .map_err(|e| LockError::new("create the directory", gear_dir, e))?;
        let path = gear_dir.join("build.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::new("open the build lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                out.status(
                    "Blocking",
                    format!("waiting for file lock on {}", path.display()),
                );
                file.lock().map_err(|e| LockError::new("lock", &path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::new("lock", &path, e)),
        }
        Ok(BuildLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Output {
        Output {
            color: false,
            quiet: true,
        }
    }

    #[test]
    fn a_directory_in_place_of_the_lock_names_it_and_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("build.lock");
        std::fs::create_dir(&lock).unwrap();
        let e = BuildLock::acquire(dir.path(), &quiet()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot open the build lock {}", lock.display())
        );
        assert_eq!(e.source.kind(), ErrorKind::IsADirectory);
        assert!(e.help.contains("remove or rename"), "{}", e.help);
    }

    #[test]
    fn a_file_in_place_of_the_gear_directory_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let gear = dir.path().join("gear");
        std::fs::write(&gear, "").unwrap();
        let e = BuildLock::acquire(&gear, &quiet()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot create the directory {}", gear.display())
        );
        assert!(e.help.contains("remove or rename"), "{}", e.help);
    }

    #[test]
    fn the_lock_is_taken_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = BuildLock::acquire(dir.path(), &quiet()).unwrap();
        let path = dir.path().join("build.lock");
        let other = File::options().write(true).open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
    }
}
