//! Plugin images in the server: turning a catalog entry's `oci_image` into a
//! verified binary in the content-addressed cache, so the ordinary
//! verify-before-exec path ([`crate::process`]) runs it.
//!
//! This module owns the server's side of OCI: the settings (cache
//! directory, insecure registries, size limits, the registry auth file),
//! the barrier-stored index from (manifest digest, path) to binary sha256,
//! and the rules for when the network is needed. The registry protocol,
//! the image layout rules and the cache itself are the `lockbox-oci` crate
//! (`crates/oci/`), shared with `lockbox plugin push|pull`. The core reaches
//! this module through its [`ImageStore`] trait, with image references as
//! plain strings: it parses none of them.
//!
//! When is the registry contacted?
//! * registering a digest-pinned image whose (manifest, path) pair was
//!   pulled before and whose binary is still in the cache (and still hashes
//!   right): never; the index lives in the barrier, so it is encrypted and
//!   authenticated like the catalog itself;
//! * a tag-only reference (allowed only with the binary's sha256): always,
//!   to resolve the tag to the manifest digest that is recorded;
//! * starting a mount whose binary is missing from the cache (pruned,
//!   wiped): the pinned manifest digest is pulled again and must yield the
//!   same sha256.
//!
//! Registry credentials are never stored: they come from the
//! `registry_auth_file` (Docker config JSON, read at each pull) or, for the
//! operator, from pull secrets read from the Kubernetes API for each pull.

use async_trait::async_trait;
use lockbox_core::barrier::Barrier;
use lockbox_core::catalog::{Catalog, CatalogEntry, OciSource, PluginType};
use lockbox_core::runtime::{FetchedImage, ImageError, ImageSpec, ImageStore};
use lockbox_oci::{Cache, Credentials, ImageRef, OciError, PullOptions, Registry};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::PathBuf;

pub use lockbox_oci::cache::DEFAULT_CACHE_MAX_BYTES;
pub use lockbox_oci::{DEFAULT_MAX_SIZE, DEFAULT_PATH};

const INDEX_PREFIX: &str = "core/plugin-images/";

/// OCI settings of a core.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// `HOST:PORT` registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Largest image (sum of blobs) and binary, in bytes.
    pub max_size: u64,
    /// The cache is pruned of unused binaries beyond this many bytes.
    pub cache_max_bytes: u64,
    /// Docker config JSON with credentials for pulls without explicit ones.
    pub registry_auth_file: Option<PathBuf>,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            max_size: DEFAULT_MAX_SIZE,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            registry_auth_file: None,
        }
    }
}

/// A binary ready in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    /// Hex sha256 of the binary.
    pub sha256: String,
    /// Whether the registry was contacted.
    pub pulled: bool,
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The reference.
    pub image: ImageRef,
    /// Path of the binary inside the image.
    pub path: String,
    /// The binary's sha256, when pinned.
    pub sha256: Option<String>,
}

impl ImageRequest {
    /// Parses and checks the user's fields: a tag-only reference needs the
    /// binary's sha256; the path must stay inside the image.
    pub fn parse(image: &str, path: Option<&str>, sha256: Option<&str>) -> Result<Self, OciError> {
        let image = ImageRef::parse(image)?;
        let sha256 = sha256
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = s.to_ascii_lowercase();
                if lockbox_oci::is_sha256_hex(&s) {
                    Ok(s)
                } else {
                    Err(OciError::InvalidReference {
                        reference: image.as_given().to_string(),
                        message: format!(
                            "sha256 {s:?} must be 64 hex characters (the binary's `sha256sum`)"
                        ),
                    })
                }
            })
            .transpose()?;
        if !image.is_pinned() && sha256.is_none() {
            return Err(OciError::Unpinned {
                reference: image.as_given().to_string(),
            });
        }
        let path = path
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PATH);
        lockbox_oci::layout::normalize_path(path).map_err(|detail| OciError::UnsafePath {
            reference: image.as_given().to_string(),
            detail,
        })?;
        Ok(Self {
            image,
            path: path.to_string(),
            sha256,
        })
    }
}

/// The server's plugin-image service.
pub struct PluginImages {
    settings: ImageSettings,
    cache: Option<Cache>,
    registry: Result<Registry, String>,
}

fn index_key(manifest_digest: &str) -> String {
    format!(
        "{INDEX_PREFIX}{}",
        manifest_digest.trim_start_matches("sha256:")
    )
}

fn no_cache() -> OciError {
    OciError::io(
        "plugin_cache_directory",
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no plugin cache directory is configured; set plugin_cache_directory (or use file storage, whose directory holds the cache by default)",
        ),
    )
}

impl PluginImages {
    /// The service over a cache directory (`None`: image plugins are off).
    pub fn new(cache_dir: Option<PathBuf>, settings: ImageSettings) -> Self {
        let cache = cache_dir.map(|d| Cache::new(d, settings.cache_max_bytes));
        let registry = Registry::new(&settings.insecure_registries).map_err(|e| e.to_string());
        Self {
            settings,
            cache,
            registry,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ImageSettings {
        &self.settings
    }

    /// The cache, if configured.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    fn registry(&self) -> Result<&Registry, OciError> {
        self.registry.as_ref().map_err(|e| OciError::Registry {
            registry: String::new(),
            detail: e.clone(),
        })
    }

    /// Credentials for a registry from `registry_auth_file`, or anonymous.
    pub fn default_credentials(&self, registry: &str) -> Result<Credentials, OciError> {
        let Some(path) = &self.settings.registry_auth_file else {
            return Ok(Credentials::Anonymous);
        };
        let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| OciError::io(path, e))?);
        Ok(
            lockbox_oci::auth::from_docker_config(&raw, registry, &path.display().to_string())?
                .unwrap_or_default(),
        )
    }

    async fn index_get(
        &self,
        barrier: &Barrier,
        manifest_digest: &str,
        path: &str,
    ) -> Option<String> {
        let raw = barrier.get(&index_key(manifest_digest)).await.ok()??;
        let map: Map<String, Value> = serde_json::from_slice(&raw).ok()?;
        map.get(path)?.as_str().map(str::to_string)
    }

    async fn index_put(&self, barrier: &Barrier, manifest_digest: &str, path: &str, sha256: &str) {
        let key = index_key(manifest_digest);
        let mut map: Map<String, Value> = match barrier.get(&key).await {
            Ok(Some(raw)) => serde_json::from_slice(&raw).unwrap_or_default(),
            _ => Map::new(),
        };
        map.insert(path.to_string(), Value::String(sha256.to_string()));
        match serde_json::to_vec(&map) {
            Ok(raw) => {
                if let Err(e) = barrier.put(&key, &raw).await {
                    tracing::warn!("cannot record the pulled image in the index: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot encode the image index: {e}"),
        }
    }

    /// Makes the binary of `req` available in the cache, pulling only when
    /// needed (see the module docs). `creds`: explicit credentials (the
    /// operator's pull secrets); `None` uses `registry_auth_file`.
    pub async fn fetch(
        &self,
        barrier: &Barrier,
        req: &ImageRequest,
        creds: Option<&Credentials>,
    ) -> Result<Fetched, OciError> {
        let cache = self.cache.as_ref().ok_or_else(no_cache)?;
        if let Some(md) = req.image.digest()
            && let Some(sha) = self.index_get(barrier, md, &req.path).await
            && req.sha256.as_ref().is_none_or(|s| *s == sha)
            && cache.verify(&sha)?
        {
            tracing::debug!(image = %req.image, sha256 = %sha, "plugin image found in the cache");
            return Ok(Fetched {
                manifest_digest: md.to_string(),
                sha256: sha,
                pulled: false,
            });
        }
        let defaults;
        let creds = match creds {
            Some(c) => c,
            None => {
                defaults = self.default_credentials(req.image.registry())?;
                &defaults
            }
        };
        // A tag with the binary already cached: resolving the tag is enough
        // when that manifest is known to hold this binary.
        if !req.image.is_pinned()
            && let Some(sha) = &req.sha256
            && cache.verify(sha)?
        {
            let md = self.registry()?.resolve(&req.image, creds).await?;
            if self.index_get(barrier, &md, &req.path).await.as_ref() == Some(sha) {
                return Ok(Fetched {
                    manifest_digest: md,
                    sha256: sha.clone(),
                    pulled: false,
                });
            }
        }
        let opts = PullOptions {
            path: req.path.clone(),
            expected_sha256: req.sha256.clone(),
            max_size: self.settings.max_size,
        };
        let started = std::time::Instant::now();
        let pulled = self
            .registry()?
            .pull_binary(&req.image, creds, &opts, cache)
            .await?;
        tracing::info!(
            image = %req.image,
            manifest = %pulled.manifest_digest,
            sha256 = %pulled.sha256,
            bytes = pulled.size,
            millis = started.elapsed().as_millis() as u64,
            "plugin image pulled and verified"
        );
        self.index_put(barrier, &pulled.manifest_digest, &req.path, &pulled.sha256)
            .await;
        Ok(Fetched {
            manifest_digest: pulled.manifest_digest,
            sha256: pulled.sha256,
            pulled: true,
        })
    }

    /// Before a mount starts an image-sourced plugin: the binary must be in
    /// the cache and hash right; if it is gone, pull the recorded manifest
    /// digest again (it must yield the same sha256).
    pub async fn ensure(&self, barrier: &Barrier, entry: &CatalogEntry) -> Result<(), OciError> {
        let Some(oci) = &entry.oci else {
            return Ok(());
        };
        let cache = self.cache.as_ref().ok_or_else(no_cache)?;
        if cache.verify(&entry.sha256)? {
            return Ok(());
        }
        tracing::info!(plugin = %entry.name, image = %oci.image, "plugin binary not in the cache; pulling it again");
        let image = ImageRef::parse(&oci.image)?.at_digest(&oci.manifest_digest);
        let req = ImageRequest {
            image,
            path: entry.command.clone(),
            sha256: Some(entry.sha256.clone()),
        };
        self.fetch(barrier, &req, None).await.map(|_| ())
    }

    /// Prunes the cache beyond its limit, keeping every binary the catalog
    /// references and every running one.
    pub async fn prune(&self, barrier: &Barrier, running: impl IntoIterator<Item = String>) {
        let Some(cache) = &self.cache else { return };
        let mut keep: HashSet<String> = running.into_iter().collect();
        let cat = Catalog::new(barrier);
        for kind in [PluginType::Secret, PluginType::Auth] {
            match cat.list(kind).await {
                Ok(entries) => keep.extend(entries.into_iter().map(|e| e.sha256)),
                Err(e) => {
                    tracing::warn!("not pruning the plugin cache: cannot list the catalog: {e}");
                    return;
                }
            }
        }
        let cache = cache.clone();
        let result = tokio::task::spawn_blocking(move || cache.prune(&keep)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("pruning the plugin cache failed: {e}"),
            Err(e) => tracing::warn!("pruning the plugin cache failed: {e}"),
        }
    }
}

/// The catalog record of a fetched image.
pub fn source(req: &ImageRequest, fetched: &Fetched) -> OciSource {
    OciSource {
        image: req.image.as_given().to_string(),
        manifest_digest: fetched.manifest_digest.clone(),
    }
}

/// `reason: message` for API errors.
pub fn describe(e: &OciError) -> String {
    format!("{} ({})", e, e.reason())
}

/// The core's view of plugin images: references as the user gave them,
/// errors as the API shows them (`message (Reason)`).
#[async_trait]
impl ImageStore for PluginImages {
    async fn fetch(
        &self,
        barrier: &Barrier,
        image: ImageSpec<'_>,
    ) -> Result<FetchedImage, ImageError> {
        let req = ImageRequest::parse(image.image, image.path, image.sha256)
            .map_err(|e| ImageError::Invalid(describe(&e)))?;
        let fetched = PluginImages::fetch(self, barrier, &req, None)
            .await
            .map_err(|e| ImageError::Fetch(describe(&e)))?;
        Ok(FetchedImage {
            source: source(&req, &fetched),
            path: req.path,
            sha256: fetched.sha256,
        })
    }

    async fn ensure(&self, barrier: &Barrier, entry: &CatalogEntry) -> Result<(), String> {
        PluginImages::ensure(self, barrier, entry)
            .await
            .map_err(|e| describe(&e))
    }

    async fn prune(&self, barrier: &Barrier, running: Vec<String>) {
        PluginImages::prune(self, barrier, running).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_pinned_and_paths_checked() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRequest::parse(&format!("127.0.0.1:5000/x@{d}"), None, None).unwrap();
        assert_eq!(r.path, "/plugin");
        assert!(r.sha256.is_none());
        let e = ImageRequest::parse("127.0.0.1:5000/x:v1", None, None).unwrap_err();
        assert_eq!(e.reason(), "UnpinnedReference");
        let sha = "B".repeat(64);
        let r = ImageRequest::parse("127.0.0.1:5000/x:v1", Some("/bin/p"), Some(&sha)).unwrap();
        assert_eq!(r.sha256.as_deref(), Some("b".repeat(64).as_str()));
        assert_eq!(r.path, "/bin/p");
        let e = ImageRequest::parse("127.0.0.1:5000/x:v1", None, Some("abc")).unwrap_err();
        assert_eq!(e.reason(), "InvalidReference");
        let e =
            ImageRequest::parse(&format!("127.0.0.1:5000/x@{d}"), Some("/../x"), None).unwrap_err();
        assert_eq!(e.reason(), "UnsafePath");
    }
}
