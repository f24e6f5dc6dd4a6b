//! Pulls from a hostile registry on loopback (a small HTTP server in the
//! test) that answers with endless bodies: every read stops at its limit,
//! so memory stays bounded and the pull ends with an error instead of
//! buffering the answer. Each endless answer sends up to [`CAP`] bytes
//! before closing, and counts what the socket accepted: a client that reads
//! whole bodies (as `oci-client`'s manifest pull did) takes all of it.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most an endless answer sends.
const CAP: u64 = 256 * 1024 * 1024;
/// What a bounded client may cost: the limit plus what the kernel's
/// socket buffers accept before the client closes (a few MiB), far
/// below [`CAP`].
const BOUND: u64 = 64 * 1024 * 1024;

/// An answer of the fake registry.
#[derive(Clone)]
enum Answer {
    /// Status, headers and a body with its length.
    Fixed(u16, Vec<String>, Vec<u8>),
    /// Status and headers, then zeros until [`CAP`] or the client leaves.
    Endless(u16, Vec<String>),
}

struct Server {
    host: String,
    /// Bytes of endless bodies the clients' sockets accepted.
    sent: Arc<AtomicU64>,
    /// Set when an endless answer ended.
    ended: Arc<AtomicBool>,
}

impl Server {
    async fn wait_ended(&self) {
        // A guard against a hang, not a timing assertion.
        for _ in 0..600 {
            if self.ended.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the endless answer never ended");
    }
}

async fn serve(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let route = Arc::new(route);
    let (s, e) = (sent.clone(), ended.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (route, sent, ended) = (route.clone(), s.clone(), e.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or(target);
                match route(path) {
                    Answer::Fixed(status, headers, body) => {
                        let mut out = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                            body.len()
                        );
                        for h in headers {
                            out.push_str(&h);
                            out.push_str("\r\n");
                        }
                        out.push_str("\r\n");
                        let _ = conn.write_all(out.as_bytes()).await;
                        let _ = conn.write_all(&body).await;
                    }
                    Answer::Endless(status, headers) => {
                        let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                        for h in headers {
                            out.push_str(&h);
                            out.push_str("\r\n");
                        }
                        out.push_str("\r\n");
                        if conn.write_all(out.as_bytes()).await.is_ok() {
                            let chunk = vec![b'0'; 64 * 1024];
                            let mut total = 0u64;
                            while total < CAP {
                                match conn.write(&chunk).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        total += n as u64;
                                        sent.fetch_add(n as u64, Ordering::SeqCst);
                                    }
                                }
                            }
                        }
                        ended.store(true, Ordering::SeqCst);
                    }
                }
                let _ = conn.shutdown().await;
            });
        }
    });
    Server { host, sent, ended }
}

fn no_challenge() -> Answer {
    Answer::Fixed(200, vec![], b"{}".to_vec())
}

fn registry(s: &Server) -> Registry {
    Registry::new(std::slice::from_ref(&s.host)).unwrap()
}

fn assert_bounded(s: &Server) {
    let sent = s.sent.load(Ordering::SeqCst);
    assert!(
        sent < BOUND,
        "the client took {sent} bytes of an endless answer (bound {BOUND})"
    );
}

/// An endless manifest: `TooLarge` once past 4 MiB.
#[tokio::test]
async fn an_endless_manifest_is_refused_at_the_limit() {
    let s = serve(|path| match path {
        "/v2/" => no_challenge(),
        _ => Answer::Endless(200, vec![format!("Content-Type: {}", layout::OCI_MANIFEST)]),
    })
    .await;
    let image = ImageRef::parse(&format!("{}/plugins/evil:v1", s.host)).unwrap();
    let e = registry(&s)
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "TooLarge", "{e}");
    let OciError::TooLarge { size, limit, .. } = &e else {
        unreachable!()
    };
    assert_eq!(*limit, MAX_MANIFEST_BYTES);
    assert!(*size <= MAX_MANIFEST_BYTES + 4 * 1024 * 1024, "{e}");
    s.wait_ended().await;
    assert_bounded(&s);
}

/// An index whose platform manifest is endless: the same bound for the
/// second document.
#[tokio::test]
async fn an_endless_platform_manifest_behind_an_index_is_refused() {
    let platform = format!("sha256:{}", sha256_hex(b"the platform manifest"));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": layout::OCI_INDEX,
        "manifests": [{
            "mediaType": layout::OCI_MANIFEST,
            "digest": platform,
            "size": 1000,
            "platform": {"architecture": arch, "os": "linux"},
        }],
    }))
    .unwrap();
    let index_digest = format!("sha256:{}", sha256_hex(&index));
    let (i, p) = (index_digest.clone(), platform.clone());
    let s = serve(move |path| {
        if path == "/v2/" {
            no_challenge()
        } else if path.ends_with(&i) {
            Answer::Fixed(
                200,
                vec![format!("Content-Type: {}", layout::OCI_INDEX)],
                index.clone(),
            )
        } else if path.ends_with(&p) {
            Answer::Endless(200, vec![format!("Content-Type: {}", layout::OCI_MANIFEST)])
        } else {
            Answer::Fixed(404, vec![], vec![])
        }
    })
    .await;
    let image = ImageRef::parse(&format!("{}/plugins/evil@{index_digest}", s.host)).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path(), crate::DEFAULT_MAX_SIZE);
    let opts = PullOptions {
        path: crate::DEFAULT_PATH.into(),
        expected_sha256: None,
        max_size: crate::DEFAULT_MAX_SIZE,
    };
    let e = registry(&s)
        .pull_binary(&image, &Credentials::Anonymous, &opts, &cache)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "TooLarge", "{e}");
    assert!(e.to_string().contains(&platform), "{e}");
    s.wait_ended().await;
    assert_bounded(&s);
}

/// An endless answer from the token service the registry's challenge
/// names, and an endless error body: both end without buffering them.
#[tokio::test]
async fn endless_token_and_error_answers_are_bounded() {
    // The realm names the server itself, known once it listens.
    let host_cell = Arc::new(std::sync::OnceLock::<String>::new());
    let hc = host_cell.clone();
    let s = serve(move |path| match path {
        "/v2/" => Answer::Fixed(
            401,
            vec![format!(
                r#"WWW-Authenticate: Bearer realm="http://{}/token",service="evil""#,
                hc.get().map(String::as_str).unwrap_or("")
            )],
            vec![],
        ),
        _ => Answer::Endless(200, vec!["Content-Type: application/json".into()]),
    })
    .await;
    let _ = host_cell.set(s.host.clone());
    let image = ImageRef::parse(&format!("{}/plugins/evil:v1", s.host)).unwrap();
    let e = registry(&s)
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "TooLarge", "{e}");
    assert!(e.to_string().contains("token service"), "{e}");
    s.wait_ended().await;
    assert_bounded(&s);

    let s = serve(|path| match path {
        "/v2/" => no_challenge(),
        _ => Answer::Endless(500, vec!["Content-Type: text/plain".into()]),
    })
    .await;
    let image = ImageRef::parse(&format!("{}/plugins/evil:v1", s.host)).unwrap();
    let e = registry(&s)
        .resolve(&image, &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "RegistryUnavailable", "{e}");
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    s.wait_ended().await;
    assert_bounded(&s);
}
