//! Custom resource specs as the operator validates them, from arbitrary
//! JSON, in an arbitrary namespace with arbitrary extra prefixes: the
//! platform kinds (`SecretsMount`, `PluginCatalogEntry`) and the tenant
//! kinds (`Policy`, `KubernetesAuthRole`, `AuthMount`).
//!
//! Properties:
//! - a valid `SecretsMount` maps to a mount path that stays inside the
//!   namespace's own prefix or one the operator granted to that namespace,
//!   that the core accepts unchanged (its canonical form) and that is not
//!   reserved; a valid catalog entry has a name and sha256 the core's
//!   catalog accepts;
//! - a valid `Policy` is named `<namespace>.<name>`, its text parses with
//!   lockbox's policy parser, and every rule's pattern starts literally
//!   with `<namespace>/` or `auth/<namespace>/` or a granted prefix; outside
//!   a granted prefix no rule reaches a reserved prefix (`sys/`, ...), the
//!   token store or the shared Kubernetes auth mount;
//! - a valid `KubernetesAuthRole` is named `<namespace>.<name>`, binds
//!   ServiceAccounts of its own namespace only and grants only policies
//!   named `<namespace>.…`;
//! - a valid `AuthMount` is a mount path like a SecretsMount's that is
//!   neither, nor holds nor lies in, the token store or the shared
//!   Kubernetes auth mount.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lockbox_core::core::mounts;
use lockbox_operator::crd::{PluginCatalogEntrySpec, SecretsMountSpec};
use lockbox_operator::crd_tenant::{AuthMountSpec, KubernetesAuthRoleSpec, PolicySpec};
use lockbox_operator::validate::tenant::{
    validate_auth_mount, validate_auth_role, validate_policy,
};
use lockbox_operator::validate::{validate_catalog_entry, validate_mount};

/// One case: `data` is `KIND KUBE NAMESPACE \n NAME \n PREFIXES \n SPEC`:
/// a kind byte, a byte choosing the shared Kubernetes auth path, the
/// namespace, the object's name, the granted prefixes (comma-separated)
/// and the spec as JSON (so seeds are readable and the dictionary's JSON
/// tokens apply).
#[derive(Debug)]
struct Input {
    namespace: String,
    name: String,
    prefixes: Vec<String>,
    spec: Vec<u8>,
    /// 0: SecretsMount, 1: PluginCatalogEntry, 2: Policy,
    /// 3: KubernetesAuthRole, 4: AuthMount.
    kind: u8,
    /// Which shared Kubernetes auth path the operator runs with.
    kube: u8,
}

impl Input {
    fn parse(data: &[u8]) -> Option<Input> {
        let (&kind, rest) = data.split_first()?;
        let (&kube, rest) = rest.split_first()?;
        let mut parts = rest.splitn(4, |b| *b == b'\n');
        let mut text = || std::str::from_utf8(parts.next()?).ok().map(str::to_string);
        let namespace = text()?;
        let name = text()?;
        let prefixes = text()?;
        let spec = parts.next().unwrap_or_default().to_vec();
        Some(Input {
            namespace,
            name,
            prefixes: if prefixes.is_empty() {
                vec![]
            } else {
                prefixes.split(',').map(str::to_string).collect()
            },
            spec,
            kind,
            kube,
        })
    }
}

/// The shared Kubernetes auth path (below `auth/`) for this input: the
/// default, a nested one, or the namespace's own name (the case a tenant
/// must not take over).
fn kube_path(input: &Input) -> String {
    match input.kube % 3 {
        0 => "kubernetes".to_string(),
        1 => "k8s/cluster-a".to_string(),
        _ => input.namespace.clone(),
    }
}

/// A Kubernetes namespace name (an RFC 1123 label): the only namespaces
/// the API server gives the operator.
fn is_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The granted prefixes, as the operator's flag gives them (`p/`).
fn granted(input: &Input) -> Vec<String> {
    input
        .prefixes
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
        .collect()
}

/// Whether `path` (an auth path below `auth/`, or a policy pattern below
/// `auth/` with that part removed) is, holds or lies in a shared auth
/// mount.
fn touches_shared_auth(path: &str, kube: &str) -> bool {
    let kube = format!("{}/", kube.trim_matches('/'));
    ["token/", kube.as_str()]
        .iter()
        .any(|shared| path.starts_with(shared) || shared.starts_with(path))
}

fn secrets_mount(input: &Input) {
    let Ok(spec) = serde_json::from_slice::<SecretsMountSpec>(&input.spec) else {
        return;
    };
    let Ok(valid) = validate_mount(&input.namespace, &input.name, &spec, &input.prefixes) else {
        return;
    };
    check_mount_path(input, &valid.path);
}

fn check_mount_path(input: &Input, path: &str) {
    let own = format!("{}/", input.namespace);
    let inside =
        path.starts_with(&own) || granted(input).iter().any(|p| path.starts_with(p.as_str()));
    assert!(
        inside,
        "namespace {:?} (extra prefixes {:?}) got mount path {:?}",
        input.namespace, input.prefixes, path
    );
    assert_eq!(
        mounts::normalize_path(path).as_deref().ok(),
        Some(path),
        "the core does not take {path:?} as it is"
    );
    mounts::check_reserved(path).expect("a valid mount path is not reserved");
}

fn catalog_entry(input: &Input) {
    let Ok(spec) = serde_json::from_slice::<PluginCatalogEntrySpec>(&input.spec) else {
        return;
    };
    if validate_catalog_entry(&spec).is_ok()
        && let Some(b) = &spec.binary
    {
        lockbox_core::catalog::parse_sha256(&b.sha256)
            .expect("a valid spec's sha256 is accepted by the catalog");
    }
}

fn policy(input: &Input) {
    let Ok(spec) = serde_json::from_slice::<PolicySpec>(&input.spec) else {
        return;
    };
    let ns = &input.namespace;
    let kube = kube_path(input);
    let Ok(valid) = validate_policy(ns, &input.name, &spec, &input.prefixes, &kube) else {
        return;
    };
    assert_eq!(valid.name, format!("{ns}.{}", input.name));
    let parsed = lockbox_core::policy::parse(&valid.name, &valid.text)
        .expect("a valid Policy's text parses");
    let granted = granted(input);
    for rule in &parsed.rules {
        let p = rule.pattern.as_str();
        if granted.iter().any(|g| p.starts_with(g.as_str())) {
            continue;
        }
        let own = format!("{ns}/");
        if p.strip_prefix("auth/")
            .is_some_and(|below| below.starts_with(&own))
        {
            assert!(
                !touches_shared_auth(&own, &kube),
                "namespace {ns:?}: rule {p:?} reaches a shared auth mount (kube {kube:?})"
            );
        } else if p.starts_with(&own) {
            mounts::check_reserved(&own).unwrap_or_else(|_| {
                panic!("namespace {ns:?}: rule {p:?} reaches the reserved prefix {own:?}")
            });
        } else {
            panic!("namespace {ns:?} (granted {granted:?}): rule {p:?} is outside its prefixes");
        }
    }
}

fn auth_role(input: &Input) {
    let Ok(spec) = serde_json::from_slice::<KubernetesAuthRoleSpec>(&input.spec) else {
        return;
    };
    let ns = &input.namespace;
    let Ok(valid) = validate_auth_role(ns, &input.name, &spec) else {
        return;
    };
    assert_eq!(valid.role, format!("{ns}.{}", input.name));
    assert_eq!(
        valid.data.get("bound_service_account_namespaces"),
        Some(&serde_json::json!([ns])),
        "a role binds ServiceAccounts of its own namespace only"
    );
    let names = valid.data["bound_service_account_names"]
        .as_array()
        .expect("names are a list");
    for n in names {
        let n = n.as_str().expect("a name is a string");
        assert!(
            !n.is_empty() && !n.contains([':', '/']),
            "bound name {n:?} could name another namespace's ServiceAccount"
        );
    }
    let policies = valid.data["token_policies"]
        .as_array()
        .expect("policies are a list");
    for p in policies {
        let p = p.as_str().expect("a policy is a string");
        let (owner, rest) = p.split_once('.').expect("a tenant policy is ns.name");
        assert_eq!(owner, ns.as_str(), "role grants {p:?}, another namespace's");
        assert!(!rest.is_empty());
    }
}

fn auth_mount(input: &Input) {
    let Ok(spec) = serde_json::from_slice::<AuthMountSpec>(&input.spec) else {
        return;
    };
    let kube = kube_path(input);
    let Ok(valid) =
        validate_auth_mount(&input.namespace, &input.name, &spec, &input.prefixes, &kube)
    else {
        return;
    };
    check_mount_path(input, &valid.path);
    assert!(
        !touches_shared_auth(&valid.path, &kube),
        "AuthMount path auth/{} is, holds or lies in a shared auth mount (kube {kube:?})",
        valid.path
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    match input.kind % 5 {
        0 => secrets_mount(&input),
        1 => catalog_entry(&input),
        // The tenant kinds' properties hold for namespaces the API server
        // can have: a label, no `.`, so `<namespace>.` names one owner.
        _ if !is_namespace(&input.namespace) => {}
        2 => policy(&input),
        3 => auth_role(&input),
        _ => auth_mount(&input),
    }
});
