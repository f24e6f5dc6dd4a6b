//! Unit tests of [`super`].

use super::backend::plugin_data;

#[test]
fn plugin_data_is_an_object_of_bounded_shape() {
    assert_eq!(plugin_data("p", b"").unwrap(), None);
    assert_eq!(plugin_data("p", b"null").unwrap(), None);
    let m = plugin_data("p", br#"{"k":"v"}"#).unwrap().unwrap();
    assert_eq!(m["k"], "v");
    let e = plugin_data("p", b"[1]").unwrap_err().to_string();
    assert!(
        e.contains("plugin p returned invalid data: expected a JSON object"),
        "{e}"
    );
    // A hostile plugin's answer of tiny values is refused unparsed.
    let mut flood = b"{\"a\":[0".to_vec();
    for _ in 0..lockbox_core::json::MAX_JSON_NODES {
        flood.extend_from_slice(b",0");
    }
    flood.extend_from_slice(b"]}");
    let e = plugin_data("p", &flood).unwrap_err().to_string();
    assert!(
        e.contains("plugin p returned invalid data") && e.contains("JSON values"),
        "{e}"
    );
}
