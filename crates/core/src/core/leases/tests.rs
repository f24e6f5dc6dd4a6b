use super::*;
use lockbox_storage::InMemory;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// An engine that records revocations and can be told to fail.
#[derive(Default)]
struct FakeEngines {
    revoked: Mutex<Vec<String>>,
    failing: AtomicBool,
    grant: AtomicU32,
}

#[async_trait::async_trait]
impl Engines for FakeEngines {
    async fn renew(&self, _lease: &LeaseEntry, _increment: u64) -> Result<u64, RequestError> {
        Ok(u64::from(self.grant.load(Ordering::SeqCst)))
    }
    async fn revoke(&self, lease: &LeaseEntry) -> Result<(), RequestError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(RequestError::Unavailable("database is down".into()));
        }
        self.revoked.lock().unwrap().push(lease.lease_id.clone());
        Ok(())
    }
}

async fn leases() -> Leases {
    let mem = Arc::new(InMemory::new());
    let init = Barrier::initialize(mem, 1, 1).await.unwrap();
    Leases::new(Arc::new(init.barrier))
}

fn data() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("password".into(), Value::String("s3cret".into()));
    m
}

#[test]
fn lease_ttl_takes_the_engines_else_the_mounts_and_never_passes_a_max() {
    assert_eq!(lease_ttl(60, 0, 3600, 7200), 60);
    assert_eq!(lease_ttl(0, 0, 3600, 7200), 3600);
    assert_eq!(lease_ttl(10_000, 0, 3600, 7200), 7200);
    assert_eq!(lease_ttl(10_000, 500, 3600, 7200), 500);
    assert_eq!(lease_ttl(0, 0, 0, 0), 0);
}

#[test]
fn retries_back_off_to_a_minute() {
    assert_eq!(retry_delay(1), Duration::from_secs(1));
    assert_eq!(retry_delay(2), Duration::from_secs(2));
    assert_eq!(retry_delay(5), Duration::from_secs(16));
    assert_eq!(retry_delay(50), Duration::from_secs(60));
}

#[tokio::test]
async fn register_lookup_renew_within_the_max() {
    let l = leases().await;
    let e = l
        .register(
            "db/creds/app",
            Some("tok"),
            Some(data()),
            Map::new(),
            60,
            90,
            true,
        )
        .await
        .unwrap();
    assert!(e.lease_id.starts_with("db/creds/app/"), "{}", e.lease_id);
    assert_eq!(l.get(&e.lease_id).await.unwrap().unwrap(), e);
    let shown = e.lookup_data(now());
    assert_eq!(shown["id"], Value::String(e.lease_id.clone()));
    assert!(
        !Value::Object(shown).to_string().contains("s3cret"),
        "lookup never shows data"
    );

    let engines = FakeEngines::default();
    let renewed = l.renew(&e.lease_id, 3600, &engines).await.unwrap();
    let left = renewed.expire_time - now();
    assert!((85..=90).contains(&left), "capped at the max: {left}");
    assert!(renewed.last_renewal.is_some());
    // The engine's own grant wins over the increment (still capped).
    engines.grant.store(30, Ordering::SeqCst);
    let renewed = l.renew(&e.lease_id, 3600, &engines).await.unwrap();
    assert!(renewed.expire_time - now() <= 30);

    let fixed = l
        .register("db/creds/app", None, None, Map::new(), 60, 0, false)
        .await
        .unwrap();
    let err = l.renew(&fixed.lease_id, 10, &engines).await.unwrap_err();
    assert!(err.to_string().contains("not renewable"), "{err}");
    let err = l
        .renew("db/creds/app/nope", 10, &engines)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lease not found"), "{err}");
}

#[tokio::test]
async fn revoke_calls_the_engine_and_forgets_the_lease_and_its_index() {
    let l = leases().await;
    let engines = FakeEngines::default();
    let e = l
        .register("db/creds/app", Some("tok"), None, Map::new(), 60, 0, true)
        .await
        .unwrap();
    assert!(l.revoke(&e.lease_id, false, &engines).await.unwrap());
    assert_eq!(*engines.revoked.lock().unwrap(), vec![e.lease_id.clone()]);
    assert!(l.get(&e.lease_id).await.unwrap().is_none());
    assert!(
        l.barrier
            .list(&format!("{TOKEN_PREFIX}tok/"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !l.revoke(&e.lease_id, false, &engines).await.unwrap(),
        "unknown: nothing to do"
    );
}

#[tokio::test]
async fn a_failing_engine_is_retried_then_the_lease_is_irrevocable_until_forced() {
    let l = leases().await;
    let engines = FakeEngines::default();
    engines.failing.store(true, Ordering::SeqCst);
    let e = l
        .register("db/creds/app", None, None, Map::new(), 60, 0, true)
        .await
        .unwrap();
    for attempt in 1..=MAX_REVOKE_ATTEMPTS {
        let err = l.revoke(&e.lease_id, false, &engines).await.unwrap_err();
        assert!(err.to_string().contains("database is down"), "{err}");
        let stored = l.get(&e.lease_id).await.unwrap().unwrap();
        assert_eq!(stored.revoke_attempts, attempt);
        assert_eq!(stored.irrevocable, attempt == MAX_REVOKE_ATTEMPTS);
    }
    let shown = l
        .get(&e.lease_id)
        .await
        .unwrap()
        .unwrap()
        .lookup_data(now());
    assert_eq!(shown["irrevocable"], Value::Bool(true));
    assert!(
        shown["revoke_error"]
            .as_str()
            .unwrap()
            .contains("database is down")
    );
    // Not on the schedule any more.
    assert!(l.take_due(i64::MAX, 100).is_empty());
    // revoke-force drops it without the engine.
    assert_eq!(l.revoke_prefix("db/", true, &engines).await.unwrap(), 1);
    assert!(l.get(&e.lease_id).await.unwrap().is_none());
}

#[tokio::test]
async fn prefixes_tokens_and_restarts() {
    let l = leases().await;
    let engines = FakeEngines::default();
    let a = l
        .register("db/creds/a", Some("t1"), None, Map::new(), 3600, 0, true)
        .await
        .unwrap();
    let b = l
        .register("db/creds/b", Some("t2"), None, Map::new(), 3600, 0, true)
        .await
        .unwrap();
    let c = l
        .register("dbx/creds/c", Some("t1"), None, Map::new(), 3600, 0, true)
        .await
        .unwrap();
    assert_eq!(l.ids_under("db/").await.unwrap(), {
        let mut v = vec![a.lease_id.clone(), b.lease_id.clone()];
        v.sort();
        v
    });
    assert_eq!(
        l.ids_under(&c.lease_id).await.unwrap(),
        vec![c.lease_id.clone()]
    );

    // Nothing is due yet; a revoked token makes its leases due now.
    assert!(l.take_due(now(), 100).is_empty());
    assert_eq!(l.token_revoked("t1").await.unwrap(), 2);
    assert_eq!(l.revoke_due(&engines).await, 2);
    let mut revoked = engines.revoked.lock().unwrap().clone();
    revoked.sort();
    let mut want = vec![a.lease_id.clone(), c.lease_id.clone()];
    want.sort();
    assert_eq!(revoked, want);

    // A fresh manager over the same storage re-arms what is left.
    let again = Leases::new(l.barrier.clone());
    assert_eq!(again.load().await.unwrap(), 1);
    assert!(again.until_next_due() > Duration::from_secs(3000));
}

/// Token hashes that exist, for tidying.
struct Tokens(Vec<&'static str>);

#[async_trait::async_trait]
impl TokenIndex for Tokens {
    async fn token_exists(&self, hash: &str) -> Result<bool, RequestError> {
        Ok(self.0.contains(&hash))
    }
}

#[tokio::test]
async fn tidy_drops_dangling_index_entries_and_revokes_the_leases_of_gone_tokens() {
    let l = leases().await;
    let register = async |path: &str, token: &str| {
        l.register(
            path,
            Some(token),
            Some(data()),
            Map::new(),
            3600,
            7200,
            true,
        )
        .await
        .unwrap()
    };
    let live = register("db/creds/a", "alive").await;
    let orphan = register("db/creds/b", "gone").await;
    // A crash between deleting a lease and its token-index entry leaves
    // the entry behind.
    let dangling = register("db/creds/c", "alive").await;
    l.barrier
        .delete(&format!("{ID_PREFIX}{}", dangling.lease_id))
        .await
        .unwrap();
    let tokens = Tokens(vec!["alive"]);
    assert_eq!(l.tidy(&tokens).await.unwrap(), 2);
    assert!(
        l.barrier
            .get(&token_key("alive", &dangling.lease_id))
            .await
            .unwrap()
            .is_none(),
        "the dangling entry is gone"
    );
    // The gone token's lease is due now; the live one is untouched.
    let engines = FakeEngines::default();
    assert_eq!(l.revoke_due(&engines).await, 1);
    assert_eq!(*engines.revoked.lock().unwrap(), vec![orphan.lease_id]);
    assert!(l.get(&live.lease_id).await.unwrap().is_some());
    assert_eq!(l.tidy(&tokens).await.unwrap(), 0, "nothing left to fix");
}

/// An engine whose first revocation waits for `release`, and every
/// revocation fails (the database is down).
#[derive(Default)]
struct StuckEngine {
    calls: AtomicU32,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl Engines for StuckEngine {
    async fn renew(&self, _lease: &LeaseEntry, _increment: u64) -> Result<u64, RequestError> {
        Ok(0)
    }
    async fn revoke(&self, _lease: &LeaseEntry) -> Result<(), RequestError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.entered.notify_one();
            self.release.notified().await;
        }
        Err(RequestError::Unavailable("database is down".into()))
    }
}

#[tokio::test]
async fn a_failing_revocation_cannot_bring_back_a_lease_revoke_force_dropped() {
    let l = Arc::new(leases().await);
    let e = l
        .register(
            "db/creds/a",
            Some("t"),
            Some(data()),
            Map::new(),
            60,
            90,
            true,
        )
        .await
        .unwrap();
    let engine = Arc::new(StuckEngine::default());
    // The worker's retry is inside the engine when revoke-force comes.
    let retry = {
        let (l, engine, id) = (l.clone(), engine.clone(), e.lease_id.clone());
        tokio::spawn(async move { l.revoke(&id, false, engine.as_ref()).await })
    };
    engine.entered.notified().await;
    let force = {
        let (l, engine, id) = (l.clone(), engine.clone(), e.lease_id.clone());
        tokio::spawn(async move { l.revoke(&id, true, engine.as_ref()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.release.notify_one();
    assert!(retry.await.unwrap().is_err(), "the retry fails");
    assert!(
        force.await.unwrap().unwrap(),
        "revoke-force drops the lease"
    );
    assert!(
        l.get(&e.lease_id).await.unwrap().is_none(),
        "the failed retry must not write the lease back"
    );
}
