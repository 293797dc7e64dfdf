//! `cargo gear graph`: the layer graph as a tree, Graphviz dot or JSON.

use std::fmt::Write;

use gear_spec::{Layer, LayerGraph, LayerKind};
use serde_json::json;

use crate::cli::GraphFormat;
use crate::output;
use crate::request::Session;

/// Prints the graph on stdout.
pub fn run(session: &Session, format: GraphFormat) {
    let g = &session.graph;
    let text = match format {
        GraphFormat::Tree => tree(g),
        GraphFormat::Dot => dot(g),
        GraphFormat::Json => json_text(g),
    };
    output::stdout(&text);
}

fn describe(layer: &Layer) -> String {
    let d = &layer.decl;
    match layer.kind {
        LayerKind::External => format!("external {}", d.image),
        LayerKind::Layer => format!("layer {}", d.image),
        LayerKind::Gear => format!("gear {}:{}", d.image, d.version.as_deref().unwrap_or("?")),
    }
}

fn tree(g: &LayerGraph) -> String {
    fn walk(g: &LayerGraph, i: usize, prefix: &str, last: bool, root: bool, out: &mut String) {
        let layer = g.layer(i);
        let (branch, next) = match (root, last) {
            (true, _) => ("", String::new()),
            (false, true) => ("└── ", format!("{prefix}    ")),
            (false, false) => ("├── ", format!("{prefix}│   ")),
        };
        let _ = writeln!(out, "{prefix}{branch}{} ({})", layer.name, describe(layer));
        let children = g.children(i);
        for (k, &c) in children.iter().enumerate() {
            walk(g, c, &next, k + 1 == children.len(), false, out);
        }
    }
    let mut out = String::new();
    for &i in g.build_order() {
        if g.parent(i).is_none() {
            walk(g, i, "", true, true, &mut out);
        }
    }
    out
}

fn dot(g: &LayerGraph) -> String {
    let mut out = String::from("digraph layers {\n    rankdir=LR;\n");
    for &i in g.build_order() {
        let layer = g.layer(i);
        let shape = match layer.kind {
            LayerKind::External => "box, style=dashed",
            LayerKind::Layer => "box",
            LayerKind::Gear => "box, style=rounded",
        };
        let _ = writeln!(
            out,
            "    {:?} [shape={shape}, label={:?}];",
            layer.name,
            format!("{}\n{}", layer.name, describe(layer))
        );
    }
    for &i in g.build_order() {
        if let Some(p) = g.parent(i) {
            let _ = writeln!(out, "    {:?} -> {:?};", g.layer(p).name, g.layer(i).name);
        }
    }
    out.push_str("}\n");
    out
}

fn json_text(g: &LayerGraph) -> String {
    let layers: Vec<serde_json::Value> = g
        .build_order()
        .iter()
        .map(|&i| {
            let layer = g.layer(i);
            json!({
                "name": layer.name,
                "kind": layer.kind.as_str(),
                "parent": g.parent(i).map(|p| g.layer(p).name.clone()),
                "image": layer.decl.image,
                "version": layer.decl.version,
                "dir": layer.rel_dir,
                "children": g.children(i).iter().map(|&c| g.layer(c).name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({ "layers": layers })).expect("json");
    s.push('\n');
    s
}
