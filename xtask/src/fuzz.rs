//! `cargo xtask fuzz`: the Gear.toml front end (`gear_spec::fuzz::front_end`) under libFuzzer,
//! through cargo-fuzz on the stable toolchain (`--sanitizer none`: no nightly here, and the
//! target is safe Rust whose bugs are panics), for a bounded time.
//!
//! Inputs: the committed corpus `fuzz/corpus/gear_toml` (seeded from the examples and the
//! test inputs, minimized) and every crash ever found, `fuzz/regressions/` (each one also a
//! test: `gear-spec/tests/no_panic.rs`). New inputs go to `target/fuzz/corpus`, crashes to
//! `target/fuzz/artifacts/`; `--update-corpus` minimizes both corpora back into the
//! committed one.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{Result, Workspace, cmd};

/// The cargo-fuzz installed when there is none.
const CARGO_FUZZ: &str = "0.13.2";
/// The libFuzzer target (`fuzz/fuzz_targets/gear_toml.rs`).
const TARGET: &str = "gear_toml";
/// How long `cargo xtask fuzz` runs without `--seconds`.
const DEFAULT_SECONDS: u64 = 600;
/// The largest input tried, in bytes: past `gear_spec::diagnostic`'s 1,000-byte long line,
/// small enough to keep thousands of runs a second.
const MAX_LEN: usize = 1200;

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--update-corpus] [-- LIBFUZZER-FLAGS…]";

/// What one run did.
#[derive(Debug, Default)]
pub struct Figures {
    pub executions: u64,
    pub seconds: f64,
    pub corpus: u64,
    pub crashes: u64,
}

impl Figures {
    /// Takes what a line of libFuzzer's output says about the run.
    fn read(&mut self, line: &str) {
        if let Some(n) = line
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
        {
            self.executions = n;
        }
        // `Done 10855 runs in 26 second(s)`: the time spent fuzzing, not building.
        if let Some(seconds) = line
            .strip_prefix("Done ")
            .and_then(|rest| rest.split(" runs in ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
        {
            self.seconds = seconds;
        }
        // `#524288  pulse  cov: 8235 ft: 33028 corp: 3164/1003Kb …`: the last one counts.
        if let Some(corpus) = line
            .split("corp: ")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .and_then(|n| n.parse().ok())
        {
            self.corpus = corpus;
        }
    }
}

/// `cargo xtask fuzz [--seconds N] [--update-corpus] [-- LIBFUZZER-FLAGS…]`.
pub fn cli(ws: &Workspace, args: &[&str]) -> Result {
    let mut seconds = DEFAULT_SECONDS;
    let mut update = false;
    let mut flags: &[&str] = &[];
    let mut rest = args.iter();
    while let Some(&arg) = rest.next() {
        match arg {
            "--" => {
                flags = rest.as_slice();
                break;
            }
            "--seconds" => {
                seconds = rest
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or(format!("--seconds takes a number\n{USAGE}"))?;
            }
            "--update-corpus" => update = true,
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}").into()),
        }
    }
    run(ws, seconds, flags)?;
    if update {
        update_corpus(ws)?;
    }
    Ok(())
}

/// Fuzzes for `seconds` (less when `flags`, more libFuzzer flags, say `-runs=N`), prints the
/// figures, and fails on a crash.
pub fn run(ws: &Workspace, seconds: u64, flags: &[&str]) -> Result<Figures> {
    ensure_cargo_fuzz(ws)?;
    let scratch = ws.target.join("fuzz");
    let corpus = scratch.join("corpus");
    let artifacts = scratch.join("artifacts");
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut fuzz = cargo_fuzz(ws, "run");
    fuzz.arg(&corpus)
        .arg(ws.root.join("fuzz/corpus").join(TARGET))
        .arg(ws.root.join("fuzz/regressions"))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={MAX_LEN}"))
        .arg(format!(
            "-dict={}",
            ws.root.join("fuzz/gear_toml.dict").display()
        ))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .args(flags);
    let found = |dir: &std::path::Path| std::fs::read_dir(dir).map_or(0, |d| d.count() as u64);
    let crashes_before = found(&artifacts);
    eprintln!("xtask: $ {}", cmd::display(&fuzz));
    let started = Instant::now();
    let mut child = fuzz
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    // libFuzzer reports on stderr: its progress lines are echoed (not each new input), and
    // read for the figures.
    let reader = std::thread::spawn(move || {
        let mut figures = Figures::default();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            figures.read(&line);
            let new_input = line.contains("\tNEW ") || line.contains("\tREDUCE ");
            if !new_input {
                eprintln!("{line}");
            }
        }
        figures
    });
    let status = cmd::wait(&mut child, "cargo fuzz run")?;
    let mut figures = reader.join().map_err(|_| "the output reader panicked")?;
    if figures.seconds == 0.0 {
        // Stopped before libFuzzer's summary (a crash): the time since the start.
        figures.seconds = started.elapsed().as_secs_f64();
    }
    // A crash leaves its input in `artifacts`; any other failure is cargo fuzz's own.
    figures.crashes = found(&artifacts) - crashes_before;
    if !status.success() && figures.crashes == 0 {
        return Err(format!("cargo fuzz failed ({status})").into());
    }
    eprintln!(
        "xtask: fuzz: {} executions in {:.0} s ({:.0}/s), corpus {} inputs, {} crashes",
        figures.executions,
        figures.seconds,
        figures.executions as f64 / figures.seconds.max(1.0),
        figures.corpus,
        figures.crashes,
    );
    if figures.crashes > 0 {
        return Err(format!(
            "the fuzzer found a crash (input in {}): fix it, then add the input to fuzz/regressions/",
            artifacts.display()
        )
        .into());
    }
    Ok(figures)
}

/// Minimizes the committed corpus and the run's new inputs into `fuzz/corpus/gear_toml`.
fn update_corpus(ws: &Workspace) -> Result {
    let committed = ws.root.join("fuzz/corpus").join(TARGET);
    let merged = ws.target.join("fuzz/merged");
    let _ = std::fs::remove_dir_all(&merged);
    std::fs::create_dir_all(&merged)?;
    let mut merge = cargo_fuzz(ws, "run");
    merge
        .arg(&merged)
        .arg(&committed)
        .arg(ws.target.join("fuzz/corpus"))
        .arg("--")
        .arg("-merge=1")
        .arg("-use_counters=0")
        .arg(format!("-max_len={MAX_LEN}"));
    cmd::run_quiet(&mut merge)?;
    std::fs::remove_dir_all(&committed)?;
    std::fs::rename(&merged, &committed)?;
    let count = std::fs::read_dir(&committed)?.count();
    eprintln!("xtask: fuzz: {count} inputs in {}", committed.display());
    Ok(())
}

/// `cargo fuzz SUBCOMMAND` on the target, with the flags every run uses.
///
/// `--no-trace-compares`: the comparison callbacks were ~40 % of a run's profile; without
/// them a run does 1.8–1.9× the executions per CPU second and, at equal CPU time, reached
/// more coverage from the committed corpus (cov 8,807 and 8,681 against 8,545 and 8,533 in
/// two seeds), the dictionary giving the keywords they would have found. Debug assertions
/// (overflow checks included) are kept: they cost no measurable time here.
fn cargo_fuzz(ws: &Workspace, subcommand: &str) -> Command {
    let mut cmd = ws.cargo();
    cmd.args([
        "fuzz",
        subcommand,
        "--sanitizer",
        "none",
        "--debug-assertions",
        "--no-trace-compares",
    ])
    .arg(TARGET);
    cmd
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is missing.
fn ensure_cargo_fuzz(ws: &Workspace) -> Result {
    if cmd::succeeds(ws.cargo().args(["fuzz", "--version"])) {
        return Ok(());
    }
    cmd::run(
        ws.cargo()
            .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_from_libfuzzer_output() {
        let mut figures = Figures::default();
        for line in [
            "#2784\tINITED cov: 7319 ft: 25116 corp: 1262/375Kb exec/s: 2784 rss: 46Mb",
            "#524288\tpulse  cov: 8235 ft: 33028 corp: 3164/1003Kb lim: 1200 exec/s: 790 rss: 46Mb",
            "Done 10855 runs in 26 second(s)",
            "stat::number_of_executed_units: 10855",
            "stat::average_exec_per_sec:     417",
        ] {
            figures.read(line);
        }
        assert_eq!(
            (figures.executions, figures.seconds, figures.corpus),
            (10855, 26.0, 3164)
        );
    }
}
