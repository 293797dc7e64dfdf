//! The walk of a layer directory: every regular file it holds, symlinks followed inside the
//! directory (loops, escapes and broken links reported, not followed), ignore rules applied,
//! subdirectories read in parallel.

use std::io;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use ignore::gitignore::Gitignore;
use ignore::{DirEntry, ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};

use super::ALWAYS_EXCLUDED;

/// A file found by a walk, relative to the walk's layer directory.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) rel: String,
    pub(super) source: PathBuf,
    pub(super) executable: bool,
}

/// Something wrong found while walking.
#[derive(Debug)]
pub(super) enum Issue {
    SymlinkEscape {
        rel: String,
        target: PathBuf,
    },
    SymlinkBroken {
        rel: String,
        target: PathBuf,
    },
    SymlinkLoop {
        rel: String,
    },
    /// A symlink that never resolves: it leads back to itself through other symlinks.
    SymlinkCycle {
        rel: String,
    },
    /// A name with a `\`, which a build context cannot hold.
    Backslash {
        rel: String,
    },
    NotUtf8 {
        path: PathBuf,
    },
    Read {
        rel: String,
        error: io::Error,
    },
}

impl Issue {
    /// A path at `rel` (on disk: `path`) that did not resolve: a symlink loop, or a
    /// symlink whose target does not exist.
    pub(super) fn unresolved(rel: String, path: &Path, error: &io::Error) -> Issue {
        // `io::ErrorKind::FilesystemLoop` is not stable yet: ask the OS error.
        #[cfg(unix)]
        if error.raw_os_error() == Some(libc::ELOOP) {
            return Issue::SymlinkCycle { rel };
        }
        let target = std::fs::read_link(path).unwrap_or_else(|_| path.to_path_buf());
        Issue::SymlinkBroken { rel, target }
    }

    /// Sort key: where it was found.
    fn key(&self) -> (&str, &Path) {
        match self {
            Issue::SymlinkEscape { rel, .. }
            | Issue::SymlinkBroken { rel, .. }
            | Issue::SymlinkLoop { rel }
            | Issue::SymlinkCycle { rel }
            | Issue::Backslash { rel }
            | Issue::Read { rel, .. } => (rel, Path::new("")),
            Issue::NotUtf8 { path } => ("", path),
        }
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) files: Vec<Entry>,
    pub(super) issues: Vec<Issue>,
}

impl Found {
    /// Issues in path order, whatever order the directories were read in.
    pub(super) fn sorted(mut self) -> Found {
        self.issues.sort_by(|a, b| a.key().cmp(&b.key()));
        self
    }

    fn merge(&mut self, other: Found) {
        self.files.extend(other.files);
        self.issues.extend(other.issues);
    }
}

/// Walks a layer directory (canonical `root`), applying the ignore rules when it has some.
pub(super) struct Walker {
    pub(super) root: PathBuf,
    /// `None`: take everything (the `files` sources).
    pub(super) rules: Option<Gitignore>,
}

impl Walker {
    /// Everything in the directory.
    pub(super) fn walk_root(&self) -> Found {
        self.walk_dir(&self.root, "")
    }

    /// One entry (file or directory) named in Gear.toml, `rel` normalized and existing.
    pub(super) fn walk_entry(&self, rel: &str) -> Found {
        let mut found = Found::default();
        if rel.is_empty() {
            return self.walk_root();
        }
        let logical = self.root.join(rel);
        let real = match std::fs::canonicalize(&logical) {
            Ok(real) => real,
            Err(error) => {
                found
                    .issues
                    .push(Issue::unresolved(rel.to_string(), &logical, &error));
                return found;
            }
        };
        if !real.starts_with(&self.root) {
            found.issues.push(Issue::SymlinkEscape {
                rel: rel.to_string(),
                target: real,
            });
            return found;
        }
        let meta = match std::fs::metadata(&real) {
            Ok(meta) => meta,
            Err(error) => {
                found.issues.push(Issue::Read {
                    rel: rel.to_string(),
                    error,
                });
                return found;
            }
        };
        if self.excluded_with_parents(rel, meta.is_dir()) {
            return found;
        }
        if meta.is_dir() {
            return self.walk_dir(&real, rel);
        }
        if meta.is_file() {
            found.files.push(Entry {
                rel: rel.to_string(),
                source: real,
                executable: is_executable(&meta),
            });
        }
        found
    }

    /// Walks `real_dir` (canonical), whose path in the context is `rel`, with the `ignore`
    /// crate's parallel walker: symlinks followed, loops found by the walker (against every
    /// directory above the entry too), escapes, ignore rules and names checked here.
    fn walk_dir(&self, real_dir: &Path, rel: &str) -> Found {
        let shared = Mutex::new(Found::default());
        let start = Start {
            walker: self,
            dir: real_dir,
            rel,
            through_symlink: AtomicBool::new(false),
            shared: &shared,
        };
        WalkBuilder::new(real_dir)
            .standard_filters(false)
            .follow_links(true)
            .build_parallel()
            .visit(&mut &start);
        shared.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `rel` (a path relative to the root, no parent excluded) is left out.
    fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        let Some(rules) = &self.rules else {
            return false;
        };
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if ALWAYS_EXCLUDED.contains(&name) {
            return true;
        }
        if !rel.contains('/')
            && ((rel == "manifest.json" && !is_dir) || (rel == "target" && is_dir))
        {
            return true;
        }
        rules.matched(rel, is_dir).is_ignore()
    }

    /// Whether `rel` or any of its parent directories is left out.
    fn excluded_with_parents(&self, rel: &str, is_dir: bool) -> bool {
        if self.rules.is_none() {
            return false;
        }
        let mut end = 0;
        while let Some(i) = rel[end..].find('/') {
            if self.excluded(&rel[..end + i], true) {
                return true;
            }
            end += i + 1;
        }
        self.excluded(rel, is_dir)
    }
}

/// One walk of a directory: what every thread of the walker shares.
struct Start<'w> {
    walker: &'w Walker,
    /// The canonical directory walked.
    dir: &'w Path,
    /// Its path in the context.
    rel: &'w str,
    /// Whether a symlinked directory was followed: files below one are named by their
    /// canonical path, like symlinked files.
    through_symlink: AtomicBool,
    /// What the threads found, merged as each one ends.
    shared: &'w Mutex<Found>,
}

impl<'s> ParallelVisitorBuilder<'s> for &'s Start<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Visit {
            start: self,
            found: Found::default(),
        })
    }
}

/// One thread's share of a walk.
struct Visit<'s> {
    start: &'s Start<'s>,
    found: Found,
}

impl Drop for Visit<'_> {
    fn drop(&mut self) {
        let found = std::mem::take(&mut self.found);
        self.start
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merge(found);
    }
}

impl ParallelVisitor for Visit<'_> {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        match entry {
            Ok(dent) => self.entry(&dent),
            Err(error) => {
                self.error(error);
                WalkState::Continue
            }
        }
    }
}

impl Visit<'_> {
    /// The path in the context of `path`, a path below the walked directory; None when its
    /// name is not UTF-8.
    fn rel(&self, path: &Path) -> Option<String> {
        let below = path.strip_prefix(self.start.dir).ok()?.to_str()?;
        Some(match (self.start.rel, below) {
            (rel, "") => rel.to_string(),
            ("", below) => below.to_string(),
            (rel, below) => format!("{rel}/{below}"),
        })
    }

    /// A name that is not UTF-8: a problem only when it would be copied.
    fn not_utf8(&mut self, path: &Path, is_dir: bool) {
        let below = path.strip_prefix(self.start.dir).unwrap_or(path);
        let rel_path = Path::new(self.start.rel).join(below);
        let ignored = self
            .start
            .walker
            .rules
            .as_ref()
            .is_some_and(|r| r.matched(&rel_path, is_dir).is_ignore());
        if !ignored {
            self.found.issues.push(Issue::NotUtf8 {
                path: path.to_path_buf(),
            });
        }
    }

    fn entry(&mut self, dent: &DirEntry) -> WalkState {
        if dent.depth() == 0 {
            return WalkState::Continue;
        }
        let walker = self.start.walker;
        let path = dent.path();
        // Followed: the target's type.
        let is_dir = dent.file_type().is_some_and(|t| t.is_dir());
        let is_symlink = dent.path_is_symlink();
        let Some(rel) = self.rel(path) else {
            self.not_utf8(path, is_dir);
            return WalkState::Skip;
        };
        // The engine refuses a `\` in a context path; refuse it here, where it is seen.
        if rel
            .rsplit('/')
            .next()
            .is_some_and(|name| name.contains('\\'))
            && !walker.excluded(&rel, is_dir && !is_symlink)
        {
            self.found.issues.push(Issue::Backslash { rel });
            return WalkState::Skip;
        }
        if walker.excluded(&rel, is_dir) {
            return WalkState::Skip;
        }
        if is_symlink {
            let real = match std::fs::canonicalize(path) {
                Ok(real) => real,
                Err(error) => {
                    self.found.issues.push(Issue::Read { rel, error });
                    return WalkState::Skip;
                }
            };
            if !real.starts_with(&walker.root) {
                self.found
                    .issues
                    .push(Issue::SymlinkEscape { rel, target: real });
                return WalkState::Skip;
            }
            if is_dir {
                self.start.through_symlink.store(true, Ordering::Relaxed);
                return WalkState::Continue;
            }
            self.file(rel, real, dent);
        } else if is_dir {
            return WalkState::Continue;
        } else if dent.file_type().is_some_and(|t| t.is_file()) {
            let source = if self.start.through_symlink.load(Ordering::Relaxed) {
                // Below a symlinked directory, perhaps: name the file where it is.
                match path.parent().map(std::fs::canonicalize) {
                    Some(Ok(dir)) => dir.join(dent.file_name()),
                    Some(Err(error)) => {
                        self.found.issues.push(Issue::Read { rel, error });
                        return WalkState::Continue;
                    }
                    None => path.to_path_buf(),
                }
            } else {
                path.to_path_buf()
            };
            self.file(rel, source, dent);
        }
        // Sockets, FIFOs and devices are not build inputs.
        WalkState::Continue
    }

    fn file(&mut self, rel: String, source: PathBuf, dent: &DirEntry) {
        match dent.metadata() {
            Ok(meta) => self.found.files.push(Entry {
                rel,
                source,
                executable: is_executable(&meta),
            }),
            Err(error) => self.found.issues.push(Issue::Read {
                rel,
                error: into_io(error),
            }),
        }
    }

    /// A symlink that loops or does not resolve, or a directory that cannot be read.
    fn error(&mut self, error: ignore::Error) {
        let walker = self.start.walker;
        let (path, looped) = about(&error);
        let Some(path) = path.map(Path::to_path_buf) else {
            self.found.issues.push(Issue::Read {
                rel: self.start.rel.to_string(),
                error: into_io(error),
            });
            return;
        };
        let resolves = std::fs::metadata(&path);
        let Some(rel) = self.rel(&path) else {
            self.not_utf8(&path, resolves.is_ok_and(|m| m.is_dir()));
            return;
        };
        if looped || resolves.is_err() {
            // A symlink, named before it is followed.
            if rel
                .rsplit('/')
                .next()
                .is_some_and(|name| name.contains('\\'))
                && !walker.excluded(&rel, false)
            {
                self.found.issues.push(Issue::Backslash { rel });
                return;
            }
        }
        if looped {
            if walker.excluded(&rel, true) {
                return;
            }
            match std::fs::canonicalize(&path) {
                Ok(real) if !real.starts_with(&walker.root) => {
                    // An ancestor of the layer directory: outside it before it is a loop.
                    self.found
                        .issues
                        .push(Issue::SymlinkEscape { rel, target: real });
                }
                Ok(_) => self.found.issues.push(Issue::SymlinkLoop { rel }),
                Err(error) => self.found.issues.push(Issue::Read { rel, error }),
            }
        } else if resolves.is_err() {
            if !walker.excluded(&rel, false) {
                let error = into_io(error);
                self.found
                    .issues
                    .push(Issue::unresolved(rel, &path, &error));
            }
        } else {
            self.found.issues.push(Issue::Read {
                rel,
                error: into_io(error),
            });
        }
    }
}

/// The path an error of the walker is about, and whether it is a symlink loop.
fn about(error: &ignore::Error) -> (Option<&Path>, bool) {
    match error {
        ignore::Error::WithPath { path, err } => match about(err) {
            (None, looped) => (Some(path), looped),
            found => found,
        },
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            about(err)
        }
        ignore::Error::Loop { child, .. } => (Some(child), true),
        _ => (None, false),
    }
}

/// The I/O error inside an error of the walker (its text when it holds none).
fn into_io(error: ignore::Error) -> io::Error {
    let text = error.to_string();
    error
        .into_io_error()
        .unwrap_or_else(|| io::Error::other(text))
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_excluded_names() {
        let dir = tempfile::tempdir().unwrap();
        let w = Walker {
            root: dir.path().to_path_buf(),
            rules: Some(Gitignore::empty()),
        };
        assert!(w.excluded("Gear.toml", false));
        assert!(w.excluded("sub/Gear.toml", false));
        assert!(w.excluded("manifest.json", false));
        assert!(!w.excluded("sub/manifest.json", false));
        assert!(w.excluded("target", true));
        assert!(!w.excluded("app/target", true));
        assert!(w.excluded("app/.git", true));
        assert!(w.excluded(".cargo-gear", true));
        assert!(w.excluded_with_parents(".git/config", false));
        assert!(!w.excluded_with_parents("app/x.py", false));
        let plain = Walker {
            root: dir.path().to_path_buf(),
            rules: None,
        };
        assert!(!plain.excluded("Gear.toml", false));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_directory_above_the_entry_is_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/x.txt"), "").unwrap();
        std::fs::write(root.join("a/b/y.txt"), "").unwrap();
        std::os::unix::fs::symlink("..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("a/b/top")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/out")).unwrap();
        let w = Walker {
            root: root.clone(),
            rules: Some(Gitignore::empty()),
        };
        let found = w.walk_entry("a/b").sorted();
        let files: Vec<&str> = found.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(files, ["a/b/y.txt"]);
        let issues: Vec<String> = found
            .issues
            .iter()
            .map(|i| match i {
                Issue::SymlinkLoop { rel } => format!("loop {rel}"),
                Issue::SymlinkEscape { rel, .. } => format!("escape {rel}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(issues, ["escape a/b/out", "loop a/b/top", "loop a/b/up"]);
    }
}
