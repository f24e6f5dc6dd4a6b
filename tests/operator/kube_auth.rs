//! Kubernetes auth: the upstream Vault plugin
//! (`github.com/hashicorp/vault-plugin-auth-kubernetes` v0.23.1, built
//! unmodified by `tests/harness/install-go-plugins.sh`) runs under the real
//! `lockbox server -dev` and logs ServiceAccounts in against the real test
//! kube-apiserver: the plugin reaches the API server's TokenReview API over
//! loopback TCP from inside lockbox's plugin sandbox, with the CA given in
//! its config (`disable_local_ca_jwt`: no files).
//!
//! Per test: its own namespaces (`<prefix>-apps`, `<prefix>-other`,
//! `<prefix>-auth`), ServiceAccounts, a reviewer ServiceAccount bound to
//! `system:auth-delegator`, tokens from the TokenRequest API (`kubectl
//! create token`), and its own lockbox with the plugin registered by sha256
//! as `auth/kubernetes` and mounted at `auth/kubernetes/`. The role `app`
//! binds ServiceAccount `app` of `<prefix>-apps`, audience `lockbox`,
//! policy `app-read` (read `secret/app/*`), TTL 1h.

mod jwt;
mod server;

use crate::harness::{Cluster, cluster, exclusive, go_plugins};
use jwt::Jwt;
use serde_json::json;
use server::{DevServer, Resp};
use std::path::PathBuf;

/// The audience the role demands and the app tokens are requested with.
const AUDIENCE: &str = "lockbox";
/// The upstream plugin's binary in `install-go-plugins.sh`'s output.
const PLUGIN_BINARY: &str = "vault-plugin-auth-kubernetes";

/// The API server as a client outside the cluster sees it.
struct ApiServer {
    /// `https://127.0.0.1:PORT`.
    url: String,
    /// PEM of the self-signed serving certificate (its own CA).
    ca_pem: String,
    /// The ServiceAccount signing key (`--service-account-signing-key-file`).
    sa_key: PathBuf,
}

impl ApiServer {
    fn of(c: &Cluster) -> ApiServer {
        let env = std::fs::read_to_string(c.dir.join("env")).expect("kube-up.sh's env file");
        let url = env
            .lines()
            .find_map(|l| l.strip_prefix("export KUBE_APISERVER_URL="))
            .map(|v| v.trim_matches('\'').to_string())
            .expect("KUBE_APISERVER_URL in kube-up.sh's env file");
        let ca = c.dir.join("certs/apiserver.crt");
        ApiServer {
            url,
            ca_pem: std::fs::read_to_string(&ca)
                .unwrap_or_else(|e| panic!("read {}: {e}", ca.display())),
            sa_key: c.dir.join("sa.key"),
        }
    }
}

/// One test's Kubernetes objects and lockbox; the objects are deleted on
/// drop.
struct World {
    prefix: String,
    /// Namespace of the bound ServiceAccount `app` (and of `intruder`).
    apps: String,
    /// Another namespace with a ServiceAccount also named `app`.
    other: String,
    /// Namespace of the reviewer ServiceAccounts.
    auth_ns: String,
    api: ApiServer,
    lockbox: DevServer,
    _work: tempfile::TempDir,
    /// One scenario at a time ([`exclusive`]); dropped last.
    _exclusive: std::sync::MutexGuard<'static, ()>,
}

impl World {
    /// Creates the namespaces, ServiceAccounts and the reviewer binding,
    /// starts lockbox with the plugin, mounts it, writes its config (with a
    /// fresh reviewer token), the role, the policy and two kv secrets.
    fn start(prefix: &str) -> World {
        let guard = exclusive();
        let c = cluster();
        let (apps, other, auth_ns) = (
            format!("{prefix}-apps"),
            format!("{prefix}-other"),
            format!("{prefix}-auth"),
        );
        let mut yaml = String::new();
        for ns in [&apps, &other, &auth_ns] {
            yaml.push_str(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n"
            ));
        }
        for (ns, sa) in [
            (&apps, "app"),
            (&apps, "intruder"),
            (&other, "app"),
            (&auth_ns, "reviewer"),
        ] {
            yaml.push_str(&format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {sa}\n  namespace: {ns}\n---\n"
            ));
        }
        c.apply(&yaml);
        let world_api = ApiServer::of(c);
        let work = tempfile::Builder::new()
            .prefix(&format!("lockbox-kube-auth-{prefix}-"))
            .tempdir()
            .expect("tempdir");
        let plugin_dir = work.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
        let binary = plugin_dir.join(PLUGIN_BINARY);
        std::fs::copy(go_plugins().join(PLUGIN_BINARY), &binary).expect("copy the plugin");
        let sha = crate::harness::sha256_file(&binary);
        let lockbox = DevServer::start(&plugin_dir, work.path());
        let w = World {
            prefix: prefix.to_string(),
            apps,
            other,
            auth_ns,
            api: world_api,
            lockbox,
            _work: work,
            _exclusive: guard,
        };
        w.bind_reviewer("reviewer");

        // Vault's way: register by sha256, enable by plugin name.
        let lb = &w.lockbox;
        lb.root_ok(
            "PUT",
            "sys/plugins/catalog/auth/kubernetes",
            json!({"sha256": sha, "command": PLUGIN_BINARY}),
        );
        lb.root_ok(
            "POST",
            "sys/auth/kubernetes",
            json!({"type": "kubernetes", "description": "upstream Kubernetes auth"}),
        );
        let reviewer = w.token(&w.auth_ns, "reviewer", None);
        w.write_config(&reviewer);
        lb.root_ok(
            "POST",
            "auth/kubernetes/role/app",
            json!({
                "bound_service_account_names": ["app"],
                "bound_service_account_namespaces": [w.apps],
                "token_policies": ["app-read"],
                "token_ttl": "1h",
                "audience": AUDIENCE,
            }),
        );
        lb.root_ok(
            "PUT",
            "sys/policies/acl/app-read",
            json!({"policy": "path \"secret/app/*\" { capabilities = [\"read\"] }"}),
        );
        lb.root_ok("PUT", "secret/app/config", json!({"db": "app-db"}));
        lb.root_ok("PUT", "secret/other/config", json!({"db": "other-db"}));
        w
    }

    /// Binds ServiceAccount `sa` of the auth namespace to
    /// `system:auth-delegator` (what a token reviewer needs).
    fn bind_reviewer(&self, sa: &str) {
        cluster().apply(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {}-{sa}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:auth-delegator\nsubjects:\n- kind: ServiceAccount\n  name: {sa}\n  namespace: {}\n",
            self.prefix, self.auth_ns
        ));
        // RBAC reaches the authorizer through a watch: wait until it does.
        let user = format!("--as=system:serviceaccount:{}:{sa}", self.auth_ns);
        crate::harness::eventually(
            "the reviewer's ClusterRoleBinding to take effect",
            std::time::Duration::from_secs(30),
            || {
                let (_, out, _) = cluster().kubectl(&[
                    "auth",
                    "can-i",
                    "create",
                    "tokenreviews.authentication.k8s.io",
                    &user,
                ]);
                (out.trim() == "yes").then_some(())
            },
        );
    }

    /// A token of `ns/sa` from the TokenRequest API
    /// (`POST /api/v1/namespaces/NS/serviceaccounts/SA/token`), for
    /// `audience` or the API server's own.
    fn token(&self, ns: &str, sa: &str, audience: Option<&str>) -> String {
        let mut args = vec!["create", "token", sa, "-n", ns, "--duration=1h"];
        let aud = audience.map(|a| format!("--audience={a}"));
        if let Some(a) = &aud {
            args.push(a);
        }
        cluster().must(&args).trim().to_string()
    }

    /// A token of the bound ServiceAccount for the role's audience.
    fn app_token(&self) -> String {
        self.token(&self.apps, "app", Some(AUDIENCE))
    }

    /// `auth/kubernetes/config`, written whole, as an operator does.
    fn write_config(&self, reviewer_jwt: &str) {
        self.lockbox.root_ok(
            "POST",
            "auth/kubernetes/config",
            json!({
                "kubernetes_host": self.api.url,
                "kubernetes_ca_cert": self.api.ca_pem,
                "token_reviewer_jwt": reviewer_jwt,
                "disable_local_ca_jwt": true,
            }),
        );
    }

    fn login(&self, jwt: &str) -> Resp {
        self.lockbox.call(
            "PUT",
            "auth/kubernetes/login",
            "",
            Some(&json!({"role": "app", "jwt": jwt})),
        )
    }

    /// Logs in with `jwt`, which must succeed; returns the lockbox token.
    fn login_ok(&self, jwt: &str) -> String {
        let r = self.login(jwt);
        assert_eq!(
            r.status,
            200,
            "login refused: {}\n--- server log\n{}",
            r.body,
            self.lockbox.log()
        );
        r.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no client_token in {}", r.body))
            .to_string()
    }

    /// [`World::refused`] once the API server has caught up with a change
    /// (its ServiceAccount lookups go through a watch cache): retries while
    /// the login still succeeds.
    fn refused_eventually(&self, what: &str, jwt: &str, status: u16, message: &str) {
        crate::harness::eventually(what, std::time::Duration::from_secs(30), || {
            (self.login(jwt).status != 200).then_some(())
        });
        self.refused(what, jwt, status, message);
    }

    /// Logs in with `jwt`, which must be refused with `status` and exactly
    /// Vault's error `message`; no token is issued.
    fn refused(&self, what: &str, jwt: &str, status: u16, message: &str) {
        let r = self.login(jwt);
        assert_eq!(
            (r.status, &r.body["errors"]),
            (status, &json!([message])),
            "{what}: {}\n--- server log\n{}",
            r.body,
            self.lockbox.log()
        );
        assert!(
            r.body["auth"].is_null(),
            "{what}: a token was issued: {}",
            r.body
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let c = cluster();
        for ns in [&self.apps, &self.other, &self.auth_ns] {
            let _ = c.kubectl(&[
                "delete",
                "namespace",
                ns,
                "--wait=false",
                "--ignore-not-found",
            ]);
        }
        let (_, names, _) = c.kubectl(&["get", "clusterrolebindings", "-o", "name"]);
        for name in names.lines().filter(|n| {
            n.starts_with(&format!(
                "clusterrolebinding.rbac.authorization.k8s.io/{}-",
                self.prefix
            ))
        }) {
            let _ = c.kubectl(&["delete", name, "--ignore-not-found"]);
        }
    }
}

/// The bound ServiceAccount's token logs in; the lockbox token carries the
/// role's policies, TTL and the ServiceAccount in its metadata, and reads
/// exactly what `app-read` allows.
#[test]
fn a_bound_service_account_logs_in_and_reads_exactly_its_policy() {
    let w = World::start("ka-login");
    let login = w.login(&w.app_token());
    assert_eq!(login.status, 200, "{}\n{}", login.body, w.lockbox.log());
    let auth = &login.body["auth"];
    assert_eq!(auth["policies"], json!(["app-read", "default"]), "{auth}");
    assert_eq!(
        auth["token_policies"],
        json!(["app-read", "default"]),
        "{auth}"
    );
    assert_eq!(auth["lease_duration"], 3600, "{auth}");
    assert_eq!(auth["renewable"], true, "{auth}");
    assert_eq!(auth["metadata"]["role"], "app", "{auth}");
    assert_eq!(auth["metadata"]["service_account_name"], "app", "{auth}");
    assert_eq!(
        auth["metadata"]["service_account_namespace"], w.apps,
        "{auth}"
    );
    let uid = cluster().must(&[
        "get",
        "serviceaccount",
        "app",
        "-n",
        &w.apps,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    assert_eq!(
        auth["metadata"]["service_account_uid"],
        uid.trim(),
        "{auth}"
    );
    let token = auth["client_token"].as_str().expect("client_token");

    let me = w.lockbox.call("GET", "auth/token/lookup-self", token, None);
    assert_eq!(me.status, 200, "{}", me.body);
    let d = &me.body["data"];
    assert_eq!(d["policies"], json!(["app-read", "default"]), "{d}");
    assert_eq!(d["path"], "auth/kubernetes/login", "{d}");
    assert_eq!(d["creation_ttl"], 3600, "{d}");
    let ttl = d["ttl"].as_u64().unwrap_or(0);
    assert!((3500..=3600).contains(&ttl), "ttl {ttl}: {d}");
    assert_eq!(d["meta"]["service_account_name"], "app", "{d}");

    // Exactly what the policy allows.
    let r = w.lockbox.call("GET", "secret/app/config", token, None);
    assert_eq!(
        (r.status, &r.body["data"]["db"]),
        (200, &json!("app-db")),
        "{}",
        r.body
    );
    for (method, path, body) in [
        ("GET", "secret/other/config", None),
        ("PUT", "secret/app/config", Some(json!({"db": "changed"}))),
        ("GET", "sys/policies/acl/app-read", None),
        ("GET", "auth/kubernetes/config", None),
    ] {
        let r = w.lockbox.call(method, path, token, body.as_ref());
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(
            r.body["errors"],
            json!(["permission denied"]),
            "{method} {path}"
        );
    }
    let r = w.lockbox.call("GET", "secret/app/config", "root", None);
    assert_eq!(
        r.body["data"]["db"], "app-db",
        "the refused write changed the secret"
    );
}

/// Tokens the role does not bind are refused with the upstream plugin's
/// status and message, and TokenReview is really consulted (a forged or
/// revoked token that passes the plugin's own claim checks is refused by
/// the API server).
#[test]
fn tokens_the_role_does_not_bind_are_refused_with_vaults_errors() {
    let w = World::start("ka-refuse");
    let good = w.app_token();
    w.login_ok(&good);

    w.refused(
        "a token of another ServiceAccount",
        &w.token(&w.apps, "intruder", Some(AUDIENCE)),
        403,
        "service account name not authorized",
    );
    w.refused(
        "a token of the same ServiceAccount name in another namespace",
        &w.token(&w.other, "app", Some(AUDIENCE)),
        403,
        "namespace not authorized",
    );
    w.refused(
        "a token for the API server's audience",
        &w.token(&w.apps, "app", None),
        403,
        "invalid audience (aud) claim: audience claim does not match any expected audience",
    );
    w.refused(
        "a token for another audience",
        &w.token(&w.apps, "app", Some("someone-else")),
        403,
        "invalid audience (aud) claim: audience claim does not match any expected audience",
    );

    // Expired: the real token's header and claims, `exp` ten minutes ago
    // (beyond any leeway), signed with the API server's own key.
    let mut expired = Jwt::parse(&good);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    expired.claims["iat"] = json!(now - 3600);
    expired.claims["nbf"] = json!(now - 3600);
    expired.claims["exp"] = json!(now - 600);
    w.refused(
        "an expired token",
        &expired.sign(&w.api.sa_key),
        403,
        "invalid expiration time (exp) claim: token is expired",
    );
    // The same claims with a valid `exp` and the key's signature pass: the
    // refusal above is the expiry alone.
    expired.claims["exp"] = json!(now + 600);
    w.login_ok(&expired.sign(&w.api.sa_key));

    for garbage in ["garbage", "a.b.c", "", "eyJhbGciOiJub25lIn0.e30."] {
        let (status, message) = if garbage.is_empty() {
            (400, "missing jwt")
        } else {
            (403, "permission denied")
        };
        w.refused(&format!("the string {garbage:?}"), garbage, status, message);
    }

    // Forged: another ServiceAccount's claims (the bound one's name) under
    // the intruder's signature. The claims pass the plugin's checks; only
    // the API server's TokenReview can refuse it.
    let mut forged = Jwt::parse(&w.token(&w.apps, "intruder", Some(AUDIENCE)));
    let real = Jwt::parse(&good);
    forged.claims["kubernetes.io"] = real.claims["kubernetes.io"].clone();
    forged.claims["sub"] = real.claims["sub"].clone();
    w.refused(
        "the bound ServiceAccount's claims under another signature",
        &forged.with_old_signature(),
        403,
        "permission denied",
    );

    // Revoked: the ServiceAccount is deleted and made again (new UID);
    // the old token is well-formed, unexpired and bound, and refused.
    cluster().must(&["delete", "serviceaccount", "app", "-n", &w.apps]);
    cluster().apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: {}\n",
        w.apps
    ));
    w.refused_eventually(
        "a token of a deleted ServiceAccount",
        &good,
        403,
        "permission denied",
    );
    w.login_ok(&w.app_token());
}

/// The reviewer token rotates (a new TokenRequest, then a new reviewer
/// ServiceAccount with the old one deleted, so the old tokens are dead);
/// after each `auth/kubernetes/config` rewrite logins keep working. A
/// reviewer without `system:auth-delegator` cannot review: the config's
/// token is the one used.
#[test]
fn rotating_the_reviewer_token_keeps_logins_working() {
    let w = World::start("ka-rotate");
    w.login_ok(&w.app_token());

    let second = w.token(&w.auth_ns, "reviewer", None);
    w.write_config(&second);
    w.login_ok(&w.app_token());

    // A reviewer that may not create TokenReviews: every login fails.
    let c = cluster();
    c.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: unbound\n  namespace: {}\n",
        w.auth_ns
    ));
    w.write_config(&w.token(&w.auth_ns, "unbound", None));
    w.refused(
        "a login reviewed with a token lacking system:auth-delegator",
        &w.app_token(),
        403,
        "permission denied",
    );

    // A new reviewer; the old one is deleted, so its tokens are dead.
    c.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reviewer-b\n  namespace: {}\n",
        w.auth_ns
    ));
    w.bind_reviewer("reviewer-b");
    w.write_config(&w.token(&w.auth_ns, "reviewer-b", None));
    c.must(&["delete", "serviceaccount", "reviewer", "-n", &w.auth_ns]);
    let token = w.login_ok(&w.app_token());
    let r = w.lockbox.call("GET", "secret/app/config", &token, None);
    assert_eq!(r.status, 200, "{}", r.body);
    // The dead reviewer token in the config would fail (what the rotation
    // protects against).
    w.write_config(&second);
    w.refused_eventually(
        "a login reviewed with a deleted reviewer's token",
        &w.app_token(),
        403,
        "permission denied",
    );
}
