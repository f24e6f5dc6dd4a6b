//! Unit tests of [`super`]: one per rule.

use super::*;
use crate::crd_tenant::{AliasNameSource, PolicyRule};

const KUBE: &str = "kubernetes";

fn hcl(text: &str) -> PolicySpec {
    PolicySpec {
        hcl: Some(text.into()),
        rules: None,
        deletion_policy: None,
    }
}

fn rules(rules: &[(&str, &[&str])]) -> PolicySpec {
    PolicySpec {
        hcl: None,
        rules: Some(
            rules
                .iter()
                .map(|(p, c)| PolicyRule {
                    path: p.to_string(),
                    capabilities: c.iter().map(|c| c.to_string()).collect(),
                })
                .collect(),
        ),
        deletion_policy: None,
    }
}

fn messages(errs: &[SpecError]) -> String {
    super::super::message(errs)
}

#[test]
fn names_are_namespace_dot_name_and_cannot_collide() {
    assert_eq!(tenant_name("team-a", "read"), "team-a.read");
    // A dotted object name stays inside its namespace: the namespace (a DNS
    // label) is everything before the first '.'.
    assert_eq!(tenant_name("team-a", "team-b.read"), "team-a.team-b.read");
    // The namespace is recovered from any such name.
    for (ns, name) in [("team-a", "read"), ("b", "x.y.z")] {
        let n = tenant_name(ns, name);
        assert_eq!(n.split_once('.'), Some((ns, name)));
    }
}

#[test]
fn prefixes_of_a_namespace() {
    assert_eq!(
        namespace_prefixes("team-a", &[], KUBE),
        ["team-a/", "auth/team-a/"]
    );
    assert_eq!(
        namespace_prefixes("team-a", &["/shared/".into(), "".into()], KUBE),
        ["team-a/", "auth/team-a/", "shared/"]
    );
    // Reserved names get no prefix of their own.
    assert_eq!(namespace_prefixes("sys", &[], KUBE), ["auth/sys/"]);
    // The token store and the shared Kubernetes auth mount are nobody's.
    assert_eq!(namespace_prefixes("token", &[], KUBE), ["token/"]);
    assert_eq!(namespace_prefixes("kubernetes", &[], KUBE), ["kubernetes/"]);
    assert_eq!(
        namespace_prefixes("k8s", &[], "k8s/prod"),
        ["k8s/"],
        "a namespace whose auth prefix holds the shared mount"
    );
}

#[test]
fn policy_paths_inside_the_namespace_are_accepted() {
    let prefixes = namespace_prefixes("team-a", &[], KUBE);
    for p in [
        "team-a/",
        "team-a/*",
        "team-a/kv/data/app",
        "team-a/+/config",
        "team-a/kv/+/x/*",
        "auth/team-a/oidc/role/*",
    ] {
        assert_eq!(check_policy_path(p, &prefixes), Ok(()), "{p}");
    }
}

#[test]
fn policy_paths_that_could_leave_the_namespace_are_outside() {
    let prefixes = namespace_prefixes("team-a", &[], KUBE);
    for p in [
        "team-b/kv",
        "team-b/*",
        "team-a*",
        "team-a",
        "team-ab/kv",
        "+/kv/*",
        "*",
        "+",
        "",
        "/team-a/kv",
        "team-a//kv",
        "team-a/../team-b/kv",
        "team-a/./kv",
        "auth/team-b/*",
        "auth/team-a*",
        "auth/+/role",
        "auth/kubernetes/role/*",
        "auth/token/create",
        "sys/policies/acl/team-a.x",
        "sys/*",
    ] {
        let err = check_policy_path(p, &prefixes).unwrap_err();
        assert!(err.contains(&format!("{p:?}")), "{p}: {err}");
        assert!(err.contains("team-a/, auth/team-a/"), "{p}: {err}");
    }
    let err = check_policy_path("team-a*", &prefixes).unwrap_err();
    assert!(err.contains("glob or '+'"), "{err}");
}

#[test]
fn extra_allowed_prefixes_are_reachable() {
    let prefixes = namespace_prefixes("team-a", &["shared".into()], KUBE);
    assert_eq!(check_policy_path("shared/kv/*", &prefixes), Ok(()));
    assert!(check_policy_path("shared*", &prefixes).is_err());
    assert!(check_policy_path("sharedx/kv", &prefixes).is_err());
}

#[test]
fn a_hcl_policy_is_parsed_and_kept_as_written() {
    let text = "path \"team-a/kv/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";
    let v = validate_policy("team-a", "read", &hcl(text), &[], KUBE).unwrap();
    assert_eq!(v.name, "team-a.read");
    assert_eq!(v.text, text);
    assert_eq!(v.deletion_policy, DeletionPolicy::Retain);
}

#[test]
fn a_hcl_policy_names_every_path_outside() {
    let text = "path \"team-a/kv/*\" { capabilities = [\"read\"] }\n\
                path \"team-b/kv/*\" { capabilities = [\"read\"] }\n\
                path \"+/kv/*\" { capabilities = [\"read\"] }\n";
    let errs = validate_policy("team-a", "read", &hcl(text), &[], KUBE).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    let msg = messages(&errs);
    assert!(
        msg.contains("\"team-b/kv/*\"") && msg.contains("\"+/kv/*\""),
        "{msg}"
    );
    assert!(!msg.contains("\"team-a/kv/*\""), "{msg}");
    assert!(errs.iter().all(|e| e.field == "spec.hcl"));
}

#[test]
fn bad_hcl_is_refused_by_the_core_parser() {
    let errs = validate_policy("team-a", "p", &hcl("path \"team-a/*\" {"), &[], KUBE).unwrap_err();
    assert_eq!(errs[0].field, "spec.hcl");
    assert!(
        errs[0].message.contains("failed to parse policy"),
        "{errs:?}"
    );
    let errs = validate_policy(
        "team-a",
        "p",
        &hcl("path \"team-a/*\" { capabilities = [\"fly\"] }"),
        &[],
        KUBE,
    )
    .unwrap_err();
    assert!(errs[0].message.contains("unknown capability"), "{errs:?}");
    let errs = validate_policy(
        "team-a",
        "p",
        &hcl("path \"team-a/*/x\" { capabilities = [\"read\"] }"),
        &[],
        KUBE,
    )
    .unwrap_err();
    assert!(
        errs[0].message.contains("only allowed at the end"),
        "{errs:?}"
    );
}

#[test]
fn hcl_and_rules_are_exclusive_and_one_is_required() {
    let mut both = hcl("");
    both.rules = Some(vec![]);
    let errs = validate_policy("team-a", "p", &both, &[], KUBE).unwrap_err();
    assert_eq!(errs[0].field, "spec.rules");
    assert!(errs[0].message.contains("exactly one"));
    let none = PolicySpec {
        hcl: None,
        rules: None,
        deletion_policy: None,
    };
    let errs = validate_policy("team-a", "p", &none, &[], KUBE).unwrap_err();
    assert_eq!(errs[0].field, "spec.hcl");
}

#[test]
fn structured_rules_become_hcl_the_core_parses() {
    let spec = rules(&[
        ("team-a/kv/*", &["read", "list"]),
        ("auth/team-a/x", &["update"]),
    ]);
    let v = validate_policy("team-a", "p", &spec, &[], KUBE).unwrap();
    let parsed = policy::parse("team-a.p", &v.text).unwrap();
    assert_eq!(parsed.rules.len(), 2);
    assert_eq!(parsed.rules[0].pattern, "team-a/kv/*");
    assert_eq!(parsed.rules[0].capabilities.names(), ["read", "list"]);
    assert_eq!(parsed.rules[1].pattern, "auth/team-a/x");
}

#[test]
fn structured_rules_name_the_field_of_each_problem() {
    let spec = rules(&[
        ("team-a/kv/*", &["read"]),
        ("team-b/kv/*", &["read"]),
        ("team-a/x", &[]),
        ("team-a/y", &["fly"]),
        ("team-a/*/z", &["read"]),
    ]);
    let errs = validate_policy("team-a", "p", &spec, &[], KUBE).unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.rules[1].path",
            "spec.rules[2].capabilities",
            "spec.rules[3].capabilities"
        ],
        "{errs:?}"
    );
    assert!(errs[0].message.contains("\"team-b/kv/*\""));
    // The glob in the middle is caught by the core's parser once the rest is fine.
    let errs = validate_policy(
        "team-a",
        "p",
        &rules(&[("team-a/*/z", &["read"])]),
        &[],
        KUBE,
    )
    .unwrap_err();
    assert!(
        errs[0].message.contains("only allowed at the end"),
        "{errs:?}"
    );
}

fn role() -> KubernetesAuthRoleSpec {
    KubernetesAuthRoleSpec {
        bound_service_account_names: vec!["app".into()],
        bound_service_account_namespaces: None,
        audience: Some("lockbox".into()),
        alias_name_source: None,
        token_policies: Some(vec!["read".into()]),
        token_ttl: Some("1h".into()),
        token_max_ttl: None,
        deletion_policy: None,
    }
}

#[test]
fn a_role_is_forced_into_its_namespace_with_mapped_policies() {
    let v = validate_auth_role("team-a", "app", &role()).unwrap();
    assert_eq!(v.role, "team-a.app");
    assert_eq!(v.policy_refs, ["read"]);
    assert_eq!(
        Value::Object(v.data),
        json!({
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["team-a"],
            "audience": "lockbox",
            "token_policies": ["team-a.read"],
            "token_ttl": 3600,
            "token_max_ttl": 0,
        })
    );
    let mut r = role();
    r.bound_service_account_namespaces = Some(vec!["team-a".into()]);
    r.alias_name_source = Some(AliasNameSource::ServiceAccountName);
    r.bound_service_account_names = vec!["*".into(), "app-*".into()];
    let v = validate_auth_role("team-a", "app", &r).unwrap();
    assert_eq!(v.data["alias_name_source"], "serviceaccount_name");
    assert_eq!(
        v.data["bound_service_account_namespaces"],
        json!(["team-a"])
    );
}

#[test]
fn a_role_cannot_bind_another_namespace() {
    for other in ["team-b", "*", "team-a*"] {
        let mut r = role();
        r.bound_service_account_namespaces = Some(vec!["team-a".into(), other.into()]);
        let errs = validate_auth_role("team-a", "app", &r).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "spec.boundServiceAccountNamespaces[1]");
        assert!(errs[0].message.contains(&format!("{other:?}")), "{errs:?}");
    }
    let mut r = role();
    r.bound_service_account_namespaces = Some(vec![]);
    assert!(validate_auth_role("team-a", "app", &r).is_err());
    // `ns:sa` or `ns/sa` spellings of another namespace's ServiceAccount.
    for sa in [
        "team-b:app",
        "team-b/app",
        "system:serviceaccount:team-b:app",
        "",
    ] {
        let mut r = role();
        r.bound_service_account_names = vec![sa.into()];
        let errs = validate_auth_role("team-a", "app", &r).unwrap_err();
        assert_eq!(errs[0].field, "spec.boundServiceAccountNames[0]", "{sa}");
    }
    let mut r = role();
    r.bound_service_account_names = vec![];
    assert!(validate_auth_role("team-a", "app", &r).is_err());
}

#[test]
fn a_role_grants_only_policy_objects_of_its_namespace() {
    for p in ["team-b/read", "root", "*", "Read", ""] {
        let mut r = role();
        r.token_policies = Some(vec![p.into()]);
        let result = validate_auth_role("team-a", "app", &r);
        if p == "root" {
            // A Policy object may be called `root`: it maps to team-a.root.
            assert_eq!(
                result.unwrap().data["token_policies"],
                json!(["team-a.root"])
            );
            continue;
        }
        let errs = result.unwrap_err();
        assert_eq!(errs[0].field, "spec.tokenPolicies[0]", "{p}");
        assert!(errs[0].message.contains("namespace team-a"), "{errs:?}");
    }
}

#[test]
fn a_role_checks_ttls_and_audience() {
    let mut r = role();
    r.token_ttl = Some("2h".into());
    r.token_max_ttl = Some("1h".into());
    let errs = validate_auth_role("team-a", "app", &r).unwrap_err();
    assert_eq!(errs[0].field, "spec.tokenTTL");
    let mut r = role();
    r.token_ttl = Some("soon".into());
    r.audience = Some(" ".into());
    let errs = validate_auth_role("team-a", "app", &r).unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.audience", "spec.tokenTTL"]);
}

fn auth_mount(path: Option<&str>) -> AuthMountSpec {
    AuthMountSpec {
        path: path.map(str::to_string),
        plugin: "kubernetes".into(),
        plugin_version: None,
        description: None,
        config: None,
        options: None,
        deletion_policy: None,
    }
}

#[test]
fn an_auth_mount_follows_the_secrets_mount_path_rules() {
    let v = validate_auth_mount("team-a", "k8s", &auth_mount(None), &[], KUBE).unwrap();
    assert_eq!(v.path, "team-a/k8s/");
    let v = validate_auth_mount("team-a", "k8s", &auth_mount(Some("team-a/x")), &[], KUBE);
    assert_eq!(v.unwrap().path, "team-a/x/");
    let errs =
        validate_auth_mount("team-a", "k8s", &auth_mount(Some("team-b/x")), &[], KUBE).unwrap_err();
    assert_eq!(errs[0].field, "spec.path");
    assert!(
        errs[0].message.contains("outside this namespace"),
        "{errs:?}"
    );
}

#[test]
fn an_auth_mount_cannot_take_the_shared_mounts() {
    for (ns, path) in [
        ("token", None),
        ("team-a", Some("kubernetes")),
        ("kubernetes", None),
        ("team-a", Some("token/x")),
    ] {
        let prefixes = ["kubernetes".to_string(), "token".to_string()];
        let errs = validate_auth_mount(ns, "m", &auth_mount(path), &prefixes, KUBE).unwrap_err();
        assert_eq!(errs[0].field, "spec.path", "{ns} {path:?}");
        assert!(errs[0].message.contains("shares"), "{errs:?}");
    }
}
