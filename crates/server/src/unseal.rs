//! Auto-unseal: submitting the keys a server was given (`unseal_keys_file`,
//! `LOCKBOX_UNSEAL_KEYS`) at start, and again by an HA node that sealed
//! itself while its database was gone.

use crate::args::ServerError;
use lockbox_core::core::Core;
use std::path::Path;

/// The keys of an `unseal_keys_file`: one per line (any whitespace).
pub(crate) fn keys_from_file(path: &Path) -> Result<Vec<String>, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServerError::UnsealKeys {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Auto-unseal with the given keys when the core is initialized and sealed.
pub async fn auto_unseal(core: &Core, keys: &[String]) -> Result<bool, ServerError> {
    if keys.is_empty() || !core.is_initialized().await? || !core.is_sealed() {
        return Ok(!core.is_sealed());
    }
    for key in keys {
        let raw = lockbox_core::core::decode_key(key)?;
        if core.submit_unseal_key(&raw).await? {
            tracing::info!("auto-unsealed with {} key(s)", keys.len());
            return Ok(true);
        }
    }
    Ok(false)
}
