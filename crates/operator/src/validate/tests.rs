//! Unit tests of [`super`].

use super::*;
use crate::crd::{BinarySource, EnvVarSource, MountConfigSpec, PluginType, SecretKeySelector};

const SHA: &str = "3b9f2a6c5d0e1f4a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

fn entry() -> PluginCatalogEntrySpec {
    PluginCatalogEntrySpec {
        plugin_type: PluginType::Secret,
        version: "1.0.0".into(),
        binary: Some(BinarySource {
            path: "lockbox-plugin-mock".into(),
            sha256: SHA.into(),
        }),
        args: None,
        env: None,
        multiplexing: None,
        image: None,
    }
}

fn image_entry(reference: &str) -> PluginCatalogEntrySpec {
    let mut e = entry();
    e.binary = None;
    e.image = Some(ImageSource {
        reference: reference.into(),
        path: None,
        sha256: None,
        pull_secrets: None,
    });
    e
}

#[test]
fn image_sources() {
    let pinned = format!("registry.example/plugins/mock@sha256:{SHA}");
    assert_eq!(validate_catalog_entry(&image_entry(&pinned)), Ok(()));
    // Tag only: needs sha256.
    let errs = validate_catalog_entry(&image_entry("registry.example/mock:v1")).unwrap_err();
    assert_eq!(errs[0].field, "spec.image.reference");
    assert!(errs[0].message.contains("spec.image.sha256"), "{}", errs[0]);
    let mut tagged = image_entry("registry.example/mock:v1");
    tagged.image.as_mut().unwrap().sha256 = Some(SHA.into());
    assert_eq!(validate_catalog_entry(&tagged), Ok(()));
    // Both sources.
    let mut both = image_entry(&pinned);
    both.binary = entry().binary;
    assert_eq!(
        validate_catalog_entry(&both).unwrap_err()[0].field,
        "spec.image"
    );
    // Bad reference, path, sha256, pull secrets.
    let mut bad = image_entry("https://registry.example/x");
    {
        let i = bad.image.as_mut().unwrap();
        i.path = Some("/../etc/passwd".into());
        i.sha256 = Some("ABC".into());
        i.pull_secrets = Some(vec!["ok".into(), "Not_OK".into(), "ok".into()]);
    }
    let fields: Vec<String> = validate_catalog_entry(&bad)
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.image.reference",
            "spec.image.path",
            "spec.image.sha256",
            "spec.image.pullSecrets[1]",
            "spec.image.pullSecrets[2]"
        ]
    );
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: SecretKeySelector {
                name: secret.into(),
                key: key.into(),
            },
        }),
    }
}

fn mount() -> SecretsMountSpec {
    SecretsMountSpec {
        path: None,
        plugin: "mock".into(),
        plugin_version: None,
        description: None,
        config: None,
        options: None,
        deletion_policy: None,
    }
}

/// The single error of a failed validation.
fn one<T: fmt::Debug>(r: Result<T, Vec<SpecError>>) -> SpecError {
    let errs = r.expect_err("expected a validation error");
    assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
    errs.into_iter().next().unwrap()
}

fn entry_err(f: impl FnOnce(&mut PluginCatalogEntrySpec)) -> SpecError {
    let mut e = entry();
    f(&mut e);
    one(validate_catalog_entry(&e))
}

fn mount_err(f: impl FnOnce(&mut SecretsMountSpec)) -> SpecError {
    let mut m = mount();
    f(&mut m);
    one(validate_mount("team-a", "kv", &m, &[]))
}

// -- catalog entries ----------------------------------------------------

#[test]
fn valid_catalog_entry() {
    let mut e = entry();
    e.args = Some(vec!["--verbose".into(), String::new()]);
    e.env = Some(vec![
        literal("LOG_LEVEL", "debug"),
        from_secret("API_TOKEN", "mock-credentials", "token"),
    ]);
    e.multiplexing = Some(false);
    assert_eq!(validate_catalog_entry(&e), Ok(()));
    for v in [
        "0.0.1",
        "v1.2.3",
        "1.0.0-rc.1",
        "1.0.0+build.5",
        "v10.20.30-alpha-1+x",
    ] {
        e.version = v.into();
        assert_eq!(validate_catalog_entry(&e), Ok(()), "{v}");
    }
}

#[test]
fn version_must_be_semver() {
    for v in [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "v",
        "1.0.0-",
        "1.0.0-a..b",
        "latest",
    ] {
        let e = entry_err(|e| e.version = v.into());
        assert_eq!(e.field, "spec.version", "{v}");
        assert!(e.message.contains("MAJOR.MINOR.PATCH"), "{e}");
    }
}

#[test]
fn binary_is_required() {
    let e = entry_err(|e| e.binary = None);
    assert_eq!(e.field, "spec.binary");
    assert!(e.message.contains("spec.binary.path"), "{e}");
    assert!(e.message.contains("sha256sum"), "{e}");
}

#[test]
fn binary_path_is_relative_and_clean() {
    let cases = [
        ("", "is empty"),
        ("/usr/bin/mock", "remove the leading '/'"),
        ("mock/", "remove the trailing '/'"),
        ("a//mock", "empty segment"),
        ("../mock", "'..'"),
        ("a/./mock", "'.'"),
        ("mo ck", "contains ' '"),
    ];
    for (path, want) in cases {
        let e = entry_err(|e| e.binary.as_mut().unwrap().path = path.into());
        assert_eq!(e.field, "spec.binary.path", "{path:?}");
        assert!(e.message.contains(want), "{path:?}: {e}");
        assert!(e.message.contains("plugin directory"), "{e}");
    }
    let long = "a".repeat(PATH_MAX_LEN as usize + 1);
    let e = entry_err(|e| e.binary.as_mut().unwrap().path = long);
    assert!(e.message.contains("longer than"), "{e}");
    // Dots inside names are fine.
    let mut ok = entry();
    ok.binary.as_mut().unwrap().path = "team.a/..mock/.plugin-1.0".into();
    assert_eq!(validate_catalog_entry(&ok), Ok(()));
}

#[test]
fn sha256_is_64_lower_hex() {
    let e = entry_err(|e| e.binary.as_mut().unwrap().sha256 = "abc".into());
    assert_eq!(e.field, "spec.binary.sha256");
    assert!(e.message.contains("sha256sum"), "{e}");
    let e = entry_err(|e| e.binary.as_mut().unwrap().sha256 = SHA.to_uppercase());
    assert!(e.message.contains("lower-case"), "{e}");
    let e = entry_err(|e| e.binary.as_mut().unwrap().sha256 = format!("{}g", &SHA[..63]));
    assert!(e.message.contains("sha256sum"), "{e}");
}

#[test]
fn args_without_nul() {
    let e = entry_err(|e| e.args = Some(vec!["ok".into(), "a\0b".into()]));
    assert_eq!(e.field, "spec.args[1]");
    assert!(e.message.contains("NUL"), "{e}");
}

#[test]
fn env_names() {
    for bad in ["", "1ABC", "A-B", "A B", "É"] {
        let e = entry_err(|e| e.env = Some(vec![literal(bad, "x")]));
        assert_eq!(e.field, "spec.env[0].name", "{bad:?}");
        assert!(
            e.message.contains("not a valid environment variable name"),
            "{e}"
        );
    }
    for reserved in [
        "LOCKBOX_PLUGIN_NAME",
        "LOCKBOX_PLUGIN_VERSION",
        "LOCKBOX_PLUGIN_MAGIC_COOKIE",
        "LOCKBOX_PLUGIN_PROTOCOL_VERSIONS",
        "LOCKBOX_PLUGIN_SOCKET_DIR",
        "LOCKBOX_PLUGIN_HOST_SOCKET",
    ] {
        let e = entry_err(|e| e.env = Some(vec![literal(reserved, "x")]));
        assert!(e.message.contains("reserved"), "{e}");
    }
    // The SDK's log level is the plugin's own setting.
    let mut ok = entry();
    ok.env = Some(vec![literal("LOCKBOX_PLUGIN_LOG", "debug")]);
    assert_eq!(validate_catalog_entry(&ok), Ok(()));
    let e = entry_err(|e| {
        e.env = Some(vec![
            literal("A", "1"),
            from_secret("B", "s", "k"),
            literal("A", "2"),
        ])
    });
    assert_eq!(e.field, "spec.env[2].name");
    assert!(e.message.contains("more than once"), "{e}");
}

#[test]
fn env_value_xor_value_from() {
    let mut both = from_secret("A", "s", "k");
    both.value = Some("secret-literal".into());
    let e = entry_err(|e| e.env = Some(vec![both]));
    assert_eq!(e.field, "spec.env[0]");
    assert!(e.message.contains("both"), "{e}");
    assert!(!e.message.contains("secret-literal"), "value echoed: {e}");

    let neither = EnvVar {
        name: "A".into(),
        value: None,
        value_from: None,
    };
    let e = entry_err(|e| e.env = Some(vec![neither]));
    assert!(e.message.contains("neither"), "{e}");

    // An empty literal is a legitimate value.
    let mut ok = entry();
    ok.env = Some(vec![literal("EMPTY", "")]);
    assert_eq!(validate_catalog_entry(&ok), Ok(()));
}

#[test]
fn env_values_are_never_echoed() {
    let e = entry_err(|e| e.env = Some(vec![literal("A", "hunter2\0")]));
    assert_eq!(e.field, "spec.env[0].value");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let dbg = format!("{:?}", literal("A", "hunter2"));
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("redacted"), "{dbg}");
}

#[test]
fn env_secret_key_ref() {
    for bad in ["", "Mock", "-mock", "mock_creds", "a..b"] {
        let e = entry_err(|e| e.env = Some(vec![from_secret("A", bad, "k")]));
        assert_eq!(
            e.field, "spec.env[0].valueFrom.secretKeyRef.name",
            "{bad:?}"
        );
        assert!(e.message.contains("operator's namespace"), "{e}");
    }
    for bad in ["", "a/b", "a b"] {
        let e = entry_err(|e| e.env = Some(vec![from_secret("A", "creds", bad)]));
        assert_eq!(e.field, "spec.env[0].valueFrom.secretKeyRef.key", "{bad:?}");
    }
    let mut ok = entry();
    ok.env = Some(vec![from_secret("A", "mock.creds-1", "tls.key_2-x")]);
    assert_eq!(validate_catalog_entry(&ok), Ok(()));
}

/// The operator's own Secrets are refused by name in the spec, for env
/// values and pull secrets alike, before anything is read.
#[test]
fn the_operators_own_secrets_are_refused_in_the_spec() {
    for own in ["lockbox-unseal-keys", "lockbox-root-token"] {
        let e = entry_err(|e| e.env = Some(vec![from_secret("A", own, "token")]));
        assert_eq!(e.field, "spec.env[0].valueFrom.secretKeyRef.name");
        assert!(
            e.message.contains(own) && e.message.contains("lockbox.dev/plugin-env=true"),
            "{e}"
        );
        let mut spec = image_entry(&format!("registry.example/p@sha256:{SHA}"));
        if let Some(i) = spec.image.as_mut() {
            i.pull_secrets = Some(vec![own.into()]);
        }
        let e = one(validate_catalog_entry(&spec));
        assert_eq!(e.field, "spec.image.pullSecrets[0]");
        assert!(e.message.contains(own), "{e}");
    }
}

/// Only Secrets labelled `lockbox.dev/plugin-env: "true"` feed env
/// values; the operator's own Secrets and ServiceAccount tokens never
/// do, labelled or not. Messages name the Secret and the label to add.
#[test]
fn env_secrets_need_the_plugin_env_label() {
    let labelled: BTreeMap<String, String> =
        [("lockbox.dev/plugin-env".to_string(), "true".to_string())].into();
    let ns = "lockbox-system";
    assert_eq!(
        check_env_secret(0, ns, "creds", Some(&labelled), Some("Opaque")),
        Ok(())
    );
    let other: BTreeMap<String, String> =
        [("lockbox.dev/plugin-env".to_string(), "yes".to_string())].into();
    for labels in [None, Some(&BTreeMap::new()), Some(&other)] {
        let e = check_env_secret(2, ns, "creds", labels, None).unwrap_err();
        assert_eq!(e.field, "spec.env[2].valueFrom.secretKeyRef.name");
        assert!(
            e.message
                .contains("Secret lockbox-system/creds is not marked")
                && e.message.contains(
                    "kubectl label secret -n lockbox-system creds lockbox.dev/plugin-env=true"
                ),
            "{e}"
        );
    }
    for own in ["lockbox-unseal-keys", "lockbox-root-token"] {
        let e = check_env_secret(0, ns, own, Some(&labelled), None).unwrap_err();
        assert!(
            e.message.contains(&format!("{ns}/{own}"))
                && e.message.contains("operator's own Secret"),
            "{e}"
        );
    }
    let e = check_env_secret(
        0,
        ns,
        "sa-token",
        Some(&labelled),
        Some("kubernetes.io/service-account-token"),
    )
    .unwrap_err();
    assert!(e.message.contains("ServiceAccount token"), "{e}");
}

#[test]
fn every_problem_is_reported() {
    let mut e = entry();
    e.version = "one".into();
    e.binary = None;
    e.env = Some(vec![literal("1X", "v")]);
    let errs = validate_catalog_entry(&e).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.version", "spec.binary", "spec.env[0].name"]);
    let msg = message(&errs);
    assert!(msg.starts_with("spec.version: "), "{msg}");
    assert_eq!(msg.matches("; spec.").count(), 2, "{msg}");
}

// -- mounts -------------------------------------------------------------

#[test]
fn mount_defaults() {
    let v = validate_mount("team-a", "kv", &mount(), &[]).unwrap();
    assert_eq!(
        v,
        ValidMount {
            path: "team-a/kv/".into(),
            plugin: "mock".into(),
            plugin_version: None,
            description: String::new(),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            force_no_cache: false,
            options: BTreeMap::new(),
            deletion_policy: DeletionPolicy::Retain,
        }
    );
}

#[test]
fn mount_full_spec() {
    let mut m = mount();
    m.path = Some("team-a/apps/payments".into());
    m.plugin_version = Some("v1.2.0".into());
    m.description = Some("payments".into());
    m.config = Some(MountConfigSpec {
        default_lease_ttl: Some("1h".into()),
        max_lease_ttl: Some("24h".into()),
        force_no_cache: Some(true),
    });
    m.options = Some(BTreeMap::from([("version".into(), "2".into())]));
    m.deletion_policy = Some(DeletionPolicy::Delete);
    let v = validate_mount("team-a", "kv", &m, &[]).unwrap();
    assert_eq!(v.path, "team-a/apps/payments/");
    assert_eq!(v.plugin_version.as_deref(), Some("v1.2.0"));
    assert_eq!(v.description, "payments");
    assert_eq!((v.default_lease_ttl, v.max_lease_ttl), (3600, 86400));
    assert!(v.force_no_cache);
    assert_eq!(v.options["version"], "2");
    assert_eq!(v.deletion_policy, DeletionPolicy::Delete);
}

#[test]
fn mount_path_may_be_the_namespace_itself() {
    let mut m = mount();
    m.path = Some("team-a".into());
    assert_eq!(
        validate_mount("team-a", "kv", &m, &[]).unwrap().path,
        "team-a/"
    );
}

#[test]
fn mount_path_shape() {
    let cases = [
        ("", "is empty"),
        ("/team-a/kv", "remove the leading '/'"),
        ("team-a/kv/", "remove the trailing '/'"),
        ("team-a//kv", "empty segment"),
        ("team-a/../team-b/kv", "'..'"),
        ("team-a/./kv", "'.'"),
        ("team-a/k*v", "contains '*'"),
    ];
    for (path, want) in cases {
        let e = mount_err(|m| m.path = Some(path.into()));
        assert_eq!(e.field, "spec.path", "{path:?}");
        assert!(e.message.contains(want), "{path:?}: {e}");
        assert!(e.message.contains("\"team-a/kv\""), "{path:?}: {e}");
    }
}

#[test]
fn mount_path_outside_namespace_is_refused() {
    for path in ["team-b/kv", "team-ab/kv", "kv", "shared/kv"] {
        let e = mount_err(|m| m.path = Some(path.into()));
        assert_eq!(e.field, "spec.path");
        assert!(
            e.message
                .contains("outside this namespace's prefix team-a/"),
            "{e}"
        );
        assert!(e.message.contains("administrator"), "{e}");
    }
}

#[test]
fn mount_path_allowed_prefixes() {
    let allowed = ["shared".to_string(), "/platform/db/".to_string()];
    for (path, want) in [
        ("shared/kv", "shared/kv/"),
        ("shared", "shared/"),
        ("platform/db/pg", "platform/db/pg/"),
        ("team-a/kv", "team-a/kv/"),
    ] {
        let mut m = mount();
        m.path = Some(path.into());
        assert_eq!(
            validate_mount("team-a", "kv", &m, &allowed).unwrap().path,
            want
        );
    }
    for path in ["sharedx/kv", "platform/dbx", "platform/kv"] {
        let mut m = mount();
        m.path = Some(path.into());
        let e = one(validate_mount("team-a", "kv", &m, &allowed));
        assert!(e.message.contains("shared/, platform/db/"), "{e}");
    }
}

#[test]
fn reserved_paths_are_refused() {
    // A namespace named like a reserved prefix cannot use the default.
    let e = one(validate_mount("sys", "kv", &mount(), &[]));
    assert_eq!(e.field, "spec.path");
    assert!(e.message.contains("is unset"), "{e}");
    assert!(e.message.contains("reserved"), "{e}");
    assert!(e.message.contains("set spec.path"), "{e}");
    assert!(e.message.contains("administrator"), "{e}");
    assert!(!e.message.contains("under sys/"), "{e}");
    // ... but can use a prefix granted to it.
    let shared = ["shared".to_string()];
    let e = one(validate_mount("sys", "kv", &mount(), &shared));
    assert!(
        e.message.contains("allowed for this namespace: shared/"),
        "{e}"
    );
    let mut m = mount();
    m.path = Some("shared/kv".into());
    assert_eq!(
        validate_mount("sys", "kv", &m, &shared).unwrap().path,
        "shared/kv/"
    );
    // Even an allowed prefix cannot reach them.
    let mut m = mount();
    m.path = Some("auth/kv".into());
    let e = one(validate_mount("team-a", "kv", &m, &["auth".to_string()]));
    assert!(e.message.contains("reserved"), "{e}");
}

#[test]
fn mount_plugin_name() {
    for bad in ["", "Mock", "mock_1", "-mock", "mock-", "a..b"] {
        let e = mount_err(|m| m.plugin = bad.into());
        assert_eq!(e.field, "spec.plugin", "{bad:?}");
        assert!(e.message.contains("PluginCatalogEntry"), "{e}");
    }
    let e = mount_err(|m| m.plugin = "a".repeat(254));
    assert_eq!(e.field, "spec.plugin");
}

#[test]
fn mount_plugin_version() {
    let e = mount_err(|m| m.plugin_version = Some("1.0".into()));
    assert_eq!(e.field, "spec.pluginVersion");
    assert!(e.message.contains("semantic version"), "{e}");
}

#[test]
fn mount_ttls() {
    let e = mount_err(|m| {
        m.config = Some(MountConfigSpec {
            default_lease_ttl: Some("forever".into()),
            ..Default::default()
        })
    });
    assert_eq!(e.field, "spec.config.defaultLeaseTTL");
    assert!(e.message.starts_with("invalid duration \"forever\""), "{e}");
    assert!(e.message.contains("\"1h30m\""), "{e}");

    let e = mount_err(|m| {
        m.config = Some(MountConfigSpec {
            default_lease_ttl: Some("48h".into()),
            max_lease_ttl: Some("24h".into()),
            force_no_cache: None,
        })
    });
    assert_eq!(e.field, "spec.config.defaultLeaseTTL");
    assert!(e.message.contains("longer than maxLeaseTTL 24h"), "{e}");

    // 0 means the system default on either side, so no ordering check.
    let mut m = mount();
    m.config = Some(MountConfigSpec {
        default_lease_ttl: Some("48h".into()),
        max_lease_ttl: Some("0".into()),
        force_no_cache: None,
    });
    let v = validate_mount("team-a", "kv", &m, &[]).unwrap();
    assert_eq!((v.default_lease_ttl, v.max_lease_ttl), (172800, 0));
}

#[test]
fn mount_option_keys() {
    let e = mount_err(|m| m.options = Some(BTreeMap::from([(" ".into(), "x".into())])));
    assert_eq!(e.field, "spec.options");
}

#[test]
fn mount_reports_every_problem() {
    let mut m = mount();
    m.path = Some("/abs".into());
    m.plugin = "Bad".into();
    m.plugin_version = Some("x".into());
    let errs = validate_mount("team-a", "kv", &m, &[]).unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.path", "spec.plugin", "spec.pluginVersion"]);
}
