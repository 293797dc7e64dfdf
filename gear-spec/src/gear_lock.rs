//! `Gear.lock`: the digest every external base image resolved to, so that a tag moving
//! upstream changes nothing until `cargo gear update` moves it on purpose.
//!
//! One entry per external image, keyed by the declared reference, the substitute used for it
//! (if any: a site mirror and the public image each keep their own entry) and the platform.
//! An entry records the registry digest the reference resolved to (`digest`, an index's or
//! a manifest's; absent for an image only the local engine has) and the id of the image the
//! engine used (`image-id`, its configuration digest). The file is TOML in a stable order,
//! written by cargo-gear and meant to be committed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Problem, Problems, SourceFile};
use crate::fingerprint::Fingerprint;
use crate::platform::Platform;

/// The file's name, at the workspace root.
pub const GEAR_LOCK: &str = "Gear.lock";

/// The format version written in the file.
const VERSION: u32 = 1;

/// What the file starts with.
const HEADER: &str = "# Gear.lock: the digest each external base image resolved to, written by cargo-gear.\n\
# Commit it. `cargo gear update` re-resolves the tags; a `digest` in a Gear.toml wins over it.\n";

/// A content digest, `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageDigest(String);

impl ImageDigest {
    /// `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ImageDigest {
    type Err = String;

    fn from_str(s: &str) -> Result<ImageDigest, String> {
        // Same shape as a fingerprint; parsing one checks it.
        s.parse::<Fingerprint>()
            .map(|f| ImageDigest(f.to_string()))
            .map_err(|_| format!("`{s}` is not `sha256:` and 64 hex digits"))
    }
}

/// What an entry is for: the declared reference, its substitute, the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaseKey {
    /// The reference the Gear.toml declares (`python:3.12-slim`).
    pub image: String,
    /// The reference used in its place (`--substitute`, `substitute =`), if any.
    pub substitute: Option<String>,
    /// The platform it was resolved for.
    pub platform: Platform,
}

impl BaseKey {
    /// The reference the engine pulls: the substitute, else the declared one.
    pub fn used(&self) -> &str {
        self.substitute.as_deref().unwrap_or(&self.image)
    }
}

impl fmt::Display for BaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.substitute {
            Some(s) => write!(f, "{} (as {s}, {})", self.image, self.platform),
            None => write!(f, "{} ({})", self.image, self.platform),
        }
    }
}

/// What a base image resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedBase {
    /// The registry digest of the reference (index or manifest): what `FROM ref@digest` and
    /// a pull by digest name. `None` for an image no registry gave (built or loaded locally).
    pub digest: Option<ImageDigest>,
    /// The id of the image the engine used: for a multi-platform index, the chosen
    /// platform's image. The only pin of an image without `digest`, checked against the
    /// engine's image before anything is built on it.
    pub image_id: ImageDigest,
}

impl LockedBase {
    /// What the entry pins: the registry digest, else the image id.
    pub fn pin(&self) -> &ImageDigest {
        self.digest.as_ref().unwrap_or(&self.image_id)
    }
}

/// The contents of a `Gear.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GearLock {
    bases: BTreeMap<BaseKey, LockedBase>,
}

/// An entry as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBase {
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    substitute: Option<String>,
    platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    image_id: String,
}

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: u32,
    #[serde(default)]
    base: Vec<RawBase>,
}

/// Why a `Gear.lock` could not be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write {}", path.display())]
#[diagnostic(
    code("gear::lock-write"),
    help("check that the workspace root is writable")
)]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl GearLock {
    /// The lock at `path`: empty when there is no such file; problems pointing into the file
    /// when it is not a lock cargo-gear would write.
    pub fn load(path: &Path, display: &str) -> Result<GearLock, Problems> {
        match std::fs::read_to_string(path) {
            Ok(text) => GearLock::parse(SourceFile::new(
                path.to_path_buf(),
                display.to_string(),
                text,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GearLock::default()),
            Err(e) => Err(Problem::new(
                "gear::invalid-lock",
                format!("cannot read {display}: {e}"),
            )
            .help("check that the file is readable")
            .into()),
        }
    }

    /// Parses a lock's text.
    pub fn parse(file: Arc<SourceFile>) -> Result<GearLock, Problems> {
        let fix = "cargo-gear writes this file: fix the value, or delete the entry (or the whole file) and the next `cargo gear build` or `cargo gear update` resolves it anew";
        let raw: RawLock = toml::from_str(file.text()).map_err(|e| {
            let span = e.span().map(Into::into);
            Problem::new(
                "gear::invalid-lock",
                format!("{} is not a valid lock file: {}", file.display, e.message()),
            )
            .at(&file, span)
            .help(fix)
        })?;
        let mut problems = Problems::default();
        if raw.version != VERSION {
            problems.push(
                Problem::new(
                    "gear::invalid-lock",
                    format!(
                        "{} has version {}, and this cargo-gear reads version {VERSION}",
                        file.display, raw.version
                    ),
                )
                .at(&file, file.value_span(&["version"]))
                .help("update cargo-gear, or run `cargo gear update` to rewrite the lock"),
            );
        }
        let mut bases = BTreeMap::new();
        for (n, entry) in raw.base.into_iter().enumerate() {
            let n = n.to_string();
            let problem = |key: &str, message: String| {
                Problem::new("gear::invalid-lock", message)
                    .at(&file, file.value_span(&["base", &n, key]))
                    .label("here")
                    .help(fix)
            };
            let field =
                |key: &str| format!("`{key}` of base `{}` in {}", entry.image, file.display);
            let platform = entry
                .platform
                .parse::<Platform>()
                .map_err(|e| problem("platform", format!("{}: {e}", field("platform"))));
            let digest = entry
                .digest
                .as_deref()
                .map(str::parse::<ImageDigest>)
                .transpose()
                .map_err(|e| problem("digest", format!("{}: {e}", field("digest"))));
            let image_id = entry
                .image_id
                .parse::<ImageDigest>()
                .map_err(|e| problem("image-id", format!("{}: {e}", field("image-id"))));
            let (platform, digest, image_id) = match (platform, digest, image_id) {
                (Ok(platform), Ok(digest), Ok(image_id)) => (platform, digest, image_id),
                (platform, digest, image_id) => {
                    for p in [platform.err(), digest.err(), image_id.err()]
                        .into_iter()
                        .flatten()
                    {
                        problems.push(p);
                    }
                    continue;
                }
            };
            let key = BaseKey {
                image: entry.image.clone(),
                substitute: entry.substitute.clone(),
                platform,
            };
            if bases.contains_key(&key) {
                problems.push(problem(
                    "image",
                    format!("base {key} is locked twice in {}", file.display),
                ));
                continue;
            }
            bases.insert(key, LockedBase { digest, image_id });
        }
        problems.into_result(GearLock { bases })
    }

    /// The entry for `key`.
    pub fn get(&self, key: &BaseKey) -> Option<&LockedBase> {
        self.bases.get(key)
    }

    /// Records `base` for `key`, returning the entry it replaces.
    pub fn insert(&mut self, key: BaseKey, base: LockedBase) -> Option<LockedBase> {
        self.bases.insert(key, base)
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, keep: &dyn Fn(&BaseKey) -> bool) {
        self.bases.retain(|k, _| keep(k));
    }

    /// Every entry, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&BaseKey, &LockedBase)> {
        self.bases.iter()
    }

    /// The file's text: a header, the version, then one `[[base]]` per entry, sorted.
    pub fn render(&self) -> String {
        let raw = RawLock {
            version: VERSION,
            base: self
                .bases
                .iter()
                .map(|(k, b)| RawBase {
                    image: k.image.clone(),
                    substitute: k.substitute.clone(),
                    platform: k.platform.to_string(),
                    digest: b.digest.as_ref().map(ToString::to_string),
                    image_id: b.image_id.to_string(),
                })
                .collect(),
        };
        // Plain strings, numbers and arrays of tables: serializing them cannot fail.
        let body = toml::to_string(&raw).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Writes the lock to `path` (atomically) unless the file already holds exactly it.
    /// Returns whether it wrote.
    pub fn save(&self, path: &Path) -> Result<bool, WriteError> {
        let text = self.render();
        if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        let err = |source| WriteError {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, &text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> ImageDigest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn key(image: &str, substitute: Option<&str>) -> BaseKey {
        BaseKey {
            image: image.into(),
            substitute: substitute.map(Into::into),
            platform: Platform::flywheel(),
        }
    }

    fn parse(text: &str) -> Result<GearLock, Problems> {
        GearLock::parse(SourceFile::new(
            PathBuf::from("/ws/Gear.lock"),
            "Gear.lock".into(),
            text.into(),
        ))
    }

    #[test]
    fn renders_sorted_and_reads_back() {
        let mut lock = GearLock::default();
        lock.insert(
            key("python:3.12-slim", Some("mirror.example/python:3.12-slim")),
            LockedBase {
                digest: None,
                image_id: digest('b'),
            },
        );
        lock.insert(
            key("python:3.12-slim", None),
            LockedBase {
                digest: Some(digest('a')),
                image_id: digest('c'),
            },
        );
        let text = lock.render();
        insta::assert_snapshot!(text);
        assert_eq!(parse(&text).unwrap(), lock);
        assert_eq!(
            lock.get(&key("python:3.12-slim", None)).unwrap().pin(),
            &digest('a')
        );
        assert_eq!(
            lock.get(&key(
                "python:3.12-slim",
                Some("mirror.example/python:3.12-slim")
            ))
            .unwrap()
            .pin(),
            &digest('b')
        );
    }

    #[test]
    fn a_hand_edited_entry_is_refused_with_its_place() {
        let text = format!(
            "version = 1\n\n[[base]]\nimage = \"python:3.12-slim\"\nplatform = \"linux/amd64\"\ndigest = \"sha256:abc\"\nimage-id = \"{}\"\n",
            digest('c')
        );
        let problems = parse(&text).unwrap_err();
        let rendered: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.location().unwrap_or_default(), p.message))
            .collect();
        insta::assert_snapshot!(rendered.join("\n"));
    }

    #[test]
    fn a_broken_file_and_a_future_version_are_refused() {
        let broken = parse("version = 1\n[[base]\n").unwrap_err();
        assert!(
            broken
                .iter()
                .all(|p| p.code == "gear::invalid-lock" && p.span.is_some())
        );
        let future = parse("version = 7\n").unwrap_err();
        assert!(future.iter().any(|p| p.message.contains("version 7")));
    }

    #[test]
    fn save_writes_only_a_change() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(GEAR_LOCK);
        let mut lock = GearLock::default();
        assert!(lock.save(&path).unwrap());
        assert!(!lock.save(&path).unwrap());
        lock.insert(
            key("busybox:1", None),
            LockedBase {
                digest: None,
                image_id: digest('d'),
            },
        );
        assert!(lock.save(&path).unwrap());
        assert_eq!(GearLock::load(&path, "Gear.lock").unwrap(), lock);
        lock.retain(&|key| key.image != "busybox:1");
        assert_eq!(lock, GearLock::default());
    }
}
