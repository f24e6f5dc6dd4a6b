//! Reading from a registry for a pull, with every response body bounded.
//!
//! A registry, and the token service its challenge names, are not trusted:
//! each body is read chunk by chunk and refused as soon as it passes its
//! limit, so an endless or oversized answer costs at most the limit in
//! memory, never the whole body. Limits: manifests and indexes
//! [`MAX_MANIFEST_BYTES`] (`TooLarge`), token answers 1 MiB, error bodies
//! 64 KiB (the rest is not read). The small requests (the `/v2/`
//! challenge, the token, a manifest) also have a total deadline, so a body
//! trickled byte by byte cannot hold a pull forever; blobs are streamed by
//! the caller against their declared size, with the client's read timeout.
//!
//! Authentication follows the distribution spec's token flow: `GET /v2/`;
//! a `Bearer` challenge is answered at its realm (basic credentials, if
//! any, are sent there) for a `repository:<repo>:pull` token; otherwise
//! basic credentials are sent as they are; a given bearer token is used
//! as it is. Credentials are never sent over plain HTTP to a realm unless
//! the registry itself is listed as insecure. `Authorization` is dropped
//! when a registry redirects to another host (reqwest's redirect policy).

use crate::auth::Credentials;
use crate::reference::ImageRef;
use crate::{OciError, chain};
use serde::Deserialize;
use std::time::Duration;
use zeroize::Zeroizing;

/// Manifests and indexes larger than this are refused (real ones are a few
/// KiB).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Token answers larger than this are refused (a JWT is a few KiB).
const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
/// Bytes of an error body read for the message; the rest is not read.
const MAX_ERROR_BYTES: u64 = 64 * 1024;
/// Characters of an error body shown in a message.
const ERROR_EXCERPT_CHARS: usize = 300;
/// Total time for a challenge, token or manifest request, body included.
const SMALL_REQUEST_DEADLINE: Duration = Duration::from_secs(60);

/// How a pull authenticates to one repository.
#[derive(Clone)]
pub(crate) enum Auth {
    /// No `Authorization` header.
    Anonymous,
    /// HTTP basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Zeroizing<String>,
    },
    /// `Authorization: Bearer`.
    Bearer(Zeroizing<String>),
}

/// An HTTP client for pulls (see the module docs).
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    insecure: Vec<String>,
}

/// Why a bounded read stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More than the limit: `read` bytes were counted (or announced) when
    /// reading stopped.
    TooLarge {
        /// Bytes counted or announced.
        read: u64,
    },
    /// The connection failed or timed out.
    Transport(reqwest::Error),
}

/// Reads `resp`'s body, refusing it as soon as it passes `limit` bytes (or
/// announces more in `Content-Length`).
pub(crate) async fn read_bounded(
    resp: &mut reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    if let Some(len) = resp.content_length()
        && len > limit
    {
        return Err(ReadError::TooLarge { read: len });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        let read = (body.len() + chunk.len()) as u64;
        if read > limit {
            return Err(ReadError::TooLarge { read });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most `limit` bytes of `resp`'s body (for error messages); a failed
/// read ends it quietly.
async fn read_prefix(resp: &mut reqwest::Response, limit: u64) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = (limit as usize).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= limit {
            break;
        }
    }
    body
}

/// A short, printable excerpt of a body.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(ERROR_EXCERPT_CHARS).collect();
    if text.chars().count() > ERROR_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// The distribution spec's error body.
#[derive(Deserialize)]
struct Envelope {
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The error for a non-success answer to a request for `what` (`manifest`,
/// `blob`) of `image`: `Unauthorized`, `ManifestNotFound` (or a registry
/// error naming the missing blob), or `RegistryUnavailable`.
pub(crate) fn status_error(image: &ImageRef, what: &str, status: u16, body: &[u8]) -> OciError {
    let registry = image.registry().to_string();
    let reference = image.as_given().to_string();
    let envelope = serde_json::from_slice::<Envelope>(body)
        .ok()
        .filter(|e| !e.errors.is_empty());
    let codes: Vec<&str> = envelope
        .iter()
        .flat_map(|e| e.errors.iter().map(|x| x.code.as_str()))
        .collect();
    let detail = match &envelope {
        Some(e) => e
            .errors
            .iter()
            .map(|x| format!("{}: {}", x.code, x.message.trim()))
            .collect::<Vec<_>>()
            .join("; "),
        None => {
            let text = excerpt(body);
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        }
    };
    let has = |wanted: &[&str]| codes.iter().any(|c| wanted.contains(c));
    if matches!(status, 401 | 403) || has(&["UNAUTHORIZED", "DENIED"]) {
        OciError::Unauthorized {
            registry,
            reference,
            detail,
        }
    } else if status == 404
        || has(&[
            "MANIFEST_UNKNOWN",
            "NAME_UNKNOWN",
            "NOT_FOUND",
            "BLOB_UNKNOWN",
        ])
    {
        if what == "manifest" {
            OciError::ManifestNotFound { reference, detail }
        } else {
            OciError::Registry {
                registry,
                detail: format!("{what} not found: {detail}"),
            }
        }
    } else {
        OciError::Registry {
            registry,
            detail: format!("HTTP {status} while fetching the {what}: {detail}"),
        }
    }
}

/// A `Bearer` challenge's parameters.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
}

/// Parses `Bearer realm="...",service="..."` (RFC 7235 auth-params, values
/// quoted or not); `None` for any other scheme or without a realm.
fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut rest = params;
    let (mut realm, mut service) = (None, None);
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let value;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            v.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            rest = &quoted[end?..];
            value = v;
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_string();
            rest = &after[end..];
        }
        match key.as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm.filter(|r| !r.is_empty())?,
        service,
    })
}

/// A token service's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<Zeroizing<String>>,
    #[serde(default)]
    access_token: Option<Zeroizing<String>>,
}

impl Fetcher {
    /// A client reaching registries over HTTPS, except the `HOST:PORT`
    /// names in `insecure`, over plain HTTP.
    pub(crate) fn new(insecure: &[String]) -> Result<Self, OciError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("lockbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OciError::Registry {
                registry: String::new(),
                detail: format!("cannot build the registry client: {}", chain(&e)),
            })?;
        Ok(Self {
            client,
            insecure: insecure.to_vec(),
        })
    }

    fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.iter().any(|r| r == registry)
    }

    fn base(&self, image: &ImageRef) -> String {
        let registry = image.registry();
        let scheme = if self.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{registry}/v2/")
    }

    fn unreachable(&self, image: &ImageRef, e: &reqwest::Error) -> OciError {
        let registry = image.registry().to_string();
        let hint = if self.is_insecure(&registry) {
            ""
        } else {
            "; registries are reached over HTTPS: for a plain-HTTP registry pass \
             --insecure-registry HOST:PORT"
        };
        OciError::Registry {
            detail: format!("cannot reach the registry ({}){hint}", chain(e)),
            registry,
        }
    }

    fn get(&self, url: &str, auth: &Auth) -> reqwest::RequestBuilder {
        let req = self.client.get(url);
        match auth {
            Auth::Anonymous => req,
            Auth::Basic { username, password } => req.basic_auth(username, Some(password.as_str())),
            Auth::Bearer(token) => req.bearer_auth(token.as_str()),
        }
    }

    /// How to authenticate pulls of `image` with `creds` (see the module
    /// docs).
    pub(crate) async fn authorize(
        &self,
        image: &ImageRef,
        creds: &Credentials,
    ) -> Result<Auth, OciError> {
        let basic = match creds {
            Credentials::Bearer(token) => return Ok(Auth::Bearer(token.clone())),
            Credentials::Basic { username, password } => Some((username, password)),
            Credentials::Anonymous => None,
        };
        let as_basic = || match basic {
            Some((username, password)) => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            None => Auth::Anonymous,
        };
        let resp = self
            .client
            .get(self.base(image))
            .timeout(SMALL_REQUEST_DEADLINE)
            .send()
            .await
            .map_err(|e| self.unreachable(image, &e))?;
        // Only the header matters; the body is never read.
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_bearer_challenge);
        drop(resp);
        let Some(challenge) = challenge else {
            return Ok(as_basic());
        };
        let registry = image.registry().to_string();
        let unauthorized = |detail: String| OciError::Unauthorized {
            registry: registry.clone(),
            reference: image.as_given().to_string(),
            detail,
        };
        let realm = reqwest::Url::parse(&challenge.realm).map_err(|e| {
            unauthorized(format!(
                "the registry's token realm {:?} is not a URL: {e}",
                challenge.realm
            ))
        })?;
        match realm.scheme() {
            "https" => {}
            "http" if self.is_insecure(&registry) => {}
            other => {
                return Err(unauthorized(format!(
                    "the registry's token realm {realm} uses {other}: credentials go only over \
                     HTTPS (or to a registry listed with --insecure-registry)"
                )));
            }
        }
        let scope = format!("repository:{}:pull", image.repository());
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = &challenge.service {
            query.push(("service", service.as_str()));
        }
        let mut req = self
            .client
            .get(realm.clone())
            .query(&query)
            .timeout(SMALL_REQUEST_DEADLINE);
        if let Some((username, password)) = basic {
            req = req.basic_auth(username, Some(password.as_str()));
        }
        let mut resp = req.send().await.map_err(|e| OciError::Registry {
            registry: registry.clone(),
            detail: format!("cannot reach the token service {realm} ({})", chain(&e)),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_prefix(&mut resp, MAX_ERROR_BYTES).await;
            return Err(unauthorized(format!(
                "authentication failed: the token service answered HTTP {}: {}",
                status.as_u16(),
                excerpt(&body)
            )));
        }
        let body = read_bounded(&mut resp, MAX_TOKEN_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge { read } => OciError::TooLarge {
                    what: format!("the answer of the token service {realm}"),
                    size: read,
                    limit: MAX_TOKEN_BYTES,
                },
                ReadError::Transport(e) => OciError::Registry {
                    registry: registry.clone(),
                    detail: format!("reading the token from {realm} failed ({})", chain(&e)),
                },
            })?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            unauthorized(format!(
                "the token service {realm} answered something that is not a token: {e}"
            ))
        })?;
        match answer.token.or(answer.access_token) {
            Some(token) if !token.is_empty() => Ok(Auth::Bearer(token)),
            _ => Err(unauthorized(format!(
                "the token service {realm} answered without a token"
            ))),
        }
    }

    /// The manifest (or index) `image` names, by its digest or tag, read
    /// within [`MAX_MANIFEST_BYTES`] and the request deadline.
    pub(crate) async fn manifest(
        &self,
        image: &ImageRef,
        auth: &Auth,
        accept: &[&str],
    ) -> Result<Vec<u8>, OciError> {
        let name = image.digest().or(image.tag()).unwrap_or("latest");
        let url = format!(
            "{}{}/manifests/{name}",
            self.base(image),
            image.repository()
        );
        let mut resp = self
            .get(&url, auth)
            .header(reqwest::header::ACCEPT, accept.join(", "))
            .timeout(SMALL_REQUEST_DEADLINE)
            .send()
            .await
            .map_err(|e| self.unreachable(image, &e))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            let body = read_prefix(&mut resp, MAX_ERROR_BYTES).await;
            return Err(status_error(image, "manifest", status.as_u16(), &body));
        }
        read_bounded(&mut resp, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge { read } => OciError::TooLarge {
                    what: format!("the manifest of {image}"),
                    size: read,
                    limit: MAX_MANIFEST_BYTES,
                },
                ReadError::Transport(e) => OciError::Registry {
                    registry: image.registry().to_string(),
                    detail: format!("reading the manifest of {image} failed ({})", chain(&e)),
                },
            })
    }

    /// The response to a blob request, its status checked; the caller
    /// streams the body (`reqwest::Response::chunk`) against the blob's
    /// declared size.
    pub(crate) async fn blob(
        &self,
        image: &ImageRef,
        auth: &Auth,
        digest: &str,
    ) -> Result<reqwest::Response, OciError> {
        let url = format!("{}{}/blobs/{digest}", self.base(image), image.repository());
        let mut resp = self
            .get(&url, auth)
            .send()
            .await
            .map_err(|e| self.unreachable(image, &e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_prefix(&mut resp, MAX_ERROR_BYTES).await;
            return Err(status_error(
                image,
                &format!("blob {digest}"),
                status.as_u16(),
                &body,
            ));
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
            ),
            Some(Challenge {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        assert_eq!(
            parse_bearer_challenge(r#"bearer service=reg, realm="https://a/t\"x""#),
            Some(Challenge {
                realm: "https://a/t\"x".into(),
                service: Some("reg".into()),
            })
        );
        for other in [
            r#"Basic realm="registry""#,
            "Bearer service=\"x\"",
            "Bearer realm=\"unterminated",
            "Bearer",
            "",
        ] {
            assert_eq!(parse_bearer_challenge(other), None, "{other}");
        }
    }

    #[test]
    fn status_errors_keep_the_reasons() {
        let image = ImageRef::parse("127.0.0.1:5000/plugins/mock:v1").unwrap();
        let unknown = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let e = status_error(&image, "manifest", 404, unknown);
        assert_eq!(e.reason(), "ManifestNotFound");
        assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
        let denied = br#"{"errors":[{"code":"DENIED","message":"no"}]}"#;
        assert_eq!(
            status_error(&image, "manifest", 400, denied).reason(),
            "Unauthorized"
        );
        assert_eq!(
            status_error(&image, "blob sha256:00", 401, b"").reason(),
            "Unauthorized"
        );
        let e = status_error(&image, "blob sha256:00", 404, b"gone");
        assert_eq!(e.reason(), "RegistryUnavailable");
        assert!(e.to_string().contains("blob sha256:00 not found"), "{e}");
        let long = vec![b'x'; 10_000];
        let e = status_error(&image, "manifest", 500, &long);
        assert_eq!(e.reason(), "RegistryUnavailable");
        assert!(e.to_string().len() < 1_000, "{e}");
    }
}
