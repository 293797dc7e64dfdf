//! `cargo gear ci`: a pipeline for an existing CI system (GitLab CI, GitHub Actions) that builds
//! the layers the registry lacks, one job each, along the layer graph.

use gear_spec::gear_lock::GEAR_LOCK;
use gear_spec::pipeline::{self, PipelineInput};
use gear_spec::plan::Plan;

use crate::bases;
use crate::cli::{CiFormat, Selection};
use crate::error::CliError;
use crate::output;
use crate::request::Session;
use crate::team_registry::Registry;

/// Prints the pipeline on stdout; says on stderr how many layers it builds.
pub fn run(
    session: &Session,
    selection: &Selection,
    format: CiFormat,
    substitute: &[String],
) -> Result<(), CliError> {
    let selected = session.select(selection)?;
    let plan = session.plan_to_build(&selected)?;
    let registry = session.registry()?;
    let build = missing_from_registry(session, &plan, &registry)?;
    let mut global_args: Vec<String> = substitute
        .iter()
        .flat_map(|s| ["--substitute".to_string(), s.clone()])
        .collect();
    // Jobs run on other machines: they build on the bases Gear.lock pins, or, when it pins
    // them all, refuse to run without it (`--locked`); otherwise each job would resolve the
    // tags on its own, and two jobs could build on two images.
    let unpinned: Vec<String> = bases::unpinned(session, &selected)
        .iter()
        .map(ToString::to_string)
        .collect();
    if unpinned.is_empty() {
        global_args.push("--locked".into());
    } else {
        session.out.warn(format!(
            "{GEAR_LOCK} pins no digest for {}: each job resolves the tag itself; run `cargo gear build` (or `cargo gear update`) and commit {GEAR_LOCK}, and the jobs get `--locked`",
            unpinned.join(", ")
        ));
    }
    let input = PipelineInput {
        plan: &plan,
        build: &build,
        registry: &registry.base,
        global_args: &global_args,
    };
    let text = match format {
        CiFormat::Gitlab => pipeline::gitlab(&input),
        CiFormat::Github => pipeline::github_waves(&input),
        CiFormat::GithubWorkflow => pipeline::github_workflow(&input),
    };
    let count = build.iter().filter(|b| **b).count();
    if count == 0 {
        session.out.note(format!(
            "nothing to build: every layer is already in {}",
            registry.base
        ));
    } else {
        session.out.status(
            "Planned",
            format!("{count} layer(s) to build, missing from {}", registry.base),
        );
    }
    output::stdout(&text);
    Ok(())
}

/// For each plan slot: a built layer whose content tag the registry does not have. The
/// registry is the truth here: CI jobs run on other machines, so an image only this machine
/// has still needs its job. A registry that cannot be asked is an error, not a guess.
fn missing_from_registry(
    session: &Session,
    plan: &Plan,
    registry: &Registry,
) -> Result<Vec<bool>, CliError> {
    session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        let mut missing = Vec::with_capacity(plan.layers.len());
        for layer in &plan.layers {
            let Some(built) = layer.built() else {
                missing.push(false);
                continue;
            };
            let digest = engine
                .registry_digest(&registry.remote(&built.content_tag), registry.credentials())
                .await?;
            missing.push(digest.is_none());
        }
        Ok(missing)
    })
}
