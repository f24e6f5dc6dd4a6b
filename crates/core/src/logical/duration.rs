//! Parsing Vault-style durations: `"1h"`, `"90m"`, `"1h30m"`, `"30"`, `30`.

use serde_json::Value;

/// Parses a duration given as a JSON number of seconds or a string with
/// units (`s`, `m`, `h`, `d`; Go's `1h30m` form too). `""`, `0` and
/// `"system"` mean "unset" and return 0.
pub fn parse_seconds(field: &str, value: &Value) -> Result<u64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{field}: expected a non-negative number of seconds, got {n}")),
        Value::String(s) => parse_str(field, s),
        other => Err(format!(
            "{field}: expected a duration like \"1h\" or a number of seconds, got {other}"
        )),
    }
}

/// Parses a duration string; see [`parse_seconds`].
pub fn parse_str(field: &str, s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() || s == "system" {
        return Ok(0);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    humantime::parse_duration(s)
        .map(|d| d.as_secs())
        .map_err(|e| format!("{field}: invalid duration {s:?} ({e}); use forms like \"30s\", \"15m\", \"1h30m\" or \"24h\""))
}

/// Formats seconds the way Vault's CLI prints TTLs (`768h`, `1h30m`, `45s`).
pub fn format(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_vault_forms() {
        assert_eq!(parse_seconds("ttl", &json!(30)).unwrap(), 30);
        assert_eq!(parse_seconds("ttl", &json!("30")).unwrap(), 30);
        assert_eq!(parse_seconds("ttl", &json!("1h")).unwrap(), 3600);
        assert_eq!(parse_seconds("ttl", &json!("1h30m")).unwrap(), 5400);
        assert_eq!(parse_seconds("ttl", &json!("2d")).unwrap(), 172800);
        assert_eq!(parse_seconds("ttl", &json!("system")).unwrap(), 0);
        let e = parse_seconds("ttl", &json!("soon")).unwrap_err();
        assert!(e.contains("ttl: invalid duration"), "{e}");
        assert!(parse_seconds("ttl", &json!(-1)).is_err());
        assert!(parse_seconds("ttl", &json!([1])).is_err());
        assert_eq!(format(2764800), "768h");
        assert_eq!(format(5430), "1h30m30s");
    }
}
