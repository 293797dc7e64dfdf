//! Building a plan on the engine: what is fresh, what to build, pull or skip, in
//! dependency order and in parallel, with build records written only after a layer is
//! built and tagged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use gear_spec::dockerfile::DOCKERFILE_PATH;
use gear_spec::gear_lock::GEAR_LOCK;
use gear_spec::plan::{
    BasePin, BuiltImage, ExternalImage, GearImage, LayerSource, Plan, PlannedLayer,
};
use gear_spec::rust::{BuildPlace, BuildPlan};
use gear_spec::state::{ImageState, Reason, Record, Status};
use indexmap::IndexMap;

use crate::engine::{BuildRequest, Engine, EngineError, ImageInfo, TarEntry, split_tag};
use crate::error::CliError;
use crate::progress::{Event, Failure, Outcome, Reporter};
use crate::request::Session;
use crate::rust::Binaries;
use crate::team_registry::Registry;

/// Label holding a built image's full fingerprint (in the Dockerfile sent to the engine).
pub use gear_spec::dockerfile::FINGERPRINT_LABEL;

/// Engine requests in flight at once when inspecting many images.
const ENGINE_REQUESTS: usize = 16;

/// Label holding the name of the layer an image was built for (in the generated Dockerfile).
pub use gear_spec::dockerfile::LAYER_LABEL;

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Layers built at once.
    pub jobs: usize,
    /// After a failure, go on with layers that do not depend on it.
    pub keep_going: bool,
    /// Rebuild these layers (plan slots) even when fresh.
    pub force: Vec<bool>,
    /// Never pull.
    pub offline: bool,
    /// Look stale layers up in this registry and pull them instead of building.
    pub cache_from: Option<Registry>,
    /// Push newly built layers' content tags to this registry.
    pub cache_to: Option<Registry>,
    /// Build without the engine's build cache.
    pub no_cache: bool,
    /// The team registry: a gear built whose version it holds with other contents is warned
    /// about (`push` would refuse it).
    pub registry: Option<Registry>,
    /// These layers (plan slots) must come from the engine or the `cache_from` registry and are
    /// never built (`--no-build-ancestors`: a CI job builds only its own layer).
    pub pull_only: Vec<bool>,
}

impl BuildOptions {
    /// What `run`, `shell` and `push` build with: every stale layer of `plan`, one build per
    /// CPU, nothing forced.
    pub fn for_plan(plan: &Plan) -> BuildOptions {
        BuildOptions {
            jobs: default_jobs(),
            force: vec![false; plan.layers.len()],
            ..Default::default()
        }
    }
}

/// Where build records, logs and manifests go.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `target/gear/state`.
    pub state: PathBuf,
    /// `target/gear/logs`.
    pub logs: PathBuf,
}

/// What the engine holds for a plan: each layer's status and, for a built layer whose image is
/// present, that image's tags from the same inspect, so that fresh gears' version tags are
/// checked without asking again. (One image list filtered by [`FINGERPRINT_LABEL`] was tried
/// in place of the inspects: Docker 20.10 took 70–140 ms to list 86 labelled images out of
/// 494, against about 1 ms per inspect, many at once.)
#[derive(Debug, Default)]
pub struct EngineState {
    /// By plan slot.
    pub statuses: Vec<Status>,
    /// By plan slot: the image the layer is present as (a built layer's under its content
    /// tag with its fingerprint, an external one's under its reference), when it is.
    images: Vec<Option<ImageInfo>>,
}

impl EngineState {
    /// Whether the image under the content tag of the layer in plan slot `slot` also carries
    /// `tag`.
    fn tagged(&self, slot: usize, tag: &str) -> bool {
        self.images
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|info| info.repo_tags.iter().any(|t| t == tag))
    }
}

/// The status of every planned layer as the engine and the records see it.
pub async fn statuses(
    engine: &Engine,
    plan: &Plan,
    state_dir: &std::path::Path,
) -> Result<EngineState, EngineError> {
    // Many small requests: ask the engine about several layers at a time, keeping plan order.
    let inspected: Vec<(Status, Option<ImageInfo>)> = futures_util::stream::iter(&plan.layers)
        .map(|layer| async move {
            let (image, info) = image_state(engine, layer).await?;
            let parent = plan.parent(layer);
            let record = layer
                .built()
                .and_then(|_| Record::load(state_dir, &layer.name));
            let status = gear_spec::state::explain(layer, parent, record.as_ref(), image);
            Ok((status, info))
        })
        .buffered(ENGINE_REQUESTS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, EngineError>>()?;
    let (statuses, images) = inspected.into_iter().unzip();
    Ok(EngineState { statuses, images })
}

/// Whether the engine has the layer's image: for a built layer, its content tag carrying
/// its fingerprint label (and then that image's tags); for an external one, its reference.
pub async fn image_state(
    engine: &Engine,
    layer: &PlannedLayer,
) -> Result<(ImageState, Option<ImageInfo>), EngineError> {
    let info = engine.image(layer.reference()).await?;
    let present = info.filter(|info| {
        layer.built().is_none()
            || info.labels.get(FINGERPRINT_LABEL).map(String::as_str)
                == Some(&layer.fingerprint.to_string())
    });
    let state = match present {
        Some(_) => ImageState::Present,
        None => ImageState::Missing,
    };
    Ok((state, present))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pending,
    Running,
    Done(Outcome),
}

/// Builds every layer of the plan that is not fresh (`status` comes from [`statuses`]).
/// Returns the outcome of each layer, in plan order. Dropping the future (Ctrl-C) drops
/// the running builds' connections, which makes the engine cancel them; nothing is
/// recorded for a layer that was not built and tagged.
/// `binaries` holds what [`compile_rust`] made for the host-built Rust layers.
pub async fn run(
    engine: &Engine,
    plan: &Plan,
    state: &EngineState,
    opts: &BuildOptions,
    paths: &Paths,
    reporter: &Reporter,
    mut binaries: Binaries,
) -> Vec<Outcome> {
    let n = plan.layers.len();
    let parent_slot: Vec<Option<usize>> = plan
        .layers
        .iter()
        .map(|l| l.built().map(|b| b.parent))
        .collect();
    let mut slots = vec![Slot::Pending; n];
    let mut stopping = false;
    let mut running = FuturesUnordered::new();
    let jobs = opts.jobs.max(1);

    let status = &state.statuses;
    // Fresh gears keep their version tag on their content image, checked all at once where
    // the inspect of the content tag did not show it.
    let fresh_gears = plan.layers.iter().enumerate().filter_map(|(i, l)| {
        let fresh = matches!(status[i], Status::Fresh { .. })
            && !opts.force.get(i).copied().unwrap_or(false);
        let built = l.built()?;
        let gear = built.gear.as_ref()?;
        (fresh && !state.tagged(i, &gear.version_tag)).then_some((l, built, gear))
    });
    futures_util::stream::iter(fresh_gears)
        .for_each_concurrent(ENGINE_REQUESTS, |(layer, built, gear)| async move {
            if let Err(e) = ensure_version_tag(engine, layer, built, gear, opts, reporter).await {
                reporter.warn(&format!(
                    "cannot tag {}: {}",
                    gear.version_tag,
                    crate::error::chain(&e)
                ));
            }
        })
        .await;

    // External images the engine has are checked before anything is built on them.
    for (i, layer) in plan.layers.iter().enumerate() {
        let Some(external) = layer.external() else {
            continue;
        };
        if !matches!(status[i], Status::Fresh { .. }) || opts.force.get(i).copied().unwrap_or(false)
        {
            continue;
        }
        if let Err(failure) = check_base(layer, external, state.images[i].as_ref()) {
            slots[i] = Slot::Done(Outcome::Failed);
            reporter.event(
                layer,
                Event::Finished {
                    outcome: Outcome::Failed,
                    seconds: 0.0,
                    failure: Some(&failure),
                },
            );
            stopping |= !opts.keep_going;
        }
    }

    loop {
        // Start or settle everything that can be, in plan order.
        for i in 0..n {
            if slots[i] != Slot::Pending {
                continue;
            }
            let parent_outcome = parent_slot[i].map(|p| slots[p]);
            match parent_outcome {
                Some(Slot::Done(Outcome::Failed | Outcome::Skipped)) => {
                    slots[i] = Slot::Done(Outcome::Skipped);
                    reporter.event(
                        &plan.layers[i],
                        Event::Finished {
                            outcome: Outcome::Skipped,
                            seconds: 0.0,
                            failure: None,
                        },
                    );
                    continue;
                }
                Some(Slot::Pending | Slot::Running) => continue,
                _ => {}
            }
            if stopping {
                continue;
            }
            let layer = &plan.layers[i];
            let forced = opts.force.get(i).copied().unwrap_or(false);
            let st = &status[i];
            if matches!(st, Status::Fresh { .. }) && !forced {
                slots[i] = Slot::Done(Outcome::Fresh);
                reporter.event(
                    layer,
                    Event::Finished {
                        outcome: Outcome::Fresh,
                        seconds: 0.0,
                        failure: None,
                    },
                );
                continue;
            }
            if running.len() >= jobs {
                continue;
            }
            let mut reasons = st.reasons().to_vec();
            if forced {
                reasons.insert(0, Reason::Forced);
            }
            reporter.event(layer, Event::Started { reasons: &reasons });
            slots[i] = Slot::Running;
            let binary = binaries.remove(&i);
            running.push(async move {
                let start = Instant::now();
                let result = match &layer.source {
                    LayerSource::External(external) => {
                        pull_external(engine, layer, external, opts, reporter).await
                    }
                    LayerSource::Built(built) => {
                        let parent = &plan.layers[built.parent];
                        let pull_only = opts.pull_only.get(i).copied().unwrap_or(false);
                        match rust_binary(built, binary) {
                            Ok(binary) => {
                                let got = Got {
                                    layer,
                                    built,
                                    parent,
                                    pull_only,
                                    binary,
                                };
                                get_built(engine, &got, opts, paths, reporter).await
                            }
                            Err(failure) => Err(failure),
                        }
                    }
                };
                (i, result, start.elapsed().as_secs_f64())
            });
        }
        // Layers never started because a failure stopped the build.
        if running.is_empty() {
            for (slot, layer) in slots.iter_mut().zip(&plan.layers) {
                if *slot == Slot::Pending {
                    *slot = Slot::Done(Outcome::Skipped);
                    reporter.event(
                        layer,
                        Event::Finished {
                            outcome: Outcome::Skipped,
                            seconds: 0.0,
                            failure: None,
                        },
                    );
                }
            }
            break;
        }
        let Some((i, result, seconds)) = running.next().await else {
            break;
        };
        let layer = &plan.layers[i];
        match result {
            Ok(outcome) => {
                slots[i] = Slot::Done(outcome);
                reporter.event(
                    layer,
                    Event::Finished {
                        outcome,
                        seconds,
                        failure: None,
                    },
                );
            }
            Err(failure) => {
                slots[i] = Slot::Done(Outcome::Failed);
                reporter.event(
                    layer,
                    Event::Finished {
                        outcome: Outcome::Failed,
                        seconds,
                        failure: Some(&failure),
                    },
                );
                if !opts.keep_going {
                    stopping = true;
                }
            }
        }
    }
    slots
        .into_iter()
        .map(|s| match s {
            Slot::Done(o) => o,
            _ => Outcome::Skipped,
        })
        .collect()
}

/// Pulls an external layer's image (for its platform, by digest when pinned) and checks it
/// ([`check_base`]).
async fn pull_external(
    engine: &Engine,
    layer: &PlannedLayer,
    external: &ExternalImage,
    opts: &BuildOptions,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    if opts.offline {
        return Err(Failure::new(format!(
            "image {} is not in the engine and --offline forbids pulling it",
            external.reference
        ))
        .with_help(substitute_help(&external.key.image)));
    }
    engine
        .pull(&external.reference, Some(&layer.platform), &mut |p| {
            reporter.pull_progress(layer, p);
        })
        .await
        .map_err(|e| pull_failure(layer, external, e))?;
    let pulled = engine.image(&external.reference).await?;
    check_base(layer, external, pulled.as_ref())?;
    Ok(Outcome::Pulled)
}

/// A failed pull of an external image, with the help that fits: the platform missing from
/// a multi-platform image, a locked digest the registry lacks, or a substitute.
fn pull_failure(layer: &PlannedLayer, external: &ExternalImage, e: EngineError) -> Failure {
    let message = crate::error::chain(&e);
    let failure = Failure::new(message.clone());
    let update = format!(
        "`cargo gear update -p {}` resolves `{}` again and rewrites its entry",
        layer.name,
        external.key.used()
    );
    if message.contains("no matching manifest") {
        let platform = &layer.platform;
        failure.with_help(format!(
            "`{}` has no image for {platform}, the platform layer `{}` is built for (Flywheel runs linux/amd64): pick a base published for {platform}, or set `platform` on the external layer to one the image has",
            external.key.used(),
            layer.name
        ))
    } else if let BasePin::Locked(locked) = &external.pin
        && locked.digest.is_some()
        && (message.contains("manifest unknown") || message.contains("not found"))
    {
        failure.with_help(format!(
            "{GEAR_LOCK} pins `{}` to {}, which its registry does not have (a hand-edited or outdated entry?): {update}",
            external.key.used(),
            locked.pin()
        ))
    } else {
        failure.with_help(substitute_help(&external.key.image))
    }
}

/// Checks that the engine's image of an external layer is the one planned, before anything
/// is built on it: made for the layer's platform, and, when Gear.lock pins it by image id
/// (a base no registry gave), that very image.
fn check_base(
    layer: &PlannedLayer,
    external: &ExternalImage,
    info: Option<&ImageInfo>,
) -> Result<(), Failure> {
    let Some(info) = info else {
        return Err(Failure::new(format!(
            "image {} is not in the engine",
            external.reference
        )));
    };
    if let BasePin::Locked(locked) = &external.pin
        && locked.digest.is_none()
        && crate::bases::image_id(info) != locked.image_id.as_str()
    {
        return Err(Failure::new(format!(
            "{GEAR_LOCK} pins base `{}` of layer `{}` to image {}, but the engine's `{}` is image {}",
            external.key.image,
            layer.name,
            locked.image_id,
            external.key.used(),
            info.id
        ))
        .with_help(format!(
            "build on the locked image again, or accept the engine's: `cargo gear update -p {}` records it in {GEAR_LOCK}",
            layer.name
        )));
    }
    if let Some((message, help)) =
        crate::bases::platform_mismatch(&layer.name, &external.reference, info, &layer.platform)
    {
        return Err(Failure::new(message).with_help(help));
    }
    Ok(())
}

/// The two ways to build on another image when an external one cannot be had, with the
/// declared reference filled in: `--substitute` for one command, `substitute` under
/// `[workspace.metadata.gear]` for every command of a Cargo workspace.
pub fn substitute_help(declared: &str) -> String {
    // The example is the same name on a registry of the team's (any registry host dropped).
    let path = match declared.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => declared,
    };
    let local = format!("registry.example.org/{path}");
    format!(
        "build on an image this engine has or can pull (`docker images` lists those it has):\n\
         \u{20} for one command:  cargo gear build --substitute {declared}={local}\n\
         \u{20} for every command of a Cargo workspace, in its Cargo.toml:\n\
         \u{20}   [workspace.metadata.gear]\n\
         \u{20}   substitute = {{ \"{declared}\" = \"{local}\" }}\n\
         \u{20} (a --root tree has no Cargo.toml: pass --substitute to each command)"
    )
}

/// A built layer to get, on its parent.
struct Got<'a> {
    layer: &'a PlannedLayer,
    built: &'a BuiltImage,
    parent: &'a PlannedLayer,
    /// Only from the registry cache, never built.
    pull_only: bool,
    /// A host-built Rust layer's binary, compiled for this build.
    binary: Option<PathBuf>,
}

/// The binary a host-built Rust layer needs (None for any other layer), or why it has none.
fn rust_binary(
    built: &BuiltImage,
    compiled: Option<Result<PathBuf, Failure>>,
) -> Result<Option<PathBuf>, Failure> {
    match (&built.cargo, compiled) {
        (Some(cargo), compiled) if cargo.place == BuildPlace::Host => match compiled {
            Some(result) => result.map(Some),
            None => Err(Failure::new(format!(
                "binary `{}` of package `{}` was not compiled for this build",
                cargo.bin, cargo.package
            ))),
        },
        _ => Ok(None),
    }
}

/// Gets a built layer's image: from the registry cache when it has the content tag, else
/// by building it (and then pushing it to the cache, when asked).
async fn get_built(
    engine: &Engine,
    got: &Got<'_>,
    opts: &BuildOptions,
    paths: &Paths,
    reporter: &Reporter,
) -> Result<Outcome, Failure> {
    let Got {
        layer,
        built,
        parent,
        pull_only,
        binary: _,
    } = *got;
    // A gear's manifest gets the parent image's real environment underneath its own.
    let manifest = match &built.gear {
        Some(gear) => {
            let parent_env = engine
                .image(parent.reference())
                .await?
                .map(|i| i.env)
                .unwrap_or_default();
            let mut m = gear.manifest.clone();
            m.environment = image_environment(&parent_env, &built.environment);
            Some(m)
        }
        None => None,
    };
    let done = Done {
        layer,
        built,
        parent,
        manifest: manifest.as_ref(),
    };

    if let Some(registry) = &opts.cache_from {
        match pull_cached(engine, registry, layer, built, reporter).await {
            Ok(Some(image_id)) => {
                done.finish(engine, &image_id, opts, paths, reporter)
                    .await?;
                return Ok(Outcome::Pulled);
            }
            Ok(None) if pull_only => {
                return Err(Failure::new(format!(
                    "{} is not in the registry {} and --no-build-ancestors forbids building it",
                    built.content_tag, registry.base
                )));
            }
            Ok(None) => {}
            Err(e) if pull_only => {
                return Err(Failure::new(format!(
                    "cannot pull {} from the registry {}: {}{}",
                    built.content_tag,
                    registry.base,
                    crate::error::chain(&e),
                    e.login_hint()
                )));
            }
            Err(e) => reporter.warn(&format!(
                "registry cache {}: {}{}; building {} instead",
                registry.base,
                crate::error::chain(&e),
                e.login_hint(),
                layer.name
            )),
        }
    }

    if pull_only {
        return Err(Failure::new(format!(
            "{} is not in the engine and --no-build-ancestors forbids building it (no --cache-from registry to pull it from)",
            built.content_tag
        )));
    }
    let image_id = build_image(engine, got, manifest.as_ref(), opts, paths, reporter).await?;
    done.finish(engine, &image_id, opts, paths, reporter)
        .await?;
    if let Some(registry) = &opts.cache_to {
        push_cached(engine, registry, layer, built, reporter).await;
    }
    Ok(Outcome::Built)
}

/// Builds the layer on the engine from exactly the planned context: every file is hashed as
/// it is streamed, and a file that no longer has its planned digest fails the build before
/// anything is tagged. Returns the image ID.
async fn build_image(
    engine: &Engine,
    got: &Got<'_>,
    manifest: Option<&gear_spec::manifest::Manifest>,
    opts: &BuildOptions,
    paths: &Paths,
    reporter: &Reporter,
) -> Result<String, Failure> {
    let (layer, built) = (got.layer, got.built);
    let mut context: Vec<TarEntry> = built
        .files
        .iter()
        .map(|f| {
            let e = TarEntry::file(f.digest.tar_path.clone(), f.source.clone())
                .expecting(f.digest.size, f.digest.sha256);
            match (f.digest.mode, f.digest.executable) {
                (Some(mode), _) => e.mode(mode),
                (None, true) => e.executable(),
                (None, false) => e,
            }
        })
        .collect();
    context.push(TarEntry::bytes(
        DOCKERFILE_PATH,
        gear_spec::dockerfile::with_fingerprint(&built.dockerfile, &layer.fingerprint),
    ));
    // Made by Cargo for this build: its inputs, not its bytes, are in the fingerprint.
    if let Some(cargo) = &built.cargo {
        context.push(TarEntry::bytes(
            gear_spec::rust::SETTINGS_PATH,
            cargo.settings.clone(),
        ));
        if let Some(binary) = &got.binary {
            context.push(TarEntry::file(cargo.bin_tar_path(), binary).executable());
        }
    }
    if let (Some(m), Some(gear)) = (manifest, &built.gear) {
        let bytes = m.render();
        for path in gear.manifest_paths {
            context.push(TarEntry::bytes(*path, bytes.clone()));
        }
    }
    let request = BuildRequest {
        context,
        dockerfile: DOCKERFILE_PATH.to_string(),
        tags: vec![built.content_tag.clone()],
        // Both labels are in the Dockerfile's frame: a label passed here would cost the classic
        // builder one more step, a container committed.
        labels: HashMap::new(),
        build_args: HashMap::new(),
        journal: Some(crate::engine::journal_path(&paths.logs, &layer.name)),
        no_cache: opts.no_cache,
        platform: Some(layer.platform.clone()),
    };
    let log_path = paths.logs.join(format!("{}.log", layer.name));
    let mut log = LogFile::create(&log_path);
    let output = engine
        .build(request, &mut |line| {
            log.write(line);
            reporter.build_line(layer, line);
        })
        .await
        .map_err(|e| {
            log.write(&format!("error: {}", crate::error::chain(&e)));
            Failure::from(e)
        })?;
    Ok(output.image_id)
}

/// Pushes a just-built layer's content tag to the registry cache; a failure only warns.
async fn push_cached(
    engine: &Engine,
    registry: &Registry,
    layer: &PlannedLayer,
    built: &BuiltImage,
    reporter: &Reporter,
) {
    let remote = registry.remote(&built.content_tag);
    let pushed = async {
        let (repo, tag) = split_tag(&remote);
        engine.tag(&built.content_tag, repo, tag).await?;
        engine
            .push(&remote, registry.credentials(), &mut |p| {
                reporter.pull_progress(layer, p);
            })
            .await
    };
    if let Err(e) = pushed.await {
        reporter.warn(&format!(
            "could not push {remote} to the registry cache: {}",
            crate::error::chain(&e)
        ));
    }
    untag_remote(engine, &remote).await;
}

/// Pulls the layer's content tag from the registry cache and tags it locally; the image's
/// ID when the registry had it with the right fingerprint.
async fn pull_cached(
    engine: &Engine,
    registry: &Registry,
    layer: &PlannedLayer,
    built: &BuiltImage,
    reporter: &Reporter,
) -> Result<Option<String>, EngineError> {
    let content_tag = built.content_tag.as_str();
    let remote = registry.remote(content_tag);
    if engine
        .registry_digest(&remote, registry.credentials())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    engine
        .pull_with(
            &remote,
            Some(&layer.platform),
            registry.credentials(),
            &mut |p| {
                reporter.pull_progress(layer, p);
            },
        )
        .await?;
    let found = async {
        let Some(info) = engine.image(&remote).await? else {
            return Ok(None);
        };
        if info.labels.get(FINGERPRINT_LABEL) != Some(&layer.fingerprint.to_string()) {
            reporter.warn(&format!(
                "{remote} in the registry does not carry the fingerprint its tag names; building instead"
            ));
            return Ok(None);
        }
        let (repo, tag) = split_tag(content_tag);
        engine.tag(&info.id, repo, tag).await?;
        Ok(Some(info.id))
    }
    .await;
    untag_remote(engine, &remote).await;
    found
}

/// Removes the local tag of a registry name once it has served a push or a pull: the image
/// keeps its local names, and no leftover name keeps `prune` from removing it later.
pub async fn untag_remote(engine: &Engine, remote: &str) {
    let _ = engine.remove_image(remote, false).await;
}

/// A built layer whose image now exists under its content tag, and what is left to do.
struct Done<'a> {
    layer: &'a PlannedLayer,
    built: &'a BuiltImage,
    parent: &'a PlannedLayer,
    /// A gear's manifest with the image's real environment.
    manifest: Option<&'a gear_spec::manifest::Manifest>,
}

impl Done<'_> {
    /// The version tag, the build record (only now), and the gear directory's manifest.json.
    async fn finish(
        &self,
        engine: &Engine,
        image_id: &str,
        opts: &BuildOptions,
        paths: &Paths,
        reporter: &Reporter,
    ) -> Result<(), Failure> {
        let Done {
            layer,
            built,
            parent,
            manifest,
        } = *self;
        if let Some(gear) = &built.gear {
            ensure_version_tag(engine, layer, built, gear, opts, reporter).await?;
        }
        let mut record = Record::new(layer, built, parent, image_id);
        record.environment = manifest.map(|m| m.environment.clone());
        if let Err(e) = record.save(&paths.state) {
            reporter.warn(&format!(
                "cannot write the build record of {}: {}",
                layer.name,
                crate::error::chain(&e)
            ));
        }
        if let Some(m) = manifest {
            let path = layer.dir.join("manifest.json");
            let text = m.render();
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str())
                && let Err(e) = std::fs::write(&path, text)
            {
                reporter.warn(&format!("cannot write {}: {e}", path.display()));
            }
        }
        Ok(())
    }
}

/// Tags a gear's content image with its version (when it names another image or none).
/// Rebuilding a version that was never pushed is the normal dev loop and says nothing; a
/// version the team registry holds with other contents is warned about (offline: not
/// asked), as `push` would refuse it. The version tag always ends on the content tag's
/// image, even when another image of the same fingerprint had it (before a `--force`
/// rebuild, or a pull): it never stays behind on an image nothing current names.
async fn ensure_version_tag(
    engine: &Engine,
    layer: &PlannedLayer,
    built: &BuiltImage,
    gear: &GearImage,
    opts: &BuildOptions,
    reporter: &Reporter,
) -> Result<(), EngineError> {
    let (version_tag, content_tag) = (&gear.version_tag, &built.content_tag);
    if let Some(existing) = engine.image(version_tag).await?
        && engine
            .image(content_tag)
            .await?
            .is_some_and(|content| content.id == existing.id)
    {
        return Ok(());
    }
    if let Some(registry) = opts.registry.as_ref().filter(|_| !opts.offline)
        // The registry cannot be asked: the build goes on, and push still checks.
        && let Ok(VersionInRegistry::Other(_)) = version_in_registry(engine, registry, built, gear).await
    {
        reporter.warn(&format!(
            "{} already exists in the registry with other contents; Flywheel gear versions are immutable: bump `version` in the Gear.toml of {} before pushing",
            registry.remote(version_tag),
            layer.name
        ));
    }
    let (repo, tag) = split_tag(version_tag);
    engine.tag(content_tag, repo, tag).await
}

/// What a registry holds under a gear's version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionInRegistry {
    /// Nothing.
    Absent,
    /// The image of the gear's content tag.
    Same,
    /// Another image, by this digest.
    Other(String),
}

/// Whether `registry` holds the gear's version, and with its contents or others: a version
/// with these contents has the digest the registry holds for the content tag.
pub async fn version_in_registry(
    engine: &Engine,
    registry: &Registry,
    built: &BuiltImage,
    gear: &GearImage,
) -> Result<VersionInRegistry, EngineError> {
    let creds = registry.credentials();
    let Some(version) = engine
        .registry_digest(&registry.remote(&gear.version_tag), creds.clone())
        .await?
    else {
        return Ok(VersionInRegistry::Absent);
    };
    let content = engine
        .registry_digest(&registry.remote(&built.content_tag), creds)
        .await?;
    Ok(if content.as_ref() == Some(&version) {
        VersionInRegistry::Same
    } else {
        VersionInRegistry::Other(version)
    })
}

/// The parent image's environment (`NAME=value` lines) overlaid by the declared one.
pub fn image_environment(
    parent_env: &[String],
    declared: &IndexMap<String, String>,
) -> IndexMap<String, String> {
    let base: IndexMap<String, String> = parent_env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    gear_spec::manifest::overlay_environment(Some(&base), declared)
}

/// A layer's build log under `target/gear/logs/`; logging never fails a build.
struct LogFile(Option<std::io::BufWriter<std::fs::File>>);

impl LogFile {
    fn create(path: &std::path::Path) -> LogFile {
        let file = path
            .parent()
            .map(std::fs::create_dir_all)
            .and_then(|r| r.ok())
            .and_then(|()| std::fs::File::create(path).ok());
        LogFile(file.map(std::io::BufWriter::new))
    }

    fn write(&mut self, line: &str) {
        use std::io::Write;
        if let Some(w) = &mut self.0 {
            let _ = writeln!(w, "{}", line.trim_end_matches('\n'));
            let _ = w.flush();
        }
    }
}

/// Builds what is stale in `plan` under the workspace's build lock, then reports the
/// summary. Shared by `build` and `run`.
pub async fn build_locked(
    engine: &Engine,
    session: &Session,
    plan: &Plan,
    opts: &BuildOptions,
    reporter: &Reporter,
) -> Result<(), CliError> {
    let paths = session.build_paths();
    let _lock = crate::lock::BuildLock::acquire(&session.ws.gear_dir(), &session.out)?;
    match engine.remove_build_leftovers(&paths.logs).await {
        Ok(0) => {}
        Ok(n) => session.out.status(
            "Removed",
            format!("{n} step container(s) left by a build the engine did not finish"),
        ),
        Err(e) => reporter.warn(&format!(
            "cannot remove the step containers of an unfinished build: {}",
            crate::error::chain(&e)
        )),
    }
    let state = statuses(engine, plan, &paths.state).await?;
    check_ancestors(engine, plan, &state.statuses, opts).await?;
    let binaries = compile_rust(session, plan, &state.statuses, opts, reporter).await;
    run(engine, plan, &state, opts, &paths, reporter, binaries).await;
    let counts = reporter.finish();
    if counts.failed > 0 {
        return Err(CliError::BuildFailed {
            failed: counts.failed,
            skipped: counts.skipped,
        });
    }
    Ok(())
}

/// Compiles, with one `cargo build`, every host-built Rust layer that will be built: stale
/// or forced, and not only to be pulled. Nothing runs Cargo when all of them are fresh.
async fn compile_rust(
    session: &Session,
    plan: &Plan,
    status: &[Status],
    opts: &BuildOptions,
    reporter: &Reporter,
) -> Binaries {
    let slots: Vec<usize> = plan
        .layers
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let stale = !matches!(status[*i], Status::Fresh { .. })
                || opts.force.get(*i).copied().unwrap_or(false);
            let pull_only = opts.pull_only.get(*i).copied().unwrap_or(false);
            let host = l
                .built()
                .and_then(|b| b.cargo.as_ref())
                .is_some_and(|c| c.place == BuildPlace::Host);
            stale && host && !pull_only
        })
        .map(|(i, _)| i)
        .collect();
    if slots.is_empty() {
        return Binaries::new();
    }
    let names: Vec<String> = slots.iter().map(|&i| plan.layers[i].name.clone()).collect();
    reporter.cargo_started(&names);
    let start = Instant::now();
    let root = session.ws.root.clone();
    let flags = crate::rust::CargoFlags {
        quiet: session.out.quiet,
        offline: opts.offline,
    };
    let layers: Vec<(usize, BuildPlan)> = slots
        .iter()
        .filter_map(|&i| Some((i, plan.layers[i].built()?.cargo.clone()?)))
        .collect();
    let (binaries, runs) =
        tokio::task::spawn_blocking(move || crate::rust::compile(&root, &layers, flags))
            .await
            .unwrap_or_else(|e| {
                let binaries = slots
                    .iter()
                    .map(|&i| {
                        (
                            i,
                            Err(Failure::new(format!("the cargo build stopped: {e}"))),
                        )
                    })
                    .collect();
                (binaries, 0)
            });
    let failed: Vec<String> = slots
        .iter()
        .filter(|i| binaries.get(i).is_none_or(|b| b.is_err()))
        .map(|&i| plan.layers[i].name.clone())
        .collect();
    reporter.cargo_finished(&names, &failed, runs, start.elapsed().as_secs_f64());
    binaries
}

/// With `--no-build-ancestors`, every stale layer that may only be pulled must be in the
/// registry: checked before anything is built, so that a mis-ordered pipeline fails at once
/// instead of building the same base twice.
async fn check_ancestors(
    engine: &Engine,
    plan: &Plan,
    status: &[Status],
    opts: &BuildOptions,
) -> Result<(), CliError> {
    let stale: Vec<&BuiltImage> = plan
        .layers
        .iter()
        .zip(status)
        .enumerate()
        .filter(|(i, (_, st))| {
            opts.pull_only.get(*i).copied().unwrap_or(false) && matches!(st, Status::Stale(_))
        })
        .filter_map(|(_, (l, _))| l.built())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let mut missing = Vec::new();
    for built in stale {
        let present = match &opts.cache_from {
            Some(registry) => engine
                .registry_digest(&registry.remote(&built.content_tag), registry.credentials())
                .await?
                .is_some(),
            None => false,
        };
        if !present {
            missing.push(built.content_tag.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let place = match &opts.cache_from {
        Some(r) => format!("the engine nor the registry {}", r.base),
        None => "the engine (and no --cache-from registry was given)".to_string(),
    };
    Err(CliError::usage(
        format!(
            "--no-build-ancestors: {} is in neither {place}",
            missing.join(", ")
        ),
        "build the ancestors first (in a pipeline: make this job need theirs), or drop --no-build-ancestors",
    ))
}

/// One build per CPU.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_env_wins_over_parent_env() {
        let parent = vec![
            "PATH=/usr/bin".to_string(),
            "LANG=C.UTF-8".to_string(),
            "FLYWHEEL=/old".to_string(),
        ];
        let declared = IndexMap::from([("FLYWHEEL".to_string(), "/flywheel/v0".to_string())]);
        let env = image_environment(&parent, &declared);
        assert_eq!(env.get("FLYWHEEL").unwrap(), "/flywheel/v0");
        assert_eq!(env.get("PATH").unwrap(), "/usr/bin");
        assert_eq!(env.keys().collect::<Vec<_>>(), ["PATH", "LANG", "FLYWHEEL"]);
    }

    #[test]
    fn version_tags_seen_by_the_content_inspect() {
        let state = EngineState {
            statuses: Vec::new(),
            images: vec![
                Some(ImageInfo {
                    repo_tags: vec!["x/g:gear-1".to_owned(), "x/g:1.0".to_owned()],
                    ..Default::default()
                }),
                None,
            ],
        };
        assert!(state.tagged(0, "x/g:1.0"));
        assert!(!state.tagged(0, "x/g:2.0"));
        assert!(!state.tagged(1, "x/g:1.0"));
        assert!(!state.tagged(2, "x/g:1.0"));
    }
}
