//! `cargo gear update`: resolve the external images' tags again and rewrite their
//! `Gear.lock` entries, printing each old → new digest.

use gear_spec::gear_lock::GEAR_LOCK;

use crate::bases::{self, Source};
use crate::cli::Selection;
use crate::error::CliError;
use crate::request::Session;

/// Re-resolves the external images of the selection (all by default).
pub fn run(session: &Session, selection: &Selection) -> Result<(), CliError> {
    if session.locked {
        return Err(CliError::usage(
            "`cargo gear update` rewrites Gear.lock, which --locked and --frozen forbid",
            "run it without --locked/--frozen",
        ));
    }
    let selected = session.select(selection)?;
    let bases = bases::bases(session, &selected);
    if bases.is_empty() {
        session
            .out
            .note("no external layer in the selection: nothing to lock");
        return Ok(());
    }
    session.runtime()?.block_on(async {
        let engine = session.engine().await?;
        for base in &bases {
            if base.declared {
                session.out.status(
                    "Skipped",
                    format!(
                        "{} (layer `{}` pins it with `digest` in its Gear.toml)",
                        base.key, base.layer
                    ),
                );
                continue;
            }
            let Some(new) = bases::resolve(&engine, session, base, Source::Pull).await? else {
                continue;
            };
            let old = session.lock().insert(base.key.clone(), new.clone());
            match old {
                Some(old) if old == new => session
                    .out
                    .status("Unchanged", format!("{} {}", base.key, new.pin())),
                Some(old) => session.out.status(
                    "Updated",
                    format!("{} {} -> {}", base.key, old.pin(), new.pin()),
                ),
                None => session
                    .out
                    .status("Locked", format!("{} to {}", base.key, new.pin())),
            }
        }
        bases::save(session)?;
        session.out.status("Wrote", GEAR_LOCK);
        Ok(())
    })
}
