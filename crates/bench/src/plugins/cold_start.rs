//! Phase 2: cold starts (launch steps, reloads, new non-multiplexed mounts).

use super::*;

// ---------------------------------------------------------------- 2. cold start

/// Cold starts of new mounts of one non-multiplexed catalog entry.
#[derive(Default)]
pub(super) struct SoloStarts {
    /// Size of the binary the entry runs, in bytes.
    pub(super) binary_bytes: u64,
    /// `POST sys/mounts/<fresh>`: returns once the process is healthy and the mount set up.
    pub(super) enable: Samples,
    /// The same, through writing one key and reading it back (first 200).
    pub(super) first_read: Samples,
    /// Enables after which exactly one more process with the entry's argv[0] ran.
    pub(super) new_process: usize,
}

#[derive(Default)]
pub(super) struct ColdStart {
    /// `PUT sys/plugins/reload/backend {"plugin":"mock"}` round trips, idle server.
    pub(super) reload: Samples,
    /// New mounts of `mock-solo` (the benchmarked binary, multiplexing off).
    pub(super) solo: SoloStarts,
    /// New mounts of `mock-solo-stripped` (the same binary without debug info), if
    /// `strip` was available: how much of the cold start is proportional to file size.
    pub(super) stripped: Option<SoloStarts>,
    /// Binary size in bytes.
    pub(super) binary_bytes: u64,
    /// Reading and hashing the binary in this process (what the host does before every exec).
    pub(super) hash: Samples,
    /// Copying the bytes into a memfd (what the host does next).
    pub(super) memfd: Samples,
    /// exec of the binary from a memfd until it exits (no magic cookie: it refuses at once).
    pub(super) exec: Samples,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A sealed-less memfd holding `bytes` (close-on-exec).
pub(crate) fn memfd_with(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write as _;
    use std::os::fd::FromRawFd as _;
    // SAFETY: a valid NUL-terminated name; the fd is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"lockbox-bench-plugin".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and nothing else owns it.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(bytes)?;
    Ok(f)
}

/// Times the host's pre-handshake work on the binary, in this process: read + sha256,
/// copy into a memfd, exec → exit (refused for lack of the magic cookie).
pub(super) fn launch_steps(bin: &Path, n: usize, cs: &mut ColdStart) -> Result<()> {
    use std::os::fd::AsRawFd as _;
    for _ in 0..n {
        let t0 = Instant::now();
        let bytes = read_file(bin)?;
        let _ = sha256_hex(&bytes);
        cs.hash.push(t0.elapsed());
        cs.binary_bytes = bytes.len() as u64;

        let t0 = Instant::now();
        let memfd = memfd_with(&bytes).map_err(|e| Error::file("copying into a memfd", bin, e))?;
        cs.memfd.push(t0.elapsed());

        let exe = format!("/proc/self/fd/{}", memfd.as_raw_fd());
        let t0 = Instant::now();
        let status = std::process::Command::new(&exe)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|source| Error::RunCommand {
                command: format!("{} (from a memfd)", bin.display()),
                source,
            })?;
        // A plugin started without the cookie explains and exits 1.
        if status.code() == Some(1) {
            cs.exec.push(t0.elapsed());
        }
    }
    Ok(())
}

pub(super) async fn reload_starts(ep: &Endpoint, n: usize, cs: &mut ColdStart) -> Result<()> {
    let mut conn = Conn::connect(ep).await?;
    let reload_body = Bytes::from(serde_json::json!({ "plugin": PLUGIN_NAME }).to_string());
    let check = format!("/v1/{PLUGIN_MOUNT}/bench/key-0");
    eprintln!("  {n} reloads of {PLUGIN_NAME} (idle)");
    for _ in 0..n {
        let t0 = Instant::now();
        conn.expect(
            ep,
            Method::PUT,
            "/v1/sys/plugins/reload/backend",
            reload_body.clone(),
            &[200],
        )
        .await?;
        cs.reload.push(t0.elapsed());
        conn.expect(ep, Method::GET, &check, Bytes::new(), &[200])
            .await?;
        // Let the old process's exit and the new one's output settle.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Registers `name` (`command` in the plugin directory, `multiplexing: false`) and
/// enables, uses and disables `n` fresh mounts of it, one after the other.
pub(super) async fn solo_starts(
    ep: &Endpoint,
    server: u32,
    n: usize,
    name: &str,
    command: &Path,
) -> Result<SoloStarts> {
    let bytes = read_file(command)?;
    let file = command
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("bad plugin file {}", command.display())))?;
    let mut out = SoloStarts {
        binary_bytes: bytes.len() as u64,
        ..Default::default()
    };
    let mut conn = Conn::connect(ep).await?;
    eprintln!(
        "  {n} mounts of {name} ({:.1} MB, multiplexing off: one process each)",
        bytes.len() as f64 / 1e6
    );
    let body = serde_json::json!({
        "sha256": sha256_hex(&bytes),
        "command": file,
        "multiplexing": false,
    });
    drop(bytes);
    conn.expect(
        ep,
        Method::PUT,
        &format!("/v1/sys/plugins/catalog/secret/{name}"),
        Bytes::from(body.to_string()),
        &[204, 200],
    )
    .await?;
    let mount_body = Bytes::from(serde_json::json!({ "type": name }).to_string());
    let probe_body = lockbox::write_body("cold");
    for i in 0..n {
        let mount = format!("{name}-{i}");
        let before = children_named(server, file).len();
        let t0 = Instant::now();
        conn.expect(
            ep,
            Method::POST,
            &format!("/v1/sys/mounts/{mount}"),
            mount_body.clone(),
            &[204, 200],
        )
        .await?;
        out.enable.push(t0.elapsed());
        let probe = format!("/v1/{mount}/probe");
        conn.expect(ep, Method::PUT, &probe, probe_body.clone(), &[204, 200])
            .await?;
        let deadline = t0 + Duration::from_secs(10);
        loop {
            let (status, body) = conn.send(ep, Method::GET, &probe, Bytes::new()).await?;
            if status.as_u16() == 200 {
                out.first_read.push(t0.elapsed());
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::UnexpectedStatus {
                    what: format!("GET {probe} (first read after enabling)"),
                    expected: 200,
                    status: status.as_u16(),
                    body: http::snippet(&body),
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if children_named(server, file).len() == before + 1 {
            out.new_process += 1;
        }
        conn.expect(
            ep,
            Method::DELETE,
            &format!("/v1/sys/mounts/{mount}"),
            Bytes::new(),
            &[204, 200],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(out)
}

/// A copy of `bin` without debug info (`strip --strip-debug`, like Cargo's
/// `strip = "debuginfo"`) next to it, or why not.
pub(super) fn strip_debug(bin: &Path) -> std::result::Result<PathBuf, String> {
    let out = bin.with_file_name(format!("{PLUGIN_FILE}-stripped"));
    let res = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg(bin)
        .arg("-o")
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run strip: {e}"))?;
    if !res.status.success() {
        return Err(format!(
            "strip failed ({}): {}",
            res.status,
            String::from_utf8_lossy(&res.stderr).trim()
        ));
    }
    Ok(out)
}
