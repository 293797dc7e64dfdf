//! The one error type of the binary, and how each kind maps to an exit code.

use std::path::PathBuf;

use gear_spec::Problems;
use gear_spec::plan::PlanError;

/// Everything that can end a command unsuccessfully.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CliError {
    /// Problems in Gear.toml files.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] Problems),
    /// Planning failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanError),
    /// The workspace could not be found or read.
    #[error("{message}")]
    #[diagnostic(code(gear::workspace), help("{help}"))]
    Workspace {
        /// What went wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// Arguments that make no sense together or name nothing.
    #[error("{message}")]
    #[diagnostic(code(gear::usage), help("{help}"))]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    #[diagnostic(code(gear::io))]
    Io {
        /// What we tried.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The workspace build lock could not be taken.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// Gear.lock lacks an entry `--locked` requires, or an entry could not be resolved.
    #[error("{message}")]
    #[diagnostic(code("gear::base-lock"), help("{help}"))]
    BaseLock {
        /// What is missing or wrong.
        message: String,
        /// What to do.
        help: String,
    },
    /// Gear.lock could not be written.
    #[error(transparent)]
    #[diagnostic(transparent)]
    LockWrite(#[from] gear_spec::gear_lock::WriteError),
    /// The Docker engine could not be used.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// Layers failed to build; they were reported as they failed.
    #[error("{failed} layer(s) failed to build; {skipped} skipped")]
    #[diagnostic(
        code("gear::build-failed"),
        help(
            "the failing step and its output are shown above; full logs are under target/gear/logs/"
        )
    )]
    BuildFailed {
        /// How many failed.
        failed: usize,
        /// How many were not attempted.
        skipped: usize,
    },
    /// The gear ran and exited non-zero; `cargo gear run` exits with the same code.
    #[error("gear `{gear}` exited with code {code}")]
    #[diagnostic(
        code("gear::gear-failed"),
        help("its output is above; its files are in the run directory")
    )]
    GearFailed {
        /// Which gear.
        gear: String,
        /// Its exit code.
        code: i64,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    #[diagnostic(
        code(gear::interrupted),
        help(
            "nothing was recorded for layers that did not finish; run the command again to continue"
        )
    )]
    Interrupted,
    /// A check found differences (`manifest --check`); details were already printed.
    #[error("{message}")]
    #[diagnostic(code(gear::check), help("{help}"))]
    CheckFailed {
        /// Summary.
        message: String,
        /// How to fix it.
        help: String,
    },
}

impl From<gear_spec::Problem> for CliError {
    fn from(problem: gear_spec::Problem) -> Self {
        CliError::Invalid(problem.into())
    }
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    /// A file error.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The process exit code: 2 for usage errors (like clap), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } => 2,
            CliError::Interrupted => 130,
            CliError::GearFailed { code, .. } => {
                u8::try_from(*code).ok().filter(|c| *c != 0).unwrap_or(1)
            }
            _ => 1,
        }
    }
}

/// An error and every cause under it on one line, `: `-separated, like ripgrep: the reason a
/// file could not be sent, or why the engine refused, is never lost behind a summary.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // `#[error(transparent)]` wrappers repeat their source's message.
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}
