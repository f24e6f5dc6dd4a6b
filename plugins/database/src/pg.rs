//! PostgreSQL: connecting with a stored configuration (TLS per `sslmode`,
//! see `tls`), running templated statements in a transaction, and the
//! default revocation and renewal.
//!
//! Every error message names what failed and carries PostgreSQL's own
//! message, with any generated password cut out.

use crate::tls::{Plan, SslMode, is_certificate_error};
use lockbox_pg_tls::ConnectFailure;
use lockbox_sdk::Error;
use std::time::Duration;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `connection_url` with `{{username}}` / `{{password}}` filled in
/// (percent-encoded, so any character is safe in the URL's user info).
pub fn fill_url(url: &str, username: &str, password: &str) -> String {
    url.replace("{{username}}", &percent_encode(username))
        .replace("{{password}}", &percent_encode(password))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a connection failed: the server refused the password (the root
/// rotation's recovery then tries a pending one), or anything else.
#[derive(Debug)]
pub enum ConnectError {
    BadPassword(Error),
    Other(Error),
}

impl ConnectError {
    pub fn into_error(self) -> Error {
        match self {
            ConnectError::BadPassword(e) | ConnectError::Other(e) => e,
        }
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        e.into_error()
    }
}

/// Connects as `username`/`password` following `plan` (its `sslmode`:
/// `prefer` tries TLS then plain, `allow` plain then TLS). The connection
/// task runs on the plugin's runtime until the client is dropped.
pub async fn connect(
    plan: &Plan,
    username: &str,
    password: &str,
    db_name: &str,
) -> Result<Client, ConnectError> {
    let url = fill_url(&plan.url, username, password);
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        ConnectError::Other(Error::invalid(format!(
            "connection {db_name:?}: connection_url is not a valid PostgreSQL URL: {e}"
        )))
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let on_close = |e| eprintln!("postgres connection closed: {e}");
    lockbox_pg_tls::connect(&config, plan, on_close)
        .await
        .map_err(|f| Failure::from(f).into_connect_error(plan.mode, db_name))
}

/// One failed connection attempt (or two, for `allow`/`prefer`).
struct Failure {
    message: String,
    bad_password: bool,
    certificate: bool,
    plain_refused: bool,
}

impl Failure {
    fn of(e: &tokio_postgres::Error, over_tls: bool) -> Self {
        let code = e.code();
        let message = pg_message(e);
        Failure {
            bad_password: code == Some(&SqlState::INVALID_PASSWORD),
            certificate: is_certificate_error(e),
            plain_refused: !over_tls
                && code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                && message.contains("no encryption"),
            message,
        }
    }

    fn from(f: ConnectFailure) -> Self {
        match f {
            ConnectFailure::One(a) => Failure::of(&a.error, a.over_tls),
            ConnectFailure::Two { first, second } => {
                let (tls, plain) = if first.over_tls {
                    (first, second)
                } else {
                    (second, first)
                };
                Failure::both(
                    Failure::of(&tls.error, true),
                    Failure::of(&plain.error, false),
                )
            }
        }
    }

    fn both(tls: Failure, plain: Failure) -> Self {
        Failure {
            message: format!("over TLS: {}; without TLS: {}", tls.message, plain.message),
            bad_password: tls.bad_password || plain.bad_password,
            certificate: tls.certificate,
            plain_refused: plain.plain_refused,
        }
    }

    fn into_connect_error(self, mode: SslMode, db_name: &str) -> ConnectError {
        let mut msg = format!(
            "connection {db_name:?}: cannot connect to PostgreSQL: {}",
            self.message
        );
        if self.certificate {
            msg.push_str(&format!(
                " (TLS certificate verification failed with sslmode={}: the server's \
                 certificate does not lead to the CA in sslrootcert/tls_ca or does not name \
                 the host; give the CA that signed it)",
                mode.name()
            ));
        }
        if self.plain_refused && mode == SslMode::Disable {
            msg.push_str(
                " (the server accepts only TLS connections: use sslmode=verify-full with \
                 sslrootcert or tls_ca, or sslmode=require)",
            );
        }
        if self.bad_password {
            ConnectError::BadPassword(Error::invalid(msg))
        } else {
            ConnectError::Other(Error::Unavailable(msg))
        }
    }
}

/// PostgreSQL's message for `e` (the server's error text when it sent one,
/// else the error with its causes, e.g. rustls' reason for a failed
/// handshake).
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    lockbox_pg_tls::error_message(e)
}

/// A double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The statements of a list, each split on `;` (as Vault does), trimmed,
/// empty ones dropped, with `{{key}}` replaced from `vars`.
pub fn expand(statements: &[String], vars: &[(&str, &str)]) -> Vec<String> {
    statements
        .iter()
        .flat_map(|s| s.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            vars.iter().fold(s.to_string(), |acc, (k, v)| {
                acc.replace(&format!("{{{{{k}}}}}"), v)
            })
        })
        .collect()
}

/// Runs `statements` in one transaction; on failure nothing of it stays.
/// `what` names the statements in the error; `secret` (a generated
/// password) is cut out of PostgreSQL's message.
pub async fn run_in_transaction(
    client: &mut Client,
    statements: &[String],
    what: &str,
    secret: &str,
) -> Result<(), Error> {
    let fail = |e: tokio_postgres::Error| {
        let mut msg = pg_message(&e);
        if !secret.is_empty() {
            msg = msg.replace(secret, "[redacted]");
        }
        Error::invalid(format!("{what} failed in PostgreSQL: {msg}"))
    };
    let tx = client.transaction().await.map_err(fail)?;
    for s in statements {
        tx.batch_execute(s).await.map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}

/// Whether the role `name` exists.
pub async fn role_exists(client: &Client, name: &str) -> Result<bool, Error> {
    let rows = client
        .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot look up role {name:?} in PostgreSQL: {}",
                pg_message(&e)
            ))
        })?;
    Ok(!rows.is_empty())
}

/// Ends every session of `name` (so a revoked user is logged out now).
pub async fn terminate_sessions(client: &Client, name: &str) -> Result<(), Error> {
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE usename = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot end the sessions of {name:?} in PostgreSQL: {}",
                pg_message(&e)
            ))
        })?;
    Ok(())
}

/// The default revocation: end the user's sessions, drop what it owns and
/// its grants in this database, drop the role. A role already gone is
/// success (revocation may be retried).
pub async fn default_revoke(client: &mut Client, name: &str) -> Result<(), Error> {
    if !role_exists(client, name).await? {
        return Ok(());
    }
    let ident = quote_ident(name);
    // No new logins while the sessions are ended and the role dropped.
    let statements = vec![format!("ALTER ROLE {ident} NOLOGIN")];
    run_in_transaction(client, &statements, "revoking the user", "").await?;
    terminate_sessions(client, name).await?;
    let statements = vec![
        format!("DROP OWNED BY {ident}"),
        format!("DROP ROLE IF EXISTS {ident}"),
    ];
    run_in_transaction(client, &statements, "revoking the user", "").await
}

/// `ALTER ROLE name VALID UNTIL 'expiration'`: the default renewal.
pub fn default_renew(name: &str, expiration: &str) -> Vec<String> {
    vec![format!(
        "ALTER ROLE {} VALID UNTIL {}",
        quote_ident(name),
        quote_literal(expiration)
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_statements_and_quoting() {
        assert_eq!(
            fill_url(
                "postgresql://{{username}}:{{password}}@h/db",
                "a b",
                "p@ss:/"
            ),
            "postgresql://a%20b:p%40ss%3A%2F@h/db"
        );
        let s = expand(
            &[
                "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}'; GRANT x TO \"{{name}}\";".into(),
                " ".into(),
            ],
            &[("name", "v-1"), ("password", "pw")],
        );
        assert_eq!(
            s,
            vec![
                "CREATE ROLE \"v-1\" PASSWORD 'pw'".to_string(),
                "GRANT x TO \"v-1\"".to_string()
            ]
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
