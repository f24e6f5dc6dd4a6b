//! The API listener under attack, against the real `lockbox` binary:
//! unfinished headers, stalled bodies, idle keep-alive connections, a
//! slowloris run, the connection limit, and oversized bodies (unauthenticated
//! ones refused from their headers, authenticated ones of many tiny JSON
//! values refused before parsing), with the server's memory read from
//! `/proc/<pid>/status`.

use crate::common::ConfigServer;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// In-memory storage and plain HTTP on 127.0.0.1:0, with `keys` in the
/// listener block.
fn start(keys: &str) -> ConfigServer {
    ConfigServer::start(&format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n{keys}\n}}\n"
    ))
}

fn host(server: &ConfigServer) -> String {
    server.addr.trim_start_matches("http://").to_string()
}

fn connect(server: &ConfigServer) -> TcpStream {
    let s = TcpStream::connect(host(server)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// How a connection ended when read to its end.
#[derive(Debug, PartialEq)]
enum End {
    /// The server closed it (EOF or reset) after sending these bytes.
    Closed(String),
    /// Still open after the read timeout.
    Open,
}

/// Reads until the server closes the connection or the read timeout.
fn read_to_close(s: &mut TcpStream) -> End {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return End::Closed(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return End::Open;
            }
            Err(_) => return End::Closed(String::from_utf8_lossy(&got).into_owned()),
        }
    }
}

/// Reads one HTTP/1.1 response (head and Content-Length body); returns the
/// status line and the body.
fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("response head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("response body");
    (
        head.lines().next().unwrap_or_default().to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn get(s: &mut TcpStream, path: &str) -> (String, String) {
    write!(s, "GET /v1/{path} HTTP/1.1\r\nHost: lockbox\r\n\r\n").unwrap();
    read_response(s)
}

/// A kB value of the server's `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn status_kb(server: &ConfigServer, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.process.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// `{"a":[0,0,...]}` of `size` bytes: about `size / 2` JSON values.
fn tiny_values_body(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(b"{\"a\":[0");
    while body.len() + 4 < size {
        body.extend_from_slice(b",0");
    }
    body.extend_from_slice(b"]}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn unfinished_headers_and_bodies_are_cut_by_the_timeouts() {
    let server = start("  http_read_header_timeout = 1\n  http_read_timeout = 2");
    // Half a request head, then nothing.
    let mut half = connect(&server);
    half.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: lockbox\r\nX-Slow: ")
        .unwrap();
    // A connection that sends nothing at all.
    let mut silent = connect(&server);
    // A body that stops halfway (sys/unseal needs no token, so the body is read).
    let mut stalled = connect(&server);
    stalled
        .write_all(
            b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: lockbox\r\nContent-Length: 100\r\n\r\n{\"key\":",
        )
        .unwrap();
    let started = Instant::now();
    assert_eq!(read_to_close(&mut half), End::Closed(String::new()));
    assert_eq!(read_to_close(&mut silent), End::Closed(String::new()));
    match read_to_close(&mut stalled) {
        End::Closed(reply) => {
            assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
            assert!(reply.contains("http_read_timeout"), "{reply}");
        }
        End::Open => panic!("a stalled body kept its connection open"),
    }
    // All three ended long before the 15 s read timeout of this test.
    assert!(started.elapsed() < Duration::from_secs(15));
    // The server still serves.
    let mut fresh = connect(&server);
    assert_eq!(get(&mut fresh, "sys/seal-status").0, "HTTP/1.1 200 OK");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_request_is_cut_by_max_request_duration() {
    let server = start("  http_read_timeout = 60\n  max_request_duration = 1");
    server
        .process
        .assert_banner(|l| l.contains("max_request_duration: \"1s\""));
    let mut stalled = connect(&server);
    stalled
        .write_all(b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: lockbox\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    match read_to_close(&mut stalled) {
        End::Closed(reply) => {
            assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
            assert!(reply.contains("max_request_duration"), "{reply}");
        }
        End::Open => panic!("the request outlived max_request_duration"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let server = start("  http_read_header_timeout = 1\n  http_idle_timeout = 4");
    let mut conn = connect(&server);
    assert_eq!(get(&mut conn, "sys/seal-status").0, "HTTP/1.1 200 OK");
    // Idle longer than the header timeout: a keep-alive connection waiting
    // for its next request is not cut by it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(&mut conn, "sys/seal-status").0, "HTTP/1.1 200 OK");
    // Then idle past the idle timeout: closed.
    assert_eq!(read_to_close(&mut conn), End::Closed(String::new()));
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_bodies_are_refused_unread_with_bounded_memory() {
    const SIZE: usize = 8 << 20;
    let mut server = start("");
    let body = tiny_values_body(SIZE);
    let head = |path: &str| {
        format!(
            "POST /v1/{path} HTTP/1.1\r\nHost: lockbox\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
    };
    // Sealed: 503 from the headers alone (64 KiB of the body sent).
    let mut c = connect(&server);
    c.write_all(head("secret/x").as_bytes()).unwrap();
    c.write_all(&body[..65536]).unwrap();
    let (status, text) = read_response(&mut c);
    assert!(status.starts_with("HTTP/1.1 503"), "{status} {text}");

    server.init_unseal(1, 1).await;
    let r = server
        .root("POST", "sys/mounts/secret", Some(json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let hwm_before = status_kb(&server, "VmHWM");

    // No token, and a wrong one: 403 while 8 MiB minus 64 KiB of the body
    // are still unsent.
    for token in ["", "X-Vault-Token: lbs.not-a-token\r\n"] {
        let mut c = connect(&server);
        let h = head("secret/x").replace("\r\n\r\n", &format!("\r\n{token}\r\n"));
        c.write_all(h.as_bytes()).unwrap();
        c.write_all(&body[..65536]).unwrap();
        let (status, text) = read_response(&mut c);
        assert!(status.starts_with("HTTP/1.1 403"), "{status} {text}");
        assert!(text.contains("permission denied"), "{text}");
    }

    // 32 such requests at once, each sending all 8 MiB.
    let addr = host(&server);
    let attackers: Vec<_> = (0..32)
        .map(|i| {
            let (addr, head, body) = (addr.clone(), head("secret/x"), body.clone());
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(&addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut w = c.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    // The server stops reading: the write fails, as expected.
                    let _ = w.write_all(head.as_bytes());
                    let _ = w.write_all(&body);
                });
                let reply = match read_to_close(&mut c) {
                    End::Closed(r) => r,
                    End::Open => panic!("attacker {i}: no answer"),
                };
                drop(c);
                let _ = writer.join();
                reply
            })
        })
        .collect();
    for a in attackers {
        let reply = a.join().unwrap();
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply:?}");
    }
    let grown_mb = (status_kb(&server, "VmHWM").saturating_sub(hwm_before)) / 1024;
    eprintln!("peak RSS growth for 34 unauthenticated 8 MiB bodies: {grown_mb} MB");
    assert!(
        grown_mb < 20,
        "the server's peak RSS grew by {grown_mb} MB for refused bodies"
    );
    // Still serving, and a valid token still writes.
    let ok = server
        .root("PUT", "secret/x", Some(json!({"v": "fine"})))
        .await;
    assert_eq!(ok.status, 204, "{:?}", ok.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_bodies_of_tiny_values_are_refused_before_parsing() {
    let mut server = start("");
    server.init_unseal(1, 1).await;
    let r = server
        .root("POST", "sys/mounts/secret", Some(json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let hwm_before = status_kb(&server, "VmHWM");
    let body = tiny_values_body(8 << 20);
    let r = server
        .client
        .put(format!("{}/v1/secret/x", server.addr))
        .header("X-Vault-Token", &server.root_token)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("JSON values"), "{text}");
    // The 8 MiB body itself is read; parsing it would have cost ~16x that.
    let grown_mb = (status_kb(&server, "VmHWM").saturating_sub(hwm_before)) / 1024;
    eprintln!("peak RSS growth for one authenticated 8 MiB body of tiny values: {grown_mb} MB");
    assert!(
        grown_mb < 40,
        "the server's peak RSS grew by {grown_mb} MB for one 8 MiB body"
    );
    assert_eq!(server.root("GET", "secret/x", None).await.status, 404);
    // Large strings are still fine.
    let big = "x".repeat(4 << 20);
    let ok = server
        .root("PUT", "secret/x", Some(json!({ "v": big })))
        .await;
    assert_eq!(ok.status, 204, "{:?}", ok.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_does_not_slow_down_a_normal_client() {
    const ATTACKERS: usize = 300;
    let server = start("  http_read_header_timeout = 2");
    let addr = host(&server);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Keeps ATTACKERS connections open, each sending its head one byte at a
    // time; reconnects those the server closes and counts them.
    let slowloris = {
        let (addr, stop) = (addr.clone(), stop.clone());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let head = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: lockbox\r\nX-Slow: ";
            let mut conns = Vec::with_capacity(ATTACKERS);
            for _ in 0..ATTACKERS {
                conns.push((tokio::net::TcpStream::connect(&addr).await.unwrap(), 0usize));
            }
            let mut closed = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (conn, sent) in conns.iter_mut() {
                    let mut probe = [0u8; 1];
                    let gone = match conn.try_read(&mut probe) {
                        Ok(_) => true,
                        Err(e) => e.kind() != ErrorKind::WouldBlock,
                    };
                    let byte = head.get(*sent).copied().unwrap_or(b'a');
                    if gone || conn.write_all(&[byte]).await.is_err() {
                        closed += 1;
                        *conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
                        *sent = 0;
                    } else {
                        *sent += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drop(conns);
            closed
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The normal client: pooled keep-alive and a new connection per request.
    let pooled = crate::common::client();
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut latencies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        for client in [&pooled, &fresh] {
            let t = Instant::now();
            let r = client
                .get(format!("{}/v1/sys/seal-status", server.addr))
                .send()
                .await
                .expect("a normal request fails under slowloris");
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
            latencies.push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let closed = slowloris.await.unwrap();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "normal client under slowloris: {} requests, p50 {:?}, p99 {p99:?}, max {:?}; {closed} slow connections closed",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert!(
        p99 < Duration::from_millis(100),
        "p99 {p99:?} over {} requests",
        latencies.len()
    );
    // Every slowloris connection was cut by the header timeout (2 s) at
    // least once in the 6 s run.
    assert!(
        closed >= ATTACKERS,
        "only {closed} of {ATTACKERS} slow connections were closed by the server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_max_connections_are_closed_until_slots_free() {
    let server = start("  max_connections = 4");
    // Four keep-alive connections, each with a served request: they hold
    // the four slots.
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    for c in &mut held {
        assert_eq!(get(c, "sys/seal-status").0, "HTTP/1.1 200 OK");
    }
    // A fifth is closed without an answer, promptly.
    for _ in 0..3 {
        let mut extra = connect(&server);
        let _ = extra.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: lockbox\r\n\r\n");
        assert_eq!(read_to_close(&mut extra), End::Closed(String::new()));
    }
    server.process.wait_log(0, "max_connections (4) reached");
    // The held ones still work.
    assert_eq!(get(&mut held[0], "sys/seal-status").0, "HTTP/1.1 200 OK");
    // Once they go (the server notices the closes shortly), four new
    // connections are served again, at the same time.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
        let served = again.iter_mut().all(|c| {
            let _ = c.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: lockbox\r\n\r\n");
            let mut first = [0u8; 12];
            c.read_exact(&mut first).is_ok() && &first == b"HTTP/1.1 200"
        });
        if served {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not freed");
        drop(again);
        std::thread::sleep(Duration::from_millis(50));
    }
}
