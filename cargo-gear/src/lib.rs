//! cargo-gear: build Flywheel gears from declarative `Gear.toml` files.
//!
//! The binary is a thin shell: [`cli`] parses, [`request`] validates, [`commands`] do
//! the work over `gear-spec`'s plan, [`engine`] talks to Docker, [`error`] maps
//! failures to exit codes and [`output`] keeps data on stdout and people on stderr.

pub mod bases;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod diagnostics;
pub mod engine;
pub mod error;
pub mod local_run;
pub mod lock;
pub mod output;
pub mod progress;
pub mod request;
pub mod rust;
pub mod schedule;
pub mod team_registry;
pub mod workspace;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cargo, Command, GlobalArgs};
use crate::error::CliError;
use crate::request::Session;

/// Runs `cargo gear` with the process arguments and returns its exit code.
pub fn main() -> ExitCode {
    let Cargo::Gear(args) = Cargo::parse();
    install_report_handler(&args.global);
    match run(args.global, args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            output::stderr(&format!("{:?}\n", miette::Report::new(e)));
            ExitCode::from(code)
        }
    }
}

/// Runs one command.
pub fn run(global: GlobalArgs, command: Command) -> Result<(), CliError> {
    let cwd = std::env::current_dir().map_err(|e| CliError::io("read", ".", e))?;
    match command {
        Command::Init(args) => commands::init::run(&global, &cwd, &args),
        Command::Import(args) => commands::import::run(&global, &cwd, &args),
        Command::Clean(args) => commands::clean::run(&global, &cwd, &args),
        Command::Completions { shell } => {
            commands::completions::run(shell);
            Ok(())
        }
        // Their failures are data too (`--format json`): they load the session themselves.
        Command::Validate(args) => commands::validate::run(&global, &cwd, &args),
        Command::Why(args) => commands::why::run(&global, &cwd, &args),
        command => {
            let session = Session::load(&global, &cwd)?;
            let result = run_loaded(&session, &global, command, &cwd);
            session.end();
            result
        }
    }
}

/// The commands that work on the loaded workspace.
fn run_loaded(
    session: &Session,
    global: &GlobalArgs,
    command: Command,
    cwd: &Path,
) -> Result<(), CliError> {
    if matches!(
        command,
        Command::Plan { .. }
            | Command::Push(_)
            | Command::Prune(_)
            | Command::Build(_)
            | Command::Update { .. }
            | Command::Run(_)
            | Command::Shell(_)
    ) {
        session.prefetch_engine()?;
    }
    match command {
        Command::Graph { format } => {
            commands::graph::run(session, format);
            Ok(())
        }
        Command::Dockerfile { selection, write } => {
            commands::dockerfile::run(session, &selection, write)
        }
        Command::Manifest { selection, check } => {
            commands::manifest::run(session, &selection, check)
        }
        Command::Plan {
            selection,
            format,
            check_registry,
        } => commands::plan::run(session, &selection, format, check_registry),
        Command::Ci { selection, format } => {
            commands::ci::run(session, &selection, format, &global.substitute)
        }
        Command::Push(args) => commands::push::run(session, &args),
        Command::Prune(args) => commands::prune::run(session, &args),
        Command::Build(args) => commands::build::run(session, &args),
        Command::Update { selection } => commands::update::run(session, &selection),
        Command::Run(args) => commands::run::run(session, &args, cwd),
        Command::Shell(args) => commands::shell::run(session, &args, cwd),
        Command::Config(args) => commands::config::run(session, &args, cwd),
        Command::Init(_)
        | Command::Import(_)
        | Command::Clean(_)
        | Command::Completions { .. }
        | Command::Validate(_)
        | Command::Why(_) => unreachable!("handled above"),
    }
}

/// Diagnostics like cargo's: colored when allowed, plain graphical otherwise, 100 columns
/// ([`gear_spec::diagnostic::report_handler`], the one the fuzzer renders with); many problems
/// rendered each like one ([`diagnostics::Handler`]).
fn install_report_handler(global: &GlobalArgs) {
    let color = output::Output::new(global.color, global.quiet).color;
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(diagnostics::Handler(gear_spec::diagnostic::report_handler(
            color,
        )))
    }));
}
