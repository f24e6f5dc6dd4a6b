//! The admin API's ACL policies (`sys/policies/acl/:name`) and its one
//! door into a mount's own API (a plugin's role endpoints), both authorized
//! exactly as the HTTP requests are.

use super::Admin;
use crate::core::api::{ApiRequest, Method, Reply};
use crate::core::policies::canonical_name;
use crate::logical::{Operation, RequestError};
use serde_json::{Map, Value};

impl Admin<'_> {
    /// Names of every ACL policy (`LIST sys/policies/acl`), `root` included.
    pub async fn policies(&self) -> Result<Vec<String>, RequestError> {
        let (active, _) = self.authorize("policies/acl", Operation::List).await?;
        active.policies.list().await
    }

    /// A policy's source text (`GET sys/policies/acl/:name`).
    pub async fn policy(&self, name: &str) -> Result<Option<String>, RequestError> {
        let name = canonical_name(name)?;
        let (active, _) = self
            .authorize(&format!("policies/acl/{name}"), Operation::Read)
            .await?;
        Ok(active.policies.get(&name).await?.map(|p| p.0.clone()))
    }

    /// Writes a policy (`PUT sys/policies/acl/:name`); the text is parsed by
    /// the policy store, so a bad policy is an `InvalidRequest`.
    pub async fn put_policy(&self, name: &str, text: &str) -> Result<(), RequestError> {
        let name = canonical_name(name)?;
        let (active, _) = self
            .authorize(&format!("policies/acl/{name}"), Operation::Update)
            .await?;
        active.policies.put(&name, text).await
    }

    /// Deletes a policy (`DELETE sys/policies/acl/:name`); a missing one is
    /// success.
    pub async fn delete_policy(&self, name: &str) -> Result<(), RequestError> {
        let name = canonical_name(name)?;
        let (active, _) = self
            .authorize(&format!("policies/acl/{name}"), Operation::Delete)
            .await?;
        active.policies.delete(&name).await
    }

    /// Reads `path` of a mount's own API (`GET /v1/<path>`, such as
    /// `auth/kubernetes/role/x`) through the whole request pipeline, as the
    /// HTTP request would be: the response's `data`, `None` for a 404.
    /// Only for mount paths: `sys/` has typed calls of its own.
    pub async fn read_mount_path(
        &self,
        path: &str,
    ) -> Result<Option<Map<String, Value>>, RequestError> {
        match self.mount_request(Method::Read, path, Map::new()).await? {
            Reply::Envelope { response, .. } => Ok(Some(response.data.unwrap_or_default())),
            Reply::NotFound => Ok(None),
            other => Err(RequestError::Internal(format!(
                "unexpected answer to GET {path}: {other:?}"
            ))),
        }
    }

    /// Writes `data` to `path` of a mount's own API (`POST /v1/<path>`).
    pub async fn write_mount_path(
        &self,
        path: &str,
        data: Map<String, Value>,
    ) -> Result<(), RequestError> {
        self.mount_request(Method::Write, path, data)
            .await
            .map(drop)
    }

    /// Deletes `path` of a mount's own API (`DELETE /v1/<path>`).
    pub async fn delete_mount_path(&self, path: &str) -> Result<(), RequestError> {
        match self.mount_request(Method::Delete, path, Map::new()).await {
            Ok(_) | Err(RequestError::NoHandler { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn mount_request(
        &self,
        method: Method,
        path: &str,
        data: Map<String, Value>,
    ) -> Result<Reply, RequestError> {
        if path.trim_start_matches('/').starts_with("sys/") {
            return Err(RequestError::invalid(format!(
                "{path}: the system backend has typed admin calls; this one is for mounts"
            )));
        }
        self.core
            .handle(ApiRequest {
                method,
                path: path.to_string(),
                data,
                token: Some(self.token.to_string()),
                remote: None,
            })
            .await
    }
}
