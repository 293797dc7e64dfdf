//! The build plan: for each selected layer, in build order, everything a build consumes —
//! image references and tags, Dockerfile, manifest, build context and fingerprint.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use rayon::prelude::*;

use crate::context::{self, Context, ContextFile};
use crate::diagnostic::{Problem, Problems};
use crate::dockerfile::{self, DockerfileInput};
use crate::fingerprint::{
    self, FileDigest, Fingerprint, FingerprintError, FingerprintInput, HashCache, ParentInput,
};
use crate::graph::LayerGraph;
use crate::layer::LayerKind;
use crate::manifest::Manifest;
use crate::model::{Decl, Distro};

/// Settings that change what is planned.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// External image references replaced by others (`FROM=TO`), e.g. a site mirror.
    pub substitutions: BTreeMap<String, String>,
    /// Where the file-digest cache lives; None disables it.
    pub hash_cache: Option<PathBuf>,
}

/// Why planning failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    /// The Gear.toml files have problems.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] Problems),
    /// A context file could not be hashed.
    #[error(transparent)]
    #[diagnostic(code(gear::hash), help("check that the file is readable"))]
    Fingerprint(#[from] FingerprintError),
}

/// One layer, ready to build.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    /// Index in the graph.
    pub index: usize,
    /// Layer name.
    pub name: String,
    /// The directory holding its Gear.toml.
    pub dir: PathBuf,
    /// External, layer or gear.
    pub kind: LayerKind,
    /// Parent layer name.
    pub parent: Option<String>,
    /// External: the reference to pull (after substitution, with `@digest` when pinned).
    /// Built: the image repository.
    pub image: String,
    /// External: the declared reference, when a substitution replaced it.
    pub substituted_from: Option<String>,
    /// Built: `repository:gear-<12 hex of fingerprint>`.
    pub content_tag: Option<String>,
    /// Gears: `repository:version`.
    pub version_tag: Option<String>,
    /// The fingerprint of everything that reaches the image.
    pub fingerprint: Fingerprint,
    /// Built: the generated Dockerfile.
    pub dockerfile: Option<String>,
    /// Gears: the generated manifest.json (with the declared environment).
    pub manifest: Option<Manifest>,
    /// Built: the declared environment of the layer and its ancestors, root first.
    pub environment: IndexMap<String, String>,
    /// Built: the files of the build context.
    pub context: Vec<ContextFile>,
    /// Built: their digests, in the same order.
    pub digests: Vec<FileDigest>,
    /// Built: build arguments.
    pub args: IndexMap<String, String>,
    /// Built: a digest of each declared section that reaches the Dockerfile, to say
    /// which one changed (see [`crate::state`]).
    pub sections: BTreeMap<String, String>,
}

impl PlannedLayer {
    /// The reference children use after `FROM`, and the reference that proves the layer exists.
    pub fn reference(&self) -> &str {
        self.content_tag.as_deref().unwrap_or(&self.image)
    }

    /// Generated files that go into the context besides `context`: (path in tar, bytes).
    pub fn generated(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some(d) = &self.dockerfile {
            out.push((dockerfile::DOCKERFILE_PATH, d.clone().into_bytes()));
        }
        if let Some(m) = &self.manifest {
            out.push((dockerfile::MANIFEST_PATH, m.render().into_bytes()));
        }
        out
    }
}

/// Layers in build order (parents first).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The planned layers.
    pub layers: Vec<PlannedLayer>,
}

impl Plan {
    /// A layer of the plan by name.
    pub fn get(&self, name: &str) -> Option<&PlannedLayer> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// The build contexts of the layers in `order` (None for external ones), with every
/// path problem found, in `order`. Declarations were checked when the graph was loaded.
/// The layers' directories are walked in parallel: on a large tree, walking them one after
/// the other was a fifth of a warm plan.
pub fn contexts(graph: &LayerGraph, order: &[usize]) -> Result<Vec<Option<Context>>, Problems> {
    let selected: Vec<Option<Result<Context, Problems>>> = order
        .par_iter()
        .map(|&i| {
            let layer = graph.layer(i);
            layer.kind.is_built().then(|| context::select(layer))
        })
        .collect();
    let mut problems = Problems::default();
    let mut contexts = Vec::with_capacity(order.len());
    for s in selected {
        match s {
            Some(Ok(c)) => contexts.push(Some(c)),
            Some(Err(p)) => {
                problems.0.extend(p.0);
                contexts.push(None);
            }
            None => contexts.push(None),
        }
    }
    problems.into_result(contexts)
}

/// Plans the selected layers and their ancestors.
pub fn plan(graph: &LayerGraph, selected: &[usize], opts: &PlanOptions) -> Result<Plan, PlanError> {
    let order = graph.with_ancestors(selected);
    let contexts = contexts(graph, &order)?;

    // Hash every context file of every layer in one parallel batch.
    let cache = opts
        .hash_cache
        .as_deref()
        .map(HashCache::load)
        .unwrap_or_default();
    let all: Vec<ContextFile> = contexts
        .iter()
        .flatten()
        .flat_map(|c| c.files.iter().cloned())
        .collect();
    let mut digests = fingerprint::digest_files(&all, &cache)?.into_iter();
    if let Some(path) = &opts.hash_cache {
        // The cache only saves time: failing to write it must not fail the plan.
        let _ = cache.save(path);
    }

    let mut planned: Vec<PlannedLayer> = Vec::with_capacity(order.len());
    let mut slot_of = vec![usize::MAX; graph.layers().len()];
    for (&i, context) in order.iter().zip(contexts) {
        let layer = graph.layer(i);
        let decl = &layer.decl;
        let parent = graph.parent(i).map(|p| &planned[slot_of[p]]);
        let layer_digests: Vec<FileDigest> = match &context {
            Some(c) => digests.by_ref().take(c.files.len()).collect(),
            None => Vec::new(),
        };
        let p = match (layer.kind, parent) {
            (LayerKind::External, _) | (_, None) => {
                let substitute = opts.substitutions.get(&decl.image);
                let mut reference = substitute.cloned().unwrap_or_else(|| decl.image.clone());
                let digest = if substitute.is_some() {
                    None
                } else {
                    decl.digest.as_deref()
                };
                let fingerprint = fingerprint::fingerprint(&FingerprintInput {
                    parent: ParentInput::External {
                        reference: &reference,
                        digest,
                    },
                    dockerfile: "",
                    generated: &[],
                    files: &[],
                    args: &IndexMap::new(),
                });
                if let Some(d) = digest {
                    reference = format!("{reference}@{d}");
                }
                PlannedLayer {
                    index: i,
                    name: layer.name.clone(),
                    dir: layer.dir.clone(),
                    kind: layer.kind,
                    parent: None,
                    image: reference,
                    substituted_from: substitute.map(|_| decl.image.clone()),
                    content_tag: None,
                    version_tag: None,
                    fingerprint,
                    dockerfile: None,
                    manifest: None,
                    environment: IndexMap::new(),
                    context: Vec::new(),
                    digests: Vec::new(),
                    args: IndexMap::new(),
                    sections: BTreeMap::new(),
                }
            }
            (kind, Some(parent)) => {
                let context = context.expect("built layers have a context");
                let mut environment = parent.environment.clone();
                for (k, v) in &decl.env {
                    environment.shift_remove(k);
                    environment.insert(k.clone(), v.clone());
                }
                let dockerfile = dockerfile::render(&DockerfileInput {
                    layer,
                    from: parent.reference(),
                    distro: graph.distro(i),
                    copy_dest: context.copy_dest.as_deref(),
                    placed: &context.placed,
                });
                let manifest = (kind == LayerKind::Gear)
                    .then(|| Manifest::for_gear(layer, environment.clone()));
                let manifest_bytes = manifest.as_ref().map(|m| m.render().into_bytes());
                let generated: Vec<(&str, &[u8])> = manifest_bytes
                    .iter()
                    .map(|b| (dockerfile::MANIFEST_PATH, b.as_slice()))
                    .collect();
                let fingerprint = fingerprint::fingerprint(&FingerprintInput {
                    parent: ParentInput::Built(&parent.fingerprint),
                    dockerfile: &dockerfile,
                    generated: &generated,
                    files: &layer_digests,
                    args: &decl.args,
                });
                let version_tag = manifest
                    .as_ref()
                    .and_then(|_| decl.version.as_ref())
                    .map(|v| format!("{}:{v}", decl.image));
                PlannedLayer {
                    index: i,
                    name: layer.name.clone(),
                    dir: layer.dir.clone(),
                    kind,
                    parent: Some(parent.name.clone()),
                    image: decl.image.clone(),
                    substituted_from: None,
                    content_tag: Some(format!("{}:gear-{}", decl.image, fingerprint.short())),
                    version_tag,
                    fingerprint,
                    dockerfile: Some(dockerfile),
                    manifest,
                    environment,
                    context: context.files,
                    digests: layer_digests,
                    args: decl.args.clone(),
                    sections: sections(decl, graph.distro(i)),
                }
            }
        };
        slot_of[i] = planned.len();
        planned.push(p);
    }
    Ok(Plan { layers: planned })
}

/// Digests of the declared sections that reach the Dockerfile (build args are compared
/// on their own).
fn sections(decl: &Decl, distro: Distro) -> BTreeMap<String, String> {
    let digest = |v: serde_json::Value| fingerprint::sha256_hex(v.to_string().as_bytes());
    BTreeMap::from([
        (
            "distro".to_string(),
            digest(serde_json::json!(distro.as_str())),
        ),
        (
            "packages".to_string(),
            digest(serde_json::json!(decl.packages)),
        ),
        ("pip".to_string(), digest(serde_json::json!(decl.pip))),
        ("env".to_string(), digest(serde_json::json!(decl.env))),
        ("labels".to_string(), digest(serde_json::json!(decl.labels))),
        ("user".to_string(), digest(serde_json::json!(decl.user))),
        (
            "workdir".to_string(),
            digest(serde_json::json!(decl.workdir)),
        ),
        ("run".to_string(), digest(serde_json::json!(decl.run))),
        ("copy".to_string(), digest(serde_json::json!(decl.copy))),
        ("files".to_string(), digest(serde_json::json!(decl.files))),
        (
            "dockerfile".to_string(),
            digest(serde_json::json!(decl.dockerfile)),
        ),
        (
            "entrypoint".to_string(),
            digest(serde_json::json!(decl.entrypoint)),
        ),
        ("cmd".to_string(), digest(serde_json::json!(decl.cmd))),
    ])
}

/// A problem for a `-p NAME` that names no layer.
pub fn unknown_layer(graph: &LayerGraph, name: &str) -> Problem {
    let p = Problem::new(
        "gear::unknown-layer",
        format!("no layer named `{name}` in this workspace"),
    );
    match graph.suggest(name) {
        Some(best) => p.help(format!("did you mean `{best}`?")),
        None => p.help("`cargo gear graph` lists the layers"),
    }
}
