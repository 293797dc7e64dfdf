//! `cargo gear plan`: the layers in build order, with fingerprints and status.

use std::fmt::Write;

use gear_spec::plan::Plan;
use serde_json::json;

use crate::cli::{PlanFormat, Selection};
use crate::error::CliError;
use crate::output;
use crate::request::Session;

/// Status of a layer when no engine is consulted.
pub const UNKNOWN: &str = "unknown";

/// Prints the plan.
pub fn run(session: &Session, selection: &Selection, format: PlanFormat) -> Result<(), CliError> {
    let selected = session.select(selection)?;
    let plan = session.plan(&selected)?;
    let text = match format {
        PlanFormat::Human => human(&plan),
        PlanFormat::Json => json_text(&plan),
    };
    output::stdout(&text);
    Ok(())
}

fn human(plan: &Plan) -> String {
    let width = plan.layers.iter().map(|l| l.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for l in &plan.layers {
        let _ = writeln!(
            out,
            "{:<width$}  {:<8}  {}  {UNKNOWN}  {}",
            l.name,
            l.kind.as_str(),
            l.fingerprint.short(),
            l.reference(),
        );
    }
    out
}

fn json_text(plan: &Plan) -> String {
    let layers: Vec<serde_json::Value> = plan
        .layers
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "kind": l.kind.as_str(),
                "parent": l.parent,
                "image": l.image,
                "substituted_from": l.substituted_from,
                "content_tag": l.content_tag,
                "version_tag": l.version_tag,
                "fingerprint": l.fingerprint.to_string(),
                "files": l.context.len(),
                "status": UNKNOWN,
                "reasons": [],
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({ "layers": layers })).expect("json");
    s.push('\n');
    s
}
