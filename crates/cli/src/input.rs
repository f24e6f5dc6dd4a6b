//! Turning command-line data into request bodies, the way Vault's K=V builder
//! does:
//!
//! - `key=value` sets a string;
//! - `key=@file` sets the contents of `file`; `key=\@x` sets the literal `@x`;
//! - `key=-` sets everything read from stdin;
//! - `-` alone reads a JSON object from stdin and merges it in;
//! - `@file` alone reads a JSON object from `file` and merges it in;
//! - a key given twice becomes a list of its values.
//!
//! Stdin can be consumed once per command.

use std::io::{BufRead, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Error;

/// Builds a JSON object from K=V arguments.
pub fn parse_kv_args(args: &[String], stdin: &mut dyn Read) -> Result<Map<String, Value>, Error> {
    let mut result = Map::new();
    let mut stdin_used = false;
    for raw in args {
        add_kv(&mut result, raw, stdin, &mut stdin_used).map_err(|e| match e {
            Error::Usage(msg) => Error::Usage(format!("invalid key/value pair {raw:?}: {msg}")),
            Error::Input { what, source } => Error::Input {
                what: format!("invalid key/value pair {raw:?}: {what}"),
                source,
            },
            other => other,
        })?;
    }
    Ok(result)
}

fn add_kv(
    result: &mut Map<String, Value>,
    raw: &str,
    stdin: &mut dyn Read,
    stdin_used: &mut bool,
) -> Result<(), Error> {
    if raw.is_empty() {
        return Ok(());
    }
    let Some((key, value)) = raw.split_once('=') else {
        if raw == "-" {
            let text = read_stdin_once(stdin, stdin_used)?;
            return merge_json_object(result, &text, "stdin");
        }
        if let Some(path) = raw.strip_prefix('@') {
            let text = read_file(Path::new(path))?;
            return merge_json_object(result, &text, path);
        }
        return Err(Error::Usage("format must be key=value".to_string()));
    };

    let value = if let Some(path) = value.strip_prefix('@') {
        read_file(Path::new(path))?
    } else if let Some(literal) = value.strip_prefix('\\').filter(|v| v.starts_with('@')) {
        literal.to_string()
    } else if value == "-" {
        read_stdin_once(stdin, stdin_used)?
    } else {
        value.to_string()
    };

    match result.get_mut(key) {
        Some(Value::Array(items)) => items.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
        None => {
            result.insert(key.to_string(), Value::String(value));
        }
    }
    Ok(())
}

fn read_stdin_once(stdin: &mut dyn Read, used: &mut bool) -> Result<String, Error> {
    if *used {
        return Err(Error::Usage("stdin already consumed".to_string()));
    }
    *used = true;
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|source| Error::Input {
            what: "error reading stdin".to_string(),
            source,
        })?;
    Ok(text)
}

fn read_file(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Input {
        what: format!("error reading file {:?}", path.display().to_string()),
        source,
    })
}

fn merge_json_object(
    result: &mut Map<String, Value>,
    text: &str,
    origin: &str,
) -> Result<(), Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            result.extend(map);
            Ok(())
        }
        Ok(_) => Err(Error::Usage(format!(
            "{origin} does not hold a JSON object"
        ))),
        Err(e) => Err(Error::Usage(format!(
            "error decoding JSON from {origin}: {e}"
        ))),
    }
}

/// Reads one line from stdin, without its line ending. An empty stdin is an
/// empty string.
pub fn read_line(stdin: &mut dyn BufRead) -> Result<String, Error> {
    let mut line = String::new();
    stdin.read_line(&mut line).map_err(|source| Error::Input {
        what: "error reading stdin".to_string(),
        source,
    })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Keeps the terminal on stdin from echoing typed characters while it lives
/// (password prompts). It runs `stty`, so there is no new dependency and no
/// `unsafe`; [`EchoOff::new`] returns `None` where that does not work (not
/// Unix, no `stty`, stdin not a terminal), and the caller then says the input
/// will be echoed.
pub struct EchoOff(());

impl EchoOff {
    /// Turns echo off, or returns `None` if it could not.
    pub fn new() -> Option<EchoOff> {
        stty("-echo").then_some(EchoOff(()))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        stty("echo");
    }
}

/// Runs `stty SETTING` on the process's stdin; true if it worked.
fn stty(setting: &str) -> bool {
    if !cfg!(unix) {
        return false;
    }
    std::process::Command::new("stty")
        .arg(setting)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Reads all of stdin.
pub fn read_all(stdin: &mut dyn BufRead) -> Result<String, Error> {
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|source| Error::Input {
            what: "error reading stdin".to_string(),
            source,
        })?;
    Ok(text)
}

/// Parses `key=value` strings (from repeatable flags such as `-options`) into
/// an ordered list of pairs.
pub fn parse_pairs(flag: &str, items: &[String]) -> Result<Vec<(String, String)>, Error> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Usage(format!(
                "invalid value {item:?} for -{flag}: expected key=value"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    fn parse(args: &[&str], stdin: &str) -> Result<Value, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut input = Cursor::new(stdin.as_bytes().to_vec());
        parse_kv_args(&args, &mut input).map(Value::Object)
    }

    #[test]
    fn plain_pairs() {
        assert_eq!(
            parse(&["message=Hello World", "n=-1", "eq=a=b", "empty="], "").unwrap(),
            json!({"message": "Hello World", "n": "-1", "eq": "a=b", "empty": ""})
        );
    }

    #[test]
    fn repeated_keys_become_lists() {
        assert_eq!(
            parse(&["k=1", "k=2", "k=3"], "").unwrap(),
            json!({"k": ["1", "2", "3"]})
        );
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cert.pem");
        std::fs::write(&file, "PEM DATA\n").unwrap();
        let json_file = dir.path().join("data.json");
        std::fs::write(&json_file, r#"{"a":1,"b":"x"}"#).unwrap();

        let arg = format!("cert=@{}", file.display());
        let whole = format!("@{}", json_file.display());
        assert_eq!(
            parse(&[arg.as_str(), whole.as_str(), "lit=\\@home"], "").unwrap(),
            json!({"cert": "PEM DATA\n", "a": 1, "b": "x", "lit": "@home"})
        );

        let missing = format!("x=@{}", dir.path().join("nope").display());
        let err = parse(&[missing.as_str()], "").unwrap_err();
        assert!(matches!(err, Error::Input { .. }), "{err}");
        assert!(
            err.to_string().starts_with("invalid key/value pair"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn stdin_json_object_and_stdin_value() {
        assert_eq!(
            parse(
                &["-", "extra=1"],
                r#"{"a": {"nested": true}, "extra": "0"}"#
            )
            .unwrap(),
            json!({"a": {"nested": true}, "extra": ["0", "1"]})
        );
        assert_eq!(
            parse(&["token=-"], "s3cret\n").unwrap(),
            json!({"token": "s3cret\n"})
        );
    }

    #[test]
    fn stdin_only_once_and_bad_input() {
        let err = parse(&["a=-", "b=-"], "x").unwrap_err();
        assert!(err.to_string().contains("stdin already consumed"), "{err}");
        let err = parse(&["-"], "[1,2]").unwrap_err();
        assert!(err.to_string().contains("JSON object"), "{err}");
        let err = parse(&["-"], "{nope").unwrap_err();
        assert!(err.to_string().contains("error decoding JSON"), "{err}");
        let err = parse(&["novalue"], "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid key/value pair \"novalue\": format must be key=value"
        );
    }

    #[test]
    fn pairs_and_lines() {
        assert_eq!(
            parse_pairs("options", &["version=2".into(), "a=b=c".into()]).unwrap(),
            vec![
                ("version".to_string(), "2".to_string()),
                ("a".to_string(), "b=c".to_string())
            ]
        );
        assert!(parse_pairs("options", &["novalue".into()]).is_err());
        let mut input = Cursor::new(b"key-one\r\nsecond\n".to_vec());
        assert_eq!(read_line(&mut input).unwrap(), "key-one");
        assert_eq!(read_line(&mut input).unwrap(), "second");
        assert_eq!(read_line(&mut input).unwrap(), "");
    }
}
