use super::*;
use lockbox_storage::InMemory;

async fn broker() -> AuditBroker {
    let mem = Arc::new(InMemory::new());
    let init = Barrier::initialize(mem, 1, 1).await.unwrap();
    AuditBroker::open(Arc::new(init.barrier)).await.unwrap()
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
    assert!(b.record(|_| Value::Null).is_ok());
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
    let h = entry::hash_strings(&d, &v);
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
