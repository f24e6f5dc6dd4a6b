//! Connecting as a [`Plan`] says: one attempt for `disable`, `require`,
//! `verify-ca` and `verify-full`, two for `prefer` (TLS, then plain) and
//! `allow` (plain, then TLS), as libpq. The caller keeps its own error
//! mapping: it gets every failed attempt's tokio-postgres error.

use crate::{MakeRustls, Plan, SslMode};
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::UnboundedSender;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Notification};

/// One failed connection attempt.
#[derive(Debug)]
pub struct Attempt {
    pub error: tokio_postgres::Error,
    /// Whether this attempt was over TLS.
    pub over_tls: bool,
}

/// Why [`connect`] gave no client.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The only attempt failed.
    One(Attempt),
    /// Both attempts of `allow`/`prefer` failed, in the order they ran.
    Two { first: Attempt, second: Attempt },
}

impl ConnectFailure {
    /// The attempt that ran last.
    pub fn last(&self) -> &Attempt {
        match self {
            ConnectFailure::One(a) | ConnectFailure::Two { second: a, .. } => a,
        }
    }
}

/// Connects with `config` (its own `ssl_mode` is overridden per attempt)
/// following `plan.mode`; without a TLS configuration in `plan` it tries
/// only plain. The connection task is spawned on the current tokio
/// runtime and runs until the client is dropped; `on_close` gets the
/// error it ends with, if any.
pub async fn connect<F>(
    config: &tokio_postgres::Config,
    plan: &Plan,
    on_close: F,
) -> Result<Client, ConnectFailure>
where
    F: Fn(tokio_postgres::Error) + Clone + Send + 'static,
{
    connect_with(config, plan, on_close, None).await
}

/// [`connect`], passing the server's notifications (`LISTEN`) to
/// `notifications`; the sender is dropped when the connection ends, so the
/// receiver sees the end.
pub async fn connect_listening<F>(
    config: &tokio_postgres::Config,
    plan: &Plan,
    on_close: F,
    notifications: UnboundedSender<Notification>,
) -> Result<Client, ConnectFailure>
where
    F: Fn(tokio_postgres::Error) + Clone + Send + 'static,
{
    connect_with(config, plan, on_close, Some(notifications)).await
}

async fn connect_with<F>(
    config: &tokio_postgres::Config,
    plan: &Plan,
    on_close: F,
    notifications: Option<UnboundedSender<Notification>>,
) -> Result<Client, ConnectFailure>
where
    F: Fn(tokio_postgres::Error) + Clone + Send + 'static,
{
    let tls = plan.tls.as_ref().map(|c| MakeRustls(c.clone()));
    let one = |r: Result<Client, Attempt>| r.map_err(ConnectFailure::One);
    let n = notifications;
    match (plan.mode, tls) {
        (SslMode::Disable, _) | (_, None) => one(attempt(config, None, on_close, n).await),
        (SslMode::Allow, Some(tls)) => {
            match attempt(config, None, on_close.clone(), n.clone()).await {
                Ok(c) => Ok(c),
                Err(first) => attempt(config, Some(tls), on_close, n)
                    .await
                    .map_err(|second| ConnectFailure::Two { first, second }),
            }
        }
        (SslMode::Prefer, Some(tls)) => {
            match attempt(config, Some(tls), on_close.clone(), n.clone()).await {
                Ok(c) => Ok(c),
                Err(first) => attempt(config, None, on_close, n)
                    .await
                    .map_err(|second| ConnectFailure::Two { first, second }),
            }
        }
        (_, Some(tls)) => one(attempt(config, Some(tls), on_close, n).await),
    }
}

/// Runs a connection until it ends, passing its notifications on (others'
/// messages, notices, are dropped as tokio-postgres's own driver does).
fn drive<S, T, F>(
    mut conn: Connection<S, T>,
    on_close: F,
    notifications: Option<UnboundedSender<Notification>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(tokio_postgres::Error) + Send + 'static,
{
    tokio::spawn(async move {
        let ended = std::future::poll_fn(|cx| {
            loop {
                match conn.poll_message(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                        if let Some(tx) = &notifications {
                            let _ = tx.send(n);
                        }
                    }
                    Poll::Ready(Some(Ok(_))) => {}
                }
            }
        })
        .await;
        drop(notifications);
        if let Err(e) = ended {
            on_close(e);
        }
    });
}

/// One attempt, plain (`tls` is `None`) or over TLS.
async fn attempt<F>(
    config: &tokio_postgres::Config,
    tls: Option<MakeRustls>,
    on_close: F,
    notifications: Option<UnboundedSender<Notification>>,
) -> Result<Client, Attempt>
where
    F: Fn(tokio_postgres::Error) + Send + 'static,
{
    let mut config = config.clone();
    let over_tls = tls.is_some();
    let failed = |error| Attempt { error, over_tls };
    match tls {
        None => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = config.connect(NoTls).await.map_err(failed)?;
            drive(conn, on_close, notifications);
            Ok(client)
        }
        Some(tls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, conn) = config.connect(tls).await.map_err(failed)?;
            drive(conn, on_close, notifications);
            Ok(client)
        }
    }
}
