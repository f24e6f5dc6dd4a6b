//! Shared setup of lockbox's fuzz targets: a single-threaded runtime and
//! an unsealed in-memory core with a known state, built once per process.

use lockbox_core::core::{ApiRequest, Core, CoreConfig, Method, Reply};
use lockbox_storage::InMemory;
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// The runtime every async target runs on (current thread: fuzzing is
/// single-threaded and the input must be deterministic).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// An unsealed in-memory core and its root token.
pub fn unsealed_core() -> (Arc<Core>, String) {
    runtime().block_on(async {
        let core = Arc::new(Core::new(Arc::new(InMemory::new()), CoreConfig::default()));
        let init = core.initialize(1, 1, None).await.expect("initialize");
        core.submit_unseal_key(&init.keys[0]).await.expect("unseal");
        (core, init.root_token)
    })
}

/// One call into the core; panics with the request when the core refuses
/// a call the setup needs.
pub async fn call(core: &Core, token: &str, method: Method, path: &str, data: Value) -> Reply {
    let data = match data {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    core.handle(ApiRequest {
        method,
        path: path.to_string(),
        data,
        token: Some(token.to_string()),
        remote: None,
    })
    .await
    .unwrap_or_else(|e| panic!("setup call {method:?} {path} failed: {e}"))
}

/// The `data` of a reply (an empty map for 204/404).
pub fn data(reply: Reply) -> Map<String, Value> {
    match reply {
        Reply::Envelope { response, .. } => response.data.unwrap_or_default(),
        Reply::Raw {
            body: Value::Object(m),
            ..
        } => m,
        _ => Map::new(),
    }
}
