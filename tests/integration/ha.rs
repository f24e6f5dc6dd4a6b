//! High availability on PostgreSQL (issue 15): three real `lockbox server`
//! processes with `ha_enabled = "true"` against one throwaway cluster
//! (`tests/harness/pg-up.sh`). Standbys forward (or, with
//! `disable_request_forwarding`, redirect) to the active node; `kill -9`
//! of the active under a write load loses no acknowledged write; a paused
//! (SIGSTOP) active is fenced and steps down by itself. Skipped, saying so,
//! only when initdb is not installed here (`tests/run.sh` installs it).

use crate::common::postgres::{Postgres, initdb_installed};
use crate::common::{ConfigServer, Resp, install_plugin, signal};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Ha-pw-5c1f0e";

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Node {
    api_port: u16,
    cluster_port: u16,
    dir: tempfile::TempDir,
    server: Option<ConfigServer>,
    redirect: bool,
}

/// Three nodes on one database; node `i` serves `http://127.0.0.1:PORT`.
struct Cluster {
    pg: Postgres,
    url: String,
    nodes: Vec<Node>,
    plugins: tempfile::TempDir,
    root: String,
    /// More keys for the storage block.
    storage_extra: String,
}

impl Cluster {
    /// Starts `n` nodes (node `n - 1` redirects instead of forwarding when
    /// `last_redirects`), initializes through node 0 and unseals them all;
    /// node 0 is active when this returns.
    async fn start(n: usize, last_redirects: bool) -> Option<Cluster> {
        Self::start_with(n, last_redirects, "").await
    }

    /// [`Cluster::start`] with `storage_extra` lines in the storage block.
    async fn start_with(n: usize, last_redirects: bool, storage_extra: &str) -> Option<Cluster> {
        if !initdb_installed() {
            eprintln!("SKIPPED: initdb not found (apt-get install postgresql; tests/run.sh does)");
            return None;
        }
        let pg = Postgres::start();
        pg.admin(&format!("CREATE ROLE lockbox LOGIN PASSWORD '{PASSWORD}'"));
        pg.admin("CREATE DATABASE lockbox OWNER lockbox");
        let url = format!(
            "postgresql://lockbox:{PASSWORD}@127.0.0.1:{}/lockbox?sslmode=disable",
            pg.port
        );
        let plugins = tempfile::tempdir().expect("tempdir");
        install_plugin(plugins.path(), "mock", "lockbox-plugin-mock");
        let mut cluster = Cluster {
            pg,
            url,
            nodes: (0..n)
                .map(|i| Node {
                    api_port: free_port(),
                    cluster_port: free_port(),
                    dir: tempfile::tempdir().expect("tempdir"),
                    server: None,
                    redirect: last_redirects && i == n - 1,
                })
                .collect(),
            plugins,
            root: String::new(),
            storage_extra: storage_extra.to_string(),
        };
        cluster.boot(0);
        let node0 = cluster.api(0);
        let init = node0
            .call(
                "PUT",
                "sys/init",
                None,
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            )
            .await;
        assert_eq!(init.status, 200, "init through node 0: {:?}", init.body);
        cluster.root = init.body["root_token"].as_str().expect("root").to_string();
        let key = init.body["keys_base64"][0]
            .as_str()
            .expect("key")
            .to_string();
        for node in &cluster.nodes {
            std::fs::write(node.dir.path().join("keys"), &key).expect("keys file");
        }
        let unseal = node0
            .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
            .await;
        assert_eq!(unseal.body["sealed"], false, "{:?}", unseal.body);
        cluster.wait_active(&[0], Duration::from_secs(30)).await;
        for i in 1..n {
            cluster.boot(i);
        }
        for i in 1..n {
            cluster
                .wait_for(
                    i,
                    Duration::from_secs(30),
                    |r| r.status == 200 && r.body["sealed"] == false,
                    "sys/seal-status",
                )
                .await;
        }
        Some(cluster)
    }

    fn config(&self, i: usize) -> String {
        let node = &self.nodes[i];
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  ha_enabled = \"true\"\n  max_parallel = \"8\"\n{extra}}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  cluster_address = \"127.0.0.1:{cl}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{api}\"\n\
             cluster_addr = \"https://127.0.0.1:{cl}\"\n\
             disable_request_forwarding = {redirect}\n\
             plugin_directory = \"{plugins}\"\n\
             unseal_keys_file = \"{{dir}}/keys\"\n\
             log_level = \"debug\"\n",
            url = self.url,
            extra = self.storage_extra,
            api = node.api_port,
            cl = node.cluster_port,
            redirect = node.redirect,
            plugins = self.plugins.path().display(),
        )
    }

    /// Starts node `i` (its keys file, once written, unseals it).
    fn boot(&mut self, i: usize) {
        let config = self.config(i);
        let dir = self.nodes[i].dir.path().to_path_buf();
        if !dir.join("keys").exists() {
            std::fs::write(dir.join("keys"), "").expect("empty keys file");
        }
        let server = ConfigServer::builder(&config).dir(&dir).start();
        self.nodes[i].server = Some(server);
    }

    fn addr(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].api_port)
    }

    fn api(&self, i: usize) -> crate::common::Api {
        let mut api = crate::common::Api::new(&self.addr(i));
        api.root_token = self.root.clone();
        api
    }

    async fn wait_for(
        &self,
        i: usize,
        within: Duration,
        ok: impl Fn(&Resp) -> bool,
        path: &str,
    ) -> Resp {
        let api = self.api(i);
        let deadline = Instant::now() + within;
        loop {
            let r = api.call("GET", path, None, None).await;
            if ok(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "node {i}: {path} never as expected: {} {:?}\nlog:\n{}",
                r.status,
                r.body,
                self.log(i)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self, i: usize) -> String {
        self.nodes[i]
            .server
            .as_ref()
            .map(|s| s.process.log().join("\n"))
            .unwrap_or_default()
    }

    /// `secret/` as kv version 1, through node 0.
    async fn mount_kv(&self) {
        let r = self
            .api(0)
            .root("POST", "sys/mounts/secret", Some(json!({"type": "kv"})))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }

    /// The nodes that say they are active.
    async fn actives(&self) -> Vec<usize> {
        let mut actives = Vec::new();
        for i in 0..self.nodes.len() {
            let r = self.api(i).call("GET", "sys/leader", None, None).await;
            if r.body["is_self"] == true {
                actives.push(i);
            }
        }
        actives
    }

    /// Waits until one of `candidates` says it is the active node; returns it.
    async fn wait_active(&self, candidates: &[usize], within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            for &i in candidates {
                let r = self.api(i).call("GET", "sys/leader", None, None).await;
                if r.body["is_self"] == true {
                    return i;
                }
            }
            assert!(
                Instant::now() < deadline,
                "none of nodes {candidates:?} became active"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn standbys_forward_or_redirect_and_every_node_reads_the_latest_value() {
    let Some(c) = Cluster::start(3, true).await else {
        return;
    };
    let (active, forwarder, redirector) = (c.api(0), c.api(1), c.api(2));

    // The standbys report themselves as such, and name the active.
    for i in [1, 2] {
        let leader = c.api(i).call("GET", "sys/leader", None, None).await;
        assert_eq!(leader.status, 200, "{:?}", leader.body);
        assert_eq!(leader.body["ha_enabled"], true);
        assert_eq!(leader.body["is_self"], false);
        assert_eq!(leader.body["leader_address"], c.addr(0).as_str());
        let h = c.api(i).call("GET", "sys/health", None, None).await;
        assert_eq!(h.status, 429, "standby health: {:?}", h.body);
        assert_eq!(h.body["standby"], true);
        assert_eq!(h.body["sealed"], false);
        for ok in ["standbyok=true", "perfstandbyok=true"] {
            let h = c
                .api(i)
                .call("GET", &format!("sys/health?{ok}"), None, None)
                .await;
            assert_eq!(h.status, 200, "{ok}: {:?}", h.body);
        }
    }
    let leader = active.call("GET", "sys/leader", None, None).await;
    assert_eq!(leader.body["is_self"], true, "{:?}", leader.body);
    assert_ne!(leader.body["active_time"], "0001-01-01T00:00:00Z");
    let h = active.call("GET", "sys/health", None, None).await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    assert_eq!(h.body["standby"], false);

    // A mount and writes through the forwarding standby and the active.
    let r = forwarder
        .root("POST", "sys/mounts/secret", Some(json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "mount through a standby: {:?}", r.body);
    let r = forwarder
        .root("PUT", "secret/app", Some(json!({"v": "from-standby"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for api in [&active, &forwarder] {
        let r = api.root("GET", "secret/app", None).await;
        assert_eq!(r.body["data"]["v"], "from-standby", "{:?}", r.body);
    }
    let r = active
        .root("PUT", "secret/app", Some(json!({"v": "from-active"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = forwarder.root("GET", "secret/app", None).await;
    assert_eq!(r.body["data"]["v"], "from-active", "{:?}", r.body);
    // The active's audit records the client's address, not the standby's:
    // a client on 127.0.0.2 reads through the forwarding standby (which
    // talks to the active from 127.0.0.1), a forged forwarding header
    // included; the standby sets its own.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let r = active
        .root(
            "PUT",
            "sys/audit/file",
            Some(json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let mut far = c.api(1);
    far.client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    // The standby serves this read itself once it has heard of the new
    // audit device (announced by the active's write): the entry is then in
    // the log both nodes write to.
    let deadline = Instant::now() + Duration::from_secs(10);
    let read = loop {
        let r = far
            .client
            .get(format!("{}/v1/secret/app", far.addr))
            .header("X-Vault-Token", &far.root_token)
            .header("X-Lockbox-Forwarded-For", "10.9.8.7:6543")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(read) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .rfind(|e| e["type"] == "response" && e["request"]["path"] == "secret/app")
        {
            break read;
        }
        assert!(
            Instant::now() < deadline,
            "no audit entry of the standby's read: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(read["request"]["remote_address"], "127.0.0.2", "{read}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("10.9.8.7"), "a forged address was taken");
    // A forwarded request (a write) carries the client's address to the
    // active, whose entry records it.
    let r = far
        .client
        .put(format!("{}/v1/secret/fwd", far.addr))
        .header("X-Vault-Token", &far.root_token)
        .header("X-Lockbox-Forwarded-For", "10.9.8.7:6543")
        .json(&json!({"v": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let text = std::fs::read_to_string(&log).unwrap();
    let write: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|e| e["type"] == "response" && e["request"]["path"] == "secret/fwd")
        .unwrap_or_else(|| panic!("no entry of the forwarded write: {text}"));
    assert_eq!(write["request"]["remote_address"], "127.0.0.2", "{write}");
    assert!(!text.contains("10.9.8.7"), "a forged address was taken");
    let r = active.root("DELETE", "sys/audit/file", None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Errors and bad tokens come back as the active answered them.
    let r = forwarder
        .call("GET", "secret/app", Some("not-a-token"), None)
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = forwarder.root("GET", "secret/none", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let st = forwarder.root("GET", "sys/ha-status", None).await;
    assert_eq!(st.status, 200, "{:?}", st.body);
    let nodes = st.body["nodes"].as_array().expect("nodes");
    let mut listed: Vec<(String, bool)> = nodes
        .iter()
        .map(|n| {
            (
                n["api_address"].as_str().unwrap_or("").to_string(),
                n["active_node"] == true,
            )
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, bool)> = (0..3).map(|i| (c.addr(i), i == 0)).collect();
    expected.sort();
    assert_eq!(listed, expected, "{:?}", st.body);

    // disable_request_forwarding: a 307 to the same path on the active
    // (for what the standby does not serve itself).
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = raw
        .get(format!("{}/v1/sys/mounts?x=1", c.addr(2)))
        .header("X-Vault-Token", &c.root)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 307);
    assert_eq!(
        resp.headers()["location"].to_str().expect("location"),
        format!("{}/v1/sys/mounts?x=1", c.addr(0))
    );
    // A client that follows it (reqwest does, like Vault's) gets the answer.
    let r = redirector.root("GET", "secret/app", None).await;
    assert_eq!(r.body["data"]["v"], "from-active", "{:?}", r.body);

    // sys/step-down needs sudo, and hands leadership to a standby; the old
    // active waits before it competes again, and serves as a standby.
    let plain = c.api(0).token_with(&["default"]).await;
    let r = forwarder
        .call("PUT", "sys/step-down", Some(&plain), None)
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = forwarder.root("PUT", "sys/step-down", None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let new_active = c.wait_active(&[1, 2], Duration::from_secs(10)).await;
    let r = c.api(0).call("GET", "sys/leader", None, None).await;
    assert_eq!(r.body["is_self"], false, "{:?}", r.body);
    assert_eq!(r.body["leader_address"], c.addr(new_active).as_str());
    let r = c
        .api(0)
        .root("PUT", "secret/app", Some(json!({"v": "after-step-down"})))
        .await;
    assert!(
        r.status == 204 || r.status == 307,
        "{} {:?}",
        r.status,
        r.body
    );
    let r = c.api(new_active).root("GET", "secret/app", None).await;
    assert_eq!(r.body["data"]["v"], "after-step-down", "{:?}", r.body);
}

/// A client that does not follow redirects, with `token`.
async fn raw(method: reqwest::Method, url: &str, token: &str) -> (u16, serde_json::Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client
        .request(method, url)
        .header("X-Vault-Token", token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn standbys_serve_kv_reads_themselves_and_hear_of_every_change() {
    let Some(c) = Cluster::start(3, true).await else {
        return;
    };
    c.mount_kv().await;
    let active = c.api(0);
    let standby = |path: &str| format!("{}/v1/{path}", c.addr(2));
    let r = active
        .root("PUT", "secret/a", Some(json!({"v": "1"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // The redirecting standby answers a kv read itself (no 307) and
    // redirects what it does not serve: writes, sys/, the token store.
    // (once it listens to the active's announcements: until then it
    // redirects everything).
    let served_locally = |path: &'static str| {
        let url = standby(path);
        let root = c.root.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (status, body) = raw(reqwest::Method::GET, &url, &root).await;
                if status != 307 {
                    return (status, body);
                }
                assert!(
                    Instant::now() < deadline,
                    "{url} is never served by the standby"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (status, body) = served_locally("secret/a").await;
    assert_eq!(
        (status, body["data"]["v"].clone()),
        (200, json!("1")),
        "{body}"
    );
    let (status, body) = raw(
        reqwest::Method::from_bytes(b"LIST").unwrap(),
        &standby("secret/"),
        &c.root,
    )
    .await;
    assert_eq!(
        (status, body["data"]["keys"].clone()),
        (200, json!(["a"])),
        "{body}"
    );
    for (method, path) in [
        (reqwest::Method::PUT, "secret/a"),
        (reqwest::Method::DELETE, "secret/a"),
        (reqwest::Method::GET, "sys/mounts"),
        (reqwest::Method::GET, "auth/token/lookup-self"),
    ] {
        let (status, body) = raw(method.clone(), &standby(path), &c.root).await;
        assert_eq!(status, 307, "{method} {path}: {body}");
    }
    // A value the active acknowledged is read at once.
    let r = active
        .root("PUT", "secret/a", Some(json!({"v": "2"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let (status, body) = raw(reqwest::Method::GET, &standby("secret/a"), &c.root).await;
    assert_eq!(
        (status, body["data"]["v"].clone()),
        (200, json!("2")),
        "{body}"
    );

    // Policies: a denial comes from the standby; a policy change reaches it
    // (its cached policies are dropped on the announcement).
    let r = active
        .root(
            "PUT",
            "sys/policies/acl/reader",
            Some(json!({"policy": "path \"secret/a\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let reader = active.token_with(&["reader"]).await;
    let r = active
        .root("PUT", "secret/b", Some(json!({"v": "b"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let (status, body) = raw(reqwest::Method::GET, &standby("secret/a"), &reader).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(reqwest::Method::GET, &standby("secret/b"), &reader).await;
    assert_eq!(status, 403, "{body}");
    let r = active
        .root(
            "PUT",
            "sys/policies/acl/reader",
            Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = raw(reqwest::Method::GET, &standby("secret/b"), &reader).await;
        if status == 200 {
            assert_eq!(body["data"]["v"], "b", "{body}");
            break;
        }
        assert_eq!(status, 403, "{body}");
        assert!(
            Instant::now() < deadline,
            "the standby never heard of the policy change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A revoked token is refused at once (tokens are read from storage on
    // every request, never cached by a standby).
    let r = active
        .root("PUT", "auth/token/revoke", Some(json!({"token": reader})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let (status, body) = raw(reqwest::Method::GET, &standby("secret/a"), &reader).await;
    assert_eq!(status, 403, "{body}");
    // A limited-use token's uses are counted by the active: redirected.
    let limited = active.create_token(json!({"num_uses": 3})).await;
    let (status, body) = raw(reqwest::Method::GET, &standby("secret/a"), &limited).await;
    assert_eq!(status, 307, "{body}");

    // A new mount: redirected until the standby hears of it, then served.
    let r = active
        .root("POST", "sys/mounts/more", Some(json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = active.root("PUT", "more/x", Some(json!({"v": "x"}))).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = raw(reqwest::Method::GET, &standby("more/x"), &c.root).await;
        if status == 200 {
            assert_eq!(body["data"]["v"], "x", "{body}");
            break;
        }
        assert_eq!(status, 307, "{body}");
        assert!(
            Instant::now() < deadline,
            "the standby never heard of the new mount"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Reads go on while the active node is paused (a forwarded read would
    // wait for it).
    let old = &c.nodes[0].server.as_ref().expect("node 0").process.child;
    signal(old, "STOP");
    let r = c.api(1).root("GET", "secret/a", None).await;
    assert_eq!(
        (r.status.as_u16(), r.body["data"]["v"].clone()),
        (200, json!("2")),
        "{:?}\n{}",
        r.body,
        c.log(1)
    );
    signal(old, "CONT");
    let r = c
        .api(0)
        .root("PUT", "secret/c", Some(json!({"v": "c"})))
        .await;
    assert_eq!(r.status, 204, "the active resumed: {:?}", r.body);

    // Its announcements missed (the listening session ended): the standby
    // listens again and serves what changed meanwhile.
    let ended = c.pg.admin(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN lockbox_changes_%'",
    );
    assert_eq!(ended.trim(), "3", "one listening session per node");
    let r = active.root("DELETE", "sys/mounts/more", None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = raw(reqwest::Method::GET, &standby("more/x"), &c.root).await;
        if status == 307 {
            break;
        }
        assert_eq!(status, 404, "{body}");
        assert!(
            Instant::now() < deadline,
            "the standby still serves a disabled mount"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = served_locally("secret/c").await;
    assert_eq!(
        (status, body["data"]["v"].clone()),
        (200, json!("c")),
        "{body}"
    );
    let (status, body) = raw(reqwest::Method::GET, &standby("more/x"), &c.root).await;
    assert_eq!(status, 307, "the disabled mount: {body}");
}

/// Acknowledged writes: path → value.
type Acked = Arc<Mutex<BTreeMap<String, String>>>;

/// Writes `{mount}/w{writer}/k{i}` in a loop through every node in turn,
/// recording what was acknowledged.
fn write_load(
    c: &Cluster,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> (Acked, Vec<tokio::task::JoinHandle<()>>) {
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let addrs: Vec<String> = (0..c.nodes.len()).map(|i| c.addr(i)).collect();
    let handles = (0..writers)
        .map(|w| {
            let (acked, stop, addrs, root) =
                (acked.clone(), stop.clone(), addrs.clone(), c.root.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client");
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let mount = if w % 2 == 0 { "secret" } else { "mock" };
                    let path = format!("{mount}/w{w}/k{i}");
                    let value = format!("v{w}-{i}");
                    let addr = &addrs[(w + i) % addrs.len()];
                    let sent = client
                        .put(format!("{addr}/v1/{path}"))
                        .header("X-Vault-Token", &root)
                        .json(&json!({ "v": value }))
                        .send()
                        .await;
                    if let Ok(r) = sent
                        && r.status().is_success()
                    {
                        acked.lock().unwrap().insert(path, value);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    (acked, handles)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_active_under_load_loses_no_acknowledged_write() {
    let Some(mut c) = Cluster::start(3, false).await else {
        return;
    };
    let active = c.api(0);
    c.mount_kv().await;
    let r = active
        .root(
            "PUT",
            "sys/plugins/catalog/secret/mock",
            Some(json!({
                "sha256": crate::common::sha256_file(&c.plugins.path().join("lockbox-plugin-mock")),
                "command": "lockbox-plugin-mock"
            })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = active
        .root("POST", "sys/mounts/mock", Some(json!({"type": "mock"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    let stop = Arc::new(AtomicBool::new(false));
    let (acked, writers) = write_load(&c, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = acked.lock().unwrap().len();
    assert!(before > 0, "no write was acknowledged before the kill");

    let killed_at = Instant::now();
    signal(
        &c.nodes[0].server.as_ref().expect("node 0").process.child,
        "KILL",
    );
    c.nodes[0]
        .server
        .as_mut()
        .expect("node 0")
        .process
        .child
        .wait()
        .expect("reap");
    let new_active = c.wait_active(&[1, 2], Duration::from_secs(20)).await;
    // The first write through the new active.
    let api = c.api(new_active);
    loop {
        let r = api
            .root("PUT", "secret/after-kill", Some(json!({"v": "1"})))
            .await;
        if r.status == 204 {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "no write through the new active: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "failover: node {new_active} took writes {:?} after the kill",
        killed_at.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() > before,
        "no write acknowledged after the failover"
    );

    // Every acknowledged write, on every surviving node (the plugin mount
    // is served by the new active's own plugin process).
    for i in [1, 2] {
        let api = c.api(i);
        for (path, value) in &acked {
            let r = api.root("GET", path, None).await;
            assert_eq!(
                r.body["data"]["v"].as_str(),
                Some(value.as_str()),
                "node {i}: acknowledged write {path} lost: {} {:?}",
                r.status,
                r.body
            );
        }
    }
    // A plugin reload right after the failover works (Vault's #23159).
    let r = api
        .root(
            "PUT",
            "sys/plugins/reload/backend",
            Some(json!({"plugin": "mock"})),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "reload: {:?}", r.body);
    let r = api
        .root("PUT", "mock/post-reload", Some(json!({"v": "ok"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_active_is_fenced_and_steps_down_by_itself() {
    let Some(c) = Cluster::start(3, false).await else {
        return;
    };
    c.mount_kv().await;
    let r = c
        .api(0)
        .root("PUT", "secret/k", Some(json!({"v": "before"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    let old = &c.nodes[0].server.as_ref().expect("node 0").process.child;
    signal(old, "STOP");
    // A write sent to the paused node waits in its socket until it resumes.
    let paused_write = {
        let api = c.api(0);
        tokio::spawn(async move {
            api.root(
                "PUT",
                "secret/k",
                Some(json!({"v": "from-the-paused-node"})),
            )
            .await
        })
    };
    let new_active = c.wait_active(&[1, 2], Duration::from_secs(30)).await;
    let r = c
        .api(new_active)
        .root("PUT", "secret/k", Some(json!({"v": "after-takeover"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    signal(old, "CONT");

    let answer = paused_write.await.expect("paused write");
    let stored = c.api(new_active).root("GET", "secret/k", None).await;
    let stored = stored.body["data"]["v"].as_str().unwrap_or("").to_string();
    if answer.status.is_success() {
        // Only possible if the old node had stepped down and forwarded it
        // to the new active: then it is the stored value.
        assert_eq!(stored, "from-the-paused-node", "{:?}", answer.body);
    } else {
        // Fenced: the old node's own write never committed.
        assert_eq!(
            stored, "after-takeover",
            "{} {:?}",
            answer.status, answer.body
        );
    }
    // The old node steps down by itself, and names the new active.
    let leader = c
        .wait_for(
            0,
            Duration::from_secs(15),
            |r| {
                r.body["is_self"] == false
                    && r.body["leader_address"] == c.addr(new_active).as_str()
            },
            "sys/leader",
        )
        .await;
    assert_eq!(leader.body["ha_enabled"], true);
    // Exactly one node is active.
    assert_eq!(c.actives().await, vec![new_active]);
    assert!(
        c.log(0).contains("stepping down"),
        "the old active did not say it stepped down:\n{}",
        c.log(0)
    );
    // And it serves again, as a standby, through the new active.
    let r = c.api(0).root("GET", "secret/k", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_restarted_under_load_loses_nothing_and_one_node_leads() {
    let Some(c) = Cluster::start(3, false).await else {
        return;
    };
    c.mount_kv().await;
    let stop = Arc::new(AtomicBool::new(false));
    // Writers 0 and 2 write kv; 1 and 3 the plugin mount, which this test
    // does not mount: their writes fail and are not counted.
    let (acked, writers) = write_load(&c, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    c.pg.stop();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    c.pg.restart();
    // Leadership settles on one node, which takes writes again.
    let active = c.wait_active(&[0, 1, 2], Duration::from_secs(30)).await;
    let api = c.api(active);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api
            .root("PUT", "secret/after-restart", Some(json!({"v": "1"})))
            .await;
        if r.status == 204 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write after the restart: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(!acked.is_empty());
    for (path, value) in &acked {
        let r = api.root("GET", path, None).await;
        assert_eq!(
            r.body["data"]["v"].as_str(),
            Some(value.as_str()),
            "acknowledged write {path} lost: {} {:?}",
            r.status,
            r.body
        );
    }
    assert_eq!(
        c.actives().await,
        vec![active],
        "one active node after the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_seal_when_the_database_is_gone_and_unseal_when_it_is_back() {
    let Some(c) = Cluster::start_with(2, false, "  ha_seal_after_storage_loss = \"2s\"\n").await
    else {
        return;
    };
    c.mount_kv().await;
    let r = c
        .api(0)
        .root("PUT", "secret/k", Some(json!({"v": "kept"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let marks: Vec<usize> = (0..2)
        .map(|i| c.nodes[i].server.as_ref().expect("node").process.log_len())
        .collect();
    c.pg.stop();
    for (i, from) in marks.iter().enumerate() {
        let line = c.nodes[i]
            .server
            .as_ref()
            .expect("node")
            .process
            .wait_log(*from, "sealing this node");
        assert!(line.contains("ha_seal_after_storage_loss"), "{line}");
    }
    // Sealed: nothing is served, not even from memory.
    let r = c.api(0).root("GET", "secret/k", None).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    c.pg.restart();
    // Unsealed again from unseal_keys_file; one node leads; data intact.
    let active = c.wait_active(&[0, 1], Duration::from_secs(30)).await;
    let r = c.api(active).root("GET", "secret/k", None).await;
    assert_eq!(r.body["data"]["v"], "kept", "{:?}", r.body);
    for i in 0..2 {
        c.wait_for(
            i,
            Duration::from_secs(30),
            |r| r.status == 200 && r.body["sealed"] == false,
            "sys/seal-status",
        )
        .await;
    }
}
