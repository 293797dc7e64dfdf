//! `cargo xtask codegen`: regenerate the committed generated files (the Gear.toml JSON
//! schema and reference). The staleness test in gear-spec/tests/codegen.rs is the
//! generator: with `CARGO_GEAR_CODEGEN=write` it rewrites what is stale.

use crate::{Result, Workspace, cmd};

pub fn run(ws: &Workspace) -> Result {
    cmd::run(
        ws.cargo()
            .args([
                "test",
                "--quiet",
                "--package",
                "gear-spec",
                "--test",
                "codegen",
            ])
            .env("CARGO_GEAR_CODEGEN", "write"),
    )?;
    eprintln!("xtask: schemas/gear.schema.json and docs/gear-toml.md are up to date");
    Ok(())
}
