//! Where output goes: data on stdout, people on stderr, colored like cargo when allowed.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Effects, Style};

use crate::cli::ColorChoice;

/// Output settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Color on stderr.
    pub color: bool,
    /// Status lines suppressed.
    pub quiet: bool,
}

impl Output {
    /// Decides coloring from `--color`/`CARGO_TERM_COLOR`, `NO_COLOR` and whether stderr is a terminal.
    pub fn new(choice: Option<ColorChoice>, quiet: bool) -> Output {
        let color = match choice {
            Some(ColorChoice::Always) => true,
            Some(ColorChoice::Never) => false,
            Some(ColorChoice::Auto) | None => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        };
        Output { color, quiet }
    }

    /// A cargo-style status line on stderr: a right-aligned green verb, then the message.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.quiet {
            return;
        }
        let style = Style::new()
            .fg_color(Some(AnsiColor::Green.into()))
            .effects(Effects::BOLD);
        self.line(style, verb, message);
    }

    /// A red status line, for failures.
    pub fn status_failed(&self, verb: &str, message: impl std::fmt::Display) {
        let style = Style::new()
            .fg_color(Some(AnsiColor::Red.into()))
            .effects(Effects::BOLD);
        self.line(style, verb, message);
    }

    /// An error on stderr.
    pub fn error(&self, message: impl std::fmt::Display) {
        let style = Style::new()
            .fg_color(Some(AnsiColor::Red.into()))
            .effects(Effects::BOLD);
        self.prefixed(style, "error", message);
    }

    /// A note on stderr (not shown with --quiet).
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let style = Style::new()
                .fg_color(Some(AnsiColor::Cyan.into()))
                .effects(Effects::BOLD);
            self.prefixed(style, "note", message);
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, message: impl std::fmt::Display) {
        let style = Style::new()
            .fg_color(Some(AnsiColor::Yellow.into()))
            .effects(Effects::BOLD);
        self.prefixed(style, "warning", message);
    }

    fn line(&self, style: Style, verb: &str, message: impl std::fmt::Display) {
        if self.color {
            stderr(&format!("{style}{verb:>12}{style:#} {message}\n"));
        } else {
            stderr(&format!("{verb:>12} {message}\n"));
        }
    }

    fn prefixed(&self, style: Style, prefix: &str, message: impl std::fmt::Display) {
        if self.color {
            stderr(&format!("{style}{prefix}{style:#}: {message}\n"));
        } else {
            stderr(&format!("{prefix}: {message}\n"));
        }
    }
}

/// Writes data to stdout. A closed pipe (`cargo gear plan | head`) ends the process
/// quietly with exit code 0, like ripgrep.
pub fn stdout(data: &str) {
    let mut out = std::io::stdout().lock();
    let result = out.write_all(data.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        stderr(&format!("error: cannot write to stdout: {e}\n"));
        std::process::exit(1);
    }
}

/// Writes messages for people to stderr, never panicking (unlike `eprintln!`). When stderr
/// is closed or unwritable (`cargo gear validate 2>&1 | head -1`) nobody reads them: they
/// are dropped and the command goes on, and ends with its own exit code.
pub fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
