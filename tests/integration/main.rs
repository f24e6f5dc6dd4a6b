//! Integration tests: the real server, over real HTTP, on 127.0.0.1:0.
//!
//! One test binary with a module per area (ripgrep's layout), so the server
//! library is linked once.

mod acl_names;
mod bao;
mod chaos;
mod cli;
mod common;
mod compat;
mod http_api;
mod listener;
mod oci;
mod persistence;
mod plugin_failures;
mod plugin_isolation;
mod plugins;
mod policies;
mod process;
mod server_config;
mod tokens;
mod vault_plugins;
mod walkthrough;
