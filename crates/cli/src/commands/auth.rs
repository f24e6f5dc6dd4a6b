//! `login` and `token create | lookup | renew | revoke`.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::Ctx;
use crate::cli::{LoginArgs, TokenCreateArgs, TokenLookupArgs, TokenRenewArgs, TokenRevokeArgs};
use crate::client::{Client, Secret, SecretAuth};
use crate::config::{self, Format, TokenSource, parse_bool};
use crate::error::Error;
use crate::input;
use crate::output;

/// `login [-method=METHOD] [-path=PATH] [TOKEN | K=V...]`: authenticate, store
/// the token in the token file, print its details.
///
/// With the token method (the default) the token is verified with
/// `auth/token/lookup-self`. With `userpass` the username and password go to
/// `auth/PATH/login/USERNAME`; any other method gets its K=V data as the body
/// of `auth/PATH/login`. PATH defaults to the method's name.
pub async fn login(ctx: &mut Ctx<'_, '_>, mut args: LoginArgs) -> Result<i32, Error> {
    let method = match super::sanitize_path(&args.method) {
        m if m.is_empty() => "token".to_string(),
        m => m,
    };
    if args.token_only {
        args.no_store = true;
        args.field = Some("token".into());
    }
    if args.no_store && args.no_print {
        return Err(Error::Usage(
            "-no-store and -no-print cannot be used together".into(),
        ));
    }

    let secret = if method == "token" {
        token_login(ctx, &args).await?
    } else {
        method_login(ctx, &args, &method).await?
    };
    let Some(stored_token) = secret.auth.as_ref().map(|a| a.client_token.clone()) else {
        return Err(Error::Unexpected(output::wrap(
            "Lockbox returned a secret, but the secret has no authentication information \
             attached. This should never happen and is likely a bug.",
        )));
    };

    if !args.no_store {
        let stored = match &ctx.settings.token_file {
            Some(path) => config::write_token_file(path, &stored_token),
            None => Err(Error::Config(
                "cannot find the home directory (HOME is not set) to store the token in".into(),
            )),
        };
        if let Err(e) = stored {
            ctx.errln(&format!("Error storing token: {e}"));
            ctx.errln(&format!(
                "{}\n",
                output::wrap(
                    "Authentication was successful, but the token was not persisted. The \
                     resulting token is shown below for your records."
                )
            ));
            ctx.print_secret(&secret)?;
            return Ok(2);
        }
        if let TokenSource::Env(name) = ctx.settings.token_source {
            ctx.errln(&format!(
                "{}\n",
                output::wrap(&format!(
                    "WARNING! The {name} environment variable is set! The value of this \
                     variable will take precedence; if this is unwanted please unset {name} \
                     or update its value accordingly."
                ))
            ));
        }
    } else if !args.token_only {
        ctx.errln(&format!(
            "{}\n",
            output::wrap(
                "The token was not stored in the token file. Set the LOCKBOX_TOKEN environment \
                 variable or pass the token below with each request to lockbox."
            )
        ));
    }

    if args.no_print {
        return Ok(0);
    }
    if let Some(field) = &args.field {
        return ctx.print_field(&secret, field);
    }
    if ctx.format() == Format::Table {
        let message = if args.no_store {
            "Success! You are now authenticated.".to_string()
        } else {
            output::wrap(
                "Success! You are now authenticated. The token information displayed below is \
                 already stored in the token file (~/.lockbox-token). You do NOT need to run \
                 \"lockbox login\" again. Future lockbox requests will automatically use this \
                 token.",
            )
        };
        ctx.outln(&format!("{message}\n"));
    }
    ctx.print_secret(&secret)
}

/// The token method: `[TOKEN | -] [lookup=BOOL]`; the token is looked up
/// unless `lookup=false`.
async fn token_login(ctx: &mut Ctx<'_, '_>, args: &LoginArgs) -> Result<Secret, Error> {
    // A bare first argument is the token.
    let mut kv = args.args.clone();
    if let Some(first) = kv.first_mut()
        && !first.contains('=')
    {
        *first = format!("token={first}");
    }
    let config = input::parse_kv_args(&kv, ctx.io.stdin)
        .map_err(|e| e.context("Error parsing configuration"))?;
    let lookup = match config.get("lookup") {
        None => true,
        Some(v) => {
            let text = output::go_value(v);
            parse_bool(&text).ok_or_else(|| {
                Error::Usage(format!("Failed to parse \"lookup\" as boolean: {text:?}"))
            })?
        }
    };
    let token = match config.get("token") {
        Some(v) => output::go_value(v),
        None => {
            if ctx.io.stdin_is_terminal {
                ctx.err("Token (will be echoed): ");
                let _ = ctx.io.stderr.flush();
            }
            input::read_line(ctx.io.stdin)?
        }
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(Error::Usage(
            "Error authenticating: a token must be passed to auth, please view the help for \
             more information"
                .into(),
        ));
    }

    if !lookup {
        return Ok(Secret {
            auth: Some(SecretAuth {
                client_token: token,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let client = ctx.client()?.with_token(Some(token.clone()));
    token_login_secret(&client, &token)
        .await
        .map_err(|e| e.context("Error authenticating"))
}

/// Where a method login goes and what it sends.
fn method_login_request(
    method: &str,
    mount: &str,
    mut config: Map<String, Value>,
) -> Result<(String, Value), Error> {
    if method != "userpass" {
        return Ok((format!("auth/{mount}/login"), Value::Object(config)));
    }
    let username = config
        .get("username")
        .map(output::go_value)
        .unwrap_or_default();
    if username.is_empty() {
        return Err(Error::Usage(
            "Error authenticating: 'username' must be specified".into(),
        ));
    }
    let password = config
        .remove("password")
        .map(|v| output::go_value(&v))
        .unwrap_or_default();
    // `password=-` reads all of stdin, line ending included.
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(Error::Usage(
            "Error authenticating: no password given (pass password=..., or type it when \
             prompted, or give it on stdin)"
                .into(),
        ));
    }
    let mut body = Map::new();
    body.insert("password".into(), password.into());
    if let Some(passcode) = config.remove("passcode") {
        body.insert("passcode".into(), passcode);
    }
    Ok((
        format!("auth/{mount}/login/{username}"),
        Value::Object(body),
    ))
}

/// Any other method: its K=V data (`mount=PATH` overrides `-path`) goes to
/// `auth/PATH/login`, or for userpass the password to
/// `auth/PATH/login/USERNAME`. No token is sent.
async fn method_login(
    ctx: &mut Ctx<'_, '_>,
    args: &LoginArgs,
    method: &str,
) -> Result<Secret, Error> {
    let mut config = input::parse_kv_args(&args.args, ctx.io.stdin)
        .map_err(|e| e.context("Error parsing configuration"))?;
    let mount = match config.remove("mount") {
        Some(v) => output::go_value(&v),
        None => args.path.clone().unwrap_or_else(|| method.to_string()),
    };
    let mount = super::sanitize_path(&mount);
    if mount.is_empty() {
        return Err(Error::Usage("The mount path must not be empty".into()));
    }
    if method == "userpass" && config.contains_key("username") && !config.contains_key("password") {
        let password = read_password(ctx)?;
        config.insert("password".into(), password.into());
    }
    let (path, body) = method_login_request(method, &mount, config)?;
    let client = ctx.client()?.with_token(None);
    client
        .request(Method::PUT, &path, Some(&body))
        .await
        .map_err(|e| e.context("Error authenticating"))?
        .ok_or_else(|| {
            Error::Unexpected(
                "Error authenticating: empty response from credential provider".into(),
            )
        })
}

/// Reads a password: at a terminal after a prompt, with echo off when the
/// terminal allows it; otherwise one line of stdin.
fn read_password(ctx: &mut Ctx<'_, '_>) -> Result<String, Error> {
    if !ctx.io.stdin_is_terminal {
        return input::read_line(ctx.io.stdin);
    }
    let echo_off = input::EchoOff::new();
    ctx.err(if echo_off.is_some() {
        "Password (will be hidden): "
    } else {
        "Password (will be echoed): "
    });
    let _ = ctx.io.stderr.flush();
    let line = input::read_line(ctx.io.stdin);
    if echo_off.is_some() {
        drop(echo_off);
        ctx.err("\n");
    }
    line
}

/// Looks the token up and shapes the answer like an auth method's login
/// response, as Vault's token auth handler does.
async fn token_login_secret(client: &Client, token: &str) -> Result<Secret, Error> {
    let lookup = client
        .request(Method::GET, "auth/token/lookup-self", None)
        .await
        .map_err(|e| e.context("error looking up token"))?
        .ok_or_else(|| Error::Unexpected("empty response from lookup-self".into()))?;
    let data = lookup.data.clone().unwrap_or_default();
    Ok(Secret {
        auth: Some(auth_from_lookup(&data, token)),
        ..Default::default()
    })
}

/// Builds an `auth` block from the `data` of a token lookup.
fn auth_from_lookup(data: &Map<String, Value>, token: &str) -> SecretAuth {
    let strings = |key: &str| -> Vec<String> {
        match data.get(key) {
            Some(Value::Array(items)) => items.iter().map(output::go_value).collect(),
            _ => Vec::new(),
        }
    };
    let token_policies = strings("policies");
    let identity_policies = strings("identity_policies");
    let mut policies = token_policies.clone();
    policies.extend(identity_policies.iter().cloned());
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(token);
    SecretAuth {
        client_token: id.to_string(),
        accessor: data
            .get("accessor")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        policies,
        token_policies,
        identity_policies,
        metadata: data.get("meta").and_then(Value::as_object).cloned(),
        lease_duration: data.get("ttl").and_then(Value::as_i64).unwrap_or(0),
        renewable: data
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..Default::default()
    }
}

/// The body of `auth/token/create` for the given flags.
fn token_create_body(args: &TokenCreateArgs) -> Result<Value, Error> {
    let mut body = Map::new();
    if !args.policies.is_empty() {
        body.insert("policies".into(), json!(args.policies));
    }
    for (key, value) in [
        ("ttl", args.ttl),
        ("explicit_max_ttl", args.explicit_max_ttl),
        ("period", args.period),
    ] {
        if let Some(d) = value {
            body.insert(key.into(), d.to_string().into());
        }
    }
    let renewable = args.renewable && args.token_type != "batch";
    body.insert("renewable".into(), renewable.into());
    body.insert("num_uses".into(), args.use_limit.unwrap_or(0).into());
    body.insert(
        "display_name".into(),
        args.display_name.clone().unwrap_or_default().into(),
    );
    if args.orphan {
        body.insert("no_parent".into(), true.into());
    }
    if args.no_default_policy {
        body.insert("no_default_policy".into(), true.into());
    }
    if let Some(id) = &args.id {
        body.insert("id".into(), id.clone().into());
    }
    if !args.metadata.is_empty() {
        let meta: Map<String, Value> = input::parse_pairs("metadata", &args.metadata)?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        body.insert("meta".into(), Value::Object(meta));
    }
    body.insert("type".into(), args.token_type.clone().into());
    Ok(Value::Object(body))
}

/// `token create`.
pub async fn token_create(ctx: &mut Ctx<'_, '_>, args: TokenCreateArgs) -> Result<i32, Error> {
    let body = token_create_body(&args)?;
    let client = ctx.client()?;
    let path = match &args.role {
        Some(role) => format!("auth/token/create/{}", role.trim()),
        None => "auth/token/create".to_string(),
    };
    let secret = client
        .request(Method::POST, &path, Some(&body))
        .await
        .map_err(|e| e.context("Error creating token"))?
        .ok_or_else(|| {
            Error::Unexpected("Error creating token: the server returned no token".into())
        })?;
    match &args.field {
        Some(field) => ctx.print_field(&secret, field),
        None => ctx.print_secret(&secret),
    }
}

/// `token lookup`.
pub async fn token_lookup(ctx: &mut Ctx<'_, '_>, args: TokenLookupArgs) -> Result<i32, Error> {
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if args.accessor && token.is_none() {
        return Err(Error::Usage(
            "Not enough arguments with -accessor (expected 1, got 0)".into(),
        ));
    }
    let client = ctx.client()?;
    let result = match token {
        None => {
            client
                .request(Method::GET, "auth/token/lookup-self", None)
                .await
        }
        Some(t) if args.accessor => {
            let body = json!({"accessor": t});
            client
                .request(Method::POST, "auth/token/lookup-accessor", Some(&body))
                .await
        }
        Some(t) => {
            let body = json!({"token": t});
            client
                .request(Method::POST, "auth/token/lookup", Some(&body))
                .await
        }
    };
    match result.map_err(|e| e.context("Error looking up token"))? {
        Some(secret) => ctx.print_secret(&secret),
        None => Ok(0),
    }
}

/// `token renew`.
pub async fn token_renew(ctx: &mut Ctx<'_, '_>, args: TokenRenewArgs) -> Result<i32, Error> {
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if args.accessor && token.is_none() {
        return Err(Error::Usage(
            "Not enough arguments with -accessor (expected 1, got 0)".into(),
        ));
    }
    // Vault sends whole seconds; anything under a second means "default".
    let increment = args.increment.map(|d| d.whole_secs().max(0)).unwrap_or(0);
    let client = ctx.client()?;
    let (path, body) = match token {
        None => ("auth/token/renew-self", json!({"increment": increment})),
        Some(t) if args.accessor => (
            "auth/token/renew-accessor",
            json!({"accessor": t, "increment": increment}),
        ),
        Some(t) => (
            "auth/token/renew",
            json!({"token": t, "increment": increment}),
        ),
    };
    let secret = client
        .request(Method::POST, path, Some(&body))
        .await
        .map_err(|e| e.context("Error renewing token"))?;
    match secret {
        Some(secret) => ctx.print_secret(&secret),
        None => Ok(0),
    }
}

/// `token revoke`.
pub async fn token_revoke(ctx: &mut Ctx<'_, '_>, args: TokenRevokeArgs) -> Result<i32, Error> {
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let mode = args.mode.as_deref().unwrap_or("");
    if !matches!(mode, "" | "orphan" | "path") {
        return Err(Error::Usage(format!("Invalid mode: {mode}")));
    }
    let given = args.token.is_some();
    if args.revoke_self && given {
        return Err(Error::Usage(
            "Too many arguments with -self (expected 0, got 1)".into(),
        ));
    }
    if !args.revoke_self && !given {
        return Err(Error::Usage(
            "Not enough arguments (expected 1 or -self, got 0)".into(),
        ));
    }
    if args.revoke_self && args.accessor {
        return Err(Error::Usage("Cannot use -self with -accessor!".into()));
    }
    if args.revoke_self && !mode.is_empty() {
        return Err(Error::Usage("Cannot use -self with -mode!".into()));
    }
    if args.accessor && !mode.is_empty() {
        return Err(Error::Usage(format!(
            "Cannot use -accessor with -mode={mode}!"
        )));
    }

    let client = ctx.client()?;
    let result = if args.revoke_self {
        client
            .request(Method::POST, "auth/token/revoke-self", None)
            .await
    } else if args.accessor {
        let body = json!({"accessor": token});
        client
            .request(Method::POST, "auth/token/revoke-accessor", Some(&body))
            .await
    } else if mode == "orphan" {
        let body = json!({"token": token});
        client
            .request(Method::POST, "auth/token/revoke-orphan", Some(&body))
            .await
    } else if mode == "path" {
        let prefix = super::sanitize_path(&token);
        client
            .request(
                Method::PUT,
                &format!("sys/leases/revoke-prefix/{prefix}"),
                None,
            )
            .await
    } else {
        let body = json!({"token": token});
        client
            .request(Method::POST, "auth/token/revoke", Some(&body))
            .await
    };
    result.map_err(|e| e.context("Error revoking token"))?;
    ctx.outln("Success! Revoked token (if it existed)");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::GlobalArgs;
    use crate::duration::GoDuration;

    fn create_args() -> TokenCreateArgs {
        TokenCreateArgs {
            policies: vec![],
            ttl: None,
            explicit_max_ttl: None,
            period: None,
            renewable: true,
            use_limit: None,
            display_name: None,
            orphan: false,
            no_default_policy: false,
            id: None,
            role: None,
            token_type: "service".into(),
            metadata: vec![],
            field: None,
            global: GlobalArgs::default(),
        }
    }

    #[test]
    fn minimal_create_body() {
        assert_eq!(
            token_create_body(&create_args()).unwrap(),
            json!({"renewable": true, "num_uses": 0, "display_name": "", "type": "service"})
        );
    }

    #[test]
    fn full_create_body() {
        let mut args = create_args();
        args.policies = vec!["web".into(), "db".into()];
        args.ttl = Some(GoDuration::from_secs(3600));
        args.explicit_max_ttl = Some(GoDuration::from_secs(7200));
        args.renewable = false;
        args.use_limit = Some(3);
        args.display_name = Some("ci".into());
        args.orphan = true;
        args.no_default_policy = true;
        args.id = Some("my-token".into());
        args.metadata = vec!["team=infra".into()];
        assert_eq!(
            token_create_body(&args).unwrap(),
            json!({
                "policies": ["web", "db"],
                "ttl": "1h0m0s",
                "explicit_max_ttl": "2h0m0s",
                "renewable": false,
                "num_uses": 3,
                "display_name": "ci",
                "no_parent": true,
                "no_default_policy": true,
                "id": "my-token",
                "meta": {"team": "infra"},
                "type": "service"
            })
        );
    }

    #[test]
    fn login_auth_from_lookup_self() {
        let data = json!({
            "id": "hvs.root", "accessor": "acc", "policies": ["root"],
            "identity_policies": null, "ttl": 0, "renewable": false, "meta": null
        });
        let auth = auth_from_lookup(data.as_object().unwrap(), "given");
        assert_eq!(auth.client_token, "hvs.root");
        assert_eq!(auth.policies, vec!["root"]);
        assert_eq!(auth.token_policies, vec!["root"]);
        assert!(auth.identity_policies.is_empty());
        assert_eq!(auth.lease_duration, 0);
        let table = output::secret_table(&Secret {
            auth: Some(auth),
            ..Default::default()
        });
        assert_eq!(
            table,
            "Key                  Value\n\
             ---                  -----\n\
             token                hvs.root\n\
             token_accessor       acc\n\
             token_duration       ∞\n\
             token_renewable      false\n\
             token_policies       [\"root\"]\n\
             identity_policies    []\n\
             policies             [\"root\"]\n"
        );
    }
}
