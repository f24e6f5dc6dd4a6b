//! High availability against a real cluster per test
//! (`tests/harness/pg-up.sh`): leadership by the advisory lock, takeover
//! after a release, a killed holder, a paused holder, a restart, and term
//! fencing of the writes. Waits are bounded generously (liveness only).

use lockbox_storage::{Physical, StorageError, TxnOp};
use lockbox_storage_postgres::{
    Change, HaConfig, Held, Leadership, LostReason, PostgresBackend, PostgresConfig, PostgresError,
    ha_ddl,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::timeout;

mod common;
use common::Pg;

const LIVENESS: Duration = Duration::from_secs(10);

struct Node {
    store: Arc<PostgresBackend>,
    ha: Leadership,
}

async fn node(pg: &Pg, id: &str, tweak: impl FnOnce(&mut HaConfig)) -> Node {
    let store = Arc::new(pg.open(PostgresConfig::default()).await);
    let mut config = HaConfig::new(
        id,
        format!("https://{id}.test:8200"),
        format!("https://{id}.test:8201"),
    );
    tweak(&mut config);
    let ha = store.enable_ha(config).await.expect("enable_ha");
    Node { store, ha }
}

async fn acquire(n: &Node) -> Held {
    timeout(LIVENESS, n.ha.acquire())
        .await
        .expect("acquire within the liveness bound")
}

fn campaign(n: &Node) -> tokio::task::JoinHandle<Held> {
    let ha = n.ha.clone();
    tokio::spawn(async move { ha.acquire().await })
}

async fn won(task: tokio::task::JoinHandle<Held>) -> Held {
    timeout(LIVENESS, task)
        .await
        .expect("takeover within the liveness bound")
        .expect("campaign task")
}

fn assert_fenced(result: Result<impl std::fmt::Debug, StorageError>, words: &str) {
    match result {
        Err(e @ StorageError::Fenced { .. }) => {
            assert!(e.to_string().contains(words), "{e}");
        }
        other => panic!("expected Fenced ({words}), got {other:?}"),
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_takeover_after_release() {
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |_| {}).await;
    let b = node(&pg, "node-b", |_| {}).await;
    assert!(a.ha.leader().await.expect("leader").is_none());

    let held_a = acquire(&a).await;
    let b_campaign = campaign(&b);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!b_campaign.is_finished(), "B must wait while A holds");

    a.store
        .put("k/1", b"from a".to_vec())
        .await
        .expect("A writes");
    a.store.put("k/2", b"x".to_vec()).await.expect("A writes");
    assert_fenced(b.store.put("k/3", b"b".to_vec()).await, "standby");
    assert_fenced(b.store.delete("k/1").await, "standby");
    assert_fenced(b.store.delete_prefix("k/").await, "standby");
    // Reads are not fenced.
    assert_eq!(
        b.store.get("k/1").await.expect("B reads"),
        Some(b"from a".to_vec())
    );
    assert_eq!(b.store.list("k/").await.expect("B lists"), vec!["1", "2"]);

    let rec = b.ha.leader().await.expect("leader").expect("a leader");
    assert_eq!(rec.node_id, "node-a");
    assert_eq!(rec.term, held_a.term());
    assert_eq!(rec.api_addr, "https://node-a.test:8200");
    assert_eq!(rec.cluster_addr, "https://node-a.test:8201");
    assert!(rec.lock_held);

    let term_a = held_a.term();
    held_a.release().await;
    let held_b = won(b_campaign).await;
    assert!(held_b.term() > term_a, "{} > {term_a}", held_b.term());
    assert_fenced(a.store.put("k/4", b"a".to_vec()).await, "standby");

    let rec = a.ha.leader().await.expect("leader").expect("a leader");
    assert_eq!(rec.node_id, "node-b");
    assert_eq!(rec.term, held_b.term());
    assert!(rec.lock_held);

    b.store.put("k/3", b"b".to_vec()).await.expect("B writes");
    b.store.delete("k/1").await.expect("B deletes");
    b.store
        .delete("k/missing")
        .await
        .expect("nothing to delete is fine");
    assert_eq!(b.store.delete_prefix("k/").await.expect("B deletes"), 2);
    assert_eq!(b.store.delete_prefix("k/").await.expect("none left"), 0);
}

#[tokio::test]
async fn a_killed_lock_session_hands_over_and_reports_connection_lost() {
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |_| {}).await;
    let b = node(&pg, "node-b", |_| {}).await;
    let mut held_a = acquire(&a).await;
    let b_campaign = campaign(&b);
    tokio::time::sleep(Duration::from_millis(300)).await;

    pg.admin(
        "lockbox",
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted",
    );
    let held_b = won(b_campaign).await;
    assert!(held_b.term() > held_a.term());
    let reason = timeout(LIVENESS, held_a.lost()).await.expect("A notices");
    assert!(
        matches!(reason, LostReason::ConnectionLost(_)),
        "{reason:?}"
    );
    // Cancel-safe and repeatable.
    assert_eq!(
        timeout(LIVENESS, held_a.lost()).await.expect("again"),
        reason
    );
    assert_fenced(a.store.put("x", b"a".to_vec()).await, "standby");
    b.store.put("x", b"b".to_vec()).await.expect("B writes");
}

#[tokio::test]
async fn a_paused_holder_is_ended_by_the_database_clock_and_fenced() {
    let Some(pg) = Pg::start() else { return };
    // A never refreshes its heartbeat: as if paused (SIGSTOP, GC, partition).
    let a = node(&pg, "node-a", |c| c.heartbeat = Duration::from_secs(3600)).await;
    let b = node(&pg, "node-b", |c| {
        c.stale_after = Duration::from_millis(500)
    })
    .await;
    let mut held_a = acquire(&a).await;
    a.store.put("k", b"a1".to_vec()).await.expect("A writes");

    let held_b = won(campaign(&b)).await;
    assert!(held_b.term() > held_a.term());
    // A still believes it leads: its pool writes are refused by the term.
    assert_fenced(
        a.store.put("k", b"a2".to_vec()).await,
        "lost the leadership",
    );
    let reason = timeout(LIVENESS, held_a.lost()).await.expect("A notices");
    assert_eq!(reason, LostReason::WriteFenced);
    assert_fenced(a.store.delete("k").await, "standby");
    assert_eq!(b.store.get("k").await.expect("read"), Some(b"a1".to_vec()));
    let rec = a.ha.leader().await.expect("leader").expect("a leader");
    assert_eq!((rec.node_id.as_str(), rec.term), ("node-b", held_b.term()));
}

#[tokio::test]
async fn no_write_of_the_old_term_commits_after_the_takeover() {
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |c| c.heartbeat = Duration::from_secs(3600)).await;
    let b = node(&pg, "node-b", |c| {
        c.stale_after = Duration::from_millis(500)
    })
    .await;
    let _held_a = acquire(&a).await;

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let fenced: Arc<Mutex<usize>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (store, acked, fenced, stop) =
            (a.store.clone(), acked.clone(), fenced.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..100_000 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let key = format!("w{w}/{i}");
                match store.put(&key, key.clone().into_bytes()).await {
                    Ok(()) => acked.lock().expect("acked").push(key),
                    Err(StorageError::Fenced { .. }) => {
                        *fenced.lock().expect("fenced") += 1;
                        return;
                    }
                    Err(e) => panic!("unexpected write error: {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _held_b = won(campaign(&b)).await;
    // What B sees right after its term bump committed: every write of A's
    // term that will ever commit must be in it.
    let mut seen_by_b = BTreeSet::new();
    for w in 0..4 {
        for k in b.store.list(&format!("w{w}/")).await.expect("list") {
            seen_by_b.insert(format!("w{w}/{k}"));
        }
    }
    b.store
        .put("marker", b"b".to_vec())
        .await
        .expect("B writes");
    // Without fencing A's writers would go on: give them time to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        timeout(LIVENESS, w)
            .await
            .expect("writer ends")
            .expect("writer");
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(!acked.is_empty(), "A wrote before the takeover");
    let late: Vec<&String> = acked.iter().filter(|k| !seen_by_b.contains(*k)).collect();
    assert!(
        late.is_empty(),
        "A writes acknowledged after B's term bump: {late:?}"
    );
    assert_eq!(
        *fenced.lock().expect("fenced"),
        4,
        "every writer was fenced"
    );
    for k in &acked {
        assert_eq!(
            b.store.get(k).await.expect("get"),
            Some(k.clone().into_bytes()),
            "{k}"
        );
    }
}

#[tokio::test]
async fn a_foreign_ha_table_is_refused_and_the_ddl_is_accepted() {
    let Some(pg) = Pg::start() else { return };
    let store = Arc::new(pg.open(PostgresConfig::default()).await);
    // Vault's own HA table layout is not lockbox's.
    pg.admin(
        "lockbox",
        "SET ROLE store; CREATE TABLE vault_ha_locks (ha_key TEXT COLLATE \"C\" NOT NULL, \
         ha_identity TEXT COLLATE \"C\" NOT NULL, ha_value TEXT COLLATE \"C\", \
         valid_until TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT ha_key PRIMARY KEY (ha_key))",
    );
    let mut config = HaConfig::new("n", "https://n:8200", "https://n:8201");
    config.table = "vault_ha_locks".to_string();
    let err = store.enable_ha(config.clone()).await.expect_err("refused");
    assert!(matches!(err, PostgresError::Schema { .. }), "{err:?}");
    let text = err.to_string();
    for words in [
        "vault_ha_locks",
        "no column term",
        "unexpected column ha_identity",
        "ha_table",
        "drop",
    ] {
        assert!(text.contains(words), "{words:?} in {text}");
    }
    config.table = "vault_kv_store".to_string();
    assert!(matches!(
        store.enable_ha(config.clone()).await,
        Err(PostgresError::Config(_))
    ));
    config.table = "bad-name".to_string();
    assert!(matches!(
        store.enable_ha(config.clone()).await,
        Err(PostgresError::Config(_))
    ));

    // A table made from the published DDL is accepted and works.
    pg.admin("lockbox", &format!("SET ROLE store; {}", ha_ddl("team_ha")));
    config.table = "team_ha".to_string();
    let ha = store
        .enable_ha(config.clone())
        .await
        .expect("the DDL's table");
    let held = timeout(LIVENESS, ha.acquire()).await.expect("acquire");
    assert_eq!(held.term(), 1);
    store.put("k", b"v".to_vec()).await.expect("write");
    let again = store.enable_ha(config).await.expect_err("once per backend");
    assert!(again.to_string().contains("already enabled"), "{again}");
}

#[tokio::test]
async fn a_restart_loses_the_leadership_and_a_node_takes_it_again() {
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |_| {}).await;
    let b = node(&pg, "node-b", |_| {}).await;
    let mut held_a = acquire(&a).await;
    a.store
        .put("before", b"1".to_vec())
        .await
        .expect("A writes");
    let old_term = held_a.term();

    pg.restart();
    let reason = timeout(LIVENESS, held_a.lost()).await.expect("A notices");
    assert!(
        matches!(reason, LostReason::ConnectionLost(_)),
        "{reason:?}"
    );
    assert_fenced(a.store.put("during", b"1".to_vec()).await, "standby");

    let (winner, held) = timeout(Duration::from_secs(30), async {
        tokio::select! {
            h = a.ha.acquire() => (&a, h),
            h = b.ha.acquire() => (&b, h),
        }
    })
    .await
    .expect("a node leads again");
    assert!(held.term() > old_term);
    winner
        .store
        .put("after", b"2".to_vec())
        .await
        .expect("the new leader writes");
    assert_eq!(
        winner.store.get("before").await.expect("read"),
        Some(b"1".to_vec())
    );
    let rec = a.ha.leader().await.expect("leader").expect("a leader");
    assert_eq!(rec.term, held.term());
    assert!(rec.lock_held);
    drop(held);
}

#[tokio::test]
async fn dropping_the_leadership_steps_down_at_once() {
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |_| {}).await;
    let b = node(&pg, "node-b", |_| {}).await;
    let held_a = acquire(&a).await;
    a.store.put("k", b"a".to_vec()).await.expect("A writes");
    let b_campaign = campaign(&b);
    // An acquire dropped while it waits holds nothing afterwards.
    let c = node(&pg, "node-c", |_| {}).await;
    assert!(
        timeout(Duration::from_millis(300), c.ha.acquire())
            .await
            .is_err()
    );
    let term_a = held_a.term();
    drop(held_a);
    assert_fenced(a.store.put("k", b"a2".to_vec()).await, "standby");
    let held_b = won(b_campaign).await;
    assert!(held_b.term() > term_a);
    b.store.put("k", b"b".to_vec()).await.expect("B writes");
    assert_eq!(
        pg.admin(
            "lockbox",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ),
        "1"
    );
}

#[tokio::test]
async fn a_term_recorded_by_another_node_is_reported_as_superseded() {
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |_| {}).await;
    let mut held_a = acquire(&a).await;
    let term = held_a.term();
    pg.admin(
        "lockbox",
        "UPDATE lockbox_ha_leader SET term = term + 1 WHERE ha_key IN ('leader', 'heartbeat')",
    );
    let reason = timeout(LIVENESS, held_a.lost()).await.expect("A notices");
    assert_eq!(reason, LostReason::Superseded { term: term + 1 });
    assert_fenced(a.store.put("k", b"a".to_vec()).await, "standby");
}

#[tokio::test]
async fn a_session_holding_the_lock_without_promoting_is_ended() {
    let Some(pg) = Pg::start() else { return };
    let b = node(&pg, "node-b", |c| {
        c.stale_after = Duration::from_millis(500)
    })
    .await;
    // A process that took the lock and hung before its term bump.
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    let key = lockbox_storage_postgres::lock_key(lockbox_storage_postgres::DEFAULT_HA_TABLE);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .expect("lock");
    let held_b = won(campaign(&b)).await;
    assert_eq!(held_b.term(), 1);
    let ended = timeout(LIVENESS, conn).await.expect("hung session ended");
    assert!(ended.expect("connection task").is_err(), "terminated by B");
    b.store.put("k", b"b".to_vec()).await.expect("B writes");
}

/// A multi-key transaction of a node that lost the leadership writes none
/// of its keys; the leader's is applied whole.
#[tokio::test]
async fn a_transaction_of_the_old_term_writes_nothing() {
    use lockbox_storage::TxnOp;
    let Some(pg) = Pg::start() else { return };
    let a = node(&pg, "node-a", |c| c.heartbeat = Duration::from_secs(3600)).await;
    let b = node(&pg, "node-b", |c| {
        c.stale_after = Duration::from_millis(500)
    })
    .await;
    let put = |k: &str, v: &[u8]| TxnOp::Put {
        key: k.into(),
        value: v.to_vec(),
    };
    let _held_a = acquire(&a).await;
    a.store
        .transaction(vec![put("t/1", b"a"), put("t/2", b"a")])
        .await
        .expect("the leader's transaction");
    let _held_b = won(campaign(&b)).await;
    assert_fenced(
        a.store
            .transaction(vec![
                put("t/1", b"old"),
                TxnOp::Delete { key: "t/2".into() },
                put("t/3", b"old"),
            ])
            .await,
        "lost the leadership",
    );
    for (k, v) in [
        ("t/1", Some(b"a".to_vec())),
        ("t/2", Some(b"a".to_vec())),
        ("t/3", None),
    ] {
        assert_eq!(b.store.get(k).await.expect("read"), v, "{k}");
    }
    b.store
        .transaction(vec![put("t/3", b"b"), TxnOp::Delete { key: "t/1".into() }])
        .await
        .expect("the new leader's transaction");
    assert_eq!(b.store.get("t/3").await.expect("read"), Some(b"b".to_vec()));
    assert_eq!(b.store.get("t/1").await.expect("read"), None);
}

/// HA replicas start at once on a fresh database: every one of them opens
/// the storage and the HA table (created once, serialized by an advisory
/// lock; a bare `CREATE TABLE IF NOT EXISTS` race fails on `pg_type`).
#[tokio::test]
async fn nodes_opening_a_fresh_database_at_once_all_succeed() {
    let Some(pg) = Pg::start() else { return };
    let url = pg.url();
    let opens: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let store = Arc::new(
                    PostgresBackend::open(&url, &PostgresConfig::default())
                        .await
                        .map_err(|e| format!("open {i}: {e}"))?,
                );
                let config = HaConfig::new(
                    format!("node-{i}"),
                    format!("https://n{i}:8200"),
                    format!("https://n{i}:8201"),
                );
                store
                    .enable_ha(config)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("enable_ha {i}: {e}"))
            })
        })
        .collect();
    for open in opens {
        open.await.expect("task").expect("every node opens");
    }
}

/// The next change B hears, heartbeats included, within the liveness bound.
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>) -> Change {
    timeout(LIVENESS, rx.recv())
        .await
        .expect("a change within the liveness bound")
        .expect("the follower runs")
}

/// The next change B hears that is not a heartbeat.
async fn heard(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>) -> Change {
    loop {
        match next(rx).await {
            Change::Heartbeat { .. } => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn writes_under_announced_prefixes_are_announced_at_commit_and_followers_say_when_they_missed_some()
 {
    let Some(pg) = Pg::start() else { return };
    let announce = |c: &mut HaConfig| c.announce = vec!["core/".into(), "sys/policy/".into()];
    let a = node(&pg, "node-a", announce).await;
    let b = node(&pg, "node-b", announce).await;
    let mut changes = b.ha.changes();
    assert_eq!(heard(&mut changes).await, Change::Listening);
    let held = acquire(&a).await;
    // The active's heartbeats arrive on the channel with its term.
    loop {
        if let Change::Heartbeat { term } = next(&mut changes).await {
            assert_eq!(term, held.term());
            break;
        }
    }

    // Announced: puts, deletes, transactions (each key), and a prefix
    // delete as "anything"; other keys are not.
    a.store
        .put("logical/x/k", b"v".to_vec())
        .await
        .expect("put");
    a.store
        .put("core/mounts", b"t".to_vec())
        .await
        .expect("put");
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("core/mounts".into()))
    );
    assert_eq!(
        a.store.get("core/mounts").await.expect("get"),
        Some(b"t".to_vec()),
        "an announced put is written"
    );
    a.store.delete("sys/token/id/x").await.expect("delete");
    a.store.delete("sys/policy/p").await.expect("delete");
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("sys/policy/p".into()))
    );
    a.store
        .transaction(vec![
            TxnOp::Put {
                key: "logical/y".into(),
                value: b"1".to_vec(),
            },
            TxnOp::Put {
                key: "core/audit/devices".into(),
                value: b"2".to_vec(),
            },
            TxnOp::Delete {
                key: "sys/policy/q".into(),
            },
        ])
        .await
        .expect("transaction");
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("core/audit/devices".into()))
    );
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("sys/policy/q".into()))
    );
    a.store
        .put("core/plugin-catalog/a", b"1".to_vec())
        .await
        .expect("put");
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("core/plugin-catalog/a".into()))
    );
    assert_eq!(
        a.store
            .delete_prefix("core/plugin-catalog/")
            .await
            .expect("delete"),
        1
    );
    assert_eq!(heard(&mut changes).await, Change::Key(None));
    // Also when nothing was left to delete (a retried delete).
    assert_eq!(
        a.store
            .delete_prefix("core/plugin-catalog/")
            .await
            .expect("delete"),
        0
    );
    assert_eq!(heard(&mut changes).await, Change::Key(None));

    // A fenced write is refused and announces nothing.
    assert_fenced(b.store.put("core/mounts", b"b".to_vec()).await, "standby");
    a.store
        .put("sys/policy/last", b"1".to_vec())
        .await
        .expect("put");
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("sys/policy/last".into()))
    );
    assert_eq!(
        a.store.get("core/mounts").await.expect("get"),
        Some(b"t".to_vec())
    );

    // The follower's connection ends: it says so, listens again, and says
    // that too (announcements in between were missed).
    let terminated = pg.admin(
        "postgres",
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN lockbox_changes_%'",
    );
    assert_eq!(terminated.trim(), "1", "one listening session");
    assert!(matches!(heard(&mut changes).await, Change::Lost(_)));
    assert_eq!(heard(&mut changes).await, Change::Listening);
    a.store.put("core/after", b"1".to_vec()).await.expect("put");
    assert_eq!(
        heard(&mut changes).await,
        Change::Key(Some("core/after".into()))
    );
    held.release().await;
}
