//! The routes of the system backend, declared once: [`SysRoute::parse`]
//! names the endpoint a (canonical) `sys/` path is, [`SysRoute::operations`]
//! the operations it answers, and [`dispatch`] the handler of each. A path
//! no route names is a 404; a named route asked for another operation is a
//! 405 (`UnsupportedOperation`).

use super::{
    audit_endpoints as audit, lease_endpoints as leases, mount_endpoints as mounts,
    plugin_endpoints as plugins,
};
use super::{capabilities, internal_ui_mount, internal_ui_mounts, key_status, policy_endpoint};
use crate::core::admin::Caller;
use crate::core::fields::str_field;
use crate::core::mounts::Table;
use crate::core::tokens::Resolved;
use crate::core::{Active, Core};
use crate::logical::{Operation, Request, RequestError, Response};
use serde_json::{Map, Value, json};

/// One endpoint of `sys/` (paths relative to `sys/`, already canonical).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SysRoute<'a> {
    /// `mounts`, `auth`: the mount table.
    Mounts(Table),
    /// `mounts/:path`, `auth/:path`.
    Mount(Table, &'a str),
    /// `mounts/:path/tune`, `auth/:path/tune`.
    MountTune(Table, &'a str),
    /// `remount`.
    Remount,
    /// `remount/status/:id`.
    RemountStatus(&'a str),
    /// `plugins/catalog`.
    Catalog,
    /// `plugins/catalog/:type`.
    CatalogType(&'a str),
    /// `plugins/catalog/:type/:name`.
    CatalogEntry(&'a str, &'a str),
    /// `plugins/reload/backend`.
    ReloadBackend,
    /// `plugins/reload/backend/status`.
    ReloadStatus,
    /// `plugins/reload/:type/:name`.
    ReloadPlugin(&'a str, &'a str),
    /// `seal`.
    Seal,
    /// `step-down`.
    StepDown,
    /// `ha-status`.
    HaStatus,
    /// `rotate`, `rotate/keyring` (OpenBao's name for it).
    Rotate,
    /// `key-status`.
    KeyStatus,
    /// `policies/acl`.
    Policies,
    /// `policies/acl/:name`.
    Policy(&'a str),
    /// `policy` (the legacy listing).
    LegacyPolicies,
    /// `policy/:name`.
    LegacyPolicy(&'a str),
    /// `capabilities-self`.
    CapabilitiesSelf,
    /// `capabilities`.
    Capabilities,
    /// `internal/ui/mounts`.
    UiMounts,
    /// `internal/ui/mounts/:path`.
    UiMount(&'a str),
    /// `leases/lookup` (body `lease_id`).
    LeaseLookup,
    /// `leases/lookup/:prefix` (LIST; sudo).
    LeaseList(&'a str),
    /// `leases/renew`, `leases/renew/:id`, `renew`, `renew/:id`.
    LeaseRenew(Option<&'a str>),
    /// `leases/revoke`, `leases/revoke/:id`, `revoke`, `revoke/:id`.
    LeaseRevoke(Option<&'a str>),
    /// `leases/revoke-prefix/:prefix`, `revoke-prefix/:prefix` (sudo).
    LeaseRevokePrefix(&'a str),
    /// `leases/revoke-force/:prefix`, `revoke-force/:prefix` (sudo).
    LeaseRevokeForce(&'a str),
    /// `leases/tidy`.
    LeaseTidy,
    /// `audit`: the enabled audit devices (sudo).
    AuditDevices,
    /// `audit/:path` (sudo).
    AuditDevice(&'a str),
    /// `audit-hash/:path`.
    AuditHash(&'a str),
}

use Operation::{Create, Delete, List, Read, Update};

/// A route that takes the rest of the path as its name.
type Named<'a> = fn(&'a str) -> SysRoute<'a>;

impl<'a> SysRoute<'a> {
    /// The endpoint `path` names; `None`: no such endpoint.
    pub(super) fn parse(path: &'a str) -> Option<Self> {
        use SysRoute::*;
        Some(match path {
            "mounts" => Mounts(Table::Mounts),
            "auth" => Mounts(Table::Auth),
            "remount" => Remount,
            "plugins/catalog" => Catalog,
            "plugins/reload/backend" => ReloadBackend,
            "plugins/reload/backend/status" => ReloadStatus,
            "seal" => Seal,
            "step-down" => StepDown,
            "ha-status" => HaStatus,
            "rotate" | "rotate/keyring" => Rotate,
            "key-status" => KeyStatus,
            "policies/acl" => Policies,
            "policy" => LegacyPolicies,
            "capabilities-self" => CapabilitiesSelf,
            "capabilities" => Capabilities,
            "internal/ui/mounts" => UiMounts,
            "leases/lookup" => LeaseLookup,
            "leases/renew" | "renew" => LeaseRenew(None),
            "leases/revoke" | "revoke" => LeaseRevoke(None),
            "leases/tidy" => LeaseTidy,
            "audit" => AuditDevices,
            _ => return Self::parse_named(path),
        })
    }

    /// The endpoints that take a name in their path.
    fn parse_named(path: &'a str) -> Option<Self> {
        use SysRoute::*;
        for (prefix, table) in [("mounts/", Table::Mounts), ("auth/", Table::Auth)] {
            if let Some(rest) = path.strip_prefix(prefix) {
                return Some(match rest.strip_suffix("/tune") {
                    Some(mount) => MountTune(table, mount),
                    None => Mount(table, rest),
                });
            }
        }
        if let Some(rest) = path.strip_prefix("plugins/catalog/") {
            return Some(match rest.split_once('/') {
                Some((kind, name)) => CatalogEntry(kind, name),
                None => CatalogType(rest),
            });
        }
        if let Some(rest) = path.strip_prefix("plugins/reload/") {
            return rest.split_once('/').map(|(k, n)| ReloadPlugin(k, n));
        }
        let named: [(&str, Named<'a>); 16] = [
            ("audit/", AuditDevice),
            ("audit-hash/", AuditHash),
            ("remount/status/", RemountStatus),
            ("policies/acl/", Policy),
            ("policy/", LegacyPolicy),
            ("internal/ui/mounts/", UiMount),
            ("leases/lookup/", LeaseList),
            ("leases/renew/", |id| LeaseRenew(Some(id))),
            ("renew/", |id| LeaseRenew(Some(id))),
            ("leases/revoke/", |id| LeaseRevoke(Some(id))),
            ("revoke/", |id| LeaseRevoke(Some(id))),
            ("leases/revoke-prefix/", LeaseRevokePrefix),
            ("revoke-prefix/", LeaseRevokePrefix),
            ("leases/revoke-force/", LeaseRevokeForce),
            ("revoke-force/", LeaseRevokeForce),
            ("leases/tidy/", |_| LeaseTidy),
        ];
        named
            .into_iter()
            .find_map(|(prefix, route)| path.strip_prefix(prefix).map(route))
    }

    /// The operations the endpoint answers.
    pub(super) fn operations(self) -> &'static [Operation] {
        use SysRoute::*;
        const WRITE: &[Operation] = &[Create, Update];
        match self {
            Mounts(_) | RemountStatus(_) | Catalog | ReloadStatus | KeyStatus | UiMounts
            | UiMount(_) | HaStatus => &[Read],
            Mount(Table::Mounts, _) | CatalogEntry(..) | Policy(_) | LegacyPolicy(_) => {
                &[Read, Create, Update, Delete]
            }
            Mount(Table::Auth, _) => &[Create, Update, Delete],
            MountTune(..) => &[Read, Create, Update],
            CatalogType(_) | LegacyPolicies => &[Read, List],
            Policies => &[List],
            Remount | ReloadBackend | ReloadPlugin(..) | Seal | StepDown | Rotate
            | CapabilitiesSelf | Capabilities | LeaseLookup | LeaseRenew(_) | LeaseRevoke(_)
            | LeaseRevokePrefix(_) | LeaseRevokeForce(_) | LeaseTidy => WRITE,
            LeaseList(_) => &[List],
            AuditDevices => &[Read],
            AuditDevice(_) => &[Create, Update, Delete],
            AuditHash(_) => WRITE,
        }
    }
}

/// Handles an authenticated (or unauthenticated-listed) `sys/` request:
/// the path names a route (else 404), the route answers the operation
/// (else 405), then its handler runs .
pub(in crate::core) async fn handle(
    core: &Core,
    active: &Active,
    req: &Request,
    token: Option<&Resolved>,
) -> Result<Option<Response>, RequestError> {
    let route = SysRoute::parse(&req.path).ok_or_else(|| RequestError::NoHandler {
        path: format!("sys/{}", req.path),
    })?;
    if !route.operations().contains(&req.operation) {
        return Err(RequestError::UnsupportedOperation);
    }
    dispatch(core, active, route, req, token).await
}

/// Runs the handler of `route` (the operation is one it answers).
async fn dispatch(
    core: &Core,
    active: &Active,
    route: SysRoute<'_>,
    req: &Request,
    token: Option<&Resolved>,
) -> Result<Option<Response>, RequestError> {
    use SysRoute::*;
    let op = req.operation;
    let data = &req.data;
    let caller = Caller::of(token);
    match route {
        Mounts(table) => Ok(Some(mounts::listing(active, table))),
        Mount(_, path) if op == Read => mounts::read(active, path),
        Mount(table, path) if op == Delete => {
            crate::core::admin::mounts::disable(active, table, path).await?;
            Ok(None)
        }
        Mount(table, path) => mounts::enable(core, active, &caller, table, path, data).await,
        MountTune(table, path) if op == Read => mounts::read_tune(core, active, table, path),
        MountTune(table, path) => mounts::tune(core, active, &caller, table, path, data).await,
        Remount => mounts::remount(active, data).await,
        RemountStatus(id) => Ok(remount_status(active, id)),
        Catalog => plugins::listing(active).await,
        CatalogType(kind) => plugins::names(active, kind).await,
        CatalogEntry(kind, name) => match op {
            Read => plugins::read(active, kind, name, data).await,
            Delete => plugins::deregister(active, kind, name, data).await,
            _ => plugins::register(core, active, kind, name, data).await,
        },
        ReloadBackend => plugins::reload(core, active, None, data).await,
        ReloadPlugin(kind, name) => plugins::reload(core, active, Some((kind, name)), data).await,
        ReloadStatus => Ok(Some(reload_status(data))),
        Seal => {
            core.seal().await;
            Ok(None)
        }
        // Vault answers 204 without HA too.
        StepDown => {
            core.step_down();
            Ok(None)
        }
        HaStatus => Ok(Some(Response::data(
            crate::core::ha::ha_status_data(core).await?,
        ))),
        Rotate => {
            active.barrier.rotate().await?;
            Ok(None)
        }
        KeyStatus => Ok(Some(key_status(active))),
        Policies => Ok(Some(Response::list(active.policies.list().await?))),
        LegacyPolicies => {
            let names = active.policies.list().await?;
            let mut m = Map::new();
            m.insert("policies".into(), json!(names));
            m.insert("keys".into(), json!(names));
            Ok(Some(Response::data(m)))
        }
        Policy(name) => policy_endpoint(active, name, req, false).await,
        LegacyPolicy(name) => policy_endpoint(active, name, req, true).await,
        CapabilitiesSelf => {
            let token = token.ok_or(RequestError::PermissionDenied)?;
            capabilities(active, token, data).await
        }
        Capabilities => {
            let id =
                str_field(data, "token").ok_or_else(|| RequestError::invalid("missing token"))?;
            let target = active
                .tokens
                .lookup(id)
                .await?
                .ok_or_else(|| RequestError::invalid("invalid token"))?;
            capabilities(active, &target, data).await
        }
        UiMounts => internal_ui_mounts(active, token).await,
        UiMount(path) => internal_ui_mount(active, token, path).await,
        LeaseLookup => leases::lookup(active, data).await,
        LeaseList(prefix) => leases::list(active, prefix).await,
        LeaseRenew(id) => leases::renew(active, id, data).await,
        LeaseRevoke(id) => leases::revoke(active, id, data).await,
        LeaseRevokePrefix(prefix) => leases::revoke_prefix(active, prefix, false).await,
        LeaseRevokeForce(prefix) => leases::revoke_prefix(active, prefix, true).await,
        LeaseTidy => leases::tidy(active).await,
        AuditDevices => Ok(Some(audit::list(active))),
        AuditDevice(path) if op == Delete => audit::disable(active, path).await,
        AuditDevice(path) => audit::enable(active, path, data).await,
        AuditHash(path) => audit::hash(active, path, data),
    }
}

/// `GET sys/remount/status/:id`.
fn remount_status(active: &Active, id: &str) -> Option<Response> {
    let info = active
        .migrations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned();
    info.map(|info| {
        let mut m = Map::new();
        m.insert("migration_id".into(), json!(id));
        m.insert("migration_info".into(), info);
        Response::data(m)
    })
}

/// `GET sys/plugins/reload/backend/status`: reloads finish before their
/// request answers, so every reload succeeded.
fn reload_status(data: &Map<String, Value>) -> Response {
    let mut m = Map::new();
    m.insert(
        "reload_id".into(),
        data.get("reload_id").cloned().unwrap_or(Value::Null),
    );
    m.insert("status".into(), json!("success"));
    Response::data(m)
}

#[cfg(test)]
mod tests {
    use super::SysRoute::{self, *};
    use super::*;

    #[test]
    fn every_path_names_one_route() {
        let cases = [
            ("mounts", Some(Mounts(Table::Mounts))),
            ("auth/userpass", Some(Mount(Table::Auth, "userpass"))),
            (
                "mounts/team/kv/tune",
                Some(MountTune(Table::Mounts, "team/kv")),
            ),
            ("plugins/catalog/secret", Some(CatalogType("secret"))),
            (
                "plugins/catalog/secret/mock",
                Some(CatalogEntry("secret", "mock")),
            ),
            ("plugins/reload/backend/status", Some(ReloadStatus)),
            (
                "plugins/reload/secret/mock",
                Some(ReloadPlugin("secret", "mock")),
            ),
            ("rotate/keyring", Some(Rotate)),
            ("remount/status/abc", Some(RemountStatus("abc"))),
            ("internal/ui/mounts/secret/x", Some(UiMount("secret/x"))),
            ("nope", None),
            ("plugins/reload/nope", None),
        ];
        for (path, want) in cases {
            assert_eq!(SysRoute::parse(path), want, "{path}");
        }
        assert_eq!(Policies.operations(), &[List]);
        assert!(!Mount(Table::Auth, "x").operations().contains(&Read));
    }
}
