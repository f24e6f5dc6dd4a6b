//! The userpass auth method.
//!
//! | path | operations | what |
//! |---|---|---|
//! | `users/` | list | user names |
//! | `users/{username}` | create, update, read, delete | `password` (required on create), `policies`, `ttl`; reads never return the hash |
//! | `login/{username}` | update (unauthenticated: `login/*`) | `password` → `auth` with the user's policies |
//!
//! Usernames are stored lower case; logins are case-insensitive (as in
//! Vault), but `users/{username}` takes the lower-case name only, so the
//! user it changes is the one the host's ACL was checked against.
//! Passwords are stored only as argon2id PHC strings with a random salt;
//! hashing runs on the blocking pool. A failed login (unknown user or wrong
//! password) is a 403 with the same message either way, and an unknown user
//! costs one hash verification too, so timing does not reveal which users
//! exist.
//!
//! Logins are unauthenticated and each costs an argon2 verification (19 MiB
//! of memory, tens of milliseconds of CPU), so [`LoginLimiter`] bounds them:
//! at most `USERPASS_MAX_CONCURRENT_LOGINS` (default: the CPU count) verify
//! at once, at most `USERPASS_MAX_QUEUED_LOGINS` (default: 8 per running
//! slot) wait for a turn, and any login beyond that is refused at once with
//! a 503 ("too many logins in progress; retry later").

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use lockbox_sdk::framework::{Field, Fields, Path, PathBackend};
use lockbox_sdk::{Auth, Error, Kind, Operation, Request, Response, Storage};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The version `Info` reports.
pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// The message of every failed login.
pub const LOGIN_FAILED: &str = "invalid username or password";

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// argon2id PHC string (`$argon2id$v=19$...`).
    pub password_hash: String,
    /// Policies of tokens issued at login.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Token TTL in seconds; 0 for the mount's default.
    #[serde(default)]
    pub ttl_seconds: u64,
}

fn user_key(username: &str) -> String {
    format!("users/{username}")
}

/// The user a login names: usernames are case-insensitive at login, as in
/// Vault.
fn login_username(fields: &Fields) -> Result<String, Error> {
    Ok(fields.require_str("username")?.to_lowercase())
}

/// The user `users/{username}` names, which must already be lower case:
/// the host checked the ACL on this exact path, so the plugin must act on
/// exactly this name, not on a lower-cased other one (`users/ADMIN` would
/// otherwise change `admin` past a deny rule on `users/admin`).
fn username_of(fields: &Fields) -> Result<String, Error> {
    let name = fields.require_str("username")?;
    let canonical = name.to_lowercase();
    if canonical != name {
        return Err(Error::invalid(format!(
            "username {name:?} is not in canonical form: usernames are lower case, use users/{canonical}"
        )));
    }
    Ok(canonical)
}

/// Hashes `password` with a fresh salt (argon2id, default parameters).
pub async fn hash_password(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
}

/// Whether `password` matches the PHC string `hash`. A malformed stored
/// hash never matches.
pub async fn verify_password(password: String, hash: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| Error::internal(format!("password verification task failed: {e}")))
}

/// A hash to verify against when the user does not exist (equal cost).
async fn dummy_hash() -> Result<String, Error> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash_password("lockbox-userpass-dummy-password".into()).await?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

async fn write_user(
    req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let username = username_of(&fields)?;
    let key = user_key(&username);
    let existing: Option<User> = storage.get_json(&key).await?;
    let creating = existing.is_none() || req.operation == Operation::Create;
    // Only a password the request gave counts (no default exists anyway).
    let password = fields
        .is_set("password")
        .then(|| fields.str("password"))
        .flatten();
    let mut user = match existing {
        Some(user) if !creating => user,
        _ if password.is_none() => {
            return Err(Error::invalid(
                "missing required field password (needed to create a user)",
            ));
        }
        _ => User {
            password_hash: String::new(),
            policies: Vec::new(),
            ttl_seconds: 0,
        },
    };
    if let Some(password) = password {
        if password.is_empty() {
            return Err(Error::invalid("field password: must not be empty"));
        }
        user.password_hash = hash_password(password.to_string()).await?;
    }
    if creating || fields.is_set("policies") {
        user.policies = fields.string_list("policies").unwrap_or_default().to_vec();
    }
    if creating || fields.is_set("ttl") {
        user.ttl_seconds = fields.duration("ttl").unwrap_or_default().as_secs();
    }
    storage.put_json(&key, &user).await?;
    Ok(None)
}

async fn read_user(
    _req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let Some(user) = storage
        .get_json::<User>(&user_key(&username_of(&fields)?))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Response::json(json!({
        "policies": user.policies,
        "ttl": user.ttl_seconds,
    }))))
}

/// Bounds concurrent logins (see the module documentation): `concurrent`
/// run, up to `queued` more wait in line, the rest are refused with 503.
#[derive(Debug)]
pub struct LoginLimiter {
    running: tokio::sync::Semaphore,
    admitted: AtomicUsize,
    concurrent: usize,
    queued: usize,
}

/// A login's turn; admission ends when it is dropped.
#[derive(Debug)]
pub struct LoginTurn<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    admitted: &'a AtomicUsize,
}

impl Drop for LoginTurn<'_> {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Undoes an admission whose wait was cancelled (the request went away).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LoginLimiter {
    /// `concurrent` logins at once (at least 1), `queued` more waiting.
    pub fn new(concurrent: usize, queued: usize) -> Self {
        let concurrent = concurrent.max(1);
        LoginLimiter {
            running: tokio::sync::Semaphore::new(concurrent),
            admitted: AtomicUsize::new(0),
            concurrent,
            queued,
        }
    }

    /// Limits from `USERPASS_MAX_CONCURRENT_LOGINS` and
    /// `USERPASS_MAX_QUEUED_LOGINS` (the catalog entry's `env`), else the
    /// CPU count and 8 waiting per running slot.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
        };
        let concurrent = var("USERPASS_MAX_CONCURRENT_LOGINS")
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let queued = var("USERPASS_MAX_QUEUED_LOGINS").unwrap_or(8 * concurrent.max(1));
        Self::new(concurrent, queued)
    }

    /// Waits for a turn, or refuses at once when `concurrent + queued`
    /// logins are already admitted.
    pub async fn admit(&self) -> Result<LoginTurn<'_>, Error> {
        let capacity = self.concurrent + self.queued;
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= capacity {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::unavailable(format!(
                "too many logins in progress ({} verifying, {} waiting); retry later",
                self.concurrent, self.queued
            )));
        }
        let admission = Admission(&self.admitted);
        let permit = self
            .running
            .acquire()
            .await
            .map_err(|_| Error::internal("the login limiter is closed"))?;
        std::mem::forget(admission);
        Ok(LoginTurn {
            _permit: permit,
            admitted: &self.admitted,
        })
    }
}

async fn login(
    limiter: Arc<LoginLimiter>,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let username = login_username(&fields)?;
    let password = fields.require_str("password")?.to_string();
    let _turn = limiter.admit().await?;
    let user: Option<User> = storage.get_json(&user_key(&username)).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash().await?,
    };
    let matches = verify_password(password, hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        return Err(Error::permission_denied(LOGIN_FAILED));
    };
    Ok(Some(Response::auth(Auth {
        policies: user.policies,
        metadata: BTreeMap::from([("username".to_string(), username.clone())]),
        display_name: format!("userpass-{username}"),
        ttl: Duration::from_secs(user.ttl_seconds),
        renewable: true,
        ..Default::default()
    })))
}

/// The backend, its login limits from the environment.
pub fn backend() -> PathBackend {
    backend_with(LoginLimiter::from_env())
}

/// The backend with the given login limits.
pub fn backend_with(limiter: LoginLimiter) -> PathBackend {
    let limiter = Arc::new(limiter);
    PathBackend::new(Kind::Credential, VERSION)
        .help("userpass authenticates users with a username and password.")
        .unauthenticated_paths(["login/*"])
        .path(
            Path::new("users/")
                .help("List users.", "")
                .list(|_, _, s| async move {
                    let keys: Vec<String> = s
                        .list("users/")
                        .await?
                        .into_iter()
                        .filter(|k| !k.ends_with('/'))
                        .collect();
                    Ok((!keys.is_empty()).then(|| Response::list(keys)))
                }),
        )
        .path(
            Path::new("users/{username}")
                .help(
                    "Manage a user.",
                    "Reads never return the password or its hash.",
                )
                .field(
                    Field::string("username")
                        .description("Name of the user, lower case (logins are case-insensitive)."),
                )
                .field(
                    Field::string("password")
                        .sensitive()
                        .description("The user's password; required when creating the user."),
                )
                .field(Field::string_list("policies").description("Policies of the user's tokens."))
                .field(Field::duration("ttl").description("TTL of the user's tokens."))
                .existence_check(|_, fields, s| async move {
                    Ok(s.get(&user_key(&username_of(&fields)?)).await?.is_some())
                })
                .write(write_user)
                .read(read_user)
                .delete(|_, fields, s| async move {
                    s.delete(&user_key(&username_of(&fields)?)).await?;
                    Ok(None)
                }),
        )
        .path(
            Path::new("login/{username}")
                .help("Log in with a password.", "")
                .field(
                    Field::string("password")
                        .required()
                        .sensitive()
                        .description("The password."),
                )
                .update(move |_, fields, s| login(limiter.clone(), fields, s)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_sdk::harness::Harness;
    use serde_json::Value;

    async fn harness() -> Harness {
        Harness::new(backend()).await.unwrap()
    }

    #[tokio::test]
    async fn logins_beyond_the_limits_wait_then_are_refused_with_503() {
        let limiter = Arc::new(LoginLimiter::new(1, 1));
        let first = limiter.admit().await.unwrap();
        // The second waits for the running one.
        let l = limiter.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn(async move {
            let turn = l.admit().await;
            let _ = tx.send(turn.is_ok());
        });
        while limiter.admitted.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // The third finds the line full and is refused without waiting.
        let e = limiter.admit().await.unwrap_err();
        assert!(matches!(e, Error::Unavailable(_)), "{e}");
        assert!(e.to_string().contains("retry later"), "{e}");
        assert_eq!(e.kind(), lockbox_sdk::Error::unavailable("").kind());
        // The running one finishes: the waiting one gets its turn.
        drop(first);
        assert!(rx.await.unwrap());
        waiter.await.unwrap();
        assert_eq!(limiter.admitted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_its_place_back() {
        let limiter = Arc::new(LoginLimiter::new(1, 1));
        let first = limiter.admit().await.unwrap();
        let l = limiter.clone();
        let waiter = tokio::spawn(async move {
            let _turn = l.admit().await;
        });
        while limiter.admitted.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(limiter.admitted.load(Ordering::SeqCst), 1);
        drop(first);
        let _again = limiter.admit().await.unwrap();
    }

    #[tokio::test]
    async fn info_declares_login_unauthenticated() {
        let info = harness().await.info().await.unwrap();
        assert_eq!(info.kind, Kind::Credential);
        assert_eq!(info.unauthenticated_paths, vec!["login/*"]);
    }

    #[tokio::test]
    async fn create_login_update_delete() {
        let h = harness().await;
        // The ACL was checked on `users/Alice`: the plugin must not act on
        // `users/alice` instead (issue 10, finding 1, in a plugin).
        let e = h
            .write("users/Alice", json!({"password": "x"}))
            .await
            .expect_err("a non-canonical username is refused");
        assert!(e.to_string().contains("users/alice"), "{e}");
        assert!(h.read_data("users/alice").await.unwrap().is_none());
        h.write(
            "users/alice",
            json!({"password": "s3cret", "policies": "dev, ops", "ttl": "1h"}),
        )
        .await
        .unwrap();
        let user = h.read_data("users/alice").await.unwrap().unwrap();
        assert_eq!(
            Value::Object(user),
            json!({"policies": ["dev", "ops"], "ttl": 3600})
        );

        // Only an argon2id PHC string is stored, never the password.
        let raw =
            String::from_utf8(h.storage().get("users/alice").await.unwrap().unwrap()).unwrap();
        assert!(!raw.contains("s3cret"), "{raw}");
        let stored: User = serde_json::from_str(&raw).unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"), "{raw}");

        let auth = h
            .login("login/alice", json!({"password": "s3cret"}))
            .await
            .unwrap();
        assert_eq!(auth.policies, vec!["dev", "ops"]);
        assert_eq!(
            auth.metadata.get("username").map(String::as_str),
            Some("alice")
        );
        assert_eq!(auth.display_name, "userpass-alice");
        assert_eq!(auth.ttl, Duration::from_secs(3600));
        assert!(auth.renewable);

        // Update: only what is sent changes; a new password replaces the old.
        h.write("users/alice", json!({"policies": ["admin"]}))
            .await
            .unwrap();
        let auth = h
            .login("login/ALICE", json!({"password": "s3cret"}))
            .await
            .unwrap();
        assert_eq!(auth.policies, vec!["admin"]);
        assert_eq!(auth.ttl, Duration::from_secs(3600));
        h.write("users/alice", json!({"password": "n3w"}))
            .await
            .unwrap();
        assert!(
            h.login("login/alice", json!({"password": "s3cret"}))
                .await
                .is_err()
        );
        h.login("login/alice", json!({"password": "n3w"}))
            .await
            .unwrap();

        h.write("users/bob", json!({"password": "b"}))
            .await
            .unwrap();
        assert_eq!(h.list("users/").await.unwrap(), vec!["alice", "bob"]);
        h.delete("users/bob").await.unwrap();
        assert_eq!(h.read("users/bob").await.unwrap(), None);
        assert_eq!(h.list("users").await.unwrap(), vec!["alice"]);
    }

    #[tokio::test]
    async fn failed_logins_look_the_same() {
        let h = harness().await;
        h.write("users/alice", json!({"password": "right"}))
            .await
            .unwrap();
        for (user, pw) in [("alice", "wrong"), ("nobody", "right")] {
            let e = h
                .login(&format!("login/{user}"), json!({"password": pw}))
                .await
                .unwrap_err();
            assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
            assert_eq!(e.to_string(), LOGIN_FAILED);
        }
        let e = h.login("login/alice", json!({})).await.unwrap_err();
        assert_eq!(e.to_string(), "missing required field password");
        assert!(matches!(e, Error::InvalidRequest(_)));
    }

    #[tokio::test]
    async fn bad_user_writes() {
        let h = harness().await;
        let e = h
            .write("users/carol", json!({"policies": "dev"}))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
        assert!(
            e.to_string().contains("missing required field password"),
            "{e}"
        );
        assert_eq!(h.read("users/carol").await.unwrap(), None);
        let e = h
            .write("users/carol", json!({"password": ""}))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "field password: must not be empty");
        let e = h
            .write("users/carol", json!({"password": ["x"]}))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field password: expected a string, got a list"
        );
        let e = h
            .write("users/carol", json!({"password": "p", "ttl": "soon"}))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field ttl: expected a duration like \"1h\", got \"soon\""
        );
        assert!(matches!(
            h.read("login/carol").await,
            Err(Error::UnsupportedOperation(_))
        ));
    }

    #[tokio::test]
    async fn corrupt_hash_never_matches() {
        assert!(
            !verify_password("x".into(), "not a phc string".into())
                .await
                .unwrap()
        );
        let h = hash_password("x".into()).await.unwrap();
        assert!(verify_password("x".into(), h.clone()).await.unwrap());
        assert!(!verify_password("y".into(), h).await.unwrap());
    }
}
