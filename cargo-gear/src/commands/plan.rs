//! `cargo gear plan`: the layers in build order, with fingerprints and status.

use std::fmt::Write;

use gear_spec::plan::Plan;
use gear_spec::state::Status;
use serde_json::json;

use crate::bases::{self, Missing};
use crate::cli::{PlanFormat, Selection};
use crate::error::CliError;
use crate::output;
use crate::request::Session;

/// Prints the plan.
pub fn run(
    session: &Session,
    selection: &Selection,
    format: PlanFormat,
    check_registry: bool,
) -> Result<(), CliError> {
    let selected = session.select(selection)?;
    bases::ensure(session, &selected, Missing::Peek)?;
    let plan = session.plan(&selected)?;
    let statuses = engine_statuses(session, &plan)?
        .unwrap_or_else(|| vec![Status::Unknown; plan.layers.len()]);
    let in_registry = if check_registry {
        registry_check(session, &plan, &statuses)?
    } else {
        vec![false; plan.layers.len()]
    };
    let text = match format {
        PlanFormat::Human => human(&plan, &statuses, &in_registry),
        PlanFormat::Json => json_text(&plan, &statuses, &in_registry),
    };
    output::stdout(&text);
    crate::request::release_at_exit(plan);
    Ok(())
}

/// Each planned layer's status from the engine and the build records, or None (with a
/// note on stderr) when no engine answers: commands that only plan keep working.
pub fn engine_statuses(session: &Session, plan: &Plan) -> Result<Option<Vec<Status>>, CliError> {
    let state_dir = session.ws.gear_dir().join("state");
    let runtime = session.runtime()?;
    runtime.block_on(async {
        let engine = match session.engine().await {
            Ok(e) => e,
            Err(e) => {
                session.out.note(format!("status unknown: {e}"));
                return Ok(None);
            }
        };
        Ok(Some(
            crate::schedule::statuses(&engine, plan, &state_dir)
                .await?
                .statuses,
        ))
    })
}

/// Which stale built layers the registry has under their content tag. A registry that
/// cannot be asked is a warning, not an error.
fn registry_check(
    session: &Session,
    plan: &Plan,
    statuses: &[Status],
) -> Result<Vec<bool>, CliError> {
    let registry = session.registry()?;
    session.runtime()?.block_on(async {
        let mut found = vec![false; plan.layers.len()];
        let Ok(engine) = session.engine().await else {
            return Ok(found);
        };
        for (i, (l, st)) in plan.layers.iter().zip(statuses).enumerate() {
            let (Some(built), Status::Stale(_)) = (l.built(), st) else {
                continue;
            };
            let tag = &built.content_tag;
            match engine
                .registry_digest(&registry.remote(tag), registry.credentials())
                .await
            {
                Ok(d) => found[i] = d.is_some(),
                Err(e) => {
                    session
                        .out
                        .warn(format!("cannot check the registry: {e}{}", e.login_hint()));
                    break;
                }
            }
        }
        Ok(found)
    })
}

/// `in-registry` for stale layers the registry has, else the status.
fn status_text(st: &Status, in_registry: bool) -> &'static str {
    if in_registry {
        "in-registry"
    } else {
        st.as_str()
    }
}

fn human(plan: &Plan, statuses: &[Status], in_registry: &[bool]) -> String {
    let width = plan.layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for ((l, st), reg) in plan.layers.iter().zip(statuses).zip(in_registry) {
        let _ = writeln!(
            out,
            "{:<width$}  {:<8}  {:<11}  {}  {:<11}  {}",
            l.name,
            l.kind().as_str(),
            l.platform.to_string(),
            l.fingerprint.short(),
            status_text(st, *reg),
            l.reference()
        );
        for r in st.reasons() {
            let _ = writeln!(out, "{:<width$}    - {r}", "");
        }
    }
    out
}

fn json_text(plan: &Plan, statuses: &[Status], in_registry: &[bool]) -> String {
    let layers: Vec<serde_json::Value> = plan
        .layers
        .iter()
        .zip(statuses)
        .zip(in_registry)
        .map(|((l, st), reg)| {
            json!({
                "name": l.name,
                "kind": l.kind().as_str(),
                "parent": plan.parent(l).map(|p| &p.name),
                "image": l.image(),
                "substituted_from": l.substituted_from(),
                "platform": l.platform.to_string(),
                "content_tag": l.built().map(|b| &b.content_tag),
                "version_tag": l.gear().map(|g| &g.version_tag),
                "fingerprint": l.fingerprint.to_string(),
                "files": l.built().map_or(0, |b| b.files.len()),
                "status": status_text(st, *reg),
                "reasons": st.reasons().iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({ "layers": layers })).expect("json");
    s.push('\n');
    s
}
