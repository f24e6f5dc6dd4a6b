//! The throwaway PostgreSQL cluster the integration tests share
//! (`tests/harness/pg-up.sh`): one per test, stopped on drop.
#![allow(dead_code)]

use lockbox_storage_postgres::{PostgresBackend, PostgresConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PASSWORD: &str = "Pw-s3cr%t word";
pub const PASSWORD_ENCODED: &str = "Pw-s3cr%25t%20word";

pub fn harness(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/harness")
        .join(script)
}

pub fn initdb_installed() -> bool {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|e| e.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    debian
        || Command::new("sh")
            .args(["-c", "command -v initdb"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// A throwaway cluster with a login `store` (password [`PASSWORD`]) owning
/// the database `lockbox`; stopped on drop.
pub struct Pg {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Pg {
    pub fn start() -> Option<Pg> {
        Self::start_with(false)
    }

    /// A cluster that takes TCP logins over TLS only (`PG_TLS=1`; its CA in
    /// `DIR/tls/ca.pem`).
    pub fn start_with(tls: bool) -> Option<Pg> {
        if !initdb_installed() {
            eprintln!("SKIPPED: initdb not found (apt-get install postgresql; tests/run.sh does)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("bash")
            .arg(harness("pg-up.sh"))
            .arg(dir.path())
            .env("PG_TLS", if tls { "1" } else { "0" })
            .output()
            .expect("run pg-up.sh");
        assert!(
            out.status.success(),
            "pg-up.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("PGPORT="))
            .and_then(|p| p.trim().parse().ok())
            .expect("PGPORT line");
        let pg = Pg { dir, port };
        pg.admin(
            "postgres",
            &format!("CREATE ROLE store LOGIN PASSWORD '{PASSWORD}'"),
        );
        pg.admin("postgres", "CREATE DATABASE lockbox OWNER store");
        Some(pg)
    }

    pub fn admin(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .arg("-d")
            .arg(db)
            .arg("-h")
            .arg(self.dir.path())
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
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn url(&self) -> String {
        self.url_with("sslmode=disable")
    }

    pub fn url_with(&self, query: &str) -> String {
        format!(
            "postgresql://store:{PASSWORD_ENCODED}@127.0.0.1:{}/lockbox?{query}",
            self.port
        )
    }

    pub async fn open(&self, config: PostgresConfig) -> PostgresBackend {
        PostgresBackend::open(&self.url(), &config)
            .await
            .expect("open PostgreSQL storage")
    }

    pub fn restart(&self) {
        let st = Command::new("bash")
            .arg(harness("pg-down.sh"))
            .arg(self.dir.path())
            .status()
            .expect("pg-down.sh");
        assert!(st.success());
        let out = Command::new("bash")
            .arg(harness("pg-up.sh"))
            .arg(self.dir.path())
            .output()
            .expect("pg-up.sh");
        assert!(out.status.success());
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(harness("pg-down.sh"))
            .arg(self.dir.path())
            .status();
    }
}

pub fn assert_no_password(text: &str) {
    assert!(!text.contains(PASSWORD), "password in {text}");
    assert!(!text.contains(PASSWORD_ENCODED), "password in {text}");
    assert!(!text.contains("s3cr"), "password in {text}");
}
