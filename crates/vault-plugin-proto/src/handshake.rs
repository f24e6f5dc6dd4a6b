//! How a Vault-protocol plugin is started and how it answers, as plain data:
//! the environment the host sets ([`env`](mod@env), [`HostEnv`]), the gRPC metadata
//! and TLS facts of the connection, and the parser of the go-plugin
//! handshake line the plugin prints on stdout ([`HandshakeLine::parse`]).
//!
//! Nothing here reads the environment, files or sockets. In particular,
//! whether the socket a plugin names lies inside the directory the host gave
//! it is for the host to check (on [`HandshakeLine::endpoint`]), as is
//! whether the certificate is a valid X.509 certificate.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable carrying the magic cookie (Vault's and OpenBao's
/// SDKs use the same one).
pub const MAGIC_COOKIE_KEY: &str = "VAULT_BACKEND_PLUGIN";
/// The magic cookie's value. A plugin started without it refuses to run.
pub const MAGIC_COOKIE_VALUE: &str = "6669da05-b1c8-4f49-97d9-c8e5bed98e20";
/// go-plugin's core protocol version, the handshake line's first field.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The app protocol version this crate describes (Vault 1.12+, OpenBao 2.x),
/// the handshake line's second field.
pub const APP_PROTOCOL_VERSION: u32 = 5;
/// The only transport protocol accepted: the handshake line's fifth field.
pub const PROTOCOL_GRPC: &str = "grpc";
/// The TLS server name both sides use with AutoMTLS; each side's
/// certificate is self-signed for it (ECDSA P-521).
pub const TLS_SERVER_NAME: &str = "localhost";
/// gRPC metadata key naming the mount on every backend call to a
/// multiplexing plugin; exactly one non-empty value.
pub const MULTIPLEX_ID_METADATA: &str = "multiplex_id";
/// Longest handshake line accepted, in bytes (excluding the line end); a
/// P-521 certificate in base64 is under 1 KiB.
pub const MAX_LINE_LEN: usize = 16 * 1024;
/// go-plugin's default port range, sent even when the plugin listens on a
/// Unix socket.
pub const DEFAULT_MIN_PORT: u16 = 10000;
/// See [`DEFAULT_MIN_PORT`].
pub const DEFAULT_MAX_PORT: u16 = 25000;

/// Names of the environment variables a host sets for the plugin.
pub mod env {
    /// App protocol versions the host speaks, comma-separated ("5").
    pub const PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";
    /// The host's client certificate, PEM; the plugin trusts only it.
    pub const CLIENT_CERT: &str = "PLUGIN_CLIENT_CERT";
    /// Directory where the plugin creates its Unix sockets (its main one
    /// and those it announces through the broker). Without it, `$TMPDIR`.
    pub const UNIX_SOCKET_DIR: &str = "PLUGIN_UNIX_SOCKET_DIR";
    /// Group to own the plugin's sockets. [`super::HostEnv`] leaves it unset.
    pub const UNIX_SOCKET_GROUP: &str = "PLUGIN_UNIX_SOCKET_GROUP";
    /// Port range for a TCP listener (unused on Unix, but expected).
    pub const MIN_PORT: &str = "PLUGIN_MIN_PORT";
    /// See [`MIN_PORT`].
    pub const MAX_PORT: &str = "PLUGIN_MAX_PORT";
    /// Must be set to a true value to enable go-plugin's broker
    /// multiplexing, which adds a seventh handshake field. [`super::HostEnv`]
    /// leaves it unset, and [`super::HandshakeLine::parse`] refuses a
    /// seventh field.
    pub const MULTIPLEX_GRPC: &str = "PLUGIN_MULTIPLEX_GRPC";
    /// "true": use AutoMTLS. Without it a v5 plugin falls back to the
    /// wrapping-token TLS of protocol v3/v4 and dies.
    pub const AUTOMTLS_ENABLED: &str = "VAULT_PLUGIN_AUTOMTLS_ENABLED";
    /// The server's version, e.g. "1.19.0".
    pub const VERSION: &str = "VAULT_VERSION";
    /// "true" asks the plugin for metadata only (no storage); hosts set
    /// "false" for a normal run.
    pub const METADATA_MODE: &str = "VAULT_PLUGIN_METADATA_MODE";
    /// "true" when the plugin should lock its memory. [`super::HostEnv`]
    /// leaves it unset.
    pub const MLOCK_ENABLED: &str = "VAULT_PLUGIN_MLOCK_ENABLED";
    /// OpenBao's SDK reads these first and falls back to the `VAULT_` names.
    pub const BAO_AUTOMTLS_ENABLED: &str = "BAO_PLUGIN_AUTOMTLS_ENABLED";
    /// See [`BAO_AUTOMTLS_ENABLED`].
    pub const BAO_VERSION: &str = "BAO_VERSION";
    /// See [`BAO_AUTOMTLS_ENABLED`].
    pub const BAO_METADATA_MODE: &str = "BAO_PLUGIN_METADATA_MODE";
    /// See [`BAO_AUTOMTLS_ENABLED`].
    pub const BAO_MLOCK_ENABLED: &str = "BAO_PLUGIN_MLOCK_ENABLED";
}

/// What a host tells a plugin at exec time, beyond the catalog entry's own
/// `env`. [`HostEnv::vars`] gives the variables in the order to apply them
/// (after the entry's, so these win).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEnv<'a> {
    /// The host's ephemeral client certificate, PEM.
    pub client_cert_pem: &'a str,
    /// The server's version, for [`env::VERSION`] and [`env::BAO_VERSION`].
    pub server_version: &'a str,
    /// The private directory for the plugin's sockets.
    pub socket_dir: &'a str,
    /// For [`env::MIN_PORT`]; usually [`DEFAULT_MIN_PORT`].
    pub min_port: u16,
    /// For [`env::MAX_PORT`]; usually [`DEFAULT_MAX_PORT`].
    pub max_port: u16,
}

impl HostEnv<'_> {
    /// Every variable a Vault or OpenBao host sets for a normal run, with
    /// OpenBao's `BAO_` twins so both SDKs read the same values.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE.to_string()),
            (env::PROTOCOL_VERSIONS, APP_PROTOCOL_VERSION.to_string()),
            (env::CLIENT_CERT, self.client_cert_pem.to_string()),
            (env::UNIX_SOCKET_DIR, self.socket_dir.to_string()),
            (env::MIN_PORT, self.min_port.to_string()),
            (env::MAX_PORT, self.max_port.to_string()),
            (env::AUTOMTLS_ENABLED, "true".to_string()),
            (env::BAO_AUTOMTLS_ENABLED, "true".to_string()),
            (env::VERSION, self.server_version.to_string()),
            (env::BAO_VERSION, self.server_version.to_string()),
            (env::METADATA_MODE, "false".to_string()),
            (env::BAO_METADATA_MODE, "false".to_string()),
        ]
    }
}

/// Where the plugin listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// An absolute socket path (not checked against any directory here).
    Unix(PathBuf),
    /// An IP address and port.
    Tcp(SocketAddr),
}

/// A handshake line that passed every check of [`HandshakeLine::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeLine {
    /// Where to dial the plugin.
    pub endpoint: Endpoint,
    /// The plugin's server certificate, DER (decoded from base64, not
    /// parsed as X.509: that is the TLS layer's job). With AutoMTLS it is
    /// the only certificate the host may trust for this connection.
    pub server_cert_der: Vec<u8>,
}

/// The handshake line's fields, in order, named as go-plugin names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    CoreProtocolVersion,
    AppProtocolVersion,
    NetworkType,
    NetworkAddr,
    Protocol,
    ServerCert,
}

impl Field {
    const ALL: [Field; 6] = [
        Field::CoreProtocolVersion,
        Field::AppProtocolVersion,
        Field::NetworkType,
        Field::NetworkAddr,
        Field::Protocol,
        Field::ServerCert,
    ];

    /// go-plugin's name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Field::CoreProtocolVersion => "CORE-PROTOCOL-VERSION",
            Field::AppProtocolVersion => "APP-PROTOCOL-VERSION",
            Field::NetworkType => "NETWORK-TYPE",
            Field::NetworkAddr => "NETWORK-ADDR",
            Field::Protocol => "PROTOCOL",
            Field::ServerCert => "SERVER-CERT",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a handshake line was refused. Values quoted from the line are cut to
/// [`QUOTE_LEN`] characters and shown escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The line is empty (or only whitespace).
    Empty,
    /// The line is longer than [`MAX_LINE_LEN`] bytes.
    TooLong { len: usize },
    /// Fewer than six `|`-separated fields: probably not a go-plugin
    /// plugin at all (or an old one that does not do AutoMTLS).
    MissingFields { found: usize, line: String },
    /// More than six fields (a seventh is go-plugin's broker multiplexing
    /// flag, which this host does not enable).
    ExtraFields { found: usize },
    /// Field 1 is not go-plugin's core protocol version 1.
    CoreVersion { found: String },
    /// Field 2 is not app protocol version 5 (e.g. a v4 plugin).
    AppVersion { found: String },
    /// Field 3 is neither "unix" nor "tcp".
    Network { found: String },
    /// Field 4 is not a usable address for the network of field 3.
    Address { reason: AddressError, found: String },
    /// Field 5 is not "grpc" (e.g. "netrpc").
    Protocol { found: String },
    /// Field 6 is not a base64 DER certificate.
    ServerCert(CertError),
}

/// How many characters of a refused value an error quotes.
pub const QUOTE_LEN: usize = 64;

/// Why the address field was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    Empty,
    /// Contains a control character.
    ControlCharacter,
    /// A Unix socket path that is not absolute.
    NotAbsolute,
    /// A TCP address that is not `ip:port`.
    NotIpPort,
}

/// Why the certificate field was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertError {
    /// Empty: the plugin does not do AutoMTLS.
    Missing,
    /// A character outside base64's standard alphabet (padding `=`
    /// included: the field is unpadded) at this byte offset of the field.
    InvalidCharacter { offset: usize },
    /// A length no unpadded base64 text can have.
    InvalidLength { len: usize },
    /// Non-zero bits after the last byte (not canonical base64).
    TrailingBits,
    /// Decodes, but not to a DER SEQUENCE.
    NotDer,
}

impl HandshakeError {
    /// The field the refusal is about, if it is about one.
    pub fn field(&self) -> Option<Field> {
        match self {
            HandshakeError::Empty
            | HandshakeError::TooLong { .. }
            | HandshakeError::MissingFields { .. }
            | HandshakeError::ExtraFields { .. } => None,
            HandshakeError::CoreVersion { .. } => Some(Field::CoreProtocolVersion),
            HandshakeError::AppVersion { .. } => Some(Field::AppProtocolVersion),
            HandshakeError::Network { .. } => Some(Field::NetworkType),
            HandshakeError::Address { .. } => Some(Field::NetworkAddr),
            HandshakeError::Protocol { .. } => Some(Field::Protocol),
            HandshakeError::ServerCert(_) => Some(Field::ServerCert),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field().map(Field::name).unwrap_or_default();
        match self {
            HandshakeError::Empty => f.write_str("empty handshake line"),
            HandshakeError::TooLong { len } => write!(
                f,
                "handshake line of {len} bytes is longer than {MAX_LINE_LEN}"
            ),
            HandshakeError::MissingFields { found, line } => write!(
                f,
                "not a go-plugin handshake line (expected 6 fields, found {found}): {line:?}"
            ),
            HandshakeError::ExtraFields { found } => write!(
                f,
                "handshake line has {found} fields, expected 6 (broker multiplexing is not enabled)"
            ),
            HandshakeError::CoreVersion { found } => write!(
                f,
                "{field} {found:?} is not go-plugin's core protocol version {CORE_PROTOCOL_VERSION}"
            ),
            HandshakeError::AppVersion { found } => write!(
                f,
                "{field} {found:?} is not supported (this host speaks Vault plugin protocol {APP_PROTOCOL_VERSION})"
            ),
            HandshakeError::Network { found } => {
                write!(f, "{field} {found:?} is neither \"unix\" nor \"tcp\"")
            }
            HandshakeError::Address { reason, found } => {
                let why = match reason {
                    AddressError::Empty => "is empty",
                    AddressError::ControlCharacter => "contains a control character",
                    AddressError::NotAbsolute => "is not an absolute socket path",
                    AddressError::NotIpPort => "is not an ip:port address",
                };
                write!(f, "{field} {found:?} {why}")
            }
            HandshakeError::Protocol { found } => {
                write!(f, "{field} {found:?} is not \"{PROTOCOL_GRPC}\"")
            }
            HandshakeError::ServerCert(e) => match e {
                CertError::Missing => write!(
                    f,
                    "{field} is empty: the plugin did not start with automatic mTLS"
                ),
                CertError::InvalidCharacter { offset } => write!(
                    f,
                    "{field} is not unpadded standard base64 (bad character at offset {offset})"
                ),
                CertError::InvalidLength { len } => {
                    write!(f, "{field} is not unpadded standard base64 (length {len})")
                }
                CertError::TrailingBits => write!(
                    f,
                    "{field} is not canonical base64 (non-zero trailing bits)"
                ),
                CertError::NotDer => write!(f, "{field} does not decode to a DER certificate"),
            },
        }
    }
}

impl std::error::Error for HandshakeError {}

/// At most [`QUOTE_LEN`] characters of `s`, marked when cut.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LEN) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_string(),
    }
}

impl HandshakeLine {
    /// Parses `CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK-TYPE|
    /// NETWORK-ADDR|PROTOCOL|SERVER-CERT`, e.g.
    /// `1|5|unix|/run/lockbox/p/plugin123|grpc|MIIB...`. Surrounding
    /// whitespace (the line end) is ignored, as go-plugin's own client does.
    /// Anything but exactly core version 1, app version 5, "unix" with an
    /// absolute path or "tcp" with `ip:port`, "grpc" and an unpadded
    /// standard-base64 DER certificate is refused, naming the field.
    pub fn parse(line: &str) -> Result<HandshakeLine, HandshakeError> {
        let line = line
            .strip_suffix('\n')
            .map_or(line, |l| l.strip_suffix('\r').unwrap_or(l));
        if line.len() > MAX_LINE_LEN {
            return Err(HandshakeError::TooLong { len: line.len() });
        }
        let line = line.trim();
        if line.is_empty() {
            return Err(HandshakeError::Empty);
        }
        let fields: Vec<&str> = line.split('|').collect();
        if fields.len() < Field::ALL.len() {
            return Err(HandshakeError::MissingFields {
                found: fields.len(),
                line: quote(line),
            });
        }
        if fields.len() > Field::ALL.len() {
            return Err(HandshakeError::ExtraFields {
                found: fields.len(),
            });
        }
        let [core, app, network, address, protocol, cert] = [
            fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
        ];

        if core != CORE_PROTOCOL_VERSION.to_string() {
            return Err(HandshakeError::CoreVersion { found: quote(core) });
        }
        if app != APP_PROTOCOL_VERSION.to_string() {
            return Err(HandshakeError::AppVersion { found: quote(app) });
        }
        let endpoint = parse_endpoint(network, address)?;
        if protocol != PROTOCOL_GRPC {
            return Err(HandshakeError::Protocol {
                found: quote(protocol),
            });
        }
        let server_cert_der = decode_cert(cert).map_err(HandshakeError::ServerCert)?;
        Ok(HandshakeLine {
            endpoint,
            server_cert_der,
        })
    }

    /// The socket path, when the plugin listens on a Unix socket: what the
    /// host checks against the directory it gave in
    /// [`env::UNIX_SOCKET_DIR`].
    pub fn unix_socket(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Unix(path) => Some(path),
            Endpoint::Tcp(_) => None,
        }
    }
}

fn parse_endpoint(network: &str, address: &str) -> Result<Endpoint, HandshakeError> {
    let refuse = |reason| HandshakeError::Address {
        reason,
        found: quote(address),
    };
    if network != "unix" && network != "tcp" {
        return Err(HandshakeError::Network {
            found: quote(network),
        });
    }
    if address.is_empty() {
        return Err(refuse(AddressError::Empty));
    }
    if address.chars().any(char::is_control) {
        return Err(refuse(AddressError::ControlCharacter));
    }
    if network == "unix" {
        if !address.starts_with('/') {
            return Err(refuse(AddressError::NotAbsolute));
        }
        Ok(Endpoint::Unix(PathBuf::from(address)))
    } else {
        address
            .parse()
            .map(Endpoint::Tcp)
            .map_err(|_| refuse(AddressError::NotIpPort))
    }
}

/// The certificate field: strict unpadded standard base64 (Go's
/// `base64.RawStdEncoding`, which go-plugin uses), then a DER SEQUENCE check.
fn decode_cert(field: &str) -> Result<Vec<u8>, CertError> {
    if field.is_empty() {
        return Err(CertError::Missing);
    }
    let der = decode_base64(field)?;
    // A certificate is an ASN.1 SEQUENCE: tag 0x30 and at least a length.
    if der.len() < 2 || der[0] != 0x30 {
        return Err(CertError::NotDer);
    }
    Ok(der)
}

/// Unpadded standard base64, refusing padding, whitespace and non-zero
/// trailing bits (so every value has one spelling).
fn decode_base64(field: &str) -> Result<Vec<u8>, CertError> {
    let text = field.as_bytes();
    if text.len() % 4 == 1 {
        return Err(CertError::InvalidLength { len: text.len() });
    }
    let sextet = |offset: usize, c: u8| -> Result<u32, CertError> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(CertError::InvalidCharacter { offset }),
        };
        Ok(u32::from(v))
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for (n, chunk) in text.chunks(4).enumerate() {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= sextet(n * 4 + i, c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = bits.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&[b0, b1, b2]),
            3 if b2 == 0 => out.extend_from_slice(&[b0, b1]),
            2 if b1 == 0 && b2 == 0 => out.push(b0),
            _ => return Err(CertError::TrailingBits),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in DER value (a SEQUENCE holding a short INTEGER); the TLS
    /// layer, not this parser, decides whether it is a certificate.
    const DER: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x05];

    /// Unpadded standard base64 written out by hand, for the tests only.
    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut buf = [0u8; 3];
            buf[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn line(fields: [&str; 6]) -> String {
        fields.join("|")
    }

    fn good_cert() -> String {
        b64(&DER)
    }

    #[test]
    fn parses_a_unix_line() {
        let cert = good_cert();
        let parsed =
            HandshakeLine::parse(&line(["1", "5", "unix", "/tmp/plugin123", "grpc", &cert]))
                .unwrap();
        assert_eq!(
            parsed.endpoint,
            Endpoint::Unix(PathBuf::from("/tmp/plugin123"))
        );
        assert_eq!(parsed.unix_socket(), Some(Path::new("/tmp/plugin123")));
        assert_eq!(parsed.server_cert_der, DER);
    }

    #[test]
    fn parses_a_tcp_line_with_its_line_end() {
        let cert = good_cert();
        let text = format!(
            "{}\r\n",
            line(["1", "5", "tcp", "127.0.0.1:10001", "grpc", &cert])
        );
        let parsed = HandshakeLine::parse(&text).unwrap();
        assert_eq!(
            parsed.endpoint,
            Endpoint::Tcp("127.0.0.1:10001".parse().unwrap())
        );
        assert_eq!(parsed.unix_socket(), None);
    }

    #[test]
    fn decodes_base64() {
        // RFC 4648's examples, unpadded.
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ").unwrap(), b"M");
        assert_eq!(decode_base64("").unwrap(), b"");
        // Every symbol stands for its own value.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        assert_eq!(b64(&decode_base64(alphabet).unwrap()), alphabet);
        // Every tail length.
        for len in 2..=9u8 {
            let mut der = vec![0x30, len - 2];
            der.extend((0..len - 2).map(|i| i.wrapping_mul(37).wrapping_add(11)));
            let text = b64(&der);
            assert_eq!(decode_cert(&text), Ok(der), "{text}");
        }
    }

    #[test]
    fn refuses_an_empty_line() {
        assert_eq!(HandshakeLine::parse(""), Err(HandshakeError::Empty));
        assert_eq!(HandshakeLine::parse(" \n"), Err(HandshakeError::Empty));
    }

    #[test]
    fn refuses_an_oversized_line() {
        let cert = "A".repeat(MAX_LINE_LEN);
        let text = line(["1", "5", "unix", "/tmp/p", "grpc", &cert]);
        let err = HandshakeLine::parse(&text).unwrap_err();
        assert_eq!(err, HandshakeError::TooLong { len: text.len() });
        assert!(err.to_string().contains("longer than 16384"));
    }

    #[test]
    fn refuses_too_few_fields() {
        let err = HandshakeLine::parse("hello from a random binary").unwrap_err();
        assert_eq!(
            err,
            HandshakeError::MissingFields {
                found: 1,
                line: "hello from a random binary".into()
            }
        );
        // An old plugin without AutoMTLS prints five fields.
        let err = HandshakeLine::parse("1|5|unix|/tmp/p|grpc").unwrap_err();
        assert!(matches!(
            err,
            HandshakeError::MissingFields { found: 5, .. }
        ));
        assert!(err.to_string().contains("expected 6 fields, found 5"));
    }

    #[test]
    fn refuses_a_seventh_field() {
        let cert = good_cert();
        let text = format!("{}|true", line(["1", "5", "unix", "/tmp/p", "grpc", &cert]));
        assert_eq!(
            HandshakeLine::parse(&text),
            Err(HandshakeError::ExtraFields { found: 7 })
        );
    }

    #[test]
    fn refuses_a_wrong_core_version() {
        let cert = good_cert();
        for bad in ["2", "01", "+1", "", "one"] {
            let err = HandshakeLine::parse(&line([bad, "5", "unix", "/tmp/p", "grpc", &cert]))
                .unwrap_err();
            assert_eq!(err, HandshakeError::CoreVersion { found: bad.into() });
            assert_eq!(err.field(), Some(Field::CoreProtocolVersion));
            assert!(err.to_string().starts_with("CORE-PROTOCOL-VERSION"));
        }
    }

    #[test]
    fn refuses_an_unsupported_app_version() {
        let cert = good_cert();
        for bad in ["4", "3", "6", "05", ""] {
            let err = HandshakeLine::parse(&line(["1", bad, "unix", "/tmp/p", "grpc", &cert]))
                .unwrap_err();
            assert_eq!(err, HandshakeError::AppVersion { found: bad.into() });
            assert_eq!(err.field(), Some(Field::AppProtocolVersion));
            assert!(err.to_string().contains("APP-PROTOCOL-VERSION"));
        }
    }

    #[test]
    fn refuses_other_networks() {
        let cert = good_cert();
        for bad in ["udp", "UNIX", "unixgram", "", "tcp4"] {
            let err =
                HandshakeLine::parse(&line(["1", "5", bad, "/tmp/p", "grpc", &cert])).unwrap_err();
            assert_eq!(err, HandshakeError::Network { found: bad.into() });
            assert_eq!(err.field(), Some(Field::NetworkType));
        }
    }

    #[test]
    fn refuses_bad_addresses() {
        let cert = good_cert();
        let cases = [
            ("unix", "", AddressError::Empty),
            ("unix", "plugin.sock", AddressError::NotAbsolute),
            ("unix", "/tmp/a\u{7}b", AddressError::ControlCharacter),
            ("tcp", "", AddressError::Empty),
            ("tcp", "localhost:10000", AddressError::NotIpPort),
            ("tcp", "127.0.0.1", AddressError::NotIpPort),
            ("tcp", "/tmp/p", AddressError::NotIpPort),
        ];
        for (network, address, reason) in cases {
            let err = HandshakeLine::parse(&line(["1", "5", network, address, "grpc", &cert]))
                .unwrap_err();
            assert_eq!(
                err,
                HandshakeError::Address {
                    reason,
                    found: address.into()
                },
                "{network} {address:?}"
            );
            assert_eq!(err.field(), Some(Field::NetworkAddr));
            assert!(err.to_string().starts_with("NETWORK-ADDR"));
        }
    }

    #[test]
    fn refuses_protocols_other_than_grpc() {
        let cert = good_cert();
        for bad in ["netrpc", "GRPC", ""] {
            let err =
                HandshakeLine::parse(&line(["1", "5", "unix", "/tmp/p", bad, &cert])).unwrap_err();
            assert_eq!(err, HandshakeError::Protocol { found: bad.into() });
            assert_eq!(err.field(), Some(Field::Protocol));
        }
    }

    #[test]
    fn refuses_bad_certificates() {
        let good = good_cert();
        let padded = format!("{good}=");
        let mut trailing = good.clone().into_bytes();
        // The last symbol of a 5-byte value carries 2 unused bits.
        let last = trailing.len() - 1;
        trailing[last] = b'B';
        let trailing = String::from_utf8(trailing).unwrap();
        let not_der = b64(&[0x04, 0x03, 1, 2, 3]);
        let cases = [
            ("", CertError::Missing),
            ("MIIB-x", CertError::InvalidCharacter { offset: 4 }),
            ("MIIB x", CertError::InvalidCharacter { offset: 4 }),
            (
                padded.as_str(),
                CertError::InvalidCharacter { offset: good.len() },
            ),
            ("MIIBa", CertError::InvalidLength { len: 5 }),
            (trailing.as_str(), CertError::TrailingBits),
            (not_der.as_str(), CertError::NotDer),
            ("MA", CertError::NotDer),
        ];
        for (cert, want) in cases {
            let err = HandshakeLine::parse(&line(["1", "5", "unix", "/tmp/p", "grpc", cert]))
                .unwrap_err();
            assert_eq!(err, HandshakeError::ServerCert(want), "{cert:?}");
            assert_eq!(err.field(), Some(Field::ServerCert));
            assert!(err.to_string().starts_with("SERVER-CERT"), "{err}");
        }
    }

    #[test]
    fn errors_quote_at_most_a_prefix() {
        let long = "x".repeat(1000);
        let cert = good_cert();
        let err =
            HandshakeLine::parse(&line(["1", "5", "unix", "/tmp/p", &long, &cert])).unwrap_err();
        let HandshakeError::Protocol { found } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(found.len(), QUOTE_LEN + 3);
        assert!(err.to_string().len() < 200);
        // Cutting never splits a character.
        assert_eq!(quote(&"é".repeat(100)).chars().count(), QUOTE_LEN + 3);
    }

    #[test]
    fn host_env_sets_every_variable_once() {
        let vars = HostEnv {
            client_cert_pem: "-----BEGIN CERTIFICATE-----\n...",
            server_version: "1.19.0",
            socket_dir: "/run/lockbox/plugins/abc",
            min_port: DEFAULT_MIN_PORT,
            max_port: DEFAULT_MAX_PORT,
        }
        .vars();
        let get = |k: &str| {
            let hits: Vec<&String> = vars
                .iter()
                .filter(|(n, _)| *n == k)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(hits.len(), 1, "{k}");
            hits[0].as_str()
        };
        assert_eq!(
            get("VAULT_BACKEND_PLUGIN"),
            "6669da05-b1c8-4f49-97d9-c8e5bed98e20"
        );
        assert_eq!(get("PLUGIN_PROTOCOL_VERSIONS"), "5");
        assert!(get("PLUGIN_CLIENT_CERT").starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(get("PLUGIN_UNIX_SOCKET_DIR"), "/run/lockbox/plugins/abc");
        assert_eq!(get("PLUGIN_MIN_PORT"), "10000");
        assert_eq!(get("PLUGIN_MAX_PORT"), "25000");
        assert_eq!(get("VAULT_PLUGIN_AUTOMTLS_ENABLED"), "true");
        assert_eq!(get("BAO_PLUGIN_AUTOMTLS_ENABLED"), "true");
        assert_eq!(get("VAULT_VERSION"), "1.19.0");
        assert_eq!(get("BAO_VERSION"), "1.19.0");
        assert_eq!(get("VAULT_PLUGIN_METADATA_MODE"), "false");
        assert_eq!(get("BAO_PLUGIN_METADATA_MODE"), "false");
        assert_eq!(vars.len(), 12);
        assert!(!vars.iter().any(|(k, _)| *k == env::MULTIPLEX_GRPC));
    }
}
