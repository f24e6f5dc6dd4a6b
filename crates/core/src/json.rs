//! The shape check every JSON request body passes before it is parsed.
//!
//! A parsed [`serde_json::Value`] costs 32 bytes per value plus the
//! container's spare capacity (and a map entry's key), so a body of tiny
//! values (`[0,0,0,...]`, 2 bytes each) would take about 16 to 40 times its
//! size once parsed. [`check_shape`] counts values in one pass over the
//! bytes, without allocating, and refuses bodies with more than
//! [`MAX_JSON_NODES`] values or nested deeper than [`MAX_JSON_DEPTH`]; so the
//! memory a parse can take is bounded by the body size (strings cost their
//! own length) plus a fixed amount (about 256 Ki values × ~100 bytes).
//!
//! No Vault request comes near the limits: a policy is one string, a kv
//! write of large values is a few strings, a transit batch of 10 000 items
//! is under 100 000 values. The check is not a validator: whatever it lets
//! through is parsed (and refused if malformed) by serde_json.

/// The most values (scalars, strings, arrays, objects, and object keys) a
/// request body may hold.
pub const MAX_JSON_NODES: usize = 1 << 18;

/// The deepest nesting of arrays and objects a request body may have.
pub const MAX_JSON_DEPTH: usize = 64;

/// Why a body was refused; the message names the limit and the remedy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// More than [`MAX_JSON_NODES`] values.
    #[error(
        "request body has more than {MAX_JSON_NODES} JSON values; send fewer values per request (large strings are fine)"
    )]
    TooManyValues,
    /// Nested deeper than [`MAX_JSON_DEPTH`].
    #[error("request body nests JSON arrays and objects deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
}

/// Counts the values of a JSON text (see the module documentation) and
/// refuses it when they exceed the limits.
pub fn check_shape(bytes: &[u8]) -> Result<(), ShapeError> {
    check_shape_with(bytes, MAX_JSON_NODES, MAX_JSON_DEPTH)
}

fn check_shape_with(bytes: &[u8], max_nodes: usize, max_depth: usize) -> Result<(), ShapeError> {
    let mut nodes = 0usize;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Inside a number or a literal (`true`, `false`, `null`): its first
    // byte counted it.
    let mut in_scalar = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                nodes += 1;
            }
            b'[' | b'{' => {
                in_scalar = false;
                nodes += 1;
                depth += 1;
                if depth > max_depth {
                    return Err(ShapeError::TooDeep);
                }
            }
            b']' | b'}' => {
                in_scalar = false;
                depth = depth.saturating_sub(1);
            }
            b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => in_scalar = false,
            _ => {
                if !in_scalar {
                    in_scalar = true;
                    nodes += 1;
                }
            }
        }
        if nodes > max_nodes {
            return Err(ShapeError::TooManyValues);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number of values serde_json builds (object keys included), the
    /// quantity the scan must never undercount.
    fn serde_count(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(serde_count).sum::<usize>(),
            serde_json::Value::Object(m) => {
                1 + m.values().map(|v| 1 + serde_count(v)).sum::<usize>()
            }
            _ => 1,
        }
    }

    fn count(text: &str) -> usize {
        (0..)
            .find(|&n| check_shape_with(text.as_bytes(), n, usize::MAX).is_ok())
            .unwrap()
    }

    #[test]
    fn counts_exactly_what_the_parser_builds() {
        for text in [
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"a":[0,0,0],"b":{"c":true,"d":null,"e":-1.5e3}}"#,
            r#"{"s":"with \"quotes\", [brackets] {braces} and \\ \\\" commas: 1,2,3"}"#,
            r#"[ 1 , 2 ,3,"x" , [ ] , { } ]"#,
            "{\"policy\":\"path \\\"secret/*\\\" {\\n  capabilities = [\\\"read\\\"]\\n}\"}",
        ] {
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(count(text), serde_count(&parsed), "{text}");
        }
    }

    #[test]
    fn refuses_many_tiny_values_and_deep_nesting() {
        let mut body = String::from("{\"a\":[0");
        body.push_str(&",0".repeat(MAX_JSON_NODES));
        body.push_str("]}");
        assert_eq!(check_shape(body.as_bytes()), Err(ShapeError::TooManyValues));
        let msg = ShapeError::TooManyValues.to_string();
        assert!(msg.contains(&MAX_JSON_NODES.to_string()), "{msg}");

        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        assert_eq!(check_shape(deep.as_bytes()), Err(ShapeError::TooDeep));
        let ok = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_JSON_DEPTH - 1),
            "]".repeat(MAX_JSON_DEPTH - 1)
        );
        assert_eq!(check_shape(ok.as_bytes()), Ok(()));
    }

    #[test]
    fn large_strings_are_cheap() {
        // A 4 MiB value (a big kv secret, a policy) is one value.
        let body = format!("{{\"value\":\"{}\"}}", "x".repeat(4 << 20));
        assert_eq!(check_shape(body.as_bytes()), Ok(()));
        assert_eq!(count(&body), 3);
        // Brackets and quotes inside strings are not structure.
        let tricky = format!("{{\"v\":\"{}\"}}", "[\\\"{,0".repeat(100_000));
        assert_eq!(check_shape(tricky.as_bytes()), Ok(()));
    }
}
