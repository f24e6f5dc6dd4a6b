//! The wire contract between the lockbox host and its plugins:
//! `lockbox.plugin.v1` (see `proto/` and `docs/plugin-protocol.md`).
//!
//! This crate holds only generated code and handshake constants, so host and
//! plugins (and plugins in other languages) share one definition. The
//! generated Rust is committed; `tests/fresh.rs` fails when it is stale.

#![allow(missing_docs)]

#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic)]
#[path = "generated/lockbox.plugin.v1.rs"]
pub mod v1;

/// Environment variable carrying the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "LOCKBOX_PLUGIN_MAGIC_COOKIE";
/// The magic cookie's value.
pub const MAGIC_COOKIE_VALUE: &str = "a1d6e3b4-7c52-4d0e-9b8f-lockbox-plugin";
/// Comma-separated app protocol versions the host accepts.
pub const PROTOCOL_VERSIONS_KEY: &str = "LOCKBOX_PLUGIN_PROTOCOL_VERSIONS";
/// The private directory where the plugin creates its socket.
pub const SOCKET_DIR_KEY: &str = "LOCKBOX_PLUGIN_SOCKET_DIR";
/// The host's storage socket for this process.
pub const HOST_SOCKET_KEY: &str = "LOCKBOX_PLUGIN_HOST_SOCKET";
/// The per-launch secret the plugin presents to the host's storage service.
pub const HOST_TOKEN_KEY: &str = "LOCKBOX_PLUGIN_HOST_TOKEN";
/// The gRPC metadata key carrying [`HOST_TOKEN_KEY`]'s value on every
/// host `Storage` call.
pub const HOST_TOKEN_METADATA: &str = "lockbox-host-token";
/// The plugin's catalog name.
pub const NAME_KEY: &str = "LOCKBOX_PLUGIN_NAME";
/// The plugin's catalog version.
pub const VERSION_KEY: &str = "LOCKBOX_PLUGIN_VERSION";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The app protocol version this crate describes.
pub const APP_PROTOCOL_VERSION: u32 = 1;
/// The largest gRPC message either side accepts or sends (requests from the
/// host, storage values). The host bounds request bodies itself
/// (`max_request_size`, 32 MiB by default); tonic's default of 4 MiB would
/// refuse big-but-legal writes.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
