//! TLS for the API listener: PEM certificate and key loaded into a rustls
//! server config, reloadable on SIGHUP, and a self-signed CA + server
//! certificate for `server --dev-tls`.

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// Errors loading TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The PEM had no certificate or key.
    #[error("{path} contains no {what} in PEM format")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: &'static str,
    },
    /// rustls rejected the pair.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the dev certificate failed.
    #[error("failed to generate a development certificate: {0}")]
    Generate(String),
}

/// Installs ring as rustls's process-wide crypto provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Builds a rustls server config from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    install_crypto_provider();
    let cert_pem = read(cert)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: cert.to_path_buf(),
            what: "certificate",
        });
    }
    let key_pem = read(key)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::Missing {
            path: key.to_path_buf(),
            what: "private key",
        })?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A TLS acceptor whose certificate can be swapped while serving.
///
/// Clones share the state: the server's accept loop holds one, the SIGHUP
/// handler another. A reload reads and validates the new pair first and
/// swaps only on success, so a bad file never takes the listener down;
/// connections already accepted keep the certificate they were served.
#[derive(Clone)]
pub struct Reloadable {
    current: Arc<RwLock<Current>>,
}

struct Current {
    cert: PathBuf,
    key: PathBuf,
    acceptor: TlsAcceptor,
}

impl Reloadable {
    /// Loads the pair.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let config = server_config(cert, key)?;
        Ok(Self {
            current: Arc::new(RwLock::new(Current {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                acceptor: TlsAcceptor::from(Arc::new(config)),
            })),
        })
    }

    /// Serves `config` (built in memory, e.g. the HA cluster listener's);
    /// there are no files to re-read.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self {
            current: Arc::new(RwLock::new(Current {
                cert: PathBuf::new(),
                key: PathBuf::new(),
                acceptor: TlsAcceptor::from(config),
            })),
        }
    }

    /// Re-reads the current files; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (cert, key) = self.paths();
        self.reload_from(&cert, &key)
    }

    /// Loads the pair from (possibly new) paths and serves it from now on;
    /// on error the old certificate and paths stay in use.
    pub fn reload_from(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let config = server_config(cert, key)?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Current {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        Ok(())
    }

    /// The certificate and key files in use.
    pub fn paths(&self) -> (PathBuf, PathBuf) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.cert.clone(), current.key.clone())
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .acceptor
            .clone()
    }
}

/// Files written by [`generate_dev`].
pub struct DevCerts {
    /// The CA certificate clients should trust.
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server key (mode 0600).
    pub key: PathBuf,
}

/// Creates a new file with `mode` set by the open call itself (exclusive
/// create, so an existing file or a planted symlink is never opened); the
/// umask can only remove bits, and they are put back on the open handle
/// before anything is written.
pub fn create_private(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Writes `contents` to `path` with exactly `mode` from the first byte on:
/// into a new file made by [`create_private`], which then replaces `path`
/// (so an older file at `path`, whatever its mode, is never written
/// through).
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = create_private(&tmp, mode).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The directory for the dev certificates: created 0700 if missing; an
/// existing one must be ours and writable by nobody else (the default
/// `$TMPDIR/lockbox-dev-tls-<pid>` has a predictable name, and whoever owns
/// the directory can swap the files the server and its clients trust).
fn private_dir(dir: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let err = |source| TlsError::Read {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
            return Ok(());
        }
        Err(e) => return Err(err(e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(err)?;
    let ours = meta.uid() == rustix::process::geteuid().as_raw();
    if !meta.is_dir() || !ours || meta.mode() & 0o022 != 0 {
        return Err(TlsError::Generate(format!(
            "{} already exists and is not a directory of this user that only it can write; remove it or choose another --dev-tls-cert-dir",
            dir.display()
        )));
    }
    Ok(())
}

/// Generates a throwaway CA and a server certificate for `127.0.0.1` and
/// `localhost` into `dir`, like Vault's `-dev-tls`.
pub fn generate_dev(dir: &Path) -> Result<DevCerts, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let g = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let ca_key = KeyPair::generate().map_err(g)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(g)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "lockbox dev CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(g)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().map_err(g)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(g)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "lockbox dev server");
    let server_cert = params.signed_by(&server_key, &issuer).map_err(g)?;
    private_dir(dir)?;
    let write = |name: &str, contents: String, mode: u32| -> Result<PathBuf, TlsError> {
        let path = dir.join(name);
        write_new_file(&path, contents.as_bytes(), mode).map_err(|source| TlsError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    Ok(DevCerts {
        ca: write("ca.pem", ca_cert.pem(), 0o644)?,
        cert: write("cert.pem", server_cert.pem(), 0o644)?,
        key: write("key.pem", server_key.serialize_pem(), 0o600)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_dev_key_is_created_0600() {
        let dir = tempfile::tempdir().unwrap();
        // An older, world-readable key at the same name (a reused
        // --dev-tls-cert-dir) must not keep its mode.
        std::fs::write(dir.path().join("key.pem"), "old").unwrap();
        std::fs::set_permissions(
            dir.path().join("key.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let certs = generate_dev(dir.path()).unwrap();
        assert_eq!(mode(&certs.key), 0o600);
        assert_eq!(mode(&certs.ca), 0o644);
        assert!(
            std::fs::read_to_string(&certs.key)
                .unwrap()
                .contains("PRIVATE KEY")
        );
        // Nothing is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn the_key_file_has_its_mode_from_the_open_call() {
        let dir = tempfile::tempdir().unwrap();
        // Right after creation, before a byte is written: already 0600.
        let path = dir.path().join("key.pem");
        let file = create_private(&path, 0o600).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(file.metadata().unwrap().len(), 0);
        // An existing file (or a symlink planted at the name) is refused,
        // never opened.
        let e = create_private(&path, 0o600).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("link")).unwrap();
        assert!(create_private(&dir.path().join("link"), 0o600).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    }

    #[test]
    fn a_dev_cert_dir_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = generate_dev(&shared).err().expect("refused").to_string();
        assert!(e.contains("--dev-tls-cert-dir"), "{e}");
        // A new directory is made 0700.
        let fresh = dir.path().join("a/b");
        generate_dev(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }
}
