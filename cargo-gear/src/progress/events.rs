//! The JSON events of `cargo gear build --message-format json`, one per line on stdout: the
//! types the binary serializes and that consumers (the tests among them) deserialize.
//!
//! ```text
//! {"event":"layer-started","name":"hello","kind":"gear","fingerprint":"sha256:…","reasons":["file run.sh changed"]}
//! {"event":"layer-finished","name":"hello","outcome":"built","fingerprint":"sha256:…","seconds":1.2,"image":"example/hello:gear-…"}
//! {"event":"cargo-finished","layers":["nifti-stats"],"failed":[],"invocations":1,"seconds":8.1}
//! {"event":"build-finished","built":1,"fresh":5,"pulled":0,"failed":0,"skipped":0,"seconds":1.4,"interrupted":false,"cargo_invocations":1}
//! ```
//!
//! Fields are only ever added; a consumer must ignore fields it does not know.

use gear_spec::layer::LayerKind;
use serde::{Deserialize, Serialize};

use super::{Counts, Outcome};

/// One line of `--message-format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum BuildEvent {
    /// A layer starts building or pulling.
    LayerStarted(LayerStarted),
    /// A layer is done, whatever its outcome.
    LayerFinished(LayerFinished),
    /// Cargo compiled the host-built Rust layers about to be built (before their images).
    CargoFinished(CargoFinished),
    /// The build is over: always the last event, also after a failure or an interruption.
    BuildFinished(BuildFinished),
}

/// `layer-started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStarted {
    /// The layer's name.
    pub name: String,
    /// External, layer or gear.
    pub kind: LayerKind,
    /// `sha256:<64 hex>`.
    pub fingerprint: String,
    /// Why it is built or pulled (`file app/main.py changed`, …).
    pub reasons: Vec<String>,
}

/// `layer-finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFinished {
    /// The layer's name.
    pub name: String,
    /// What happened to it.
    pub outcome: Outcome,
    /// `sha256:<64 hex>`.
    pub fingerprint: String,
    /// How long it took, rounded to milliseconds.
    pub seconds: f64,
    /// Its content tag, or an external layer's reference.
    pub image: String,
    /// Why it failed: only on a failed layer.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub failure: Option<LayerFailure>,
}

/// The fields a failed layer's `layer-finished` event adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFailure {
    /// The error and each of its causes, `: `-separated.
    pub error: String,
    /// The failing Dockerfile step, or null when no step failed.
    pub step: Option<String>,
    /// What to do about it, or null.
    pub help: Option<String>,
}

/// `cargo-finished`: one per build that ran Cargo (a fully fresh build has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CargoFinished {
    /// The Rust layers compiled for.
    pub layers: Vec<String>,
    /// Those whose binary Cargo did not build (they fail, their dependents are skipped).
    pub failed: Vec<String>,
    /// How many `cargo build` invocations ran (one per profile and target).
    pub invocations: usize,
    /// How long Cargo took, rounded to milliseconds.
    pub seconds: f64,
}

/// `build-finished`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildFinished {
    pub built: usize,
    pub fresh: usize,
    pub pulled: usize,
    pub failed: usize,
    pub skipped: usize,
    /// How long the build took, rounded to milliseconds.
    pub seconds: f64,
    /// Ended by Ctrl-C (SIGINT) before every layer finished: layers that were still running
    /// have no `layer-finished` event and nothing was recorded for them.
    #[serde(default)]
    pub interrupted: bool,
    /// How many `cargo build` invocations the build ran (0 when no Rust layer was stale).
    #[serde(default)]
    pub cargo_invocations: usize,
}

impl BuildFinished {
    /// The counts of each outcome.
    pub fn counts(&self) -> Counts {
        Counts {
            built: self.built,
            fresh: self.fresh,
            pulled: self.pulled,
            failed: self.failed,
            skipped: self.skipped,
        }
    }
}

/// Seconds rounded to milliseconds, as every event gives them.
pub fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(event: &BuildEvent, expected: serde_json::Value) {
        let text = serde_json::to_string(event).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, expected);
        assert_eq!(&serde_json::from_str::<BuildEvent>(&text).unwrap(), event);
    }

    #[test]
    fn the_shapes_are_those_of_the_documented_events() {
        round_trip(
            &BuildEvent::LayerStarted(LayerStarted {
                name: "hello".into(),
                kind: LayerKind::Gear,
                fingerprint: "sha256:ab".into(),
                reasons: vec!["never built".into()],
            }),
            json!({"event": "layer-started", "name": "hello", "kind": "gear",
                   "fingerprint": "sha256:ab", "reasons": ["never built"]}),
        );
        round_trip(
            &BuildEvent::LayerFinished(LayerFinished {
                name: "hello".into(),
                outcome: Outcome::Built,
                fingerprint: "sha256:ab".into(),
                seconds: 1.25,
                image: "example/hello:gear-ab".into(),
                failure: None,
            }),
            json!({"event": "layer-finished", "name": "hello", "outcome": "built",
                   "fingerprint": "sha256:ab", "seconds": 1.25, "image": "example/hello:gear-ab"}),
        );
        round_trip(
            &BuildEvent::LayerFinished(LayerFinished {
                name: "hello".into(),
                outcome: Outcome::Failed,
                fingerprint: "sha256:ab".into(),
                seconds: 0.5,
                image: "example/hello:gear-ab".into(),
                failure: Some(LayerFailure {
                    error: "engine gone: connection refused".into(),
                    step: None,
                    help: Some("start it".into()),
                }),
            }),
            json!({"event": "layer-finished", "name": "hello", "outcome": "failed",
                   "fingerprint": "sha256:ab", "seconds": 0.5, "image": "example/hello:gear-ab",
                   "error": "engine gone: connection refused", "step": null,
                   "help": "start it"}),
        );
        round_trip(
            &BuildEvent::BuildFinished(BuildFinished {
                built: 1,
                fresh: 2,
                pulled: 3,
                failed: 0,
                skipped: 4,
                seconds: 9.5,
                interrupted: true,
                cargo_invocations: 1,
            }),
            json!({"event": "build-finished", "built": 1, "fresh": 2, "pulled": 3, "failed": 0,
                   "skipped": 4, "seconds": 9.5, "interrupted": true, "cargo_invocations": 1}),
        );
        round_trip(
            &BuildEvent::CargoFinished(CargoFinished {
                layers: vec!["nifti-stats".into(), "tool".into()],
                failed: vec!["tool".into()],
                invocations: 1,
                seconds: 8.25,
            }),
            json!({"event": "cargo-finished", "layers": ["nifti-stats", "tool"],
                   "failed": ["tool"], "invocations": 1, "seconds": 8.25}),
        );
    }

    #[test]
    fn events_of_earlier_versions_still_parse() {
        let old = r#"{"event":"build-finished","built":1,"fresh":0,"pulled":0,"failed":0,"skipped":0,"seconds":1.0}"#;
        let BuildEvent::BuildFinished(f) = serde_json::from_str(old).unwrap() else {
            panic!("a build-finished event");
        };
        assert!(!f.interrupted);
    }
}
