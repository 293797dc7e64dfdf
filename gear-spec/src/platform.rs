//! Image platforms (`os/arch[/variant]`): what Flywheel runs (`linux/amd64`), what a layer is
//! built and pulled for, and whether an image's `Os`/`Architecture` match it.

use std::fmt;
use std::str::FromStr;

/// An OCI platform: operating system, architecture and an optional variant (`v8` of `arm64`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

/// A string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a platform: expected `os/arch` or `os/arch/variant`, like `linux/amd64`")]
pub struct ParsePlatformError {
    /// What was given.
    pub input: String,
}

impl Platform {
    /// What Flywheel runs gears on, and so every layer's platform unless the workspace or the
    /// layer says otherwise.
    pub fn flywheel() -> Platform {
        Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        }
    }

    /// Whether an image whose configuration says `os`, `architecture` and `variant` (as the
    /// engine reports them; the architecture's other common spellings accepted) is for this
    /// platform. An image that states no variant matches any variant asked for.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let variant = variant.filter(|v| !v.is_empty());
        os.eq_ignore_ascii_case(&self.os)
            && normal_arch(architecture) == self.arch
            && match (&self.variant, variant) {
                (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
                _ => true,
            }
    }

    /// How an image's own `os`, `architecture` and `variant` read as a platform, for messages.
    pub fn describe(os: &str, architecture: &str, variant: Option<&str>) -> String {
        match variant.filter(|v| !v.is_empty()) {
            Some(v) => format!("{os}/{architecture}/{v}"),
            None => format!("{os}/{architecture}"),
        }
    }
}

/// The architecture as OCI names it (`x86_64` → `amd64`, `aarch64` → `arm64`).
fn normal_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

impl Default for Platform {
    fn default() -> Platform {
        Platform::flywheel()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ParsePlatformError;

    fn from_str(s: &str) -> Result<Platform, ParsePlatformError> {
        let err = || ParsePlatformError {
            input: s.to_string(),
        };
        let part = |p: &str| {
            (!p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .then(|| p.to_ascii_lowercase())
        };
        let mut parts = s.split('/');
        let os = parts.next().and_then(part).ok_or_else(err)?;
        let arch = parts.next().and_then(part).ok_or_else(err)?;
        let variant = match parts.next() {
            None => None,
            Some(v) => Some(part(v).ok_or_else(err)?),
        };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Platform {
            os,
            arch: normal_arch(&arch),
            variant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalises_and_prints() {
        let p: Platform = "linux/amd64".parse().unwrap();
        assert_eq!(p, Platform::flywheel());
        assert_eq!(p.to_string(), "linux/amd64");
        let arm: Platform = "Linux/aarch64/v8".parse().unwrap();
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/amd 64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn matches_the_engine_spellings() {
        let amd = Platform::flywheel();
        assert!(amd.matches("linux", "amd64", None));
        assert!(amd.matches("linux", "x86_64", Some("")));
        assert!(!amd.matches("linux", "arm64", None));
        assert!(!amd.matches("windows", "amd64", None));
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(v8.matches("linux", "aarch64", Some("v8")));
        assert!(v8.matches("linux", "arm64", None));
        assert!(!v8.matches("linux", "arm64", Some("v7")));
        assert_eq!(
            Platform::describe("linux", "arm64", Some("")),
            "linux/arm64"
        );
    }
}
