//! Prototype of the instruction-splitting level of BuildKit's Dockerfile parser:
//! directives (escape), comments, line continuations (comments and blank lines inside
//! them), heredocs (RUN/COPY/ADD), leading `--flags`, JSON (exec) form.

#[derive(Debug)]
pub struct Heredoc { pub name: String, pub strip_tabs: bool, pub content: String }

#[derive(Debug)]
pub struct Instruction {
    pub keyword: String,          // upper-cased
    pub start_line: usize,        // 1-based, inclusive
    pub end_line: usize,
    pub byte_start: usize,
    pub byte_end: usize,
    pub flags: Vec<String>,       // leading `--name=value` (FROM, RUN, COPY, ADD, HEALTHCHECK...)
    pub args: String,             // rest of the logical line, continuations joined
    pub json: Option<Vec<String>>,// exec form when args is a JSON array of strings
    pub heredocs: Vec<Heredoc>,
}

pub fn split(text: &str) -> Result<Vec<Instruction>, String> {
    // lines with their byte offsets; CR stripped
    let mut lines = Vec::new();
    let mut off = 0;
    for raw in text.split_inclusive('\n') {
        let l = raw.strip_suffix('\n').unwrap_or(raw);
        let l = l.strip_suffix('\r').unwrap_or(l);
        lines.push((off, l));
        off += raw.len();
    }
    let mut escape = '\\';
    let mut i = 0;
    // parser directives: only in the leading block of `# key=value` comments
    while i < lines.len() {
        let t = lines[i].1.trim();
        let Some(c) = t.strip_prefix('#') else { break };
        let Some((k, v)) = c.split_once('=') else { break };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) { break }
        if k == "escape" {
            escape = match v.trim() { "`" => '`', "\\" => '\\', o => return Err(format!("invalid escape {o:?}")) };
        }
        i += 1;
    }
    let is_cont = |l: &str| -> Option<usize> {
        let t = l.trim_end_matches([' ', '\t']);
        t.ends_with(escape).then(|| t.len() - escape.len_utf8())
    };
    let mut out = Vec::new();
    while i < lines.len() {
        let (start_off, line) = lines[i];
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') { i += 1; continue; }
        let start_line = i + 1;
        let mut logical = String::new();
        let mut cur = line;
        loop {
            match is_cont(cur) {
                Some(end) => {
                    logical.push_str(&cur[..end]);
                    i += 1;
                    // comment and blank lines inside a continuation are dropped
                    while i < lines.len() { let t = lines[i].1.trim_start(); if t.starts_with('#') || t.is_empty() { i += 1 } else { break } }
                    if i >= lines.len() { break }
                    cur = lines[i].1;
                }
                None => { logical.push_str(cur); i += 1; break }
            }
        }
        let logical = logical.trim_start();
        let (kw, rest) = logical.split_once([' ', '\t']).unwrap_or((logical, ""));
        let keyword = kw.to_ascii_uppercase();
        let mut rest = rest.trim_start();
        let mut flags = Vec::new();
        if matches!(keyword.as_str(), "FROM" | "RUN" | "COPY" | "ADD" | "HEALTHCHECK") {
            while rest.starts_with("--") {
                let (f, r) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
                flags.push(f.to_string());
                rest = r.trim_start();
            }
        }
        let args = rest.trim_end().to_string();
        let json = args.starts_with('[').then(|| serde_json::from_str::<Vec<String>>(&args).ok()).flatten();
        // heredocs
        let mut heredocs = Vec::new();
        if json.is_none() && matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for h in heredoc_names(&args) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i].1; i += 1;
                    let cmp = if h.1 { l.trim_start_matches('\t') } else { l };
                    if cmp == h.0 { closed = true; break }
                    content.push_str(if h.1 { cmp } else { l });
                    content.push('\n');
                }
                if !closed { return Err(format!("line {start_line}: unterminated heredoc <<{}", h.0)) }
                heredocs.push(Heredoc { name: h.0, strip_tabs: h.1, content });
            }
        }
        let end_line = i;
        let byte_end = lines.get(i).map(|l| l.0).unwrap_or(text.len());
        out.push(Instruction { keyword, start_line, end_line, byte_start: start_off, byte_end, flags, args, json, heredocs });
    }
    Ok(out)
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` words outside quotes.
fn heredoc_names(args: &str) -> Vec<(String, bool)> {
    let b = args.as_bytes();
    let mut out = Vec::new();
    let (mut sq, mut dq) = (false, false);
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'\'' if !dq => sq = !sq,
            b'"' if !sq => dq = !dq,
            b'<' if !sq && !dq && b.get(k + 1) == Some(&b'<') && b.get(k + 2) != Some(&b'<') => {
                let mut j = k + 2;
                let strip = b.get(j) == Some(&b'-');
                if strip { j += 1 }
                let q = b.get(j).copied().filter(|c| *c == b'"' || *c == b'\'');
                if q.is_some() { j += 1 }
                let s = j;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') { j += 1 }
                if j > s {
                    out.push((args[s..j].to_string(), strip));
                    if q.is_some() { j += 1 }
                }
                k = j; continue;
            }
            _ => {}
        }
        k += 1;
    }
    out
}
