//! End-to-end tests of the client commands against a scripted HTTP server on
//! 127.0.0.1: argument parsing as the root binary does it, the requests the
//! commands send, what they print and the exit codes.
//!
//! The fake server speaks just enough HTTP/1.1 (one request per connection)
//! and answers from a closure, recording every request.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the root binary embeds the commands.
#[derive(Debug, Parser)]
#[command(name = "lockbox")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

// The unit `Server` stand-in makes the size difference look large.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Stand-in for the root binary's own server command.
    Server,
    #[command(flatten)]
    Client(lockbox_cli::Command),
}

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    token: Option<String>,
    body: Value,
}

type Handler = Arc<dyn Fn(&Request) -> (u16, Value) + Send + Sync>;

struct FakeServer {
    address: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    async fn start(handler: impl Fn(&Request) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut stream).await else {
                        return;
                    };
                    recorded.lock().unwrap().push(req.clone());
                    let (status, body) = handler(&req);
                    let text = if body.is_null() {
                        String::new()
                    } else {
                        body.to_string()
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        FakeServer { address, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let mut length = 0;
    let mut token = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "x-vault-token" => token = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body_bytes = &buf[header_end..];
    let body = if body_bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body_bytes).unwrap_or(Value::Null)
    };
    Some(Request {
        method,
        path,
        token,
        body,
    })
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Parses `args` the way the root binary does and runs the client command.
async fn run(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Outcome {
    let argv: Vec<OsString> = std::iter::once("lockbox")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    let cli = match Cli::try_parse_from(lockbox_cli::normalize_args(argv)) {
        Ok(cli) => cli,
        Err(e) => {
            return Outcome {
                code: lockbox_cli::clap_exit_code(&e),
                stdout: String::new(),
                stderr: e.to_string(),
            };
        }
    };
    let Cmd::Client(cmd) = cli.command else {
        panic!("not a client command");
    };
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| env.get(k).cloned();
    let mut stdin = Cursor::new(stdin.as_bytes().to_vec());
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut io = lockbox_cli::Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        env: &lookup,
        stdin_is_terminal: false,
        stdout_is_terminal: false,
        stderr_is_terminal: false,
    };
    let code = lockbox_cli::run_with_io(cmd, &mut io).await;
    Outcome {
        code,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn envelope(data: Value) -> Value {
    json!({"request_id": "req-1", "lease_id": "", "renewable": false, "lease_duration": 0,
           "data": data, "wrap_info": null, "warnings": null, "auth": null})
}

#[tokio::test]
async fn the_seed_walkthrough() {
    let server = FakeServer::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/sys/mounts/mock/") => (204, Value::Null),
        ("GET", "/v1/sys/mounts") => (200, envelope(json!({
            "cubbyhole/": {"accessor": "cubbyhole_4b92ce62", "type": "cubbyhole",
                "description": "per-token private secret storage", "local": true,
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
                "options": null, "seal_wrap": false, "external_entropy_access": false, "uuid": "a"},
            "identity/": {"accessor": "identity_7e2789e4", "type": "identity",
                "description": "identity store", "local": false,
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
                "options": null, "uuid": "b"},
            "mock/": {"accessor": "mock_4947b778", "type": "mock", "description": "",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
                "options": null, "uuid": "c"}
        }))),
        ("PUT", "/v1/mock/test") => (204, Value::Null),
        ("GET", "/v1/mock/test") => (200, envelope(json!({"message": "Hello World"}))),
        ("DELETE", "/v1/sys/mounts/mock/") => (204, Value::Null),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "root"),
    ];

    let out = run(&["secrets", "enable", "mock"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Enabled the mock secrets engine at: mock/\n"),
        "{}",
        out.stderr
    );

    let out = run(&["secrets", "list"], &env, "").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "Path          Type         Accessor              Description\n\
         ----          ----         --------              -----------\n\
         cubbyhole/    cubbyhole    cubbyhole_4b92ce62    per-token private secret storage\n\
         identity/     identity     identity_7e2789e4     identity store\n\
         mock/         mock         mock_4947b778         n/a\n"
    );

    let out = run(&["write", "mock/test", "message=Hello World"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Data written to: mock/test\n")
    );

    let out = run(&["read", "mock/test"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Key        Value\n---        -----\nmessage    Hello World\n"
        )
    );

    let out = run(&["secrets", "disable", "mock"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Success! Disabled the secrets engine (if it existed) at: mock/\n"
        )
    );

    let requests = server.requests();
    assert!(requests.iter().all(|r| r.token.as_deref() == Some("root")));
    let enable = &requests[0];
    assert_eq!(enable.body["type"], "mock");
    assert_eq!(enable.body["config"]["default_lease_ttl"], "0s");
    let write = requests.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(write.body, json!({"message": "Hello World"}));
}

#[tokio::test]
async fn api_errors_print_like_vault_and_exit_2() {
    let server = FakeServer::start(|_| (403, json!({"errors": ["permission denied"]}))).await;
    let env = [("LOCKBOX_ADDR", server.address.as_str())];
    let out = run(&["write", "secret/foo", "a=b"], &env, "").await;
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "Error writing data to secret/foo: Error making API request.\n\n\
             URL: PUT {}/v1/secret/foo\nCode: 403. Errors:\n\n* permission denied\n",
            server.address
        )
    );
    assert_eq!(out.stdout, "");
}

#[tokio::test]
async fn usage_errors_exit_1() {
    let out = run(&["write", "secret/foo"], &[], "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Must supply data or use -force\n")
    );

    let out = run(&["read"], &[], "").await;
    assert_eq!(out.code, 1, "clap errors map to 1: {}", out.stderr);

    let out = run(&["read", "-format=xml", "x"], &[], "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Invalid output format: xml (supported: table, json, yaml)
"
        )
    );
}

#[tokio::test]
async fn unreachable_server_names_the_address() {
    let out = run(
        &["read", "secret/x"],
        &[("LOCKBOX_ADDR", "http://127.0.0.1:9")],
        "",
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("Error reading secret/x: GET http://127.0.0.1:9/v1/secret/x"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("LOCKBOX_ADDR"), "{}", out.stderr);
}

#[tokio::test]
async fn read_missing_and_json_format() {
    let server = FakeServer::start(|req| match req.path.as_str() {
        "/v1/secret/there" => (
            200,
            json!({"request_id": "r", "lease_id": "", "renewable": false,
            "lease_duration": 2764800, "data": {"ttl": 60, "k": "v"}, "warnings": null}),
        ),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [("VAULT_ADDR", server.address.as_str())];

    let out = run(&["read", "secret/missing"], &env, "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (2, "No value found at secret/missing\n")
    );

    let out = run(&["read", "secret/there"], &env, "").await;
    assert_eq!(
        out.stdout,
        "Key                 Value\n---                 -----\nrefresh_interval    768h\n\
         k                   v\nttl                 1m\n"
    );

    let out = run(&["read", "-format=json", "secret/there"], &env, "").await;
    let parsed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(parsed["data"], json!({"ttl": 60, "k": "v"}));
    assert_eq!(parsed["lease_duration"], 2764800);
    assert!(
        out.stdout.contains("\n  \"data\": {"),
        "pretty printed: {}",
        out.stdout
    );

    let out = run(&["read", "-field=k", "secret/there"], &env, "").await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "v"));
}

#[tokio::test]
async fn list_keys() {
    let server = FakeServer::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("LIST", "/v1/secret/apps") => (200, envelope(json!({"keys": ["b", "a/"]}))),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [("VAULT_ADDR", server.address.as_str())];
    let out = run(&["list", "secret/apps/"], &env, "").await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "Keys\n----\na/\nb\n"));

    let out = run(&["list", "-format=json", "secret/apps"], &env, "").await;
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!(["b", "a/"])
    );

    let out = run(&["list", "secret/none"], &env, "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (2, "No value found at secret/none\n")
    );
}

#[tokio::test]
async fn write_from_stdin_and_files() {
    let server = FakeServer::start(|_| (200, envelope(json!({"ok": true})))).await;
    let env = [("VAULT_ADDR", server.address.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.txt");
    std::fs::write(&file, "from file").unwrap();
    let file_arg = format!("f=@{}", file.display());

    let out = run(
        &["write", "x/y", "-", file_arg.as_str(), "n=-1"],
        &env,
        r#"{"j": [1, 2]}"#,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "Key    Value\n---    -----\nok     true\n");
    assert_eq!(
        server.requests()[0].body,
        json!({"j": [1, 2], "f": "from file", "n": "-1"})
    );
}

#[tokio::test]
async fn login_verifies_and_stores_the_token() {
    let server = FakeServer::start(|req| match req.path.as_str() {
        "/v1/auth/token/lookup-self" if req.token.as_deref() == Some("hvs.good") => (
            200,
            envelope(json!({
                "id": "hvs.good", "accessor": "acc1", "policies": ["root"], "ttl": 0,
                "renewable": false, "meta": null, "identity_policies": []
            })),
        ),
        "/v1/auth/token/lookup-self" => (403, json!({"errors": ["permission denied"]})),
        "/v1/secret/x" => (200, envelope(json!({"a": "b"}))),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap();
    let env = [("VAULT_ADDR", server.address.as_str()), ("HOME", home_str)];

    let out = run(&["login", "hvs.good"], &env, "").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Success! You are now authenticated."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("token                hvs.good\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("token_duration       ∞\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("policies             [\"root\"]\n"),
        "{}",
        out.stdout
    );
    let token_file = home.path().join(".lockbox-token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "hvs.good");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Later commands pick the token up from the file.
    let out = run(&["read", "secret/x"], &env, "").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        server.requests().last().unwrap().token.as_deref(),
        Some("hvs.good")
    );

    // "-" reads the token from stdin; a bad token is an error and is not stored.
    let out = run(&["login", "-"], &env, "hvs.bad\n").await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("Error authenticating: error looking up token: Error making API request."),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "hvs.good");

    // With no argument, one line of stdin.
    let out = run(&["login", "-format=json"], &env, "hvs.good\n").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let parsed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(parsed["auth"]["client_token"], "hvs.good");
}

#[tokio::test]
async fn status_exit_codes() {
    for (sealed, code) in [(false, 0), (true, 2)] {
        let server = FakeServer::start(move |req| match req.path.as_str() {
            "/v1/sys/seal-status" => (
                200,
                json!({"type": "shamir", "initialized": true,
                "sealed": sealed, "t": 3, "n": 5, "progress": 1, "nonce": "",
                "version": "0.1.0", "build_date": "2025-01-01T00:00:00Z", "storage_type": "redb"}),
            ),
            _ => (404, json!({"errors": []})),
        })
        .await;
        let env = [("VAULT_ADDR", server.address.as_str())];
        let out = run(&["status"], &env, "").await;
        assert_eq!(out.code, code, "{}", out.stderr);
        let rows: HashMap<String, String> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once("    "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        assert_eq!(
            rows.get("Sealed"),
            Some(&sealed.to_string()),
            "{}",
            out.stdout
        );
        assert_eq!(
            rows.get("HA Enabled").map(String::as_str),
            Some("false"),
            "{}",
            out.stdout
        );
        assert_eq!(
            rows.contains_key("Unseal Progress"),
            sealed,
            "{}",
            out.stdout
        );
        assert_eq!(
            rows.get("Build Date").map(String::as_str),
            Some("2025-01-01T00:00:00Z")
        );
    }
    let out = run(&["status"], &[("VAULT_ADDR", "http://127.0.0.1:9")], "").await;
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn operator_init_unseal_seal_rotate() {
    let server = FakeServer::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/v1/sys/init") => (
            200,
            json!({"keys": ["aa", "bb"], "keys_base64": ["qg==", "uw=="],
            "root_token": "hvs.root"}),
        ),
        ("PUT", "/v1/sys/unseal") => (
            200,
            json!({"type": "shamir", "initialized": true,
            "sealed": false, "t": 2, "n": 2, "progress": 0, "version": "0.1.0"}),
        ),
        ("PUT", "/v1/sys/seal") => (204, Value::Null),
        ("PUT", "/v1/sys/rotate") => (204, Value::Null),
        ("GET", "/v1/sys/key-status") => (
            200,
            envelope(json!({"term": 2,
            "install_time": "2024-03-01T10:30:00Z"})),
        ),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "hvs.root"),
    ];

    let out = run(
        &["operator", "init", "-key-shares=2", "-key-threshold=2"],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(
            "Unseal Key 1: qg==\nUnseal Key 2: uw==\n\nInitial Root Token: hvs.root\n\n"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        server.requests()[0].body,
        json!({"secret_shares": 2, "secret_threshold": 2})
    );

    let out = run(&["operator", "init", "-format=json"], &env, "").await;
    let parsed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(parsed["unseal_keys_b64"], json!(["qg==", "uw=="]));
    assert_eq!(parsed["root_token"], "hvs.root");

    let out = run(&["operator", "unseal"], &env, "qg==\n").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Sealed          false"),
        "{}",
        out.stdout
    );
    let unseal = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/sys/unseal")
        .unwrap();
    assert_eq!(unseal.body, json!({"key": "qg=="}));

    let out = run(&["operator", "seal"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Lockbox is sealed.\n")
    );

    let out = run(&["operator", "rotate"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Success! Rotated key\n\nKey Term        2\nInstall Time    01 Mar 24 10:30 UTC\n"
        )
    );
}

#[tokio::test]
async fn token_commands() {
    let server = FakeServer::start(|req| match req.path.as_str() {
        "/v1/auth/token/create" => (
            200,
            json!({"request_id": "r", "lease_id": "", "renewable": false,
            "lease_duration": 0, "data": null, "warnings": null, "auth": {
                "client_token": "hvs.child", "accessor": "acc", "policies": ["a", "b", "default"],
                "token_policies": ["a", "b", "default"], "identity_policies": null,
                "metadata": null, "lease_duration": 3600, "renewable": false, "entity_id": "",
                "token_type": "service", "orphan": false}}),
        ),
        "/v1/auth/token/revoke" | "/v1/auth/token/revoke-self" => (204, Value::Null),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "hvs.root"),
    ];

    let out = run(
        &[
            "token",
            "create",
            "-policy=a",
            "-policy",
            "b",
            "-ttl=1h",
            "-renewable=false",
            "-use-limit=2",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "Key                  Value\n\
         ---                  -----\n\
         token                hvs.child\n\
         token_accessor       acc\n\
         token_duration       1h\n\
         token_renewable      false\n\
         token_policies       [\"a\" \"b\" \"default\"]\n\
         identity_policies    []\n\
         policies             [\"a\" \"b\" \"default\"]\n"
    );
    let create = &server.requests()[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.body["policies"], json!(["a", "b"]));
    assert_eq!(create.body["ttl"], "1h0m0s");
    assert_eq!(create.body["renewable"], false);
    assert_eq!(create.body["num_uses"], 2);

    let out = run(&["token", "create", "-field=token"], &env, "").await;
    assert_eq!(out.stdout, "hvs.child");

    let out = run(&["token", "revoke", "hvs.child"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Revoked token (if it existed)\n")
    );
    assert_eq!(
        server.requests().last().unwrap().body,
        json!({"token": "hvs.child"})
    );

    let out = run(&["token", "revoke", "-self"], &env, "").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        server.requests().last().unwrap().path,
        "/v1/auth/token/revoke-self"
    );

    let out = run(&["token", "revoke"], &env, "").await;
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn policies() {
    let server = FakeServer::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/v1/sys/policies/acl/web") => (204, Value::Null),
        ("GET", "/v1/sys/policies/acl/web") => (
            200,
            envelope(json!({"name": "web",
            "policy": "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n"})),
        ),
        ("LIST", "/v1/sys/policies/acl") => {
            (200, envelope(json!({"keys": ["default", "root", "web"]})))
        }
        ("DELETE", "/v1/sys/policies/acl/web") => (204, Value::Null),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "t"),
    ];
    let rules = "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n";

    let out = run(&["policy", "write", "Web", "-"], &env, rules).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Uploaded policy: web\n")
    );
    assert_eq!(
        out.stderr,
        "Policy name was converted from \"Web\" to \"web\"\n"
    );
    assert_eq!(server.requests()[0].body, json!({"policy": rules}));

    let out = run(&["policy", "read", "web"], &env, "").await;
    assert_eq!(out.stdout, rules);
    let out = run(&["policy", "read", "-format=json", "web"], &env, "").await;
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!({"policy": rules})
    );
    let out = run(&["policy", "read", "nope"], &env, "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (2, "No policy named: nope\n")
    );

    let out = run(&["policy", "list"], &env, "").await;
    assert_eq!(out.stdout, "default\nroot\nweb\n");

    let out = run(&["policy", "delete", "web"], &env, "").await;
    assert_eq!(out.stdout, "Success! Deleted policy: web\n");
}

#[tokio::test]
async fn secrets_move_polls_until_done() {
    let polls = Arc::new(Mutex::new(0));
    let counter = polls.clone();
    let server = FakeServer::start(move |req| match req.path.as_str() {
        "/v1/sys/remount" => (200, envelope(json!({"migration_id": "m-1"}))),
        "/v1/sys/remount/status/m-1" => {
            let mut n = counter.lock().unwrap();
            *n += 1;
            let status = if *n >= 2 { "success" } else { "in-progress" };
            (
                200,
                envelope(json!({"migration_id": "m-1", "migration_info": {
                "source_mount": "secret/", "target_mount": "kv/", "status": status}})),
            )
        }
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "t"),
    ];
    let out = run(&["secrets", "move", "secret", "kv/"], &env, "").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Started moving secrets engine secret/ to kv/, with migration ID m-1\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with(
            "Success! Finished moving secrets engine secret/ to kv/, with migration ID m-1\n"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(
        server.requests()[0].body,
        json!({"from": "secret/", "to": "kv/"})
    );
}

#[tokio::test]
async fn secrets_tune_and_detailed_list() {
    let server = FakeServer::start(|req| match req.path.as_str() {
        "/v1/sys/mounts/kv/tune" => (204, Value::Null),
        "/v1/sys/mounts" => (
            200,
            envelope(json!({
            "kv/": {"accessor": "kv_1", "type": "kv", "description": "",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 7200, "force_no_cache": false},
                "options": {"version": "2"}, "local": false, "seal_wrap": false,
                "external_entropy_access": false, "uuid": "u-1", "plugin_version": "",
                "running_plugin_version": "v0.1.0+builtin", "running_sha256": ""}})),
        ),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "t"),
    ];
    let out = run(
        &[
            "secrets",
            "tune",
            "-max-lease-ttl=2h",
            "-description=hi",
            "kv/",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Tuned the secrets engine at: kv/\n")
    );
    assert_eq!(
        server.requests()[0].body,
        json!({"max_lease_ttl": "2h0m0s", "description": "hi"})
    );

    let out = run(&["secrets", "list", "-detailed"], &env, "").await;
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header
            .starts_with("Path    Plugin    Accessor    Default TTL    Max TTL    Force No Cache"),
        "{header}"
    );
    lines.next();
    let row: Vec<&str> = lines
        .next()
        .unwrap()
        .split("    ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        row,
        [
            "kv/",
            "kv",
            "kv_1",
            "system",
            "7200",
            "false",
            "replicated",
            "false",
            "false",
            "map[version:2]",
            "n/a",
            "u-1",
            "n/a",
            "v0.1.0+builtin",
            "n/a",
            "n/a"
        ]
    );
}

#[tokio::test]
async fn plugin_catalog_commands() {
    let sha = "d3f0a8be02f6c074cf38c9c99d4d04c9c6466249";
    let server = FakeServer::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/v1/sys/plugins/catalog/secret/mock") => (204, Value::Null),
        ("PUT", "/v1/sys/plugins/catalog/auth/up") => (
            200,
            json!({"request_id": "r", "data": null, "warnings": [
                "the file up currently has sha256 aa, not bb; mounts of this plugin will refuse to start until they match"
            ]}),
        ),
        ("GET", "/v1/sys/plugins/catalog") => (
            200,
            envelope(json!({
                "auth": ["up"], "secret": ["mock"], "database": [],
                "detailed": [
                    {"name": "mock", "type": "secret", "version": "v1.0.0", "sha256": sha,
                     "builtin": false, "deprecation_status": "", "command": "mock", "args": []},
                    {"name": "up", "type": "auth", "version": "", "sha256": "bb",
                     "builtin": false, "deprecation_status": "", "command": "up", "args": []}
                ]
            })),
        ),
        ("GET", "/v1/sys/plugins/catalog/secret/mock?version=v1.0.0") => (
            200,
            envelope(json!({"name": "mock", "type": "secret", "version": "v1.0.0",
                "sha256": sha, "builtin": false, "deprecation_status": "",
                "command": "mock", "args": ["--debug"]})),
        ),
        ("DELETE", "/v1/sys/plugins/catalog/secret/mock?version=v1.0.0%2Bent") => {
            (204, Value::Null)
        }
        ("PUT", "/v1/sys/plugins/reload/backend") => {
            (200, envelope(json!({"reload_id": "rid-1"})))
        }
        ("PUT", "/v1/sys/plugins/reload/secret/mock") => (204, Value::Null),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "root"),
    ];

    let sha_flag = format!("-sha256={sha}");
    let out = run(
        &[
            "plugin",
            "register",
            &sha_flag,
            "-args=--debug",
            "-env=LOG=1",
            "-version=v1.0.0",
            "secret",
            "mock",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "Success! Registered plugin: mock\n", "")
    );
    let request = server.requests().last().cloned().unwrap();
    assert_eq!(request.token.as_deref(), Some("root"));
    assert_eq!(
        request.body,
        json!({"sha256": sha, "command": "mock", "args": ["--debug"], "env": ["LOG=1"],
               "version": "v1.0.0"})
    );

    // Warnings of a 200 answer go to stderr.
    let out = run(
        &[
            "plugin",
            "register",
            "-sha256=bb",
            "-command=up-bin",
            "auth",
            "up",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Registered plugin: up\n")
    );
    assert!(
        out.stderr.starts_with(
            "WARNING! The following warnings were returned from Lockbox:\n\n  * the file up"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests().last().unwrap().body["command"], "up-bin");

    // The type is required; so is the SHA-256. Nothing is sent.
    let before = server.requests().len();
    let out = run(&["plugin", "register", &sha_flag, "mock"], &env, "").await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("A plugin type is required"),
        "{}",
        out.stderr
    );
    let out = run(&["plugin", "register", "secret", "mock"], &env, "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "SHA256 is required for all plugins, please provide -sha256\n"
        )
    );
    let out = run(&["plugin", "info", "database", "pg"], &env, "").await;
    assert_eq!(out.code, 1);
    assert_eq!(server.requests().len(), before);

    let out = run(&["plugin", "list"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Name    Type      Version\n\
             ----    ----      -------\n\
             up      auth      n/a\n\
             mock    secret    v1.0.0\n"
        )
    );
    let out = run(&["plugin", "list", "secret"], &env, "").await;
    assert_eq!(
        out.stdout,
        "Name    Version\n----    -------\nmock    v1.0.0\n"
    );
    let out = run(&["plugin", "list", "-detailed"], &env, "").await;
    assert!(
        out.stdout.starts_with(
            "Name    Type      Version    Deprecation Status    SHA256                                      Command\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "mock    secret    v1.0.0     n/a                   {sha}    mock\n"
        )),
        "{}",
        out.stdout
    );
    let out = run(&["plugin", "list", "-format=json", "auth"], &env, "").await;
    let parsed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(parsed["auth"], json!(["up"]));
    assert!(parsed.get("secret").is_none());
    assert_eq!(parsed["details"].as_array().map(Vec::len), Some(1));

    let out = run(
        &["plugin", "info", "-version=v1.0.0", "secret", "mock"],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "Key                   Value\n\
             ---                   -----\n\
             args                  [--debug]\n\
             builtin               false\n\
             command               mock\n\
             deprecation_status    n/a\n\
             name                  mock\n\
             sha256                {sha}\n\
             type                  secret\n\
             version               v1.0.0\n"
        )
    );
    let out = run(
        &[
            "plugin",
            "info",
            "-version=v1.0.0",
            "-field=sha256",
            "secret",
            "mock",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(out.stdout, sha);
    let out = run(&["plugin", "info", "secret", "nope"], &env, "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (2, "No value found for plugin \"nope\"\n")
    );

    let out = run(
        &[
            "plugin",
            "deregister",
            "-version=v1.0.0+ent",
            "secret",
            "mock",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Success! Deregistered plugin (if it was registered): mock\n"
        ),
        "{}",
        out.stderr
    );

    let out = run(&["plugin", "reload", "-plugin=mock"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Reloaded plugin: mock, reload_id: rid-1\n")
    );
    assert_eq!(
        server.requests().last().unwrap().body,
        json!({"plugin": "mock"})
    );
    let out = run(&["plugin", "reload", "-mounts=a,auth/b"], &env, "").await;
    assert_eq!(
        out.stdout,
        "Success! Reloaded mounts: [a/ auth/b/], reload_id: rid-1\n"
    );
    assert_eq!(
        server.requests().last().unwrap().body,
        json!({"mounts": ["a/", "auth/b/"]})
    );
    let out = run(
        &["plugin", "reload", "-plugin=mock", "-type=secret"],
        &env,
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Reloaded plugin: mock\n")
    );
    assert_eq!(
        server.requests().last().unwrap().path,
        "/v1/sys/plugins/reload/secret/mock"
    );
    let out = run(&["plugin", "reload"], &env, "").await;
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn plugin_errors_exit_2() {
    let server = FakeServer::start(|_| {
        (
            400,
            json!({"errors": ["cannot read plugin /plugins/mock: No such file or directory"]}),
        )
    })
    .await;
    let env = [("VAULT_ADDR", server.address.as_str())];
    let out = run(
        &["plugin", "register", "-sha256=ab", "secret", "mock"],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("Error registering plugin mock: Error making API request."),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("* cannot read plugin"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn auth_method_commands() {
    let server = FakeServer::start(|req| match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/sys/auth/people/") => (204, Value::Null),
        ("POST", "/v1/sys/auth/people/tune") => (204, Value::Null),
        ("DELETE", "/v1/sys/auth/people/") => (204, Value::Null),
        ("POST", "/v1/sys/mounts/gen/") => (204, Value::Null),
        ("GET", "/v1/sys/auth") => (
            200,
            envelope(json!({
                "token/": {"type": "token", "accessor": "auth_token_1",
                    "description": "token based credentials",
                    "config": {"default_lease_ttl": 0, "max_lease_ttl": 0},
                    "local": false, "options": null, "uuid": "u1"},
                "people/": {"type": "userpass", "accessor": "auth_userpass_2",
                    "description": "humans",
                    "config": {"default_lease_ttl": 3600, "max_lease_ttl": 0},
                    "local": false, "options": null, "uuid": "u2",
                    "plugin_version": "", "running_plugin_version": "v0.1.0",
                    "running_sha256": "abc"}
            })),
        ),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let env = [
        ("VAULT_ADDR", server.address.as_str()),
        ("VAULT_TOKEN", "root"),
    ];

    let out = run(
        &[
            "auth",
            "enable",
            "-path=people",
            "-description=humans",
            "-default-lease-ttl=1h",
            "userpass",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Enabled userpass auth method at: people/\n"),
        "{}",
        out.stderr
    );
    let enable = server.requests().last().cloned().unwrap();
    assert_eq!(enable.body["type"], "userpass");
    assert_eq!(enable.body["description"], "humans");
    assert_eq!(
        enable.body["config"],
        json!({"default_lease_ttl": "1h0m0s", "max_lease_ttl": "0s"})
    );
    assert_eq!(enable.body["local"], false);

    let out = run(&["auth", "list"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Path       Type        Accessor           Description\n\
             ----       ----        --------           -----------\n\
             people/    userpass    auth_userpass_2    humans\n\
             token/     token       auth_token_1       token based credentials\n"
        )
    );
    let out = run(&["auth", "list", "-detailed"], &env, "").await;
    assert!(
        out.stdout.starts_with(
            "Path       Plugin      Accessor           Default TTL    Max TTL    Token Type"
        ),
        "{}",
        out.stdout
    );
    let out = run(&["auth", "list", "-format=json"], &env, "").await;
    let parsed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(parsed["people/"]["type"], "userpass");

    let out = run(&["auth", "tune", "-max-lease-ttl=2h", "people/"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Tuned the auth method at: people/\n")
    );
    assert_eq!(
        server.requests().last().unwrap().body,
        json!({"max_lease_ttl": "2h0m0s"})
    );

    let out = run(&["auth", "disable", "people"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            0,
            "Success! Disabled the auth method (if it existed) at: people/\n"
        )
    );

    // Plugin names work as types for secrets engines too.
    let out = run(&["secrets", "enable", "-path=gen", "passgen"], &env, "").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "Success! Enabled the passgen secrets engine at: gen/\n")
    );
    let enable = server.requests().last().cloned().unwrap();
    assert_eq!(
        (enable.path.as_str(), &enable.body["type"]),
        ("/v1/sys/mounts/gen/", &json!("passgen"))
    );
}

#[tokio::test]
async fn login_with_userpass_and_other_methods() {
    let server = FakeServer::start(|req| match req.path.as_str() {
        "/v1/auth/userpass/login/bob" | "/v1/auth/people/login/bob"
            if req.body["password"] == "s3cret" =>
        {
            (
                200,
                json!({"request_id": "r", "lease_id": "", "renewable": false,
                "lease_duration": 0, "data": null, "warnings": null, "auth": {
                    "client_token": "hvs.bob", "accessor": "acc-bob",
                    "policies": ["default", "dev"], "token_policies": ["default", "dev"],
                    "identity_policies": null, "metadata": {"username": "bob"},
                    "lease_duration": 2764800, "renewable": true, "entity_id": "",
                    "token_type": "service", "orphan": true}}),
            )
        }
        "/v1/auth/userpass/login/bob" => (400, json!({"errors": ["invalid username or password"]})),
        "/v1/auth/approle/login" => (
            200,
            json!({"auth": {"client_token": "hvs.app", "accessor": "a",
                "policies": ["app"], "token_policies": ["app"], "lease_duration": 60,
                "renewable": false}}),
        ),
        "/v1/auth/odd/login" => (200, envelope(json!({"no": "auth"}))),
        _ => (404, json!({"errors": []})),
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap();
    let token_file = home.path().join(".lockbox-token");
    let env = [("VAULT_ADDR", server.address.as_str()), ("HOME", home_str)];

    let out = run(
        &[
            "login",
            "-method=userpass",
            "username=bob",
            "password=s3cret",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Success! You are now authenticated."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with(
            "\n\nKey                    Value\n\
             ---                    -----\n\
             token                  hvs.bob\n\
             token_accessor         acc-bob\n\
             token_duration         768h\n\
             token_renewable        true\n\
             token_policies         [\"default\" \"dev\"]\n\
             identity_policies      []\n\
             policies               [\"default\" \"dev\"]\n\
             token_meta_username    bob\n"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "hvs.bob");
    let login = server.requests().last().cloned().unwrap();
    assert_eq!(
        (login.method.as_str(), login.token.as_deref()),
        ("PUT", None),
        "no token is sent with a method login"
    );
    assert_eq!(login.body, json!({"password": "s3cret"}));

    // The password from stdin (not a terminal: one line), a custom mount, and
    // -token-only: nothing is stored.
    std::fs::remove_file(&token_file).unwrap();
    let out = run(
        &[
            "login",
            "-method=userpass",
            "-path=people",
            "-token-only",
            "username=bob",
        ],
        &env,
        "s3cret\n",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hvs.bob"),
        "{}",
        out.stderr
    );
    assert_eq!(
        server.requests().last().unwrap().path,
        "/v1/auth/people/login/bob"
    );
    assert!(!token_file.exists());

    // password=- reads stdin, without its line ending.
    let out = run(
        &[
            "login",
            "-method=userpass",
            "-no-store",
            "-field=token_policies",
            "username=bob",
            "password=-",
        ],
        &env,
        "s3cret\n",
    )
    .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "[default dev]"),
        "{}",
        out.stderr
    );

    // A wrong password: the server's message, exit 2, nothing stored.
    let out = run(
        &["login", "-method=userpass", "username=bob", "password=nope"],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("Error authenticating: Error making API request."),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("* invalid username or password"),
        "{}",
        out.stderr
    );
    assert!(!token_file.exists());

    // Local mistakes exit 1 before anything is sent.
    let before = server.requests().len();
    let out = run(&["login", "-method=userpass", "password=x"], &env, "").await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Error authenticating: 'username' must be specified\n")
    );
    let out = run(&["login", "-method=userpass", "username=bob"], &env, "").await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = run(&["login", "-method=userpass", "bob"], &env, "").await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(server.requests().len(), before);

    // Any other method: the K=V data is the body of auth/PATH/login.
    let out = run(
        &["login", "-method=approle", "role_id=r1", "secret_id=s1"],
        &env,
        "",
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        server.requests().last().unwrap().body,
        json!({"role_id": "r1", "secret_id": "s1"})
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), "hvs.app");

    // An answer without an auth block is an error.
    let out = run(&["login", "-method=odd"], &env, "").await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("Lockbox returned a secret, but"),
        "{}",
        out.stderr
    );
}
