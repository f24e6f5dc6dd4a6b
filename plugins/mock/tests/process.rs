//! The real binary, launched the way the host launches it: environment,
//! handshake line on stdout, gRPC over Unix sockets, SIGTERM.

use lockbox_plugin_proto::v1 as pb;
use lockbox_plugin_proto::{
    HOST_SOCKET_KEY, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, PROTOCOL_VERSIONS_KEY, SOCKET_DIR_KEY,
};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixListener;
use tokio::process::Command;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Endpoint, Server};

const BIN: &str = env!("CARGO_BIN_EXE_lockbox-plugin-mock");

/// (mount_id, key) → value.
type Entries = Mutex<BTreeMap<(String, String), Vec<u8>>>;

/// The host's storage service, in memory.
#[derive(Default, Clone)]
struct HostStorage(Arc<Entries>);

#[tonic::async_trait]
impl pb::storage_server::Storage for HostStorage {
    async fn get(
        &self,
        r: tonic::Request<pb::StorageGetArgs>,
    ) -> Result<tonic::Response<pb::StorageGetReply>, tonic::Status> {
        let r = r.into_inner();
        let v = self.0.lock().unwrap().get(&(r.mount_id, r.key)).cloned();
        Ok(tonic::Response::new(pb::StorageGetReply {
            found: v.is_some(),
            value: v.unwrap_or_default(),
        }))
    }
    async fn put(
        &self,
        r: tonic::Request<pb::StoragePutArgs>,
    ) -> Result<tonic::Response<pb::Empty>, tonic::Status> {
        let r = r.into_inner();
        self.0.lock().unwrap().insert((r.mount_id, r.key), r.value);
        Ok(tonic::Response::new(pb::Empty {}))
    }
    async fn delete(
        &self,
        r: tonic::Request<pb::StorageDeleteArgs>,
    ) -> Result<tonic::Response<pb::Empty>, tonic::Status> {
        let r = r.into_inner();
        self.0.lock().unwrap().remove(&(r.mount_id, r.key));
        Ok(tonic::Response::new(pb::Empty {}))
    }
    async fn list(
        &self,
        _r: tonic::Request<pb::StorageListArgs>,
    ) -> Result<tonic::Response<pb::StorageListReply>, tonic::Status> {
        Ok(tonic::Response::new(pb::StorageListReply::default()))
    }
}

#[tokio::test]
async fn run_by_hand_explains_and_exits_1() {
    let out = Command::new(BIN)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("this is a lockbox plugin"), "{err}");
    assert!(err.contains("lockbox plugin register"), "{err}");
}

#[tokio::test]
async fn unsupported_protocol_exits_1() {
    let out = Command::new(BIN)
        .env_clear()
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env(PROTOCOL_VERSIONS_KEY, "2,3")
        .env(SOCKET_DIR_KEY, "/tmp")
        .env(HOST_SOCKET_KEY, "/tmp/none.sock")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("speaks only version 1"), "{err}");
}

#[tokio::test]
async fn handshake_serve_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket_dir = dir.path().join("p");
    std::fs::create_dir(&socket_dir).unwrap();
    std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let host_socket = dir.path().join("host.sock");
    let host = HostStorage::default();
    let listener = UnixListener::bind(&host_socket).unwrap();
    tokio::spawn(Server::builder().serve_with_incoming(
        pb::storage_server::StorageServer::new(host.clone()),
        UnixListenerStream::new(listener),
    ));

    let mut child = Command::new(BIN)
        .env_clear()
        .env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env(PROTOCOL_VERSIONS_KEY, "1")
        .env(SOCKET_DIR_KEY, &socket_dir)
        .env(HOST_SOCKET_KEY, &host_socket)
        .env("MOCK_PLUGIN_VERSION", "v2")
        .env("MOCK_PLUGIN_MARKER", "proc-1")
        .current_dir(&socket_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("handshake within 10s")
        .unwrap()
        .expect("a handshake line");
    let socket = socket_dir.join("plugin.sock");
    assert_eq!(line, format!("1|1|unix|{}|grpc|", socket.display()));

    let channel = Endpoint::from_shared(format!("unix://{}", socket.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::backend_client::BackendClient::new(channel);
    let info = client.info(pb::InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.version, "v2");
    let setup = client
        .setup(pb::SetupRequest {
            mount_id: "m".into(),
            mount_path: "mock/".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(setup.error, "");
    let req = |op: pb::Operation, body: &str| pb::HandleRequestArgs {
        mount_id: "m".into(),
        request: Some(pb::Request {
            operation: op as i32,
            path: "test".into(),
            data_json: body.as_bytes().to_vec(),
            ..Default::default()
        }),
    };
    let exists = client
        .existence_check(req(pb::Operation::Update, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(exists.check_found && !exists.exists);
    let reply = client
        .handle_request(req(pb::Operation::Create, r#"{"message":"Hello World"}"#))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.error, None);
    let reply = client
        .handle_request(req(pb::Operation::Read, ""))
        .await
        .unwrap()
        .into_inner();
    let data: serde_json::Value =
        serde_json::from_slice(&reply.response.unwrap().data_json).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"message": "Hello World", "served_by": "proc-1"})
    );

    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
}
