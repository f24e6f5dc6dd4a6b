//! Connecting as a [`Plan`] says: one attempt for `disable`, `require`,
//! `verify-ca` and `verify-full`, two for `prefer` (TLS, then plain) and
//! `allow` (plain, then TLS), as libpq. The caller keeps its own error
//! mapping: it gets every failed attempt's tokio-postgres error.

use crate::{MakeRustls, Plan, SslMode};
use tokio_postgres::{Client, NoTls};

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
    let tls = plan.tls.as_ref().map(|c| MakeRustls(c.clone()));
    let one = |r: Result<Client, Attempt>| r.map_err(ConnectFailure::One);
    match (plan.mode, tls) {
        (SslMode::Disable, _) | (_, None) => one(attempt(config, None, on_close).await),
        (SslMode::Allow, Some(tls)) => match attempt(config, None, on_close.clone()).await {
            Ok(c) => Ok(c),
            Err(first) => attempt(config, Some(tls), on_close)
                .await
                .map_err(|second| ConnectFailure::Two { first, second }),
        },
        (SslMode::Prefer, Some(tls)) => match attempt(config, Some(tls), on_close.clone()).await {
            Ok(c) => Ok(c),
            Err(first) => attempt(config, None, on_close)
                .await
                .map_err(|second| ConnectFailure::Two { first, second }),
        },
        (_, Some(tls)) => one(attempt(config, Some(tls), on_close).await),
    }
}

/// One attempt, plain (`tls` is `None`) or over TLS.
async fn attempt<F>(
    config: &tokio_postgres::Config,
    tls: Option<MakeRustls>,
    on_close: F,
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
            tokio::spawn(async move { conn.await.map_err(on_close) });
            Ok(client)
        }
        Some(tls) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, conn) = config.connect(tls).await.map_err(failed)?;
            tokio::spawn(async move { conn.await.map_err(on_close) });
            Ok(client)
        }
    }
}
