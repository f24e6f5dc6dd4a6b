//! What a plugin sends the host: the handshake line on its stdout (lockbox
//! protocol and Vault's go-plugin protocol) and its gRPC answers, decoded
//! and converted as the host does.
//!
//! Properties:
//! * an accepted handshake names a socket directly inside the plugin's
//!   own socket directory (no `..`, no other directory);
//! * a decoded answer converts to a core response whose data is a JSON
//!   object that passed the shape check, and a secrets engine's answer
//!   never carries login data (no token minted by a secrets plugin);
//! * an error answer converts to an error, never to a success.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lockbox_core::logical::BackendKind;
use lockbox_plugin_host::host::{convert_response, from_error};
use lockbox_plugin_proto::v1;
use prost::Message;
use std::path::Path;

#[derive(Arbitrary, Debug)]
struct Input {
    handshake: String,
    vault_handshake: String,
    credential: bool,
    reply: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let dir = Path::new("/run/lockbox-plugins/abc");
    if let Ok(socket) = lockbox_plugin_host::process::parse_handshake(&input.handshake, &[1], dir) {
        assert_eq!(
            socket.parent(),
            Some(dir),
            "socket {socket:?} outside {dir:?}"
        );
        assert!(!socket.components().any(|c| c.as_os_str() == ".."));
    }
    let _ = lockbox_vault_plugin_proto::handshake::HandshakeLine::parse(&input.vault_handshake);

    let Ok(reply) = v1::HandleRequestReply::decode(input.reply.as_slice()) else {
        return;
    };
    let kind = if input.credential {
        BackendKind::Credential
    } else {
        BackendKind::Secret
    };
    if let Some(e) = &reply.error {
        let _ = from_error("fuzz", e, "mount/path");
        return;
    }
    let Some(resp) = reply.response else {
        return;
    };
    let had_auth = resp.auth.is_some();
    match convert_response("fuzz", kind, resp) {
        Ok(out) => {
            if kind != BackendKind::Credential {
                assert!(
                    out.login.is_none(),
                    "a secrets engine's answer minted a login"
                );
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
        }
    }
});
