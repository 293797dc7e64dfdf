//! Images: inspect, pull, tag, remove, list.

use std::collections::HashMap;

use bollard::query_parameters::{
    CreateImageOptions, ListImagesOptions, RemoveImageOptions, TagImageOptions,
};
use futures_util::StreamExt;

use gear_spec::platform::Platform;

use super::{Engine, EngineError, status_of};

/// What [`Engine::image`] tells about an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:…`.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The image's `Config.Labels`.
    pub labels: HashMap<String, String>,
    /// The image's `Config.Env`, `NAME=value` each.
    pub env: Vec<String>,
    /// Bytes.
    pub size: u64,
    /// RFC 3339 creation time as the engine reports it; empty when unknown.
    pub created: String,
    /// `repo@sha256:…` for each registry the image was pulled from or pushed to.
    pub repo_digests: Vec<String>,
    /// `Os`, e.g. `linux`.
    pub os: String,
    /// `Architecture`, e.g. `amd64`.
    pub architecture: String,
    /// `Variant`, e.g. `v8`, when the image states one.
    pub variant: Option<String>,
}

/// One image of [`Engine::list_images`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// `sha256:…`.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub labels: HashMap<String, String>,
    /// Bytes.
    pub size: u64,
    /// Unix seconds.
    pub created: i64,
}

/// One progress event of [`Engine::pull`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// "Pulling fs layer", "Downloading", "Pull complete", "Digest: …"…
    pub status: String,
    /// The layer (or tag) the event is about.
    pub id: Option<String>,
    /// Bytes done, when the event reports progress.
    pub current: Option<u64>,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

impl Engine {
    /// Inspects `reference` (a name, `name:tag` or id); `None` when there is no such image.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        let inspect = match self.docker.inspect_image(reference).await {
            Ok(inspect) => inspect,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => {
                return Err(self.request_error(format!("inspect image `{reference}`"))(
                    e,
                ));
            }
        };
        let config = inspect.config.unwrap_or_default();
        Ok(Some(ImageInfo {
            id: inspect.id.unwrap_or_default(),
            repo_tags: inspect.repo_tags.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            size: inspect.size.unwrap_or_default().max(0) as u64,
            created: inspect.created.unwrap_or_default(),
            repo_digests: inspect.repo_digests.unwrap_or_default(),
            os: inspect.os.unwrap_or_default(),
            architecture: inspect.architecture.unwrap_or_default(),
            variant: inspect.variant.filter(|v| !v.is_empty()),
        }))
    }

    /// Pulls `reference` (`:latest` when it names no tag or digest) for `platform` (the
    /// engine's own when `None`), reporting each progress event. Errors name the image and
    /// carry the engine's or registry's message.
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        progress: &mut dyn FnMut(&PullProgress),
    ) -> Result<(), EngineError> {
        self.pull_with(reference, platform, None, progress).await
    }

    /// [`Engine::pull`] with registry credentials.
    pub async fn pull_with(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        credentials: Option<super::Credentials>,
        progress: &mut dyn FnMut(&PullProgress),
    ) -> Result<(), EngineError> {
        let reference = with_default_tag(reference);
        let options = CreateImageOptions {
            from_image: Some(reference.clone()),
            platform: platform.map(ToString::to_string).unwrap_or_default(),
            ..Default::default()
        };
        let pull_error = |message: String| EngineError::Pull {
            image: reference.clone(),
            message,
        };
        let mut stream = self.long.create_image(Some(options), None, credentials);
        while let Some(event) = stream.next().await {
            let info = match event {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                    return Err(pull_error(message));
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(pull_error(error));
                }
                Err(e) => return Err(self.request_error(format!("pull `{reference}`"))(e)),
            };
            if let Some(message) = info.error_detail.and_then(|d| d.message).or(info.error) {
                return Err(pull_error(message));
            }
            let detail = info.progress_detail.unwrap_or_default();
            progress(&PullProgress {
                status: info.status.unwrap_or_default(),
                id: info.id,
                current: detail.current.and_then(|n| u64::try_from(n).ok()),
                total: detail
                    .total
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|&n| n > 0),
            });
        }
        Ok(())
    }

    /// Tags `image` (name or id) as `repo:tag`.
    pub async fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
        };
        match self.docker.tag_image(image, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Err(EngineError::NoImage {
                image: image.to_owned(),
                address: self.address.clone(),
            }),
            Err(e) => Err(self
                .request_error(format!("tag image `{image}` as `{repo}:{tag}`"))(
                e
            )),
        }
    }

    /// Removes `reference` (untags it when it is one tag of several). Returns false when there
    /// was no such image. `force` also removes images used by stopped containers or tagged
    /// several times when given by id.
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<bool, EngineError> {
        let options = RemoveImageOptions {
            force,
            noprune: false,
        };
        match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            Err(e) => Err(self.request_error(format!("remove image `{reference}`"))(e)),
        }
    }

    /// Lists the images with a label matching `label_filter` (`key` or `key=value`); all
    /// images when it is empty.
    pub async fn list_images(&self, label_filter: &str) -> Result<Vec<ImageSummary>, EngineError> {
        let filters = (!label_filter.is_empty())
            .then(|| HashMap::from([("label".to_owned(), vec![label_filter.to_owned()])]));
        let options = ListImagesOptions {
            filters,
            ..Default::default()
        };
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(self.request_error(format!("list images with label `{label_filter}`")))?;
        Ok(images
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                repo_tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                labels: i.labels,
                size: i.size.max(0) as u64,
                created: i.created,
            })
            .collect())
    }
}

/// `reference` with `:latest` added when it has neither tag nor digest: pulling a bare name
/// would pull every tag of the repository.
fn with_default_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// Splits `repo:tag` (`:latest` when there is no tag). Registry ports are not tags.
pub fn split_tag(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            &reference[name_start + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_get_latest_unless_they_name_a_tag_or_digest() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(with_default_tag("127.0.0.1:9/x:1"), "127.0.0.1:9/x:1");
        assert_eq!(with_default_tag("x@sha256:abc"), "x@sha256:abc");
    }

    #[test]
    fn tags_split_at_the_last_colon_of_the_name() {
        assert_eq!(split_tag("flywheel/gear:1.2"), ("flywheel/gear", "1.2"));
        assert_eq!(
            split_tag("localhost:5000/gear"),
            ("localhost:5000/gear", "latest")
        );
        assert_eq!(
            split_tag("localhost:5000/gear:x"),
            ("localhost:5000/gear", "x")
        );
    }
}
