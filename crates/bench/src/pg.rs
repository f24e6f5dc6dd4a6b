//! A throwaway PostgreSQL cluster from `tests/harness/pg-up.sh` (initdb +
//! pg_ctl on a free loopback port, its socket in the cluster directory),
//! stopped with `pg-down.sh` when dropped. Used by `leases` (the database
//! engine's server) and `ha` (lockbox's storage).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// A running cluster.
pub(crate) struct Postgres {
    dir: PathBuf,
    down_script: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub(crate) port: u16,
    /// `postgres --version`, e.g. `postgres (PostgreSQL) 17.6`.
    pub(crate) version: String,
}

fn run(cmd: &mut Command, what: String) -> Result<String> {
    let out = cmd.output().map_err(|source| Error::RunCommand {
        command: what.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: what,
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Postgres {
    /// Starts a cluster in `dir` with the harness scripts of `workspace`, and
    /// creates the engine's root user `lockboxroot` (superuser, password
    /// `rootpw`: TCP logins need a password).
    pub(crate) fn start(workspace: &Path, dir: &Path) -> Result<Self> {
        Self::start_with(workspace, dir, None)
    }

    /// [`Postgres::start`] with `max_connections` (PostgreSQL's default
    /// is 100).
    pub(crate) fn start_with(
        workspace: &Path,
        dir: &Path,
        max_connections: Option<u32>,
    ) -> Result<Self> {
        let up = workspace.join("tests/harness/pg-up.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&up).arg(dir);
        if let Some(n) = max_connections {
            cmd.env("PG_MAX_CONNECTIONS", n.to_string());
        }
        let stdout = run(
            &mut cmd,
            format!(
                "bash {} {} (needs Debian's postgresql)",
                up.display(),
                dir.display()
            ),
        )?;
        let port = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PGPORT="))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| Error::UnexpectedBody {
                what: format!("bash {}", up.display()),
                reason: format!("no PGPORT=<port> line in its output: {stdout}"),
            })?;
        let bindir = std::fs::read_to_string(dir.join("bindir")).unwrap_or_default();
        let version = Command::new(Path::new(bindir.trim()).join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "version unknown".into());
        let pg = Postgres {
            dir: dir.to_path_buf(),
            down_script: workspace.join("tests/harness/pg-down.sh"),
            port,
            version,
        };
        pg.admin("CREATE ROLE lockboxroot SUPERUSER LOGIN PASSWORD 'rootpw'")?;
        Ok(pg)
    }

    /// Runs `sql` as `postgres` over the cluster's socket; psql's unaligned output.
    pub(crate) fn admin(&self, sql: &str) -> Result<String> {
        run(
            Command::new("psql")
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .args(["-U", "postgres", "-d", "postgres", "-h"])
                .arg(&self.dir)
                .arg("-p")
                .arg(self.port.to_string())
                .arg("-c")
                .arg(sql),
            format!("psql -c {sql:?}"),
        )
    }

    /// How many roles the engine created (`v-…`) exist now.
    pub(crate) fn dynamic_roles(&self) -> Result<u64> {
        let out = self.admin("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'")?;
        out.parse().map_err(|_| Error::UnexpectedBody {
            what: "psql: count of v-% roles".into(),
            reason: format!("not a number: {out:?}"),
        })
    }

    /// The connection URL template the engine is configured with.
    pub(crate) fn url(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The postmaster's pid (first line of `data/postmaster.pid`).
    pub(crate) fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.down_script)
            .arg(&self.dir)
            .output();
    }
}
