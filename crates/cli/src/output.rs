//! Rendering results the way the Vault CLI does: aligned columns, `Key`/`Value`
//! tables for secrets, Go's `%v` for JSON values, TTL fields as durations,
//! pretty JSON for `-format=json` and YAML for `-format=yaml`.
//!
//! Everything here is pure string building; the commands decide where the
//! text goes.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::client::Secret;
use crate::duration::human_duration_secs;
use crate::error::Error;

/// Space between columns.
const GLUE: &str = "    ";
/// What an empty cell prints as.
const EMPTY_CELL: &str = "n/a";
/// Width that long messages are wrapped to.
pub const MAX_LINE_LENGTH: usize = 78;

/// Lays rows out in columns: every column but the last is padded to its
/// widest cell, columns are separated by four spaces, cells are trimmed, and
/// empty cells print as `n/a`. Lines end with `\n`.
pub fn columns(rows: &[Vec<String>]) -> String {
    let cleaned: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| {
                    let t = cell.trim();
                    if t.is_empty() {
                        EMPTY_CELL.to_string()
                    } else {
                        t.to_string()
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &cleaned {
        for (i, cell) in row.iter().enumerate() {
            let w = display_width(cell);
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in &cleaned {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(display_width(cell));
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
                line.push_str(GLUE);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// [`columns`] with a header row and a row of dashes under each header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut all = Vec::with_capacity(rows.len() + 2);
    all.push(header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    all.push(
        header
            .iter()
            .map(|h| "-".repeat(display_width(h.trim())))
            .collect(),
    );
    all.extend(rows.iter().cloned());
    columns(&all)
}

/// A two-column `Key`/`Value` table.
pub fn key_value_table(rows: &[(String, String)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    table(&["Key", "Value"], &rows)
}

fn display_width(s: &str) -> usize {
    s.chars().count()
}

/// Formats a JSON value like Go's `%v` formats the `interface{}` Vault's
/// client decodes it into: strings bare, `<nil>` for null, `[a b]` for
/// arrays, `map[k:v]` (sorted keys) for objects.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", map.get(*k).map(go_value).unwrap_or_default()))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%q` of a string slice: `["default" "root"]`.
pub fn go_quoted_list(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\"")))
        .collect();
    format!("[{}]", parts.join(" "))
}

/// Whether Vault prints a field of this name as a duration.
pub fn looks_like_duration(key: &str) -> bool {
    key == "period"
        || key.ends_with("_period")
        || key == "ttl"
        || key.ends_with("_ttl")
        || key == "duration"
        || key.ends_with("_duration")
        || key == "lease_max"
        || key == "ttl_max"
}

/// One value of a data map as Vault's table prints it: integer TTL-like
/// fields as durations, everything else with [`go_value`].
pub fn data_cell(key: &str, v: &Value) -> String {
    if looks_like_duration(key)
        && let Some(secs) = v.as_i64()
    {
        return human_duration_secs(secs);
    }
    go_value(v)
}

/// The rows of a data map, sorted by key.
pub fn data_rows(data: &Map<String, Value>) -> Vec<(String, String)> {
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    keys.into_iter()
        .filter_map(|k| data.get(k).map(|v| (k.clone(), data_cell(k, v))))
        .collect()
}

/// The `Key`/`Value` rows Vault prints for a secret: lease fields when there
/// is a lease, token fields when there is an `auth` block, wrapping fields,
/// then the data sorted by key.
pub fn secret_rows(secret: &Secret) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut push = |k: &str, v: String| rows.push((k.to_string(), v));
    if secret.lease_duration > 0 {
        if secret.lease_id.is_empty() {
            push(
                "refresh_interval",
                human_duration_secs(secret.lease_duration),
            );
        } else {
            push("lease_id", secret.lease_id.clone());
            push("lease_duration", human_duration_secs(secret.lease_duration));
            push("lease_renewable", secret.renewable.to_string());
        }
    }
    if let Some(auth) = &secret.auth {
        push("token", auth.client_token.clone());
        push("token_accessor", auth.accessor.clone());
        push(
            "token_duration",
            if auth.lease_duration == 0 {
                "∞".to_string()
            } else {
                human_duration_secs(auth.lease_duration)
            },
        );
        push("token_renewable", auth.renewable.to_string());
        push("token_policies", go_quoted_list(&auth.token_policies));
        push("identity_policies", go_quoted_list(&auth.identity_policies));
        push("policies", go_quoted_list(&auth.policies));
        if let Some(meta) = &auth.metadata {
            let mut keys: Vec<&String> = meta.keys().collect();
            keys.sort();
            for k in keys {
                if let Some(v) = meta.get(k) {
                    push(&format!("token_meta_{k}"), go_value(v));
                }
            }
        }
    }
    if let Some(wrap) = &secret.wrap_info {
        push("wrapping_token:", wrap.token.clone());
        push("wrapping_accessor:", wrap.accessor.clone());
        push("wrapping_token_ttl:", human_duration_secs(wrap.ttl));
        push("wrapping_token_creation_time:", wrap.creation_time.clone());
        push("wrapping_token_creation_path:", wrap.creation_path.clone());
        if !wrap.wrapped_accessor.is_empty() {
            push("wrapped_accessor:", wrap.wrapped_accessor.clone());
        }
    }
    if let Some(data) = &secret.data {
        rows.extend(data_rows(data));
    }
    rows
}

/// The table for a secret, or an empty string when there is nothing to show
/// (Vault prints nothing then).
pub fn secret_table(secret: &Secret) -> String {
    let rows = secret_rows(secret);
    if rows.is_empty() {
        String::new()
    } else {
        key_value_table(&rows)
    }
}

/// The warnings block Vault prints (to stderr) before a table, or an empty
/// string when there are no warnings.
pub fn warnings_block(secret: &Secret) -> String {
    match &secret.warnings {
        Some(warnings) if !warnings.is_empty() => {
            let mut out =
                String::from("WARNING! The following warnings were returned from Lockbox:\n\n");
            for w in warnings {
                out.push_str(&wrap_with_padding(&format!("* {w}"), 2));
                out.push_str("\n\n");
            }
            out
        }
        _ => String::new(),
    }
}

/// Pretty JSON with two-space indentation and a trailing newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Error::Unexpected(format!("Could not format the output as JSON: {e}")))
}

/// YAML the way Vault prints it (`-format=yaml`): the same document as the
/// JSON output, with every map's keys sorted, block style, sequences not
/// indented under their key, and strings a YAML 1.1 reader would take for
/// something else (`"n"`, `"yes"`, `"1"`, timestamps) double-quoted.
pub fn yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let value = serde_json::to_value(value)
        .map_err(|e| Error::Unexpected(format!("Could not format the output as YAML: {e}")))?;
    serde_saphyr::to_string(&SortedKeys(&value))
        .map(|mut s| {
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        })
        .map_err(|e| Error::Unexpected(format!("Could not format the output as YAML: {e}")))
}

/// Serializes a JSON value with the keys of every map in sorted order (as
/// Go's YAML encoder writes them), whatever order the map keeps.
struct SortedKeys<'a>(&'a Value);

impl Serialize for SortedKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for key in keys {
                    if let Some(v) = map.get(key) {
                        out.serialize_entry(key, &SortedKeys(v))?;
                    }
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&SortedKeys(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Wraps text at [`MAX_LINE_LENGTH`] on word boundaries. Existing line breaks
/// are kept.
pub fn wrap(text: &str) -> String {
    wrap_with_padding(text, 0)
}

/// Wraps text at [`MAX_LINE_LENGTH`] minus `pad`, and indents every line by
/// `pad` spaces.
pub fn wrap_with_padding(text: &str, pad: usize) -> String {
    let limit = MAX_LINE_LENGTH.saturating_sub(pad).max(1);
    let indent = " ".repeat(pad);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            if !line.is_empty() && display_width(&line) + 1 + display_width(word) > limit {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| {
            if l.is_empty() {
                l
            } else {
                format!("{indent}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::SecretAuth;
    use serde_json::json;

    #[test]
    fn key_value_table_matches_the_seed_walkthrough() {
        let rows = vec![("message".to_string(), "Hello World".to_string())];
        assert_eq!(
            key_value_table(&rows),
            "Key        Value\n---        -----\nmessage    Hello World\n"
        );
    }

    #[test]
    fn mounts_table_matches_the_seed_walkthrough() {
        let rows = vec![
            vec![
                "cubbyhole/".into(),
                "cubbyhole".into(),
                "cubbyhole_4b92ce62".into(),
                "per-token private secret storage".into(),
            ],
            vec![
                "identity/".into(),
                "identity".into(),
                "identity_7e2789e4".into(),
                "identity store".into(),
            ],
            vec![
                "mock/".into(),
                "mock".into(),
                "mock_4947b778".into(),
                "".into(),
            ],
        ];
        let expected = "\
Path          Type         Accessor              Description
----          ----         --------              -----------
cubbyhole/    cubbyhole    cubbyhole_4b92ce62    per-token private secret storage
identity/     identity     identity_7e2789e4     identity store
mock/         mock         mock_4947b778         n/a
";
        assert_eq!(
            table(&["Path", "Type", "Accessor", "Description"], &rows),
            expected
        );
    }

    #[test]
    fn columns_trim_cells_and_do_not_pad_the_last_column() {
        let rows = vec![
            vec!["a".into(), " x ".into()],
            vec!["longer".into(), "".into()],
        ];
        assert_eq!(columns(&rows), "a         x\nlonger    n/a\n");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let rows = vec![vec!["∞".into(), "a".into()], vec!["ab".into(), "b".into()]];
        assert_eq!(columns(&rows), "∞     a\nab    b\n");
    }

    #[test]
    fn go_formatting_of_values() {
        assert_eq!(go_value(&json!(null)), "<nil>");
        assert_eq!(go_value(&json!("s")), "s");
        assert_eq!(go_value(&json!(12)), "12");
        assert_eq!(go_value(&json!(true)), "true");
        assert_eq!(go_value(&json!(["a", 1])), "[a 1]");
        assert_eq!(
            go_value(&json!({"version": "2", "a": null})),
            "map[a:<nil> version:2]"
        );
        assert_eq!(
            go_quoted_list(&["default".into(), "ro\"ot".into()]),
            r#"["default" "ro\"ot"]"#
        );
        assert_eq!(go_quoted_list(&[]), "[]");
    }

    #[test]
    fn ttl_fields_print_as_durations() {
        let data = json!({"ttl": 3600, "max_ttl": "1h", "name": "x", "period": 0});
        let rows = data_rows(data.as_object().unwrap());
        assert_eq!(
            rows,
            vec![
                ("max_ttl".to_string(), "1h".to_string()),
                ("name".to_string(), "x".to_string()),
                ("period".to_string(), "0s".to_string()),
                ("ttl".to_string(), "1h".to_string()),
            ]
        );
    }

    #[test]
    fn secret_with_lease_and_auth() {
        let secret = Secret {
            lease_duration: 2_764_800,
            data: Some(json!({"b": "2", "a": "1"}).as_object().unwrap().clone()),
            ..Default::default()
        };
        assert_eq!(
            secret_table(&secret),
            "Key                 Value\n---                 -----\nrefresh_interval    768h\na                   1\nb                   2\n"
        );

        let secret = Secret {
            auth: Some(SecretAuth {
                client_token: "hvs.t".into(),
                accessor: "acc".into(),
                policies: vec!["root".into()],
                token_policies: vec!["root".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let table = secret_table(&secret);
        assert!(table.contains("token_duration       ∞\n"), "{table}");
        assert!(
            table.contains("token_policies       [\"root\"]\n"),
            "{table}"
        );
        assert!(table.contains("identity_policies    []\n"), "{table}");
    }

    #[test]
    fn empty_secret_prints_nothing() {
        assert_eq!(secret_table(&Secret::default()), "");
    }

    #[test]
    fn yaml_like_vault() {
        // `vault read -format=yaml` of a kv secret (Vault 1.x / OpenBao 2.x).
        let secret: Secret = serde_json::from_value(json!({
            "request_id": "r1", "lease_id": "", "lease_duration": 2764800,
            "renewable": false, "data": {"n": "1", "a": "b"}, "warnings": null
        }))
        .unwrap();
        assert_eq!(
            yaml(&secret).unwrap(),
            "data:\n  a: b\n  \"n\": \"1\"\nlease_duration: 2764800\nlease_id: \"\"\n\
             renewable: false\nrequest_id: r1\nwarnings: null\n"
        );
        assert_eq!(
            yaml(&json!({"policies": ["root"], "meta": null, "m": {}, "l": [], "t": 0})).unwrap(),
            "l: []\nm: {}\nmeta: null\npolicies:\n- root\nt: 0\n"
        );
        assert_eq!(yaml(&json!("b")).unwrap(), "b\n");
        assert_eq!(
            yaml(&json!({"policy": "path \"x\" {\n}\n"})).unwrap(),
            "policy: |\n  path \"x\" {\n  }\n"
        );
    }

    #[test]
    fn wrapping() {
        let text = "Success! You are now authenticated. The token information displayed below is already stored in the token helper.";
        let wrapped = wrap(text);
        assert!(
            wrapped
                .lines()
                .all(|l| l.chars().count() <= MAX_LINE_LENGTH)
        );
        assert_eq!(wrapped.replace('\n', " "), text);
        assert_eq!(wrap_with_padding("* short", 2), "  * short");
    }
}
