//! One module per `cargo gear` command; each takes a validated [`Session`](crate::request::Session).

pub mod build;
pub mod ci;
pub mod clean;
pub mod completions;
pub mod config;
pub mod dockerfile;
pub mod graph;
pub mod import;
pub mod init;
pub mod manifest;
pub mod plan;
pub mod prune;
pub mod push;
pub mod run;
pub mod shell;
pub mod update;
pub mod validate;
pub mod why;
