//! A layer's own Dockerfile (`dockerfile-file`): read and checked against what the classic
//! builder can build, then rendered with its parent's `FROM` rewritten to the parent's
//! content tag and cargo-gear's frame (a gear's manifest, the labels) appended.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::frame;
use super::parse::{self, Dockerfile, Instruction};
use crate::diagnostic::{Problem, SourceFile};
use crate::layer::Layer;
use crate::reference::canonical_repository;

/// Flags the classic builder (the engine API's builder) does not know: BuildKit only.
const BUILDKIT_FLAGS: &[&str] = &[
    "--chmod",
    "--link",
    "--mount",
    "--network",
    "--security",
    "--checksum",
    "--parents",
    "--exclude",
    "--start-interval",
];

/// A layer's own Dockerfile, read and split into instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnDockerfile {
    /// The file on disk.
    pub path: PathBuf,
    /// The file as shown to users (relative to the workspace root).
    pub display: String,
    /// Its text.
    pub text: String,
    /// Its instructions.
    pub parsed: Dockerfile,
}

impl OwnDockerfile {
    /// The file as a diagnostics source.
    fn source(&self) -> Arc<SourceFile> {
        SourceFile::new(self.path.clone(), self.display.clone(), self.text.clone())
    }

    /// A problem pointing at an instruction of the file.
    fn at(&self, problem: Problem, instruction: &Instruction) -> Problem {
        problem.at(&self.source(), Some(instruction.span.clone().into()))
    }
}

/// Reads `rel` (the layer's `dockerfile-file`) from the layer directory `dir`: every
/// problem (missing, unparsable, no `FROM`, BuildKit-only syntax) goes to `problems`.
pub fn read(
    layer: &Layer,
    dir: &Path,
    rel: &str,
    problems: &mut Vec<Problem>,
) -> Option<OwnDockerfile> {
    let path = dir.join(rel);
    let display = format!("{}/{rel}", layer.rel_dir);
    let key_span = layer.span(&["dockerfile-file"]);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            let (code, why) = if e.kind() == std::io::ErrorKind::NotFound {
                (
                    "gear::dockerfile-file-missing",
                    "does not exist".to_string(),
                )
            } else {
                ("gear::read", format!("cannot be read: {e}"))
            };
            problems.push(
                Problem::new(code, format!("`dockerfile-file`: {display} {why}"))
                    .at(&layer.source, key_span)
                    .label("named here")
                    .help(format!(
                        "create {display}, or fix the path (relative to {})",
                        layer.rel_dir
                    )),
            );
            return None;
        }
    };
    let parsed = match parse::parse(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let source = SourceFile::new(path.clone(), display.clone(), text.clone());
            let span = line_span(&text, e.line());
            problems.push(
                Problem::new("gear::dockerfile-syntax", format!("{display}: {e}"))
                    .at(&source, span)
                    .label("here")
                    .help("fix the Dockerfile at the marked line"),
            );
            return None;
        }
    };
    let own = OwnDockerfile {
        path,
        display,
        text,
        parsed,
    };
    let before = problems.len();
    for i in &own.parsed.instructions {
        let flag = i.flags.iter().find(|f| {
            BUILDKIT_FLAGS
                .iter()
                .any(|b| f.split('=').next() == Some(*b))
        });
        let what = match (flag, i.heredocs.first()) {
            (Some(flag), _) => {
                format!("`{} {}`", i.keyword, flag.split('=').next().unwrap_or(flag))
            }
            (None, Some(h)) => format!("a heredoc (`<<{}`)", h.name),
            (None, None) => continue,
        };
        problems.push(own.at(
            Problem::new(
                "gear::buildkit-required",
                format!("{} line {}: {what} needs BuildKit, but cargo-gear builds with the engine's classic builder", own.display, i.start_line),
            )
            .label("BuildKit only")
            .help("write it without BuildKit syntax (e.g. `RUN chmod` after `COPY`, a script file instead of a heredoc), or use steps (`copy` takes `chmod`)"),
            i,
        ));
    }
    if !own.parsed.instructions.iter().any(|i| i.keyword == "FROM") {
        problems.push(
            Problem::new(
                "gear::dockerfile-no-from",
                format!("{} has no `FROM`", own.display),
            )
            .at(&own.source(), Some((0..0).into()))
            .label("no FROM")
            .help(format!(
                "start it with `FROM` and the parent's image (the layer `{}` is built on)",
                layer.decl.from.as_deref().unwrap_or("?")
            )),
        );
    }
    (problems.len() == before).then_some(own)
}

/// The span of 1-based `line` of `text`.
fn line_span(text: &str, line: usize) -> Option<miette::SourceSpan> {
    let mut offset = 0;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        if n + 1 == line {
            return Some((offset..offset + l.trim_end().len()).into());
        }
        offset += l.len();
    }
    None
}

/// The Dockerfile to build: `own` with every `FROM` of the parent's image repository
/// (`parent_image`, tag and digest aside) rewritten to `parent_ref`, then the frame. The
/// last stage must build on the parent, directly or through other stages.
pub fn render(
    own: &OwnDockerfile,
    layer: &Layer,
    parent_image: &str,
    parent_ref: &str,
) -> Result<String, Problem> {
    let escape = own.parsed.escape;
    let parent_repo = canonical_repository(parent_image);
    // ARGs before the first FROM may name the image (`FROM ${BASE}`).
    let mut global: IndexMap<String, String> = IndexMap::new();
    let mut stages: Vec<(Option<String>, bool)> = Vec::new();
    let mut text = String::new();
    let _ = std::fmt::Write::write_fmt(
        &mut text,
        format_args!(
            "# Generated by cargo-gear from {}. Do not edit.\n",
            own.display
        ),
    );
    let mut copied = 0;
    for i in &own.parsed.instructions {
        if i.keyword == "ARG" && stages.is_empty() {
            // An ARG without a default stays unknown: the FROM naming it is refused.
            for p in parse::pairs(i, escape) {
                if let Some(value) = p.value {
                    global.insert(p.name, value);
                }
            }
            continue;
        }
        if i.keyword != "FROM" {
            continue;
        }
        let from = parse::from(i, escape);
        let Some(image) = parse::expand(&from.image, &global) else {
            return Err(own.at(
                Problem::new(
                    "gear::dockerfile-from-arg",
                    format!("{} line {}: `FROM {}` names its image with a variable that has no default", own.display, i.start_line, from.image),
                )
                .label("unknown image")
                .help(format!("write the parent's image literally (`FROM {parent_image}`), or give the ARG a default")),
                i,
            ));
        };
        // A FROM of the parent's repository is rewritten; a stage built on one that was
        // builds on the parent too.
        let rewrite = parent_repo.is_some() && canonical_repository(&image) == parent_repo;
        let builds_on_parent = rewrite
            || stages
                .iter()
                .any(|(alias, on_parent)| *on_parent && alias.as_deref() == Some(image.as_str()));
        stages.push((from.alias.clone(), builds_on_parent));
        if rewrite {
            text.push_str(&own.text[copied..i.span.start]);
            let mut line = String::from("FROM ");
            for f in &i.flags {
                line.push_str(f);
                line.push(' ');
            }
            line.push_str(parent_ref);
            if let Some(alias) = &from.alias {
                line.push_str(" AS ");
                line.push_str(alias);
            }
            text.push_str(&line);
            let end = own.text[i.span.clone()]
                .trim_end_matches(['\n', '\r'])
                .len();
            copied = i.span.start + end;
        }
    }
    text.push_str(&own.text[copied..]);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match stages.last() {
        Some((_, true)) => {}
        _ => {
            let last = own
                .parsed
                .instructions
                .iter()
                .rev()
                .find(|i| i.keyword == "FROM");
            let problem = Problem::new(
                "gear::dockerfile-parent",
                format!(
                    "the last stage of {} does not build on `{}` (image {parent_image})",
                    own.display,
                    layer.decl.from.as_deref().unwrap_or_default()
                ),
            )
            .label("not the parent's image")
            .help(format!("start the last stage with `FROM {parent_image}` (cargo-gear rewrites it to the parent it built), or with a stage that does"));
            return Err(match last {
                Some(i) => own.at(problem, i),
                None => problem,
            });
        }
    }
    for instr in frame(layer) {
        instr.write(&mut text);
    }
    Ok(text)
}

/// The variables the last stage sets with `ENV`, values as written: an own Dockerfile's
/// environment for its gear's manifest.
pub fn environment(own: &OwnDockerfile) -> IndexMap<String, String> {
    let last_from = own
        .parsed
        .instructions
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .unwrap_or(0);
    let mut env = IndexMap::new();
    for i in &own.parsed.instructions[last_from..] {
        if i.keyword == "ENV" {
            for p in parse::pairs(i, own.parsed.escape) {
                env.insert(p.name, p.value.unwrap_or_default());
            }
        }
    }
    env
}

#[cfg(test)]
mod tests;
