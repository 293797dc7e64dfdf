//! The `cargo-gear` binary: `cargo gear …`.

fn main() -> std::process::ExitCode {
    cargo_gear::main()
}
