//! cargo-gear: build Flywheel gears from declarative `Gear.toml` files.
//!
//! The binary is a thin shell: [`cli`] parses, [`request`] validates, [`commands`] do
//! the work over `gear-spec`'s plan, [`engine`] talks to Docker, [`error`] maps
//! failures to exit codes and [`output`] keeps data on stdout and people on stderr.

pub mod cli;
pub mod commands;
pub mod credentials;
pub mod engine;
pub mod error;
pub mod job;
pub mod lock;
pub mod output;
pub mod progress;
pub mod registry;
pub mod request;
pub mod schedule;
pub mod workspace;

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
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(code)
        }
    }
}

/// Runs one command.
pub fn run(global: GlobalArgs, command: Command) -> Result<(), CliError> {
    let cwd = std::env::current_dir().map_err(|e| CliError::io("read", ".", e))?;
    if let Command::Init { name, from, path } = &command {
        return commands::init::run(&global, &cwd, name, from, path.as_deref());
    }
    if let Command::Clean(args) = &command {
        return commands::clean::run(&global, &cwd, args);
    }
    if let Command::Completions { shell } = command {
        commands::completions::run(shell);
        return Ok(());
    }
    let session = Session::load(&global, &cwd)?;
    match command {
        Command::Validate(a) => commands::validate::run(&session, &a.selection),
        Command::Graph { format } => {
            commands::graph::run(&session, format);
            Ok(())
        }
        Command::Dockerfile { selection, write } => {
            commands::dockerfile::run(&session, &selection, write)
        }
        Command::Manifest { selection, check } => {
            commands::manifest::run(&session, &selection, check)
        }
        Command::Plan {
            selection,
            format,
            check_registry,
        } => commands::plan::run(&session, &selection, format, check_registry),
        Command::Push(args) => commands::push::run(&session, &args),
        Command::Prune(args) => commands::prune::run(&session, &args),
        Command::Build(args) => commands::build::run(&session, &args),
        Command::Why { name } => commands::why::run(&session, &name),
        Command::Run(args) => commands::run::run(&session, &args, &cwd),
        Command::Shell(args) => commands::shell::run(&session, &args, &cwd),
        Command::Config(args) => commands::config::run(&session, &args, &cwd),
        Command::Init { .. } | Command::Clean(_) | Command::Completions { .. } => {
            unreachable!("handled above")
        }
    }
}

/// Diagnostics like cargo's: colored when allowed, plain graphical otherwise, 100 columns.
fn install_report_handler(global: &GlobalArgs) {
    let color = output::Output::new(global.color, global.quiet).color;
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .force_graphical(true)
                .color(color)
                .unicode(true)
                .terminal_links(false)
                .width(100)
                .build(),
        )
    }));
}
