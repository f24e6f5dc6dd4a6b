//! Shared by the generator example and the freshness test: compiles every
//! `.proto` under `proto/` with protox (no `protoc`) and writes the tonic
//! code, one file per proto package, into a directory.

use std::path::{Path, PathBuf};

/// The files tonic-prost-build writes, one per proto package.
pub const GENERATED: [&str; 4] = [
    "logical.rs",
    "pb.rs",
    "plugin.rs",
    "pluginutil.multiplexing.rs",
];

fn protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn generate(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut files = Vec::new();
    protos(&root, &mut files)?;
    files.sort();
    let descriptors = protox::compile(&files, [&root])?;
    std::fs::create_dir_all(out_dir)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(out_dir)
        .compile_fds(descriptors)?;
    Ok(())
}
