//! Diagnostics as users get them. One rendering whether a command found one problem or many:
//! each is its own report (code, message, snippet, help), and several end with a summary. The
//! same diagnostics as JSON lines for `--format json` (`code`, `severity`, `message`, `help`,
//! `file`, `line`, `column`), after cargo's `--message-format json`: one object per line on
//! stdout, tagged by `event` like `build --message-format json`, and a last `…-finished` line.

use std::fmt;

use miette::{Diagnostic, ReportHandler, Severity};
use schemars::JsonSchema;
use serde::Serialize;

use crate::commands::why::Why;
use crate::error::CliError;

/// The report handler of cargo-gear: miette's, except that the problems an error collects
/// are each rendered like a single one (no `Error:` prefix of miette's related diagnostics).
pub struct Handler(pub miette::GraphicalReportHandler);

impl ReportHandler for Handler {
    fn debug(&self, diagnostic: &dyn Diagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() || diagnostic.related().is_none() {
            return self.0.debug(diagnostic, f);
        }
        for one in each(diagnostic) {
            self.0.debug(one, f)?;
            writeln!(f)?;
        }
        self.0.debug(&Summary(diagnostic.to_string()), f)
    }
}

/// The diagnostics a diagnostic stands for: its related ones (recursively), else itself.
pub fn each(diagnostic: &dyn Diagnostic) -> Vec<&dyn Diagnostic> {
    match diagnostic.related() {
        Some(related) => related.flat_map(each).collect(),
        None => vec![diagnostic],
    }
}

/// The last line of many problems: "2 problems found".
#[derive(Debug)]
struct Summary(String);

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Summary {}

impl Diagnostic for Summary {}

/// One line of the JSON output of `validate --format json` and `why --format json`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JsonLine {
    /// A problem found.
    Diagnostic(JsonDiagnostic),
    /// `why`: everything known about the layer.
    Layer(Box<Why>),
    /// The last line of `validate`.
    ValidateFinished(Finished),
    /// The last line of `why`.
    WhyFinished(Finished),
}

/// A diagnostic, as in the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct JsonDiagnostic {
    /// `gear::kebab-case`, e.g. `gear::unknown-parent`; null for an error without one.
    pub code: Option<String>,
    pub severity: JsonSeverity,
    /// What is wrong, with every cause.
    pub message: String,
    /// What to change.
    pub help: Option<String>,
    /// The file, relative to the workspace root when inside it.
    pub file: Option<String>,
    /// 1-based line in `file`.
    pub line: Option<usize>,
    /// 1-based column in `line`, as in the terminal's `╭─[file:line:column]`.
    pub column: Option<usize>,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonSeverity {
    Error,
    Warning,
    Advice,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Finished {
    /// No errors.
    pub success: bool,
    /// Diagnostics of severity `error`.
    pub errors: usize,
    /// Diagnostics of severity `warning`.
    pub warnings: usize,
}

impl JsonDiagnostic {
    /// One diagnostic (not one with related ones: see [`each`]).
    pub fn new(d: &dyn Diagnostic) -> JsonDiagnostic {
        let severity = match d.severity() {
            Some(Severity::Error) | None => JsonSeverity::Error,
            Some(Severity::Warning) => JsonSeverity::Warning,
            Some(Severity::Advice) => JsonSeverity::Advice,
        };
        let (file, line, column) = location(d);
        JsonDiagnostic {
            code: d.code().map(|c| c.to_string()),
            severity,
            message: crate::error::chain(d),
            help: d.help().map(|h| h.to_string()),
            file,
            line,
            column,
        }
    }
}

/// The file of a diagnostic's source, and the line and column of its first label.
fn location(d: &dyn Diagnostic) -> (Option<String>, Option<usize>, Option<usize>) {
    let Some(source) = d.source_code() else {
        return (None, None, None);
    };
    let file = source
        .read_span(&(0..0).into(), 0, 0)
        .ok()
        .and_then(|c| c.name().map(str::to_string));
    let Some(span) = d.labels().and_then(|mut l| l.next()).map(|l| *l.inner()) else {
        return (file, None, None);
    };
    // Where miette's report header puts it (`╭─[file:line:column]`).
    match source.read_span(&span, 0, 0) {
        Ok(contents) => (file, Some(contents.line() + 1), Some(contents.column() + 1)),
        Err(_) => (file, None, None),
    }
}

/// The diagnostics of a failed command, each as a JSON line, and how it ended.
pub fn json_lines(error: &dyn Diagnostic) -> (Vec<JsonLine>, Finished) {
    let diagnostics: Vec<JsonDiagnostic> =
        each(error).into_iter().map(JsonDiagnostic::new).collect();
    let count = |s| diagnostics.iter().filter(|d| d.severity == s).count();
    let finished = Finished {
        success: count(JsonSeverity::Error) == 0,
        errors: count(JsonSeverity::Error),
        warnings: count(JsonSeverity::Warning),
    };
    (
        diagnostics.into_iter().map(JsonLine::Diagnostic).collect(),
        finished,
    )
}

/// Writes JSON lines on stdout.
pub fn print(lines: &[JsonLine]) {
    let mut text = String::new();
    for line in lines {
        text.push_str(&serde_json::to_string(line).expect("JSON lines serialize"));
        text.push('\n');
    }
    crate::output::stdout(&text);
}

/// The JSON Schema of one line of the JSON output (pretty, with a trailing newline).
pub fn json_schema() -> String {
    let mut text = serde_json::to_string_pretty(&schemars::schema_for!(JsonLine))
        .expect("the schema serializes");
    text.push('\n');
    text
}

/// A command's `--format json` output: its own lines when it succeeded, else the diagnostics
/// of its failure, then how it ended (`finished`). A failure still fails the command, with
/// a short error on stderr: the diagnostics themselves are on stdout.
pub fn json_command(
    result: Result<Vec<JsonLine>, CliError>,
    finished: fn(Finished) -> JsonLine,
) -> Result<(), CliError> {
    let (mut lines, end, failure) = match result {
        Ok(lines) => (
            lines,
            Finished {
                success: true,
                errors: 0,
                warnings: 0,
            },
            None,
        ),
        Err(e) => {
            let (lines, end) = json_lines(&e);
            (lines, end, Some(e))
        }
    };
    lines.push(finished(end));
    print(&lines);
    match failure {
        None => Ok(()),
        Some(e) => Err(CliError::CheckFailed {
            message: e.to_string(),
            help: "the diagnostics are the JSON lines on stdout".into(),
        }),
    }
}
