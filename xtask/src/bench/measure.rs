//! Timing one command: wall time, CPU time and peak memory from `wait4`'s rusage, and medians.
//!
//! `wait4`'s rusage is the child's own, so the peak memory of each run is exact and does not mix
//! with other children, unlike `RUSAGE_CHILDREN`.

use std::fs::File;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use crate::{Result, cmd, sys};

/// One run of a command.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Wall-clock seconds from spawn to exit.
    pub wall: f64,
    /// User plus system CPU seconds of the command (its own, not its children's daemons).
    pub cpu: f64,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
}

impl Sample {
    /// The samples of a sequence of commands run one after the other, as one sample.
    pub fn sequence(samples: &[Sample]) -> Sample {
        Sample {
            wall: samples.iter().map(|s| s.wall).sum(),
            cpu: samples.iter().map(|s| s.cpu).sum(),
            max_rss_kib: samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0),
        }
    }
}

/// Where a measured command's stdout goes.
pub enum Out<'a> {
    /// Discarded.
    Null,
    /// Into this file (stderr into the same path with `.err` appended), kept for inspection.
    File(&'a Path),
}

/// Runs `command` to completion with stdin closed and measures it; a non-zero exit is an error
/// that carries the end of its stderr.
pub fn run(command: &mut Command, out: Out) -> Result<Sample> {
    let what = cmd::display(command);
    command.stdin(Stdio::null());
    let err_path = match out {
        Out::Null => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
            None
        }
        Out::File(path) => {
            let err_path = path.with_file_name(format!(
                "{}.err",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            command
                .stdout(File::create(path)?)
                .stderr(File::create(&err_path)?);
            Some(err_path)
        }
    };
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: `rusage` is plain integers and timevals, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet waited for (std never waits for it: `child` is only
        // dropped); `status` and `usage` are valid for writes of their types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(format!("waiting for `{what}`: {e}").into());
        }
    }
    let wall = started.elapsed().as_secs_f64();
    drop(child);
    let status = ExitStatus::from_raw(status);
    if sys::interrupted() {
        return Err(format!("interrupted while running `{what}`").into());
    }
    if !status.success() {
        let tail = err_path
            .map(|p| crate::engine::log_tail(&p, 20))
            .unwrap_or_default();
        return Err(format!("{}\n{tail}", cmd::check(command, status).unwrap_err()).into());
    }
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(Sample {
        wall,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    })
}

/// Several runs of one measurement.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub samples: Vec<Sample>,
}

impl Stats {
    pub fn push(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// Median wall-clock seconds.
    pub fn wall(&self) -> f64 {
        median(self.samples.iter().map(|s| s.wall).collect())
    }

    /// Median CPU seconds.
    pub fn cpu(&self) -> f64 {
        median(self.samples.iter().map(|s| s.cpu).collect())
    }

    /// Highest peak RSS of any run, in MiB.
    pub fn max_rss_mib(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| s.max_rss_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }

    pub fn walls(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.wall).collect()
    }
}

/// The median (mean of the middle two for an even count); NaN when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn measures_a_child() {
        let s = run(Command::new("sh").args(["-c", "exit 0"]), Out::Null).unwrap();
        assert!(s.wall > 0.0 && s.max_rss_kib > 0, "{s:?}");
        let e = run(Command::new("sh").args(["-c", "exit 3"]), Out::Null).unwrap_err();
        assert!(e.to_string().contains("exit code 3"), "{e}");
    }
}
