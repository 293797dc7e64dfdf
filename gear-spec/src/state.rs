//! What was built, and why a layer is stale: build records under `target/gear/state/`
//! and the precise reasons a planned layer differs from its record.
//!
//! A record is written only after a layer is built and tagged, atomically, so a record
//! never claims an image that does not exist.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fingerprint::{FileDigest, Fingerprint};
use crate::plan::{BuiltImage, PlannedLayer};
use crate::platform::Platform;

/// Version of the record format; records of another version are ignored.
pub const RECORD_FORMAT: u32 = 1;

/// Everything that went into a built layer, kept to explain the next rebuild.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_FORMAT`].
    pub format: u32,
    /// Layer name.
    pub name: String,
    /// Fingerprint of the built image.
    pub fingerprint: Fingerprint,
    /// Parent layer name and fingerprint.
    pub parent: Option<(String, Fingerprint)>,
    /// The parent's image reference (external parents: after substitution).
    pub parent_reference: String,
    /// The declared reference a substitution replaced, if any.
    pub substituted_from: Option<String>,
    /// The digest pinning an external parent (Gear.toml's `digest`, else Gear.lock's), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_pin: Option<String>,
    /// The platform it was built for (absent in records of cargo-gear before platforms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Digest of each Dockerfile-relevant section of the declaration.
    pub sections: BTreeMap<String, String>,
    /// sha256 of the generated Dockerfile.
    pub dockerfile_sha256: String,
    /// The generated manifest's top-level values (gears).
    pub manifest: Option<serde_json::Value>,
    /// Context files.
    pub files: Vec<FileDigest>,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// Image ID the engine gave the build.
    pub image_id: String,
    /// Gears: the manifest `environment` written into the image (the parent image's
    /// environment overlaid by the declared one).
    pub environment: Option<indexmap::IndexMap<String, String>>,
}

impl Record {
    /// The record of a layer just built as `image_id` on `parent`.
    pub fn new(
        layer: &PlannedLayer,
        built: &BuiltImage,
        parent: &PlannedLayer,
        image_id: &str,
    ) -> Record {
        Record {
            format: RECORD_FORMAT,
            name: layer.name.clone(),
            fingerprint: layer.fingerprint,
            parent: Some((parent.name.clone(), parent.fingerprint)),
            parent_reference: parent.reference().to_string(),
            substituted_from: parent.substituted_from().map(str::to_string),
            parent_pin: parent
                .external()
                .and_then(|e| e.pin.digest())
                .map(str::to_string),
            platform: Some(layer.platform.to_string()),
            sections: built.sections.clone(),
            dockerfile_sha256: crate::fingerprint::sha256_hex(built.dockerfile.as_bytes()),
            manifest: built.gear.as_ref().map(|g| g.manifest.to_value()),
            files: built.digests().cloned().collect(),
            args: built
                .args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            image_id: image_id.to_string(),
            environment: None,
        }
    }

    /// Where the record of `name` lives in `state_dir`.
    pub fn path(state_dir: &Path, name: &str) -> PathBuf {
        state_dir.join(format!("{name}.json"))
    }

    /// Reads a record; a missing, unreadable or other-format record is `None`.
    pub fn load(state_dir: &Path, name: &str) -> Option<Record> {
        let text = std::fs::read_to_string(Self::path(state_dir, name)).ok()?;
        let record: Record = serde_json::from_str(&text).ok()?;
        (record.format == RECORD_FORMAT).then_some(record)
    }

    /// Writes the record atomically (temporary file, synced, then renamed over the old one):
    /// a reader sees the old record or the new one, never a part. On failure the temporary
    /// file and the old record are removed (the old one describes an image that is no longer
    /// the layer's: a layer without a record is explained from its image alone), and the
    /// error names the directory or file.
    pub fn save(&self, state_dir: &Path) -> Result<(), RecordError> {
        let fail = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| RecordError {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(state_dir).map_err(fail("create the directory", state_dir))?;
        let path = Self::path(state_dir, &self.name);
        let tmp = state_dir.join(format!(".{}.json.tmp-{}", self.name, std::process::id()));
        // Invariant: a record is plain data with string map keys, which always serializes.
        let mut text = serde_json::to_string_pretty(self).expect("a record serializes");
        text.push('\n');
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()
        })();
        let renamed = written
            .map_err(fail("write", &tmp))
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(fail("replace", &path)));
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(&path);
        }
        renamed
    }

    /// Removes the record of `name`, if any.
    pub fn remove(state_dir: &Path, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(Self::path(state_dir, name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A build record that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct RecordError {
    /// What was tried: `create the directory`, `write`, `replace`.
    pub action: &'static str,
    /// The directory or file.
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What the engine has for a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    /// No engine was asked.
    Unknown,
    /// An image with the layer's content tag and fingerprint label exists.
    Present,
    /// No such image.
    Missing,
}

/// Why a layer must be built (or pulled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// No record and no image.
    NeverBuilt,
    /// The record matches but the image is gone.
    ImageMissing,
    /// An external image is not in the engine yet.
    NotPulled,
    /// A context file's content changed.
    FileChanged { path: String },
    /// A context file appeared.
    FileAdded { path: String },
    /// A context file disappeared.
    FileRemoved { path: String },
    /// A context file's executable bit changed.
    ModeChanged { path: String },
    /// The parent's fingerprint changed.
    ParentChanged { parent: String },
    /// The parent is now another layer.
    ParentReplaced { old: String, new: String },
    /// The platform changed.
    PlatformChanged { old: String, new: String },
    /// The external base's reference is the same, but what pins it (Gear.lock's or
    /// Gear.toml's digest) moved.
    BaseMoved { base: String, digest: String },
    /// The external parent reference changed.
    BaseImageChanged { old: String, new: String },
    /// A substitution for the base image changed.
    SubstitutionChanged,
    /// Declared sections that reach the Dockerfile changed.
    DockerfileChanged { sections: Vec<String> },
    /// Manifest fields changed.
    ManifestChanged { fields: Vec<String> },
    /// Build arguments changed.
    ArgsChanged,
    /// The inputs are the same but the generated output differs (a different cargo-gear).
    GeneratorChanged,
    /// `--force`.
    Forced,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strip = |p: &str| match p.strip_prefix(crate::rust::CARGO_DIR) {
            // A Rust layer's source, by its path in the workspace.
            Some(rest) if rest.starts_with('/') => rest[1..].to_string(),
            _ => p
                .trim_start_matches("copy/")
                .trim_start_matches("files/")
                .to_string(),
        };
        match self {
            Reason::NeverBuilt => f.write_str("never built"),
            Reason::ImageMissing => f.write_str("image missing from engine"),
            Reason::NotPulled => f.write_str("image not present in the engine"),
            Reason::FileChanged { path } => write!(f, "file {} changed", strip(path)),
            Reason::FileAdded { path } => write!(f, "file {} added", strip(path)),
            Reason::FileRemoved { path } => write!(f, "file {} removed", strip(path)),
            Reason::ModeChanged { path } => write!(f, "file {} changed mode", strip(path)),
            Reason::ParentChanged { parent } => write!(f, "parent {parent} changed"),
            Reason::ParentReplaced { old, new } => write!(f, "parent changed from {old} to {new}"),
            Reason::PlatformChanged { old, new } => {
                write!(f, "platform changed from {old} to {new}")
            }
            Reason::BaseMoved { base, digest } => write!(f, "base {base} moved to {digest}"),
            Reason::BaseImageChanged { old, new } => {
                write!(f, "base image changed from {old} to {new}")
            }
            Reason::SubstitutionChanged => f.write_str("substitution changed"),
            Reason::DockerfileChanged { sections } => {
                write!(f, "Dockerfile changed ({})", sections.join(", "))
            }
            Reason::ManifestChanged { fields } => {
                write!(f, "manifest changed ({})", fields.join(", "))
            }
            Reason::ArgsChanged => f.write_str("build args changed"),
            Reason::GeneratorChanged => {
                f.write_str("generated files changed (another cargo-gear version)")
            }
            Reason::Forced => f.write_str("--force"),
        }
    }
}

/// Fresh, stale with reasons, or unknown (no engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Nothing to do. `recorded` is false when the image exists but no record does.
    Fresh { recorded: bool },
    /// Must be built or pulled, for these reasons.
    Stale(Vec<Reason>),
    /// No engine was consulted.
    Unknown,
}

impl Status {
    /// `fresh`, `stale` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Fresh { .. } => "fresh",
            Status::Stale(_) => "stale",
            Status::Unknown => "unknown",
        }
    }

    /// The reasons, empty unless stale.
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Status::Stale(r) => r,
            _ => &[],
        }
    }
}

/// The status of a planned layer, given its record and what the engine has.
pub fn explain(
    layer: &PlannedLayer,
    parent: Option<&PlannedLayer>,
    record: Option<&Record>,
    image: ImageState,
) -> Status {
    match image {
        ImageState::Present => {
            return Status::Fresh {
                recorded: record.is_some_and(|r| r.fingerprint == layer.fingerprint),
            };
        }
        ImageState::Unknown => return Status::Unknown,
        ImageState::Missing => {}
    }
    let Some(built) = layer.built() else {
        return Status::Stale(vec![Reason::NotPulled]);
    };
    let Some(record) = record else {
        return Status::Stale(vec![Reason::NeverBuilt]);
    };
    if record.fingerprint == layer.fingerprint {
        return Status::Stale(vec![Reason::ImageMissing]);
    }
    Status::Stale(differences(built, &layer.platform, parent, record))
}

/// Why the external `parent`'s fingerprint differs from the recorded one: another
/// substitute, the same reference pinned to another digest ([`Reason::BaseMoved`]), or
/// another reference. `None` when a platform change, said already, explains it.
fn base_changed(parent: &PlannedLayer, record: &Record, platform_changed: bool) -> Option<Reason> {
    let external = parent.external()?;
    let same_reference = crate::reference::without_digest(&external.reference)
        == crate::reference::without_digest(&record.parent_reference);
    let pin = external.pin.digest();
    if parent.substituted_from() != record.substituted_from.as_deref() {
        Some(Reason::SubstitutionChanged)
    } else if let Some(digest) =
        pin.filter(|d| same_reference && record.parent_pin.as_deref() != Some(*d))
    {
        Some(Reason::BaseMoved {
            base: external.key.image.clone(),
            digest: digest.to_string(),
        })
    } else if same_reference && platform_changed {
        None
    } else {
        Some(Reason::BaseImageChanged {
            old: record.parent_reference.clone(),
            new: external.reference.clone(),
        })
    }
}

/// A step's section key, `step N (kind)`, read back: (N, kind).
fn step_key(key: &str) -> Option<(usize, &str)> {
    let (n, kind) = key.strip_prefix("step ")?.split_once(' ')?;
    let kind = kind.strip_prefix('(')?.strip_suffix(')')?;
    Some((n.parse().ok()?, kind))
}

/// The step sections of `sections` in step order: (key, kind, digest).
fn steps_of(sections: &BTreeMap<String, String>) -> Vec<(&str, &str, &str)> {
    let mut steps: Vec<(usize, &str, &str, &str)> = sections
        .iter()
        .filter_map(|(k, v)| {
            let (n, kind) = step_key(k)?;
            Some((n, k.as_str(), kind, v.as_str()))
        })
        .collect();
    steps.sort_unstable_by_key(|s| s.0);
    steps
        .into_iter()
        .map(|(_, k, kind, v)| (k, kind, v))
        .collect()
}

/// How the steps changed, aligned on their longest common subsequence so that inserting or
/// removing one step names only that step (not every later one, whose number moved):
/// `step N (kind) added` (new numbering), `step M (kind) removed` (old numbering), and
/// `step N (kind)` for a step changed in place.
fn step_changes(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let (old, new) = (steps_of(old), steps_of(new));
    let same = |i: usize, j: usize| old[i].1 == new[j].1 && old[i].2 == new[j].2;
    // lcs[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if same(i, j) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut changes = Vec::new();
    let (mut removed, mut added): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    let flush = |removed: &mut Vec<usize>, added: &mut Vec<usize>, changes: &mut Vec<String>| {
        let paired = removed.len().min(added.len());
        for &j in &added[..paired] {
            changes.push(new[j].0.to_string());
        }
        for &i in &removed[paired..] {
            changes.push(format!("{} removed", old[i].0));
        }
        for &j in &added[paired..] {
            changes.push(format!("{} added", new[j].0));
        }
        removed.clear();
        added.clear();
    };
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && same(i, j) {
            flush(&mut removed, &mut added, &mut changes);
            i += 1;
            j += 1;
        } else if j < new.len() && (i == old.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(j);
            j += 1;
        } else {
            removed.push(i);
            i += 1;
        }
    }
    flush(&mut removed, &mut added, &mut changes);
    changes
}

/// Every difference between a record and the planned layer, most telling first.
pub fn differences(
    layer: &BuiltImage,
    platform: &Platform,
    parent: Option<&PlannedLayer>,
    record: &Record,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let new_platform = platform.to_string();
    let old_platform = record.platform.as_ref().filter(|old| **old != new_platform);
    let platform_changed = old_platform.is_some();
    if let Some(old) = old_platform {
        reasons.push(Reason::PlatformChanged {
            old: old.clone(),
            new: new_platform,
        });
    }
    match (parent, &record.parent) {
        (Some(p), Some((old_name, _))) if p.name != *old_name => {
            reasons.push(Reason::ParentReplaced {
                old: old_name.clone(),
                new: p.name.clone(),
            });
        }
        (Some(p), Some((_, old_fp))) if p.fingerprint != *old_fp => {
            if p.built().is_some() {
                reasons.push(Reason::ParentChanged {
                    parent: p.name.clone(),
                });
            } else if let Some(reason) = base_changed(p, record, platform_changed) {
                reasons.push(reason);
            }
        }
        _ => {}
    }

    let old: BTreeMap<&str, &FileDigest> = record
        .files
        .iter()
        .map(|f| (f.tar_path.as_str(), f))
        .collect();
    let new: BTreeMap<&str, &FileDigest> =
        layer.digests().map(|f| (f.tar_path.as_str(), f)).collect();
    for (path, f) in &new {
        match old.get(path) {
            None => reasons.push(Reason::FileAdded {
                path: path.to_string(),
            }),
            Some(o) if o.sha256 != f.sha256 => reasons.push(Reason::FileChanged {
                path: path.to_string(),
            }),
            Some(o) if (o.executable, o.mode) != (f.executable, f.mode) => {
                reasons.push(Reason::ModeChanged {
                    path: path.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        reasons.push(Reason::FileRemoved {
            path: path.to_string(),
        });
    }

    let is_step = |k: &String| step_key(k).is_some();
    let mut sections: Vec<String> = layer
        .sections
        .iter()
        .filter(|(k, v)| !is_step(k) && record.sections.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    sections.extend(
        record
            .sections
            .keys()
            .filter(|k| !is_step(k) && !layer.sections.contains_key(*k))
            .cloned(),
    );
    sections.extend(step_changes(&record.sections, &layer.sections));
    if !sections.is_empty() {
        reasons.push(Reason::DockerfileChanged { sections });
    }

    if let (Some(gear), Some(old)) = (&layer.gear, &record.manifest) {
        let new = gear.manifest.to_value();
        let keys = |v: &serde_json::Value| {
            v.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let mut fields: Vec<String> = keys(&new)
            .into_iter()
            .filter(|k| new.get(k) != old.get(k))
            .collect();
        fields.extend(keys(old).into_iter().filter(|k| new.get(k).is_none()));
        // `custom.gear-builder.image` follows `version`: report the declared field only.
        if !fields.is_empty() {
            reasons.push(Reason::ManifestChanged { fields });
        }
    }

    let args: BTreeMap<String, String> = layer
        .args
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if args != record.args {
        reasons.push(Reason::ArgsChanged);
    }
    if reasons.is_empty() {
        reasons.push(Reason::GeneratorChanged);
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step sections from (kind, content) pairs, numbered from 1.
    fn steps(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut sections: BTreeMap<String, String> = list
            .iter()
            .enumerate()
            .map(|(i, (kind, body))| (format!("step {} ({kind})", i + 1), body.to_string()))
            .collect();
        sections.insert("labels".into(), "x".into());
        sections
    }

    #[test]
    fn steps_are_aligned_so_that_only_the_step_that_moved_is_named() {
        let old = steps(&[("run", "a"), ("copy", "b"), ("run", "c"), ("env", "d")]);
        // One step inserted: only it, in the new numbering.
        let inserted = steps(&[
            ("run", "a"),
            ("pip", "x"),
            ("copy", "b"),
            ("run", "c"),
            ("env", "d"),
        ]);
        assert_eq!(step_changes(&old, &inserted), ["step 2 (pip) added"]);
        // One step removed: only it, in the old numbering.
        let removed = steps(&[("run", "a"), ("run", "c"), ("env", "d")]);
        assert_eq!(step_changes(&old, &removed), ["step 2 (copy) removed"]);
        // Changed in place, and a later one added.
        let changed = steps(&[
            ("run", "a"),
            ("copy", "B"),
            ("run", "c"),
            ("env", "d"),
            ("run", "e"),
        ]);
        assert_eq!(
            step_changes(&old, &changed),
            ["step 2 (copy)", "step 5 (run) added"]
        );
        // Two steps swapped: one of them moved.
        let swapped = steps(&[("run", "a"), ("run", "c"), ("copy", "b"), ("env", "d")]);
        assert_eq!(step_changes(&old, &swapped).len(), 2);
        assert!(step_changes(&old, &old).is_empty());
        // Numbers past 9 are ordered as numbers.
        let many: Vec<(&str, &str)> = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
            .iter()
            .map(|b| ("run", *b))
            .collect();
        let mut fewer = many.clone();
        fewer.remove(0);
        assert_eq!(
            step_changes(&steps(&many), &steps(&fewer)),
            ["step 1 (run) removed"]
        );
    }
}
