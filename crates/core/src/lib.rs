//! lockbox's secrets core: everything between the API and the physical
//! storage, with no Kubernetes, gRPC, process or HTTP-server code.
//!
//! ```text
//!   Core::handle ──▶ sealed? ──▶ route ──▶ token ──▶ ACL ──▶ handler
//!        │                                                   │
//!        │     sys/ (core::sys) · auth/token/ (core::tokens) · engines (logical::Backend)
//!        ▼                                                   │
//!   barrier (AES-256-GCM) ──▶ lockbox_storage::Physical      ▼
//!                               plugin mounts: runtime::PluginRuntime (implemented above)
//! ```
//!
//! * [`barrier`]: keyring, encryption, Shamir, prefix-scoped views.
//! * [`policy`]: HCL/JSON policies and ACL matching (pure).
//! * [`logical`]: the engine interface (`Request`, `Response`, `Backend`).
//! * [`builtin`]: the kv engine.
//! * [`core`]: the `Core` (seal lifecycle, request pipeline, mounts, tokens,
//!   policies, the system backend, the typed admin API `core::admin`).
//! * [`catalog`]: the plugin catalog (pure rules + barrier storage).
//! * [`runtime`]: the traits the plugin host implements for the core.
//! * [`json`]: the shape check run before parsing untrusted JSON.
//! * [`hcl`]: the nesting check run before parsing untrusted HCL.
//!
//! See `ARCHITECTURE.md` for the map of crates and the layering rule.

pub mod barrier;
pub mod builtin;
pub mod catalog;
pub mod core;
pub mod hcl;
pub mod json;
pub mod logical;
pub mod policy;
pub mod runtime;
