//! Running a parsed [`Command`]: resolving the settings, dispatching to the
//! command's implementation, printing its result and choosing the exit code.
//!
//! All input and output goes through [`Io`], so the commands can be driven in
//! process with buffers instead of the real terminal.

mod auth;
mod auth_mounts;
mod kv;
mod plugin;
mod policy;
mod secrets;
mod sys;

use std::io::{BufRead, Write};

use serde::Serialize;
use serde_json::Value;

use crate::cli::{
    AuthCommand, Command, OperatorCommand, PluginCommand, PolicyCommand, SecretsCommand,
    TokenCommand,
};
use crate::client::{Client, Secret};
use crate::config::{self, Format, Settings};
use crate::error::Error;
use crate::output;

/// The outside world a command talks to.
pub struct Io<'a> {
    /// Where data (`write -`, `policy write NAME -`, unseal keys, tokens) is
    /// read from.
    pub stdin: &'a mut (dyn BufRead + Send),
    /// Where results go.
    pub stdout: &'a mut (dyn Write + Send),
    /// Where errors, warnings and prompts go.
    pub stderr: &'a mut (dyn Write + Send),
    /// Environment lookup (`LOCKBOX_ADDR`, `HOME`, ...).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Whether stdin is a terminal (prompts are shown only then).
    pub stdin_is_terminal: bool,
    /// Whether stdout is a terminal (`-field` output ends with a newline
    /// only then, so `$(lockbox read -field=x ...)` is exact).
    pub stdout_is_terminal: bool,
    /// Whether stderr is a terminal (progress bars are drawn only then).
    pub stderr_is_terminal: bool,
}

/// Runs one command against the real stdin, stdout, stderr and environment,
/// and returns the process exit code.
pub async fn run(cmd: Command) -> i32 {
    use std::io::IsTerminal;

    let stdin_is_terminal = std::io::stdin().is_terminal();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let env = |name: &str| std::env::var(name).ok();
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        env: &env,
        stdin_is_terminal,
        stdout_is_terminal,
        stderr_is_terminal,
    };
    run_with_io(cmd, &mut io).await
}

/// What `lockbox version` prints, like `vault version`:
/// `Lockbox v0.1.0 (<git commit>), committed <UTC time>` when the build knew
/// its commit (from git, or `LOCKBOX_GIT_COMMIT` and
/// `LOCKBOX_GIT_COMMIT_DATE` at build time), else `Lockbox v0.1.0`.
pub fn version_text() -> String {
    let mut text = format!("Lockbox v{}", env!("CARGO_PKG_VERSION"));
    if let Some(commit) = option_env!("LOCKBOX_GIT_COMMIT").filter(|c| !c.is_empty()) {
        text.push_str(&format!(" ({commit})"));
        if let Some(date) = option_env!("LOCKBOX_GIT_COMMIT_DATE").filter(|d| !d.is_empty()) {
            text.push_str(&format!(", committed {date}"));
        }
    }
    text
}

/// Runs one command with the given I/O and returns the process exit code.
pub async fn run_with_io(cmd: Command, io: &mut Io<'_>) -> i32 {
    if let Command::Version(_) = cmd {
        // Needs no settings: a bad LOCKBOX_FORMAT must not hide the version.
        let _ = writeln!(io.stdout, "{}", version_text());
        let _ = io.stdout.flush();
        return 0;
    }
    let settings = match config::resolve(
        &cmd.global().flag_settings(),
        io.env,
        &config::read_token_file,
    ) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(io.stderr, "{e}");
            // `status` reserves 2 for "sealed".
            return if matches!(cmd, Command::Status(_)) {
                1
            } else {
                e.exit_code()
            };
        }
    };
    let mut ctx = Ctx { io, settings };
    let result = dispatch(cmd, &mut ctx).await;
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            ctx.errln(&e.to_string());
            e.exit_code()
        }
    };
    let _ = ctx.io.stdout.flush();
    let _ = ctx.io.stderr.flush();
    code
}

async fn dispatch(cmd: Command, ctx: &mut Ctx<'_, '_>) -> Result<i32, Error> {
    match cmd {
        Command::Status(_) => sys::status(ctx).await,
        Command::Operator(op) => match op {
            OperatorCommand::Init(a) => sys::init(ctx, a).await,
            OperatorCommand::Unseal(a) => sys::unseal(ctx, a).await,
            OperatorCommand::Seal(_) => sys::seal(ctx).await,
            OperatorCommand::Rotate(_) => sys::rotate(ctx).await,
        },
        Command::Login(a) => auth::login(ctx, a).await,
        Command::Token(t) => match t {
            TokenCommand::Create(a) => auth::token_create(ctx, a).await,
            TokenCommand::Lookup(a) => auth::token_lookup(ctx, a).await,
            TokenCommand::Renew(a) => auth::token_renew(ctx, a).await,
            TokenCommand::Revoke(a) => auth::token_revoke(ctx, a).await,
        },
        Command::Policy(p) => match p {
            PolicyCommand::Write(a) => policy::write(ctx, a).await,
            PolicyCommand::Read(a) => policy::read(ctx, a).await,
            PolicyCommand::List(_) => policy::list(ctx).await,
            PolicyCommand::Delete(a) => policy::delete(ctx, a).await,
        },
        Command::Secrets(s) => match s {
            SecretsCommand::Enable(a) => secrets::enable(ctx, a).await,
            SecretsCommand::Disable(a) => secrets::disable(ctx, a).await,
            SecretsCommand::List(a) => secrets::list(ctx, a).await,
            SecretsCommand::Tune(a) => secrets::tune(ctx, a).await,
            SecretsCommand::Move(a) => secrets::move_mount(ctx, a).await,
        },
        Command::Auth(c) => match c {
            AuthCommand::Enable(a) => auth_mounts::enable(ctx, a).await,
            AuthCommand::Disable(a) => auth_mounts::disable(ctx, a).await,
            AuthCommand::List(a) => auth_mounts::list(ctx, a).await,
            AuthCommand::Tune(a) => auth_mounts::tune(ctx, a).await,
        },
        Command::Plugin(p) => match p {
            PluginCommand::Register(a) => plugin::register(ctx, a).await,
            PluginCommand::Deregister(a) => plugin::deregister(ctx, a).await,
            PluginCommand::List(a) => plugin::list(ctx, a).await,
            PluginCommand::Info(a) => plugin::info(ctx, a).await,
            PluginCommand::Reload(a) => plugin::reload(ctx, a).await,
            PluginCommand::Push(a) => plugin::push(ctx, a).await,
            PluginCommand::Pull(a) => plugin::pull(ctx, a).await,
        },
        Command::Read(a) => kv::read(ctx, a).await,
        Command::Write(a) => kv::write(ctx, a).await,
        Command::List(a) => kv::list(ctx, a).await,
        Command::Delete(a) => kv::delete(ctx, a).await,
        Command::Version(_) => {
            ctx.outln(&version_text());
            Ok(0)
        }
    }
}

/// What a running command has at hand.
pub(crate) struct Ctx<'a, 'io> {
    pub io: &'a mut Io<'io>,
    pub settings: Settings,
}

impl Ctx<'_, '_> {
    pub fn format(&self) -> Format {
        self.settings.format
    }

    /// A client with the resolved address, token and TLS settings.
    pub fn client(&self) -> Result<Client, Error> {
        Client::new(self.settings.client.clone())
    }

    /// Writes text to stdout as is.
    pub fn out(&mut self, text: &str) {
        let _ = self.io.stdout.write_all(text.as_bytes());
    }

    /// Writes a line to stdout.
    pub fn outln(&mut self, line: &str) {
        let _ = writeln!(self.io.stdout, "{line}");
    }

    /// Writes text to stderr as is.
    pub fn err(&mut self, text: &str) {
        let _ = self.io.stderr.write_all(text.as_bytes());
    }

    /// Writes a line to stderr.
    pub fn errln(&mut self, line: &str) {
        let _ = writeln!(self.io.stderr, "{line}");
    }

    /// Prints any serializable value as a document in the configured format:
    /// YAML with `-format=yaml`, pretty JSON otherwise (commands print their
    /// tables themselves).
    pub fn print_structured<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let text = match self.format() {
            Format::Yaml => output::yaml(value)?,
            Format::Json | Format::Table => output::json(value)?,
        };
        self.out(&text);
        Ok(())
    }

    /// Prints a secret in the configured format: warnings (stderr) and a
    /// `Key`/`Value` table, or the envelope as JSON or YAML.
    pub fn print_secret(&mut self, secret: &Secret) -> Result<i32, Error> {
        match self.format() {
            Format::Json | Format::Yaml => self.print_structured(secret)?,
            Format::Table => {
                let warnings = output::warnings_block(secret);
                self.err(&warnings);
                let table = output::secret_table(secret);
                self.out(&table);
            }
        }
        Ok(0)
    }

    /// Prints one field of a secret (`-field`), the way Vault does: the bare
    /// value in table format, the value as a JSON or YAML document otherwise.
    /// Only the YAML document ends with a newline wherever it goes (as in
    /// Vault); the others get one on a terminal only.
    pub fn print_field(&mut self, secret: &Secret, field: &str) -> Result<i32, Error> {
        let Some(value) = raw_field(secret, field) else {
            return Err(Error::Usage(format!(
                "Field {field:?} not present in secret"
            )));
        };
        let text = match self.format() {
            Format::Table => output::go_value(&value),
            Format::Json => output::json(&value)?.trim_end().to_string(),
            Format::Yaml => output::yaml(&value)?,
        };
        self.out(&text);
        if self.io.stdout_is_terminal && !text.ends_with('\n') {
            self.out("\n");
        }
        Ok(0)
    }
}

/// Vault's `RawField`: token fields come from `auth`, wrapping fields from
/// `wrap_info`, lease fields from the envelope, anything else from `data`.
fn raw_field(secret: &Secret, field: &str) -> Option<Value> {
    let data_field = || secret.data.as_ref().and_then(|d| d.get(field)).cloned();
    if let Some(auth) = &secret.auth {
        return match field {
            "token" => Some(auth.client_token.clone().into()),
            "token_accessor" => Some(auth.accessor.clone().into()),
            "token_duration" => Some(auth.lease_duration.into()),
            "token_renewable" => Some(auth.renewable.into()),
            "token_policies" => Some(auth.token_policies.clone().into()),
            "identity_policies" => Some(auth.identity_policies.clone().into()),
            "policies" => Some(auth.policies.clone().into()),
            _ => data_field(),
        };
    }
    if let Some(wrap) = &secret.wrap_info {
        return match field {
            "wrapping_token" => Some(wrap.token.clone().into()),
            "wrapping_accessor" => Some(wrap.accessor.clone().into()),
            "wrapping_token_ttl" => Some(wrap.ttl.into()),
            "wrapping_token_creation_time" => Some(wrap.creation_time.clone().into()),
            "wrapping_token_creation_path" => Some(wrap.creation_path.clone().into()),
            "wrapped_accessor" => Some(wrap.wrapped_accessor.clone().into()),
            _ => data_field(),
        };
    }
    match field {
        "lease_duration" | "refresh_interval" => Some(secret.lease_duration.into()),
        "lease_id" => Some(secret.lease_id.clone().into()),
        "request_id" => Some(secret.request_id.clone().into()),
        "renewable" => Some(secret.renewable.into()),
        "data" => Some(
            data_field().unwrap_or_else(|| Value::Object(secret.data.clone().unwrap_or_default())),
        ),
        _ => data_field(),
    }
}

/// Strips surrounding whitespace and slashes from a path argument.
pub(crate) fn sanitize_path(path: &str) -> String {
    path.trim().trim_matches('/').to_string()
}

/// A mount path as Vault prints and sends it: sanitized, with one trailing
/// slash.
pub(crate) fn mount_path(path: &str) -> String {
    let p = sanitize_path(path);
    if p.is_empty() { p } else { format!("{p}/") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(sanitize_path(" /secret/foo/ "), "secret/foo");
        assert_eq!(mount_path("mock"), "mock/");
        assert_eq!(mount_path("mock//"), "mock/");
        assert_eq!(mount_path(""), "");
    }

    #[test]
    fn raw_fields() {
        let secret: Secret = serde_json::from_value(json!({
            "lease_duration": 60,
            "data": {"message": "hi", "data": {"inner": 1}}
        }))
        .unwrap();
        assert_eq!(raw_field(&secret, "message"), Some(json!("hi")));
        assert_eq!(raw_field(&secret, "refresh_interval"), Some(json!(60)));
        assert_eq!(raw_field(&secret, "data"), Some(json!({"inner": 1})));
        assert_eq!(raw_field(&secret, "missing"), None);

        let secret: Secret = serde_json::from_value(json!({
            "auth": {"client_token": "t", "policies": ["a"]}
        }))
        .unwrap();
        assert_eq!(raw_field(&secret, "token"), Some(json!("t")));
        assert_eq!(raw_field(&secret, "policies"), Some(json!(["a"])));
    }
}
