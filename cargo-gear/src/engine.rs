//! Docker Engine API client: connection, images, classic-builder builds and containers, over
//! bollard.
//!
//! [`Engine::connect`] finds the engine like the docker CLI does (`DOCKER_HOST`, TLS from
//! `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, docker contexts, else `/var/run/docker.sock`): Docker
//! or Podman's Docker-compatible service. It pings it and negotiates the API version down to
//! what the engine speaks (Debian's docker.io speaks 1.41); on a Unix socket connections are
//! kept alive and reused ([`unix`]). Builds
//! stream a deterministic tar of the context ([`write_tar`]) to the engine while it is being
//! generated.

mod address;
mod archive;
mod build;
mod container;
mod image;
mod registry;
mod unix;

use std::path::PathBuf;
use std::time::Duration;

use bollard::{ClientVersion, Docker};

pub use address::{DEFAULT_SOCKET, EngineAddress, TlsFiles, docker_config_dir};
pub use archive::{ContextError, TAR_MTIME, TarEntry, TarSource, write_tar};
pub use build::{BuildError, BuildOutput, BuildRequest, journal_path};
pub use container::{Input, RunSpec, StdStream};
pub use image::{ImageInfo, ImageSummary, PullProgress, split_tag};
pub use registry::{Credentials, registry_host};

/// How long [`Engine::connect`] waits for the engine to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// bollard's timeout runs until the response headers arrive. For a build those come after the
/// engine has read the whole context (minutes for a big one), so long-running requests get a
/// client whose limit is never the one that matters.
const LONG_REQUEST_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default timeout of short requests (inspect, tag, remove, create…).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A connected Docker engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    /// The same connection with [`LONG_REQUEST_TIMEOUT`].
    long: Docker,
    address: String,
    api_version: String,
    server_version: String,
    /// Podman's Docker-compatible service rather than dockerd.
    podman: bool,
}

/// What the engine said it is.
struct Server {
    /// The newest API version it speaks, e.g. `1.41`.
    api_version: String,
    /// Its own version, e.g. `20.10.24+dfsg1`.
    version: String,
    /// Podman's Docker-compatible service.
    podman: bool,
}

/// Errors talking to the engine. Every one names the engine's address or the object involved.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    /// `DOCKER_HOST` (or the given address) is not something we can connect to.
    #[error("DOCKER_HOST `{value}` is not a usable Docker engine address: {reason}")]
    #[diagnostic(code("gear::engine-invalid-host"))]
    InvalidHost { value: String, reason: String },

    /// The docker context to use (`DOCKER_CONTEXT`, `currentContext`) cannot be used.
    #[error("docker context `{name}`: cannot use {}: {reason}", path.display())]
    #[diagnostic(
        code("gear::engine-context"),
        help(
            "`docker context ls` lists the contexts; `docker context use default` (or unsetting \
             DOCKER_CONTEXT) goes back to DOCKER_HOST or /var/run/docker.sock"
        )
    )]
    Context {
        name: String,
        path: PathBuf,
        reason: String,
    },

    /// A certificate or key file of a TLS engine cannot be read (worded like the docker CLI).
    #[error("could not read {role} \"{}\" for the Docker engine at {address}", path.display())]
    #[diagnostic(
        code("gear::engine-tls"),
        help(
            "DOCKER_TLS_VERIFY (or the docker context) asks for TLS: ca.pem, cert.pem and key.pem \
             must be in {} (DOCKER_CERT_PATH, default ~/.docker); for an engine without TLS, \
             unset DOCKER_TLS_VERIFY", path.parent().unwrap_or(path).display()
        )
    )]
    TlsFile {
        address: String,
        /// "CA certificate", "client certificate" or "client key".
        role: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The TLS client certificates could not be loaded.
    #[error("could not set up TLS for the Docker engine at {address}")]
    #[diagnostic(
        code("gear::engine-tls"),
        help(
            "DOCKER_TLS_VERIFY is set: ca.pem, cert.pem and key.pem must be in DOCKER_CERT_PATH (default ~/.docker)"
        )
    )]
    Tls {
        address: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// The engine answered, but the TLS handshake failed: its certificate is not trusted, or
    /// it refused ours.
    #[error("the Docker engine at {address} answered, but {problem}")]
    #[diagnostic(code("gear::engine-tls-handshake"), help("{help}"))]
    TlsHandshake {
        address: String,
        /// "its certificate is not trusted", …
        problem: &'static str,
        /// What to check.
        help: String,
        #[source]
        source: Box<bollard::errors::Error>,
    },

    /// Nothing answered at the address.
    #[error("no Docker engine answers at {address}")]
    #[diagnostic(
        code("gear::engine-unreachable"),
        help(
            "start Docker (e.g. `sudo systemctl start docker`) or Podman's Docker-compatible \
             service (`podman system service --time=0 unix:///run/podman/podman.sock`), or set \
             DOCKER_HOST to a running engine (unix:///path/to/docker.sock or tcp://host:port); in \
             the cargo-gear repository, `cargo xtask engine start` starts a private engine and \
             prints its DOCKER_HOST"
        )
    )]
    Unreachable {
        address: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A request the engine answered with an error (or that broke off).
    #[error("Docker engine at {address}: could not {action}")]
    #[diagnostic(code("gear::engine-request"))]
    Request {
        address: String,
        /// What was being done, naming the object: "inspect image `x:1`".
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// Pulling an image failed.
    #[error("could not pull `{image}`: {message}")]
    #[diagnostic(
        code("gear::engine-pull"),
        help(
            "check the image reference and that the engine can reach its registry (and is logged in to it)"
        )
    )]
    Pull { image: String, message: String },

    /// The image does not exist.
    #[error("no image `{image}` in the Docker engine at {address}")]
    #[diagnostic(code("gear::engine-no-image"))]
    NoImage { image: String, address: String },

    /// A registry refused the credentials (or asked for some).
    #[error("registry {registry} refused access to `{reference}`: {message}")]
    #[diagnostic(
        code("gear::engine-registry-auth"),
        help(
            "log in with `docker login {registry}` (credentials are read from $DOCKER_CONFIG/config.json or ~/.docker/config.json, including credential helpers)"
        )
    )]
    RegistryAuth {
        registry: String,
        reference: String,
        message: String,
    },

    /// A registry could not be reached or answered with an error.
    #[error("registry {registry}: could not {action} `{reference}`: {message}")]
    #[diagnostic(
        code("gear::engine-registry"),
        help("check that the registry is up and that the engine can reach it")
    )]
    Registry {
        registry: String,
        action: &'static str,
        reference: String,
        message: String,
    },
}

impl Engine {
    /// Connects to the engine the environment names (see [`EngineAddress::from_env`]),
    /// pings it (an answer within [`CONNECT_TIMEOUT`]) and negotiates the API version.
    pub async fn connect() -> Result<Engine, EngineError> {
        Self::connect_to(&EngineAddress::from_env()?).await
    }

    /// [`Engine::connect`] to an explicit address: nothing answering within
    /// [`CONNECT_TIMEOUT`] is [`EngineError::Unreachable`].
    pub async fn connect_to(address: &EngineAddress) -> Result<Engine, EngineError> {
        let shown = &*address.to_string();
        let unreachable =
            |source: Box<dyn std::error::Error + Send + Sync>| EngineError::Unreachable {
                address: shown.to_string(),
                source,
            };
        let no_answer = |_| {
            unreachable(format!("no answer within {} seconds", CONNECT_TIMEOUT.as_secs()).into())
        };
        let timeout = REQUEST_TIMEOUT.as_secs();
        // A client speaking a version: made again once the engine's own version is known.
        type Client<'a> =
            Box<dyn Fn(&ClientVersion) -> Result<Docker, EngineError> + Send + Sync + 'a>;
        // Whether anything answers is known within CONNECT_TIMEOUT. What follows may take
        // longer on a loaded machine (Podman runs `conmon --version` and more for each
        // /version), and only an ordinary request's timeout applies to it.
        let (client, ping): (Client, _) = match address {
            EngineAddress::Unix(path) => {
                if !path.exists() {
                    return Err(unreachable(Box::new(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("the socket {} does not exist", path.display()),
                    ))));
                }
                let unix = unix::UnixClient::new(path);
                let ping = tokio::time::timeout(CONNECT_TIMEOUT, unix.ping())
                    .await
                    .map_err(no_answer)?
                    .map_err(unreachable)?;
                let client = move |version: &ClientVersion| {
                    unix.docker(timeout, version).map_err(unreachable)
                };
                (Box::new(client) as Client, Some(ping))
            }
            EngineAddress::Tcp {
                host,
                port,
                tls: None,
            } => {
                let client = move |version: &ClientVersion| {
                    Docker::connect_with_http(&format!("tcp://{host}:{port}"), timeout, version)
                        .map_err(|e| unreachable(Box::new(e)))
                };
                (Box::new(client) as Client, None)
            }
            EngineAddress::Tcp {
                host,
                port,
                tls: Some(tls),
            } => {
                tls.check_readable(shown)?;
                let client = move |version: &ClientVersion| {
                    Docker::connect_with_ssl(
                        &format!("tcp://{host}:{port}"),
                        &tls.key,
                        &tls.cert,
                        &tls.ca,
                        timeout,
                        version,
                    )
                    .map_err(|source| EngineError::Tls {
                        address: shown.to_string(),
                        source,
                    })
                };
                (Box::new(client) as Client, None)
            }
        };
        // Over TCP, bollard's own ping.
        if ping.is_none() {
            let docker = client(bollard::API_DEFAULT_VERSION)?;
            tokio::time::timeout(CONNECT_TIMEOUT, docker.ping())
                .await
                .map_err(no_answer)?
                .map_err(|e| match address {
                    EngineAddress::Tcp { tls: Some(tls), .. } => {
                        tls_handshake(shown, tls, e).unwrap_or_else(|e| unreachable(Box::new(e)))
                    }
                    _ => unreachable(Box::new(e)),
                })?;
        }
        let server = match ping {
            // The ping's headers say it all (a Unix socket).
            Some(unix::Ping {
                api_version: Some(api_version),
                server_version,
                podman,
            }) => Server {
                api_version,
                version: server_version.unwrap_or_default(),
                podman,
            },
            // One /version answers both what the engine is and the API version to speak:
            // dockerd asks containerd and runs `runc --version` and `docker-init --version`
            // for each (8 ms here), which bollard's `negotiate_version` followed by `version`
            // paid twice.
            _ => {
                let server = client(bollard::API_DEFAULT_VERSION)?
                    .version()
                    .await
                    .map_err(|source| EngineError::Request {
                        address: shown.to_string(),
                        action: "read the engine version".into(),
                        source,
                    })?;
                Server {
                    podman: server
                        .components
                        .iter()
                        .flatten()
                        .any(|c| c.name.starts_with("Podman")),
                    api_version: server.api_version.unwrap_or_default(),
                    version: server.version.unwrap_or_default(),
                }
            }
        };
        let Some(spoken) = parse_api_version(&server.api_version) else {
            return Err(EngineError::Request {
                address: shown.to_string(),
                action: "negotiate the API version".into(),
                source: bollard::errors::Error::APIVersionParseError {},
            });
        };
        let docker = if spoken < *bollard::API_DEFAULT_VERSION {
            client(&spoken)?
        } else {
            client(bollard::API_DEFAULT_VERSION)?
        };
        let api = docker.client_version();
        Ok(Engine {
            long: docker.clone().with_timeout(LONG_REQUEST_TIMEOUT),
            docker,
            address: shown.to_string(),
            api_version: format!("{}.{}", api.major_version, api.minor_version),
            podman: server.podman,
            server_version: server.version,
        })
    }

    /// The address connected to, e.g. `unix:///var/run/docker.sock` or `tcp://host:2376`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The negotiated API version, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The engine's own version, e.g. `20.10.24+dfsg1`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// Whether the engine is Podman's Docker-compatible service (`podman system service`).
    pub fn is_podman(&self) -> bool {
        self.podman
    }

    /// The underlying bollard client, for what this module does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// A [`EngineError::Request`] for `action` at this engine.
    fn request_error(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(bollard::errors::Error) -> EngineError + '_ {
        let action = action.into();
        move |source| EngineError::Request {
            address: self.address.clone(),
            action,
            source,
        }
    }
}

/// `MAJOR.MINOR` of an engine's `ApiVersion`.
fn parse_api_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// The [`EngineError::TlsHandshake`] for a connection to a TLS engine that failed in the TLS
/// handshake (the engine answered), or the error unchanged when it failed otherwise.
fn tls_handshake(
    address: &str,
    tls: &TlsFiles,
    source: bollard::errors::Error,
) -> Result<EngineError, bollard::errors::Error> {
    let (problem, help) = match rustls_error(&source) {
        Some(rustls::Error::InvalidCertificate(_)) => (
            "its certificate is not trusted",
            format!(
                "the engine's certificate must be signed by the CA in {} and name the host of \
                 DOCKER_HOST ({address}); point DOCKER_CERT_PATH at the certificates made for \
                 this engine",
                tls.ca.display()
            ),
        ),
        Some(rustls::Error::AlertReceived(_)) => (
            "it refused cargo-gear's client certificate",
            format!(
                "{} must be signed by the CA the engine trusts (dockerd's --tlscacert); point \
                 DOCKER_CERT_PATH at the certificates made for this engine",
                tls.cert.display()
            ),
        ),
        Some(_) => (
            "the TLS handshake failed",
            "check that the engine speaks TLS at this address (dockerd --tlsverify) and that \
             DOCKER_CERT_PATH holds the certificates made for it"
                .to_owned(),
        ),
        None => return Err(source),
    };
    Ok(EngineError::TlsHandshake {
        address: address.to_owned(),
        problem,
        help,
        source: Box::new(source),
    })
}

/// The rustls error somewhere in `error`'s cause chain. rustls's errors reach us inside
/// `std::io::Error`s (two, nested, from hyper-rustls), whose `source()` skips what they wrap
/// (as does bollard's transparent `IOError`), so each I/O error is opened.
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let io = match error.downcast_ref::<bollard::errors::Error>() {
            Some(bollard::errors::Error::IOError { err }) => Some(err),
            _ => error.downcast_ref::<std::io::Error>(),
        };
        next = match io.and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// The HTTP status of an error the engine answered with.
fn status_of(error: &bollard::errors::Error) -> Option<u16> {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse_and_compare() {
        let v = parse_api_version("1.41").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(v < *bollard::API_DEFAULT_VERSION);
        assert!(parse_api_version("1.4x").is_none());
        assert!(parse_api_version("141").is_none());
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable_and_says_what_to_do() {
        let address = EngineAddress::Unix("/nonexistent/cargo-gear/docker.sock".into());
        let err = Engine::connect_to(&address).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "no Docker engine answers at unix:///nonexistent/cargo-gear/docker.sock"
        );
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(
            help.contains("DOCKER_HOST") && help.contains("cargo xtask engine start"),
            "{help}"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("does not exist"), "{source}");
    }

    #[tokio::test]
    async fn a_closed_tcp_port_is_unreachable() {
        // Port 9 (discard) is closed on loopback: the connection is refused at once.
        let address = EngineAddress::parse("tcp://127.0.0.1:9", None).unwrap();
        let started = std::time::Instant::now();
        let err = Engine::connect_to(&address).await.unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no Docker engine answers at tcp://127.0.0.1:9"
        );
        assert!(started.elapsed() <= CONNECT_TIMEOUT + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_missing_tls_file_is_named_like_the_docker_cli_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsFiles::in_dir(dir.path());
        let address = EngineAddress::parse("tcp://127.0.0.1:9", Some(tls.clone())).unwrap();
        let message = |err: EngineError| {
            assert!(matches!(err, EngineError::TlsFile { .. }), "{err:?}");
            crate::error::chain(&err)
        };
        let err = Engine::connect_to(&address).await.unwrap_err();
        assert_eq!(
            message(err),
            format!(
                "could not read CA certificate \"{}\" for the Docker engine at \
                 tcp://127.0.0.1:9: No such file or directory (os error 2)",
                tls.ca.display()
            )
        );
        std::fs::write(&tls.ca, "").unwrap();
        std::fs::write(&tls.key, "").unwrap();
        let err = Engine::connect_to(&address).await.unwrap_err();
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(
            help.contains(&dir.path().display().to_string()) && help.contains("DOCKER_CERT_PATH"),
            "{help}"
        );
        assert!(message(err).starts_with(&format!(
            "could not read client certificate \"{}\"",
            tls.cert.display()
        )));
    }

    /// The errors rustls gives in a handshake, wrapped as they reach us: in an `io::Error`
    /// in another (hyper-rustls), in hyper's connect error (whose constructor is private:
    /// bollard's `IOError` stands in for it) in bollard's.
    fn failed_handshake(error: rustls::Error) -> bollard::errors::Error {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
        let io = std::io::Error::other(io);
        bollard::errors::Error::IOError { err: io }
    }

    #[test]
    fn an_untrusted_certificate_says_so_and_keeps_the_cause() {
        let tls = TlsFiles::in_dir(std::path::Path::new("/certs"));
        let untrusted = failed_handshake(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let err = tls_handshake("tcp://127.0.0.1:2376", &tls, untrusted).unwrap();
        assert_eq!(
            crate::error::chain(&err),
            "the Docker engine at tcp://127.0.0.1:2376 answered, but its certificate is not \
             trusted: invalid peer certificate: UnknownIssuer"
        );
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("/certs/ca.pem"), "{help}");

        let refused = failed_handshake(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadCertificate,
        ));
        let err = tls_handshake("tcp://127.0.0.1:2376", &tls, refused).unwrap();
        assert!(
            err.to_string()
                .ends_with("it refused cargo-gear's client certificate"),
            "{err}"
        );

        let refused_connection = bollard::errors::Error::IOError {
            err: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(tls_handshake("tcp://127.0.0.1:2376", &tls, refused_connection).is_err());
    }
}
