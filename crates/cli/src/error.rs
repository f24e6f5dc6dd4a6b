//! The crate's one error type, and the exit code each kind of failure maps to.
//!
//! Exit codes follow the Vault CLI's documented convention:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | a local error: bad flags or arguments, unreadable input files, bad K=V data |
//! | 2 | a remote error: the server refused the request, could not be reached, answered with something unparseable, or the thing asked for does not exist |
//!
//! Two commands give the codes extra meaning, exactly as Vault does: `status`
//! exits 2 when the server is sealed (and 1 for any error), and
//! `operator init -status` exits 2 when the server is not initialized.
//!
//! clap's own parse errors happen before any command runs; the root binary
//! maps them with [`crate::clap_exit_code`] (1, not clap's default 2, which
//! Vault reserves for remote errors).
//!
//! Deliberate differences from Vault: an unreadable `policy write` file exits
//! 1 (a local error; Vault says 2), and a failed `secrets move` migration
//! exits 2 (Vault prints "Failure!" and exits 0).

/// Everything that can go wrong in the client library and the commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a non-success status code. Displays the way
    /// Vault's client library prints it:
    ///
    /// ```text
    /// Error making API request.
    ///
    /// URL: PUT https://127.0.0.1:8200/v1/secret/foo
    /// Code: 403. Errors:
    ///
    /// * permission denied
    /// ```
    #[error("{}", api_message(method, url, *status, errors, *raw))]
    ApiError {
        /// HTTP method of the request.
        method: String,
        /// Full URL of the request.
        url: String,
        /// HTTP status code of the response.
        status: u16,
        /// The `errors` array of a `{"errors": [...]}` body, or the raw body
        /// (one element) when it was not that JSON shape.
        errors: Vec<String>,
        /// True when `errors` holds the raw body rather than parsed messages.
        raw: bool,
    },

    /// The request never got a response: connection refused, DNS failure, TLS
    /// handshake failure, timeout.
    #[error("{}", transport_message(method, url, address, source))]
    Transport {
        /// HTTP method of the failed request.
        method: String,
        /// Full URL of the failed request.
        url: String,
        /// The configured server address, to point the user at what to fix.
        address: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },

    /// The server answered 2xx, but the body was not the JSON we expected.
    #[error("failed to decode the response to {method} {url}: {source}")]
    Decode {
        /// HTTP method of the request.
        method: String,
        /// Full URL of the request.
        url: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },

    /// The client configuration is unusable (bad address, unreadable CA file,
    /// unparseable environment variable).
    #[error("{0}")]
    Config(String),

    /// The command line was well-formed for clap but makes no sense (bad
    /// duration, bad K=V pair, conflicting flags).
    #[error("{0}")]
    Usage(String),

    /// Reading local input (a file named on the command line, stdin) failed.
    #[error("{what}: {source}")]
    Input {
        /// What was being read, e.g. `error reading file "policy.hcl"`.
        what: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Writing local state (the token file) failed.
    #[error("{what}: {source}")]
    LocalState {
        /// What was being written.
        what: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The thing asked for does not exist (a 404 on read or list, a missing
    /// policy). The message is printed as is.
    #[error("{0}")]
    NotFound(String),

    /// The server answered successfully but without something the command
    /// needs (no `auth` block after a login, no `migration_id`).
    #[error("{0}")]
    Unexpected(String),

    /// Talking to an OCI registry (`plugin push|pull`) failed; shown with
    /// its reason (`DigestMismatch`, `Unauthorized`, ...).
    #[error("{0} ({reason})", reason = .0.reason())]
    Registry(#[from] lockbox_oci::OciError),

    /// Another error, with a description of the operation that failed in
    /// front of it: `Error reading secret/foo: <error>`.
    #[error("{context}: {source}")]
    Context {
        /// The operation that failed, e.g. `Error reading secret/foo`.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The process exit code this error maps to (see the module docs).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Input { .. } => 1,
            Error::LocalState { .. } => 1,
            Error::ApiError { .. }
            | Error::Transport { .. }
            | Error::Decode { .. }
            | Error::Config(_)
            | Error::NotFound(_)
            | Error::Unexpected(_) => 2,
            Error::Registry(e) => match e {
                lockbox_oci::OciError::InvalidReference { .. }
                | lockbox_oci::OciError::Unpinned { .. }
                | lockbox_oci::OciError::Credentials(_)
                | lockbox_oci::OciError::Io { .. } => 1,
                _ => 2,
            },
            Error::Context { source, .. } => source.exit_code(),
        }
    }

    /// Puts a description of the failed operation in front of this error.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The HTTP status code, if this error (or the error it wraps) is an API
    /// error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::ApiError { status, .. } => Some(*status),
            Error::Context { source, .. } => source.status(),
            _ => None,
        }
    }
}

/// The text of [`Error::ApiError`].
fn api_message(method: &str, url: &str, status: u16, errors: &[String], raw: bool) -> String {
    let kind = if raw { "Raw Message" } else { "Errors" };
    let body = if raw {
        errors.first().cloned().unwrap_or_default()
    } else {
        errors
            .iter()
            .map(|e| format!("* {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!("Error making API request.\n\nURL: {method} {url}\nCode: {status}. {kind}:\n\n{body}")
}

/// Renders a transport failure with the address that was tried and what to
/// check.
fn transport_message(method: &str, url: &str, address: &str, source: &reqwest::Error) -> String {
    // reqwest's own message repeats the URL; its sources say what happened.
    let chain = match std::error::Error::source(source) {
        Some(cause) => error_chain(cause),
        None => source.to_string(),
    };
    let mut msg = format!("{method} {url}: {chain}");
    if source.is_timeout() {
        msg.push_str(&format!(
            "\n\nThe server at {address} did not answer in time."
        ));
    } else if chain.contains("CaUsedAsEndEntity") {
        msg.push_str(&format!(
            "\n\nThe certificate of the server at {address} is a CA certificate \
             (basicConstraints CA:TRUE) used as a server certificate. It is accepted only \
             when this exact certificate is in the CA file (LOCKBOX_CACERT, VAULT_CACERT \
             or -ca-cert); otherwise regenerate it with basicConstraints=CA:FALSE, or use \
             a CA and a leaf certificate signed by it."
        ));
    } else if chain.contains("invalid peer certificate") {
        msg.push_str(&format!(
            "\n\nThe server at {address} answered, but its TLS certificate was not \
             accepted. Check the CA file (LOCKBOX_CACERT, VAULT_CACERT or -ca-cert) and \
             that the certificate names the host of the address."
        ));
    } else if chain.contains("InvalidContentType") || chain.contains("corrupt message") {
        msg.push_str(&format!(
            "\n\nThe server at {address} does not seem to speak TLS. If it serves plain \
             HTTP, use an http:// address in LOCKBOX_ADDR (or -address)."
        ));
    } else if source.is_connect() || source.is_request() {
        msg.push_str(&format!(
            "\n\nCould not reach a lockbox server at {address}. Is it running? Check \
             LOCKBOX_ADDR (or VAULT_ADDR, or the -address flag)."
        ));
    }
    msg
}

/// Joins an error and its sources with ": ", skipping sources whose text is
/// already part of the previous message (reqwest and hyper repeat themselves).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        current = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_renders_like_vault() {
        let err = Error::ApiError {
            method: "PUT".into(),
            url: "http://127.0.0.1:8200/v1/secret/foo".into(),
            status: 400,
            errors: vec!["missing data".into()],
            raw: false,
        };
        assert_eq!(
            err.to_string(),
            "Error making API request.\n\nURL: PUT http://127.0.0.1:8200/v1/secret/foo\n\
             Code: 400. Errors:\n\n* missing data"
        );
    }

    #[test]
    fn raw_api_error_prints_the_body() {
        let err = Error::ApiError {
            method: "GET".into(),
            url: "http://x/v1/a".into(),
            status: 502,
            errors: vec!["bad gateway".into()],
            raw: true,
        };
        assert!(
            err.to_string()
                .ends_with("Code: 502. Raw Message:\n\nbad gateway")
        );
    }

    #[test]
    fn context_keeps_the_exit_code_of_the_cause() {
        let err = Error::Usage("bad".into()).context("Error doing x");
        assert_eq!(err.exit_code(), 1);
        assert_eq!(err.to_string(), "Error doing x: bad");
        let api = Error::ApiError {
            method: "GET".into(),
            url: "u".into(),
            status: 403,
            errors: vec![],
            raw: false,
        }
        .context("Error reading x");
        assert_eq!(api.exit_code(), 2);
        assert_eq!(api.status(), Some(403));
    }
}
