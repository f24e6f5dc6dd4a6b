//! OCI documents from a registry: image references, manifests and index
//! documents, and the plan for finding a binary in them.
//!
//! Properties: a parsed reference prints back to what was given and
//! re-parses to the same registry/repository/tag/digest; a digest-pinned
//! reference stays pinned; a parsed manifest has only sha256 digests and
//! no negative sizes, an index lists manifests and an image lists layers;
//! a raw-layer plan points at an existing layer.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lockbox_oci::layout::{self, Manifest, Plan};
use lockbox_oci::reference::ImageRef;

#[derive(Arbitrary, Debug)]
struct Input {
    reference: String,
    manifest: Vec<u8>,
    path: String,
}

fuzz_target!(|input: Input| {
    if let Ok(r) = ImageRef::parse(&input.reference) {
        assert_eq!(
            r.as_given(),
            input.reference.trim(),
            "the reference as given, without surrounding whitespace"
        );
        let again = ImageRef::parse(r.as_given()).expect("a parsed reference parses again");
        assert_eq!(
            (
                again.registry(),
                again.repository(),
                again.tag(),
                again.digest()
            ),
            (r.registry(), r.repository(), r.tag(), r.digest())
        );
        if let Some(d) = r.digest() {
            assert!(r.is_pinned());
            let pinned = r.at_digest(d);
            assert_eq!(pinned.digest(), Some(d));
        }
    }

    let Ok(m) = Manifest::parse(&input.manifest, "fuzz") else {
        return;
    };
    for d in m.layers.iter().chain(&m.manifests).chain(m.config.iter()) {
        assert!(d.size >= 0);
        let hex = d.digest.strip_prefix("sha256:").expect("sha256 digest");
        assert!(lockbox_oci::is_sha256_hex(hex));
    }
    if m.is_index() {
        assert!(!m.manifests.is_empty());
        let _ = m.platform_entry();
        return;
    }
    assert!(!m.layers.is_empty());
    let Ok(path) = layout::normalize_path(&input.path) else {
        return;
    };
    assert!(
        !path.is_empty()
            && !path
                .iter()
                .any(|c| c == ".." || c.is_empty() || c.contains('/'))
    );
    if let Ok(Plan::RawLayer(i)) = layout::plan(&m, &path, "fuzz") {
        assert!(i < m.layers.len());
    }
});
