//! Vault's database secrets engine API for PostgreSQL, on the SDK's path
//! framework:
//!
//! ```text
//!  config/{name}       connection: plugin_name, connection_url ({{username}}/{{password}},
//!                      sslmode/sslrootcert/sslcert/sslkey: see `tls`), username, password and
//!                      private_key (never read back), tls_ca, tls_certificate, allowed_roles,
//!                      verify_connection
//!  roles/{name}        db_name, creation/revocation/renew statements, default_ttl, max_ttl
//!  creds/{name}        a new PostgreSQL user with a lease (secret type "creds")
//!  rotate-root/{name}  a new root password, set in PostgreSQL, stored, never returned;
//!                      crash-safe through a write-ahead entry (see `root`)
//!  static-roles/{name}, static-creds/{name}, rotate-role/{name}: see `static_roles`
//! ```
//!
//! Storage: `config/<name>`, `role/<name>`, `rotate-root-pending/<name>`
//! (JSON). Every connection as the root user goes through
//! `root::connect_stored`, which finishes an interrupted rotate-root. Lease expiry, renewal
//! and revocation come from the host's lease manager through the `creds`
//! secret type: revoke runs the role's revocation statements, or by
//! default ends the user's sessions and drops the role.

use crate::connection::{Connection, password, random_alnum};
use crate::pg;
use crate::root;
use crate::static_roles;
use lockbox_sdk::framework::{Field, Fields, Path, PathBackend, Secret};
use lockbox_sdk::lease::SecretRequest;
use lockbox_sdk::{Error, Kind, Request, Response, Storage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The only database plugin this engine speaks.
pub const POSTGRES_PLUGIN: &str = "postgresql-database-plugin";

/// The secret type of dynamic credentials (Vault's name).
pub const CREDS: &str = "creds";

/// Fields holding SQL statements: a string is one entry (never split on
/// commas, which SQL uses), a list is taken as is.
pub const STATEMENT_FIELDS: [&str; 6] = [
    "creation_statements",
    "rotation_statements",
    "revocation_statements",
    "renew_statements",
    "rollback_statements",
    "root_rotation_statements",
];

/// A stored role (`role/<name>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub db_name: String,
    pub creation_statements: Vec<String>,
    #[serde(default)]
    pub revocation_statements: Vec<String>,
    #[serde(default)]
    pub renew_statements: Vec<String>,
    #[serde(default)]
    pub rollback_statements: Vec<String>,
    pub default_ttl: u64,
    pub max_ttl: u64,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Vault's `{{expiration}}` format: `2006-01-02 15:04:05+0000` (UTC).
pub fn expiration(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Vault's PostgreSQL username shape:
/// `v-<display name ≤ 8>-<role ≤ 8>-<random 20>-<unix time>`, ≤ 63 bytes,
/// only letters, digits, `-` and `_`.
pub fn username(display_name: &str, role: &str) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(n)
            .collect()
    };
    let mut name = format!(
        "v-{}-{}-{}-{}",
        clean(display_name, 8),
        clean(role, 8),
        random_alnum(20),
        now_unix()
    );
    name.truncate(63);
    name
}

fn name_of(fields: &Fields) -> Result<String, Error> {
    Ok(fields.require_str("name")?.to_string())
}

async fn load_connection(storage: &Storage, name: &str) -> Result<Option<Connection>, Error> {
    Ok(storage.get_json(&format!("config/{name}")).await?)
}

async fn load_role(storage: &Storage, name: &str) -> Result<Option<Role>, Error> {
    Ok(storage.get_json(&format!("role/{name}")).await?)
}

fn list_of(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .string_list(name)
        .map(<[String]>::to_vec)
        .unwrap_or_default()
}

async fn write_config(
    req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let existing = load_connection(&storage, &name).await?;
    let given = |f: &str| fields.get_given(f).is_some();
    let str_or = |f: &str, old: Option<&String>| -> String {
        match (fields.str(f), old) {
            (Some(v), _) if given(f) => v.to_string(),
            (_, Some(o)) => o.clone(),
            (Some(v), None) => v.to_string(),
            (None, None) => String::new(),
        }
    };
    let plugin_name = str_or("plugin_name", existing.as_ref().map(|c| &c.plugin_name));
    if plugin_name.is_empty() {
        return Err(Error::invalid(
            "plugin_name is required: set plugin_name=postgresql-database-plugin",
        ));
    }
    if plugin_name != POSTGRES_PLUGIN {
        return Err(Error::invalid(format!(
            "plugin_name {plugin_name:?} is not supported: this engine speaks only {POSTGRES_PLUGIN:?}"
        )));
    }
    // Vault generates passwords from a named policy of
    // `sys/policies/password/<name>`; lockbox has no password policies yet,
    // so a policy given is refused rather than silently ignored.
    if let Some(policy) = fields
        .str("password_policy")
        .filter(|p| !p.trim().is_empty())
    {
        return Err(Error::invalid(format!(
            "password_policy {policy:?} cannot be applied: lockbox has no password policies \
             (sys/policies/password); leave password_policy empty and this engine generates \
             24-character passwords with upper and lower case letters, digits and a dash"
        )));
    }
    let connection_url = str_or(
        "connection_url",
        existing.as_ref().map(|c| &c.connection_url),
    );
    if connection_url.is_empty() {
        return Err(Error::invalid(
            "connection_url is required, e.g. postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres?sslmode=disable",
        ));
    }
    let conn = Connection {
        plugin_name,
        connection_url,
        username: str_or("username", existing.as_ref().map(|c| &c.username)),
        password: str_or("password", existing.as_ref().map(|c| &c.password)),
        allowed_roles: if given("allowed_roles") || existing.is_none() {
            list_of(&fields, "allowed_roles")
        } else {
            existing
                .as_ref()
                .map(|c| c.allowed_roles.clone())
                .unwrap_or_default()
        },
        root_rotation_statements: if given("root_rotation_statements") || existing.is_none() {
            list_of(&fields, "root_rotation_statements")
        } else {
            existing
                .as_ref()
                .map(|c| c.root_rotation_statements.clone())
                .unwrap_or_default()
        },
        verify_connection: fields.bool("verify_connection").unwrap_or(true),
        tls_ca: str_or("tls_ca", existing.as_ref().map(|c| &c.tls_ca)),
        tls_certificate: str_or(
            "tls_certificate",
            existing.as_ref().map(|c| &c.tls_certificate),
        ),
        private_key: str_or("private_key", existing.as_ref().map(|c| &c.private_key)),
    };
    // sslmode, sslrootcert and the PEM fields are checked even without
    // verify_connection: a connection that can never work is not stored.
    conn.plan()
        .map_err(|e| Error::invalid(format!("connection {name:?}: {e}")))?;
    if conn.verify_connection {
        let client = conn
            .connect_with(&conn.password, &name)
            .await
            .map_err(|e| {
                Error::invalid(format!(
                    "error creating database object: {}",
                    e.into_error()
                ))
            })?;
        client.simple_query("SELECT 1").await.map_err(|e| {
            Error::invalid(format!(
                "error creating database object: connection {name:?}: {}",
                pg::pg_message(&e)
            ))
        })?;
    }
    storage.put_json(&format!("config/{name}"), &conn).await?;
    if given("password") {
        // A password given by hand replaces an unfinished rotate-root.
        storage.delete(&root::pending_key(&name)).await?;
    }
    let _ = req;
    Ok(None)
}

/// The URL as shown: templates stay, an embedded password is masked.
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, pass)) = userinfo.split_once(':') {
                if pass != "{{password}}" {
                    return format!("{scheme}://{user}:*****@{host}");
                }
            }
        }
    }
    url.to_string()
}

async fn read_config(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let Some(c) = load_connection(&storage, &name).await? else {
        return Ok(None);
    };
    Ok(Some(Response::json(json!({
        "plugin_name": c.plugin_name,
        "connection_details": connection_details(&c),
        "allowed_roles": c.allowed_roles,
        "root_credentials_rotate_statements": c.root_rotation_statements,
        "password_policy": "",
        "plugin_version": "",
        "verify_connection": c.verify_connection,
    }))))
}

/// What a read shows of the connection: never the password or the
/// private key.
fn connection_details(c: &Connection) -> Value {
    let mut d = Map::new();
    d.insert(
        "connection_url".into(),
        redact_url(&c.connection_url).into(),
    );
    d.insert("username".into(), c.username.clone().into());
    if !c.tls_ca.is_empty() {
        d.insert("tls_ca".into(), c.tls_ca.clone().into());
    }
    if !c.tls_certificate.is_empty() {
        d.insert("tls_certificate".into(), c.tls_certificate.clone().into());
    }
    Value::Object(d)
}

async fn delete_config(fields: &Fields, storage: &Storage) -> Result<Option<Response>, Error> {
    let name = name_of(fields)?;
    storage.delete(&format!("config/{name}")).await?;
    storage.delete(&root::pending_key(&name)).await?;
    Ok(None)
}

async fn delete_key(
    prefix: &str,
    fields: &Fields,
    storage: &Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(fields)?;
    storage.delete(&format!("{prefix}/{name}")).await?;
    Ok(None)
}

async fn list_keys(prefix: &str, storage: &Storage) -> Result<Option<Response>, Error> {
    Ok(Some(Response::list(storage.list(prefix).await?)))
}

async fn write_role(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let db_name = fields.require_str("db_name")?.to_string();
    let creation_statements = list_of(&fields, "creation_statements");
    if creation_statements.iter().all(|s| s.trim().is_empty()) {
        return Err(Error::invalid(
            "creation_statements is required: the SQL that creates the user, with {{name}} and {{password}}",
        ));
    }
    let secs = |f: &str| fields.duration(f).map(|d| d.as_secs()).unwrap_or(0);
    let role = Role {
        db_name,
        creation_statements,
        revocation_statements: list_of(&fields, "revocation_statements"),
        renew_statements: list_of(&fields, "renew_statements"),
        rollback_statements: list_of(&fields, "rollback_statements"),
        default_ttl: secs("default_ttl"),
        max_ttl: secs("max_ttl"),
    };
    if role.max_ttl > 0 && role.default_ttl > role.max_ttl {
        return Err(Error::invalid("default_ttl cannot be greater than max_ttl"));
    }
    storage.put_json(&format!("role/{name}"), &role).await?;
    Ok(None)
}

async fn read_role(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let Some(r) = load_role(&storage, &name).await? else {
        return Ok(None);
    };
    Ok(Some(Response::json(json!({
        "db_name": r.db_name,
        "creation_statements": r.creation_statements,
        "revocation_statements": r.revocation_statements,
        "renew_statements": r.renew_statements,
        "rollback_statements": r.rollback_statements,
        "default_ttl": r.default_ttl,
        "max_ttl": r.max_ttl,
        "credential_type": "password",
    }))))
}

async fn creds(req: Request, fields: Fields, storage: Storage) -> Result<Option<Response>, Error> {
    let role_name = name_of(&fields)?;
    let role = load_role(&storage, &role_name)
        .await?
        .ok_or_else(|| Error::invalid(format!("unknown role: {role_name}")))?;
    let conn = load_connection(&storage, &role.db_name).await?.ok_or_else(|| {
        Error::invalid(format!(
            "role {role_name:?} names database connection {:?}, which does not exist (write config/{} first)",
            role.db_name, role.db_name
        ))
    })?;
    if !conn.allows(&role_name) {
        return Err(Error::invalid(format!(
            "{role_name:?} is not an allowed role of connection {:?} (see its allowed_roles)",
            role.db_name
        )));
    }
    let mount = &req.mount;
    let ttl = if role.default_ttl > 0 {
        role.default_ttl
    } else {
        mount.default_lease_ttl.as_secs()
    };
    let max_ttl = if role.max_ttl > 0 {
        role.max_ttl
    } else {
        mount.max_lease_ttl.as_secs()
    };
    let ttl = if max_ttl > 0 { ttl.min(max_ttl) } else { ttl };
    let user = username(req.display_name.as_deref().unwrap_or("token"), &role_name);
    let pass = password();
    let exp = expiration(now_unix() + ttl as i64);
    let statements = pg::expand(
        &role.creation_statements,
        &[
            ("name", &user),
            ("username", &user),
            ("password", &pass),
            ("expiration", &exp),
        ],
    );
    let mut client = root::connect_stored(&storage, &role.db_name, &conn).await?;
    let what = format!("creation statements of role {role_name:?}");
    if let Err(e) = pg::run_in_transaction(&mut client, &statements, &what, &pass).await {
        // The transaction rolled back; a statement that committed on its own
        // must not leave a half-created user behind either.
        let cleanup = format!("DROP ROLE IF EXISTS {}", pg::quote_ident(&user));
        if let Err(ce) = client.batch_execute(&cleanup).await {
            eprintln!(
                "dropping the half-created user {user:?} failed: {}",
                pg::pg_message(&ce)
            );
        }
        return Err(e);
    }
    let mut data = Map::new();
    data.insert("username".into(), Value::from(user.clone()));
    data.insert("password".into(), Value::from(pass));
    let mut internal = Map::new();
    internal.insert("username".into(), Value::from(user));
    internal.insert("role".into(), Value::from(role_name));
    internal.insert("db_name".into(), Value::from(role.db_name));
    Ok(Some(creds_secret().response_with_ttl(
        data,
        internal,
        Duration::from_secs(ttl),
        Duration::from_secs(max_ttl),
    )))
}

async fn rotate_root(
    _: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let name = name_of(&fields)?;
    let conn = load_connection(&storage, &name)
        .await?
        .ok_or_else(|| Error::invalid(format!("no connection named {name:?}")))?;
    if conn.username.is_empty() {
        return Err(Error::invalid(format!(
            "connection {name:?} has no username; rotate-root needs the root user's username and password"
        )));
    }
    root::rotate_stored(&storage, &name, &conn).await?;
    Ok(None)
}

fn internal_str<'a>(req: &'a SecretRequest, key: &str) -> Result<&'a str, Error> {
    req.internal_data
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::invalid(format!(
                "the secret of lease {:?} has no {key:?}",
                req.lease_id
            ))
        })
}

/// The connection a secret's user lives in.
async fn secret_connection(
    req: &SecretRequest,
    storage: &Storage,
) -> Result<(String, Connection), Error> {
    let db = internal_str(req, "db_name")?.to_string();
    let conn = load_connection(storage, &db).await?.ok_or_else(|| {
        Error::Unavailable(format!(
            "connection {db:?} of lease {:?} no longer exists; write config/{db} again to revoke it",
            req.lease_id
        ))
    })?;
    Ok((db, conn))
}

async fn renew_creds(req: SecretRequest, storage: Storage) -> Result<Duration, Error> {
    let user = internal_str(&req, "username")?.to_string();
    let (db, conn) = secret_connection(&req, &storage).await?;
    let role = match req.internal_data.get("role").and_then(Value::as_str) {
        Some(r) => load_role(&storage, r).await?,
        None => None,
    };
    let now = now_unix();
    let mut ttl = req.asked_ttl().as_secs();
    if !req.max_ttl.is_zero() {
        let left = (req.issue_time + req.max_ttl.as_secs() as i64 - now).max(0) as u64;
        ttl = ttl.min(left);
    }
    let exp = expiration(now + ttl as i64);
    let statements = match role.as_ref().filter(|r| !r.renew_statements.is_empty()) {
        Some(r) => pg::expand(
            &r.renew_statements,
            &[("name", &user), ("username", &user), ("expiration", &exp)],
        ),
        None => pg::default_renew(&user, &exp),
    };
    let mut client = root::connect_stored(&storage, &db, &conn).await?;
    pg::run_in_transaction(&mut client, &statements, "renew statements", "").await?;
    Ok(Duration::from_secs(ttl))
}

async fn revoke_creds(req: SecretRequest, storage: Storage) -> Result<(), Error> {
    let user = internal_str(&req, "username")?.to_string();
    let (db, conn) = secret_connection(&req, &storage).await?;
    let role = match req.internal_data.get("role").and_then(Value::as_str) {
        Some(r) => load_role(&storage, r).await?,
        None => None,
    };
    let mut client = root::connect_stored(&storage, &db, &conn).await?;
    match role.filter(|r| !r.revocation_statements.is_empty()) {
        Some(r) => {
            let statements = pg::expand(
                &r.revocation_statements,
                &[("name", &user), ("username", &user)],
            );
            pg::run_in_transaction(&mut client, &statements, "revocation statements", "").await
        }
        None => pg::default_revoke(&mut client, &user).await,
    }
}

/// The `creds` secret type: renewable, revoked by dropping the user.
pub fn creds_secret() -> Secret {
    Secret::new(CREDS).renew(renew_creds).revoke(revoke_creds)
}

fn statements_field(name: &str, what: &str) -> Field {
    Field::string_list(name).description(what)
}

/// The engine's paths and secret type.
pub fn backend() -> PathBackend {
    PathBackend::new(Kind::Secret, concat!("v", env!("CARGO_PKG_VERSION")))
        .help("The database secrets engine (PostgreSQL): dynamic users with leases, root rotation.")
        .root_paths(["config/*", "rotate-root/*", "rotate-role/*"])
        .secret(creds_secret())
        .path(Path::new("config/").list(|_, _, s| async move { list_keys("config/", &s).await }))
        .path(
            Path::new("config/{name}")
                .field(Field::string("plugin_name").description("postgresql-database-plugin"))
                .field(
                    Field::string("connection_url")
                        .description("PostgreSQL URL with {{username}} and {{password}}"),
                )
                .field(
                    Field::string("username").description("The root user the engine connects as."),
                )
                .field(
                    Field::string("password")
                        .sensitive()
                        .description("Its password (never returned)."),
                )
                .field(
                    Field::string_list("allowed_roles")
                        .description("Roles that may use this connection (* for all)."),
                )
                .field(Field::bool("verify_connection").default(true))
                .field(statements_field(
                    "root_rotation_statements",
                    "SQL that sets the root password ({{username}}, {{password}}).",
                ))
                .field(Field::string("password_policy"))
                .field(
                    Field::string("tls_ca").description(
                        "PEM CA certificate(s) the server's certificate must lead to.",
                    ),
                )
                .field(
                    Field::string("tls_certificate")
                        .description("PEM client certificate for the connection."),
                )
                .field(
                    Field::string("private_key")
                        .sensitive()
                        .description("PEM key of tls_certificate (never returned)."),
                )
                .write(write_config)
                .read(read_config)
                .delete(|_, f, s| async move { delete_config(&f, &s).await }),
        )
        .path(Path::new("roles/").list(|_, _, s| async move { list_keys("role/", &s).await }))
        .path(
            Path::new("roles/{name}")
                .field(Field::string("db_name").description("The connection (config/<db_name>)."))
                .field(statements_field(
                    "creation_statements",
                    "SQL that creates the user ({{name}}, {{password}}, {{expiration}}).",
                ))
                .field(statements_field(
                    "revocation_statements",
                    "SQL that removes the user ({{name}}); default: end its sessions and drop it.",
                ))
                .field(statements_field(
                    "renew_statements",
                    "SQL run on renewal ({{name}}, {{expiration}}); default: VALID UNTIL.",
                ))
                .field(statements_field(
                    "rollback_statements",
                    "Accepted for compatibility.",
                ))
                .field(Field::duration("default_ttl"))
                .field(Field::duration("max_ttl"))
                .write(write_role)
                .read(read_role)
                .delete(|_, f, s| async move { delete_key("role", &f, &s).await }),
        )
        .path(Path::new("creds/{name}").read(creds))
        .path(
            Path::new("static-roles/")
                .list(|_, _, s| async move { list_keys("static-role/", &s).await }),
        )
        .path(
            Path::new("static-roles/{name}")
                .field(Field::string("db_name").description("The connection (config/<db_name>)."))
                .field(Field::string("username").description("The existing PostgreSQL user."))
                .field(
                    Field::duration("rotation_period")
                        .description("How often its password changes (≥ 5s)."),
                )
                .field(statements_field(
                    "rotation_statements",
                    "SQL that sets the password ({{name}}, {{password}}); default: ALTER ROLE.",
                ))
                .field(Field::string("credential_type"))
                .write(static_roles::write)
                .read(static_roles::read)
                .delete(static_roles::delete),
        )
        .path(Path::new("static-creds/{name}").read(static_roles::creds))
        .path(Path::new("rotate-role/{name}").update(static_roles::rotate_role))
        .path(Path::new("rotate-root/{name}").update(rotate_root))
}

/// Statement fields given as one string become a one-entry list, so the
/// framework's list parsing never splits SQL on its commas.
pub fn normalize_statements(data: &mut Map<String, Value>) {
    for f in STATEMENT_FIELDS {
        if let Some(Value::String(s)) = data.get(f) {
            let one = Value::Array(vec![Value::String(s.clone())]);
            data.insert(f.to_string(), one);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_passwords_and_expirations() {
        let u = username("token-with.odd/chars", "a-very-long-role-name");
        assert!(u.starts_with("v-token-wi-a-very-l-"), "{u}");
        assert!(u.len() <= 63);
        assert!(
            u.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let p = password();
        assert_eq!(p.len(), 24);
        assert_ne!(p, password());
        assert_eq!(expiration(0), "1970-01-01 00:00:00+0000");
        assert_eq!(expiration(1_700_000_000), "2023-11-14 22:13:20+0000");
        assert_eq!(
            redact_url("postgresql://root:hunter2@h:5432/db"),
            "postgresql://root:*****@h:5432/db"
        );
        let t = "postgresql://{{username}}:{{password}}@h/db";
        assert_eq!(redact_url(t), t);
    }

    #[test]
    fn statements_are_never_split_on_commas() {
        let mut data = json!({
            "creation_statements": "GRANT SELECT, INSERT ON t TO \"{{name}}\";",
            "revocation_statements": ["a, b", "c"],
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        normalize_statements(&mut data);
        assert_eq!(
            data["creation_statements"],
            json!(["GRANT SELECT, INSERT ON t TO \"{{name}}\";"])
        );
        assert_eq!(data["revocation_statements"], json!(["a, b", "c"]));
    }
}
