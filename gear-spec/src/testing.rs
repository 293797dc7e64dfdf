//! Test support for gear-spec's unit tests: temporary workspaces, their plans and problems.

#![cfg(test)]

use std::path::Path;

use crate::LayerGraph;
use crate::diagnostic::Problems;
use crate::plan::{self, Plan, PlanOptions};

/// A workspace in a temporary directory: `files` are (path, contents) under its root;
/// every directory holding a Gear.toml is a layer.
pub(crate) fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = root.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    root
}

pub(crate) fn dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = walk(root)
        .into_iter()
        .filter(|d| d.join("Gear.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

pub(crate) fn plan_of(root: &Path) -> Result<Plan, Problems> {
    let graph = LayerGraph::load(&dirs(root), root)?;
    let all = graph.build_order().to_vec();
    plan::plan(&graph, &all, &PlanOptions::default()).map_err(|e| match e {
        plan::PlanError::Invalid(p) => p,
        other => panic!("{other}"),
    })
}

/// Every problem as `code: message [spanned text] (help)`.
pub(crate) fn problems_of(root: &Path) -> Vec<String> {
    let problems = match LayerGraph::load(&dirs(root), root) {
        Err(p) => p,
        Ok(_) => match plan_of(root) {
            Err(p) => p,
            Ok(_) => return Vec::new(),
        },
    };
    problems
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(
                p.location()
                    .and_then(|l| l.split(':').next().map(|f| root.join(f)))
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
            let at = p
                .span
                .filter(|s| s.offset() + s.len() <= text.len())
                .map(|s| text[s.offset()..s.offset() + s.len()].to_string())
                .unwrap_or_default();
            format!(
                "{}: {} [{}] ({})",
                p.code,
                p.message,
                at,
                p.help.clone().unwrap_or_default()
            )
        })
        .collect()
}
