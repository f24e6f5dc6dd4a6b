//! `lockbox-plugin-database`: Vault's database secrets engine API for
//! PostgreSQL (dynamic users with leases, root rotation). Started by
//! lockbox, never by hand.
//!
//! Modules: `backend` (paths, dynamic roles), `static_roles`, `connection`
//! (the stored connection), `root` (connecting as the root user;
//! crash-safe rotate-root with a write-ahead entry), `pg` (statements,
//! connecting per `sslmode`), `tls` (libpq's `sslmode` from the shared
//! `lockbox-pg-tls` crate, with the plugin's errors).

mod backend;
mod connection;
mod pg;
mod root;
mod static_roles;
mod tls;

#[cfg(test)]
mod pg_tests;

use lockbox_sdk::framework::PathBackend;
use lockbox_sdk::lease::SecretRequest;
use lockbox_sdk::{Backend, Error, Info, Mount, Request, Response, Storage, async_trait};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The path backend, with statement fields normalized first (see
/// [`backend::normalize_statements`]), and each mount's static-role
/// rotation task (started at Initialize, stopped at Cleanup).
struct Database {
    paths: PathBackend,
    rotations: Mutex<HashMap<String, JoinHandle<()>>>,
}

#[async_trait]
impl Backend for Database {
    fn info(&self) -> Info {
        self.paths.info()
    }

    async fn initialize(&self, mount: &Mount, storage: &Storage) -> Result<(), Error> {
        let task = static_roles::spawn_rotation(storage.clone());
        let old = self
            .rotations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(mount.id.clone(), task);
        if let Some(old) = old {
            old.abort();
        }
        Ok(())
    }

    async fn cleanup(&self, mount: &Mount) {
        let task = self
            .rotations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&mount.id);
        if let Some(task) = task {
            task.abort();
        }
    }

    async fn handle_request(
        &self,
        mut req: Request,
        storage: Storage,
    ) -> Result<Option<Response>, Error> {
        backend::normalize_statements(&mut req.data);
        self.paths.handle_request(req, storage).await
    }

    async fn existence_check(&self, req: Request, storage: Storage) -> Result<Option<bool>, Error> {
        self.paths.existence_check(req, storage).await
    }

    async fn renew_secret(&self, req: SecretRequest, storage: Storage) -> Result<Duration, Error> {
        self.paths.renew_secret(req, storage).await
    }

    async fn revoke_secret(&self, req: SecretRequest, storage: Storage) -> Result<(), Error> {
        self.paths.revoke_secret(req, storage).await
    }
}

fn main() -> std::process::ExitCode {
    lockbox_sdk::serve(Database {
        paths: backend::backend(),
        rotations: Mutex::new(HashMap::new()),
    })
}
