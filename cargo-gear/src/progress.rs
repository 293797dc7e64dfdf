//! Reporting a build as it happens: a live line per layer on a terminal (indicatif),
//! plain lines otherwise or in CI, JSON lines on stdout with `--message-format json`
//! (their types are in [`events`]).

pub mod events;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gear_spec::plan::PlannedLayer;
use gear_spec::state::Reason;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::engine::PullProgress;
use crate::engine::{BuildError, EngineError};
use crate::output::{self, Output};
use events::{
    BuildEvent, BuildFinished, CargoFinished, LayerFailure, LayerFinished, LayerStarted, millis,
};

/// Why one layer failed.
#[derive(Debug)]
pub struct Failure {
    /// One line: the error and its causes.
    pub message: String,
    /// The failing Dockerfile step, when a step failed.
    pub step: Option<String>,
    /// The last output lines.
    pub tail: Vec<String>,
    /// What to do about it, when something specific helps.
    pub help: Option<String>,
}

impl Failure {
    /// A failure with only a message.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            step: None,
            tail: Vec::new(),
            help: None,
        }
    }

    /// The failure with what to do about it.
    pub fn with_help(self, help: impl Into<String>) -> Failure {
        Failure {
            help: Some(help.into()),
            ..self
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        Failure::new(crate::error::chain(&e))
    }
}

impl From<BuildError> for Failure {
    fn from(e: BuildError) -> Failure {
        let step = match &e {
            BuildError::Step { step, .. } => Some(step.clone()),
            _ => None,
        };
        Failure {
            message: crate::error::chain(&e),
            step,
            tail: e.tail().to_vec(),
            help: None,
        }
    }
}

/// What happened to a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Built now.
    Built,
    /// Already built; nothing sent.
    Fresh,
    /// An external image pulled now.
    Pulled,
    /// The build or pull failed.
    Failed,
    /// Not attempted: its parent failed, or a failure stopped the build.
    Skipped,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Built,
        Outcome::Fresh,
        Outcome::Pulled,
        Outcome::Failed,
        Outcome::Skipped,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::Fresh => "fresh",
            Outcome::Pulled => "pulled",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// A moment in a layer's build.
#[derive(Debug)]
pub enum Event<'a> {
    /// Building or pulling starts, for these reasons.
    Started { reasons: &'a [Reason] },
    /// Done.
    Finished {
        outcome: Outcome,
        seconds: f64,
        failure: Option<&'a Failure>,
    },
}

/// Counts of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub built: usize,
    pub fresh: usize,
    pub pulled: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Built => self.built += 1,
            Outcome::Fresh => self.fresh += 1,
            Outcome::Pulled => self.pulled += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }
}

/// Reports one build.
pub struct Reporter {
    json: bool,
    out: Output,
    logs: PathBuf,
    bars: Option<MultiProgress>,
    live: Mutex<HashMap<String, ProgressBar>>,
    counts: Mutex<Counts>,
    cargo_invocations: Mutex<usize>,
    start: Instant,
}

impl Reporter {
    /// `json`: events as JSON lines on stdout; people still get warnings on stderr.
    pub fn new(json: bool, out: Output, logs: PathBuf) -> Reporter {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        let live = !json && !out.quiet && !ci && std::io::stderr().is_terminal();
        let bars = live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Reporter {
            json,
            out,
            logs,
            bars,
            live: Mutex::new(HashMap::new()),
            counts: Mutex::new(Counts::default()),
            cargo_invocations: Mutex::new(0),
            start: Instant::now(),
        }
    }

    /// Reports an event of a layer.
    pub fn event(&self, layer: &PlannedLayer, event: Event<'_>) {
        match event {
            Event::Started { reasons } => {
                if self.json {
                    self.json_line(&BuildEvent::LayerStarted(LayerStarted {
                        name: layer.name.clone(),
                        kind: layer.kind(),
                        fingerprint: layer.fingerprint.to_string(),
                        reasons: reasons.iter().map(ToString::to_string).collect(),
                    }));
                    return;
                }
                let verb = if layer.built().is_some() {
                    "Building"
                } else {
                    "Pulling"
                };
                // Reasons name files: a tab or newline in a name must not break the line.
                let why = reasons
                    .iter()
                    .map(|r| gear_spec::diagnostic::escape_controls(&r.to_string()).into_owned())
                    .collect::<Vec<_>>()
                    .join("; ");
                let message = if why.is_empty() {
                    layer.name.clone()
                } else {
                    format!("{} ({why})", layer.name)
                };
                match &self.bars {
                    Some(bars) => {
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{spinner:.green} {prefix:.bold} {wide_msg}",
                            )
                            .expect("valid template"),
                        );
                        bar.set_prefix(layer.name.clone());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bars.suspend(|| self.out.status(verb, &message));
                        self.live
                            .lock()
                            .expect("lock")
                            .insert(layer.name.clone(), bar);
                    }
                    None => self.out.status(verb, &message),
                }
            }
            Event::Finished {
                outcome,
                seconds,
                failure,
            } => {
                self.counts.lock().expect("lock").add(outcome);
                if let Some(bar) = self.live.lock().expect("lock").remove(&layer.name) {
                    bar.finish_and_clear();
                }
                if self.json {
                    self.json_line(&BuildEvent::LayerFinished(LayerFinished {
                        name: layer.name.clone(),
                        outcome,
                        fingerprint: layer.fingerprint.to_string(),
                        seconds: millis(seconds),
                        image: layer.reference().to_owned(),
                        failure: failure.map(|f| LayerFailure {
                            error: f.message.clone(),
                            step: f.step.clone(),
                            help: f.help.clone(),
                        }),
                    }));
                }
                let text = match outcome {
                    Outcome::Built => Some((
                        "Built",
                        format!("{} in {seconds:.1}s → {}", layer.name, layer.reference()),
                    )),
                    Outcome::Pulled => {
                        Some(("Pulled", format!("{} in {seconds:.1}s", layer.reference())))
                    }
                    Outcome::Fresh => {
                        Some(("Fresh", format!("{} ({})", layer.name, layer.reference())))
                    }
                    Outcome::Skipped => Some((
                        "Skipped",
                        format!(
                            "{} (not built: a layer it depends on failed or the build stopped)",
                            layer.name
                        ),
                    )),
                    Outcome::Failed => None,
                };
                self.suspend(|| {
                    if !self.json
                        && let Some((verb, msg)) = text
                    {
                        self.out.status(verb, msg);
                    }
                    if let Some(f) = failure {
                        self.report_failure(layer, f);
                    }
                });
            }
        }
    }

    fn report_failure(&self, layer: &PlannedLayer, f: &Failure) {
        let mut text = format!("failed to build `{}`", layer.name);
        if let Some(step) = &f.step {
            text.push_str(&format!(" at `{step}`"));
        }
        text.push_str(&format!("\n  {}", f.message));
        if !f.tail.is_empty() {
            text.push_str("\n  last lines of output:");
            for line in &f.tail {
                text.push_str(&format!("\n  │ {line}"));
            }
        }
        if let Some(help) = &f.help {
            text.push_str(&format!("\n  help: {}", help.replace('\n', "\n  ")));
        }
        if layer.built().is_some() {
            text.push_str(&format!(
                "\n  full log: {}",
                self.logs.join(format!("{}.log", layer.name)).display()
            ));
        }
        self.out.error(text);
    }

    /// A line of build output: shown as the layer's live status on a terminal.
    pub fn build_line(&self, layer: &PlannedLayer, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if let Some(bar) = self.live.lock().expect("lock").get(&layer.name) {
            bar.set_message(line.to_string());
        }
    }

    /// Progress of a pull.
    pub fn pull_progress(&self, layer: &PlannedLayer, p: &PullProgress) {
        let msg = match (p.current, p.total) {
            (Some(c), Some(t)) if t > 0 => format!(
                "{} {}: {}/{} MB",
                p.status,
                p.id.as_deref().unwrap_or(""),
                c / 1_000_000,
                t / 1_000_000
            ),
            _ => format!("{} {}", p.status, p.id.as_deref().unwrap_or("")),
        };
        self.build_line(layer, &msg);
    }

    /// Cargo starts compiling the binaries of these Rust layers (its own output follows on
    /// stderr).
    pub fn cargo_started(&self, layers: &[String]) {
        self.suspend(|| {
            self.out.status(
                "Compiling",
                format!("Rust binaries of {} with cargo", layers.join(", ")),
            );
        });
    }

    /// Cargo is done: `failed` are the layers whose binary it did not build.
    pub fn cargo_finished(
        &self,
        layers: &[String],
        failed: &[String],
        invocations: usize,
        seconds: f64,
    ) {
        *self.cargo_invocations.lock().expect("lock") += invocations;
        if self.json {
            self.json_line(&BuildEvent::CargoFinished(CargoFinished {
                layers: layers.to_vec(),
                failed: failed.to_vec(),
                invocations,
                seconds: millis(seconds),
            }));
        } else if failed.is_empty() {
            self.suspend(|| {
                self.out.status(
                    "Compiled",
                    format!("{} in {seconds:.1}s", layers.join(", ")),
                );
            });
        }
    }

    /// A warning on stderr (above the live lines).
    pub fn warn(&self, message: &str) {
        self.suspend(|| self.out.warn(message));
    }

    /// Ends the build: the summary line, or the final JSON event. Returns the counts.
    pub fn finish(&self) -> Counts {
        self.end(false)
    }

    /// Ends a build that Ctrl-C stopped: the live lines are cleared and, with
    /// `--message-format json`, the final event says `"interrupted": true` (the error
    /// itself is reported by the caller).
    pub fn interrupted(&self) -> Counts {
        self.end(true)
    }

    fn end(&self, interrupted: bool) -> Counts {
        let c = *self.counts.lock().expect("lock");
        let seconds = self.start.elapsed().as_secs_f64();
        if let Some(bars) = &self.bars {
            let _ = bars.clear();
        }
        if self.json {
            self.json_line(&BuildEvent::BuildFinished(BuildFinished {
                built: c.built,
                fresh: c.fresh,
                pulled: c.pulled,
                failed: c.failed,
                skipped: c.skipped,
                seconds: millis(seconds),
                interrupted,
                cargo_invocations: *self.cargo_invocations.lock().expect("lock"),
            }));
        } else if !interrupted {
            // (After Ctrl-C the error says so: a summary of a build that did not end would mislead.)
            let parts: Vec<String> = Outcome::ALL
                .iter()
                .zip([c.built, c.fresh, c.pulled, c.failed, c.skipped])
                .filter(|(_, n)| *n > 0)
                .map(|(o, n)| format!("{n} {}", o.as_str()))
                .collect();
            let summary = format!("{} in {seconds:.1}s", parts.join(", "));
            if c.failed > 0 {
                self.out.status_failed("Failed", summary);
            } else {
                self.out.status("Finished", summary);
            }
        }
        c
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &self.bars {
            Some(bars) => bars.suspend(f),
            None => f(),
        }
    }

    fn json_line(&self, event: &BuildEvent) {
        let mut line = serde_json::to_string(event).expect("events serialize");
        line.push('\n');
        output::stdout(&line);
    }
}
