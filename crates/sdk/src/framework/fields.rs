//! Field schemas ([`Field`]) and the validated values a handler gets
//! ([`Fields`]).
//!
//! Values are accepted the way Vault's CLI sends them: `vault write x
//! length=12 enabled=true policies=a,b ttl=1h` sends every value as a
//! string, so every type also parses from a string:
//!
//! | type | JSON accepted | string form |
//! |---|---|---|
//! | [`FieldType::String`] | string, number, bool | as is |
//! | [`FieldType::Int`] | integer | `"12"` |
//! | [`FieldType::Bool`] | bool, 0/1 | `true`/`false`/`1`/`0`/`t`/`f` (any case) |
//! | [`FieldType::Duration`] | non-negative seconds | `"90"`, `"30s"`, `"1h30m"`, `"1.5h"`, `"7d"` (Go's syntax plus `d`); `""` is 0 |
//! | [`FieldType::StringList`] | array of strings/numbers | `"a,b,c"` (trimmed, empties dropped) |
//!
//! `null` means "not given". A value of the wrong type is a 400 naming the
//! field: `field ttl: expected a duration like "1h", got "soon"`.

use crate::error::Error;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    String,
    /// A signed 64-bit integer.
    Int,
    /// true or false.
    Bool,
    /// A duration (whole and fractional units, stored as [`Duration`]).
    Duration,
    /// A list of strings.
    StringList,
}

impl FieldType {
    /// The name used in help text.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::Duration => "duration",
            FieldType::StringList => "list of strings",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A [`FieldType::String`] value.
    String(String),
    /// A [`FieldType::Int`] value.
    Int(i64),
    /// A [`FieldType::Bool`] value.
    Bool(bool),
    /// A [`FieldType::Duration`] value.
    Duration(Duration),
    /// A [`FieldType::StringList`] value.
    StringList(Vec<String>),
}

impl FieldValue {
    /// The value as JSON (durations as whole seconds).
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::String(s) => Value::from(s.as_str()),
            FieldValue::Int(i) => Value::from(*i),
            FieldValue::Bool(b) => Value::from(*b),
            FieldValue::Duration(d) => Value::from(d.as_secs()),
            FieldValue::StringList(l) => Value::from(l.clone()),
        }
    }
}

/// The schema of one field of a path.
#[derive(Debug, Clone)]
pub struct Field {
    pub(crate) name: String,
    pub(crate) ty: FieldType,
    pub(crate) required: bool,
    pub(crate) default: Option<Value>,
    pub(crate) description: String,
    pub(crate) allowed: Vec<String>,
    pub(crate) range: Option<RangeInclusive<i64>>,
    pub(crate) sensitive: bool,
}

impl Field {
    /// A field named `name` of type `ty`: optional, no default.
    pub fn new(name: impl Into<String>, ty: FieldType) -> Self {
        Field {
            name: name.into(),
            ty,
            required: false,
            default: None,
            description: String::new(),
            allowed: Vec::new(),
            range: None,
            sensitive: false,
        }
    }

    /// A [`FieldType::String`] field.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::String)
    }

    /// A [`FieldType::Int`] field.
    pub fn int(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Int)
    }

    /// A [`FieldType::Bool`] field.
    pub fn bool(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Bool)
    }

    /// A [`FieldType::Duration`] field.
    pub fn duration(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::Duration)
    }

    /// A [`FieldType::StringList`] field.
    pub fn string_list(name: impl Into<String>) -> Self {
        Self::new(name, FieldType::StringList)
    }

    /// The field must be given on create and update (reads, lists and
    /// deletes do not check it). For "required on create only", check in the
    /// handler with [`Fields::require_str`].
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The value used when the request does not give one. Checked against
    /// the type when the path is built.
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Help text for the field.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Restricts a string (or each element of a list) to these values.
    pub fn one_of<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed = values.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts an int to this inclusive range.
    pub fn range(mut self, range: RangeInclusive<i64>) -> Self {
        self.range = Some(range);
        self
    }

    /// Never echo the value in error messages (passwords, keys).
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field's type.
    pub fn field_type(&self) -> FieldType {
        self.ty
    }

    /// How a bad value is shown in an error.
    fn shown(&self, value: &Value) -> String {
        if self.sensitive {
            return match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            }
            .into();
        }
        let mut s = value.to_string();
        if s.len() > 80 {
            let mut cut = 77;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
        }
        s
    }

    fn expected(&self, what: &str, value: &Value) -> String {
        format!(
            "field {}: expected {what}, got {}",
            self.name,
            self.shown(value)
        )
    }

    /// Parses and checks one value of this field.
    pub(crate) fn parse(&self, value: &Value) -> Result<FieldValue, String> {
        let parsed = match self.ty {
            FieldType::String => match value {
                Value::String(s) => FieldValue::String(s.clone()),
                Value::Number(n) => FieldValue::String(n.to_string()),
                Value::Bool(b) => FieldValue::String(b.to_string()),
                other => return Err(self.expected("a string", other)),
            },
            FieldType::Int => {
                let n = match value {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                            .map(|f| f as i64)
                    }),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                FieldValue::Int(n.ok_or_else(|| self.expected("an integer", value))?)
            }
            FieldType::Bool => {
                let b = match value {
                    Value::Bool(b) => Some(*b),
                    Value::Number(n) => match n.as_u64() {
                        Some(0) => Some(false),
                        Some(1) => Some(true),
                        _ => None,
                    },
                    Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                        "true" | "t" | "1" => Some(true),
                        "false" | "f" | "0" => Some(false),
                        _ => None,
                    },
                    _ => None,
                };
                FieldValue::Bool(
                    b.ok_or_else(|| self.expected("a boolean (true or false)", value))?,
                )
            }
            FieldType::Duration => {
                let d = match value {
                    Value::Number(n) => n.as_u64().map(Duration::from_secs),
                    Value::String(s) => parse_duration(s),
                    _ => None,
                };
                FieldValue::Duration(
                    d.ok_or_else(|| self.expected("a duration like \"1h\"", value))?,
                )
            }
            FieldType::StringList => {
                let what = "a list of strings or a comma-separated string";
                let list = match value {
                    Value::String(s) => Some(
                        s.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect(),
                    ),
                    Value::Array(items) => items
                        .iter()
                        .map(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .collect::<Option<Vec<String>>>(),
                    _ => None,
                };
                FieldValue::StringList(list.ok_or_else(|| self.expected(what, value))?)
            }
        };
        self.check_constraints(&parsed)?;
        Ok(parsed)
    }

    fn check_constraints(&self, value: &FieldValue) -> Result<(), String> {
        let one_of = |s: &str| -> Result<(), String> {
            if self.allowed.is_empty() || self.allowed.iter().any(|a| a == s) {
                return Ok(());
            }
            let allowed: Vec<String> = self.allowed.iter().map(|a| format!("{a:?}")).collect();
            let got = if self.sensitive {
                "another value".to_string()
            } else {
                format!("{s:?}")
            };
            Err(format!(
                "field {}: expected one of {}, got {got}",
                self.name,
                allowed.join(", ")
            ))
        };
        match value {
            FieldValue::String(s) => one_of(s),
            FieldValue::StringList(l) => l.iter().try_for_each(|s| one_of(s)),
            FieldValue::Int(n) => match &self.range {
                Some(r) if !r.contains(n) => Err(format!(
                    "field {}: must be between {} and {}, got {n}",
                    self.name,
                    r.start(),
                    r.end()
                )),
                _ => Ok(()),
            },
            FieldValue::Bool(_) | FieldValue::Duration(_) => Ok(()),
        }
    }
}

/// Parses a duration: plain seconds (`"90"`), or Go's syntax (`"1h30m"`,
/// `"1.5h"`, `"300ms"`) plus `d` for days. `""` is zero. Negative durations
/// and unknown units are `None`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Duration::ZERO);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok().map(Duration::from_secs);
    }
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return None,
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if frac_part.contains('.') || frac_part.len() > 18 {
            return None;
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut nanos = int.checked_mul(unit_nanos)?;
        if !frac_part.is_empty() {
            let frac: u128 = frac_part.parse().ok()?;
            let scale = 10u128.pow(frac_part.len() as u32);
            nanos = nanos.checked_add(frac.checked_mul(unit_nanos)? / scale)?;
        }
        total_nanos = total_nanos.checked_add(nanos)?;
        rest = after;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).ok()?;
    let sub = (total_nanos % 1_000_000_000) as u32;
    Some(Duration::new(secs, sub))
}

/// The validated fields of one request: path captures and body values,
/// checked against the path's schema, with defaults filled in.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    given: HashMap<String, FieldValue>,
    defaults: HashMap<String, FieldValue>,
    raw: Map<String, Value>,
}

impl Fields {
    /// Validates `data` and `captures` against `schema`. Captures win over
    /// body values of the same name. With `check_required`, missing required
    /// fields are errors. Returns the fields and the body keys the schema
    /// does not know (sorted).
    pub(crate) fn parse(
        schema: &[Field],
        captures: &[(String, String)],
        data: &Map<String, Value>,
        check_required: bool,
    ) -> Result<(Fields, Vec<String>), Error> {
        let mut given = HashMap::new();
        let mut defaults = HashMap::new();
        for field in schema {
            let captured = captures
                .iter()
                .find(|(name, _)| *name == field.name)
                .map(|(_, v)| Value::String(v.clone()));
            let value = captured
                .as_ref()
                .or_else(|| data.get(&field.name).filter(|v| !v.is_null()));
            match value {
                Some(value) => {
                    let parsed = field.parse(value).map_err(Error::InvalidRequest)?;
                    given.insert(field.name.clone(), parsed);
                }
                None => {
                    if check_required && field.required {
                        return Err(Error::invalid(format!(
                            "missing required field {}",
                            field.name
                        )));
                    }
                    if let Some(default) = &field.default {
                        let parsed = field.parse(default).map_err(|e| {
                            Error::internal(format!("invalid default in the plugin: {e}"))
                        })?;
                        defaults.insert(field.name.clone(), parsed);
                    }
                }
            }
        }
        let mut unknown: Vec<String> = data
            .keys()
            .filter(|k| !schema.iter().any(|f| &f.name == *k))
            .cloned()
            .collect();
        unknown.sort();
        Ok((
            Fields {
                given,
                defaults,
                raw: data.clone(),
            },
            unknown,
        ))
    }

    /// Fields from a plain map, for unit tests of handlers: every entry is
    /// taken as given, without a schema.
    pub fn from_values<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = (S, FieldValue)>,
        S: Into<String>,
    {
        Fields {
            given: values.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ..Default::default()
        }
    }

    /// The value given in the request, or the default.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.given.get(name).or_else(|| self.defaults.get(name))
    }

    /// The value only if the request gave it (Vault's `GetOk`): use it on
    /// update to change only what was sent.
    pub fn get_given(&self, name: &str) -> Option<&FieldValue> {
        self.given.get(name)
    }

    /// Whether the request gave the field (defaults do not count).
    pub fn is_set(&self, name: &str) -> bool {
        self.given.contains_key(name)
    }

    /// A string field (given or default).
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(FieldValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// A string field the request must give: a 400 naming the field if not.
    pub fn require_str(&self, name: &str) -> Result<&str, Error> {
        self.str(name)
            .ok_or_else(|| Error::invalid(format!("missing required field {name}")))
    }

    /// An int field (given or default).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(FieldValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A bool field (given or default).
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(FieldValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A duration field (given or default).
    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.get(name) {
            Some(FieldValue::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    /// A list field (given or default).
    pub fn string_list(&self, name: &str) -> Option<&[String]> {
        match self.get(name) {
            Some(FieldValue::StringList(l)) => Some(l),
            _ => None,
        }
    }

    /// The request body (or query) as received, including unknown keys.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs_f64());
        assert_eq!(secs(""), Some(0.0));
        assert_eq!(secs("90"), Some(90.0));
        assert_eq!(secs("30s"), Some(30.0));
        assert_eq!(secs("1h30m"), Some(5400.0));
        assert_eq!(secs("1.5h"), Some(5400.0));
        assert_eq!(secs("7d"), Some(604800.0));
        assert_eq!(secs("250ms"), Some(0.25));
        assert_eq!(secs(" 2m "), Some(120.0));
        for bad in [
            "soon",
            "1x",
            "-1h",
            "h",
            "1h-",
            ".",
            "1..5h",
            "99999999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_cli_strings() {
        assert_eq!(Field::int("n").parse(&json!("12")), Ok(FieldValue::Int(12)));
        assert_eq!(Field::int("n").parse(&json!(12.0)), Ok(FieldValue::Int(12)));
        assert_eq!(
            Field::bool("b").parse(&json!("TRUE")),
            Ok(FieldValue::Bool(true))
        );
        assert_eq!(
            Field::bool("b").parse(&json!(0)),
            Ok(FieldValue::Bool(false))
        );
        assert_eq!(
            Field::string_list("p").parse(&json!(" a, b,,c ")),
            Ok(FieldValue::StringList(vec![
                "a".into(),
                "b".into(),
                "c".into()
            ]))
        );
        assert_eq!(
            Field::string_list("p").parse(&json!(["a", 1])),
            Ok(FieldValue::StringList(vec!["a".into(), "1".into()]))
        );
        assert_eq!(
            Field::string("s").parse(&json!(5)),
            Ok(FieldValue::String("5".into()))
        );
        assert_eq!(
            Field::duration("ttl").parse(&json!(60)),
            Ok(FieldValue::Duration(Duration::from_secs(60)))
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            Field::duration("ttl").parse(&json!("soon")).unwrap_err(),
            "field ttl: expected a duration like \"1h\", got \"soon\""
        );
        assert_eq!(
            Field::int("length").parse(&json!("abc")).unwrap_err(),
            "field length: expected an integer, got \"abc\""
        );
        assert_eq!(
            Field::int("length")
                .range(8..=256)
                .parse(&json!(4))
                .unwrap_err(),
            "field length: must be between 8 and 256, got 4"
        );
        assert_eq!(
            Field::string("charset")
                .one_of(["hex", "alphanumeric"])
                .parse(&json!("emoji"))
                .unwrap_err(),
            "field charset: expected one of \"hex\", \"alphanumeric\", got \"emoji\""
        );
        assert_eq!(
            Field::bool("b").parse(&json!("maybe")).unwrap_err(),
            "field b: expected a boolean (true or false), got \"maybe\""
        );
        assert_eq!(
            Field::string_list("p").parse(&json!({"a": 1})).unwrap_err(),
            "field p: expected a list of strings or a comma-separated string, got {\"a\":1}"
        );
        let secret = Field::string("password").sensitive();
        assert_eq!(
            secret.parse(&json!(["hunter2"])).unwrap_err(),
            "field password: expected a string, got a list"
        );
        let long = "x".repeat(200);
        let e = Field::int("n").parse(&json!(long)).unwrap_err();
        assert!(e.len() < 120 && e.ends_with("..."), "{e}");
    }

    #[test]
    fn parse_fills_defaults_and_reports_unknown_keys() {
        let schema = vec![
            Field::string("name"),
            Field::int("length").default(24),
            Field::string("password").required(),
        ];
        let data = json!({"length": "10", "extra": 1, "password": "p"});
        let caps = vec![("name".to_string(), "web".to_string())];
        let (f, unknown) = Fields::parse(&schema, &caps, data.as_object().unwrap(), true).unwrap();
        assert_eq!(f.str("name"), Some("web"));
        assert_eq!(f.int("length"), Some(10));
        assert!(f.is_set("length"));
        assert_eq!(unknown, vec!["extra"]);

        let (f, _) = Fields::parse(&schema, &caps, &Map::new(), false).unwrap();
        assert_eq!(f.int("length"), Some(24));
        assert!(!f.is_set("length"));
        assert!(f.get_given("length").is_none());
        let e = f.require_str("password").unwrap_err();
        assert_eq!(e.to_string(), "missing required field password");

        let e = Fields::parse(&schema, &caps, &Map::new(), true).unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(m) if m == "missing required field password"));
    }

    #[test]
    fn captures_win_over_body_values() {
        let schema = vec![Field::string("name")];
        let data = json!({"name": "body"});
        let caps = vec![("name".to_string(), "path".to_string())];
        let (f, _) = Fields::parse(&schema, &caps, data.as_object().unwrap(), true).unwrap();
        assert_eq!(f.str("name"), Some("path"));
    }
}
