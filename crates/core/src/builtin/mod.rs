//! Secrets engines compiled into lockbox.

pub mod kv;
