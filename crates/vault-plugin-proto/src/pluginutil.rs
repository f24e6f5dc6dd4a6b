//! Vault's plugin utilities package; on the wire only its multiplexing
//! probe.

/// `pluginutil.multiplexing.PluginMultiplexing`.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic)]
#[path = "generated/pluginutil.multiplexing.rs"]
pub mod multiplexing;
