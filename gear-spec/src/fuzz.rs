//! The fuzz entry point: any bytes, taken as Gear.toml files, through the whole front end
//! as a command runs it — parse, check, resolve the graph, render each built layer's
//! Dockerfile and each gear's manifest, and render every problem as cargo-gear prints it.
//!
//! `fuzz/` drives it with libFuzzer (`cargo xtask fuzz`); `tests/no_panic.rs` replays the
//! corpus and every crash found. Any panic in here is a bug.

use std::path::Path;

use indexmap::IndexMap;

use crate::diagnostic::{self, Problems, SourceFile, display_path};
use crate::dockerfile::{self, DockerfileInput};
use crate::graph::LayerGraph;
use crate::layer::{GEAR_TOML, Layer, LayerKind};
use crate::manifest::Manifest;

/// At most this many Gear.toml files are made of one input.
pub const MAX_FILES: usize = 8;

/// What the front end made of an input.
#[derive(Debug, Default)]
pub struct FrontEnd {
    /// The problems, rendered as one report; None when the files are valid.
    pub report: Option<String>,
    /// `path:line:column` of each problem that has a location.
    pub locations: Vec<String>,
    /// The Dockerfile of each built layer, in build order, when the files are valid.
    pub dockerfiles: Vec<String>,
    /// The manifest of each gear, in build order, when the files are valid.
    pub manifests: Vec<String>,
}

/// Runs the front end over `data`: split at NUL bytes (never valid in TOML) into up to
/// [`MAX_FILES`] Gear.toml texts (invalid UTF-8 replaced), in directories `l0`, `l1`, …,
/// loaded like [`LayerGraph::load`] loads files read from disk.
///
/// Panics only on a bug; a report that cannot be rendered is one too.
pub fn front_end(data: &[u8]) -> FrontEnd {
    let root = Path::new("/fuzz");
    let mut problems = Problems::default();
    let layers: Vec<Layer> = data
        .split(|&b| b == 0)
        .take(MAX_FILES)
        .enumerate()
        .filter_map(|(i, bytes)| {
            let dir = root.join(format!("l{i}"));
            let path = dir.join(GEAR_TOML);
            let display = display_path(&path, root);
            let text = String::from_utf8_lossy(bytes).into_owned();
            Layer::parse(
                &dir,
                root,
                SourceFile::new(path, display, text),
                &mut problems,
            )
        })
        .collect();
    let mut out = FrontEnd::default();
    match LayerGraph::from_read(layers, problems) {
        Ok(graph) => {
            let mut environments: Vec<IndexMap<String, String>> =
                vec![IndexMap::new(); graph.layers().len()];
            for &i in graph.build_order() {
                let layer = graph.layer(i);
                let parent = graph.parent(i);
                let mut environment = parent.map(|p| environments[p].clone()).unwrap_or_default();
                for (k, v) in &layer.decl.env {
                    environment.shift_remove(k);
                    environment.insert(k.clone(), v.clone());
                }
                if let (true, Some(p)) = (layer.kind.is_built(), parent) {
                    let placed: Vec<(String, String)> = layer
                        .decl
                        .files
                        .iter()
                        .map(|(dest, src)| (dest.clone(), src.clone()))
                        .collect();
                    let rendered = dockerfile::render(&DockerfileInput {
                        layer,
                        from: &graph.layer(p).decl.image,
                        distro: graph.distro(i),
                        copy_dest: layer.decl.workdir.as_deref(),
                        placed: &placed,
                        python_deps: &[],
                        parent_image: &graph.layer(p).decl.image,
                        own: None,
                        cargo: None,
                    });
                    // An own Dockerfile is read from disk by context selection, which the
                    // fuzz target leaves out: rendering it without one must fail, not panic.
                    if let Ok(dockerfile) = rendered {
                        out.dockerfiles.push(dockerfile);
                    }
                }
                if layer.kind == LayerKind::Gear {
                    let manifest = Manifest::for_gear(layer, environment.clone());
                    out.manifests.push(manifest.render());
                }
                environments[i] = environment;
            }
        }
        Err(problems) => {
            // As cargo-gear prints them: one report (a single problem alone, several as
            // related ones), in color for inputs of odd length; rendering every problem
            // again alone, or twice, would only slow the fuzzer down.
            out.report = Some(render(&problems, data.len() % 2 == 1));
            out.locations = problems.iter().filter_map(|p| p.location()).collect();
        }
    }
    out
}

/// A report as cargo-gear prints it; failing to render is a bug like a panic is.
fn render(diagnostic: &dyn miette::Diagnostic, color: bool) -> String {
    match diagnostic::render(diagnostic, color) {
        Ok(text) => text,
        Err(e) => panic!("the report of `{diagnostic}` could not be rendered: {e}"),
    }
}
