//! The engine against a real PostgreSQL (`tests/harness/pg-up.sh`),
//! driven through the SDK's in-process harness (no plugin sandbox, so
//! `sslrootcert` files under /tmp are readable here):
//!
//! * the rotate-root recovery: the test writes the state a crash leaves
//!   behind (a changed password in PostgreSQL, the old one in
//!   `config/<name>`, the write-ahead entry in the plugin's storage) and
//!   checks the engine finishes the rotation at its next connection;
//! * `sslrootcert` with `verify-full` and `verify-ca` on a TLS-only cluster.

use crate::backend;
use crate::connection::Connection;
use crate::root::{Pending, pending_key};
use lockbox_sdk::harness::Harness;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Cluster {
    dir: PathBuf,
    port: u16,
    ca: Option<String>,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/harness")
        .join(name)
}

impl Cluster {
    fn start(tls: bool) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "lockbox-db-recovery-{}-{}",
            std::process::id(),
            crate::connection::random_alnum(8)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let out = Command::new("bash")
            .arg(script("pg-up.sh"))
            .arg(&dir)
            .env("PG_TLS", if tls { "1" } else { "0" })
            .output()
            .expect("run pg-up.sh");
        assert!(
            out.status.success(),
            "pg-up.sh failed (is Debian's postgresql installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let port = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PGPORT="))
            .and_then(|p| p.trim().parse().ok())
            .expect("PGPORT line");
        let ca = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PGSSLROOTCERT="))
            .map(|p| p.trim().to_string());
        assert_eq!(ca.is_some(), tls, "{stdout}");
        let c = Cluster { dir, port, ca };
        c.admin("CREATE ROLE lockboxroot SUPERUSER LOGIN PASSWORD 'rootpw'");
        c
    }

    fn admin(&self, sql: &str) {
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .args(["-d", "postgres", "-h"])
            .arg(&self.dir)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(sql)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        self.url_to("127.0.0.1", "sslmode=disable")
    }

    fn url_to(&self, host: &str, query: &str) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{}/postgres?{query}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("pg-down.sh"))
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn stored(h: &Harness) -> (String, Option<Pending>) {
    let conn: Connection = h
        .storage()
        .get_json("config/pg")
        .await
        .expect("storage")
        .expect("config/pg");
    let pending = h
        .storage()
        .get_json(&pending_key("pg"))
        .await
        .expect("storage");
    (conn.password, pending)
}

async fn seed_pending(h: &Harness, password: &str) {
    let p = Pending {
        password: password.into(),
        started: 1_700_000_000,
    };
    h.storage()
        .put_json(&pending_key("pg"), &p)
        .await
        .expect("seed the write-ahead entry");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rotate_root_is_finished_at_the_next_connection() {
    let pg = Cluster::start(false);
    let h = Harness::new(backend::backend()).await.expect("harness");
    h.write(
        "config/pg",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg.url(),
            "username": "lockboxroot",
            "password": "rootpw",
            "allowed_roles": ["*"],
        }),
    )
    .await
    .expect("config");
    h.write(
        "roles/ro",
        json!({
            "db_name": "pg",
            "creation_statements": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'"],
        }),
    )
    .await
    .expect("role");

    // Killed after ALTER ROLE, before the config was stored.
    pg.admin("ALTER ROLE lockboxroot PASSWORD 'Pending-1'");
    seed_pending(&h, "Pending-1").await;
    h.read("creds/ro").await.expect("creds after recovery");
    assert_eq!(stored(&h).await, ("Pending-1".to_string(), None));

    // Killed before ALTER ROLE: the stored password still works and the
    // entry is not used; the next rotation replaces and clears it.
    seed_pending(&h, "Never-set-1").await;
    h.read("creds/ro").await.expect("creds");
    let (password, pending) = stored(&h).await;
    assert_eq!(password, "Pending-1");
    assert_eq!(pending.map(|p| p.password).as_deref(), Some("Never-set-1"));
    h.write("rotate-root/pg", json!({})).await.expect("rotate");
    let (password, pending) = stored(&h).await;
    assert!(pending.is_none());
    assert_ne!(password, "Pending-1");
    assert_ne!(password, "Never-set-1");
    h.read("creds/ro")
        .await
        .expect("creds with the rotated password");

    // Changed outside lockbox: neither password works; a clear error.
    pg.admin("ALTER ROLE lockboxroot PASSWORD 'Elsewhere-1'");
    seed_pending(&h, "Pending-2").await;
    let e = h.read("creds/ro").await.expect_err("no password works");
    let text = e.to_string();
    assert!(text.contains("changed outside lockbox"), "{text}");
    assert!(
        !text.contains("Pending-2") && !text.contains(&password),
        "{text}"
    );
    // Writing the current password by hand replaces the stale entry.
    h.write("config/pg", json!({"password": "Elsewhere-1"}))
        .await
        .expect("config with the current password");
    assert_eq!(stored(&h).await, ("Elsewhere-1".to_string(), None));
    h.read("creds/ro").await.expect("creds");
}

fn config(url: &str) -> serde_json::Value {
    json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": url,
        "username": "lockboxroot",
        "password": "rootpw",
        "allowed_roles": ["*"],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sslrootcert_files_verify_the_server() {
    let pg = Cluster::start(true);
    let ca = pg.ca.clone().expect("CA");
    let h = Harness::new(backend::backend()).await.expect("harness");
    // verify-full: the certificate names 127.0.0.1 and localhost.
    for host in ["127.0.0.1", "localhost"] {
        let url = pg.url_to(host, &format!("sslmode=verify-full&sslrootcert={ca}"));
        h.write("config/full", config(&url))
            .await
            .unwrap_or_else(|e| panic!("verify-full to {host}: {e}"));
    }
    // A name the certificate does not hold (hostaddr reaches the cluster,
    // the name is what TLS checks): verify-full refuses it, naming the
    // certificate check; verify-ca checks the chain only and accepts it.
    let query = format!("hostaddr=127.0.0.1&sslrootcert={ca}");
    let url = pg.url_to("db.example", &format!("sslmode=verify-full&{query}"));
    let e = h
        .write("config/ca", config(&url))
        .await
        .expect_err("wrong name");
    assert!(
        e.to_string().contains("certificate verification failed"),
        "{e}"
    );
    assert!(e.to_string().contains("not valid for name"), "{e}");
    let url = pg.url_to("db.example", &format!("sslmode=verify-ca&{query}"));
    h.write("config/ca", config(&url)).await.expect("verify-ca");
    h.write(
        "roles/ro",
        json!({
            "db_name": "ca",
            "creation_statements": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'"],
        }),
    )
    .await
    .expect("role");
    h.read("creds/ro").await.expect("creds over verify-ca");
    // The rotation works over TLS and the next connection uses it.
    h.write("rotate-root/ca", json!({})).await.expect("rotate");
    h.read("creds/ro").await.expect("creds after rotation");
}
