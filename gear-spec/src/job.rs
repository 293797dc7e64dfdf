//! A local gear run as Flywheel starts one: inputs and configuration given on the command
//! line, checked against the gear's declaration (every problem at once), and the
//! `config.json` Flywheel writes for the job.

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::config::{Violation, check_value, parse_value};
use crate::diagnostic::{Problem, Problems, did_you_mean};
use crate::dockerfile::FLYWHEEL_DIR;
use crate::model::{Decl, InputBase};

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// `--input NAME=PATH` (file inputs) or `NAME=VALUE` (context inputs).
    pub inputs: Vec<(String, String)>,
    /// `--config KEY=VALUE`, applied after `config_file`.
    pub config: Vec<(String, String)>,
    /// Values from `--config-file` (a `{KEY: value}` object or a Flywheel config.json).
    pub config_file: Option<Map<String, Value>>,
    /// `--destination TYPE/ID`.
    pub destination: Option<String>,
    /// The API key, read from the environment variable named by `--api-key-env`.
    pub api_key: Option<Secret>,
    /// Directory relative input paths are resolved from.
    pub cwd: PathBuf,
    /// Missing required inputs, config values and API keys are warnings, not problems
    /// (for a debugging shell).
    pub allow_missing: bool,
}

/// A value never shown in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One resolved input.
#[derive(Debug, Clone, PartialEq)]
pub enum JobInput {
    /// A file on the host, mounted at `/flywheel/v0/input/NAME/BASENAME`.
    File {
        /// Absolute host path.
        host: PathBuf,
        /// File name.
        basename: String,
        /// Bytes.
        size: u64,
        /// Flywheel file type, when known.
        file_type: Option<String>,
        /// MIME type.
        mimetype: String,
    },
    /// A context value, or not found.
    Context(Option<Value>),
    /// The API key.
    ApiKey(Secret),
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Configuration with defaults applied, in declaration order.
    pub config: Map<String, Value>,
    /// Inputs given (and context inputs not given, as not found), in declaration order.
    pub inputs: IndexMap<String, JobInput>,
    /// Destination container type and id.
    pub destination: (String, String),
    /// Things worth saying that do not stop the run.
    pub warnings: Vec<String>,
}

impl Job {
    /// The `config.json` Flywheel writes into `/flywheel/v0` for this job.
    pub fn config_json(&self) -> Value {
        let mut inputs = Map::new();
        for (name, input) in &self.inputs {
            let v = match input {
                JobInput::File {
                    basename,
                    size,
                    file_type,
                    mimetype,
                    ..
                } => json!({
                    "base": "file",
                    "hierarchy": { "type": self.destination.0, "id": self.destination.1 },
                    "location": { "path": format!("{FLYWHEEL_DIR}/input/{name}/{basename}"), "name": basename },
                    "object": {
                        "type": file_type,
                        "mimetype": mimetype,
                        "size": size,
                        "modality": null,
                        "classification": {},
                        "tags": [],
                        "info": {},
                    },
                }),
                JobInput::Context(value) => {
                    json!({ "base": "context", "found": value.is_some(), "value": value })
                }
                JobInput::ApiKey(key) => json!({ "base": "api-key", "key": key.0 }),
            };
            inputs.insert(name.clone(), v);
        }
        json!({
            "config": self.config,
            "inputs": inputs,
            "destination": { "type": self.destination.0, "id": self.destination.1 },
        })
    }
}

/// Checks a run request against the gear's declared inputs and config. Every problem is
/// reported; nothing is started when there is one.
pub fn prepare(gear: &Decl, req: &RunRequest) -> Result<Job, Problems> {
    let mut problems = Problems::default();
    let mut warnings = Vec::new();
    let name = gear.name.as_str();
    let mut missing_notes = Vec::new();
    let mut missing = |problems: &mut Problems, p: Problem| {
        if req.allow_missing {
            missing_notes.push(p.message);
        } else {
            problems.push(p);
        }
    };

    let mut given: IndexMap<&str, &str> = IndexMap::new();
    for (input, value) in &req.inputs {
        match gear.inputs.get(input) {
            None => problems.push(unknown("input", input, name, gear.inputs.keys())),
            Some(decl) if decl.base == InputBase::ApiKey => problems.push(
                Problem::new("gear::run-api-key-on-command-line", format!("input `{input}` of gear `{name}` is an API key, which is never given on the command line"))
                    .help("put the key in an environment variable and pass its name: --api-key-env VAR"),
            ),
            Some(_) if given.contains_key(input.as_str()) => problems.push(
                Problem::new("gear::run-input-twice", format!("input `{input}` is given twice")).help("give each input once"),
            ),
            Some(_) => {
                given.insert(input, value);
            }
        }
    }

    let mut inputs = IndexMap::new();
    for (input, decl) in &gear.inputs {
        match decl.base {
            InputBase::File => match given.get(input.as_str()) {
                Some(path) => match file_input(input, decl, path, &req.cwd) {
                    Ok((job_input, warning)) => {
                        warnings.extend(warning);
                        inputs.insert(input.clone(), job_input);
                    }
                    Err(p) => problems.push(p),
                },
                None if decl.optional == Some(true) => {}
                None => missing(
                    &mut problems,
                    Problem::new("gear::run-missing-input", format!("gear `{name}` needs input `{input}`, which was not given"))
                        .help(format!("pass it: --input {input}=PATH")),
                ),
            },
            InputBase::Context => {
                let value = given.get(input.as_str()).map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())));
                inputs.insert(input.clone(), JobInput::Context(value));
            }
            InputBase::ApiKey => match &req.api_key {
                Some(key) => {
                    inputs.insert(input.clone(), JobInput::ApiKey(key.clone()));
                }
                None => missing(
                    &mut problems,
                    Problem::new("gear::run-missing-api-key", format!("gear `{name}` has API-key input `{input}`, but no key was supplied"))
                        .help("put the key in an environment variable and pass its name: --api-key-env VAR"),
                ),
            },
        }
    }

    // Configuration: the file, then the command line, then defaults.
    let mut values: IndexMap<String, Value> = IndexMap::new();
    if let Some(file) = &req.config_file {
        for (key, value) in file {
            if gear.config.contains_key(key) {
                values.insert(key.clone(), value.clone());
            } else {
                problems.push(
                    unknown("config", key, name, gear.config.keys()).help(format!(
                        "remove `{key}` from the config file; {}",
                        known("config keys", gear.config.keys())
                    )),
                );
            }
        }
    }
    for (key, raw) in &req.config {
        match gear.config.get(key) {
            None => problems.push(unknown("config", key, name, gear.config.keys())),
            Some(decl) => match parse_value(decl, raw) {
                Ok(v) => {
                    values.insert(key.clone(), v);
                }
                Err(e) => problems.push(
                    Problem::new("gear::run-config-type", format!("config `{key}`: {e}"))
                        .help(format!("`{key}` is of type {}", decl.kind.as_str())),
                ),
            },
        }
    }
    let mut config = Map::new();
    for (key, decl) in &gear.config {
        match values.get(key).or(decl.default.as_ref()) {
            Some(v) => {
                if values.contains_key(key) {
                    for violation in check_value(decl, v) {
                        let help = match &violation {
                            Violation::NotInEnum {
                                suggestion: Some(best),
                                ..
                            } => format!("did you mean `{key}={best}`?"),
                            _ => format!(
                                "give `{key}` a value that satisfies its rules in the gear's Gear.toml"
                            ),
                        };
                        problems.push(
                            Problem::new(
                                "gear::run-config-invalid",
                                format!("config `{key}`: {v} {violation}"),
                            )
                            .help(help),
                        );
                    }
                }
                config.insert(key.clone(), v.clone());
            }
            None if decl.optional == Some(true) => {}
            None => missing(
                &mut problems,
                Problem::new(
                    "gear::run-missing-config",
                    format!(
                        "gear `{name}` needs config `{key}`, which has no default and was not given"
                    ),
                )
                .help(format!(
                    "pass it: --config {key}=VALUE ({})",
                    decl.kind.as_str()
                )),
            ),
        }
    }

    let destination = match req.destination.as_deref() {
        None => ("acquisition".to_string(), "local".to_string()),
        Some(d) => match d.split_once('/') {
            Some((t, id)) if !t.is_empty() && !id.is_empty() => (t.to_string(), id.to_string()),
            _ => {
                problems.push(
                    Problem::new(
                        "gear::run-destination",
                        format!("invalid destination `{d}`"),
                    )
                    .help("write it as TYPE/ID, e.g. --destination acquisition/5f2b…"),
                );
                (String::new(), String::new())
            }
        },
    };

    warnings.extend(missing_notes);
    problems.into_result(Job {
        config,
        inputs,
        destination,
        warnings,
    })
}

fn file_input(
    input: &str,
    decl: &crate::model::InputDecl,
    path: &str,
    cwd: &Path,
) -> Result<(JobInput, Option<String>), Problem> {
    let host = cwd.join(path);
    let meta = std::fs::metadata(&host).map_err(|e| {
        Problem::new(
            "gear::run-input-not-found",
            format!("input `{input}`: {} cannot be read: {e}", host.display()),
        )
        .help("pass the path of an existing file")
    })?;
    if !meta.is_file() {
        return Err(Problem::new(
            "gear::run-input-not-a-file",
            format!("input `{input}`: {} is not a file", host.display()),
        )
        .help("file inputs take one file; zip a directory to pass it"));
    }
    let host = host.canonicalize().unwrap_or(host);
    let basename = host
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let detected = file_type(&basename);
    let allowed: Vec<&str> = decl
        .file_type
        .as_ref()
        .and_then(|t| t.get("enum"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut warning = None;
    let file_type = match (detected, allowed.as_slice()) {
        (Some(t), allowed) if !allowed.is_empty() && !allowed.contains(&t) => {
            warning = Some(format!(
                "input `{input}` accepts files of type {}, but {basename} looks like {t}; Flywheel would not offer it",
                allowed.join(", ")
            ));
            Some(t.to_string())
        }
        (Some(t), _) => Some(t.to_string()),
        (None, [only]) => Some(only.to_string()),
        (None, _) => None,
    };
    Ok((
        JobInput::File {
            host,
            basename: basename.clone(),
            size: meta.len(),
            file_type,
            mimetype: mimetype(&basename).to_string(),
        },
        warning,
    ))
}

/// Flywheel's file type for a file name, from its extension.
pub fn file_type(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let table: &[(&[&str], &str)] = &[
        (&[".nii", ".nii.gz"], "nifti"),
        (&[".dcm", ".dicom", ".dicom.zip", ".dcm.zip"], "dicom"),
        (&[".mgz", ".mgh"], "MGH data"),
        (&[".csv", ".tsv"], "tabular data"),
        (&[".json"], "JSON"),
        (&[".txt", ".log"], "text"),
        (&[".md"], "markdown"),
        (&[".pdf"], "pdf"),
        (&[".zip", ".tar", ".tar.gz", ".tgz"], "archive"),
        (&[".py", ".m", ".r", ".sh"], "source code"),
        (&[".png", ".jpg", ".jpeg", ".gif"], "image"),
        (&[".bval"], "bval"),
        (&[".bvec"], "bvec"),
    ];
    table
        .iter()
        .filter(|(exts, _)| exts.iter().any(|e| lower.ends_with(e)))
        .max_by_key(|(exts, _)| {
            exts.iter()
                .filter(|e| lower.ends_with(**e))
                .map(|e| e.len())
                .max()
        })
        .map(|(_, t)| *t)
}

fn mimetype(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    match lower.rsplit('.').next().unwrap_or("") {
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

fn unknown<'a>(
    what: &str,
    key: &str,
    gear: &str,
    known_keys: impl Iterator<Item = &'a String> + Clone,
) -> Problem {
    let input = what == "input";
    let p = Problem::new(
        if input {
            "gear::run-unknown-input"
        } else {
            "gear::run-unknown-config"
        },
        format!("gear `{gear}` has no {what} `{key}`"),
    );
    match did_you_mean(key, known_keys.clone().map(String::as_str)) {
        Some(best) => p.help(format!("did you mean `{best}`?")),
        None if input => p.help(format!(
            "{}\nto declare it, add to the Gear.toml of `{gear}`:\n\n{}",
            known("inputs", known_keys),
            input_block(key)
        )),
        None => p.help(known("config keys", known_keys)),
    }
}

/// A ready-to-paste declaration of a file input.
fn input_block(name: &str) -> String {
    let key = if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("{name:?}")
    };
    format!(
        "[gear.inputs.{key}]\nbase = \"file\"  # or \"context\" (a value from the project), \"api-key\""
    )
}

fn known<'a>(what: &str, keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<&str> = keys.map(String::as_str).collect();
    if keys.is_empty() {
        format!("it has no {what}")
    } else {
        format!("its {what}: {}", keys.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gear() -> Decl {
        let text = r#"
[gear]
name = "g"
from = "base"
image = "x/g"
version = "1"
[gear.inputs.t1]
base = "file"
type = { enum = ["nifti"] }
[gear.inputs.extra]
base = "file"
optional = true
[gear.inputs.key]
base = "api-key"
[gear.inputs.ctx]
base = "context"
[gear.config.n]
type = "integer"
default = 2
minimum = 1
maximum = 8
[gear.config.mode]
type = "string"
enum = ["fast", "slow"]
[gear.config.note]
type = "string"
optional = true
"#;
        let file: crate::model::GearFile = toml::from_str(text).unwrap();
        file.gear.unwrap()
    }

    fn request(dir: &Path) -> RunRequest {
        RunRequest {
            cwd: dir.to_path_buf(),
            api_key: Some(Secret("s3cret".into())),
            ..Default::default()
        }
    }

    #[test]
    fn valid_run_renders_flywheel_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("brain.nii.gz"), b"12345").unwrap();
        let mut req = request(dir.path());
        req.inputs = vec![
            ("t1".into(), "brain.nii.gz".into()),
            ("ctx".into(), "{\"a\":1}".into()),
        ];
        req.config = vec![("mode".into(), "fast".into())];
        let job = prepare(&gear(), &req).unwrap();
        let c = job.config_json();
        assert_eq!(c["config"], json!({"n": 2, "mode": "fast"}));
        assert_eq!(
            c["inputs"]["t1"]["location"]["path"],
            "/flywheel/v0/input/t1/brain.nii.gz"
        );
        assert_eq!(c["inputs"]["t1"]["object"]["type"], "nifti");
        assert_eq!(c["inputs"]["t1"]["object"]["size"], 5);
        assert_eq!(
            c["inputs"]["key"],
            json!({"base": "api-key", "key": "s3cret"})
        );
        assert_eq!(
            c["inputs"]["ctx"],
            json!({"base": "context", "found": true, "value": {"a": 1}})
        );
        assert!(c["inputs"].get("extra").is_none());
        assert!(!format!("{job:?}").contains("s3cret"));
    }

    #[test]
    fn every_problem_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = request(dir.path());
        req.api_key = None;
        req.inputs = vec![
            ("t2".into(), "x".into()),
            ("extra".into(), "missing.txt".into()),
        ];
        req.config = vec![
            ("n".into(), "64".into()),
            ("nn".into(), "1".into()),
            ("mode".into(), "medium".into()),
        ];
        let codes: Vec<&str> = prepare(&gear(), &req)
            .unwrap_err()
            .iter()
            .map(|p| p.code)
            .collect();
        assert_eq!(
            codes,
            [
                "gear::run-unknown-input",
                "gear::run-missing-input",
                "gear::run-input-not-found",
                "gear::run-missing-api-key",
                "gear::run-unknown-config",
                "gear::run-config-invalid",
                "gear::run-config-invalid"
            ]
        );
    }

    #[test]
    fn types_from_extensions() {
        assert_eq!(file_type("a.nii.gz"), Some("nifti"));
        assert_eq!(file_type("a.dicom.zip"), Some("dicom"));
        assert_eq!(file_type("a.zip"), Some("archive"));
        assert_eq!(file_type("a.CSV"), Some("tabular data"));
        assert_eq!(file_type("a.xyz"), None);
    }
}
