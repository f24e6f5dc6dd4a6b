//! `read`, `write`, `list` and `delete`: the generic commands that work on
//! any path.

use serde_json::Value;

use super::{Ctx, sanitize_path};
use crate::cli::{DeleteArgs, ListArgs, ReadArgs, WriteArgs};
use crate::config::Format;
use crate::error::Error;
use crate::input;
use crate::output;

/// `read PATH`.
pub async fn read(ctx: &mut Ctx<'_, '_>, args: ReadArgs) -> Result<i32, Error> {
    let path = sanitize_path(&args.path);
    let client = ctx.client()?;
    let secret = client
        .read(&path)
        .await
        .map_err(|e| e.context(format!("Error reading {path}")))?
        .ok_or_else(|| Error::NotFound(format!("No value found at {path}")))?;
    match &args.field {
        Some(field) => ctx.print_field(&secret, field),
        None => ctx.print_secret(&secret),
    }
}

/// `write PATH [K=V...]`.
pub async fn write(ctx: &mut Ctx<'_, '_>, args: WriteArgs) -> Result<i32, Error> {
    if args.data.is_empty() && !args.force {
        return Err(Error::Usage("Must supply data or use -force".into()));
    }
    let path = sanitize_path(&args.path);
    let data = input::parse_kv_args(&args.data, ctx.io.stdin)
        .map_err(|e| e.context("Failed to parse K=V data"))?;
    let client = ctx.client()?;
    let secret = client
        .write(&path, Value::Object(data))
        .await
        .map_err(|e| e.context(format!("Error writing data to {path}")))?;
    match secret {
        None => {
            if ctx.format() == Format::Table {
                ctx.outln(&format!("Success! Data written to: {path}"));
            }
            Ok(0)
        }
        Some(secret) => match &args.field {
            Some(field) => ctx.print_field(&secret, field),
            None => ctx.print_secret(&secret),
        },
    }
}

/// `list PATH`.
pub async fn list(ctx: &mut Ctx<'_, '_>, args: ListArgs) -> Result<i32, Error> {
    let path = sanitize_path(&args.path);
    let client = ctx.client()?;
    let secret = client
        .list(&path)
        .await
        .map_err(|e| e.context(format!("Error listing {path}")))?;
    let keys = secret.as_ref().and_then(|s| match s.field("keys") {
        Some(Value::Array(keys)) => Some(keys.clone()),
        _ => None,
    });

    if ctx.format().is_structured() {
        return match keys {
            Some(keys) => {
                ctx.print_structured(&keys)?;
                Ok(0)
            }
            None => {
                ctx.print_structured(&serde_json::Map::new())?;
                Ok(2)
            }
        };
    }

    let Some(secret) = secret else {
        return Err(Error::NotFound(format!("No value found at {path}")));
    };
    let Some(keys) = keys else {
        if secret.data.is_none() {
            // Nothing but (maybe) warnings: show them.
            return ctx.print_secret(&secret);
        }
        return Err(Error::NotFound(format!("No entries found at {path}")));
    };
    ctx.err(&output::warnings_block(&secret));
    let mut names: Vec<String> = keys.iter().map(output::go_value).collect();
    names.sort();
    let rows: Vec<Vec<String>> = names.into_iter().map(|k| vec![k]).collect();
    ctx.out(&output::table(&["Keys"], &rows));
    Ok(0)
}

/// `delete PATH`.
pub async fn delete(ctx: &mut Ctx<'_, '_>, args: DeleteArgs) -> Result<i32, Error> {
    let path = sanitize_path(&args.path);
    let client = ctx.client()?;
    let secret = client
        .delete(&path)
        .await
        .map_err(|e| e.context(format!("Error deleting {path}")))?;
    match secret {
        None => {
            if ctx.format() == Format::Table {
                ctx.outln(&format!("Success! Data deleted (if it existed) at: {path}"));
            }
            Ok(0)
        }
        Some(secret) => ctx.print_secret(&secret),
    }
}
