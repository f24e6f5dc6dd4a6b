//! Who runs the controllers: leader election with a
//! `coordination.k8s.io/v1` Lease (single-replica mode, [`run`]), or, with
//! `--ha`, the core's HA role ([`follow_role`]): the replica that holds the
//! database lock is the active node and the only one that leads. Both
//! publish on the same `watch<bool>`, so leadership has one meaning; there
//! is no Lease in HA mode.
//!
//! One loop per replica: every [`RENEW`] it reads the Lease and, if it holds
//! it or the holder's lease expired, replaces it guarded by the
//! `resourceVersion` it read (so two replicas cannot both win the same
//! round: the second replace gets 409 Conflict). Leadership is published on
//! a `watch` channel; a replica that cannot renew within [`DURATION`] of its
//! last successful renewal reports itself as not leader, so at most one
//! replica believes it leads once clocks agree within a few seconds.
//!
//! Caveats: like client-go's leader election, this relies on roughly
//! synchronized clocks; it is a guard against concurrent controllers, not a
//! lock for external side effects.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use lockbox_core::core::ha::Role;
use std::time::Duration;
use tokio::sync::watch;

/// Name of the Lease in the operator's namespace.
pub const LEASE_NAME: &str = "lockbox-operator";
/// How long a lease is valid without renewal.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews (and others retry).
pub const RENEW: Duration = Duration::from_secs(5);

/// Runs the election loop forever, publishing leadership on `tx`.
pub async fn run(api: Api<Lease>, identity: String, tx: watch::Sender<bool>) {
    let mut last_renew: Option<tokio::time::Instant> = None;
    loop {
        match try_acquire(&api, &identity).await {
            Ok(true) => last_renew = Some(tokio::time::Instant::now()),
            Ok(false) => last_renew = None,
            Err(e) => tracing::warn!("leader election: {e}"),
        }
        let leading = last_renew.is_some_and(|t| t.elapsed() < DURATION);
        if *tx.borrow() != leading {
            tracing::info!(%identity, leading, "leadership changed");
        }
        tx.send_replace(leading);
        tokio::time::sleep(RENEW).await;
    }
}

/// Whether a replica in this HA role runs the controllers: only the
/// active node does.
pub fn leads(role: Role) -> bool {
    role == Role::Active
}

/// HA mode: publishes [`leads`] of the core's role on `tx` until the core
/// is gone.
pub async fn follow_role(mut role: watch::Receiver<Role>, tx: watch::Sender<bool>) {
    loop {
        let leading = leads(*role.borrow_and_update());
        if *tx.borrow() != leading {
            tracing::info!(leading, "HA role changed");
        }
        tx.send_replace(leading);
        if role.changed().await.is_err() {
            tx.send_replace(false);
            return;
        }
    }
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref() else {
        return true;
    };
    let secs = spec
        .lease_duration_seconds
        .unwrap_or(DURATION.as_secs() as i32);
    renewed.0 + SignedDuration::from_secs(i64::from(secs)) < now
}

/// One round: `Ok(true)` if this replica holds the lease afterwards.
async fn try_acquire(api: &Api<Lease>, identity: &str) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let duration = DURATION.as_secs() as i32;
    match api.get_opt(LEASE_NAME).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(identity.into()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.clone().unwrap_or_default();
            let mine = spec.holder_identity.as_deref() == Some(identity);
            if !mine && !expired(&spec, now) && spec.holder_identity.is_some() {
                return Ok(false);
            }
            let transitions = spec.lease_transitions.unwrap_or(0);
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(identity.into()),
                lease_duration_seconds: Some(duration),
                acquire_time: if mine {
                    spec.acquire_time.clone()
                } else {
                    Some(MicroTime(now))
                },
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(if mine {
                    transitions
                } else {
                    transitions.saturating_add(1)
                }),
                ..spec
            });
            // `lease` carries the resourceVersion we read: a concurrent
            // writer makes this a 409.
            match api
                .replace(LEASE_NAME, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Gives the lease up (on shutdown) so another replica takes over at once.
pub async fn release(api: &Api<Lease>, identity: &str) {
    let Ok(Some(mut lease)) = api.get_opt(LEASE_NAME).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    if let Err(e) = api
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
    {
        tracing::warn!("cannot release the leader lease: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let now = Timestamp::now();
        let fresh = LeaseSpec {
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!expired(&fresh, now));
        let old = LeaseSpec {
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(16))),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(expired(&old, now));
        assert!(expired(&LeaseSpec::default(), now));
    }

    #[tokio::test]
    async fn only_the_active_role_leads_and_the_watch_follows_it() {
        assert!(!leads(Role::Sealed));
        assert!(!leads(Role::Standby));
        assert!(leads(Role::Active));
        let (role_tx, role_rx) = watch::channel(Role::Sealed);
        let (tx, mut rx) = watch::channel(true);
        let task = tokio::spawn(follow_role(role_rx, tx));
        async fn wait_value(rx: &mut watch::Receiver<bool>, want: bool) {
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| *v == want))
                .await
                .expect("the watch follows the role")
                .expect("sender alive");
        }
        wait_value(&mut rx, false).await;
        role_tx.send_replace(Role::Standby);
        tokio::task::yield_now().await;
        assert!(!*rx.borrow());
        role_tx.send_replace(Role::Active);
        wait_value(&mut rx, true).await;
        role_tx.send_replace(Role::Standby);
        wait_value(&mut rx, false).await;
        role_tx.send_replace(Role::Active);
        wait_value(&mut rx, true).await;
        // The core going away (shutdown) ends leadership.
        drop(role_tx);
        wait_value(&mut rx, false).await;
        task.await.expect("follow_role ends when the core is gone");
    }
}
