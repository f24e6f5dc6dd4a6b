//! A mount's identity and configuration as the plugin sees it: what every
//! call (requests, leased secrets, lifecycle) names its mount by.

use std::collections::BTreeMap;
use std::time::Duration;

/// The identity and configuration of a mount, from the host's `Setup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's UUID; names the mount in every call.
    pub id: String,
    /// Routing path, e.g. `mock/` or `auth/userpass/`.
    pub path: String,
    /// The mount's accessor.
    pub accessor: String,
    /// The plugin name the mount was enabled with.
    pub plugin_type: String,
    /// Mount options (`-options` of `secrets enable`).
    pub options: BTreeMap<String, String>,
    /// The mount's default lease TTL.
    pub default_lease_ttl: Duration,
    /// The mount's max lease TTL.
    pub max_lease_ttl: Duration,
}

impl Mount {
    /// A mount for tests: id `test-mount`, path `test/`, no options.
    pub fn for_tests() -> Self {
        Mount {
            id: "test-mount".into(),
            path: "test/".into(),
            accessor: "test_accessor".into(),
            plugin_type: "test".into(),
            options: BTreeMap::new(),
            default_lease_ttl: Duration::from_secs(768 * 3600),
            max_lease_ttl: Duration::from_secs(768 * 3600),
        }
    }
}
