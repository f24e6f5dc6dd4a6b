//! The `lockbox` CLI binary against a real server: Vault-style commands,
//! flags in single-dash form, table and JSON output, exit codes.

use crate::common::{Api, ConfigServer, TestServer, inmem_config, lockbox_bin, tls_config};
use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Output;

/// The CLI pointed at one server (LOCKBOX_ADDR), with a private HOME and,
/// unless `token` is None, LOCKBOX_TOKEN (the root token to begin with).
struct Cli {
    addr: String,
    home: tempfile::TempDir,
    token: Option<String>,
}

impl Cli {
    fn new(server: &Api) -> Self {
        Self {
            addr: server.addr.clone(),
            home: tempfile::tempdir().unwrap(),
            token: Some(server.root_token.clone()),
        }
    }

    async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut env = vec![("LOCKBOX_ADDR", self.addr.as_str())];
        if let Some(t) = &self.token {
            env.push(("LOCKBOX_TOKEN", t.as_str()));
        }
        run_lockbox(self.home.path(), args, &env, stdin).await
    }

    /// Runs with only HOME and `env` set (no LOCKBOX_ADDR or token of its
    /// own), for the tests of where settings come from.
    async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_lockbox(self.home.path(), args, env, None).await
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

/// Runs the binary with a clean environment: HOME and `env`, stdin piped
/// (and closed after `stdin`), so it is never a terminal.
async fn run_lockbox(
    home: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(lockbox_bin());
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// The cells of one line of a Vault-style table (columns are separated by
/// at least four spaces).
fn cells(line: &str) -> Vec<String> {
    line.split("    ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The rows of a `Key`/`Value` table, checking its two header lines.
fn kv_rows(out: &str) -> BTreeMap<String, String> {
    let mut lines = out.lines();
    assert_eq!(
        lines.next().map(cells),
        Some(vec!["Key".into(), "Value".into()]),
        "{out}"
    );
    assert_eq!(
        lines.next().map(cells),
        Some(vec!["---".into(), "-----".into()]),
        "{out}"
    );
    lines
        .map(|l| match l.split_once("    ") {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.trim().to_string(), String::new()),
        })
        .collect()
}

/// The value of `key` in a `Key`/`Value` table.
fn kv(out: &str, key: &str) -> String {
    kv_rows(out)
        .remove(key)
        .unwrap_or_else(|| panic!("no row {key:?} in\n{out}"))
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn yaml_of(out: &str) -> serde_json::Value {
    serde_saphyr::from_str(out).unwrap_or_else(|e| panic!("not YAML ({e}):\n{out}"))
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
    let mut lines = detailed.lines();
    // Vault's columns, in Vault's order.
    assert_eq!(
        lines.next().map(cells),
        Some(
            [
                "Path",
                "Plugin",
                "Accessor",
                "Default TTL",
                "Max TTL",
                "Force No Cache",
                "Replication",
                "Seal Wrap",
                "External Entropy Access",
                "Options",
                "Description",
                "UUID",
                "Version",
                "Running Version",
                "Running SHA256",
                "Deprecation Status",
            ]
            .map(String::from)
            .to_vec()
        ),
        "{detailed}"
    );
    let mounts = s.root("GET", "sys/mounts", None).await.body;
    let b = &mounts["data"]["b/"];
    let row = detailed
        .lines()
        .find(|l| l.starts_with("b/ "))
        .map(cells)
        .expect(&detailed);
    // The tuned TTLs moved with the mount: raw seconds, as Vault prints them.
    assert_eq!(
        row[..11],
        [
            "b/",
            "kv",
            b["accessor"].as_str().unwrap(),
            "3600",
            "7200",
            "false",
            "replicated",
            "false",
            "false",
            "map[]",
            "n/a",
        ],
        "{detailed}"
    );
    assert_eq!(row[11], b["uuid"].as_str().unwrap(), "{detailed}");
    assert_eq!(
        row[13],
        b["running_plugin_version"].as_str().unwrap(),
        "{detailed}"
    );
    assert!(
        !detailed.lines().any(|l| l.starts_with("a/ ")),
        "{detailed}"
    );
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
    assert_eq!(kv(&look, "policies"), "[default dev]", "{look}");
    assert_eq!(
        cli.ok(&["read", "secret/x"]).await,
        "Key                 Value\n\
         ---                 -----\n\
         refresh_interval    768h\n\
         a                   b\n"
    );
    let denied = cli.run(&["write", "secret/x", "a=c"]).await;
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("permission denied"),
        "{}",
        stderr(&denied)
    );
    let out = cli.ok(&["token", "renew", "-increment=30m"]).await;
    assert_eq!(kv(&out, "token_duration"), "30m", "{out}");
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
    assert_eq!(kv(&o, "Sealed"), "true", "{o}");
    assert_eq!(kv(&o, "Unseal Progress"), "1/2", "{o}");
    let bad = cli.run(&["operator", "unseal", "bm90LWEta2V5"]).await;
    assert!(!bad.status.success());
    let o = cli.ok(&["operator", "unseal", &keys[2]]).await;
    assert_eq!(kv(&o, "Sealed"), "false", "{o}");
    assert!(!kv_rows(&o).contains_key("Unseal Progress"), "{o}");
    let st = cli.run(&["status"]).await;
    assert_eq!(st.status.code(), Some(0), "{}", stdout(&st));
    assert_eq!(kv(&stdout(&st), "Sealed"), "false");
    assert_eq!(kv(&stdout(&st), "Total Shares"), "3");
    assert_eq!(kv(&stdout(&st), "Threshold"), "2");
    cli.token = Some(root.clone());
    let before = s.call("GET", "sys/key-status", Some(&root), None).await;
    assert_eq!(before.body["data"]["term"], 1, "{:?}", before.body);
    let out = cli.ok(&["operator", "rotate"]).await;
    let (first, table) = out.split_once("\n\n").expect(&out);
    assert_eq!(first, "Success! Rotated key", "{out}");
    let rows: Vec<Vec<String>> = table.lines().map(cells).collect();
    assert_eq!(rows[0], ["Key Term", "2"], "{out}");
    assert_eq!(rows[1][0], "Install Time", "{out}");
    assert!(rows[1][1].ends_with(" UTC"), "{out}");
    let after = s.call("GET", "sys/key-status", Some(&root), None).await;
    assert_eq!(after.body["data"]["term"], 2, "{:?}", after.body);
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

/// Creates a token with the `default` policy and a 1h TTL through the CLI;
/// returns its ID and accessor.
async fn create_token(cli: &Cli) -> (String, String) {
    let v = json_of(
        &cli.ok(&[
            "token",
            "create",
            "-policy=default",
            "-ttl=1h",
            "-format=json",
        ])
        .await,
    );
    let auth = &v["auth"];
    (
        auth["client_token"].as_str().expect("token").to_string(),
        auth["accessor"].as_str().expect("accessor").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn token_lookup_renew_and_revoke_by_token_and_accessor() {
    let s = TestServer::dev().await;
    let mut cli = Cli::new(&s);
    let (token, accessor) = create_token(&cli).await;

    // `token lookup TOKEN` (auth/token/lookup): the token's own ID is shown.
    let out = cli.ok(&["token", "lookup", &token]).await;
    let rows = kv_rows(&out);
    for (key, want) in [
        ("id", token.as_str()),
        ("accessor", accessor.as_str()),
        ("policies", "[default]"),
        ("creation_ttl", "1h"),
        ("display_name", "token"),
        ("path", "auth/token/create"),
        ("renewable", "true"),
        ("orphan", "false"),
        ("num_uses", "0"),
        ("type", "service"),
    ] {
        assert_eq!(
            rows.get(key).map(String::as_str),
            Some(want),
            "{key}: {out}"
        );
    }

    // `token lookup -accessor ACCESSOR`: the same token, its ID withheld
    // (Vault prints n/a there).
    let out = cli.ok(&["token", "lookup", "-accessor", &accessor]).await;
    let rows = kv_rows(&out);
    assert_eq!(rows.get("accessor"), Some(&accessor), "{out}");
    assert_eq!(rows.get("id").map(String::as_str), Some("n/a"), "{out}");
    assert_eq!(
        rows.get("policies").map(String::as_str),
        Some("[default]"),
        "{out}"
    );

    // `token renew TOKEN` (auth/token/renew): the renewed token's auth block.
    let out = cli.ok(&["token", "renew", &token]).await;
    let rows = kv_rows(&out);
    for (key, want) in [
        ("token", token.as_str()),
        ("token_accessor", accessor.as_str()),
        ("token_duration", "1h"),
        ("token_renewable", "true"),
        ("token_policies", "[\"default\"]"),
        ("identity_policies", "[]"),
        ("policies", "[\"default\"]"),
    ] {
        assert_eq!(
            rows.get(key).map(String::as_str),
            Some(want),
            "{key}: {out}"
        );
    }

    // Without an argument: the token in use (lookup-self, renew-self).
    cli.token = Some(token.clone());
    let out = cli.ok(&["token", "lookup"]).await;
    assert_eq!(
        kv(&out, "id"),
        token,
        "lookup-self shows the token's ID: {out}"
    );
    assert_eq!(kv(&out, "accessor"), accessor, "{out}");
    let out = cli.ok(&["token", "renew"]).await;
    assert_eq!(
        kv(&out, "token"),
        token,
        "renew-self shows the token: {out}"
    );
    assert_eq!(kv(&out, "token_accessor"), accessor, "{out}");
    assert_eq!(kv(&out, "token_duration"), "1h", "{out}");
    let out = cli.ok(&["token", "renew", "-increment=20m"]).await;
    assert_eq!(kv(&out, "token_duration"), "20m", "{out}");
    let v = json_of(&cli.ok(&["token", "lookup", "-format=json"]).await);
    assert_eq!(v["data"]["id"], token.as_str(), "{v}");

    // `token revoke -accessor`: the token is gone.
    cli.token = Some(s.root_token.clone());
    let out = cli.run(&["token", "revoke", "-accessor", &accessor]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Success! Revoked token (if it existed)\n");
    let gone = cli.run(&["token", "lookup", &token]).await;
    assert_eq!(gone.status.code(), Some(2), "{}", stdout(&gone));
    let err = stderr(&gone);
    assert!(
        err.starts_with("Error looking up token: Error making API request.")
            && err.contains("URL: POST ")
            && err.contains("/v1/auth/token/lookup\nCode: 403."),
        "{err}"
    );
    let r = s
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    // An accessor that no longer exists is a remote error (exit 2).
    let again = cli.run(&["token", "lookup", "-accessor", &accessor]).await;
    assert_eq!(again.status.code(), Some(2), "{}", stdout(&again));
    // -accessor needs its argument: a usage error (exit 1).
    let usage = cli.run(&["token", "lookup", "-accessor"]).await;
    assert_eq!(usage.status.code(), Some(1), "{}", stderr(&usage));
}

#[tokio::test(flavor = "multi_thread")]
async fn init_status_sealed_status_unseal_from_stdin_and_reset() {
    let s = TestServer::uninitialized().await;
    let mut cli = Cli::new(&s);
    cli.token = None;

    let out = cli.run(&["operator", "init", "-status"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Lockbox is not initialized\n");

    let init = json_of(
        &cli.ok(&[
            "operator",
            "init",
            "-key-shares=3",
            "-key-threshold=2",
            "-format=json",
        ])
        .await,
    );
    let keys: Vec<String> = init["unseal_keys_b64"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("key").to_string())
        .collect();
    assert_eq!(keys.len(), 3, "{init}");
    assert_eq!(init["unseal_threshold"], 2, "{init}");

    let out = cli.run(&["operator", "init", "-status"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Lockbox is initialized\n");
    let v = json_of(
        &cli.ok(&["operator", "init", "-status", "-format=json"])
            .await,
    );
    assert_eq!(v, json!({"initialized": true}));

    // Initialized but sealed: `status` prints the table and exits 2.
    let st = cli.run(&["status"]).await;
    assert_eq!(st.status.code(), Some(2), "{}", stderr(&st));
    let rows = kv_rows(&stdout(&st));
    for (key, want) in [
        ("Seal Type", "shamir"),
        ("Initialized", "true"),
        ("Sealed", "true"),
        ("Total Shares", "3"),
        ("Threshold", "2"),
        ("Unseal Progress", "0/2"),
        ("Unseal Nonce", "n/a"),
    ] {
        assert_eq!(
            rows.get(key).map(String::as_str),
            Some(want),
            "{key}: {rows:?}"
        );
    }

    // `-` reads the key from stdin.
    let out = cli
        .run_stdin(
            &["operator", "unseal", "-"],
            Some(&format!("{}\n", keys[0])),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(kv(&stdout(&out), "Unseal Progress"), "1/2");
    assert_ne!(kv(&stdout(&out), "Unseal Nonce"), "n/a");
    assert_eq!(stderr(&out), "", "no prompt when stdin is not a terminal");

    // -reset forgets it.
    let out = cli.ok(&["operator", "unseal", "-reset"]).await;
    assert_eq!(kv(&out, "Sealed"), "true", "{out}");
    assert_eq!(kv(&out, "Unseal Progress"), "0/2", "{out}");
    assert_eq!(kv(&out, "Unseal Nonce"), "n/a", "{out}");
    let st = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(st.body["progress"], 0, "{:?}", st.body);

    // No argument: one line of stdin, no prompt.
    let out = cli
        .run_stdin(&["operator", "unseal"], Some(&format!("{}\n", keys[1])))
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(kv(&stdout(&out), "Unseal Progress"), "1/2");
    assert_eq!(stderr(&out), "");
    // Nothing on stdin: a usage error, and the progress is kept.
    let out = cli.run_stdin(&["operator", "unseal"], Some("")).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("No unseal key given"),
        "{}",
        stderr(&out)
    );
    let out = cli
        .run_stdin(
            &["operator", "unseal", "-"],
            Some(&format!("{}\n", keys[2])),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(kv(&stdout(&out), "Sealed"), "false");
    assert!(!s.core.is_sealed());
    let st = cli.run(&["status"]).await;
    assert_eq!(st.status.code(), Some(0), "{}", stderr(&st));
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_tune_description_list_json_and_policy_delete() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    cli.ok(&["secrets", "enable", "-path=t", "-description=old", "kv"])
        .await;
    let out = cli
        .ok(&["secrets", "tune", "-description=new words here", "t"])
        .await;
    assert_eq!(out, "Success! Tuned the secrets engine at: t/\n");
    let mounts = s.root("GET", "sys/mounts", None).await.body;
    assert_eq!(mounts["data"]["t/"]["description"], "new words here");
    let accessor = mounts["data"]["t/"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();

    let list = cli.ok(&["secrets", "list"]).await;
    let row = list
        .lines()
        .find(|l| l.starts_with("t/ "))
        .map(cells)
        .expect(&list);
    assert_eq!(
        row,
        ["t/", "kv", accessor.as_str(), "new words here"],
        "{list}"
    );

    // -format=json: the mount table keyed by path, as sys/mounts has it.
    let v = json_of(&cli.ok(&["secrets", "list", "-format=json"]).await);
    let obj = v.as_object().expect("object");
    assert!(obj.contains_key("secret/") && obj.contains_key("t/"), "{v}");
    assert!(obj.keys().all(|k| k.ends_with('/')), "{v}");
    assert_eq!(v["t/"]["type"], "kv");
    assert_eq!(v["t/"]["description"], "new words here");
    assert_eq!(v["t/"]["accessor"], accessor.as_str());
    assert_eq!(v["t/"]["config"]["default_lease_ttl"], 0);
    assert_eq!(v["secret/"]["type"], "kv");
    assert_eq!(&v, &mounts["data"], "the same document as sys/mounts");

    // policy delete: gone from the list, reading it is an error.
    let file = cli.home.path().join("p.hcl");
    std::fs::write(&file, "path \"t/*\" { capabilities = [\"read\"] }\n").unwrap();
    cli.ok(&["policy", "write", "reader", file.to_str().unwrap()])
        .await;
    assert!(
        cli.ok(&["policy", "list"])
            .await
            .lines()
            .any(|l| l == "reader")
    );
    let out = cli.run(&["policy", "delete", "reader"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Success! Deleted policy: reader\n");
    let names = cli.ok(&["policy", "list"]).await;
    assert!(!names.lines().any(|l| l == "reader"), "{names}");
    assert!(names.lines().any(|l| l == "default"), "{names}");
    let r = s.root("GET", "sys/policies/acl/reader", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let read = cli.run(&["policy", "read", "reader"]).await;
    assert_eq!(read.status.code(), Some(2), "{}", stdout(&read));
    assert_eq!(stderr(&read), "No policy named: reader\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_token_and_lockbox_addr_precedence() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    s.root("PUT", "secret/x", Some(json!({"a": "b"}))).await;
    let addr = s.addr.as_str();
    let root = s.root_token.as_str();
    let dead = "http://127.0.0.1:1";

    // VAULT_TOKEN alone is used.
    let out = cli
        .run_env(
            &["read", "-field=a", "secret/x"],
            &[("LOCKBOX_ADDR", addr), ("VAULT_TOKEN", root)],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "b");
    let out = cli
        .run_env(
            &["token", "lookup", "-format=json"],
            &[("LOCKBOX_ADDR", addr), ("VAULT_TOKEN", root)],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&stdout(&out))["data"]["policies"], json!(["root"]));
    // LOCKBOX_TOKEN wins over VAULT_TOKEN.
    let out = cli
        .run_env(
            &["read", "secret/x"],
            &[
                ("LOCKBOX_ADDR", addr),
                ("LOCKBOX_TOKEN", "not-a-token"),
                ("VAULT_TOKEN", root),
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("Code: 403."), "{}", stderr(&out));
    // No token at all (no token file either): refused.
    let out = cli
        .run_env(&["read", "secret/x"], &[("LOCKBOX_ADDR", addr)])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    // LOCKBOX_ADDR wins over VAULT_ADDR, in both directions.
    let out = cli
        .run_env(
            &["read", "-field=a", "secret/x"],
            &[
                ("LOCKBOX_ADDR", addr),
                ("VAULT_ADDR", dead),
                ("VAULT_TOKEN", root),
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "b");
    let out = cli
        .run_env(
            &["read", "secret/x"],
            &[
                ("LOCKBOX_ADDR", dead),
                ("VAULT_ADDR", addr),
                ("VAULT_TOKEN", root),
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("GET http://127.0.0.1:1/v1/secret/x") && !err.contains(addr),
        "{err}"
    );
    // VAULT_ADDR alone is used; -address beats both variables.
    let out = cli
        .run_env(
            &["read", "-field=a", "secret/x"],
            &[("VAULT_ADDR", addr), ("VAULT_TOKEN", root)],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let flag = format!("-address={addr}");
    let out = cli
        .run_env(
            &["read", &flag, "-field=a", "secret/x"],
            &[
                ("LOCKBOX_ADDR", dead),
                ("VAULT_ADDR", dead),
                ("VAULT_TOKEN", root),
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "b");
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_output_like_vault() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    s.root("PUT", "secret/y", Some(json!({"a": "b", "n": "1"})))
        .await;

    // `read`: the JSON document as YAML, keys sorted, YAML 1.1 look-alikes
    // ("n", "1") quoted, as Vault prints it.
    let out = cli.ok(&["read", "-format=yaml", "secret/y"]).await;
    let json = json_of(&cli.ok(&["read", "-format=json", "secret/y"]).await);
    let mut doc = yaml_of(&out);
    assert_eq!(doc["data"], json!({"a": "b", "n": "1"}), "{out}");
    assert_eq!(doc["lease_duration"], 2764800, "{out}");
    assert!(
        out.starts_with("data:\n  a: b\n  \"n\": \"1\"\nlease_duration: 2764800\nlease_id: \"\"\n"),
        "{out}"
    );
    assert!(
        out.contains("\nrenewable: false\n") && out.ends_with("\nwarnings: null\n"),
        "{out}"
    );
    // Apart from the request ID, the same document as -format=json.
    doc["request_id"] = json["request_id"].clone();
    assert_eq!(doc, json, "{out}");
    // VAULT_FORMAT=yml works too; -field prints the value as a YAML
    // document (newline included, as Vault does).
    let out = cli
        .run_env(
            &["read", "-field=n", "secret/y"],
            &[
                ("LOCKBOX_ADDR", s.addr.as_str()),
                ("LOCKBOX_TOKEN", s.root_token.as_str()),
                ("VAULT_FORMAT", "yml"),
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "\"1\"\n");

    // `token lookup`.
    let out = cli.ok(&["token", "lookup", "-format=yaml"]).await;
    let doc = yaml_of(&out);
    assert_eq!(doc["data"]["policies"], json!(["root"]), "{out}");
    assert_eq!(doc["data"]["id"], s.root_token.as_str(), "{out}");
    assert!(out.contains("\n  policies:\n  - root\n"), "{out}");
    assert!(out.contains("\n  meta: null\n"), "{out}");

    // `secrets list`: mounts keyed by path, sorted.
    let out = cli.ok(&["secrets", "list", "-format=yaml"]).await;
    let doc = yaml_of(&out);
    let json = json_of(&cli.ok(&["secrets", "list", "-format=json"]).await);
    assert_eq!(doc, json, "{out}");
    let top: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    let mut sorted = top.clone();
    sorted.sort();
    assert_eq!(top, sorted, "{out}");
    assert!(top.contains(&"secret/:"), "{out}");

    // Formats Vault does not have here are usage errors.
    let out = cli.run(&["read", "-format=pretty", "secret/y"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        "Invalid output format: pretty (supported: table, json, yaml)\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn version_command_and_flags() {
    let home = tempfile::tempdir().unwrap();
    let prefix = format!("Lockbox v{} ", env!("CARGO_PKG_VERSION"));
    let mut seen = Vec::new();
    for args in [&["version"][..], &["-version"], &["--version"], &["-v"]] {
        // No server and a bad format setting: the version needs neither.
        let out = run_lockbox(home.path(), args, &[("LOCKBOX_FORMAT", "xml")], None).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        let line = text.strip_suffix('\n').expect(&text);
        assert!(!line.contains('\n'), "{text}");
        // `Lockbox v0.1.0 (<commit>), committed <time>`, like `vault version`
        // (the commit part only when the build knew it).
        if line != prefix.trim_end() {
            let rest = line.strip_prefix(&prefix).expect(line);
            let (commit, date) = rest
                .strip_prefix('(')
                .and_then(|r| r.split_once("), committed "))
                .expect(line);
            assert!(
                commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
                "{line}"
            );
            assert!(date.ends_with('Z') && date.contains('T'), "{line}");
        }
        seen.push(text);
    }
    assert!(seen.iter().all(|t| t == &seen[0]), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_self_signed_certificate_as_vault_cacert() {
    // What `openssl req -x509` makes: a self-signed certificate with
    // basicConstraints CA:TRUE, used directly as the server's certificate.
    // Vault's Go client accepts it when it is the CA file; so does lockbox.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl req failed");
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"),
        "the test needs a CA:TRUE certificate"
    );
    let server = ConfigServer::start(&tls_config(&cert, &key));
    assert!(
        server.addr.starts_with("https://127.0.0.1:"),
        "{}",
        server.addr
    );
    let cacert = cert.to_str().unwrap();

    let out = run_lockbox(
        dir.path(),
        &["operator", "init", "-status"],
        &[
            ("VAULT_ADDR", server.addr.as_str()),
            ("VAULT_CACERT", cacert),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Lockbox is not initialized\n");
    assert_eq!(stderr(&out), "");
    let out = run_lockbox(
        dir.path(),
        &["status", "-format=json"],
        &[
            ("LOCKBOX_ADDR", server.addr.as_str()),
            ("LOCKBOX_CACERT", cacert),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "sealed: {}", stderr(&out));
    assert_eq!(json_of(&stdout(&out))["initialized"], false);

    // The name is still checked: the certificate names 127.0.0.1 only.
    let port = server.addr.rsplit(':').next().unwrap();
    let by_name = format!("https://localhost:{port}");
    let out = run_lockbox(
        dir.path(),
        &["operator", "init", "-status"],
        &[("VAULT_ADDR", by_name.as_str()), ("VAULT_CACERT", cacert)],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("not valid for name \"localhost\""), "{err}");
    assert!(
        err.contains("its TLS certificate was not accepted"),
        "{err}"
    );
    assert!(!err.contains("Is it running?"), "{err}");

    // Without the CA file the certificate is not trusted.
    let out = run_lockbox(
        dir.path(),
        &["status"],
        &[("VAULT_ADDR", server.addr.as_str())],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
}

/// Vault's CLI error for a failed API call: what was being done, the
/// request, the status code and the server's messages.
fn api_error(doing: &str, request: &str, code: u16, errors: &[&str]) -> String {
    let errors: String = errors.iter().map(|e| format!("* {e}\n")).collect();
    format!(
        "{doing}: Error making API request.\n\nURL: {request}\nCode: {code}. Errors:\n\n{errors}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_server_is_a_server_error_until_unsealed() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    cli.ok(&["write", "secret/x", "a=b"]).await;
    let out = cli.ok(&["operator", "seal"]).await;
    assert_eq!(out, "Success! Lockbox is sealed.\n");
    assert!(s.core.is_sealed());

    // read: 503 from the server, its message printed, exit 2.
    let out = cli.run(&["read", "secret/x"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        api_error(
            "Error reading secret/x",
            &format!("GET {}/v1/secret/x", s.addr),
            503,
            &["lockbox is sealed"],
        )
    );
    // list: the same 503.
    let out = cli.run(&["list", "secret/"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.starts_with("Error listing secret"), "{err}");
    assert!(
        err.contains(&format!("{}/v1/secret", s.addr))
            && err.ends_with("\nCode: 503. Errors:\n\n* lockbox is sealed\n"),
        "{err}"
    );
    // -format=json does not turn the error into an empty document.
    let out = cli.run(&["read", "-format=json", "secret/x"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("lockbox is sealed"),
        "{}",
        stderr(&out)
    );

    // Unsealed through the CLI: the same commands work again.
    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let out = cli.ok(&["operator", "unseal", &key]).await;
    assert_eq!(kv(&out, "Sealed"), "false", "{out}");
    assert!(!s.core.is_sealed());
    assert_eq!(cli.ok(&["read", "-field=a", "secret/x"]).await, "b");
    assert_eq!(cli.ok(&["list", "secret/"]).await, "Keys\n----\nx\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_mount_is_no_value_for_root_and_denied_without_access() {
    let s = TestServer::dev().await;
    let mut cli = Cli::new(&s);
    s.root("PUT", "secret/x", Some(json!({"a": "b"}))).await;

    // Root: the server's 404 is "No value found", exit 2, as `bao read`
    // prints it.
    let r = s.root("GET", "nosuch/x", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let out = cli.run(&["read", "nosuch/x"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "No value found at nosuch/x\n");

    // A token with only `default`: 403 for the unknown mount and for a
    // path it has no policy for, the server's message printed.
    cli.token = Some(s.token_with(&["default"]).await);
    for path in ["nosuch/x", "secret/x"] {
        let out = cli.run(&["read", path]).await;
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stdout(&out));
        assert_eq!(stdout(&out), "");
        assert_eq!(
            stderr(&out),
            api_error(
                &format!("Error reading {path}"),
                &format!("GET {}/v1/{path}", s.addr),
                403,
                &["permission denied"],
            )
        );
    }
    let out = cli.run(&["list", "secret/"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("Error listing secret")
            && err.ends_with("\nCode: 403. Errors:\n\n* permission denied\n"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_write_is_refused_with_the_servers_413() {
    let mut server = ConfigServer::start(&inmem_config("max_request_size = 1024\n"));
    server.init_unseal(1, 1).await;
    let cli = Cli::new(&server);
    cli.ok(&["secrets", "enable", "-path=secret", "kv"]).await;

    let big = cli.home.path().join("big.txt");
    std::fs::write(&big, "a".repeat(4096)).unwrap();
    let arg = format!("v=@{}", big.display());
    let out = cli.run(&["write", "secret/big", &arg]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let head = api_error(
        "Error writing data to secret/big",
        &format!("PUT {}/v1/secret/big", server.addr),
        413,
        &[],
    );
    assert!(
        err.starts_with(&head) && err.ends_with('\n') && err.lines().count() == 6,
        "{err}"
    );
    let message = err.lines().last().unwrap();
    assert!(
        message.starts_with("* http: request body too large") && message.contains("1024"),
        "{err}"
    );
    // Nothing was stored.
    let out = cli.run(&["read", "secret/big"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stderr(&out), "No value found at secret/big\n");
    // The limit is what refused it: a small file goes through.
    std::fs::write(&big, "small").unwrap();
    cli.ok(&["write", "secret/big", &arg]).await;
    assert_eq!(cli.ok(&["read", "-field=v", "secret/big"]).await, "small");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_stdin_json_is_a_usage_error_and_writes_nothing() {
    let s = TestServer::dev().await;
    let cli = Cli::new(&s);
    cli.ok(&["write", "secret/kept", "a=1"]).await;
    let prefix = "Failed to parse K=V data: invalid key/value pair \"-\": ";
    for (stdin, problem) in [
        (
            r#"{"a": "#,
            "error decoding JSON from stdin: EOF while parsing",
        ),
        ("not json", "error decoding JSON from stdin: expected ident"),
        (
            r#"{"a": 1,}"#,
            "error decoding JSON from stdin: trailing comma",
        ),
        ("", "error decoding JSON from stdin: EOF while parsing"),
        ("[1, 2]", "stdin does not hold a JSON object"),
    ] {
        for path in ["secret/new", "secret/kept"] {
            let out = cli.run_stdin(&["write", path, "-"], Some(stdin)).await;
            assert_eq!(out.status.code(), Some(1), "{stdin:?}: {}", stdout(&out));
            assert_eq!(stdout(&out), "", "{stdin:?}");
            let err = stderr(&out);
            assert!(
                err.starts_with(&format!("{prefix}{problem}"))
                    && err.ends_with('\n')
                    && err.lines().count() == 1,
                "{stdin:?}: {err}"
            );
        }
    }
    // Nothing was written: the new path is absent, the old value intact.
    let out = cli.run(&["read", "secret/new"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stderr(&out), "No value found at secret/new\n");
    assert_eq!(s.root("GET", "secret/new", None).await.status, 404);
    let v = json_of(&cli.ok(&["read", "-format=json", "secret/kept"]).await);
    assert_eq!(v["data"], json!({"a": "1"}), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn use_limited_non_renewable_token() {
    let s = TestServer::dev().await;
    let mut cli = Cli::new(&s);
    let create = [
        "token",
        "create",
        "-use-limit=2",
        "-renewable=false",
        "-ttl=10m",
        "-policy=default",
        "-format=json",
    ];
    let v = json_of(&cli.ok(&create).await);
    let auth = &v["auth"];
    assert_eq!(auth["num_uses"], 2, "{v}");
    assert_eq!(auth["renewable"], false, "{v}");
    assert_eq!(auth["lease_duration"], 600, "{v}");
    assert_eq!(auth["policies"], json!(["default"]), "{v}");
    assert_eq!(v["lease_duration"], 0, "{v}");
    let token = auth["client_token"].as_str().expect("token").to_string();

    // Looking it up as root uses none of its uses.
    let out = cli.ok(&["token", "lookup", &token]).await;
    assert_eq!(kv(&out, "num_uses"), "2", "{out}");
    assert_eq!(kv(&out, "renewable"), "false", "{out}");
    assert_eq!(kv(&out, "creation_ttl"), "10m", "{out}");

    // Each lookup-self is a use: 1 left, then -1 (the last use), as Vault
    // shows them; the third is refused and the token is gone.
    cli.token = Some(token.clone());
    let out = cli.ok(&["token", "lookup"]).await;
    assert_eq!(kv(&out, "id"), token, "{out}");
    assert_eq!(kv(&out, "num_uses"), "1", "{out}");
    let out = cli.ok(&["token", "lookup"]).await;
    assert_eq!(kv(&out, "num_uses"), "-1", "{out}");
    let out = cli.run(&["token", "lookup"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        api_error(
            "Error looking up token",
            &format!("GET {}/v1/auth/token/lookup-self", s.addr),
            403,
            &["permission denied"],
        )
    );
    let r = s
        .root("POST", "auth/token/lookup", Some(json!({"token": token})))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);

    // Renewing a non-renewable token: Vault's 400 "lease is not
    // renewable", exit 2, for renew-self and for renew TOKEN as root.
    cli.token = Some(s.root_token.clone());
    let v = json_of(&cli.ok(&create).await);
    let other = v["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let out = cli.run(&["token", "renew", &other]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.starts_with("Error renewing token: Error making API request.\n\nURL: ")
            && err.ends_with(&format!(
                " {}/v1/auth/token/renew\nCode: 400. Errors:\n\n* lease is not renewable\n",
                s.addr
            )),
        "{err}"
    );
    cli.token = Some(other.clone());
    let out = cli.run(&["token", "renew"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.starts_with("Error renewing token: Error making API request.\n\nURL: ")
            && err.ends_with(&format!(
                " {}/v1/auth/token/renew-self\nCode: 400. Errors:\n\n* lease is not renewable\n",
                s.addr
            )),
        "{err}"
    );
    // The refused renew-self still counted as a use (as in Vault): this
    // lookup is the last one, and the TTL was not extended.
    let v = json_of(&cli.ok(&["token", "lookup", "-format=json"]).await);
    assert_eq!(v["data"]["num_uses"], -1, "{v}");
    assert_eq!(v["data"]["renewable"], false, "{v}");
    assert!(v["data"]["ttl"].as_u64().is_some_and(|t| t <= 600), "{v}");
    let out = cli.run(&["token", "lookup"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("Code: 403. Errors:\n\n* permission denied\n"),
        "{}",
        stderr(&out)
    );
}
