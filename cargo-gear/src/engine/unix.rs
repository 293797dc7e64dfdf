//! The engine on a Unix socket, over kept-alive connections. bollard's own Unix transport opens
//! a connection per request (a plan of 1,000 layers: 1,000 connects, each one more task for
//! the engine too); this pool reuses them. And `/_ping`'s headers say which API version the
//! engine speaks and what it is, which bollard would ask `/version` for: dockerd answers that
//! by running `runc --version` and `docker-init --version` (8–10 ms, most of a small
//! workspace's no-op build).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard::{BollardRequest, ClientVersion, Docker};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens a connection to the socket, whatever host the request names.
#[derive(Debug, Clone)]
pub(super) struct Connector(Arc<PathBuf>);

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let path = Arc::clone(&self.0);
        Box::pin(async move { UnixStream::connect(&*path).await.map(TokioIo::new) })
    }
}

/// The body type of bollard's requests (not exported by name).
trait RequestBody {
    type Body;
}

impl<B> RequestBody for hyper::Request<B> {
    type Body = B;
}

type Body = <BollardRequest as RequestBody>::Body;

/// An HTTP client of the socket whose idle connections are kept for the next request.
#[derive(Debug, Clone)]
pub(super) struct UnixClient(Client<Connector, Body>);

/// What the engine's `/_ping` answer says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ping {
    /// `Api-Version`: the newest API version it speaks.
    pub api_version: Option<String>,
    /// Its version, from `Server: Docker/20.10.24 (linux)` or `Server: Libpod/4.3.1 (linux)`.
    pub server_version: Option<String>,
    /// Podman's service (it adds `Libpod-Api-Version`).
    pub podman: bool,
}

impl UnixClient {
    /// A client of the socket at `path` (nothing is connected yet).
    pub(super) fn new(path: &Path) -> UnixClient {
        UnixClient(
            Client::builder(TokioExecutor::new()).build(Connector(Arc::new(path.to_path_buf()))),
        )
    }

    /// Asks `/_ping`, for its headers.
    pub(super) async fn ping(&self) -> Result<Ping, BoxError> {
        let request = hyper::Request::get("http://docker/_ping")
            .body(bollard::body_full(Default::default()))?;
        let response = self.0.request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        // Read to the end, so that the connection goes back to the pool.
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!(
                "/_ping answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            )
            .into());
        }
        Ok(Ping::from_headers(&headers))
    }

    /// A bollard client speaking `version` over this client's connections.
    pub(super) fn docker(&self, timeout: u64, version: &ClientVersion) -> Result<Docker, BoxError> {
        let client = self.0.clone();
        let transport = move |request: BollardRequest| {
            let client = client.clone();
            Box::pin(async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }) as Pin<Box<dyn Future<Output = _> + Send>>
        };
        Ok(Docker::connect_with_custom_transport(
            transport,
            Some("http://docker"),
            timeout,
            version,
        )?)
    }
}

impl Ping {
    fn from_headers(headers: &hyper::HeaderMap) -> Ping {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Ping {
            api_version: text("api-version").map(str::to_owned),
            server_version: text("server")
                .and_then(|s| s.split_once('/'))
                .map(|(_, rest)| rest.split(' ').next().unwrap_or(rest).to_owned()),
            podman: headers.contains_key("libpod-api-version"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> hyper::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    hyper::header::HeaderName::from_static(k),
                    v.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn reads_docker_and_podman_pings() {
        // As Debian's dockerd 20.10 and podman 4.3 answer.
        let docker = headers(&[
            ("api-version", "1.41"),
            ("server", "Docker/20.10.24+dfsg1 (linux)"),
        ]);
        assert_eq!(
            Ping::from_headers(&docker),
            Ping {
                api_version: Some("1.41".into()),
                server_version: Some("20.10.24+dfsg1".into()),
                podman: false,
            }
        );
        let podman = headers(&[
            ("api-version", "1.41"),
            ("libpod-api-version", "4.3.1"),
            ("server", "Libpod/4.3.1 (linux)"),
        ]);
        assert_eq!(
            Ping::from_headers(&podman),
            Ping {
                api_version: Some("1.41".into()),
                server_version: Some("4.3.1".into()),
                podman: true,
            }
        );
        assert_eq!(
            Ping::from_headers(&headers(&[])),
            Ping {
                api_version: None,
                server_version: None,
                podman: false,
            }
        );
    }
}
