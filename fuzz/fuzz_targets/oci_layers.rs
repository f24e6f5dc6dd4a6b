//! OCI layers: tar and gzip archives with whiteouts, symbolic and hard
//! links, hostile names and sizes, as the image store extracts a plugin
//! binary from them.
//!
//! Properties: extraction writes nothing but its one output file (nothing
//! outside the extraction root, the layer files untouched); an extracted
//! binary is at most `max_size` bytes; a success yields a file.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Arbitrary, Debug)]
struct Entry {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    data: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Layer {
    raw: Option<Vec<u8>>,
    entries: Vec<Entry>,
    gzip: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    layers: Vec<Layer>,
    path: String,
    max_size: u16,
}

const KINDS: [u8; 8] = [b'0', b'5', b'2', b'1', b'3', b'6', b'7', b'x'];

/// A tar archive holding exactly the given names and links (no
/// sanitizing: the point is to hand the extractor what an attacker would).
fn tar_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries.iter().take(16) {
        let mut h = tar::Header::new_old();
        let name = &e.name[..e.name.len().min(99)];
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        let link = &e.link[..e.link.len().min(99)];
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(tar::EntryType::new(
            KINDS[usize::from(e.kind) % KINDS.len()],
        ));
        h.set_size(e.data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fuzz_target!(|input: Input| {
    let Ok(path) = lockbox_oci::layout::normalize_path(&input.path) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let layer_dir = tmp.path().join("layers");
    let root = tmp.path().join("root");
    std::fs::create_dir(&layer_dir).expect("mkdir");
    std::fs::create_dir(&root).expect("mkdir");
    let mut layers = Vec::new();
    for (i, l) in input.layers.iter().take(4).enumerate() {
        let bytes = match &l.raw {
            Some(raw) => raw.clone(),
            None => tar_bytes(&l.entries),
        };
        let bytes = if l.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).expect("gzip");
            gz.finish().expect("gzip")
        } else {
            bytes
        };
        let p = layer_dir.join(format!("layer{i}"));
        std::fs::write(&p, &bytes).expect("write layer");
        layers.push(p);
    }
    let before = files_under(&layer_dir);
    let out = root.join("binary");
    let max = u64::from(input.max_size);
    let result = lockbox_oci::registry::extract_from_layers(&layers, &path, &out, max, "fuzz");

    let written = files_under(&root);
    assert!(
        written.iter().all(|p| p == &out),
        "extraction wrote outside its output file: {written:?}"
    );
    assert_eq!(
        before,
        files_under(&layer_dir),
        "extraction changed the layer directory"
    );
    assert_eq!(
        files_under(tmp.path()).len(),
        before.len() + 2 + written.len()
    );
    if result.is_ok() {
        let len = std::fs::metadata(&out)
            .expect("a success yields the file")
            .len();
        assert!(len <= max, "extracted {len} bytes, limit {max}");
    }
});
