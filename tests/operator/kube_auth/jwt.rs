//! Just enough JWT for the refusal tests: read the parts of a
//! ServiceAccount token and sign a changed copy with the API server's own
//! signing key (RS256 with `ring`, already a dev-dependency), so a token
//! differs from a real one only in what the test changes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::path::Path;

/// A compact JWS split into its decoded header and claims.
pub struct Jwt {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
    pub signature: String,
}

impl Jwt {
    /// Decodes `token` (a real one from the TokenRequest API); panics with
    /// the reason on anything else.
    pub fn parse(token: &str) -> Jwt {
        let parts: Vec<&str> = token.trim().split('.').collect();
        assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
        let json = |p: &str| -> serde_json::Value {
            let raw = B64
                .decode(p)
                .unwrap_or_else(|e| panic!("bad base64url in {token}: {e}"));
            serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("bad JSON in {token}: {e}"))
        };
        Jwt {
            header: json(parts[0]),
            claims: json(parts[1]),
            signature: parts[2].to_string(),
        }
    }

    fn signing_input(&self) -> String {
        format!(
            "{}.{}",
            B64.encode(self.header.to_string()),
            B64.encode(self.claims.to_string())
        )
    }

    /// Header and claims as they are now, with the signature it had when
    /// parsed (which no longer matches if the claims changed).
    pub fn with_old_signature(&self) -> String {
        format!("{}.{}", self.signing_input(), self.signature)
    }

    /// Header and claims signed RS256 with the PEM private key at `key`
    /// (PKCS#8 or PKCS#1, as `openssl genrsa` writes it).
    pub fn sign(&self, key: &Path) -> String {
        use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
        use rustls::pki_types::PrivateKeyDer;
        let pem = std::fs::read(key).unwrap_or_else(|e| panic!("read {}: {e}", key.display()));
        let der = rustls_pemfile::private_key(&mut pem.as_slice())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{} holds no private key", key.display()));
        let pair = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => panic!("{} is not an RSA key", key.display()),
        }
        .unwrap_or_else(|e| panic!("{} is not a usable RSA key: {e}", key.display()));
        let input = self.signing_input();
        let mut sig = vec![0u8; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("RS256 signing");
        format!("{input}.{}", B64.encode(sig))
    }
}
