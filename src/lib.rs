//! lockbox: a Kubernetes-native secrets server with Vault's plugin model.
//!
//! The binary is a thin shell over this library (`src/main.rs`); tests drive
//! the same code. See `ARCHITECTURE.md` for the map of modules.

pub mod barrier;
pub mod builtin;
pub mod config;
pub mod core;
pub mod hardening;
pub mod http;
pub mod logical;
pub mod oci;
pub mod operator;
pub mod plugin;
pub mod policy;
pub mod server;
pub mod storage;
