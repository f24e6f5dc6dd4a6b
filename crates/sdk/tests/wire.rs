//! The real wire path: `lockbox_sdk::run` serving over a Unix socket in a
//! temporary directory, a fake host `Storage` server on a second socket,
//! and a gRPC client playing the host.

use lockbox_plugin_proto::v1 as pb;
use lockbox_sdk::framework::{Path, PathBackend};
use lockbox_sdk::{Kind, PluginEnv, Response};
use pb::backend_client::BackendClient;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// (mount_id, key) → value.
type Entries = Mutex<BTreeMap<(String, String), Vec<u8>>>;

/// The host's storage, in memory; refuses writes outside mount `m-1`.
#[derive(Default, Clone)]
struct FakeHostStorage {
    data: Arc<Entries>,
}

#[tonic::async_trait]
impl pb::storage_server::Storage for FakeHostStorage {
    async fn get(
        &self,
        r: tonic::Request<pb::StorageGetArgs>,
    ) -> Result<tonic::Response<pb::StorageGetReply>, tonic::Status> {
        let r = r.into_inner();
        let value = self.data.lock().unwrap().get(&(r.mount_id, r.key)).cloned();
        Ok(tonic::Response::new(pb::StorageGetReply {
            found: value.is_some(),
            value: value.unwrap_or_default(),
        }))
    }

    async fn put(
        &self,
        r: tonic::Request<pb::StoragePutArgs>,
    ) -> Result<tonic::Response<pb::Empty>, tonic::Status> {
        // The SDK presents the host token on every storage call.
        let token = r
            .metadata()
            .get(lockbox_plugin_proto::HOST_TOKEN_METADATA)
            .and_then(|v| v.to_str().ok());
        if token != Some("wire-token") {
            return Err(tonic::Status::permission_denied(format!(
                "host token {token:?}"
            )));
        }
        let r = r.into_inner();
        if r.mount_id != "m-1" {
            return Err(tonic::Status::permission_denied("not your mount"));
        }
        self.data
            .lock()
            .unwrap()
            .insert((r.mount_id, r.key), r.value);
        Ok(tonic::Response::new(pb::Empty {}))
    }

    async fn delete(
        &self,
        r: tonic::Request<pb::StorageDeleteArgs>,
    ) -> Result<tonic::Response<pb::Empty>, tonic::Status> {
        let r = r.into_inner();
        self.data.lock().unwrap().remove(&(r.mount_id, r.key));
        Ok(tonic::Response::new(pb::Empty {}))
    }

    async fn list(
        &self,
        r: tonic::Request<pb::StorageListArgs>,
    ) -> Result<tonic::Response<pb::StorageListReply>, tonic::Status> {
        let r = r.into_inner();
        let keys = self
            .data
            .lock()
            .unwrap()
            .keys()
            .filter(|(m, k)| *m == r.mount_id && k.starts_with(&r.prefix))
            .map(|(_, k)| k[r.prefix.len()..].to_string())
            .collect();
        Ok(tonic::Response::new(pb::StorageListReply { keys }))
    }
}

/// Sends each handshake line to the test.
struct LineWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        let _ = self.tx.send(line);
        Ok(())
    }
}

fn backend() -> PathBackend {
    PathBackend::new(Kind::Secret, "v-wire")
        .path(
            Path::new("kv/{key}")
                .write(|req, _, s| async move {
                    s.put_json(&req.path, &req.data).await?;
                    Ok(None)
                })
                .read(
                    |req, _, s| async move { Ok(s.get_json(&req.path).await?.map(Response::data)) },
                ),
        )
        .path(Path::new("slow").read(|_, _, _| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(Some(Response::json(serde_json::json!({"done": true}))))
        }))
}

fn call(mount: &str, op: pb::Operation, path: &str, body: &str) -> pb::HandleRequestArgs {
    pb::HandleRequestArgs {
        mount_id: mount.into(),
        request: Some(pb::Request {
            operation: op as i32,
            path: path.into(),
            data_json: body.as_bytes().to_vec(),
            ..Default::default()
        }),
    }
}

async fn connect(path: &std::path::Path) -> Channel {
    Endpoint::from_shared(format!("unix://{}", path.display()))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn serves_backend_and_health_over_unix_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let socket_dir = dir.path().join("plugin");
    std::fs::create_dir(&socket_dir).unwrap();
    std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    // The host's storage service.
    let host_socket = dir.path().join("host.sock");
    let host = FakeHostStorage::default();
    let host_listener = UnixListener::bind(&host_socket).unwrap();
    tokio::spawn(
        Server::builder().serve_with_incoming(
            pb::storage_server::StorageServer::new(host.clone())
                .max_decoding_message_size(lockbox_sdk::serve::MAX_MESSAGE_SIZE),
            UnixListenerStream::new(host_listener),
        ),
    );

    // The plugin.
    let env = PluginEnv {
        app_protocol: 1,
        socket_dir: socket_dir.clone(),
        host_socket: host_socket.clone(),
        host_token: Some("wire-token".into()),
        name: Some("wire".into()),
        version: Some("v-wire".into()),
    };
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let plugin = tokio::spawn(async move {
        let mut out = LineWriter {
            buf: Vec::new(),
            tx: line_tx,
        };
        lockbox_sdk::run(
            lockbox_sdk::Shared::new(backend()),
            env,
            &mut out,
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
    });

    let line = tokio::time::timeout(Duration::from_secs(10), line_rx.recv())
        .await
        .expect("handshake in time")
        .expect("a handshake line");
    let socket = socket_dir.join("plugin.sock");
    assert_eq!(line, format!("1|1|unix|{}|grpc|\n", socket.display()));

    let channel = connect(&socket).await;
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let mut client = BackendClient::new(channel);
    let info = client.info(pb::InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.version, "v-wire");
    assert_eq!(info.kind, pb::BackendKind::Secret as i32);

    let setup = client
        .setup(pb::SetupRequest {
            mount_id: "m-1".into(),
            mount_path: "wire/".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(setup.error, "");
    client
        .initialize(pb::MountRef {
            mount_id: "m-1".into(),
        })
        .await
        .unwrap();

    // A write goes through the host's storage, scoped to the mount.
    let reply = client
        .handle_request(call(
            "m-1",
            pb::Operation::Update,
            "kv/a",
            r#"{"message":"Hello World"}"#,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.error, None);
    assert_eq!(reply.response, None);
    let stored = host
        .data
        .lock()
        .unwrap()
        .get(&("m-1".into(), "kv/a".into()))
        .cloned();
    assert_eq!(
        stored.as_deref(),
        Some(&br#"{"message":"Hello World"}"#[..])
    );

    let reply = client
        .handle_request(call("m-1", pb::Operation::Read, "kv/a", ""))
        .await
        .unwrap()
        .into_inner();
    let data: serde_json::Value =
        serde_json::from_slice(&reply.response.unwrap().data_json).unwrap();
    assert_eq!(data, serde_json::json!({"message": "Hello World"}));

    // Bodies above tonic's 4 MiB default get through (the host bounds them).
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(6 * 1024 * 1024));
    let reply = client
        .handle_request(call("m-1", pb::Operation::Update, "kv/big", &big))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.error, None);
    let stored = host
        .data
        .lock()
        .unwrap()
        .get(&("m-1".into(), "kv/big".into()))
        .map(Vec::len);
    assert_eq!(stored, Some(big.len()));

    // Unknown mount: an error reply, not a gRPC failure.
    let reply = client
        .handle_request(call("m-2", pb::Operation::Read, "kv/a", ""))
        .await
        .unwrap()
        .into_inner();
    let err = reply.error.unwrap();
    assert_eq!(err.kind, pb::ErrorKind::Internal as i32);
    assert!(
        err.message.starts_with("mount not set up"),
        "{}",
        err.message
    );

    // A storage failure on the host becomes a 500 reply.
    client
        .setup(pb::SetupRequest {
            mount_id: "m-3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let reply = client
        .handle_request(call("m-3", pb::Operation::Update, "kv/a", r#"{"x":1}"#))
        .await
        .unwrap()
        .into_inner();
    let err = reply.error.unwrap();
    assert_eq!(err.kind, pb::ErrorKind::Internal as i32);
    assert!(err.message.contains("not your mount"), "{}", err.message);

    // Shutdown while a request is in flight: it finishes, then run returns.
    let mut slow_client = client.clone();
    let slow = tokio::spawn(async move {
        slow_client
            .handle_request(call("m-1", pb::Operation::Read, "slow", ""))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    let slow = slow.await.unwrap().unwrap().into_inner();
    assert!(slow.error.is_none(), "{:?}", slow.error);
    let result = tokio::time::timeout(Duration::from_secs(10), plugin)
        .await
        .expect("plugin stops after draining")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(!socket.exists(), "socket removed on exit");
}

#[tokio::test]
async fn bind_failure_is_reported() {
    let env = PluginEnv {
        app_protocol: 1,
        socket_dir: "/nonexistent/lockbox/plugin".into(),
        host_socket: "/nonexistent/host.sock".into(),
        host_token: None,
        name: None,
        version: None,
    };
    let mut out = Vec::new();
    let e = lockbox_sdk::run(
        lockbox_sdk::Shared::new(backend()),
        env,
        &mut out,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, lockbox_sdk::ServeError::Bind { .. }), "{e}");
    assert!(out.is_empty(), "no handshake line on failure");
}
