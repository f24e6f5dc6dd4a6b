//! The lease manager's link to the engines: [`RouteEngines`] finds the
//! mount a lease's path names in the routing table and asks its backend to
//! renew or revoke; [`spawn_expiry`] is the task that revokes leases when
//! they are due.

use super::{Engines, LeaseEntry};
use crate::core::{Active, Handler, Route};
use crate::logical::RequestError;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// [`Engines`] over an unsealed core's routing table.
pub(crate) struct RouteEngines<'a> {
    pub active: &'a Active,
}

impl RouteEngines<'_> {
    fn route(&self, lease: &LeaseEntry) -> Result<(String, Arc<Route>), RequestError> {
        self.active
            .route(&lease.path)
            .ok_or_else(|| RequestError::NoHandler {
                path: lease.path.clone(),
            })
    }
}

#[async_trait::async_trait]
impl Engines for RouteEngines<'_> {
    async fn renew(&self, lease: &LeaseEntry, increment: u64) -> Result<u64, RequestError> {
        let (mount, route) = self.route(lease)?;
        match &route.handler {
            Handler::Backend(b) => {
                b.renew_secret(&lease.call(&mount, increment), &route.view)
                    .await
            }
            Handler::Unavailable(msg) => Err(RequestError::Unavailable(format!(
                "mount {mount} is unavailable: {msg}"
            ))),
            _ => Err(RequestError::invalid("lease is not renewable")),
        }
    }

    async fn revoke(&self, lease: &LeaseEntry) -> Result<(), RequestError> {
        let (mount, route) = self.route(lease)?;
        match &route.handler {
            Handler::Backend(b) => b.revoke_secret(&lease.call(&mount, 0), &route.view).await,
            Handler::Unavailable(msg) => Err(RequestError::Unavailable(format!(
                "mount {mount} is unavailable: {msg}"
            ))),
            _ => Ok(()),
        }
    }
}

/// Re-arms the stored leases, then revokes leases as they fall due, until
/// the core seals. Runs beside request serving: unseal does not wait for
/// overdue leases.
pub(crate) fn spawn_expiry(active: Weak<Active>) {
    tokio::spawn(async move {
        match active.upgrade() {
            Some(a) => match a.leases.load().await {
                Ok(n) if n > 0 => tracing::info!(leases = n, "lease timers re-armed"),
                Ok(_) => {}
                Err(e) => tracing::error!("cannot load leases: {e}"),
            },
            None => return,
        }
        // Nothing of the core (its barrier holds the keys) is held while
        // sleeping, so a seal drops it at once; a new lease is at most a
        // second late.
        loop {
            let Some(a) = active.upgrade() else { return };
            a.leases.revoke_due(&RouteEngines { active: &a }).await;
            let pause = a.leases.until_next_due().min(Duration::from_secs(1));
            drop(a);
            tokio::time::sleep(pause).await;
        }
    });
}
