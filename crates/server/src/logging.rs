//! The process's log subscriber: level and format from flags, environment
//! and config file, and the handle SIGHUP reloads the level through.

use crate::args::{ServerArgs, ServerError};
use crate::config::Config;
use tracing_subscriber::{EnvFilter, reload};

/// Reloads the log filter (SIGHUP).
pub type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Installs the global subscriber: `level` (or `LOCKBOX_LOG`, an EnvFilter
/// directive) and `format` (`json` or `standard`), on stderr. Returns the
/// handle that reloads the level on SIGHUP (None if one was installed already).
/// Vault's level names (`warning`, `err`, `notice`) are understood; the
/// server validates its levels before calling this (see [`LogSettings`]).
pub fn init_logging(level: &str, format: &str) -> Option<ReloadHandle> {
    use tracing_subscriber::prelude::*;
    let level = crate::config::parse_log_level(level).unwrap_or(level);
    let filter = EnvFilter::try_from_env("LOCKBOX_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let result = if format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    result.ok().map(|_| handle)
}

/// The log level and format in effect, and what chose the level: the
/// precedence is `LOCKBOX_LOG` (a filter directive), then `--log-level` /
/// `LOCKBOX_LOG_LEVEL`, then the config file, then `info`. A SIGHUP applies
/// the file's level only when nothing above the file chose it.
pub(crate) struct LogSettings {
    pub(crate) level: &'static str,
    pub(crate) format: &'static str,
    /// What set the level if not the config file (or the default).
    pub(crate) pinned_by: Option<&'static str>,
}

impl LogSettings {
    /// Validates the flags and combines them with the file's settings.
    pub(crate) fn resolve(args: &ServerArgs, file: Option<&Config>) -> Result<Self, ServerError> {
        let flag = |flag: &'static str| move |message: String| ServerError::Flag { flag, message };
        let flag_level = args
            .log_level
            .as_deref()
            .map(crate::config::parse_log_level)
            .transpose()
            .map_err(flag("--log-level (LOCKBOX_LOG_LEVEL)"))?;
        let flag_format = args
            .log_format
            .as_deref()
            .map(crate::config::parse_log_format)
            .transpose()
            .map_err(flag("--log-format (LOCKBOX_LOG_FORMAT)"))?;
        let file_level = file
            .and_then(|c| crate::config::parse_log_level(&c.log_level).ok())
            .unwrap_or("info");
        let file_format = file
            .and_then(|c| crate::config::parse_log_format(&c.log_format).ok())
            .unwrap_or("standard");
        let pinned_by = if EnvFilter::try_from_env("LOCKBOX_LOG").is_ok() {
            Some("LOCKBOX_LOG")
        } else if flag_level.is_some() {
            Some("--log-level (or LOCKBOX_LOG_LEVEL)")
        } else {
            None
        };
        Ok(Self {
            level: flag_level.unwrap_or(file_level),
            format: flag_format.unwrap_or(file_format),
            pinned_by,
        })
    }
}
