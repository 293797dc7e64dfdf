//! `cargo gear manifest`: write each gear's manifest.json, or check that it is current.
//!
//! A build writes the manifest with the parent image's real environment underneath the
//! declared one. Without an engine that environment is only known from a build record
//! of the same fingerprint; failing that, a committed manifest whose `environment`
//! holds every declared variable with its declared value (plus variables of the base
//! image) is kept as it is, so a fresh clone agrees with what a build wrote.

use gear_spec::manifest::Manifest;
use gear_spec::plan::PlannedLayer;
use gear_spec::state::Record;
use indexmap::IndexMap;
use similar::TextDiff;

use crate::cli::Selection;
use crate::error::CliError;
use crate::output;
use crate::request::Session;

/// Writes (or with `check`, compares) the manifest.json of every selected gear.
pub fn run(session: &Session, selection: &Selection, check: bool) -> Result<(), CliError> {
    let selected = session.select(selection)?;
    let plan = session.plan(&selected)?;
    let mut stale = Vec::new();
    let mut gears = 0;
    for planned in &plan.layers {
        let Some(manifest) = planned.gear().map(|g| &g.manifest) else {
            continue;
        };
        if !selected.contains(&planned.index) {
            continue;
        }
        gears += 1;
        let layer = session.graph.layer(planned.index);
        let path = layer.dir.join("manifest.json");
        let shown = format!("{}/manifest.json", layer.rel_dir);
        let old = match std::fs::read_to_string(&path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CliError::io("read", &path, e)),
        };
        let record = Record::load(&session.ws.gear_dir().join("state"), &planned.name);
        let new = expected(planned, manifest, record.as_ref(), old.as_deref()).render();
        if old.as_deref() == Some(new.as_str()) {
            continue;
        }
        if check {
            let old_text = old.unwrap_or_default();
            let diff = TextDiff::from_lines(&old_text, &new)
                .unified_diff()
                .header(&format!("a/{shown}"), &format!("b/{shown}"))
                .to_string();
            output::stdout(&diff);
            stale.push(shown);
        } else {
            std::fs::write(&path, &new).map_err(|e| CliError::io("write", &path, e))?;
            session.out.status("Wrote", &shown);
        }
    }
    if !stale.is_empty() {
        return Err(CliError::CheckFailed {
            message: format!(
                "{} of {gears} gear manifests are stale: {}",
                stale.len(),
                stale.join(", ")
            ),
            help:
                "run `cargo gear manifest` to regenerate them from Gear.toml, and commit the result"
                    .into(),
        });
    }
    if check {
        session
            .out
            .status("Checked", format!("{gears} gear manifests: up to date"));
    }
    Ok(())
}

/// The manifest a gear's directory should hold (see the module docs).
fn expected(
    planned: &PlannedLayer,
    declared: &Manifest,
    record: Option<&Record>,
    committed: Option<&str>,
) -> Manifest {
    let mut m = declared.clone();
    if let Some(env) = record
        .filter(|r| r.fingerprint == planned.fingerprint)
        .and_then(|r| r.environment.clone())
    {
        m.environment = env;
        return m;
    }
    let committed_env: Option<IndexMap<String, String>> = committed
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|v| serde_json::from_value(v.get("environment")?.clone()).ok());
    if let Some(env) = committed_env
        && declared
            .environment
            .iter()
            .all(|(k, v)| env.get(k) == Some(v))
    {
        m.environment = env;
    }
    m
}
