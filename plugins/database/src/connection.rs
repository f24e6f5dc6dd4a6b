//! A stored database connection (`config/<name>`) and the credentials
//! this engine generates: what both the dynamic roles (`backend`) and the
//! static roles (`static_roles`) build on.

use crate::pg;
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
}

impl Connection {
    pub async fn connect(&self, name: &str) -> Result<tokio_postgres::Client, Error> {
        let url = pg::fill_url(&self.connection_url, &self.username, &self.password);
        pg::connect(&url, name).await
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
