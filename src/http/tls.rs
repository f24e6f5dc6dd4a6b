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
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let write = |name: &str, contents: String, mode: u32| -> Result<PathBuf, TlsError> {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(|source| TlsError::Read {
            path: path.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        }
        Ok(path)
    };
    Ok(DevCerts {
        ca: write("ca.pem", ca_cert.pem(), 0o644)?,
        cert: write("cert.pem", server_cert.pem(), 0o644)?,
        key: write("key.pem", server_key.serialize_pem(), 0o600)?,
    })
}
