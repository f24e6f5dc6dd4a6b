//! The core's requests and responses ⇄ Vault's `pb.Request` /
//! `pb.Response`, and a Vault plugin's errors as the statuses Vault gives
//! them (`logical.RespondErrorCommon`).

use lockbox_core::logical::{self, BackendKind, RequestError};
use lockbox_vault_plugin_proto::pb;

/// `ProtoError.err_type` values (Vault's `sdk/plugin/pb` translation).
mod err_type {
    pub const USER: u32 = 1;
    pub const CODED: u32 = 3;
    pub const BAD_REQUEST: u32 = 4;
    pub const UNSUPPORTED_OPERATION: u32 = 5;
    pub const UNSUPPORTED_PATH: u32 = 6;
    pub const INVALID_REQUEST: u32 = 7;
    pub const PERMISSION_DENIED: u32 = 8;
}

fn op(op: logical::Operation) -> &'static str {
    match op {
        logical::Operation::Read => "read",
        logical::Operation::Create => "create",
        logical::Operation::Update => "update",
        logical::Operation::Delete => "delete",
        logical::Operation::List => "list",
        logical::Operation::Patch => "patch",
    }
}

/// The core's request as Vault's. The client token is never sent: a
/// plugin is not trusted with it.
pub fn request(req: &logical::Request, unauthenticated: bool) -> Result<pb::Request, RequestError> {
    Ok(pb::Request {
        id: req.id.clone(),
        operation: op(req.operation).into(),
        path: req.path.clone(),
        data: serde_json::to_string(&req.data)
            .map_err(|e| RequestError::Internal(e.to_string()))?,
        client_token_accessor: req.client_token_accessor.clone().unwrap_or_default(),
        display_name: req.display_name.clone().unwrap_or_default(),
        mount_point: req.mount_point.clone(),
        mount_type: req.mount_type.clone(),
        mount_accessor: req.mount_accessor.clone(),
        unauthenticated,
        connection: req.remote.map(|a| pb::Connection {
            remote_addr: a.ip().to_string(),
            remote_port: i32::from(a.port()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn ns(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX)
}

/// A plugin's internal data (JSON text; empty = none), shape-checked.
fn internal_data(
    name: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, RequestError> {
    if text.is_empty() {
        return Ok(Default::default());
    }
    Ok(crate::host::plugin_data(name, text.as_bytes())?.unwrap_or_default())
}

/// A leased secret handed back to its plugin, as Vault's `RenewRequest` /
/// `RevokeRequest`: operation `renew` or `revoke` on the path that created
/// it, with its `Secret` (internal data, lease options, lease id) and the
/// data it was handed out with.
pub fn secret_request(op: &str, c: &logical::SecretCall) -> Result<pb::Request, RequestError> {
    let json = |v: &serde_json::Map<String, serde_json::Value>| {
        serde_json::to_string(v).map_err(|e| RequestError::Internal(e.to_string()))
    };
    Ok(pb::Request {
        operation: op.into(),
        path: c.path.clone(),
        data: json(&c.data)?,
        secret: Some(pb::Secret {
            lease_options: Some(pb::LeaseOptions {
                ttl: ns(c.ttl),
                renewable: c.renewable,
                increment: ns(c.increment),
                issue_time: Some(prost_types::Timestamp {
                    seconds: c.issue_time,
                    nanos: 0,
                }),
                max_ttl: ns(c.max_ttl),
            }),
            internal_data: json(&c.internal_data)?,
            lease_id: c.lease_id.clone(),
        }),
        ..Default::default()
    })
}

/// The plugin's answer to a secret's renewal: the TTL it grants
/// (seconds), or its refusal.
pub fn secret_renew_reply(
    name: &str,
    reply: pb::HandleRequestReply,
    path: &str,
) -> Result<u64, RequestError> {
    refused(name, &reply, path)?;
    match reply.response.and_then(|r| r.secret) {
        Some(s) => Ok(secs(s.lease_options.unwrap_or_default().ttl)),
        None => Err(RequestError::Internal(format!(
            "plugin {name} answered the renewal of a lease without the secret; the lease was not renewed"
        ))),
    }
}

/// The plugin's answer to a revocation: done, or its refusal.
pub fn secret_revoke_reply(
    name: &str,
    reply: pb::HandleRequestReply,
    path: &str,
) -> Result<(), RequestError> {
    refused(name, &reply, path)
}

/// A token renewal as Vault's `RenewAuthRequest`: operation `renew` on the
/// login path, with the token's `Auth` (its internal data, policies,
/// metadata, lease options). The token itself is never sent.
pub fn renew_request(r: &logical::AuthRenewal) -> Result<pb::Request, RequestError> {
    let internal = serde_json::to_string(&r.internal_data)
        .map_err(|e| RequestError::Internal(e.to_string()))?;
    Ok(pb::Request {
        id: String::new(),
        operation: "renew".into(),
        path: r.path.clone(),
        data: "{}".into(),
        auth: Some(pb::Auth {
            lease_options: Some(pb::LeaseOptions {
                ttl: ns(r.ttl),
                renewable: true,
                increment: ns(r.increment),
                issue_time: Some(prost_types::Timestamp {
                    seconds: r.issue_time,
                    nanos: 0,
                }),
                max_ttl: ns(r.max_ttl),
            }),
            internal_data: internal,
            display_name: r.display_name.clone(),
            policies: r.policies.clone(),
            token_policies: r.policies.clone(),
            metadata: r.metadata.clone().into_iter().collect(),
            accessor: r.accessor.clone(),
            explicit_max_ttl: ns(r.max_ttl),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The plugin's answer to a renewal: the TTL it grants (seconds), or its
/// refusal. An answer without `Auth` is refused (the plugin did not say
/// how long).
pub fn renew_reply(
    name: &str,
    reply: pb::HandleRequestReply,
    path: &str,
) -> Result<u64, RequestError> {
    refused(name, &reply, path)?;
    match reply.response.and_then(|r| r.auth) {
        Some(a) => Ok(secs(a.lease_options.unwrap_or_default().ttl)),
        None => Err(RequestError::Internal(format!(
            "plugin {name} answered the renewal of a token without auth; the token was not renewed"
        ))),
    }
}

/// A plugin's error as the core's, with Vault's status for each kind.
pub fn error(name: &str, e: &pb::ProtoError, path: &str) -> RequestError {
    let msg = e.err_msg.clone();
    match e.err_type {
        err_type::USER | err_type::BAD_REQUEST | err_type::INVALID_REQUEST => {
            RequestError::InvalidRequest(msg)
        }
        err_type::PERMISSION_DENIED if msg.is_empty() || msg == "permission denied" => {
            RequestError::PermissionDenied
        }
        err_type::PERMISSION_DENIED => RequestError::Denied(msg),
        err_type::UNSUPPORTED_OPERATION => RequestError::UnsupportedOperation,
        err_type::UNSUPPORTED_PATH => RequestError::NoHandler {
            path: path.to_string(),
        },
        // Vault answers a coded error with its code (and the plugin's
        // message); a code that is not an HTTP error status is a 500.
        err_type::CODED => match u16::try_from(e.err_code) {
            Ok(status @ 400..=599) => RequestError::Coded {
                status,
                message: msg,
            },
            _ => RequestError::Internal(format!(
                "plugin {name}: {msg} (invalid status {})",
                e.err_code
            )),
        },
        _ => RequestError::Internal(format!("plugin {name}: {msg}")),
    }
}

/// A `HandleExistenceCheck` reply: the plugin's error, or whether the
/// target exists (`None`: the path has no existence check, so the request
/// is an update).
pub fn existence(
    name: &str,
    reply: &pb::HandleExistenceCheckReply,
    path: &str,
) -> Result<Option<bool>, RequestError> {
    if let Some(e) = reply
        .err
        .as_ref()
        .filter(|e| e.err_type != 0 || !e.err_msg.is_empty())
    {
        return Err(error(name, e, path));
    }
    Ok(reply.check_found.then_some(reply.exists))
}

/// Vault's `Response.IsError`: data is exactly `{"error": ...}`.
fn error_message(data: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    match (data.len(), data.get("error")) {
        (1, Some(serde_json::Value::String(s))) => Some(s.clone()),
        (1, Some(v)) if !v.is_null() => Some(v.to_string()),
        _ => None,
    }
}

fn secs(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000_000).unwrap_or(0)
}

/// The refusal a `HandleRequest` reply carries: the plugin's error (with
/// the message of its error response, if any), or an error response alone
/// (Vault answers it with 400).
fn refusal(
    name: &str,
    reply: &pb::HandleRequestReply,
    data: Option<&serde_json::Map<String, serde_json::Value>>,
    path: &str,
) -> Result<(), RequestError> {
    let err_msg = data.and_then(error_message);
    if let Some(e) = reply
        .err
        .as_ref()
        .filter(|e| e.err_type != 0 || !e.err_msg.is_empty())
    {
        let mut e = e.clone();
        if let Some(m) = err_msg {
            e.err_msg = m;
        }
        return Err(error(name, &e, path));
    }
    match err_msg {
        Some(m) => Err(RequestError::InvalidRequest(m)),
        None => Ok(()),
    }
}

/// A reply's response data, shape-checked (`None`: no response or data).
fn reply_data(
    name: &str,
    reply: &pb::HandleRequestReply,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, RequestError> {
    match &reply.response {
        Some(r) => crate::host::plugin_data(name, r.data.as_bytes()),
        None => Ok(None),
    }
}

/// [`refusal`] of a reply whose data is only read for its error message
/// (renewals and revocations).
fn refused(name: &str, reply: &pb::HandleRequestReply, path: &str) -> Result<(), RequestError> {
    let data = reply_data(name, reply)?;
    refusal(name, reply, data.as_ref(), path)
}

/// A `HandleRequest` reply as the core's answer: the plugin's error (or an
/// error response, which Vault answers with 400 unless the error says
/// otherwise), or its response.
pub fn reply(
    name: &str,
    kind: BackendKind,
    reply: pb::HandleRequestReply,
    path: &str,
) -> Result<Option<logical::Response>, RequestError> {
    let data = reply_data(name, &reply)?;
    refusal(name, &reply, data.as_ref(), path)?;
    let Some(resp) = reply.response else {
        return Ok(None);
    };
    if resp.wrap_info.as_ref().is_some_and(|w| w.ttl > 0) {
        return Err(RequestError::InvalidRequest(format!(
            "plugin {name} asked to wrap its response, but lockbox does not support response wrapping"
        )));
    }
    let login = match resp.auth {
        Some(a) => {
            crate::host::login_allowed(name, kind)?;
            let lease = a.lease_options.unwrap_or_default();
            Some(logical::LoginAuth {
                policies: if a.policies.is_empty() {
                    a.token_policies
                } else {
                    a.policies
                },
                metadata: a.metadata.into_iter().collect(),
                display_name: a.display_name,
                ttl: secs(lease.ttl),
                max_ttl: secs(lease.max_ttl.max(a.explicit_max_ttl)),
                renewable: lease.renewable,
                num_uses: a.num_uses,
                internal_data: internal_data(name, &a.internal_data)?,
            })
        }
        None => None,
    };
    let secret = match resp.secret {
        Some(s) => {
            let lease = s.lease_options.unwrap_or_default();
            Some(logical::SecretLease {
                internal_data: internal_data(name, &s.internal_data)?,
                ttl: secs(lease.ttl),
                max_ttl: secs(lease.max_ttl),
                renewable: lease.renewable,
            })
        }
        None => None,
    };
    Ok(Some(logical::Response {
        data,
        login,
        secret,
        warnings: resp.warnings,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(err_type: u32, code: i64) -> pb::ProtoError {
        pb::ProtoError {
            err_type,
            err_msg: "boom".into(),
            err_code: code,
        }
    }

    /// The client's address reaches the plugin as Vault's
    /// `Connection` (auth methods bind CIDRs with it); the token never.
    #[test]
    fn a_request_carries_the_client_connection() {
        let req = logical::Request {
            id: "r".into(),
            operation: logical::Operation::Update,
            path: "login".into(),
            data: Default::default(),
            mount_point: "auth/x/".into(),
            mount_type: "x".into(),
            mount_accessor: "auth_x_1".into(),
            mount_default_ttl: 0,
            mount_max_ttl: 0,
            mount_force_no_cache: false,
            client_token_accessor: None,
            display_name: None,
            remote: Some("192.0.2.7:41234".parse().unwrap()),
        };
        let pb = request(&req, true).unwrap();
        let c = pb.connection.expect("a connection");
        assert_eq!(
            (c.remote_addr.as_str(), c.remote_port),
            ("192.0.2.7", 41234)
        );
        assert!(pb.client_token.is_empty());
        let none = request(
            &logical::Request {
                remote: None,
                ..req
            },
            true,
        )
        .unwrap();
        assert!(none.connection.is_none());
    }

    #[test]
    fn errors_map_to_vaults_statuses() {
        let status = |e: pb::ProtoError| error("p", &e, "m/x").status();
        assert_eq!(status(coded(err_type::USER, 0)), 400);
        assert_eq!(status(coded(err_type::INVALID_REQUEST, 0)), 400);
        assert_eq!(status(coded(err_type::PERMISSION_DENIED, 0)), 403);
        assert_eq!(status(coded(err_type::UNSUPPORTED_PATH, 0)), 404);
        assert_eq!(status(coded(err_type::UNSUPPORTED_OPERATION, 0)), 405);
        assert_eq!(status(coded(err_type::CODED, 403)), 403);
        assert_eq!(status(coded(err_type::CODED, 429)), 429);
        assert_eq!(status(coded(err_type::CODED, 200)), 500);
        assert_eq!(status(coded(2, 0)), 500);
    }

    #[test]
    fn an_error_response_is_a_400_with_its_message() {
        let r = pb::HandleRequestReply {
            response: Some(pb::Response {
                data: r#"{"error":"no such role"}"#.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = reply("p", BackendKind::Secret, r, "x").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("no such role"), "{e}");
    }

    #[test]
    fn a_response_the_plugin_wants_wrapped_is_refused_clearly() {
        let r = pb::HandleRequestReply {
            response: Some(pb::Response {
                data: r#"{"k":"v"}"#.into(),
                wrap_info: Some(pb::ResponseWrapInfo {
                    ttl: 60_000_000_000,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = reply("p", BackendKind::Secret, r, "x").unwrap_err();
        assert!(
            e.to_string().contains("does not support response wrapping"),
            "{e}"
        );
    }

    #[test]
    fn a_secrets_engine_cannot_log_in() {
        let r = pb::HandleRequestReply {
            response: Some(pb::Response {
                auth: Some(pb::Auth::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(reply("p", BackendKind::Secret, r, "x").is_err());
    }
}
