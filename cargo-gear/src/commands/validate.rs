//! `cargo gear validate`: every check that needs no Docker engine, for people or
//! (`--format json`) as JSON lines.

use std::path::Path;

use crate::cli::{GlobalArgs, PlanFormat, Selection, ValidateArgs};
use crate::diagnostics::{self, JsonLine};
use crate::error::CliError;
use crate::request::Session;

/// Loads, checks and plans the selection; any problem fails the command.
pub fn run(global: &GlobalArgs, cwd: &Path, args: &ValidateArgs) -> Result<(), CliError> {
    match args.format {
        PlanFormat::Human => {
            let session = Session::load(global, cwd)?;
            let (layers, gears) = check(&session, &args.selection)?;
            session.out.status(
                "Checked",
                format!(
                    "{layers} layers ({gears} gears) in {}: no problems",
                    session.ws.root.display()
                ),
            );
            session.end();
            Ok(())
        }
        PlanFormat::Json => diagnostics::json_command(
            Session::load(global, cwd)
                .and_then(|session| {
                    let checked = check(&session, &args.selection);
                    session.end();
                    checked
                })
                .map(|_| Vec::new()),
            JsonLine::ValidateFinished,
        ),
    }
}

/// The numbers of layers and gears checked.
fn check(session: &Session, selection: &Selection) -> Result<(usize, usize), CliError> {
    if let Some(registry) = &session.registry {
        crate::team_registry::parse_base(registry)?;
    }
    let selected = session.select(selection)?;
    let plan = session.plan_to_build(&selected)?;
    let gears = plan.layers.iter().filter(|l| l.gear().is_some()).count();
    let layers = plan.layers.len();
    crate::request::release_at_exit(plan);
    Ok((layers, gears))
}
