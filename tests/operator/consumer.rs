//! A real consumer (issue 16, item 3): the External Secrets Operator's way of
//! syncing a lockbox secret into a Kubernetes Secret.
//!
//! ESO itself (v0.16.2, the last release that builds from the Go module
//! proxy) costs ~15 minutes and 4.6 GB of Go caches on a fresh machine
//! (tests/harness/README.md), which CI's budget cannot take beside the
//! current kube-apiserver. So these tests run `tests/go/consumer`, our
//! smallest ESO: it reads the README's very `SecretStore` and
//! `ExternalSecret` manifests and makes the same Vault client calls as ESO's
//! Vault provider, with the same library at the same version
//! (`github.com/hashicorp/vault/api` v1.16.0 and its `auth/kubernetes`
//! v0.9.0): a TokenRequest token for the referenced ServiceAccount, the
//! login at `auth/kubernetes/login`, the kv version 2 read of
//! `secret/data/<key>`, then `lookup-self` and `revoke-self`.
//!
//! Everything else is real: the test kube-apiserver, `lockbox server -dev`
//! with the upstream kv plugin as `secret/` (kv version 2) and the upstream
//! Kubernetes auth plugin reviewing tokens with the API server's
//! TokenReview API (set up as in `kube_auth`), and the consumer running as
//! its own ServiceAccount with only the RBAC it needs (Secrets of its
//! namespace, tokens of the one ServiceAccount it logs in as). lockbox's
//! audit log shows which Vault API calls the consumer made.

// kube_auth's dev server and Vault-API client, compiled again here so that
// module stays private and unchanged.
#[path = "kube_auth/server.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod server;

use crate::harness::{cluster, eventually, exclusive, go_plugins};
use base64::Engine as _;
use serde_json::{Value, json};
use server::DevServer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The audience the role demands and the SecretStore's serviceAccountRef asks for.
const AUDIENCE: &str = "lockbox";
/// The README's placeholders, replaced by the test's values.
const README_SERVER: &str = "https://lockbox.lockbox-system.svc:8200";
const README_NAMESPACE: &str = "team-a";
const README_REFRESH: &str = "refreshInterval: 1h";
const README_ROLE: &str = "role: team-a-app";
/// The refresh interval the tests use.
const REFRESH_SECS: u64 = 2;
/// "A few refresh intervals": how long a change may take to show (with
/// room for a loaded 2-core machine).
const FEW_INTERVALS: u64 = 8;

/// The `SecretStore` + `ExternalSecret` YAML block of the README's
/// "Consuming secrets from Kubernetes" section.
fn readme_manifests() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split_once("\n## Consuming secrets from Kubernetes\n")
        .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
        .expect("README.md has a section \"Consuming secrets from Kubernetes\"");
    let block = section
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(yaml, _)| yaml))
        .find(|b| b.contains("kind: SecretStore") && b.contains("kind: ExternalSecret"))
        .expect("a ```yaml block with the SecretStore and the ExternalSecret in the README's consumer section");
    for placeholder in [README_SERVER, README_NAMESPACE, README_REFRESH, README_ROLE] {
        assert!(
            block.contains(placeholder),
            "the README's manifests no longer contain {placeholder:?}: update tests/operator/consumer.rs with them"
        );
    }
    block.to_string()
}

/// One test's namespaces, ServiceAccounts, lockbox and consumer kubeconfig;
/// the Kubernetes objects are deleted on drop.
struct World {
    prefix: String,
    /// The application namespace: ServiceAccounts `app` (bound by the role)
    /// and `consumer` (runs the consumer), the target Secret.
    ns: String,
    /// The token reviewer's namespace.
    auth_ns: String,
    lockbox: DevServer,
    /// kubeconfig of ServiceAccount `consumer`.
    kubeconfig: PathBuf,
    /// lockbox's file audit device.
    audit: PathBuf,
    work: tempfile::TempDir,
    /// One scenario at a time ([`exclusive`]); dropped last.
    _exclusive: std::sync::MutexGuard<'static, ()>,
}

impl World {
    fn start(prefix: &str) -> World {
        let guard = exclusive();
        let c = cluster();
        let (ns, auth_ns) = (format!("{prefix}-app"), format!("{prefix}-auth"));
        c.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {auth_ns}\n---\n\
             apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: {ns}\n---\n\
             apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: consumer\n  namespace: {ns}\n---\n\
             apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reviewer\n  namespace: {auth_ns}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {prefix}-reviewer\n\
             roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:auth-delegator\n\
             subjects:\n- kind: ServiceAccount\n  name: reviewer\n  namespace: {auth_ns}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: consumer\n  namespace: {ns}\n\
             rules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get, create, update]\n\
             - apiGroups: [\"\"]\n  resources: [serviceaccounts/token]\n  resourceNames: [app]\n  verbs: [create]\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: consumer\n  namespace: {ns}\n\
             roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: consumer\n\
             subjects:\n- kind: ServiceAccount\n  name: consumer\n  namespace: {ns}\n"
        ));
        // RBAC reaches the authorizer through a watch: wait until it does.
        for (user, args) in [
            (
                format!("system:serviceaccount:{auth_ns}:reviewer"),
                vec!["create", "tokenreviews.authentication.k8s.io"],
            ),
            (
                format!("system:serviceaccount:{ns}:consumer"),
                vec![
                    "create",
                    "serviceaccounts/app",
                    "--subresource=token",
                    "-n",
                    ns.as_str(),
                ],
            ),
        ] {
            let as_user = format!("--as={user}");
            eventually(&format!("RBAC for {user}"), Duration::from_secs(30), || {
                let mut a = vec!["auth", "can-i"];
                a.extend_from_slice(&args);
                a.push(&as_user);
                (c.kubectl(&a).1.trim() == "yes").then_some(())
            });
        }

        let work = tempfile::Builder::new()
            .prefix(&format!("lockbox-consumer-{prefix}-"))
            .tempdir()
            .expect("tempdir");
        // The upstream kv plugin makes the dev server's `secret/` kv
        // version 2; the Kubernetes auth plugin is registered as
        // `kubernetes` (dev mode registers every plugin of the directory).
        let plugin_dir = work.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
        for p in ["vault-plugin-secrets-kv", "vault-plugin-auth-kubernetes"] {
            std::fs::copy(go_plugins().join(p), plugin_dir.join(p))
                .unwrap_or_else(|e| panic!("copy {p}: {e}"));
        }
        let lockbox = DevServer::start(&plugin_dir, work.path());
        let audit = work.path().join("audit.log");
        lockbox.root_ok(
            "PUT",
            "sys/audit/file",
            json!({"type": "file", "options": {"file_path": audit.to_string_lossy()}}),
        );
        let mounts = lockbox.call("GET", "sys/mounts", "root", None);
        assert_eq!(
            mounts.body["data"]["secret/"]["options"]["version"], "2",
            "the dev server's secret/ is not kv version 2: {}",
            mounts.body
        );

        let (api_url, ca) = api_server(c.dir.as_path());
        lockbox.root_ok("POST", "sys/auth/kubernetes", json!({"type": "kubernetes"}));
        let reviewer = c
            .must(&[
                "create",
                "token",
                "reviewer",
                "-n",
                &auth_ns,
                "--duration=1h",
            ])
            .trim()
            .to_string();
        lockbox.root_ok(
            "POST",
            "auth/kubernetes/config",
            json!({
                "kubernetes_host": api_url,
                "kubernetes_ca_cert": std::fs::read_to_string(&ca).expect("the API server's certificate"),
                "token_reviewer_jwt": reviewer,
                "disable_local_ca_jwt": true,
            }),
        );
        lockbox.root_ok(
            "PUT",
            "sys/policies/acl/app-db",
            json!({"policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }"}),
        );
        // `app` binds the ServiceAccount; `elsewhere` binds a name that is
        // not it.
        for (role, sa) in [("app", "app"), ("elsewhere", "someone-else")] {
            lockbox.root_ok(
                "POST",
                &format!("auth/kubernetes/role/{role}"),
                json!({
                    "bound_service_account_names": [sa],
                    "bound_service_account_namespaces": [ns],
                    "token_policies": ["app-db"],
                    "token_ttl": "10m",
                    "audience": AUDIENCE,
                }),
            );
        }

        let token = c
            .must(&["create", "token", "consumer", "-n", &ns, "--duration=1h"])
            .trim()
            .to_string();
        let kubeconfig = work.path().join("kubeconfig-consumer");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {api_url}\n    certificate-authority: {}\n\
                 users:\n- name: consumer\n  user:\n    token: {token}\n\
                 contexts:\n- name: test\n  context:\n    cluster: test\n    user: consumer\ncurrent-context: test\n",
                ca.display()
            ),
        )
        .expect("write the consumer's kubeconfig");
        World {
            prefix: prefix.to_string(),
            ns,
            auth_ns,
            lockbox,
            kubeconfig,
            audit,
            work,
            _exclusive: guard,
        }
    }

    /// Writes a new version of `secret/app/db` (kv version 2).
    fn write_db(&self, username: &str, password: &str) {
        self.lockbox.root_ok(
            "PUT",
            "secret/data/app/db",
            json!({"data": {"username": username, "password": password}}),
        );
    }

    /// The README's manifests for this test: its namespace, its lockbox,
    /// `role`, a short refresh interval, and a `data` entry pinned to
    /// version 1 of the secret.
    fn manifests(&self, role: &str) -> PathBuf {
        let yaml = readme_manifests()
            .replace(README_SERVER, &self.lockbox.addr)
            .replace(README_REFRESH, &format!("refreshInterval: {REFRESH_SECS}s"))
            .replace(
                &format!("namespace: {README_NAMESPACE}"),
                &format!("namespace: {}", self.ns),
            )
            .replace(README_ROLE, &format!("role: {role}"));
        // One more entry, pinned to the first version (`data` is the
        // ExternalSecret's last field in the README).
        let yaml = format!(
            "{}\n  - secretKey: password-first\n    remoteRef:\n      key: app/db\n      property: password\n      version: \"1\"\n",
            yaml.trim_end()
        );
        let path = self.work.path().join(format!("manifests-{role}.yaml"));
        std::fs::write(&path, yaml).expect("write the manifests");
        path
    }

    fn command(&self, manifests: &Path) -> Command {
        let mut cmd = Command::new(go_plugins().join("consumer"));
        cmd.arg("-f")
            .arg(manifests)
            .arg("-kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("KUBECONFIG")
            .env_remove("VAULT_TOKEN")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null());
        cmd
    }

    /// The target Secret's data (decoded), or None when it does not exist.
    fn secret(&self) -> Option<Value> {
        let (ok, out, err) = cluster().kubectl(&[
            "get",
            "secret",
            "db-credentials",
            "-n",
            &self.ns,
            "-o",
            "json",
        ]);
        if !ok {
            assert!(err.contains("NotFound"), "kubectl get secret: {err}");
            return None;
        }
        let s: Value = serde_json::from_str(&out).expect("kubectl's JSON");
        let mut data = serde_json::Map::new();
        for (k, v) in s["data"].as_object().cloned().unwrap_or_default() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .expect("base64 Secret data");
            data.insert(k, json!(String::from_utf8_lossy(&bytes)));
        }
        Some(json!({
            "data": data,
            "labels": s["metadata"]["labels"],
            "resourceVersion": s["metadata"]["resourceVersion"],
        }))
    }

    /// The operations and paths of the requests lockbox audited, in order,
    /// without the test's own (root token) calls.
    fn audited(&self) -> Vec<String> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "request")
            // The test's own calls with the root token are not the consumer's.
            .filter(|e| {
                e["auth"]["policies"]
                    .as_array()
                    .is_none_or(|p| !p.iter().any(|p| p == "root"))
            })
            .map(|e| {
                format!(
                    "{} {}",
                    e["request"]["operation"].as_str().unwrap_or("?"),
                    e["request"]["path"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let c = cluster();
        for ns in [&self.ns, &self.auth_ns] {
            let _ = c.kubectl(&[
                "delete",
                "namespace",
                ns,
                "--wait=false",
                "--ignore-not-found",
            ]);
        }
        let _ = c.kubectl(&[
            "delete",
            "clusterrolebinding",
            &format!("{}-reviewer", self.prefix),
            "--ignore-not-found",
        ]);
    }
}

/// `KUBE_APISERVER_URL` from kube-up.sh's env file, and the serving
/// certificate (its own CA).
fn api_server(dir: &Path) -> (String, PathBuf) {
    let env = std::fs::read_to_string(dir.join("env")).expect("kube-up.sh's env file");
    let url = env
        .lines()
        .find_map(|l| l.strip_prefix("export KUBE_APISERVER_URL="))
        .map(|v| v.trim_matches('\'').to_string())
        .expect("KUBE_APISERVER_URL in kube-up.sh's env file");
    (url, dir.join("certs/apiserver.crt"))
}

/// The consumer running in the background; killed on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Number of finished syncs with `action` in the log.
    fn count(&self, action: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" synced ") && l.contains(&format!(": {action} (keys:")))
            .count()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The consumer syncs `secret/app/db` (kv version 2) into Secret
/// `db-credentials` with the README's manifests, follows a change within a
/// few refresh intervals, leaves an unchanged Secret alone, makes ESO's
/// Vault calls (login, read, lookup-self, revoke-self) and logs no value.
#[test]
fn the_consumer_syncs_a_kv_v2_secret_and_follows_changes() {
    let w = World::start("consumer-sync");
    w.write_db("app", "s3cret-one");
    let manifests = w.manifests("app");
    let log = w.work.path().join("consumer.log");
    let child = w
        .command(&manifests)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("consumer log"))
        .spawn()
        .expect("start the consumer");
    let run = Running { child, log };

    let first = eventually("the Secret to be created", Duration::from_secs(30), || {
        w.secret()
    });
    assert_eq!(
        first["data"],
        json!({"username": "app", "password": "s3cret-one", "password-first": "s3cret-one"}),
        "consumer log:\n{}",
        run.log()
    );
    assert_eq!(
        first["labels"],
        json!({
            "app.kubernetes.io/managed-by": "lockbox-consumer",
            "consumer.lockbox.test/external-secret": "db",
        })
    );
    eventually(
        "the consumer to log the creation",
        Duration::from_secs(10),
        || (run.count("created") == 1).then_some(()),
    );

    // A new version in lockbox reaches the Secret within a few refresh
    // intervals; the entry pinned to version 1 keeps its value.
    w.write_db("app", "s3cret-two");
    let updated = eventually(
        "the Secret to follow the new version",
        Duration::from_secs(FEW_INTERVALS * REFRESH_SECS),
        || w.secret().filter(|s| s["data"]["password"] == "s3cret-two"),
    );
    assert_eq!(
        updated["data"],
        json!({"username": "app", "password": "s3cret-two", "password-first": "s3cret-one"})
    );
    eventually(
        "the consumer to log the update",
        Duration::from_secs(10),
        || (run.count("updated") == 1).then_some(()),
    );

    // Unchanged data: syncs go on, the Secret is not written.
    let unchanged = run.count("unchanged");
    eventually(
        "two more syncs",
        Duration::from_secs(FEW_INTERVALS * REFRESH_SECS),
        || (run.count("unchanged") >= unchanged + 2).then_some(()),
    );
    let again = w.secret().expect("the Secret");
    assert_eq!(again["resourceVersion"], updated["resourceVersion"]);
    assert_eq!(run.count("updated"), 1, "{}", run.log());
    assert_eq!(run.count("created"), 1, "{}", run.log());

    // ESO's Vault provider calls, in order, for every sync: the login, the
    // kv version 2 reads (one per key and version), then lookup-self and
    // revoke-self of the token.
    let calls = w.audited();
    let syncs: Vec<&[String]> = calls
        .split(|c| c == "update auth/kubernetes/login")
        .skip(1)
        .collect();
    assert!(syncs.len() >= 4, "audited calls: {calls:#?}");
    for sync in &syncs[..syncs.len() - 1] {
        let sync: Vec<&str> = sync.iter().map(String::as_str).collect();
        assert_eq!(
            sync,
            [
                "read secret/data/app/db",
                "read secret/data/app/db",
                "read auth/token/lookup-self",
                "update auth/token/revoke-self",
            ],
            "audited calls: {calls:#?}"
        );
    }

    let log = run.log();
    assert!(
        log.contains(&format!(
            "logged in at auth/kubernetes/login as role \"app\" with ServiceAccount {}/app",
            w.ns
        )),
        "{log}"
    );
    for value in ["s3cret-one", "s3cret-two"] {
        assert!(!log.contains(value), "a secret value in the log:\n{log}");
    }
}

/// A role that does not bind the ServiceAccount: the consumer names the
/// refused login with lockbox's reason, exits 1 and writes no Secret. A
/// manifest this consumer cannot honour exits 2 naming the field.
#[test]
fn a_role_that_does_not_bind_the_service_account_is_refused() {
    let w = World::start("consumer-refused");
    w.write_db("app", "s3cret-refused");
    let out = w
        .command(&w.manifests("elsewhere"))
        .arg("-once")
        .output()
        .expect("run the consumer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "login refused: PUT {}/v1/auth/kubernetes/login as role \"elsewhere\" with ServiceAccount {}/app: HTTP 403: service account name not authorized",
        w.lockbox.addr, w.ns
    );
    assert!(
        stderr.contains(&expected),
        "want {expected:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("s3cret-refused"), "{stderr}");
    assert_eq!(w.secret(), None, "a Secret was written");
    // Nothing was read.
    let calls = w.audited();
    assert!(
        calls.iter().all(|c| !c.contains("secret/")),
        "audited calls: {calls:#?}"
    );

    // Running on, the consumer reports the refusal at every interval and
    // still writes nothing.
    let log = w.work.path().join("consumer-refused.log");
    let child = w
        .command(&w.manifests("elsewhere"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("consumer log"))
        .spawn()
        .expect("start the consumer");
    let mut run = Running { child, log };
    eventually(
        "two refused syncs",
        Duration::from_secs(FEW_INTERVALS * REFRESH_SECS),
        || (run.log().matches(&expected).count() >= 2).then_some(()),
    );
    assert!(
        run.child
            .try_wait()
            .expect("the consumer's status")
            .is_none(),
        "the consumer stopped: {}",
        run.log()
    );
    drop(run);
    assert_eq!(w.secret(), None, "a Secret was written");

    // The same manifests with the binding role succeed once.
    let out = w
        .command(&w.manifests("app"))
        .arg("-once")
        .output()
        .expect("run the consumer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        w.secret().expect("the Secret")["data"]["password"],
        "s3cret-refused"
    );

    // kv version 1 is not what this consumer (nor this README) speaks.
    let v1 = w.work.path().join("manifests-v1.yaml");
    let yaml = std::fs::read_to_string(w.manifests("app")).expect("manifests");
    std::fs::write(&v1, yaml.replace("version: v2", "version: v1")).expect("write");
    let out = w
        .command(&v1)
        .arg("-once")
        .output()
        .expect("run the consumer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("spec.provider.vault.version \"v1\": this consumer reads kv version 2 only"),
        "{stderr}"
    );
}

/// Without `serviceAccountRef` the consumer logs in with the pod's own
/// token file, as ESO does (`-token-file` stands in for
/// `/var/run/secrets/kubernetes.io/serviceaccount/token`).
#[test]
fn without_a_service_account_ref_the_token_file_logs_in() {
    let w = World::start("consumer-file");
    w.write_db("app", "s3cret-file");
    let manifests = w.manifests("app");
    let yaml = std::fs::read_to_string(&manifests).expect("manifests");
    let without = yaml.replace(
        "          serviceAccountRef:\n            name: app\n            audiences: [lockbox]\n",
        "",
    );
    assert_ne!(
        without, yaml,
        "the README's serviceAccountRef lines changed"
    );
    std::fs::write(&manifests, without).expect("write the manifests");
    let token_file = w.work.path().join("token");
    let token = cluster().must(&[
        "create",
        "token",
        "app",
        "-n",
        &w.ns,
        "--audience",
        AUDIENCE,
        "--duration=10m",
    ]);
    std::fs::write(&token_file, token.trim()).expect("write the token file");
    let out = w
        .command(&manifests)
        .arg("-once")
        .arg("-token-file")
        .arg(&token_file)
        .output()
        .expect("run the consumer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "logged in at auth/kubernetes/login as role \"app\" with the token of {}",
            token_file.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        w.secret().expect("the Secret")["data"]["password"],
        "s3cret-file"
    );

    // A missing token file is named.
    let out = w
        .command(&manifests)
        .arg("-once")
        .arg("-token-file")
        .arg(w.work.path().join("absent"))
        .output()
        .expect("run the consumer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no serviceAccountRef, and the pod's token file cannot be read"),
        "{stderr}"
    );
}
