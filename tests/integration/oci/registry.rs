//! A real OCI registry on loopback for the tests: Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1 with a random port and a temporary
//! storage root, optionally behind htpasswd basic auth; plus an OCI image
//! layout writer so `skopeo` can copy an ordinary container image into it
//! without Docker.
//!
//! The tools are installed from Debian when missing (`docker-registry`,
//! `skopeo`, and `apache2-utils` for `htpasswd`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Test user of the basic-auth variant.
pub const USER: &str = "plugin-puller";
/// Its password.
pub const PASSWORD: &str = "s3cret-registry-pass";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs docker-registry, skopeo and htpasswd once per test run.
pub fn ensure_tools() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        if have("docker-registry") && have("skopeo") && have("htpasswd") {
            return;
        }
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "docker-registry", "skopeo", "apache2-utils"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get")
                .args(["update", "-qq"])
                .stdout(Stdio::null())
                .status();
            install();
        }
        assert!(
            have("docker-registry") && have("skopeo") && have("htpasswd"),
            "the OCI tests need Debian's docker-registry, skopeo and apache2-utils: apt-get install -y docker-registry skopeo apache2-utils"
        );
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Storage root, config, htpasswd and log live here.
    pub dir: tempfile::TempDir,
    /// Whether basic auth is on.
    pub auth: bool,
    child: Option<Child>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Registry {
    /// Starts a registry; with `auth`, htpasswd basic auth for [`USER`].
    pub fn start(auth: bool) -> Registry {
        ensure_tools();
        let dir = tempfile::tempdir().expect("tempdir");
        let host = format!("127.0.0.1:{}", free_port());
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        if auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: lockbox-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut r = Registry {
            host,
            dir,
            auth,
            child: None,
        };
        r.resume();
        r
    }

    /// Stops the registry process (storage stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "registry already running");
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(&self.host) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if std::io::Read::read(&mut s, &mut buf).is_ok_and(|n| n >= 12)
                    && (buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.0 401"))
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come up: {}",
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT/REPO`.
    pub fn repo(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host)
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Docker config JSON with this registry's credentials (`password` may
    /// be wrong on purpose).
    pub fn docker_config(&self, password: &str) -> String {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, self.host)
    }

    /// `skopeo copy oci:LAYOUT:TAG docker://HOST/REPO:TAG`; returns the
    /// manifest digest as the registry reports it (`skopeo inspect`).
    pub fn skopeo_copy(&self, layout: &Path, tag: &str, repo: &str) -> String {
        let dest = format!("docker://{}:{tag}", self.repo(repo));
        let mut copy = Command::new("skopeo");
        copy.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if self.auth {
            copy.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        let out = copy
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(&dest)
            .output()
            .expect("run skopeo copy");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut inspect = Command::new("skopeo");
        inspect.args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"]);
        if self.auth {
            inspect.arg(format!("--creds={USER}:{PASSWORD}"));
        }
        let out = inspect.arg(&dest).output().expect("run skopeo inspect");
        assert!(
            out.status.success(),
            "skopeo inspect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

/// One file-system entry of an image layer.
pub enum Entry<'a> {
    /// A regular file, mode 0755.
    File(&'a str, &'a [u8]),
    /// A symbolic link.
    Symlink(&'a str, &'a str),
    /// A directory.
    Dir(&'a str),
}

/// A gzip-compressed layer tarball; returns (compressed, uncompressed).
pub fn layer(entries: &[Entry<'_>]) -> (Vec<u8>, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        match e {
            Entry::File(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            }
            Entry::Symlink(name, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
            Entry::Dir(name) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
        }
    }
    let raw = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), raw)
}

fn sha(bytes: &[u8]) -> String {
    lockbox_core::catalog::sha256_hex(bytes)
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// Writes an OCI image layout (as `skopeo copy oci:` reads it) of a linux
/// container image with these layers (bottom first) under `tag`.
pub fn image_layout(layout: &Path, tag: &str, layers: &[(Vec<u8>, Vec<u8>)]) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (gz, raw) in layers {
        let digest = put_blob(layout, gz);
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": gz.len(),
        }));
        diff_ids.push(format!("sha256:{}", sha(raw)));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/plugin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = put_blob(layout, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": descs,
    }))
    .unwrap();
    let manifest_digest = put_blob(layout, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// The token service of a registry with token auth (the Docker registry
/// token protocol, as Docker Hub, GHCR and most cloud registries use): the
/// registry answers 401 with `WWW-Authenticate: Bearer realm=...`, clients
/// fetch a JWT from the realm (with basic credentials) and send it as
/// `Authorization: Bearer`. Tokens are ES256 JWTs carrying the signing
/// certificate (`x5c`), which the registry trusts through its
/// `rootcertbundle`.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// PEM of the signing certificate.
    pub cert_pem: String,
    key: std::sync::Arc<ring::signature::EcdsaKeyPair>,
    cert_der: Vec<u8>,
}

/// `service` and `issuer` of the token registry.
pub const TOKEN_SERVICE: &str = "lockbox-test-registry";
const TOKEN_ISSUER: &str = "lockbox-test-issuer";

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    /// Starts the service on a free port (a thread; lives as long as the test).
    pub fn start() -> TokenServer {
        let key_pair = rcgen::KeyPair::generate().expect("key pair");
        let cert = rcgen::CertificateParams::new(vec!["lockbox-test-token-issuer".into()])
            .expect("params")
            .self_signed(&key_pair)
            .expect("self-signed");
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .expect("ES256 key");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let server = TokenServer {
            realm,
            cert_pem: cert.pem(),
            key: std::sync::Arc::new(key),
            cert_der: cert.der().to_vec(),
        };
        let (key, der) = (server.key.clone(), server.cert_der.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (key, der) = (key.clone(), der.clone());
                std::thread::spawn(move || serve_token(stream, &key, &der));
            }
        });
        server
    }

    /// A token for `actions` on `repo`, as the service issues them (for a
    /// Docker config `registrytoken`).
    pub fn token(&self, repo: &str, actions: &[&str]) -> String {
        issue(
            &self.key,
            &self.cert_der,
            &[(
                repo.to_string(),
                actions.iter().map(|a| a.to_string()).collect(),
            )],
        )
    }
}

fn issue(
    key: &ring::signature::EcdsaKeyPair,
    der: &[u8],
    access: &[(String, Vec<String>)],
) -> String {
    use base64::Engine;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
    });
    let access: Vec<serde_json::Value> = access
        .iter()
        .map(|(name, actions)| serde_json::json!({"type": "repository", "name": name, "actions": actions}))
        .collect();
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER,
        "sub": USER,
        "aud": TOKEN_SERVICE,
        "exp": now + 600,
        "nbf": now - 60,
        "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .expect("sign");
    format!("{signing_input}.{}", b64url(sig.as_ref()))
}

/// One HTTP/1.x request to the token endpoint: valid basic credentials of
/// [`USER`] get the requested scopes; anything else is 401.
fn serve_token(mut stream: std::net::TcpStream, key: &ring::signature::EcdsaKeyPair, der: &[u8]) {
    use base64::Engine;
    use std::io::{BufRead, BufReader};
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
            && let Some(b64) = value.trim().strip_prefix("Basic ")
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim())
        {
            authorized = raw == format!("{USER}:{PASSWORD}").as_bytes();
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut access = Vec::new();
    for pair in query.split('&') {
        if let Some(scope) = pair.strip_prefix("scope=") {
            let scope = scope
                .replace("%3A", ":")
                .replace("%3a", ":")
                .replace("%2C", ",")
                .replace("%2c", ",")
                .replace("%2F", "/")
                .replace("%2f", "/");
            // repository:NAME:ACTIONS
            let mut parts = scope.splitn(2, ':');
            if parts.next() == Some("repository")
                && let Some(rest) = parts.next()
                && let Some((name, actions)) = rest.rsplit_once(':')
            {
                access.push((
                    name.to_string(),
                    actions.split(',').map(String::from).collect(),
                ));
            }
        }
    }
    let (status, body) = if authorized {
        let token = issue(key, der, &access);
        (
            "200 OK",
            serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                .to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_string(),
        )
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Registry {
    /// Starts a registry with token auth trusting `tokens`.
    pub fn start_with_tokens(tokens: &TokenServer) -> Registry {
        ensure_tools();
        let dir = tempfile::tempdir().expect("tempdir");
        let host = format!("127.0.0.1:{}", free_port());
        let bundle = dir.path().join("token-ca.pem");
        std::fs::write(&bundle, &tokens.cert_pem).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\nauth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            dir.path().join("storage").display(),
            tokens.realm,
            bundle.display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut r = Registry {
            host,
            dir,
            auth: true,
            child: None,
        };
        r.resume();
        r
    }
}
