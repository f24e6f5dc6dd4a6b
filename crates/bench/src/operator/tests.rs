//! Unit tests of [`super`].

use super::*;

#[test]
fn nearest_rank_quantiles() {
    let v: Vec<f64> = (1..=50).map(f64::from).rev().collect();
    assert_eq!(quantile(&v, 0.5), Some(25.0));
    assert_eq!(quantile(&v, 0.99), Some(50.0));
    assert_eq!(quantile(&v, 1.0), Some(50.0));
    assert_eq!(quantile(&v, 0.0), Some(1.0));
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
}

#[test]
fn fractions_of_ready_times() {
    let ready = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(time_to_fraction(&ready, 4, 0.5), Some(2.0));
    assert_eq!(time_to_fraction(&ready, 4, 1.0), Some(4.0));
    // Only 4 of 5 were Ready: no time for all of them.
    assert_eq!(time_to_fraction(&ready, 5, 1.0), None);
    assert_eq!(time_to_fraction(&ready, 5, 0.9), None);
    assert_eq!(time_to_fraction(&ready, 5, 0.8), Some(4.0));
    assert_eq!(time_to_fraction(&[], 3, 0.5), None);
}

#[test]
fn banner_lines() {
    let mut b = Banner::default();
    for line in [
        "==> lockbox operator started",
        "api address: https://127.0.0.1:40123",
        "health address: 127.0.0.1:40124",
    ] {
        b.feed(line);
    }
    assert!(b.done());
    assert_eq!(b.api.as_deref(), Some("https://127.0.0.1:40123"));
    assert_eq!(b.health.as_deref(), Some("127.0.0.1:40124"));
    assert!(!Banner::default().done());
}

#[test]
fn ready_conditions_and_reasons() {
    let list = json!({ "items": [
        { "metadata": { "name": "a", "namespace": "n" },
          "status": { "conditions": [ { "type": "Ready", "status": "True", "reason": "Mounted" } ] } },
        { "metadata": { "name": "b", "namespace": "n" },
          "status": { "conditions": [ { "type": "Ready", "status": "False", "reason": "PluginMissing" } ] } },
        { "metadata": { "name": "c", "namespace": "n" } },
        { "metadata": { "name": "d" },
          "status": { "conditions": [
              { "type": "Verified", "status": "True" },
              { "type": "Ready", "status": "True" } ] } },
    ] });
    let it = items(&list);
    assert_eq!(it.iter().filter(|o| is_ready(o)).count(), 2);
    assert_eq!(object_key(&it[0]), "n/a");
    assert_eq!(object_key(&it[3]), "d");
    let reasons = not_ready_reasons(&list);
    assert_eq!(reasons.get("PluginMissing"), Some(&1));
    assert_eq!(reasons.get("(no status yet)"), Some(&1));
    assert_eq!(reasons.len(), 2);
    assert!(items(&json!({})).is_empty());
}

#[test]
fn prometheus_text() {
    let text = "# HELP lockbox_operator_reconciles_total Reconciles run, by kind.\n\
        # TYPE lockbox_operator_reconciles_total counter\n\
        lockbox_operator_reconciles_total{kind=\"PluginCatalogEntry\"} 7\n\
        lockbox_operator_reconciles_total{kind=\"SecretsMount\"} 1012\n\
        lockbox_operator_reconcile_errors_total{kind=\"SecretsMount\",reason=\"KubeApi\"} 3\n\
        lockbox_operator_reconcile_duration_seconds_sum{kind=\"SecretsMount\"} 12.5\n\
        lockbox_operator_leader 1\n\
        lockbox_plugin_processes{type=\"secret\",plugin=\"mock-0\",version=\"1.0.0\"} 1\n\
        lockbox_plugin_processes{type=\"secret\",plugin=\"we\\\"ird\",version=\"1.0.0\"} 1\n";
    let sm = [("kind", "SecretsMount")];
    assert_eq!(
        metric_sum(text, "lockbox_operator_reconciles_total", &sm),
        Some(1012.0)
    );
    assert_eq!(
        metric_sum(text, "lockbox_operator_reconciles_total", &[]),
        Some(1019.0)
    );
    assert_eq!(
        metric_sum(text, "lockbox_operator_reconcile_duration_seconds_sum", &sm),
        Some(12.5)
    );
    assert_eq!(metric_sum(text, "lockbox_operator_leader", &[]), Some(1.0));
    assert_eq!(metric_sum(text, "lockbox_plugin_processes", &[]), Some(2.0));
    assert_eq!(
        metric_sum(text, "lockbox_plugin_processes", &[("plugin", "we\"ird")]),
        Some(1.0)
    );
    // A name that is only a prefix of the metric's does not match.
    assert_eq!(metric_sum(text, "lockbox_operator_reconciles", &[]), None);
    assert_eq!(reconcile_errors(text).get("KubeApi").copied(), Some(3.0));
}

#[test]
fn apiserver_request_deltas() {
    let before = "apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 2\n\
        apiserver_request_duration_seconds_sum{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 0.5\n\
        apiserver_request_duration_seconds_count{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 2\n";
    let after = "apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 10\n\
        apiserver_request_total{code=\"409\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"namespace\",subresource=\"\",verb=\"LIST\"} 2\n\
        apiserver_request_duration_seconds_sum{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 10.5\n\
        apiserver_request_duration_seconds_count{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 12\n\
        apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"namespace\",subresource=\"status\",verb=\"PATCH\"} 20\n\
        apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"WATCH\"} 3\n\
        apiserver_request_total{code=\"200\",group=\"\",resource=\"secrets\",scope=\"namespace\",subresource=\"\",verb=\"GET\"} 9\n\
        apiserver_request_total{code=\"201\",group=\"events.k8s.io\",resource=\"events\",scope=\"namespace\",subresource=\"\",verb=\"POST\"} 20\n";
    let rows = request_rows(before, after);
    assert_eq!(
        rows,
        vec![
            ("PATCH".into(), "secretsmounts/status".into(), 20.0, None),
            ("POST".into(), "events".into(), 20.0, None),
            ("LIST".into(), "secretsmounts".into(), 10.0, Some(1.0)),
        ]
    );
}

#[test]
fn labels_with_escapes() {
    let l = parse_labels(r#"a="x",b="y\"z",c="1\n2""#);
    assert_eq!(l["a"], "x");
    assert_eq!(l["b"], "y\"z");
    assert_eq!(l["c"], "1\n2");
    assert!(parse_labels("").is_empty());
}

#[test]
fn manifests_have_the_label_and_plugin() {
    let m = secrets_mount("ns", "m", "mock-3", "scale");
    assert_eq!(m["metadata"]["labels"][LABEL], "scale");
    assert_eq!(m["spec"]["plugin"], "mock-3");
    let e = catalog_entry("mock-0", &"a".repeat(64));
    assert_eq!(e["spec"]["binary"]["path"], PLUGIN_FILE);
    assert_eq!(e["spec"]["version"], PLUGIN_VERSION);
}

#[test]
fn sha256_of_empty_input() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
