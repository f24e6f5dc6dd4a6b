//! Regenerates `crates/vault-plugin-proto/src/generated/` from `proto/`:
//! `cargo run -p lockbox-vault-plugin-proto --example generate`.

#[path = "../tests/common/codegen.rs"]
mod codegen;

fn main() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated");
    if let Err(e) = codegen::generate(&out) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    for name in codegen::GENERATED {
        println!("wrote {}", out.join(name).display());
    }
}
