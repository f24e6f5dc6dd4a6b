//! A stored database connection (`config/<name>`) and the credentials
//! this engine generates: what both the dynamic roles (`backend`) and the
//! static roles (`static_roles`) build on.

use crate::pg::{self, ConnectError};
use crate::tls::{self, Pem, Plan};
use lockbox_sdk::Error;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A stored connection (`config/<name>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub plugin_name: String,
    pub connection_url: String,
    pub username: String,
    pub password: String,
    pub allowed_roles: Vec<String>,
    #[serde(default)]
    pub root_rotation_statements: Vec<String>,
    pub verify_connection: bool,
    /// Vault's `tls_ca`: PEM CA certificates the server's must lead to.
    #[serde(default)]
    pub tls_ca: String,
    /// Vault's `tls_certificate`: a PEM client certificate (chain).
    #[serde(default)]
    pub tls_certificate: String,
    /// Vault's `private_key`: its PEM key (never read back).
    #[serde(default)]
    pub private_key: String,
}

impl Connection {
    /// How to reach the server: `connection_url`'s TLS parameters and the
    /// PEM fields, with the files the URL names read now.
    pub fn plan(&self) -> Result<Plan, Error> {
        tls::plan(
            &self.connection_url,
            Pem {
                ca: &self.tls_ca,
                certificate: &self.tls_certificate,
                private_key: &self.private_key,
            },
        )
    }

    /// Connects as the stored user with `password`. Most callers want
    /// `root::connect`, which also finishes an interrupted root rotation.
    pub async fn connect_with(
        &self,
        password: &str,
        name: &str,
    ) -> Result<tokio_postgres::Client, ConnectError> {
        let plan = self.plan().map_err(ConnectError::Other)?;
        pg::connect(&plan, &self.username, password, name).await
    }

    pub fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|r| r == "*" || r == role)
    }
}

/// `n` random ASCII letters and digits.
pub fn random_alnum(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A new password: 24 characters, always with an upper and a lower case
/// letter, a digit and a dash.
pub fn password() -> String {
    format!("A1a-{}", random_alnum(20))
}
