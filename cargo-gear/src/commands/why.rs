//! `cargo gear why NAME`: everything known about why one layer is fresh or stale, for people
//! or (`--format json`) as JSON lines.

use std::fmt::Write;
use std::path::Path;

use gear_spec::gear_lock::GEAR_LOCK;
use gear_spec::plan::BasePin;
use gear_spec::state::{Record, Status};
use schemars::JsonSchema;
use serde::Serialize;

use crate::bases::{self, Missing};
use crate::cli::{GlobalArgs, PlanFormat, Selection, WhyArgs};
use crate::commands::plan::engine_statuses;
use crate::diagnostics::{self, JsonLine};
use crate::error::CliError;
use crate::output;
use crate::request::Session;

/// Everything known about one layer's freshness.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Why {
    pub name: String,
    /// `external`, `layer` or `gear`.
    pub kind: String,
    /// `fresh`, `stale` or `unknown`.
    pub status: String,
    /// Why it is stale.
    pub reasons: Vec<String>,
    /// Whether a Docker engine answered; without one only the build record is compared.
    pub engine: bool,
    /// `sha256:…`.
    pub fingerprint: String,
    /// The platform it is pulled or built for, e.g. `linux/amd64`.
    pub platform: String,
    /// An external layer's pin: `Gear.toml digest sha256:…`, `Gear.lock sha256:…` or
    /// `not locked yet`.
    pub pin: Option<String>,
    pub parent: Option<WhyParent>,
    /// The image reference: an external layer's, or a built layer's content tag.
    pub image: String,
    /// A gear's `IMAGE:VERSION`.
    pub version_tag: Option<String>,
    /// Files in a built layer's build context.
    pub context_files: Option<usize>,
    /// The last build record of a built layer.
    pub last_built: Option<LastBuilt>,
    /// Where build records are.
    pub state_dir: String,
}

/// The parent layer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WhyParent {
    pub name: String,
    pub fingerprint: String,
}

/// A build record.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LastBuilt {
    pub fingerprint: String,
    pub image_id: String,
}

/// Prints the layer's status, reasons, fingerprint and last build record.
pub fn run(global: &GlobalArgs, cwd: &Path, args: &WhyArgs) -> Result<(), CliError> {
    match args.format {
        PlanFormat::Human => {
            let session = Session::load(global, cwd)?;
            output::stdout(&human(&why(&session, &args.name)?));
            Ok(())
        }
        PlanFormat::Json => diagnostics::json_command(
            Session::load(global, cwd)
                .and_then(|session| why(&session, &args.name))
                .map(|w| vec![JsonLine::Layer(Box::new(w))]),
            JsonLine::WhyFinished,
        ),
    }
}

/// What is known about layer `name`.
pub fn why(session: &Session, name: &str) -> Result<Why, CliError> {
    let selection = Selection {
        packages: vec![name.to_string()],
        workspace: false,
    };
    let selected = session.select(&selection)?;
    bases::ensure(session, &selected, Missing::Peek)?;
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
    let statuses = engine_statuses(session, &plan)?;
    let engine = statuses.is_some();
    let status = match statuses {
        Some(statuses) => statuses[slot].clone(),
        None => match (&record, layer.built()) {
            (Some(r), Some(built)) if r.fingerprint != layer.fingerprint => Status::Stale(
                gear_spec::state::differences(built, &layer.platform, parent, r),
            ),
            _ => Status::Unknown,
        },
    };
    Ok(Why {
        name: layer.name.clone(),
        kind: layer.kind().as_str().to_string(),
        status: status.as_str().to_string(),
        reasons: status.reasons().iter().map(ToString::to_string).collect(),
        engine,
        fingerprint: layer.fingerprint.to_string(),
        platform: layer.platform.to_string(),
        pin: layer.external().map(|e| match &e.pin {
            BasePin::Declared(d) => format!("Gear.toml digest {d}"),
            BasePin::Locked(l) => format!("{GEAR_LOCK} {}", l.pin()),
            BasePin::Unlocked => "not locked yet (the next build records it)".to_string(),
        }),
        parent: parent.map(|p| WhyParent {
            name: p.name.clone(),
            fingerprint: p.fingerprint.to_string(),
        }),
        image: layer.reference().to_string(),
        version_tag: layer.gear().map(|g| g.version_tag.clone()),
        context_files: layer.built().map(|b| b.files.len()),
        last_built: record.map(|r| LastBuilt {
            fingerprint: r.fingerprint.to_string(),
            image_id: r.image_id,
        }),
        state_dir: state_dir.display().to_string(),
    })
}

/// For people.
fn human(w: &Why) -> String {
    let mut out = String::new();
    if !w.engine {
        let _ = writeln!(
            out,
            "(no Docker engine answered: comparing with the last build record only)"
        );
    }
    let _ = writeln!(out, "{} ({}): {}", w.name, w.kind, w.status);
    let recorded = w
        .last_built
        .as_ref()
        .is_some_and(|r| r.fingerprint == w.fingerprint);
    match w.status.as_str() {
        "fresh" if recorded => {
            let _ = writeln!(
                out,
                "  the image {} exists and matches the last build record",
                w.image
            );
        }
        "fresh" => {
            let _ = writeln!(
                out,
                "  the image {} exists with this fingerprint (no build record here: built elsewhere or records cleaned)",
                w.image
            );
        }
        _ => {
            for r in &w.reasons {
                let _ = writeln!(out, "  - {r}");
            }
        }
    }
    let _ = writeln!(out, "  fingerprint: {}", w.fingerprint);
    let _ = writeln!(out, "  platform: {}", w.platform);
    if let Some(pin) = &w.pin {
        let _ = writeln!(out, "  pinned by: {pin}");
    }
    if let Some(p) = &w.parent {
        let _ = writeln!(out, "  parent: {} ({})", p.name, p.fingerprint);
    }
    let _ = writeln!(out, "  image: {}", w.image);
    if let Some(tag) = &w.version_tag {
        let _ = writeln!(out, "  version tag: {tag}");
    }
    if let Some(n) = w.context_files {
        let _ = writeln!(out, "  context: {n} files");
    }
    match &w.last_built {
        Some(r) => {
            let _ = writeln!(
                out,
                "  last built: fingerprint {} as image {}",
                r.fingerprint, r.image_id
            );
        }
        None if w.context_files.is_some() => {
            let _ = writeln!(out, "  last built: no record in {}", w.state_dir);
        }
        None => {}
    }
    out
}
