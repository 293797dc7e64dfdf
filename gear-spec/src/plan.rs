//! The build plan: for each selected layer, in build order, everything a build consumes —
//! image references and tags, Dockerfile, manifest, build context and fingerprint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use rayon::prelude::*;

use crate::context::{self, Context, ContextFile};
use crate::diagnostic::{Problem, Problems};
use crate::dockerfile::{self, DockerfileInput};
use crate::fingerprint::{
    self, FileDigest, Fingerprint, FingerprintError, FingerprintInput, HashCache, ParentInput,
};
use crate::gear_lock::{BaseKey, GearLock, LockedBase};
use crate::graph::LayerGraph;
use crate::layer::{Layer, LayerKind};
use crate::manifest::{self, Manifest};
use crate::model::{Decl, Distro};
use crate::platform::Platform;
use crate::rust::{self, BuildPlan, CargoWorkspace};
use crate::step::Recipe;

/// Settings that change what is planned.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// External image references replaced by others (`FROM=TO`), e.g. a site mirror.
    pub substitutions: BTreeMap<String, String>,
    /// Where the file-digest cache lives; None disables it.
    pub hash_cache: Option<PathBuf>,
    /// The digests external images are locked to (`Gear.lock`).
    pub lock: GearLock,
    /// The workspace's platform: every chain's unless its external layer sets another.
    pub platform: Platform,
    /// The Cargo workspace and host toolchain, for layers that build a Cargo package
    /// (`[gear.cargo]`); None outside a Cargo workspace.
    pub cargo: Option<Arc<CargoWorkspace>>,
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

/// One layer, ready to build or pull.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    /// Index in the graph.
    pub index: usize,
    /// Layer name.
    pub name: String,
    /// The directory holding its Gear.toml.
    pub dir: PathBuf,
    /// The fingerprint of everything that reaches the image.
    pub fingerprint: Fingerprint,
    /// What the image is pulled or built for.
    pub platform: Platform,
    /// How the image comes to be: pulled, or built on its parent.
    pub source: LayerSource,
}

/// How a planned layer's image comes to be.
#[derive(Debug, Clone)]
pub enum LayerSource {
    /// An image pulled from a registry, never built.
    External(ExternalImage),
    /// An image built on its parent from a generated Dockerfile.
    Built(Box<BuiltImage>),
}

/// An external layer's image.
#[derive(Debug, Clone)]
pub struct ExternalImage {
    /// The reference to pull and build on: the declared one or its substitute, with
    /// `@digest` when a registry digest pins it.
    pub reference: String,
    /// The declared reference, its substitute and the platform: its `Gear.lock` entry's key.
    pub key: BaseKey,
    /// What pins the image to one content.
    pub pin: BasePin,
}

/// What pins an external image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasePin {
    /// `digest` written in its Gear.toml (dropped when a substitute replaces the image).
    Declared(String),
    /// Its `Gear.lock` entry.
    Locked(LockedBase),
    /// Nothing yet: the next `cargo gear build` records what it resolves to.
    Unlocked,
}

impl BasePin {
    /// The digest the fingerprint covers, when pinned.
    pub fn digest(&self) -> Option<&str> {
        match self {
            BasePin::Declared(d) => Some(d),
            BasePin::Locked(l) => Some(l.pin().as_str()),
            BasePin::Unlocked => None,
        }
    }
}

/// Everything a build of one layer consumes.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The parent's position in [`Plan::layers`] (always before this layer).
    pub parent: usize,
    /// The image repository.
    pub image: String,
    /// `repository:gear-<12 hex of fingerprint>`.
    pub content_tag: String,
    /// The generated Dockerfile.
    pub dockerfile: String,
    /// The declared environment of the layer and its ancestors, root first.
    pub environment: IndexMap<String, String>,
    /// The files of the build context, each with the digest the fingerprint covers.
    pub files: Vec<PlannedFile>,
    /// Build arguments.
    pub args: IndexMap<String, String>,
    /// A digest of each declared section that reaches the Dockerfile, to say which one
    /// changed (see [`crate::state`]).
    pub sections: BTreeMap<String, String>,
    /// What makes the layer a gear: its manifest and version tag.
    pub gear: Option<GearImage>,
    /// The Cargo package whose binary the image ships (`[gear.cargo]`).
    pub cargo: Option<BuildPlan>,
}

/// One file of a build context and the digest its layer's fingerprint covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Absolute, canonical path of the file on disk (a symlink's target).
    pub source: PathBuf,
    /// Where it goes in the tar, its mode, and its size and sha256 when planned: the bytes
    /// sent to the engine must be these.
    pub digest: FileDigest,
}

/// The parts of a built layer that only a gear has.
#[derive(Debug, Clone)]
pub struct GearImage {
    /// Where the manifest goes in the build context (see [`dockerfile::manifest_paths`]).
    pub manifest_paths: &'static [&'static str],
    /// The generated manifest.json (with the declared environment).
    pub manifest: Manifest,
    /// `repository:version`.
    pub version_tag: String,
}

impl PlannedLayer {
    /// External, layer or gear.
    pub fn kind(&self) -> LayerKind {
        match &self.source {
            LayerSource::External(_) => LayerKind::External,
            LayerSource::Built(b) if b.gear.is_some() => LayerKind::Gear,
            LayerSource::Built(_) => LayerKind::Layer,
        }
    }

    /// The reference children use after `FROM`, and the reference that proves the layer
    /// exists: an external layer's pulled reference, a built layer's content tag.
    pub fn reference(&self) -> &str {
        match &self.source {
            LayerSource::External(e) => &e.reference,
            LayerSource::Built(b) => &b.content_tag,
        }
    }

    /// The image repository (built) or the reference pulled (external).
    pub fn image(&self) -> &str {
        match &self.source {
            LayerSource::External(e) => &e.reference,
            LayerSource::Built(b) => &b.image,
        }
    }

    /// The image to pull, when the layer is external.
    pub fn external(&self) -> Option<&ExternalImage> {
        match &self.source {
            LayerSource::External(e) => Some(e),
            LayerSource::Built(_) => None,
        }
    }

    /// The build details, unless the layer is external.
    pub fn built(&self) -> Option<&BuiltImage> {
        match &self.source {
            LayerSource::External(_) => None,
            LayerSource::Built(b) => Some(b),
        }
    }

    /// The gear parts, when the layer is a gear.
    pub fn gear(&self) -> Option<&GearImage> {
        self.built().and_then(|b| b.gear.as_ref())
    }

    /// The declared reference a substitution replaced, for an external layer.
    pub fn substituted_from(&self) -> Option<&str> {
        match &self.source {
            LayerSource::External(e) => e.key.substitute.is_some().then_some(e.key.image.as_str()),
            LayerSource::Built(_) => None,
        }
    }
}

impl BuiltImage {
    /// The context files' digests, in context order.
    pub fn digests(&self) -> impl Iterator<Item = &FileDigest> {
        self.files.iter().map(|f| &f.digest)
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

    /// The parent of a planned layer (None for an external one).
    pub fn parent(&self, layer: &PlannedLayer) -> Option<&PlannedLayer> {
        layer.built().map(|b| &self.layers[b.parent])
    }
}

/// The build contexts of the layers in `order` (None for external ones), with every
/// path problem found, in `order`. Declarations were checked when the graph was loaded.
/// The layers' directories are walked in parallel: on a large tree, walking them one after
/// the other was a fifth of a warm plan.
/// A layer that builds a Cargo package also gets that package's sources (see [`rust`]).
pub fn contexts(
    graph: &LayerGraph,
    order: &[usize],
    cargo: Option<&CargoWorkspace>,
) -> Result<Vec<Option<Context>>, Problems> {
    let selected: Vec<Option<Result<Context, Problems>>> = order
        .par_iter()
        .map(|&i| {
            let layer = graph.layer(i);
            layer.kind.is_built().then(|| {
                let mut context = context::select(layer);
                if let Some(decl) = &layer.decl.cargo {
                    match (rust::resolve(layer, decl, cargo), &mut context) {
                        (Ok(resolved), Ok(context)) => {
                            context.files.extend(resolved.files);
                            context.files.sort_by(|a, b| a.tar_path.cmp(&b.tar_path));
                            context.cargo = Some(resolved.plan);
                        }
                        (Err(p), Ok(_)) => context = Err(p),
                        (Err(p), Err(found)) => found.extend([p]),
                        (Ok(_), Err(_)) => {}
                    }
                }
                context
            })
        })
        .collect();
    let mut problems = Problems::default();
    let mut contexts = Vec::with_capacity(order.len());
    for s in selected {
        match s {
            Some(Ok(c)) => contexts.push(Some(c)),
            Some(Err(p)) => {
                problems.extend([p]);
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
    // The hash cache is read while the contexts are walked.
    let (contexts, cache) = rayon::join(
        || contexts(graph, &order, opts.cargo.as_deref()),
        || {
            opts.hash_cache
                .as_deref()
                .map(HashCache::load)
                .unwrap_or_default()
        },
    );
    let contexts = contexts?;

    // Hash every context file of every layer in one parallel batch.
    let all: Vec<&ContextFile> = contexts.iter().flatten().flat_map(|c| &c.files).collect();
    let mut digests = fingerprint::digest_files(&all, &cache)?.into_iter();
    drop(all);
    if let Some(path) = &opts.hash_cache {
        // The cache only saves time: failing to write it must not fail the plan.
        let _ = cache.save(path);
    }

    let mut planned: Vec<PlannedLayer> = Vec::with_capacity(order.len());
    let mut slot_of = vec![usize::MAX; graph.layers().len()];
    for (&i, context) in order.iter().zip(contexts) {
        let layer = graph.layer(i);
        let parent = graph.parent(i).map(|p| slot_of[p]);
        let platform = graph.platform(i, &opts.platform);
        let (fingerprint, source) = match (context, parent) {
            (Some(mut context), Some(parent)) => {
                let files: Vec<PlannedFile> = std::mem::take(&mut context.files)
                    .into_iter()
                    .zip(digests.by_ref())
                    .map(|(file, digest)| PlannedFile {
                        source: file.source,
                        digest,
                    })
                    .collect();
                let built = Built {
                    parent_slot: parent,
                    context,
                    files,
                    platform: &platform,
                };
                plan_built(graph, i, &planned[parent], built)
                    .map_err(|p| PlanError::Invalid(Problems::from_iter([p])))?
            }
            // External layers (and, defensively, a built layer the graph gave no parent:
            // validation refuses those before planning).
            _ => plan_external(&layer.decl, opts, &platform),
        };
        slot_of[i] = planned.len();
        planned.push(PlannedLayer {
            index: i,
            name: layer.name.clone(),
            dir: layer.dir.clone(),
            fingerprint,
            platform,
            source,
        });
    }
    Ok(Plan { layers: planned })
}

/// An external layer: its reference (substituted, pinned) and platform are its whole
/// fingerprint. A `digest` in the Gear.toml pins it (unless substituted), else its Gear.lock
/// entry, if it has one.
fn plan_external(
    decl: &Decl,
    opts: &PlanOptions,
    platform: &Platform,
) -> (Fingerprint, LayerSource) {
    let (key, declared) = base_key(decl, &opts.substitutions, platform);
    let pin = match declared {
        Some(d) => BasePin::Declared(d.to_string()),
        None => opts
            .lock
            .get(&key)
            .map_or(BasePin::Unlocked, |l| BasePin::Locked(l.clone())),
    };
    let used = key.used();
    let fingerprint = fingerprint::fingerprint(&FingerprintInput {
        parent: ParentInput::External {
            reference: used,
            digest: pin.digest(),
        },
        platform: &platform.to_string(),
        dockerfile: "",
        generated: &[],
        files: &[],
        args: &IndexMap::new(),
    });
    let registry_digest = match &pin {
        BasePin::Declared(d) => Some(d.as_str()),
        BasePin::Locked(l) => l.digest.as_ref().map(|d| d.as_str()),
        BasePin::Unlocked => None,
    };
    let reference = match registry_digest {
        Some(d) => format!("{used}@{d}"),
        None => used.to_string(),
    };
    let source = LayerSource::External(ExternalImage {
        reference,
        key,
        pin,
    });
    (fingerprint, source)
}

/// An external layer's Gear.lock key, and the `digest` its Gear.toml pins it with (which
/// wins over the lock; a substitute drops it).
pub fn base_key<'a>(
    decl: &'a Decl,
    substitutions: &BTreeMap<String, String>,
    platform: &Platform,
) -> (BaseKey, Option<&'a str>) {
    let substitute = substitutions.get(&decl.image).cloned();
    let declared = decl.digest.as_deref().filter(|_| substitute.is_none());
    let key = BaseKey {
        image: decl.image.clone(),
        substitute,
        platform: platform.clone(),
    };
    (key, declared)
}

/// What [`plan_built`] builds a layer from, besides the graph and its planned parent.
struct Built<'a> {
    /// The parent's position in the plan.
    parent_slot: usize,
    /// Its build context.
    context: Context,
    /// The context's files with their digests.
    files: Vec<PlannedFile>,
    /// Its platform (the chain's).
    platform: &'a Platform,
}

/// A built layer on its planned parent, from its build context ([`Built`]).
fn plan_built(
    graph: &LayerGraph,
    i: usize,
    parent: &PlannedLayer,
    built: Built<'_>,
) -> Result<(Fingerprint, LayerSource), Problem> {
    let Built {
        parent_slot,
        context,
        files,
        platform,
    } = built;
    let layer = graph.layer(i);
    let decl = &layer.decl;
    let parent_image = graph
        .parent(i)
        .map_or("", |p| graph.layer(p).decl.image.as_str());
    let input = DockerfileInput {
        layer,
        from: parent.reference(),
        distro: graph.distro(i),
        copy_dest: context.copy_dest.as_deref(),
        placed: &context.placed,
        python_deps: &context.python_deps,
        parent_image,
        own: context.own.as_ref(),
        cargo: context.cargo.as_ref(),
    };
    let environment = manifest::overlay_environment(
        parent.built().map(|p| &p.environment),
        &dockerfile::declared_environment(&input),
    );
    if let Some(problem) = context
        .cargo
        .as_ref()
        .and_then(|c| rust::check_platform(layer, c, platform))
    {
        return Err(problem);
    }
    let dockerfile = dockerfile::render(&input)?;
    let manifest = (layer.kind == LayerKind::Gear).then(|| {
        let mut manifest = Manifest::for_gear(layer, environment.clone());
        // A Rust gear without `command` runs its binary.
        if let (None, Some(cargo)) = (&manifest.command, &context.cargo) {
            manifest.command = Some(cargo.to.clone());
        }
        manifest
    });
    let manifest_bytes = manifest.as_ref().map(|m| m.render().into_bytes());
    let manifest_paths = dockerfile::manifest_paths(&layer.recipe);
    // A host-built binary is not known before it is compiled: the settings and toolchain
    // that compile it stand in for it.
    let cargo_settings = context.cargo.as_ref().map(|c| c.settings.as_str());
    let generated: Vec<(&str, &[u8])> = manifest_bytes
        .iter()
        .flat_map(|b| manifest_paths.iter().map(|p| (*p, b.as_slice())))
        .chain(cargo_settings.map(|s| (rust::SETTINGS_PATH, s.as_bytes())))
        .collect();
    let digests: Vec<&FileDigest> = files.iter().map(|f| &f.digest).collect();
    let fingerprint = fingerprint::fingerprint(&FingerprintInput {
        parent: ParentInput::Built(&parent.fingerprint),
        platform: &platform.to_string(),
        dockerfile: &dockerfile,
        generated: &generated,
        files: &digests,
        args: &decl.args,
    });
    let gear = manifest.map(|manifest| GearImage {
        version_tag: format!("{}:{}", decl.image, manifest.version),
        manifest,
        manifest_paths,
    });
    let built = BuiltImage {
        parent: parent_slot,
        image: decl.image.clone(),
        content_tag: format!("{}:gear-{}", decl.image, fingerprint.short()),
        dockerfile,
        environment,
        files,
        args: decl.args.clone(),
        sections: sections(
            layer,
            graph.distro(i),
            context.own.as_ref().map(|o| o.text.as_str()),
            cargo_settings,
        ),
        gear,
        cargo: context.cargo,
    };
    Ok((fingerprint, LayerSource::Built(Box::new(built))))
}

/// Digests of the declared sections that reach the Dockerfile (build args are compared
/// on their own): the short-form keys, each step as `step N (kind)`, or an own
/// Dockerfile's text.
/// A Rust layer adds its build settings and toolchain as `cargo`.
fn sections(
    layer: &Layer,
    distro: Distro,
    own_text: Option<&str>,
    cargo_settings: Option<&str>,
) -> BTreeMap<String, String> {
    let decl = &layer.decl;
    let digest = |v: serde_json::Value| fingerprint::sha256_hex(v.to_string().as_bytes());
    let mut sections = BTreeMap::from([
        (
            "distro".to_string(),
            digest(serde_json::json!(distro.as_str())),
        ),
        ("labels".to_string(), digest(serde_json::json!(decl.labels))),
        (
            "entrypoint".to_string(),
            digest(serde_json::json!(decl.entrypoint)),
        ),
        ("cmd".to_string(), digest(serde_json::json!(decl.cmd))),
    ]);
    if let Some(settings) = cargo_settings {
        sections.insert(
            "cargo".to_string(),
            fingerprint::sha256_hex(settings.as_bytes()),
        );
    }
    match &layer.recipe {
        Recipe::Short => sections.extend([
            (
                "packages".to_string(),
                digest(serde_json::json!(decl.packages)),
            ),
            ("pip".to_string(), digest(serde_json::json!(decl.pip))),
            ("env".to_string(), digest(serde_json::json!(decl.env))),
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
        ]),
        Recipe::Own(_) => {
            if let Some(own) = own_text {
                sections.insert(
                    "dockerfile-file".to_string(),
                    fingerprint::sha256_hex(own.as_bytes()),
                );
            }
        }
        Recipe::Steps(steps) => {
            for (i, (step, written)) in steps.iter().zip(&decl.steps).enumerate() {
                sections.insert(
                    format!("step {} ({})", i + 1, step.kind()),
                    digest(serde_json::json!(written)),
                );
            }
        }
    }
    sections
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
