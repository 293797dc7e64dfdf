//! The team registry: where built layers are pushed and looked up (the shared skip-cache).
//! Local image names stay as declared; a layer `example/x:gear-…` lives in the registry
//! `HOST[:PORT]/PREFIX` as `HOST[:PORT]/PREFIX/example/x:gear-…`, so moving registries
//! changes no fingerprint.

use crate::engine::Credentials;
use crate::engine::registry_host;
use crate::error::CliError;
use gear_spec::diagnostic::escape_controls;
use gear_spec::reference;

/// A registry and the credentials the docker CLI would use for it.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `HOST[:PORT]/PREFIX`, without a trailing slash.
    pub base: String,
    credentials: Option<Credentials>,
}

impl Registry {
    /// A registry from `HOST[:PORT][/PREFIX]`, with its credentials looked up.
    pub fn new(base: &str) -> Result<Registry, CliError> {
        let base = parse_base(base)?;
        let credentials = crate::credentials::for_registry(base.split('/').next().unwrap_or(""))?;
        Ok(Registry { base, credentials })
    }

    /// The registry's host.
    pub fn host(&self) -> &str {
        self.base.split('/').next().unwrap_or(&self.base)
    }

    /// The registry name of a local image reference.
    pub fn remote(&self, local: &str) -> String {
        format!("{}/{local}", self.base)
    }

    /// Credentials for the engine, when the user has some for this registry.
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials.clone()
    }
}

/// `HOST[:PORT][/PREFIX]` checked as Docker checks the image names made from it
/// (`HOST[:PORT]/PREFIX/<local ref>`): a registry host, a TCP port, a lowercase prefix.
/// An `http(s)://` in front and a trailing `/` are dropped.
pub(crate) fn parse_base(written: &str) -> Result<String, CliError> {
    let base = written.trim().trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .unwrap_or(base);
    let shown = escape_controls(base);
    let usage = "write HOST[:PORT]/PREFIX, e.g. registry.example.org/neuro, 127.0.0.1:5000/team or [::1]:5000/team";
    let host = base.split('/').next().unwrap_or("");
    if host.is_empty() || registry_host(&format!("{base}/x")) != host {
        return Err(CliError::usage(
            format!(
                "`{shown}` does not start with a registry host (a name with a `.`, a `:PORT`, or `localhost`)"
            ),
            usage,
        ));
    }
    let parsed = reference::parse(&format!("{base}/x")).map_err(|invalid| {
        CliError::usage(
            format!(
                "`{shown}` is not a registry name Docker accepts: {}",
                invalid.reason
            ),
            usage,
        )
    })?;
    if let Some(port) = parsed.port.as_deref()
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(CliError::usage(
            format!("`{shown}` has port {port}, which is not a TCP port (1 to 65535)"),
            usage,
        ));
    }
    Ok(base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_under_the_registry() {
        let r = Registry {
            base: "127.0.0.1:5000/team".into(),
            credentials: None,
        };
        assert_eq!(
            r.remote("example/x:gear-abc"),
            "127.0.0.1:5000/team/example/x:gear-abc"
        );
        assert_eq!(r.host(), "127.0.0.1:5000");
        assert!(Registry::new("just-a-name").is_err());
    }

    fn refusal(base: &str) -> String {
        match parse_base(base) {
            Err(CliError::Usage { message, .. }) => message,
            other => panic!("{base}: {other:?}"),
        }
    }

    #[test]
    fn bases_are_checked_like_image_names() {
        for (written, kept) in [
            (
                "https://registry.example.org/neuro/",
                "registry.example.org/neuro",
            ),
            ("127.0.0.1:5000/team", "127.0.0.1:5000/team"),
            ("[::1]:1/x", "[::1]:1/x"),
            ("localhost:65535", "localhost:65535"),
        ] {
            assert_eq!(parse_base(written).unwrap(), kept);
        }
        assert_eq!(
            refusal("127.0.0.1:99999/team"),
            "`127.0.0.1:99999/team` has port 99999, which is not a TCP port (1 to 65535)"
        );
        assert_eq!(
            refusal("localhost:0/x"),
            "`localhost:0/x` has port 0, which is not a TCP port (1 to 65535)"
        );
        assert!(
            refusal("reg\nistry.example.org/team").starts_with("`reg\\nistry.example.org/team` "),
        );
        assert!(
            refusal("registry.example.org/Team").ends_with("repository names must be lowercase"),
        );
    }
}
