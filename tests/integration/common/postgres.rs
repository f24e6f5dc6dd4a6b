//! A throwaway PostgreSQL cluster per test (`tests/harness/pg-up.sh`), for
//! the database engine's tests and the PostgreSQL storage's.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether initdb is installed here (Debian's layout or on PATH). Tests
/// that need PostgreSQL skip, saying so, only when it is not; `tests/run.sh`
/// installs it.
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

/// A PostgreSQL cluster for one test; stopped on drop.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The CA of a TLS-only cluster (`PG_TLS=1`): TCP logins, ours and
    /// psql's, then use `verify-full` with it.
    pub ca: Option<PathBuf>,
}

pub fn harness(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/harness")
        .join(script)
}

impl Postgres {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A cluster that takes TCP logins over TLS only.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    pub fn start_with(tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(harness("pg-up.sh"))
            .arg(dir.path())
            .env("PG_TLS", if tls { "1" } else { "0" })
            .output()
            .expect("run pg-up.sh");
        assert!(
            out.status.success(),
            "pg-up.sh failed (is Debian's postgresql installed? tests/run.sh installs it): {}",
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
            .map(|p| PathBuf::from(p.trim()));
        assert_eq!(ca.is_some(), tls, "pg-up.sh output: {stdout}");
        let pg = Postgres { dir, port, ca };
        // The engine's root user: a superuser with a password (TCP logins
        // need one).
        pg.admin("CREATE ROLE lockboxroot SUPERUSER LOGIN PASSWORD 'rootpw'");
        pg
    }

    /// Runs `sql` as `postgres` over the socket in the `postgres`
    /// database; returns psql's unaligned output.
    pub fn admin(&self, sql: &str) -> String {
        self.query("postgres", sql)
    }

    /// Runs `sql` as `postgres` over the socket in `database`; returns
    /// psql's unaligned output.
    pub fn query(&self, database: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .arg("-d")
            .arg(database)
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

    /// Whether `user` / `password` log in over TCP and run `select 1`.
    pub fn logs_in(&self, user: &str, password: &str) -> bool {
        let out = Command::new("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-d",
                "postgres",
                "-c",
                "select 1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(user)
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .envs(self.psql_tls())
            .output()
            .expect("run psql");
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// A psql session of `user` running `sql` in the background.
    pub fn session(&self, user: &str, password: &str, sql: &str) -> std::process::Child {
        Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c", sql])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(user)
            .env("PGPASSWORD", password)
            .envs(self.psql_tls())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run psql")
    }

    /// psql's TLS settings for TCP logins: `verify-full` with the
    /// cluster's CA when it has one, else plain.
    pub fn psql_tls(&self) -> Vec<(&'static str, String)> {
        match &self.ca {
            Some(ca) => vec![
                ("PGSSLMODE", "verify-full".to_string()),
                ("PGSSLROOTCERT", ca.display().to_string()),
            ],
            None => vec![("PGSSLMODE", "disable".to_string())],
        }
    }

    pub fn role_exists(&self, user: &str) -> bool {
        let q = format!("SELECT count(*) FROM pg_roles WHERE rolname = '{user}'");
        self.admin(&q) == "1"
    }

    /// Unix seconds of the role's `VALID UNTIL`.
    pub fn valid_until(&self, user: &str) -> i64 {
        let out = self.admin(&format!(
            "SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = '{user}'"
        ));
        out.parse()
            .unwrap_or_else(|_| panic!("VALID UNTIL of {user}: {out:?}"))
    }

    /// Roles the engine created (`v-…`).
    pub fn dynamic_roles(&self) -> Vec<String> {
        let out = self.admin("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%' ORDER BY 1");
        out.lines()
            .map(String::from)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The engine's `connection_url`: `verify-full` on a TLS cluster (with
    /// [`Self::tls_ca`]), `disable` otherwise.
    pub fn url(&self) -> String {
        match &self.ca {
            Some(_) => self.url_with("sslmode=verify-full"),
            None => self.url_with("sslmode=disable"),
        }
    }

    /// The cluster's CA as PEM text, for the connection's `tls_ca` (the
    /// plugin's sandbox cannot read a file under /tmp named by
    /// `sslrootcert`), or "" without TLS.
    pub fn tls_ca(&self) -> String {
        self.ca
            .as_ref()
            .map(|ca| std::fs::read_to_string(ca).expect("read the CA"))
            .unwrap_or_default()
    }

    pub fn url_with(&self, query: &str) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?{query}",
            self.port
        )
    }
}

impl Postgres {
    /// Stops the cluster at once (an outage; `pg_ctl -m immediate`).
    pub fn stop(&self) {
        let st = Command::new("bash")
            .arg(harness("pg-down.sh"))
            .arg(self.dir.path())
            .status()
            .expect("run pg-down.sh");
        assert!(st.success());
    }

    /// Starts the stopped cluster again, same data, same port.
    pub fn restart(&self) {
        let out = Command::new("bash")
            .arg(harness("pg-up.sh"))
            .arg(self.dir.path())
            .env("PG_TLS", if self.ca.is_some() { "1" } else { "0" })
            .output()
            .expect("run pg-up.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = format!("PGPORT={}", self.port);
        assert!(String::from_utf8_lossy(&out.stdout).contains(&port));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(harness("pg-down.sh"))
            .arg(self.dir.path())
            .status();
    }
}
