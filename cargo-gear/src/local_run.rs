//! Local gear runs: command-line inputs and config turned into a checked job, a run
//! directory in Flywheel's layout under `target/gear/runs/`, and the container spec that
//! runs the gear the way Flywheel does.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use gear_spec::dockerfile::{FLYWHEEL_DIR, shell_word};
use gear_spec::job::{self, Job, JobInput, RunRequest, Secret};
use gear_spec::plan::{BuiltImage, GearImage, PlannedLayer};
use gear_spec::state::Record;
use gear_spec::step::Recipe;
use gear_spec::{LayerKind, Problem, Problems};

use crate::cli::JobArgs;
use crate::engine::{RunSpec, StdStream};
use crate::error::CliError;
use crate::output::Output;
use crate::request::Session;

/// Checks the arguments against the gear; returns the gear's graph index and the job.
/// With `lenient`, missing inputs and config are allowed (for `shell`).
pub fn prepare(
    session: &Session,
    args: &JobArgs,
    cwd: &Path,
    lenient: bool,
) -> Result<(usize, Job), CliError> {
    let Some(index) = session.graph.find(&args.gear) else {
        return Err(
            Problems::from(gear_spec::plan::unknown_layer(&session.graph, &args.gear)).into(),
        );
    };
    let layer = session.graph.layer(index);
    if layer.kind != LayerKind::Gear {
        return Err(CliError::usage(
            format!(
                "`{}` is a {}, not a gear: only gears run",
                layer.name,
                layer.kind.as_str()
            ),
            "pick a gear (`cargo gear graph` lists them)",
        ));
    }
    let mut problems = Problems::default();
    let pairs = |values: &[String], flag: &str, problems: &mut Problems| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for v in values {
            match v.split_once('=') {
                Some((k, val)) if !k.is_empty() => out.push((k.to_string(), val.to_string())),
                _ => problems.push(
                    Problem::new("gear::run-argument", format!("invalid {flag} `{v}`"))
                        .help(format!("write it as {flag} NAME=VALUE")),
                ),
            }
        }
        out
    };
    let inputs = pairs(&args.inputs, "--input", &mut problems);
    let config = pairs(&args.config, "--config", &mut problems);
    let config_file = match &args.config_file {
        None => None,
        Some(path) => {
            let path = cwd.join(path);
            match std::fs::read_to_string(&path)
                .map(|text| serde_json::from_str::<serde_json::Value>(&text))
            {
                // A file that cannot be read is one more problem, reported with the others.
                Err(e) => {
                    problems.push(
                        Problem::new(
                            "gear::run-config-file",
                            format!("cannot read {}: {e}", path.display()),
                        )
                        .help("pass the path of an existing JSON file"),
                    );
                    None
                }
                Ok(Ok(serde_json::Value::Object(mut map))) => match map.remove("config") {
                    Some(serde_json::Value::Object(config)) => Some(config),
                    Some(_) => {
                        problems.push(
                            Problem::new(
                                "gear::run-config-file",
                                format!("{}: `config` is not an object", path.display()),
                            )
                            .help("write the values as {\"config\": {\"KEY\": value}}"),
                        );
                        None
                    }
                    None => Some(map),
                },
                Ok(_) => {
                    problems.push(
                        Problem::new(
                            "gear::run-config-file",
                            format!("{} is not a JSON object", path.display()),
                        )
                        .help(
                            "write the values as {\"KEY\": value}, or pass a Flywheel config.json",
                        ),
                    );
                    None
                }
            }
        }
    };
    let api_key = match &args.api_key_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(Secret(v)),
            _ => {
                problems.push(
                    Problem::new(
                        "gear::run-api-key-env",
                        format!("environment variable `{var}` (from --api-key-env) is not set"),
                    )
                    .help(format!("export {var}=YOUR_KEY first")),
                );
                None
            }
        },
    };
    let req = RunRequest {
        inputs,
        config,
        config_file,
        destination: args.destination.clone(),
        api_key,
        cwd: cwd.to_path_buf(),
        allow_missing: lenient,
    };
    match job::prepare(&layer.decl, &req) {
        Ok(job) => problems.into_result((index, job)).map_err(CliError::from),
        Err(more) => {
            problems.extend([more]);
            Err(problems.into())
        }
    }
}

/// What `run` and `shell` share: the checked job, the gear's plan (to build it when
/// stale) and the gear itself.
pub struct Prepared {
    /// The checked job.
    pub job: Job,
    /// The gear and its ancestors.
    pub plan: gear_spec::plan::Plan,
    /// The gear.
    pub layer: PlannedLayer,
    /// How it is built.
    pub built: BuiltImage,
    /// Its manifest and version tag.
    pub gear: GearImage,
    /// Its version.
    pub version: String,
}

/// Checks the job (warnings printed) and plans the gear.
pub fn prepare_run(
    session: &Session,
    args: &JobArgs,
    cwd: &Path,
    lenient: bool,
) -> Result<Prepared, CliError> {
    let (index, job) = prepare(session, args, cwd, lenient)?;
    for w in &job.warnings {
        session.out.warn(w);
    }
    let offline = session.frozen;
    crate::bases::ensure(session, &[index], crate::bases::Missing::Add { offline })?;
    let plan = session.plan_to_build(&[index])?;
    // `prepare` checked that the layer is a gear; the plan's last layer is the one planned.
    let planned = plan.layers.iter().find(|l| l.index == index);
    let Some((layer, built, gear)) =
        planned.and_then(|l| Some((l.clone(), l.built()?.clone(), l.gear()?.clone())))
    else {
        return Err(CliError::usage(
            format!("`{}` is not a gear: only gears run", args.gear),
            "pick a gear (`cargo gear graph` lists them)",
        ));
    };
    Ok(Prepared {
        job,
        plan,
        layer,
        built,
        version: gear.manifest.version.clone(),
        gear,
    })
}

/// A run directory: `input/NAME/BASENAME`, `output/`, `work/`, `config.json`.
#[derive(Debug)]
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `target/gear/runs/GEAR-VERSION-TIMESTAMP/` for the job. Inputs are
    /// hard-linked (copied across file systems); config.json is readable by its owner only
    /// when it holds an API key.
    pub fn create(
        gear_dir: &Path,
        layer: &PlannedLayer,
        version: &str,
        job: &Job,
    ) -> Result<RunDir, CliError> {
        let runs = gear_dir.join("runs");
        std::fs::create_dir_all(&runs).map_err(|e| CliError::io("create", &runs, e))?;
        let stamp = timestamp();
        // `create_dir` fails when the name is taken: two runs at once never share a directory.
        let mut n = 1;
        let path = loop {
            let name = if n == 1 {
                format!("{}-{version}-{stamp}", layer.name)
            } else {
                format!("{}-{version}-{stamp}-{n}", layer.name)
            };
            let candidate = runs.join(name);
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(CliError::io("create", &candidate, e)),
            }
        };
        for sub in ["input", "output", "work"] {
            let d = path.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| CliError::io("create", &d, e))?;
        }
        // The gear may run as another user: let it write its outputs.
        for sub in ["output", "work"] {
            set_mode(&path.join(sub), 0o777)?;
        }
        for (name, input) in &job.inputs {
            if let JobInput::File { host, basename, .. } = input {
                let dir = path.join("input").join(name);
                std::fs::create_dir_all(&dir).map_err(|e| CliError::io("create", &dir, e))?;
                let dest = dir.join(basename);
                if std::fs::hard_link(host, &dest).is_err() {
                    std::fs::copy(host, &dest).map_err(|e| CliError::io("copy", host, e))?;
                }
            }
        }
        let config = path.join("config.json");
        write_config(&config, job)?;
        if !has_api_key(job) {
            set_mode(&config, 0o644)?;
        }
        Ok(RunDir { path })
    }

    /// Bind mounts of the run layout into `/flywheel/v0`.
    pub fn binds(&self) -> Vec<String> {
        let p = self.path.display();
        vec![
            format!("{p}/input:{FLYWHEEL_DIR}/input:ro"),
            format!("{p}/output:{FLYWHEEL_DIR}/output"),
            format!("{p}/work:{FLYWHEEL_DIR}/work"),
            format!("{p}/config.json:{FLYWHEEL_DIR}/config.json:ro"),
        ]
    }

    /// Lists the output files with their sizes on stderr.
    pub fn report_outputs(&self, out: &Output) {
        let output = self.path.join("output");
        let mut files = Vec::new();
        walk(&output, &mut files);
        files.sort();
        if files.is_empty() {
            out.status("Output", format!("none in {}", output.display()));
        }
        for (path, size) in files {
            out.status(
                "Output",
                format!(
                    "{} ({})",
                    path.strip_prefix(&self.path).unwrap_or(&path).display(),
                    human_size(size)
                ),
            );
        }
        out.status("Run dir", self.path.display());
    }
}

/// Every file under `dir` (recursively) with its size.
pub fn walk(dir: &Path, files: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&entry.path(), files),
            Ok(_) => files.push((entry.path(), entry.metadata().map_or(0, |m| m.len()))),
            Err(_) => {}
        }
    }
}

/// `1.5 KiB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        b => format!("{:.1} GiB", b as f64 / (1024.0 * 1024.0 * 1024.0)),
    }
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Whether the job's config.json holds an API key.
pub fn has_api_key(job: &Job) -> bool {
    job.inputs
        .values()
        .any(|i| matches!(i, JobInput::ApiKey(_)))
}

/// Writes the job's config.json. One that holds an API key is readable by its owner only,
/// from before the key is written (a new file is created so; an existing one is narrowed
/// before it is truncated).
pub fn write_config(path: &Path, job: &Job) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(&job.config_json()).expect("json");
    text.push('\n');
    let io = |e| CliError::io("write", path, e);
    if !has_api_key(job) {
        return std::fs::write(path, text).map_err(io);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    set_mode(path, 0o600)?;
    file.set_len(0).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)
}

/// Sets a file's permission bits.
#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| CliError::io("chmod", path, e))
}

/// Sets a file's permission bits (nothing to do here).
#[cfg(not(unix))]
pub fn set_mode(_: &Path, _: u32) -> Result<(), CliError> {
    Ok(())
}

/// The gear's manifest environment as the image has it: the build record's when it
/// matches this fingerprint, else the declared one (the image's own ENV supplies the rest).
pub fn environment(state_dir: &Path, layer: &PlannedLayer, built: &BuiltImage) -> Vec<String> {
    let env = Record::load(state_dir, &layer.name)
        .filter(|r| r.fingerprint == layer.fingerprint)
        .and_then(|r| r.environment)
        .unwrap_or_else(|| built.environment.clone());
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// How Flywheel starts the gear: the manifest's `command` through `sh -c` (with `args`
/// appended, shell-quoted), else `/flywheel/v0/run` when the gear has one (a file `run` of
/// its directory, or whatever its `copy` steps place there), else the image's own
/// entrypoint and command.
pub fn command(
    built: &BuiltImage,
    gear: &GearImage,
    recipe: &Recipe,
    args: &[String],
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let has_run_file = match recipe {
        Recipe::Short => built.files.iter().any(|f| f.digest.tar_path == "copy/run"),
        Recipe::Steps(steps) => gear_spec::step::gear_paths(
            steps,
            built.files.iter().map(|f| f.digest.tar_path.as_str()),
        )
        .iter()
        .any(|p| p == "run"),
        // Where an own Dockerfile puts files is not known here: Flywheel would execute
        // /flywheel/v0/run, and so does a local run (the container says if it is missing).
        Recipe::Own(_) => true,
    };
    let command = gear.manifest.command.clone();
    match command {
        Some(c) => {
            let mut line = c;
            for a in args {
                line.push(' ');
                line.push_str(&shell_word(a));
            }
            (
                Some(vec![]),
                Some(vec!["/bin/sh".into(), "-c".into(), line]),
            )
        }
        None if has_run_file => {
            let mut cmd = vec![format!("{FLYWHEEL_DIR}/run")];
            cmd.extend(args.iter().cloned());
            (Some(vec![]), Some(cmd))
        }
        None => (None, (!args.is_empty()).then(|| args.to_vec())),
    }
}

/// The container spec of a run.
pub fn spec(
    layer: &PlannedLayer,
    env: Vec<String>,
    binds: Vec<String>,
    name: String,
    keep: bool,
) -> RunSpec {
    RunSpec {
        image: layer.reference().to_string(),
        env,
        workdir: Some(FLYWHEEL_DIR.to_string()),
        binds,
        auto_remove: !keep,
        name: Some(name),
        platform: Some(layer.platform.clone()),
        ..Default::default()
    }
}

/// Passes a container's output through to ours as it comes (stdout flushed, for live
/// progress and shell prompts).
pub fn print_output(stream: StdStream, bytes: &[u8]) {
    use std::io::Write;
    let _ = match stream {
        StdStream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        StdStream::Stderr => std::io::stderr().lock().write_all(bytes),
    };
}

/// A container name unique on this machine.
pub fn container_name(gear: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("cargo-gear-{gear}-{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = timestamp();
        assert_eq!(t.len(), 16);
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
