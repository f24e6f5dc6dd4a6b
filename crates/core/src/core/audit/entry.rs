//! The entries a device writes: one for the request, one for its response
//! (linked by the request id), in Vault's JSON shape, with every string of
//! request and response data, the client token and (unless
//! `hmac_accessor=false`) accessors replaced by the device's HMAC.
//!
//! Entries are serialized straight from the request and the reply they
//! borrow (no intermediate JSON tree): strings are hashed as they are
//! written, into a stack buffer. A `json` device's entries are written by
//! hand ([`super::json`]); the structs here are their reference (a test
//! compares both) and serialize the `jsonx` entries and rare replies. The caller's token and accessor appear
//! in both entries of a request, twice each: they are hashed once per
//! request and device ([`Record`] keeps them).

use super::{Device, Format, json};
use crate::core::Reply;
use crate::core::tokens::Resolved;
use crate::logical::{Operation, Request, RequestError};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// What an entry is about: the request as the handler sees it, its full
/// path and the caller's token.
pub struct Record<'a> {
    /// The request (path relative to its mount).
    pub request: &'a Request,
    /// The full path (`secret/x`).
    pub path: &'a str,
    /// The caller's token, when one was presented.
    pub token: Option<&'a Resolved>,
    /// When the request was received (its entry's time, also when the
    /// entry is written with the response's).
    time: Timestamp,
    /// The token and accessor as each device writes them, by device
    /// ([`Device::id`]): computed at the first entry, reused after.
    idents: Mutex<Vec<(u64, Ident)>>,
    /// The `"auth"` and `"request"` members of a JSON device's entries, by
    /// device: the same in the request and the response entry, so
    /// rendered (and the request data hashed) once per request and device.
    heads: Mutex<Vec<(u64, Vec<u8>)>>,
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        super::IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The caller's token and accessor as one device writes them (`None`:
/// written as they are).
#[derive(Clone, Copy)]
struct Ident {
    token: Option<HashBuf>,
    accessor: Option<HashBuf>,
}

impl Ident {
    fn token<'a>(&self, raw: &'a str) -> Text<'a> {
        self.token.map_or(Text::Raw(raw), Text::Hash)
    }

    fn accessor<'a>(&self, raw: &'a str) -> Text<'a> {
        self.accessor.map_or(Text::Raw(raw), Text::Hash)
    }
}

pub(super) fn op(o: Operation) -> &'static str {
    match o {
        Operation::Read => "read",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Delete => "delete",
        Operation::List => "list",
        Operation::Patch => "patch",
    }
}

/// An entry's time, RFC 3339 with nanoseconds, on the stack.
pub(super) struct Timestamp {
    buf: [u8; 40],
    len: usize,
}

impl Timestamp {
    pub(super) fn now() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::at(since.as_secs(), since.subsec_nanos())
    }

    /// RFC 3339 in UTC with the nanoseconds' trailing zeros trimmed (as
    /// Go's `RFC3339Nano`, what Vault writes): `2026-12-04T10:20:30.5Z`.
    /// Written by hand: it runs twice per audited request.
    pub(super) fn at(secs: u64, nanos: u32) -> Timestamp {
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let mut t = Timestamp {
            buf: [0u8; 40],
            len: 0,
        };
        t.digits(u64::try_from(year.clamp(0, 9999)).unwrap_or(0), 4);
        t.byte(b'-');
        t.digits(u64::from(month), 2);
        t.byte(b'-');
        t.digits(u64::from(day), 2);
        t.byte(b'T');
        t.digits(rem / 3600, 2);
        t.byte(b':');
        t.digits(rem / 60 % 60, 2);
        t.byte(b':');
        t.digits(rem % 60, 2);
        let mut n = nanos.min(999_999_999);
        if n > 0 {
            let mut width = 9;
            while n.is_multiple_of(10) {
                n /= 10;
                width -= 1;
            }
            t.byte(b'.');
            t.digits(u64::from(n), width);
        }
        t.byte(b'Z');
        t
    }

    /// `n`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, mut n: u64, width: usize) {
        for i in (0..width).rev() {
            self.buf[self.len + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `hmac-sha256:` and 64 hex digits.
const HASH_LEN: usize = 12 + 64;

/// One hashed string, on the stack.
#[derive(Clone, Copy)]
pub(super) struct HashBuf([u8; HASH_LEN]);

impl HashBuf {
    pub(super) fn new(digest: &[u8]) -> HashBuf {
        let mut b = [0u8; HASH_LEN];
        b[..12].copy_from_slice(b"hmac-sha256:");
        // 32 bytes of digest into 64 hex digits: cannot fail.
        let _ = hex::encode_to_slice(&digest[..32.min(digest.len())], &mut b[12..]);
        HashBuf(b)
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A string as a device writes it: as is, or its hash.
enum Text<'a> {
    Raw(&'a str),
    Hash(HashBuf),
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Raw(t) => s.serialize_str(t),
            Text::Hash(h) => s.serialize_str(h.as_str()),
        }
    }
}

/// Borrowed JSON with every string hashed (map keys kept).
pub(super) struct Hashed<'a> {
    pub(super) d: &'a Device,
    pub(super) v: &'a Value,
}

impl Serialize for Hashed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.v {
            Value::String(t) => s.serialize_str(self.d.hash_buf(t).as_str()),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Hashed { d: self.d, v })?;
                }
                seq.end()
            }
            Value::Object(m) => HashedMap { d: self.d, m }.serialize(s),
            other => other.serialize(s),
        }
    }
}

/// A borrowed JSON object with every string hashed.
struct HashedMap<'a> {
    d: &'a Device,
    m: &'a Map<String, Value>,
}

impl Serialize for HashedMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.m.len()))?;
        for (k, v) in self.m {
            map.serialize_entry(k, &Hashed { d: self.d, v })?;
        }
        map.end()
    }
}

/// Borrowed JSON: a value, or the object of request or response data.
#[derive(Clone, Copy)]
enum Json<'a> {
    Value(&'a Value),
    Object(&'a Map<String, Value>),
}

/// Request or response data as the device writes it: hashed unless
/// `log_raw`.
struct Data<'a> {
    d: &'a Device,
    j: Json<'a>,
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.d;
        match (d.log_raw, self.j) {
            (true, Json::Value(v)) => v.serialize(s),
            (true, Json::Object(m)) => m.serialize(s),
            (false, Json::Value(v)) => Hashed { d, v }.serialize(s),
            (false, Json::Object(m)) => HashedMap { d, m }.serialize(s),
        }
    }
}

impl Device {
    /// `s` hashed, unless it is empty or the device logs raw.
    fn secret_hash(&self, s: &str) -> Option<HashBuf> {
        (!s.is_empty() && !self.log_raw).then(|| self.hash_buf(s))
    }

    fn secret<'a>(&self, s: &'a str) -> Text<'a> {
        self.secret_hash(s).map_or(Text::Raw(s), Text::Hash)
    }

    /// An accessor hashed as `hmac_accessor` says.
    fn accessor_hash(&self, s: &str) -> Option<HashBuf> {
        self.hmac_accessor.then(|| self.secret_hash(s)).flatten()
    }

    fn accessor<'a>(&self, s: &'a str) -> Text<'a> {
        self.accessor_hash(s).map_or(Text::Raw(s), Text::Hash)
    }
}

#[derive(Serialize)]
struct Namespace {
    id: &'static str,
}

const ROOT: Namespace = Namespace { id: "root" };

/// One entry: `response` is absent from request entries and `null` in the
/// entry of a failed request; `error` only when there is one.
#[derive(Serialize)]
pub(super) struct Entry<'a, R: Serialize> {
    time: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    auth: Option<AuthJson<'a>>,
    request: R,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Option<ResponseJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct AuthJson<'a> {
    client_token: Text<'a>,
    accessor: Text<'a>,
    display_name: &'a str,
    policies: &'a [String],
    token_policies: &'a [String],
    metadata: &'a Option<Map<String, Value>>,
    entity_id: &'static str,
    token_type: &'static str,
}

#[derive(Serialize)]
struct RequestJson<'a> {
    id: &'a str,
    operation: &'static str,
    mount_point: &'a str,
    mount_type: &'a str,
    mount_accessor: &'a str,
    client_token: Text<'a>,
    client_token_accessor: Text<'a>,
    namespace: Namespace,
    path: &'a str,
    data: Option<Data<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_address: Option<Ip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_port: Option<u16>,
}

/// A client's IP address, written as text without an allocation.
struct Ip(std::net::IpAddr);

impl Serialize for Ip {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The request of an entry for a request refused before its handler.
#[derive(Serialize)]
pub(super) struct RefusedRequest<'a> {
    operation: &'static str,
    path: &'a str,
    namespace: Namespace,
}

impl<'a> RefusedRequest<'a> {
    pub(super) fn new(operation: &'static str, path: &'a str) -> Self {
        RefusedRequest {
            operation,
            path,
            namespace: ROOT,
        }
    }
}

/// A reply as a device writes it.
struct ResponseJson<'a> {
    d: &'a Device,
    reply: &'a Reply,
}

impl Serialize for ResponseJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.d;
        let mut m = s.serialize_map(None)?;
        match self.reply {
            Reply::Envelope {
                response,
                mount_type,
                ..
            } => {
                m.serialize_entry("mount_type", mount_type)?;
                if let Some(data) = &response.data {
                    m.serialize_entry(
                        "data",
                        &Data {
                            d,
                            j: Json::Object(data),
                        },
                    )?;
                }
                if let Some(auth) = &response.auth {
                    // Logins only: the slower JSON tree is fine here.
                    let mut a = serde_json::to_value(auth).unwrap_or(Value::Null);
                    if let Some(o) = a.as_object_mut() {
                        let token = serde_json::to_value(d.secret(&auth.client_token));
                        o.insert("client_token".into(), token.unwrap_or(Value::Null));
                        let accessor = serde_json::to_value(d.accessor(&auth.accessor));
                        o.insert("accessor".into(), accessor.unwrap_or(Value::Null));
                        if let Some(meta) = o.get("metadata") {
                            let meta = Data {
                                d,
                                j: Json::Value(meta),
                            };
                            let meta = serde_json::to_value(meta).unwrap_or(Value::Null);
                            o.insert("metadata".into(), meta);
                        }
                    }
                    m.serialize_entry("auth", &a)?;
                }
                if !response.lease_id.is_empty() {
                    let mut secret = Map::new();
                    secret.insert("lease_id".into(), Value::from(response.lease_id.as_str()));
                    m.serialize_entry("secret", &secret)?;
                }
                if !response.warnings.is_empty() {
                    m.serialize_entry("warnings", &response.warnings)?;
                }
            }
            Reply::Raw { status, body } => {
                let data = Data {
                    d,
                    j: Json::Value(body),
                };
                m.serialize_entry("data", &data)?;
                m.serialize_entry("http_status_code", status)?;
            }
            Reply::Http {
                status,
                content_type,
                body,
            } => {
                let body = String::from_utf8_lossy(body);
                m.serialize_entry(
                    "data",
                    &HttpData {
                        http_status_code: *status,
                        http_content_type: content_type,
                        http_raw_body: d.secret(&body),
                    },
                )?;
            }
            Reply::NoContent | Reply::NotFound => {}
        }
        m.end()
    }
}

impl ResponseJson<'_> {
    /// The response's JSON into `out`: by hand ([`json`]) for an envelope
    /// without auth (every read and write of a secret), through its
    /// `Serialize` otherwise (logins, raw and HTTP replies).
    fn write(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let d = self.d;
        match self.reply {
            Reply::Envelope {
                response,
                mount_type,
                ..
            } if response.auth.is_none() => {
                out.extend_from_slice(b"{\"mount_type\":");
                json::str(out, mount_type);
                if let Some(data) = &response.data {
                    out.extend_from_slice(b",\"data\":");
                    json::data(out, d, data);
                }
                if !response.lease_id.is_empty() {
                    out.extend_from_slice(b",\"secret\":{\"lease_id\":");
                    json::str(out, &response.lease_id);
                    out.push(b'}');
                }
                if !response.warnings.is_empty() {
                    out.extend_from_slice(b",\"warnings\":");
                    json::strs(out, &response.warnings);
                }
                out.push(b'}');
                Ok(())
            }
            Reply::NoContent | Reply::NotFound => {
                out.extend_from_slice(b"{}");
                Ok(())
            }
            _ => serde_json::to_writer(&mut *out, self).map_err(|e| e.to_string()),
        }
    }
}

/// A string as a device writes it, into `out`.
fn text(out: &mut Vec<u8>, t: &Text<'_>) {
    match t {
        Text::Raw(s) => json::str(out, s),
        Text::Hash(h) => json::hash(out, h.as_str()),
    }
}

#[derive(Serialize)]
struct HttpData<'a> {
    http_status_code: u16,
    http_content_type: &'a str,
    http_raw_body: Text<'a>,
}

impl<'a> Record<'a> {
    /// The record of `request` at its full `path`, by the caller's `token`.
    pub fn new(request: &'a Request, path: &'a str, token: Option<&'a Resolved>) -> Self {
        super::IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Record {
            request,
            path,
            token,
            time: Timestamp::now(),
            idents: Mutex::new(Vec::new()),
            heads: Mutex::new(Vec::new()),
        }
    }

    /// The caller's token and accessor as `d` writes them, hashed at the
    /// first entry for `d` only.
    fn ident(&self, d: &Device) -> Ident {
        let key = d.id;
        let mut idents = self.idents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, ident)) = idents.iter().find(|(k, _)| *k == key) {
            return *ident;
        }
        let ident = match self.token {
            Some(t) => Ident {
                token: d.secret_hash(t.id()),
                accessor: d.accessor_hash(&t.entry.accessor),
            },
            None => Ident {
                token: None,
                accessor: None,
            },
        };
        idents.push((key, ident));
        ident
    }

    fn auth(&self, ident: &Ident) -> Option<AuthJson<'a>> {
        self.token.map(|t| AuthJson {
            client_token: ident.token(t.id()),
            accessor: ident.accessor(&t.entry.accessor),
            display_name: &t.entry.display_name,
            policies: &t.entry.policies,
            token_policies: &t.entry.policies,
            metadata: &t.entry.meta,
            entity_id: "",
            token_type: "service",
        })
    }

    fn request_json(&self, d: &'a Device, ident: &Ident) -> RequestJson<'a> {
        let r = self.request;
        RequestJson {
            id: &r.id,
            operation: op(r.operation),
            mount_point: &r.mount_point,
            mount_type: &r.mount_type,
            mount_accessor: &r.mount_accessor,
            client_token: self.token.map_or(Text::Raw(""), |t| ident.token(t.id())),
            client_token_accessor: self
                .token
                .map_or(Text::Raw(""), |t| ident.accessor(&t.entry.accessor)),
            namespace: ROOT,
            path: self.path,
            data: (!r.data.is_empty()).then_some(Data {
                d,
                j: Json::Object(&r.data),
            }),
            remote_address: r.remote.map(|a| Ip(a.ip())),
            remote_port: r.remote.map(|a| a.port()),
        }
    }

    /// Calls `f` with the `,"auth":…,"request":…` members of `d`'s JSON
    /// entries for this request, rendered at the first call for `d`.
    fn with_head(
        &self,
        d: &'a Device,
        f: impl FnOnce(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        let at = match heads.iter().position(|(k, _)| *k == d.id) {
            Some(at) => at,
            None => {
                let ident = self.ident(d);
                let mut out = Vec::with_capacity(1024);
                self.write_head(d, &ident, &mut out);
                heads.push((d.id, out));
                heads.len() - 1
            }
        };
        f(&heads[at].1)
    }

    /// `,"auth":…,"request":…` by hand ([`json`]): the JSON of [`Head`].
    fn write_head(&self, d: &Device, ident: &Ident, out: &mut Vec<u8>) {
        use std::io::Write as _;
        out.extend_from_slice(b",\"auth\":");
        match self.token {
            None => out.extend_from_slice(b"null"),
            Some(t) => {
                out.extend_from_slice(b"{\"client_token\":");
                text(out, &ident.token(t.id()));
                out.extend_from_slice(b",\"accessor\":");
                text(out, &ident.accessor(&t.entry.accessor));
                out.extend_from_slice(b",\"display_name\":");
                json::str(out, &t.entry.display_name);
                out.extend_from_slice(b",\"policies\":");
                json::strs(out, &t.entry.policies);
                out.extend_from_slice(b",\"token_policies\":");
                json::strs(out, &t.entry.policies);
                out.extend_from_slice(b",\"metadata\":");
                match &t.entry.meta {
                    // Metadata is written as it is (as Vault does).
                    Some(meta) => {
                        let _ = serde_json::to_writer(&mut *out, meta);
                    }
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"entity_id\":\"\",\"token_type\":\"service\"}");
            }
        }
        let r = self.request;
        out.extend_from_slice(b",\"request\":{\"id\":");
        json::str(out, &r.id);
        out.extend_from_slice(b",\"operation\":\"");
        out.extend_from_slice(op(r.operation).as_bytes());
        out.extend_from_slice(b"\",\"mount_point\":");
        json::str(out, &r.mount_point);
        out.extend_from_slice(b",\"mount_type\":");
        json::str(out, &r.mount_type);
        out.extend_from_slice(b",\"mount_accessor\":");
        json::str(out, &r.mount_accessor);
        out.extend_from_slice(b",\"client_token\":");
        text(
            out,
            &self.token.map_or(Text::Raw(""), |t| ident.token(t.id())),
        );
        out.extend_from_slice(b",\"client_token_accessor\":");
        text(
            out,
            &self
                .token
                .map_or(Text::Raw(""), |t| ident.accessor(&t.entry.accessor)),
        );
        out.extend_from_slice(b",\"namespace\":{\"id\":\"root\"},\"path\":");
        json::str(out, self.path);
        out.extend_from_slice(b",\"data\":");
        if r.data.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            json::data(out, d, &r.data);
        }
        if let Some(a) = r.remote {
            // Writing into a `Vec` cannot fail.
            let _ = write!(
                out,
                ",\"remote_address\":\"{}\",\"remote_port\":{}",
                a.ip(),
                a.port()
            );
        }
        out.push(b'}');
    }

    /// The request entry for device `d`, appended to `line`.
    pub(super) fn request_entry(&self, d: &'a Device, line: &mut Vec<u8>) -> Result<(), String> {
        let time = &self.time;
        if d.format == Format::Json {
            return self.with_head(d, |head| {
                d.render_line(line, |out| {
                    entry_start(out, time, "request");
                    out.extend_from_slice(head);
                    out.push(b'}');
                    Ok(())
                })
            });
        }
        let ident = self.ident(d);
        let entry = Entry {
            time: time.as_str(),
            kind: "request",
            auth: self.auth(&ident),
            request: self.request_json(d, &ident),
            response: None,
            error: None,
        };
        d.render(&entry, line)
    }

    /// The response entry for device `d`, appended to `line`.
    pub(super) fn response_entry(
        &self,
        d: &'a Device,
        outcome: &'a Result<Reply, RequestError>,
        line: &mut Vec<u8>,
    ) -> Result<(), String> {
        let time = Timestamp::now();
        let (response, error) = match outcome {
            Ok(reply) => (Some(ResponseJson { d, reply }), None),
            Err(e) => (None, Some(e.to_string())),
        };
        if d.format == Format::Json {
            return self.with_head(d, |head| {
                d.render_line(line, |out| {
                    entry_start(out, &time, "response");
                    out.extend_from_slice(head);
                    out.extend_from_slice(b",\"response\":");
                    match &response {
                        Some(r) => r.write(out)?,
                        None => out.extend_from_slice(b"null"),
                    }
                    if let Some(error) = &error {
                        out.extend_from_slice(b",\"error\":");
                        json::str(out, error);
                    }
                    out.push(b'}');
                    Ok(())
                })
            });
        }
        let ident = self.ident(d);
        let entry = Entry {
            time: time.as_str(),
            kind: "response",
            auth: self.auth(&ident),
            request: self.request_json(d, &ident),
            response: Some(response),
            error: error.as_deref(),
        };
        d.render(&entry, line)
    }
}

/// `{"time":"…","type":"…"` (the time and type need no escaping).
fn entry_start(out: &mut Vec<u8>, time: &Timestamp, kind: &str) {
    out.extend_from_slice(b"{\"time\":\"");
    out.extend_from_slice(time.as_str().as_bytes());
    out.extend_from_slice(b"\",\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
}

/// The response entry of a request refused before its handler (no auth,
/// no response, the error), appended to `line`.
pub(super) fn refused_entry(
    d: &Device,
    time: &Timestamp,
    request: RefusedRequest<'_>,
    error: &str,
    line: &mut Vec<u8>,
) -> Result<(), String> {
    let entry = Entry {
        time: time.as_str(),
        kind: "response",
        auth: None,
        request,
        response: Some(None),
        error: Some(error),
    };
    d.render(&entry, line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn device(format: &str) -> Device {
        device_with(format, &[])
    }

    fn device_with(format: &str, more: &[(&str, &str)]) -> Device {
        let mut options = std::collections::BTreeMap::new();
        options.insert("file_path".to_string(), "stdout".to_string());
        options.insert("format".to_string(), format.to_string());
        for (k, v) in more {
            options.insert(k.to_string(), v.to_string());
        }
        let config = super::super::DeviceConfig {
            path: "t/".into(),
            kind: "file".into(),
            description: String::new(),
            options,
            local: false,
        };
        Device::build(config, Zeroizing::new(vec![7u8; 32]), false).expect("device")
    }

    /// The hand-written time is what `time` writes for RFC 3339 (UTC,
    /// nanoseconds' trailing zeros trimmed), leap days and the end of a
    /// century included.
    #[test]
    fn timestamps_match_rfc3339() {
        use time::format_description::well_known::Rfc3339;
        for (secs, nanos) in [
            (0u64, 0u32),
            (951_782_400, 1),             // 2000-02-29
            (4_107_542_400, 500_000_000), // 2100-03-01
            (1_796_380_830, 123_456_789),
            (1_796_380_830, 120_000_000),
            (1_796_380_830, 999_999_999),
            (253_402_300_799, 10), // 9999-12-31T23:59:59
        ] {
            let want = time::OffsetDateTime::from_unix_timestamp(secs as i64)
                .unwrap()
                .replace_nanosecond(nanos)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(Timestamp::at(secs, nanos).as_str(), want, "{secs}.{nanos}");
        }
    }

    /// A JSON device's entries (written by hand, the head rendered once
    /// and reused) are the same JSON as the entry structs serialize to:
    /// with and without a token and a client address, hashed and raw data
    /// (nested, escaped, numbers), every kind of response.
    #[test]
    fn json_entries_equal_the_entry_structs() {
        use crate::core::tokens::{Resolved, TokenEntry};
        let mut request = Request {
            id: "req-1".into(),
            operation: Operation::Update,
            path: "x".into(),
            data: Default::default(),
            mount_point: "secret/".into(),
            mount_type: "kv".into(),
            mount_accessor: "kv_1".into(),
            mount_default_ttl: 0,
            mount_max_ttl: 0,
            mount_force_no_cache: false,
            client_token_accessor: None,
            display_name: None,
            remote: None,
        };
        request
            .data
            .insert("password".into(), Value::from("hunter\"2\n"));
        request.data.insert("n".into(), Value::from(7));
        request.data.insert("f".into(), Value::from(0.25));
        request.data.insert("b".into(), Value::from(true));
        request.data.insert("none".into(), Value::Null);
        request.data.insert(
            "nested".into(),
            serde_json::json!({"list": ["a", 1, {"k\"ey": "v"}], "empty": {}}),
        );
        let mut remote = request.clone();
        remote.remote = Some("10.1.2.3:41000".parse().expect("address"));
        let mut meta = Map::new();
        meta.insert("role".into(), Value::from("web \"tier\""));
        let token = Resolved::for_tests(
            "hvs.secret-token",
            TokenEntry {
                accessor: "acc-1".into(),
                policies: vec!["default".into(), "kv-\"read\"".into()],
                parent: None,
                path: "auth/token/create".into(),
                meta: Some(meta),
                display_name: "token-ci".into(),
                num_uses: 0,
                creation_time: 0,
                creation_ttl: 0,
                expire_time: None,
                explicit_max_ttl: 0,
                renewable: true,
                issue_time: 0,
                last_renewal: None,
                internal_data: None,
            },
        );
        let mut data = Map::new();
        data.insert("value".into(), Value::from("s3cr\u{1}t"));
        data.insert("ttl".into(), Value::from(60));
        let envelope = |lease_id: &str, warnings: Vec<String>, auth: bool| Reply::Envelope {
            request_id: "req-1".into(),
            response: Box::new(crate::logical::Response {
                data: Some(data.clone()),
                lease_id: lease_id.into(),
                warnings,
                auth: auth.then(|| crate::logical::Auth {
                    client_token: "hvs.new".into(),
                    accessor: "acc-2".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mount_type: "kv".into(),
            flatten: false,
        };
        let outcomes = [
            Err(RequestError::invalid("bad \"thing\"")),
            Ok(Reply::NoContent),
            Ok(Reply::NotFound),
            Ok(envelope("", vec![], false)),
            Ok(envelope(
                "secret/x/abc",
                vec!["a \"warning\"".into()],
                false,
            )),
            Ok(envelope("", vec![], true)),
            Ok(Reply::Raw {
                status: 200,
                body: serde_json::json!({"sealed": false, "type": "shamir"}),
            }),
        ];
        for (format_raw, request, token) in [
            (false, &request, None),
            (false, &remote, Some(&token)),
            (true, &remote, Some(&token)),
        ] {
            let d = if format_raw {
                device_with("json", &[("log_raw", "true")])
            } else {
                device("json")
            };
            let record = Record::new(request, "secret/x", token);
            let ident = record.ident(&d);
            let parse = |line: &[u8]| -> Value {
                assert_eq!(line.last(), Some(&b'\n'));
                let mut v: Value = serde_json::from_slice(line).expect("a JSON line");
                v["time"] = Value::Null;
                v
            };
            let slow = |response: Option<Option<ResponseJson<'_>>>, error: Option<&str>| {
                let entry = Entry {
                    time: "",
                    kind: if response.is_some() {
                        "response"
                    } else {
                        "request"
                    },
                    auth: record.auth(&ident),
                    request: record.request_json(&d, &ident),
                    response,
                    error,
                };
                let mut v = serde_json::to_value(&entry).expect("entry");
                v["time"] = Value::Null;
                v
            };
            let mut line = vec![];
            record.request_entry(&d, &mut line).expect("request entry");
            assert_eq!(parse(&line), slow(None, None), "log_raw {format_raw}");
            for outcome in &outcomes {
                let mut line = vec![];
                record
                    .response_entry(&d, outcome, &mut line)
                    .expect("response entry");
                let (response, error) = match outcome {
                    Ok(reply) => (Some(ResponseJson { d: &d, reply }), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                assert_eq!(
                    parse(&line),
                    slow(Some(response), error.as_deref()),
                    "log_raw {format_raw}, {outcome:?}"
                );
            }
        }
        let record = Record::new(&request, "secret/x", None);
        // jsonx still renders from the structs.
        let x = device("jsonx");
        let mut line = vec![];
        record.request_entry(&x, &mut line).expect("jsonx entry");
        assert!(line.starts_with(b"<?xml"));
    }
}
