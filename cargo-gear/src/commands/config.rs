//! `cargo gear config`: write a checked config.json for a gear, for a later run.

use crate::cli::ConfigArgs;
use crate::error::CliError;
use crate::local_run;
use crate::request::Session;

/// Writes the job's config.json (default: `target/gear/config/GEAR.json`, private to its
/// owner when it holds an API key).
pub fn run(session: &Session, args: &ConfigArgs, cwd: &std::path::Path) -> Result<(), CliError> {
    let (_, job) = local_run::prepare(session, &args.job, cwd, false)?;
    for w in &job.warnings {
        session.out.warn(w);
    }
    let path = match &args.output {
        Some(p) => cwd.join(p),
        None => session
            .ws
            .gear_dir()
            .join("config")
            .join(format!("{}.json", args.job.gear)),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
    }
    local_run::write_config(&path, &job)?;
    session.out.status("Wrote", path.display());
    Ok(())
}
