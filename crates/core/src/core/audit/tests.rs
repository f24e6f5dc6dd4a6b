use super::*;
use lockbox_storage::InMemory;
use serde_json::Value;

async fn broker() -> AuditBroker {
    let mem = Arc::new(InMemory::new());
    let init = Barrier::initialize(mem, 1, 1).await.unwrap();
    AuditBroker::open(Arc::new(init.barrier)).await.unwrap()
}

/// A test line into the render buffer.
fn put(line: &mut Vec<u8>, text: &[u8]) -> Result<(), String> {
    line.extend_from_slice(text);
    Ok(())
}

/// The line an entry function renders.
fn rendered(render: impl FnOnce(&mut Vec<u8>) -> Result<(), String>) -> Vec<u8> {
    let mut line = Vec::new();
    render(&mut line).unwrap();
    line
}

fn file_device(path: &str, file: &std::path::Path) -> DeviceConfig {
    let mut options = BTreeMap::new();
    options.insert("file_path".into(), file.display().to_string());
    DeviceConfig {
        path: path.into(),
        kind: "file".into(),
        description: String::new(),
        options,
        local: false,
    }
}

#[tokio::test]
async fn no_device_records_nothing_and_refuses_nothing() {
    let b = broker().await;
    assert!(b.record(|_, l| put(l, b"x\n")).await.is_ok());
}

#[tokio::test]
async fn each_device_has_its_own_salt_and_the_table_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker().await;
    b.enable(file_device("one", &dir.path().join("1.log")))
        .await
        .unwrap();
    b.enable(file_device("two/", &dir.path().join("2.log")))
        .await
        .unwrap();
    let h1 = b.hash("one", "x").unwrap();
    let h2 = b.hash("two", "x").unwrap();
    assert_ne!(h1, h2, "salts differ per device");
    assert!(
        b.enable(file_device("one", &dir.path().join("3.log")))
            .await
            .is_err()
    );
    let again = AuditBroker::open(b.barrier.clone()).await.unwrap();
    assert_eq!(again.list(), b.list());
    assert_eq!(again.hash("one/", "x").unwrap(), h1, "the salt is stored");
    b.disable("one").await.unwrap();
    assert!(b.hash("one", "x").is_err());
    assert_eq!(b.list().len(), 1);
}

#[tokio::test]
async fn strings_are_hashed_numbers_and_booleans_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker().await;
    b.enable(file_device("f", &dir.path().join("f.log")))
        .await
        .unwrap();
    let d = b.snapshot()[0].clone();
    let v = serde_json::json!({"s": "secret", "n": 3, "b": true, "l": ["x"], "m": {"k": "v"}});
    let h = serde_json::to_value(entry::Hashed { d: &d, v: &v }).unwrap();
    assert_eq!(h["s"], d.hash("secret"));
    assert_eq!(h["n"], 3);
    assert_eq!(h["b"], true);
    assert_eq!(h["l"][0], d.hash("x"));
    assert_eq!(h["m"]["k"], d.hash("v"));
    assert!(d.hash("secret").starts_with("hmac-sha256:"));
}

#[test]
fn device_paths_are_canonical_or_refused() {
    assert_eq!(device_path("file").unwrap(), "file/");
    assert_eq!(device_path("/a/b/").unwrap(), "a/b/");
    for bad in ["", "/", "a//b", "../x", "a/./b"] {
        assert!(device_path(bad).is_err(), "{bad}");
    }
}

/// Many requests at once: every line is written whole, once, and each
/// request learns its own line was written (the group commit), whether the
/// writer yields for company (other requests in flight) or writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_each_write_one_whole_line() {
    /// Requests in flight elsewhere, as far as the writers can tell.
    struct Busy;
    impl Drop for Busy {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(2, Ordering::Relaxed);
        }
    }
    for busy in [false, true] {
        let _busy = busy.then(|| {
            IN_FLIGHT.fetch_add(2, Ordering::Relaxed);
            Busy
        });
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.log");
        let b = Arc::new(broker().await);
        b.enable(file_device("f", &file)).await.unwrap();
        let mut tasks = vec![];
        for i in 0..200 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                b.record(|_, l| put(l, format!("{{\"n\":{i}}}\n").as_bytes()))
                    .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut seen: Vec<i64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        seen.sort();
        assert_eq!(seen, (0..200).collect::<Vec<_>>(), "busy {busy}");
    }
}

/// A write that fails refuses every request whose line it carried, and the
/// next write (the file back) succeeds.
#[tokio::test]
async fn a_failed_write_refuses_its_requests_and_the_next_one_retries() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.log");
    let b = broker().await;
    b.enable(file_device("f", &file)).await.unwrap();
    b.record(|_, l| put(l, b"{}\n")).await.unwrap();
    // Rotated away and a directory in its place: the reopen fails (for
    // root too).
    std::fs::rename(&file, dir.path().join("old.log")).unwrap();
    std::fs::create_dir(&file).unwrap();
    b.reopen();
    let e = b
        .record(|_, l| put(l, b"{}\n"))
        .await
        .expect_err("no file, no request");
    assert!(e.to_string().contains("audit device f/"), "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    std::fs::remove_dir(&file).unwrap();
    b.record(|_, l| put(l, b"{\"back\":true}\n")).await.unwrap();
    assert!(std::fs::read_to_string(&file).unwrap().contains("back"));
}

/// Entries are Vault's shape, serialized without a JSON tree: the request
/// entry has no `response`, a failed request's entry a null one and the
/// error; strings hashed, numbers not.
#[tokio::test]
async fn entries_have_vaults_shape() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.log");
    let b = broker().await;
    b.enable(file_device("f", &file)).await.unwrap();
    let d = b.snapshot()[0].clone();
    let mut request = crate::logical::Request {
        id: "req-1".into(),
        operation: crate::logical::Operation::Update,
        path: "x".into(),
        data: Default::default(),
        mount_point: "secret/".into(),
        mount_type: "kv".into(),
        mount_accessor: "kv_1".into(),
        mount_default_ttl: 0,
        mount_max_ttl: 0,
        mount_force_no_cache: false,
        client_token_accessor: None,
        display_name: None,
        remote: None,
    };
    request
        .data
        .insert("password".into(), Value::from("hunter2"));
    request.data.insert("n".into(), Value::from(7));
    let record = Record::new(&request, "secret/x", None);
    let line = rendered(|l| record.request_entry(&d, l));
    let v: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["type"], "request");
    assert!(v.get("response").is_none());
    assert_eq!(v["request"]["id"], "req-1");
    assert_eq!(v["request"]["operation"], "update");
    assert_eq!(v["request"]["path"], "secret/x");
    assert_eq!(v["request"]["namespace"]["id"], "root");
    assert_eq!(v["request"]["data"]["password"], d.hash("hunter2"));
    assert_eq!(v["request"]["data"]["n"], 7);
    assert!(!String::from_utf8_lossy(&line).contains("hunter2"));
    assert!(line.ends_with(b"\n"));

    let failed = Err(RequestError::invalid("bad thing"));
    let v: Value =
        serde_json::from_slice(&rendered(|l| record.response_entry(&d, &failed, l))).unwrap();
    assert_eq!(v["type"], "response");
    assert!(v["response"].is_null());
    assert!(v["error"].as_str().unwrap().contains("bad thing"));

    let ok = Ok(crate::core::Reply::NoContent);
    let v: Value =
        serde_json::from_slice(&rendered(|l| record.response_entry(&d, &ok, l))).unwrap();
    assert_eq!(v["response"], serde_json::json!({}));
    assert!(v.get("error").is_none());
}

/// The caller's token and accessor are hashed once per request and device
/// and reused in both entries: each device still writes them under its own
/// salt, and `hmac_accessor=false` keeps the accessor as it is.
#[tokio::test]
async fn token_and_accessor_are_written_under_each_devices_own_salt() {
    use crate::core::tokens::{CreateParams, TokenStore};
    let dir = tempfile::tempdir().unwrap();
    let b = broker().await;
    b.enable(file_device("one", &dir.path().join("1.log")))
        .await
        .unwrap();
    let mut plain = file_device("two", &dir.path().join("2.log"));
    plain.options.insert("hmac_accessor".into(), "false".into());
    b.enable(plain).await.unwrap();
    let store = TokenStore::open(b.barrier.clone(), 3600, 7200)
        .await
        .unwrap();
    let params = CreateParams {
        policies: vec!["default".into()],
        orphan: true,
        path: "auth/token/create".into(),
        ..Default::default()
    };
    let (id, _) = store.create(None, params).await.unwrap();
    let token = store.lookup(&id).await.unwrap().unwrap();
    let accessor = token.entry.accessor.clone();
    let request = crate::logical::Request {
        id: "req-2".into(),
        operation: crate::logical::Operation::Read,
        path: "x".into(),
        data: Default::default(),
        mount_point: "secret/".into(),
        mount_type: "kv".into(),
        mount_accessor: "kv_1".into(),
        mount_default_ttl: 0,
        mount_max_ttl: 0,
        mount_force_no_cache: false,
        client_token_accessor: None,
        display_name: None,
        remote: None,
    };
    let record = Record::new(&request, "secret/x", Some(&token));
    let devices = b.snapshot();
    let ok = Ok(crate::core::Reply::NoContent);
    for d in devices.iter() {
        for line in [
            rendered(|l| record.request_entry(d, l)),
            rendered(|l| record.response_entry(d, &ok, l)),
        ] {
            let v: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(v["auth"]["client_token"], d.hash(&id));
            assert_eq!(v["request"]["client_token"], d.hash(&id));
            let want = if d.hmac_accessor {
                d.hash(&accessor)
            } else {
                accessor.clone()
            };
            assert_eq!(v["auth"]["accessor"], want.as_str());
            assert_eq!(v["request"]["client_token_accessor"], want.as_str());
            assert!(!String::from_utf8_lossy(&line).contains(id.as_str()));
        }
    }
    assert_ne!(devices[0].hash(&id), devices[1].hash(&id));
}
