//! Where the client's settings come from: flags, then `LOCKBOX_*`, then
//! `VAULT_*` environment variables, then defaults; and the token file that
//! `login` writes.
//!
//! Resolution is a pure function of the flags, an environment lookup and a
//! token-file reader, so tests never touch the process environment or the
//! user's home directory.
//!
//! | setting | flag | environment (first set wins) | default |
//! | --- | --- | --- | --- |
//! | address | `-address` | `LOCKBOX_ADDR`, `VAULT_ADDR` | `https://127.0.0.1:8200` |
//! | token | — | `LOCKBOX_TOKEN`, `VAULT_TOKEN`, then `$HOME/.lockbox-token` | none |
//! | CA certificate | `-ca-cert` | `LOCKBOX_CACERT`, `VAULT_CACERT` | platform roots |
//! | skip TLS verification | `-tls-skip-verify` | `LOCKBOX_SKIP_VERIFY`, `VAULT_SKIP_VERIFY` | false |
//! | output format (`table`, `json`, `yaml`) | `-format` | `LOCKBOX_FORMAT`, `VAULT_FORMAT` | `table` |
//!
//! Empty environment variables count as unset, as in Vault.

use std::path::{Path, PathBuf};

use crate::client::ClientConfig;
use crate::error::Error;

/// The address used when nothing else is configured (Vault's default).
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";

/// Name of the token file in the home directory.
pub const TOKEN_FILE_NAME: &str = ".lockbox-token";

/// Output format for command results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables (the default).
    Table,
    /// Pretty-printed JSON.
    Json,
    /// YAML, as Vault prints it: the JSON document with its keys sorted.
    Yaml,
}

impl Format {
    /// Parses a format name as `-format` and `LOCKBOX_FORMAT` accept it.
    pub fn parse(s: &str) -> Result<Format, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "yaml" | "yml" => Ok(Format::Yaml),
            other => Err(Error::Usage(format!(
                "Invalid output format: {other} (supported: table, json, yaml)"
            ))),
        }
    }

    /// Whether results are printed as a document (JSON or YAML) rather than
    /// as a table.
    pub fn is_structured(self) -> bool {
        matches!(self, Format::Json | Format::Yaml)
    }
}

/// Settings given on the command line, before the environment is consulted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagSettings {
    /// `-address`.
    pub address: Option<String>,
    /// `-format`.
    pub format: Option<String>,
    /// `-ca-cert`.
    pub ca_cert: Option<PathBuf>,
    /// `-tls-skip-verify`.
    pub skip_verify: Option<bool>,
}

/// Where the token in [`Settings::token`] came from, so `login` can warn that
/// an environment variable overrides the file it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token was found.
    None,
    /// The named environment variable.
    Env(&'static str),
    /// The token file at this path.
    File(PathBuf),
}

/// Fully resolved settings for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How to reach the server.
    pub client: ClientConfig,
    /// Where the token came from.
    pub token_source: TokenSource,
    /// How to print results.
    pub format: Format,
    /// Path of the token file (`$HOME/.lockbox-token`), if a home directory
    /// is known.
    pub token_file: Option<PathBuf>,
}

/// Resolves the settings from flags, an environment lookup and a token-file
/// reader (which returns the file's trimmed contents, or `None` when the file
/// does not exist or is empty).
pub fn resolve(
    flags: &FlagSettings,
    env: &dyn Fn(&str) -> Option<String>,
    read_token_file: &dyn Fn(&Path) -> Option<String>,
) -> Result<Settings, Error> {
    let lookup = |names: &[&'static str]| -> Option<(&'static str, String)> {
        names.iter().find_map(|name| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (*name, v))
        })
    };

    let address = flags
        .address
        .clone()
        .filter(|a| !a.trim().is_empty())
        .or_else(|| lookup(&["LOCKBOX_ADDR", "VAULT_ADDR"]).map(|(_, v)| v))
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());

    let token_file = token_file_path(env);
    let (token, token_source) = match lookup(&["LOCKBOX_TOKEN", "VAULT_TOKEN"]) {
        Some((name, value)) => (Some(value), TokenSource::Env(name)),
        None => match token_file
            .as_deref()
            .and_then(|p| read_token_file(p).map(|t| (t, p.to_path_buf())))
        {
            Some((t, path)) if !t.trim().is_empty() => {
                (Some(t.trim().to_string()), TokenSource::File(path))
            }
            _ => (None, TokenSource::None),
        },
    };

    let ca_cert = flags
        .ca_cert
        .clone()
        .or_else(|| lookup(&["LOCKBOX_CACERT", "VAULT_CACERT"]).map(|(_, v)| PathBuf::from(v)));

    let skip_verify = match flags.skip_verify {
        Some(v) => v,
        None => match lookup(&["LOCKBOX_SKIP_VERIFY", "VAULT_SKIP_VERIFY"]) {
            Some((name, value)) => parse_bool(&value).ok_or_else(|| {
                Error::Config(format!("could not parse {name}={value:?} as a boolean"))
            })?,
            None => false,
        },
    };

    let format = match flags.format.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Format::parse(f)?,
        None => match lookup(&["LOCKBOX_FORMAT", "VAULT_FORMAT"]) {
            Some((_, f)) => Format::parse(&f)?,
            None => Format::Table,
        },
    };

    Ok(Settings {
        client: ClientConfig {
            address,
            token,
            ca_cert,
            skip_verify,
            timeout: None,
        },
        token_source,
        format,
        token_file,
    })
}

/// `$HOME/.lockbox-token`, if `HOME` is set.
pub fn token_file_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(TOKEN_FILE_NAME))
}

/// Reads the token file: its trimmed contents, or `None` if it does not
/// exist, cannot be read, or is empty.
pub fn read_token_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Writes the token file with mode 0600, replacing it atomically (write a
/// temporary file beside it, then rename), so a concurrent reader never sees
/// a half-written token and the permissions are always reset.
pub fn write_token_file(path: &Path, token: &str) -> Result<(), Error> {
    use std::io::Write;

    let tmp = path.with_extension("tmp");
    let err = |what: &str, source| Error::LocalState {
        what: format!("{what} {}", tmp.display()),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp).map_err(|e| err("error creating", e))?;
        #[cfg(unix)]
        {
            // The mode passed to open() only applies to new files.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| err("error setting permissions on", e))?;
        }
        file.write_all(token.as_bytes())
            .map_err(|e| err("error writing", e))?;
        file.sync_all().map_err(|e| err("error writing", e))?;
        std::fs::rename(&tmp, path).map_err(|source| Error::LocalState {
            what: format!("error moving the token into {}", path.display()),
            source,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Parses a boolean the way Go's `strconv.ParseBool` does (which is what
/// Vault accepts in flags and environment variables).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn no_file(_: &Path) -> Option<String> {
        None
    }

    #[test]
    fn defaults() {
        let s = resolve(&FlagSettings::default(), &env_of(&[]), &no_file).unwrap();
        assert_eq!(s.client.address, DEFAULT_ADDRESS);
        assert_eq!(s.client.token, None);
        assert_eq!(s.token_source, TokenSource::None);
        assert_eq!(s.format, Format::Table);
        assert!(!s.client.skip_verify);
        assert_eq!(s.client.ca_cert, None);
        assert_eq!(s.token_file, None);
    }

    #[test]
    fn address_flag_then_lockbox_then_vault() {
        let env = env_of(&[("LOCKBOX_ADDR", "http://l:1"), ("VAULT_ADDR", "http://v:2")]);
        let s = resolve(&FlagSettings::default(), &env, &no_file).unwrap();
        assert_eq!(s.client.address, "http://l:1");

        let env = env_of(&[("LOCKBOX_ADDR", ""), ("VAULT_ADDR", "http://v:2")]);
        let s = resolve(&FlagSettings::default(), &env, &no_file).unwrap();
        assert_eq!(s.client.address, "http://v:2", "empty counts as unset");

        let flags = FlagSettings {
            address: Some("http://f:3".into()),
            ..Default::default()
        };
        let env = env_of(&[("LOCKBOX_ADDR", "http://l:1")]);
        let s = resolve(&flags, &env, &no_file).unwrap();
        assert_eq!(s.client.address, "http://f:3");
    }

    #[test]
    fn token_env_then_vault_env_then_file() {
        let file = |p: &Path| {
            assert_eq!(p, Path::new("/home/u/.lockbox-token"));
            Some("from-file".to_string())
        };
        let env = env_of(&[
            ("HOME", "/home/u"),
            ("LOCKBOX_TOKEN", "l"),
            ("VAULT_TOKEN", "v"),
        ]);
        let s = resolve(&FlagSettings::default(), &env, &file).unwrap();
        assert_eq!(s.client.token.as_deref(), Some("l"));
        assert_eq!(s.token_source, TokenSource::Env("LOCKBOX_TOKEN"));

        let env = env_of(&[("HOME", "/home/u"), ("VAULT_TOKEN", "v")]);
        let s = resolve(&FlagSettings::default(), &env, &file).unwrap();
        assert_eq!(s.client.token.as_deref(), Some("v"));
        assert_eq!(s.token_source, TokenSource::Env("VAULT_TOKEN"));

        let env = env_of(&[("HOME", "/home/u")]);
        let s = resolve(&FlagSettings::default(), &env, &file).unwrap();
        assert_eq!(s.client.token.as_deref(), Some("from-file"));
        assert_eq!(
            s.token_source,
            TokenSource::File(PathBuf::from("/home/u/.lockbox-token"))
        );
    }

    #[test]
    fn ca_skip_verify_and_format() {
        let env = env_of(&[
            ("VAULT_CACERT", "/v.pem"),
            ("VAULT_SKIP_VERIFY", "true"),
            ("VAULT_FORMAT", "json"),
        ]);
        let s = resolve(&FlagSettings::default(), &env, &no_file).unwrap();
        assert_eq!(s.client.ca_cert, Some(PathBuf::from("/v.pem")));
        assert!(s.client.skip_verify);
        assert_eq!(s.format, Format::Json);

        let env = env_of(&[
            ("LOCKBOX_CACERT", "/l.pem"),
            ("VAULT_CACERT", "/v.pem"),
            ("LOCKBOX_SKIP_VERIFY", "0"),
            ("VAULT_SKIP_VERIFY", "1"),
            ("LOCKBOX_FORMAT", "table"),
            ("VAULT_FORMAT", "json"),
        ]);
        let s = resolve(&FlagSettings::default(), &env, &no_file).unwrap();
        assert_eq!(s.client.ca_cert, Some(PathBuf::from("/l.pem")));
        assert!(!s.client.skip_verify);
        assert_eq!(s.format, Format::Table);

        let flags = FlagSettings {
            format: Some("JSON".into()),
            skip_verify: Some(true),
            ca_cert: Some(PathBuf::from("/f.pem")),
            ..Default::default()
        };
        let s = resolve(&flags, &env, &no_file).unwrap();
        assert_eq!(s.format, Format::Json);
        assert!(s.client.skip_verify);
        assert_eq!(s.client.ca_cert, Some(PathBuf::from("/f.pem")));
    }

    #[test]
    fn bad_values_are_errors() {
        let env = env_of(&[("VAULT_SKIP_VERIFY", "maybe")]);
        let err = resolve(&FlagSettings::default(), &env, &no_file).unwrap_err();
        assert!(err.to_string().contains("VAULT_SKIP_VERIFY"), "{err}");

        let env = env_of(&[("LOCKBOX_FORMAT", "xml")]);
        let err = resolve(&FlagSettings::default(), &env, &no_file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid output format: xml (supported: table, json, yaml)"
        );
        assert_eq!(err.exit_code(), 1);

        for (name, format) in [("yaml", Format::Yaml), ("YML", Format::Yaml)] {
            let pairs = [("VAULT_FORMAT", name)];
            let env = env_of(&pairs);
            let s = resolve(&FlagSettings::default(), &env, &no_file).unwrap();
            assert_eq!(s.format, format, "{name}");
        }
    }

    #[test]
    fn token_file_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE_NAME);
        write_token_file(&path, "hvs.one").unwrap();
        assert_eq!(read_token_file(&path).as_deref(), Some("hvs.one"));
        write_token_file(&path, "hvs.two").unwrap();
        assert_eq!(read_token_file(&path).as_deref(), Some("hvs.two"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(read_token_file(&dir.path().join("missing")).is_none());
    }

    #[test]
    fn go_style_booleans() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("yes"), None);
    }
}
