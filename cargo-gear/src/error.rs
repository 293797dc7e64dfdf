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

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Self {
        CliError::Usage { message: message.into(), help: help.into() }
    }

    /// A file error.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io { action, path: path.into(), source }
    }

    /// The process exit code: 2 for usage errors (like clap), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage { .. } => 2,
            _ => 1,
        }
    }
}
