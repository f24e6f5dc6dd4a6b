//! The HTTP API: Vault's wire format over hyper, plain or TLS (rustls).
//!
//! [`serve`] takes a bound listener, so tests bind `127.0.0.1:0` and drive the
//! real server. Each request is turned into a [`core::ApiRequest`]: the path
//! after `/v1/`, the method family (`LIST` and `GET ?list=true` are lists),
//! the token (`X-Vault-Token` or `Authorization: Bearer`), and the JSON body
//! (limited to `max_request_size`, 413 beyond) or the query parameters for
//! reads. Replies use Vault's envelope and `{"errors": [...]}` for errors.
//!
//! What a client can make the listener spend is bounded before the core
//! sees anything:
//!
//! * connections: at most `max_connections` at once (more are accepted and
//!   closed at once); each one has Vault's timeouts (header, body, write,
//!   idle, whole request; see [`conn`]);
//! * bodies: a request that needs a token and has no valid one is refused
//!   (403, or 503 while sealed) from its headers, before any of its body is
//!   read ([`Core::precheck`]); a body is read up to `max_request_size`
//!   within `http_read_timeout`, and its JSON shape is checked before it is
//!   parsed (`lockbox_core::json`), so parsing costs about the body's size.

pub mod cluster;
pub mod conn;
pub mod tls;

use bytes::Bytes;
pub use conn::Timeouts;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use lockbox_core::core::{ApiRequest, Core, Method, Reply};
use lockbox_core::logical::RequestError;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
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
    /// Vault's listener timeouts (default: Vault's values).
    pub timeouts: Timeouts,
    /// The most connections served at once; more are closed as soon as
    /// they are accepted.
    pub max_connections: usize,
    /// What an HA standby does with requests it does not answer itself.
    pub forwarding: cluster::Forwarding,
    /// Take the client address from the `X-Lockbox-Forwarded-For` header
    /// a forwarding standby sets: only on the cluster listener, whose
    /// mutual TLS admits nodes of the cluster alone. Elsewhere the header
    /// is removed and the connection's peer is the client.
    pub trust_forwarded_for: bool,
}

/// The header a forwarding standby passes the client's address in.
pub const FORWARDED_FOR: &str = "x-lockbox-forwarded-for";

/// The client address of a request (an extension set by the listener).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) std::net::SocketAddr);

/// Records the client address of `req` as [`ClientAddr`]: the peer, or
/// with `trust_forwarded_for` the forwarded address when one is given.
/// Any `X-Lockbox-Forwarded-For` header is removed either way.
fn set_client_addr<B>(req: &mut Request<B>, peer: std::net::SocketAddr, trust_forwarded_for: bool) {
    let forwarded = req
        .headers_mut()
        .remove(FORWARDED_FOR)
        .and_then(|v| v.to_str().ok().and_then(|v| v.parse().ok()));
    let client = match forwarded {
        Some(addr) if trust_forwarded_for => addr,
        _ => peer,
    };
    req.extensions_mut().insert(ClientAddr(client));
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_request_size: RequestLimit::new(DEFAULT_MAX_REQUEST_SIZE),
            tls: None,
            shutdown_grace: Duration::from_secs(10),
            timeouts: Timeouts::default(),
            max_connections: conn::DEFAULT_MAX_CONNECTIONS,
            forwarding: cluster::Forwarding::Off,
            trust_forwarded_for: false,
        }
    }
}

/// The bounds of one request's handling.
#[derive(Debug, Clone, Copy)]
pub struct RequestBounds {
    /// Largest accepted body.
    pub max_request_size: usize,
    /// `http_read_timeout`: the whole body must arrive within this.
    pub read_timeout: Option<Duration>,
    /// `max_request_duration`: the whole handling, body included.
    pub max_request_duration: Option<Duration>,
}

/// Why a request failed in the listener or the core.
enum Failure {
    /// The core's (or the body parser's) refusal.
    Request(RequestError),
    /// The body did not arrive within `http_read_timeout` (408).
    BodyTimeout(Duration),
    /// The request took longer than `max_request_duration` (503).
    Deadline(Duration),
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        Failure::Request(e)
    }
}

type Body = Full<Bytes>;

/// A request body [`dispatch`] can read: hyper's `Incoming` from the
/// listener, or any in-memory body (the fuzz targets use `Full<Bytes>`).
pub trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin
{
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn failure_response(failure: &Failure) -> Response<Body> {
    match failure {
        Failure::Request(e) => error_response(e),
        Failure::BodyTimeout(limit) => {
            tracing::debug!("request body not received within {limit:?}");
            json_response(
                408,
                &json!({ "errors": [format!(
                    "timed out reading the request body: it did not arrive within {limit:?} (http_read_timeout)"
                )] }),
            )
        }
        Failure::Deadline(limit) => {
            tracing::warn!("request cancelled after max_request_duration ({limit:?})");
            json_response(
                503,
                &json!({ "errors": [format!(
                    "request cancelled: it took longer than max_request_duration ({limit:?})"
                )] }),
            )
        }
    }
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
    response: lockbox_core::logical::Response,
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
    out.insert("lease_id".into(), json!(response.lease_id));
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
        Reply::Http {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, content_type.as_str())
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| {
                    // A content type that is not a header value.
                    json_response(
                        500,
                        &json!({"errors": ["the engine answered an invalid Content-Type"]}),
                    )
                })
        }
        Reply::NoContent => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
        Reply::NotFound => json_response(404, &json!({ "errors": [] })),
    }
}

/// The query parameters; of a repeated one the *first* value counts, as
/// Go's `url.Values.Get` that Vault reads them with.
fn query_map(query: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded_pairs(q) {
            m.entry(k).or_insert(Value::String(v));
        }
    }
    m
}

/// Whether a GET's query asks for a list: Vault's rule, the first `list`
/// parameter (see [`query_map`]) as Go's `strconv.ParseBool` reads it (`1`,
/// `t`, `true` ...; empty is no); another value is a 400. (A later `list=`
/// does not count, whatever it says: the ACL checks the operation this
/// decides.)
fn list_query(query: &Map<String, Value>) -> Result<bool, RequestError> {
    let Some(value) = query.get("list").and_then(Value::as_str) else {
        return Ok(false);
    };
    match value {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        other => Err(RequestError::invalid(format!(
            "invalid list parameter {other:?}: use list=true to list"
        ))),
    }
}

/// Percent-decoding, with `+` as a space when `plus_is_space` (queries).
/// Invalid escapes are kept literally; the result is lossily UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
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

/// Whether a request's body is a JSON merge patch (RFC 7396), what Vault
/// requires of a PATCH.
fn is_merge_patch<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/merge-patch+json")
        })
}

fn token_of<B>(req: &Request<B>) -> Option<String> {
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

/// Reads a body of at most `limit` bytes within `timeout`, with one copy.
async fn read_bytes<B: RequestBody>(
    mut body: B,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, Failure> {
    // Content-Length (already checked against the limit) sizes the buffer,
    // up to 1 MiB up front: the rest is allocated as it arrives.
    let expected = body.size_hint().exact().unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(1 << 20));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| RequestError::invalid(format!("failed to read request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len().saturating_add(data.len()) > limit {
                    return Err(RequestError::TooLarge { limit });
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .map_err(|_| Failure::BodyTimeout(limit))??,
        None => read.await?,
    }
    Ok(bytes)
}

/// Parses a request body: empty or `null` is no data, otherwise a JSON
/// object whose shape passed [`lockbox_core::json::check_shape`].
fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, RequestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    lockbox_core::json::check_shape(bytes).map_err(|e| RequestError::invalid(e.to_string()))?;
    match serde_json::from_slice::<Value>(bytes) {
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

async fn read_body<B: RequestBody>(
    body: B,
    bounds: &RequestBounds,
) -> Result<Map<String, Value>, Failure> {
    let bytes = read_bytes(body, bounds.max_request_size, bounds.read_timeout).await?;
    Ok(parse_body(&bytes)?)
}

/// Turns an HTTP request into a core request and the core's reply into
/// HTTP, within `bounds.max_request_duration`.
pub async fn dispatch<B: RequestBody>(
    core: &Core,
    req: Request<B>,
    bounds: RequestBounds,
) -> Response<Body> {
    let handled = dispatch_inner(core, req, &bounds);
    let result = match bounds.max_request_duration {
        Some(limit) => tokio::time::timeout(limit, handled)
            .await
            .unwrap_or(Err(Failure::Deadline(limit))),
        None => handled.await,
    };
    match result {
        Ok(reply) => render(reply),
        Err(e) => failure_response(&e),
    }
}

/// What a request's head says: the operation, the path under `/v1/`, the
/// query, the token and the client's address.
struct Head {
    method: Method,
    path: String,
    query: Map<String, Value>,
    token: Option<String>,
    remote: Option<std::net::SocketAddr>,
}

fn head<B>(req: &Request<B>) -> Result<Head, Failure> {
    let uri_path = req.uri().path().to_string();
    let Some(path) = uri_path.strip_prefix("/v1/") else {
        return Err(RequestError::NoHandler { path: uri_path }.into());
    };
    let path = percent_decode(path, false);
    let query = query_map(req.uri().query());
    let method = match req.method().as_str() {
        "GET" | "HEAD" if list_query(&query)? => Method::List,
        "GET" | "HEAD" => Method::Read,
        "PUT" | "POST" => Method::Write,
        "DELETE" => Method::Delete,
        "LIST" => Method::List,
        // Vault's rule: a patch is a JSON merge patch, and says so.
        "PATCH" if is_merge_patch(req) => Method::Patch,
        "PATCH" => {
            return Err(RequestError::Coded {
                status: 415,
                message: "PATCH requires Content-Type application/merge-patch+json".into(),
            }
            .into());
        }
        _ => return Err(RequestError::UnsupportedOperation.into()),
    };
    Ok(Head {
        method,
        path,
        query,
        token: token_of(req),
        remote: req.extensions().get::<ClientAddr>().map(|c| c.0),
    })
}

/// A read's data: its query, without `list`.
fn read_data(mut query: Map<String, Value>) -> Map<String, Value> {
    query.remove("list");
    query
}

async fn dispatch_inner<B: RequestBody>(
    core: &Core,
    req: Request<B>,
    bounds: &RequestBounds,
) -> Result<Reply, Failure> {
    let limit = bounds.max_request_size;
    let Head {
        method,
        path,
        query,
        token,
        remote,
    } = head(&req)?;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(RequestError::TooLarge { limit }.into());
    }
    let reads_body = matches!(method, Method::Write | Method::Delete | Method::Patch);
    if reads_body && !req.body().is_end_stream() {
        // Refused from the headers: a caller without a valid token cannot
        // make the server read (and hold) its body.
        core.precheck(&path, token.as_deref()).await?;
    }
    let data = match method {
        Method::Write | Method::Patch => read_body(req.into_body(), bounds).await?,
        Method::Delete => {
            let mut m = read_body(req.into_body(), bounds).await?;
            for (k, v) in query {
                m.entry(k).or_insert(v);
            }
            m
        }
        Method::Read | Method::List => read_data(query),
    };
    Ok(core
        .handle(ApiRequest {
            method,
            path,
            data,
            token,
            remote,
        })
        .await?)
}

/// On an HA standby: the answer to a read this node serves from storage
/// itself (`Core::handle_on_standby`), or `None`: forward (or redirect)
/// it. A read has no body, so `req` stays whole for the forwarder.
async fn standby_read<B>(
    core: &Core,
    req: &Request<B>,
    bounds: &RequestBounds,
) -> Option<Response<Body>> {
    let Ok(Head {
        method: method @ (Method::Read | Method::List),
        path,
        query,
        token,
        remote,
    }) = head(req)
    else {
        return None;
    };
    let handled = core.handle_on_standby(ApiRequest {
        method,
        path,
        data: read_data(query),
        token,
        remote,
    });
    let result = match bounds.max_request_duration {
        Some(limit) => match tokio::time::timeout(limit, handled).await {
            Ok(r) => r.map_err(Failure::from),
            Err(_) => Err(Failure::Deadline(limit)),
        },
        None => handled.await.map_err(Failure::from),
    };
    match result {
        Err(Failure::Request(RequestError::Standby)) => None,
        Ok(reply) => Some(render(reply)),
        Err(e) => Some(failure_response(&e)),
    }
}

/// Logs refused connections at most every 10 s (a flood must not flood the
/// log too).
struct RefusalLog {
    refused: u64,
    last: Option<tokio::time::Instant>,
}

impl RefusalLog {
    fn refused(&mut self, limit: usize) {
        self.refused += 1;
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            tracing::warn!(
                refused = self.refused,
                "max_connections ({limit}) reached: closing new connections until some end"
            );
            self.refused = 0;
            self.last = Some(now);
        }
    }
}

/// Serves one accepted (and, for TLS, handshaken) connection until it ends,
/// or until its watchdog finds it idle or stuck in a request head.
async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    core: Arc<Core>,
    options: &ServerOptions,
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = conn::Activity::new(options.timeouts);
    let io = TokioIo::new(conn::Monitored::new(stream, activity.clone()));
    let limit = options.max_request_size.clone();
    let timeouts = options.timeouts;
    let forwarding = options.forwarding.clone();
    let trust_forwarded_for = options.trust_forwarded_for;
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        set_client_addr(&mut req, peer, trust_forwarded_for);
        let guard = requests.request_started(req.version());
        let core = core.clone();
        let forwarding = forwarding.clone();
        let bounds = RequestBounds {
            max_request_size: limit.get(),
            read_timeout: timeouts.read,
            max_request_duration: timeouts.max_request_duration,
        };
        async move {
            let standby = core.is_standby() && !cluster::answered_by_standby(req.uri().path());
            let local = match &forwarding {
                cluster::Forwarding::Off => None,
                _ if standby => standby_read(&core, &req, &bounds).await,
                _ => None,
            };
            let response = match (&forwarding, local) {
                (_, Some(response)) => response,
                (cluster::Forwarding::Forward(f), None) if standby => {
                    f.forward(&core, req, bounds).await
                }
                (cluster::Forwarding::Redirect, None) if standby => {
                    cluster::redirect(&core, &req).await
                }
                _ => dispatch(&core, req, bounds).await,
            };
            Ok::<_, std::convert::Infallible>(response.map(|body| conn::Tracked::new(body, guard)))
        }
    });
    let connection = watcher.watch(builder.serve_connection(io, service).into_owned());
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(%peer, "connection error: {e}");
            }
        }
        why = activity.expired() => tracing::debug!(%peer, "connection closed: {why}"),
    }
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header and idle timeouts are the connection watchdog's (see
    // `conn`): hyper's own header timer would also cut idle keep-alive
    // connections.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let options = Arc::new(options);
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let mut refusals = RefusalLog {
        refused: 0,
        last: None,
    };
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: close it now rather than leave it queued; the loop
            // only runs when a connection arrives, so it does not spin.
            drop(stream);
            refusals.refused(options.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let core = core.clone();
        let options = options.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            match &options.tls {
                None => serve_connection(stream, peer, core, &options, &builder, watcher).await,
                Some(tls) => {
                    let handshake_limit = options
                        .timeouts
                        .read_header
                        .unwrap_or(conn::DEFAULT_READ_HEADER_TIMEOUT);
                    let stream =
                        match tokio::time::timeout(handshake_limit, tls.acceptor().accept(stream))
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
                    serve_connection(stream, peer, core, &options, &builder, watcher).await
                }
            }
        });
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

    /// Found by the `http_request` fuzz target: with several `list`
    /// parameters the first decides (Vault's rule), and a value that is
    /// not a boolean is refused rather than read as "no".
    #[test]
    fn the_first_list_parameter_decides() {
        let list = |q: Option<&str>| list_query(&query_map(q));
        assert!(list(Some("list=true&list=t=t")).unwrap());
        assert!(!list(Some("list=false&list=true")).unwrap());
        assert!(list(Some("a=b&li%73t=1")).unwrap());
        assert!(list(Some("list=T")).unwrap());
        assert!(!list(Some("list=")).unwrap());
        assert!(!list(Some("lister=true")).unwrap());
        assert!(!list(None).unwrap());
        assert_eq!(
            query_map(Some("a=1&a=2"))["a"],
            "1",
            "the first value counts"
        );
        let e = list(Some("list=yes&list=true")).unwrap_err();
        assert!(e.to_string().contains("invalid list parameter"), "{e}");
    }

    #[test]
    fn envelope_shape() {
        let mut data = Map::new();
        data.insert("k".into(), json!("v"));
        let v = envelope(
            "id".into(),
            lockbox_core::logical::Response::data(data),
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
