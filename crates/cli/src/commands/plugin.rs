//! `plugin register | deregister | list | info | reload`: the plugin catalog
//! under `sys/plugins/catalog/` and reloads under `sys/plugins/reload/`.
//! `plugin push | pull` talk to an OCI registry instead of the server
//! (through the `lockbox-oci` crate): publish a binary as an artifact, or
//! fetch and verify one to inspect it.
//!
//! Plugin types are `secret` and `auth`, the two the server's catalog holds;
//! they are checked before anything is sent.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Ctx, mount_path};
use crate::cli::{
    PluginDeregisterArgs, PluginInfoArgs, PluginListArgs, PluginPullArgs, PluginPushArgs,
    PluginRegisterArgs, PluginReloadArgs, RegistryArgs,
};
use crate::client::Secret;
use crate::config::Format;
use crate::error::Error;
use crate::input;
use crate::output;

/// The plugin types of the catalog.
const PLUGIN_TYPES: [&str; 2] = ["secret", "auth"];

/// Checks a plugin type argument and returns it lowercased.
fn parse_plugin_type(raw: &str) -> Result<String, Error> {
    let kind = raw.trim().to_ascii_lowercase();
    if PLUGIN_TYPES.contains(&kind.as_str()) {
        Ok(kind)
    } else {
        Err(Error::Usage(format!(
            "{:?} is not a supported plugin type: use \"secret\" or \"auth\"",
            raw.trim()
        )))
    }
}

/// The `TYPE NAME` positionals of `register`, `deregister` and `info`. Given
/// only one argument (Vault's old `NAME` form), clap put the name in the type
/// slot: ask for the type.
fn type_and_name(
    command: &str,
    first: &str,
    second: Option<&str>,
) -> Result<(String, String), Error> {
    let Some(name) = second else {
        return Err(Error::Usage(format!(
            "A plugin type is required: lockbox plugin {command} [options] TYPE {}, with \
             TYPE \"secret\" or \"auth\"",
            first.trim()
        )));
    };
    let kind = parse_plugin_type(first)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::Usage("The plugin name must not be empty".into()));
    }
    Ok((kind, name.to_string()))
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved
/// characters), so `v1.0.0+ent` keeps its `+`.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `sys/plugins/catalog/TYPE/NAME`, with `?version=V` when a version is given.
fn catalog_path(kind: &str, name: &str, version: Option<&str>) -> String {
    let mut path = format!("sys/plugins/catalog/{kind}/{name}");
    if let Some(v) = version.map(str::trim).filter(|v| !v.is_empty()) {
        path.push_str("?version=");
        path.push_str(&query_escape(v));
    }
    path
}

/// The body of `PUT sys/plugins/catalog/TYPE/NAME`.
fn register_body(args: &PluginRegisterArgs, name: &str) -> Result<Value, Error> {
    // Only checked: the entries are sent as given.
    input::parse_pairs("env", &args.env)?;
    let command = args
        .command
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let oci_image = args
        .oci_image
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let mut body = json!({
        "sha256": args.sha256.as_deref().map(str::trim).unwrap_or_default(),
        "args": args.args,
        "env": args.env,
        "version": args.version.as_deref().map(str::trim).unwrap_or_default(),
    });
    match oci_image {
        // The server defaults the path inside the image (/plugin).
        Some(image) => {
            body["oci_image"] = json!(image);
            if let Some(c) = command {
                body["command"] = json!(c);
            }
        }
        None => body["command"] = json!(command.unwrap_or(name)),
    }
    Ok(body)
}

/// `plugin register [-sha256=HEX] [-command=FILE] [-args=A]... [-env=K=V]...
/// [-version=V] TYPE NAME`.
pub async fn register(ctx: &mut Ctx<'_, '_>, args: PluginRegisterArgs) -> Result<i32, Error> {
    let (kind, name) = type_and_name("register", &args.plugin_type, args.name.as_deref())?;
    let has_image = args
        .oci_image
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty());
    if !has_image && args.sha256.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(Error::Usage(
            "SHA256 is required for all plugins, please provide -sha256".into(),
        ));
    }
    let body = register_body(&args, &name)?;
    let client = ctx.client()?;
    let response = client
        .request(Method::PUT, &catalog_path(&kind, &name, None), Some(&body))
        .await
        .map_err(|e| e.context(format!("Error registering plugin {name}")))?;
    if let Some(secret) = &response {
        let warnings = output::warnings_block(secret);
        ctx.err(&warnings);
    }
    ctx.outln(&format!("Success! Registered plugin: {name}"));
    Ok(0)
}

/// `plugin deregister [-version=V] TYPE NAME`.
pub async fn deregister(ctx: &mut Ctx<'_, '_>, args: PluginDeregisterArgs) -> Result<i32, Error> {
    let (kind, name) = type_and_name("deregister", &args.plugin_type, args.name.as_deref())?;
    let client = ctx.client()?;
    client
        .delete(&catalog_path(&kind, &name, args.version.as_deref()))
        .await
        .map_err(|e| e.context(format!("Error deregistering plugin named {name}")))?;
    ctx.outln(&format!(
        "Success! Deregistered plugin (if it was registered): {name}"
    ));
    Ok(0)
}

/// The catalog entries of a `GET sys/plugins/catalog` answer, of one type
/// or all, sorted by type, name and version. Uses the `detailed` list, or
/// the per-type name lists when the server sent no details.
fn catalog_entries(data: &Map<String, Value>, kind: Option<&str>) -> Vec<Map<String, Value>> {
    let wanted = |t: &str| kind.is_none_or(|k| k == t);
    let mut entries: Vec<Map<String, Value>> = match data.get("detailed") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter(|e| wanted(text(e, "type").as_str()))
            .cloned()
            .collect(),
        _ => ["auth", "database", "secret"]
            .into_iter()
            .filter(|t| wanted(t))
            .flat_map(|t| {
                let names = match data.get(t) {
                    Some(Value::Array(names)) => names.clone(),
                    _ => Vec::new(),
                };
                names.into_iter().map(move |n| {
                    let mut entry = Map::new();
                    entry.insert("name".into(), n);
                    entry.insert("type".into(), t.into());
                    entry
                })
            })
            .collect(),
    };
    entries.sort_by_key(|e| (text(e, "type"), text(e, "name"), text(e, "version")));
    entries
}

/// A field of an entry as text; empty when missing or null.
fn text(entry: &Map<String, Value>, key: &str) -> String {
    match entry.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(v) => output::go_value(v),
    }
}

/// The table of `plugin list`: `Name Type Version` (without `Type` when
/// listing one type), or with `-detailed` Vault's columns (minus the OCI
/// `Container`) plus the SHA-256 and the command.
fn list_table(entries: &[Map<String, Value>], typed: bool, detailed: bool) -> String {
    let columns: &[(&str, &str)] = if detailed {
        &[
            ("Name", "name"),
            ("Type", "type"),
            ("Version", "version"),
            ("Deprecation Status", "deprecation_status"),
            ("SHA256", "sha256"),
            ("Command", "command"),
        ]
    } else if typed {
        &[("Name", "name"), ("Version", "version")]
    } else {
        &[("Name", "name"), ("Type", "type"), ("Version", "version")]
    };
    let header: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| columns.iter().map(|(_, key)| text(e, key)).collect())
        .collect();
    output::table(&header, &rows)
}

/// `plugin list [-detailed] [TYPE]`.
pub async fn list(ctx: &mut Ctx<'_, '_>, args: PluginListArgs) -> Result<i32, Error> {
    let kind = args
        .plugin_type
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(parse_plugin_type)
        .transpose()?;
    let client = ctx.client()?;
    let secret = client
        .request(Method::GET, "sys/plugins/catalog", None)
        .await
        .map_err(|e| e.context("Error listing available plugins"))?
        .ok_or_else(|| {
            Error::Unexpected(
                "Error listing available plugins: data from server response is empty".into(),
            )
        })?;
    let data = secret.data_or_top_level();
    let entries = catalog_entries(data, kind.as_deref());
    match ctx.format() {
        Format::Json | Format::Yaml => {
            // Vault's shape: the name lists by type, plus the details.
            let mut out = Map::new();
            for t in ["auth", "database", "secret"] {
                if kind.as_deref().is_none_or(|k| k == t)
                    && let Some(names) = data.get(t)
                {
                    out.insert(t.into(), names.clone());
                }
            }
            out.insert(
                "details".into(),
                Value::Array(entries.into_iter().map(Value::Object).collect()),
            );
            ctx.print_structured(&out)?;
        }
        Format::Table => {
            let table = list_table(&entries, kind.is_some(), args.detailed);
            ctx.out(&table);
        }
    }
    Ok(0)
}

/// `plugin info [-version=V] [-field=F] TYPE NAME`.
pub async fn info(ctx: &mut Ctx<'_, '_>, args: PluginInfoArgs) -> Result<i32, Error> {
    let (kind, name) = type_and_name("info", &args.plugin_type, args.name.as_deref())?;
    let client = ctx.client()?;
    let secret = client
        .read(&catalog_path(&kind, &name, args.version.as_deref()))
        .await
        .map_err(|e| e.context(format!("Error reading plugin named {name}")))?
        .ok_or_else(|| Error::NotFound(format!("No value found for plugin {name:?}")))?;
    let data = secret.data_or_top_level().clone();
    if let Some(field) = &args.field {
        let entry = Secret {
            data: Some(data),
            ..Default::default()
        };
        return ctx.print_field(&entry, field);
    }
    match ctx.format() {
        Format::Json | Format::Yaml => ctx.print_structured(&data)?,
        Format::Table => {
            let table = output::key_value_table(&output::data_rows(&data));
            ctx.out(&table);
        }
    }
    Ok(0)
}

/// What `plugin reload` sends: the path and the body.
fn reload_request(args: &PluginReloadArgs) -> Result<(String, Option<Value>), Error> {
    let plugin = args
        .plugin
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let mounts = reload_mounts(args);
    match (plugin, mounts.is_empty()) {
        (None, true) => {
            return Err(Error::Usage(
                "No plugins specified, must specify exactly one of -plugin or -mounts".into(),
            ));
        }
        (Some(_), false) => {
            return Err(Error::Usage(
                "Must specify exactly one of -plugin or -mounts".into(),
            ));
        }
        _ => {}
    }
    let kind = args
        .plugin_type
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(parse_plugin_type)
        .transpose()?;
    if kind.is_some() && !mounts.is_empty() {
        return Err(Error::Usage("Cannot specify -type with -mounts".into()));
    }
    Ok(match (plugin, kind) {
        (Some(name), Some(kind)) => (format!("sys/plugins/reload/{kind}/{name}"), None),
        (Some(name), None) => (
            "sys/plugins/reload/backend".into(),
            Some(json!({"plugin": name})),
        ),
        (None, _) => (
            "sys/plugins/reload/backend".into(),
            Some(json!({"mounts": mounts})),
        ),
    })
}

/// The `-mounts` paths as mount paths (`a` → `a/`), empty ones dropped.
fn reload_mounts(args: &PluginReloadArgs) -> Vec<String> {
    args.mounts
        .iter()
        .map(|m| mount_path(m))
        .filter(|m| !m.is_empty())
        .collect()
}

/// `plugin reload (-plugin=NAME [-type=TYPE] | -mounts=PATH...)`.
pub async fn reload(ctx: &mut Ctx<'_, '_>, args: PluginReloadArgs) -> Result<i32, Error> {
    let (path, body) = reload_request(&args)?;
    let client = ctx.client()?;
    let response = client
        .request(Method::PUT, &path, body.as_ref())
        .await
        .map_err(|e| e.context("Error reloading plugin/mounts"))?;
    if let Some(secret) = &response {
        let warnings = output::warnings_block(secret);
        ctx.err(&warnings);
    }
    let mounts = reload_mounts(&args);
    let what = if mounts.is_empty() {
        format!(
            "plugin: {}",
            args.plugin.as_deref().map(str::trim).unwrap_or_default()
        )
    } else {
        // Go's %s of a []string.
        format!("mounts: [{}]", mounts.join(" "))
    };
    let reload_id = response
        .as_ref()
        .and_then(|s| s.str_field("reload_id"))
        .filter(|id| !id.is_empty());
    match reload_id {
        Some(id) => ctx.outln(&format!("Success! Reloaded {what}, reload_id: {id}")),
        None => ctx.outln(&format!("Success! Reloaded {what}")),
    }
    Ok(0)
}

/// Registry credentials from the flags: -username with -password-stdin or
/// LOCKBOX_REGISTRY_PASSWORD, else -auth-file, else anonymous.
fn registry_credentials(
    ctx: &mut Ctx<'_, '_>,
    args: &RegistryArgs,
    registry: &str,
) -> Result<lockbox_oci::Credentials, Error> {
    let username = args
        .username
        .clone()
        .or_else(|| (ctx.io.env)("LOCKBOX_REGISTRY_USERNAME"))
        .filter(|u| !u.is_empty());
    if let Some(username) = username {
        let password = if args.password_stdin {
            let mut line = String::new();
            ctx.io
                .stdin
                .read_line(&mut line)
                .map_err(|source| Error::Input {
                    what: "error reading the registry password from stdin".into(),
                    source,
                })?;
            line.trim_end_matches(['\r', '\n']).to_string()
        } else {
            (ctx.io.env)("LOCKBOX_REGISTRY_PASSWORD").ok_or_else(|| {
                Error::Usage(
                    "-username needs a password: pass -password-stdin or set LOCKBOX_REGISTRY_PASSWORD"
                        .into(),
                )
            })?
        };
        return Ok(lockbox_oci::Credentials::Basic {
            username,
            password: zeroize::Zeroizing::new(password),
        });
    }
    if args.password_stdin {
        return Err(Error::Usage("-password-stdin needs -username".into()));
    }
    if let Some(path) = &args.auth_file {
        let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|source| Error::Input {
            what: format!("error reading auth file {}", path.display()),
            source,
        })?);
        return Ok(lockbox_oci::auth::from_docker_config(
            &raw,
            registry,
            &path.display().to_string(),
        )?
        .unwrap_or_default());
    }
    Ok(lockbox_oci::Credentials::Anonymous)
}

fn registry_client(args: &RegistryArgs) -> Result<lockbox_oci::Registry, Error> {
    let insecure = args
        .insecure_registries
        .iter()
        .map(|r| lockbox_oci::reference::parse_insecure_registry(r).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lockbox_oci::Registry::new(&insecure)?)
}

/// `plugin push FILE REGISTRY/REPO:TAG`.
pub async fn push(ctx: &mut Ctx<'_, '_>, args: PluginPushArgs) -> Result<i32, Error> {
    let image = lockbox_oci::ImageRef::parse(&args.reference)?;
    let creds = registry_credentials(ctx, &args.registry, image.registry())?;
    let registry = registry_client(&args.registry)?;
    let bar = if ctx.io.stderr_is_terminal {
        let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(size),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("pushing {}", args.file.display()));
        Some(bar)
    } else {
        None
    };
    let progress_bar = bar.clone();
    let pushed = registry
        .push_binary(&args.file, &image, &creds, move |sent, _total| {
            if let Some(b) = &progress_bar {
                b.set_position(sent);
            }
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let pushed = pushed?;
    let pinned = image.at_digest(&pushed.manifest_digest);
    match ctx.format() {
        Format::Json | Format::Yaml => ctx.print_structured(&json!({
            "reference": image.as_given(),
            "digest": pushed.manifest_digest,
            "pinned_reference": pinned.as_given(),
            "sha256": pushed.sha256,
            "size": pushed.size,
        }))?,
        Format::Table => {
            ctx.outln(&format!(
                "Success! Pushed {} ({} bytes) to {}",
                args.file.display(),
                pushed.size,
                image.as_given()
            ));
            ctx.outln(&format!("Digest: {}", pushed.manifest_digest));
            ctx.outln(&format!("Pinned reference: {}", pinned.as_given()));
            ctx.outln(&format!("Binary SHA256: {}", pushed.sha256));
        }
    }
    Ok(0)
}

/// `plugin pull REF [-path=P] [-sha256=HEX] [-output=FILE]`.
pub async fn pull(ctx: &mut Ctx<'_, '_>, args: PluginPullArgs) -> Result<i32, Error> {
    let image = lockbox_oci::ImageRef::parse(&args.reference)?;
    let sha256 = args
        .sha256
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty());
    if let Some(s) = &sha256
        && !lockbox_oci::is_sha256_hex(s)
    {
        return Err(Error::Usage(format!(
            "-sha256 {s:?} must be 64 hex characters"
        )));
    }
    if !image.is_pinned() && sha256.is_none() {
        return Err(lockbox_oci::OciError::Unpinned {
            reference: image.as_given().to_string(),
        }
        .into());
    }
    let path = args
        .path
        .clone()
        .unwrap_or_else(|| lockbox_oci::DEFAULT_PATH.to_string());
    let file_name = lockbox_oci::layout::normalize_path(&path)
        .map_err(Error::Usage)?
        .pop()
        .unwrap_or_else(|| "plugin".into());
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(file_name));
    let creds = registry_credentials(ctx, &args.registry, image.registry())?;
    let registry = registry_client(&args.registry)?;
    // A private, throwaway cache: the binary is verified there, then copied.
    let scratch = std::env::temp_dir().join(format!(
        "lockbox-plugin-pull-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let cache = lockbox_oci::Cache::new(&scratch, u64::MAX);
    let opts = lockbox_oci::PullOptions {
        path: path.clone(),
        expected_sha256: sha256,
        max_size: args.max_size.unwrap_or(lockbox_oci::DEFAULT_MAX_SIZE),
    };
    let result = registry.pull_binary(&image, &creds, &opts, &cache).await;
    let copied = result.as_ref().ok().map(|pulled| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::copy(&pulled.path, &output)
            .and_then(|_| std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o755)))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let pulled = result?;
    if let Some(Err(source)) = copied {
        return Err(Error::LocalState {
            what: format!("error writing {}", output.display()),
            source,
        });
    }
    match ctx.format() {
        Format::Json | Format::Yaml => ctx.print_structured(&json!({
            "reference": image.as_given(),
            "digest": pulled.manifest_digest,
            "path": path,
            "sha256": pulled.sha256,
            "size": pulled.size,
            "output": output.display().to_string(),
        }))?,
        Format::Table => {
            ctx.outln(&format!(
                "Success! Pulled {path} from {} to {} ({} bytes)",
                image.as_given(),
                output.display(),
                pulled.size
            ));
            ctx.outln(&format!("Digest: {}", pulled.manifest_digest));
            ctx.outln(&format!("Binary SHA256: {}", pulled.sha256));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
