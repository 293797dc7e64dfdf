//! Shared by the tests that need a real Docker engine: whether they run, the connection, the
//! fixture images and unique names.
//!
//! `CARGO_GEAR_TEST_ENGINE=1` (set by `cargo xtask test`): the tests run and fail when no engine
//! answers. `CARGO_GEAR_TEST_ENGINE=0`: they are skipped. Unset: skipped with a note, except
//! with `CI=true`, where they run (and so fail without an engine). The registry tests follow
//! the same rules for the registries `cargo xtask test` starts (see [`registry`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cargo_gear::engine::{Engine, EngineAddress};

/// The busybox image `cargo xtask engine start` creates.
pub const BUSYBOX: &str = "cargo-gear-fixture/busybox:1";
/// [`BUSYBOX`] whose configuration says linux/arm64 (xtask/src/fixtures.rs; never run).
pub const BUSYBOX_ARM64: &str = "cargo-gear-fixture/busybox-arm64:1";
/// The Debian bookworm + python3 image `cargo xtask engine start` creates.
pub const DEBIAN_PYTHON: &str = "cargo-gear-fixture/debian-python:bookworm";
/// The Debian fixture with poetry and uv (xtask/fixtures/python-poetry).
pub const PYTHON_POETRY: &str = "cargo-gear-fixture/python-poetry:bookworm";
/// Label put on everything the tests create, for cleaning up after a crashed run.
pub const TEST_LABEL: &str = "cargo-gear.test";

/// Whether the engine tests must run: `Some(reason)` when they are to be skipped.
pub fn skip_reason() -> Option<&'static str> {
    match std::env::var("CARGO_GEAR_TEST_ENGINE").as_deref() {
        Ok("1") => None,
        Ok("0") => Some("CARGO_GEAR_TEST_ENGINE=0"),
        Ok(other) => panic!("CARGO_GEAR_TEST_ENGINE must be 0 or 1, not `{other}`"),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => None,
        Err(_) => Some(
            "CARGO_GEAR_TEST_ENGINE is unset (`cargo xtask test` sets it and starts an engine)",
        ),
    }
}

/// The engine to test against, or `None` (after printing why) when the engine tests are
/// skipped. Panics when they must run and no engine answers. Use as
/// `let Some(engine) = support::engine().await else { return };`.
pub async fn engine() -> Option<Engine> {
    if let Some(reason) = skip_reason() {
        eprintln!("note: skipping a Docker engine test: {reason}");
        return None;
    }
    let address =
        EngineAddress::from_env().unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    match Engine::connect_to(&address).await {
        Ok(engine) => Some(engine),
        Err(e) => panic!(
            "the engine tests must run here (CARGO_GEAR_TEST_ENGINE=1 or CI=true) but:\n{:?}",
            miette::Report::new(e)
        ),
    }
}

/// The two registries `cargo xtask test` starts for the registry tests (xtask/src/registry.rs).
#[derive(Debug, Clone)]
pub struct Registries {
    /// `127.0.0.1:PORT`, no auth (`CARGO_GEAR_TEST_REGISTRY`).
    pub open: String,
    /// `127.0.0.1:PORT`, htpasswd basic auth (`CARGO_GEAR_TEST_AUTH_REGISTRY`).
    pub auth: String,
    /// Its user and password (`CARGO_GEAR_TEST_AUTH_USER`, `CARGO_GEAR_TEST_AUTH_PASSWORD`).
    pub user: String,
    pub password: String,
}

/// The test registries, or `None` (after a note) when the registry tests are skipped: with
/// the engine tests, or when the variables are unset and the engine tests may skip. Panics
/// when they are unset but the engine tests must run (`CARGO_GEAR_TEST_ENGINE=1`, `CI=true`).
pub fn registry() -> Option<Registries> {
    if let Some(reason) = skip_reason() {
        eprintln!("note: skipping a registry test: {reason}");
        return None;
    }
    let var = |name: &str| match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "the registry tests must run here (CARGO_GEAR_TEST_ENGINE=1 or CI=true) but {name} is unset: \
             `cargo xtask test` starts the registries (Debian's docker-registry) and sets it"
        ),
    };
    Some(Registries {
        open: var("CARGO_GEAR_TEST_REGISTRY"),
        auth: var("CARGO_GEAR_TEST_AUTH_REGISTRY"),
        user: var("CARGO_GEAR_TEST_AUTH_USER"),
        password: var("CARGO_GEAR_TEST_AUTH_PASSWORD"),
    })
}

/// The engine's TLS listener `cargo xtask test` names (xtask/src/tls.rs): its own engine
/// listens on `tcp://127.0.0.1:PORT` with `--tlsverify` too.
#[derive(Debug, Clone)]
pub struct TlsEngine {
    /// `tcp://127.0.0.1:PORT` (`CARGO_GEAR_TEST_TLS_HOST`).
    pub host: String,
    /// `DOCKER_CERT_PATH` of a client: ca.pem, cert.pem, key.pem (`CARGO_GEAR_TEST_TLS_CERTS`).
    pub certs: PathBuf,
    /// Another CA's `ca.pem`, and `cert.pem`, `key.pem` of a client it signed: neither the
    /// engine nor its clients trust it (`CARGO_GEAR_TEST_TLS_STRANGER`).
    pub stranger: PathBuf,
}

/// The TLS listener, or `None` (after a note) when the engine tests are skipped, or when the
/// engine `cargo xtask test` uses is not one it started (only its own has the listener). With
/// `CI=true`, where xtask starts its own engine, a missing listener panics.
pub fn tls_engine() -> Option<TlsEngine> {
    if let Some(reason) = skip_reason() {
        eprintln!("note: skipping a TLS engine test: {reason}");
        return None;
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("CARGO_GEAR_TEST_TLS_HOST"),
        var("CARGO_GEAR_TEST_TLS_CERTS"),
        var("CARGO_GEAR_TEST_TLS_STRANGER"),
    ) {
        (Some(host), Some(certs), Some(stranger)) => Some(TlsEngine {
            host,
            certs: certs.into(),
            stranger: stranger.into(),
        }),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "CI=true but CARGO_GEAR_TEST_TLS_HOST is unset: the TLS engine test must run in CI, \
             on the engine `cargo xtask test` starts itself (it listens on tcp://127.0.0.1:PORT \
             with --tlsverify); unset DOCKER_HOST so that xtask starts it"
        ),
        _ => {
            eprintln!(
                "note: skipping a TLS engine test: CARGO_GEAR_TEST_TLS_HOST is unset (only the \
                 engine `cargo xtask test` starts itself listens with TLS, and it uses another one)"
            );
            None
        }
    }
}

/// The `unix://…` socket of the Podman service `cargo xtask test` starts
/// (`CARGO_GEAR_TEST_PODMAN_HOST`, xtask/src/podman.rs), or `None` (after a note) when the
/// engine tests are skipped. Panics when it is unset but the engine tests must run.
pub fn podman() -> Option<String> {
    if let Some(reason) = skip_reason() {
        eprintln!("note: skipping a Podman test: {reason}");
        return None;
    }
    match std::env::var("CARGO_GEAR_TEST_PODMAN_HOST") {
        Ok(host) if !host.is_empty() => Some(host),
        _ => panic!(
            "the Podman tests must run here (CARGO_GEAR_TEST_ENGINE=1 or CI=true) but \
             CARGO_GEAR_TEST_PODMAN_HOST is unset: `cargo xtask test` installs Debian's podman, \
             starts its service and sets it"
        ),
    }
}

/// Panics unless the fixture image exists, saying how to make it.
pub async fn require_fixture(engine: &Engine, image: &str) {
    let found = engine
        .image(image)
        .await
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert!(
        found.is_some(),
        "fixture image `{image}` is missing from the engine at {}: `cargo xtask engine start` creates it",
        engine.address()
    );
}

/// A name no other test (or concurrent test run) uses: `{prefix}-{pid}-{n}-{nanos}`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A unique `cargo-gear-test/{name}:{tag}` image reference.
pub fn unique_tag(name: &str) -> String {
    format!("cargo-gear-test/{name}:{}", unique("t"))
}

/// Runs `sh -c script` in `image`, returning (exit code, stdout).
pub async fn sh(engine: &Engine, image: &str, script: &str) -> (i64, String) {
    let spec = cargo_gear::engine::RunSpec {
        image: image.into(),
        cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
        auto_remove: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    let code = engine
        .run_container(spec, &mut |s, b| {
            if s == cargo_gear::engine::StdStream::Stdout {
                out.extend_from_slice(b);
            }
        })
        .await
        .unwrap();
    (code, String::from_utf8(out).unwrap())
}

/// Runs `cargo-gear gear --root ROOT ARGS…` (no color, no inherited target directory).
pub fn cargo_gear(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cargo-gear"))
        .arg("gear")
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("CARGO_TARGET_DIR")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// What `cargo gear plan --format json` says of layer `name` in the `--root` tree `root`:
/// (content tag, status, reasons).
pub fn planned(root: &std::path::Path, name: &str) -> (String, String, Vec<String>) {
    let out = cargo_gear(root, &["plan", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in {json}"))
        .clone();
    let reasons = layer["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    (
        layer["content_tag"].as_str().unwrap().to_string(),
        layer["status"].as_str().unwrap().to_string(),
        reasons,
    )
}

/// How long one step of [`http`] may take.
const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// A registry's answer to [`http`].
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request to a test registry at `addr` (`HOST:PORT`), with basic `auth` and a
/// `body` (content type, text) when given: the server closes the connection after its
/// answer, so the body is everything after the head. Every step has a timeout.
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<(&str, &str)>,
) -> Response {
    use base64::Engine as _;
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};

    let socket = addr.to_socket_addrs().unwrap().next().unwrap();
    let mut stream = TcpStream::connect_timeout(&socket, HTTP_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to the registry {addr}: {e}"));
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: \
         application/vnd.docker.distribution.manifest.v2+json, \
         application/vnd.oci.image.manifest.v1+json, application/json\r\n"
    );
    if let Some((user, password)) = auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request += &format!("Authorization: Basic {token}\r\n");
    }
    if let Some((content_type, text)) = body {
        request += &format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            text.len()
        );
    }
    request += "\r\n";
    if let Some((_, text)) = body {
        request += text;
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"));
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} http://{addr}{path}: not HTTP: {raw}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}
