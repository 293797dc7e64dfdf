//! A remote engine: the binary against a dockerd that listens on `tcp://127.0.0.1:PORT` with
//! `--tlsverify`, through `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` alone.
//! The listener is the one `cargo xtask test`'s own engine opens, with certificates xtask
//! made (xtask/src/tls.rs): build, run and push (to the test registry) through it; a client
//! trusting another CA gets a fast, clear error; a missing certificate file is named.
//!
//! Run with `cargo xtask test -- --test it engine_tls::`.

use crate::e2e_registry::tags;
use crate::scratch::{self, BusyboxGear, PROBE_SAYS};
use crate::support;

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use cargo_gear::engine::{EngineAddress, TlsFiles};

/// Any one command: a busybox build, run or push.
const TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// A connection that must fail, not hang.
const FAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// `DOCKER_HOST`, `DOCKER_TLS_VERIFY=1` and `DOCKER_CERT_PATH`.
fn tls_env(host: &str, certs: &Path) -> Vec<(&'static str, OsString)> {
    vec![
        ("DOCKER_HOST", host.into()),
        ("DOCKER_TLS_VERIFY", "1".into()),
        ("DOCKER_CERT_PATH", certs.into()),
    ]
}

#[test]
fn builds_runs_and_pushes_through_a_tls_engine() {
    let Some(tls) = support::tls_engine() else {
        return;
    };
    let Some(registry) = support::registry() else {
        return;
    };
    let mut ws = BusyboxGear::new("tls", tls_env(&tls.host, &tls.certs));
    let address = EngineAddress::parse(&tls.host, Some(TlsFiles::in_dir(&tls.certs))).unwrap();
    assert_eq!(ws.connect(&address).address(), tls.host);

    let built = ws.build(&[], TIMEOUT);
    built.assert_success();
    assert_eq!(built.counts(), [1, 1, 0, 0, 0], "{}", built.out.stderr);
    let plan = ws.plan(&[], TIMEOUT);
    assert_eq!(plan.stale(), Default::default(), "fresh after the build");
    let content_tag = plan.content_tag("probe");
    assert!(
        ws.image(content_tag).is_some(),
        "{content_tag} is in the engine behind the TLS listener"
    );

    let ran = ws.gear(&["run", "-p", "probe"], TIMEOUT);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let said = format!("{PROBE_SAYS} built-{}", ws.id);
    assert!(
        ran.stdout.contains(&said) || ran.stderr.contains(&said),
        "{ran:?}"
    );

    let prefix = format!("{}/{}", registry.open, ws.id);
    let pushed = ws.gear(&["--registry", &prefix, "push", "-p", "probe"], TIMEOUT);
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);
    let remote_repo = format!("{}/{}", ws.id, ws.probe_repo());
    assert_eq!(
        tags(&registry.open, &remote_repo, None),
        scratch::names(&[plan.content_tag_name("probe"), "1.0.0"])
    );
}

/// `DOCKER_CERT_PATH` of `ca.pem` from `ca_from`, and `cert.pem`, `key.pem` from `client_from`.
fn mixed_certs(ca_from: &Path, client_from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(ca_from.join("ca.pem"), dir.path().join("ca.pem")).unwrap();
    for file in ["cert.pem", "key.pem"] {
        std::fs::copy(client_from.join(file), dir.path().join(file)).unwrap();
    }
    dir
}

/// `cargo gear build` with the certificates in `certs`, which must fail in the handshake with
/// all of `needed` in its report.
fn assert_handshake_fails(tls: &support::TlsEngine, certs: &Path, needed: &[String]) {
    let ws = BusyboxGear::new("tls-refused", tls_env(&tls.host, certs));
    let out = ws.gear(&["build"], FAIL_TIMEOUT);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let message = out.message();
    for needed in needed.iter().map(String::as_str).chain([
        "gear::engine-tls-handshake",
        &format!("the Docker engine at {} answered, but", tls.host),
    ]) {
        assert!(message.contains(needed), "{needed}\nin:\n{}", out.stderr);
    }
    assert!(!message.contains("no Docker engine answers"), "{message}");
}

#[test]
fn an_engine_certificate_of_another_ca_is_not_trusted_and_says_so() {
    let Some(tls) = support::tls_engine() else {
        return;
    };
    let certs = mixed_certs(&tls.stranger, &tls.certs);
    assert_handshake_fails(
        &tls,
        certs.path(),
        &[
            "its certificate is not trusted".to_owned(),
            // The cause, as rustls gives it, and the file to look at.
            "invalid peer certificate: UnknownIssuer".to_owned(),
            certs.path().join("ca.pem").display().to_string(),
        ],
    );
}

#[test]
fn a_client_certificate_of_another_ca_is_refused_and_says_so() {
    let Some(tls) = support::tls_engine() else {
        return;
    };
    let certs = mixed_certs(&tls.certs, &tls.stranger);
    assert_handshake_fails(
        &tls,
        certs.path(),
        &[
            "it refused cargo-gear's client certificate".to_owned(),
            "received fatal alert: BadCertificate".to_owned(),
            certs.path().join("cert.pem").display().to_string(),
        ],
    );
}

/// No engine needed: the file is missing before anything is dialled.
#[test]
fn a_missing_certificate_file_is_named_like_the_docker_cli_names_it() {
    let certs = tempfile::tempdir().unwrap();
    for file in ["ca.pem", "key.pem"] {
        std::fs::write(certs.path().join(file), "").unwrap();
    }
    let ws = BusyboxGear::new("tls-missing", tls_env("tcp://127.0.0.1:9", certs.path()));
    let out = ws.gear(&["build"], FAIL_TIMEOUT);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let message = out.message();
    let cert = certs.path().join("cert.pem");
    for needed in [
        format!(
            "could not read client certificate \"{}\" for the Docker engine at tcp://127.0.0.1:9",
            cert.display()
        ),
        "No such file or directory".to_owned(),
        "gear::engine-tls".to_owned(),
        "DOCKER_CERT_PATH".to_owned(),
    ] {
        assert!(message.contains(&needed), "{needed}\nin:\n{}", out.stderr);
    }
}
