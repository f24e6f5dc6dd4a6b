//! The pure rules for finding a plugin binary in an image (no I/O).
//!
//! * [`Manifest`]: the parts of an image manifest or index lockbox reads.
//! * [`LayerKind`]: which layers are tarballs (container images) and which
//!   are raw content (an artifact whose layer is the binary itself).
//! * [`normalize_path`] / [`normalize_entry`]: paths inside an image are
//!   relative to its root; `..` is path traversal and refused.
//! * [`Overlay`]: layers applied bottom-up as a container runtime would,
//!   honouring whiteouts (`.wh.NAME` deletes `NAME` from lower layers,
//!   `.wh..wh..opq` empties a directory of lower content).
//! * [`Overlay::resolve`]: follows symbolic links (in any component) inside
//!   the image root and refuses links that climb out of it.

use crate::OciError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A content descriptor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: i64,
    /// Annotations (`org.opencontainers.image.title`, ...).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// For index entries: the platform.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// Platform of an index entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, ...
    #[serde(default)]
    pub os: String,
    /// `amd64`, `arm64`, ...
    #[serde(default)]
    pub architecture: String,
}

/// An image manifest or an index (manifest list).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: i64,
    /// The manifest's media type, if it says.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Image manifests: the config blob.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Image manifests: the layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Indexes: the per-platform manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The manifest types lockbox asks for.
pub const ACCEPTED_MANIFESTS: [&str; 4] = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

impl Manifest {
    /// Parses and checks a manifest body.
    pub fn parse(body: &[u8], reference: &str) -> Result<Self, OciError> {
        let invalid = |detail: String| OciError::InvalidManifest {
            reference: reference.to_string(),
            detail,
        };
        let m: Manifest = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("not a manifest JSON document: {e}")))?;
        if m.schema_version != 2 {
            return Err(OciError::Unsupported {
                reference: reference.to_string(),
                detail: format!(
                    "manifest schemaVersion {} (only schema 2 manifests are supported)",
                    m.schema_version
                ),
            });
        }
        for d in m.layers.iter().chain(&m.manifests).chain(m.config.iter()) {
            if d.size < 0 {
                return Err(invalid(format!(
                    "descriptor {} has a negative size",
                    d.digest
                )));
            }
            match d.digest.strip_prefix("sha256:") {
                Some(h) if crate::is_sha256_hex(h) => {}
                _ => {
                    return Err(OciError::Unsupported {
                        reference: reference.to_string(),
                        detail: format!(
                            "descriptor digest {:?} is not sha256 (lockbox verifies sha256 only)",
                            d.digest
                        ),
                    });
                }
            }
        }
        if m.is_index() && m.manifests.is_empty() {
            return Err(invalid("the index lists no manifests".into()));
        }
        if !m.is_index() && m.layers.is_empty() {
            return Err(invalid("the manifest has no layers".into()));
        }
        Ok(m)
    }

    /// Whether this is an index (manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self.media_type.as_deref(), Some(OCI_INDEX | DOCKER_LIST))
            || (self.media_type.is_none() && !self.manifests.is_empty() && self.layers.is_empty())
    }

    /// The index entry for this machine's platform (linux and the running
    /// architecture).
    pub fn platform_entry(&self) -> Option<&Descriptor> {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        self.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
    }
}

/// How a layer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A tarball (possibly gzip-compressed): a container image layer.
    Tar,
    /// zstd-compressed tar: refused (no zstd decoder in lockbox).
    TarZstd,
    /// Anything else: the blob is a file itself.
    Raw,
}

/// Classifies a layer by media type.
pub fn layer_kind(media_type: &str) -> LayerKind {
    let tarish = media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.");
    if !tarish {
        LayerKind::Raw
    } else if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
        LayerKind::TarZstd
    } else {
        LayerKind::Tar
    }
}

/// What the manifest says to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The blob at this index of `layers` is the binary.
    RawLayer(usize),
    /// Search the tar layers (all layers) for the path.
    Tarballs,
}

/// Decides how to find the binary: a single non-tar layer is the binary
/// (an OCI artifact); several non-tar layers are matched by their
/// `org.opencontainers.image.title` against the path's file name; tar
/// layers are searched as a container file system.
pub fn plan(manifest: &Manifest, path: &[String], reference: &str) -> Result<Plan, OciError> {
    let kinds: Vec<LayerKind> = manifest
        .layers
        .iter()
        .map(|l| layer_kind(&l.media_type))
        .collect();
    if kinds.contains(&LayerKind::TarZstd) {
        return Err(OciError::Unsupported {
            reference: reference.to_string(),
            detail: "zstd-compressed layers; rebuild the image with gzip or uncompressed layers"
                .into(),
        });
    }
    let raw: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == LayerKind::Raw)
        .collect();
    if raw.is_empty() {
        return Ok(Plan::Tarballs);
    }
    if raw.len() != kinds.len() {
        return Err(OciError::Unsupported {
            reference: reference.to_string(),
            detail: "a manifest mixing tar layers and other content".into(),
        });
    }
    if raw.len() == 1 {
        return Ok(Plan::RawLayer(0));
    }
    let name = path.last().map(String::as_str).unwrap_or("");
    raw.into_iter()
        .find(|&i| {
            manifest.layers[i]
                .annotations
                .get("org.opencontainers.image.title")
                .is_some_and(|t| t == name)
        })
        .map(Plan::RawLayer)
        .ok_or_else(|| OciError::BinaryNotFound {
            reference: reference.to_string(),
            path: format!("/{}", path.join("/")),
            detail: format!(
                "the artifact has {} layers and none is titled {name:?}",
                manifest.layers.len()
            ),
        })
}

/// Splits the requested path into components. It is taken relative to the
/// image root (a leading `/` is optional); `..` is refused.
pub fn normalize_path(path: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "path {path:?} contains `..`; give the binary's absolute path inside the image, e.g. /plugin"
                ));
            }
            c => out.push(c.to_string()),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "path {path:?} names the image root; give the binary's path, e.g. /plugin"
        ));
    }
    Ok(out)
}

/// Normalizes a tar entry name (`./a/b`, `/a/b`, `a/b/`) to `a/b`.
/// `Ok(None)` for the root itself; an error for `..` components.
pub fn normalize_entry(name: &str) -> Result<Option<String>, String> {
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("entry {name:?} contains `..` (path traversal)")),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// What a tar entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file of this size.
    File(u64),
    /// Directory.
    Dir,
    /// Symbolic link to this target (as written).
    Symlink(String),
    /// Hard link to this (normalized) path in the same layer.
    Hardlink(String),
    /// Device, FIFO, ...: named.
    Other(&'static str),
}

/// The merged file system of the layers seen so far.
#[derive(Debug, Default)]
pub struct Overlay {
    /// path → (layer index, kind).
    entries: BTreeMap<String, (usize, EntryKind)>,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

fn parent_and_name(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

impl Overlay {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn remove_tree(&mut self, path: &str, keep_layer: Option<usize>) {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, (layer, _))| Some(*layer) != keep_layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
    }

    /// Applies one layer (entries as `(normalized name, kind)` in archive
    /// order) on top of what is there.
    pub fn apply_layer(&mut self, layer: usize, entries: Vec<(String, EntryKind)>) {
        // Whiteouts hide lower layers only, so they go first.
        for (path, _) in &entries {
            let (parent, name) = parent_and_name(path);
            if name == OPAQUE {
                self.remove_tree(parent, Some(layer));
            } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                let target = if parent.is_empty() {
                    hidden.to_string()
                } else {
                    format!("{parent}/{hidden}")
                };
                if self.entries.get(&target).is_some_and(|(l, _)| *l != layer) {
                    self.entries.remove(&target);
                }
                self.remove_tree(&target, Some(layer));
            }
        }
        for (path, kind) in entries {
            let (_, name) = parent_and_name(&path);
            if name.starts_with(WHITEOUT_PREFIX) {
                continue;
            }
            if kind != EntryKind::Dir {
                // A file replacing a directory hides what was below it.
                self.remove_tree(&path, Some(layer));
            }
            self.entries.insert(path, (layer, kind));
        }
    }

    fn is_implicit_dir(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.entries
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// Resolves `path` (components from [`normalize_path`]) to a regular
    /// file: `(layer, path of the entry holding the data)`. Symbolic links
    /// are followed in every component (at most 40); a link climbing above
    /// the root is refused, as are directories and special files.
    pub fn resolve(&self, path: &[String], reference: &str) -> Result<(usize, String), OciError> {
        let shown = format!("/{}", path.join("/"));
        let not_found = |detail: String| OciError::BinaryNotFound {
            reference: reference.to_string(),
            path: shown.clone(),
            detail,
        };
        let mut pending: std::collections::VecDeque<String> = path.iter().cloned().collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    if cur.pop().is_none() {
                        return Err(OciError::UnsafePath {
                            reference: reference.to_string(),
                            detail: format!(
                                "a symbolic link on the way to {shown} climbs above the image root"
                            ),
                        });
                    }
                    continue;
                }
                _ => {}
            }
            cur.push(c);
            let key = cur.join("/");
            let last = pending.is_empty();
            match self.entries.get(&key) {
                None if !last && self.is_implicit_dir(&key) => {}
                None => {
                    return Err(not_found(format!("no entry /{key} in any layer")));
                }
                Some((_, EntryKind::Symlink(target))) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(OciError::UnsafePath {
                            reference: reference.to_string(),
                            detail: format!("too many symbolic links resolving {shown}"),
                        });
                    }
                    cur.pop();
                    if target.starts_with('/') {
                        cur.clear();
                    }
                    for (i, part) in target.split('/').enumerate() {
                        pending.insert(i, part.to_string());
                    }
                }
                Some((_, EntryKind::Dir)) if !last => {}
                Some((_, EntryKind::Dir)) => {
                    return Err(OciError::NotRegularFile {
                        reference: reference.to_string(),
                        path: shown,
                        kind: "directory".into(),
                    });
                }
                Some((_, EntryKind::Other(kind))) if last => {
                    return Err(OciError::NotRegularFile {
                        reference: reference.to_string(),
                        path: shown,
                        kind: (*kind).into(),
                    });
                }
                Some((layer, EntryKind::File(_))) if last => return Ok((*layer, key)),
                Some((layer, EntryKind::Hardlink(target))) if last => {
                    return Ok((*layer, target.clone()));
                }
                Some(_) => {
                    return Err(not_found(format!("/{key} is a file, not a directory")));
                }
            }
        }
        Err(not_found("empty path".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &str) -> (String, EntryKind) {
        (p.to_string(), EntryKind::File(1))
    }

    fn path(p: &str) -> Vec<String> {
        normalize_path(p).unwrap()
    }

    #[test]
    fn paths_and_entry_names() {
        assert_eq!(path("/plugin"), vec!["plugin"]);
        assert_eq!(path("usr//bin/./x"), vec!["usr", "bin", "x"]);
        assert!(normalize_path("/../etc/passwd").is_err());
        assert!(normalize_path("/").is_err());
        assert_eq!(normalize_entry("./a/b/").unwrap().as_deref(), Some("a/b"));
        assert_eq!(normalize_entry("/a").unwrap().as_deref(), Some("a"));
        assert_eq!(normalize_entry("./").unwrap(), None);
        assert!(normalize_entry("a/../../etc").is_err());
    }

    #[test]
    fn layer_kinds_and_plans() {
        assert_eq!(
            layer_kind("application/vnd.oci.image.layer.v1.tar+gzip"),
            LayerKind::Tar
        );
        assert_eq!(
            layer_kind("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            LayerKind::Tar
        );
        assert_eq!(
            layer_kind("application/vnd.oci.image.layer.v1.tar+zstd"),
            LayerKind::TarZstd
        );
        assert_eq!(layer_kind(crate::BINARY_LAYER_MEDIA_TYPE), LayerKind::Raw);
        let d = |mt: &str, title: Option<&str>| Descriptor {
            media_type: mt.into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            annotations: title
                .map(|t| [("org.opencontainers.image.title".to_string(), t.to_string())].into())
                .unwrap_or_default(),
            platform: None,
        };
        let m = |layers| Manifest {
            schema_version: 2,
            media_type: None,
            config: None,
            layers,
            manifests: vec![],
        };
        let p = path("/plugin");
        assert_eq!(
            plan(&m(vec![d("x/raw", None)]), &p, "r").unwrap(),
            Plan::RawLayer(0)
        );
        assert_eq!(
            plan(
                &m(vec![d("a/b", Some("other")), d("a/b", Some("plugin"))]),
                &p,
                "r"
            )
            .unwrap(),
            Plan::RawLayer(1)
        );
        assert_eq!(
            plan(&m(vec![d("a/b", Some("x")), d("a/b", Some("y"))]), &p, "r")
                .unwrap_err()
                .reason(),
            "BinaryNotFound"
        );
        let tar = "application/vnd.oci.image.layer.v1.tar";
        assert_eq!(
            plan(&m(vec![d(tar, None), d(tar, None)]), &p, "r").unwrap(),
            Plan::Tarballs
        );
        assert_eq!(
            plan(&m(vec![d(tar, None), d("x/raw", None)]), &p, "r")
                .unwrap_err()
                .reason(),
            "UnsupportedImage"
        );
    }

    #[test]
    fn manifests_are_checked() {
        let ok = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"a","digest":"sha256:{0}","size":2}},"layers":[{{"mediaType":"b","digest":"sha256:{0}","size":5}}]}}"#,
            "a".repeat(64)
        );
        let m = Manifest::parse(ok.as_bytes(), "r").unwrap();
        assert!(!m.is_index());
        assert_eq!(m.layers.len(), 1);
        let e = Manifest::parse(b"{}", "r").unwrap_err();
        assert_eq!(e.reason(), "InvalidManifest");
        let v1 = br#"{"schemaVersion":1,"layers":[]}"#;
        assert_eq!(
            Manifest::parse(v1, "r").unwrap_err().reason(),
            "UnsupportedImage"
        );
        let neg = ok.replace("\"size\":5", "\"size\":-5");
        assert_eq!(
            Manifest::parse(neg.as_bytes(), "r").unwrap_err().reason(),
            "InvalidManifest"
        );
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{0}","size":9,"platform":{{"os":"linux","architecture":"arm64"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{1}","size":9,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
            "b".repeat(64),
            "c".repeat(64)
        );
        let i = Manifest::parse(index.as_bytes(), "r").unwrap();
        assert!(i.is_index());
        if std::env::consts::ARCH == "x86_64" {
            assert!(
                i.platform_entry()
                    .unwrap()
                    .digest
                    .ends_with(&"c".repeat(64))
            );
        }
    }

    #[test]
    fn later_layers_win_and_whiteouts_delete() {
        let mut o = Overlay::new();
        o.apply_layer(0, vec![f("plugin"), f("bin/tool"), f("opt/a/x")]);
        o.apply_layer(1, vec![f("plugin")]);
        assert_eq!(
            o.resolve(&path("/plugin"), "r").unwrap(),
            (1, "plugin".into())
        );
        // Plain whiteout.
        o.apply_layer(2, vec![(".wh.plugin".into(), EntryKind::File(0))]);
        let e = o.resolve(&path("/plugin"), "r").unwrap_err();
        assert_eq!(e.reason(), "BinaryNotFound");
        // Whiteout of a directory removes what is under it.
        o.apply_layer(3, vec![("bin/.wh.tool".into(), EntryKind::File(0))]);
        assert!(o.resolve(&path("/bin/tool"), "r").is_err());
        // Opaque directory: lower content gone, same-layer content stays.
        o.apply_layer(
            4,
            vec![
                ("opt/a".into(), EntryKind::Dir),
                ("opt/a/.wh..wh..opq".into(), EntryKind::File(0)),
                f("opt/a/y"),
            ],
        );
        assert!(o.resolve(&path("/opt/a/x"), "r").is_err());
        assert_eq!(
            o.resolve(&path("/opt/a/y"), "r").unwrap(),
            (4, "opt/a/y".into())
        );
        // A re-added file after a whiteout in a later layer is back.
        o.apply_layer(5, vec![f("plugin")]);
        assert_eq!(
            o.resolve(&path("/plugin"), "r").unwrap(),
            (5, "plugin".into())
        );
    }

    #[test]
    fn links_inside_the_root_resolve_and_escapes_are_refused() {
        let mut o = Overlay::new();
        o.apply_layer(
            0,
            vec![
                f("usr/bin/real"),
                ("bin".into(), EntryKind::Symlink("usr/bin".into())),
                ("plugin".into(), EntryKind::Symlink("/bin/real".into())),
                (
                    "rel".into(),
                    EntryKind::Symlink("usr/../usr/bin/real".into()),
                ),
                (
                    "escape".into(),
                    EntryKind::Symlink("../../etc/passwd".into()),
                ),
                ("loop".into(), EntryKind::Symlink("loop".into())),
                ("hard".into(), EntryKind::Hardlink("usr/bin/real".into())),
                ("dev".into(), EntryKind::Other("character device")),
                ("dir".into(), EntryKind::Dir),
            ],
        );
        assert_eq!(
            o.resolve(&path("/plugin"), "r").unwrap(),
            (0, "usr/bin/real".into())
        );
        assert_eq!(
            o.resolve(&path("/rel"), "r").unwrap(),
            (0, "usr/bin/real".into())
        );
        assert_eq!(
            o.resolve(&path("/hard"), "r").unwrap(),
            (0, "usr/bin/real".into())
        );
        assert_eq!(
            o.resolve(&path("/escape"), "r").unwrap_err().reason(),
            "UnsafePath"
        );
        assert_eq!(
            o.resolve(&path("/loop"), "r").unwrap_err().reason(),
            "UnsafePath"
        );
        assert_eq!(
            o.resolve(&path("/dev"), "r").unwrap_err().reason(),
            "NotRegularFile"
        );
        assert_eq!(
            o.resolve(&path("/dir"), "r").unwrap_err().reason(),
            "NotRegularFile"
        );
        assert_eq!(
            o.resolve(&path("/usr"), "r").unwrap_err().reason(),
            "BinaryNotFound"
        );
        assert_eq!(
            o.resolve(&path("/missing"), "r").unwrap_err().reason(),
            "BinaryNotFound"
        );
        assert_eq!(
            o.resolve(&path("/usr/bin/real/x"), "r")
                .unwrap_err()
                .reason(),
            "BinaryNotFound"
        );
    }
}
