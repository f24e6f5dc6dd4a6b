//! The mock engine: write, read, list and delete arbitrary JSON objects at
//! any path below the mount, with an existence check so create and update
//! are distinct for ACLs.
//!
//! Test hooks (read at startup): `MOCK_PLUGIN_VERSION` sets the version
//! `Info` reports (default `v0.1.0`); `MOCK_PLUGIN_MARKER`, when set, adds
//! `"served_by": <marker>` to every read, to tell processes apart after a
//! reload. `MOCK_PLUGIN_TEST_HOOKS=1` turns on two paths for crash tests:
//! reading `__crash` aborts the process mid-request, and reading
//! `__sleep/<ms>` answers after that many milliseconds.
//! `MOCK_PLUGIN_NO_CACHE=1` stops marking reads cacheable, so every read
//! reaches the process (tests and the benchmark's uncached row).

use lockbox_sdk::framework::{Path, PathBackend};
use lockbox_sdk::{Error, Kind, Response};
use serde_json::{Map, Value};

/// The version reported when `MOCK_PLUGIN_VERSION` is not set.
pub const DEFAULT_VERSION: &str = "v0.1.0";

/// The backend, configured from the process environment.
pub fn backend() -> PathBackend {
    let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    let hooks = env("MOCK_PLUGIN_TEST_HOOKS").is_some_and(|v| v == "1");
    let cacheable = env("MOCK_PLUGIN_NO_CACHE").is_none_or(|v| v != "1");
    backend_with_hooks(
        env("MOCK_PLUGIN_VERSION"),
        env("MOCK_PLUGIN_MARKER"),
        hooks,
        cacheable,
    )
}

/// The backend with an explicit version and marker.
#[cfg(test)]
pub fn backend_with(version: Option<String>, marker: Option<String>) -> PathBackend {
    backend_with_hooks(version, marker, false, true)
}

/// The backend with explicit settings, including the crash-test hooks.
pub fn backend_with_hooks(
    version: Option<String>,
    marker: Option<String>,
    hooks: bool,
    cacheable: bool,
) -> PathBackend {
    let version = version.unwrap_or_else(|| DEFAULT_VERSION.into());
    PathBackend::new(Kind::Secret, version)
        .help("The mock engine stores arbitrary JSON objects at any path.")
        .path(
            Path::new("{path*}")
                .help(
                    "Any key.",
                    "Write key=value pairs; read, list and delete them.",
                )
                .existence_check(|req, _, s| async move {
                    Ok(!req.path.is_empty() && s.get(&req.path).await?.is_some())
                })
                .read(move |req, _, s| {
                    let marker = marker.clone();
                    async move {
                        if hooks && req.path == "__crash" {
                            std::process::abort();
                        }
                        if let Some(ms) = req.path.strip_prefix("__sleep/").filter(|_| hooks) {
                            let ms: u64 = ms.parse().map_err(|_| Error::invalid("__sleep/<ms>"))?;
                            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                            return Ok(None);
                        }
                        if req.path.is_empty() || req.path.ends_with('/') {
                            return Ok(None);
                        }
                        let Some(mut data) = s.get_json::<Map<String, Value>>(&req.path).await?
                        else {
                            return Ok(None);
                        };
                        if let Some(m) = marker {
                            data.insert("served_by".into(), Value::String(m));
                        }
                        // A pure function of the stored value (the marker is
                        // fixed for the process's life): the host may cache it.
                        let resp = Response::data(data);
                        Ok(Some(if cacheable { resp.cacheable() } else { resp }))
                    }
                })
                .write(|req, _, s| async move {
                    if req.path.is_empty() || req.path.ends_with('/') {
                        return Err(Error::invalid(format!(
                            "invalid key {:?}: write to a key below the mount, e.g. {}test",
                            req.path, req.mount.path
                        )));
                    }
                    if req.data.is_empty() {
                        return Err(Error::invalid(
                            "missing data: give at least one key=value pair",
                        ));
                    }
                    s.put_json(&req.path, &req.data).await?;
                    Ok(None)
                })
                .delete(|req, _, s| async move {
                    s.delete(&req.path).await?;
                    Ok(None)
                })
                .list(|req, _, s| async move {
                    let mut prefix = req.path.clone();
                    if !prefix.is_empty() && !prefix.ends_with('/') {
                        prefix.push('/');
                    }
                    let keys = s.list(&prefix).await?;
                    Ok((!keys.is_empty()).then(|| Response::list(keys)))
                }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_sdk::Operation;
    use lockbox_sdk::harness::Harness;
    use serde_json::json;

    async fn harness(marker: Option<&str>) -> Harness {
        Harness::new(backend_with(None, marker.map(String::from)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn reads_are_cacheable_unless_turned_off() {
        let h = harness(None).await;
        h.write("k", json!({"v": 1})).await.unwrap();
        let r = h.read("k").await.unwrap().unwrap();
        assert!(
            r.cacheable,
            "a stored value's read is a pure function of storage"
        );
        let off = Harness::new(backend_with_hooks(None, None, false, false))
            .await
            .unwrap();
        off.write("k", json!({"v": 1})).await.unwrap();
        assert!(!off.read("k").await.unwrap().unwrap().cacheable);
        // Lists are not marked (only reads of a key).
        let list = h.request(Operation::List, "", json!({})).await.unwrap();
        assert!(!list.is_some_and(|r| r.cacheable));
    }

    #[tokio::test]
    async fn write_read_list_delete() {
        let h = harness(None).await;
        assert_eq!(h.info().await.unwrap().version, "v0.1.0");
        assert_eq!(h.info().await.unwrap().kind, Kind::Secret);

        assert_eq!(
            h.write_operation("test", &json!({})).await.unwrap(),
            Operation::Create
        );
        h.write("test", json!({"message": "Hello World"}))
            .await
            .unwrap();
        assert_eq!(
            h.write_operation("test", &json!({})).await.unwrap(),
            Operation::Update
        );
        let data = h.read_data("test").await.unwrap().unwrap();
        assert_eq!(Value::Object(data), json!({"message": "Hello World"}));

        h.write("a/b", json!({"x": 1, "n": {"deep": [1, 2]}}))
            .await
            .unwrap();
        assert_eq!(h.list("").await.unwrap(), vec!["a/", "test"]);
        assert_eq!(h.list("a").await.unwrap(), vec!["b"]);
        assert_eq!(h.list("a/").await.unwrap(), vec!["b"]);
        assert_eq!(
            h.read_data("a/b").await.unwrap().unwrap()["n"]["deep"][1],
            2
        );

        h.delete("test").await.unwrap();
        assert_eq!(h.read("test").await.unwrap(), None);
        assert_eq!(h.list("").await.unwrap(), vec!["a/"]);
        assert_eq!(h.list("nothing/").await.unwrap(), Vec::<String>::new());
        // Deleting again is fine.
        h.delete("test").await.unwrap();
    }

    #[tokio::test]
    async fn bad_writes_are_400s() {
        let h = harness(None).await;
        for (path, data) in [
            ("test", json!({})),
            ("", json!({"a": 1})),
            ("dir/", json!({"a": 1})),
        ] {
            let e = h.write(path, data).await.unwrap_err();
            assert!(matches!(e, Error::InvalidRequest(_)), "{path}: {e}");
        }
        let e = h.write("a/../b", json!({"a": 1})).await.unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
        assert_eq!(h.read("").await.unwrap(), None);
    }

    #[tokio::test]
    async fn version_and_marker_hooks() {
        let h = Harness::new(backend_with(Some("v2".into()), Some("proc-b".into())))
            .await
            .unwrap();
        assert_eq!(h.info().await.unwrap().version, "v2");
        h.write("k", json!({"message": "hi"})).await.unwrap();
        let data = h.read_data("k").await.unwrap().unwrap();
        assert_eq!(
            Value::Object(data),
            json!({"message": "hi", "served_by": "proc-b"})
        );
        // The marker is not stored.
        let stored: Value = h.storage().get_json("k").await.unwrap().unwrap();
        assert_eq!(stored, json!({"message": "hi"}));
    }
}
