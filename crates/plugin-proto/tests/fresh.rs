//! Fails when `src/generated/` is stale against `proto/`. Fix with
//! `cargo run -p lockbox-plugin-proto --example generate`.

mod common {
    pub mod codegen;
}

#[test]
fn generated_code_matches_the_protos() {
    let tmp = tempfile::tempdir().unwrap();
    common::codegen::generate(tmp.path()).unwrap();
    let committed_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated");
    let name = "lockbox.plugin.v1.rs";
    let fresh = std::fs::read_to_string(tmp.path().join(name)).unwrap();
    let committed = std::fs::read_to_string(committed_dir.join(name)).unwrap_or_default();
    assert!(
        fresh == committed,
        "crates/plugin-proto/src/generated/{name} is stale: run `cargo run -p lockbox-plugin-proto --example generate` and commit the result"
    );
}
