//! The database secrets engine (issue 14, item 2): `lockbox-plugin-database`
//! against a real PostgreSQL (tests/harness/pg-up.sh, a throwaway cluster per
//! test on a free loopback port), with leases through lockbox's own plugin
//! protocol. Credentials are checked with the real `psql` over TCP (password
//! logins); the cluster's state through its socket as `postgres`. The `tls_`
//! tests use a TLS-only cluster (`PG_TLS=1`: hostssl, its own CA), psql
//! logging in with `verify-full`.

use crate::common::postgres::Postgres;
use crate::common::{TestServer, lockbox_bin, sha256_file};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The plugin binary, built once per test run.
fn plugin_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "lockbox-plugin-database"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building lockbox-plugin-database failed");
            Path::new(lockbox_bin())
                .parent()
                .expect("target dir")
                .join("lockbox-plugin-database")
        })
        .clone()
}

/// A dev server with the engine mounted at `database/` and connection `pg`
/// (allowed roles: all) configured; plus role `ro` with `ttl`/`max_ttl`.
async fn mounted(pg: &Postgres, ttl: &str, max_ttl: &str) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let dst = dir.path().join("database");
    std::fs::copy(plugin_binary(), &dst).expect("copy plugin");
    let sha = sha256_file(&dst);
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/secret/database",
            Some(json!({"sha256": sha, "command": "database"})),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "sys/mounts/database",
            Some(json!({"type": "database"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "PUT",
            "database/config/pg",
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": pg.url(),
                "username": "lockboxroot",
                "password": "rootpw",
                "allowed_roles": "*",
                "tls_ca": pg.tls_ca(),
            })),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    write_role(
        &s,
        "ro",
        json!({
            "db_name": "pg",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT pg_read_all_data TO \"{{name}}\";",
            "default_ttl": ttl,
            "max_ttl": max_ttl,
        }),
    )
    .await;
    (dir, s)
}

async fn write_role(s: &TestServer, name: &str, body: Value) {
    let r = s
        .root("PUT", &format!("database/roles/{name}"), Some(body))
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
}

/// Reads `database/creds/<role>` as `token` (root when `None`): (username,
/// password, lease id, lease duration).
async fn creds(s: &TestServer, role: &str, token: Option<&str>) -> (String, String, String, u64) {
    let path = format!("database/creds/{role}");
    let r = match token {
        Some(t) => s.call("GET", &path, Some(t), None).await,
        None => s.root("GET", &path, None).await,
    };
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &r.body;
    (
        b["data"]["username"].as_str().unwrap().to_string(),
        b["data"]["password"].as_str().unwrap().to_string(),
        b["lease_id"].as_str().unwrap().to_string(),
        b["lease_duration"].as_u64().unwrap(),
    )
}

/// Waits until `user`'s role is gone from PostgreSQL.
async fn wait_dropped(pg: &Postgres, user: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while pg.role_exists(user) {
        assert!(
            Instant::now() < deadline,
            "role {user} still exists after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creds_log_in_and_are_dropped_when_the_lease_expires() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "3s", "1h").await;
    let (user, pass, lease, duration) = creds(&s, "ro", None).await;
    assert!(lease.starts_with("database/creds/ro/"), "{lease}");
    assert_eq!(duration, 3);
    assert!(user.starts_with("v-root-ro-"), "{user}");
    assert!(pg.logs_in(&user, &pass), "fresh credentials must log in");
    assert!(!pg.logs_in(&user, "wrong-password"));

    wait_dropped(&pg, &user, Duration::from_secs(20)).await;
    assert!(
        !pg.logs_in(&user, &pass),
        "expired credentials still log in"
    );
    let r = s
        .root("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(r.status, 400, "the lease must be gone: {:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn renew_extends_up_to_max_ttl_and_no_further() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "4s", "8s").await;
    let (user, pass, lease, _) = creds(&s, "ro", None).await;
    let renew = |inc: &'static str| {
        let lease = lease.clone();
        let s = &s;
        async move {
            s.root(
                "PUT",
                "sys/leases/renew",
                Some(json!({"lease_id": lease, "increment": inc})),
            )
            .await
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = renew("4s").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = r.body["lease_duration"].as_u64().unwrap();
    assert!((3..=4).contains(&d), "{:?}", r.body);
    // The role's password validity follows the renewal (renew statements).
    let valid = pg.admin(&format!(
        "SELECT rolvaliduntil > now() + interval '2 seconds' FROM pg_roles WHERE rolname = '{user}'"
    ));
    assert_eq!(valid, "t");
    // Asking past max_ttl (8 s from issue) is capped.
    let r = renew("1h").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let d = r.body["lease_duration"].as_u64().unwrap();
    assert!(d <= 6, "renewal went past max_ttl: {:?}", r.body);
    assert!(pg.logs_in(&user, &pass));
    // And the lease still ends at max_ttl: the role is dropped.
    wait_dropped(&pg, &user, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_prefix_and_token_revocation_drop_every_role() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    let mut users = Vec::new();
    for _ in 0..3 {
        users.push(creds(&s, "ro", None).await);
    }
    assert_eq!(pg.dynamic_roles().len(), 3);
    // A session open while revoking is ended, not left running.
    let mut session = pg.session(&users[0].0, &users[0].1, "select pg_sleep(60)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.admin(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{}'",
        users[0].0
    )) != "1"
    {
        assert!(Instant::now() < deadline, "the session did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s
        .root(
            "PUT",
            "sys/leases/revoke-prefix/database/creds/",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for (user, pass, _, _) in &users {
        wait_dropped(&pg, user, Duration::from_secs(20)).await;
        assert!(!pg.logs_in(user, pass));
    }
    assert!(pg.dynamic_roles().is_empty(), "{:?}", pg.dynamic_roles());
    let status = session.wait().expect("wait for psql");
    assert!(
        !status.success(),
        "the revoked user's session ran to its end"
    );

    // Credentials read with a token die with the token.
    let policy = r#"path "database/creds/*" { capabilities = ["read"] }"#;
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/dbread",
            Some(json!({"policy": policy})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let token = s.token_with(&["dbread"]).await;
    let (user, pass, _, _) = creds(&s, "ro", Some(&token)).await;
    assert!(pg.logs_in(&user, &pass));
    let r = s
        .root("PUT", "auth/token/revoke", Some(json!({"token": token})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    wait_dropped(&pg, &user, Duration::from_secs(20)).await;
    assert!(!pg.logs_in(&user, &pass));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_creation_statement_is_a_clear_400_and_leaves_nothing() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    // The first statement creates the user, the second fails: the whole
    // creation is undone.
    write_role(
        &s,
        "bad",
        json!({
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'",
                "GRANT SELECT ON no_such_table TO \"{{name}}\"",
            ],
        }),
    )
    .await;
    let r = s.root("GET", "database/creds/bad", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let msg = r.error_text();
    assert!(
        msg.contains("creation statements of role \"bad\" failed in PostgreSQL"),
        "{msg}"
    );
    assert!(
        msg.contains("no_such_table"),
        "PostgreSQL's message must be shown: {msg}"
    );
    assert!(pg.dynamic_roles().is_empty(), "{:?}", pg.dynamic_roles());
    let r = s
        .root("LIST", "sys/leases/lookup/database/creds/bad/", None)
        .await;
    assert!(
        r.status == 404
            || r.body["data"]["keys"]
                .as_array()
                .is_none_or(|k| k.is_empty()),
        "no lease may exist: {:?}",
        r.body
    );
    // A password policy cannot be applied (lockbox has none): refused,
    // naming the field, and the stored connection is unchanged.
    let r = s
        .root(
            "PUT",
            "database/config/pg",
            Some(json!({"password_policy": "strict", "connection_url": "postgresql://x@127.0.0.1:1/x"})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let msg = r.error_text();
    assert!(
        msg.contains("password_policy \"strict\" cannot be applied"),
        "{msg}"
    );
    let r = s.root("GET", "database/config/pg", None).await;
    assert_eq!(
        r.body["data"]["connection_details"]["connection_url"],
        json!(pg.url()),
        "{:?}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_root_changes_the_password_and_never_returns_it() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    assert!(pg.logs_in("lockboxroot", "rootpw"));
    let r = s
        .root("PUT", "database/rotate-root/pg", Some(json!({})))
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    assert!(
        !pg.logs_in("lockboxroot", "rootpw"),
        "the old root password still works"
    );
    let r = s.root("GET", "database/config/pg", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        !r.body.to_string().contains("password\":\""),
        "{:?}",
        r.body
    );
    assert_eq!(
        r.body["data"]["connection_details"]["username"],
        "lockboxroot"
    );
    // The engine still works with the new password it kept.
    let (user, pass, _, _) = creds(&s, "ro", None).await;
    assert!(pg.logs_in(&user, &pass));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_outage_at_expiry_is_retried_and_revoked_once_it_is_back() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "2s", "1h").await;
    let (user, pass, lease, _) = creds(&s, "ro", None).await;
    pg.stop();
    // The lease falls due while PostgreSQL is down: the revocation fails,
    // the lease stays (with the error) and is retried.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = s
        .root("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(
        r.status, 200,
        "the lease must survive a failed revocation: {:?}",
        r.body
    );
    assert!(
        r.body["data"]["ttl"].as_i64().is_some(),
        "the lookup names the lease: {:?}",
        r.body
    );
    // The next retry may come as soon as the cluster is up (it is on a
    // backoff of 1, 2, 4, 8 ... s): what matters is that it comes.
    pg.restart();
    wait_dropped(&pg, &user, Duration::from_secs(40)).await;
    assert!(!pg.logs_in(&user, &pass));
    // A revoked lease is gone from the lease table too.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s
            .root("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
            .await;
        if r.status == 400 {
            assert!(r.error_text().contains("invalid lease"), "{:?}", r.body);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the revoked lease stays: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Credentials read before a `kill -9` of the server are still dropped on
/// time by the restarted server (lease timers re-armed at unseal, the
/// engine's process started again for the revocation).
#[tokio::test(flavor = "multi_thread")]
async fn a_server_restart_in_the_middle_of_a_lease_still_drops_the_user() {
    use crate::common::{ConfigServer, file_config};
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(plugin_binary(), plugins.join("database")).expect("copy plugin");
    let sha = sha256_file(&plugins.join("database"));
    let config = format!(
        "{}plugin_directory = \"{}\"\n",
        file_config("{dir}/data"),
        plugins.display()
    );
    let mut first = ConfigServer::builder(&config).dir(dir.path()).start();
    let (root, keys) = first.init_unseal(1, 1).await;
    first.root_token = root.clone();
    for (method, path, body) in [
        (
            "PUT",
            "sys/plugins/catalog/secret/database",
            json!({"sha256": sha, "command": "database"}),
        ),
        ("POST", "sys/mounts/database", json!({"type": "database"})),
        (
            "PUT",
            "database/config/pg",
            json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": pg.url(),
                "username": "lockboxroot",
                "password": "rootpw",
                "allowed_roles": "*",
            }),
        ),
        (
            "PUT",
            "database/roles/short",
            json!({
                "db_name": "pg",
                "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                "default_ttl": "8s",
                "max_ttl": "1h",
            }),
        ),
    ] {
        let r = first.root(method, path, Some(body)).await;
        assert!(r.status == 204 || r.status == 200, "{path}: {:?}", r.body);
    }
    let r = first.root("GET", "database/creds/short", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let user = r.body["data"]["username"].as_str().unwrap().to_string();
    let pass = r.body["data"]["password"].as_str().unwrap().to_string();
    assert!(pg.logs_in(&user, &pass));
    first.process.child.kill().unwrap();
    first.process.child.wait().unwrap();
    drop(first);
    assert!(
        pg.role_exists(&user),
        "nobody dropped it while the server was down"
    );

    let mut s = ConfigServer::builder(&config)
        .dir(dir.path())
        .env("LOCKBOX_UNSEAL_KEYS", &keys[0])
        .start();
    s.root_token = root;
    wait_dropped(&pg, &user, Duration::from_secs(40)).await;
    assert!(!pg.logs_in(&user, &pass));
    // The lease record goes right after the role.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = s
            .root("LIST", "sys/leases/lookup/database/creds/short/", None)
            .await;
        if r.status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "a lease is left: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A lease PostgreSQL cannot revoke (it is down): `revoke` fails naming
/// the lease and keeps it; `revoke-force` drops lockbox's record and leaves
/// the user in PostgreSQL (Vault's documented behaviour: the operator
/// cleans it up); `tidy` keeps every live lease.
#[tokio::test(flavor = "multi_thread")]
async fn revoke_force_drops_a_lease_the_database_cannot_revoke() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    let (user, _, lease, _) = creds(&s, "ro", None).await;
    let (_, _, kept, _) = creds(&s, "ro", None).await;
    let lookup = async |id: &str| {
        s.root("PUT", "sys/leases/lookup", Some(json!({"lease_id": id})))
            .await
    };
    pg.stop();
    let r = s
        .root("PUT", "sys/leases/revoke", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let msg = r.error_text();
    assert!(
        msg.contains(&format!("failed to revoke lease {lease}")),
        "{msg}"
    );
    assert_eq!(
        lookup(&lease).await.status,
        200,
        "a failed revoke keeps the lease"
    );

    // revoke-force needs sudo: a token with only update on the path is refused.
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/force",
            Some(json!({"policy": "path \"sys/leases/revoke-force/*\" { capabilities = [\"update\"] }"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["force"]})),
        )
        .await;
    let weak = r.body["auth"]["client_token"].as_str().unwrap().to_string();
    let force = async || {
        s.call(
            "PUT",
            &format!("sys/leases/revoke-force/{lease}"),
            Some(&weak),
            None,
        )
        .await
    };
    let r = force().await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(lookup(&lease).await.status, 200);
    // The same token once its policy adds sudo.
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/force",
            Some(json!({"policy": "path \"sys/leases/revoke-force/*\" { capabilities = [\"update\", \"sudo\"] }"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = force().await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = lookup(&lease).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("invalid lease"), "{:?}", r.body);
    assert_eq!(
        lookup(&kept).await.status,
        200,
        "only that lease was forced"
    );

    pg.restart();
    assert!(
        pg.role_exists(&user),
        "revoke-force removes lockbox's record, not the user"
    );
    let r = s.root("PUT", "sys/leases/tidy", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body.to_string().contains("0 lease index entries fixed"),
        "nothing to fix, nothing scheduled: {:?}",
        r.body
    );
    assert_eq!(lookup(&kept).await.status, 200, "tidy keeps live leases");
}

/// hvac's `secrets.database` calls, unchanged, against the engine.
const HVAC_SCRIPT: &str = r#"
import json, os, hvac
c = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
db = c.secrets.database
db.configure(name="hv", plugin_name="postgresql-database-plugin", allowed_roles=["app"],
             connection_url=os.environ["PG_URL"], username="lockboxroot", password="rootpw")
cfg = db.read_connection(name="hv")["data"]
assert cfg["connection_details"]["username"] == "lockboxroot", cfg
assert "rootpw" not in json.dumps(cfg), cfg
db.create_role(name="app", db_name="hv", default_ttl="1h", max_ttl="2h",
               creation_statements=["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"])
assert db.read_role(name="app")["data"]["default_ttl"] == 3600
assert "app" in db.list_roles()["data"]["keys"]
creds = db.generate_credentials(name="app")
try:
    db.generate_credentials(name="ro")
    raise SystemExit("a role outside allowed_roles got credentials")
except hvac.exceptions.InvalidRequest as e:
    assert "not an allowed role" in str(e), e
print(json.dumps({"username": creds["data"]["username"], "password": creds["data"]["password"],
                  "lease_id": creds["lease_id"]}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn hvac_secrets_database_calls_work() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    // Role `ro` names connection `pg`; point it at the hvac-made one to
    // check hvac sees allowed_roles refusals.
    write_role(
        &s,
        "ro",
        json!({"db_name": "hv", "creation_statements": "CREATE ROLE \"{{name}}\""}),
    )
    .await;
    let out = tokio::process::Command::new("python3")
        .args(["-c", HVAC_SCRIPT])
        .env("VAULT_ADDR", &s.addr)
        .env("VAULT_TOKEN", &s.root_token)
        .env("PG_URL", pg.url())
        .output()
        .await
        .expect("run python3 (hvac is installed by tests/run.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hvac script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(stdout.trim()).expect("the script's JSON line");
    let (user, pass) = (
        got["username"].as_str().unwrap(),
        got["password"].as_str().unwrap(),
    );
    assert!(pg.logs_in(user, pass));
    let r = s
        .root(
            "PUT",
            "sys/leases/revoke",
            Some(json!({"lease_id": got["lease_id"]})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(!pg.role_exists(user));
}

async fn static_creds(s: &TestServer, name: &str) -> (String, u64) {
    let r = s
        .root("GET", &format!("database/static-creds/{name}"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body["lease_id"].as_str().is_none_or(str::is_empty),
        "{:?}",
        r.body
    );
    (
        r.body["data"]["password"].as_str().unwrap().to_string(),
        r.body["data"]["ttl"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn static_roles_rotate_an_existing_users_password_on_schedule() {
    let pg = Postgres::start();
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    pg.admin("CREATE ROLE app_static LOGIN PASSWORD 'initial'");
    let r = s
        .root(
            "PUT",
            "database/static-roles/app",
            Some(json!({"db_name": "pg", "username": "app_static", "rotation_period": "5s"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Taken over at once: the old password no longer works.
    assert!(!pg.logs_in("app_static", "initial"));
    let (first, ttl) = static_creds(&s, "app").await;
    assert!(ttl <= 5, "{ttl}");
    assert!(pg.logs_in("app_static", &first));
    let r = s.root("GET", "database/static-roles/app", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["rotation_period"], 5);
    assert!(!r.body.to_string().contains(&first), "{:?}", r.body);

    // The period passes: a new password, set in PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        let (p, _) = static_creds(&s, "app").await;
        if p != first {
            break p;
        }
        assert!(Instant::now() < deadline, "the password was not rotated");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(pg.logs_in("app_static", &second));
    assert!(!pg.logs_in("app_static", &first));

    // rotate-role rotates now; an unknown user is a clear 400.
    let r = s
        .root("PUT", "database/rotate-role/app", Some(json!({})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "PUT",
            "database/static-roles/ghost",
            Some(json!({"db_name": "pg", "username": "nobody", "rotation_period": "1h"})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("nobody"), "{}", r.error_text());
    assert_eq!(
        s.root("GET", "database/static-roles/ghost", None)
            .await
            .status,
        404
    );
}

/// Writes `database/config/<name>` for the root user with `url` (and
/// `extra` fields); returns the response.
async fn write_config(s: &TestServer, name: &str, url: &str, extra: Value) -> crate::common::Resp {
    let mut body = json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": url,
        "username": "lockboxroot",
        "password": "rootpw",
        "allowed_roles": "*",
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    s.root("PUT", &format!("database/config/{name}"), Some(body))
        .await
}

/// A CA that signed nothing of the cluster's, as a PEM file in `dir`.
fn other_ca(dir: &Path) -> PathBuf {
    let pem = dir.join("other-ca.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=not the cluster's CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .arg("-keyout")
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verify_full_creds_log_in_over_tls_and_are_dropped_at_revoke() {
    let pg = Postgres::start_tls();
    // psql without TLS is refused: the cluster takes TCP logins over TLS only.
    let plain = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-d",
            "postgres",
            "-U",
            "lockboxroot",
            "-c",
            "select 1",
        ])
        .arg("-p")
        .arg(pg.port.to_string())
        .env("PGPASSWORD", "rootpw")
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run psql");
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("no encryption"));

    // mounted() configures `pg` with sslmode=verify-full and the CA in tls_ca.
    let (_dir, s) = mounted(&pg, "1h", "2h").await;
    let (user, pass, lease, _) = creds(&s, "ro", None).await;
    assert!(
        pg.logs_in(&user, &pass),
        "creds must log in over TLS (verify-full)"
    );
    let r = s
        .root("PUT", "sys/leases/revoke", Some(json!({"lease_id": lease})))
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    wait_dropped(&pg, &user, Duration::from_secs(20)).await;
    assert!(!pg.logs_in(&user, &pass));

    // The CA is shown on read (it is no secret).
    let r = s.root("GET", "database/config/pg", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["connection_details"]["tls_ca"],
        pg.tls_ca().as_str()
    );

    // Rotating the root password works over TLS too.
    let r = s
        .root("PUT", "database/rotate-root/pg", Some(json!({})))
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    let (user, pass, _, _) = creds(&s, "ro", None).await;
    assert!(pg.logs_in(&user, &pass));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_misconfigurations_are_clear_400s_at_config() {
    let pg = Postgres::start_tls();
    let (dir, s) = mounted(&pg, "1h", "2h").await;
    let check = |r: &crate::common::Resp, needles: &[&str]| {
        assert_eq!(r.status, 400, "{:?}", r.body);
        let text = r.body.to_string();
        for n in needles {
            assert!(text.contains(n), "{n:?} not in {text}");
        }
        assert!(!text.contains("rootpw"), "the password leaked: {text}");
    };

    // Plain TCP against the TLS-only server.
    let r = write_config(&s, "plain", &pg.url_with("sslmode=disable"), json!({})).await;
    check(&r, &["no encryption", "sslmode=verify-full"]);

    // verify-full with a CA that did not sign the server's certificate.
    let wrong = std::fs::read_to_string(other_ca(dir.path())).expect("read the other CA");
    let url = pg.url_with("sslmode=verify-full");
    let r = write_config(&s, "wrongca", &url, json!({"tls_ca": wrong})).await;
    check(&r, &["certificate verification failed", "UnknownIssuer"]);

    // An unreadable sslrootcert (missing; outside what the plugin's
    // sandbox may read), an unknown sslmode, a verify mode without a CA:
    // refused before any connection is tried.
    let r = write_config(
        &s,
        "nofile",
        &pg.url_with("sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem"),
        json!({"verify_connection": false}),
    )
    .await;
    check(
        &r,
        &["sslrootcert", "/nonexistent/ca.pem", "cannot be read"],
    );
    let ca_file = pg.ca.as_ref().expect("CA").display().to_string();
    let r = write_config(
        &s,
        "sandboxed",
        &pg.url_with(&format!("sslmode=verify-full&sslrootcert={ca_file}")),
        json!({}),
    )
    .await;
    if r.status == 400 {
        check(&r, &[&ca_file, "cannot be read", "sandbox", "tls_ca"]);
    } else {
        // A kernel without Landlock: the plugin can read the file.
        assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
        let r = s.root("DELETE", "database/config/sandboxed", None).await;
        assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    }
    let r = write_config(
        &s,
        "badmode",
        &pg.url_with("sslmode=verify_full"),
        json!({}),
    )
    .await;
    check(&r, &["sslmode", "verify_full", "verify-full"]);
    let r = write_config(&s, "noca", &pg.url_with("sslmode=verify-ca"), json!({})).await;
    check(&r, &["verify-ca", "sslrootcert", "tls_ca"]);
    for name in ["plain", "wrongca", "nofile", "sandboxed", "badmode", "noca"] {
        let r = s
            .root("GET", &format!("database/config/{name}"), None)
            .await;
        assert_eq!(r.status, 404, "{name} was stored: {:?}", r.body);
    }

    // require: TLS without a CA (no certificate check, as libpq).
    let r = write_config(&s, "req", &pg.url_with("sslmode=require"), json!({})).await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    write_role(
        &s,
        "req",
        json!({
            "db_name": "req",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
        }),
    )
    .await;
    let (user, pass, _, _) = creds(&s, "req", None).await;
    assert!(pg.logs_in(&user, &pass));
    // prefer (libpq's default) uses TLS here as well.
    let r = write_config(&s, "pref", &pg.url_with("application_name=x"), json!({})).await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
}
