//! The wire contract of Vault's external plugin protocol, version 5: what a
//! plugin host (Vault 1.12+, OpenBao 2.x, lockbox) and a plugin built with
//! Vault's or OpenBao's Go SDK exchange.
//!
//! ```text
//!  host                                   plugin process
//!  ────                                   ──────────────
//!  exec with env (handshake::HostEnv)  ─▶ listens on a socket, prints
//!  handshake::HandshakeLine::parse     ◀─ 1|5|unix|<socket>|grpc|<cert>
//!  mutual TLS (each side's own cert, peer's as the only root, "localhost")
//!  gRPC client of ────────────────────▶  pb.Backend, logical.PluginVersion,
//!                                        pluginutil.multiplexing.PluginMultiplexing,
//!                                        plugin.GRPCBroker / GRPCController /
//!                                        GRPCStdio, grpc.health.v1 ("plugin")
//!  gRPC server of (per Setup broker id) ◀─ pb.Storage, pb.SystemView,
//!                                        pb.Events, pb.Observations
//! ```
//!
//! The `.proto` files under `proto/` are lockbox's own, written from the
//! public wire facts; package, service, method and message names, field
//! numbers and types are the wire's (README.md lists the upstream versions
//! they were checked against). The generated Rust is committed under
//! `src/generated/`; `tests/fresh.rs` fails when it is stale (regenerate
//! with `cargo run -p lockbox-vault-plugin-proto --example generate`).
//!
//! This crate does no I/O: [`handshake`] holds the handshake facts and the
//! parser of the handshake line, [`services`] the wire names, and `tls`
//! (feature `tls`) the AutoMTLS certificates and rustls configurations both
//! ends use (the host in `lockbox-plugin-host`, plugins in `lockbox-sdk`).

#![allow(missing_docs)]

/// Vault's backend protocol: `pb.Backend` (served by the plugin), `pb.Storage`,
/// `pb.SystemView`, `pb.Events`, `pb.Observations` (served by the host over
/// the broker) and their messages.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic)]
#[path = "generated/pb.rs"]
pub mod pb;

/// Identity, environment and event messages, and the `logical.PluginVersion`
/// service.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic)]
#[path = "generated/logical.rs"]
pub mod logical;

/// go-plugin's own services: `plugin.GRPCBroker`, `plugin.GRPCController`,
/// `plugin.GRPCStdio`.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic)]
#[path = "generated/plugin.rs"]
pub mod plugin;

/// The multiplexing probe (`pluginutil.multiplexing`).
pub mod pluginutil;

pub mod handshake;
pub mod services;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
pub mod unix_tls;
