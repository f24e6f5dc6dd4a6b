//! The `lockbox` CLI binary against a real server: Vault-style commands,
//! flags in single-dash form, table and JSON output, exit codes.

use crate::common::{TestServer, lockbox_bin};
use std::process::Output;

struct Cli<'a> {
    server: &'a TestServer,
    home: tempfile::TempDir,
    token: Option<String>,
}

impl<'a> Cli<'a> {
    fn new(server: &'a TestServer) -> Self {
        Self {
            server,
            home: tempfile::tempdir().unwrap(),
            token: Some(server.root_token.clone()),
        }
    }

    async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(lockbox_bin());
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("LOCKBOX_ADDR", &self.server.addr)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(t) = &self.token {
            cmd.env("LOCKBOX_TOKEN", t);
        }
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None).await
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "lockbox {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn walkthrough_with_the_builtin_kv() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    let out = cli
        .ok(&[
            "secrets",
            "enable",
            "-path=team",
            "-description=team secrets",
            "kv",
        ])
        .await;
    assert!(
        out.contains("Success! Enabled the kv secrets engine at: team/"),
        "{out}"
    );
    let list = cli.ok(&["secrets", "list"]).await;
    let header = list.lines().next().unwrap();
    for col in ["Path", "Type", "Accessor", "Description"] {
        assert!(header.contains(col), "{list}");
    }
    let team = list.lines().find(|l| l.starts_with("team/")).expect(&list);
    assert!(
        team.contains("kv") && team.contains("team secrets"),
        "{team}"
    );
    let out = cli.ok(&["write", "team/test", "message=Hello World"]).await;
    assert!(out.contains("Success! Data written to: team/test"), "{out}");
    let out = cli.ok(&["read", "team/test"]).await;
    let row = out.lines().find(|l| l.starts_with("message")).expect(&out);
    assert!(row.ends_with("Hello World"), "{out}");
    let json = cli.ok(&["read", "-format=json", "team/test"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["data"]["message"], "Hello World");
    cli.ok(&["write", "team/other", "a=1"]).await;
    let keys = cli.ok(&["list", "team"]).await;
    assert!(keys.contains("other") && keys.contains("test"), "{keys}");
    // key=@file and stdin JSON.
    let file = cli.home.path().join("v.txt");
    std::fs::write(&file, "from-a-file").unwrap();
    cli.ok(&["write", "team/f", &format!("v=@{}", file.display())])
        .await;
    assert_eq!(
        s.root("GET", "team/f", None).await.body["data"]["v"],
        "from-a-file"
    );
    let out = cli
        .run_stdin(&["write", "team/s", "-"], Some(r#"{"k": "stdin"}"#))
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        s.root("GET", "team/s", None).await.body["data"]["k"],
        "stdin"
    );
    let out = cli.ok(&["delete", "team/test"]).await;
    assert!(out.contains("Success! Data deleted"), "{out}");
    let missing = cli.run(&["read", "team/test"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stdout(&missing).contains("No value found") || stderr(&missing).contains("No value found")
    );
    let out = cli.ok(&["secrets", "disable", "team"]).await;
    assert!(
        out.contains("Success! Disabled the secrets engine (if it existed) at: team/"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tune_move_and_detailed_list() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    cli.ok(&["secrets", "enable", "--path", "a", "kv"]).await;
    cli.ok(&["write", "a/k", "v=1"]).await;
    cli.ok(&[
        "secrets",
        "tune",
        "-default-lease-ttl=1h",
        "-max-lease-ttl=2h",
        "a",
    ])
    .await;
    let tune = s.root("GET", "sys/mounts/a/tune", None).await;
    assert_eq!(tune.body["data"]["default_lease_ttl"], 3600);
    let out = cli.ok(&["secrets", "move", "a", "b"]).await;
    assert!(out.contains("b/"), "{out}");
    assert_eq!(s.root("GET", "b/k", None).await.body["data"]["v"], "1");
    let detailed = cli.ok(&["secrets", "list", "-detailed"]).await;
    assert!(
        detailed.contains("Running Version") || detailed.contains("Version"),
        "{detailed}"
    );
    assert!(detailed.contains("b/"), "{detailed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_tokens_and_login() {
    let s = TestServer::dev().await;
    let mut cli = Cli::new(&s);
    let policy = cli.home.path().join("dev.hcl");
    std::fs::write(
        &policy,
        "path \"secret/*\" { capabilities = [\"read\", \"list\"] }\n",
    )
    .unwrap();
    let out = cli
        .ok(&["policy", "write", "dev", policy.to_str().unwrap()])
        .await;
    assert!(out.contains("Success! Uploaded policy: dev"), "{out}");
    let names = cli.ok(&["policy", "list"]).await;
    assert!(names.lines().any(|l| l.trim() == "dev"), "{names}");
    assert!(
        cli.ok(&["policy", "read", "dev"])
            .await
            .contains("secret/*")
    );
    let bad = cli.home.path().join("bad.hcl");
    std::fs::write(&bad, "path \"x\" { capabilities = [\"fly\"] }").unwrap();
    let out = cli
        .run(&["policy", "write", "bad", bad.to_str().unwrap()])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown capability"),
        "{}",
        stderr(&out)
    );

    let json = cli
        .ok(&["token", "create", "-policy=dev", "-ttl=1h", "-format=json"])
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(v["auth"]["policies"], serde_json::json!(["default", "dev"]));
    s.root("PUT", "secret/x", Some(serde_json::json!({"a": "b"})))
        .await;

    // Log in with the new token: it is stored in the token file and used.
    cli.token = None;
    let out = cli.ok(&["login", &token]).await;
    assert!(out.contains("Success!"), "{out}");
    assert!(cli.home.path().join(".lockbox-token").exists());
    let look = cli.ok(&["token", "lookup"]).await;
    assert!(look.contains("dev"), "{look}");
    assert!(cli.ok(&["read", "secret/x"]).await.contains('b'));
    let denied = cli.run(&["write", "secret/x", "a=c"]).await;
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("permission denied"),
        "{}",
        stderr(&denied)
    );
    let out = cli.ok(&["token", "renew", "-increment=30m"]).await;
    assert!(out.contains("30m"), "{out}");
    cli.ok(&["token", "revoke", "-self"]).await;
    let after = cli.run(&["read", "secret/x"]).await;
    assert!(!after.status.success());
    assert!(
        stderr(&after).contains("permission denied"),
        "{}",
        stderr(&after)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_init_unseal_seal_rotate_and_status() {
    let s = TestServer::uninitialized().await;
    let mut cli = Cli::new(&s);
    cli.token = None;
    let st = cli.run(&["status"]).await;
    assert_eq!(
        st.status.code(),
        Some(2),
        "sealed/uninitialized status exits 2"
    );
    let out = cli
        .ok(&["operator", "init", "-key-shares=3", "-key-threshold=2"])
        .await;
    let keys: Vec<String> = out
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Unseal Key ")
                .and_then(|r| r.split_once(": "))
                .map(|(_, k)| k.to_string())
        })
        .collect();
    assert_eq!(keys.len(), 3, "{out}");
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("Initial Root Token: "))
        .expect(&out)
        .to_string();
    let o = cli.ok(&["operator", "unseal", &keys[0]]).await;
    assert!(
        o.contains("Unseal Progress") || o.contains("progress"),
        "{o}"
    );
    let bad = cli.run(&["operator", "unseal", "bm90LWEta2V5"]).await;
    assert!(!bad.status.success());
    cli.ok(&["operator", "unseal", &keys[2]]).await;
    let st = cli.run(&["status"]).await;
    assert_eq!(st.status.code(), Some(0), "{}", stdout(&st));
    assert!(stdout(&st).contains("Sealed") && stdout(&st).contains("false"));
    cli.token = Some(root);
    let out = cli.ok(&["operator", "rotate"]).await;
    assert!(out.contains("Rotated") || out.contains("rotated"), "{out}");
    cli.ok(&["operator", "seal"]).await;
    assert!(s.core.is_sealed());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_print_the_server_message_and_exit_non_zero() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    let out = cli.run(&["secrets", "enable", "-path=sys/x", "kv"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("reserved"), "{}", stderr(&out));
    let out = cli.run(&["write", "secret/x"]).await;
    assert!(!out.status.success());
    let unreachable = tokio::process::Command::new(lockbox_bin())
        .args(["read", "secret/x"])
        .env_clear()
        .env("HOME", cli.home.path())
        .env("VAULT_ADDR", "http://127.0.0.1:1")
        .env("VAULT_TOKEN", "x")
        .output()
        .await
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(
        stderr(&unreachable).contains("127.0.0.1:1"),
        "{}",
        stderr(&unreachable)
    );
}
