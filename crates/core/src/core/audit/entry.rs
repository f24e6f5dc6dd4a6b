//! The entries a device writes: one for the request, one for its response
//! (linked by the request id), in Vault's JSON shape, with every string of
//! request and response data, the client token and (unless
//! `hmac_accessor=false`) accessors replaced by the device's HMAC.

use super::Device;
use crate::core::Reply;
use crate::core::tokens::Resolved;
use crate::logical::{Operation, Request, RequestError};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// What an entry is about: the request as the handler sees it, its full
/// path and the caller's token.
pub struct Record<'a> {
    /// The request (path relative to its mount).
    pub request: &'a Request,
    /// The full path (`secret/x`).
    pub path: &'a str,
    /// The caller's token, when one was presented.
    pub token: Option<&'a Resolved>,
}

fn op(o: Operation) -> &'static str {
    match o {
        Operation::Read => "read",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::List => "list",
        Operation::Patch => "patch",
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Every string in `v` replaced by the device's hash (map keys kept).
pub(super) fn hash_strings(d: &Device, v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(d.hash(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| hash_strings(d, x)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), hash_strings(d, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Device {
    fn secret(&self, s: &str) -> Value {
        if s.is_empty() {
            Value::String(String::new())
        } else if self.log_raw {
            Value::String(s.to_string())
        } else {
            Value::String(self.hash(s))
        }
    }

    fn accessor(&self, s: &str) -> Value {
        if self.hmac_accessor && !s.is_empty() {
            self.secret(s)
        } else {
            Value::String(s.to_string())
        }
    }

    fn data(&self, v: &Value) -> Value {
        if self.log_raw {
            v.clone()
        } else {
            hash_strings(self, v)
        }
    }
}

impl Record<'_> {
    fn auth(&self, d: &Device) -> Value {
        match self.token {
            None => Value::Null,
            Some(t) => json!({
                "client_token": d.secret(t.id()),
                "accessor": d.accessor(&t.entry.accessor),
                "display_name": t.entry.display_name,
                "policies": t.entry.policies,
                "token_policies": t.entry.policies,
                "metadata": t.entry.meta,
                "entity_id": "",
                "token_type": "service",
            }),
        }
    }

    fn request_json(&self, d: &Device) -> Value {
        let r = self.request;
        json!({
            "id": r.id,
            "operation": op(r.operation),
            "mount_point": r.mount_point,
            "mount_type": r.mount_type,
            "mount_accessor": r.mount_accessor,
            "client_token": self.token.map(|t| d.secret(t.id())).unwrap_or(Value::String(String::new())),
            "client_token_accessor": self.token.map(|t| d.accessor(&t.entry.accessor)).unwrap_or(Value::String(String::new())),
            "namespace": {"id": "root"},
            "path": self.path,
            "data": if r.data.is_empty() { Value::Null } else { d.data(&Value::Object(r.data.clone())) },
        })
    }

    /// The request entry for device `d`.
    pub(super) fn request_entry(&self, d: &Device) -> Value {
        json!({
            "time": now(),
            "type": "request",
            "auth": self.auth(d),
            "request": self.request_json(d),
        })
    }

    /// The response entry for device `d`.
    pub(super) fn response_entry(
        &self,
        d: &Device,
        outcome: &Result<Reply, RequestError>,
    ) -> Value {
        let (response, error) = match outcome {
            Err(e) => (Value::Null, e.to_string()),
            Ok(Reply::Envelope {
                response,
                mount_type,
                ..
            }) => {
                let mut m = Map::new();
                m.insert("mount_type".into(), json!(mount_type));
                if let Some(data) = &response.data {
                    m.insert("data".into(), d.data(&Value::Object(data.clone())));
                }
                if let Some(auth) = &response.auth {
                    let mut a = serde_json::to_value(auth).unwrap_or(Value::Null);
                    if let Some(o) = a.as_object_mut() {
                        o.insert("client_token".into(), d.secret(&auth.client_token));
                        o.insert("accessor".into(), d.accessor(&auth.accessor));
                        if let Some(meta) = o.get("metadata").cloned() {
                            o.insert("metadata".into(), d.data(&meta));
                        }
                    }
                    m.insert("auth".into(), a);
                }
                if !response.lease_id.is_empty() {
                    m.insert("secret".into(), json!({"lease_id": response.lease_id}));
                }
                if !response.warnings.is_empty() {
                    m.insert("warnings".into(), json!(response.warnings));
                }
                (Value::Object(m), String::new())
            }
            Ok(Reply::Raw { status, body }) => (
                json!({"data": d.data(body), "http_status_code": status}),
                String::new(),
            ),
            Ok(Reply::Http {
                status,
                content_type,
                body,
            }) => (
                json!({"data": {
                    "http_status_code": status,
                    "http_content_type": content_type,
                    "http_raw_body": d.secret(&String::from_utf8_lossy(body)),
                }}),
                String::new(),
            ),
            Ok(Reply::NoContent) => (json!({}), String::new()),
            Ok(Reply::NotFound) => (json!({}), String::new()),
        };
        let mut entry = json!({
            "time": now(),
            "type": "response",
            "auth": self.auth(d),
            "request": self.request_json(d),
            "response": response,
        });
        if !error.is_empty()
            && let Some(o) = entry.as_object_mut()
        {
            o.insert("error".into(), Value::String(error));
        }
        entry
    }
}
