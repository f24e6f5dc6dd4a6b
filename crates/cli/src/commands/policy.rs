//! `policy write | read | list | delete`: ACL policies under
//! `sys/policies/acl/`.

use std::path::Path;

use serde_json::{Value, json};

use super::Ctx;
use crate::cli::{PolicyDeleteArgs, PolicyReadArgs, PolicyWriteArgs};
use crate::config::Format;
use crate::error::Error;
use crate::input;

/// Policy names are case-insensitive; the server stores them lowercased.
fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

fn policy_path(name: &str) -> String {
    format!("sys/policies/acl/{name}")
}

/// `policy write NAME FILE|-`.
pub async fn write(ctx: &mut Ctx<'_, '_>, args: PolicyWriteArgs) -> Result<i32, Error> {
    let name = normalize_name(&args.name);
    if name.is_empty() {
        return Err(Error::Usage("The policy name must not be empty".into()));
    }
    let source = args.file.trim();
    let rules = if source == "-" {
        input::read_all(ctx.io.stdin)?
    } else {
        std::fs::read_to_string(Path::new(source)).map_err(|e| Error::Input {
            what: format!("Error opening policy file {source:?}"),
            source: e,
        })?
    };
    let client = ctx.client()?;
    client
        .write(&policy_path(&name), json!({"policy": rules}))
        .await
        .map_err(|e| e.context("Error uploading policy"))?;
    if name != args.name {
        ctx.errln(&format!(
            "Policy name was converted from \"{}\" to \"{name}\"",
            args.name
        ));
    }
    ctx.outln(&format!("Success! Uploaded policy: {name}"));
    Ok(0)
}

/// `policy read NAME`.
pub async fn read(ctx: &mut Ctx<'_, '_>, args: PolicyReadArgs) -> Result<i32, Error> {
    let name = normalize_name(&args.name);
    let client = ctx.client()?;
    let secret = client
        .read(&policy_path(&name))
        .await
        .map_err(|e| e.context(format!("Error reading policy named {name}")))?;
    let rules = secret
        .as_ref()
        .and_then(|s| s.str_field("policy").or_else(|| s.str_field("rules")))
        .unwrap_or_default()
        .to_string();
    if rules.is_empty() {
        return Err(Error::NotFound(format!("No policy named: {name}")));
    }
    match ctx.format() {
        Format::Json | Format::Yaml => ctx.print_structured(&json!({"policy": rules}))?,
        Format::Table => ctx.outln(rules.trim()),
    }
    Ok(0)
}

/// `policy list`.
pub async fn list(ctx: &mut Ctx<'_, '_>) -> Result<i32, Error> {
    let client = ctx.client()?;
    let secret = client
        .list("sys/policies/acl")
        .await
        .map_err(|e| e.context("Error listing policies"))?;
    let names: Vec<String> = match secret.as_ref().and_then(|s| s.field("keys")) {
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| k.to_string())
            })
            .collect(),
        _ => Vec::new(),
    };
    match ctx.format() {
        Format::Json | Format::Yaml => ctx.print_structured(&names)?,
        Format::Table => {
            for name in &names {
                ctx.outln(name);
            }
        }
    }
    Ok(0)
}

/// `policy delete NAME`.
pub async fn delete(ctx: &mut Ctx<'_, '_>, args: PolicyDeleteArgs) -> Result<i32, Error> {
    let name = normalize_name(&args.name);
    let client = ctx.client()?;
    client
        .delete(&policy_path(&name))
        .await
        .map_err(|e| e.context(format!("Error deleting {name}")))?;
    ctx.outln(&format!("Success! Deleted policy: {name}"));
    Ok(0)
}
