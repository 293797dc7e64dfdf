//! `cargo gear why NAME`: everything known about why one layer is fresh or stale.

use std::fmt::Write;

use gear_spec::state::{Record, Status};

use crate::cli::Selection;
use crate::commands::plan::engine_statuses;
use crate::error::CliError;
use crate::output;
use crate::request::Session;

/// Prints the layer's status, reasons, fingerprint and last build record.
pub fn run(session: &Session, name: &str) -> Result<(), CliError> {
    let selection = Selection {
        packages: vec![name.to_string()],
        workspace: false,
    };
    let selected = session.select(&selection)?;
    let plan = session.plan(&selected)?;
    let state_dir = session.ws.gear_dir().join("state");
    let slot = plan
        .layers
        .iter()
        .position(|l| l.name == name)
        .expect("selected layer is planned");
    let layer = &plan.layers[slot];
    let parent = plan.parent(layer);
    let record = Record::load(&state_dir, name);

    let mut out = String::new();
    let status = match engine_statuses(session, &plan)? {
        Some(statuses) => statuses[slot].clone(),
        None => {
            let _ = writeln!(
                out,
                "(no Docker engine answered: comparing with the last build record only)"
            );
            match &record {
                Some(r) if r.fingerprint == layer.fingerprint => Status::Unknown,
                Some(r) => match layer.built() {
                    Some(built) => Status::Stale(gear_spec::state::differences(built, parent, r)),
                    None => Status::Unknown,
                },
                None => Status::Unknown,
            }
        }
    };
    let _ = writeln!(
        out,
        "{} ({}): {}",
        layer.name,
        layer.kind().as_str(),
        status.as_str()
    );
    match &status {
        Status::Fresh { recorded: true } => {
            let _ = writeln!(
                out,
                "  the image {} exists and matches the last build record",
                layer.reference()
            );
        }
        Status::Fresh { recorded: false } => {
            let _ = writeln!(
                out,
                "  the image {} exists with this fingerprint (no build record here: built elsewhere or records cleaned)",
                layer.reference()
            );
        }
        Status::Stale(reasons) => {
            for r in reasons {
                let _ = writeln!(out, "  - {r}");
            }
        }
        Status::Unknown => {}
    }
    let _ = writeln!(out, "  fingerprint: {}", layer.fingerprint);
    if let Some(p) = parent {
        let _ = writeln!(out, "  parent: {} ({})", p.name, p.fingerprint);
    }
    let _ = writeln!(out, "  image: {}", layer.reference());
    if let Some(gear) = layer.gear() {
        let _ = writeln!(out, "  version tag: {}", gear.version_tag);
    }
    if let Some(built) = layer.built() {
        let _ = writeln!(out, "  context: {} files", built.files.len());
    }
    match &record {
        Some(r) => {
            let _ = writeln!(
                out,
                "  last built: fingerprint {} as image {}",
                r.fingerprint, r.image_id
            );
        }
        None if layer.built().is_some() => {
            let _ = writeln!(out, "  last built: no record in {}", state_dir.display());
        }
        None => {}
    }
    output::stdout(&out);
    Ok(())
}
