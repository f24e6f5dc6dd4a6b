//! What a plugin speaking Vault's protocol v5 sends the host, decoded and
//! handled as the host does: the go-plugin handshake line, its
//! `HandleRequest` and `HandleExistenceCheck` replies, its `SpecialPaths`,
//! and the calls it makes to the host's `Storage` and `SystemView` services
//! over a mount's broker connection.
//!
//! Properties:
//! * an accepted handshake names a unix socket directly inside the
//!   plugin's own socket directory and carries a certificate;
//! * a reply carrying an error converts to an error, never to a success;
//!   a secrets engine's reply never carries login data; converted data is
//!   a JSON object that passes the shape check; a reply asking for
//!   response wrapping is refused;
//! * an existence reply with an error is an error, and without
//!   `check_found` means "no existence check";
//! * special paths: a pattern list never makes a path unauthenticated
//!   unless a pattern matches it by the policy matching rules, and an empty
//!   list matches nothing;
//! * storage calls reach only the mount's own view: after any sequence of
//!   puts, deletes, gets and lists with plugin-chosen keys, every physical
//!   key written lies under the mount's prefix and another mount's value is
//!   untouched.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lockbox_core::barrier::{Barrier, View};
use lockbox_core::logical::{BackendKind, SpecialPaths};
use lockbox_plugin_host::cache::MountGeneration;
use lockbox_plugin_host::vault::convert;
use lockbox_plugin_host::vault::services::{MountServices, check_key};
use lockbox_storage::InMemory;
use lockbox_vault_plugin_proto::pb;
use lockbox_vault_plugin_proto::pb::storage_server::Storage as _;
use lockbox_vault_plugin_proto::pb::system_view_server::SystemView as _;
use prost::Message;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tonic::Request;

#[derive(Arbitrary, Debug)]
enum Call {
    Put { key: String, value: Vec<u8> },
    Get { key: String },
    Delete { key: String },
    List { prefix: String },
    Password { policy: String },
    PluginEnv,
    EntityInfo { entity: String },
}

#[derive(Arbitrary, Debug)]
struct Input {
    handshake: String,
    credential: bool,
    reply: Vec<u8>,
    existence: Vec<u8>,
    special: Vec<u8>,
    path: String,
    calls: Vec<Call>,
}

const MINE: &str = "logical/mine/";
const OTHER: &str = "logical/other/canary";

struct World {
    mem: Arc<InMemory>,
    barrier: Arc<Barrier>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        runtime().block_on(async {
            let mem = Arc::new(InMemory::new());
            let init = Barrier::initialize(mem.clone(), 1, 1).await.expect("init");
            let barrier = Arc::new(init.barrier);
            barrier.put(OTHER, b"canary").await.expect("canary");
            World { mem, barrier }
        })
    })
}

fn handshake(line: &str) {
    let dir = Path::new("/run/lockbox-plugins/abc");
    if let Ok((socket, cert)) = lockbox_plugin_host::process::parse_vault_handshake(line, dir) {
        assert_eq!(socket.parent(), Some(dir), "socket {socket:?} outside {dir:?}");
        assert!(!socket.components().any(|c| c.as_os_str() == ".."));
        assert!(!cert.is_empty(), "accepted a handshake without a certificate");
    }
}

fn reply(bytes: &[u8], kind: BackendKind) {
    let Ok(reply) = pb::HandleRequestReply::decode(bytes) else {
        return;
    };
    let has_error = reply
        .err
        .as_ref()
        .is_some_and(|e| e.err_type != 0 || !e.err_msg.is_empty());
    let wants_wrap = reply
        .response
        .as_ref()
        .and_then(|r| r.wrap_info.as_ref())
        .is_some_and(|w| w.ttl > 0);
    let had_auth = reply.response.as_ref().is_some_and(|r| r.auth.is_some());
    match convert::reply("fuzz", kind, reply, "mount/path") {
        Ok(out) => {
            assert!(!has_error, "an error reply converted to a success");
            assert!(!wants_wrap, "a wrapped response was served unwrapped");
            let Some(out) = out else { return };
            if kind == BackendKind::Secret {
                assert!(out.login.is_none(), "a secrets engine's answer minted a login");
            }
            assert_eq!(out.login.is_some(), had_auth);
            if let Some(data) = out.data {
                let bytes = serde_json::to_vec(&data).expect("data serializes");
                lockbox_core::json::check_shape(&bytes)
                    .expect("converted data passes the shape check");
            }
        }
        Err(e) => {
            let _ = e.to_string();
            let _ = e.status();
        }
    }
}

fn existence(bytes: &[u8]) {
    let Ok(reply) = pb::HandleExistenceCheckReply::decode(bytes) else {
        return;
    };
    let has_error = reply
        .err
        .as_ref()
        .is_some_and(|e| e.err_type != 0 || !e.err_msg.is_empty());
    match convert::existence("fuzz", &reply, "mount/path") {
        Ok(found) => {
            assert!(!has_error, "an error existence reply converted to a success");
            assert_eq!(found.is_some(), reply.check_found);
        }
        Err(_) => assert!(has_error),
    }
}

fn special(bytes: &[u8], path: &str) {
    let Ok(reply) = pb::SpecialPathsReply::decode(bytes) else {
        return;
    };
    let paths = reply.paths.unwrap_or_default();
    assert!(!SpecialPaths::matches(&[], path));
    if SpecialPaths::matches(&paths.unauthenticated, path) {
        assert!(
            paths
                .unauthenticated
                .iter()
                .any(|p| lockbox_core::policy::matches(p, path)),
            "{path:?} unauthenticated without a matching pattern"
        );
    }
}

async fn storage(w: &'static World, calls: Vec<Call>) {
    let services = MountServices {
        view: View::new(w.barrier.clone(), MINE),
        generation: MountGeneration::new(),
        default_ttl: 0,
        max_ttl: 0,
        server_version: "fuzz".into(),
    };
    for call in calls.into_iter().take(16) {
        match call {
            Call::Put { key, value } => {
                let accepted = check_key(&key).is_ok();
                let r = services
                    .put(Request::new(pb::StoragePutArgs {
                        entry: Some(pb::StorageEntry {
                            key,
                            value,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }))
                    .await;
                if !accepted {
                    assert!(r.is_err(), "a refused key was written");
                }
            }
            Call::Get { key } => {
                let _ = services.get(Request::new(pb::StorageGetArgs {
                    key,
                    ..Default::default()
                })).await;
            }
            Call::Delete { key } => {
                let _ = services
                    .delete(Request::new(pb::StorageDeleteArgs {
                        key,
                        ..Default::default()
                    }))
                    .await;
            }
            Call::List { prefix } => {
                if let Ok(r) = services
                    .list(Request::new(pb::StorageListArgs {
                        prefix: prefix.clone(),
                        ..Default::default()
                    }))
                    .await
                {
                    // Every listed name is one of this mount's own keys
                    // (or folders) under the prefix: nothing from outside.
                    let physical: Vec<String> = w.mem.dump().into_iter().map(|(k, _)| k).collect();
                    for k in r.into_inner().keys {
                        let full = format!("{MINE}{prefix}{k}");
                        assert!(
                            physical.iter().any(|p| p.starts_with(&full)),
                            "a list named {k:?} that is not under the mount: {full:?}"
                        );
                    }
                }
            }
            Call::Password { policy } => {
                let r = services
                    .generate_password_from_policy(Request::new(
                        pb::GeneratePasswordFromPolicyRequest {
                            policy_name: policy,
                        },
                    ))
                    .await;
                assert!(r.is_err(), "password policies are unsupported");
            }
            Call::PluginEnv => {
                let _ = services.plugin_env(Request::new(pb::Empty {})).await;
            }
            Call::EntityInfo { entity } => {
                let _ = services
                    .entity_info(Request::new(pb::EntityInfoArgs { entity_id: entity }))
                    .await;
            }
        }
    }
    // Only the mount's own prefix (and the canary, and the barrier's own
    // keys) exists physically; the canary is intact.
    for (key, _) in w.mem.dump() {
        assert!(
            key.starts_with(MINE) || key == OTHER || key.starts_with("core/"),
            "a storage call wrote outside the mount: {key}"
        );
    }
    assert_eq!(
        w.barrier.get(OTHER).await.expect("canary read").as_deref(),
        Some(&b"canary"[..])
    );
    let _ = services.view.clear().await;
}

fuzz_target!(|input: Input| {
    handshake(&input.handshake);
    let kind = if input.credential {
        BackendKind::Credential
    } else {
        BackendKind::Secret
    };
    reply(&input.reply, kind);
    existence(&input.existence);
    special(&input.special, &input.path);
    // The world is built outside the runtime (it blocks on its own).
    let w = world();
    runtime().block_on(storage(w, input.calls));
});
