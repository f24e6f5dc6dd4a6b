//! The logical error of a plugin request: what a handler returns when it
//! cannot answer, and how that travels to the host.
//!
//! Every variant maps to one `ErrorKind` of the wire contract, which the host
//! turns into an HTTP status:
//!
//! | variant | wire kind | HTTP |
//! |---|---|---|
//! | [`Error::InvalidRequest`] | `ERROR_KIND_INVALID_REQUEST` | 400 |
//! | [`Error::PermissionDenied`] | `ERROR_KIND_PERMISSION_DENIED` | 403 |
//! | [`Error::UnsupportedPath`] | `ERROR_KIND_UNSUPPORTED_PATH` | 404 |
//! | [`Error::UnsupportedOperation`] | `ERROR_KIND_UNSUPPORTED_OPERATION` | 405 |
//! | [`Error::Storage`], [`Error::Internal`] | `ERROR_KIND_INTERNAL` | 500 |
//! | [`Error::Unavailable`] | `ERROR_KIND_UNAVAILABLE` | 503 |
//!
//! Logical errors always travel in the reply's `ResponseError`, never as a
//! gRPC status: a gRPC status tells the host the plugin itself is broken.

use lockbox_plugin_proto::v1 as pb;
use std::path::PathBuf;

/// Why a request failed. The message is shown to the client as is, so write
/// it for the person who sent the request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// The caller is not allowed to do this, or a login failed (403).
    #[error("{0}")]
    PermissionDenied(String),
    /// No path of the plugin matches the request path (404).
    #[error("{0}")]
    UnsupportedPath(String),
    /// The path exists but does not support the operation (405).
    #[error("{0}")]
    UnsupportedOperation(String),
    /// A call to the host's storage failed (500).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Anything else that is the plugin's fault (500).
    #[error("{0}")]
    Internal(String),
    /// The plugin is overloaded for now; the client may retry later (503).
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// A 400 with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidRequest(message.into())
    }

    /// A 403 with `message`.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Error::PermissionDenied(message.into())
    }

    /// A 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// A 503 with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(message.into())
    }

    /// The wire kind of this error.
    pub fn kind(&self) -> pb::ErrorKind {
        match self {
            Error::InvalidRequest(_) => pb::ErrorKind::InvalidRequest,
            Error::PermissionDenied(_) => pb::ErrorKind::PermissionDenied,
            Error::UnsupportedPath(_) => pb::ErrorKind::UnsupportedPath,
            Error::UnsupportedOperation(_) => pb::ErrorKind::UnsupportedOperation,
            Error::Storage(_) | Error::Internal(_) => pb::ErrorKind::Internal,
            Error::Unavailable(_) => pb::ErrorKind::Unavailable,
        }
    }

    /// The error as the host receives it.
    pub fn to_wire(&self) -> pb::ResponseError {
        pb::ResponseError {
            kind: self.kind() as i32,
            message: self.to_string(),
        }
    }

    /// Rebuilds an error from the wire (used by the test harness, which
    /// sees replies exactly as the host does). Storage errors come back as
    /// [`Error::Internal`]; unknown kinds too.
    pub fn from_wire(e: &pb::ResponseError) -> Self {
        let message = e.message.clone();
        match pb::ErrorKind::try_from(e.kind) {
            Ok(pb::ErrorKind::InvalidRequest) => Error::InvalidRequest(message),
            Ok(pb::ErrorKind::PermissionDenied) => Error::PermissionDenied(message),
            Ok(pb::ErrorKind::UnsupportedPath) => Error::UnsupportedPath(message),
            Ok(pb::ErrorKind::UnsupportedOperation) => Error::UnsupportedOperation(message),
            Ok(pb::ErrorKind::Unavailable) => Error::Unavailable(message),
            Ok(pb::ErrorKind::Internal | pb::ErrorKind::Unspecified) | Err(_) => {
                Error::Internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_wire() {
        for e in [
            Error::invalid("bad"),
            Error::permission_denied("no"),
            Error::UnsupportedPath("where".into()),
            Error::UnsupportedOperation("how".into()),
            Error::internal("oops"),
            Error::unavailable("busy"),
        ] {
            let back = Error::from_wire(&e.to_wire());
            assert_eq!(back.kind(), e.kind());
            assert_eq!(back.to_string(), e.to_string());
        }
        let unknown = pb::ResponseError {
            kind: 99,
            message: "x".into(),
        };
        assert!(matches!(Error::from_wire(&unknown), Error::Internal(m) if m == "x"));
    }
}

/// A storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The host's storage service answered with an error or could not be
    /// reached.
    #[error("storage {op} {key:?} failed: {message} ({code:?})")]
    Rpc {
        /// `get`, `put`, `delete` or `list`.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// A stored value is not the JSON the plugin expected.
    #[error("stored value at {key:?} is not valid JSON for this plugin: {source}")]
    Decode {
        /// The key read.
        key: String,
        /// Why decoding failed.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode the value for {key:?} as JSON: {source}")]
    Encode {
        /// The key written.
        key: String,
        /// Why encoding failed.
        #[source]
        source: serde_json::Error,
    },
}

/// Why the plugin could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Neither lockbox's nor Vault's magic cookie is set: someone ran the
    /// plugin by hand.
    #[error(
        "{program}: this is a lockbox plugin, not a program to run by hand: lockbox starts it itself \
         once it is registered (`lockbox plugin register ...`) or placed in the server's --dev-plugin-dir; \
         Vault or OpenBao start it once it is in their plugin directory and registered \
         (`bao plugin register -sha256=<sha256> secret|auth <name>`)"
    )]
    NotLaunchedByHost {
        /// The executable's name, for the message.
        program: String,
    },
    /// The host offers no app protocol version this SDK speaks.
    #[error(
        "{program}: the lockbox host offers plugin protocol version(s) {offered:?}, but this plugin \
         speaks only version {ours}; use a lockbox and plugin built for the same protocol"
    )]
    UnsupportedProtocol {
        /// The executable's name.
        program: String,
        /// `LOCKBOX_PLUGIN_PROTOCOL_VERSIONS` as given.
        offered: String,
        /// The version this SDK speaks.
        ours: u32,
    },
    /// A Vault-protocol host offers no protocol version 5 (OpenBao retries
    /// versions 3 and 4 after a failed version 5 launch).
    #[error(
        "{program}: the Vault/OpenBao host offers plugin protocol version(s) {offered:?}, but this \
         plugin speaks only version 5 (Vault 1.12+, OpenBao 2.x); if a version 5 launch failed \
         before, its error is the one to look at"
    )]
    VaultProtocol {
        /// The executable's name.
        program: String,
        /// `PLUGIN_PROTOCOL_VERSIONS` as given.
        offered: String,
    },
    /// A variable a Vault-protocol host must set is missing or unusable.
    #[error("{program}: {var} {reason}")]
    VaultEnv {
        /// The executable's name.
        program: String,
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The mutual-TLS certificate or configuration could not be made.
    #[error("cannot set up mutual TLS with the host: {0}")]
    Tls(String),
    /// A variable the host must set is missing or empty.
    #[error("{program}: {var} is not set; the lockbox host sets it when it starts a plugin")]
    MissingEnv {
        /// The executable's name.
        program: String,
        /// The variable.
        var: &'static str,
    },
    /// The plugin socket could not be created.
    #[error("cannot listen on the plugin socket {}: {source}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The handshake line could not be written.
    #[error("cannot write the handshake line to stdout: {0}")]
    Handshake(#[source] std::io::Error),
    /// `LOCKBOX_PLUGIN_HOST_TOKEN` cannot be sent as gRPC metadata.
    #[error(
        "{0} is not a valid gRPC metadata value; the lockbox host sets it when it starts a plugin"
    )]
    HostToken(&'static str),
    /// The host storage socket path is not usable as an endpoint.
    #[error("invalid host storage socket {}: {source}", path.display())]
    HostSocket {
        /// The path from `LOCKBOX_PLUGIN_HOST_SOCKET`.
        path: PathBuf,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The gRPC server failed.
    #[error("the plugin's gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// The server task ended abnormally.
    #[error("the plugin's gRPC server task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The tokio runtime or signal handlers could not be set up.
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(#[source] std::io::Error),
}
