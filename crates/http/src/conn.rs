//! The life of one accepted connection: Vault's listener timeouts and the
//! bookkeeping they need.
//!
//! hyper has no idle timeout, and its HTTP/1 `header_read_timeout` also runs
//! while a keep-alive connection waits for its next request (so it would cut
//! every idle connection at the header timeout). lockbox therefore keeps its
//! own per-connection clock, with the rules of Go's `net/http` that Vault
//! uses:
//!
//! ```text
//!  accepted ──▶ first request head ──▶ in flight ──▶ idle ──▶ next head ──▶ in flight ...
//!     │ http_read_header_timeout         (no deadline)   │ http_idle_timeout  │ http_read_header_timeout
//!     ▼ from accept                                       ▼ from its start     ▼ from its first byte
//!   closed                                              closed               closed
//! ```
//!
//! * [`Activity`] is shared by the connection's IO ([`Monitored`]), its
//!   requests ([`RequestGuard`], held until the response body is dropped)
//!   and its watchdog ([`Activity::expired`]), which the accept loop races
//!   against the connection: when it fires, no request is in flight, and the
//!   connection is dropped (closed).
//! * HTTP/2 connections exchange frames while idle (window updates, pings),
//!   so after their first request only the idle rule applies; hyper's own
//!   HTTP/2 keep-alive pings detect dead peers.
//! * `http_read_timeout` (the body) and `max_request_duration` are deadlines
//!   of the request handling in [`super::dispatch`].
//! * `http_write_timeout` is enforced by [`Monitored`] as the longest time a
//!   write may make no progress (a client that stops reading its response).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// Vault's default `http_read_header_timeout`.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Vault's default `http_read_timeout`.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Vault's default `http_idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Vault's default `max_request_duration` (`default_max_request_duration`).
pub const DEFAULT_MAX_REQUEST_DURATION: Duration = Duration::from_secs(90);
/// The default `max_connections` of the listener (a lockbox setting).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The listener's timeouts; `None` is no limit. The defaults are Vault's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `http_read_header_timeout`: a request head must arrive within this,
    /// from the connection's start or the first byte of a later request.
    pub read_header: Option<Duration>,
    /// `http_read_timeout`: the request body must arrive within this.
    pub read: Option<Duration>,
    /// `http_write_timeout`: the longest a response write may stall.
    pub write: Option<Duration>,
    /// `http_idle_timeout`: a keep-alive connection without a request is
    /// closed after this.
    pub idle: Option<Duration>,
    /// `max_request_duration`: the whole handling of a request, body
    /// included; beyond it the client gets an error.
    pub max_request_duration: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            read_header: Some(DEFAULT_READ_HEADER_TIMEOUT),
            read: Some(DEFAULT_READ_TIMEOUT),
            write: None,
            idle: Some(DEFAULT_IDLE_TIMEOUT),
            max_request_duration: Some(DEFAULT_MAX_REQUEST_DURATION),
        }
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request head within `http_read_header_timeout`.
    Header(Duration),
    /// No request within `http_idle_timeout`.
    Idle(Duration),
}

impl std::fmt::Display for Expiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expiry::Header(d) => write!(
                f,
                "no complete request header within {d:?} (http_read_header_timeout)"
            ),
            Expiry::Idle(d) => write!(f, "idle for {d:?} (http_idle_timeout)"),
        }
    }
}

#[derive(Debug)]
struct State {
    /// Requests whose response has not been handed over yet.
    in_flight: usize,
    /// When the connection last had nothing to do: its start, or the end of
    /// its last request.
    idle_since: Instant,
    /// Whether a request arrived on this connection.
    served: bool,
    /// HTTP/2 (known from the first request).
    http2: bool,
    /// The first byte read while idle: a request head has started.
    head_started: Option<Instant>,
}

/// What the connection is doing, shared by its IO, its requests and its
/// watchdog.
#[derive(Debug)]
pub struct Activity {
    timeouts: Timeouts,
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection that starts now.
    pub fn new(timeouts: Timeouts) -> Arc<Self> {
        Arc::new(Self {
            timeouts,
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
                http2: false,
                head_started: None,
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && s.head_started.is_none() && !s.http2 {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// A request (its head) arrived; it counts as in flight until the guard
    /// is dropped.
    pub fn request_started(self: &Arc<Self>, version: http::Version) -> RequestGuard {
        let mut s = self.state();
        s.in_flight += 1;
        s.served = true;
        s.http2 = version == http::Version::HTTP_2;
        s.head_started = None;
        drop(s);
        self.changed.notify_one();
        RequestGuard(self.clone())
    }

    /// When the connection expires if nothing happens, and why.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let s = self.state();
        if s.in_flight > 0 {
            return None;
        }
        let head_from = if !s.served {
            Some(s.idle_since)
        } else if s.http2 {
            None
        } else {
            s.head_started
        };
        match (head_from, self.timeouts.read_header) {
            (Some(from), Some(limit)) => Some((from + limit, Expiry::Header(limit))),
            _ => self
                .timeouts
                .idle
                .map(|limit| (s.idle_since + limit, Expiry::Idle(limit))),
        }
    }

    /// Completes when the connection has been waiting for a request head
    /// longer than `http_read_header_timeout`, or idle longer than
    /// `http_idle_timeout`; never while a request is in flight.
    pub async fn expired(&self) -> Expiry {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.deadline() {
                None => changed.await,
                Some((at, why)) => {
                    if Instant::now() >= at {
                        return why;
                    }
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }
}

/// One request in flight on a connection; dropping it makes the connection
/// idle (when it was the last).
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
        drop(s);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request in flight until hyper has taken
/// all of it (and drops it).
pub struct Tracked<B> {
    body: B,
    _request: RequestGuard,
}

impl<B> Tracked<B> {
    /// `body`, counted as part of `request`.
    pub fn new(body: B, request: RequestGuard) -> Self {
        Self {
            body,
            _request: request,
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's stream: reports reads to its [`Activity`] and fails a
/// write that makes no progress for `http_write_timeout`.
pub struct Monitored<S> {
    inner: S,
    activity: Arc<Activity>,
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl<S> Monitored<S> {
    /// Wraps the (plain or TLS) stream of a connection.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            write_stall: None,
        }
    }

    /// Passes a write's result through; a write pending for longer than
    /// the write timeout becomes an error (which closes the connection).
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if result.is_ready() {
            self.write_stall = None;
            return result;
        }
        let Some(limit) = self.activity.timeouts.write else {
            return Poll::Pending;
        };
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if stall.as_mut().poll(cx).is_ready() {
            self.write_stall = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing of the response for {limit:?} (http_write_timeout)"
                ),
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Monitored<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Monitored<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard_write(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard_write(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn timeouts() -> Timeouts {
        Timeouts {
            read_header: Some(Duration::from_secs(10)),
            read: None,
            write: Some(Duration::from_secs(3)),
            idle: Some(Duration::from_secs(300)),
            max_request_duration: None,
        }
    }

    /// Whether `expired` completes within `within` (paused clock).
    async fn expires_within(a: &Activity, within: Duration) -> Option<Expiry> {
        tokio::time::timeout(within, a.expired()).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_has_the_header_timeout() {
        let a = Activity::new(timeouts());
        assert_eq!(expires_within(&a, Duration::from_secs(9)).await, None);
        assert_eq!(
            expires_within(&a, Duration::from_secs(2)).await,
            Some(Expiry::Header(Duration::from_secs(10)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_never_expire_and_idle_then_header_rules_follow() {
        let a = Activity::new(timeouts());
        let guard = a.request_started(http::Version::HTTP_11);
        assert_eq!(expires_within(&a, Duration::from_secs(1000)).await, None);
        drop(guard);
        // Idle keep-alive: the idle timeout, not the header timeout.
        assert_eq!(expires_within(&a, Duration::from_secs(200)).await, None);
        // A byte of the next request starts the header clock.
        a.on_read();
        assert_eq!(expires_within(&a, Duration::from_secs(9)).await, None);
        assert_eq!(
            expires_within(&a, Duration::from_secs(2)).await,
            Some(Expiry::Header(Duration::from_secs(10)))
        );
        let _next = a.request_started(http::Version::HTTP_11);
        assert_eq!(expires_within(&a, Duration::from_secs(1000)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_http1_and_http2_connections_close_after_the_idle_timeout() {
        for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
            let a = Activity::new(timeouts());
            drop(a.request_started(version));
            if version == http::Version::HTTP_2 {
                // Frames while idle (pings, window updates) are not a request head.
                a.on_read();
            }
            assert_eq!(expires_within(&a, Duration::from_secs(299)).await, None);
            assert_eq!(
                expires_within(&a, Duration::from_secs(2)).await,
                Some(Expiry::Idle(Duration::from_secs(300)))
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_fails_after_the_write_timeout() {
        let (server, mut client) = tokio::io::duplex(16);
        let mut io = Monitored::new(server, Activity::new(timeouts()));
        // Fills the pipe; the client reads nothing.
        let write = io.write_all(&[0u8; 64]);
        let err = tokio::time::timeout(Duration::from_secs(10), write)
            .await
            .expect("the write must fail, not hang")
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("http_write_timeout"), "{err}");
        // A reader that keeps up is never cut.
        let mut sink = [0u8; 16];
        client.read_exact(&mut sink).await.unwrap();
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.map(|_| all.len())
        });
        for _ in 0..10 {
            io.write_all(&[1u8; 64]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap().unwrap(), 640);
    }
}
