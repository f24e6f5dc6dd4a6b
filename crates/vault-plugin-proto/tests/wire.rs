//! The wire contract, checked from the outside: every call's HTTP/2 path is
//! the wire's name, key messages encode to the exact bytes the wire expects
//! (field numbers and types written out by hand), and the main messages
//! survive an encode/decode round trip.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake};

use lockbox_vault_plugin_proto::{logical, pb, plugin, pluginutil::multiplexing, services};
use prost::Message;
use tonic::codegen::{Service, StdError, http, tokio_stream};

// ---- service paths ----------------------------------------------------

/// A channel that records the path of every call and fails it.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Service<http::Request<tonic::body::Body>> for Recorder {
    type Response = http::Response<tonic::body::Body>;
    type Error = StdError;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.lock().unwrap().push(req.uri().path().to_string());
        std::future::ready(Err("recorded".into()))
    }
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Runs a future that never waits on I/O (the recorder answers at once).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn expect(service: &str, methods: &[&str]) -> Vec<String> {
    methods
        .iter()
        .map(|m| services::method_path(service, m))
        .collect()
}

#[test]
fn backend_paths_are_the_wire_names() {
    let rec = Recorder::default();
    let mut c = pb::backend_client::BackendClient::new(rec.clone());
    block_on(async {
        let _ = c.handle_request(pb::HandleRequestArgs::default()).await;
        let _ = c.special_paths(pb::Empty {}).await;
        let _ = c
            .handle_existence_check(pb::HandleExistenceCheckArgs::default())
            .await;
        let _ = c.cleanup(pb::Empty {}).await;
        let _ = c.invalidate_key(pb::InvalidateKeyArgs::default()).await;
        let _ = c.setup(pb::SetupArgs::default()).await;
        let _ = c.initialize(pb::InitializeArgs {}).await;
        let _ = c.r#type(pb::Empty {}).await;
    });
    assert_eq!(
        rec.take(),
        [
            "/pb.Backend/HandleRequest",
            "/pb.Backend/SpecialPaths",
            "/pb.Backend/HandleExistenceCheck",
            "/pb.Backend/Cleanup",
            "/pb.Backend/InvalidateKey",
            "/pb.Backend/Setup",
            "/pb.Backend/Initialize",
            "/pb.Backend/Type",
        ]
    );
}

#[test]
fn storage_paths_are_the_wire_names() {
    let rec = Recorder::default();
    let mut c = pb::storage_client::StorageClient::new(rec.clone());
    block_on(async {
        let _ = c.list(pb::StorageListArgs::default()).await;
        let _ = c.list_page(pb::StorageListPageArgs::default()).await;
        let _ = c.get(pb::StorageGetArgs::default()).await;
        let _ = c.put(pb::StoragePutArgs::default()).await;
        let _ = c.delete(pb::StorageDeleteArgs::default()).await;
        let _ = c.is_transactional(pb::Empty {}).await;
        let _ = c.begin_read_only_tx(pb::Empty {}).await;
        let _ = c.begin_tx(pb::Empty {}).await;
        let _ = c.commit(pb::StorageCommitTxArgs::default()).await;
        let _ = c.rollback(pb::StorageRollbackTxArgs::default()).await;
    });
    assert_eq!(
        rec.take(),
        expect(
            "pb.Storage",
            &[
                "List",
                "ListPage",
                "Get",
                "Put",
                "Delete",
                "IsTransactional",
                "BeginReadOnlyTx",
                "BeginTx",
                "Commit",
                "Rollback",
            ]
        )
    );
}

#[test]
fn system_view_paths_are_the_wire_names() {
    let rec = Recorder::default();
    let mut c = pb::system_view_client::SystemViewClient::new(rec.clone());
    block_on(async {
        let _ = c.default_lease_ttl(pb::Empty {}).await;
        let _ = c.max_lease_ttl(pb::Empty {}).await;
        let _ = c.tainted(pb::Empty {}).await;
        let _ = c.caching_disabled(pb::Empty {}).await;
        let _ = c.replication_state(pb::Empty {}).await;
        let _ = c
            .response_wrap_data(pb::ResponseWrapDataArgs::default())
            .await;
        let _ = c.mlock_enabled(pb::Empty {}).await;
        let _ = c.local_mount(pb::Empty {}).await;
        let _ = c.entity_info(pb::EntityInfoArgs::default()).await;
        let _ = c.plugin_env(pb::Empty {}).await;
        let _ = c.groups_for_entity(pb::EntityInfoArgs::default()).await;
        let _ = c
            .generate_password_from_policy(pb::GeneratePasswordFromPolicyRequest::default())
            .await;
        let _ = c.cluster_info(pb::Empty {}).await;
        let _ = c
            .generate_identity_token(pb::GenerateIdentityTokenRequest::default())
            .await;
        let _ = c
            .get_rotation_information(pb::RotationInfoRequest::default())
            .await;
        let _ = c
            .register_rotation_job(pb::RegisterRotationJobRequest::default())
            .await;
        let _ = c
            .register_rotation_job_with_response(pb::RegisterRotationJobRequest::default())
            .await;
        let _ = c
            .deregister_rotation_job(pb::DeregisterRotationJobRequest::default())
            .await;
    });
    assert_eq!(
        rec.take(),
        expect(
            "pb.SystemView",
            &[
                "DefaultLeaseTTL",
                "MaxLeaseTTL",
                "Tainted",
                "CachingDisabled",
                "ReplicationState",
                "ResponseWrapData",
                "MlockEnabled",
                "LocalMount",
                "EntityInfo",
                "PluginEnv",
                "GroupsForEntity",
                "GeneratePasswordFromPolicy",
                "ClusterInfo",
                "GenerateIdentityToken",
                "GetRotationInformation",
                "RegisterRotationJob",
                "RegisterRotationJobWithResponse",
                "DeregisterRotationJob",
            ]
        )
    );
}

#[test]
fn the_other_paths_are_the_wire_names() {
    let rec = Recorder::default();
    block_on(async {
        let _ = pb::events_client::EventsClient::new(rec.clone())
            .send_event(pb::SendEventRequest::default())
            .await;
        let _ = pb::observations_client::ObservationsClient::new(rec.clone())
            .record_observation(pb::RecordObservationRequest::default())
            .await;
        let _ = logical::plugin_version_client::PluginVersionClient::new(rec.clone())
            .version(logical::Empty {})
            .await;
        let _ =
            multiplexing::plugin_multiplexing_client::PluginMultiplexingClient::new(rec.clone())
                .multiplexing_support(multiplexing::MultiplexingSupportRequest {})
                .await;
        let _ = plugin::grpc_broker_client::GrpcBrokerClient::new(rec.clone())
            .start_stream(tokio_stream::iter(Vec::<plugin::ConnInfo>::new()))
            .await;
        let _ = plugin::grpc_controller_client::GrpcControllerClient::new(rec.clone())
            .shutdown(plugin::Empty {})
            .await;
        let _ = plugin::grpc_stdio_client::GrpcStdioClient::new(rec.clone())
            .stream_stdio(())
            .await;
    });
    assert_eq!(
        rec.take(),
        [
            "/pb.Events/SendEvent",
            "/pb.Observations/RecordObservation",
            "/logical.PluginVersion/Version",
            "/pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport",
            "/plugin.GRPCBroker/StartStream",
            "/plugin.GRPCController/Shutdown",
            "/plugin.GRPCStdio/StreamStdio",
        ]
    );
}

// ---- exact bytes ------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes `msg`, compares with `want` (hex, spaces ignored), and decodes
/// the expected bytes back into `msg`.
fn bytes_are<M: Message + Default + PartialEq + Debug>(msg: M, want: &str) {
    let want = want.replace(' ', "");
    assert_eq!(hex(&msg.encode_to_vec()), want, "{msg:?}");
    let raw: Vec<u8> = (0..want.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&want[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(M::decode(raw.as_slice()).unwrap(), msg);
}

#[test]
fn field_numbers_and_types_are_the_wires() {
    // pb.Request: path = 4 (string), connection = 20 (message).
    bytes_are(
        pb::Request {
            path: "p".into(),
            connection: Some(pb::Connection::default()),
            ..Default::default()
        },
        "22 01 70  a2 01 00",
    );
    // pb.Connection: remote_addr = 1, connection_state = 2, remote_port = 3.
    bytes_are(
        pb::Connection {
            remote_addr: "a".into(),
            connection_state: Some(pb::ConnectionState::default()),
            remote_port: 7,
        },
        "0a 01 61  12 00  18 07",
    );
    // pb.Auth: policies = 4, period = 8, num_uses = 9, token_type = 17.
    bytes_are(
        pb::Auth {
            policies: vec!["a".into()],
            period: 5,
            num_uses: 3,
            token_type: 1,
            ..Default::default()
        },
        "22 01 61  40 05  48 03  88 01 01",
    );
    // pb.LeaseOptions: ttl = 1 (int64 nanoseconds), renewable = 2,
    // max_ttl = 5.
    bytes_are(
        pb::LeaseOptions {
            ttl: 1_000_000_000,
            renewable: true,
            max_ttl: 2,
            ..Default::default()
        },
        "08 80 94 eb dc 03  10 01  28 02",
    );
    // pb.SetupArgs: broker_id = 1, config = 2 (map), backend_uuid = 3.
    bytes_are(
        pb::SetupArgs {
            broker_id: 3,
            config: HashMap::from([("k".into(), "v".into())]),
            backend_uuid: "u".into(),
        },
        "08 03  12 06 0a 01 6b 12 01 76  1a 01 75",
    );
    // pb.HandleRequestReply: response = 1, err = 2, wal_index = 3; ProtoError
    // err_type = 1, err_msg = 2, err_code = 3; Response data = 3.
    bytes_are(
        pb::HandleRequestReply {
            response: Some(pb::Response {
                data: "{}".into(),
                ..Default::default()
            }),
            err: Some(pb::ProtoError {
                err_type: 1,
                err_msg: "m".into(),
                err_code: 400,
            }),
            wal_index: Some(pb::WalIndex {
                local_index: 1,
                replicated_index: 2,
            }),
        },
        "0a 04 1a 02 7b 7d  12 08 08 01 12 01 6d 18 90 03  1a 04 08 01 10 02",
    );
    // pb.Paths: unauthenticated = 2.
    bytes_are(
        pb::Paths {
            unauthenticated: vec!["login".into()],
            ..Default::default()
        },
        "12 05 6c 6f 67 69 6e",
    );
    // pb.StorageListPageArgs: prefix = 1, after = 2, limit = 3 (int32),
    // txn = 4.
    bytes_are(
        pb::StorageListPageArgs {
            prefix: "p".into(),
            after: "a".into(),
            limit: 10,
            txn: "t".into(),
        },
        "0a 01 70  12 01 61  18 0a  22 01 74",
    );
    // pb.StorageGetReply: entry = 1 { key = 1, value = 2 (bytes) }.
    bytes_are(
        pb::StorageGetReply {
            entry: Some(pb::StorageEntry {
                key: "k".into(),
                value: vec![0xff],
                seal_wrap: false,
            }),
            err: String::new(),
        },
        "0a 06 0a 01 6b 12 01 ff",
    );
    // plugin.ConnInfo: service_id = 1, network = 2, address = 3, knock = 4.
    bytes_are(
        plugin::ConnInfo {
            service_id: 2,
            network: "unix".into(),
            address: "/s".into(),
            knock: Some(plugin::conn_info::Knock {
                knock: true,
                ack: false,
                error: String::new(),
            }),
        },
        "08 02  12 04 75 6e 69 78  1a 02 2f 73  22 02 08 01",
    );
    // plugin.StdioData: channel = 1 (STDERR = 2), data = 2.
    bytes_are(
        plugin::StdioData {
            channel: plugin::stdio_data::Channel::Stderr as i32,
            data: b"x".to_vec(),
        },
        "08 02  12 01 78",
    );
    // pluginutil.multiplexing.MultiplexingSupportResponse: supported = 1.
    bytes_are(
        multiplexing::MultiplexingSupportResponse { supported: true },
        "08 01",
    );
    // logical.Alias: name = 3, id = 5.
    bytes_are(
        logical::Alias {
            name: "n".into(),
            id: "i".into(),
            ..Default::default()
        },
        "1a 01 6e  2a 01 69",
    );
}

// ---- round trips ------------------------------------------------------

fn round_trip<M: Message + Default + PartialEq + Debug>(msg: M) {
    let bytes = msg.encode_to_vec();
    assert!(!bytes.is_empty(), "{msg:?} encodes to nothing");
    assert_eq!(M::decode(bytes.as_slice()).unwrap(), msg);
}

fn time(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 5 })
}

fn lease() -> pb::LeaseOptions {
    pb::LeaseOptions {
        ttl: 3_600_000_000_000,
        renewable: true,
        increment: 60_000_000_000,
        issue_time: time(1_700_000_000),
        max_ttl: 86_400_000_000_000,
    }
}

fn alias(name: &str) -> logical::Alias {
    logical::Alias {
        mount_type: "kubernetes".into(),
        mount_accessor: "auth_kubernetes_1".into(),
        name: name.into(),
        metadata: HashMap::from([("service_account_name".into(), "app".into())]),
        id: "alias-id".into(),
        namespace_id: "root".into(),
        custom_metadata: HashMap::from([("team".into(), "a".into())]),
        local: true,
        external_id: "ext".into(),
        issuer: "iss".into(),
    }
}

fn auth() -> pb::Auth {
    pb::Auth {
        lease_options: Some(lease()),
        internal_data: r#"{"role":"app"}"#.into(),
        display_name: "kubernetes-app".into(),
        policies: vec!["default".into(), "app".into()],
        metadata: HashMap::from([("role".into(), "app".into())]),
        client_token: "hvs.x".into(),
        accessor: "acc".into(),
        period: 0,
        num_uses: 4,
        entity_id: "ent".into(),
        alias: Some(alias("app-uid")),
        group_aliases: vec![alias("g1"), alias("g2")],
        bound_cidrs: vec!["10.0.0.0/8".into()],
        token_policies: vec!["app".into()],
        identity_policies: vec!["id".into()],
        explicit_max_ttl: 7,
        token_type: 1,
        no_default_policy: true,
    }
}

fn secret() -> pb::Secret {
    pb::Secret {
        lease_options: Some(lease()),
        internal_data: r#"{"user":"u"}"#.into(),
        lease_id: "db/creds/r/abc".into(),
    }
}

fn headers() -> HashMap<String, pb::Header> {
    HashMap::from([(
        "X-Forwarded-For".into(),
        pb::Header {
            header: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        },
    )])
}

fn request() -> pb::Request {
    pb::Request {
        id: "req-1".into(),
        replication_cluster: "c".into(),
        operation: "update".into(),
        path: "data/app".into(),
        data: r#"{"data":{"k":"v"}}"#.into(),
        secret: Some(secret()),
        auth: Some(auth()),
        headers: headers(),
        client_token: "hvs.token".into(),
        client_token_accessor: "acc".into(),
        display_name: "root".into(),
        mount_point: "secret/".into(),
        mount_type: "kv".into(),
        mount_accessor: "kv_1234".into(),
        wrap_info: Some(pb::RequestWrapInfo {
            ttl: 300_000_000_000,
            format: "jwt".into(),
            seal_wrap: true,
        }),
        client_token_remaining_uses: 2,
        entity_id: "ent".into(),
        policy_override: true,
        unauthenticated: true,
        connection: Some(pb::Connection {
            remote_addr: "127.0.0.1".into(),
            remote_port: 50_000,
            connection_state: Some(pb::ConnectionState {
                version: 0x0304,
                handshake_complete: true,
                did_resume: false,
                cipher_suite: 0x1301,
                negotiated_protocol: "h2".into(),
                negotiated_protocol_is_mutual: true,
                server_name: "vault.example".into(),
                peer_certificates: Some(pb::CertificateChain {
                    certificates: vec![pb::Certificate {
                        asn1_data: vec![0x30, 0x03, 1, 2, 3],
                    }],
                }),
                verified_chains: vec![pb::CertificateChain::default()],
                signed_certificate_timestamps: vec![vec![9]],
                ocsp_response: vec![8],
                tls_unique: vec![7],
            }),
        }),
        requires_snapshot_id: "snap".into(),
        recover_source_path: "old".into(),
        rotation_info: Some(pb::RotationInfo {
            rotation_id: "rot".into(),
            next_vault_rotation: 2,
            last_vault_rotation: 1,
        }),
    }
}

fn response() -> pb::Response {
    pb::Response {
        secret: Some(secret()),
        auth: Some(auth()),
        data: r#"{"password":"x"}"#.into(),
        redirect: "https://idp.example/".into(),
        warnings: vec!["w".into()],
        wrap_info: Some(pb::ResponseWrapInfo {
            ttl: 1,
            token: "t".into(),
            accessor: "a".into(),
            creation_time: time(1_700_000_001),
            wrapped_accessor: "wa".into(),
            wrapped_entity_id: "we".into(),
            format: "token".into(),
            creation_path: "secret/data/app".into(),
            seal_wrap: true,
        }),
        headers: headers(),
        mount_type: "kv".into(),
    }
}

#[test]
fn backend_messages_round_trip() {
    round_trip(request());
    round_trip(response());
    round_trip(auth());
    round_trip(secret());
    round_trip(lease());
    round_trip(pb::HandleRequestArgs {
        storage_id: 1,
        request: Some(request()),
    });
    round_trip(pb::HandleRequestReply {
        response: Some(response()),
        err: Some(pb::ProtoError {
            err_type: 3,
            err_msg: "no".into(),
            err_code: 403,
        }),
        wal_index: Some(pb::WalIndex {
            local_index: 5,
            replicated_index: 6,
        }),
    });
    round_trip(pb::HandleExistenceCheckArgs {
        storage_id: 0,
        request: Some(request()),
    });
    round_trip(pb::HandleExistenceCheckReply {
        check_found: true,
        exists: true,
        err: None,
    });
    round_trip(pb::SpecialPathsReply {
        paths: Some(pb::Paths {
            root: vec!["config/*".into()],
            unauthenticated: vec!["login".into()],
            local_storage: vec!["local/".into()],
            seal_wrap_storage: vec!["keys/".into()],
            write_forwarded_storage: vec!["wf/".into()],
            binary: vec!["bin".into()],
            limited: vec!["lim".into()],
            allow_snapshot_read: vec!["snap".into()],
        }),
    });
    round_trip(pb::SetupArgs {
        broker_id: 7,
        config: HashMap::from([
            ("plugin_name".into(), "kv".into()),
            ("plugin_version".into(), "v0.20.0".into()),
        ]),
        backend_uuid: "0b7a0c6e-2f1d-4c4e-9d61-5a0e6f1d2c3b".into(),
    });
    round_trip(pb::SetupReply { err: "bad".into() });
    round_trip(pb::TypeReply { r#type: 2 });
    round_trip(pb::InitializeReply {
        err: Some(pb::ProtoError::default()),
    });
    round_trip(pb::InvalidateKeyArgs { key: "k".into() });
    round_trip(pb::TokenEntry {
        id: "t".into(),
        accessor: "a".into(),
        parent: "p".into(),
        policies: vec!["default".into()],
        path: "auth/token/create".into(),
        meta: HashMap::from([("m".into(), "v".into())]),
        display_name: "token".into(),
        num_uses: 1,
        creation_time: 1_700_000_000,
        ttl: 2,
        explicit_max_ttl: 3,
        role: "r".into(),
        period: 4,
        entity_id: "e".into(),
        bound_cidrs: vec!["127.0.0.1/32".into()],
        namespace_id: "root".into(),
        cubbyhole_id: "c".into(),
        r#type: 1,
        internal_meta: HashMap::from([("i".into(), "v".into())]),
        inline_policy: "path \"*\" {}".into(),
        no_identity_policies: true,
        external_id: "x".into(),
    });
}

#[test]
fn storage_and_system_view_messages_round_trip() {
    let entry = pb::StorageEntry {
        key: "data/app".into(),
        value: vec![0, 1, 2, 255],
        seal_wrap: true,
    };
    round_trip(pb::StoragePutArgs {
        entry: Some(entry.clone()),
        txn: "tx".into(),
    });
    round_trip(pb::StorageGetReply {
        entry: Some(entry),
        err: String::new(),
    });
    round_trip(pb::StorageListReply {
        keys: vec!["a".into(), "b/".into()],
        err: "e".into(),
    });
    round_trip(pb::StorageListPageArgs {
        prefix: "p/".into(),
        after: "a".into(),
        limit: -1,
        txn: "tx".into(),
    });
    round_trip(pb::StorageBeginTxReply {
        txn: "tx".into(),
        err: "e".into(),
    });
    round_trip(pb::StorageDeleteReply {
        err: "e".into(),
        wal_index: Some(pb::WalIndex {
            local_index: 1,
            replicated_index: 1,
        }),
    });
    round_trip(pb::TtlReply { ttl: -1 });
    round_trip(pb::ResponseWrapDataArgs {
        data: "{}".into(),
        ttl: 5,
        jwt: true,
    });
    round_trip(pb::EntityInfoReply {
        entity: Some(logical::Entity {
            id: "e".into(),
            name: "n".into(),
            aliases: vec![alias("a")],
            metadata: HashMap::from([("k".into(), "v".into())]),
            disabled: true,
            namespace_id: "root".into(),
        }),
        err: String::new(),
    });
    round_trip(pb::GroupsForEntityReply {
        groups: vec![logical::Group {
            id: "g".into(),
            name: "n".into(),
            metadata: HashMap::new(),
            namespace_id: "root".into(),
        }],
        err: "e".into(),
    });
    round_trip(pb::PluginEnvReply {
        plugin_environment: Some(logical::PluginEnvironment {
            vault_version: "1.19.0".into(),
            vault_version_prerelease: "beta1".into(),
            vault_version_metadata: "lockbox".into(),
            vault_build_date: time(1_700_000_000),
        }),
        err: String::new(),
    });
    round_trip(pb::GeneratePasswordFromPolicyReply {
        password: "p".into(),
    });
    round_trip(pb::RegisterRotationJobRequest {
        job: Some(pb::RotationJobInput {
            name: "n".into(),
            mount_point: "m".into(),
            path: "p".into(),
            rotation_schedule: "0 * * * *".into(),
            rotation_window: 1,
            rotation_period: 2,
            rotation_policy: "r".into(),
            migrated_legacy_next_rotation_time: 3,
        }),
    });
    round_trip(pb::SendEventRequest {
        event_type: "kv-v2/data-write".into(),
        event: Some(logical::EventData {
            id: "ev".into(),
            metadata: Some(prost_types::Struct {
                fields: std::collections::BTreeMap::from([(
                    "path".into(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue("data/app".into())),
                    },
                )]),
            }),
            entity_ids: vec!["data/app".into()],
            note: "n".into(),
        }),
    });
}

#[test]
fn go_plugin_messages_round_trip() {
    round_trip(plugin::ConnInfo {
        service_id: u32::MAX,
        network: "unix".into(),
        address: "/run/lockbox/plugins/x/plugin123".into(),
        knock: Some(plugin::conn_info::Knock {
            knock: true,
            ack: true,
            error: "e".into(),
        }),
    });
    round_trip(plugin::StdioData {
        channel: plugin::stdio_data::Channel::Stdout as i32,
        data: b"hello\n".to_vec(),
    });
    round_trip(multiplexing::MultiplexingSupportResponse { supported: true });
    round_trip(logical::VersionReply {
        plugin_version: "v0.20.0".into(),
    });
}
