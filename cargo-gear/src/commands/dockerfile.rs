//! `cargo gear dockerfile`: print or write the generated Dockerfiles.

use crate::cli::Selection;
use crate::error::CliError;
use crate::output;
use crate::request::Session;

/// Prints the selected layers' Dockerfiles, or writes every selected one with `--write`.
pub fn run(session: &Session, selection: &Selection, write: bool) -> Result<(), CliError> {
    if selection.packages.is_empty() && !write {
        let names: Vec<&str> = session
            .graph
            .build_order()
            .iter()
            .map(|&i| session.graph.layer(i))
            .filter(|l| l.kind.is_built())
            .map(|l| l.name.as_str())
            .collect();
        return Err(CliError::usage(
            "which layer's Dockerfile? none was selected",
            format!(
                "pass -p NAME (one of: {}), or --write to write them all under target/gear/dockerfiles/",
                names.join(", ")
            ),
        ));
    }
    let selected = session.select(selection)?;
    for &i in &selected {
        let layer = session.graph.layer(i);
        if !layer.kind.is_built() && !selection.packages.is_empty() {
            return Err(CliError::usage(
                format!(
                    "layer `{}` is the external image {}: it is pulled, not built, and has no Dockerfile",
                    layer.name, layer.decl.image
                ),
                "select a layer built `from` another (see `cargo gear graph`)",
            ));
        }
    }
    let plan = session.plan(&selected)?;
    let dir = session.ws.gear_dir().join("dockerfiles");
    for &i in &selected {
        let Some(planned) = plan.layers.iter().find(|l| l.index == i) else {
            continue;
        };
        let Some(text) = planned.built().map(|b| &b.dockerfile) else {
            continue;
        };
        if write {
            std::fs::create_dir_all(&dir).map_err(|e| CliError::io("create", &dir, e))?;
            let path = dir.join(format!("{}.Dockerfile", planned.name));
            std::fs::write(&path, text).map_err(|e| CliError::io("write", &path, e))?;
            session.out.status("Wrote", path.display());
        } else {
            output::stdout(text);
        }
    }
    Ok(())
}
