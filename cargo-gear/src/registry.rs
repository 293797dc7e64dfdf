//! The team registry: where built layers are pushed and looked up (the shared skip-cache).
//! Local image names stay as declared; a layer `example/x:gear-…` lives in the registry
//! `HOST[:PORT]/PREFIX` as `HOST[:PORT]/PREFIX/example/x:gear-…`, so moving registries
//! changes no fingerprint.

use crate::engine::Credentials;
use crate::engine::registry_host;
use crate::error::CliError;

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
        let base = base.trim().trim_end_matches('/');
        let base = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .unwrap_or(base)
            .to_string();
        let host = base.split('/').next().unwrap_or("");
        if host.is_empty() || registry_host(&format!("{base}/x")) != host {
            return Err(CliError::usage(
                format!("`{base}` does not name a registry host"),
                "write HOST[:PORT]/PREFIX, e.g. registry.example.org/neuro or 127.0.0.1:5000/team",
            ));
        }
        let credentials = crate::credentials::for_registry(host)?;
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
}
