//! The seed walkthrough (Vault's "Building Plugin Backends" tutorial and its
//! upgrade procedure) with the real `lockbox` binary in place of `vault`:
//! dev server with a plugin directory, then a config-file server with
//! register / enable / upgrade / reload.

use crate::common::{ConfigServer, Spawned, install_plugin, lockbox_bin, lockbox_cli, sha256_file};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Starts `lockbox server --dev ARGS` with HOME = `home` (dev mode stores
/// the root token there) and reads its banner.
pub(crate) fn start_dev(args: &[&str], home: &Path) -> Spawned {
    let mut cmd = Command::new(lockbox_bin());
    cmd.args(["server", "--dev"]).args(args).env("HOME", home);
    Spawned::start(cmd, "Development mode should NOT")
}

/// Processes whose argv[0] is `name` (plugins run with argv[0] = command).
pub(crate) fn pids_named(name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
            if argv0 == name.as_bytes() && crate::common::pid_alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}

pub(crate) fn ok(addr: &str, home: &Path, args: &[&str]) -> String {
    let out = lockbox_cli(addr, home, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lockbox {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub(crate) fn wait_gone(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_named(name).is_empty() {
        assert!(Instant::now() < deadline, "{name} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn seed_walkthrough_dev_server_with_a_plugin_directory() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    // The tutorial's binary is simply called `mock`; use a unique name so
    // parallel tests can find this test's processes.
    let name = format!("mock{}", std::process::id());
    install_plugin(&plugins, "mock", &name);
    let mut server = start_dev(
        &[
            "-dev-root-token-id=root",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-plugin-dir",
            plugins.to_str().unwrap(),
        ],
        dir.path(),
    );
    let home = dir.path();
    let addr = server.addr.clone();
    // As in Vault, the dev plugins are listed before the final warning, and
    // the root token is already stored for the CLI.
    server.assert_banner(|l| l == format!("    - {name}"));
    let out = ok(&addr, home, &["token", "lookup"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("id") && l.ends_with(" root")),
        "{out}"
    );
    let out = ok(&addr, home, &["login", "root"]);
    assert!(out.contains("Success! You are now authenticated"), "{out}");
    let out = ok(&addr, home, &["secrets", "enable", &name]);
    assert!(
        out.contains(&format!(
            "Success! Enabled the {name} secrets engine at: {name}/"
        )),
        "{out}"
    );
    let out = ok(&addr, home, &["secrets", "list"]);
    let row = out
        .lines()
        .find(|l| l.starts_with(&format!("{name}/")))
        .expect(&out);
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], name);
    assert!(cols[2].starts_with(&format!("{name}_")), "{row}");
    let out = ok(
        &addr,
        home,
        &["write", &format!("{name}/test"), "message=Hello World"],
    );
    assert!(
        out.contains(&format!("Success! Data written to: {name}/test")),
        "{out}"
    );
    let out = ok(&addr, home, &["read", &format!("{name}/test")]);
    let row = out.lines().find(|l| l.starts_with("message")).expect(&out);
    assert_eq!(
        row.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        "Hello World"
    );
    assert_eq!(pids_named(&name).len(), 1);
    let out = ok(&addr, home, &["secrets", "disable", &name]);
    assert!(
        out.contains(&format!(
            "Success! Disabled the secrets engine (if it existed) at: {name}/"
        )),
        "{out}"
    );
    wait_gone(&name);

    // Shutting the server down leaves no plugin process behind.
    ok(&addr, home, &["secrets", "enable", &name]);
    assert_eq!(pids_named(&name).len(), 1);
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let _ = server.child.wait();
    wait_gone(&name);
    server.assert_banner(|l| l.contains("Development mode"));
}

#[test]
fn seed_walkthrough_register_enable_upgrade_reload() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let tag = std::process::id();
    let v1 = format!("my-mock-plugin-v1-{tag}");
    let v2 = format!("my-mock-plugin-v2-{tag}");
    install_plugin(&plugins, "mock", &v1);
    install_plugin(&plugins, "mock", &v2);
    // v2 is a different file (an appended tag keeps the ELF runnable).
    let mut bytes = std::fs::read(plugins.join(&v2)).unwrap();
    bytes.extend_from_slice(b"v2");
    std::fs::write(plugins.join(&v2), bytes).unwrap();
    let (sha1, sha2) = (
        sha256_file(&plugins.join(&v1)),
        sha256_file(&plugins.join(&v2)),
    );

    // The tutorial's config file (`tls_disable = 1`).
    let server = ConfigServer::builder(
        "plugin_directory = \"{dir}/plugins\"\nstorage \"file\" { path = \"{dir}/data\" }\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = 1\n}\n",
    )
    .dir(dir.path())
    .start();
    let (addr, home) = (server.addr.clone(), dir.path());
    let init = ok(
        &addr,
        home,
        &["operator", "init", "-key-shares=1", "-key-threshold=1"],
    );
    let key = init
        .lines()
        .find_map(|l| l.strip_prefix("Unseal Key 1: "))
        .expect(&init)
        .to_string();
    let root = init
        .lines()
        .find_map(|l| l.strip_prefix("Initial Root Token: "))
        .expect(&init)
        .to_string();
    ok(&addr, home, &["operator", "unseal", &key]);
    ok(&addr, home, &["login", &root]);

    let out = ok(
        &addr,
        home,
        &[
            "plugin",
            "register",
            &format!("-sha256={sha1}"),
            &format!("-command={v1}"),
            "-env=MOCK_PLUGIN_MARKER=v1",
            "secret",
            "my-mock-plugin",
        ],
    );
    assert!(
        out.contains("Success! Registered plugin: my-mock-plugin"),
        "{out}"
    );
    let out = ok(
        &addr,
        home,
        &["secrets", "enable", "-path=custom", "my-mock-plugin"],
    );
    assert!(
        out.contains("Success! Enabled the my-mock-plugin secrets engine at: custom/"),
        "{out}"
    );
    ok(
        &addr,
        home,
        &["write", "custom/test", "message=Hello World"],
    );
    let served_by = |addr: &str| {
        let out = ok(addr, home, &["read", "-format=json", "custom/test"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["data"]["message"], "Hello World");
        v["data"]["served_by"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(served_by(&addr), "v1");
    let v1_pids = pids_named(&v1);
    assert_eq!(v1_pids.len(), 1);

    // Register v2 under the same name: the mount keeps serving v1.
    ok(
        &addr,
        home,
        &[
            "plugin",
            "register",
            &format!("-sha256={sha2}"),
            &format!("-command={v2}"),
            "-env=MOCK_PLUGIN_MARKER=v2",
            "secret",
            "my-mock-plugin",
        ],
    );
    assert_eq!(served_by(&addr), "v1");
    let out = ok(&addr, home, &["plugin", "reload", "-plugin=my-mock-plugin"]);
    assert!(out.contains("Success!"), "{out}");
    assert_eq!(served_by(&addr), "v2");
    wait_gone(&v1);
    assert_eq!(pids_named(&v2).len(), 1);
    let detailed = ok(
        &addr,
        home,
        &["secrets", "list", "-detailed", "-format=json"],
    );
    let v: serde_json::Value = serde_json::from_str(&detailed).unwrap();
    assert_eq!(v["custom/"]["running_sha256"], sha2.as_str(), "{v}");
    let info = ok(&addr, home, &["plugin", "info", "secret", "my-mock-plugin"]);
    assert!(info.contains(&sha2), "{info}");
    let list = ok(&addr, home, &["plugin", "list", "secret"]);
    assert!(list.contains("my-mock-plugin"), "{list}");
    drop(server);
    wait_gone(&v2);
}

#[test]
fn plugins_die_with_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let name = format!("orphan{}", std::process::id());
    install_plugin(&plugins, "mock", &name);
    let mut server = start_dev(
        &[
            "-dev-root-token-id=root",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-plugin-dir",
            plugins.to_str().unwrap(),
        ],
        dir.path(),
    );
    let addr = server.addr.clone();
    ok(&addr, dir.path(), &["login", "root"]);
    ok(&addr, dir.path(), &["secrets", "enable", &name]);
    assert_eq!(pids_named(&name).len(), 1);
    // SIGKILL gives the server no chance to clean up; the kernel's
    // parent-death signal takes the plugin down with it.
    server.child.kill().unwrap();
    let _ = server.child.wait();
    wait_gone(&name);
}
