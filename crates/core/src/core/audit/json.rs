//! The JSON of a `json` device's entries, written by hand: the entry's
//! fixed keys are byte literals, a hash (`hmac-sha256:` and hex digits)
//! is copied without an escape scan, and any other string is scanned in
//! one pass that the compiler vectorizes, handed to `serde_json` only when
//! it holds a character to escape. The same JSON as the entry structs of
//! [`super::entry`] serialize to (a test compares them); `jsonx` and
//! `log_raw` data still go through `serde_json`.

use super::Device;
use serde_json::{Map, Value};

/// Whether `s` holds a byte JSON must escape (`"`, `\`, a control
/// character). No early exit, so that the loop is vectorized.
fn needs_escape(s: &[u8]) -> bool {
    s.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// `s` as a JSON string.
pub(super) fn str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// A hash (`hmac-sha256:` and hex digits) as a JSON string, as it is:
/// its characters need no escaping.
pub(super) fn hash(out: &mut Vec<u8>, h: &str) {
    debug_assert!(!needs_escape(h.as_bytes()));
    out.push(b'"');
    out.extend_from_slice(h.as_bytes());
    out.push(b'"');
}

/// A list of strings.
pub(super) fn strs(out: &mut Vec<u8>, list: &[String]) {
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        str(out, s);
    }
    out.push(b']');
}

/// `v` with every string replaced by `d`'s hash of it (map keys kept).
pub(super) fn hashed(out: &mut Vec<u8>, d: &Device, v: &Value) {
    match v {
        Value::String(s) => hash(out, d.hash_buf(s).as_str()),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                hashed(out, d, v);
            }
            out.push(b']');
        }
        Value::Object(m) => hashed_map(out, d, m),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // A number as serde_json writes it (it cannot fail into a `Vec`).
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
    }
}

/// An object with every string value hashed (keys kept).
pub(super) fn hashed_map(out: &mut Vec<u8>, d: &Device, m: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        str(out, k);
        out.push(b':');
        hashed(out, d, v);
    }
    out.push(b'}');
}

/// Request or response data as `d` writes it: hashed, or as is when the
/// device logs raw.
pub(super) fn data(out: &mut Vec<u8>, d: &Device, m: &Map<String, Value>) {
    if d.log_raw {
        // A JSON object always serializes into a `Vec`.
        let _ = serde_json::to_writer(&mut *out, m);
    } else {
        hashed_map(out, d, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings come out as serde_json writes them, escapes included.
    #[test]
    fn strings_match_serde_json() {
        for s in [
            "",
            "plain",
            "a\"quote",
            "back\\slash",
            "new\nline",
            "\u{1}\u{1f}",
            "ünïcödé ✓",
            "a long string of more than thirty-two bytes without escapes",
            "a long string of more than thirty-two bytes with one\tescape",
        ] {
            let mut out = vec![];
            str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(s).expect("json"),
                "{s:?}"
            );
        }
    }
}
