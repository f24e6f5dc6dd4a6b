//! `lockbox-sdk`: write lockbox plugins (secrets engines and auth methods)
//! in Rust.
//!
//! A plugin is an executable the lockbox host starts, verifies and talks to
//! over gRPC on Unix sockets (see `docs/plugin-protocol.md`). The same
//! binary also runs under Vault 1.12+ and OpenBao 2.x, which start it with
//! Vault's plugin protocol 5 ([`vault`]; README: "Running under Vault or
//! OpenBao"). This crate does
//! the whole plugin side of that protocol; a plugin only describes its paths:
//!
//! ```no_run
//! use lockbox_sdk::framework::{Field, Path, PathBackend};
//! use lockbox_sdk::{Kind, Response};
//!
//! fn main() -> std::process::ExitCode {
//!     let backend = PathBackend::new(Kind::Secret, "v0.1.0").path(
//!         Path::new("hello/{name}").read(|_req, fields, _storage| async move {
//!             let name = fields.str("name").unwrap_or_default().to_string();
//!             Ok(Some(Response::json(serde_json::json!({ "greeting": format!("hello {name}") }))))
//!         }),
//!     );
//!     lockbox_sdk::serve(backend)
//! }
//! ```
//!
//! ## Layers
//!
//! ```text
//!  serve / serve_with / run      serve.rs     env + cookie, handshake line, socket, health, SIGTERM
//!        │  (Vault's cookie only:      vault/       Vault protocol 5: AutoMTLS, go-plugin broker,
//!        │   vault::run)                            pb.Backend per multiplex_id, Storage over the broker)
//!  PluginService (gRPC Backend)  service.rs   mount_id → (Mount, Backend); wire ⇄ Request/Response
//!        │                                    errors → ResponseError replies; handler panics → 500
//!  Backend / Factory traits      logical.rs   Request, Response, Auth, Mount, Info
//!        │
//!  PathBackend (optional)        framework/   patterns, typed fields, per-operation handlers, help
//!        │
//!  Storage (per mount)           storage.rs   host Storage service over gRPC, or memory in tests
//! ```
//!
//! [`harness::Harness`] runs a backend through the same service in-process,
//! with in-memory storage, for unit tests.
//!
//! ## Errors
//!
//! One enum per layer: [`Error`] (a request failed; maps to an HTTP status),
//! [`StorageError`] (a storage call failed), [`ServeError`] (the process
//! could not start or serve), [`framework::PatternError`] (a bad path
//! pattern, a bug in the plugin).

#![warn(missing_docs)]

pub mod error;
pub mod framework;
pub mod harness;
pub mod lease;
mod lifecycle;
pub mod logical;
pub mod mount;
mod routes;
pub mod serve;
mod service;
pub mod storage;
pub mod vault;

pub use error::{Error, ServeError, StorageError};
pub use lease::{SecretLease, SecretRequest};
pub use logical::{
    Auth, Backend, Factory, Info, Kind, Mount, Operation, Request, Response, Shared,
};
pub use serve::{HostProtocol, PluginEnv, run, serve, serve_with};
pub use storage::Storage;

/// Re-exported so plugins can implement [`Backend`] and [`Factory`]
/// without depending on `async-trait` themselves.
pub use async_trait::async_trait;
