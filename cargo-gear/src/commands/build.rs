//! `cargo gear build`: build every stale layer of the selection on the Docker engine.

use crate::bases::{self, Missing};
use crate::cli::{BuildArgs, MessageFormat};
use crate::error::CliError;
use crate::progress::Reporter;
use crate::request::Session;
use crate::schedule::{self, BuildOptions};
use crate::team_registry::Registry;

/// Builds the selection; fails when any layer failed.
pub fn run(session: &Session, args: &BuildArgs) -> Result<(), CliError> {
    let selected = session.select(&args.selection)?;
    let offline = args.offline || session.frozen;
    bases::ensure(session, &selected, Missing::Add { offline })?;
    let plan = session.plan_to_build(&selected)?;
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
        jobs: args.jobs.unwrap_or_else(schedule::default_jobs),
        keep_going: args.keep_going,
        force,
        offline,
        cache_from,
        cache_to,
        no_cache: args.no_cache,
        registry: session
            .registry
            .is_some()
            .then(|| session.registry())
            .transpose()?,
        pull_only: plan
            .layers
            .iter()
            .map(|l| args.no_build_ancestors && !selected.contains(&l.index))
            .collect(),
    };
    let reporter = Reporter::new(
        args.message_format == MessageFormat::Json,
        session.out,
        session.build_paths().logs,
    );
    let built = session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        tokio::select! {
            result = schedule::build_locked(&engine, session, &plan, &opts, &reporter) => result,
            _ = tokio::signal::ctrl_c() => {
                reporter.interrupted();
                Err(CliError::Interrupted)
            }
        }
    });
    crate::request::release_at_exit(plan);
    built
}
