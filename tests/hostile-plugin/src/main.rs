//! `lockbox-hostile-plugin`: a secrets engine that attacks the host that
//! runs it and the other plugins next to it, and reports what worked. Used
//! by `tests/integration/plugin_isolation.rs`; never shipped (its binary
//! name is not `lockbox-plugin-*`).
//!
//! * write `attack` (fields below): tries every attack, answers
//!   `{"attempts": {NAME: {"succeeded": bool, "detail": TEXT}}, ...}`;
//! * write `flood` with `bytes` and `stream` (`stdout`/`stderr`): prints
//!   that many bytes without a newline, then one newline;
//! * `HOSTILE_HANDSHAKE_FLOOD=N` in its environment: prints N bytes without
//!   a newline instead of the handshake and waits;
//! * `lockbox-hostile-plugin --probe PID`: runs the attacks on the host
//!   process PID outside lockbox (the test runs it without capabilities to
//!   see what the server's own hardening stops), prints the JSON report;
//! * `lockbox-hostile-plugin --storage-get SOCKET TOKEN MOUNT KEY`: one
//!   storage call; the plugin runs itself this way to call its own host
//!   socket from a child process.
//!
//! Fields of `attack`: `sockets` (host sockets of other plugins), `pids`
//! (their process IDs), `mount` and `key` (a mount of another plugin and a
//! key in it), `outside_file` (a file to read), `outside_dir` (a directory
//! to create a file in).

use lockbox_plugin_proto::v1::StorageGetArgs;
use lockbox_plugin_proto::v1::storage_client::StorageClient;
use lockbox_plugin_proto::{HOST_SOCKET_KEY, HOST_TOKEN_KEY, HOST_TOKEN_METADATA};
use lockbox_sdk::framework::{Path, PathBackend};
use lockbox_sdk::{Error, Kind, Response};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::process::ExitCode;

type Outcome = Result<String, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--probe") => {
            let pid: i32 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            let mut attempts = Map::new();
            host_attacks(pid, &mut attempts);
            println!("{}", Value::Object(attempts));
            return ExitCode::SUCCESS;
        }
        Some("--storage-get") if args.len() == 6 => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else {
                return ExitCode::FAILURE;
            };
            let out = runtime.block_on(storage_get(&args[2], Some(&args[3]), &args[4], &args[5]));
            println!("{}", json!({"ok": out.is_ok(), "detail": detail(&out)}));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    if let Some(n) = std::env::var("HOSTILE_HANDSHAKE_FLOOD")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        flood(&mut std::io::stdout(), n, false);
        std::thread::sleep(std::time::Duration::from_secs(60));
        return ExitCode::SUCCESS;
    }
    let token = std::env::var(HOST_TOKEN_KEY).unwrap_or_default();
    let socket = std::env::var(HOST_SOCKET_KEY).unwrap_or_default();
    lockbox_sdk::serve(backend(token, socket))
}

fn flood(out: &mut dyn Write, bytes: usize, newline: bool) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        if out.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n;
    }
    if newline {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

fn detail(o: &Outcome) -> String {
    match o {
        Ok(d) | Err(d) => d.clone(),
    }
}

fn record(attempts: &mut Map<String, Value>, name: &str, outcome: Outcome) {
    attempts.insert(
        name.to_string(),
        json!({"succeeded": outcome.is_ok(), "detail": detail(&outcome)}),
    );
}

fn read_file(path: &str) -> Outcome {
    std::fs::read(path)
        .map(|b| format!("read {} bytes of {path}", b.len()))
        .map_err(|e| format!("{path}: {e}"))
}

/// The attacks on the host process `pid`: its environment, its memory,
/// ptrace, a signal.
fn host_attacks(pid: i32, attempts: &mut Map<String, Value>) {
    let environ = std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            let text = String::from_utf8_lossy(&b);
            let keys = text
                .split('\0')
                .find_map(|kv| kv.strip_prefix("LOCKBOX_UNSEAL_KEYS="))
                .filter(|v| !v.trim_matches('\0').is_empty());
            format!(
                "read {} bytes; LOCKBOX_UNSEAL_KEYS {}",
                b.len(),
                if keys.is_some() { "PRESENT" } else { "absent" }
            )
        })
        .map_err(|e| e.to_string());
    record(attempts, "host_environ", environ);
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .map(|_| "opened /proc/<host>/mem".to_string())
        .map_err(|e| e.to_string());
    record(attempts, "host_mem", mem);
    // SAFETY: ptrace and kill with integer arguments.
    let seize = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) };
    let ptrace = if seize == 0 {
        unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
        Ok("PTRACE_SEIZE of the host succeeded".to_string())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    };
    record(attempts, "host_ptrace", ptrace);
    let signal = if unsafe { libc::kill(pid, 0) } == 0 {
        Ok("kill(host, 0) succeeded".to_string())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    };
    record(attempts, "host_signal", signal);
}

async fn storage_get(socket: &str, token: Option<&str>, mount: &str, key: &str) -> Outcome {
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{socket}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect {socket}: {e}"))?;
    let mut req = tonic::Request::new(StorageGetArgs {
        mount_id: mount.to_string(),
        key: key.to_string(),
    });
    if let Some(t) = token {
        let value = t.parse().map_err(|_| "token is not ASCII".to_string())?;
        req.metadata_mut().insert(HOST_TOKEN_METADATA, value);
    }
    match StorageClient::new(channel).get(req).await {
        Ok(r) => {
            let r = r.into_inner();
            Ok(format!(
                "found={} value={}",
                r.found,
                String::from_utf8_lossy(&r.value)
            ))
        }
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
    }
}

fn strings(data: &Map<String, Value>, field: &str) -> Vec<String> {
    data.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn field(data: &Map<String, Value>, name: &str) -> String {
    data.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Capabilities and `no_new_privs` as the plugin sees them.
fn privileges() -> Value {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two data structs (version 3) we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &header as *const Header,
            data.as_mut_ptr(),
        )
    };
    let effective = u64::from(data[0].effective) | (u64::from(data[1].effective) << 32);
    let permitted = u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32);
    // SAFETY: prctl with integer arguments.
    let bounding = (0..64)
        .filter(|&c| unsafe { libc::prctl(libc::PR_CAPBSET_READ, c, 0, 0, 0) } == 1)
        .count();
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1;
    json!({
        "capget_ok": rc == 0,
        "cap_effective": effective,
        "cap_permitted": permitted,
        "cap_bounding_count": bounding,
        "no_new_privs": nnp,
        "uid": unsafe { libc::geteuid() },
    })
}

async fn attack(
    data: &Map<String, Value>,
    own_mount: &str,
    token: &str,
    own_socket: &str,
) -> Map<String, Value> {
    let mut attempts = Map::new();
    host_attacks(unsafe { libc::getppid() }, &mut attempts);

    // Other plugins: their environment (for their host token) ...
    let mut stolen = Vec::new();
    let mut environs = Vec::new();
    for pid in strings(data, "pids") {
        match std::fs::read(format!("/proc/{pid}/environ")) {
            Ok(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                if let Some(t) = text
                    .split('\0')
                    .find_map(|kv| kv.strip_prefix(&format!("{HOST_TOKEN_KEY}=")))
                {
                    stolen.push(t.to_string());
                }
                environs.push(Ok(format!("read /proc/{pid}/environ")));
            }
            Err(e) => environs.push(Err(format!("/proc/{pid}/environ: {e}"))),
        }
    }
    let environ = match environs.iter().find(|o| o.is_ok()) {
        Some(ok) => ok.clone(),
        None => Err(environs.iter().map(detail).collect::<Vec<_>>().join("; ")),
    };
    record(&mut attempts, "other_environ", environ);

    // ... and their host storage sockets, with our token, none, a stolen one.
    let (mount, key) = (field(data, "mount"), field(data, "key"));
    let mut calls = Vec::new();
    for socket in strings(data, "sockets") {
        let mut tokens: Vec<Option<&str>> = vec![Some(token), None, Some("0000")];
        tokens.extend(stolen.iter().map(|t| Some(t.as_str())));
        for t in tokens {
            calls.push(storage_get(&socket, t, &mount, &key).await);
        }
    }
    let other = match calls.iter().find(|o| o.is_ok()) {
        Some(ok) => ok.clone(),
        None if calls.is_empty() => Err("no sockets given".into()),
        None => Err(calls.iter().map(detail).collect::<Vec<_>>().join("; ")),
    };
    record(&mut attempts, "other_storage", other);

    // Our own host socket, our own mount: the positive control.
    let own = storage_get(own_socket, Some(token), own_mount, "anything").await;
    record(&mut attempts, "own_storage", own);
    // Our own socket from a child process, with the right token.
    let child = std::process::Command::new("/proc/self/exe")
        .args(["--storage-get", own_socket, token, own_mount, "anything"])
        .output()
        .map_err(|e| format!("cannot start a child: {e}"))
        .and_then(|out| {
            let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
                format!(
                    "child output {:?}: {e}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })?;
            let d = v["detail"].as_str().unwrap_or_default().to_string();
            if v["ok"] == true { Ok(d) } else { Err(d) }
        });
    record(&mut attempts, "child_storage", child);

    // The filesystem outside the sandbox.
    record(
        &mut attempts,
        "outside_read",
        read_file(&field(data, "outside_file")),
    );
    let target = std::path::Path::new(&field(data, "outside_dir")).join("hostile-was-here");
    let write = std::fs::write(&target, b"x")
        .map(|()| format!("created {}", target.display()))
        .map_err(|e| format!("{}: {e}", target.display()));
    if write.is_ok() {
        let _ = std::fs::remove_file(&target);
    }
    record(&mut attempts, "outside_write", write);
    record(&mut attempts, "etc_shadow", read_file("/etc/shadow"));
    attempts
}

fn backend(token: String, socket: String) -> PathBackend {
    PathBackend::new(Kind::Secret, "v0.0.1")
        .help("Attacks its host; for isolation tests only.")
        .path(Path::new("attack").write(move |req, _, _| {
            let (token, socket) = (token.clone(), socket.clone());
            async move {
                let attempts = attack(&req.data, &req.mount.id, &token, &socket).await;
                let mut data = Map::new();
                data.insert("attempts".into(), Value::Object(attempts));
                data.insert("own_token".into(), Value::String(token));
                data.insert("own_socket".into(), Value::String(socket));
                data.insert("own_pid".into(), json!(std::process::id()));
                data.insert("privileges".into(), privileges());
                Ok(Some(Response::data(data)))
            }
        }))
        .path(Path::new("flood").write(|req, _, _| async move {
            let bytes = req
                .data
                .get("bytes")
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::invalid("bytes: a number"))?;
            let bytes = usize::try_from(bytes).map_err(|_| Error::invalid("bytes: too large"))?;
            match req.data.get("stream").and_then(Value::as_str) {
                Some("stdout") => flood(&mut std::io::stdout(), bytes, true),
                Some("stderr") => flood(&mut std::io::stderr(), bytes, true),
                _ => return Err(Error::invalid("stream: stdout or stderr")),
            }
            Ok(None)
        }))
}
