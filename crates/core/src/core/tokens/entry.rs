//! A token as stored ([`TokenEntry`]), as the request pipeline sees it
//! after lookup ([`Resolved`]), and the parameters of a creation
//! ([`CreateParams`]).

use crate::logical::Auth;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A stored token (without its ID).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// Non-secret handle for lookup and revocation by operators.
    pub accessor: String,
    /// Sorted policy names.
    pub policies: Vec<String>,
    /// Hash of the parent token; `None` for orphans.
    pub parent: Option<String>,
    /// The path that created the token (`auth/token/create`, `auth/token/root`).
    pub path: String,
    /// Free-form metadata.
    pub meta: Option<Map<String, Value>>,
    /// Display name (`token`, `root`, or `token-<name>`).
    pub display_name: String,
    /// Remaining uses; 0 means unlimited.
    pub num_uses: i64,
    /// Unix seconds.
    pub creation_time: i64,
    /// TTL at creation, seconds; 0 means no expiry.
    pub creation_ttl: u64,
    /// Unix seconds of expiry; `None` for never.
    pub expire_time: Option<i64>,
    /// Hard cap in seconds from creation; 0 means none.
    pub explicit_max_ttl: u64,
    /// Whether `renew` is allowed.
    pub renewable: bool,
    /// Unix seconds of issue.
    pub issue_time: i64,
    /// Unix seconds of the last renewal; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renewal: Option<i64>,
    /// The issuing auth method's internal data (Vault's
    /// `Auth.InternalData`), given back to it at renewal; never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_data: Option<Map<String, Value>>,
}

impl TokenEntry {
    pub(super) fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    pub(super) fn expired(&self, now: i64) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    /// Used up: its last use is being (or was) revoked.
    pub(super) fn used_up(&self) -> bool {
        self.num_uses < 0
    }

    pub(super) fn ttl_left(&self, now: i64) -> u64 {
        self.expire_time
            .map(|t| (t - now).max(0) as u64)
            .unwrap_or(0)
    }

    pub(super) fn rfc3339(secs: i64) -> Value {
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(Value::String)
            .unwrap_or(Value::Null)
    }

    /// The `data` of a lookup response.
    pub fn lookup_data(&self, id: Option<&str>, now: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("accessor".into(), json!(self.accessor));
        m.insert("creation_time".into(), json!(self.creation_time));
        m.insert("creation_ttl".into(), json!(self.creation_ttl));
        m.insert("display_name".into(), json!(self.display_name));
        m.insert("entity_id".into(), json!(""));
        m.insert(
            "expire_time".into(),
            self.expire_time.map(Self::rfc3339).unwrap_or(Value::Null),
        );
        m.insert("explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        m.insert("id".into(), json!(id.unwrap_or("")));
        m.insert("issue_time".into(), Self::rfc3339(self.issue_time));
        if let Some(t) = self.last_renewal {
            m.insert("last_renewal".into(), Self::rfc3339(t));
            m.insert("last_renewal_time".into(), json!(t));
        }
        m.insert(
            "meta".into(),
            self.meta.clone().map(Value::Object).unwrap_or(Value::Null),
        );
        m.insert("num_uses".into(), json!(self.num_uses));
        m.insert("orphan".into(), json!(self.parent.is_none()));
        m.insert("path".into(), json!(self.path));
        m.insert("policies".into(), json!(self.policies));
        m.insert("renewable".into(), json!(self.renewable));
        m.insert("ttl".into(), json!(self.ttl_left(now)));
        m.insert("type".into(), json!("service"));
        m
    }

    pub(super) fn auth(&self, id: &str, now: i64) -> Auth {
        Auth {
            client_token: id.to_string(),
            accessor: self.accessor.clone(),
            policies: self.policies.clone(),
            token_policies: self.policies.clone(),
            identity_policies: None,
            metadata: self.meta.clone(),
            lease_duration: self.ttl_left(now),
            renewable: self.renewable,
            entity_id: String::new(),
            token_type: "service".into(),
            orphan: self.parent.is_none(),
            mfa_requirement: None,
            num_uses: self.num_uses,
        }
    }
}

/// A token that passed lookup, as the request pipeline sees it.
#[derive(Clone)]
pub struct Resolved {
    /// HMAC of the ID.
    pub hash: String,
    /// The entry.
    pub entry: Arc<TokenEntry>,
    /// The ID the caller presented (for `lookup-self` and `renew-self`).
    pub(super) id: Zeroizing<String>,
}

impl Resolved {
    /// The token's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A resolved token made up by a test.
    #[cfg(test)]
    pub(crate) fn for_tests(id: &str, entry: TokenEntry) -> Resolved {
        Resolved {
            hash: String::new(),
            entry: Arc::new(entry),
            id: Zeroizing::new(id.to_string()),
        }
    }
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("hash", &self.hash)
            .field("entry", &self.entry)
            .field("id", &"<redacted>")
            .finish()
    }
}

/// Parameters of a token creation.
#[derive(Debug, Clone, Default)]
pub struct CreateParams {
    /// An explicit ID (root or sudo only).
    pub id: Option<String>,
    /// Requested policies; empty inherits the parent's.
    pub policies: Vec<String>,
    /// Metadata.
    pub meta: Option<Map<String, Value>>,
    /// Do not attach `default`.
    pub no_default_policy: bool,
    /// Create without a parent.
    pub orphan: bool,
    /// Renewable (default true).
    pub renewable: Option<bool>,
    /// TTL seconds (0: default).
    pub ttl: u64,
    /// Hard cap seconds (0: none).
    pub explicit_max_ttl: u64,
    /// Display name suffix.
    pub display_name: Option<String>,
    /// Number of uses (0: unlimited).
    pub num_uses: i64,
    /// Path recorded on the token.
    pub path: String,
    /// An auth method's internal data (logins only).
    pub internal_data: Option<Map<String, Value>>,
}
