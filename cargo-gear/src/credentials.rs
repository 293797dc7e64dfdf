//! Registry credentials, found exactly as the docker CLI finds them: `config.json` in
//! `$DOCKER_CONFIG` (default `~/.docker`), its `credHelpers`, `credsStore` and `auths`.
//! Secrets are handed to the engine and never printed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::engine::Credentials;
use crate::error::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: std::collections::HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The docker CLI's config file.
fn config_path() -> Option<PathBuf> {
    crate::engine::docker_config_dir().map(|dir| dir.join("config.json"))
}

/// `https://host/v1/` → `host`.
fn normalize(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Credentials for a registry host, or None when the user has none for it.
pub fn for_registry(host: &str) -> Result<Option<Credentials>, CliError> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io("read", &path, e)),
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| CliError::Workspace {
        message: format!("cannot read {}: {e}", path.display()),
        help: "fix the JSON, or point DOCKER_CONFIG at another directory".into(),
    })?;
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| normalize(k) == host)
        .map(|(_, h)| h.clone())
        .or(config.creds_store.clone());
    if let Some(helper) = helper {
        return from_helper(&helper, host);
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(k, _)| normalize(k) == host)
        .map(|(_, e)| e)
    else {
        return Ok(None);
    };
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(auth) = &entry.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((u, p)) => {
                username = Some(u.to_string());
                password = Some(p.to_string());
            }
            None => {
                return Err(CliError::Workspace {
                    message: format!(
                        "the `auth` entry for {host} in {} is not base64 of `user:password`",
                        path.display()
                    ),
                    help: format!("run `docker login {host}` again"),
                });
            }
        }
    }
    Ok(Some(Credentials {
        username,
        password,
        identitytoken: entry.identitytoken.clone(),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    }))
}

/// Asks `docker-credential-HELPER get` for the host's credentials.
fn from_helper(helper: &str, host: &str) -> Result<Option<Credentials>, CliError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::Workspace {
            message: format!("cannot run the docker credential helper `{program}`: {e}"),
            help: "install it, or remove `credsStore`/`credHelpers` from your docker config.json"
                .into(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CliError::io("run", &program, e))?;
    if !out.status.success() {
        // Helpers say "credentials not found in native keychain" when they have none.
        return Ok(None);
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|e| CliError::Workspace {
            message: format!("`{program} get` answered something that is not credentials: {e}"),
            help: "check the credential helper".into(),
        })?;
    let token = answer.username == "<token>";
    Ok(Some(Credentials {
        username: (!token).then_some(answer.username),
        password: (!token).then(|| answer.secret.clone()),
        identitytoken: token.then_some(answer.secret),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entry_is_decoded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"https://127.0.0.1:5001/v1/": {"auth": "YWxpY2U6czNjcmV0"}}}"#,
        )
        .unwrap();
        // SAFETY: tests in this module are the only ones touching DOCKER_CONFIG.
        unsafe { std::env::set_var("DOCKER_CONFIG", dir.path()) };
        let c = for_registry("127.0.0.1:5001").unwrap().unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("alice"), Some("s3cret"))
        );
        assert!(for_registry("127.0.0.1:5002").unwrap().is_none());
        unsafe { std::env::remove_var("DOCKER_CONFIG") };
    }
}
