//! The layering rule, checked by the compiler's own tool: the core's
//! dependency tree holds no Kubernetes, gRPC or HTTP-server crate, and no
//! workspace crate depends on one above it (ARCHITECTURE.md, "Crates").
//!
//! Both checks run `cargo` (the one running this test) on the workspace:
//! `cargo tree -p lockbox-core -e normal` and `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The workspace root (this crate is `crates/core`).
fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Crates the core must never depend on, even indirectly: the core is
/// plain data and rules; Kubernetes, gRPC and the HTTP server live above it.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "kube",
    "k8s-openapi",
    "tonic",
    "hyper",
    "reqwest",
    // The Vault-plugin AutoMTLS provider (P-521) stays in the plugin host.
    "aws-lc-rs",
    "aws-lc-sys",
];

#[test]
fn the_core_depends_on_no_kubernetes_grpc_or_http_crate() {
    let tree = cargo(&[
        "tree",
        "-p",
        "lockbox-core",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
        "--offline",
    ]);
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains("lockbox-core"),
        "unexpected cargo tree output:\n{tree}"
    );
    let found: Vec<&&str> = FORBIDDEN_IN_CORE
        .iter()
        .filter(|f| names.contains(**f))
        .collect();
    assert!(
        found.is_empty(),
        "lockbox-core's dependency tree contains {found:?}; the core must stay free of \
         Kubernetes, gRPC and HTTP-server crates: define a trait in lockbox-core \
         (see lockbox_core::runtime) and implement it in a crate above \
         (`cargo tree -p lockbox-core -e normal -i CRATE` shows the path)"
    );
}

/// Each workspace crate and the workspace crates it may depend on (normal
/// and build dependencies; dev-dependencies are free). Bottom layer first.
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        // Layer 0: no workspace dependencies.
        ("lockbox-storage", &[][..]),
        ("lockbox-pg-tls", &[][..]),
        (
            "lockbox-storage-postgres",
            &["lockbox-storage", "lockbox-pg-tls"][..],
        ),
        ("lockbox-plugin-proto", &[][..]),
        ("lockbox-vault-plugin-proto", &[][..]),
        ("lockbox-oci", &[][..]),
        ("lockbox-bench", &[][..]),
        // Layer 1: the core.
        ("lockbox-core", &["lockbox-storage"][..]),
        // Layer 2: runtimes around the core.
        (
            "lockbox-plugin-host",
            &[
                "lockbox-storage",
                "lockbox-core",
                "lockbox-plugin-proto",
                "lockbox-vault-plugin-proto",
                "lockbox-oci",
            ][..],
        ),
        ("lockbox-http", &["lockbox-core"][..]),
        // Layer 3: the operator.
        (
            "lockbox-operator",
            &[
                "lockbox-storage",
                "lockbox-core",
                "lockbox-plugin-host",
                "lockbox-http",
                "lockbox-oci",
                "lockbox-plugin-proto",
            ][..],
        ),
        // Layer 4: the server assembly.
        (
            "lockbox-server",
            &[
                "lockbox-storage",
                "lockbox-storage-postgres",
                "lockbox-core",
                "lockbox-plugin-host",
                "lockbox-http",
                "lockbox-operator",
                "lockbox-oci",
                "lockbox-plugin-proto",
                "lockbox-cli",
            ][..],
        ),
        // Layer 5: the binary.
        (
            "lockbox",
            &["lockbox-server", "lockbox-operator", "lockbox-cli"][..],
        ),
        // Clients and plugins, beside the server's layers.
        ("lockbox-cli", &["lockbox-oci"][..]),
        (
            "lockbox-sdk",
            &["lockbox-plugin-proto", "lockbox-vault-plugin-proto"][..],
        ),
        (
            "lockbox-plugin-mock",
            &["lockbox-sdk", "lockbox-plugin-proto"][..],
        ),
        ("lockbox-plugin-passgen", &["lockbox-sdk"][..]),
        (
            "lockbox-plugin-database",
            &["lockbox-sdk", "lockbox-pg-tls"][..],
        ),
        ("lockbox-plugin-userpass", &["lockbox-sdk"][..]),
        (
            "lockbox-hostile-plugin",
            &["lockbox-sdk", "lockbox-plugin-proto"][..],
        ),
    ])
}

#[test]
fn no_workspace_crate_depends_on_one_above_it() {
    let meta: serde_json::Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]))
    .expect("cargo metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let allowed = allowed();
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().expect("name");
        let Some(ok) = allowed.get(name) else {
            problems.push(format!(
                "{name} is not placed in a layer: add it to allowed() in crates/core/tests/layering.rs and to ARCHITECTURE.md"
            ));
            continue;
        };
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().expect("dependency name");
            let dev = d["kind"].as_str() == Some("dev");
            if members.contains(dep) && !dev && !ok.contains(&dep) {
                problems.push(format!(
                    "{name} depends on {dep}, which it may not (layering)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
