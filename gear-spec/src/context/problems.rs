//! The problems a build-context selection reports: where a walked set of files came from
//! ([`Origin`]) and how each walk issue becomes a diagnostic pointing into the Gear.toml.

use std::io;
use std::path::Path;

use miette::SourceSpan;

use super::walk::Issue;
use super::{ALWAYS_EXCLUDED, bad_character, join_rel, normalize_rel};
use crate::diagnostic::{Problem, Problems, did_you_mean, escape_controls};
use crate::layer::{Layer, LayerKind};

/// Where a set of walked files came from, to point problems at the right place.
pub(super) enum Origin {
    /// A gear without `copy`: the whole directory.
    Default,
    /// One `copy` entry.
    Copy {
        entry: String,
        span: Option<SourceSpan>,
    },
    /// One `files` source.
    Files {
        src: String,
        span: Option<SourceSpan>,
    },
    /// The `run-file`.
    RunFile { span: Option<SourceSpan> },
}

/// The layer being selected, for building problems.
pub(super) struct Cx<'a> {
    pub(super) layer: &'a Layer,
    /// "gear directory" or "layer directory".
    pub(super) dir_noun: &'static str,
}

impl<'a> Cx<'a> {
    pub(super) fn new(layer: &'a Layer) -> Self {
        let dir_noun = if layer.kind == LayerKind::Gear {
            "gear directory"
        } else {
            "layer directory"
        };
        Cx { layer, dir_noun }
    }

    pub(super) fn span(&self, origin: &Origin) -> Option<SourceSpan> {
        match origin {
            Origin::Default => self.layer.span(&[]),
            Origin::Copy { span, .. } | Origin::Files { span, .. } | Origin::RunFile { span } => {
                *span
            }
        }
    }

    /// Checks a relative path written in Gear.toml: inside the directory, existing.
    /// Returns it normalized.
    pub(super) fn check_rel(
        &self,
        written: &str,
        key: &str,
        root: &Path,
        origin: &Origin,
        problems: &mut Problems,
    ) -> Option<String> {
        if let Some(problem) = self.written_path_problem(written, key, origin) {
            problems.push(problem);
            return None;
        }
        let Some(rel) = normalize_rel(written) else {
            let why = if Path::new(written).has_root() || written.starts_with('\\') {
                "is absolute"
            } else {
                "leaves the directory"
            };
            problems.push(self.escape_problem(written, key, origin, why));
            return None;
        };
        match std::fs::symlink_metadata(root.join(&rel)) {
            Ok(_) => Some(rel),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                problems.push(self.missing_problem(written, &rel, key, root, origin));
                None
            }
            Err(e) => {
                problems.push(self.read_problem(&rel, &e, origin));
                None
            }
        }
    }

    /// An empty path, or one with a character no build context holds (`\\`, NUL).
    pub(super) fn written_path_problem(
        &self,
        written: &str,
        key: &str,
        origin: &Origin,
    ) -> Option<Problem> {
        let (code, message, label, help) = if written.is_empty() {
            (
                "gear::empty-path",
                format!("`{key}` has an empty path"),
                "empty path",
                format!(
                    "name a file or directory of {} (`\".\"` is the whole directory), or remove the entry",
                    self.layer.rel_dir
                ),
            )
        } else {
            let (what, fix) = bad_character(written)?;
            (
                "gear::path-character",
                format!(
                    "`{key}` path `{}` contains {what}, which a Docker build context cannot hold",
                    escape_controls(written)
                ),
                "invalid character",
                fix,
            )
        };
        Some(
            Problem::new(code, message)
                .at(&self.layer.source, self.span(origin))
                .label(label)
                .help(help),
        )
    }

    pub(super) fn escape_problem(
        &self,
        written: &str,
        key: &str,
        origin: &Origin,
        why: &str,
    ) -> Problem {
        Problem::new("gear::path-escape", format!("`{key}` path `{written}` {why}: it must be inside the {} {}", self.dir_noun, self.layer.rel_dir))
            .at(&self.layer.source, self.span(origin))
            .label(format!("not inside {}", self.layer.rel_dir))
            .help(format!(
                "write a path relative to {} without a leading `/` or a `..` that leaves it; to ship a file from elsewhere, move or copy it into {}",
                self.layer.rel_dir, self.layer.rel_dir
            ))
    }

    pub(super) fn missing_problem(
        &self,
        written: &str,
        rel: &str,
        key: &str,
        root: &Path,
        origin: &Origin,
    ) -> Problem {
        // Suggest among the entries of the deepest directory that exists.
        let parts: Vec<&str> = rel.split('/').collect();
        let mut depth = 0;
        while depth + 1 < parts.len() && root.join(parts[..=depth].join("/")).is_dir() {
            depth += 1;
        }
        let parent = parts[..depth].join("/");
        let mut names: Vec<String> = std::fs::read_dir(root.join(&parent))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.retain(|n| !ALWAYS_EXCLUDED.contains(&n.as_str()));
        names.sort();
        let help = match did_you_mean(parts[depth], names.iter().map(String::as_str)) {
            Some(best) => format!(
                "did you mean `{}`?",
                join_rel(&parent, best).trim_start_matches('/')
            ),
            None if names.is_empty() => {
                format!("create it in {}, or remove the entry", self.layer.rel_dir)
            }
            None => {
                let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
                let more = if names.len() > shown.len() {
                    ", …"
                } else {
                    ""
                };
                let dir = if parent.is_empty() {
                    self.layer.rel_dir.clone()
                } else {
                    format!("{}/{parent}", self.layer.rel_dir)
                };
                format!(
                    "create it, or use one of the entries of {dir}: {}{more}",
                    shown.join(", ")
                )
            }
        };
        Problem::new(
            "gear::path-missing",
            format!(
                "`{key}` path `{written}` does not exist in {}",
                self.layer.rel_dir
            ),
        )
        .at(&self.layer.source, self.span(origin))
        .label("no such file or directory")
        .help(help)
    }

    pub(super) fn read_problem(&self, rel: &str, e: &io::Error, origin: &Origin) -> Problem {
        let shown = if rel.is_empty() {
            self.layer.rel_dir.clone()
        } else {
            format!("{}/{rel}", self.layer.rel_dir)
        };
        Problem::new("gear::read", format!("cannot read {shown}: {e}"))
            .at(&self.layer.source, self.span(origin))
            .label(self.origin_label(origin))
            .help(format!(
                "make {shown} readable, or exclude it in .gearignore"
            ))
    }

    pub(super) fn origin_label(&self, origin: &Origin) -> String {
        match origin {
            Origin::Default => format!("this {} copies its whole directory", self.layer.table()),
            Origin::Copy { entry, .. } => format!("copying `{entry}`"),
            Origin::Files { src, .. } => format!("placing `{src}`"),
            Origin::RunFile { .. } => "the run file".to_string(),
        }
    }

    pub(super) fn issue_problem(&self, issue: Issue, origin: &Origin) -> Problem {
        let dir = &escape_controls(&self.layer.rel_dir);
        let esc = |rel: &str| escape_controls(rel).into_owned();
        let shown = |target: &Path| escape_controls(&target.display().to_string()).into_owned();
        let problem = |code, message: String, help: String| {
            Problem::new(code, message)
                .at(&self.layer.source, self.span(origin))
                .label(self.origin_label(origin))
                .help(help)
        };
        match issue {
            Issue::SymlinkEscape { rel, target } => problem(
                "gear::symlink-escape",
                format!(
                    "symlink `{dir}/{}` points outside the {} {dir}, to {}",
                    esc(&rel),
                    self.dir_noun,
                    shown(&target)
                ),
                format!(
                    "Docker only sees the build context: replace the symlink by a copy of its target, point it inside {dir}, or exclude it in .gearignore"
                ),
            ),
            Issue::SymlinkBroken { rel, target } => problem(
                "gear::symlink-broken",
                format!(
                    "symlink `{dir}/{}` points to {}, which does not exist",
                    esc(&rel),
                    shown(&target)
                ),
                "fix or remove the symlink, or exclude it in .gearignore".to_string(),
            ),
            Issue::SymlinkLoop { rel } => problem(
                "gear::symlink-loop",
                format!(
                    "symlink `{dir}/{}` leads back to a directory that contains it",
                    esc(&rel)
                ),
                "remove the symlink, or exclude it in .gearignore".to_string(),
            ),
            Issue::SymlinkCycle { rel } => problem(
                "gear::symlink-loop",
                format!(
                    "symlink `{dir}/{}` never reaches a file: it is part of a loop of symlinks",
                    esc(&rel)
                ),
                "point the symlink at a real file or directory, remove it, or exclude it in .gearignore"
                    .to_string(),
            ),
            Issue::Backslash { rel } => problem(
                "gear::path-character",
                format!(
                    "`{dir}/{}` has a `\\` in its name, which a Docker build context cannot hold",
                    esc(&rel)
                ),
                "rename it (a `\\` is not a directory separator on Linux), or exclude it in .gearignore"
                    .to_string(),
            ),
            Issue::NotUtf8 { path } => problem(
                "gear::path-encoding",
                format!("file name {} is not valid UTF-8", shown(&path)),
                "rename the file, or exclude it in .gearignore".to_string(),
            ),
            Issue::Read { rel, error } => self.read_problem(&rel, &error, origin),
        }
    }
}
