//! How an entry is written: `json` (one object per line) or `jsonx`
//! (IBM's JSONx XML form of the same JSON, as Vault's `format=jsonx`).

use crate::logical::RequestError;
use serde::Serialize;
use serde_json::Value;

/// An audit device's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, one entry per line.
    Json,
    /// JSONx (XML), one document per line.
    Jsonx,
}

impl Format {
    /// `json` or `jsonx`.
    pub fn parse(s: &str) -> Result<Format, RequestError> {
        match s {
            "" | "json" => Ok(Format::Json),
            "jsonx" => Ok(Format::Jsonx),
            other => Err(RequestError::invalid(format!(
                "options.format {other:?}: use \"json\" or \"jsonx\""
            ))),
        }
    }

    /// Appends one entry (no newline) to `out`; an entry that cannot be
    /// serialized is an error and appends nothing.
    pub fn write<T: Serialize>(self, entry: &T, out: &mut Vec<u8>) -> Result<(), String> {
        let start = out.len();
        let result = match self {
            Format::Json => serde_json::to_writer(&mut *out, entry).map_err(|e| e.to_string()),
            Format::Jsonx => serde_json::to_value(entry)
                .map(|v| out.extend(render_jsonx(&v)))
                .map_err(|e| e.to_string()),
        };
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// The JSONx document of `v`.
fn render_jsonx(v: &Value) -> Vec<u8> {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    jsonx(v, None, true, &mut out);
    out.into_bytes()
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if (c as u32) < 0x20 => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
}

fn jsonx(v: &Value, name: Option<&str>, root: bool, out: &mut String) {
    let (tag, inner): (&str, Option<String>) = match v {
        Value::Null => ("null", None),
        Value::Bool(b) => ("boolean", Some(b.to_string())),
        Value::Number(n) => ("number", Some(n.to_string())),
        Value::String(s) => ("string", Some(s.clone())),
        Value::Array(_) => ("array", None),
        Value::Object(_) => ("object", None),
    };
    out.push_str("<json:");
    out.push_str(tag);
    if root {
        out.push_str(r#" xmlns:json="http://www.ibm.com/xmlns/prod/2009/jsonx""#);
    }
    if let Some(n) = name {
        out.push_str(" name=\"");
        escape(n, out);
        out.push('"');
    }
    out.push('>');
    match v {
        Value::Array(a) => a.iter().for_each(|x| jsonx(x, None, false, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| jsonx(x, Some(k), false, out)),
        _ => {
            if let Some(s) = inner {
                escape(&s, out);
            }
        }
    }
    out.push_str("</json:");
    out.push_str(tag);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jsonx_writes_ibms_form_and_escapes() {
        let v = json!({"a": "x<&>\"y", "n": 1, "b": true, "l": [null]});
        let mut out = vec![];
        Format::Jsonx.write(&v, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            r#"<?xml version="1.0" encoding="UTF-8"?><json:object xmlns:json="http://www.ibm.com/xmlns/prod/2009/jsonx"><json:string name="a">x&lt;&amp;&gt;&quot;y</json:string><json:boolean name="b">true</json:boolean><json:array name="l"><json:null></json:null></json:array><json:number name="n">1</json:number></json:object>"#
        );
        assert!(Format::parse("xml").is_err());
    }
}
