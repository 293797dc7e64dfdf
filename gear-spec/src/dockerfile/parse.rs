//! Reading an existing Dockerfile, instruction by instruction, as BuildKit's parser splits it
//! (`moby/buildkit/frontend/dockerfile/parser`): parser directives (`# escape=`), comments,
//! line continuations (with comment and blank lines inside them), case-insensitive keywords,
//! leading `--flags`, JSON (exec) form and heredocs, each instruction with its lines and
//! byte range. Plus the small word lexer `cargo gear import` decides things with: `k=v` and
//! legacy `k v` pairs, quotes, `$VAR`/`${VAR}`/`${VAR:-default}` expansion.
//!
//! It splits, it does not evaluate: arguments keep their text, heredoc bodies are kept raw
//! (BuildKit strips the tabs of a `<<-` body when it runs it, not when it parses it).
//! `gear-spec/tests/dockerfile_oracle.rs` compares it with BuildKit's own parse of every
//! fixture (golden files made by `cargo xtask dockerfile-oracle`).

use std::ops::Range;

use indexmap::IndexMap;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character: `\` unless a `# escape=` directive says `` ` ``.
    pub escape: char,
    /// The parser directives of the leading comment block (`escape`, `syntax`, `check`).
    pub directives: Vec<Directive>,
    /// The instructions, in order.
    pub instructions: Vec<Instruction>,
}

/// A parser directive, `# name=value` before the first instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The keyword, upper-cased (`RUN`).
    pub keyword: String,
    /// The keyword as written (`Run`).
    pub written: String,
    /// First line, 1-based.
    pub start_line: usize,
    /// Last line, 1-based, inclusive (the end of the last heredoc body when it has some).
    pub end_line: usize,
    /// Byte range in the file: from the start of the first line to the end of the last.
    pub span: Range<usize>,
    /// Leading `--name[=value]` flags of FROM, RUN, COPY, ADD and HEALTHCHECK, as written.
    pub flags: Vec<String>,
    /// The rest of the logical line after keyword and flags, continuations joined, trimmed.
    pub args: String,
    /// The logical line as BuildKit's `original`: keyword, flags and arguments as written,
    /// continuations joined, without heredoc bodies.
    pub original: String,
    /// The exec (JSON) form, when `args` is a JSON array of strings.
    pub exec: Option<Vec<String>>,
    /// Heredocs (RUN, COPY, ADD), in order.
    pub heredocs: Vec<Heredoc>,
    /// The physical lines of the instruction as written (CR and newline removed), without
    /// the comment and blank lines inside its continuations and without heredoc bodies.
    pub lines: Vec<String>,
    /// The comment lines right before it (after the previous instruction), `#` removed.
    pub comments: Vec<String>,
}

/// A heredoc of an instruction: `<<EOF` … `EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// `<<-`: the terminator (and, when run, the body) may be indented with tabs.
    pub strip_tabs: bool,
    /// `<<"EOF"` or `<<'EOF'`: no expansion in the body.
    pub quoted: bool,
    /// The body, raw, each line with its `\n`.
    pub content: String,
}

/// Why a Dockerfile cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("line {line}: the escape directive takes `\\` or `` ` ``, not `{value}`")]
    InvalidEscape {
        /// 1-based line.
        line: usize,
        /// What it gave.
        value: String,
    },
    /// The same directive twice.
    #[error("line {line}: the `{name}` directive is given twice")]
    DuplicateDirective {
        /// 1-based line of the second one.
        line: usize,
        /// Its name.
        name: String,
    },
    /// A heredoc whose terminator never comes.
    #[error("line {line}: heredoc `<<{name}` is not terminated: no line `{name}` follows")]
    UnterminatedHeredoc {
        /// 1-based line of the instruction.
        line: usize,
        /// The delimiter.
        name: String,
    },
}

impl ParseError {
    /// The 1-based line it is about.
    pub fn line(&self) -> usize {
        match self {
            ParseError::InvalidEscape { line, .. }
            | ParseError::DuplicateDirective { line, .. }
            | ParseError::UnterminatedHeredoc { line, .. } => *line,
        }
    }
}

/// The keywords whose leading `--flags` BuildKit reads.
const FLAGGED: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];

/// The keywords that take heredocs.
const HEREDOC: &[&str] = &["RUN", "COPY", "ADD"];

/// The directives BuildKit knows; others are comments.
const DIRECTIVES: &[&str] = &["syntax", "escape", "check"];

/// One physical line: where it starts and its text without `\r\n`.
struct Line<'a> {
    start: usize,
    end: usize,
    text: &'a str,
}

/// Splits `text` into instructions.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        lines.push(Line {
            start: offset,
            end: offset + raw.len(),
            text: body,
        });
        offset += raw.len();
    }
    let (escape, directives, mut i) = directives(&lines)?;
    let continued = |l: &str| -> Option<usize> {
        let t = l.trim_end_matches([' ', '\t']);
        t.ends_with(escape).then(|| t.len() - escape.len_utf8())
    };
    let mut instructions = Vec::new();
    let mut comments = Vec::new();
    while i < lines.len() {
        let first = &lines[i];
        let trimmed = first.text.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            comments.push(comment.strip_prefix(' ').unwrap_or(comment).to_string());
            i += 1;
            continue;
        }
        if trimmed.is_empty() {
            i += 1;
            continue;
        }
        let start_line = i + 1;
        let mut logical = String::new();
        let mut physical = Vec::new();
        loop {
            let line = lines[i].text;
            physical.push(line.to_string());
            i += 1;
            let Some(end) = continued(line) else {
                logical.push_str(line);
                break;
            };
            logical.push_str(&line[..end]);
            // Comment and blank lines inside a continuation are dropped.
            while i < lines.len() {
                let t = lines[i].text.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    i += 1;
                } else {
                    break;
                }
            }
            if i >= lines.len() {
                break;
            }
        }
        let logical = logical.trim_start();
        let (written, rest) = logical.split_once([' ', '\t']).unwrap_or((logical, ""));
        let keyword = written.to_ascii_uppercase();
        let mut rest = rest.trim_start();
        let mut flags = Vec::new();
        if FLAGGED.contains(&keyword.as_str()) {
            while rest.starts_with("--") {
                let (flag, more) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
                flags.push(flag.to_string());
                rest = more.trim_start();
            }
        }
        let args = rest.trim_end().to_string();
        let exec = args
            .starts_with('[')
            .then(|| serde_json::from_str::<Vec<String>>(&args).ok())
            .flatten();
        let mut heredocs = Vec::new();
        if exec.is_none() && HEREDOC.contains(&keyword.as_str()) {
            for (name, strip_tabs, quoted) in heredoc_names(&args) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let line = lines[i].text;
                    i += 1;
                    let cmp = if strip_tabs {
                        line.trim_start_matches('\t')
                    } else {
                        line
                    };
                    if cmp == name {
                        closed = true;
                        break;
                    }
                    content.push_str(line);
                    content.push('\n');
                }
                if !closed {
                    return Err(ParseError::UnterminatedHeredoc {
                        line: start_line,
                        name,
                    });
                }
                heredocs.push(Heredoc {
                    name,
                    strip_tabs,
                    quoted,
                    content,
                });
            }
        }
        instructions.push(Instruction {
            keyword,
            written: written.to_string(),
            start_line,
            end_line: i,
            span: first.start..lines[i - 1].end,
            flags,
            args,
            original: logical.to_string(),
            exec,
            heredocs,
            lines: physical,
            comments: std::mem::take(&mut comments),
        });
    }
    Ok(Dockerfile {
        escape,
        directives,
        instructions,
    })
}

/// The parser directives of the leading comment block: the escape character, the
/// directives, and the index of the first line after them.
fn directives(lines: &[Line<'_>]) -> Result<(char, Vec<Directive>, usize), ParseError> {
    let mut escape = '\\';
    let mut found: Vec<Directive> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(comment) = lines[i].text.trim().strip_prefix('#') else {
            break;
        };
        let Some((name, value)) = comment.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(char::is_whitespace) {
            break;
        }
        if DIRECTIVES.contains(&name.as_str()) {
            let value = value.trim().to_string();
            if found.iter().any(|d| d.name == name) {
                return Err(ParseError::DuplicateDirective { line: i + 1, name });
            }
            if name == "escape" {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(ParseError::InvalidEscape { line: i + 1, value }),
                };
            }
            found.push(Directive {
                name,
                value,
                line: i + 1,
            });
        }
        i += 1;
    }
    Ok((escape, found, i))
}

/// The heredoc words of an instruction's arguments, outside quotes: `<<EOF`, `<<-EOF`,
/// `<<"EOF"`, `<<'EOF'` as (name, strip tabs, quoted).
fn heredoc_names(args: &str) -> Vec<(String, bool, bool)> {
    let b = args.as_bytes();
    let mut out = Vec::new();
    let (mut single, mut double) = (false, false);
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'<' if !single
                && !double
                && (k == 0 || b[k - 1] != b'<')
                && b.get(k + 1) == Some(&b'<')
                && b.get(k + 2) != Some(&b'<') =>
            {
                let mut j = k + 2;
                let strip = b.get(j) == Some(&b'-');
                if strip {
                    j += 1;
                }
                let quote = b.get(j).copied().filter(|c| *c == b'"' || *c == b'\'');
                if quote.is_some() {
                    j += 1;
                }
                let start = j;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j > start {
                    out.push((args[start..j].to_string(), strip, quote.is_some()));
                    if quote.is_some() {
                        j += 1;
                    }
                }
                k = j;
                continue;
            }
            _ => {}
        }
        k += 1;
    }
    out
}

impl Instruction {
    /// The text after the keyword as written, over its lines: the first line without its
    /// keyword and flags, the continuation lines as indented, and a continuation
    /// at the very end of the file removed. With the `\` escape, the lines keep their `\`
    /// (a shell reads it the same); with `` ` ``, the logical line.
    pub fn body_lines(&self, escape: char) -> String {
        if escape != '\\' || self.lines.len() < 2 {
            return self.args.clone();
        }
        let mut out: Vec<&str> = Vec::with_capacity(self.lines.len());
        for (n, line) in self.lines.iter().enumerate() {
            let line = line.trim_end();
            if n == 0 {
                // Drop the keyword and the flags, which are words of the first line.
                let mut rest = line.trim_start();
                rest = rest
                    .split_once([' ', '\t'])
                    .map_or("", |(_, r)| r.trim_start());
                for _ in &self.flags {
                    rest = rest
                        .split_once([' ', '\t'])
                        .map_or("", |(_, r)| r.trim_start());
                }
                out.push(rest);
            } else {
                out.push(line);
            }
        }
        if let Some(last) = out.last_mut()
            && let Some(stripped) = last.strip_suffix('\\')
        {
            *last = stripped.trim_end();
        }
        out.retain(|l| !l.trim().is_empty() && l.trim() != "\\");
        out.join("\n")
    }

    /// The value of flag `--name` (`--from=build` → `build`), `""` for a bare `--name`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().find_map(|f| {
            let f = f.strip_prefix("--")?;
            match f.split_once('=') {
                Some((n, v)) if n.eq_ignore_ascii_case(name) => Some(v),
                None if f.eq_ignore_ascii_case(name) => Some(""),
                _ => None,
            }
        })
    }
}

/// A word of an instruction's arguments after the lexer: quotes and escapes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, unquoted.
    pub text: String,
    /// Whether a `$` in `text` was quoted (`'$HOME'`, `\$HOME`): Docker does not expand
    /// it, where an unquoted `$` is expanded.
    pub literal_dollar: bool,
}

/// Splits `args` into words at unquoted whitespace, removing quotes and escapes as
/// BuildKit's shell lexer does (a `'…'` is literal; in `"…"` the escape character escapes
/// only `"`, `$`, the escape itself; elsewhere it escapes any character). `$` references
/// are kept as written.
pub fn words(args: &str, escape: char) -> Vec<Word> {
    let mut out = Vec::new();
    let mut word = Word {
        text: String::new(),
        literal_dollar: false,
    };
    let mut started = false;
    let mut chars = args.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if started {
                    out.push(std::mem::replace(
                        &mut word,
                        Word {
                            text: String::new(),
                            literal_dollar: false,
                        },
                    ));
                    started = false;
                }
            }
            '\'' => {
                started = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.literal_dollar |= c == '$';
                    word.text.push(c);
                }
            }
            '"' => {
                started = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        c if c == escape => match chars.peek() {
                            Some(&n) if n == '"' || n == '$' || n == escape => {
                                word.literal_dollar |= n == '$';
                                word.text.push(n);
                                chars.next();
                            }
                            _ => word.text.push(c),
                        },
                        c => word.text.push(c),
                    }
                }
            }
            c if c == escape => {
                started = true;
                if let Some(n) = chars.next() {
                    word.literal_dollar |= n == '$';
                    word.text.push(n);
                }
            }
            c => {
                started = true;
                word.text.push(c);
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// A `name=value` pair of ENV, ARG or LABEL, the value unquoted; `None` for an ARG without
/// a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The name.
    pub name: String,
    /// The value, when given.
    pub value: Option<String>,
    /// See [`Word::literal_dollar`].
    pub literal_dollar: bool,
}

/// The pairs of an ENV, ARG or LABEL instruction: `k=v k2="v 2"`, or the legacy
/// `k v with spaces` form (ENV and LABEL: one name, the rest of the line its value).
pub fn pairs(instruction: &Instruction, escape: char) -> Vec<Pair> {
    let all = words(&instruction.args, escape);
    let legacy = instruction.keyword != "ARG"
        && !all.is_empty()
        && !raw_first_word(&instruction.args).contains('=');
    if legacy {
        let args = instruction.args.trim_start();
        let (name, rest) = args.split_once([' ', '\t']).unwrap_or((args, ""));
        let value = words(rest, escape);
        let literal_dollar = value.iter().any(|w| w.literal_dollar);
        // The legacy value is the rest of the line; the lexer removes its quotes but keeps
        // the spaces between its words.
        let text = if value.len() <= 1 {
            value.into_iter().map(|w| w.text).collect()
        } else {
            unquote_keeping_spaces(rest.trim(), escape)
        };
        return vec![Pair {
            name: name.to_string(),
            value: Some(text),
            literal_dollar,
        }];
    }
    all.into_iter()
        .map(|w| match w.text.split_once('=') {
            Some((name, value)) => Pair {
                name: name.to_string(),
                value: Some(value.to_string()),
                literal_dollar: w.literal_dollar,
            },
            None => Pair {
                name: w.text,
                value: None,
                literal_dollar: w.literal_dollar,
            },
        })
        .collect()
}

/// The first whitespace-separated word of `args` as written.
fn raw_first_word(args: &str) -> &str {
    args.split_whitespace().next().unwrap_or("")
}

/// `text` with its quotes and escapes removed but its whitespace kept.
fn unquote_keeping_spaces(text: &str, escape: char) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let end = word_end(rest, escape);
        out.extend(words(&rest[..end], escape).into_iter().map(|w| w.text));
        rest = &rest[end..];
    }
    out
}

/// Where the first word of `text` (which starts with one) ends.
fn word_end(text: &str, escape: char) -> usize {
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => return i,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), _) => {}
            (_, c) if c == escape => {
                chars.next();
            }
            _ => {}
        }
    }
    text.len()
}

/// The image and stage name of a FROM: `FROM [--platform=…] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image reference as written (may hold `$VAR`).
    pub image: String,
    /// The stage name after `AS`.
    pub alias: Option<String>,
}

/// Reads a FROM instruction.
pub fn from(instruction: &Instruction, escape: char) -> From {
    let w = words(&instruction.args, escape);
    let image = w.first().map(|w| w.text.clone()).unwrap_or_default();
    let alias = match w.get(1) {
        Some(kw) if kw.text.eq_ignore_ascii_case("as") => w.get(2).map(|w| w.text.clone()),
        _ => None,
    };
    From { image, alias }
}

/// The sources and destination of a COPY or ADD (exec or shell form); `None` without at
/// least one source and a destination.
pub fn copy_paths(instruction: &Instruction, escape: char) -> Option<(Vec<Word>, Word)> {
    let mut all = match &instruction.exec {
        Some(exec) => exec
            .iter()
            .map(|s| Word {
                text: s.clone(),
                literal_dollar: false,
            })
            .collect(),
        None => words(&instruction.args, escape),
    };
    let dest = all.pop()?;
    (!all.is_empty()).then_some((all, dest))
}

/// `text` with its `$VAR`, `${VAR}`, `${VAR:-default}` (and `${VAR-default}`,
/// `${VAR:+alt}`, `${VAR+alt}`) references expanded from `vars`. `None` when it refers to
/// a variable `vars` does not know and gives no default: the image may define it, so the
/// value is not known here. For decisions only; steps keep the text as written.
pub fn expand(text: &str, vars: &IndexMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            let mut inner = String::new();
            let mut closed = false;
            let mut depth = 0;
            for c in chars.by_ref() {
                match c {
                    '}' if depth == 0 => {
                        closed = true;
                        break;
                    }
                    '}' => depth -= 1,
                    '{' => depth += 1,
                    _ => {}
                }
                inner.push(c);
            }
            if !closed {
                return None;
            }
            let split = inner.find([':', '-', '+']).unwrap_or(inner.len());
            let (name, op) = inner.split_at(split);
            let value = vars.get(name);
            let set_nonempty = value.is_some_and(|v| !v.is_empty());
            let expanded = match op {
                "" => value?.clone(),
                _ => {
                    let (colon, op) = match op.strip_prefix(':') {
                        Some(rest) => (true, rest),
                        None => (false, op),
                    };
                    let present = if colon { set_nonempty } else { value.is_some() };
                    match op.chars().next() {
                        Some('-') if present => value?.clone(),
                        Some('-') => expand(&op[1..], vars)?,
                        Some('+') if present => expand(&op[1..], vars)?,
                        Some('+') => String::new(),
                        _ => return None,
                    }
                }
            };
            out.push_str(&expanded);
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(vars.get(&name)?);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (keyword, start line, end line, flags, args) of each instruction.
    fn shape(text: &str) -> Vec<(String, usize, usize, Vec<String>, String)> {
        parse(text)
            .unwrap()
            .instructions
            .into_iter()
            .map(|i| (i.keyword, i.start_line, i.end_line, i.flags, i.args))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splitting_rules() {
        type Row = (
            &'static str,
            Vec<(&'static str, usize, usize, &'static str)>,
        );
        let table: Vec<Row> = vec![
            (
                "FROM a\nRUN b\n",
                vec![("FROM", 1, 1, "a"), ("RUN", 2, 2, "b")],
            ),
            (
                "from a\nRun b",
                vec![("FROM", 1, 1, "a"), ("RUN", 2, 2, "b")],
            ),
            ("# c\n\n  FROM a  \n", vec![("FROM", 3, 3, "a")]),
            ("RUN a \\\n  b\n", vec![("RUN", 1, 2, "a   b")]),
            // trailing whitespace after the escape still continues
            ("RUN a \\  \n b\n", vec![("RUN", 1, 2, "a  b")]),
            // comment and blank lines inside a continuation are dropped
            (
                "RUN a \\\n# note\n\n  b\nRUN c\n",
                vec![("RUN", 1, 4, "a   b"), ("RUN", 5, 5, "c")],
            ),
            // CRLF
            (
                "FROM a\r\nRUN b \\\r\n c\r\n",
                vec![("FROM", 1, 1, "a"), ("RUN", 2, 3, "b  c")],
            ),
            // a continuation swallowing the next instruction, as BuildKit reads it
            (
                "RUN a \\\nENTRYPOINT [\"x\"]\n",
                vec![("RUN", 1, 2, "a ENTRYPOINT [\"x\"]")],
            ),
            // continuation at the end of the file
            ("RUN a \\\n", vec![("RUN", 1, 1, "a")]),
            // no final newline
            (
                "FROM a\nRUN b",
                vec![("FROM", 1, 1, "a"), ("RUN", 2, 2, "b")],
            ),
            // `#` inside an instruction is not a comment
            (
                "RUN echo # not a comment\n",
                vec![("RUN", 1, 1, "echo # not a comment")],
            ),
        ];
        for (text, expected) in table {
            let got: Vec<(String, usize, usize, String)> = shape(text)
                .into_iter()
                .map(|(k, a, b, _, args)| (k, a, b, args))
                .collect();
            let want: Vec<(String, usize, usize, String)> = expected
                .into_iter()
                .map(|(k, a, b, args)| (k.to_string(), a, b, args.to_string()))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn flags_and_exec_form() {
        let d = parse(
            "FROM --platform=linux/amd64 a AS b\nCOPY --link --chown=1:1 [\"a b\", \"/c d/\"]\nENV A=--x\nCMD [\"a\", 1]\nENTRYPOINT [\"/run\"]\n",
        )
        .unwrap();
        let i = &d.instructions;
        assert_eq!(i[0].flags, s(&["--platform=linux/amd64"]));
        assert_eq!(i[0].args, "a AS b");
        assert_eq!(i[1].flags, s(&["--link", "--chown=1:1"]));
        assert_eq!(i[1].exec, Some(s(&["a b", "/c d/"])));
        assert_eq!(i[1].flag("chown"), Some("1:1"));
        assert_eq!(i[1].flag("link"), Some(""));
        assert_eq!(i[1].flag("from"), None);
        // ENV takes no flags
        assert_eq!(i[2].flags, Vec::<String>::new());
        assert_eq!(i[2].args, "A=--x");
        // not an array of strings: shell form
        assert_eq!(i[3].exec, None);
        assert_eq!(i[4].exec, Some(s(&["/run"])));
        assert_eq!(
            i[1].original,
            "COPY --link --chown=1:1 [\"a b\", \"/c d/\"]"
        );
    }

    #[test]
    fn escape_directive() {
        let d = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN dir c:\\ `\n  && b\n")
            .unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.directives.len(), 2);
        assert_eq!(d.directives[1].line, 2);
        assert_eq!(d.instructions[1].args, "dir c:\\   && b");
        assert_eq!(d.instructions[1].end_line, 5);
        // directives only in the leading block: later it is a comment
        let d = parse("FROM a\n# escape=`\nRUN a `\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(d.instructions[1].args, "a `");
        // a non-directive comment ends the block
        let d = parse("# hello\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(d.escape, '\\');
        assert_eq!(
            parse("# escape=x\n").unwrap_err(),
            ParseError::InvalidEscape {
                line: 1,
                value: "x".into()
            }
        );
        assert_eq!(parse("# escape=`\n# Escape=`\n").unwrap_err().line(), 2);
    }

    #[test]
    fn heredocs() {
        let d = parse(
            "RUN <<EOF\necho hi\nEOF\nCOPY <<-\"A\" <<'B' /d/\n\tx $y\n\tA\nz\nB\nRUN echo '<<NO' \"<<NO\"\nRUN cat <<<here\nRUN [\"a\", \"<<NO\"]\n",
        )
        .unwrap();
        let i = &d.instructions;
        assert_eq!(i.len(), 5);
        assert_eq!((i[0].start_line, i[0].end_line), (1, 3));
        assert_eq!(i[0].heredocs[0].content, "echo hi\n");
        assert!(!i[0].heredocs[0].strip_tabs);
        assert_eq!((i[1].start_line, i[1].end_line), (4, 8));
        let names: Vec<_> = i[1]
            .heredocs
            .iter()
            .map(|h| (h.name.as_str(), h.strip_tabs, h.quoted, h.content.as_str()))
            .collect();
        // the body is raw: the tabs of a `<<-` body are kept
        assert_eq!(
            names,
            [("A", true, true, "\tx $y\n"), ("B", false, true, "z\n")]
        );
        assert!(i[2].heredocs.is_empty(), "quoted `<<` is no heredoc");
        assert!(i[3].heredocs.is_empty(), "`<<<` is a here-string");
        assert!(i[4].heredocs.is_empty(), "exec form has none");
        assert_eq!(
            parse("FROM a\nRUN <<EOF\nx\n").unwrap_err(),
            ParseError::UnterminatedHeredoc {
                line: 2,
                name: "EOF".into()
            }
        );
    }

    #[test]
    fn spans_lines_and_comments() {
        let text = "# base\nFROM a\n\n# one\n# two\nRUN b \\\n  c\r\nUSER x";
        let d = parse(text).unwrap();
        let run = &d.instructions[1];
        assert_eq!(&text[run.span.clone()], "RUN b \\\n  c\r\n");
        assert_eq!(run.lines, s(&["RUN b \\", "  c"]));
        assert_eq!(run.comments, s(&["one", "two"]));
        assert_eq!(d.instructions[0].comments, s(&["base"]));
        assert_eq!(&text[d.instructions[2].span.clone()], "USER x");
    }

    #[test]
    fn body_lines_keep_continuations() {
        let d = parse(
            "RUN --network=none apt-get update && \\\n    apt-get install -y \\\n\n      zip \\\n",
        )
        .unwrap();
        assert_eq!(
            d.instructions[0].body_lines('\\'),
            "apt-get update && \\\n    apt-get install -y \\\n      zip"
        );
        let d = parse("# escape=`\nRUN a `\n  b\n").unwrap();
        assert_eq!(d.instructions[0].body_lines('`'), "a   b");
    }

    #[test]
    fn word_lexer() {
        let texts =
            |args: &str| -> Vec<String> { words(args, '\\').into_iter().map(|w| w.text).collect() };
        assert_eq!(
            texts("a  'b c' \"d \\\" e\" f\\ g"),
            s(&["a", "b c", "d \" e", "f g"])
        );
        assert_eq!(texts("\"${X}/y\" $Z"), s(&["${X}/y", "$Z"]));
        assert_eq!(texts("a\"b\"'c'"), s(&["abc"]));
        assert_eq!(texts("\"\""), s(&[""]));
        assert!(!words("$HOME", '\\')[0].literal_dollar);
        assert!(words("'$HOME'", '\\')[0].literal_dollar);
        assert!(words("\\$HOME", '\\')[0].literal_dollar);
        assert!(words("\"\\$HOME\"", '\\')[0].literal_dollar);
        assert_eq!(texts("\"a\\b\""), s(&["a\\b"]));
        assert_eq!(
            words("a` b", '`')
                .into_iter()
                .map(|w| w.text)
                .collect::<Vec<_>>(),
            s(&["a b"])
        );
    }

    #[test]
    fn env_arg_label_pairs() {
        let pairs_of = |line: &str| -> Vec<(String, Option<String>)> {
            let d = parse(line).unwrap();
            pairs(&d.instructions[0], d.escape)
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect()
        };
        let p = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
        assert_eq!(
            pairs_of("ENV A=1 B=\"2 3\" C='$x'"),
            [p("A", "1"), p("B", "2 3"), p("C", "$x")]
        );
        assert_eq!(
            pairs_of("ENV FLYWHEEL /flywheel/v0"),
            [p("FLYWHEEL", "/flywheel/v0")]
        );
        assert_eq!(
            pairs_of("ENV REQ \"/etc/ssl/x.crt\""),
            [p("REQ", "/etc/ssl/x.crt")]
        );
        assert_eq!(
            pairs_of("ENV MSG hello   \"big\"  world"),
            [p("MSG", "hello   big  world")]
        );
        assert_eq!(
            pairs_of("ENV A=1 \\\n  B=\"${A}/x\""),
            [p("A", "1"), p("B", "${A}/x")]
        );
        assert_eq!(
            pairs_of("LABEL maintainer=\"support@flywheel.io\""),
            [p("maintainer", "support@flywheel.io")]
        );
        assert_eq!(
            pairs_of("LABEL description This is it"),
            [p("description", "This is it")]
        );
        assert_eq!(
            pairs_of("ARG A B=2"),
            [("A".to_string(), None), p("B", "2")]
        );
        let d = parse("ENV A '$HOME'").unwrap();
        assert!(pairs(&d.instructions[0], '\\')[0].literal_dollar);
    }

    #[test]
    fn from_and_copy() {
        let d = parse("FROM --platform=x img:1 as build\nFROM img2\nCOPY --chown=1 a \"b c\" ${D}/\nCOPY [\"x\", \"/y/\"]\nCOPY only\n").unwrap();
        let i = &d.instructions;
        assert_eq!(
            from(&i[0], '\\'),
            From {
                image: "img:1".into(),
                alias: Some("build".into())
            }
        );
        assert_eq!(
            from(&i[1], '\\'),
            From {
                image: "img2".into(),
                alias: None
            }
        );
        let (src, dest) = copy_paths(&i[2], '\\').unwrap();
        assert_eq!(
            src.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            ["a", "b c"]
        );
        assert_eq!(dest.text, "${D}/");
        let (src, dest) = copy_paths(&i[3], '\\').unwrap();
        assert_eq!((src[0].text.as_str(), dest.text.as_str()), ("x", "/y/"));
        assert_eq!(copy_paths(&i[4], '\\'), None);
    }

    #[test]
    fn expansion_for_decisions() {
        let vars: IndexMap<String, String> = [("F", "/flywheel/v0"), ("E", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = |t: &str| expand(t, &vars);
        assert_eq!(
            e("$F/manifest.json").as_deref(),
            Some("/flywheel/v0/manifest.json")
        );
        assert_eq!(e("${F}/x").as_deref(), Some("/flywheel/v0/x"));
        assert_eq!(e("${G:-/d}/x").as_deref(), Some("/d/x"));
        assert_eq!(e("${E:-d}").as_deref(), Some("d"));
        assert_eq!(e("${E-d}").as_deref(), Some(""));
        assert_eq!(e("${F:+set}").as_deref(), Some("set"));
        assert_eq!(e("${G:+set}").as_deref(), Some(""));
        assert_eq!(e("$G/x"), None, "unknown: the base image may set it");
        assert_eq!(e("${F"), None);
        assert_eq!(e("cost $ 5").as_deref(), Some("cost $ 5"));
        assert_eq!(e("${F:-${G:-/n}}").as_deref(), Some("/flywheel/v0"));
    }

    proptest::proptest! {
        /// Any text splits, with instructions in order inside it, or fails at a line of it.
        #[test]
        fn any_text_splits_in_order_or_fails_at_one_of_its_lines(
            text in "(FROM |RUN |COPY |ENV |ARG |# escape=`\n|#|\\\\|`|<<EOF|<<-X|EOF|X|\t|\"|'|\\$|\\{|\\}| |\r|\n|é|[a-z=:-]{1,3}){0,60}"
        ) {
            match parse(&text) {
                Ok(d) => {
                    let mut last_end = 0;
                    for i in &d.instructions {
                        proptest::prop_assert!(i.start_line > last_end);
                        proptest::prop_assert!(i.start_line <= i.end_line);
                        proptest::prop_assert!(i.span.start < i.span.end && i.span.end <= text.len());
                        let first = text[i.span.clone()].split('\n').next().unwrap_or_default();
                        let first = first.strip_suffix('\r').unwrap_or(first);
                        proptest::prop_assert_eq!(first, i.lines[0].as_str());
                        last_end = i.end_line;
                        // The lexer never panics on what the splitter gives it.
                        let _ = pairs(i, d.escape);
                        let _ = copy_paths(i, d.escape);
                        let _ = from(i, d.escape);
                        let _ = expand(&i.args, &IndexMap::new());
                        let _ = i.body_lines(d.escape);
                    }
                }
                Err(e) => proptest::prop_assert!(e.line() >= 1 && e.line() <= text.split('\n').count()),
            }
        }
    }
}
