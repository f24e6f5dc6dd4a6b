//! Talking to a registry: pull a plugin binary, push one as an artifact.
//!
//! Pull (over [`crate::fetch`], which bounds every body it reads):
//! authenticate → fetch the manifest, refused as soon as it passes 4 MiB
//! (its sha256 must equal the pinned digest; an index is resolved to this
//! platform's manifest, read and verified the same way) → check declared
//! sizes against the limit → stream every blob
//! into a temporary file while hashing it, refusing it as soon as it runs
//! past its declared size or the limit and when its digest differs → find
//! the binary (the blob itself for an artifact; `path` across the layer
//! tarballs for a container image, see [`crate::layout`]) → hash the
//! binary, compare with the pinned sha256 if any → move it into the
//! [`Cache`]. Nothing is executed here, and nothing unverified reaches the
//! cache.

use crate::auth::Credentials;
use crate::cache::Cache;
use crate::fetch::{Auth, Fetcher, MAX_MANIFEST_BYTES};
use crate::layout::{self, EntryKind, Manifest, Overlay, Plan};
use crate::reference::ImageRef;
use crate::{OciError, chain, sha256_hex};
use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use sha2::Digest;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Chunk size for uploads.
const PUSH_CHUNK: usize = 4 * 1024 * 1024;

/// A registry client: pulls through [`Fetcher`] (bounded reads), pushes
/// through `oci-client`.
#[derive(Clone)]
pub struct Registry {
    client: oci_client::Client,
    fetcher: Fetcher,
    insecure: Vec<String>,
}

/// What a pull may do.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Path of the binary inside a container image.
    pub path: String,
    /// The binary's sha256 (hex) when pinned.
    pub expected_sha256: Option<String>,
    /// Largest blob, sum of blobs and binary, in bytes.
    pub max_size: u64,
}

/// A pulled, verified binary, now in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// `sha256:<hex>` of the manifest the reference named (for an index,
    /// the index's digest).
    pub manifest_digest: String,
    /// Hex sha256 of the binary.
    pub sha256: String,
    /// Size of the binary.
    pub size: u64,
    /// Its path in the cache.
    pub path: PathBuf,
}

/// A push's result.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `sha256:<hex>` of the manifest: what to pin.
    pub manifest_digest: String,
    /// Hex sha256 of the binary.
    pub sha256: String,
    /// Size of the binary.
    pub size: u64,
    /// Whether the registry already had the binary's blob.
    pub blob_existed: bool,
}

/// Deletes temporary files when dropped.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn random_name(ext: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}.{ext}")
}

impl Registry {
    /// A client reaching registries over HTTPS, except the `HOST:PORT`
    /// names in `insecure`, reached over plain HTTP.
    pub fn new(insecure: &[String]) -> Result<Self, OciError> {
        // reqwest is built with rustls and no provider: use ring, like the
        // rest of lockbox.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure.to_vec()),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("lockbox/", env!("CARGO_PKG_VERSION")),
            // Choosing a platform from an index is done here, not by the client.
            platform_resolver: None,
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| OciError::Registry {
            registry: String::new(),
            detail: format!("cannot build the registry client: {}", chain(&e)),
        })?;
        Ok(Self {
            client,
            fetcher: Fetcher::new(insecure)?,
            insecure: insecure.to_vec(),
        })
    }

    /// The registries reached over plain HTTP.
    pub fn insecure(&self) -> &[String] {
        &self.insecure
    }

    fn map_err(&self, e: OciDistributionError, image: &ImageRef, what: &str) -> OciError {
        let registry = image.registry().to_string();
        let reference = image.as_given().to_string();
        let unauthorized = |detail: String| OciError::Unauthorized {
            registry: registry.clone(),
            reference: reference.clone(),
            detail,
        };
        let not_found = |detail: String| {
            if what == "manifest" {
                OciError::ManifestNotFound {
                    reference: reference.clone(),
                    detail,
                }
            } else {
                OciError::Registry {
                    registry: registry.clone(),
                    detail: format!("{what} not found: {detail}"),
                }
            }
        };
        match e {
            OciDistributionError::AuthenticationFailure(m) => {
                unauthorized(format!("authentication failed: {}", m.trim()))
            }
            OciDistributionError::UnauthorizedError { .. } => {
                unauthorized("HTTP 401 Unauthorized".into())
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let detail = envelope
                    .errors
                    .iter()
                    .map(|x| format!("{:?}: {}", x.code, x.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                if envelope
                    .errors
                    .iter()
                    .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized(detail)
                } else if envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    not_found(detail)
                } else {
                    OciError::Registry { registry, detail }
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                401 | 403 => unauthorized(format!("HTTP {code}: {}", message.trim())),
                404 => not_found(format!("HTTP 404: {}", message.trim())),
                _ => OciError::Registry {
                    registry,
                    detail: format!("HTTP {code} while fetching the {what}: {}", message.trim()),
                },
            },
            OciDistributionError::ImageManifestNotFoundError(m) => not_found(m),
            OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            }) => OciError::DigestMismatch {
                what: format!("the {what} of {reference}"),
                expected,
                actual,
            },
            OciDistributionError::RequestError(r) => OciError::Registry {
                registry: registry.clone(),
                detail: format!(
                    "cannot reach the registry ({}){}",
                    chain(&r),
                    if self.insecure.contains(&registry) {
                        String::new()
                    } else {
                        "; registries are reached over HTTPS: for a plain-HTTP registry pass --insecure-registry HOST:PORT".to_string()
                    }
                ),
            },
            other => OciError::Registry {
                registry,
                detail: format!("while fetching the {what}: {}", chain(&other)),
            },
        }
    }

    async fn authenticate(
        &self,
        image: &ImageRef,
        creds: &Credentials,
        op: RegistryOperation,
    ) -> Result<RegistryAuth, OciError> {
        let auth = creds.to_registry_auth();
        self.client
            .auth(image.inner(), &auth, op)
            .await
            .map_err(|e| self.map_err(e, image, "token"))?;
        Ok(auth)
    }

    /// Fetches a manifest (or index), refused as soon as it passes
    /// [`MAX_MANIFEST_BYTES`], and checks it against `expected`
    /// (`sha256:<hex>`) when given. Returns it parsed, with its digest.
    async fn manifest(
        &self,
        image: &ImageRef,
        auth: &Auth,
        expected: Option<&str>,
    ) -> Result<(Manifest, String), OciError> {
        let body = self
            .fetcher
            .manifest(image, auth, &layout::ACCEPTED_MANIFESTS)
            .await?;
        debug_assert!(body.len() as u64 <= MAX_MANIFEST_BYTES);
        let digest = format!("sha256:{}", sha256_hex(&body));
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("the manifest of {image}"),
                expected: expected.to_string(),
                actual: digest,
            });
        }
        Ok((Manifest::parse(&body, image.as_given())?, digest))
    }

    /// Resolves a reference to its manifest digest (`sha256:<hex>`),
    /// verifying the manifest's content.
    pub async fn resolve(&self, image: &ImageRef, creds: &Credentials) -> Result<String, OciError> {
        let auth = self.fetcher.authorize(image, creds).await?;
        let (_, digest) = self.manifest(image, &auth, image.digest()).await?;
        Ok(digest)
    }

    /// Streams one blob into `dest`, hashing as it goes; refuses more bytes
    /// than declared or than `limit`, and a digest mismatch.
    async fn fetch_blob(
        &self,
        image: &ImageRef,
        auth: &Auth,
        desc: &layout::Descriptor,
        dest: &Path,
        limit: u64,
    ) -> Result<(), OciError> {
        let declared = desc.size as u64;
        if declared > limit {
            return Err(OciError::TooLarge {
                what: format!("blob {}", desc.digest),
                size: declared,
                limit,
            });
        }
        let mut resp = self.fetcher.blob(image, auth, &desc.digest).await?;
        if let Some(len) = resp.content_length()
            && len > declared
        {
            return Err(OciError::TooLarge {
                what: format!(
                    "blob {} (the registry announces {len} bytes, the manifest {declared})",
                    desc.digest
                ),
                size: len,
                limit: declared,
            });
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| OciError::io(dest, e))?;
        let mut hasher = sha2::Sha256::new();
        let mut count = 0u64;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(OciError::Registry {
                        registry: image.registry().to_string(),
                        detail: format!("download of blob {} failed: {}", desc.digest, chain(&e)),
                    });
                }
            };
            count += chunk.len() as u64;
            if count > declared {
                return Err(OciError::TooLarge {
                    what: format!(
                        "blob {} (more bytes than the manifest declares)",
                        desc.digest
                    ),
                    size: count,
                    limit: declared,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| OciError::io(dest, e))?;
        }
        file.flush().await.map_err(|e| OciError::io(dest, e))?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != desc.digest {
            return Err(OciError::DigestMismatch {
                what: format!("blob {} of {image}", desc.digest),
                expected: desc.digest.clone(),
                actual,
            });
        }
        if count != declared {
            return Err(OciError::InvalidManifest {
                reference: image.as_given().to_string(),
                detail: format!(
                    "blob {} has {count} bytes but the manifest declares {declared}",
                    desc.digest
                ),
            });
        }
        Ok(())
    }

    /// Pulls the binary of `image` into `cache` (see the module docs).
    pub async fn pull_binary(
        &self,
        image: &ImageRef,
        creds: &Credentials,
        opts: &PullOptions,
        cache: &Cache,
    ) -> Result<Pulled, OciError> {
        let path = layout::normalize_path(&opts.path).map_err(|detail| OciError::UnsafePath {
            reference: image.as_given().to_string(),
            detail,
        })?;
        let auth = self.fetcher.authorize(image, creds).await?;
        let (mut manifest, manifest_digest) = self.manifest(image, &auth, image.digest()).await?;
        if manifest.is_index() {
            let entry =
                manifest
                    .platform_entry()
                    .cloned()
                    .ok_or_else(|| OciError::Unsupported {
                        reference: image.as_given().to_string(),
                        detail: format!(
                            "the index has no manifest for linux/{}",
                            std::env::consts::ARCH
                        ),
                    })?;
            let platform_ref = image.at_digest(&entry.digest);
            let (m, _) = self
                .manifest(&platform_ref, &auth, Some(&entry.digest))
                .await?;
            if m.is_index() {
                return Err(OciError::Unsupported {
                    reference: image.as_given().to_string(),
                    detail: "an index nested in an index".into(),
                });
            }
            manifest = m;
        }
        let total: u64 = manifest.layers.iter().map(|l| l.size as u64).sum();
        if total > opts.max_size {
            return Err(OciError::TooLarge {
                what: format!("image {image} ({} layers)", manifest.layers.len()),
                size: total,
                limit: opts.max_size,
            });
        }
        let tmp_dir = cache.tmp_dir()?;
        let mut temps = TempFiles(Vec::new());
        let binary_tmp = tmp_dir.join(random_name("bin"));
        temps.0.push(binary_tmp.clone());
        match layout::plan(&manifest, &path, image.as_given())? {
            Plan::RawLayer(i) => {
                let desc = &manifest.layers[i];
                self.fetch_blob(image, &auth, desc, &binary_tmp, opts.max_size)
                    .await?;
            }
            Plan::Tarballs => {
                let mut layers = Vec::new();
                for desc in &manifest.layers {
                    let p = tmp_dir.join(random_name("layer"));
                    temps.0.push(p.clone());
                    self.fetch_blob(image, &auth, desc, &p, opts.max_size)
                        .await?;
                    layers.push(p);
                }
                let reference = image.as_given().to_string();
                let out = binary_tmp.clone();
                let max = opts.max_size;
                tokio::task::spawn_blocking(move || {
                    extract_from_layers(&layers, &path, &out, max, &reference)
                })
                .await
                .map_err(|e| OciError::Registry {
                    registry: image.registry().to_string(),
                    detail: format!("extraction task failed: {e}"),
                })??;
            }
        }
        let (sha256, size) =
            crate::cache::sha256_file(&binary_tmp).map_err(|e| OciError::io(&binary_tmp, e))?;
        if size > opts.max_size {
            return Err(OciError::TooLarge {
                what: format!("binary {} in {image}", opts.path),
                size,
                limit: opts.max_size,
            });
        }
        if let Some(expected) = &opts.expected_sha256
            && *expected != sha256
        {
            return Err(OciError::DigestMismatch {
                what: format!("binary {} in {image}", opts.path),
                expected: format!("sha256:{expected}"),
                actual: format!("sha256:{sha256}"),
            });
        }
        let cached = cache.insert(&binary_tmp, &sha256)?;
        Ok(Pulled {
            manifest_digest,
            sha256,
            size,
            path: cached,
        })
    }

    /// Publishes `file` as an OCI artifact at `image` (a tag): an empty
    /// config, one layer that is the binary, `artifactType`
    /// [`crate::ARTIFACT_TYPE`]. `progress(sent, total)` is called as bytes
    /// go out. Returns the manifest digest to pin.
    pub async fn push_binary(
        &self,
        file: &Path,
        image: &ImageRef,
        creds: &Credentials,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<Pushed, OciError> {
        if image.is_pinned() {
            return Err(OciError::InvalidReference {
                reference: image.as_given().to_string(),
                message: "push to a tag (REGISTRY/REPO:TAG); the digest is computed and printed"
                    .into(),
            });
        }
        let meta = std::fs::metadata(file).map_err(|e| OciError::io(file, e))?;
        if !meta.is_file() {
            return Err(OciError::io(
                file,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let (sha256, size) = crate::cache::sha256_file(file).map_err(|e| OciError::io(file, e))?;
        self.authenticate(image, creds, RegistryOperation::Push)
            .await?;
        let blob_digest = format!("sha256:{sha256}");
        let blob_existed = self
            .client
            .blob_exists(image.inner(), &blob_digest)
            .await
            .unwrap_or(false);
        if blob_existed {
            progress(size, size);
        } else {
            let f = std::fs::File::open(file).map_err(|e| OciError::io(file, e))?;
            let progress = std::sync::Arc::new(progress);
            let stream = futures_util::stream::unfold(
                (f, 0u64, progress.clone()),
                move |(mut f, sent, progress)| async move {
                    let mut buf = vec![0u8; PUSH_CHUNK];
                    let mut filled = 0;
                    while filled < buf.len() {
                        match f.read(&mut buf[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) => {
                                return Some((
                                    Err(OciDistributionError::IoError(e)),
                                    (f, sent, progress),
                                ));
                            }
                        }
                    }
                    if filled == 0 {
                        return None;
                    }
                    buf.truncate(filled);
                    let sent = sent + filled as u64;
                    progress(sent, size);
                    Some((Ok(bytes::Bytes::from(buf)), (f, sent, progress)))
                },
            );
            self.client
                .push_blob_stream(image.inner(), stream, &blob_digest, Some(size))
                .await
                .map_err(|e| self.map_err(e, image, "blob upload"))?;
        }
        let empty = b"{}";
        let empty_digest = format!("sha256:{}", sha256_hex(empty));
        if !self
            .client
            .blob_exists(image.inner(), &empty_digest)
            .await
            .unwrap_or(false)
        {
            self.client
                .push_blob(image.inner(), &empty[..], &empty_digest)
                .await
                .map_err(|e| self.map_err(e, image, "config upload"))?;
        }
        let title = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "plugin".into());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": layout::OCI_MANIFEST,
            "artifactType": crate::ARTIFACT_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": empty_digest,
                "size": empty.len(),
            },
            "layers": [{
                "mediaType": crate::BINARY_LAYER_MEDIA_TYPE,
                "digest": blob_digest,
                "size": size,
                "annotations": { "org.opencontainers.image.title": title },
            }],
        });
        let body = serde_json::to_vec(&manifest).map_err(|e| OciError::Registry {
            registry: image.registry().to_string(),
            detail: format!("cannot encode the manifest: {e}"),
        })?;
        let manifest_digest = format!("sha256:{}", sha256_hex(&body));
        self.client
            .push_manifest_raw(image.inner(), body, http_header(layout::OCI_MANIFEST))
            .await
            .map_err(|e| self.map_err(e, image, "manifest upload"))?;
        Ok(Pushed {
            manifest_digest,
            sha256,
            size,
            blob_existed,
        })
    }
}

fn http_header(v: &'static str) -> http::HeaderValue {
    http::HeaderValue::from_static(v)
}

/// Caps how many bytes a reader yields (a decompression bomb stops here).
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(UnpackLimit));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug)]
struct UnpackLimit;

impl std::fmt::Display for UnpackLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unpacked layer exceeds the limit")
    }
}

impl std::error::Error for UnpackLimit {}

/// Opens a layer file as an (uncompressed) tar stream, capped at `limit`
/// unpacked bytes.
fn open_layer(path: &Path, limit: u64) -> std::io::Result<tar::Archive<Box<dyn Read>>> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0))?;
    let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "zstd-compressed layer (not supported; use gzip)",
        ));
    } else {
        Box::new(std::io::BufReader::new(f))
    };
    Ok(tar::Archive::new(Box::new(Limited {
        inner: reader,
        left: limit,
    })))
}

fn layer_error(reference: &str, layer: usize, e: std::io::Error, limit: u64) -> OciError {
    if e.get_ref().is_some_and(|i| i.is::<UnpackLimit>()) {
        return OciError::TooLarge {
            what: format!("layer {layer} of {reference} once unpacked"),
            size: limit + 1,
            limit,
        };
    }
    OciError::Unsupported {
        reference: reference.to_string(),
        detail: format!("layer {layer} is not a readable tar archive: {e}"),
    }
}

/// Finds `path` across the layer tarballs (bottom first, whiteouts and
/// links resolved by [`layout::Overlay`]) and writes its content to `out`,
/// the only file it creates; at most `max_size` bytes, and at most four
/// times that unpacked per layer. Blocking.
pub fn extract_from_layers(
    layers: &[PathBuf],
    path: &[String],
    out: &Path,
    max_size: u64,
    reference: &str,
) -> Result<(), OciError> {
    let unpack_limit = max_size.saturating_mul(4);
    let mut overlay = Overlay::new();
    for (i, layer) in layers.iter().enumerate() {
        let mut archive = open_layer(layer, unpack_limit)
            .map_err(|e| layer_error(reference, i, e, unpack_limit))?;
        let mut entries = Vec::new();
        for entry in archive
            .entries()
            .map_err(|e| layer_error(reference, i, e, unpack_limit))?
        {
            let entry = entry.map_err(|e| layer_error(reference, i, e, unpack_limit))?;
            let name = entry
                .path()
                .map_err(|e| layer_error(reference, i, e, unpack_limit))?
                .to_string_lossy()
                .to_string();
            let Some(norm) =
                layout::normalize_entry(&name).map_err(|detail| OciError::UnsafePath {
                    reference: reference.to_string(),
                    detail: format!("layer {i}: {detail}"),
                })?
            else {
                continue;
            };
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    EntryKind::File(header.size().unwrap_or(0))
                }
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink(
                    entry
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|l| l.to_string_lossy().to_string())
                        .unwrap_or_default(),
                ),
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|l| l.to_string_lossy().to_string())
                        .unwrap_or_default();
                    match layout::normalize_entry(&target) {
                        Ok(Some(t)) => EntryKind::Hardlink(t),
                        _ => {
                            return Err(OciError::UnsafePath {
                                reference: reference.to_string(),
                                detail: format!(
                                    "layer {i}: hard link {name:?} points at {target:?}, outside the image"
                                ),
                            });
                        }
                    }
                }
                tar::EntryType::Char => EntryKind::Other("character device"),
                tar::EntryType::Block => EntryKind::Other("block device"),
                tar::EntryType::Fifo => EntryKind::Other("FIFO"),
                _ => EntryKind::Other("special tar entry"),
            };
            entries.push((norm, kind));
        }
        overlay.apply_layer(i, entries);
    }
    let (layer, data_path) = overlay.resolve(path, reference)?;
    let mut archive = open_layer(&layers[layer], unpack_limit)
        .map_err(|e| layer_error(reference, layer, e, unpack_limit))?;
    for entry in archive
        .entries()
        .map_err(|e| layer_error(reference, layer, e, unpack_limit))?
    {
        let mut entry = entry.map_err(|e| layer_error(reference, layer, e, unpack_limit))?;
        let name = entry
            .path()
            .map_err(|e| layer_error(reference, layer, e, unpack_limit))?
            .to_string_lossy()
            .to_string();
        if layout::normalize_entry(&name).ok().flatten().as_deref() != Some(data_path.as_str()) {
            continue;
        }
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > max_size {
            return Err(OciError::TooLarge {
                what: format!("binary /{data_path} in {reference}"),
                size,
                limit: max_size,
            });
        }
        let mut f = std::fs::File::create(out).map_err(|e| OciError::io(out, e))?;
        let copied = std::io::copy(&mut (&mut entry).take(max_size + 1), &mut f)
            .map_err(|e| layer_error(reference, layer, e, unpack_limit))?;
        if copied > max_size {
            return Err(OciError::TooLarge {
                what: format!("binary /{data_path} in {reference}"),
                size: copied,
                limit: max_size,
            });
        }
        f.flush().map_err(|e| OciError::io(out, e))?;
        f.sync_all().map_err(|e| OciError::io(out, e))?;
        // Later entries with the same name in the same layer replace
        // earlier ones, as when unpacking: keep going.
    }
    if !out.exists() {
        return Err(OciError::BinaryNotFound {
            reference: reference.to_string(),
            path: format!("/{}", path.join("/")),
            detail: format!("hard link target /{data_path} is not a regular file in layer {layer}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_registry;
