//! `cargo gear build`: build every stale layer of the selection on the Docker engine.

use crate::build::{self, BuildOptions, Paths};
use crate::cli::{BuildArgs, MessageFormat};
use crate::engine::Engine;
use crate::error::CliError;
use crate::progress::Reporter;
use crate::request::Session;

/// Builds, holding the workspace's build lock; fails when any layer failed.
pub fn run(session: &Session, args: &BuildArgs) -> Result<(), CliError> {
    let selected = session.select(&args.selection)?;
    let plan = session.plan(&selected)?;
    let gear_dir = session.ws.gear_dir();
    let paths = Paths { state: gear_dir.join("state"), logs: gear_dir.join("logs") };
    let _lock = crate::lock::BuildLock::acquire(&gear_dir, &session.out)?;
    let force: Vec<bool> = plan
        .layers
        .iter()
        .map(|l| args.force && (args.selection.packages.is_empty() || selected.contains(&l.index)))
        .collect();
    let opts = BuildOptions {
        jobs: args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        keep_going: args.keep_going,
        force,
        offline: args.offline,
    };
    let reporter = Reporter::new(args.message_format == MessageFormat::Json, session.out, paths.logs.clone());
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let engine = Engine::connect().await?;
        let status = build::statuses(&engine, &plan, &paths.state).await?;
        tokio::select! {
            _ = build::run(&engine, &plan, &status, &opts, &paths, &reporter) => Ok(()),
            _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
        }
    })?;
    let counts = reporter.finish();
    if counts.failed > 0 {
        return Err(CliError::BuildFailed { failed: counts.failed, skipped: counts.skipped });
    }
    Ok(())
}
