//! The API layer's view of the core: a request as it arrives
//! ([`ApiRequest`], with its [`Method`]) and what the core answers
//! ([`Reply`]), independent of HTTP.

use crate::logical::Response;
use serde_json::{Map, Value};

/// How a client called: the HTTP method family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Read,
    /// PUT or POST.
    Write,
    /// DELETE.
    Delete,
    /// LIST or GET with `list=true`.
    List,
    /// PATCH (body: a JSON merge patch).
    Patch,
}

impl Method {
    /// The operation a handler sees for this method (a write is an
    /// `update` until the existence check makes it a `create`).
    pub fn operation(self) -> crate::logical::Operation {
        use crate::logical::Operation;
        match self {
            Method::Read => Operation::Read,
            Method::Write => Operation::Update,
            Method::Delete => Operation::Delete,
            Method::List => Operation::List,
            Method::Patch => Operation::Patch,
        }
    }
}

/// A request as it arrives from the API layer.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The method family.
    pub method: Method,
    /// The path after `/v1/`.
    pub path: String,
    /// Body (or query parameters for reads).
    pub data: Map<String, Value>,
    /// `X-Vault-Token` or bearer token.
    pub token: Option<String>,
    /// The client's address (for a request a standby forwarded: the
    /// address the standby received it from); `None` for the server's own
    /// requests.
    pub remote: Option<std::net::SocketAddr>,
}

/// What the API layer should send back.
#[derive(Debug)]
pub enum Reply {
    /// 200 with the standard envelope.
    Envelope {
        /// `request_id`.
        request_id: String,
        /// Payload.
        response: Box<Response>,
        /// `mount_type`.
        mount_type: String,
        /// Also copy `data`'s keys to the top level of the body, as Vault
        /// does for its older `sys/` endpoints.
        flatten: bool,
    },
    /// A status and a bare JSON body (seal status, init, health).
    Raw {
        /// HTTP status.
        status: u16,
        /// Body.
        body: Value,
    },
    /// An engine's own HTTP answer (Vault's raw response: the response
    /// data named `http_status_code`, `http_content_type` and
    /// `http_raw_body`), e.g. kv version 2's 404 for a destroyed version.
    Http {
        /// HTTP status.
        status: u16,
        /// `Content-Type`.
        content_type: String,
        /// Body bytes.
        body: Vec<u8>,
    },
    /// 204.
    NoContent,
    /// 404 with an empty error list (a read of a missing secret).
    NotFound,
}
