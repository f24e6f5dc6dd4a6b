//! Setup: the plugin directories, catalog entries and mounts of both hosts,
//! and the keys the reads cycle through.

use super::*;
use crate::lockbox::{get_json, post, put};

pub(super) fn v2_key_path(i: usize) -> String {
    format!("/v1/{KV_MOUNT}/data/bench/key-{i}")
}

pub(super) fn mock_key_path(i: usize) -> String {
    format!("/v1/{MOCK_UNCACHED_NAME}/bench/key-{i}")
}

/// The `running_sha256` a host reports for a mount (both hosts report it).
pub(super) async fn running_sha256(ep: &Endpoint, mount: &str) -> Result<Option<String>> {
    let json = get_json(ep, &format!("/v1/sys/mounts/{mount}")).await?;
    Ok(json
        .pointer("/data/running_sha256")
        .or_else(|| json.get("running_sha256"))
        .and_then(|v| v.as_str())
        .map(str::to_string))
}

/// lockbox: `kv` (by sha256) mounted as kv v2 at `kvx/`, `kv-cold`, and the
/// uncached mock at `mock-uncached/`.
pub(super) async fn setup_lockbox(ep: &Endpoint, kv_sha: &str, mock_sha: &str) -> Result<()> {
    let entry = serde_json::json!({ "sha256": kv_sha, "command": KV_FILE });
    put(
        ep,
        &format!("/v1/sys/plugins/catalog/secret/{LOCKBOX_KV_NAME}"),
        entry.clone(),
    )
    .await?;
    put(
        ep,
        &format!("/v1/sys/plugins/catalog/secret/{COLD_NAME}"),
        entry,
    )
    .await?;
    post(
        ep,
        &format!("/v1/sys/mounts/{KV_MOUNT}"),
        serde_json::json!({ "type": "kv", "options": { "version": "2" } }),
    )
    .await?;
    put(
        ep,
        &format!("/v1/sys/plugins/catalog/secret/{MOCK_UNCACHED_NAME}"),
        serde_json::json!({
            "sha256": mock_sha,
            "command": MOCK_FILE,
            "env": ["MOCK_PLUGIN_NO_CACHE=1"],
        }),
    )
    .await?;
    post(
        ep,
        &format!("/v1/sys/mounts/{MOCK_UNCACHED_NAME}"),
        serde_json::json!({ "type": MOCK_UNCACHED_NAME }),
    )
    .await
}

/// OpenBao: `kv-upstream` (by sha256) enabled at `kvx/` and tuned to
/// `options.version=2` (OpenBao refuses `options.version` when enabling a
/// type other than its built-in `kv`, and refuses an external plugin named
/// `kv`; the tune reloads the mount in kv v2 mode), and `kv-cold`.
pub(super) async fn setup_bao(ep: &Endpoint, kv_sha: &str) -> Result<()> {
    let entry = serde_json::json!({ "sha256": kv_sha, "command": KV_FILE });
    put(
        ep,
        &format!("/v1/sys/plugins/catalog/secret/{BAO_KV_NAME}"),
        entry.clone(),
    )
    .await?;
    put(
        ep,
        &format!("/v1/sys/plugins/catalog/secret/{COLD_NAME}"),
        entry,
    )
    .await?;
    post(
        ep,
        &format!("/v1/sys/mounts/{KV_MOUNT}"),
        serde_json::json!({ "type": BAO_KV_NAME }),
    )
    .await?;
    post(
        ep,
        &format!("/v1/sys/mounts/{KV_MOUNT}/tune"),
        serde_json::json!({ "options": { "version": "2" } }),
    )
    .await?;
    // The tune restarts the mount in kv v2 mode; wait until it serves a v2 path.
    let mut conn = Conn::connect(ep).await?;
    first_served(&mut conn, ep, &format!("/v1/{KV_MOUNT}/config"), &[200]).await?;
    Ok(())
}

pub(crate) fn copy_into(src: &Path, dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file("creating", dir, e))?;
    let dst = dir.join(name);
    std::fs::copy(src, &dst).map_err(|e| Error::file("copying", src, e))?;
    let sha = crate::plugins::cold_start::sha256_hex(&read_file(&dst)?);
    Ok((dst, sha))
}
