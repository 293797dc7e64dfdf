//! Where the Docker engine listens: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` and
//! docker contexts (`DOCKER_CONTEXT`, `currentContext`) read the way the docker CLI reads them.

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

    /// Each file can be read; the first that cannot is named, as the docker CLI names it
    /// (bollard reads the client certificate and key only during the handshake, where a
    /// missing one would look like an engine refusing us).
    pub fn check_readable(&self, address: &str) -> Result<(), EngineError> {
        for (role, path) in [
            ("CA certificate", &self.ca),
            ("client certificate", &self.cert),
            ("client key", &self.key),
        ] {
            std::fs::File::open(path).map_err(|source| EngineError::TlsFile {
                address: address.to_owned(),
                role,
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The docker CLI's configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// What the docker CLI reads from the environment to find its engine.
#[derive(Debug, Default)]
struct DockerEnv {
    /// `DOCKER_HOST`.
    host: Option<String>,
    /// `DOCKER_TLS_VERIFY` is set.
    tls_verify: bool,
    /// `DOCKER_CERT_PATH`.
    cert_path: Option<PathBuf>,
    /// `DOCKER_CONTEXT`.
    context: Option<String>,
    /// [`docker_config_dir`]: `config.json` (its `currentContext`), `contexts/`, default certificates.
    config_dir: Option<PathBuf>,
}

/// The part of a docker context's `meta.json` that says where its engine is.
#[derive(Debug, serde::Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: ContextEndpoints,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ContextEndpoints {
    docker: Option<ContextEndpoint>,
}

#[derive(Debug, serde::Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host")]
    host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

impl DockerEnv {
    fn read() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        DockerEnv {
            host: var("DOCKER_HOST"),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            context: var("DOCKER_CONTEXT"),
            config_dir: docker_config_dir(),
        }
    }

    /// The docker CLI's order: `DOCKER_HOST` (with TLS when `DOCKER_TLS_VERIFY` is set), else
    /// the context `DOCKER_CONTEXT` names, else `config.json`'s `currentContext`, else the
    /// `default` context, which is [`DEFAULT_SOCKET`].
    fn address(&self) -> Result<EngineAddress, EngineError> {
        if let Some(host) = &self.host {
            return EngineAddress::parse(host, self.env_tls());
        }
        match self.context_name()? {
            Some(name) if name != "default" => self.context_address(&name),
            _ => EngineAddress::parse(&format!("unix://{DEFAULT_SOCKET}"), None),
        }
    }

    /// Certificates from `DOCKER_CERT_PATH` (default: the configuration directory) when
    /// `DOCKER_TLS_VERIFY` is set.
    fn env_tls(&self) -> Option<TlsFiles> {
        self.tls_verify.then(|| {
            let dir = self
                .cert_path
                .clone()
                .or_else(|| self.config_dir.clone())
                .unwrap_or_else(|| PathBuf::from(".docker"));
            TlsFiles::in_dir(&dir)
        })
    }

    /// `DOCKER_CONTEXT`, else `currentContext` in `config.json`.
    fn context_name(&self) -> Result<Option<String>, EngineError> {
        if let Some(name) = &self.context {
            return Ok(Some(name.clone()));
        }
        let Some(dir) = &self.config_dir else {
            return Ok(None);
        };
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(rename = "currentContext")]
            current_context: Option<String>,
        }
        let path = dir.join("config.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(context_error("(current)", &path, e.to_string())),
        };
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| context_error("(current)", &path, e.to_string()))?;
        Ok(config.current_context.filter(|c| !c.is_empty()))
    }

    /// The engine of the docker context `name`: `contexts/meta/<sha256 of name>/meta.json`,
    /// with TLS when `contexts/tls/<sha256 of name>/docker/` holds its certificates.
    fn context_address(&self, name: &str) -> Result<EngineAddress, EngineError> {
        use sha2::Digest as _;
        let id = format!("{:x}", sha2::Sha256::digest(name.as_bytes()));
        let dir = self
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".docker"));
        let meta = dir.join("contexts/meta").join(&id).join("meta.json");
        let text = std::fs::read_to_string(&meta).map_err(|e| {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "there is no such context".to_owned(),
                _ => e.to_string(),
            };
            context_error(name, &meta, reason)
        })?;
        let meta_json: ContextMeta =
            serde_json::from_str(&text).map_err(|e| context_error(name, &meta, e.to_string()))?;
        let endpoint = meta_json
            .endpoints
            .docker
            .ok_or_else(|| context_error(name, &meta, "it has no docker endpoint".to_owned()))?;
        if endpoint.skip_tls_verify {
            return Err(context_error(
                name,
                &meta,
                "it skips TLS verification (SkipTLSVerify), which cargo-gear does not do"
                    .to_owned(),
            ));
        }
        let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
        let tls = tls_dir.is_dir().then(|| TlsFiles::in_dir(&tls_dir));
        EngineAddress::parse(&endpoint.host, tls)
    }
}

fn context_error(name: &str, path: &Path, reason: String) -> EngineError {
    EngineError::Context {
        name: name.to_owned(),
        path: path.to_owned(),
        reason,
    }
}

impl EngineAddress {
    /// The address the docker CLI would use: `DOCKER_HOST` (with TLS when `DOCKER_TLS_VERIFY`
    /// is set, certificates from `DOCKER_CERT_PATH` or `~/.docker`), else the docker context
    /// `DOCKER_CONTEXT` or `config.json` names, else [`DEFAULT_SOCKET`].
    pub fn from_env() -> Result<Self, EngineError> {
        DockerEnv::read().address()
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
        let env = |host: Option<&str>, tls_verify, cert_path: Option<&str>, config_dir| DockerEnv {
            host: host.map(str::to_owned),
            tls_verify,
            cert_path: cert_path.map(PathBuf::from),
            context: None,
            config_dir,
        };
        assert_eq!(
            env(None, false, None, None).address().unwrap(),
            EngineAddress::Unix(DEFAULT_SOCKET.into())
        );
        let home_docker = Some(PathBuf::from("/home/me/.docker"));
        let tls = env(Some("tcp://box"), true, None, home_docker)
            .address()
            .unwrap();
        assert_eq!(
            tls,
            EngineAddress::Tcp {
                host: "box".into(),
                port: 2376,
                tls: Some(TlsFiles::in_dir(Path::new("/home/me/.docker"))),
            }
        );
        assert!(tls.is_tls());
        let certs = env(Some("tcp://box:1"), true, Some("/certs"), None)
            .address()
            .unwrap();
        assert!(
            matches!(certs, EngineAddress::Tcp { port: 1, tls: Some(t), .. } if t.key == Path::new("/certs/key.pem"))
        );
        // TLS settings do not apply to a unix socket.
        assert!(
            !env(Some("unix:///s"), true, None, None)
                .address()
                .unwrap()
                .is_tls()
        );
    }

    /// A docker configuration directory holding the contexts `docker context create` would
    /// write: `remote` (TLS, with its certificates), `plain` (tcp without TLS) and `careless`
    /// (skips TLS verification); `currentContext` in config.json is `current`.
    fn contexts() -> tempfile::TempDir {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let write = |path: PathBuf, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let id = |name: &str| format!("{:x}", sha2::Sha256::digest(name.as_bytes()));
        for (name, host, skip) in [
            ("remote", "tcp://builder.example:2376", false),
            ("plain", "tcp://10.0.0.2:2375", false),
            ("current", "unix:///run/current.sock", false),
            ("careless", "tcp://10.0.0.3:2376", true),
        ] {
            let meta = serde_json::json!({
                "Name": name,
                "Metadata": {"Description": ""},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}},
            });
            write(
                dir.path()
                    .join("contexts/meta")
                    .join(id(name))
                    .join("meta.json"),
                &meta.to_string(),
            );
        }
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            let tls = dir.path().join("contexts/tls").join(id("remote"));
            write(
                tls.join("docker").join(file),
                "-----BEGIN CERTIFICATE-----\n",
            );
        }
        write(
            dir.path().join("config.json"),
            r#"{"auths": {}, "currentContext": "current"}"#,
        );
        dir
    }

    #[test]
    fn docker_contexts_like_the_docker_cli() {
        let config = contexts();
        let env = |host: Option<&str>, context: Option<&str>| DockerEnv {
            host: host.map(str::to_owned),
            context: context.map(str::to_owned),
            config_dir: Some(config.path().to_owned()),
            ..DockerEnv::default()
        };
        let id = |name: &str| {
            use sha2::Digest as _;
            format!("{:x}", sha2::Sha256::digest(name.as_bytes()))
        };
        // DOCKER_CONTEXT names the context; its certificates make it a TLS engine.
        assert_eq!(
            env(None, Some("remote")).address().unwrap(),
            EngineAddress::Tcp {
                host: "builder.example".into(),
                port: 2376,
                tls: Some(TlsFiles::in_dir(
                    &config
                        .path()
                        .join("contexts/tls")
                        .join(id("remote"))
                        .join("docker")
                )),
            }
        );
        assert_eq!(
            env(None, Some("plain")).address().unwrap().to_string(),
            "tcp://10.0.0.2:2375"
        );
        assert!(!env(None, Some("plain")).address().unwrap().is_tls());
        // Without DOCKER_CONTEXT, config.json's currentContext.
        assert_eq!(
            env(None, None).address().unwrap(),
            EngineAddress::Unix("/run/current.sock".into())
        );
        // `default` is DOCKER_HOST or the default socket; DOCKER_HOST wins over any context.
        assert_eq!(
            env(None, Some("default")).address().unwrap(),
            EngineAddress::Unix(DEFAULT_SOCKET.into())
        );
        assert_eq!(
            env(Some("unix:///h.sock"), Some("remote"))
                .address()
                .unwrap(),
            EngineAddress::Unix("/h.sock".into())
        );
        // A context that does not exist, or that skips verification, is an error naming it.
        let missing = env(None, Some("nowhere")).address().unwrap_err();
        assert!(
            matches!(missing, EngineError::Context { .. }),
            "{missing:?}"
        );
        assert_eq!(
            missing.to_string(),
            format!(
                "docker context `nowhere`: cannot use {}: there is no such context",
                config
                    .path()
                    .join("contexts/meta")
                    .join(id("nowhere"))
                    .join("meta.json")
                    .display()
            )
        );
        let careless = env(None, Some("careless"))
            .address()
            .unwrap_err()
            .to_string();
        assert!(careless.contains("SkipTLSVerify"), "{careless}");
    }
}
