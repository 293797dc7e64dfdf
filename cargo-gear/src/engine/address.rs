//! Where the Docker engine listens: `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`
//! read the way the docker CLI reads them.

use std::fmt;
use std::path::{Path, PathBuf};

use super::EngineError;

/// The engine's socket when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

const DEFAULT_TCP_PORT: u16 = 2375;
const DEFAULT_TLS_PORT: u16 = 2376;

/// A Docker engine's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineAddress {
    /// `unix://PATH`.
    Unix(PathBuf),
    /// `tcp://HOST:PORT`, with TLS client certificates when `tls` is set.
    Tcp {
        host: String,
        port: u16,
        tls: Option<TlsFiles>,
    },
}

/// Client certificates for a TLS engine: `ca.pem`, `cert.pem` and `key.pem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`, as the docker CLI expects them.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

impl EngineAddress {
    /// The address the docker CLI would use: `DOCKER_HOST` (with TLS when `DOCKER_TLS_VERIFY`
    /// is set, certificates from `DOCKER_CERT_PATH` or `~/.docker`), else [`DEFAULT_SOCKET`].
    pub fn from_env() -> Result<Self, EngineError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::from_vars(
            var("DOCKER_HOST").as_deref(),
            var("DOCKER_TLS_VERIFY").is_some(),
            var("DOCKER_CERT_PATH").as_deref(),
            var("HOME").as_deref(),
        )
    }

    fn from_vars(
        host: Option<&str>,
        tls_verify: bool,
        cert_path: Option<&str>,
        home: Option<&str>,
    ) -> Result<Self, EngineError> {
        let tls = tls_verify.then(|| {
            let dir = match (cert_path, home) {
                (Some(dir), _) => PathBuf::from(dir),
                (None, Some(home)) => Path::new(home).join(".docker"),
                (None, None) => PathBuf::from(".docker"),
            };
            TlsFiles::in_dir(&dir)
        });
        Self::parse(host.unwrap_or("unix:///var/run/docker.sock"), tls)
    }

    /// Parses a `DOCKER_HOST`-style address. `tls` applies to `tcp://` addresses only;
    /// `https://HOST` asks for TLS and so needs it.
    pub fn parse(host: &str, tls: Option<TlsFiles>) -> Result<Self, EngineError> {
        let invalid = |reason: &str| EngineError::InvalidHost {
            value: host.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = host
            .split_once("://")
            .ok_or_else(|| invalid("it has no scheme"))?;
        match scheme {
            "unix" if rest.is_empty() => Err(invalid("the socket path is empty")),
            "unix" => Ok(EngineAddress::Unix(PathBuf::from(rest))),
            "tcp" | "http" | "https" => {
                if scheme == "https" && tls.is_none() {
                    return Err(invalid(
                        "https:// needs DOCKER_TLS_VERIFY=1 and client certificates in DOCKER_CERT_PATH",
                    ));
                }
                let rest = rest.strip_suffix('/').unwrap_or(rest);
                if rest.contains('/') {
                    return Err(invalid("a tcp address has no path"));
                }
                let default_port = if tls.is_some() {
                    DEFAULT_TLS_PORT
                } else {
                    DEFAULT_TCP_PORT
                };
                let (host_part, port) =
                    split_host_port(rest).ok_or_else(|| invalid("the port is not a number"))?;
                let host_part = if host_part.is_empty() {
                    "127.0.0.1"
                } else {
                    host_part
                };
                Ok(EngineAddress::Tcp {
                    host: host_part.to_owned(),
                    port: port.unwrap_or(default_port),
                    tls,
                })
            }
            "ssh" => Err(invalid(
                "ssh:// engines are not supported; forward the remote socket with \
                 `ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST` and set \
                 DOCKER_HOST=unix:///tmp/docker.sock",
            )),
            "npipe" => Err(invalid("Windows named pipes are not supported")),
            _ => Err(invalid("expected unix://PATH or tcp://HOST:PORT")),
        }
    }

    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, EngineAddress::Tcp { tls: Some(_), .. })
    }
}

/// `HOST[:PORT]` or `[V6]:PORT`; None when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(after_bracket) = s.strip_prefix('[') {
        let end = after_bracket.find(']')?;
        let host = &s[..end + 2];
        return match &after_bracket[end + 1..] {
            "" => Some((host, None)),
            port => Some((host, Some(port.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

impl fmt::Display for EngineAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineAddress::Unix(path) => write!(f, "unix://{}", path.display()),
            EngineAddress::Tcp { host, port, .. } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(host: &str) -> Result<EngineAddress, String> {
        EngineAddress::parse(host, None).map_err(|e| e.to_string())
    }

    #[test]
    fn unix_and_tcp_addresses() {
        assert_eq!(
            parse("unix:///run/docker.sock"),
            Ok(EngineAddress::Unix("/run/docker.sock".into()))
        );
        let tcp = |host: &str, port| {
            Ok(EngineAddress::Tcp {
                host: host.into(),
                port,
                tls: None,
            })
        };
        assert_eq!(parse("tcp://10.0.0.1:2375"), tcp("10.0.0.1", 2375));
        assert_eq!(parse("tcp://docker.internal"), tcp("docker.internal", 2375));
        assert_eq!(parse("tcp://:1234/"), tcp("127.0.0.1", 1234));
        assert_eq!(parse("http://[::1]:99"), tcp("[::1]", 99));
        assert_eq!(parse("tcp://[::1]"), tcp("[::1]", 2375));
        assert_eq!(
            parse("tcp://localhost:9").unwrap().to_string(),
            "tcp://localhost:9"
        );
        assert_eq!(
            parse("unix:///var/run/docker.sock").unwrap().to_string(),
            "unix:///var/run/docker.sock"
        );
    }

    #[test]
    fn bad_addresses_say_why() {
        for (host, needle) in [
            ("/var/run/docker.sock", "no scheme"),
            ("unix://", "empty"),
            ("tcp://host:port", "not a number"),
            ("tcp://host:2375/v1", "no path"),
            ("ssh://me@box", "not supported"),
            ("https://box:2376", "DOCKER_TLS_VERIFY"),
            ("fd://", "expected unix://PATH"),
        ] {
            let err = parse(host).unwrap_err();
            assert!(err.contains(host) && err.contains(needle), "{host}: {err}");
        }
    }

    #[test]
    fn environment_like_the_docker_cli() {
        assert_eq!(
            EngineAddress::from_vars(None, false, None, Some("/root")).unwrap(),
            EngineAddress::Unix(DEFAULT_SOCKET.into())
        );
        let tls =
            EngineAddress::from_vars(Some("tcp://box"), true, None, Some("/home/me")).unwrap();
        assert_eq!(
            tls,
            EngineAddress::Tcp {
                host: "box".into(),
                port: 2376,
                tls: Some(TlsFiles::in_dir(Path::new("/home/me/.docker"))),
            }
        );
        assert!(tls.is_tls());
        let certs =
            EngineAddress::from_vars(Some("tcp://box:1"), true, Some("/certs"), None).unwrap();
        assert!(
            matches!(certs, EngineAddress::Tcp { port: 1, tls: Some(t), .. } if t.key == Path::new("/certs/key.pem"))
        );
        // TLS settings do not apply to a unix socket.
        assert!(
            !EngineAddress::from_vars(Some("unix:///s"), true, None, None)
                .unwrap()
                .is_tls()
        );
    }
}
