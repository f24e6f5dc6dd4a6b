//! Typed reads of the JSON fields of `sys/` request bodies, shared by the
//! system backend's endpoints.

use crate::logical::RequestError;
use serde_json::{Map, Value};

/// A string field (`None` when absent or not a string).
pub(super) fn str_field<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// An optional positive integer, given as a number or a string.
pub(super) fn u32_field(data: &Map<String, Value>, key: &str) -> Result<Option<u32>, RequestError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                RequestError::invalid(format!("{key}: expected a positive integer, got {n}"))
            }),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            RequestError::invalid(format!("{key}: expected a positive integer, got {s:?}"))
        }),
        Some(other) => Err(RequestError::invalid(format!(
            "{key}: expected a positive integer, got {other}"
        ))),
    }
}

/// A boolean, given as one or as `"true"`/`"false"`; absent is false.
pub(super) fn bool_field(data: &Map<String, Value>, key: &str) -> Result<bool, RequestError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => s.parse().map_err(|_| {
            RequestError::invalid(format!("{key}: expected true or false, got {s:?}"))
        }),
        Some(other) => Err(RequestError::invalid(format!(
            "{key}: expected a boolean, got {other}"
        ))),
    }
}

/// A list of strings, given as a JSON array or a comma-separated string.
pub(super) fn string_list(field: &str, v: Option<&Value>) -> Result<Vec<String>, RequestError> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    RequestError::invalid(format!("{field}: expected a list of strings"))
                })
            })
            .collect(),
        Some(Value::String(s)) if s.is_empty() => Ok(vec![]),
        Some(Value::String(s)) => Ok(s.split(',').map(|x| x.trim().to_string()).collect()),
        Some(_) => Err(RequestError::invalid(format!(
            "{field}: expected a list of strings"
        ))),
    }
}
