//! `tests/e2e/kind/`: the end-to-end run for machines with Docker and kind.
//! It cannot run here (no Docker engine), so this checks what can be
//! checked without it: the script parses, every file it uses exists, its
//! `helm install` values pass the chart's schema and render what it relies
//! on (its image, never pulled; the plugin volume; the extra path prefix),
//! and the kind config is a kind cluster config.

use crate::{docs, find, render, repo};

fn script() -> String {
    std::fs::read_to_string(repo().join("tests/e2e/kind/run.sh")).expect("tests/e2e/kind/run.sh")
}

#[test]
fn the_kind_script_parses_and_uses_files_that_exist() {
    let out = crate::run(
        std::process::Command::new("bash")
            .args(["-n", "tests/e2e/kind/run.sh"])
            .current_dir(repo()),
    );
    assert!(out.ok, "bash -n: {}", out.all());
    let text = script();
    let mut used = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        let word = word.trim_end_matches([';', ')']);
        if ["deploy/", "charts/", "tests/"]
            .iter()
            .any(|p| word.starts_with(p))
        {
            used.push(word.to_string());
        }
    }
    used.push("tests/e2e/kind/kind-config.yaml".into());
    assert!(used.len() >= 6, "{used:?}");
    for path in &used {
        assert!(
            repo().join(path).exists(),
            "run.sh uses {path}, which does not exist"
        );
    }
    // The Dockerfile target the script builds for the plugin digests.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    assert!(text.contains("--target plugin-digests"));
    assert!(
        dockerfile.contains(" AS plugin-digests"),
        "Dockerfile lost its plugin-digests stage"
    );
    let config = std::fs::read_to_string(repo().join("tests/e2e/kind/kind-config.yaml"))
        .expect("kind config");
    let config = &docs(&config)[0];
    assert_eq!(config["kind"], "Cluster");
    assert_eq!(config["apiVersion"], "kind.x-k8s.io/v1alpha4");
    assert_eq!(config["name"], "lockbox-e2e");
}

/// The `--set` arguments of the script's `helm install`.
fn install_args(text: &str) -> Vec<String> {
    let start = text
        .find("helm install lockbox charts/lockbox")
        .expect("helm install line");
    let mut cmd = String::new();
    for line in text[start..].lines() {
        cmd.push_str(line.trim_end_matches('\\'));
        cmd.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    let words: Vec<String> = cmd
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "--set" || words[i] == "--set-string" {
            args.push(words[i].clone());
            args.push(words[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    args
}

#[test]
fn the_kind_install_values_pass_the_schema_and_render_what_the_script_needs() {
    let args = install_args(&script());
    assert!(args.len() >= 8, "{args:?}");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let rendered = docs(&render("lockbox", "lockbox-system", &refs));
    let sts = find(&rendered, "StatefulSet", "lockbox");
    let pod = &sts["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "lockbox:e2e");
    assert_eq!(
        container["imagePullPolicy"], "Never",
        "kind loads the image; never pull it"
    );
    let claims: Vec<&str> = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .collect();
    assert!(claims.contains(&"lockbox-plugins"), "{pod}");
    let flags = container["args"].to_string() + &container["command"].to_string();
    assert!(flags.contains("team-b=shared"), "{flags}");
}
