//! Unit tests of [`super`].

use super::*;

fn tar_layer(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)], gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, name, *data).unwrap();
    }
    let raw = b.into_inner().unwrap();
    if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&raw).unwrap();
        e.finish().unwrap()
    } else {
        raw
    }
}

fn write_layers(dir: &Path, layers: &[Vec<u8>]) -> Vec<PathBuf> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = dir.join(format!("l{i}"));
            std::fs::write(&p, l).unwrap();
            p
        })
        .collect()
}

#[test]
fn extracts_across_layers_with_whiteouts_and_links() {
    use tar::EntryType::*;
    let dir = tempfile::tempdir().unwrap();
    let layers = write_layers(
        dir.path(),
        &[
            tar_layer(
                &[
                    ("plugin", Regular, b"old", None),
                    ("usr/bin/p2", Regular, b"two", None),
                    ("gone", Regular, b"x", None),
                ],
                true,
            ),
            tar_layer(
                &[
                    ("./plugin", Regular, b"new", None),
                    ("link", Symlink, b"", Some("/usr/bin/p2")),
                    ("hard", Link, b"", Some("plugin")),
                    (".wh.gone", Regular, b"", None),
                ],
                false,
            ),
        ],
    );
    let out = dir.path().join("out");
    let p = |s: &str| layout::normalize_path(s).unwrap();
    extract_from_layers(&layers, &p("/plugin"), &out, 1 << 20, "r").unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"new");
    std::fs::remove_file(&out).unwrap();
    extract_from_layers(&layers, &p("/link"), &out, 1 << 20, "r").unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"two");
    std::fs::remove_file(&out).unwrap();
    extract_from_layers(&layers, &p("/hard"), &out, 1 << 20, "r").unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"new");
    std::fs::remove_file(&out).unwrap();
    let e = extract_from_layers(&layers, &p("/gone"), &out, 1 << 20, "r").unwrap_err();
    assert_eq!(e.reason(), "BinaryNotFound", "{e}");
    let e = extract_from_layers(&layers, &p("/plugin"), &out, 2, "r").unwrap_err();
    assert_eq!(e.reason(), "TooLarge", "{e}");
}

#[test]
fn traversal_and_escaping_links_are_refused() {
    use tar::EntryType::*;
    let dir = tempfile::tempdir().unwrap();
    // tar::Builder refuses `..` in names, so write the header by hand.
    let mut raw = Vec::new();
    {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..12].copy_from_slice(b"../../plugin");
        h.set_entry_type(Regular);
        h.set_size(1);
        h.set_cksum();
        raw.extend_from_slice(h.as_bytes());
        let mut block = [0u8; 512];
        block[0] = b'x';
        raw.extend_from_slice(&block);
        raw.extend_from_slice(&[0u8; 1024]);
    }
    let layers = write_layers(dir.path(), &[raw]);
    let out = dir.path().join("out");
    let p = |s: &str| layout::normalize_path(s).unwrap();
    let e = extract_from_layers(&layers, &p("/plugin"), &out, 1 << 20, "r").unwrap_err();
    assert_eq!(e.reason(), "UnsafePath", "{e}");
    let layers = write_layers(
        dir.path(),
        &[tar_layer(
            &[
                ("plugin", Symlink, b"", Some("../../../bin/sh")),
                ("fifo", Fifo, b"", None),
            ],
            false,
        )],
    );
    let e = extract_from_layers(&layers, &p("/plugin"), &out, 1 << 20, "r").unwrap_err();
    assert_eq!(e.reason(), "UnsafePath", "{e}");
    let e = extract_from_layers(&layers, &p("/fifo"), &out, 1 << 20, "r").unwrap_err();
    assert_eq!(e.reason(), "NotRegularFile", "{e}");
    assert!(!out.exists());
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    use tar::EntryType::*;
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0u8; 1 << 20];
    let layers = write_layers(
        dir.path(),
        &[tar_layer(
            &[
                ("filler", Regular, &big, None),
                ("plugin", Regular, b"p", None),
            ],
            true,
        )],
    );
    let out = dir.path().join("out");
    let e = extract_from_layers(
        &layers,
        &layout::normalize_path("/plugin").unwrap(),
        &out,
        1024,
        "r",
    )
    .unwrap_err();
    assert_eq!(e.reason(), "TooLarge", "{e}");
}
