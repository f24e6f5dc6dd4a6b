//! `auth enable | disable | list | tune`: auth method mounts under
//! `sys/auth/`.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::secrets::{
    MountTable, TuneFlags, bool_at, list_mounts, mount_options, sorted_paths, str_at, tune_body_of,
};
use super::{Ctx, mount_path, sanitize_path};
use crate::cli::{AuthDisableArgs, AuthEnableArgs, AuthListArgs, AuthTuneArgs};
use crate::duration::GoDuration;
use crate::error::Error;
use crate::output;

/// The body of `POST sys/auth/PATH`.
fn enable_body(args: &AuthEnableArgs, method_type: &str) -> Result<Value, Error> {
    let ttl = |d: Option<GoDuration>| d.unwrap_or_default().to_string();
    let mut body = json!({
        "type": method_type,
        "description": args.description.clone().unwrap_or_default(),
        "config": {
            "default_lease_ttl": ttl(args.default_lease_ttl),
            "max_lease_ttl": ttl(args.max_lease_ttl),
        },
        "local": args.local,
        "seal_wrap": false,
        "external_entropy_access": false,
    });
    let options = mount_options(&args.options, None)?;
    if let Some(obj) = body.as_object_mut() {
        if !options.is_empty() {
            obj.insert("options".into(), Value::Object(options));
        }
        if let Some(v) = args.plugin_version.as_deref().filter(|v| !v.is_empty()) {
            obj.insert("plugin_version".into(), v.into());
        }
    }
    Ok(body)
}

/// `auth enable [-path=P] ... TYPE`.
pub async fn enable(ctx: &mut Ctx<'_, '_>, args: AuthEnableArgs) -> Result<i32, Error> {
    let method_type = args.method_type.trim().to_string();
    if method_type.is_empty() {
        return Err(Error::Usage(
            "The auth method type must not be empty".into(),
        ));
    }
    let path = mount_path(args.path.as_deref().unwrap_or(&method_type));
    if path.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    let body = enable_body(&args, &method_type)?;
    let client = ctx.client()?;
    client
        .request(Method::POST, &format!("sys/auth/{path}"), Some(&body))
        .await
        .map_err(|e| e.context(format!("Error enabling {method_type} auth")))?;
    let mut thing = format!("{method_type} auth method");
    if let Some(v) = args.plugin_version.as_deref().filter(|v| !v.is_empty()) {
        thing.push_str(&format!(" version {v}"));
    }
    ctx.outln(&format!("Success! Enabled {thing} at: {path}"));
    Ok(0)
}

/// `auth disable PATH`.
pub async fn disable(ctx: &mut Ctx<'_, '_>, args: AuthDisableArgs) -> Result<i32, Error> {
    let path = mount_path(&args.path);
    if path.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    let client = ctx.client()?;
    client
        .delete(&format!("sys/auth/{path}"))
        .await
        .map_err(|e| e.context(format!("Error disabling auth method at {path}")))?;
    ctx.outln(&format!(
        "Success! Disabled the auth method (if it existed) at: {path}"
    ));
    Ok(0)
}

/// `auth list [-detailed]`.
pub async fn list(ctx: &mut Ctx<'_, '_>, args: AuthListArgs) -> Result<i32, Error> {
    list_mounts(
        ctx,
        "sys/auth",
        "enabled authentications",
        args.detailed,
        simple_mounts,
        detailed_mounts,
    )
    .await
}

/// Columns of `vault auth list`.
fn simple_mounts(mounts: &Map<String, Value>) -> MountTable {
    let rows = sorted_paths(mounts)
        .into_iter()
        .filter_map(|path| {
            mounts.get(path).map(|m| {
                vec![
                    path.clone(),
                    str_at(m, "type").to_string(),
                    str_at(m, "accessor").to_string(),
                    str_at(m, "description").to_string(),
                ]
            })
        })
        .collect();
    (vec!["Path", "Type", "Accessor", "Description"], rows)
}

/// Columns of `vault auth list -detailed`.
fn detailed_mounts(mounts: &Map<String, Value>) -> MountTable {
    // Vault prints TTLs as raw seconds and "system" for the system default.
    let ttl = |value: Option<&Value>| -> String {
        match value.and_then(Value::as_i64).unwrap_or(0) {
            0 => "system".to_string(),
            secs => secs.to_string(),
        }
    };
    let rows = sorted_paths(mounts)
        .into_iter()
        .filter_map(|path| {
            let m = mounts.get(path)?;
            let typ = str_at(m, "type");
            let empty = Value::Null;
            let config = m.get("config").unwrap_or(&empty);
            let plugin = if typ == "plugin" {
                str_at(config, "plugin_name")
            } else {
                typ
            };
            let options = match m.get("options") {
                Some(Value::Object(o)) => output::go_value(&Value::Object(o.clone())),
                _ => "map[]".to_string(),
            };
            Some(vec![
                path.clone(),
                plugin.to_string(),
                str_at(m, "accessor").to_string(),
                ttl(config.get("default_lease_ttl")),
                ttl(config.get("max_lease_ttl")),
                str_at(config, "token_type").to_string(),
                if bool_at(m, "local") {
                    "local"
                } else {
                    "replicated"
                }
                .to_string(),
                bool_at(m, "seal_wrap").to_string(),
                bool_at(m, "external_entropy_access").to_string(),
                options,
                str_at(m, "description").to_string(),
                str_at(m, "uuid").to_string(),
                str_at(m, "plugin_version").to_string(),
                str_at(m, "running_plugin_version").to_string(),
                str_at(m, "running_sha256").to_string(),
                str_at(m, "deprecation_status").to_string(),
            ])
        })
        .collect();
    let header = vec![
        "Path",
        "Plugin",
        "Accessor",
        "Default TTL",
        "Max TTL",
        "Token Type",
        "Replication",
        "Seal Wrap",
        "External Entropy Access",
        "Options",
        "Description",
        "UUID",
        "Version",
        "Running Version",
        "Running SHA256",
        "Deprecation Status",
    ];
    (header, rows)
}

/// The body of `POST sys/auth/PATH/tune`.
fn tune_body(args: &AuthTuneArgs) -> Result<Value, Error> {
    tune_body_of(&TuneFlags {
        default_lease_ttl: args.default_lease_ttl,
        max_lease_ttl: args.max_lease_ttl,
        description: args.description.as_deref(),
        options: &args.options,
        version: None,
        plugin_version: args.plugin_version.as_deref(),
    })
}

/// `auth tune PATH`.
pub async fn tune(ctx: &mut Ctx<'_, '_>, args: AuthTuneArgs) -> Result<i32, Error> {
    let path = mount_path(&args.path);
    if path.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    let body = tune_body(&args)?;
    let client = ctx.client()?;
    client
        .request(
            Method::POST,
            &format!("sys/auth/{}/tune", sanitize_path(&path)),
            Some(&body),
        )
        .await
        .map_err(|e| e.context(format!("Error tuning auth method {path}")))?;
    ctx.outln(&format!("Success! Tuned the auth method at: {path}"));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::GlobalArgs;

    fn enable_args(method: &str) -> AuthEnableArgs {
        AuthEnableArgs {
            method_type: method.into(),
            path: None,
            description: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            local: false,
            options: vec![],
            plugin_version: None,
            global: GlobalArgs::default(),
        }
    }

    #[test]
    fn enable_body_like_vault() {
        assert_eq!(
            enable_body(&enable_args("userpass"), "userpass").unwrap(),
            json!({
                "type": "userpass",
                "description": "",
                "config": {"default_lease_ttl": "0s", "max_lease_ttl": "0s"},
                "local": false,
                "seal_wrap": false,
                "external_entropy_access": false
            })
        );
        let mut args = enable_args("userpass");
        args.description = Some("people".into());
        args.default_lease_ttl = Some(GoDuration::from_secs(3600));
        args.options = vec!["a=b".into()];
        args.plugin_version = Some("v0.2.0".into());
        args.local = true;
        let body = enable_body(&args, "userpass").unwrap();
        assert_eq!(body["config"]["default_lease_ttl"], "1h0m0s");
        assert_eq!(body["options"], json!({"a": "b"}));
        assert_eq!(body["plugin_version"], "v0.2.0");
        assert_eq!(body["local"], true);
        assert_eq!(body["description"], "people");
        args.options = vec!["novalue".into()];
        assert_eq!(enable_body(&args, "userpass").unwrap_err().exit_code(), 1);
    }

    #[test]
    fn tune_body_only_carries_given_fields() {
        let args = AuthTuneArgs {
            path: "userpass".into(),
            default_lease_ttl: None,
            max_lease_ttl: Some(GoDuration::from_secs(-1)),
            description: Some("d".into()),
            options: vec![],
            plugin_version: None,
            global: GlobalArgs::default(),
        };
        assert_eq!(
            tune_body(&args).unwrap(),
            json!({"max_lease_ttl": "system", "description": "d"})
        );
    }

    #[test]
    fn list_rows() {
        let mounts = json!({
            "userpass/": {"type": "userpass", "accessor": "auth_userpass_1", "description": "",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 7200,
                    "token_type": "default-service"},
                "local": false, "options": null, "uuid": "u2", "plugin_version": "",
                "running_plugin_version": "v0.1.0", "running_sha256": "abc"},
            "token/": {"type": "token", "accessor": "auth_token_1",
                "description": "token based credentials",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0},
                "local": false, "options": {}, "uuid": "u1"}
        });
        let mounts = mounts.as_object().unwrap();
        let (header, rows) = simple_mounts(mounts);
        assert_eq!(
            output::table(&header, &rows),
            "Path         Type        Accessor           Description\n\
             ----         ----        --------           -----------\n\
             token/       token       auth_token_1       token based credentials\n\
             userpass/    userpass    auth_userpass_1    n/a\n"
        );
        let (header, rows) = detailed_mounts(mounts);
        assert_eq!(header.len(), rows[0].len());
        assert_eq!(
            &rows[0][..6],
            ["token/", "token", "auth_token_1", "system", "system", ""]
        );
        assert_eq!(
            &rows[1][..10],
            [
                "userpass/",
                "userpass",
                "auth_userpass_1",
                "system",
                "7200",
                "default-service",
                "replicated",
                "false",
                "false",
                "map[]"
            ]
        );
        assert_eq!(&rows[1][13..15], ["v0.1.0", "abc"]);
    }
}
