//! Command-line arguments, as clap parses them (cargo's subcommand pattern).
//!
//! `cargo gear build` runs `cargo-gear gear build`; both spellings work. Nothing here
//! does work: [`crate::request`] turns these raw arguments into a validated request.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `cargo` as seen by cargo-gear: the only subcommand is `gear`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", version, styles = clap_cargo_styles())]
pub enum Cargo {
    /// Build, check and run Flywheel gears declared in Gear.toml files.
    Gear(GearArgs),
}

/// `cargo gear …`.
#[derive(Debug, Args)]
#[command(version, about, long_about = None)]
pub struct GearArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Path to the workspace's Cargo.toml.
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest_path: Option<PathBuf>,
    /// Scan this directory for Gear.toml files instead of using a Cargo workspace.
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
    /// Coloring: auto, always, never (also CARGO_TERM_COLOR and NO_COLOR).
    #[arg(long, value_name = "WHEN", global = true, env = "CARGO_TERM_COLOR")]
    pub color: Option<ColorChoice>,
    /// Print less on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Replace an external image reference by another: FROM=TO (repeatable).
    #[arg(long, value_name = "FROM=TO", global = true)]
    pub substitute: Vec<String>,
    /// The team registry, HOST[:PORT]/PREFIX (default: [workspace.metadata.gear] registry).
    #[arg(long, value_name = "REGISTRY", global = true)]
    pub registry: Option<String>,
    /// Require Gear.lock to pin every external image, and never write it (for CI).
    #[arg(long, global = true)]
    pub locked: bool,
    /// `--locked`, and never pull (`--offline`).
    #[arg(long, global = true)]
    pub frozen: bool,
}

/// Which layers a command works on.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// Only this layer or gear (with its ancestors where needed); repeatable.
    #[arg(short = 'p', long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
    /// All layers of the workspace (the default).
    #[arg(long, conflicts_with = "packages")]
    pub workspace: bool,
}

/// Output format of data commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people.
    Human,
    /// One JSON document on stdout.
    Json,
}

/// What `cargo gear ci` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiFormat {
    /// A GitLab CI child pipeline (YAML, for `trigger: include: artifact:`).
    Gitlab,
    /// GitHub Actions: one matrix per dependency wave (JSON for `fromJSON`).
    Github,
    /// GitHub Actions: the workflow that runs those waves (YAML).
    GithubWorkflow,
}

/// Output format of `graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// An indented tree.
    Tree,
    /// Graphviz dot.
    Dot,
    /// JSON.
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when stderr is a terminal.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// `--message-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Progress for people on stderr.
    Human,
    /// JSON lines on stdout.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every Gear.toml: fields, graph, paths, manifests.
    Validate(ValidateArgs),
    /// Show the layer graph.
    Graph {
        /// Output format.
        #[arg(long, value_enum, default_value = "tree")]
        format: GraphFormat,
    },
    /// Print a layer's generated Dockerfile.
    Dockerfile {
        #[command(flatten)]
        selection: Selection,
        /// Write it to target/gear/dockerfiles/NAME.Dockerfile instead of printing it.
        #[arg(long)]
        write: bool,
    },
    /// Write each gear's manifest.json into its directory.
    Manifest {
        #[command(flatten)]
        selection: Selection,
        /// Write nothing; exit 1 with a diff when a manifest.json is stale.
        #[arg(long)]
        check: bool,
    },
    /// Show the layers in build order with their fingerprints and status.
    Plan {
        #[command(flatten)]
        selection: Selection,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: PlanFormat,
        /// Also say which stale layers the registry has (status `in-registry`).
        #[arg(long)]
        check_registry: bool,
    },
    /// A CI pipeline (GitLab, GitHub) with one job per layer the registry lacks.
    Ci {
        #[command(flatten)]
        selection: Selection,
        /// The CI system.
        #[arg(long, value_enum)]
        format: CiFormat,
    },
    /// Push layers' content tags, and gears' version tags, to the team registry.
    Push(PushArgs),
    /// Remove local images of this workspace's layers that are no longer current.
    Prune(PruneArgs),
    /// Build every stale layer of the selection, parents first, in parallel.
    Build(BuildArgs),
    /// Resolve the external images' tags again and rewrite their Gear.lock entries.
    Update {
        #[command(flatten)]
        selection: Selection,
    },
    /// Explain in full why a layer is fresh or stale.
    Why(WhyArgs),
    /// Run a gear locally as Flywheel runs it (building it first when stale).
    Run(RunArgs),
    /// An interactive shell in a gear's image, with the run layout mounted.
    Shell(ShellArgs),
    /// Write a validated config.json for a gear, like `fw-beta gear config`.
    Config(ConfigArgs),
    /// Scaffold a new gear directory in the standard Flywheel layout.
    Init(InitArgs),
    /// Turn existing gear directories (manifest.json, Dockerfile) into Gear.toml files.
    Import(ImportArgs),
    /// Remove cargo-gear's files under target/gear/ (images are `prune`'s job).
    Clean(CleanArgs),
    /// Print a shell completion script for `cargo gear`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// bash: `cargo gear completions bash > ~/.local/share/bash-completion/completions/cargo-gear`
    Bash,
    /// zsh: `cargo gear completions zsh > ~/.zfunc/_cargo-gear` (a directory in `fpath`)
    Zsh,
    /// fish: `cargo gear completions fish > ~/.config/fish/conf.d/cargo-gear.fish`
    Fish,
    /// PowerShell: `cargo gear completions powershell >> $PROFILE`
    Powershell,
}

/// `cargo gear build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Layers built at once (default: the number of CPUs).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// After a failure, go on building layers that do not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Rebuild even fresh layers (with -p: only those named); the engine may still reuse
    /// its cached steps.
    #[arg(long)]
    pub force: bool,
    /// Run every Dockerfile step of the layers built again, without the engine's build cache
    /// (e.g. to pick up new package versions); which layers are built is unchanged.
    #[arg(long)]
    pub no_cache: bool,
    /// Never pull: a missing external image is an error.
    #[arg(long)]
    pub offline: bool,
    /// `human` progress on stderr, or `json` lines on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub message_format: MessageFormat,
    /// Pull stale layers from this registry when it has their content tag, instead of
    /// building them (default with `cache = true`: the workspace registry).
    #[arg(long, value_name = "REGISTRY")]
    pub cache_from: Option<String>,
    /// Push the content tag of every layer built to this registry.
    #[arg(long, value_name = "REGISTRY")]
    pub cache_to: Option<String>,
    /// Build only the selected layers: their stale ancestors must come from the engine or
    /// the `--cache-from` registry (checked before anything is built). For CI jobs.
    #[arg(long, requires = "packages")]
    pub no_build_ancestors: bool,
}

/// `cargo gear init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the gear (lowercase letters, digits and dashes).
    pub name: String,
    /// The layer the gear is built on, or an image reference (`python:3.12-slim`), which
    /// gets an external layer too.
    #[arg(long, value_name = "PARENT")]
    pub from: String,
    /// Directory to create (default: gears/NAME under the workspace root, or ./NAME).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Namespace of the gear's image, `NAMESPACE/NAME` (default: the parent's, or the one
    /// the workspace's layers use).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// `cargo gear import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Gear directories, each holding manifest.json (and usually a Dockerfile).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Copy the gear's files to this new directory and write the Gear.toml there (one DIR).
    #[arg(long, value_name = "PATH")]
    pub into: Option<PathBuf>,
    /// Build on this layer of the workspace instead of an external layer of the
    /// Dockerfile's FROM image (required for a gear without a Dockerfile).
    #[arg(long, value_name = "LAYER")]
    pub from: Option<String>,
    /// Print the Gear.toml files on stdout; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite an existing Gear.toml (and, with --into, existing files).
    #[arg(long)]
    pub force: bool,
}

/// `cargo gear clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Remove only the run directories (target/gear/runs/).
    #[arg(long)]
    pub runs: bool,
}

/// `cargo gear push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Overwrite a version tag the registry holds with other contents (Flywheel versions
    /// are meant to be immutable: prefer bumping `version`).
    #[arg(long)]
    pub force: bool,
}

/// `cargo gear prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep this many of the most recent outdated images of each layer.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep: usize,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Inputs and configuration of a gear run.
#[derive(Debug, Args, Clone, Default)]
pub struct JobArgs {
    /// The gear.
    #[arg(short = 'p', long = "package", value_name = "GEAR")]
    pub gear: String,
    /// A file input (NAME=PATH) or a context input (NAME=VALUE); repeatable.
    #[arg(short, long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// A configuration value (KEY=VALUE), parsed by the key's type; repeatable.
    #[arg(short, long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Configuration values from a JSON file: `{"KEY": value}` or a Flywheel config.json.
    #[arg(long, value_name = "FILE.json")]
    pub config_file: Option<PathBuf>,
    /// The job's destination container, TYPE/ID.
    #[arg(long, value_name = "TYPE/ID")]
    pub destination: Option<String>,
    /// Environment variable holding the API key for api-key inputs (never printed).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
}

/// `cargo gear run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Keep the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Arguments appended to the gear's command.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// `cargo gear shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Bind-mount the gear's source files over their places in /flywheel/v0, so host edits are live.
    #[arg(long)]
    pub mount_src: bool,
}

/// `cargo gear config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Where to write it (default: target/gear/config/GEAR.json, out of git and of build contexts).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `cargo gear validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// `human` messages on stderr, or the diagnostics as `json` lines on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: PlanFormat,
}

/// `cargo gear why`.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The layer or gear.
    pub name: String,
    /// `human`, or `json` lines on stdout (the layer, or the diagnostics).
    #[arg(long, value_enum, default_value = "human")]
    pub format: PlanFormat,
}

/// cargo's help colors.
fn clap_cargo_styles() -> clap::builder::Styles {
    use anstyle::{AnsiColor, Effects};
    clap::builder::Styles::styled()
        .header(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .usage(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .literal(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .placeholder(AnsiColor::Cyan.on_default())
        .error(AnsiColor::Red.on_default().effects(Effects::BOLD))
        .valid(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .invalid(AnsiColor::Yellow.on_default().effects(Effects::BOLD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cargo::command().debug_assert();
    }
}
