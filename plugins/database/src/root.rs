//! The root credential of a connection: connecting as it, and
//! `rotate-root/:name`, made crash-safe by a write-ahead entry.
//!
//! ```text
//!  rotate-root   1. store rotate-root-pending/<name> = {password: new}
//!                2. ALTER ROLE ... PASSWORD new        (root_rotation_statements)
//!                3. store config/<name> with new
//!                4. delete rotate-root-pending/<name>
//!  connect       stored password ──refused (28P01)──▶ pending entry?
//!                  ──its password works──▶ store it in config/<name>, delete the entry
//! ```
//!
//! Whatever step fails or wherever the process dies, one of the two stored
//! passwords is the one PostgreSQL has: before step 2 commits, the stored
//! one (the entry is never used while it works); after, the pending one,
//! which the next connection finds and finishes. Rotations and recoveries
//! take one lock, so neither sees the other half done. The logic is
//! written against [`Root`] so it is tested without a database.

use crate::connection::{Connection, password};
use crate::pg::{self, ConnectError};
use lockbox_sdk::{Error, Storage, async_trait};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::Client;

/// Where the write-ahead entry of connection `name` lives.
pub fn pending_key(name: &str) -> String {
    format!("rotate-root-pending/{name}")
}

/// A rotation started and not known to be finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub password: String,
    /// Unix seconds when the rotation started.
    pub started: i64,
}

/// What rotation and recovery need of a connection's root user.
#[async_trait]
pub trait Root: Send + Sync {
    type Conn: Send;
    /// The connection's name (for messages).
    fn name(&self) -> &str;
    /// The password in `config/<name>` now.
    async fn stored_password(&self) -> Result<String, Error>;
    async fn connect(&self, password: &str) -> Result<Self::Conn, ConnectError>;
    /// Sets the root user's password in the database.
    async fn set_password(&self, conn: &mut Self::Conn, new: &str) -> Result<(), Error>;
    async fn load_pending(&self) -> Result<Option<Pending>, Error>;
    async fn store_pending(&self, pending: &Pending) -> Result<(), Error>;
    async fn delete_pending(&self) -> Result<(), Error>;
    /// Stores `password` as the root password in `config/<name>`.
    async fn store_password(&self, password: &str) -> Result<(), Error>;
}

fn lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// Connects as the root user; when its stored password is refused and a
/// rotation is pending, finishes that rotation with the pending password.
pub async fn connect<R: Root>(root: &R) -> Result<R::Conn, Error> {
    let stored = root.stored_password().await?;
    match root.connect(&stored).await {
        Ok(c) => return Ok(c),
        Err(ConnectError::Other(e)) => return Err(e),
        Err(ConnectError::BadPassword(_)) => {}
    }
    let _guard = lock().lock().await;
    connect_locked(root).await
}

async fn connect_locked<R: Root>(root: &R) -> Result<R::Conn, Error> {
    // Read again under the lock: a rotation may have just finished.
    let stored = root.stored_password().await?;
    let refused = match root.connect(&stored).await {
        Ok(c) => return Ok(c),
        Err(ConnectError::Other(e)) => return Err(e),
        Err(ConnectError::BadPassword(e)) => e,
    };
    let Some(pending) = root.load_pending().await? else {
        return Err(refused);
    };
    match root.connect(&pending.password).await {
        Ok(c) => {
            root.store_password(&pending.password).await.map_err(|e| {
                Error::Unavailable(format!(
                    "connection {:?}: finishing the interrupted rotate-root failed: storing its \
                     password: {e}; it stays pending and is tried again at the next use",
                    root.name()
                ))
            })?;
            drop_pending(root).await;
            eprintln!(
                "connection {:?}: finished the rotate-root interrupted at {} (the stored root \
                 password was refused, the pending one works)",
                root.name(),
                pending.started
            );
            Ok(c)
        }
        Err(ConnectError::BadPassword(_)) => Err(Error::invalid(format!(
            "{refused}; the password of the unfinished rotate-root started at {} was refused \
             too: the root password was changed outside lockbox; write config/{} with the \
             current password",
            pending.started,
            root.name()
        ))),
        Err(ConnectError::Other(e)) => Err(e),
    }
}

async fn drop_pending<R: Root>(root: &R) {
    if let Err(e) = root.delete_pending().await {
        // Harmless: the entry is only read when the stored password fails.
        eprintln!(
            "connection {:?}: cannot delete the finished rotate-root entry: {e}",
            root.name()
        );
    }
}

/// Rotates the root password to `new` (see the module docs for the steps).
pub async fn rotate<R: Root>(root: &R, new: &str, now: i64) -> Result<(), Error> {
    let _guard = lock().lock().await;
    let mut conn = connect_locked(root).await?;
    let pending = Pending {
        password: new.to_string(),
        started: now,
    };
    root.store_pending(&pending).await.map_err(|e| {
        Error::Unavailable(format!(
            "connection {:?}: rotate-root changed nothing: storing the new password first \
             failed: {e}",
            root.name()
        ))
    })?;
    // On failure the entry stays: if the change did commit after all, the
    // next connection finishes the rotation; if not, it is never used.
    root.set_password(&mut conn, new).await?;
    root.store_password(new).await.map_err(|e| {
        Error::Unavailable(format!(
            "connection {:?}: the new root password is set in PostgreSQL but storing it in the \
             connection failed: {e}; it is kept as a pending rotation and taken over at the \
             next use of the connection",
            root.name()
        ))
    })?;
    drop_pending(root).await;
    Ok(())
}

/// [`Root`] on the plugin's storage and a real PostgreSQL.
pub struct StoredRoot<'a> {
    pub storage: &'a Storage,
    pub name: &'a str,
    pub conn: &'a Connection,
}

fn config_key(name: &str) -> String {
    format!("config/{name}")
}

impl StoredRoot<'_> {
    async fn load(&self) -> Result<Connection, Error> {
        self.storage
            .get_json(&config_key(self.name))
            .await?
            .ok_or_else(|| Error::invalid(format!("no connection named {:?}", self.name)))
    }
}

#[async_trait]
impl Root for StoredRoot<'_> {
    type Conn = Client;

    fn name(&self) -> &str {
        self.name
    }

    async fn stored_password(&self) -> Result<String, Error> {
        Ok(self.load().await?.password)
    }

    async fn connect(&self, password: &str) -> Result<Client, ConnectError> {
        self.conn.connect_with(password, self.name).await
    }

    async fn set_password(&self, client: &mut Client, new: &str) -> Result<(), Error> {
        let user = &self.conn.username;
        let statements = if self.conn.root_rotation_statements.is_empty() {
            vec![format!(
                "ALTER ROLE {} WITH PASSWORD {}",
                pg::quote_ident(user),
                pg::quote_literal(new)
            )]
        } else {
            pg::expand(
                &self.conn.root_rotation_statements,
                &[("username", user), ("name", user), ("password", new)],
            )
        };
        pg::run_in_transaction(client, &statements, "rotating the root password", new).await
    }

    async fn load_pending(&self) -> Result<Option<Pending>, Error> {
        Ok(self.storage.get_json(&pending_key(self.name)).await?)
    }

    async fn store_pending(&self, pending: &Pending) -> Result<(), Error> {
        Ok(self
            .storage
            .put_json(&pending_key(self.name), pending)
            .await?)
    }

    async fn delete_pending(&self) -> Result<(), Error> {
        Ok(self.storage.delete(&pending_key(self.name)).await?)
    }

    async fn store_password(&self, password: &str) -> Result<(), Error> {
        let mut current = self.load().await?;
        current.password = password.to_string();
        Ok(self
            .storage
            .put_json(&config_key(self.name), &current)
            .await?)
    }
}

/// Connects to connection `name` (stored as `conn`) as its root user,
/// finishing an interrupted rotation if there is one.
pub async fn connect_stored(
    storage: &Storage,
    name: &str,
    conn: &Connection,
) -> Result<Client, Error> {
    connect(&StoredRoot {
        storage,
        name,
        conn,
    })
    .await
}

/// `rotate-root/<name>` on the stored connection `conn`.
pub async fn rotate_stored(storage: &Storage, name: &str, conn: &Connection) -> Result<(), Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rotate(
        &StoredRoot {
            storage,
            name,
            conn,
        },
        &password(),
        now,
    )
    .await
}

#[cfg(test)]
#[path = "root_tests.rs"]
mod tests;
