//! The one error type of the benchmark binary. Variants are named after the
//! operation that failed; each carries enough context to act on without a log.

use std::path::PathBuf;

/// Everything that can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line value could not be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file could not be read or written.
    #[error("{action} {path}")]
    File {
        /// What we were doing ("reading", "writing").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A CA bundle had no usable certificate.
    #[error("loading CA certificates from {what}: {reason}")]
    LoadCa {
        /// Where the certificates came from.
        what: String,
        /// Why they could not be used.
        reason: String,
    },

    /// The TLS client configuration could not be built.
    #[error("building the TLS client config")]
    TlsConfig(#[source] rustls::Error),

    /// A server URL could not be parsed or resolved.
    #[error("server URL {url}: {reason}")]
    ServerUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A TCP connection could not be opened.
    #[error("connecting to {addr}")]
    Connect {
        /// The address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The TLS handshake failed (for example: certificate not trusted by the given CA).
    #[error("TLS handshake with {addr}")]
    TlsHandshake {
        /// The address.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An HTTP exchange failed at the transport level.
    #[error("HTTP {what}")]
    Http {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: hyper::Error,
    },

    /// A request could not be built.
    #[error("building request {0}")]
    BuildRequest(String),

    /// A setup request answered with an unexpected status.
    #[error("{what}: expected HTTP {expected}, got {status}: {body}")]
    UnexpectedStatus {
        /// The request.
        what: String,
        /// The expected status.
        expected: u16,
        /// The actual status.
        status: u16,
        /// The start of the response body.
        body: String,
    },

    /// A response body did not hold what the benchmark wrote.
    #[error("{what}: {reason}")]
    UnexpectedBody {
        /// The request.
        what: String,
        /// What was wrong.
        reason: String,
    },

    /// The lockbox dev server could not be started.
    #[error("starting lockbox ({binary})")]
    SpawnLockbox {
        /// The binary path.
        binary: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A lockbox server (dev mode or a config-mode node) did not print what
    /// shows it started, in time.
    #[error("lockbox server: {reason}\n---- its output ----\n{output}")]
    LockboxStartup {
        /// What went wrong.
        reason: String,
        /// The output it printed so far.
        output: String,
    },

    /// A config-mode node of the `ha` benchmark did not reach the state the
    /// benchmark waited for (unsealed, active, standby, taking writes).
    #[error("lockbox node {node}: {what}\n---- end of its log ----\n{log_tail}")]
    Node {
        /// The node's name (`file`, `pg`, `ha-1`, ...).
        node: String,
        /// What it did not do.
        what: String,
        /// The last lines of its log.
        log_tail: String,
    },

    /// The kube harness script failed.
    #[error("{script} failed ({status})\n---- its output ----\n{output}")]
    Harness {
        /// The script.
        script: PathBuf,
        /// Its exit status.
        status: String,
        /// Its stderr and stdout.
        output: String,
    },

    /// A server other than lockbox (e.g. `bao server -dev`) did not start.
    #[error("{server}: {reason}\n---- its output ----\n{output}")]
    ServerStartup {
        /// The command.
        server: String,
        /// Why it is not usable.
        reason: String,
        /// The end of its log.
        output: String,
    },

    /// A helper command could not be run.
    #[error("running {command}")]
    RunCommand {
        /// The command.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A helper command ran but failed.
    #[error("{command} failed ({status})\n---- its output ----\n{output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr and stdout.
        output: String,
    },

    /// `lockbox operator run` did not start, exited, or did not do what the
    /// benchmark waited for.
    #[error("operator: {what}\n---- last lines of its log {log_path} ----\n{log_tail}")]
    Operator {
        /// What went wrong.
        what: String,
        /// Its log file (kept only with --keep-work-dir).
        log_path: String,
        /// The end of its log.
        log_tail: String,
    },

    /// A kubeconfig or harness env file could not be used.
    #[error("kube connection settings from {from}: {reason}")]
    KubeSettings {
        /// Where they came from.
        from: String,
        /// What is missing or wrong.
        reason: String,
    },

    /// A load worker task panicked or was cancelled.
    #[error("load worker: {0}")]
    Worker(String),

    /// The run was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

/// The crate-wide result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `Error::File` for `path`.
    pub fn file(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::File {
            action,
            path: path.into(),
            source,
        }
    }
}
