//! Lock freshness of Python projects without running poetry or uv, for the `python` step.
//!
//! - **poetry**: `poetry.lock`'s `[metadata] content-hash` is recomputed from pyproject.toml
//!   exactly as poetry ≥ 2.3's `Locker.is_fresh()` does (`src/poetry/packages/locker.py`): the
//!   sha256 of Python's `json.dumps(relevant_content, sort_keys=True)` ([`json`]), with the
//!   fallback to the hash without `[dependency-groups]` for a lock whose header says it was
//!   written by Poetry < 2.3.0. Locks of every poetry since 1.0 are judged as that poetry does.
//! - **uv**: uv.lock has no content hash. The check is structural (what `uv lock --check` would
//!   find first): the project is in the lock, its `requires-python` is the lock's (as version
//!   ranges, the way uv normalises it), and the names (PEP 503) of its dependencies, optional
//!   dependencies and dependency groups are the ones the lock recorded. Specifier changes are
//!   left to `uv sync --locked` in the image.
//! - **pip**: no lock; the static `[project].dependencies` are what the image installs first, so
//!   `dynamic = ["dependencies"]` is refused.

mod json;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;

use pep508_rs::pep440_rs::{Version, VersionSpecifiers, release_specifiers_to_ranges};
use pep508_rs::{PackageName, Requirement};
use regex::Regex;
use toml::{Table, Value};

use crate::Problem;
use crate::fingerprint::sha256_hex;
pub use crate::model::PyTool;
use json::Json;

impl PyTool {
    /// The tool's lock, `None` for pip.
    pub fn lock_tool(self) -> Option<LockTool> {
        match self {
            PyTool::Poetry => Some(LockTool::Poetry),
            PyTool::Uv => Some(LockTool::Uv),
            PyTool::Pip => None,
        }
    }

    /// The lock file the tool installs from.
    pub fn lock_file(self) -> Option<&'static str> {
        self.lock_tool().map(LockTool::lock_file)
    }
}

/// A tool that installs from a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockTool {
    /// poetry, `poetry.lock`.
    Poetry,
    /// uv, `uv.lock`.
    Uv,
}

impl LockTool {
    /// The lock file, beside pyproject.toml.
    pub fn lock_file(self) -> &'static str {
        match self {
            LockTool::Poetry => "poetry.lock",
            LockTool::Uv => "uv.lock",
        }
    }

    /// The command that writes the lock file.
    fn lock_command(self) -> &'static str {
        match self {
            LockTool::Poetry => "poetry lock",
            LockTool::Uv => "uv lock",
        }
    }
}

impl fmt::Display for PyTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PyTool::Poetry => "poetry",
            PyTool::Uv => "uv",
            PyTool::Pip => "pip",
        })
    }
}

/// What rendering a python step needs of a project that passed [`check_project`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyProject {
    /// `poetry.lock` or `uv.lock`, beside pyproject.toml; `None` for pip.
    pub lock_file: Option<&'static str>,
    /// pip only: `[project].dependencies` as written (each a valid PEP 508 requirement);
    /// empty for poetry and uv.
    pub dependencies: Vec<String>,
}

/// Why a project cannot be installed from what its directory holds.
#[derive(Debug)]
pub enum PyProblem {
    /// The directory has no pyproject.toml.
    MissingPyproject {
        /// The missing file.
        pyproject: PathBuf,
        /// The tool that needs it.
        tool: PyTool,
    },
    /// pyproject.toml has no lock file beside it.
    MissingLock {
        /// The project file.
        pyproject: PathBuf,
        /// The missing lock file.
        lock: PathBuf,
        /// The tool whose lock it is.
        tool: LockTool,
    },
    /// The lock file was written for another pyproject.toml.
    StaleLock {
        /// The project file.
        pyproject: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The tool whose lock it is.
        tool: LockTool,
        /// What differs.
        why: Staleness,
    },
    /// pip: `[project].dependencies` is dynamic, so the image cannot install them first.
    DynamicDependencies {
        /// The project file.
        pyproject: PathBuf,
    },
    /// A file could not be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file is not what the tool reads (TOML syntax, a table that is not one, a requirement).
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the TOML parser's location when it has one.
        message: String,
    },
}

/// What differs between a lock file and its pyproject.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// poetry: the lock's content-hash is not the hash of pyproject.toml's relevant content.
    ContentHash {
        /// `[metadata] content-hash` of the lock.
        locked: String,
        /// The hash of pyproject.toml now.
        current: String,
    },
    /// poetry: the lock has no `[metadata] content-hash`.
    NoContentHash,
    /// uv: no package of the lock is the project itself (`source = { editable = "." }` or
    /// `{ virtual = "." }`) under the project's name.
    ProjectNotLocked {
        /// `[project].name`, normalized.
        name: String,
    },
    /// uv: `requires-python` differs.
    RequiresPython {
        /// The lock's top-level `requires-python`, if any.
        locked: Option<String>,
        /// `[project].requires-python`.
        project: String,
    },
    /// uv: dependency names differ.
    Dependencies {
        /// In pyproject.toml but not in the lock (normalized names).
        added: Vec<String>,
        /// In the lock but not in pyproject.toml.
        removed: Vec<String>,
    },
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Staleness::ContentHash { locked, current } => write!(
                f,
                "content-hash differs: the lock has {locked}, pyproject.toml hashes to {current}"
            ),
            Staleness::NoContentHash => f.write_str("the lock has no [metadata] content-hash"),
            Staleness::ProjectNotLocked { name } => {
                write!(f, "the lock has no package `{name}` for this project")
            }
            Staleness::RequiresPython { locked, project } => match locked {
                Some(locked) => write!(
                    f,
                    "requires-python is `{project}` in pyproject.toml but `{locked}` in the lock"
                ),
                None => write!(
                    f,
                    "requires-python is `{project}` in pyproject.toml and absent from the lock"
                ),
            },
            Staleness::Dependencies { added, removed } => {
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("not locked: {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("locked but not required: {}", removed.join(", ")));
                }
                write!(f, "dependencies differ ({})", parts.join("; "))
            }
        }
    }
}

impl PyProblem {
    /// What is wrong, naming the files.
    fn what(&self) -> String {
        match self {
            PyProblem::MissingPyproject { pyproject, tool } => {
                format!(
                    "{} not found: a {tool} project needs it",
                    pyproject.display()
                )
            }
            PyProblem::MissingLock {
                pyproject, lock, ..
            } => format!(
                "{} not found: the lock file of {} is missing",
                lock.display(),
                pyproject.display()
            ),
            PyProblem::StaleLock {
                pyproject,
                lock,
                why,
                ..
            } => format!(
                "{} is out of date with {} ({why})",
                lock.display(),
                pyproject.display()
            ),
            PyProblem::DynamicDependencies { pyproject } => format!(
                "{} declares `dynamic = [\"dependencies\"]`: pip cannot install them before the sources",
                pyproject.display()
            ),
            PyProblem::Unreadable { path, source } => {
                format!("cannot read {}: {source}", path.display())
            }
            PyProblem::Invalid { path, message } => format!("{}: {message}", path.display()),
        }
    }

    /// What to do about it.
    pub fn help(&self) -> String {
        let run_in = |tool: &LockTool, file: &Path| {
            let dir = file.parent().unwrap_or(Path::new("."));
            format!("run `{}` in {}", tool.lock_command(), dir.display())
        };
        match self {
            PyProblem::MissingPyproject { pyproject, .. } => format!(
                "point `project` at the directory that holds pyproject.toml, or create {}",
                pyproject.display()
            ),
            PyProblem::MissingLock { tool, lock, .. } => {
                format!("{} and add its lock file to the gear", run_in(tool, lock))
            }
            PyProblem::StaleLock { tool, lock, .. } => run_in(tool, lock),
            PyProblem::DynamicDependencies { .. } => {
                "list the dependencies in [project].dependencies, or use tool = \"poetry\" or \"uv\" with a lock file".into()
            }
            PyProblem::Unreadable { .. } => "check that the file exists and is readable".into(),
            PyProblem::Invalid { .. } => "fix the file; poetry, uv and pip would refuse it too".into(),
        }
    }

    /// The problem as a diagnostic without a location: the caller points it at the step.
    pub fn to_problem(&self) -> Problem {
        let problem = match self {
            PyProblem::MissingPyproject { .. } => {
                Problem::new("gear::missing-pyproject", self.what())
            }
            PyProblem::MissingLock { .. } => Problem::new("gear::missing-lock", self.what()),
            PyProblem::StaleLock { .. } => Problem::new("gear::stale-lock", self.what()),
            PyProblem::DynamicDependencies { .. } => {
                Problem::new("gear::dynamic-dependencies", self.what())
            }
            PyProblem::Unreadable { .. } => Problem::new("gear::read", self.what()),
            PyProblem::Invalid { .. } => Problem::new("gear::invalid-pyproject", self.what()),
        };
        problem.help(self.help())
    }
}

impl fmt::Display for PyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.what(), self.help())
    }
}

impl std::error::Error for PyProblem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PyProblem::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Checks the project directory `dir` for `tool`: pyproject.toml is there and readable, and
/// for poetry and uv its lock file is there and fresh; for pip its dependencies are static.
pub fn check_project(dir: &Path, tool: PyTool) -> Result<PyProject, PyProblem> {
    let pyproject_path = dir.join("pyproject.toml");
    let pyproject = match read_toml(&pyproject_path) {
        Err(PyProblem::Unreadable { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(PyProblem::MissingPyproject {
                pyproject: pyproject_path,
                tool,
            });
        }
        other => other?.1,
    };
    let Some(lock_tool) = tool.lock_tool() else {
        let dependencies = pip_dependencies(&pyproject, &pyproject_path)?;
        return Ok(PyProject {
            lock_file: None,
            dependencies,
        });
    };
    let lock_file = lock_tool.lock_file();
    let lock_path = dir.join(lock_file);
    let (lock_text, lock) = match read_toml(&lock_path) {
        Err(PyProblem::Unreadable { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(PyProblem::MissingLock {
                pyproject: pyproject_path,
                lock: lock_path,
                tool: lock_tool,
            });
        }
        other => other?,
    };
    let files = Files {
        pyproject: &pyproject_path,
        lock: &lock_path,
    };
    let staleness = match lock_tool {
        LockTool::Poetry => poetry_staleness(&pyproject, &lock_text, &lock, &files)?,
        LockTool::Uv => uv_staleness(&pyproject, &lock, &files)?,
    };
    match staleness {
        None => Ok(PyProject {
            lock_file: Some(lock_file),
            dependencies: Vec::new(),
        }),
        Some(why) => Err(PyProblem::StaleLock {
            pyproject: pyproject_path,
            lock: lock_path,
            tool: lock_tool,
            why,
        }),
    }
}

/// The two files of a check, for the problems it finds.
struct Files<'a> {
    pyproject: &'a Path,
    lock: &'a Path,
}

fn invalid(path: &Path, message: impl Into<String>) -> PyProblem {
    PyProblem::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_toml(path: &Path) -> Result<(String, Table), PyProblem> {
    let text = std::fs::read_to_string(path).map_err(|source| PyProblem::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let table = text
        .parse::<Table>()
        .map_err(|e| invalid(path, e.to_string().trim_end().to_string()))?;
    Ok((text, table))
}

/// The table at `key` of `table`, `None` when absent; a value that is not a table is invalid.
fn table_at<'a>(
    table: &'a Table,
    key: &str,
    name: &str,
    path: &Path,
) -> Result<Option<&'a Table>, PyProblem> {
    match table.get(key) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(invalid(path, format!("`{name}` is not a table"))),
    }
}

// ---------------------------------------------------------------------------------------------
// poetry

/// `[tool.poetry]` keys poetry 1.x hashed; kept as `null` when absent unless `[project]` or
/// `[dependency-groups]` has relevant content.
const POETRY_LEGACY_KEYS: [&str; 4] = ["dependencies", "source", "extras", "dev-dependencies"];
/// `[project]` keys poetry ≥ 2.0 hashes.
const POETRY_PROJECT_KEYS: [&str; 3] = ["requires-python", "dependencies", "optional-dependencies"];

/// poetry ≥ 2.3's `Locker._get_content_hash(with_dependency_groups=…)`.
fn poetry_content_hash(
    pyproject: &Table,
    with_dependency_groups: bool,
    path: &Path,
) -> Result<String, PyProblem> {
    let project = table_at(pyproject, "project", "project", path)?;
    let groups = match with_dependency_groups {
        true => table_at(pyproject, "dependency-groups", "dependency-groups", path)?
            .filter(|g| !g.is_empty()),
        false => None,
    };
    let tool_poetry = match table_at(pyproject, "tool", "tool", path)? {
        Some(tool) => table_at(tool, "poetry", "tool.poetry", path)?,
        None => None,
    };

    let relevant_project: Vec<(&str, Json<'_>)> = POETRY_PROJECT_KEYS
        .iter()
        .filter_map(|&key| Some((key, Json::Toml(project?.get(key)?))))
        .collect();
    let keep_absent_legacy = relevant_project.is_empty() && groups.is_none();
    let relevant_poetry: Vec<(&str, Json<'_>)> = POETRY_LEGACY_KEYS
        .iter()
        .chain(&["group"])
        .filter_map(|&key| match tool_poetry.and_then(|t| t.get(key)) {
            Some(value) => Some((key, Json::Toml(value))),
            None if keep_absent_legacy && POETRY_LEGACY_KEYS.contains(&key) => {
                Some((key, Json::Null))
            }
            None => None,
        })
        .collect();

    let relevant = if keep_absent_legacy {
        // For backwards compatibility poetry hashes the [tool.poetry] part at the top level.
        Json::Object(relevant_poetry)
    } else {
        let mut content = Vec::new();
        if !relevant_project.is_empty() {
            content.push(("project", Json::Object(relevant_project)));
        }
        if let Some(groups) = groups {
            content.push(("dependency-groups", Json::Table(groups)));
        }
        content.push((
            "tool",
            Json::Object(vec![("poetry", Json::Object(relevant_poetry))]),
        ));
        Json::Object(content)
    };
    let text = json::dumps(&relevant).map_err(|json::DateTimeValue(value)| {
        invalid(
            path,
            format!("poetry cannot hash the date-time {value} in its dependency tables"),
        )
    })?;
    Ok(sha256_hex(text.as_bytes()))
}

/// poetry ≥ 2.3's `Locker.is_fresh()`: `None` when fresh.
fn poetry_staleness(
    pyproject: &Table,
    lock_text: &str,
    lock: &Table,
    files: &Files<'_>,
) -> Result<Option<Staleness>, PyProblem> {
    let current = poetry_content_hash(pyproject, true, files.pyproject)?;
    let locked = match table_at(lock, "metadata", "metadata", files.lock)?
        .and_then(|metadata| metadata.get("content-hash"))
    {
        Some(Value::String(locked)) => locked,
        _ => return Ok(Some(Staleness::NoContentHash)),
    };
    if current == *locked {
        return Ok(None);
    }
    // Before Poetry 2.3.0 the content hash did not include [dependency-groups].
    if header_version(lock_text).is_some_and(|v| v < Version::new([2, 3, 0]))
        && poetry_content_hash(pyproject, false, files.pyproject)? == *locked
    {
        return Ok(None);
    }
    Ok(Some(Staleness::ContentHash {
        locked: locked.clone(),
        current,
    }))
}

/// The first `Poetry X` of poetry.lock's first line, as poetry reads it back
/// (`re.search("Poetry ([^ ]+)", lock.readline())`); `None` when absent or not a PEP 440
/// version (`…by Poetry and should…` of poetry 1.2-era locks).
fn header_version(lock_text: &str) -> Option<Version> {
    static POETRY_HEADER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"Poetry ([^ ]+)").unwrap());
    // Python's text mode ends a line at `\n`, `\r\n` or `\r`.
    let first_line = lock_text.split(['\n', '\r']).next()?;
    let caps = POETRY_HEADER.captures(first_line)?;
    Version::from_str(caps.get(1)?.as_str().trim()).ok()
}

// ---------------------------------------------------------------------------------------------
// uv

/// uv.lock against pyproject.toml, structurally: `None` when nothing differs that this check sees.
fn uv_staleness(
    pyproject: &Table,
    lock: &Table,
    files: &Files<'_>,
) -> Result<Option<Staleness>, PyProblem> {
    let project = table_at(pyproject, "project", "project", files.pyproject)?
        .ok_or_else(|| invalid(files.pyproject, "uv needs a [project] table"))?;
    let name = match project.get("name") {
        Some(Value::String(name)) => PackageName::from_str(name)
            .map_err(|e| invalid(files.pyproject, format!("[project].name: {e}")))?,
        _ => return Err(invalid(files.pyproject, "[project].name is missing")),
    };
    let packages = match lock.get("package") {
        None => &[][..],
        Some(Value::Array(packages)) => packages.as_slice(),
        Some(_) => return Err(invalid(files.lock, "`package` is not an array of tables")),
    };
    let is_project = |package: &Table| {
        let source = package.get("source").and_then(Value::as_table);
        let at_root = source.is_some_and(|s| {
            ["editable", "virtual"]
                .iter()
                .any(|k| s.get(*k).and_then(Value::as_str) == Some("."))
        });
        at_root && package.get("name").and_then(Value::as_str) == Some(name.as_ref())
    };
    let Some(locked) = packages
        .iter()
        .filter_map(Value::as_table)
        .find(|p| is_project(p))
    else {
        return Ok(Some(Staleness::ProjectNotLocked {
            name: name.to_string(),
        }));
    };

    if let Some(requires_python) = project.get("requires-python") {
        let Value::String(requires_python) = requires_python else {
            return Err(invalid(
                files.pyproject,
                "[project].requires-python is not a string",
            ));
        };
        let ours = VersionSpecifiers::from_str(requires_python)
            .map_err(|e| invalid(files.pyproject, format!("[project].requires-python: {e}")))?;
        let stale = |locked: Option<&str>| Staleness::RequiresPython {
            locked: locked.map(str::to_string),
            project: requires_python.clone(),
        };
        let Some(Value::String(theirs_text)) = lock.get("requires-python") else {
            return Ok(Some(stale(None)));
        };
        let theirs = VersionSpecifiers::from_str(theirs_text)
            .map_err(|e| invalid(files.lock, format!("requires-python: {e}")))?;
        // uv writes the range it resolved for (`~=3.9` as `>=3.9, <4`): compare ranges.
        if release_specifiers_to_ranges(ours) != release_specifiers_to_ranges(theirs) {
            return Ok(Some(stale(Some(theirs_text))));
        }
    }

    let dynamic = project.get("dynamic").and_then(Value::as_array);
    let is_dynamic = |key: &str| dynamic.is_some_and(|d| d.iter().any(|v| v.as_str() == Some(key)));
    if is_dynamic("dependencies") || is_dynamic("optional-dependencies") {
        // uv builds the project to learn them; only `uv sync --locked` can tell.
        return Ok(None);
    }
    let required = uv_required_names(pyproject, project, files.pyproject)?;
    let recorded = uv_recorded_names(locked, files.lock)?;
    let added: Vec<String> = required.difference(&recorded).cloned().collect();
    let removed: Vec<String> = recorded.difference(&required).cloned().collect();
    if added.is_empty() && removed.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Staleness::Dependencies { added, removed }))
    }
}

/// Normalized names of `[project]` dependencies and optional dependencies,
/// `[dependency-groups]` and `[tool.uv] dev-dependencies`.
fn uv_required_names(
    pyproject: &Table,
    project: &Table,
    path: &Path,
) -> Result<BTreeSet<String>, PyProblem> {
    let mut names = BTreeSet::new();
    let mut add = |list: Option<&Value>, where_: &str| -> Result<(), PyProblem> {
        for requirement in requirement_list(list, where_, path)? {
            names.insert(requirement_name(requirement, where_, path)?.to_string());
        }
        Ok(())
    };
    add(project.get("dependencies"), "[project].dependencies")?;
    for (extra, list) in table_at(
        project,
        "optional-dependencies",
        "project.optional-dependencies",
        path,
    )?
    .into_iter()
    .flatten()
    {
        add(
            Some(list),
            &format!("[project.optional-dependencies].{extra}"),
        )?;
    }
    for (group, list) in table_at(pyproject, "dependency-groups", "dependency-groups", path)?
        .into_iter()
        .flatten()
    {
        // `{ include-group = "…" }` entries name another group, whose names are added anyway.
        let strings: Vec<Value> = match list {
            Value::Array(items) => items.iter().filter(|i| !i.is_table()).cloned().collect(),
            other => vec![other.clone()],
        };
        add(
            Some(&Value::Array(strings)),
            &format!("[dependency-groups].{group}"),
        )?;
    }
    let tool_uv = match table_at(pyproject, "tool", "tool", path)? {
        Some(tool) => table_at(tool, "uv", "tool.uv", path)?,
        None => None,
    };
    if let Some(tool_uv) = tool_uv {
        add(
            tool_uv.get("dev-dependencies"),
            "[tool.uv].dev-dependencies",
        )?;
    }
    Ok(names)
}

/// Names the lock recorded for the project: `[package.metadata] requires-dist` and
/// `requires-dev`.
fn uv_recorded_names(locked: &Table, path: &Path) -> Result<BTreeSet<String>, PyProblem> {
    let Some(metadata) = table_at(locked, "metadata", "package.metadata", path)? else {
        return Ok(BTreeSet::new());
    };
    let mut lists: Vec<&Value> = metadata.get("requires-dist").into_iter().collect();
    if let Some(dev) = table_at(
        metadata,
        "requires-dev",
        "package.metadata.requires-dev",
        path,
    )? {
        lists.extend(dev.values());
    }
    let mut names = BTreeSet::new();
    for list in lists {
        let entries = list.as_array().ok_or_else(|| {
            invalid(
                path,
                "the project's requires-dist/requires-dev is not an array",
            )
        })?;
        for entry in entries {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(path, "a requirement of the project has no name"))?;
            let name = PackageName::from_str(name).map_err(|e| invalid(path, e.to_string()))?;
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// pip and shared

/// The static `[project].dependencies`, each checked as a PEP 508 requirement.
fn pip_dependencies(pyproject: &Table, path: &Path) -> Result<Vec<String>, PyProblem> {
    let project = table_at(pyproject, "project", "project", path)?.ok_or_else(|| {
        invalid(
            path,
            "pip installs a [project] (PEP 621); there is no [project] table",
        )
    })?;
    let dynamic = project.get("dynamic").and_then(Value::as_array);
    if dynamic.is_some_and(|d| d.iter().any(|v| v.as_str() == Some("dependencies"))) {
        return Err(PyProblem::DynamicDependencies {
            pyproject: path.to_path_buf(),
        });
    }
    let where_ = "[project].dependencies";
    let requirements = requirement_list(project.get("dependencies"), where_, path)?;
    for requirement in &requirements {
        requirement_name(requirement, where_, path)?;
    }
    Ok(requirements.into_iter().map(str::to_string).collect())
}

/// An optional array of strings, as PEP 621 and PEP 735 lists are.
fn requirement_list<'a>(
    list: Option<&'a Value>,
    where_: &str,
    path: &Path,
) -> Result<Vec<&'a str>, PyProblem> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let not_strings = || invalid(path, format!("{where_} is not an array of strings"));
    list.as_array()
        .ok_or_else(not_strings)?
        .iter()
        .map(|item| item.as_str().ok_or_else(not_strings))
        .collect()
}

/// The normalized (PEP 503) name of a PEP 508 requirement.
fn requirement_name(
    requirement: &str,
    where_: &str,
    path: &Path,
) -> Result<PackageName, PyProblem> {
    Requirement::<pep508_rs::VerbatimUrl>::from_str(requirement)
        .map(|r| r.name)
        .map_err(|e| {
            invalid(
                path,
                format!("{where_}: `{requirement}` is not a PEP 508 requirement: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pylock")
            .join(name)
    }

    /// A copy of a fixture directory whose file `file` is edited by `edit`.
    fn edited(name: &str, file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture(name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let changed = edit(text.clone());
        assert_ne!(changed, text, "the edit of {name}/{file} changed nothing");
        std::fs::write(&path, changed).unwrap();
        dir
    }

    fn locked_hash(dir: &Path) -> String {
        let lock: Table = std::fs::read_to_string(dir.join("poetry.lock"))
            .unwrap()
            .parse()
            .unwrap();
        lock["metadata"]["content-hash"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn pyproject(dir: &Path) -> Table {
        std::fs::read_to_string(dir.join("pyproject.toml"))
            .unwrap()
            .parse()
            .unwrap()
    }

    const POETRY_FRESH: [&str; 6] = [
        "poetry2-project",
        "poetry22-groups",
        "poetry2-tool",
        "poetry18-tool",
        "poetry2-empty",
        "poetry-torture",
    ];

    #[test]
    fn every_lock_poetry_wrote_is_fresh() {
        for name in POETRY_FRESH {
            assert_eq!(
                check_project(&fixture(name), PyTool::Poetry).map_err(|e| e.to_string()),
                Ok(PyProject {
                    lock_file: Some("poetry.lock"),
                    dependencies: Vec::new(),
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn poetry_2_3_and_later_hash_dependency_groups_and_2_2_did_not() {
        // Same pyproject.toml, locked by Poetry 2.5.1 and by Poetry 2.2.1.
        let (new, old) = (fixture("poetry2-project"), fixture("poetry22-groups"));
        assert_eq!(pyproject(&new), pyproject(&old));
        let with = poetry_content_hash(&pyproject(&new), true, &new).unwrap();
        let without = poetry_content_hash(&pyproject(&new), false, &new).unwrap();
        assert_eq!(with, locked_hash(&new));
        assert_eq!(without, locked_hash(&old));
        assert_ne!(with, without);
    }

    #[test]
    fn the_pre_2_3_fallback_needs_the_header_to_say_so() {
        let dir = edited("poetry22-groups", "poetry.lock", |t| {
            t.replacen("by Poetry 2.2.1 and", "by Poetry 2.5.1 and", 1)
        });
        let err = check_project(dir.path(), PyTool::Poetry).unwrap_err();
        assert!(
            matches!(&err, PyProblem::StaleLock { why: Staleness::ContentHash { locked, .. }, .. } if *locked == locked_hash(dir.path())),
            "{err:?}"
        );
    }

    #[test]
    fn without_project_or_groups_every_poetry_hashes_alike() {
        // Poetry 1.8.5 and 2.5.1 locked the same [tool.poetry] dependencies (package-mode is
        // not hashed) to the same content-hash.
        assert_eq!(
            locked_hash(&fixture("poetry18-tool")),
            locked_hash(&fixture("poetry2-tool"))
        );
    }

    #[test]
    fn a_changed_constraint_makes_the_lock_stale() {
        let dir = fixture("poetry-stale");
        let err = check_project(&dir, PyTool::Poetry).unwrap_err();
        let PyProblem::StaleLock {
            pyproject,
            lock,
            tool,
            why: Staleness::ContentHash { locked, current },
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            (pyproject, lock, tool),
            (
                &dir.join("pyproject.toml"),
                &dir.join("poetry.lock"),
                &LockTool::Poetry
            )
        );
        assert_eq!(*locked, locked_hash(&dir));
        assert_ne!(locked, current);
        let message = err.to_string();
        for part in [
            format!(
                "{}/poetry.lock is out of date with {}/pyproject.toml",
                dir.display(),
                dir.display()
            ),
            format!("run `poetry lock` in {}", dir.display()),
        ] {
            assert!(message.contains(&part), "{message}");
        }
        assert_eq!(err.to_problem().code, "gear::stale-lock");
    }

    #[test]
    fn a_lock_without_content_hash_is_stale() {
        let dir = edited("poetry2-tool", "poetry.lock", |t| {
            t.lines()
                .filter(|l| !l.starts_with("content-hash"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        assert!(matches!(
            check_project(dir.path(), PyTool::Poetry),
            Err(PyProblem::StaleLock {
                why: Staleness::NoContentHash,
                ..
            })
        ));
    }

    #[test]
    fn missing_files_name_what_is_missing() {
        let empty = tempfile::tempdir().unwrap();
        let err = check_project(empty.path(), PyTool::Uv).unwrap_err();
        assert!(
            matches!(&err, PyProblem::MissingPyproject { pyproject, tool: PyTool::Uv } if *pyproject == empty.path().join("pyproject.toml"))
        );
        assert_eq!(err.to_problem().code, "gear::missing-pyproject");

        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixture("poetry2-tool/pyproject.toml"),
            dir.path().join("pyproject.toml"),
        )
        .unwrap();
        let err = check_project(dir.path(), PyTool::Poetry).unwrap_err();
        assert!(
            matches!(&err, PyProblem::MissingLock { lock, .. } if *lock == dir.path().join("poetry.lock"))
        );
        let message = err.to_string();
        assert!(
            message.contains("poetry.lock not found") && message.contains("pyproject.toml"),
            "{message}"
        );
        assert!(
            message.contains(&format!("run `poetry lock` in {}", dir.path().display())),
            "{message}"
        );
        let err = check_project(dir.path(), PyTool::Uv).unwrap_err();
        assert!(err.to_string().contains("run `uv lock` in"), "{err}");
    }

    #[test]
    fn invalid_toml_is_reported_with_its_file() {
        let dir = edited("poetry2-tool", "pyproject.toml", |t| t + "\n[broken\n");
        let err = check_project(dir.path(), PyTool::Poetry).unwrap_err();
        assert!(
            matches!(&err, PyProblem::Invalid { path, .. } if *path == dir.path().join("pyproject.toml")),
            "{err:?}"
        );
        let dir = edited("poetry2-tool", "pyproject.toml", |t| {
            t.replace(
                "[tool.poetry.extras]\nnet = [\"idna\"]",
                "[tool.poetry.extras]\nwhen = 2024-01-02",
            )
        });
        let err = check_project(dir.path(), PyTool::Poetry).unwrap_err();
        assert!(err.to_string().contains("date-time 2024-01-02"), "{err}");
    }

    #[test]
    fn header_versions_are_read_as_poetry_reads_them() {
        let v = |s: &str| Version::from_str(s).unwrap();
        let header = |line: &str| header_version(&format!("{line}\n[[package]]\n"));
        assert_eq!(
            header(
                "# This file is automatically @generated by Poetry 1.4.1 and should not be changed by hand."
            ),
            Some(v("1.4.1"))
        );
        assert_eq!(
            header(
                "# This file is automatically @generated by Poetry and should not be changed by hand."
            ),
            None
        );
        assert_eq!(header("[[package]]"), None);
        assert_eq!(header_version("# by Poetry 2.2.1\r\n"), Some(v("2.2.1")));
        assert_eq!(header_version(""), None);
        assert_eq!(header("# by Poetry 2.5.1 and Poetry 1.0"), Some(v("2.5.1")));
        // What the fallback compares against 2.3.0.
        let before = |s: &str| {
            header(&format!("# by Poetry {s} and")).is_some_and(|v| v < Version::new([2, 3, 0]))
        };
        assert!(before("2.2.1") && before("2.3.0b1") && before("2.3.0.dev0") && before("1.8.5"));
        assert!(!before("2.3.0") && !before("2.3.0.post1") && !before("10.0") && !before("1!1.0"));
    }

    #[test]
    fn the_uv_lock_uv_wrote_is_fresh() {
        assert_eq!(
            check_project(&fixture("uv-project"), PyTool::Uv).map_err(|e| e.to_string()),
            Ok(PyProject {
                lock_file: Some("uv.lock"),
                dependencies: Vec::new(),
            })
        );
    }

    #[test]
    fn uv_equivalent_spellings_stay_fresh() {
        // uv normalizes names (PEP 503) and requires-python (as a range).
        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace("\"six>=1.16\"", "\"SIX >= 1.16\"").replace(
                "requires-python = \">=3.9\"",
                "requires-python = \">= 3.9, >=3.8\"",
            )
        });
        assert!(check_project(dir.path(), PyTool::Uv).is_ok());
    }

    #[test]
    fn uv_a_dependency_added_or_removed_makes_the_lock_stale() {
        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace(
                "test = [\"packaging>=23\"]",
                "test = [\"packaging>=23\", \"Pytest_Cov\"]",
            )
        });
        let err = check_project(dir.path(), PyTool::Uv).unwrap_err();
        assert!(
            matches!(&err, PyProblem::StaleLock { why: Staleness::Dependencies { added, removed }, tool: LockTool::Uv, .. } if *added == ["pytest-cov"] && removed.is_empty()),
            "{err:?}"
        );
        assert!(err.to_string().contains("run `uv lock` in"), "{err}");

        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace("cli = [\"iniconfig>=2\"]", "cli = []")
        });
        assert!(matches!(
            check_project(dir.path(), PyTool::Uv),
            Err(PyProblem::StaleLock { why: Staleness::Dependencies { added, removed }, .. }) if added.is_empty() && removed == ["iniconfig"]
        ));
    }

    #[test]
    fn uv_requires_python_changed_makes_the_lock_stale() {
        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace(
                "requires-python = \">=3.9\"",
                "requires-python = \">=3.10\"",
            )
        });
        let err = check_project(dir.path(), PyTool::Uv).unwrap_err();
        assert!(
            matches!(&err, PyProblem::StaleLock { why: Staleness::RequiresPython { locked: Some(locked), project }, .. } if locked == ">=3.9" && project == ">=3.10"),
            "{err:?}"
        );
    }

    #[test]
    fn uv_a_renamed_project_is_not_in_the_lock() {
        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace("name = \"pylock-uv\"", "name = \"renamed\"")
        });
        assert!(matches!(
            check_project(dir.path(), PyTool::Uv),
            Err(PyProblem::StaleLock { why: Staleness::ProjectNotLocked { name }, .. }) if name == "renamed"
        ));
    }

    #[test]
    fn pip_takes_the_static_dependencies_as_written() {
        let project = check_project(&fixture("uv-project"), PyTool::Pip).unwrap();
        assert_eq!(
            project,
            PyProject {
                lock_file: None,
                dependencies: vec![
                    "six>=1.16".into(),
                    "Typing_Extensions>=4; python_version >= '3.9'".into()
                ],
            }
        );
        let none = check_project(&fixture("poetry2-empty"), PyTool::Pip).unwrap();
        assert!(none.dependencies.is_empty());
    }

    #[test]
    fn pip_refuses_dynamic_dependencies_and_invalid_requirements() {
        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace(
                "dependencies = [\"six>=1.16\", \"Typing_Extensions>=4; python_version >= '3.9'\"]",
                "dynamic = [\"dependencies\"]",
            )
        });
        let err = check_project(dir.path(), PyTool::Pip).unwrap_err();
        assert!(
            matches!(&err, PyProblem::DynamicDependencies { .. }),
            "{err:?}"
        );
        assert_eq!(err.to_problem().code, "gear::dynamic-dependencies");

        let dir = edited("uv-project", "pyproject.toml", |t| {
            t.replace("\"six>=1.16\"", "\"six >=>= 1\"")
        });
        let err = check_project(dir.path(), PyTool::Pip).unwrap_err();
        assert!(
            err.to_string()
                .contains("`six >=>= 1` is not a PEP 508 requirement"),
            "{err}"
        );

        let err = check_project(&fixture("poetry2-tool"), PyTool::Pip).unwrap_err();
        assert!(err.to_string().contains("no [project] table"), "{err}");
    }
}
