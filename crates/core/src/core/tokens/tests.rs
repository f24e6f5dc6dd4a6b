//! Unit tests of [`super`].

use super::*;
use lockbox_storage::InMemory;

async fn store() -> TokenStore {
    let init = Barrier::initialize(Arc::new(InMemory::new()), 1, 1)
        .await
        .expect("init barrier");
    TokenStore::open(Arc::new(init.barrier), 3600, 7200)
        .await
        .expect("open store")
}

fn params(path: &str) -> CreateParams {
    CreateParams {
        policies: vec!["default".into()],
        orphan: true,
        path: path.into(),
        ..Default::default()
    }
}

async fn issue(s: &TokenStore, path: &str) -> Resolved {
    let (id, _) = s.create(None, params(path)).await.expect("create");
    s.lookup(&id).await.expect("lookup").expect("valid")
}

async fn alive(s: &TokenStore, t: &Resolved) -> bool {
    s.lookup(t.id()).await.expect("lookup").is_some()
}

#[tokio::test]
async fn revoke_expired_removes_expired_trees_from_storage() {
    let s = store().await;
    let short = CreateParams {
        ttl: 1,
        ..params("auth/token/create")
    };
    let (short_id, _) = s.create(None, short).await.expect("short");
    let short = s.lookup(&short_id).await.expect("lookup").expect("valid");
    let child = CreateParams {
        orphan: false,
        ttl: 3600,
        ..params("auth/token/create")
    };
    let (child_id, _) = s.create(Some(&short), child).await.expect("child");
    let child = s.lookup(&child_id).await.expect("lookup").expect("valid");
    let long = issue(&s, "auth/token/create").await;
    assert_eq!(s.revoke_expired().await.expect("sweep"), 0);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(s.revoke_expired().await.expect("sweep"), 1);
    for t in [&short, &child] {
        assert!(s.read_stored(&t.hash).await.expect("read").is_none());
    }
    assert!(alive(&s, &long).await);
}

#[tokio::test]
async fn revoke_by_path_prefix_revokes_matching_trees_only() {
    let s = store().await;
    let alice = issue(&s, "auth/userpass/login/alice").await;
    let bob = issue(&s, "auth/userpass/login/bob").await;
    let other_mount = issue(&s, "auth/userpass2/login/carol").await;
    let plain = issue(&s, "auth/token/create").await;
    // A child of a login token, created through auth/token/create.
    let child = CreateParams {
        orphan: false,
        ..params("auth/token/create")
    };
    let (child_id, _) = s.create(Some(&alice), child).await.expect("child");
    let child = s.lookup(&child_id).await.expect("lookup").expect("valid");

    assert_eq!(
        s.revoke_by_path_prefix("auth/userpass/")
            .await
            .expect("revoke"),
        2
    );
    for t in [&alice, &bob, &child] {
        assert!(!alive(&s, t).await, "{} survived", t.entry.path);
    }
    for t in [&other_mount, &plain] {
        assert!(alive(&s, t).await, "{} was revoked", t.entry.path);
    }
    // Nothing left to match; storage holds no trace of the revoked ones.
    assert_eq!(
        s.revoke_by_path_prefix("auth/userpass/")
            .await
            .expect("again"),
        0
    );
    for t in [&alice, &bob, &child] {
        assert!(s.read_stored(&t.hash).await.expect("read").is_none());
        assert!(
            s.by_accessor(&t.entry.accessor)
                .await
                .expect("accessor")
                .is_none()
        );
    }
    assert!(s.revoke_by_path_prefix("").await.is_err());
    assert!(alive(&s, &plain).await);
}

#[tokio::test]
async fn writers_never_resurrect_a_revoked_token() {
    let s = store().await;
    let renewable = issue(&s, "auth/token/create").await;
    s.revoke_tree(&renewable.hash).await.expect("revoke");
    // A renewal or a use holding a snapshot from before the revocation.
    assert!(
        s.renew(&renewable.hash, 60, None)
            .await
            .expect("renew")
            .is_none()
    );
    assert!(matches!(
        s.use_once(&renewable).await,
        Err(RequestError::PermissionDenied)
    ));
    let limited = CreateParams {
        num_uses: 2,
        ..params("auth/token/create")
    };
    let (id, _) = s.create(None, limited).await.expect("create");
    let limited = s.lookup(&id).await.expect("lookup").expect("valid");
    s.revoke_tree(&limited.hash).await.expect("revoke");
    assert!(s.use_once(&limited).await.is_err());
    for t in [&renewable, &limited] {
        assert!(s.read_stored(&t.hash).await.expect("read").is_none());
        assert!(!alive(&s, t).await);
    }
}

#[tokio::test]
async fn a_snapshot_cannot_spend_a_use_twice() {
    let s = store().await;
    let limited = CreateParams {
        num_uses: 2,
        ..params("auth/token/create")
    };
    let (id, _) = s.create(None, limited).await.expect("create");
    // Both requests looked the token up before either used it.
    let first = s.lookup(&id).await.expect("lookup").expect("valid");
    let second = s.lookup(&id).await.expect("lookup").expect("valid");
    let third = s.lookup(&id).await.expect("lookup").expect("valid");
    assert!(s.use_once(&first).await.is_ok());
    assert!(s.use_once(&second).await.is_ok());
    assert!(s.use_once(&third).await.is_err());
    assert!(s.lookup(&id).await.expect("lookup").is_none());
}

#[tokio::test]
async fn a_child_whose_parent_is_gone_is_refused() {
    let s = store().await;
    let parent = issue(&s, "auth/token/create").await;
    let child = CreateParams {
        orphan: false,
        ..params("auth/token/create")
    };
    let (child_id, _) = s.create(Some(&parent), child).await.expect("child");
    // The parent index entry is lost (as when the child was indexed
    // after the parent's tree was listed): revoke the parent alone.
    s.revoke_one(&parent.hash).await.expect("revoke parent");
    assert!(s.lookup(&child_id).await.expect("lookup").is_none());
    assert!(
        s.read_stored(&s.hash(&child_id))
            .await
            .expect("read")
            .is_none(),
        "the orphaned child is revoked on lookup"
    );
}
