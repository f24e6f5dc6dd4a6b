//! Fails when `src/generated/` is stale against `proto/`. Fix with
//! `cargo run -p lockbox-vault-plugin-proto --example generate`.

mod common {
    pub mod codegen;
}

const FIX: &str =
    "run `cargo run -p lockbox-vault-plugin-proto --example generate` and commit the result";

#[test]
fn generated_code_matches_the_protos() {
    let tmp = tempfile::tempdir().unwrap();
    common::codegen::generate(tmp.path()).unwrap();
    let committed_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated");

    let mut written: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        common::codegen::GENERATED,
        "the proto packages changed: update codegen::GENERATED and src/lib.rs, then {FIX}"
    );

    for name in common::codegen::GENERATED {
        let fresh = std::fs::read_to_string(tmp.path().join(name)).unwrap();
        let committed = std::fs::read_to_string(committed_dir.join(name)).unwrap_or_default();
        assert!(
            fresh == committed,
            "crates/vault-plugin-proto/src/generated/{name} is stale: {FIX}"
        );
    }
}
