//! Integration tests: the real server, over real HTTP, on 127.0.0.1:0.
//!
//! One test binary with a module per area (ripgrep's layout), so the server
//! library is linked once.

mod acl_names;
mod audit;
mod bao;
mod chaos;
mod cli;
mod common;
mod compat;
mod database;
mod ha;
mod http_api;
mod kv_v2;
mod leases;
mod listener;
mod oci;
mod persistence;
mod plugin_failures;
mod plugin_isolation;
mod plugins;
mod policies;
mod postgres_storage;
mod process;
mod sdk_under_bao;
mod server_config;
mod tokens;
mod vault_plugin_edges;
mod vault_plugins;
mod walkthrough;
