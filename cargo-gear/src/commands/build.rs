//! `cargo gear build`: build every stale layer of the selection on the Docker engine.

use gear_spec::plan::Plan;

use crate::build::{self, BuildOptions, Paths};
use crate::cli::{BuildArgs, MessageFormat};
use crate::engine::Engine;
use crate::error::CliError;
use crate::progress::Reporter;
use crate::registry::Registry;
use crate::request::Session;

/// Builds the selection; fails when any layer failed.
pub fn run(session: &Session, args: &BuildArgs) -> Result<(), CliError> {
    let selected = session.select(&args.selection)?;
    let plan = session.plan(&selected)?;
    let force: Vec<bool> = plan
        .layers
        .iter()
        .map(|l| args.force && (args.selection.packages.is_empty() || selected.contains(&l.index)))
        .collect();
    let cache_from = match (&args.cache_from, session.ws.cache) {
        (Some(r), _) => Some(Registry::new(r)?),
        (None, true) => Some(session.registry()?),
        (None, false) => None,
    };
    let cache_to = args.cache_to.as_deref().map(Registry::new).transpose()?;
    let opts = BuildOptions {
        jobs: args.jobs.unwrap_or_else(default_jobs),
        keep_going: args.keep_going,
        force,
        offline: args.offline,
        cache_from,
        cache_to,
    };
    let reporter = Reporter::new(
        args.message_format == MessageFormat::Json,
        session.out,
        paths(session).logs,
    );
    crate::runtime()?.block_on(async {
        let engine = Engine::connect().await?;
        tokio::select! {
            result = build_plan(&engine, session, &plan, &opts, &reporter) => result,
            _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
        }
    })
}

/// Builds what is stale in `plan` under the workspace's build lock, then reports the
/// summary. Shared by `build` and `run`.
pub async fn build_plan(
    engine: &Engine,
    session: &Session,
    plan: &Plan,
    opts: &BuildOptions,
    reporter: &Reporter,
) -> Result<(), CliError> {
    let paths = paths(session);
    let _lock = crate::lock::BuildLock::acquire(&session.ws.gear_dir(), &session.out)?;
    let status = build::statuses(engine, plan, &paths.state).await?;
    build::run(engine, plan, &status, opts, &paths, reporter).await;
    let counts = reporter.finish();
    if counts.failed > 0 {
        return Err(CliError::BuildFailed {
            failed: counts.failed,
            skipped: counts.skipped,
        });
    }
    Ok(())
}

/// Where build records and logs go.
pub fn paths(session: &Session) -> Paths {
    let gear_dir = session.ws.gear_dir();
    Paths {
        state: gear_dir.join("state"),
        logs: gear_dir.join("logs"),
    }
}

/// One build per CPU.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
