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
        ..Default::default()
    })
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

/// A `HandleRequest` reply as the core's answer: the plugin's error (or an
/// error response, which Vault answers with 400 unless the error says
/// otherwise), or its response.
pub fn reply(
    name: &str,
    kind: BackendKind,
    reply: pb::HandleRequestReply,
    path: &str,
) -> Result<Option<logical::Response>, RequestError> {
    let data = match &reply.response {
        Some(r) => crate::host::plugin_data(name, r.data.as_bytes())?,
        None => None,
    };
    let err_msg = data.as_ref().and_then(error_message);
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
    if let Some(m) = err_msg {
        return Err(RequestError::InvalidRequest(m));
    }
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
            })
        }
        None => None,
    };
    let lease = resp
        .secret
        .as_ref()
        .and_then(|s| s.lease_options)
        .unwrap_or_default();
    Ok(Some(logical::Response {
        data,
        login,
        warnings: resp.warnings,
        lease_duration: secs(lease.ttl),
        renewable: lease.renewable,
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
