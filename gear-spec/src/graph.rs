//! The layer graph: parents resolved by name into a DAG (petgraph), build order, selection.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use rayon::prelude::*;

use crate::diagnostic::{Problem, Problems, did_you_mean};
use crate::layer::{Layer, LayerKind};
use crate::model::Distro;
use crate::platform::Platform;
use crate::reference::canonical_repository;

/// Resolved layers. Indices into [`LayerGraph::layers`] identify layers everywhere.
#[derive(Debug)]
pub struct LayerGraph {
    layers: Vec<Layer>,
    /// Edge parent → child.
    graph: DiGraph<usize, ()>,
    parents: Vec<Option<usize>>,
    order: Vec<usize>,
    by_name: HashMap<String, usize>,
}

impl LayerGraph {
    /// Reads the Gear.toml of every directory, checks each layer ([`crate::validate`])
    /// and resolves the graph, reporting every problem found in all of them together.
    /// `root` is the directory paths are shown relative to.
    /// The files are read, parsed and checked in parallel; problems keep the order of `dirs`.
    pub fn load(dirs: &[PathBuf], root: &Path) -> Result<LayerGraph, Problems> {
        let read: Vec<(Option<Layer>, Problems)> = dirs
            .par_iter()
            .map(|dir| {
                let mut problems = Problems::default();
                let layer = Layer::read(dir, root, &mut problems);
                if let Some(layer) = &layer {
                    problems.extend(crate::validate::check_layer(layer));
                }
                (layer, problems)
            })
            .collect();
        let mut problems = Problems::default();
        let mut layers = Vec::with_capacity(read.len());
        for (layer, found) in read {
            problems.extend([found]);
            layers.extend(layer);
        }
        LayerGraph::resolve_read(layers, problems)
    }

    /// [`LayerGraph::load`] after the reading: checks each layer read and resolves the
    /// graph; `problems` are those found while reading (the fuzz entry point
    /// [`crate::fuzz`] reads text it made with [`Layer::parse`]).
    pub fn from_read(layers: Vec<Layer>, mut problems: Problems) -> Result<LayerGraph, Problems> {
        for layer in &layers {
            problems.extend(crate::validate::check_layer(layer));
        }
        LayerGraph::resolve_read(layers, problems)
    }

    /// Resolves layers read and checked, adding the graph's problems to `problems`.
    fn resolve_read(layers: Vec<Layer>, mut problems: Problems) -> Result<LayerGraph, Problems> {
        match LayerGraph::resolve(layers) {
            Ok(graph) => problems.into_result(graph),
            Err(more) => {
                problems.extend([more]);
                Err(problems)
            }
        }
    }

    /// Resolves every layer's `from` and checks the graph: one layer per name, known
    /// parents, no cycles. All problems are reported together.
    pub fn resolve(mut layers: Vec<Layer>) -> Result<LayerGraph, Problems> {
        // Stable, path-independent order: by name, then directory.
        layers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.rel_dir.cmp(&b.rel_dir)));
        let mut problems = Problems::default();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, layer) in layers.iter().enumerate() {
            if let Some(&first) = by_name.get(&layer.name) {
                let other = &layers[first];
                problems.push(
                    Problem::new(
                        "gear::duplicate-name",
                        format!("two layers are named `{}`", layer.name),
                    )
                    .at(&layer.source, layer.span(&["name"]))
                    .label(format!("also declared in {}", other.source.display))
                    .help(format!(
                        "rename one of them: names must be unique in the workspace ({} and {})",
                        other.source.display, layer.source.display
                    )),
                );
            } else {
                by_name.insert(layer.name.clone(), i);
            }
        }

        let mut graph = DiGraph::with_capacity(layers.len(), layers.len());
        let nodes: Vec<NodeIndex> = (0..layers.len()).map(|i| graph.add_node(i)).collect();
        let mut parents = vec![None; layers.len()];
        for (i, layer) in layers.iter().enumerate() {
            let Some(from) = layer.decl.from.as_deref() else {
                continue;
            };
            match by_name.get(from) {
                Some(&p) => {
                    parents[i] = Some(p);
                    graph.add_edge(nodes[p], nodes[i], ());
                }
                None => {
                    let help = match did_you_mean(from, by_name.keys().map(String::as_str)) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!(
                            "declare a layer named `{from}` in its own directory with a Gear.toml, or use one of: {}",
                            sorted_names(&by_name)
                        ),
                    };
                    problems.push(
                        Problem::new(
                            "gear::unknown-parent",
                            format!(
                                "layer `{}` is built `from` unknown layer `{from}`",
                                layer.name
                            ),
                        )
                        .at(&layer.source, layer.span(&["from"]))
                        .label("no layer has this name")
                        .help(help),
                    );
                }
            }
        }

        // A built layer tagged into its parent's repository would mix (or, for an external
        // parent, replace) the parent's tags with its own.
        for (i, layer) in layers.iter().enumerate() {
            let Some(p) = parents[i] else { continue };
            let parent = &layers[p];
            if p == i || !layer.kind.is_built() {
                continue;
            }
            let (Some(own), Some(theirs)) = (
                canonical_repository(&layer.decl.image),
                canonical_repository(&parent.decl.image),
            ) else {
                continue;
            };
            if own == theirs {
                problems.push(
                    Problem::new(
                        "gear::parent-same-image",
                        format!(
                            "{} `{}` is built into the image repository of its parent `{}` (`{}`)",
                            layer.table(),
                            layer.name,
                            parent.name,
                            parent.decl.image
                        ),
                    )
                    .at(&layer.source, layer.span(&["image"]))
                    .label("the parent's repository")
                    .help(format!(
                        "give `{}` its own repository, e.g. `image = \"{}-{}\"`: its tags would otherwise land among its parent's",
                        layer.name,
                        own.strip_prefix("docker.io/library/")
                            .or_else(|| own.strip_prefix("docker.io/"))
                            .unwrap_or(&own),
                        layer.name
                    )),
                );
            }
        }

        for scc in tarjan_scc(&graph) {
            let is_cycle = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
            if !is_cycle {
                continue;
            }
            let cycle = cycle_path(&parents, graph[scc[0]]);
            let names: Vec<&str> = cycle.iter().map(|&i| layers[i].name.as_str()).collect();
            let start = &layers[cycle[0]];
            problems.push(
                Problem::new(
                    "gear::cycle",
                    format!(
                        "layers depend on each other in a cycle: {}",
                        names.join(" → ")
                    ),
                )
                .at(&start.source, start.span(&["from"]))
                .label("this `from` closes the cycle")
                .help(
                    "a layer cannot be built on its own descendant: change one `from` in the cycle",
                ),
            );
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        let order = build_order(&layers, &graph);
        Ok(LayerGraph {
            layers,
            graph,
            parents,
            order,
            by_name,
        })
    }

    /// All layers, in name order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// One layer.
    pub fn layer(&self, i: usize) -> &Layer {
        &self.layers[i]
    }

    /// The index of the layer with this name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// A name close to `name`, for "did you mean".
    pub fn suggest(&self, name: &str) -> Option<&str> {
        did_you_mean(name, self.layers.iter().map(|l| l.name.as_str()))
    }

    /// The parent of a layer.
    pub fn parent(&self, i: usize) -> Option<usize> {
        self.parents[i]
    }

    /// The layer's parent chain, nearest first.
    pub fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.parents[i], |&p| self.parents[p])
    }

    /// Direct children, in name order.
    pub fn children(&self, i: usize) -> Vec<usize> {
        let mut c: Vec<usize> = self
            .graph
            .edges_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(|e| self.graph[e.target()])
            .collect();
        c.sort_unstable();
        c
    }

    /// Every layer in build order: parents before children, ties by name.
    pub fn build_order(&self) -> &[usize] {
        &self.order
    }

    /// The package manager family in force for a layer: its own, or the nearest ancestor's,
    /// or Debian when nobody says.
    pub fn distro(&self, i: usize) -> Distro {
        std::iter::once(i)
            .chain(self.ancestors(i))
            .find_map(|j| self.layers[j].own_distro())
            .unwrap_or(Distro::Debian)
    }

    /// The platform a layer is pulled or built for: the one declared on the external layer
    /// its chain starts from, else `default` (the workspace's). Validation refuses
    /// `platform` on built layers and an unparsable one before anything is planned.
    pub fn platform(&self, i: usize, default: &Platform) -> Platform {
        std::iter::once(i)
            .chain(self.ancestors(i))
            .find_map(|j| self.layers[j].decl.platform.as_deref()?.parse().ok())
            .unwrap_or_else(|| default.clone())
    }

    /// The selected layers plus their ancestors, in build order.
    pub fn with_ancestors(&self, selected: &[usize]) -> Vec<usize> {
        let mut keep = vec![false; self.layers.len()];
        for &i in selected {
            keep[i] = true;
            for a in self.ancestors(i) {
                keep[a] = true;
            }
        }
        self.order.iter().copied().filter(|&i| keep[i]).collect()
    }

    /// Kinds of every layer, convenient for tests and output.
    pub fn kind(&self, i: usize) -> LayerKind {
        self.layers[i].kind
    }
}

fn sorted_names(by_name: &HashMap<String, usize>) -> String {
    let names: BTreeSet<&str> = by_name.keys().map(String::as_str).collect();
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Follows parents from `start` until a layer repeats, returning the cycle in
/// parent → child order, with the first layer repeated at the end.
fn cycle_path(parents: &[Option<usize>], start: usize) -> Vec<usize> {
    let mut seen = vec![usize::MAX; parents.len()];
    let mut walk = Vec::new();
    let mut cur = start;
    while seen[cur] == usize::MAX {
        seen[cur] = walk.len();
        walk.push(cur);
        match parents[cur] {
            Some(p) => cur = p,
            None => break,
        }
    }
    let mut cycle: Vec<usize> = walk[seen[cur]..].to_vec();
    cycle.reverse();
    // Start at the smallest index so the message does not depend on where we entered.
    let min = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, i)| **i)
        .map(|(k, _)| k)
        .unwrap_or(0);
    cycle.rotate_left(min);
    cycle.push(cycle[0]);
    cycle
}

/// Kahn's algorithm, always taking the ready layer with the smallest index (name order).
fn build_order(layers: &[Layer], graph: &DiGraph<usize, ()>) -> Vec<usize> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BTreeSet<usize> = (0..layers.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(layers.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for child in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            let c = graph[child];
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.insert(c);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::GEAR_TOML;

    fn layers(decls: &[(&str, &str)]) -> (tempfile::TempDir, Vec<Layer>) {
        let root = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        for (dir, text) in decls {
            let d = root.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(GEAR_TOML), text).unwrap();
            out.push(Layer::load(&d, root.path()).unwrap());
        }
        (root, out)
    }

    fn built(name: &str, from: &str) -> String {
        format!("[layer]\nname = \"{name}\"\nfrom = \"{from}\"\nimage = \"x/{name}\"\n")
    }

    #[test]
    fn order_and_distro() {
        let (_root, ls) = layers(&[
            ("c", &built("c", "b")),
            (
                "a",
                "[layer]\nname = \"a\"\nimage = \"a:1\"\ndistro = \"centos\"\n",
            ),
            ("b", &built("b", "a")),
            ("d", &built("d", "a")),
        ]);
        let g = LayerGraph::resolve(ls).unwrap();
        let names: Vec<&str> = g
            .build_order()
            .iter()
            .map(|&i| g.layer(i).name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(g.distro(g.find("c").unwrap()), Distro::Centos);
        let sel = g.with_ancestors(&[g.find("c").unwrap()]);
        assert_eq!(
            sel.iter()
                .map(|&i| g.layer(i).name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn cycle_is_printed_whole() {
        let (_root, ls) = layers(&[
            ("a", &built("a", "c")),
            ("b", &built("b", "a")),
            ("c", &built("c", "b")),
        ]);
        let errs = LayerGraph::resolve(ls).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs.iter().next().unwrap().message,
            "layers depend on each other in a cycle: a → b → c → a"
        );
    }

    #[test]
    fn unknown_parent_and_duplicate_reported_together() {
        let (_root, ls) = layers(&[
            ("a", "[layer]\nname = \"base\"\nimage = \"a:1\"\n"),
            ("b", &built("child", "bsae")),
            ("c", "[layer]\nname = \"base\"\nimage = \"c:1\"\n"),
        ]);
        let errs = LayerGraph::resolve(ls).unwrap_err();
        let codes: Vec<&str> = errs.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["gear::duplicate-name", "gear::unknown-parent"]);
        assert_eq!(
            errs.iter().nth(1).unwrap().help.as_deref(),
            Some("did you mean `base`?")
        );
    }

    #[test]
    fn a_built_layer_cannot_share_its_parents_repository() {
        let (_root, ls) = layers(&[
            ("py", "[layer]\nname = \"py\"\nimage = \"python:3.12\"\n"),
            (
                "mine",
                "[layer]\nname = \"mine\"\nfrom = \"py\"\nimage = \"docker.io/library/python\"\n",
            ),
            (
                "g",
                "[gear]\nname = \"g\"\nfrom = \"mine2\"\nimage = \"lab/g\"\nversion = \"1\"\n",
            ),
            (
                "mine2",
                "[layer]\nname = \"mine2\"\nfrom = \"py\"\nimage = \"lab/g\"\n",
            ),
        ]);
        let errs = LayerGraph::resolve(ls).unwrap_err();
        let found: Vec<(&str, &str, Option<&str>)> = errs
            .iter()
            .map(|p| (p.code, p.message.as_str(), p.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "gear::parent-same-image",
                    "gear `g` is built into the image repository of its parent `mine2` (`lab/g`)",
                    Some(
                        "give `g` its own repository, e.g. `image = \"lab/g-g\"`: its tags would otherwise land among its parent's"
                    )
                ),
                (
                    "gear::parent-same-image",
                    "layer `mine` is built into the image repository of its parent `py` (`python:3.12`)",
                    Some(
                        "give `mine` its own repository, e.g. `image = \"python-mine\"`: its tags would otherwise land among its parent's"
                    )
                ),
            ]
        );
    }
}
