//! TLS against a self-signed server on 127.0.0.1: trusting it through a CA
//! file, refusing it without one, accepting it with skip-verify, and the hint
//! when an https:// address points at a plain HTTP server. A self-signed CA
//! certificate (CA:TRUE) used as the server's certificate is accepted when
//! that very certificate is in the CA file, as Vault's Go client does, with
//! its name and dates still checked; any other CA certificate used as a
//! server certificate is refused with a hint saying so.

use std::sync::Arc;

use lockbox_cli::{Client, ClientConfig, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer},
};

const SEAL_STATUS: &str = r#"{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1}"#;

fn http_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Starts a TLS server on 127.0.0.1 that presents `chain` (leaf first) and
/// answers every request with a seal status; returns its address.
async fn serve_tls(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> String {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
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
    address
}

fn key_der(key: &rcgen::KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(key.serialize_der().into())
}

/// Starts a TLS server with a fresh self-signed certificate for 127.0.0.1;
/// returns its address and the certificate's PEM.
async fn tls_server() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let address = serve_tls(
        vec![certified.cert.der().clone()],
        key_der(&certified.signing_key),
    )
    .await;
    (address, cert_pem)
}

/// Parameters of a CA certificate (basicConstraints CA:TRUE, as `openssl req
/// -x509` makes by default) for these names.
fn ca_params(names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
}

/// A server presenting a self-signed CA certificate made from `params`;
/// returns its address and the certificate's PEM.
async fn self_signed_ca_server(params: rcgen::CertificateParams) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let address = serve_tls(vec![cert.der().clone()], key_der(&key)).await;
    (address, cert.pem())
}

/// A client trusting exactly the PEM certificates in `pems`.
fn client_trusting(dir: &std::path::Path, address: &str, pems: &[&str]) -> Client {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pems.concat()).unwrap();
    Client::new(ClientConfig {
        ca_cert: Some(ca),
        ..ClientConfig::new(address)
    })
    .unwrap()
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

#[tokio::test]
async fn a_self_signed_ca_certificate_in_the_ca_file_is_accepted_as_server_certificate() {
    let (address, pem) = self_signed_ca_server(ca_params(&["127.0.0.1", "localhost"])).await;
    // Another CA first in the file: the match is on the certificate itself.
    let other = rcgen::KeyPair::generate().unwrap();
    let other_pem = ca_params(&["other.example"])
        .self_signed(&other)
        .unwrap()
        .pem();
    let dir = tempfile::tempdir().unwrap();
    let client = client_trusting(dir.path(), &address, &[&other_pem, &pem]);
    let status = client.read("sys/seal-status").await.unwrap().unwrap();
    assert_eq!(status.str_field("type"), Some("shamir"));
}

#[tokio::test]
async fn a_self_signed_ca_certificate_still_needs_the_right_name_and_dates() {
    let dir = tempfile::tempdir().unwrap();

    let (address, pem) = self_signed_ca_server(ca_params(&["localhost"])).await;
    let err = client_trusting(dir.path(), &address, &[&pem])
        .read("sys/seal-status")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not valid for name"), "{text}");
    assert!(
        text.contains("its TLS certificate was not accepted"),
        "{text}"
    );
    assert!(!text.contains("Is it running?"), "{text}");

    let mut expired = ca_params(&["127.0.0.1"]);
    expired.not_before = rcgen::date_time_ymd(2000, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let (address, pem) = self_signed_ca_server(expired).await;
    let err = client_trusting(dir.path(), &address, &[&pem])
        .read("sys/seal-status")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn a_ca_certificate_not_in_the_ca_file_is_refused_with_a_hint() {
    // The file holds a root; the server presents a CA:TRUE certificate the
    // root signed (an intermediate used as a server certificate).
    let root_key = rcgen::KeyPair::generate().unwrap();
    let root_params = ca_params(&[]);
    let root_pem = root_params.self_signed(&root_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(root_params, &root_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = ca_params(&["127.0.0.1"]).signed_by(&key, &issuer).unwrap();
    let address = serve_tls(vec![cert.der().clone()], key_der(&key)).await;
    let dir = tempfile::tempdir().unwrap();
    let err = client_trusting(dir.path(), &address, &[&root_pem])
        .read("sys/seal-status")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("CaUsedAsEndEntity"), "{text}");
    assert!(
        text.contains(
            "is a CA certificate (basicConstraints CA:TRUE) used as a server certificate"
        ) && text.contains("regenerate it with basicConstraints=CA:FALSE"),
        "{text}"
    );
    assert!(!text.contains("Is it running?"), "{text}");
}
