//! What the server prints on stdout at startup, in Vault's format (tools
//! and tests read it).

use std::io::Write;
use std::net::SocketAddr;

/// Vault's configuration banner: the header, right-aligned keys, a blank line.
pub(crate) fn print_banner(lines: &[(&str, String)]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "==> lockbox server configuration:\n");
    for (k, v) in lines {
        let _ = writeln!(out, "{k:>24}: {v}");
    }
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Vault's line after the banner; tools wait for it.
pub(crate) fn print_started() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "==> lockbox server started! Log data will stream in below:\n"
    );
    let _ = out.flush();
}

/// Vault's listener line: `tcp (addr: "...", max_request_duration: "1m30s",
/// max_request_size: "...", tls: "...")`.
pub(crate) fn listener_line(
    local: SocketAddr,
    limit: Option<usize>,
    max_request_duration: Option<std::time::Duration>,
    tls: bool,
) -> String {
    format!(
        "tcp (addr: \"{local}\", max_request_duration: \"{}\", max_request_size: \"{}\", tls: \"{}\")",
        max_request_duration.map_or_else(
            || "none".to_string(),
            |d| lockbox_core::logical::duration::format(d.as_secs())
        ),
        limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
        if tls { "enabled" } else { "disabled" }
    )
}
