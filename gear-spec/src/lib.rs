//! gear-spec: everything cargo-gear knows without a Docker engine.
//!
//! Gear.toml files are read into [`layer::Layer`]s, resolved into a [`graph::LayerGraph`],
//! checked by [`validate`], and turned by [`plan`] into what a build consumes: for each
//! layer its Dockerfile, its Flywheel manifest, its build context and its fingerprint.

pub mod config;
pub mod context;
pub mod diagnostic;
pub mod dockerfile;
pub mod fingerprint;
pub mod flywheel;
pub mod fuzz;
pub mod gear_lock;
pub mod graph;
pub mod import;
pub mod job;
pub mod layer;
pub mod manifest;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod pylock;
pub mod reference;
pub mod rust;
pub mod schema;
pub mod stat;
pub mod state;
pub mod step;
#[cfg(test)]
mod testing;
pub mod validate;

pub use diagnostic::{Problem, Problems};
pub use graph::LayerGraph;
pub use layer::{Layer, LayerKind};
