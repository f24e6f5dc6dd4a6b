//! The real binary with `storage "postgresql"` against a throwaway cluster
//! (`tests/harness/pg-up.sh`): a write survives `kill -9` and a restart,
//! the table holds ciphertext only, and the connection URL's password
//! appears in no banner, log line or error. Skipped, saying so, only when
//! initdb is not installed here (`tests/run.sh` installs it).

use crate::common::postgres::{Postgres, initdb_installed};
use crate::common::{ConfigServer, lockbox_bin};
use serde_json::json;
use std::process::Command;

const PASSWORD: &str = "St0rage-pw-9d1e";

fn config(url: Option<&str>, extra: &str) -> String {
    let url = url
        .map(|u| format!("  connection_url = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        "storage \"postgresql\" {{\n{url}{extra}}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n"
    )
}

fn cluster() -> Option<(Postgres, String)> {
    if !initdb_installed() {
        eprintln!("SKIPPED: initdb not found (apt-get install postgresql; tests/run.sh does)");
        return None;
    }
    let pg = Postgres::start();
    pg.admin(&format!("CREATE ROLE lockbox LOGIN PASSWORD '{PASSWORD}'"));
    pg.admin("CREATE DATABASE lockbox OWNER lockbox");
    let url = format!(
        "postgresql://lockbox:{PASSWORD}@127.0.0.1:{}/lockbox?sslmode=disable",
        pg.port
    );
    Some((pg, url))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_survives_kill_9_and_the_table_holds_only_ciphertext() {
    let Some((pg, url)) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(Some(&url), "  max_parallel = \"8\"\n");
    let mut p = ConfigServer::builder(&cfg).dir(dir.path()).start();
    p.process
        .assert_banner(|l| l.contains("postgresql") && l.contains("lockbox:***@"));
    let (root, keys) = p.init_unseal(1, 1).await;
    let st = p.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(st.body["storage_type"], "postgresql", "{:?}", st.body);
    let mount = p
        .call(
            "POST",
            "sys/mounts/secret",
            Some(&root),
            Some(json!({"type": "kv"})),
        )
        .await;
    assert_eq!(mount.status, 204, "{:?}", mount.body);
    let secret = "pg-plaintext-never-9b7c2e";
    let w = p
        .call(
            "PUT",
            "secret/app/db",
            Some(&root),
            Some(json!({ "password": secret })),
        )
        .await;
    assert_eq!(w.status, 204, "{:?}", w.body);

    p.process.child.kill().expect("kill -9");
    p.process.child.wait().expect("reap");
    let mut text = p.process.banner.join("\n");
    text.push_str(&p.process.log().join("\n"));
    assert!(!text.contains(PASSWORD), "password in the output:\n{text}");
    drop(p);

    // The table: Vault's layout, rows written, the secret only as ciphertext.
    let rows: u32 = pg
        .query("lockbox", "SELECT count(*) FROM vault_kv_store")
        .parse()
        .expect("count");
    assert!(rows > 3, "{rows} rows");
    let has =
        |needle: &str| {
            pg.query("lockbox", &format!(
                "SELECT count(*) FROM vault_kv_store WHERE position(convert_to('{needle}', 'UTF8') \
                 in value) > 0 OR position('{needle}' in path || key) > 0"
            ),
        )
        };
    assert_eq!(has(secret), "0", "the secret is in the table in plaintext");
    assert_eq!(has(&root), "0", "the root token is in the table");
    // Sanity: the search finds what is stored in plaintext (the seal config).
    assert_ne!(has("secret_threshold"), "0");

    let p = ConfigServer::builder(&cfg).dir(dir.path()).start();
    p.unseal(&keys).await;
    let r = p.call("GET", "secret/app/db", Some(&root), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["password"], secret);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_url_may_come_from_the_environment() {
    let Some((_pg, url)) = cluster() else { return };
    let p = ConfigServer::builder(&config(None, "  table = \"lockbox_kv\"\n"))
        .env("LOCKBOX_PG_CONNECTION_URL", &url)
        .start();
    let st = p.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(st.body["storage_type"], "postgresql");
    assert_eq!(st.body["initialized"], false);
}

#[test]
fn startup_errors_name_the_server_and_never_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("postgresql://lockbox:{PASSWORD}@127.0.0.1:{port}/lockbox?sslmode=disable");
    let file = dir.path().join("lockbox.hcl");
    std::fs::write(&file, config(Some(&url), "  max_connect_retries = \"1\"\n")).expect("write");
    let out = Command::new(lockbox_bin())
        .args(["server", "-config"])
        .arg(&file)
        .env("HOME", dir.path())
        .output()
        .expect("run lockbox");
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("after 2 attempt(s)"), "{text}");
    assert!(text.contains("attempt 1 of 2"), "a retry log line: {text}");
}
