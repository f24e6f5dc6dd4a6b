//! Vault's `logical.Request`/`Response` (package `pb`) ⇄ the SDK's own
//! [`Request`]/[`Response`], and the SDK's [`Error`] → `pb.ProtoError`.
//!
//! | SDK | Vault wire | what the host answers |
//! |---|---|---|
//! | `Ok(None)` | no response | 404 on read/list, 204 otherwise |
//! | [`Error::InvalidRequest`] | `{"error": msg}` response + `ErrInvalidRequest` (7) | 400, msg |
//! | [`Error::PermissionDenied`] | coded (3), 403 | 403, msg |
//! | [`Error::UnsupportedPath`] | coded (3), 404 | 404, msg |
//! | [`Error::UnsupportedOperation`] | coded (3), 405 | 405, msg |
//! | [`Error::Internal`], [`Error::Storage`] | internal (2) | 500, msg |
//! | [`Error::Unavailable`] | coded (3), 503 | 503, msg |
//! | an operation the SDK has no name for | `ErrUnsupportedOperation` (5) | 405 |
//!
//! Vault decodes `data` and `internal_data` as JSON and a lease's
//! `issue_time` as a timestamp, so they are always sent ("null", "{}",
//! Go's zero time), never left empty.

use crate::error::Error;
use crate::logical::{Auth, Mount, Operation, Request, Response};
use crate::service::decode_data;
use lockbox_vault_plugin_proto::pb;
use std::sync::Arc;
use std::time::Duration;

/// `pb.ProtoError` kinds (Vault's `pb.ErrType*`).
pub(crate) mod err_type {
    /// `errutil.InternalError`: 500 with the message.
    pub const INTERNAL: u32 = 2;
    /// `logical.CodedError`: the status in `err_code`, with the message.
    pub const CODED: u32 = 3;
    /// `logical.ErrUnsupportedOperation`.
    pub const UNSUPPORTED_OPERATION: u32 = 5;
    /// `logical.ErrInvalidRequest`.
    pub const INVALID_REQUEST: u32 = 7;
}

/// Seconds of Go's zero `time.Time` (0001-01-01) since the Unix epoch: what
/// Vault's SDK sends for an unset timestamp.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// What a request's operation means to the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VaultOp {
    /// One the SDK's backends handle.
    Known(Operation),
    /// `rollback`: Vault's periodic call on every mount; the SDK has no
    /// write-ahead log, so there is nothing to roll back.
    Rollback,
    /// Anything else (`help`, `patch`, `renew`, `revoke`, `alias-lookahead`,
    /// `resolve-role`, `header`, ...): answered `ErrUnsupportedOperation`,
    /// the sentinel Vault's core checks for.
    Other,
}

pub(crate) fn operation(op: &str) -> VaultOp {
    match op {
        "read" => VaultOp::Known(Operation::Read),
        "create" => VaultOp::Known(Operation::Create),
        "update" => VaultOp::Known(Operation::Update),
        "delete" => VaultOp::Known(Operation::Delete),
        "list" => VaultOp::Known(Operation::List),
        "rollback" => VaultOp::Rollback,
        _ => VaultOp::Other,
    }
}

/// The mount as this request sees it: the path and accessor come with
/// every Vault request (`Setup` does not name them).
fn mount_for(mount: &Arc<Mount>, r: &pb::Request) -> Arc<Mount> {
    let path_differs = !r.mount_point.is_empty() && r.mount_point != mount.path;
    let accessor_differs = !r.mount_accessor.is_empty() && r.mount_accessor != mount.accessor;
    if !path_differs && !accessor_differs {
        return mount.clone();
    }
    let mut m = Mount::clone(mount);
    if path_differs {
        m.path = r.mount_point.clone();
    }
    if accessor_differs {
        m.accessor = r.mount_accessor.clone();
    }
    Arc::new(m)
}

/// Decodes a request the SDK handles.
pub(crate) fn request(
    mount: &Arc<Mount>,
    operation: Operation,
    r: pb::Request,
) -> Result<Request, Error> {
    let data = decode_data(r.data.as_bytes())?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Request {
        mount: mount_for(mount, &r),
        id: r.id,
        operation,
        path: r.path,
        data,
        client_token_accessor: non_empty(r.client_token_accessor),
        display_name: non_empty(r.display_name),
    })
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn lease_options(ttl: Duration, max_ttl: Duration, renewable: bool) -> pb::LeaseOptions {
    pb::LeaseOptions {
        ttl: nanos(ttl),
        renewable,
        increment: 0,
        issue_time: Some(prost_types::Timestamp {
            seconds: GO_ZERO_TIME_SECONDS,
            nanos: 0,
        }),
        max_ttl: nanos(max_ttl),
    }
}

fn auth(a: Auth) -> pb::Auth {
    pb::Auth {
        lease_options: Some(lease_options(a.ttl, a.max_ttl, a.renewable)),
        internal_data: "{}".into(),
        display_name: a.display_name,
        policies: a.policies,
        metadata: a.metadata.into_iter().collect(),
        num_uses: a.num_uses,
        ..Default::default()
    }
}

/// Encodes a response. The lease fields and `cacheable` have no Vault
/// counterpart without a secret type and are not sent.
pub(crate) fn response(resp: Response) -> Result<pb::Response, Error> {
    let data = serde_json::to_string(&resp.data)
        .map_err(|e| Error::internal(format!("cannot encode response data: {e}")))?;
    Ok(pb::Response {
        data,
        auth: resp.auth.map(auth),
        warnings: resp.warnings,
        ..Default::default()
    })
}

/// An error as Vault's host expects it: the reply's `response` (only for
/// [`Error::InvalidRequest`], Vault's `logical.ErrorResponse`) and `err`.
pub(crate) fn error(e: &Error) -> (Option<pb::Response>, pb::ProtoError) {
    let coded = |code: i64| pb::ProtoError {
        err_type: err_type::CODED,
        err_msg: e.to_string(),
        err_code: code,
    };
    match e {
        Error::InvalidRequest(message) => {
            let data = serde_json::json!({ "error": message }).to_string();
            let resp = pb::Response {
                data,
                ..Default::default()
            };
            let err = pb::ProtoError {
                err_type: err_type::INVALID_REQUEST,
                err_msg: "invalid request".into(),
                err_code: 0,
            };
            (Some(resp), err)
        }
        Error::PermissionDenied(_) => (None, coded(403)),
        Error::UnsupportedPath(_) => (None, coded(404)),
        Error::UnsupportedOperation(_) => (None, coded(405)),
        Error::Unavailable(_) => (None, coded(503)),
        Error::Internal(_) | Error::Storage(_) => (
            None,
            pb::ProtoError {
                err_type: err_type::INTERNAL,
                err_msg: e.to_string(),
                err_code: 0,
            },
        ),
    }
}

/// Vault's `logical.ErrUnsupportedOperation`.
pub(crate) fn unsupported_operation() -> pb::ProtoError {
    pb::ProtoError {
        err_type: err_type::UNSUPPORTED_OPERATION,
        err_msg: "unsupported operation".into(),
        err_code: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(op: &str, data: &str) -> pb::Request {
        pb::Request {
            id: "r1".into(),
            operation: op.into(),
            path: "a/b".into(),
            data: data.into(),
            mount_point: "mock2/".into(),
            mount_accessor: "mock_123".into(),
            client_token_accessor: "acc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn operations_map_and_the_rest_are_unsupported() {
        assert_eq!(operation("read"), VaultOp::Known(Operation::Read));
        assert_eq!(operation("create"), VaultOp::Known(Operation::Create));
        assert_eq!(operation("rollback"), VaultOp::Rollback);
        for other in [
            "help",
            "patch",
            "renew",
            "revoke",
            "alias-lookahead",
            "",
            "READ",
        ] {
            assert_eq!(operation(other), VaultOp::Other, "{other}");
        }
        assert_eq!(unsupported_operation().err_type, 5);
    }

    #[test]
    fn requests_carry_the_mount_point_and_json_data() {
        let mount = Arc::new(Mount::for_tests());
        let r = request(&mount, Operation::Update, wire("update", r#"{"k":"v"}"#)).unwrap();
        assert_eq!(r.mount.path, "mock2/");
        assert_eq!(r.mount.accessor, "mock_123");
        assert_eq!(r.mount.id, mount.id);
        assert_eq!(r.data["k"], "v");
        assert_eq!(r.client_token_accessor.as_deref(), Some("acc"));
        assert_eq!(r.display_name, None);
        // Vault sends "null" for a request without a body.
        let r = request(&mount, Operation::Read, wire("read", "null")).unwrap();
        assert!(r.data.is_empty());
        let e = request(&mount, Operation::Update, wire("update", "[1]")).unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)));
    }

    #[test]
    fn responses_always_carry_decodable_json() {
        let r = response(Response::default()).unwrap();
        assert_eq!(r.data, "null");
        let r = response(Response::json(serde_json::json!({"a": 1}))).unwrap();
        assert_eq!(r.data, r#"{"a":1}"#);
        let login = Response::auth(Auth {
            policies: vec!["p".into()],
            ttl: Duration::from_secs(60),
            renewable: true,
            ..Default::default()
        });
        let a = response(login).unwrap().auth.unwrap();
        assert_eq!(a.internal_data, "{}");
        assert_eq!(a.policies, vec!["p"]);
        let lease = a.lease_options.unwrap();
        assert_eq!(lease.ttl, 60_000_000_000);
        assert!(lease.renewable);
        assert_eq!(lease.issue_time.unwrap().seconds, GO_ZERO_TIME_SECONDS);
    }

    #[test]
    fn errors_keep_their_status_and_message() {
        let (resp, err) = error(&Error::invalid("missing data"));
        assert_eq!(err.err_type, err_type::INVALID_REQUEST);
        assert_eq!(resp.unwrap().data, r#"{"error":"missing data"}"#);
        let (resp, err) = error(&Error::permission_denied("bad password"));
        assert!(resp.is_none());
        assert_eq!((err.err_type, err.err_code), (err_type::CODED, 403));
        assert_eq!(err.err_msg, "bad password");
        assert_eq!(error(&Error::UnsupportedPath("x".into())).1.err_code, 404);
        assert_eq!(
            error(&Error::UnsupportedOperation("x".into())).1.err_code,
            405
        );
        assert_eq!(error(&Error::unavailable("x")).1.err_code, 503);
        assert_eq!(error(&Error::internal("x")).1.err_type, err_type::INTERNAL);
    }
}
