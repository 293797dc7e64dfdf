//! The integration tests of cargo-gear, in one test binary (one link instead of one per
//! file): the command line without an engine (`cli_commands`), the engine layer
//! (`engine_*`, with other engines: a TLS listener in `engine_tls`, Podman in
//! `engine_podman`), and the binary end to end on a real engine (`e2e_*`, `faults`). Error
//! snapshots of invalid Gear.toml files are in their own binary, `tests/cli_errors.rs`.
//!
//! Run one module with `cargo test -p cargo-gear --test it e2e_build::`, or through
//! `cargo xtask test -- --test it e2e_registry::`, which starts the engine and registries.

mod scratch;
mod support;

mod cli_ci;
mod cli_commands;
mod e2e_build;
mod e2e_ci;
mod e2e_hints;
mod e2e_import;
mod e2e_lock;
mod e2e_race;
mod e2e_registry;
mod e2e_run;
mod e2e_rust;
mod e2e_steps;
mod engine_build;
mod engine_connect;
mod engine_podman;
mod engine_run;
mod engine_tls;
mod faults;
