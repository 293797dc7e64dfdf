//! `cargo gear validate`: every check that needs no Docker engine.

use gear_spec::Problems;
use gear_spec::validate;

use crate::cli::Selection;
use crate::error::CliError;
use crate::request::Session;

/// Loads, checks and plans the selection; any problem fails the command.
pub fn run(session: &Session, selection: &Selection) -> Result<(), CliError> {
    if let Some(registry) = &session.registry {
        crate::registry::parse_base(registry)?;
    }
    let selected = session.select(selection)?;
    let plan = session.plan(&selected)?;
    // How Flywheel starts each gear: checked here, where the build contexts are known.
    let start: Problems = plan
        .layers
        .iter()
        .filter_map(|l| Some((l.index, l.built()?)))
        .flat_map(|(i, b)| {
            validate::check_start(session.graph.layer(i), b.files.iter().map(|f| &f.file))
        })
        .collect();
    if !start.is_empty() {
        return Err(start.into());
    }
    let gears = plan.layers.iter().filter(|l| l.gear().is_some()).count();
    session.out.status(
        "Checked",
        format!(
            "{} layers ({gears} gears) in {}: no problems",
            plan.layers.len(),
            session.ws.root.display()
        ),
    );
    Ok(())
}
