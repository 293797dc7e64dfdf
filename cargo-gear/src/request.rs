//! Raw arguments turned into a validated request: the workspace found, its Gear.toml
//! files loaded into a layer graph, substitutions parsed and layer names resolved —
//! all before any command does work.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use gear_spec::gear_lock::{GEAR_LOCK, GearLock};
use gear_spec::plan::{self, Plan, PlanOptions};
use gear_spec::{LayerGraph, Problems};

use crate::cli::{GlobalArgs, Selection};
use crate::engine::{Engine, EngineError};
use crate::error::CliError;
use crate::output::Output;
use crate::schedule::Paths;
use crate::team_registry::Registry;
use crate::workspace::{self, Workspace};

/// A loaded workspace, ready for a command.
#[derive(Debug)]
pub struct Session {
    /// Where things are.
    pub ws: Workspace,
    /// The resolved layers.
    pub graph: LayerGraph,
    /// Image substitutions: the workspace's, overridden by `--substitute`.
    pub substitutions: BTreeMap<String, String>,
    /// Output settings.
    pub out: Output,
    /// `--registry`, else the workspace's.
    pub registry: Option<String>,
    /// The workspace's `Gear.lock` as read, plus what this command resolved (see
    /// [`crate::bases`]).
    pub lock: Mutex<GearLock>,
    /// `--locked`, `--frozen`: Gear.lock must already pin every external image.
    pub locked: bool,
    /// `--frozen`: never pull.
    pub frozen: bool,
    /// The async runtime of commands that talk to the engine, made on first use.
    runtime: OnceLock<tokio::runtime::Runtime>,
    /// The engine connection, asked for early (see [`Session::prefetch_engine`]).
    engine: Mutex<EngineSlot>,
}

/// Lets go of `value` without freeing it, for what lives until the process ends (a plan, the
/// session): the operating system takes the memory back at once, where freeing a 1,000-gear
/// plan and its graph one allocation at a time took 80 ms of CPU at the very end of a `cargo gear
/// plan` (README "Performance").
pub fn release_at_exit<T>(value: T) {
    std::mem::forget(value);
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_runtime();
    }
}

/// Where the session's engine connection stands.
#[derive(Debug, Default)]
enum EngineSlot {
    #[default]
    NotAsked,
    /// Connecting in the background.
    Connecting(tokio::task::JoinHandle<Result<Engine, EngineError>>),
    Connected(Box<Engine>),
}

impl Session {
    /// Finds the workspace, loads and resolves every Gear.toml.
    pub fn load(global: &GlobalArgs, cwd: &Path) -> Result<Session, CliError> {
        let out = Output::new(global.color, global.quiet);
        let ws = workspace::discover(cwd, global.manifest_path.as_deref(), global.root.as_deref())?;
        for warning in &ws.warnings {
            out.warn(warning);
        }
        let mut substitutions = ws.substitutions.clone();
        for s in &global.substitute {
            let Some((from, to)) = s
                .split_once('=')
                .filter(|(f, t)| !f.is_empty() && !t.is_empty())
            else {
                return Err(CliError::usage(
                    format!("invalid --substitute `{s}`"),
                    "write it as FROM=TO, e.g. --substitute freesurfer/freesurfer:7.3.2=mirror.example/freesurfer:7.3.2",
                ));
            };
            substitutions.insert(from.to_string(), to.to_string());
        }
        if ws.layer_dirs.is_empty() {
            return Err(CliError::usage(
                format!("no Gear.toml found in {}", ws.root.display()),
                if ws.cargo {
                    "list the layer directories under [workspace.metadata.gear] members = [\"layers/*\", \"gears/*\"] in the workspace Cargo.toml, or create one with `cargo gear init NAME --from PARENT`"
                } else {
                    "run inside a directory tree holding Gear.toml files, pass --root DIR, or create one with `cargo gear init NAME --from PARENT`"
                },
            ));
        }
        let graph = LayerGraph::load(&ws.layer_dirs, &ws.root)?;
        let registry = global.registry.clone().or_else(|| ws.registry.clone());
        let lock = GearLock::load(&ws.root.join(GEAR_LOCK), GEAR_LOCK)?;
        Ok(Session {
            ws,
            graph,
            substitutions,
            out,
            registry,
            lock: Mutex::new(lock),
            locked: global.locked || global.frozen,
            frozen: global.frozen,
            runtime: OnceLock::new(),
            engine: Mutex::default(),
        })
    }

    /// Ends the session when the process ends next: its runtime is stopped,
    /// the rest released unfreed ([`release_at_exit`]).
    pub fn end(mut self) {
        self.stop_runtime();
        release_at_exit(self);
    }

    /// Ends the runtime without waiting for its blocking threads: `cargo gear shell` may leave
    /// one reading standard input, and every task a command needed was awaited by then.
    fn stop_runtime(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Starts connecting to the engine in the background, for a command that will need it:
    /// connecting (a ping on a Unix socket; over TCP also the TLS handshake and `/version`,
    /// for which dockerd runs `runc` and `docker-init`) then happens while the command plans.
    pub fn prefetch_engine(&self) -> Result<(), CliError> {
        let runtime = self.runtime()?;
        let mut slot = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*slot, EngineSlot::NotAsked) {
            *slot = EngineSlot::Connecting(runtime.spawn(Engine::connect()));
        }
        Ok(())
    }

    /// The engine: the connection [`Session::prefetch_engine`] started or an earlier call
    /// made, else a new one. A failed connection is not kept: the next call tries again.
    pub async fn engine(&self) -> Result<Engine, EngineError> {
        let slot = std::mem::take(&mut *self.engine.lock().unwrap_or_else(|e| e.into_inner()));
        let connected = match slot {
            EngineSlot::Connected(engine) => Ok(*engine),
            EngineSlot::Connecting(task) => match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: only by the runtime's shutdown, when the session ends.
                Err(_) => Engine::connect().await,
            },
            EngineSlot::NotAsked => Engine::connect().await,
        };
        if let Ok(engine) = &connected {
            *self.engine.lock().unwrap_or_else(|e| e.into_inner()) =
                EngineSlot::Connected(Box::new(engine.clone()));
        }
        connected
    }

    /// The layers a selection names (all when empty), as graph indices.
    pub fn select(&self, selection: &Selection) -> Result<Vec<usize>, CliError> {
        if selection.packages.is_empty() {
            return Ok(self.graph.build_order().to_vec());
        }
        let mut problems = Problems::default();
        let mut out = Vec::new();
        for name in &selection.packages {
            match self.graph.find(name) {
                Some(i) => out.push(i),
                None => problems.push(plan::unknown_layer(&self.graph, name)),
            }
        }
        problems.into_result(out).map_err(CliError::from)
    }

    /// The team registry, or an error saying how to name one.
    pub fn registry(&self) -> Result<Registry, CliError> {
        match &self.registry {
            Some(r) => Registry::new(r),
            None => Err(CliError::usage(
                "no registry is configured",
                "pass --registry HOST[:PORT]/PREFIX, or set registry = \"HOST[:PORT]/PREFIX\" under [workspace.metadata.gear] in the workspace Cargo.toml",
            )),
        }
    }

    /// Where build records and logs go.
    pub fn build_paths(&self) -> Paths {
        let gear_dir = self.ws.gear_dir();
        Paths {
            state: gear_dir.join("state"),
            logs: gear_dir.join("logs"),
        }
    }

    /// The async runtime of commands that talk to the engine.
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime, CliError> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::io("start", "the async runtime", e))?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// Plans the selected layers for the engine: like [`Session::plan`], and every gear of the
    /// plan must be startable the way Flywheel starts it (its `command`'s script, or a `run`
    /// file, among its files), so a gear that could never run is refused before any build.
    pub fn plan_to_build(&self, selected: &[usize]) -> Result<Plan, CliError> {
        let plan = self.plan(selected)?;
        let problems: Problems = plan
            .layers
            .iter()
            .filter_map(|l| Some((l.index, l.built()?)))
            .flat_map(|(i, b)| {
                gear_spec::validate::check_start(
                    self.graph.layer(i),
                    b.files.iter().map(|f| f.digest.tar_path.as_str()),
                )
            })
            .collect();
        problems.into_result(plan).map_err(CliError::from)
    }

    /// The lock as this command sees it.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, GearLock> {
        // A panic while holding it leaves a lock that is still whole: take it anyway.
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Plans the selected layers (with their ancestors).
    pub fn plan(&self, selected: &[usize]) -> Result<Plan, CliError> {
        // Cargo and rustc are asked only when a planned layer builds a Cargo package.
        let rust = self
            .graph
            .with_ancestors(selected)
            .iter()
            .any(|&i| self.graph.layer(i).decl.cargo.is_some());
        let cargo = match rust && self.ws.cargo {
            true => Some(std::sync::Arc::new(crate::rust::workspace(&self.ws.root)?)),
            false => None,
        };
        let opts = PlanOptions {
            substitutions: self.substitutions.clone(),
            hash_cache: Some(self.ws.gear_dir().join("hash-cache")),
            lock: self.lock().clone(),
            platform: self.ws.platform.clone(),
            cargo,
        };
        Ok(plan::plan(&self.graph, selected, &opts)?)
    }
}
