//! Vault client compatibility: hvac (the Python Vault client) drives a real
//! lockbox server unchanged. `tests/run.sh` installs hvac; without it this
//! test fails and says so.

use crate::common::TestServer;
use base64::Engine;

#[tokio::test(flavor = "multi_thread")]
async fn hvac_python_client_works_unchanged() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import hvac"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "python3 with hvac is required: run `bash tests/run.sh` (it installs hvac) or `pip install hvac`"
        ),
    }
    let s = TestServer::dev().await;
    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/hvac_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("VAULT_ADDR", &s.addr)
        .env("VAULT_TOKEN", &s.root_token)
        .env("LOCKBOX_UNSEAL_KEY", key)
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("hvac compatibility: ok"), "{stdout}");
}
