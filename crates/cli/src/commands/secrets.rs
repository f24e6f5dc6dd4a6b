//! `secrets enable | disable | list | tune | move`: mounts under
//! `sys/mounts/` and `sys/remount`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, mount_path, sanitize_path};
use crate::cli::{
    SecretsDisableArgs, SecretsEnableArgs, SecretsListArgs, SecretsMoveArgs, SecretsTuneArgs,
};
use crate::config::Format;
use crate::duration::GoDuration;
use crate::error::Error;
use crate::input;
use crate::output;

/// How often `secrets move` polls the migration status.
const MOVE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long `secrets move` waits for a migration to finish before giving up.
const MOVE_TIMEOUT: Duration = Duration::from_secs(600);

/// Mount options from `-options=k=v` flags plus `-version=N`.
pub(super) fn mount_options(
    options: &[String],
    version: Option<u32>,
) -> Result<Map<String, Value>, Error> {
    let mut map: Map<String, Value> = input::parse_pairs("options", options)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if let Some(v) = version {
        map.insert("version".into(), Value::String(v.to_string()));
    }
    Ok(map)
}

/// The body of `POST sys/mounts/PATH`.
fn enable_body(args: &SecretsEnableArgs, engine_type: &str) -> Result<Value, Error> {
    let ttl = |d: Option<GoDuration>| d.unwrap_or_default().to_string();
    let mut body = json!({
        "type": engine_type,
        "description": args.description.clone().unwrap_or_default(),
        "config": {
            "default_lease_ttl": ttl(args.default_lease_ttl),
            "max_lease_ttl": ttl(args.max_lease_ttl),
            "force_no_cache": args.force_no_cache,
        },
        "local": args.local,
        "seal_wrap": false,
        "external_entropy_access": false,
    });
    let options = mount_options(&args.options, args.version)?;
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

/// `secrets enable`.
pub async fn enable(ctx: &mut Ctx<'_, '_>, args: SecretsEnableArgs) -> Result<i32, Error> {
    let engine_type = args.engine_type.trim().to_string();
    if engine_type.is_empty() {
        return Err(Error::Usage(
            "The secrets engine type must not be empty".into(),
        ));
    }
    let path = mount_path(args.path.as_deref().unwrap_or(&engine_type));
    if path.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    let body = enable_body(&args, &engine_type)?;
    let client = ctx.client()?;
    client
        .request(Method::POST, &format!("sys/mounts/{path}"), Some(&body))
        .await
        .map_err(|e| e.context("Error enabling"))?;
    let mut thing = format!("{engine_type} secrets engine");
    if let Some(v) = args.plugin_version.as_deref().filter(|v| !v.is_empty()) {
        thing.push_str(&format!(" version {v}"));
    }
    ctx.outln(&format!("Success! Enabled the {thing} at: {path}"));
    Ok(0)
}

/// `secrets disable`.
pub async fn disable(ctx: &mut Ctx<'_, '_>, args: SecretsDisableArgs) -> Result<i32, Error> {
    let path = mount_path(&args.path);
    if path.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    let client = ctx.client()?;
    client
        .delete(&format!("sys/mounts/{path}"))
        .await
        .map_err(|e| e.context(format!("Error disabling secrets engine at {path}")))?;
    ctx.outln(&format!(
        "Success! Disabled the secrets engine (if it existed) at: {path}"
    ));
    Ok(0)
}

/// `secrets list [-detailed]`.
pub async fn list(ctx: &mut Ctx<'_, '_>, args: SecretsListArgs) -> Result<i32, Error> {
    list_mounts(
        ctx,
        "sys/mounts",
        "secrets engines",
        args.detailed,
        simple_mounts,
        detailed_mounts,
    )
    .await
}

/// Columns of a mount table: header and rows.
pub(super) type MountTable = (Vec<&'static str>, Vec<Vec<String>>);

/// Fetches a mount listing (`sys/mounts` or `sys/auth`) and prints it as
/// JSON or as the simple or detailed table. `what` names the listing in
/// errors ("secrets engines", "enabled authentications").
pub(super) async fn list_mounts(
    ctx: &mut Ctx<'_, '_>,
    endpoint: &str,
    what: &str,
    detailed: bool,
    simple_table: fn(&Map<String, Value>) -> MountTable,
    detailed_table: fn(&Map<String, Value>) -> MountTable,
) -> Result<i32, Error> {
    let client = ctx.client()?;
    let secret = client
        .request(Method::GET, endpoint, None)
        .await
        .map_err(|e| e.context(format!("Error listing {what}")))?
        .ok_or_else(|| {
            Error::Unexpected(format!(
                "Error listing {what}: data from server response is empty"
            ))
        })?;
    let mounts: Map<String, Value> = secret
        .data_or_top_level()
        .iter()
        .filter(|(_, v)| v.is_object())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match ctx.format() {
        Format::Json | Format::Yaml => ctx.print_structured(&mounts)?,
        Format::Table => {
            let (header, rows) = if detailed {
                detailed_table(&mounts)
            } else {
                simple_table(&mounts)
            };
            ctx.out(&output::table(&header, &rows));
        }
    }
    Ok(0)
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn bool_at(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn sorted_paths(mounts: &Map<String, Value>) -> Vec<&String> {
    let mut paths: Vec<&String> = mounts.keys().collect();
    paths.sort();
    paths
}

/// Columns of `vault secrets list`.
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

/// Columns of `vault secrets list -detailed`.
fn detailed_mounts(mounts: &Map<String, Value>) -> MountTable {
    // Vault prints TTLs as raw seconds, "system" for the system default, and
    // nothing (n/a) for mounts whose TTLs do not apply.
    let ttl = |typ: &str, value: Option<&Value>| -> String {
        let secs = value.and_then(Value::as_i64).unwrap_or(0);
        match typ {
            "system" | "cubbyhole" => String::new(),
            _ if secs != 0 => secs.to_string(),
            _ => "system".to_string(),
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
                ttl(typ, config.get("default_lease_ttl")),
                ttl(typ, config.get("max_lease_ttl")),
                bool_at(config, "force_no_cache").to_string(),
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
        "Force No Cache",
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

/// A TTL as the tune endpoint takes it: unset is omitted, negative means
/// "back to the system default".
fn tune_ttl(d: Option<GoDuration>) -> Option<String> {
    match d {
        None => None,
        Some(d) if d.is_negative() => Some("system".into()),
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d.to_string()),
    }
}

/// The flags a `.../tune` request is built from (`secrets tune` and
/// `auth tune`).
pub(super) struct TuneFlags<'a> {
    pub default_lease_ttl: Option<GoDuration>,
    pub max_lease_ttl: Option<GoDuration>,
    pub description: Option<&'a str>,
    pub options: &'a [String],
    pub version: Option<u32>,
    pub plugin_version: Option<&'a str>,
}

/// The body of `POST sys/mounts/PATH/tune` or `sys/auth/PATH/tune`: only
/// what was given.
pub(super) fn tune_body_of(flags: &TuneFlags<'_>) -> Result<Value, Error> {
    let mut body = Map::new();
    if let Some(ttl) = tune_ttl(flags.default_lease_ttl) {
        body.insert("default_lease_ttl".into(), ttl.into());
    }
    if let Some(ttl) = tune_ttl(flags.max_lease_ttl) {
        body.insert("max_lease_ttl".into(), ttl.into());
    }
    if let Some(d) = flags.description {
        body.insert("description".into(), d.into());
    }
    let options = mount_options(flags.options, flags.version)?;
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    if let Some(v) = flags.plugin_version {
        body.insert("plugin_version".into(), v.into());
    }
    Ok(Value::Object(body))
}

/// The body of `POST sys/mounts/PATH/tune`.
fn tune_body(args: &SecretsTuneArgs) -> Result<Value, Error> {
    tune_body_of(&TuneFlags {
        default_lease_ttl: args.default_lease_ttl,
        max_lease_ttl: args.max_lease_ttl,
        description: args.description.as_deref(),
        options: &args.options,
        version: args.version,
        plugin_version: args.plugin_version.as_deref(),
    })
}

/// `secrets tune`.
pub async fn tune(ctx: &mut Ctx<'_, '_>, args: SecretsTuneArgs) -> Result<i32, Error> {
    let path = mount_path(&args.path);
    if path.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    let body = tune_body(&args)?;
    let client = ctx.client()?;
    client
        .request(
            Method::POST,
            &format!("sys/mounts/{}/tune", sanitize_path(&path)),
            Some(&body),
        )
        .await
        .map_err(|e| e.context(format!("Error tuning secrets engine {path}")))?;
    ctx.outln(&format!("Success! Tuned the secrets engine at: {path}"));
    Ok(0)
}

/// `secrets move SRC DST`: start the migration, then poll its status until
/// it succeeds or fails.
pub async fn move_mount(ctx: &mut Ctx<'_, '_>, args: SecretsMoveArgs) -> Result<i32, Error> {
    let source = mount_path(&args.source);
    let destination = mount_path(&args.destination);
    if source.is_empty() || destination.is_empty() {
        return Err(Error::Usage(
            "The source and destination must not be empty".into(),
        ));
    }
    let client = ctx.client()?;
    let started = client
        .request(
            Method::POST,
            "sys/remount",
            Some(&json!({"from": source, "to": destination})),
        )
        .await
        .map_err(|e| {
            e.context(format!(
                "Error moving secrets engine {source} to {destination}"
            ))
        })?;
    let migration_id = started
        .as_ref()
        .and_then(|s| s.str_field("migration_id"))
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    let Some(id) = migration_id else {
        // Servers that move synchronously answer 204 with no migration.
        ctx.outln(&format!(
            "Success! Moved secrets engine {source} to: {destination}"
        ));
        return Ok(0);
    };
    ctx.outln(&format!(
        "Started moving secrets engine {source} to {destination}, with migration ID {id}"
    ));

    let deadline = tokio::time::Instant::now() + MOVE_TIMEOUT;
    let mut announced_wait = false;
    loop {
        let status = client
            .request(Method::GET, &format!("sys/remount/status/{id}"), None)
            .await
            .map_err(|e| {
                e.context(format!(
                    "Error checking migration status of secrets engine {source} to {destination}"
                ))
            })?;
        let state = status
            .as_ref()
            .and_then(|s| s.field("migration_info"))
            .and_then(|info| info.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match state.as_str() {
            "success" => {
                ctx.outln(&format!(
                    "Success! Finished moving secrets engine {source} to {destination}, with \
                     migration ID {id}"
                ));
                return Ok(0);
            }
            "failure" => {
                return Err(Error::Unexpected(format!(
                    "Failure! Error encountered moving secrets engine {source} to \
                     {destination}, with migration ID {id}"
                )));
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Unexpected(format!(
                "Gave up waiting after {}s for the migration of secrets engine {source} to \
                 {destination} (migration ID {id}); check sys/remount/status/{id}",
                MOVE_TIMEOUT.as_secs()
            )));
        }
        if !announced_wait {
            announced_wait = true;
            ctx.outln(&format!(
                "Waiting for terminal status in migration of secrets engine {source} to \
                 {destination}, with migration ID {id}"
            ));
        }
        tokio::time::sleep(MOVE_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::GlobalArgs;

    fn enable_args(engine: &str) -> SecretsEnableArgs {
        SecretsEnableArgs {
            engine_type: engine.into(),
            path: None,
            description: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            force_no_cache: false,
            local: false,
            options: vec![],
            version: None,
            plugin_version: None,
            global: GlobalArgs::default(),
        }
    }

    #[test]
    fn enable_body_like_vault() {
        assert_eq!(
            enable_body(&enable_args("mock"), "mock").unwrap(),
            json!({
                "type": "mock",
                "description": "",
                "config": {"default_lease_ttl": "0s", "max_lease_ttl": "0s", "force_no_cache": false},
                "local": false,
                "seal_wrap": false,
                "external_entropy_access": false
            })
        );
        let mut args = enable_args("kv");
        args.description = Some("my kv".into());
        args.max_lease_ttl = Some(GoDuration::from_secs(1800));
        args.options = vec!["a=b".into()];
        args.version = Some(2);
        args.plugin_version = Some("v1.2.3".into());
        args.local = true;
        let body = enable_body(&args, "kv").unwrap();
        assert_eq!(body["config"]["max_lease_ttl"], "30m0s");
        assert_eq!(body["options"], json!({"a": "b", "version": "2"}));
        assert_eq!(body["plugin_version"], "v1.2.3");
        assert_eq!(body["local"], true);
        assert_eq!(body["description"], "my kv");
    }

    #[test]
    fn tune_body_only_carries_given_fields() {
        let args = SecretsTuneArgs {
            path: "kv".into(),
            default_lease_ttl: Some(GoDuration::from_secs(-1)),
            max_lease_ttl: Some(GoDuration::from_secs(72 * 3600)),
            description: None,
            options: vec![],
            version: None,
            plugin_version: None,
            global: GlobalArgs::default(),
        };
        assert_eq!(
            tune_body(&args).unwrap(),
            json!({"default_lease_ttl": "system", "max_lease_ttl": "72h0m0s"})
        );
    }

    #[test]
    fn detailed_rows() {
        let mounts = json!({
            "sys/": {"type": "system", "accessor": "system_1", "config": {"default_lease_ttl": 0,
                "max_lease_ttl": 0, "force_no_cache": false}, "local": false, "options": null,
                "description": "system endpoints", "uuid": "u1"},
            "kv/": {"type": "kv", "accessor": "kv_1", "config": {"default_lease_ttl": 3600,
                "max_lease_ttl": 0, "force_no_cache": false}, "local": true,
                "options": {"version": "2"}, "description": "", "uuid": "u2"}
        });
        let (header, rows) = detailed_mounts(mounts.as_object().unwrap());
        assert_eq!(header.len(), rows[0].len());
        assert_eq!(rows[0][0], "kv/");
        assert_eq!(&rows[0][3..7], ["3600", "system", "false", "local"]);
        assert_eq!(rows[0][9], "map[version:2]");
        assert_eq!(rows[1][0], "sys/");
        assert_eq!(&rows[1][3..5], ["", ""]);
        assert_eq!(rows[1][9], "map[]");
    }
}
