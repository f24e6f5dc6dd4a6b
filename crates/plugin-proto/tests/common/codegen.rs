//! Shared by the generator example and the freshness test: compiles
//! `proto/lockbox/plugin/v1/plugin.proto` with protox and writes the tonic
//! code into a directory.

use std::path::Path;

pub fn generate(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("lockbox/plugin/v1/plugin.proto");
    let descriptors = protox::compile([&file], [&root])?;
    std::fs::create_dir_all(out_dir)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(out_dir)
        .compile_fds(descriptors)?;
    Ok(())
}
