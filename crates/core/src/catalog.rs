//! The plugin catalog: which executables may run as plugins, pinned by
//! sha256, stored in the barrier under `core/plugin-catalog/`.
//!
//! An entry is keyed by (type, name, version); the version may be empty (an
//! unversioned registration, as in the seed walkthrough). Registering the
//! same key again replaces the entry but does not touch running mounts until
//! a reload.
//!
//! `command` must name a regular file inside `plugin_directory`: no absolute
//! paths, no `..`, and no symlink that resolves outside the directory. An
//! entry with an OCI source ([`OciSource`]) instead runs the binary of that
//! sha256 from the plugin cache (the plugin host's `images`), and its `command` is the
//! path of the binary inside the image.

use crate::barrier::Barrier;
use crate::logical::RequestError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

const PREFIX: &str = "core/plugin-catalog/";

/// The kinds of plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum PluginType {
    /// Secrets engines.
    Secret,
    /// Auth methods.
    Auth,
}

impl PluginType {
    /// Parses `secret`/`auth` (and Vault's `database`, which is refused).
    pub fn parse(s: &str) -> Result<Self, RequestError> {
        match s {
            "secret" => Ok(PluginType::Secret),
            "auth" => Ok(PluginType::Auth),
            other => Err(RequestError::invalid(format!(
                "unknown plugin type {other:?}; lockbox supports \"secret\" and \"auth\""
            ))),
        }
    }

    /// `secret` or `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginType::Secret => "secret",
            PluginType::Auth => "auth",
        }
    }
}

/// One registered plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Catalog name (what `secrets enable NAME` uses).
    pub name: String,
    /// Secret or auth.
    #[serde(rename = "type")]
    pub kind: PluginType,
    /// Version; empty for an unversioned registration.
    pub version: String,
    /// File name relative to `plugin_directory`.
    pub command: String,
    /// Arguments passed to the plugin.
    pub args: Vec<String>,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// Lower-case hex sha256 of the executable.
    pub sha256: String,
    /// One process for all mounts (default) or one per mount.
    pub multiplexing: bool,
    /// Set when the binary comes from an OCI image: then `command` is the
    /// path of the binary inside the image and the binary lives in the
    /// plugin cache under its sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciSource>,
}

/// Where an image-sourced plugin binary came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OciSource {
    /// The image reference as registered (`registry/repo@sha256:...`, or a
    /// tag when the binary's sha256 is pinned).
    pub image: String,
    /// `sha256:<hex>` of the manifest the binary was taken from.
    pub manifest_digest: String,
}

impl CatalogEntry {
    /// The JSON shape of `GET sys/plugins/catalog/:type/:name`.
    pub fn to_api(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("version".into(), json!(self.version));
        m.insert("command".into(), json!(self.command));
        m.insert("args".into(), json!(self.args));
        m.insert("sha256".into(), json!(self.sha256));
        m.insert("builtin".into(), json!(false));
        m.insert("deprecation_status".into(), json!(""));
        m.insert("multiplexing".into(), json!(self.multiplexing));
        m.insert(
            "oci_image".into(),
            json!(self.oci.as_ref().map(|o| o.image.as_str()).unwrap_or("")),
        );
        if let Some(o) = &self.oci {
            m.insert("oci_manifest_digest".into(), json!(o.manifest_digest));
        }
        m
    }
}

/// Why a plugin cannot start or be registered without a plugin directory
/// (the plugin host's `PluginError::NoPluginDirectory` says the same).
pub const NO_PLUGIN_DIRECTORY: &str = "plugin_directory is not set: external plugins are disabled; set plugin_directory in the config file (or use --dev-plugin-dir)";

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex sha256 of a file, read in 64 KiB steps (never whole in memory).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// [`sha256_file`] on the blocking pool.
pub async fn sha256_file_async(path: &Path) -> std::io::Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_file(&path))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// Checks a plugin name: letters, digits, `-`, `_`, `.`.
pub fn validate_name(name: &str) -> Result<(), RequestError> {
    if name.is_empty() {
        return Err(RequestError::invalid("plugin name is empty"));
    }
    if crate::core::mounts::SINGLETON_TYPES.contains(&name) {
        return Err(RequestError::invalid(format!(
            "plugin name {name:?} is reserved for a built-in mount; choose another name"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(RequestError::invalid(format!(
            "invalid plugin name {name:?}: character {c:?} is not allowed"
        )));
    }
    Ok(())
}

/// Parses a hex sha256.
pub fn parse_sha256(s: &str) -> Result<String, RequestError> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(RequestError::invalid(format!(
            "sha256 must be 64 hex characters (the output of `sha256sum FILE`), got {:?}",
            s
        )));
    }
    Ok(s)
}

/// Resolves `command` inside `dir`, refusing anything that escapes it.
pub fn resolve_command(dir: &Path, command: &str) -> Result<PathBuf, RequestError> {
    let rel = Path::new(command);
    if command.is_empty() {
        return Err(RequestError::invalid(
            "command is empty: name the plugin file inside plugin_directory",
        ));
    }
    if rel.is_absolute() {
        return Err(RequestError::invalid(format!(
            "command {command:?} must be a file name relative to plugin_directory, not an absolute path"
        )));
    }
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(RequestError::invalid(format!(
            "command {command:?} may not contain `..` or `.` components"
        )));
    }
    let dir = dir.canonicalize().map_err(|e| {
        RequestError::invalid(format!(
            "plugin_directory {} is not usable: {e}",
            dir.display()
        ))
    })?;
    let full = dir.join(rel);
    let resolved = full.canonicalize().map_err(|e| {
        RequestError::invalid(format!(
            "plugin command {command:?} not found in plugin_directory {}: {e}",
            dir.display()
        ))
    })?;
    if !resolved.starts_with(&dir) {
        return Err(RequestError::invalid(format!(
            "command {command:?} resolves to {} which is outside plugin_directory {}",
            resolved.display(),
            dir.display()
        )));
    }
    if !resolved.is_file() {
        return Err(RequestError::invalid(format!(
            "command {command:?} is not a regular file"
        )));
    }
    Ok(resolved)
}

fn key(kind: PluginType, name: &str, version: &str) -> String {
    format!(
        "{PREFIX}{}/{name}/{}",
        kind.as_str(),
        if version.is_empty() { "_" } else { version }
    )
}

/// The catalog, stored in the barrier.
pub struct Catalog<'a> {
    barrier: &'a Barrier,
}

impl<'a> Catalog<'a> {
    /// A catalog over the barrier.
    pub fn new(barrier: &'a Barrier) -> Self {
        Self { barrier }
    }

    /// Stores an entry.
    pub async fn put(&self, entry: &CatalogEntry) -> Result<(), RequestError> {
        let raw = serde_json::to_vec(entry).map_err(|e| RequestError::Internal(e.to_string()))?;
        self.barrier
            .put(&key(entry.kind, &entry.name, &entry.version), &raw)
            .await?;
        Ok(())
    }

    /// Reads one entry.
    pub async fn get(
        &self,
        kind: PluginType,
        name: &str,
        version: &str,
    ) -> Result<Option<CatalogEntry>, RequestError> {
        match self.barrier.get(&key(kind, name, version)).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
                RequestError::Internal(format!("catalog entry {name} is corrupt: {e}"))
            }),
        }
    }

    /// Deletes one entry.
    pub async fn delete(
        &self,
        kind: PluginType,
        name: &str,
        version: &str,
    ) -> Result<(), RequestError> {
        self.barrier.delete(&key(kind, name, version)).await?;
        Ok(())
    }

    /// All versions registered under a name.
    pub async fn versions(
        &self,
        kind: PluginType,
        name: &str,
    ) -> Result<Vec<CatalogEntry>, RequestError> {
        let mut out = Vec::new();
        for v in self
            .barrier
            .list(&format!("{PREFIX}{}/{name}/", kind.as_str()))
            .await?
        {
            let version = if v == "_" { "" } else { v.as_str() };
            if let Some(e) = self.get(kind, name, version).await? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Every entry of a type.
    pub async fn list(&self, kind: PluginType) -> Result<Vec<CatalogEntry>, RequestError> {
        let mut out = Vec::new();
        for name in self
            .barrier
            .list(&format!("{PREFIX}{}/", kind.as_str()))
            .await?
        {
            out.extend(self.versions(kind, name.trim_end_matches('/')).await?);
        }
        Ok(out)
    }

    /// The entry a mount should run: the pinned version if given, else the
    /// unversioned registration, else the highest version.
    pub async fn resolve(
        &self,
        kind: PluginType,
        name: &str,
        version: &str,
    ) -> Result<Option<CatalogEntry>, RequestError> {
        if !version.is_empty() {
            return self.get(kind, name, version).await;
        }
        let mut all = self.versions(kind, name).await?;
        if let Some(i) = all.iter().position(|e| e.version.is_empty()) {
            return Ok(Some(all.swap_remove(i)));
        }
        all.sort_by(|a, b| compare_versions(&a.version, &b.version));
        Ok(all.pop())
    }
}

/// Orders `v1.2.10` after `v1.2.9`: numeric components compared as numbers.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string()))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_must_stay_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok"), b"x").unwrap();
        std::fs::write(outside.path().join("evil"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("evil"), dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(resolve_command(dir.path(), "ok").is_ok());
        for bad in ["/bin/sh", "../x", "./ok", "link", "sub", "missing", ""] {
            let e = resolve_command(dir.path(), bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}: {e}");
        }
        let e = resolve_command(dir.path(), "link").unwrap_err();
        assert!(e.to_string().contains("outside plugin_directory"), "{e}");
    }

    #[test]
    fn sha_and_names() {
        assert!(parse_sha256(&"a".repeat(64)).is_ok());
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
        assert!(validate_name("my-mock_plugin.v2").is_ok());
        assert!(validate_name("a/b").is_err());
    }

    #[test]
    fn version_order() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("v1.2.10", "v1.2.9"), Greater);
        assert_eq!(compare_versions("v2.0.0", "v10.0.0"), Less);
    }
}
