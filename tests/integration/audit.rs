//! Audit devices (issue 14): a file device records each request and its
//! response with every secret HMAC'd, matching `sys/audit-hash`; when no
//! device can record, requests are refused and change nothing (fail
//! closed); one broken device of two does not stop anything; the real
//! `bao audit` commands work.

use crate::common::TestServer;
use serde_json::{Value, json};

async fn enable(s: &TestServer, name: &str, options: Value) -> crate::common::Resp {
    s.root(
        "PUT",
        &format!("sys/audit/{name}"),
        Some(json!({"type": "file", "options": options})),
    )
    .await
}

fn entries(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_device_records_requests_and_responses_without_secrets() {
    let s = TestServer::dev().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let r = enable(&s, "file", json!({"file_path": log.to_str().unwrap()})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let list = s.root("GET", "sys/audit", None).await;
    assert_eq!(
        list.body["data"]["file/"]["type"], "file",
        "{:?}",
        list.body
    );
    assert_eq!(
        list.body["data"]["file/"]["options"]["file_path"],
        log.to_str().unwrap()
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let secret = "hunter2-audit-canary-7d1e";
    let w = s
        .root("PUT", "secret/app", Some(json!({"password": secret})))
        .await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    let r = s.root("GET", "secret/app", None).await;
    assert_eq!(r.body["data"]["password"], secret);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(secret), "a secret value in the audit log");
    assert!(
        !text.contains(&s.root_token),
        "the root token in the audit log"
    );
    let all = entries(&log);
    // Each request has a request entry and a response entry, same id.
    let write_req = all
        .iter()
        .find(|e| {
            e["type"] == "request"
                && e["request"]["path"] == "secret/app"
                && e["request"]["operation"] == "create"
        })
        .unwrap_or_else(|| panic!("no request entry for the write: {all:#?}"));
    let id = write_req["request"]["id"].as_str().unwrap();
    assert!(
        all.iter()
            .any(|e| e["type"] == "response" && e["request"]["id"] == id),
        "no response entry for request {id}"
    );
    // The HMACs match sys/audit-hash.
    let h = s
        .root("PUT", "sys/audit-hash/file", Some(json!({"input": secret})))
        .await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let hash = h.body["data"]["hash"].as_str().unwrap().to_string();
    assert!(hash.starts_with("hmac-sha256:"), "{hash}");
    assert_eq!(write_req["request"]["data"]["password"], hash.as_str());
    let read_resp = all
        .iter()
        .find(|e| {
            e["type"] == "response"
                && e["request"]["path"] == "secret/app"
                && e["request"]["operation"] == "read"
        })
        .expect("response entry of the read");
    assert_eq!(read_resp["response"]["data"]["password"], hash.as_str());
    // A kv read changes nothing: its request entry is written together
    // with its response entry (one write, before the reply), request first.
    let read_id = read_resp["request"]["id"].as_str().unwrap();
    let at = |kind: &str| {
        all.iter()
            .position(|e| e["type"] == kind && e["request"]["id"] == read_id)
            .unwrap_or_else(|| panic!("no {kind} entry for the read {read_id}"))
    };
    assert_eq!(at("request") + 1, at("response"));
    assert!(all[at("request")].get("response").is_none());
    // The client's address, as Vault writes it; the forwarding header of
    // the cluster listener is not taken from a client.
    for e in [write_req, &all[at("request")], read_resp] {
        assert_eq!(e["request"]["remote_address"], "127.0.0.1", "{e}");
        assert!(e["request"]["remote_port"].as_u64().unwrap_or(0) > 0, "{e}");
    }
    let spoofed = s
        .api
        .client
        .get(format!("{}/v1/secret/app", s.api.addr))
        .header("X-Vault-Token", &s.root_token)
        .header("X-Lockbox-Forwarded-For", "10.9.8.7:6543")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 200);
    let last = entries(&log).pop().expect("the spoofed read's entry");
    assert_eq!(last["request"]["remote_address"], "127.0.0.1", "{last}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains("10.9.8.7"));
    let token_hash = s
        .root(
            "PUT",
            "sys/audit-hash/file",
            Some(json!({"input": s.root_token})),
        )
        .await
        .body["data"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(write_req["auth"]["client_token"], token_hash.as_str());

    // A refused request (a bad token) is recorded too, with its error.
    let r = s.call("GET", "secret/app", Some("not-a-token"), None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let refused = entries(&log)
        .into_iter()
        .find(|e| e["error"] == "permission denied" && e["request"]["path"] == "secret/app")
        .expect("the refused request is in the audit log");
    assert_eq!(refused["request"]["operation"], "read");
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("not-a-token")
    );

    // Disabled: nothing more is written.
    let r = s.root("DELETE", "sys/audit/file", None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let before = std::fs::read_to_string(&log).unwrap().len();
    s.root("GET", "secret/app", None).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_device_able_to_record_refuses_requests_and_changes_nothing() {
    let s = TestServer::dev().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    assert_eq!(
        enable(&s, "file", json!({"file_path": log.to_str().unwrap()}))
            .await
            .status,
        204
    );
    let w = s
        .root("PUT", "secret/app", Some(json!({"v": "before"})))
        .await;
    assert_eq!(w.status, 204, "{:?}", w.body);

    // The file becomes unwritable (what logrotate or a full disk can do):
    // the path now leads to /dev/full, and the device reopens it.
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
    s.core.reopen_audit();
    let w = s
        .root("PUT", "secret/app", Some(json!({"v": "after"})))
        .await;
    assert_eq!(w.status, 503, "{:?}", w.body);
    assert!(w.error_text().contains("audit"), "{:?}", w.body);
    let r = s.root("GET", "secret/app", None).await;
    assert_eq!(r.status, 503, "reads are refused too: {:?}", r.body);

    // Back to a real file: the value is the one from before.
    std::fs::remove_file(&log).unwrap();
    s.core.reopen_audit();
    let r = s.root("GET", "secret/app", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["v"], "before",
        "the refused write changed nothing"
    );

    // Two devices, one broken: requests go through and the good one records.
    let good = dir.path().join("good.log");
    assert_eq!(
        enable(&s, "good", json!({"file_path": good.to_str().unwrap()}))
            .await
            .status,
        204
    );
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
    s.core.reopen_audit();
    let w = s.root("PUT", "secret/app", Some(json!({"v": "two"}))).await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    assert!(
        entries(&good)
            .iter()
            .any(|e| e["request"]["path"] == "secret/app"),
        "the working device recorded the write"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_devices_are_refused_at_enable_and_formats_work() {
    let s = TestServer::dev().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, options, text) in [
        (
            "a",
            json!({"file_path": "/nonexistent-dir/x/audit.log"}),
            "cannot open audit file",
        ),
        ("b", json!({}), "missing options.file_path"),
        ("c", json!({"file_path": "relative.log"}), "absolute path"),
        (
            "d",
            json!({"file_path": "/tmp/x.log", "format": "xml"}),
            "options.format",
        ),
        (
            "e",
            json!({"file_path": "/tmp/x.log", "mode": "rwx"}),
            "octal",
        ),
        (
            "f",
            json!({"file_path": "/tmp/x.log", "bogus": "1"}),
            "unknown option",
        ),
    ] {
        let r = enable(&s, name, options.clone()).await;
        assert_eq!(r.status, 400, "{options}: {:?}", r.body);
        assert!(
            r.error_text().contains(text),
            "{options}: {}",
            r.error_text()
        );
    }
    let r = s
        .root(
            "PUT",
            "sys/audit/sock",
            Some(json!({"type": "socket", "options": {}})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("not supported"),
        "{}",
        r.error_text()
    );
    let list = s.root("GET", "sys/audit", None).await;
    assert_eq!(
        list.body["data"],
        json!({}),
        "nothing enabled: {:?}",
        list.body
    );

    // jsonx and log_raw.
    let x = dir.path().join("x.log");
    assert_eq!(
        enable(&s, "x", json!({"file_path": x.to_str().unwrap(), "format": "jsonx", "log_raw": true, "prefix": "AUDIT "})).await.status,
        204
    );
    s.root("PUT", "secret/raw", Some(json!({"k": "visible-raw"})))
        .await;
    let text = std::fs::read_to_string(&x).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("secret/raw"))
        .expect("an entry");
    assert!(line.starts_with("AUDIT <?xml"), "{line}");
    assert!(line.contains("visible-raw"), "log_raw keeps values: {line}");
}

/// `bao audit enable file file_path=...` and `bao audit list`.
#[test]
fn bao_audit_enable_and_list() {
    use crate::bao::Bao;
    use crate::walkthrough::start_dev;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_dev(
        &["-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:0"],
        dir.path(),
    );
    let bao = Bao::new(&server.addr);
    let log = dir.path().join("bao-audit.log");
    let r = bao.run_as(
        "root",
        &[
            "audit",
            "enable",
            "file",
            &format!("file_path={}", log.display()),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("Success! Enabled the file audit device at: file/"),
        "{}",
        r.all()
    );
    let r = bao.run_as("root", &["audit", "list", "-detailed"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("file/") && r.stdout.contains(log.to_str().unwrap()),
        "{}",
        r.all()
    );
    assert!(std::fs::read_to_string(&log).unwrap().contains("sys/audit"));
    let _ = server.child.kill();
    let _ = server.child.wait();
}
