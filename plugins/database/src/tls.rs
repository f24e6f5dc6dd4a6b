//! TLS to PostgreSQL for this plugin: libpq's `sslmode` from the shared
//! `lockbox-pg-tls` crate (also used by the PostgreSQL storage backend),
//! with its errors turned into the SDK's (400s), and the hint a sandboxed
//! plugin needs when a file named by the URL cannot be read.

pub use lockbox_pg_tls::{Pem, Plan, SslMode, TlsError, is_certificate_error};
use lockbox_sdk::Error;

/// [`lockbox_pg_tls::plan`] with the plugin's error.
pub fn plan(connection_url: &str, pem: Pem<'_>) -> Result<Plan, Error> {
    lockbox_pg_tls::plan(connection_url, pem).map_err(to_error)
}

/// A TLS settings error as the SDK's: a 400, except a failed rustls setup
/// (500); an unreadable file says where the sandbox lets the plugin read.
pub fn to_error(e: TlsError) -> Error {
    match &e {
        TlsError::Setup(_) => Error::internal(e.to_string()),
        TlsError::ReadFile { source, .. } => {
            let hint = if source.kind() == std::io::ErrorKind::PermissionDenied {
                "; lockbox runs plugins in a sandbox that reads files only under /usr, /etc/ssl, \
                 /etc/pki and /etc/ca-certificates: put the file there, or give the PEM text in \
                 tls_ca (tls_certificate/private_key for a client certificate)"
            } else {
                "; give a PEM file readable by the plugin, or the PEM text in tls_ca \
                 (tls_certificate/private_key for a client certificate)"
            };
            Error::invalid(format!("{e}{hint}"))
        }
        _ => Error::invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_400s_and_an_unreadable_file_gets_the_hint() {
        let e = plan(
            "postgresql://h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            Pem::default(),
        )
        .expect_err("missing file");
        assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        assert!(text.contains("cannot be read"), "{text}");
        assert!(text.contains("tls_ca"), "{text}");
        let e = plan("postgresql://h/db?sslmode=bogus", Pem::default()).expect_err("mode");
        assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");
    }
}
