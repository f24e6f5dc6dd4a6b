//! The table: Vault's DDL (created with its index when the table is
//! missing) and the check that an existing table has Vault's columns and
//! its primary key, so lockbox never writes into a table it does not
//! understand.

use crate::PostgresError;
use crate::redact::Scrubber;
use tokio_postgres::Client;

/// Vault's DDL for `table` (a checked identifier), as teams that create the
/// table themselves run it (README, "PostgreSQL storage").
pub fn ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n  \
           parent_path TEXT COLLATE \"C\" NOT NULL,\n  \
           path        TEXT COLLATE \"C\",\n  \
           key         TEXT COLLATE \"C\",\n  \
           value       BYTEA,\n  \
           CONSTRAINT {pkey} PRIMARY KEY (path, key)\n);\n\
         CREATE INDEX IF NOT EXISTS {index} ON {table} (parent_path);",
        pkey = constraint_name(table),
        index = index_name(table),
    )
}

/// Vault names them `pkey` and `parent_path_idx`; for another table name
/// ours are prefixed with it (constraint and index names are unique per
/// schema, so a second table could not reuse Vault's).
fn constraint_name(table: &str) -> String {
    if table == crate::DEFAULT_TABLE {
        "pkey".to_string()
    } else {
        format!("{table}_pkey")
    }
}

fn index_name(table: &str) -> String {
    if table == crate::DEFAULT_TABLE {
        "parent_path_idx".to_string()
    } else {
        format!("{table}_parent_path_idx")
    }
}

/// The columns Vault's layout needs and their types.
const COLUMNS: [(&str, &str); 4] = [
    ("parent_path", "text"),
    ("path", "text"),
    ("key", "text"),
    ("value", "bytea"),
];

/// Creates `table` in the current schema when it is missing; refuses one
/// that lacks a column of Vault's layout (or has it with another type) or
/// the primary key on `(path, key)`.
pub(crate) async fn ensure(
    client: &Client,
    table: &str,
    scrub: &Scrubber,
) -> Result<(), PostgresError> {
    let fail = |e: tokio_postgres::Error| PostgresError::Schema {
        table: table.to_string(),
        problem: format!(
            "cannot be checked or created: {}; the user needs CREATE on the schema, or create \
             the table with the DDL in the README",
            crate::redact::message(&e, scrub)
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
        tracing::info!(table, "creating the PostgreSQL storage table and its index");
        create_serialized(client, table, &ddl(table))
            .await
            .map_err(fail)?;
        return Ok(());
    }
    let found: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut problems = Vec::new();
    for (name, ty) in COLUMNS {
        match found.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("no column {name} ({ty})")),
            Some((_, t)) if t != ty => problems.push(format!("column {name} is {t}, not {ty}")),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        let unique = client
            .query_one(
                "SELECT count(*) FROM pg_index i \
                 WHERE i.indrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident($1)) \
                 AND i.indisunique AND i.indnatts = 2 \
                 AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a \
                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = ARRAY['key', 'path']",
                &[&table],
            )
            .await
            .map_err(fail)?;
        let n: i64 = unique.get(0);
        if n == 0 {
            problems.push("no primary key (or unique index) on (path, key)".to_string());
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let columns: Vec<String> = found.iter().map(|(n, t)| format!("{n} {t}")).collect();
    Err(PostgresError::Schema {
        table: table.to_string(),
        problem: format!(
            "exists but is not Vault's layout ({}; it has: {}); lockbox will not write into \
             it: set `table` to another name, or drop or fix this one to match the DDL in the \
             README",
            problems.join(", "),
            columns.join(", ")
        ),
    })
}

/// Runs `ddl` in a transaction that first takes a transaction advisory
/// lock named after `table`: nodes starting at once on a fresh database
/// create it one after the other (PostgreSQL's `CREATE TABLE IF NOT
/// EXISTS` is not safe against a concurrent twin: one of them fails on
/// `pg_type`'s unique index), and the later ones find it created.
pub(crate) async fn create_serialized(
    client: &Client,
    table: &str,
    ddl: &str,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let created = async {
        client
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&format!("lockbox-schema:{table}")],
            )
            .await?;
        client.batch_execute(ddl).await
    }
    .await;
    match created {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_is_vaults_for_the_default_table() {
        let d = ddl("vault_kv_store");
        assert!(d.contains("parent_path TEXT COLLATE \"C\" NOT NULL"), "{d}");
        assert!(d.contains("CONSTRAINT pkey PRIMARY KEY (path, key)"), "{d}");
        assert!(
            d.contains(
                "CREATE INDEX IF NOT EXISTS parent_path_idx ON vault_kv_store (parent_path)"
            ),
            "{d}"
        );
        let d = ddl("other");
        assert!(d.contains("CONSTRAINT other_pkey"), "{d}");
        assert!(d.contains("other_parent_path_idx"), "{d}");
    }
}
