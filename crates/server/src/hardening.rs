//! Hardening of the server process itself against processes of the same
//! user, plugins first among them.
//!
//! [`harden_process`], called by `main` before anything else runs:
//!
//! * sets `PR_SET_DUMPABLE` to 0: `/proc/<pid>/environ`, `/proc/<pid>/mem`,
//!   `/proc/<pid>/fd` and `ptrace` of the server need `CAP_SYS_PTRACE`
//!   from then on, which plugins never have (`plugin::sandbox` drops every
//!   capability); no core dumps either;
//! * takes the secrets lockbox reads from its environment ([`SECRET_ENV`])
//!   out of it: the value is kept in memory for [`secret_env`], the bytes
//!   of the original environment block (what `/proc/<pid>/environ` shows)
//!   are overwritten with zeros, and the variable is removed, so nothing
//!   started later inherits it either.

use std::collections::HashMap;
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// Environment variables that hold secrets: unseal keys, dev root tokens,
/// the PostgreSQL storage's connection URL (with its password).
pub const SECRET_ENV: &[&str] = &[
    "LOCKBOX_UNSEAL_KEYS",
    "LOCKBOX_PG_CONNECTION_URL",
    "VAULT_PG_CONNECTION_URL",
    "LOCKBOX_DEV_ROOT_TOKEN_ID",
    "VAULT_DEV_ROOT_TOKEN_ID",
];

static TAKEN: OnceLock<HashMap<&'static str, Zeroizing<String>>> = OnceLock::new();

/// Why the process could not be hardened.
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("cannot make the server process non-dumpable (prctl PR_SET_DUMPABLE): {0}")]
    Dumpable(#[source] std::io::Error),
}

/// Makes the process non-dumpable and moves [`SECRET_ENV`] out of the
/// environment (see the module documentation).
///
/// # Safety
///
/// Must be called while the process has a single thread (first thing in
/// `main`): it changes the environment, which other threads may be
/// reading (the reason `std::env::remove_var` is unsafe).
pub unsafe fn harden_process() -> Result<(), HardeningError> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError::Dumpable(e.into()))?;
    let mut taken = HashMap::new();
    for &name in SECRET_ENV {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        if let Ok(value) = value.into_string() {
            taken.insert(name, Zeroizing::new(value));
        }
        // SAFETY: single-threaded (the caller's contract).
        unsafe {
            scrub_original(name);
            std::env::remove_var(name);
        }
    }
    let _ = TAKEN.set(taken);
    Ok(())
}

/// Overwrites the value of `name` where the C library keeps it (for a
/// variable given at exec, the process's original environment block) with
/// zeros.
///
/// # Safety
///
/// Single-threaded; no reference to the environment may be alive.
unsafe fn scrub_original(name: &str) {
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: getenv returns null or a pointer to a NUL-terminated value
    // inside the environment, which is writable memory the C library owns
    // and nothing reads concurrently (single-threaded).
    unsafe {
        let value = libc::getenv(c_name.as_ptr());
        if value.is_null() {
            return;
        }
        let len = libc::strlen(value);
        for i in 0..len {
            std::ptr::write_volatile(value.add(i), 0);
        }
    }
}

/// A variable of the environment as the server started with it: the value
/// [`harden_process`] took out for a [`SECRET_ENV`] name, the current
/// environment otherwise (and when the process was not hardened, as in
/// tests that run the server in-process).
pub fn secret_env(name: &str) -> Option<String> {
    if let Some(v) = TAKEN.get().and_then(|t| t.get(name)) {
        return Some(v.to_string());
    }
    std::env::var(name).ok()
}
