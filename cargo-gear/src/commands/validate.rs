//! `cargo gear validate`: every check that needs no Docker engine.

use crate::cli::Selection;
use crate::error::CliError;
use crate::request::Session;

/// Loads, checks and plans the selection; any problem fails the command.
pub fn run(session: &Session, selection: &Selection) -> Result<(), CliError> {
    if let Some(registry) = &session.registry {
        crate::registry::parse_base(registry)?;
    }
    let selected = session.select(selection)?;
    let plan = session.plan_to_build(&selected)?;
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
