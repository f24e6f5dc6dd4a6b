//! Static roles: an existing PostgreSQL user whose password the engine
//! rotates every `rotation_period` (Vault's `static-roles/:name`,
//! `static-creds/:name`, `rotate-role/:name`).
//!
//! ```text
//!  write static-roles/r ──▶ rotate now (the role is stored only if that worked)
//!  every second (per mount, from Initialize) ──▶ rotate the roles that are due
//!  read static-creds/r ──▶ rotate first if due, then username/password/ttl
//! ```
//!
//! Rotations are serialized (one lock for the process), so the stored
//! password is always the one last set in PostgreSQL.

use crate::connection::{Connection, password};
use crate::pg;
use crate::root;
use lockbox_sdk::framework::Fields;
use lockbox_sdk::{Error, Request, Response, Storage};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shortest rotation period accepted (as Vault).
const MIN_ROTATION: u64 = 5;

/// A stored static role (`static-role/<name>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaticRole {
    pub db_name: String,
    pub username: String,
    pub rotation_period: u64,
    #[serde(default)]
    pub rotation_statements: Vec<String>,
    pub password: String,
    pub last_rotation: i64,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rotation_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

fn key(name: &str) -> String {
    format!("static-role/{name}")
}

async fn load(storage: &Storage, name: &str) -> Result<Option<StaticRole>, Error> {
    Ok(storage.get_json(&key(name)).await?)
}

async fn connection(storage: &Storage, role: &str, db: &str) -> Result<Connection, Error> {
    let conn: Connection = storage
        .get_json(&format!("config/{db}"))
        .await?
        .ok_or_else(|| {
            Error::invalid(format!(
                "static role {role:?} names connection {db:?}, which does not exist"
            ))
        })?;
    if !conn.allowed_roles.iter().any(|r| r == "*" || r == role) {
        return Err(Error::invalid(format!(
            "{role:?} is not an allowed role of connection {db:?} (see its allowed_roles)"
        )));
    }
    Ok(conn)
}

/// Sets a new password for `role`'s user in PostgreSQL; the caller holds
/// the rotation lock and stores the result.
async fn set_password(storage: &Storage, name: &str, role: &mut StaticRole) -> Result<(), Error> {
    let conn = connection(storage, name, &role.db_name).await?;
    let new = password();
    let statements = if role.rotation_statements.is_empty() {
        vec![format!(
            "ALTER ROLE {} WITH PASSWORD {}",
            pg::quote_ident(&role.username),
            pg::quote_literal(&new)
        )]
    } else {
        pg::expand(
            &role.rotation_statements,
            &[
                ("name", &role.username),
                ("username", &role.username),
                ("password", &new),
            ],
        )
    };
    let mut client = root::connect_stored(storage, &role.db_name, &conn).await?;
    let what = format!("rotation statements of static role {name:?}");
    pg::run_in_transaction(&mut client, &statements, &what, &new).await?;
    role.password = new;
    role.last_rotation = now_unix();
    Ok(())
}

/// Rotates `name` now (`force`) or only when its period has passed.
pub async fn rotate(
    storage: &Storage,
    name: &str,
    force: bool,
) -> Result<Option<StaticRole>, Error> {
    let _guard = rotation_lock().lock().await;
    let Some(mut role) = load(storage, name).await? else {
        return Ok(None);
    };
    let due = role.last_rotation + role.rotation_period as i64 <= now_unix();
    if force || due {
        set_password(storage, name, &mut role).await?;
        storage.put_json(&key(name), &role).await?;
    }
    Ok(Some(role))
}

/// Rotates every due static role of the mount (the background task).
pub async fn rotate_due(storage: &Storage) {
    let names = match storage.list("static-role/").await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("static roles: cannot list: {e}");
            return;
        }
    };
    for name in names {
        if let Err(e) = rotate(storage, &name, false).await {
            eprintln!("static role {name:?}: rotation failed, retried in a second: {e}");
        }
    }
}

/// The background rotation of a mount: every second, until aborted.
pub fn spawn_rotation(storage: Storage) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            rotate_due(&storage).await;
        }
    })
}

pub async fn write(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = fields.require_str("name")?.to_string();
    let existing = load(&storage, &name).await?;
    let username = fields.require_str("username")?.to_string();
    if let Some(old) = &existing {
        if old.username != username {
            return Err(Error::invalid(format!(
                "cannot change the username of static role {name:?} ({:?}); delete it and write it again",
                old.username
            )));
        }
    }
    let period = fields
        .duration("rotation_period")
        .map(|d| d.as_secs())
        .ok_or_else(|| Error::invalid("rotation_period is required, e.g. 24h"))?;
    if period < MIN_ROTATION {
        return Err(Error::invalid(format!(
            "rotation_period must be at least {MIN_ROTATION}s"
        )));
    }
    let mut role = StaticRole {
        db_name: fields.require_str("db_name")?.to_string(),
        username,
        rotation_period: period,
        rotation_statements: fields
            .string_list("rotation_statements")
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        password: String::new(),
        last_rotation: 0,
    };
    let _guard = rotation_lock().lock().await;
    match existing {
        // An update keeps the current password; the new period counts from
        // the last rotation.
        Some(old) => {
            role.password = old.password;
            role.last_rotation = old.last_rotation;
        }
        None => set_password(&storage, &name, &mut role).await?,
    }
    storage.put_json(&key(&name), &role).await?;
    Ok(None)
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub async fn read(_: Request, fields: Fields, storage: Storage) -> Result<Option<Response>, Error> {
    let name = fields.require_str("name")?;
    let Some(r) = load(&storage, name).await? else {
        return Ok(None);
    };
    Ok(Some(Response::json(json!({
        "db_name": r.db_name,
        "username": r.username,
        "rotation_period": r.rotation_period,
        "rotation_statements": r.rotation_statements,
        "last_vault_rotation": rfc3339(r.last_rotation),
        "credential_type": "password",
    }))))
}

pub async fn delete(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = fields.require_str("name")?;
    let _guard = rotation_lock().lock().await;
    storage.delete(&key(name)).await?;
    Ok(None)
}

pub async fn creds(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = fields.require_str("name")?;
    let r = rotate(&storage, name, false)
        .await?
        .ok_or_else(|| Error::invalid(format!("unknown static role: {name}")))?;
    let next = r.last_rotation + r.rotation_period as i64;
    Ok(Some(Response::json(json!({
        "username": r.username,
        "password": r.password,
        "last_vault_rotation": rfc3339(r.last_rotation),
        "rotation_period": r.rotation_period,
        "ttl": (next - now_unix()).max(0),
    }))))
}

pub async fn rotate_role(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = fields.require_str("name")?;
    rotate(&storage, name, true)
        .await?
        .ok_or_else(|| Error::invalid(format!("unknown static role: {name}")))?;
    Ok(None)
}
