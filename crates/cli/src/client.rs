//! The HTTP client for lockbox's Vault-compatible API.
//!
//! [`Client`] owns one reqwest client and knows how Vault's API is shaped:
//! every path lives under `/v1/`, the token travels in `X-Vault-Token`,
//! successful answers are a [`Secret`] envelope (or `204 No Content`), and
//! failures are `{"errors": [...]}` bodies that become
//! [`Error::ApiError`](crate::Error::ApiError).
//!
//! TLS is rustls with the ring provider. With no CA configured, the platform
//! verifier is used; a configured CA replaces the platform roots (as
//! `VAULT_CACERT` does for Vault; see [`crate::tls`] for the self-signed
//! certificates Go accepts and WebPKI does not); `skip_verify` turns
//! verification off.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// How long one request may take before it is abandoned (Vault's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Base address, e.g. `https://127.0.0.1:8200`. A trailing `/` is ignored.
    pub address: String,
    /// Token sent in `X-Vault-Token`, if any.
    pub token: Option<String>,
    /// PEM file (one or more certificates) to trust instead of the platform
    /// roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate. For development only.
    pub skip_verify: bool,
    /// Per-request timeout; [`DEFAULT_TIMEOUT`] when `None`.
    pub timeout: Option<Duration>,
}

impl ClientConfig {
    /// A config for `address` with no token and default TLS settings.
    pub fn new(address: impl Into<String>) -> Self {
        ClientConfig {
            address: address.into(),
            token: None,
            ca_cert: None,
            skip_verify: false,
            timeout: None,
        }
    }
}

/// The envelope every successful Vault API answer comes in.
///
/// Fields the envelope does not name (the top-level fields of raw endpoints
/// such as `sys/seal-status`) are kept in [`Secret::extra`]; use
/// [`Secret::field`] to look a field up in `data` first and the top level
/// second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// Server-assigned request ID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub request_id: String,
    /// Lease ID for leased secrets, empty otherwise.
    #[serde(default, deserialize_with = "null_as_default")]
    pub lease_id: String,
    /// Lease length in seconds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub lease_duration: i64,
    /// Whether the lease can be renewed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub renewable: bool,
    /// The response data.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// Warnings the server attached.
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    /// Authentication result (login, token create, renew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<SecretAuth>,
    /// Response-wrapping information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_info: Option<WrapInfo>,
    /// Type of the mount that served the request.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub mount_type: String,
    /// Top-level fields the envelope does not name.
    #[serde(flatten, skip_serializing)]
    pub extra: Map<String, Value>,
}

impl Secret {
    /// Looks `key` up in `data`, then among the top-level fields.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.data
            .as_ref()
            .and_then(|d| d.get(key))
            .or_else(|| self.extra.get(key))
    }

    /// `data` when the server sent one, otherwise the top-level fields the
    /// envelope does not name (older servers answer raw on some `sys/`
    /// endpoints).
    pub fn data_or_top_level(&self) -> &Map<String, Value> {
        match &self.data {
            Some(d) if !d.is_empty() => d,
            _ => &self.extra,
        }
    }

    /// `data[key]` (or top-level `key`) as a string, if it is one.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.field(key).and_then(Value::as_str)
    }
}

/// The `auth` block of a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretAuth {
    /// The token.
    #[serde(default, deserialize_with = "null_as_default")]
    pub client_token: String,
    /// The token's accessor.
    #[serde(default, deserialize_with = "null_as_default")]
    pub accessor: String,
    /// All policies (token and identity).
    #[serde(default, deserialize_with = "null_as_default")]
    pub policies: Vec<String>,
    /// Policies attached to the token itself.
    #[serde(default, deserialize_with = "null_as_default")]
    pub token_policies: Vec<String>,
    /// Policies inherited from the identity.
    #[serde(default, deserialize_with = "null_as_default")]
    pub identity_policies: Vec<String>,
    /// Token metadata.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Whether the token has no parent.
    #[serde(default, deserialize_with = "null_as_default")]
    pub orphan: bool,
    /// Entity the token belongs to.
    #[serde(default, deserialize_with = "null_as_default")]
    pub entity_id: String,
    /// Token TTL in seconds; 0 means it never expires.
    #[serde(default, deserialize_with = "null_as_default")]
    pub lease_duration: i64,
    /// Whether the token can be renewed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub renewable: bool,
    /// Other fields (`token_type`, `num_uses`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `wrap_info` block of a wrapped response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WrapInfo {
    /// The wrapping token.
    #[serde(default, deserialize_with = "null_as_default")]
    pub token: String,
    /// Its accessor.
    #[serde(default, deserialize_with = "null_as_default")]
    pub accessor: String,
    /// TTL in seconds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ttl: i64,
    /// RFC 3339 creation time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub creation_time: String,
    /// Path that created the wrapped response.
    #[serde(default, deserialize_with = "null_as_default")]
    pub creation_path: String,
    /// Accessor of a wrapped token.
    #[serde(default, deserialize_with = "null_as_default")]
    pub wrapped_accessor: String,
}

/// Accepts `null` where a plain value is expected and turns it into the
/// type's default, as Go's decoder does.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A Vault-API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    address: String,
    token: Option<String>,
}

impl Client {
    /// Builds a client. Fails if the address is not an http(s) URL or the CA
    /// file cannot be read or parsed.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let address = config.address.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&address).map_err(|e| {
            Error::Config(format!(
                "invalid server address {address:?}: {e} (expected something like \
                 https://127.0.0.1:8200)"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::Config(format!(
                "invalid server address {address:?}: it must start with http:// or https://"
            )));
        }

        // reqwest's rustls-no-provider feature needs a process-wide provider.
        // Installing fails harmlessly when one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .user_agent(concat!("lockbox-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_cert {
            // Read even with skip_verify, so a bad path is reported.
            let certs = crate::tls::read_ca_file(path)?;
            if !config.skip_verify {
                builder =
                    builder.tls_backend_preconfigured(crate::tls::client_config(certs, path)?);
            }
        }
        if config.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("error building the HTTP client: {e}")))?;

        Ok(Client {
            http,
            address,
            token: config.token.filter(|t| !t.is_empty()),
        })
    }

    /// The server address this client talks to, without a trailing `/`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The token this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A copy of this client that sends `token` instead.
    pub fn with_token(&self, token: Option<String>) -> Client {
        Client {
            http: self.http.clone(),
            address: self.address.clone(),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// The full URL for an API path (`sys/mounts` →
    /// `https://host:8200/v1/sys/mounts`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}/v1/{}", self.address, path.trim_start_matches('/'))
    }

    /// GET `path`. A 404 is `Ok(None)`, as in Vault's client library.
    pub async fn read(&self, path: &str) -> Result<Option<Secret>, Error> {
        not_found_as_none(self.request(Method::GET, path, None).await)
    }

    /// PUT `body` to `path`. `Ok(None)` means 204 No Content.
    pub async fn write(&self, path: &str, body: Value) -> Result<Option<Secret>, Error> {
        self.request(Method::PUT, path, Some(&body)).await
    }

    /// LIST `path`. A 404 is `Ok(None)`.
    pub async fn list(&self, path: &str) -> Result<Option<Secret>, Error> {
        not_found_as_none(self.request(list_method(), path, None).await)
    }

    /// DELETE `path`. `Ok(None)` means 204 No Content.
    pub async fn delete(&self, path: &str) -> Result<Option<Secret>, Error> {
        self.request(Method::DELETE, path, None).await
    }

    /// Sends any request. `Ok(None)` means the server answered 204 or with an
    /// empty body; non-2xx answers are [`Error::ApiError`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Secret>, Error> {
        let url_text = self.url_for(path);
        let url = reqwest::Url::parse(&url_text)
            .map_err(|e| Error::Config(format!("invalid request URL {url_text:?}: {e}")))?;
        let method_text = method.as_str().to_string();
        tracing::debug!(method = %method_text, url = %url, "sending request");

        let mut req = self
            .http
            .request(method, url.clone())
            .header("X-Vault-Request", "true");
        if let Some(token) = &self.token {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }

        let transport = |source: reqwest::Error| Error::Transport {
            method: method_text.clone(),
            url: url.to_string(),
            address: self.address.clone(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;

        if !status.is_success() {
            return Err(api_error(
                &method_text,
                url.as_str(),
                status.as_u16(),
                &bytes,
            ));
        }
        if status == reqwest::StatusCode::NO_CONTENT || bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice::<Secret>(&bytes)
            .map(Some)
            .map_err(|source| Error::Decode {
                method: method_text,
                url: url.to_string(),
                source,
            })
    }
}

/// The `LIST` HTTP method Vault uses for listing.
pub fn list_method() -> Method {
    // "LIST" is a valid token, so this cannot fail; fall back to GET anyway
    // rather than panic.
    Method::from_bytes(b"LIST").unwrap_or(Method::GET)
}

fn not_found_as_none(result: Result<Option<Secret>, Error>) -> Result<Option<Secret>, Error> {
    match result {
        Err(Error::ApiError { status: 404, .. }) => Ok(None),
        other => other,
    }
}

/// Builds the error for a non-2xx answer from its body.
fn api_error(method: &str, url: &str, status: u16, body: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct ErrorBody {
        errors: Option<Vec<Value>>,
    }
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.errors);
    let (errors, raw) = match parsed {
        Some(errors) => (
            errors
                .into_iter()
                .map(|e| match e {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
            false,
        ),
        None => (vec![String::from_utf8_lossy(body).trim().to_string()], true),
    };
    Error::ApiError {
        method: method.to_string(),
        url: url.to_string(),
        status,
        errors,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_kv_read() {
        let body = r#"{"request_id":"r1","lease_id":"","renewable":false,"lease_duration":2764800,
            "data":{"message":"Hello World"},"wrap_info":null,"warnings":null,"auth":null,
            "mount_type":"kv"}"#;
        let s: Secret = serde_json::from_str(body).unwrap();
        assert_eq!(s.lease_duration, 2764800);
        assert_eq!(s.str_field("message"), Some("Hello World"));
        assert!(s.auth.is_none());
        assert!(s.extra.is_empty());
    }

    #[test]
    fn keeps_top_level_fields_of_raw_endpoints() {
        let body = r#"{"type":"shamir","initialized":true,"sealed":false,"t":3,"n":5,
            "progress":0,"nonce":"","version":"1.15.0","storage_type":"raft"}"#;
        let s: Secret = serde_json::from_str(body).unwrap();
        assert_eq!(s.field("sealed"), Some(&Value::Bool(false)));
        assert_eq!(s.str_field("type"), Some("shamir"));
        assert_eq!(s.data_or_top_level().len(), 9);
    }

    #[test]
    fn decodes_token_create_auth_with_nulls() {
        let body = r#"{"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,
            "data":null,"wrap_info":null,"warnings":null,
            "auth":{"client_token":"hvs.abc","accessor":"acc","policies":["default","web"],
            "token_policies":["default","web"],"identity_policies":null,"metadata":null,
            "lease_duration":3600,"renewable":true,"entity_id":"","token_type":"service",
            "orphan":false,"mfa_requirement":null,"num_uses":0}}"#;
        let s: Secret = serde_json::from_str(body).unwrap();
        let auth = s.auth.unwrap();
        assert_eq!(auth.client_token, "hvs.abc");
        assert!(auth.identity_policies.is_empty());
        assert_eq!(auth.extra.get("token_type"), Some(&Value::from("service")));
    }

    #[test]
    fn error_bodies() {
        let Error::ApiError { errors, raw, .. } =
            api_error("GET", "u", 403, br#"{"errors":["permission denied"]}"#)
        else {
            panic!("not an API error");
        };
        assert_eq!(
            (errors, raw),
            (vec!["permission denied".to_string()], false)
        );
        let Error::ApiError { errors, raw, .. } =
            api_error("GET", "u", 502, b"<html>bad gateway</html>\n")
        else {
            panic!("not an API error");
        };
        assert_eq!(
            (errors, raw),
            (vec!["<html>bad gateway</html>".to_string()], true)
        );
    }

    #[test]
    fn rejects_addresses_without_a_scheme() {
        let err = Client::new(ClientConfig::new("127.0.0.1:8200")).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        let client = Client::new(ClientConfig::new("http://127.0.0.1:8200/")).unwrap();
        assert_eq!(
            client.url_for("/sys/mounts"),
            "http://127.0.0.1:8200/v1/sys/mounts"
        );
    }

    #[tokio::test]
    async fn connection_failures_name_the_address() {
        // Port 9 on loopback: nothing listens there in the test environment.
        let client = Client::new(ClientConfig::new("http://127.0.0.1:9")).unwrap();
        let err = client.read("sys/seal-status").await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http://127.0.0.1:9"), "{text}");
        assert!(text.contains("LOCKBOX_ADDR"), "{text}");
        assert_eq!(err.exit_code(), 2);
    }
}
