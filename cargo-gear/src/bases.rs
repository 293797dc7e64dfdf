//! Pinning external images in `Gear.lock` through the engine: the entries `build` adds,
//! what `plan` and `why` preview, and what `update` moves.
//!
//! An entry is resolved from the engine's image of the reference (pulled first when the
//! engine lacks it, or always for `update`): its registry digest in that repository, if it
//! has one, and its id. See [`gear_spec::gear_lock`] for the file.

use gear_spec::gear_lock::{BaseKey, GEAR_LOCK, GearLock, ImageDigest, LockedBase};
use gear_spec::layer::LayerKind;
use gear_spec::platform::Platform;
use gear_spec::reference::canonical_repository;

use crate::engine::{Engine, ImageInfo};
use crate::error::CliError;
use crate::request::Session;

/// What a command does about external images Gear.lock does not pin yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Resolve them (pulling what the engine lacks, unless `offline`) and write Gear.lock:
    /// the commands that build (`build`, `run`, `shell`, `push`). With `--locked`, a
    /// missing entry is an error instead.
    Add {
        /// Never pull.
        offline: bool,
    },
    /// Resolve those the engine has, in memory only (nothing when no engine answers):
    /// `plan`, `why`.
    Peek,
}

/// One external layer's lock key, as this session plans it.
#[derive(Debug, Clone)]
pub struct Base {
    /// The external layer's name.
    pub layer: String,
    /// Its Gear.lock key.
    pub key: BaseKey,
    /// Whether a `digest` in its Gear.toml pins it (then the lock is not used).
    pub declared: bool,
}

impl std::fmt::Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (layer `{}`)", self.key, self.layer)
    }
}

/// The external layers among `selected` and their ancestors, with their lock keys.
pub fn bases(session: &Session, selected: &[usize]) -> Vec<Base> {
    let graph = &session.graph;
    graph
        .with_ancestors(selected)
        .into_iter()
        .filter(|&i| graph.kind(i) == LayerKind::External)
        .map(|i| {
            let layer = graph.layer(i);
            let platform = graph.platform(i, &session.ws.platform);
            let (key, declared) =
                gear_spec::plan::base_key(&layer.decl, &session.substitutions, &platform);
            Base {
                layer: layer.name.clone(),
                key,
                declared: declared.is_some(),
            }
        })
        .collect()
}

/// The external layers among `selected` and their ancestors that neither their Gear.toml
/// nor the session's lock pins.
pub fn unpinned(session: &Session, selected: &[usize]) -> Vec<Base> {
    let lock = session.lock();
    bases(session, selected)
        .into_iter()
        .filter(|b| !b.declared && lock.get(&b.key).is_none())
        .collect()
}

/// Brings the session's lock up to date for the external images of `selected` (and their
/// chains) before they are planned, as `missing` says. Asks the engine only when an image is
/// not pinned yet, so a workspace whose Gear.lock is complete plans without it.
pub fn ensure(session: &Session, selected: &[usize], missing: Missing) -> Result<(), CliError> {
    let unpinned = unpinned(session, selected);
    if unpinned.is_empty() {
        return Ok(());
    }
    let source = match missing {
        Missing::Add { .. } if session.locked => {
            let list: Vec<String> = unpinned.iter().map(ToString::to_string).collect();
            return Err(CliError::BaseLock {
                message: format!(
                    "{GEAR_LOCK} has no entry for {}, and --locked forbids adding one",
                    list.join(", ")
                ),
                help: format!(
                    "run `cargo gear build` (or `cargo gear update`) without --locked/--frozen, and commit {GEAR_LOCK}"
                ),
            });
        }
        Missing::Add { offline: false } => Source::EngineElsePull,
        Missing::Add { offline: true } | Missing::Peek => Source::Engine,
    };
    session.runtime()?.block_on(async {
        let engine = match session.engine().await {
            Ok(engine) => engine,
            // Planning goes on without the engine: the images stay unpinned.
            Err(_) if missing == Missing::Peek => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut added = false;
        for base in &unpinned {
            // An image that cannot be had (or is for another platform) stays unpinned: the
            // build then fails that layer, with its own help, and goes on with the others.
            let locked = match resolve(&engine, session, base, source).await {
                Ok(Some(locked)) => locked,
                Ok(None) | Err(CliError::BaseLock { .. }) => continue,
                Err(e) => return Err(e),
            };
            if missing != Missing::Peek {
                session.out.status(
                    "Locked",
                    format!("{} to {} in {GEAR_LOCK}", base.key, locked.pin()),
                );
            }
            session.lock().insert(base.key.clone(), locked);
            added = true;
        }
        if added && missing != Missing::Peek {
            save(session)?;
        }
        Ok(())
    })
}

/// Where [`resolve`] may look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Only the engine's images.
    Engine,
    /// The engine's image, else a pull.
    EngineElsePull,
    /// A pull first (`update`), unless the engine's image came from no registry; the
    /// engine's image, with a warning, when the pull fails.
    Pull,
}

/// Resolves `base` as a lock entry from where `source` says; `None` when the engine has no
/// image and may not pull.
pub async fn resolve(
    engine: &Engine,
    session: &Session,
    base: &Base,
    source: Source,
) -> Result<Option<LockedBase>, CliError> {
    let used = base.key.used();
    let platform = &base.key.platform;
    let local = engine.image(used).await?;
    // An image no registry gave (built or loaded on this engine) has nowhere to be pulled
    // from again: `update` takes it as it is.
    let from_registry = |info: &ImageInfo| registry_digest(used, info).is_some();
    let info = match (local, source) {
        (Some(info), Source::Engine | Source::EngineElsePull) => Some(info),
        (Some(info), Source::Pull) if !from_registry(&info) => Some(info),
        (None, Source::Engine) => None,
        (local, _) => {
            session
                .out
                .status("Pulling", format!("{used} ({platform}) for {GEAR_LOCK}"));
            let pulled = engine.pull(used, Some(platform), &mut |_| {}).await;
            match pulled {
                Ok(()) => engine.image(used).await?,
                Err(e) if local.is_some() => {
                    session.out.warn(format!(
                        "cannot pull `{used}` ({}): locking the engine's image of it",
                        crate::error::chain(&e)
                    ));
                    local
                }
                Err(e) => {
                    return Err(CliError::BaseLock {
                        message: format!(
                            "cannot resolve base `{used}` of layer `{}`: {}",
                            base.layer,
                            crate::error::chain(&e)
                        ),
                        help: crate::schedule::substitute_help(&base.key.image),
                    });
                }
            }
        }
    };
    let Some(info) = info else {
        return Ok(None);
    };
    // An image for another platform is not locked: building on it would fail the same way.
    if let Some((message, help)) = platform_mismatch(&base.layer, used, &info, platform) {
        return match source {
            Source::Engine => Ok(None),
            Source::EngineElsePull | Source::Pull => Err(CliError::BaseLock { message, help }),
        };
    }
    locked_base(used, &info).map(Some)
}

/// The registry digest the engine's image `info` has in the repository of `used`, if any.
fn registry_digest(used: &str, info: &ImageInfo) -> Option<ImageDigest> {
    let repository = canonical_repository(used)?;
    info.repo_digests
        .iter()
        .filter_map(|d| d.split_once('@'))
        .find(|(repo, _)| canonical_repository(repo).as_ref() == Some(&repository))
        .and_then(|(_, d)| d.parse().ok())
}

/// The lock entry of the engine's image `info` of reference `used`.
fn locked_base(used: &str, info: &ImageInfo) -> Result<LockedBase, CliError> {
    let image_id = image_id(info)
        .parse::<ImageDigest>()
        .map_err(|e| CliError::BaseLock {
            message: format!("the engine's image `{used}` has an id cargo-gear cannot pin: {e}"),
            help: "pin the base with `digest = \"sha256:…\"` in its Gear.toml instead".into(),
        })?;
    Ok(LockedBase {
        digest: registry_digest(used, info),
        image_id,
    })
}

/// The engine's id of an image as Gear.lock writes it, `sha256:…` (Podman may answer it
/// without the algorithm).
pub fn image_id(info: &ImageInfo) -> String {
    if info.id.contains(':') {
        info.id.clone()
    } else {
        format!("sha256:{}", info.id)
    }
}

/// Writes the session's lock, without the entries of images no external layer declares
/// for that platform any more (entries of substitutes stay: other machines may use them).
pub fn save(session: &Session) -> Result<(), CliError> {
    let graph = &session.graph;
    let current: Vec<(String, Platform)> = graph
        .build_order()
        .iter()
        .filter(|&&i| graph.kind(i) == LayerKind::External)
        .map(|&i| {
            (
                graph.layer(i).decl.image.clone(),
                graph.platform(i, &session.ws.platform),
            )
        })
        .collect();
    let mut lock: GearLock = session.lock().clone();
    lock.retain(&|key| {
        current
            .iter()
            .any(|(image, platform)| *image == key.image && *platform == key.platform)
    });
    lock.save(&session.ws.root.join(GEAR_LOCK))?;
    Ok(())
}

/// Why the engine's image `info` of `reference` cannot serve layer `layer`, made for
/// `wanted`: a message and what to do, or `None` when its platform is the one wanted.
pub fn platform_mismatch(
    layer: &str,
    reference: &str,
    info: &ImageInfo,
    wanted: &Platform,
) -> Option<(String, String)> {
    if wanted.matches(&info.os, &info.architecture, info.variant.as_deref()) {
        return None;
    }
    let have = Platform::describe(&info.os, &info.architecture, info.variant.as_deref());
    Some((
        format!("layer `{layer}`: image {reference} is for {have}, but the layer is for {wanted}"),
        format!(
            "Flywheel runs linux/amd64 images. Build on a base made for {wanted} (for a multi-platform tag, `cargo gear update -p {layer}` pulls its {wanted} image), or, for a local image that will not run on Flywheel, set `platform = \"{have}\"` on the external layer `{layer}`. Building for another platform than the host's needs emulation (binfmt/qemu, e.g. Docker Desktop's, or `qemu-user-static` on Linux)"
        ),
    ))
}
