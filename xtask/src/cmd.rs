//! Running child processes: echoed, interruptible, with errors that name the command.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{Result, sys};

/// How a command line is shown to the user: program and arguments, unquoted where plain.
pub fn display(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c))
        {
            words.push(arg.into_owned());
        } else {
            words.push(format!("'{}'", arg.replace('\'', r"'\''")));
        }
    }
    words.join(" ")
}

/// Waits for `child`, polling so that a trapped Ctrl-C or SIGTERM ends it (SIGTERM, then SIGKILL).
pub fn wait(child: &mut Child, what: &str) -> Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if sys::interrupted() {
            sys::send_signal(child.id() as i32, sys::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    child.kill()?;
                    child.wait()?;
                    break;
                }
                sleep(Duration::from_millis(50));
            }
            return Err(format!("interrupted while running `{what}`").into());
        }
        sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` with inherited stdio and returns its status.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    let what = display(cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    wait(&mut child, &what)
}

/// Runs `cmd` (echoed first) with inherited stdio; a non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result {
    eprintln!("xtask: $ {}", display(cmd));
    let status = status(cmd)?;
    check(cmd, status)
}

/// Turns a failed exit status of `cmd` into an error.
pub fn check(cmd: &Command, status: ExitStatus) -> Result {
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({})", display(cmd), describe(status)).into())
    }
}

/// Runs `cmd` (echoed first) with its output captured, shown only if it fails.
pub fn run_quiet(cmd: &mut Command) -> Result {
    eprintln!("xtask: $ {}", display(cmd));
    stdout(cmd).map(drop)
}

/// Runs `cmd` quietly and returns its trimmed stdout; a non-zero exit is an error carrying stderr.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let what = display(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = child
        .output()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if !out.status.success() {
        let (out_text, err) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let output = format!("{}\n{}", out_text.trim(), err.trim());
        return Err(format!(
            "`{what}` failed ({}):\n{}",
            describe(out.status),
            output.trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `cmd` with all output discarded; true if it exited 0.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The exit code a shell would report for `status` (128 + signal for a killed process).
pub fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => status.to_string(),
    }
}
