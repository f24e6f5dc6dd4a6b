//! Accepting Vault's command-line spelling.
//!
//! Vault's CLI uses Go's flag package, where long flags take one dash
//! (`-format=json`, `-detailed`). clap wants two. [`normalize_args`] rewrites
//! the first into the second before clap sees the arguments, so commands
//! copied from Vault's documentation work unchanged.

use std::collections::HashSet;
use std::ffi::OsString;

use clap::Subcommand;

use crate::cli::Command;

/// Rewrites single-dash long flags (`-format=json`, `-detailed`,
/// `-address=...`) into clap's `--` form.
///
/// The first element is the program name and is kept as is. Also left alone:
/// `-` (stdin), one-letter flags (`-f`, `-n=3`), negative numbers (`-1`),
/// arguments that already have two dashes, positional arguments such as
/// `key=value` (even `a=-1`), the value that follows a flag which takes one
/// (`-path -weird-`), and everything after a bare `--`.
///
/// As in Vault, `-version`, `--version` and `-v` in place of a command are
/// the `version` command.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let schema = FlagSchema::from_commands();
    let mut out = Vec::new();
    let mut iter = args.into_iter().peekable();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    if iter
        .peek()
        .is_some_and(|first| ["-version", "--version", "-v"].iter().any(|v| first == v))
    {
        iter.next();
        out.push(OsString::from("version"));
    }
    let mut rest_verbatim = false;
    let mut next_is_value = false;
    for arg in iter {
        if rest_verbatim || next_is_value {
            next_is_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        if text == "-" || !text.starts_with('-') {
            out.push(arg);
            continue;
        }
        if let Some(body) = text.strip_prefix("--") {
            let (name, has_value) = split_flag(body);
            next_is_value = !has_value && schema.long_takes_value(name);
            out.push(arg);
            continue;
        }
        let body = &text[1..];
        let (name, has_value) = split_flag(body);
        let starts_with_digit = name.chars().next().is_some_and(|c| c.is_ascii_digit());
        if name.chars().count() <= 1 || starts_with_digit {
            // A short flag (or a negative number, or something odd): clap
            // handles these as they are.
            next_is_value =
                !has_value && name.chars().count() == 1 && schema.short_takes_value(name);
            out.push(arg);
            continue;
        }
        next_is_value = !has_value && schema.long_takes_value(name);
        out.push(OsString::from(format!("-{text}")));
    }
    out
}

/// `name=value` → (`name`, true); `name` → (`name`, false).
fn split_flag(body: &str) -> (&str, bool) {
    match body.split_once('=') {
        Some((name, _)) => (name, true),
        None => (body, false),
    }
}

/// Which flags of the client commands take a separate value argument.
struct FlagSchema {
    longs: HashSet<String>,
    shorts: HashSet<char>,
}

impl FlagSchema {
    fn from_commands() -> FlagSchema {
        let root = Command::augment_subcommands(clap::Command::new("lockbox"));
        let mut schema = FlagSchema {
            longs: HashSet::new(),
            shorts: HashSet::new(),
        };
        schema.collect(&root);
        schema
    }

    fn collect(&mut self, cmd: &clap::Command) {
        for arg in cmd.get_arguments() {
            let takes_separate_value = arg.get_action().takes_values()
                && !arg.is_require_equals_set()
                && !arg.is_positional();
            if takes_separate_value {
                if let Some(long) = arg.get_long() {
                    self.longs.insert(long.to_string());
                }
                if let Some(short) = arg.get_short() {
                    self.shorts.insert(short);
                }
            }
        }
        for sub in cmd.get_subcommands() {
            self.collect(sub);
        }
    }

    fn long_takes_value(&self, name: &str) -> bool {
        self.longs.contains(name)
    }

    fn short_takes_value(&self, name: &str) -> bool {
        name.chars()
            .next()
            .is_some_and(|c| self.shorts.contains(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_get_two_dashes() {
        assert_eq!(
            norm(&["lockbox", "secrets", "list", "-detailed", "-format=json"]),
            ["lockbox", "secrets", "list", "--detailed", "--format=json"]
        );
        assert_eq!(
            norm(&["lockbox", "secrets", "enable", "-path=secret", "kv"]),
            ["lockbox", "secrets", "enable", "--path=secret", "kv"]
        );
        assert_eq!(
            norm(&["lockbox", "status", "-address=http://127.0.0.1:8200"]),
            ["lockbox", "status", "--address=http://127.0.0.1:8200"]
        );
    }

    #[test]
    fn leaves_stdin_shorts_and_double_dashes_alone() {
        assert_eq!(
            norm(&["lockbox", "write", "-f", "x", "-"]),
            ["lockbox", "write", "-f", "x", "-"]
        );
        assert_eq!(
            norm(&["lockbox", "operator", "init", "-n=3", "-t", "2"]),
            ["lockbox", "operator", "init", "-n=3", "-t", "2"]
        );
        assert_eq!(
            norm(&["lockbox", "read", "--format=json", "x"]),
            ["lockbox", "read", "--format=json", "x"]
        );
    }

    #[test]
    fn leaves_positional_key_values_alone() {
        assert_eq!(
            norm(&["lockbox", "write", "x", "a=-1", "b=-format=json"]),
            ["lockbox", "write", "x", "a=-1", "b=-format=json"]
        );
    }

    #[test]
    fn leaves_everything_after_a_bare_double_dash() {
        assert_eq!(
            norm(&["lockbox", "write", "-force", "--", "-weird/path", "-x=1"]),
            ["lockbox", "write", "--force", "--", "-weird/path", "-x=1"]
        );
    }

    #[test]
    fn leaves_negative_numbers_and_flag_values_alone() {
        assert_eq!(
            norm(&[
                "lockbox",
                "secrets",
                "tune",
                "-default-lease-ttl",
                "-1",
                "kv"
            ]),
            [
                "lockbox",
                "secrets",
                "tune",
                "--default-lease-ttl",
                "-1",
                "kv"
            ]
        );
        assert_eq!(
            norm(&[
                "lockbox",
                "secrets",
                "enable",
                "-description",
                "-odd-",
                "kv"
            ]),
            [
                "lockbox",
                "secrets",
                "enable",
                "--description",
                "-odd-",
                "kv"
            ]
        );
        // A boolean flag does not swallow the next argument.
        assert_eq!(
            norm(&["lockbox", "secrets", "list", "-detailed", "-format", "json"]),
            [
                "lockbox",
                "secrets",
                "list",
                "--detailed",
                "--format",
                "json"
            ]
        );
    }

    #[test]
    fn version_flags_are_the_version_command() {
        for flag in ["-version", "--version", "-v"] {
            assert_eq!(norm(&["lockbox", flag]), ["lockbox", "version"], "{flag}");
        }
        // Only in place of the command: a plugin's -version stays a flag.
        assert_eq!(
            norm(&["lockbox", "plugin", "info", "-version=v1", "secret", "x"]),
            ["lockbox", "plugin", "info", "--version=v1", "secret", "x"]
        );
    }

    #[test]
    fn keeps_the_program_name() {
        assert_eq!(norm(&["-weird-program-name"]), ["-weird-program-name"]);
        assert!(norm(&[]).is_empty());
    }
}
