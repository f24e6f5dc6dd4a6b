//! The admin API against a real in-memory core: the ACL applies to typed
//! calls exactly as to the HTTP routes, validation errors name their
//! field, and the typed mount list reports what runs.

use super::*;
use crate::barrier::View;
use crate::catalog::CatalogEntry;
use crate::core::{ApiRequest, CoreConfig, Method, Reply};
use crate::logical::{Backend, BackendKind, Request, Response};
use crate::runtime::{BinaryRestorer, MountSpec, NoPlugins, PluginRuntime};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::PathBuf;

/// An unsealed in-memory core over `plugins`, and its root token.
async fn core_with(plugins: Arc<dyn PluginRuntime>) -> (Core, String) {
    let core = Core::with_plugins(
        Arc::new(lockbox_storage::InMemory::new()),
        CoreConfig::default(),
        plugins,
        Arc::new(NoPlugins),
    );
    let init = core.initialize(1, 1, None).await.unwrap();
    core.submit_unseal_key(&init.keys[0]).await.unwrap();
    (core, init.root_token)
}

/// One HTTP-shaped request through the pipeline.
async fn http(
    core: &Core,
    token: &str,
    method: Method,
    path: &str,
    data: Value,
) -> Result<Reply, RequestError> {
    core.handle(ApiRequest {
        method,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_default(),
        token: Some(token.into()),
        remote: None,
    })
    .await
}

/// A token with one policy holding `rules`.
async fn token_with(core: &Core, root: &str, rules: &str) -> String {
    http(
        core,
        root,
        Method::Write,
        "sys/policies/acl/admin-test",
        json!({ "policy": rules }),
    )
    .await
    .unwrap();
    let reply = http(
        core,
        root,
        Method::Write,
        "auth/token/create",
        json!({ "policies": ["admin-test"] }),
    )
    .await
    .unwrap();
    match reply {
        Reply::Envelope { response, .. } => response.auth.unwrap().client_token,
        other => panic!("no token: {other:?}"),
    }
}

fn kv() -> EnableMount {
    EnableMount {
        kind: "kv".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_typed_call_is_refused_where_the_route_is() {
    let (core, root) = core_with(Arc::new(NoPlugins)).await;
    // May enable and read mounts, not disable them or touch sys/auth.
    let token = token_with(
        &core,
        &root,
        r#"path "sys/mounts/*" { capabilities = ["create", "read", "update"] }"#,
    )
    .await;
    let admin = core.admin(&token);
    admin
        .enable_mount(Table::Mounts, "team/kv", kv())
        .await
        .unwrap();
    assert!(admin.mount("team/kv").await.unwrap().is_some());

    let typed = admin.disable_mount(Table::Mounts, "team/kv").await;
    let over_http = http(
        &core,
        &token,
        Method::Delete,
        "sys/mounts/team/kv",
        Value::Null,
    )
    .await;
    assert!(
        matches!(typed, Err(RequestError::PermissionDenied)),
        "{typed:?}"
    );
    assert!(matches!(over_http, Err(RequestError::PermissionDenied)));
    // Listing is `sys/mounts` itself, which the policy does not grant.
    assert!(matches!(
        admin.mounts(Table::Mounts).await,
        Err(RequestError::PermissionDenied)
    ));
    let typed = admin.enable_mount(Table::Auth, "userpass", kv()).await;
    assert!(
        matches!(typed, Err(RequestError::PermissionDenied)),
        "{typed:?}"
    );
    // The mount is still there.
    assert!(core.admin(&root).mount("team/kv").await.unwrap().is_some());
    // A bad token is refused before anything else.
    assert!(matches!(
        core.admin("nope").mounts(Table::Mounts).await,
        Err(RequestError::PermissionDenied)
    ));
}

#[tokio::test]
async fn sudo_routes_need_sudo_in_typed_calls_too() {
    let (core, root) = core_with(Arc::new(NoPlugins)).await;
    let all = r#"["create", "read", "update", "delete", "list"]"#;
    let rules = format!(
        r#"path "sys/plugins/catalog/*" {{ capabilities = {all} }}
           path "sys/remount" {{ capabilities = {all} }}"#
    );
    let token = token_with(&core, &root, &rules).await;
    let admin = core.admin(&token);
    let register = RegisterPlugin {
        kind: PluginType::Secret,
        name: "mock".into(),
        version: String::new(),
        command: None,
        sha256: Some("ab".repeat(32)),
        oci_image: None,
        args: vec![],
        env: vec![],
        multiplexing: true,
    };
    let typed = admin.register_plugin(register.clone()).await;
    let over_http = http(
        &core,
        &token,
        Method::Write,
        "sys/plugins/catalog/secret/mock",
        json!({ "sha256": "ab".repeat(32) }),
    )
    .await;
    assert!(
        matches!(typed, Err(RequestError::PermissionDenied)),
        "{typed:?}"
    );
    assert!(matches!(over_http, Err(RequestError::PermissionDenied)));
    for denied in [
        admin.plugin(PluginType::Secret, "mock", "").await.err(),
        admin
            .running_plugins(PluginType::Secret, "mock")
            .await
            .err(),
        admin.remount("a", "b").await.err(),
    ] {
        assert!(
            matches!(denied, Some(RequestError::PermissionDenied)),
            "{denied:?}"
        );
    }

    // With sudo the ACL passes; the registration then fails on its merits
    // (this core has no plugin directory), with the HTTP API's message.
    let token = token_with(
        &core,
        &root,
        r#"path "sys/plugins/catalog/*" { capabilities = ["update", "sudo"] }"#,
    )
    .await;
    let typed = core.admin(&token).register_plugin(register).await;
    match typed {
        Err(RequestError::InvalidRequest(msg)) => {
            assert_eq!(msg, crate::catalog::NO_PLUGIN_DIRECTORY)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let (core, root) = core_with(Arc::new(NoPlugins)).await;
    let admin = core.admin(&root);
    let message = |r: Result<(), RequestError>| match r {
        Err(e @ RequestError::InvalidRequest(_)) => e.to_string(),
        other => panic!("not a 400: {other:?}"),
    };
    let no_type = admin
        .enable_mount(Table::Mounts, "x", EnableMount::default())
        .await;
    assert!(message(no_type).contains("missing type"));
    let mut bad_ttl = kv();
    bad_ttl.config.default_lease_ttl = 20;
    bad_ttl.config.max_lease_ttl = 10;
    let bad_ttl = admin.enable_mount(Table::Mounts, "x", bad_ttl).await;
    assert!(message(bad_ttl).contains("default_lease_ttl"));
    let mut bad_owner = kv();
    bad_owner.owner = Some("not an owner!".into());
    let bad_owner = admin.enable_mount(Table::Mounts, "x", bad_owner).await;
    assert!(message(bad_owner).contains("owner"));
    let mut v2 = kv();
    v2.options.insert("version".into(), "2".into());
    let v2 = admin.enable_mount(Table::Mounts, "x", v2).await;
    assert!(message(v2).contains("options.version"));
    let reserved = admin.enable_mount(Table::Mounts, "sys/x", kv()).await;
    assert_eq!(reserved.unwrap_err().status(), 400);

    admin.enable_mount(Table::Mounts, "x", kv()).await.unwrap();
    let too_long = TuneMount {
        max_lease_ttl: Some(crate::core::SYSTEM_TTL + 1),
        ..Default::default()
    };
    let too_long = admin.tune_mount(Table::Mounts, "x", too_long).await;
    assert!(message(too_long).contains("max_lease_ttl"));

    // Only root may set an owner: the same rule as over HTTP.
    let token = token_with(
        &core,
        &root,
        r#"path "sys/mounts/*" { capabilities = ["update"] }"#,
    )
    .await;
    let owner = TuneMount {
        owner: Some("uid-1".into()),
        ..Default::default()
    };
    let typed = core
        .admin(&token)
        .tune_mount(Table::Mounts, "x", owner)
        .await;
    assert!(message(typed).starts_with("owner: only a root token"));

    let reload = admin.reload(&ReloadTarget::Mounts(vec![])).await;
    assert!(message(reload.map(|_| ())).contains("plugin or mounts"));
    let env = RegisterPlugin {
        kind: PluginType::Secret,
        name: "mock".into(),
        version: String::new(),
        command: None,
        sha256: None,
        oci_image: None,
        args: vec![],
        env: vec!["NOVALUE".into()],
        multiplexing: true,
    };
    let bad_env = admin.register_plugin(env.clone()).await;
    assert!(message(bad_env.map(|_| ())).contains("env entry \"NOVALUE\""));
    let no_sha = RegisterPlugin { env: vec![], ..env };
    let no_sha = admin.register_plugin(no_sha).await;
    assert!(message(no_sha.map(|_| ())).contains("missing sha256"));
}

/// A plugin runtime whose mounts answer nothing but report a version and
/// a sha256, as a running plugin process does.
struct FakeRuntime {
    entry: CatalogEntry,
}

struct FakeBackend;

#[async_trait]
impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Secret
    }
    async fn handle(
        &self,
        _req: &Request,
        _storage: &dyn crate::barrier::Storage,
    ) -> Result<Option<Response>, RequestError> {
        Ok(None)
    }
    fn version(&self) -> String {
        "v1.2.3".into()
    }
    fn running_sha256(&self) -> String {
        "cd".repeat(32)
    }
}

#[async_trait]
impl PluginRuntime for FakeRuntime {
    async fn mount(
        &self,
        _entry: &CatalogEntry,
        _mount: MountSpec,
        _view: View,
    ) -> Result<Arc<dyn Backend>, String> {
        Ok(Arc::new(FakeBackend))
    }
    fn serves(&self, _backend: &dyn Backend) -> bool {
        true
    }
    async fn reload(&self, _: &[Arc<dyn Backend>], _: &CatalogEntry) -> Result<(), String> {
        Ok(())
    }
    fn plugin_directory(&self) -> Option<PathBuf> {
        None
    }
    fn running_sha256s(&self) -> Vec<String> {
        vec![self.entry.sha256.clone()]
    }
    fn running_entries(&self) -> Vec<CatalogEntry> {
        vec![self.entry.clone()]
    }
    fn set_restorer(&self, _restorer: Option<BinaryRestorer>) {}
}

#[tokio::test]
async fn the_typed_list_reports_what_runs() {
    let entry = CatalogEntry {
        name: "mock".into(),
        kind: PluginType::Secret,
        version: "v1.2.3".into(),
        command: "mock".into(),
        args: vec![],
        env: vec!["A=1".into()],
        sha256: "cd".repeat(32),
        multiplexing: true,
        oci: None,
    };
    let runtime = Arc::new(FakeRuntime {
        entry: entry.clone(),
    });
    let (core, root) = core_with(runtime).await;
    core.register_plugin(&entry).await.unwrap();
    let admin = core.admin(&root);
    let input = EnableMount {
        kind: "mock".into(),
        owner: Some("uid-1".into()),
        ..Default::default()
    };
    admin
        .enable_mount(Table::Mounts, "team/mock", input)
        .await
        .unwrap();
    let mounts = admin.mounts(Table::Mounts).await.unwrap();
    let mock = mounts.iter().find(|m| m.path == "team/mock/").unwrap();
    assert_eq!(mock.kind, "mock");
    assert_eq!(mock.owner, "uid-1");
    assert_eq!(mock.running_plugin_version, "v1.2.3");
    assert_eq!(mock.running_sha256, "cd".repeat(32));
    assert!(!mock.builtin_engine);
    let builtin = mounts
        .iter()
        .find(|m| m.path == "secret/" || m.kind == "system");
    assert!(builtin.is_some_and(|m| m.running_sha256.is_empty()));
    // The HTTP listing renders the same values.
    let Ok(Reply::Envelope { response, .. }) =
        http(&core, &root, Method::Read, "sys/mounts", Value::Null).await
    else {
        panic!("no listing");
    };
    let data = response.data.unwrap();
    assert_eq!(data["team/mock/"]["running_sha256"], json!("cd".repeat(32)));
    assert_eq!(data["team/mock/"]["running_plugin_version"], "v1.2.3");

    let running = admin
        .running_plugins(PluginType::Secret, "mock")
        .await
        .unwrap();
    assert_eq!(running, vec![entry]);
    assert!(
        admin
            .running_plugins(PluginType::Auth, "mock")
            .await
            .unwrap()
            .is_empty()
    );
    let id = admin
        .reload(&ReloadTarget::Mounts(vec!["team/mock".into()]))
        .await
        .unwrap();
    assert!(!id.is_empty());
    // By plugin: every mount of it, or those pinned to a version (none is).
    let by_plugin = |version: Option<&str>| ReloadTarget::Plugin {
        name: "mock".into(),
        kind: Some(PluginType::Secret),
        version: version.map(str::to_string),
    };
    admin.reload(&by_plugin(None)).await.unwrap();
    admin.reload(&by_plugin(Some(""))).await.unwrap();
    let pinned = admin.reload(&by_plugin(Some("v9"))).await;
    assert!(
        matches!(pinned, Err(RequestError::InvalidRequest(m)) if m.contains("no mounts use plugin mock"))
    );
}
