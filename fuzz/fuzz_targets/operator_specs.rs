//! Custom resource specs as the operator validates them: `SecretsMount`
//! and `PluginCatalogEntry`, from arbitrary JSON, in an arbitrary
//! namespace with arbitrary extra prefixes.
//!
//! Properties: a valid `SecretsMount` maps to a mount path that stays
//! inside the namespace's own prefix or one the operator granted to that
//! namespace, that the core accepts unchanged (its canonical form) and
//! that is not reserved; a valid catalog entry has a name and sha256 the
//! core's catalog accepts.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lockbox_core::core::mounts;
use lockbox_operator::crd::{PluginCatalogEntrySpec, SecretsMountSpec};
use lockbox_operator::validate::{validate_catalog_entry, validate_mount};

#[derive(Arbitrary, Debug)]
struct Input {
    namespace: String,
    name: String,
    prefixes: Vec<String>,
    spec: Vec<u8>,
    catalog: bool,
}

fuzz_target!(|input: Input| {
    if input.catalog {
        let Ok(spec) = serde_json::from_slice::<PluginCatalogEntrySpec>(&input.spec) else {
            return;
        };
        if validate_catalog_entry(&spec).is_ok() {
            if let Some(b) = &spec.binary {
                lockbox_core::catalog::parse_sha256(&b.sha256)
                    .expect("a valid spec's sha256 is accepted by the catalog");
            }
        }
        return;
    }
    let Ok(spec) = serde_json::from_slice::<SecretsMountSpec>(&input.spec) else {
        return;
    };
    let Ok(valid) = validate_mount(&input.namespace, &input.name, &spec, &input.prefixes) else {
        return;
    };
    let own = format!("{}/", input.namespace);
    let inside = valid.path.starts_with(&own)
        || input
            .prefixes
            .iter()
            .map(|p| p.trim_matches('/'))
            .any(|p| !p.is_empty() && valid.path.starts_with(&format!("{p}/")));
    assert!(
        inside,
        "namespace {:?} (extra prefixes {:?}) got mount path {:?}",
        input.namespace, input.prefixes, valid.path
    );
    assert_eq!(
        mounts::normalize_path(&valid.path).as_deref().ok(),
        Some(valid.path.as_str()),
        "the core does not take {:?} as it is",
        valid.path
    );
    mounts::check_reserved(&valid.path).expect("a valid mount path is not reserved");
});
