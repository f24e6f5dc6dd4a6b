//! `status` and `operator init | unseal | seal | rotate`: the seal lifecycle.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::cli::{OperatorInitArgs, OperatorUnsealArgs};
use crate::client::{Client, Secret};
use crate::config::Format;
use crate::error::Error;
use crate::input;
use crate::output;

const DEFAULT_KEY_SHARES: u32 = 5;
const DEFAULT_KEY_THRESHOLD: u32 = 3;

/// `status`: exit 0 when unsealed, 2 when sealed, 1 on any error.
pub async fn status(ctx: &mut Ctx<'_, '_>) -> Result<i32, Error> {
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => {
            ctx.errln(&e.to_string());
            return Ok(1);
        }
    };
    let status = match seal_status(&client).await {
        Ok(s) => s,
        Err(e) => {
            ctx.errln(&format!("Error checking seal status: {e}"));
            return Ok(1);
        }
    };
    let code = match print_seal_status(ctx, &client, &status).await {
        Ok(code) => code,
        Err(e) => {
            ctx.errln(&e.to_string());
            return Ok(1);
        }
    };
    if bool_of(status.data_or_top_level(), "sealed") {
        return Ok(2);
    }
    Ok(code)
}

async fn seal_status(client: &Client) -> Result<Secret, Error> {
    client
        .request(Method::GET, "sys/seal-status", None)
        .await?
        .ok_or_else(|| Error::Unexpected("the server returned an empty seal status".into()))
}

/// Prints a seal-status answer (from `sys/seal-status` or `sys/unseal`) the
/// way `vault status` does. HA details come from `sys/leader` when the server
/// has it; a server without it is shown as not HA.
async fn print_seal_status(
    ctx: &mut Ctx<'_, '_>,
    client: &Client,
    status: &Secret,
) -> Result<i32, Error> {
    let fields = status.data_or_top_level().clone();
    let leader = match client.request(Method::GET, "sys/leader", None).await {
        Ok(Some(l)) => l.data_or_top_level().clone(),
        _ => Map::new(),
    };
    let ha_enabled = bool_of(&leader, "ha_enabled");

    if ctx.format().is_structured() {
        let mut out = fields.clone();
        out.insert("ha_enabled".into(), ha_enabled.into());
        for key in [
            "is_self",
            "active_time",
            "leader_address",
            "leader_cluster_address",
        ] {
            if let Some(v) = leader.get(key).filter(|v| !is_empty_value(v)) {
                out.insert(key.into(), v.clone());
            }
        }
        ctx.print_structured(&out)?;
        return Ok(0);
    }

    ctx.out(&output::key_value_table(&seal_status_rows(
        &fields, &leader,
    )));
    Ok(0)
}

/// The rows of `vault status`.
fn seal_status_rows(
    fields: &Map<String, Value>,
    leader: &Map<String, Value>,
) -> Vec<(String, String)> {
    let sealed = bool_of(fields, "sealed");
    let prefix = if bool_of(fields, "recovery_seal") {
        "Recovery "
    } else {
        ""
    };
    let threshold = text_of(fields, "t");
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| rows.push((k.to_string(), v));

    push(&format!("{prefix}Seal Type"), text_of(fields, "type"));
    push("Initialized", bool_of(fields, "initialized").to_string());
    push("Sealed", sealed.to_string());
    push(&format!("Total {prefix}Shares"), text_of(fields, "n"));
    push("Threshold", threshold.clone());
    if sealed {
        let progress = fields
            .get("progress")
            .map(output::go_value)
            .unwrap_or_else(|| "0".into());
        push("Unseal Progress", format!("{progress}/{threshold}"));
        push("Unseal Nonce", text_of(fields, "nonce"));
    }
    if bool_of(fields, "migration") {
        push("Seal Migration in Progress", "true".into());
    }
    push("Version", text_of(fields, "version"));
    push("Build Date", text_of(fields, "build_date"));
    push("Storage Type", text_of(fields, "storage_type"));
    let (cluster_name, cluster_id) = (
        text_of(fields, "cluster_name"),
        text_of(fields, "cluster_id"),
    );
    if !cluster_name.is_empty() && !cluster_id.is_empty() {
        push("Cluster Name", cluster_name);
        push("Cluster ID", cluster_id);
    }
    let ha_enabled = bool_of(leader, "ha_enabled");
    push("HA Enabled", ha_enabled.to_string());
    if ha_enabled && !sealed {
        push("HA Cluster", text_of(leader, "leader_cluster_address"));
        let is_self = bool_of(leader, "is_self");
        push("HA Mode", if is_self { "active" } else { "standby" }.into());
        let active_time = text_of(leader, "active_time");
        if is_self && !active_time.is_empty() && !active_time.starts_with("0001-01-01") {
            push("Active Since", active_time);
        }
        if !is_self {
            let addr = text_of(leader, "leader_address");
            push(
                "Active Node Address",
                if addr.is_empty() {
                    "<none>".into()
                } else {
                    addr
                },
            );
        }
    }
    for (key, label) in [
        ("raft_committed_index", "Raft Committed Index"),
        ("raft_applied_index", "Raft Applied Index"),
    ] {
        if leader.get(key).and_then(Value::as_u64).unwrap_or(0) > 0 {
            push(label, text_of(leader, key));
        }
    }
    if let Some(Value::Array(w)) = fields.get("warnings")
        && !w.is_empty()
    {
        push("Warnings", output::go_value(&Value::Array(w.clone())));
    }
    rows
}

fn bool_of(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn text_of(map: &Map<String, Value>, key: &str) -> String {
    match map.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(v) => output::go_value(v),
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `operator init`.
pub async fn init(ctx: &mut Ctx<'_, '_>, args: OperatorInitArgs) -> Result<i32, Error> {
    let client = ctx.client()?;
    if args.status {
        return init_status(ctx, &client).await;
    }
    let shares = args.key_shares.unwrap_or(DEFAULT_KEY_SHARES);
    let threshold = args.key_threshold.unwrap_or(DEFAULT_KEY_THRESHOLD);
    let body = json!({"secret_shares": shares, "secret_threshold": threshold});
    let resp = client
        .request(Method::PUT, "sys/init", Some(&body))
        .await
        .map_err(|e| e.context("Error initializing"))?
        .ok_or_else(|| {
            Error::Unexpected("Error initializing: the server returned no keys".into())
        })?;
    let fields = resp.data_or_top_level();
    let strings = |key: &str| -> Vec<String> {
        match fields.get(key) {
            Some(Value::Array(items)) => items.iter().map(output::go_value).collect(),
            _ => Vec::new(),
        }
    };
    let keys_hex = strings("keys");
    let keys_b64 = strings("keys_base64");
    let recovery_hex = strings("recovery_keys");
    let recovery_b64 = strings("recovery_keys_base64");
    let root_token = fields
        .get("root_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    if ctx.format().is_structured() {
        let (unseal_shares, unseal_threshold) = if keys_hex.is_empty() {
            (1, 1)
        } else {
            (shares, threshold)
        };
        ctx.print_structured(&json!({
            "unseal_keys_b64": keys_b64,
            "unseal_keys_hex": keys_hex,
            "unseal_shares": unseal_shares,
            "unseal_threshold": unseal_threshold,
            "recovery_keys_b64": recovery_b64,
            "recovery_keys_hex": recovery_hex,
            "recovery_keys_shares": 0,
            "recovery_keys_threshold": 0,
            "root_token": root_token,
        }))?;
        return Ok(0);
    }

    // Prefer base64 keys, as Vault does, when there is one per hex key.
    let shown = |hex: &[String], b64: &[String]| -> Vec<String> {
        if !b64.is_empty() && b64.len() == hex.len() {
            b64.to_vec()
        } else {
            hex.to_vec()
        }
    };
    let mut text = String::new();
    let keys = if keys_hex.is_empty() {
        keys_b64.clone()
    } else {
        shown(&keys_hex, &keys_b64)
    };
    for (i, key) in keys.iter().enumerate() {
        text.push_str(&format!("Unseal Key {}: {key}\n", i + 1));
    }
    for (i, key) in shown(&recovery_hex, &recovery_b64).iter().enumerate() {
        text.push_str(&format!("Recovery Key {}: {key}\n", i + 1));
    }
    text.push_str(&format!("\nInitial Root Token: {root_token}\n"));
    if keys.is_empty() {
        text.push_str("\nSuccess! Lockbox is initialized\n");
    } else {
        text.push('\n');
        text.push_str(&output::wrap(&format!(
            "Lockbox initialized with {shares} key shares and a key threshold of \
             {threshold}. Please securely distribute the key shares printed above. \
             When Lockbox is re-sealed, restarted, or stopped, you must supply at \
             least {threshold} of these keys to unseal it before it can start \
             servicing requests."
        )));
        text.push_str("\n\n");
        text.push_str(&output::wrap(&format!(
            "Lockbox does not store the generated root key. Without at least \
             {threshold} keys to reconstruct the root key, Lockbox will remain \
             permanently sealed!"
        )));
        text.push('\n');
    }
    ctx.out(&text);
    Ok(0)
}

/// `operator init -status`: exit 0 when initialized, 2 when not, 1 on error.
async fn init_status(ctx: &mut Ctx<'_, '_>, client: &Client) -> Result<i32, Error> {
    let initialized = match client.request(Method::GET, "sys/init", None).await {
        Ok(Some(s)) => bool_of(s.data_or_top_level(), "initialized"),
        Ok(None) => false,
        Err(e) => {
            ctx.errln(&format!("Error checking init status: {e}"));
            return Ok(1);
        }
    };
    match ctx.format() {
        Format::Json | Format::Yaml => {
            ctx.print_structured(&json!({"initialized": initialized}))?
        }
        Format::Table => ctx.outln(if initialized {
            "Lockbox is initialized"
        } else {
            "Lockbox is not initialized"
        }),
    }
    Ok(if initialized { 0 } else { 2 })
}

/// `operator unseal`.
pub async fn unseal(ctx: &mut Ctx<'_, '_>, args: OperatorUnsealArgs) -> Result<i32, Error> {
    let client = ctx.client()?;
    let body = if args.reset {
        json!({"reset": true})
    } else {
        let key = match args.key.as_deref().map(str::trim) {
            // "-" reads the key from stdin, as `login -` and `write -` do.
            Some("-") => input::read_line(ctx.io.stdin)?.trim().to_string(),
            Some(k) => k.to_string(),
            None => {
                if ctx.io.stdin_is_terminal {
                    ctx.err("Unseal Key (will be echoed): ");
                    let _ = ctx.io.stderr.flush();
                }
                input::read_line(ctx.io.stdin)?.trim().to_string()
            }
        };
        if key.is_empty() {
            return Err(Error::Usage(
                "No unseal key given: pass it as an argument or on stdin".into(),
            ));
        }
        json!({"key": key})
    };
    let context = if args.reset {
        "Error resetting unseal process"
    } else {
        "Error unsealing"
    };
    let status = client
        .request(Method::PUT, "sys/unseal", Some(&body))
        .await
        .map_err(|e| e.context(context))?
        .ok_or_else(|| {
            Error::Unexpected(format!("{context}: the server returned no seal status"))
        })?;
    print_seal_status(ctx, &client, &status).await
}

/// `operator seal`.
pub async fn seal(ctx: &mut Ctx<'_, '_>) -> Result<i32, Error> {
    let client = ctx.client()?;
    client
        .request(Method::PUT, "sys/seal", None)
        .await
        .map_err(|e| e.context("Error sealing"))?;
    ctx.outln("Success! Lockbox is sealed.");
    Ok(0)
}

/// `operator rotate`.
pub async fn rotate(ctx: &mut Ctx<'_, '_>) -> Result<i32, Error> {
    let client = ctx.client()?;
    client
        .request(Method::PUT, "sys/rotate", None)
        .await
        .map_err(|e| e.context("Error rotating key"))?;
    let status = client
        .request(Method::GET, "sys/key-status", None)
        .await
        .map_err(|e| e.context("Error reading key status"))?
        .ok_or_else(|| Error::Unexpected("Error reading key status: empty response".into()))?;
    let fields = status.data_or_top_level();
    if ctx.format().is_structured() {
        ctx.print_structured(fields)?;
        return Ok(0);
    }
    let mut rows = vec![
        vec!["Key Term".to_string(), text_of(fields, "term")],
        vec![
            "Install Time".to_string(),
            rfc822_utc(&text_of(fields, "install_time")),
        ],
    ];
    if fields.contains_key("encryptions") {
        rows.push(vec![
            "Encryption Count".to_string(),
            text_of(fields, "encryptions"),
        ]);
    }
    ctx.outln("Success! Rotated key");
    ctx.outln("");
    ctx.out(&output::columns(&rows));
    Ok(0)
}

/// Formats an RFC 3339 time the way Vault prints key install times (Go's
/// RFC 822 layout in UTC: `02 Jan 06 15:04 UTC`). Unparseable input is
/// returned unchanged.
fn rfc822_utc(text: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) else {
        return text.to_string();
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    let Ok(layout) = time::format_description::parse(
        "[day] [month repr:short] [year repr:last_two] [hour]:[minute] UTC",
    ) else {
        return text.to_string();
    };
    t.format(&layout).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn unsealed_status_rows() {
        let fields = map(
            json!({"type": "shamir", "initialized": true, "sealed": false, "t": 3,
            "n": 5, "progress": 0, "nonce": "", "version": "0.1.0", "storage_type": "redb"}),
        );
        let table = output::key_value_table(&seal_status_rows(&fields, &Map::new()));
        assert_eq!(
            table,
            "Key             Value\n---             -----\nSeal Type       shamir\nInitialized     true\n\
             Sealed          false\nTotal Shares    5\nThreshold       3\nVersion         0.1.0\n\
             Build Date      n/a\nStorage Type    redb\nHA Enabled      false\n"
        );
    }

    #[test]
    fn sealed_status_shows_progress() {
        let fields = map(
            json!({"type": "shamir", "initialized": true, "sealed": true, "t": 3,
            "n": 5, "progress": 1, "nonce": "abc", "version": "0.1.0"}),
        );
        let rows = seal_status_rows(&fields, &Map::new());
        assert!(rows.contains(&("Unseal Progress".to_string(), "1/3".to_string())));
        assert!(rows.contains(&("Unseal Nonce".to_string(), "abc".to_string())));
    }

    #[test]
    fn install_time_in_rfc822() {
        assert_eq!(rfc822_utc("2023-05-08T17:17:00Z"), "08 May 23 17:17 UTC");
        assert_eq!(
            rfc822_utc("2023-05-08T19:17:00.123+02:00"),
            "08 May 23 17:17 UTC"
        );
        assert_eq!(rfc822_utc("not a time"), "not a time");
    }
}
