//! The host side of Vault's external plugin protocol, version 5: what lets
//! lockbox run unmodified plugins built with Vault's or OpenBao's Go SDK,
//! beside plugins of its own protocol, in the same process groups,
//! supervision and sandbox (`crate::process::launch` starts both and tells
//! them apart at the handshake).
//!
//! | part | owns |
//! |---|---|
//! | [`tls`] | AutoMTLS: ephemeral P-521 certificates, pinned both ways, aws-lc-rs |
//! | [`conn`] | the connection to one process: health, multiplexing, the broker stream, per-mount broker sockets, `Setup`, `Cleanup`, `Shutdown` |
//! | [`services`] | what the host serves a mount on its broker socket: `Storage` (the mount's view only), `SystemView`, `Events`/`Observations` (dropped) |
//! | [`convert`] | the core's requests and responses ⇄ `pb.Request`/`pb.Response`, Vault's error statuses |

pub mod conn;
pub mod convert;
pub mod services;
pub mod tls;

pub use conn::{MountMeta, VaultConn};
