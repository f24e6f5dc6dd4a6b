//! Unit tests of [`super`].

use super::*;

#[test]
fn median_of_odd_and_even_counts() {
    let mut s = Samples::default();
    assert_eq!(s.median(), None);
    for ms in [30u64, 10, 20] {
        s.push(Duration::from_millis(ms));
    }
    assert_eq!(s.median(), Some(20.0));
    s.push(Duration::from_millis(40));
    assert_eq!(s.median(), Some(25.0));
    assert_eq!(s.min(), Some(10.0));
    assert_eq!(s.max(), Some(40.0));
}

#[test]
fn kv_module_version_from_the_install_script() {
    let versions = "go go1.26.8\n\
        tests/go/upstream/secrets-kv: github.com/hashicorp/vault-plugin-secrets-kv v0.25.0\n\
        tests/go/upstream/secrets-kv: github.com/hashicorp/vault/sdk v0.19.0\n\
        tests/go/testplugin: github.com/hashicorp/vault/sdk v0.25.1\n";
    assert_eq!(
        bao::kv_module_version(versions).as_deref(),
        Some(
            "github.com/hashicorp/vault-plugin-secrets-kv v0.25.0, github.com/hashicorp/vault/sdk v0.19.0"
        )
    );
    assert_eq!(bao::kv_module_version("go go1.26.8\n"), None);
}

#[test]
fn ratios_and_seconds() {
    assert_eq!(render::ratio(Some(3.0), Some(2.0)), "1.50x");
    assert_eq!(render::ratio(Some(3.0), Some(0.0)), "-");
    assert_eq!(render::ratio(None, Some(2.0)), "-");
    assert_eq!(render::secs(2.0), "2");
    assert_eq!(render::secs(0.5), "0.5");
}

#[test]
fn key_paths_are_kv_v2_data_paths() {
    assert_eq!(v2_key_path(7), "/v1/kvx/data/bench/key-7");
    assert_eq!(mock_key_path(0), "/v1/mock-uncached/bench/key-0");
}
