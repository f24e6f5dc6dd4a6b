//! Registry credentials.
//!
//! Three kinds, as the distribution spec knows them: anonymous, HTTP basic
//! (also exchanged for a bearer token when the registry's challenge asks for
//! one) and a ready-made bearer token. They come from Docker config JSON:
//! the `.dockerconfigjson` key of a `kubernetes.io/dockerconfigjson` Secret
//! or a `~/.docker/config.json`-style file. Passwords and tokens are kept in
//! memory only (zeroized on drop) and never printed: `Debug` redacts them.

use crate::OciError;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// How to authenticate to a registry.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials.
    #[default]
    Anonymous,
    /// Username and password (or an access token used as a password).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Zeroizing<String>,
    },
    /// A registry bearer token.
    Bearer(Zeroizing<String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    pub(crate) fn to_registry_auth(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.to_string())
            }
            Credentials::Bearer(t) => RegistryAuth::Bearer(t.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<Zeroizing<String>>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Zeroizing<String>>,
    #[serde(default)]
    registrytoken: Option<Zeroizing<String>>,
    #[serde(default)]
    identitytoken: Option<Zeroizing<String>>,
}

/// The host[:port] a Docker config key names: keys may be bare hosts or
/// URLs (`https://index.docker.io/v1/`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "index.docker.io",
        h => h,
    }
}

/// Credentials for `registry` (`host[:port]`) from Docker config JSON
/// (`{"auths": {"HOST": {"auth": base64(user:pass)}}}`, or
/// `username`/`password`, or `registrytoken`). `None` when the file has no
/// entry for that registry. `source` names the file or Secret in errors.
pub fn from_docker_config(
    json: &[u8],
    registry: &str,
    source: &str,
) -> Result<Option<Credentials>, OciError> {
    let config: DockerConfig = serde_json::from_slice(json).map_err(|e| {
        OciError::Credentials(format!(
            "{source} is not Docker config JSON ({{\"auths\": {{\"HOST\": {{\"auth\": \"...\"}}}}}}): {e}"
        ))
    })?;
    let want = key_host(registry);
    let Some((key, entry)) = config.auths.iter().find(|(k, _)| key_host(k) == want) else {
        return Ok(None);
    };
    if let Some(token) = &entry.registrytoken {
        return Ok(Some(Credentials::Bearer(token.clone())));
    }
    if let Some(auth) = &entry.auth {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| {
                    OciError::Credentials(format!(
                        "{source}: the auth value for {key} is not base64 of USER:PASSWORD"
                    ))
                })?,
        );
        let text = std::str::from_utf8(&decoded).map_err(|_| {
            OciError::Credentials(format!(
                "{source}: the auth value for {key} is not UTF-8 USER:PASSWORD"
            ))
        })?;
        let (user, pass) = text.split_once(':').ok_or_else(|| {
            OciError::Credentials(format!(
                "{source}: the auth value for {key} must decode to USER:PASSWORD"
            ))
        })?;
        return Ok(Some(Credentials::Basic {
            username: user.to_string(),
            password: Zeroizing::new(pass.to_string()),
        }));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    if entry.identitytoken.is_some() {
        return Err(OciError::Credentials(format!(
            "{source}: the entry for {key} has only an identitytoken (an OAuth refresh token), which lockbox does not exchange; use auth (USER:PASSWORD) or registrytoken"
        )));
    }
    Err(OciError::Credentials(format!(
        "{source}: the entry for {key} has no auth, username/password or registrytoken"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_forms() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let json = format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{b64}"}},
                 "https://index.docker.io/v1/": {{"username": "bob", "password": "pw"}},
                 "tok.example": {{"registrytoken": "abc"}},
                 "idt.example": {{"identitytoken": "x"}},
                 "bad.example": {{"auth": "!!"}}}}}}"#
        );
        let c = from_docker_config(json.as_bytes(), "127.0.0.1:5000", "s").unwrap();
        match c {
            Some(Credentials::Basic { username, password }) => {
                assert_eq!(username, "alice");
                assert_eq!(password.as_str(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_docker_config(json.as_bytes(), "index.docker.io", "s").unwrap(),
            Some(Credentials::Basic { .. })
        ));
        assert!(matches!(
            from_docker_config(json.as_bytes(), "tok.example", "s").unwrap(),
            Some(Credentials::Bearer(_))
        ));
        assert!(
            from_docker_config(json.as_bytes(), "other:1", "s")
                .unwrap()
                .is_none()
        );
        let e = from_docker_config(json.as_bytes(), "idt.example", "s").unwrap_err();
        assert!(e.to_string().contains("identitytoken"), "{e}");
        let e = from_docker_config(json.as_bytes(), "bad.example", "secret x").unwrap_err();
        assert_eq!(e.reason(), "InvalidPullSecret");
        assert!(e.to_string().contains("secret x"), "{e}");
        assert!(from_docker_config(b"not json", "h", "s").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: Zeroizing::new("hunter2".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = Credentials::Bearer(Zeroizing::new("tok".into()));
        assert!(!format!("{t:?}").contains("tok"));
    }
}
