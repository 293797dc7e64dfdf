//! The own engine's second listener, `tcp://127.0.0.1:PORT` with `--tlsverify`, for the remote
//! engine test (cargo-gear/tests/it/engine_tls.rs): certificates made with the openssl CLI
//! under target/engine/tls/ (a CA, the engine's certificate for 127.0.0.1 and localhost, a
//! client certificate, and a second CA with a client certificate of its own, which the engine
//! does not trust), and the address the running engine listens on, passed to the tests in
//! `CARGO_GEAR_TEST_TLS_*`.
//!
//! The unix socket stays the engine's main address (dockerd applies TLS to tcp listeners only).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cmd, host};

/// `tcp://127.0.0.1:PORT` of the engine's TLS listener.
pub const ENV_HOST: &str = "CARGO_GEAR_TEST_TLS_HOST";
/// The client's `DOCKER_CERT_PATH`: `ca.pem`, `cert.pem`, `key.pem`.
pub const ENV_CERTS: &str = "CARGO_GEAR_TEST_TLS_CERTS";
/// Another CA's `ca.pem`, and `cert.pem`, `key.pem` of a client it signed: neither the engine
/// nor its clients trust it.
pub const ENV_STRANGER: &str = "CARGO_GEAR_TEST_TLS_STRANGER";

const DAYS: &str = "3650";

/// The certificates in a `tls/` directory: `server/` for dockerd, `client/` for
/// `DOCKER_CERT_PATH`, `stranger/` (another CA's, and a client of it); the CAs' keys stay in
/// `ca/`.
pub struct Certs {
    dir: PathBuf,
}

impl Certs {
    /// The certificates under `dir`, as they are.
    pub fn at(dir: &Path) -> Certs {
        Certs {
            dir: dir.to_owned(),
        }
    }

    /// The certificates under `dir`, made first if any is missing.
    pub fn ensure(dir: &Path) -> Result<Certs> {
        let certs = Certs::at(dir);
        let all = [
            certs.server_file("ca.pem"),
            certs.server_file("cert.pem"),
            certs.server_file("key.pem"),
            certs.client_dir().join("cert.pem"),
            certs.client_dir().join("key.pem"),
            certs.client_dir().join("ca.pem"),
            certs.stranger_dir().join("ca.pem"),
            certs.stranger_dir().join("cert.pem"),
            certs.stranger_dir().join("key.pem"),
        ];
        if !all.iter().all(|f| f.is_file()) {
            certs.make()?;
        }
        Ok(certs)
    }

    /// dockerd's flags: TLS required, clients must present a certificate of the CA.
    pub fn dockerd_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--tlsverify".into()];
        for (flag, file) in [
            ("--tlscacert", "ca.pem"),
            ("--tlscert", "cert.pem"),
            ("--tlskey", "key.pem"),
        ] {
            args.push(flag.into());
            args.push(self.server_file(file).into());
        }
        args
    }

    /// `DOCKER_CERT_PATH` of a client of the engine.
    pub fn client_dir(&self) -> PathBuf {
        self.dir.join("client")
    }

    /// Another CA (`ca.pem`), which signed neither the engine's certificate nor its
    /// clients', and a client certificate and key it signed.
    pub fn stranger_dir(&self) -> PathBuf {
        self.dir.join("stranger")
    }

    fn server_file(&self, name: &str) -> PathBuf {
        self.dir.join("server").join(name)
    }

    /// Makes everything anew with openssl (P-256 keys: quick, and both Go and rustls take them).
    fn make(&self) -> Result {
        host::require("openssl")?;
        let work = self.dir.join("ca");
        let stranger = self.stranger_dir();
        for dir in [
            &work,
            &self.dir.join("server"),
            &self.client_dir(),
            &stranger,
        ] {
            fs::create_dir_all(dir)?;
        }
        let ca = self.server_file("ca.pem");
        let ca_key = work.join("ca-key.pem");
        self_signed_ca(&ca, &ca_key, "cargo-gear test CA")?;
        let other_ca = stranger.join("ca.pem");
        let other_ca_key = work.join("stranger-ca-key.pem");
        self_signed_ca(&other_ca, &other_ca_key, "a CA the engine does not trust")?;
        let sign = |(ca, ca_key): (&Path, &Path),
                    name: &str,
                    subject: &str,
                    extensions: &str,
                    cert: &Path,
                    key: &Path| {
            let csr = work.join(format!("{name}.csr"));
            let ext = work.join(format!("{name}.ext"));
            fs::write(&ext, extensions)?;
            cmd::run_quiet(
                openssl(&["req", "-new", "-nodes"])
                    .args(P256)
                    .arg("-keyout")
                    .arg(key)
                    .arg("-out")
                    .arg(&csr)
                    .args(["-subj", subject]),
            )?;
            cmd::run_quiet(
                openssl(&["x509", "-req", "-days", DAYS, "-CAcreateserial"])
                    .arg("-in")
                    .arg(&csr)
                    .arg("-CA")
                    .arg(ca)
                    .arg("-CAkey")
                    .arg(ca_key)
                    .arg("-extfile")
                    .arg(&ext)
                    .arg("-out")
                    .arg(cert),
            )
        };
        let ours = (ca.as_path(), ca_key.as_path());
        sign(
            ours,
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
             keyUsage=critical,digitalSignature\n",
            &self.server_file("cert.pem"),
            &self.server_file("key.pem"),
        )?;
        let client = self.client_dir();
        let client_extensions = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n";
        sign(
            ours,
            "client",
            "/CN=cargo-gear test client",
            client_extensions,
            &client.join("cert.pem"),
            &client.join("key.pem"),
        )?;
        sign(
            (&other_ca, &other_ca_key),
            "stranger",
            "/CN=a client the engine does not trust",
            client_extensions,
            &stranger.join("cert.pem"),
            &stranger.join("key.pem"),
        )?;
        fs::copy(&ca, client.join("ca.pem"))?;
        eprintln!(
            "xtask: made TLS certificates for the engine's tcp listener in {}",
            self.dir.display()
        );
        Ok(())
    }
}

const P256: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

fn openssl(args: &[&str]) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    cmd
}

fn self_signed_ca(cert: &Path, key: &Path, name: &str) -> Result {
    cmd::run_quiet(
        openssl(&["req", "-x509", "-new", "-nodes", "-days", DAYS])
            .args(P256)
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(cert)
            .args(["-subj", &format!("/CN={name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    )
}

/// A running engine's TLS listener and the certificates of its clients.
pub struct Endpoint {
    /// `tcp://127.0.0.1:PORT`.
    pub host: String,
    pub certs: Certs,
}

impl Endpoint {
    /// Tells a test run where the listener is.
    pub fn export(&self, cmd: &mut Command) {
        cmd.env(ENV_HOST, &self.host)
            .env(ENV_CERTS, self.certs.client_dir())
            .env(ENV_STRANGER, self.certs.stranger_dir());
    }
}
