//! The status quo cargo-gear replaces: `docker build` of each layer's Dockerfile and context, one
//! after the other in dependency order, as a shell loop over the layer directories would.
//!
//! Each layer's context is materialized the way cargo-gear streams it to the engine: `copy/<files>`,
//! `.cargo-gear/Dockerfile` (from `cargo gear dockerfile --write`) and, for gears,
//! `.cargo-gear/manifest.json` (the gear directory's manifest.json, which the build wrote). The
//! only change is the `FROM` of a layer built on another: it names the loop's own image of the
//! parent instead of cargo-gear's content tag, so the loop builds a chain of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::measure::{self, Out, Sample};
use super::tree::{Layer, Tree};
use crate::Result;

/// Repository prefix of the images the docker loop builds.
pub const LOOP_PREFIX: &str = "cargo-gear-bench-loop";

/// One `docker build` of the loop.
struct Build {
    /// The layer's name.
    name: String,
    context: PathBuf,
    tag: String,
}

/// The materialized contexts of a tree's built layers, in dependency order.
pub struct DockerLoop {
    builds: Vec<Build>,
}

/// The loop's tag for a layer of `tree`.
fn loop_tag(tree: &Tree, name: &str) -> String {
    format!("{LOOP_PREFIX}/{}-{name}:latest", tree.tag)
}

impl DockerLoop {
    /// Materializes every built layer's context under `dir` (replacing it). Needs the Dockerfiles
    /// under `<root>/target/gear/dockerfiles/` and, for gears, the manifest.json in their directory.
    pub fn prepare(tree: &Tree, dir: &Path) -> Result<DockerLoop> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        let dockerfiles = tree.root.join("target/gear/dockerfiles");
        let mut builds = Vec::new();
        for layer in &tree.layers {
            let context = dir.join(&layer.name);
            let path = dockerfiles.join(format!("{}.Dockerfile", layer.name));
            let dockerfile = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let dockerfile = match &layer.built_parent {
                Some(parent) => rewrite_from(&dockerfile, &loop_tag(tree, parent))
                    .ok_or_else(|| format!("{} has no FROM line", path.display()))?,
                None => dockerfile,
            };
            materialize(layer, &context, &dockerfile)?;
            builds.push(Build {
                name: layer.name.clone(),
                context,
                tag: loop_tag(tree, &layer.name),
            });
        }
        Ok(DockerLoop { builds })
    }

    /// Number of `docker build` commands of one loop.
    pub fn len(&self) -> usize {
        self.builds.len()
    }

    /// Runs the loop once: `docker build --quiet -f CONTEXT/.cargo-gear/Dockerfile -t TAG CONTEXT`
    /// for each layer with the classic builder (which cargo-gear uses too). The sample is the sum
    /// of the builds' times and their highest peak memory.
    pub fn run(&self, docker: &Path, host: &str, log: &Path) -> Result<Sample> {
        let mut samples = Vec::with_capacity(self.builds.len());
        for build in &self.builds {
            samples.push(build.run(docker, host, log)?);
        }
        Ok(Sample::sequence(&samples))
    }

    /// The `docker build` of one layer alone (its parent's loop image already built).
    pub fn run_one(&self, name: &str, docker: &Path, host: &str, log: &Path) -> Result<Sample> {
        self.build(name)?.run(docker, host, log)
    }

    /// Writes `bytes` to the materialized context of layer `name` at `copy/<rel>`, as a change to
    /// the layer's file `rel` would reach it.
    pub fn write_file(&self, name: &str, rel: &str, bytes: &[u8]) -> Result {
        fs::write(self.build(name)?.context.join("copy").join(rel), bytes)?;
        Ok(())
    }

    fn build(&self, name: &str) -> Result<&Build> {
        Ok(self
            .builds
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| format!("the docker loop has no layer {name}"))?)
    }
}

impl Build {
    fn run(&self, docker: &Path, host: &str, log: &Path) -> Result<Sample> {
        let mut cmd = Command::new(docker);
        cmd.args(["build", "--quiet", "--file"])
            .arg(self.context.join(".cargo-gear/Dockerfile"))
            .arg("--tag")
            .arg(&self.tag)
            .arg(&self.context)
            .env("DOCKER_HOST", host)
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT");
        measure::run(&mut cmd, Out::File(log))
    }
}

/// Replaces the argument of the first `FROM` line.
fn rewrite_from(dockerfile: &str, from: &str) -> Option<String> {
    let mut done = false;
    let lines: Vec<String> = dockerfile
        .lines()
        .map(|line| {
            if !done && line.starts_with("FROM ") {
                done = true;
                format!("FROM {from}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    done.then(|| lines.join("\n") + "\n")
}

/// Writes `copy/<files>`, `.cargo-gear/Dockerfile` and a gear's `.cargo-gear/manifest.json`.
/// Files are copied, not hard-linked: a new link would change the source's ctime, which
/// invalidates cargo-gear's stat cache.
fn materialize(layer: &Layer, context: &Path, dockerfile: &str) -> Result {
    for rel in &layer.files {
        let dest = context.join("copy").join(rel);
        fs::create_dir_all(dest.parent().expect("a file in a directory"))?;
        fs::copy(layer.dir.join(rel), &dest)?;
    }
    let generated = context.join(".cargo-gear");
    fs::create_dir_all(&generated)?;
    fs::write(generated.join("Dockerfile"), dockerfile)?;
    if layer.gear {
        let manifest = layer.dir.join("manifest.json");
        fs::copy(&manifest, generated.join("manifest.json"))
            .map_err(|e| format!("cannot copy {}: {e}", manifest.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_first_from_only() {
        let d = "# x\nFROM a:gear-1\nRUN true\nFROM b\n";
        assert_eq!(
            rewrite_from(d, "loop/a:latest").unwrap(),
            "# x\nFROM loop/a:latest\nRUN true\nFROM b\n"
        );
        assert_eq!(rewrite_from("RUN true\n", "x"), None);
    }
}
