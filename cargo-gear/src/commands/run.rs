//! `cargo gear run`: build the gear if stale, check the job, and run it as Flywheel does.

use std::io::Write;

use crate::cli::RunArgs;
use crate::error::CliError;
use crate::local_run::{self, Prepared, RunDir};
use crate::progress::Reporter;
use crate::request::Session;
use crate::schedule::{self, BuildOptions};

/// Runs the gear; the process exits with the gear's exit code.
pub fn run(session: &Session, args: &RunArgs, cwd: &std::path::Path) -> Result<(), CliError> {
    // Everything is checked before anything is built or started.
    let Prepared {
        job,
        plan,
        layer,
        built,
        gear,
        version,
    } = local_run::prepare_run(session, &args.job, cwd, false)?;
    let opts = BuildOptions::for_plan(&plan);
    let reporter = Reporter::new(false, session.out, session.build_paths().logs);
    session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        tokio::select! {
            result = schedule::build_locked(&engine, session, &plan, &opts, &reporter) => result?,
            _ = tokio::signal::ctrl_c() => return Err(CliError::Interrupted),
        }
        let dir = RunDir::create(&session.ws.gear_dir(), &layer, &version, &job)?;
        let env = local_run::environment(&session.build_paths().state, &layer, &built);
        let name = local_run::container_name(&layer.name);
        let mut spec = local_run::spec(&layer, env, dir.binds(), name.clone(), args.keep);
        let recipe = session
            .graph
            .find(&layer.name)
            .map(|i| &session.graph.layer(i).recipe);
        let recipe = recipe.unwrap_or(&gear_spec::step::Recipe::Short);
        (spec.entrypoint, spec.cmd) = local_run::command(&built, &gear, recipe, &args.args);
        session.out.status(
            "Running",
            format!("{} in {}", layer.reference(), dir.path.display()),
        );
        let mut print = local_run::print_output;
        let code = tokio::select! {
            code = engine.run_container(spec, &mut print) => code?,
            _ = tokio::signal::ctrl_c() => {
                let _ = engine.remove_container(&name, true).await;
                return Err(CliError::Interrupted);
            }
        };
        let _ = std::io::stdout().flush();
        dir.report_outputs(&session.out);
        if args.keep {
            session.out.note(format!("container kept: {name}"));
        }
        match code {
            0 => Ok(()),
            code => Err(CliError::GearFailed {
                gear: layer.name.clone(),
                code,
            }),
        }
    })
}
