//! The PostgreSQL backend against a real cluster per test
//! (`tests/harness/pg-up.sh`). Skipped, with a message, only when initdb is
//! not installed here; `tests/run.sh` installs it, so CI runs them.

use lockbox_storage::Physical;
use lockbox_storage_postgres::{PostgresBackend, PostgresConfig, PostgresError};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::*;

#[tokio::test]
async fn contract_and_vaults_row_layout() {
    let Some(pg) = Pg::start() else { return };
    let b = pg.open(PostgresConfig::default()).await;
    assert_eq!(b.kind(), "postgresql");
    lockbox_storage::contract::check(&b).await;
    b.put("a/b/c", b"v".to_vec()).await.expect("put");
    b.put("top", b"t".to_vec()).await.expect("put");
    assert_eq!(
        pg.admin(
            "lockbox",
            "SELECT parent_path || '|' || path || '|' || key || '|' || encode(value, 'escape') \
             FROM vault_kv_store WHERE key IN ('c', 'top') ORDER BY key"
        ),
        "/a/|/a/b/|c|v\n|/|top|t"
    );
    // The index Vault's DDL has.
    assert_eq!(
        pg.admin(
            "lockbox",
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'parent_path_idx'"
        ),
        "1"
    );
    // A second open finds the table and accepts it.
    let again = pg.open(PostgresConfig::default()).await;
    assert_eq!(again.get("a/b/c").await.expect("get"), Some(b"v".to_vec()));
}

#[tokio::test]
async fn odd_keys_round_trip_and_wildcards_match_nothing_else() {
    let Some(pg) = Pg::start() else { return };
    let b = pg.open(PostgresConfig::default()).await;
    let long = format!("long/{}", "k".repeat(6000));
    let keys = [
        "with space/a b",
        "pct%/100%",
        "under_score/x_y",
        "back\\slash/k\\",
        "unicodé/ключ/鍵",
        "quote'/\"q\"",
        long.as_str(),
    ];
    for (i, k) in keys.iter().enumerate() {
        b.put(k, vec![i as u8; 3]).await.expect("put");
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(b.get(k).await.expect("get"), Some(vec![i as u8; 3]), "{k}");
    }
    b.put("pctX/other", b"o".to_vec()).await.expect("put");
    b.put("underXscore/other", b"o".to_vec())
        .await
        .expect("put");
    assert_eq!(b.list("pct%/").await.expect("list"), vec!["100%"]);
    assert_eq!(b.list("unicodé/").await.expect("list"), vec!["ключ/"]);
    assert_eq!(b.list("unicodé/ключ/").await.expect("list"), vec!["鍵"]);
    assert_eq!(b.delete_prefix("pct%/").await.expect("delete"), 1);
    assert_eq!(b.delete_prefix("under_score/").await.expect("delete"), 1);
    assert_eq!(b.get("pctX/other").await.expect("get"), Some(b"o".to_vec()));
    assert_eq!(
        b.get("underXscore/other").await.expect("get"),
        Some(b"o".to_vec())
    );
    assert_eq!(b.list("long/").await.expect("list"), vec!["k".repeat(6000)]);
}

#[tokio::test]
async fn list_has_vaults_semantics() {
    let Some(pg) = Pg::start() else { return };
    let b = pg.open(PostgresConfig::default()).await;
    for k in [
        "f",
        "f/x",
        "f/g/h/i",
        "f/g/j",
        "f/z/deep/er/still",
        "f0",
        "e/",
    ] {
        b.put(k, b"1".to_vec()).await.expect("put");
    }
    // A folder that is also a key is listed twice: as key and as folder.
    assert_eq!(b.list("").await.expect("list"), vec!["e/", "f", "f/", "f0"]);
    assert_eq!(b.list("f/").await.expect("list"), vec!["g/", "x", "z/"]);
    assert_eq!(b.list("f/g/").await.expect("list"), vec!["h/", "j"]);
    assert_eq!(b.list("f/z/").await.expect("list"), vec!["deep/"]);
    assert!(b.list("nope/").await.expect("list").is_empty());
    assert_eq!(b.list("e/").await.expect("list"), Vec::<String>::new());
    assert_eq!(b.delete_prefix("f/").await.expect("delete"), 4);
    assert_eq!(b.list("").await.expect("list"), vec!["e/", "f", "f0"]);
    assert_eq!(b.delete_prefix("nothing/").await.expect("delete"), 0);
    assert_eq!(b.delete_prefix("").await.expect("delete"), 3);
}

#[tokio::test]
async fn concurrent_puts_stay_within_max_parallel() {
    let Some(pg) = Pg::start() else { return };
    let b = Arc::new(
        pg.open(PostgresConfig {
            max_parallel: 4,
            max_idle_connections: 4,
            ..PostgresConfig::default()
        })
        .await,
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                b.put(&format!("c/{i:03}"), format!("{i}").into_bytes())
                    .await
            })
        })
        .collect();
    let peak = {
        let mut peak = 0;
        for _ in 0..5 {
            let n: u32 = pg
                .admin(
                    "postgres",
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'store'",
                )
                .parse()
                .expect("count");
            peak = peak.max(n);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    };
    for t in tasks {
        t.await.expect("task").expect("put");
    }
    assert!(peak <= 4, "{peak} connections, max_parallel 4");
    let listed = b.list("c/").await.expect("list");
    assert_eq!(listed.len(), 200);
    assert_eq!(b.get("c/123").await.expect("get"), Some(b"123".to_vec()));
    assert!(listed.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_table_with_other_columns_is_refused() {
    let Some(pg) = Pg::start() else { return };
    pg.admin(
        "lockbox",
        "CREATE TABLE wrong (path TEXT, key TEXT, value TEXT); ALTER TABLE wrong OWNER TO store",
    );
    let err = PostgresBackend::open(
        &pg.url(),
        &PostgresConfig {
            table: "wrong".to_string(),
            ..PostgresConfig::default()
        },
    )
    .await
    .expect_err("wrong schema");
    let text = err.to_string();
    assert!(matches!(err, PostgresError::Schema { .. }), "{text}");
    assert!(text.contains("no column parent_path"), "{text}");
    assert!(text.contains("value is text, not bytea"), "{text}");
    assert_no_password(&text);
    // Nothing was written into it.
    assert_eq!(pg.admin("lockbox", "SELECT count(*) FROM wrong"), "0");
    // A bad table name is refused before connecting.
    let err = PostgresBackend::open(
        &pg.url(),
        &PostgresConfig {
            table: "x; DROP TABLE wrong".to_string(),
            ..PostgresConfig::default()
        },
    )
    .await
    .expect_err("bad name");
    assert!(err.to_string().contains("identifier"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_fails_after_the_retries_naming_host_and_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url =
        format!("postgres://store:{PASSWORD_ENCODED}@127.0.0.1:{port}/lockbox?sslmode=disable");
    let started = Instant::now();
    let err = PostgresBackend::open(
        &url,
        &PostgresConfig {
            max_connect_retries: 2,
            ..PostgresConfig::default()
        },
    )
    .await
    .expect_err("nothing listens");
    let text = err.to_string();
    assert!(
        matches!(err, PostgresError::Unreachable { attempts: 3, .. }),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("max_connect_retries"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert_no_password(&text);
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_at_once() {
    let Some(pg) = Pg::start() else { return };
    let url = format!(
        "postgresql://store:not-the-Pw-s3cr3t@127.0.0.1:{}/lockbox?sslmode=disable",
        pg.port
    );
    let started = Instant::now();
    let err = PostgresBackend::open(&url, &PostgresConfig::default())
        .await
        .expect_err("wrong password");
    let text = err.to_string();
    assert!(matches!(err, PostgresError::Login { .. }), "{text}");
    assert!(text.contains("\"store\""), "{text}");
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("not-the-Pw-s3cr3t"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "retried");
    // As the storage error the server shows: the URL is redacted.
    let open = err.into_open_error(&lockbox_storage_postgres::redact_url(&url));
    let shown = format!("{open}: {:?}", std::error::Error::source(&open));
    assert!(!shown.contains("not-the-Pw-s3cr3t"), "{shown}");
    assert!(shown.contains("store:***@"), "{shown}");
}

#[tokio::test]
async fn requests_work_again_after_a_database_restart() {
    let Some(pg) = Pg::start() else { return };
    let b = pg.open(PostgresConfig::default()).await;
    b.put("k", b"1".to_vec()).await.expect("put");
    pg.restart();
    assert_eq!(
        b.get("k").await.expect("get after restart"),
        Some(b"1".to_vec())
    );
    b.put("k", b"2".to_vec()).await.expect("put after restart");
    assert_eq!(b.get("k").await.expect("get"), Some(b"2".to_vec()));
}

#[tokio::test]
async fn sslmode_is_libpqs_on_a_tls_only_cluster() {
    let Some(pg) = Pg::start_with(true) else {
        return;
    };
    let ca = pg.dir.path().join("tls/ca.pem");
    let ca = ca.to_str().expect("utf-8 path");
    for query in [
        format!("sslmode=verify-full&sslrootcert={ca}"),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        "sslmode=require".to_string(),
        "sslmode=prefer".to_string(),
    ] {
        let b = PostgresBackend::open(&pg.url_with(&query), &PostgresConfig::default())
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        b.put("tls/k", b"v".to_vec()).await.expect("put over TLS");
        assert_eq!(b.get("tls/k").await.expect("get"), Some(b"v".to_vec()));
    }
    // Plain TCP is refused by the cluster, at once and clearly.
    let err = PostgresBackend::open(&pg.url_with("sslmode=disable"), &PostgresConfig::default())
        .await
        .expect_err("plain refused");
    let text = err.to_string();
    assert!(text.contains("no encryption"), "{text}");
    assert!(text.contains("sslmode=require"), "{text}");
    assert_no_password(&text);
    // verify-full against another CA fails on the certificate, not retried.
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = other.path().join("ca.pem");
    let key = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=other CA", "-keyout"])
        .arg(other.path().join("ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("openssl");
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let err = PostgresBackend::open(
        &pg.url_with(&format!(
            "sslmode=verify-full&sslrootcert={}",
            other_ca.display()
        )),
        &PostgresConfig::default(),
    )
    .await
    .expect_err("wrong CA");
    let text = err.to_string();
    assert!(text.contains("certificate"), "{text}");
    assert!(matches!(err, PostgresError::Connect { .. }), "{text}");
    // A CA file that is not there: named, before connecting.
    let err = PostgresBackend::open(
        &pg.url_with("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
        &PostgresConfig::default(),
    )
    .await
    .expect_err("missing CA");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
