//! The content-addressed cache of plugin binaries.
//!
//! ```text
//! <dir>/sha256/<hex>   a verified binary, read-only (0444), named by its sha256
//! <dir>/tmp/           downloads in progress (removed on success or failure)
//! ```
//!
//! A file is only ever moved into `sha256/` after its content hashed to its
//! name, so a binary is fetched once per digest and survives restarts.
//! [`Cache::verify`] hashes it again before use; a file that no longer
//! matches is deleted. [`Cache::prune`] deletes the least recently used
//! binaries that nobody references once the cache is over its size limit.
//! The cache holds nothing but plugin binaries: no credentials, no secrets.

use crate::OciError;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// Default size limit of the cache: 2 GiB.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

fn create_private_dir(path: &Path) -> Result<(), OciError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| OciError::io(path, e))
}

/// Hex sha256 of a file, streaming.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), n_total))
}

impl Cache {
    /// A cache in `dir` (created with mode 0700 on first use), pruned to
    /// `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the binary with this sha256 lives (whether or not it is there).
    pub fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join("sha256").join(sha256)
    }

    /// Directory for downloads in progress (created).
    pub fn tmp_dir(&self) -> Result<PathBuf, OciError> {
        let tmp = self.dir.join("tmp");
        create_private_dir(&tmp)?;
        Ok(tmp)
    }

    /// Whether the binary is cached and still hashes to its name; a file
    /// that does not is deleted. Marks the entry as used.
    pub fn verify(&self, sha256: &str) -> Result<bool, OciError> {
        if !crate::is_sha256_hex(sha256) {
            return Ok(false);
        }
        let path = self.path_for(sha256);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(OciError::io(&path, e)),
            Ok(m) if !m.file_type().is_file() => {
                tracing::warn!(path = %path.display(), "cache entry is not a regular file; removing it");
                let _ = std::fs::remove_file(&path);
                return Ok(false);
            }
            Ok(_) => {}
        }
        let (actual, _) = sha256_file(&path).map_err(|e| OciError::io(&path, e))?;
        if actual != sha256 {
            tracing::warn!(path = %path.display(), actual = %actual, "cached plugin binary no longer matches its digest; removing it");
            let _ = std::fs::remove_file(&path);
            return Ok(false);
        }
        self.touch(&path);
        Ok(true)
    }

    fn touch(&self, path: &Path) {
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    /// Moves a verified download into the cache under its sha256 (the
    /// caller hashed it while writing). Re-hashes to be sure.
    pub fn insert(&self, tmp_file: &Path, sha256: &str) -> Result<PathBuf, OciError> {
        let (actual, _) = sha256_file(tmp_file).map_err(|e| OciError::io(tmp_file, e))?;
        if actual != sha256 {
            let _ = std::fs::remove_file(tmp_file);
            return Err(OciError::DigestMismatch {
                what: "the extracted binary".into(),
                expected: format!("sha256:{sha256}"),
                actual: format!("sha256:{actual}"),
            });
        }
        let dir = self.dir.join("sha256");
        create_private_dir(&dir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp_file, std::fs::Permissions::from_mode(0o444))
                .map_err(|e| OciError::io(tmp_file, e))?;
        }
        let dest = self.path_for(sha256);
        std::fs::rename(tmp_file, &dest).map_err(|e| OciError::io(&dest, e))?;
        // The rename is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(dest)
    }

    /// Cached binaries: (sha256, size, last used).
    pub fn entries(&self) -> Result<Vec<(String, u64, std::time::SystemTime)>, OciError> {
        let dir = self.dir.join("sha256");
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(OciError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(m) = e.metadata()
                && m.is_file()
                && crate::is_sha256_hex(&name)
            {
                out.push((name, m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)));
            }
        }
        Ok(out)
    }

    /// Deletes unreferenced binaries, least recently used first, until the
    /// cache is within its size limit; clears stale downloads. Returns the
    /// digests removed.
    pub fn prune(&self, referenced: &HashSet<String>) -> Result<Vec<String>, OciError> {
        // Downloads older than an hour are leftovers of a crash.
        if let Ok(rd) = std::fs::read_dir(self.dir.join("tmp")) {
            for e in rd.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 3600);
                if old {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|(_, size, _)| size).sum();
        entries.sort_by_key(|(_, _, used)| *used);
        let mut removed = Vec::new();
        for (sha, size, _) in entries {
            if total <= self.max_bytes {
                break;
            }
            if referenced.contains(&sha) {
                continue;
            }
            let path = self.path_for(&sha);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    total -= size;
                    tracing::info!(sha256 = %sha, bytes = size, "pruned unused plugin binary from the cache");
                    removed.push(sha);
                }
                Err(e) => tracing::warn!(path = %path.display(), "cannot prune: {e}"),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &Cache, content: &[u8]) -> String {
        let tmp = cache.tmp_dir().unwrap().join("x");
        std::fs::write(&tmp, content).unwrap();
        let sha = crate::sha256_hex(content);
        cache.insert(&tmp, &sha).unwrap();
        sha
    }

    #[test]
    fn insert_verify_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"), 1 << 20);
        let sha = put(&cache, b"binary one");
        assert!(cache.verify(&sha).unwrap());
        assert!(!cache.verify(&"0".repeat(64)).unwrap());
        // A wrong name is refused at insert.
        let tmp = cache.tmp_dir().unwrap().join("y");
        std::fs::write(&tmp, b"abc").unwrap();
        let e = cache.insert(&tmp, &"1".repeat(64)).unwrap_err();
        assert_eq!(e.reason(), "DigestMismatch");
        // Tampering is detected and the file removed.
        let path = cache.path_for(&sha);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, b"evil").unwrap();
        assert!(!cache.verify(&sha).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn prune_keeps_referenced_and_recent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), 25);
        let a = put(&cache, &[b'a'; 10]);
        let b = put(&cache, &[b'b'; 10]);
        let c = put(&cache, &[b'c'; 10]);
        let set = |t: u64, sha: &str| {
            let f = std::fs::File::open(cache.path_for(sha)).unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
                .unwrap();
        };
        set(100, &a);
        set(200, &b);
        set(300, &c);
        // a is oldest but referenced: b goes.
        let removed = cache.prune(&HashSet::from([a.clone()])).unwrap();
        assert_eq!(removed, vec![b.clone()]);
        assert!(cache.verify(&a).unwrap() && cache.verify(&c).unwrap());
        // Under the limit: nothing goes.
        assert!(cache.prune(&HashSet::new()).unwrap().is_empty());
    }
}
