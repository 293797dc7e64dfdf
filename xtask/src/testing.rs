//! What xtask's own engine tests share: whether they run, by the rules of
//! cargo-gear/tests/support/engine.rs (`CARGO_GEAR_TEST_ENGINE=1`, which `cargo xtask test`
//! sets, or `CI=true`: they run and fail without an engine; otherwise they skip with a note).

use std::env;

use crate::engine::Engine;

/// Whether the engine tests run here; prints a note when they are skipped.
pub fn engine_tests_run() -> bool {
    let run = match env::var("CARGO_GEAR_TEST_ENGINE").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        Ok(other) => panic!("CARGO_GEAR_TEST_ENGINE must be 0 or 1, not `{other}`"),
        Err(_) => env::var("CI").as_deref() == Ok("true"),
    };
    if !run {
        eprintln!("note: skipping a Docker engine test (`cargo xtask test` runs it)");
    }
    run
}

/// The engine `cargo xtask test` gives the tests (`DOCKER_HOST`), with the fixture images, or
/// `None` when the engine tests are skipped.
pub fn engine() -> Option<Engine> {
    if !engine_tests_run() {
        return None;
    }
    let host = env::var("DOCKER_HOST")
        .expect("the engine tests run here, and `cargo xtask test` sets DOCKER_HOST");
    Some(Engine::at(host))
}
