//! Registries through the engine: look a tag's digest up, push, and which images running
//! containers use (so pruning never removes them).

use std::collections::HashSet;

use bollard::query_parameters::{ListContainersOptions, PushImageOptions};
use futures_util::StreamExt;

use super::image::split_tag;
use super::{Engine, EngineError, PullProgress};

/// Credentials for one registry, sent to the engine with a pull, push or lookup.
pub type Credentials = bollard::auth::DockerCredentials;

/// The registry host of an image reference (`docker.io` when it names none).
pub fn registry_host(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

impl Engine {
    /// The digest a registry holds for `reference` (`repo:tag`), or None when it has no
    /// such tag.
    pub async fn registry_digest(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<Option<String>, EngineError> {
        if self.is_podman() {
            return self.registry_digest_by_pull(reference, credentials).await;
        }
        match self
            .docker
            .inspect_registry_image(reference, credentials)
            .await
        {
            Ok(inspect) => Ok(inspect.descriptor.digest),
            Err(e) => {
                let message = message_of(&e);
                if says_absent(&message) {
                    Ok(None)
                } else {
                    Err(registry_error(reference, "look up", message))
                }
            }
        }
    }

    /// [`Engine::registry_digest`] on Podman, whose Docker-compatible API has no registry
    /// lookup (its `GET /distribution/{name}/json` answers 404 for every name, which would
    /// read as "not in the registry"): the reference is pulled (layers the engine holds are
    /// not downloaded again), its digest read from the image's `RepoDigests`, and the local
    /// tag removed again.
    async fn registry_digest_by_pull(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<Option<String>, EngineError> {
        match self
            .pull_with(reference, None, credentials, &mut |_| {})
            .await
        {
            Ok(()) => {}
            Err(EngineError::Pull { message, .. }) if says_absent(&message) => return Ok(None),
            Err(EngineError::Pull { message, .. }) => {
                return Err(registry_error(reference, "look up", message));
            }
            Err(e) => return Err(e),
        }
        let inspect = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(self.request_error(format!("inspect image `{reference}`")));
        self.remove_image(reference, false).await?;
        let (repo, _) = split_tag(reference);
        Ok(inspect?
            .repo_digests
            .unwrap_or_default()
            .iter()
            .find_map(|d| Some(d.strip_prefix(repo)?.strip_prefix('@')?.to_owned())))
    }

    /// Pushes `reference` (`repo:tag`), reporting progress like a pull.
    pub async fn push(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
        progress: &mut dyn FnMut(&PullProgress),
    ) -> Result<(), EngineError> {
        let (repo, tag) = split_tag(reference);
        let options = PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.long.push_image(repo, Some(options), credentials);
        while let Some(event) = stream.next().await {
            let info = event.map_err(|e| registry_error(reference, "push", message_of(&e)))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message).or(info.error) {
                return Err(registry_error(reference, "push", message));
            }
            let detail = info.progress_detail.unwrap_or_default();
            progress(&PullProgress {
                status: info.status.unwrap_or_default(),
                id: None,
                current: detail.current.and_then(|n| u64::try_from(n).ok()),
                total: detail
                    .total
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|&n| n > 0),
            });
        }
        Ok(())
    }

    /// Image IDs used by containers that exist (running or stopped).
    pub async fn container_images(&self) -> Result<HashSet<String>, EngineError> {
        let options = ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(self.request_error("list containers"))?;
        Ok(containers.into_iter().filter_map(|c| c.image_id).collect())
    }
}

impl EngineError {
    /// For a warning that goes on without the registry: what to do when it refused the
    /// credentials (an error shows this as its help).
    pub fn login_hint(&self) -> String {
        match self {
            EngineError::RegistryAuth { registry, .. } => {
                format!(" (log in with `docker login {registry}`)")
            }
            _ => String::new(),
        }
    }
}

/// Whether a registry's (or engine's) message says the tag or repository does not exist.
fn says_absent(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("manifest unknown")
        || lower.contains("not found")
        || lower.contains("name unknown")
}

fn message_of(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

fn registry_error(reference: &str, action: &'static str, message: String) -> EngineError {
    let registry = registry_host(reference).to_string();
    let lower = message.to_ascii_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("denied")
        || lower.contains("no basic auth credentials")
    {
        EngineError::RegistryAuth {
            registry,
            reference: reference.to_string(),
            message,
        }
    } else {
        EngineError::Registry {
            registry,
            action,
            reference: reference.to_string(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(registry_host("127.0.0.1:5000/team/x:1"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost/x"), "localhost");
        assert_eq!(registry_host("example/x:1"), "docker.io");
        assert_eq!(
            registry_host("registry.example.org/x"),
            "registry.example.org"
        );
    }
}
