//! Problems found in Gear.toml files, as miette diagnostics pointing into the source.
//!
//! A [`Problem`] is one finding (a file, a span, a message, a help line telling the user
//! what to change); [`Problems`] collects every finding of a run so they are all
//! reported at once, not just the first.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, NamedSource, SourceCode, SourceSpan, SpanContents,
};

/// A Gear.toml as read from disk, kept for spans in diagnostics.
#[derive(Debug)]
pub struct SourceFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Path shown to the user (relative to the workspace root).
    pub display: String,
    named: NamedSource<String>,
    /// The parsed document, parsed once: spans, the loader and the checks all read it.
    doc: Result<toml_edit::Document<String>, toml_edit::TomlError>,
}

impl SourceFile {
    /// Wraps a file's text; `display` is how the path is shown in messages.
    pub fn new(path: PathBuf, display: String, text: String) -> Arc<Self> {
        let doc = toml_edit::Document::parse(text.clone());
        let named = NamedSource::new(display.clone(), text).with_language("toml");
        Arc::new(SourceFile {
            path,
            display,
            named,
            doc,
        })
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        self.named.inner()
    }

    /// The file parsed as a TOML document, or why it is not one.
    pub fn document(&self) -> Result<&toml_edit::Document<String>, &toml_edit::TomlError> {
        self.doc.as_ref()
    }

    /// Span of the value at `keys` (e.g. `["gear", "config", "n", "default"]`), falling
    /// back to the nearest ancestor that exists.
    pub fn value_span(&self, keys: &[&str]) -> Option<SourceSpan> {
        self.span(keys, false)
    }

    /// Span of the key at the end of `keys` (e.g. the name of an unknown field).
    pub fn key_span(&self, keys: &[&str]) -> Option<SourceSpan> {
        self.span(keys, true)
    }

    fn span(&self, keys: &[&str], want_key: bool) -> Option<SourceSpan> {
        /// Where the walk is: an item, a table of an array of tables, or an array element.
        enum Node<'a> {
            Item(&'a toml_edit::Item),
            Table(&'a toml_edit::Table),
            Value(&'a toml_edit::Value),
        }
        let doc = self.doc.as_ref().ok()?;
        let mut node = Node::Item(doc.as_item());
        let mut best = None;
        for (i, key) in keys.iter().enumerate() {
            let last = i + 1 == keys.len();
            let array = match node {
                Node::Item(toml_edit::Item::ArrayOfTables(a)) => {
                    let t = a.get(key.parse().ok()?)?;
                    best = t.span().or(best);
                    node = Node::Table(t);
                    continue;
                }
                Node::Item(item) => item.as_array(),
                Node::Value(v) => v.as_array(),
                Node::Table(_) => None,
            };
            if let Some(array) = array {
                let v = array.get(key.parse().ok()?)?;
                best = v.span().or(best);
                node = Node::Value(v);
                continue;
            }
            let table: &dyn toml_edit::TableLike = match node {
                Node::Item(item) => item.as_table_like()?,
                Node::Table(t) => t,
                Node::Value(v) => v.as_inline_table()?,
            };
            let (k, next) = table.get_key_value(key)?;
            best = if last && want_key {
                k.span()
            } else {
                next.span().or_else(|| k.span())
            };
            node = Node::Item(next);
        }
        best.map(|r| SourceSpan::from(r.start..r.end))
    }

    /// Span of the `n`th element of the array at `keys`.
    pub fn array_item_span(&self, keys: &[&str], n: usize) -> Option<SourceSpan> {
        let n = n.to_string();
        let mut path = keys.to_vec();
        path.push(&n);
        self.value_span(&path)
    }

    /// `span` as miette is given it: unchanged, unless it lies on or next to a long line
    /// ([`Window`]); then only its start on its first line, at most [`WINDOW_SPAN`] bytes.
    fn drawable(&self, span: SourceSpan) -> SourceSpan {
        match Window::of(self.text(), span) {
            Some(w) => (w.start..w.end).into(),
            None => span,
        }
    }
}

/// What miette is shown of a Gear.toml: the file, but a long line only around the span
/// (see [`Window`]), with its real line and column numbers.
impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text = self.text();
        let Some(w) = Window::of(text, *span) else {
            return self
                .named
                .read_span(span, context_lines_before, context_lines_after);
        };
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.display.clone(),
                &text.as_bytes()[w.from..w.to],
                (w.from..w.to).into(),
                w.line,
                w.start - w.line_start,
                1,
            )
            .with_language("toml"),
        ))
    }
}

/// Lines longer than this many bytes are not handed to miette whole. Its graphical
/// renderer pads a label to its column with a `format!` width, which panics past 65,535
/// ("Formatting argument out of range"), and a tab counts four columns; a line that long
/// is unreadable in a terminal anyway.
const LONG_LINE: usize = 1_000;
/// How much of a long line a window shows before the span, of the span, and after it (bytes).
const WINDOW_BEFORE: usize = 40;
const WINDOW_SPAN: usize = 80;
const WINDOW_AFTER: usize = 20;

/// The part of a long line shown for a span that lies on, or next to, a line longer than
/// [`LONG_LINE`] (miette shows one line of context on each side): the span's first line
/// alone, from a little before the span to a little after it. Byte offsets into the file.
#[derive(Debug, PartialEq, Eq)]
struct Window {
    /// Where the span's first line starts.
    line_start: usize,
    /// 0-based number of that line.
    line: usize,
    /// The span, cut to its first line and to [`WINDOW_SPAN`] bytes.
    start: usize,
    end: usize,
    /// What is shown of the line.
    from: usize,
    to: usize,
}

impl Window {
    /// The window for `span` of `text`, or None when miette can draw the lines around it.
    fn of(text: &str, span: SourceSpan) -> Option<Window> {
        let start = char_floor(text, span.offset().min(text.len()));
        let end = span.offset().saturating_add(span.len()).min(text.len());
        let end = char_floor(text, end).max(start);
        let line_start = start_of_line(text, start);
        let around = start_of_line(text, line_start.saturating_sub(1));
        let around_end = end_of_line(text, (end_of_line(text, end) + 1).min(text.len()));
        if text[around..around_end]
            .split('\n')
            .all(|line| line.len() <= LONG_LINE)
        {
            return None;
        }
        let line_end = end_of_line(text, start);
        let end = char_floor(text, end.min(line_end).min(start + WINDOW_SPAN)).max(start);
        Some(Window {
            line_start,
            line: text[..line_start].matches('\n').count(),
            start,
            end,
            from: char_floor(text, start.saturating_sub(WINDOW_BEFORE).max(line_start)),
            to: char_floor(text, (end + WINDOW_AFTER).min(line_end)),
        })
    }
}

/// The largest char boundary of `text` at or before `offset`.
fn char_floor(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Where the line holding `offset` starts. Lines end at `\n` only: miette's renderer does
/// not break a line at a lone `\r`, so neither may the length of a line.
fn start_of_line(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// Where the line holding `offset` ends (at its `\n`, or the end of the text).
fn end_of_line(text: &str, offset: usize) -> usize {
    text[offset..].find('\n').map_or(text.len(), |i| offset + i)
}

/// The report handler cargo-gear prints diagnostics with: miette's graphical one, unicode,
/// 100 columns, no terminal links, ANSI colors when `color`.
pub fn report_handler(color: bool) -> GraphicalReportHandler {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
}

/// `diagnostic` as [`report_handler`] prints it.
pub fn render(diagnostic: &dyn Diagnostic, color: bool) -> Result<String, fmt::Error> {
    let mut out = String::new();
    report_handler(color).render_report(&mut out, diagnostic)?;
    Ok(out)
}

/// One finding: what is wrong, where, and what to do about it.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Stable machine-readable code, e.g. `gear::unknown-parent`.
    pub code: &'static str,
    /// One line saying what is wrong.
    pub message: String,
    /// The file it is in, when there is one.
    pub file: Option<Arc<SourceFile>>,
    /// Where in the file.
    pub span: Option<SourceSpan>,
    /// Text of the label at the span.
    pub label: Option<String>,
    /// What to change.
    pub help: Option<String>,
}

impl Problem {
    /// A problem with a message and no location yet.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
            file: None,
            span: None,
            label: None,
            help: None,
        }
    }

    /// Points the problem at a span of a file.
    pub fn at(mut self, file: &Arc<SourceFile>, span: Option<SourceSpan>) -> Self {
        self.file = Some(file.clone());
        self.span = span;
        self
    }

    /// Labels the span.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Says what to change.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `path:line:column` of the problem, when it has a location.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        let Some(span) = self.span else {
            return Some(file.display.clone());
        };
        let (line, col) = line_col(file.text(), span.offset());
        Some(format!("{}:{line}:{col}", file.display))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The message alone: the location is shown by the source snippet ([`Problem::location`]
/// gives it as text).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.file.as_deref().map(|f| f as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = match &self.file {
            Some(file) => file.drawable(self.span?),
            None => self.span?,
        };
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            self.label.clone(),
            span,
        ))))
    }
}

/// Every problem found in one run.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Adds one.
    pub fn push(&mut self, p: Problem) {
        self.0.push(p);
    }

    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in the order found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// Each problem, in the order found.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was found, the problems otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p])
    }
}

impl From<Vec<Problem>> for Problems {
    fn from(problems: Vec<Problem>) -> Self {
        Problems(problems)
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl Extend<Problems> for Problems {
    fn extend<I: IntoIterator<Item = Problems>>(&mut self, iter: I) {
        for more in iter {
            self.0.extend(more.0);
        }
    }
}

impl FromIterator<Problem> for Problems {
    fn from_iter<I: IntoIterator<Item = Problem>>(iter: I) -> Self {
        Problems(iter.into_iter().collect())
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "{}", self.0[0]),
            n => write!(f, "{n} problems found"),
        }
    }
}

impl std::error::Error for Problems {}

impl Diagnostic for Problems {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (self.0.len() == 1).then(|| Box::new(self.0[0].code) as Box<dyn fmt::Display>)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.0.len() == 1 {
            Diagnostic::help(&self.0[0])
        } else {
            None
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.0.len() == 1 {
            Diagnostic::source_code(&self.0[0])
        } else {
            None
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.0.len() == 1 {
            Diagnostic::labels(&self.0[0])
        } else {
            None
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.len() == 1 {
            None
        } else {
            Some(Box::new(self.0.iter().map(|p| p as &dyn Diagnostic)))
        }
    }
}

/// The closest candidate to `word`, for "did you mean" help.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Shows `path` relative to `root` when it is inside it.
pub fn display_path(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// A file name or path as shown in a message or a progress line: control characters
/// (tab, newline, escape…) written as Rust escapes (`\t`, `\n`, `\u{1b}`), so that a name
/// cannot break or forge a line. Everything else is kept as is.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("app/main.py"), "app/main.py");
        assert_eq!(escape_controls("ünï cödé/x y"), "ünï cödé/x y");
        assert_eq!(
            escape_controls("a\tb\nc\rd\u{1b}[31me\u{7f}"),
            "a\\tb\\nc\\rd\\u{1b}[31me\\u{7f}"
        );
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
