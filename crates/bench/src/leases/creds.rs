//! Part 1 of `leases`: dynamic PostgreSQL credentials from the database
//! engine (`lockbox-plugin-database`, Vault's database API), issued with
//! `GET database/creds/<role>` and revoked with `PUT sys/leases/revoke`, as
//! fast as a closed loop of `c` connections can; the roles are counted in
//! PostgreSQL after each step.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;

use super::{Lockbox, lease_ids};
use crate::cpu::Usage;
use crate::error::{Error, Result};
use crate::load::{self, Batch, Req};
use crate::lockbox::{post, put};
use crate::pg::Postgres;

/// The catalog name (and file name in the plugin directory) of the engine.
pub(crate) const DATABASE: &str = "database";
/// The role whose credentials are issued.
const ROLE: &str = "bench";

/// One measured step.
pub(crate) struct CredsRow {
    /// "issue" or "revoke".
    pub(crate) op: &'static str,
    pub(crate) concurrency: usize,
    pub(crate) batch: Batch,
    /// lockbox, the database plugin, PostgreSQL (postmaster and its children, reaped ones included), the load generator, the rest of the machine.
    pub(crate) cores: [Option<f64>; 5],
    /// `v-…` roles in PostgreSQL after the step.
    pub(crate) roles_after: u64,
}

/// Registers and mounts the engine at `database/`, configures connection
/// `pg` and role `bench` (a login role with a password valid until the lease
/// ends; the default revocation drops it and ends its sessions).
pub(crate) async fn setup(lb: &Lockbox, pg: &Postgres, sha: &str) -> Result<()> {
    let ep = &lb.ep;
    put(
        ep,
        &format!("/v1/sys/plugins/catalog/secret/{DATABASE}"),
        serde_json::json!({ "sha256": sha, "command": DATABASE }),
    )
    .await?;
    post(
        ep,
        &format!("/v1/sys/mounts/{DATABASE}"),
        serde_json::json!({ "type": DATABASE }),
    )
    .await?;
    put(
        ep,
        &format!("/v1/{DATABASE}/config/pg"),
        serde_json::json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg.url(),
            "username": "lockboxroot",
            "password": "rootpw",
            "allowed_roles": "*",
        }),
    )
    .await?;
    put(
        ep,
        &format!("/v1/{DATABASE}/roles/{ROLE}"),
        serde_json::json!({
            "db_name": "pg",
            "creation_statements": "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            "default_ttl": "1h",
            "max_ttl": "2h",
        }),
    )
    .await
}

async fn step(
    lb: &Lockbox,
    pg: &Postgres,
    op: &'static str,
    concurrency: usize,
    n: usize,
    make: Arc<dyn Fn(usize) -> Req + Send + Sync>,
) -> Result<CredsRow> {
    eprint!("  {op:<6} {n} creds, c={concurrency:<3} ... ");
    let postmaster = [pg.postmaster_pid()];
    let plugins = lb.plugin_pids(DATABASE);
    let before = Usage::with_trees(&[&[lb.pid], &plugins], &postmaster);
    let batch = load::run_batch(&lb.ep, n, concurrency, make).await?;
    let c = before.cores_until(&Usage::with_trees(&[&[lb.pid], &plugins], &postmaster));
    let roles_after = pg.dynamic_roles()?;
    eprintln!(
        "{:>7.0}/s  p50 {:.2} ms  p99 {:.2} ms  errors {}  roles now {roles_after}",
        batch.rate(),
        batch.quantile_ms(0.5),
        batch.quantile_ms(0.99),
        batch.errors
    );
    Ok(CredsRow {
        op,
        concurrency,
        batch,
        cores: [c[0], c[1], c[2], c[3], c[4]],
        roles_after,
    })
}

/// For each concurrency: issue `n` credentials, then revoke their leases.
pub(crate) async fn measure(
    lb: &Lockbox,
    pg: &Postgres,
    n: usize,
    levels: &[usize],
) -> Result<Vec<CredsRow>> {
    let mut rows = Vec::new();
    for &c in levels {
        let issue: Arc<dyn Fn(usize) -> Req + Send + Sync> = Arc::new(|_| Req {
            method: Method::GET,
            path: format!("/v1/{DATABASE}/creds/{ROLE}"),
            body: Bytes::new(),
        });
        let row = step(lb, pg, "issue", c, n, issue).await?;
        let ids = lease_ids(&row.batch, &format!("{DATABASE}/creds/{ROLE}/"))?;
        rows.push(row);
        let ids = Arc::new(ids);
        let revoke: Arc<dyn Fn(usize) -> Req + Send + Sync> = {
            let ids = ids.clone();
            Arc::new(move |i| Req {
                method: Method::PUT,
                path: "/v1/sys/leases/revoke".into(),
                body: Bytes::from(serde_json::json!({ "lease_id": ids[i] }).to_string()),
            })
        };
        let row = step(lb, pg, "revoke", c, ids.len(), revoke).await?;
        if row.roles_after != 0 && row.batch.errors == 0 {
            return Err(Error::UnexpectedBody {
                what: "PostgreSQL after revoking every lease".into(),
                reason: format!("{} v-… roles still exist", row.roles_after),
            });
        }
        rows.push(row);
    }
    Ok(rows)
}
