//! Plugin images: lockbox's OCI layer.
//!
//! This crate owns everything between a plugin binary and an OCI registry,
//! and nothing of the server: the server (`lockbox::oci`), the operator and
//! the `lockbox plugin push|pull` commands all use it.
//!
//! * [`reference`]: image references (`registry/repo@sha256:...`), what
//!   counts as pinned, and which registries are reached over plain HTTP.
//! * [`auth`]: registry credentials (anonymous, basic, bearer token) and
//!   Docker config JSON (`kubernetes.io/dockerconfigjson` Secrets,
//!   `~/.docker/config.json`). Credentials live only in memory.
//! * [`layout`]: the pure rules: manifest parsing, which layers are tar
//!   layers, entry-name normalization (no `..`), overlay merging with
//!   whiteouts, and link resolution that refuses links escaping the image.
//! * [`registry`]: talking to a registry: pull a binary (manifest and
//!   every blob verified against its digest while it streams, size limits
//!   enforced) and push one as an OCI artifact (through `oci-client`).
//! * `fetch`: the HTTP side of pulls: registry token auth and reads that
//!   stop as soon as a body passes its limit (manifests and indexes 4 MiB,
//!   token answers, error bodies), so a hostile registry cannot make a pull
//!   buffer an endless answer.
//! * [`cache`]: the content-addressed cache of verified binaries
//!   (`<dir>/sha256/<hex>`), re-verification, and size-bounded pruning.
//!
//! Every failure is an [`OciError`] whose [`OciError::reason`] is a stable
//! CamelCase word (`DigestMismatch`, `ManifestNotFound`, `Unauthorized`,
//! `TooLarge`, `BinaryNotFound`, ...) that the operator puts in its
//! `Ready=False` condition.

pub mod auth;
pub mod cache;
mod fetch;
pub mod layout;
pub mod reference;
pub mod registry;

pub use auth::Credentials;
pub use cache::Cache;
pub use reference::ImageRef;
pub use registry::{PullOptions, Pulled, Registry};

/// Media type of the artifact `lockbox plugin push` publishes
/// (`artifactType` of its manifest).
pub const ARTIFACT_TYPE: &str = "application/vnd.lockbox.plugin.v1";
/// Media type of the single layer of such an artifact: the binary itself.
pub const BINARY_LAYER_MEDIA_TYPE: &str = "application/vnd.lockbox.plugin.binary.v1";
/// Where the binary is looked for inside an image when no path is given.
pub const DEFAULT_PATH: &str = "/plugin";
/// Default size limit for a plugin image and its binary: 256 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 256 * 1024 * 1024;

/// Errors of the OCI layer. [`OciError::reason`] gives the short reason.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The image reference does not parse or is not acceptable.
    #[error("invalid image reference {reference:?}: {message}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A tag-only reference without a binary sha256 to pin it.
    #[error(
        "image reference {reference:?} has only a tag, which the registry can move: pin it by digest (REPO@sha256:<manifest digest>, printed by `lockbox plugin push`) or give the binary's sha256"
    )]
    Unpinned {
        /// The reference as given.
        reference: String,
    },
    /// The registry has no such manifest (or repository).
    #[error("manifest not found: {reference} does not exist in the registry ({detail})")]
    ManifestNotFound {
        /// The reference.
        reference: String,
        /// The registry's answer.
        detail: String,
    },
    /// The registry refused the credentials (or demanded some).
    #[error(
        "registry {registry} refused access to {reference}: {detail}; check the credentials (pull secret / registry auth file)"
    )]
    Unauthorized {
        /// host:port.
        registry: String,
        /// The reference.
        reference: String,
        /// The registry's answer.
        detail: String,
    },
    /// Content does not hash to the digest it was asked for by.
    #[error(
        "digest mismatch for {what}: expected {expected}, got {actual}; the content was discarded and nothing was executed"
    )]
    DigestMismatch {
        /// Which content: the manifest, a blob, the binary.
        what: String,
        /// The pinned digest.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// Content over the size limit.
    #[error("{what} is too large: {size} bytes, the limit is {limit} bytes")]
    TooLarge {
        /// Which content.
        what: String,
        /// Its (declared or counted) size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The image has no binary at the path.
    #[error("binary not found: {reference} has no file at {path}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    BinaryNotFound {
        /// The reference.
        reference: String,
        /// The path inside the image.
        path: String,
        /// More context (whiteout, which layers were searched).
        detail: String,
    },
    /// A path or link that would leave the image's root.
    #[error("unsafe path in {reference}: {detail}")]
    UnsafePath {
        /// The reference.
        reference: String,
        /// Which entry and why.
        detail: String,
    },
    /// The path names a directory, device, FIFO, ...
    #[error("{path} in {reference} is a {kind}, not a regular file")]
    NotRegularFile {
        /// The reference.
        reference: String,
        /// The path inside the image.
        path: String,
        /// What it is.
        kind: String,
    },
    /// A manifest or layer type lockbox cannot read.
    #[error("unsupported content in {reference}: {detail}")]
    Unsupported {
        /// The reference.
        reference: String,
        /// What.
        detail: String,
    },
    /// The manifest is not valid.
    #[error("invalid manifest for {reference}: {detail}")]
    InvalidManifest {
        /// The reference.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// Credentials could not be read (bad Docker config JSON, ...).
    #[error("invalid registry credentials: {0}")]
    Credentials(String),
    /// The registry could not be reached or answered something unexpected.
    #[error("registry {registry}: {detail}")]
    Registry {
        /// host:port.
        registry: String,
        /// What happened.
        detail: String,
    },
    /// A local file operation failed (cache, temporary files, the file to push).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl OciError {
    /// The stable one-word reason, for `Ready=False` conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            OciError::InvalidReference { .. } => "InvalidReference",
            OciError::Unpinned { .. } => "UnpinnedReference",
            OciError::ManifestNotFound { .. } => "ManifestNotFound",
            OciError::Unauthorized { .. } => "Unauthorized",
            OciError::DigestMismatch { .. } => "DigestMismatch",
            OciError::TooLarge { .. } => "TooLarge",
            OciError::BinaryNotFound { .. } => "BinaryNotFound",
            OciError::UnsafePath { .. } => "UnsafePath",
            OciError::NotRegularFile { .. } => "NotRegularFile",
            OciError::Unsupported { .. } => "UnsupportedImage",
            OciError::InvalidManifest { .. } => "InvalidManifest",
            OciError::Credentials(_) => "InvalidPullSecret",
            OciError::Registry { .. } => "RegistryUnavailable",
            OciError::Io { .. } => "CacheError",
        }
    }

    /// An [`OciError::Io`] for `path`.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        OciError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The error chain of an error, joined with `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Lower-case hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Checks a lower-case 64-character hex sha256 (as in the catalog).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
