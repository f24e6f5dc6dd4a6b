//! Setup: the plugin directories, catalog entries and mounts of both hosts,
//! and the keys the reads cycle through.

use super::*;

pub(super) fn v2_key_path(i: usize) -> String {
    format!("/v1/{KV_MOUNT}/data/bench/key-{i}")
}

pub(super) fn mock_key_path(i: usize) -> String {
    format!("/v1/{MOCK_UNCACHED_NAME}/bench/key-{i}")
}

/// Writes keys `0..n` to the kv v2 mount (`{"data":{"value":...}}`), then reads
/// key 0 back and checks `data.data.value`.
pub(super) async fn seed_v2(ep: &Endpoint, n: usize, value: &str) -> Result<()> {
    let body = Bytes::from(serde_json::json!({ "data": { "value": value } }).to_string());
    let workers = n.clamp(1, 8);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let ep = ep.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await?;
            for i in (w..n).step_by(workers) {
                conn.expect(&ep, Method::PUT, &v2_key_path(i), body.clone(), &[200, 204])
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Worker(e.to_string()))??;
    }
    let path = v2_key_path(0);
    let got = Conn::connect(ep)
        .await?
        .expect(ep, Method::GET, &path, Bytes::new(), &[200])
        .await?;
    let json: serde_json::Value =
        serde_json::from_slice(&got).map_err(|e| Error::UnexpectedBody {
            what: format!("GET {path}"),
            reason: format!("not JSON: {e}"),
        })?;
    if json.pointer("/data/data/value").and_then(|v| v.as_str()) == Some(value) {
        Ok(())
    } else {
        Err(Error::UnexpectedBody {
            what: format!("GET {path}"),
            reason: "data.data.value is not what was written (is the mount kv version 2?)".into(),
        })
    }
}

pub(crate) async fn put(ep: &Endpoint, path: &str, body: serde_json::Value) -> Result<()> {
    Conn::connect(ep)
        .await?
        .expect(
            ep,
            Method::PUT,
            path,
            Bytes::from(body.to_string()),
            &[200, 204],
        )
        .await
        .map(drop)
}

pub(crate) async fn post(ep: &Endpoint, path: &str, body: serde_json::Value) -> Result<()> {
    Conn::connect(ep)
        .await?
        .expect(
            ep,
            Method::POST,
            path,
            Bytes::from(body.to_string()),
            &[200, 204],
        )
        .await
        .map(drop)
}

/// `GET path` on a new connection: the JSON body of a 200 answer.
pub(crate) async fn get_json(ep: &Endpoint, path: &str) -> Result<serde_json::Value> {
    let body = Conn::connect(ep)
        .await?
        .expect(ep, Method::GET, path, Bytes::new(), &[200])
        .await?;
    serde_json::from_slice(&body).map_err(|e| Error::UnexpectedBody {
        what: format!("GET {path}"),
        reason: format!("not JSON: {e}"),
    })
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
