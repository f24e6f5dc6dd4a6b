//! The high availability table: its DDL, the check of an existing one, the
//! advisory lock key derived from its name, and the SQL of the lock
//! connection and of the fenced writes.
//!
//! The table has two rows: `leader` (the term, the active node's
//! addresses, since when it is active) and `heartbeat` (the term and the
//! last heartbeat). Writes take `FOR SHARE` on `leader` and the term bump
//! updates it; heartbeats touch only `heartbeat`, so they never wait for
//! writes nor writes for them. This is lockbox's own layout: Vault's
//! `vault_ha_locks` (a TTL lock) is not used, and such a table is refused.

use crate::PostgresError;
use crate::redact::{Scrubber, message};
use tokio_postgres::Client;

/// The DDL of the HA table `table` (a checked identifier) and its two
/// rows, for teams that create it themselves.
pub fn ha_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n  \
           ha_key       TEXT COLLATE \"C\" PRIMARY KEY,\n  \
           term         BIGINT NOT NULL,\n  \
           node_id      TEXT NOT NULL DEFAULT '',\n  \
           api_addr     TEXT NOT NULL DEFAULT '',\n  \
           cluster_addr TEXT NOT NULL DEFAULT '',\n  \
           active_since TIMESTAMPTZ,\n  \
           heartbeat    TIMESTAMPTZ,\n  \
           holder_pid   INTEGER\n);\n{}",
        seed_rows(table)
    )
}

/// The two rows every HA table needs (term 0: no leader yet).
pub(crate) fn seed_rows(table: &str) -> String {
    format!(
        "INSERT INTO {table} (ha_key, term) VALUES ('leader', 0), ('heartbeat', 0) \
         ON CONFLICT (ha_key) DO NOTHING;"
    )
}

/// The columns of the HA table and their `information_schema` types.
const COLUMNS: [(&str, &str); 8] = [
    ("ha_key", "text"),
    ("term", "bigint"),
    ("node_id", "text"),
    ("api_addr", "text"),
    ("cluster_addr", "text"),
    ("active_since", "timestamp with time zone"),
    ("heartbeat", "timestamp with time zone"),
    ("holder_pid", "integer"),
];

/// The advisory lock key of the HA table `table`: FNV-1a (64 bit) of
/// `lockbox-ha:` and the name, top bit cleared (a non-negative key splits
/// into `pg_locks.classid`/`objid` without sign questions). Stable across
/// versions: every node of a cluster must derive the same key.
pub fn lock_key(table: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "lockbox-ha:".bytes().chain(table.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::try_from(hash & 0x7fff_ffff_ffff_ffff).unwrap_or(0)
}

/// The statements of the lock connection, for the HA table `t`.
pub(crate) struct HaTexts {
    /// `$1` the lock key.
    pub try_lock: &'static str,
    /// `$1` the lock key.
    pub unlock: &'static str,
    /// `$1` node_id, `$2` api_addr, `$3` cluster_addr; returns the new term.
    pub promote: String,
    /// `$1` the term, `$2` the changes channel; one row while the term is
    /// ours, which is also announced on the channel (`changes`).
    pub heartbeat: String,
    /// The current term.
    pub term: String,
    /// `$1` the lock key: the holder's pid, the pid recorded by the last
    /// promotion, and the heartbeat's age in seconds (by the database clock).
    pub holder: String,
    /// `$1` the pid.
    pub terminate: &'static str,
    /// The two rows, inserted when missing.
    pub seed: String,
    /// `$1` the lock key: the leader row, the heartbeat age, whether the
    /// lock is held.
    pub leader: String,
}

/// `pg_locks` rows of the advisory lock `$1` in this database.
fn lock_rows(alias: &str) -> String {
    format!(
        "{alias}.locktype = 'advisory' AND {alias}.granted AND {alias}.objsubid = 1 \
         AND {alias}.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND (({alias}.classid::bigint << 32) | {alias}.objid::bigint) = $1"
    )
}

pub(crate) fn ha_texts(t: &str) -> HaTexts {
    HaTexts {
        try_lock: "SELECT pg_try_advisory_lock($1)",
        unlock: "SELECT pg_advisory_unlock($1)",
        promote: format!(
            "WITH bump AS (UPDATE {t} SET term = term + 1, node_id = $1, api_addr = $2, \
             cluster_addr = $3, active_since = clock_timestamp(), holder_pid = pg_backend_pid() \
             WHERE ha_key = 'leader' RETURNING term), \
             beat AS (UPDATE {t} SET term = (SELECT term FROM bump), heartbeat = clock_timestamp(), \
             holder_pid = pg_backend_pid() WHERE ha_key = 'heartbeat' RETURNING term) \
             SELECT bump.term FROM bump, beat"
        ),
        heartbeat: format!(
            "WITH beat AS (UPDATE {t} SET heartbeat = clock_timestamp() \
             WHERE ha_key = 'heartbeat' AND term = $1 RETURNING term) \
             SELECT pg_notify($2, '{}' || term::text) FROM beat",
            super::changes::HEARTBEAT
        ),
        term: format!("SELECT term FROM {t} WHERE ha_key = 'leader'"),
        holder: format!(
            "SELECT l.pid, h.holder_pid, EXTRACT(EPOCH FROM clock_timestamp() - h.heartbeat)::float8 \
             FROM pg_locks l LEFT JOIN {t} h ON h.ha_key = 'heartbeat' WHERE {}",
            lock_rows("l")
        ),
        terminate: "SELECT pg_terminate_backend($1)",
        seed: seed_rows(t),
        leader: format!(
            "SELECT l.term, l.node_id, l.api_addr, l.cluster_addr, \
             EXTRACT(EPOCH FROM l.active_since)::float8, \
             EXTRACT(EPOCH FROM clock_timestamp() - h.heartbeat)::float8, \
             EXISTS (SELECT 1 FROM pg_locks k WHERE {}) \
             FROM {t} l, {t} h WHERE l.ha_key = 'leader' AND h.ha_key = 'heartbeat'",
            lock_rows("k")
        ),
    }
}

/// The fenced writes on the data table `table`: each checks in the same
/// statement, under `FOR SHARE`, that the HA table `ha` still holds the
/// writer's term (the last parameter).
pub(crate) struct FencedTexts {
    /// `$1..$4` as the plain put, `$5` the term; 0 rows = fenced.
    pub put: String,
    /// `$1` path, `$2` key, `$3` term; returns (fence rows, deleted rows).
    pub delete: String,
    /// `$1` LIKE pattern, `$2` term; returns (fence rows, deleted rows).
    pub delete_prefix: String,
    /// `$1` term; one row while it is current, `FOR SHARE` held until the
    /// end of the transaction (the first statement of a transaction).
    pub check: String,
}

fn fence_cte(ha: &str, param: u8) -> String {
    format!(
        "fence AS (SELECT term FROM {ha} WHERE ha_key = 'leader' AND term = ${param} FOR SHARE)"
    )
}

pub(crate) fn fenced_texts(table: &str, ha: &str) -> FencedTexts {
    FencedTexts {
        put: format!(
            "WITH {} INSERT INTO {table} (parent_path, path, key, value) \
             SELECT $1::text, $2::text, $3::text, $4::bytea FROM fence \
             ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value, \
             parent_path = EXCLUDED.parent_path",
            fence_cte(ha, 5)
        ),
        delete: format!(
            "WITH {}, gone AS (DELETE FROM {table} WHERE path = $1 AND key = $2 \
             AND EXISTS (SELECT 1 FROM fence) RETURNING 1) \
             SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM gone)",
            fence_cte(ha, 3)
        ),
        delete_prefix: format!(
            "WITH {}, gone AS (DELETE FROM {table} WHERE (substr(path, 2) || key) LIKE $1 \
             ESCAPE '\\' AND EXISTS (SELECT 1 FROM fence) RETURNING 1) \
             SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM gone)",
            fence_cte(ha, 2)
        ),
        check: format!("SELECT term FROM {ha} WHERE ha_key = 'leader' AND term = $1 FOR SHARE"),
    }
}

/// Creates the HA table `table` when missing (with its two rows); refuses
/// one with other columns.
pub(crate) async fn ensure(
    client: &Client,
    table: &str,
    scrub: &Scrubber,
) -> Result<(), PostgresError> {
    let fail = |e: tokio_postgres::Error| PostgresError::Schema {
        table: table.to_string(),
        problem: format!(
            "the high availability table cannot be checked or created: {}; the user needs \
             CREATE on the schema, or create the table with lockbox's HA DDL",
            message(&e, scrub)
        ),
    };
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .await
        .map_err(fail)?;
    if rows.is_empty() {
        tracing::info!(table, "creating the PostgreSQL high availability table");
        crate::schema::create_serialized(client, table, &ha_ddl(table))
            .await
            .map_err(fail)?;
        return Ok(());
    }
    let mut found = Vec::with_capacity(rows.len());
    for r in &rows {
        let name: String = r.try_get(0).map_err(fail)?;
        let ty: String = r.try_get(1).map_err(fail)?;
        found.push((name, ty));
    }
    let mut problems = Vec::new();
    for (name, ty) in COLUMNS {
        match found.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("no column {name} ({ty})")),
            Some((_, t)) if t != ty => problems.push(format!("column {name} is {t}, not {ty}")),
            Some(_) => {}
        }
    }
    for (name, _) in &found {
        if !COLUMNS.iter().any(|(n, _)| n == name) {
            problems.push(format!("unexpected column {name}"));
        }
    }
    if !problems.is_empty() {
        let columns: Vec<String> = found.iter().map(|(n, t)| format!("{n} {t}")).collect();
        return Err(PostgresError::Schema {
            table: table.to_string(),
            problem: format!(
                "exists but is not lockbox's high availability table ({}; it has: {}); \
                 Vault's vault_ha_locks layout is not used by lockbox: set `ha_table` to \
                 another name, or drop this table so lockbox creates its own",
                problems.join(", "),
                columns.join(", ")
            ),
        });
    }
    client
        .batch_execute(&seed_rows(table))
        .await
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_stable_and_per_table() {
        // Nodes of different versions must agree: pinned values.
        assert_eq!(lock_key("lockbox_ha_leader"), 5_983_460_065_386_108_601);
        assert_ne!(lock_key("lockbox_ha_leader"), lock_key("other_ha"));
        assert!(lock_key("lockbox_ha_leader") >= 0);
        assert!(lock_key("x") >= 0);
        // FNV-1a 64 of "lockbox-ha:" (offset basis and prime as published).
        let mut h: u64 = 0xcbf29ce484222325;
        for b in b"lockbox-ha:t" {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
        assert_eq!(lock_key("t") as u64, h & (u64::MAX >> 1));
    }

    #[test]
    fn fenced_writes_check_the_term_under_for_share_in_the_same_statement() {
        let f = fenced_texts("kv", "ha");
        for s in [&f.put, &f.delete, &f.delete_prefix] {
            assert!(
                s.starts_with(
                    "WITH fence AS (SELECT term FROM ha WHERE ha_key = 'leader' AND term = $"
                ),
                "{s}"
            );
            assert!(s.contains("FOR SHARE)"), "{s}");
        }
        assert!(
            f.put.contains("FROM fence ON CONFLICT (path, key)"),
            "{}",
            f.put
        );
        assert!(
            f.delete
                .contains("AND EXISTS (SELECT 1 FROM fence) RETURNING 1")
        );
        assert!(f.delete_prefix.contains("LIKE $1 ESCAPE '\\'"));
        assert!(f.delete_prefix.contains("term = $2 FOR SHARE"));
    }

    #[test]
    fn heartbeats_touch_only_the_heartbeat_row() {
        let t = ha_texts("ha");
        assert!(
            t.heartbeat
                .contains("WHERE ha_key = 'heartbeat' AND term = $1")
        );
        assert!(!t.heartbeat.contains("FOR SHARE"));
        assert!(t.promote.contains("term = term + 1"));
        assert!(t.promote.contains("SET term = (SELECT term FROM bump)"));
    }

    #[test]
    fn the_ddl_has_every_checked_column() {
        let d = ha_ddl("lockbox_ha_leader");
        for (name, _) in COLUMNS {
            assert!(d.contains(&format!("  {name} ")), "{name} in {d}");
        }
        assert!(d.contains("('leader', 0), ('heartbeat', 0)"));
    }
}
