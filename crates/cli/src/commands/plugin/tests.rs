//! Unit tests of [`super`].

use super::*;
use crate::cli::GlobalArgs;

fn register_args(kind: &str, name: Option<&str>) -> PluginRegisterArgs {
    PluginRegisterArgs {
        plugin_type: kind.into(),
        name: name.map(Into::into),
        sha256: Some("ab12".into()),
        command: None,
        oci_image: None,
        args: vec![],
        env: vec![],
        version: None,
        global: GlobalArgs::default(),
    }
}

fn reload_args(plugin: Option<&str>, mounts: &[&str], kind: Option<&str>) -> PluginReloadArgs {
    PluginReloadArgs {
        plugin: plugin.map(Into::into),
        mounts: mounts.iter().map(|m| m.to_string()).collect(),
        plugin_type: kind.map(Into::into),
        global: GlobalArgs::default(),
    }
}

#[test]
fn types_and_names() {
    assert_eq!(
        type_and_name("info", "Secret", Some(" mock ")).unwrap(),
        ("secret".to_string(), "mock".to_string())
    );
    let err = type_and_name("register", "mock", None).unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .starts_with("A plugin type is required: lockbox plugin register [options] TYPE mock"),
        "{err}"
    );
    let err = type_and_name("info", "database", Some("pg")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"database\" is not a supported plugin type: use \"secret\" or \"auth\""
    );
    assert!(type_and_name("info", "auth", Some(" ")).is_err());
}

#[test]
fn catalog_paths_escape_the_version() {
    assert_eq!(
        catalog_path("secret", "mock", None),
        "sys/plugins/catalog/secret/mock"
    );
    assert_eq!(
        catalog_path("auth", "up", Some("v1.0.0+ent")),
        "sys/plugins/catalog/auth/up?version=v1.0.0%2Bent"
    );
    assert_eq!(
        catalog_path("auth", "up", Some(" ")),
        "sys/plugins/catalog/auth/up"
    );
}

#[test]
fn register_body_defaults_the_command_to_the_name() {
    assert_eq!(
        register_body(&register_args("secret", Some("mock")), "mock").unwrap(),
        json!({"sha256": "ab12", "command": "mock", "args": [], "env": [], "version": ""})
    );
    let mut args = register_args("secret", Some("mock"));
    args.command = Some("mock-v2".into());
    args.args = vec!["--debug".into(), "-x".into()];
    args.env = vec!["A=1".into(), "B=x=y".into()];
    args.version = Some("v2.0.0".into());
    assert_eq!(
        register_body(&args, "mock").unwrap(),
        json!({"sha256": "ab12", "command": "mock-v2", "args": ["--debug", "-x"],
               "env": ["A=1", "B=x=y"], "version": "v2.0.0"})
    );
    args.env = vec!["NOVALUE".into()];
    assert_eq!(register_body(&args, "mock").unwrap_err().exit_code(), 1);
}

#[test]
fn register_body_with_an_image_leaves_the_path_to_the_server() {
    let mut args = register_args("secret", Some("mock"));
    args.sha256 = None;
    args.oci_image = Some(" 127.0.0.1:5000/mock@sha256:00 ".into());
    assert_eq!(
        register_body(&args, "mock").unwrap(),
        json!({"sha256": "", "oci_image": "127.0.0.1:5000/mock@sha256:00",
               "args": [], "env": [], "version": ""})
    );
    args.command = Some("/usr/bin/mock".into());
    assert_eq!(
        register_body(&args, "mock").unwrap()["command"],
        "/usr/bin/mock"
    );
}

#[test]
fn reload_requests() {
    assert_eq!(
        reload_request(&reload_args(Some("mock"), &[], None)).unwrap(),
        (
            "sys/plugins/reload/backend".to_string(),
            Some(json!({"plugin": "mock"}))
        )
    );
    assert_eq!(
        reload_request(&reload_args(Some("mock"), &[], Some("auth"))).unwrap(),
        ("sys/plugins/reload/auth/mock".to_string(), None)
    );
    assert_eq!(
        reload_request(&reload_args(None, &["a", "auth/b/", ""], None)).unwrap(),
        (
            "sys/plugins/reload/backend".to_string(),
            Some(json!({"mounts": ["a/", "auth/b/"]}))
        )
    );
    for (args, message) in [
        (
            reload_args(None, &[], None),
            "No plugins specified, must specify exactly one of -plugin or -mounts",
        ),
        (
            reload_args(Some("mock"), &["a"], None),
            "Must specify exactly one of -plugin or -mounts",
        ),
        (
            reload_args(None, &["a"], Some("secret")),
            "Cannot specify -type with -mounts",
        ),
    ] {
        let err = reload_request(&args).unwrap_err();
        assert_eq!((err.exit_code(), err.to_string()), (1, message.to_string()));
    }
    assert!(reload_request(&reload_args(Some("mock"), &[], Some("db"))).is_err());
}

fn catalog() -> Map<String, Value> {
    json!({
        "auth": ["userpass"],
        "secret": ["mock", "passgen"],
        "database": [],
        "detailed": [
            {"name": "passgen", "type": "secret", "version": "", "sha256": "cc",
             "builtin": false, "deprecation_status": "", "command": "passgen", "args": []},
            {"name": "mock", "type": "secret", "version": "v1.0.0", "sha256": "bb",
             "builtin": false, "deprecation_status": "", "command": "mock-1", "args": []},
            {"name": "userpass", "type": "auth", "version": "", "sha256": "aa",
             "builtin": false, "deprecation_status": "", "command": "userpass", "args": []},
            {"name": "mock", "type": "secret", "version": "", "sha256": "dd",
             "builtin": false, "deprecation_status": "", "command": "mock", "args": []}
        ]
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

#[test]
fn list_tables() {
    let data = catalog();
    let all = catalog_entries(&data, None);
    assert_eq!(
        list_table(&all, false, false),
        "Name        Type      Version\n\
         ----        ----      -------\n\
         userpass    auth      n/a\n\
         mock        secret    n/a\n\
         mock        secret    v1.0.0\n\
         passgen     secret    n/a\n"
    );
    let secrets = catalog_entries(&data, Some("secret"));
    assert_eq!(
        list_table(&secrets, true, false),
        "Name       Version\n\
         ----       -------\n\
         mock       n/a\n\
         mock       v1.0.0\n\
         passgen    n/a\n"
    );
    let detailed = list_table(&catalog_entries(&data, Some("auth")), true, true);
    assert_eq!(
        detailed,
        "Name        Type    Version    Deprecation Status    SHA256    Command\n\
         ----        ----    -------    ------------------    ------    -------\n\
         userpass    auth    n/a        n/a                   aa        userpass\n"
    );
}

#[test]
fn list_falls_back_to_the_name_lists() {
    let mut data = catalog();
    data.remove("detailed");
    let entries = catalog_entries(&data, None);
    let names: Vec<(String, String)> = entries
        .iter()
        .map(|e| (text(e, "type"), text(e, "name")))
        .collect();
    assert_eq!(
        names,
        [
            ("auth".to_string(), "userpass".to_string()),
            ("secret".to_string(), "mock".to_string()),
            ("secret".to_string(), "passgen".to_string())
        ]
    );
}
