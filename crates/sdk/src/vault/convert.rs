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
//! Leased secrets, as Vault's Go SDK framework (`framework.Secret`) sends
//! and receives them:
//!
//! ```text
//!  Response { secret: SecretLease }  ──▶ Response.secret { lease_options { ttl, max_ttl (ns),
//!                                          renewable, increment 0, issue_time zero },
//!                                          internal_data: JSON with "secret_type", lease_id "" }
//!                                        (the host registers the lease and assigns its id)
//!  Request { operation "renew"|"revoke", ──▶ SecretRequest (internal data, the lease's options,
//!            secret, data }                  the response data it was issued with)
//!  renewal granted (zero: as asked)   ──▶ Response.secret: the host's secret, ttl = granted
//!  revocation done                    ──▶ no response
//! ```
//!
//! Vault decodes `data` and `internal_data` as JSON and a lease's
//! `issue_time` as a timestamp, so they are always sent ("null", "{}",
//! Go's zero time), never left empty.

use crate::error::Error;
use crate::lease::{SecretLease, SecretRequest};
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
    /// `renew`: a leased secret's renewal (`Request.secret`), or a login
    /// token's (`Request.auth`, which the SDK does not support).
    Renew,
    /// `revoke`: a leased secret's revocation (`Request.secret`).
    Revoke,
    /// Anything else (`help`, `patch`, `alias-lookahead`, `resolve-role`,
    /// `header`, ...): answered `ErrUnsupportedOperation`, the sentinel
    /// Vault's core checks for.
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
        "renew" => VaultOp::Renew,
        "revoke" => VaultOp::Revoke,
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

fn go_zero_time() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: GO_ZERO_TIME_SECONDS,
        nanos: 0,
    }
}

fn lease_options(ttl: Duration, max_ttl: Duration, renewable: bool) -> pb::LeaseOptions {
    pb::LeaseOptions {
        ttl: nanos(ttl),
        renewable,
        increment: 0,
        issue_time: Some(go_zero_time()),
        max_ttl: nanos(max_ttl),
    }
}

/// A secret as Vault's framework sends it with a response (`Secret.Response`):
/// the lease options the plugin chose (zero TTLs: the host applies the
/// mount's), the internal data as JSON and no lease id (the host assigns it
/// when it registers the lease).
fn secret(s: SecretLease) -> Result<pb::Secret, Error> {
    let internal_data = serde_json::to_string(&s.internal_data)
        .map_err(|e| Error::internal(format!("cannot encode secret internal data: {e}")))?;
    Ok(pb::Secret {
        lease_options: Some(lease_options(s.ttl, s.max_ttl, s.renewable)),
        internal_data,
        lease_id: String::new(),
    })
}

/// A leased secret the host hands back for renewal or revocation, with the
/// wire secret a renewal is answered with.
#[derive(Debug)]
pub(crate) struct SecretCall {
    /// What the backend's `renew_secret` / `revoke_secret` get.
    pub(crate) request: SecretRequest,
    /// The host's `Request.secret`, as received.
    pub(crate) wire: pb::Secret,
}

/// A lease option in nanoseconds (Go's `time.Duration`); negative is
/// malformed.
fn lease_duration(field: &str, nanos: i64) -> Result<Duration, Error> {
    u64::try_from(nanos).map(Duration::from_nanos).map_err(|_| {
        Error::invalid(format!(
            "malformed secret: lease option {field} is negative ({nanos} ns)"
        ))
    })
}

/// Unix seconds of a lease's issue time; Go's zero time (unset) is 0.
fn unix_seconds(t: Option<&prost_types::Timestamp>) -> i64 {
    match t {
        Some(t) if t.seconds != GO_ZERO_TIME_SECONDS => t.seconds,
        _ => 0,
    }
}

/// The secret's internal data: the JSON object the plugin sent at issue.
fn internal_data(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        _ if raw.is_empty() => Ok(serde_json::Map::new()),
        Ok(other) => Err(Error::invalid(format!(
            "malformed secret: its internal_data must be a JSON object (as this plugin issued it), got {}",
            match other {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                _ => "a boolean",
            }
        ))),
        Err(e) => Err(Error::invalid(format!(
            "malformed secret: its internal_data is not valid JSON: {e}"
        ))),
    }
}

/// Decodes a `renew`/`revoke` request: Vault's `Request.secret` (lease
/// options, internal data, lease id) and `Request.data` (the response data
/// the secret was issued with; Vault's lease entry keeps it).
pub(crate) fn secret_call(mount: &Arc<Mount>, r: pb::Request) -> Result<SecretCall, Error> {
    let mount = mount_for(mount, &r);
    let Some(wire) = r.secret else {
        return Err(Error::invalid(format!(
            "malformed {} request for {:?}: it carries no secret (Request.secret); \
             only leased secrets are renewed or revoked by this plugin",
            r.operation, r.path
        )));
    };
    let lease = wire.lease_options.unwrap_or_default();
    let request = SecretRequest {
        path: r.path,
        lease_id: wire.lease_id.clone(),
        internal_data: internal_data(&wire.internal_data)?,
        data: decode_data(r.data.as_bytes())?,
        ttl: lease_duration("ttl", lease.ttl)?,
        max_ttl: lease_duration("max_ttl", lease.max_ttl)?,
        increment: lease_duration("increment", lease.increment)?,
        issue_time: unix_seconds(lease.issue_time.as_ref()),
        renewable: lease.renewable,
        mount,
    };
    Ok(SecretCall { request, wire })
}

/// The answer to a renewal: the host's secret with the TTL granted (zero:
/// the one asked, [`SecretRequest::asked_ttl`]), as a framework renew
/// handler returns `&logical.Response{Secret: req.Secret}`. No data: Vault
/// shows a renewal's data to the caller of `sys/leases/renew` (and keeps it
/// as the lease's data), and the secret's data is not theirs to see again.
/// The host caps the TTL at the lease's max TTL.
pub(crate) fn renewed(wire: pb::Secret, granted: Duration, asked: Duration) -> pb::Response {
    let mut lease = wire.lease_options.unwrap_or_default();
    lease.ttl = nanos(if granted.is_zero() { asked } else { granted });
    if lease.issue_time.is_none() {
        lease.issue_time = Some(go_zero_time());
    }
    let internal_data = if wire.internal_data.is_empty() {
        "{}".to_string()
    } else {
        wire.internal_data
    };
    pb::Response {
        secret: Some(pb::Secret {
            lease_options: Some(lease),
            internal_data,
            lease_id: String::new(),
        }),
        data: "null".into(),
        ..Default::default()
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

/// Encodes a response; a secret becomes Vault's `Response.secret`, which the
/// host turns into a lease. `lease_duration`/`renewable` without a secret
/// and `cacheable` have no Vault counterpart and are not sent.
pub(crate) fn response(resp: Response) -> Result<pb::Response, Error> {
    let data = serde_json::to_string(&resp.data)
        .map_err(|e| Error::internal(format!("cannot encode response data: {e}")))?;
    Ok(pb::Response {
        data,
        secret: resp.secret.map(secret).transpose()?,
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
        assert_eq!(operation("renew"), VaultOp::Renew);
        assert_eq!(operation("revoke"), VaultOp::Revoke);
        for other in ["help", "patch", "RENEW", "alias-lookahead", "", "READ"] {
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

    fn creds_lease() -> SecretLease {
        let mut internal = serde_json::Map::new();
        internal.insert("secret_type".into(), "creds".into());
        internal.insert("username".into(), "v-alice".into());
        internal.insert("n".into(), 7.into());
        SecretLease {
            internal_data: internal,
            ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(600),
            renewable: true,
        }
    }

    /// A response with a secret is `Response.secret` (field 1) as the Go
    /// framework sends it: lease options in nanoseconds, Go's zero issue
    /// time, no increment, no lease id; then the host hands the same secret
    /// back (`Request.secret`, field 6) and it decodes to what was issued.
    #[test]
    fn secrets_round_trip_through_vaults_messages() {
        let issued = Response {
            secret: Some(creds_lease()),
            ..Response::json(serde_json::json!({"username": "v-alice", "password": "pw"}))
        };
        let wire = response(issued.clone()).unwrap();
        assert_eq!(wire.data, r#"{"password":"pw","username":"v-alice"}"#);
        let s = wire.secret.clone().expect("Response.secret");
        assert_eq!(s.lease_id, "");
        let internal: serde_json::Value = serde_json::from_str(&s.internal_data).unwrap();
        assert_eq!(
            internal,
            serde_json::json!({"secret_type": "creds", "username": "v-alice", "n": 7})
        );
        let lease = s.lease_options.unwrap();
        assert_eq!(lease.ttl, 60_000_000_000);
        assert_eq!(lease.max_ttl, 600_000_000_000);
        assert!(lease.renewable);
        assert_eq!(lease.increment, 0);
        assert_eq!(lease.issue_time.unwrap().seconds, GO_ZERO_TIME_SECONDS);
        // No secret: no Response.secret.
        assert!(response(Response::default()).unwrap().secret.is_none());

        // The host's renewal: its lease entry's secret with the issue time
        // and the increment asked, the lease's data, the mount point.
        let mut back = s.clone();
        let mut opts = lease;
        opts.issue_time = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        });
        opts.increment = 90_000_000_000;
        back.lease_options = Some(opts);
        back.lease_id = "db/creds/ro/abc".into();
        let mut r = wire_request("renew", &wire.data, Some(back.clone()));
        r.path = "creds/ro".into();
        let mount = Arc::new(Mount::for_tests());
        let call = secret_call(&mount, r).unwrap();
        let req = &call.request;
        assert_eq!(req.path, "creds/ro");
        assert_eq!(req.lease_id, "db/creds/ro/abc");
        assert_eq!(req.mount.path, "mock2/");
        assert_eq!(
            req.internal_data,
            issued.secret.as_ref().unwrap().internal_data
        );
        assert_eq!(Some(&req.data), issued.data.as_ref());
        assert_eq!(req.ttl, Duration::from_secs(60));
        assert_eq!(req.max_ttl, Duration::from_secs(600));
        assert_eq!(req.increment, Duration::from_secs(90));
        assert_eq!(req.asked_ttl(), Duration::from_secs(90));
        assert_eq!(req.issue_time, 1_700_000_000);
        assert!(req.renewable);
        assert_eq!(call.wire, back);

        // The answer: the same secret with the TTL granted, no lease id
        // (the host keeps its own), no data.
        let answer = renewed(call.wire.clone(), Duration::from_secs(30), req.asked_ttl());
        assert_eq!(answer.data, "null");
        let s2 = answer.secret.unwrap();
        assert_eq!(s2.lease_id, "");
        assert_eq!(s2.internal_data, back.internal_data);
        let o2 = s2.lease_options.unwrap();
        assert_eq!(o2.ttl, 30_000_000_000);
        assert_eq!(o2.max_ttl, 600_000_000_000);
        assert_eq!(o2.increment, 90_000_000_000);
        assert!(o2.renewable);
        assert_eq!(o2.issue_time.unwrap().seconds, 1_700_000_000);
        // Zero granted: the TTL asked.
        let answer = renewed(call.wire, Duration::ZERO, req.asked_ttl());
        let ttl = answer.secret.unwrap().lease_options.unwrap().ttl;
        assert_eq!(ttl, 90_000_000_000);
    }

    fn wire_request(op: &str, data: &str, secret: Option<pb::Secret>) -> pb::Request {
        pb::Request {
            secret,
            ..wire(op, data)
        }
    }

    #[test]
    fn malformed_secrets_are_refused_by_name() {
        let mount = Arc::new(Mount::for_tests());
        let e = secret_call(&mount, wire_request("revoke", "null", None)).unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
        assert!(e.to_string().contains("no secret"), "{e}");
        let with = |internal: &str, ttl: i64| pb::Secret {
            internal_data: internal.into(),
            lease_options: Some(pb::LeaseOptions {
                ttl,
                ..Default::default()
            }),
            lease_id: String::new(),
        };
        for (internal, ttl, expect) in [
            ("{nope", 1, "not valid JSON"),
            ("[1]", 1, "got an array"),
            (r#"{"secret_type":"creds"}"#, -5, "ttl is negative"),
        ] {
            let r = wire_request("renew", "null", Some(with(internal, ttl)));
            let e = secret_call(&mount, r).unwrap_err();
            assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
            assert!(e.to_string().contains(expect), "{e}");
        }
        // No internal data and no lease options decode (the backend then
        // refuses the secret for having no type); Go's zero time is 0.
        let r = wire_request(
            "revoke",
            "null",
            Some(pb::Secret {
                lease_options: Some(pb::LeaseOptions {
                    issue_time: Some(go_zero_time()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        let call = secret_call(&mount, r).unwrap();
        assert!(call.request.internal_data.is_empty());
        assert_eq!(call.request.issue_time, 0);
        let answer = renewed(call.wire, Duration::from_secs(1), Duration::ZERO);
        assert_eq!(answer.secret.unwrap().internal_data, "{}");
    }
}
