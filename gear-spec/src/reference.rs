//! Docker image references checked as the engine checks them, so that `validate` refuses
//! what `docker build -t`/`docker pull` would later answer with `invalid reference format`.
//!
//! The grammar is `container_image_dist_ref`'s (tested against distribution/reference,
//! the engine's own parser); on top of it, Docker's normalisation rule: a first component
//! without `.` or `:` that is not `localhost` is not a registry host but part of the
//! repository path, which must be lowercase (`Newcomer/x` is refused by Docker).

use container_image_dist_ref::ImgRef;
use container_image_dist_ref::err::Kind;

/// A valid reference, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `[host[:port]/]path`, without tag or digest.
    pub name: String,
    /// The registry host and port, when the reference names one.
    pub domain: Option<String>,
    /// The port of the registry host, when given.
    pub port: Option<String>,
    /// The tag, without `:`.
    pub tag: Option<String>,
    /// The digest, without `@`.
    pub digest: Option<String>,
}

/// Why a reference is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, one line.
    pub reason: String,
    /// A close reference that is valid, when one can be made.
    pub suggestion: Option<String>,
}

/// Parses `reference` as Docker would.
pub fn parse(reference: &str) -> Result<Reference, Invalid> {
    let img = match ImgRef::new(reference) {
        Ok(img) => img,
        Err(e) => {
            return Err(Invalid {
                reason: reason(reference, e.kind()),
                suggestion: suggest(reference),
            });
        }
    };
    // Docker's rule: the first component names a registry only with a `.`, a `:` or as
    // `localhost`; otherwise it is part of the repository path.
    let first = img.domain().map(|d| d.to_str().to_string());
    let is_host = |d: &str| d.contains(['.', ':', '[']) || d == "localhost";
    if let Some(d) = &first
        && !is_host(d)
        && d.contains(|c: char| c.is_ascii_uppercase())
    {
        return Err(Invalid {
            reason: "repository names must be lowercase".to_string(),
            suggestion: suggest(reference),
        });
    }
    let domain = first.filter(|d| is_host(d));
    Ok(Reference {
        name: img.name().to_str().to_string(),
        port: domain.as_ref().and(img.port()).map(str::to_string),
        domain,
        tag: img.tag().map(str::to_string),
        digest: img.digest().map(|d| d.to_str().to_string()),
    })
}

/// `reference` without its `@digest`, if it has one: `python:3@sha256:…` is `python:3`. Only a
/// digest follows an `@` in a reference.
pub fn without_digest(reference: &str) -> &str {
    reference
        .split_once('@')
        .map_or(reference, |(named, _)| named)
}

/// The repository of `image` as Docker names it in full: `python:3` and
/// `docker.io/library/python` are both `docker.io/library/python`. `None` when `image` is
/// not a valid reference.
pub fn canonical_repository(image: &str) -> Option<String> {
    let r = parse(image).ok()?;
    let docker_hub = |path: &str| {
        if path.contains('/') {
            format!("docker.io/{path}")
        } else {
            format!("docker.io/library/{path}")
        }
    };
    Some(match r.domain.as_deref() {
        None => docker_hub(&r.name),
        Some(d @ ("docker.io" | "index.docker.io")) => docker_hub(&r.name[d.len() + 1..]),
        Some(_) => r.name,
    })
}

/// What is wrong, in the user's words: the parser's kind of error, told with the first
/// character no reference may hold (the parser's own index is relative to the part it
/// was reading).
fn reason(reference: &str, kind: Kind) -> String {
    let found = reference
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-/:@[]".contains(*c)))
        .or_else(|| reference.chars().find(char::is_ascii_uppercase));
    let shown = match found {
        Some(' ') => "a space".to_string(),
        Some(c) if c.is_control() => format!("`{}`", c.escape_debug()),
        Some(c) => format!("`{c}`"),
        None => "the end".to_string(),
    };
    use Kind::*;
    match kind {
        RefMissing | HostOrPathMissing | PathMissing => "the reference is empty".to_string(),
        NameTooLong | HostOrPathTooLong | PathTooLong | HostTooLong => {
            "the name is longer than 255 characters".to_string()
        }
        HostOrPathInvalidChar | PathInvalidChar
            if found.is_some_and(|c| c.is_ascii_uppercase()) =>
        {
            "repository names must be lowercase".to_string()
        }
        HostOrPathInvalidChar
        | PathInvalidChar
        | HostOrPathInvalidComponentEnd
        | PathComponentInvalidEnd => format!(
            "{shown} is not allowed here: a repository path is lowercase letters and digits, joined by `.`, `_`, `__` or dashes, components separated by `/`"
        ),
        PortOrTagMissing | TagMissing => "nothing follows the `:`".to_string(),
        PortOrTagInvalidChar | TagInvalidChar | TagTooLong => format!(
            "{shown} is not allowed here: a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
        ),
        Port | PortInvalidChar | PortTooLong | PortMissing => {
            format!("{shown} is not allowed here: a registry port is digits")
        }
        HostMissing | HostComponentInvalidEnd | HostInvalidChar => {
            format!("{shown} is not allowed in a registry host name")
        }
        Ipv6InvalidChar
        | Ipv6TooLong
        | Ipv6BadColon
        | Ipv6TooManyHexDigits
        | Ipv6TooManyGroups
        | Ipv6TooFewGroups
        | Ipv6MissingClosingBracket => "the registry's IPv6 address is not valid".to_string(),
        _ => "a digest is an algorithm and hexadecimal digits, e.g. `sha256:` and 64 of them"
            .to_string(),
    }
}

/// The reference lowercased, with every other character a repository name cannot hold
/// turned into `-`; `None` when that is still not valid.
fn suggest(reference: &str) -> Option<String> {
    let (name, rest) = match reference.find(['@']) {
        Some(i) => reference.split_at(i),
        None => (reference, ""),
    };
    let last = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[last..].find(':') {
        Some(i) => name.split_at(last + i),
        None => (name, ""),
    };
    let mut fixed: String = name
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-' | '/' | ':') => c,
            _ => '-',
        })
        .collect();
    fixed.push_str(tag);
    fixed.push_str(rest);
    (fixed != reference && parse(&fixed).is_ok()).then_some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_references_split() {
        let r = parse("localhost:5000/lab/x:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(r.name, "localhost:5000/lab/x");
        assert_eq!(r.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(r.port.as_deref(), Some("5000"));
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert!(r.digest.unwrap().starts_with("sha256:"));
        for ok in [
            "python:3.12-slim",
            "debian",
            "Registry.Example.org/lab/x",
            "[::1]:5000/x",
            "a__b/c-d.e",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn digests_are_dropped() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            without_digest(&format!("localhost:5000/lab/x:1.0@{digest}")),
            "localhost:5000/lab/x:1.0"
        );
        assert_eq!(without_digest(&format!("debian@{digest}")), "debian");
        assert_eq!(without_digest("[::1]:5000/x:2"), "[::1]:5000/x:2");
    }

    #[test]
    fn canonical_repositories() {
        for (image, repo) in [
            ("python:3", "docker.io/library/python"),
            (
                "docker.io/library/python@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "docker.io/library/python",
            ),
            ("index.docker.io/lab/x", "docker.io/lab/x"),
            ("lab/x:1", "docker.io/lab/x"),
            ("localhost:5000/lab/x", "localhost:5000/lab/x"),
        ] {
            assert_eq!(
                canonical_repository(image).as_deref(),
                Some(repo),
                "{image}"
            );
        }
        assert_eq!(canonical_repository("Bad Name"), None);
    }

    #[test]
    fn docker_refusals_say_why_and_suggest() {
        let e = parse("Newcomer/Word").unwrap_err();
        assert_eq!(e.reason, "repository names must be lowercase");
        assert_eq!(e.suggestion.as_deref(), Some("newcomer/word"));
        let e = parse("Newcomer/Word Count").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("newcomer/word-count"));
        let e = parse("lab/word count").unwrap_err();
        assert!(e.reason.starts_with("a space is not allowed here"), "{e:?}");
        assert_eq!(e.suggestion.as_deref(), Some("lab/word-count"));
        let e = parse("lab/x:-bad").unwrap_err();
        assert!(e.reason.contains("a tag is 1 to 128"), "{e:?}");
        let e = parse("lab/x-").unwrap_err();
        assert!(e.reason.contains("joined by"), "{e:?}");
        assert!(parse("").is_err());
    }
}
