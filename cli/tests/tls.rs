//! TLS against a self-signed server on 127.0.0.1: trusting it through a CA
//! file, refusing it without one, accepting it with skip-verify, and the hint
//! when an https:// address points at a plain HTTP server.

use std::sync::Arc;

use lockbox_cli::{Client, ClientConfig, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

const SEAL_STATUS: &str = r#"{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1}"#;

fn http_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Starts a TLS server with a fresh self-signed certificate for 127.0.0.1;
/// returns its address and the certificate's PEM.
async fn tls_server() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(http_response(SEAL_STATUS).as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (address, cert_pem)
}

#[tokio::test]
async fn trusts_a_configured_ca() {
    let (address, pem) = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let client = Client::new(ClientConfig {
        ca_cert: Some(ca),
        ..ClientConfig::new(&address)
    })
    .unwrap();
    let status = client.read("sys/seal-status").await.unwrap().unwrap();
    assert_eq!(status.str_field("type"), Some("shamir"));
}

#[tokio::test]
async fn refuses_an_unknown_certificate_and_skip_verify_accepts_it() {
    let (address, _) = tls_server().await;
    // Without the CA the handshake fails (or, on a machine without any system
    // roots, building the verifier does); either way nothing is read.
    let result = match Client::new(ClientConfig::new(&address)) {
        Ok(client) => client.read("sys/seal-status").await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");

    let client = Client::new(ClientConfig {
        skip_verify: true,
        ..ClientConfig::new(&address)
    })
    .unwrap();
    assert!(client.read("sys/seal-status").await.unwrap().is_some());
}

#[tokio::test]
async fn bad_ca_files_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Client::new(ClientConfig {
        ca_cert: Some(dir.path().join("missing.pem")),
        ..ClientConfig::new("https://127.0.0.1:8200")
    })
    .unwrap_err();
    assert!(matches!(missing, Error::Config(_)), "{missing}");

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let err = Client::new(ClientConfig {
        ca_cert: Some(junk),
        ..ClientConfig::new("https://127.0.0.1:8200")
    })
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[tokio::test]
async fn https_address_for_a_plain_http_server_gets_a_hint() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(http_response("{}").as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    let client = Client::new(ClientConfig {
        skip_verify: true,
        ..ClientConfig::new(format!("https://127.0.0.1:{port}"))
    })
    .unwrap();
    let err = client.read("sys/seal-status").await.unwrap_err();
    assert!(err.to_string().contains("http:// address"), "{err}");
}
