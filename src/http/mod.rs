//! The HTTP API: Vault's wire format over hyper, plain or TLS (rustls).
//!
//! [`serve`] takes a bound listener, so tests bind `127.0.0.1:0` and drive the
//! real server. Each request is turned into a [`core::ApiRequest`]: the path
//! after `/v1/`, the method family (`LIST` and `GET ?list=true` are lists),
//! the token (`X-Vault-Token` or `Authorization: Bearer`), and the JSON body
//! (limited to `max_request_size`, 413 beyond; its JSON shape checked by
//! [`json`] before parsing) or the query parameters for reads. Replies use
//! Vault's envelope and `{"errors": [...]}` for errors.

pub mod json;
pub mod tls;

use crate::core::{ApiRequest, Core, Method, Reply};
use crate::logical::RequestError;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Vault's default `max_request_size`: 32 MiB.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// The largest accepted request body, shared with whoever may change it
/// while the server runs (SIGHUP): every request reads the current value.
#[derive(Clone, Debug)]
pub struct RequestLimit(Arc<std::sync::atomic::AtomicUsize>);

impl RequestLimit {
    /// A limit of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicUsize::new(bytes)))
    }

    /// The limit now.
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes the limit for requests from now on.
    pub fn set(&self, bytes: usize) {
        self.0.store(bytes, std::sync::atomic::Ordering::Relaxed)
    }
}

impl From<usize> for RequestLimit {
    fn from(bytes: usize) -> Self {
        Self::new(bytes)
    }
}

/// Settings of the API listener.
#[derive(Clone)]
pub struct ServerOptions {
    /// Largest accepted request body.
    pub max_request_size: RequestLimit,
    /// TLS; `None` serves plain HTTP.
    pub tls: Option<tls::Reloadable>,
    /// How long to wait for in-flight requests on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_request_size: RequestLimit::new(DEFAULT_MAX_REQUEST_SIZE),
            tls: None,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

type Body = Full<Bytes>;

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error_response(err: &RequestError) -> Response<Body> {
    let status = err.status();
    if status == 500 {
        tracing::error!(status, "request failed: {err}");
    } else {
        tracing::debug!(status, "request refused: {err}");
    }
    json_response(status, &json!({ "errors": [err.to_string()] }))
}

fn envelope(
    request_id: String,
    response: crate::logical::Response,
    mount_type: String,
    flatten: bool,
) -> Value {
    let mut out = Map::new();
    if flatten && let Some(data) = &response.data {
        for (k, v) in data {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("request_id".into(), json!(request_id));
    out.insert("lease_id".into(), json!(""));
    out.insert("renewable".into(), json!(response.renewable));
    out.insert("lease_duration".into(), json!(response.lease_duration));
    out.insert(
        "data".into(),
        response.data.map(Value::Object).unwrap_or(Value::Null),
    );
    out.insert("wrap_info".into(), Value::Null);
    out.insert(
        "warnings".into(),
        if response.warnings.is_empty() {
            Value::Null
        } else {
            json!(response.warnings)
        },
    );
    out.insert(
        "auth".into(),
        response
            .auth
            .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
            .unwrap_or(Value::Null),
    );
    out.insert("mount_type".into(), json!(mount_type));
    Value::Object(out)
}

fn render(reply: Reply) -> Response<Body> {
    match reply {
        Reply::Envelope {
            request_id,
            response,
            mount_type,
            flatten,
        } => json_response(200, &envelope(request_id, *response, mount_type, flatten)),
        Reply::Raw { status, body } => json_response(status, &body),
        Reply::NoContent => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
        Reply::NotFound => json_response(404, &json!({ "errors": [] })),
    }
}

fn query_map(query: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded_pairs(q) {
            m.insert(k, Value::String(v));
        }
    }
    m
}

/// Percent-decoding, with `+` as a space when `plus_is_space` (queries).
/// Invalid escapes are kept literally; the result is lossily UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', _, _) if plus_is_space => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `application/x-www-form-urlencoded` pairs of a query string.
fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(pair, true), String::new()),
        })
        .collect()
}

fn token_of(req: &Request<Incoming>) -> Option<String> {
    if let Some(t) = req
        .headers()
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
    {
        return Some(t.trim().to_string());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_string())
}

async fn read_body(body: Incoming, limit: usize) -> Result<Map<String, Value>, RequestError> {
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                RequestError::TooLarge { limit }
            } else {
                RequestError::invalid(format!("failed to read request body: {e}"))
            }
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    // Bounded before parsing: tiny values cost 16-40 times their size once
    // parsed.
    json::check_shape(&bytes).map_err(|e| RequestError::invalid(e.to_string()))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(RequestError::invalid(format!(
            "request body must be a JSON object, got {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "something else",
            }
        ))),
        Err(e) => Err(RequestError::invalid(format!(
            "failed to parse JSON input: {e}"
        ))),
    }
}

/// Turns an HTTP request into a core request and the core's reply into HTTP.
pub async fn dispatch(
    core: &Core,
    req: Request<Incoming>,
    max_request_size: usize,
) -> Response<Body> {
    match dispatch_inner(core, req, max_request_size).await {
        Ok(reply) => render(reply),
        Err(e) => error_response(&e),
    }
}

async fn dispatch_inner(
    core: &Core,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Reply, RequestError> {
    let uri_path = req.uri().path().to_string();
    let Some(path) = uri_path.strip_prefix("/v1/") else {
        return Err(RequestError::NoHandler { path: uri_path });
    };
    let path = percent_decode(path, false);
    let query = query_map(req.uri().query());
    let list_query = query
        .get("list")
        .and_then(Value::as_str)
        .is_some_and(|v| v == "true" || v == "1");
    let method = match req.method().as_str() {
        "GET" | "HEAD" if list_query => Method::List,
        "GET" | "HEAD" => Method::Read,
        "PUT" | "POST" => Method::Write,
        "DELETE" => Method::Delete,
        "LIST" => Method::List,
        _ => return Err(RequestError::UnsupportedOperation),
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(RequestError::TooLarge { limit });
    }
    let token = token_of(&req);
    let data = match method {
        Method::Write => read_body(req.into_body(), limit).await?,
        Method::Delete => {
            let mut m = read_body(req.into_body(), limit).await?;
            for (k, v) in query {
                m.entry(k).or_insert(v);
            }
            m
        }
        Method::Read | Method::List => {
            let mut q = query;
            q.remove("list");
            q
        }
    };
    core.handle(ApiRequest {
        method,
        path,
        data,
        token,
    })
    .await
}

/// Serves the API on `listener` until `shutdown` completes, then waits up
/// to `options.shutdown_grace` for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    core: Arc<Core>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let core = core.clone();
        let limit = options.max_request_size.clone();
        let service = hyper::service::service_fn(move |req| {
            let core = core.clone();
            let limit = limit.get();
            async move { Ok::<_, std::convert::Infallible>(dispatch(&core, req, limit).await) }
        });
        match &options.tls {
            None => {
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, "connection error: {e}");
                    }
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, "connection error: {e}");
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!("shutdown grace period elapsed with requests still in flight");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let pairs = form_urlencoded_pairs("list=true&a=b%20c&d+e=f%2");
        assert_eq!(pairs[0], ("list".into(), "true".into()));
        assert_eq!(pairs[1], ("a".into(), "b c".into()));
        assert_eq!(pairs[2], ("d e".into(), "f%2".into()));
        assert_eq!(percent_decode("a%2E%2E/%C3%A9%zz+", false), "a../é%zz+");
        assert_eq!(percent_decode("%", false), "%");
    }

    #[test]
    fn envelope_shape() {
        let mut data = Map::new();
        data.insert("k".into(), json!("v"));
        let v = envelope(
            "id".into(),
            crate::logical::Response::data(data),
            "kv".into(),
            false,
        );
        for key in [
            "request_id",
            "lease_id",
            "renewable",
            "lease_duration",
            "data",
            "wrap_info",
            "warnings",
            "auth",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["data"]["k"], "v");
        assert!(v.get("k").is_none());
    }
}
