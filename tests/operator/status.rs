//! What GitOps tools read from the API server: the CRDs' CEL rules refuse a
//! bad spec at `kubectl apply` (before the operator sees it), and the status
//! the operator writes gives the kstatus verdicts of `sigs.k8s.io/cli-utils`
//! itself (the `kstatus` helper of `tests/go/kstatus`, what Flux computes):
//! `Current` when Ready, `InProgress` while it waits or retries or has not
//! seen the latest generation, `Failed` for `InvalidSpec` and
//! `DigestMismatch`, for every lockbox kind.

use crate::harness::{Cluster, Scenario, cluster, eventually, kstatus, kstatus_observed};
use std::time::Duration;

const WAIT: u32 = 60;

/// `kubectl apply --server-side --dry-run=server` of `yaml`: (accepted,
/// kubectl's output). A dry run goes through the same validation (schema,
/// CEL) as a real apply and leaves nothing behind.
fn dry_apply(c: &Cluster, yaml: &str) -> (bool, String) {
    let (ok, out, err) = c.kubectl_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(yaml),
    );
    (ok, format!("{out}{err}"))
}

fn entry(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: lockbox.dev/v1alpha1\nkind: PluginCatalogEntry\nmetadata:\n  name: {name}\nspec:\n  type: secret\n  version: \"1.0.0\"\n{spec}"
    )
}

fn mount(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: lockbox.dev/v1alpha1\nkind: SecretsMount\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  plugin: mock\n{spec}"
    )
}

/// Bad specs are refused at apply time with the CEL rule's (or the
/// pattern's) message, naming the field; good ones next to them pass.
#[test]
fn cel_rules_refuse_bad_specs_at_apply_time() {
    let c = cluster();
    let sha = "ab".repeat(32);
    let binary = format!("  binary:\n    path: lockbox-plugin-mock\n    sha256: \"{sha}\"\n");
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "both sources",
            entry(
                "cel-both",
                &format!("{binary}  image:\n    reference: registry.example/p@sha256:{sha}\n"),
            ),
            "spec: Invalid value: exactly one of spec.binary and spec.image must be set",
        ),
        (
            "no source",
            entry("cel-none", ""),
            "exactly one of spec.binary and spec.image must be set",
        ),
        (
            "a tag-only image without sha256",
            entry(
                "cel-tag",
                "  image:\n    reference: registry.example/plugins/mock:1.0\n",
            ),
            "spec.image: Invalid value: spec.image.reference has no @sha256:<digest>: \
             pin it by digest or set spec.image.sha256",
        ),
        (
            "an env entry with value and valueFrom",
            entry(
                "cel-env",
                &format!(
                    "{binary}  env:\n  - name: A\n    value: x\n    valueFrom:\n      secretKeyRef:\n        name: s\n        key: k\n"
                ),
            ),
            "exactly one of value and valueFrom must be set",
        ),
        (
            "an env entry with neither",
            entry("cel-env-none", &format!("{binary}  env:\n  - name: A\n")),
            "exactly one of value and valueFrom must be set",
        ),
        (
            "an upper-case sha256",
            entry(
                "cel-sha",
                &format!(
                    "  binary:\n    path: lockbox-plugin-mock\n    sha256: \"{}\"\n",
                    sha.to_uppercase()
                ),
            ),
            "spec.binary.sha256 in body should match '^[a-f0-9]{64}$'",
        ),
        (
            "a short image sha256",
            entry(
                "cel-sha-img",
                "  image:\n    reference: registry.example/plugins/mock:1.0\n    sha256: \"abc\"\n",
            ),
            "spec.image.sha256 in body should match '^[a-f0-9]{64}$'",
        ),
        (
            "a mount under sys/",
            mount("cel-sys", "  path: sys/kv\n"),
            "spec.path: Invalid value: spec.path must not start with sys/, auth/, \
             cubbyhole/ or identity/ (reserved by lockbox)",
        ),
        (
            "a mount at auth",
            mount("cel-auth", "  path: auth\n"),
            "reserved by lockbox",
        ),
        (
            "a mount under identity/",
            mount("cel-identity", "  path: identity/x\n"),
            "reserved by lockbox",
        ),
    ];
    for (what, yaml, message) in &refused {
        let (ok, out) = dry_apply(c, yaml);
        assert!(!ok, "{what}: accepted:\n{out}\n{yaml}");
        assert!(out.contains(" is invalid: "), "{what}: {out}");
        assert!(out.contains(message), "{what}: want {message:?} in:\n{out}");
    }
    let accepted = [
        ("a binary", entry("cel-ok-binary", &binary)),
        (
            "an image pinned by digest",
            entry(
                "cel-ok-digest",
                &format!("  image:\n    reference: registry.example/p@sha256:{sha}\n"),
            ),
        ),
        (
            "a tag-only image with sha256",
            entry(
                "cel-ok-tag",
                &format!(
                    "  image:\n    reference: registry.example/p:1.0\n    sha256: \"{sha}\"\n"
                ),
            ),
        ),
        (
            "env with value, env with valueFrom",
            entry(
                "cel-ok-env",
                &format!(
                    "{binary}  env:\n  - name: A\n    value: x\n  - name: B\n    valueFrom:\n      secretKeyRef:\n        name: s\n        key: k\n"
                ),
            ),
        ),
        ("a mount without path", mount("cel-ok-default", "")),
        (
            "a mount at system/kv",
            mount("cel-ok-system", "  path: system/kv\n"),
        ),
        (
            "a mount at authors",
            mount("cel-ok-authors", "  path: authors\n"),
        ),
    ];
    for (what, yaml) in &accepted {
        let (ok, out) = dry_apply(c, yaml);
        assert!(ok, "{what}: refused:\n{out}\n{yaml}");
    }
}

/// The condition `type_` of `what`: (status, reason), empty when absent.
fn condition(c: &Cluster, what: &[&str], type_: &str) -> (String, String) {
    (
        c.get(
            what,
            &format!(r#"{{.status.conditions[?(@.type=="{type_}")].status}}"#),
        ),
        c.get(
            what,
            &format!(r#"{{.status.conditions[?(@.type=="{type_}")].reason}}"#),
        ),
    )
}

fn t(s: &str, r: &str) -> (String, String) {
    (s.to_string(), r.to_string())
}

/// Every state of both kinds, read by kstatus: Current when Ready;
/// InProgress while a mount waits for its catalog entry (Reconciling=True,
/// retried until the entry appears, then Current) and while the operator
/// has not seen a new generation; Failed for DigestMismatch and InvalidSpec
/// (Stalled=True beside Ready=False), and Current again once fixed.
#[test]
fn kstatus_verdicts_for_every_kind() {
    let s = Scenario::start("kst", &["kst-a"], &[]);
    let c = cluster();
    let op = s.operator();

    // Current.
    let good = ["pce/kst-mock"];
    c.apply(&s.entry_yaml("kst-mock", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&good, "condition=Ready", WAIT);
    assert_eq!(kstatus_observed(c, &good).0, "Current");
    let kv = ["-n", "kst-a", "smount/kv"];
    c.apply(&s.mount_yaml("kst-a", "kv", "kst-mock", ""));
    c.wait(&kv, "condition=Ready", WAIT);
    assert_eq!(kstatus_observed(c, &kv).0, "Current");
    for what in [&good[..], &kv[..]] {
        assert_eq!(condition(c, what, "Reconciling"), t("", ""), "{what:?}");
        assert_eq!(condition(c, what, "Stalled"), t("", ""), "{what:?}");
    }

    // InProgress: the catalog entry does not exist yet; retried.
    let waiting = ["-n", "kst-a", "smount/waiting"];
    c.apply(&s.mount_yaml("kst-a", "waiting", "kst-later", ""));
    eventually("PluginMissing", Duration::from_secs(60), || {
        (condition(c, &waiting, "Ready") == t("False", "PluginMissing")).then_some(())
    });
    let (verdict, message) = kstatus_observed(c, &waiting);
    assert_eq!(verdict, "InProgress", "{message}");
    assert!(
        message.contains("PluginCatalogEntry kst-later does not exist"),
        "{message}"
    );
    assert_eq!(
        condition(c, &waiting, "Reconciling"),
        t("True", "PluginMissing")
    );
    assert_eq!(condition(c, &waiting, "Stalled"), t("", ""));
    // The retry heals it once the entry exists.
    c.apply(&s.entry_yaml("kst-later", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&waiting, "condition=Ready", WAIT);
    assert_eq!(kstatus_observed(c, &waiting).0, "Current");
    assert_eq!(condition(c, &waiting, "Reconciling"), t("", ""));

    // Failed: DigestMismatch.
    let bad = ["pce/kst-digest"];
    let wrong = "0".repeat(64);
    c.apply(&s.entry_yaml("kst-digest", "lockbox-plugin-mock", &wrong, "1.0.0"));
    c.wait(&bad, "condition=Verified=false", WAIT);
    let (verdict, message) = kstatus_observed(c, &bad);
    assert_eq!(verdict, "Failed", "{message}");
    assert!(message.contains(&wrong), "{message}");
    assert_eq!(condition(c, &bad, "Stalled"), t("True", "DigestMismatch"));
    assert_eq!(condition(c, &bad, "Ready"), t("False", "DigestMismatch"));
    assert_eq!(condition(c, &bad, "Reconciling"), t("", ""));

    // Failed: InvalidSpec of a catalog entry (accepted by the schema and
    // its CEL rules; only the operator knows its own Secrets).
    let invalid = ["pce/kst-invalid"];
    c.apply(&format!(
        "{}  env:\n  - name: ROOT\n    valueFrom:\n      secretKeyRef:\n        name: lockbox-root-token\n        key: token\n",
        s.entry_yaml("kst-invalid", "lockbox-plugin-mock", &s.mock_sha, "1.0.0")
    ));
    c.wait(&invalid, "condition=Ready=false", WAIT);
    let (verdict, message) = kstatus_observed(c, &invalid);
    assert_eq!(verdict, "Failed", "{message}");
    assert!(message.contains("lockbox-root-token"), "{message}");
    assert_eq!(condition(c, &invalid, "Stalled"), t("True", "InvalidSpec"));

    // Failed: InvalidSpec of a mount (outside the namespace's prefix, which
    // CEL cannot know), then Current once the spec is fixed.
    let outside = ["-n", "kst-a", "smount/outside"];
    c.apply(&s.mount_yaml("kst-a", "outside", "kst-mock", "  path: elsewhere/kv\n"));
    c.wait(&outside, "condition=Ready=false", WAIT);
    let (verdict, message) = kstatus_observed(c, &outside);
    assert_eq!(verdict, "Failed", "{message}");
    assert!(
        message.contains("outside this namespace's prefix"),
        "{message}"
    );
    assert_eq!(condition(c, &outside, "Stalled"), t("True", "InvalidSpec"));
    c.apply(&s.mount_yaml("kst-a", "outside", "kst-mock", "  path: kst-a/inside\n"));
    c.wait(&outside, "condition=Ready", WAIT);
    assert_eq!(kstatus_observed(c, &outside).0, "Current");
    assert_eq!(condition(c, &outside, "Stalled"), t("", ""));

    // InProgress: a generation the operator has not seen (it is stopped).
    op.stop();
    c.apply(&s.mount_yaml("kst-a", "kv", "kst-mock", "  description: changed\n"));
    let (verdict, message) = kstatus(c, &kv);
    assert_eq!(verdict, "InProgress", "{message}");
    c.apply(&format!(
        "{}  args: [\"-x\"]\n",
        s.entry_yaml("kst-mock", "lockbox-plugin-mock", &s.mock_sha, "1.0.0")
    ));
    assert_eq!(kstatus(c, &good).0, "InProgress");
}
