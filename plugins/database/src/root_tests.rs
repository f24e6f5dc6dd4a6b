//! The root rotation's write-ahead and recovery against an in-memory
//! stand-in for PostgreSQL and the plugin's storage, with a failure
//! injected at each step.

use super::*;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    StorePending,
    /// The ALTER is refused (rolled back).
    SetPassword,
    /// The ALTER commits but the answer is lost (connection dropped).
    SetPasswordAfterCommit,
    StorePassword,
    DeletePending,
    /// The database cannot be reached at all.
    Unreachable,
}

#[derive(Debug, Default)]
struct State {
    db: String,
    stored: String,
    pending: Option<Pending>,
    fail: Option<Fail>,
    connects: Vec<String>,
}

#[derive(Debug, Default)]
struct Fake(Mutex<State>);

impl Fake {
    fn new(db: &str, stored: &str, pending: Option<&str>) -> Self {
        Fake(Mutex::new(State {
            db: db.into(),
            stored: stored.into(),
            pending: pending.map(|p| Pending {
                password: p.into(),
                started: 7,
            }),
            ..State::default()
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failing(self, f: Fail) -> Self {
        self.state().fail = Some(f);
        self
    }

    fn fails(&self, f: Fail) -> bool {
        self.state().fail == Some(f)
    }

    /// (database password, stored password, pending password)
    fn snapshot(&self) -> (String, String, Option<String>) {
        let s = self.state();
        (
            s.db.clone(),
            s.stored.clone(),
            s.pending.as_ref().map(|p| p.password.clone()),
        )
    }
}

fn boom(what: &str) -> Error {
    Error::Unavailable(format!("{what}: injected failure"))
}

#[async_trait]
impl Root for Fake {
    type Conn = ();

    fn name(&self) -> &str {
        "pg"
    }

    async fn stored_password(&self) -> Result<String, Error> {
        Ok(self.state().stored.clone())
    }

    async fn connect(&self, password: &str) -> Result<(), ConnectError> {
        let mut s = self.state();
        s.connects.push(password.to_string());
        if s.fail == Some(Fail::Unreachable) {
            return Err(ConnectError::Other(boom("connect")));
        }
        if s.db == password {
            Ok(())
        } else {
            Err(ConnectError::BadPassword(Error::invalid(
                "FATAL: password authentication failed for user \"root\"",
            )))
        }
    }

    async fn set_password(&self, _: &mut (), new: &str) -> Result<(), Error> {
        if self.fails(Fail::SetPassword) {
            return Err(boom("ALTER ROLE"));
        }
        self.state().db = new.to_string();
        if self.fails(Fail::SetPasswordAfterCommit) {
            return Err(boom("COMMIT"));
        }
        Ok(())
    }

    async fn load_pending(&self) -> Result<Option<Pending>, Error> {
        Ok(self.state().pending.clone())
    }

    async fn store_pending(&self, pending: &Pending) -> Result<(), Error> {
        if self.fails(Fail::StorePending) {
            return Err(boom("storage put"));
        }
        self.state().pending = Some(pending.clone());
        Ok(())
    }

    async fn delete_pending(&self) -> Result<(), Error> {
        if self.fails(Fail::DeletePending) {
            return Err(boom("storage delete"));
        }
        self.state().pending = None;
        Ok(())
    }

    async fn store_password(&self, password: &str) -> Result<(), Error> {
        if self.fails(Fail::StorePassword) {
            return Err(boom("storage put"));
        }
        self.state().stored = password.to_string();
        Ok(())
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[tokio::test]
async fn a_rotation_sets_stores_and_clears_the_entry() {
    let f = Fake::new("old", "old", None);
    rotate(&f, "new", 1).await.expect("rotate");
    assert_eq!(f.snapshot(), ("new".into(), "new".into(), None));
    connect(&f).await.expect("connect with the new password");
}

#[tokio::test]
async fn a_failed_write_ahead_changes_nothing() {
    let f = Fake::new("old", "old", None).failing(Fail::StorePending);
    let e = rotate(&f, "new", 1).await.expect_err("must fail");
    assert!(e.to_string().contains("changed nothing"), "{e}");
    assert_eq!(f.snapshot(), ("old".into(), "old".into(), None));
}

#[tokio::test]
async fn a_refused_alter_leaves_an_entry_that_is_never_used() {
    let f = Fake::new("old", "old", None).failing(Fail::SetPassword);
    rotate(&f, "new", 1).await.expect_err("must fail");
    assert_eq!(f.snapshot(), ("old".into(), "old".into(), some("new")));
    f.state().fail = None;
    f.state().connects.clear();
    connect(&f).await.expect("the stored password still works");
    assert_eq!(f.state().connects, vec!["old".to_string()]);
    assert_eq!(f.snapshot(), ("old".into(), "old".into(), some("new")));
    // The next rotation replaces the stale entry and clears it.
    rotate(&f, "newer", 2).await.expect("rotate");
    assert_eq!(f.snapshot(), ("newer".into(), "newer".into(), None));
}

#[tokio::test]
async fn an_alter_that_committed_but_errored_is_finished_at_the_next_connection() {
    let f = Fake::new("old", "old", None).failing(Fail::SetPasswordAfterCommit);
    rotate(&f, "new", 1).await.expect_err("must fail");
    assert_eq!(f.snapshot(), ("new".into(), "old".into(), some("new")));
    f.state().fail = None;
    connect(&f).await.expect("recovered");
    assert_eq!(f.snapshot(), ("new".into(), "new".into(), None));
}

#[tokio::test]
async fn a_failed_store_after_the_alter_is_recovered_not_lost() {
    let f = Fake::new("old", "old", None).failing(Fail::StorePassword);
    let e = rotate(&f, "new", 1).await.expect_err("must fail");
    assert!(e.to_string().contains("pending"), "{e}");
    assert!(
        !e.to_string().contains("new\""),
        "no password in errors: {e}"
    );
    assert_eq!(f.snapshot(), ("new".into(), "old".into(), some("new")));
    // While storing keeps failing, a connection works but the entry stays.
    let e = connect(&f).await.expect_err("storing still fails");
    assert!(e.to_string().contains("stays pending"), "{e}");
    assert_eq!(f.snapshot(), ("new".into(), "old".into(), some("new")));
    f.state().fail = None;
    connect(&f).await.expect("recovered");
    assert_eq!(f.snapshot(), ("new".into(), "new".into(), None));
    connect(&f).await.expect("and stays so");
}

#[tokio::test]
async fn a_crash_between_alter_and_store_is_finished_by_a_later_rotation_too() {
    // The state a process killed after step 2 leaves behind.
    let f = Fake::new("p2", "p1", Some("p2"));
    rotate(&f, "p3", 3).await.expect("rotate");
    assert_eq!(f.snapshot(), ("p3".into(), "p3".into(), None));
}

#[tokio::test]
async fn a_failed_cleanup_is_harmless() {
    let f = Fake::new("old", "old", None).failing(Fail::DeletePending);
    rotate(&f, "new", 1)
        .await
        .expect("the rotation itself worked");
    assert_eq!(f.snapshot(), ("new".into(), "new".into(), some("new")));
    f.state().connects.clear();
    connect(&f).await.expect("connect");
    assert_eq!(f.state().connects, vec!["new".to_string()]);
}

#[tokio::test]
async fn a_refused_password_without_an_entry_is_the_servers_error() {
    let f = Fake::new("elsewhere", "old", None);
    let e = connect(&f).await.expect_err("refused");
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    let f = Fake::new("elsewhere", "old", Some("new"));
    let e = connect(&f).await.expect_err("refused");
    assert!(e.to_string().contains("changed outside lockbox"), "{e}");
    assert!(e.to_string().contains("config/pg"), "{e}");
    assert_eq!(
        f.snapshot(),
        ("elsewhere".into(), "old".into(), some("new"))
    );
}

#[tokio::test]
async fn an_unreachable_database_never_touches_the_entry() {
    let f = Fake::new("new", "old", Some("new")).failing(Fail::Unreachable);
    connect(&f).await.expect_err("unreachable");
    assert_eq!(f.state().connects, vec!["old".to_string()]);
    assert_eq!(f.snapshot(), ("new".into(), "old".into(), some("new")));
}
