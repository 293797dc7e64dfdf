//! CI pipelines generated for examples/monorepo: the GitLab child pipeline, the GitHub wave
//! matrices and workflow, for everything to build, one gear to build, and nothing to build.

use gear_spec::pipeline::{self, PipelineInput};
use gear_spec::plan::Plan;

#[path = "support/examples.rs"]
mod examples;

const REGISTRY: &str = "registry.example.org:5000/neuro";

fn plan() -> Plan {
    examples::plan()
}

/// Every built layer gets a job, except those named in `fresh`.
fn build_all_but(plan: &Plan, fresh: &[&str]) -> Vec<bool> {
    plan.layers
        .iter()
        .map(|l| l.built().is_some() && !fresh.contains(&l.name.as_str()))
        .collect()
}

fn input<'a>(plan: &'a Plan, build: &'a [bool], global: &'a [String]) -> PipelineInput<'a> {
    PipelineInput {
        plan,
        build,
        registry: REGISTRY,
        global_args: global,
    }
}

/// Content tags and fingerprints differ between machines' checkouts only if the example
/// changes; they are kept out of the snapshots anyway (the generators do not print them).
#[test]
fn gitlab_pipeline_for_everything_one_gear_and_nothing() {
    let plan = plan();
    let global = vec![
        "--substitute".to_string(),
        "python:3.12-slim=mirror.example.org/python:3.12-slim".to_string(),
    ];
    let all = build_all_but(&plan, &[]);
    insta::assert_snapshot!("gitlab_all", pipeline::gitlab(&input(&plan, &all, &global)));

    let built: Vec<&str> = plan
        .layers
        .iter()
        .filter(|l| l.built().is_some() && l.name != "csv-summary")
        .map(|l| l.name.as_str())
        .collect();
    let one = build_all_but(&plan, &built);
    let text = pipeline::gitlab(&input(&plan, &one, &[]));
    insta::assert_snapshot!("gitlab_one_gear", text);

    let none = vec![false; plan.layers.len()];
    insta::assert_snapshot!(
        "gitlab_nothing",
        pipeline::gitlab(&input(&plan, &none, &[]))
    );
}

#[test]
fn the_same_plan_gives_the_same_bytes() {
    let (a, b) = (plan(), plan());
    let (ba, bb) = (build_all_but(&a, &[]), build_all_but(&b, &[]));
    assert_eq!(
        pipeline::gitlab(&input(&a, &ba, &[])),
        pipeline::gitlab(&input(&b, &bb, &[]))
    );
    assert_eq!(
        pipeline::github_waves(&input(&a, &ba, &[])),
        pipeline::github_waves(&input(&b, &bb, &[]))
    );
}

#[test]
fn github_waves_follow_the_graph_and_keep_their_number() {
    let plan = plan();
    let all = build_all_but(&plan, &[]);
    let waves = pipeline::waves(&input(&plan, &all, &[]));
    // Bases first, then the gears on them; the FreeSurfer chain is one deeper.
    assert_eq!(waves.len(), 2, "{waves:?}");
    assert!(
        waves[0].contains(&"fw-python".to_string())
            && waves[0].contains(&"fw-freesurfer".to_string())
    );
    assert!(waves[1].contains(&"csv-summary".to_string()));
    insta::assert_snapshot!(
        "github_waves_all",
        pipeline::github_waves(&input(&plan, &all, &[]))
    );

    // Only a gear: it moves to the first wave, and the number of waves stays.
    let bases: Vec<&str> = vec!["fw-python", "fw-freesurfer"];
    let gears_only = build_all_but(&plan, &bases);
    let waves = pipeline::waves(&input(&plan, &gears_only, &[]));
    assert_eq!(waves.len(), 2);
    assert!(waves[1].is_empty() && waves[0].contains(&"csv-summary".to_string()));

    insta::assert_snapshot!(
        "github_workflow",
        pipeline::github_workflow(&input(&plan, &all, &[]))
    );
}
