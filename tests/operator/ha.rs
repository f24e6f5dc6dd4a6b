//! HA operator mode on a real PostgreSQL (`tests/harness/pg-up.sh`): three
//! `lockbox operator run --storage=postgresql --ha` processes play the pods
//! `lockbox-ha-0..2` of the chart's StatefulSet (Pod objects in the API
//! server, the processes local), bound to the chart's HA Role (rendered by
//! helm with `ha.enabled`). They start at once: exactly one initializes,
//! the others wait for the unseal-key Secret and unseal as standbys; the
//! active one labels its Pod `lockbox.dev/active=true` and alone runs the
//! controllers; after `kill -9` of its process the label moves to a new
//! active within seconds, and the restarted process labels itself `false`.

use crate::harness::{Operator, Scenario, cluster, curl, eventually};
use crate::postgres::{Postgres, initdb_installed};
use std::process::Command;
use std::time::Duration;

const PODS: usize = 3;
const PASSWORD: &str = "ha-operator-pw";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The chart's Role with `ha.enabled` (release `lockbox-ha`), applied into
/// `ns` and bound to the operator's test user.
fn bind_ha_role(ns: &str) {
    let c = cluster();
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(c.bin.join("helm"))
        .args([
            "template",
            "lockbox-ha",
            "charts/lockbox",
            "-n",
            ns,
            "--show-only",
            "templates/rbac.yaml",
            "--set",
            "ha.enabled=true",
            "--set",
            "ha.postgresql.existingSecret=db",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env("KUBECONFIG", home.path().join("none"))
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let role = text
        .split("\n---")
        .find(|d| d.contains("\nkind: Role\n"))
        .expect("the chart's Role");
    assert!(role.contains("\"lockbox-ha-2\""), "{role}");
    c.apply(role);
    c.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: lockbox-ha\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: lockbox-ha\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: lockbox-operator-test\n"
    ));
}

/// The `lockbox.dev/active` label of each pod ("" when unset).
fn labels(ns: &str) -> Vec<String> {
    (0..PODS)
        .map(|i| {
            cluster().get(
                &["pod", &format!("lockbox-ha-{i}"), "-n", ns],
                "{.metadata.labels.lockbox\\.dev/active}",
            )
        })
        .collect()
}

/// The one pod labelled active, once the others say "false".
fn one_active(ns: &str, not: Option<usize>) -> usize {
    eventually(
        "exactly one pod labelled lockbox.dev/active=true",
        Duration::from_secs(60),
        || {
            let l = labels(ns);
            // `not`: a killed pod, whose label nobody takes off.
            let active: Vec<usize> = (0..PODS)
                .filter(|i| l[*i] == "true" && Some(*i) != not)
                .collect();
            let others_false = (0..PODS)
                .filter(|i| Some(*i) != not && !active.contains(i))
                .all(|i| l[i] == "false");
            match active.as_slice() {
                [a] if others_false => Some(*a),
                _ => None,
            }
        },
    )
}

fn leader_metric(op: &Operator) -> Option<bool> {
    let m = curl(&format!("{}/metrics", op.health))?;
    // The gauge's line (its HELP text starts the same way).
    Some(m.lines().any(|l| l.trim() == "lockbox_operator_leader 1"))
}

#[test]
fn ha_pods_start_together_and_the_active_label_moves_on_failover() {
    assert!(
        initdb_installed(),
        "PostgreSQL is not installed (apt-get install postgresql; tests/run.sh does)"
    );
    let pg = Postgres::start();
    pg.admin(&format!("CREATE ROLE lockbox LOGIN PASSWORD '{PASSWORD}'"));
    pg.admin("CREATE DATABASE lockbox OWNER lockbox");
    let url = format!(
        "postgresql://lockbox:{PASSWORD}@127.0.0.1:{}/lockbox?sslmode=disable",
        pg.port
    );
    let s = Scenario::start("ha", &[], &[]);
    let c = cluster();
    bind_ha_role(&s.op_ns);
    c.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: {}\n",
        s.op_ns
    ));
    for i in 0..PODS {
        c.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lockbox-ha-{i}\n  namespace: {}\n  labels:\n    lockbox-test: ha\nspec:\n  automountServiceAccountToken: false\n  containers:\n  - name: lockbox\n    image: lockbox\n",
            s.op_ns
        ));
    }
    let ports: Vec<(u16, u16)> = (0..PODS).map(|_| (free_port(), free_port())).collect();
    let start = |i: usize| -> Operator {
        let (api, cl) = ports[i];
        let pod = format!("lockbox-ha-{i}");
        let api_address = format!("--api-address=127.0.0.1:{api}");
        let cluster_address = format!("--cluster-address=127.0.0.1:{cl}");
        let api_addr = format!("http://127.0.0.1:{api}");
        let cluster_addr = format!("https://127.0.0.1:{cl}");
        s.operator_process(
            &[
                "--storage=postgresql",
                "--ha",
                &api_address,
                &cluster_address,
            ],
            &[
                ("POD_NAME", pod.as_str()),
                ("LOCKBOX_PG_CONNECTION_URL", url.as_str()),
                ("LOCKBOX_API_ADDR", api_addr.as_str()),
                ("LOCKBOX_CLUSTER_ADDR", cluster_addr.as_str()),
            ],
        )
    };
    // All three at once, as the chart's Parallel pod management starts them.
    let mut ops: Vec<Option<Operator>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PODS).map(|i| scope.spawn(move || start(i))).collect();
        handles
            .into_iter()
            .map(|h| Some(h.join().expect("operator started")))
            .collect()
    });
    let logs = s.logs();
    assert_eq!(
        logs.matches("initialized lockbox; unseal key").count(),
        1,
        "exactly one replica initializes:\n{logs}"
    );
    let first = one_active(&s.op_ns, None);
    // Every replica is ready (unsealed: standby or active); only the active
    // one runs the controllers.
    for (i, op) in ops.iter().enumerate() {
        let op = op.as_ref().expect("running");
        eventually("ready", Duration::from_secs(30), || {
            curl(&format!("{}/readyz", op.health)).filter(|r| r.contains("ok"))
        });
        let want = i == first;
        eventually("the leader metric", Duration::from_secs(30), || {
            (leader_metric(op) == Some(want)).then_some(())
        });
    }

    // One meaning of leadership: no Lease in HA mode.
    assert_eq!(
        c.get(&["leases", "-n", &s.op_ns], "{.items[*].metadata.name}"),
        "",
        "HA replicas use no Lease"
    );

    // kill -9 of the active: a standby takes over and labels itself.
    ops[first].as_mut().expect("running").kill();
    let second = one_active(&s.op_ns, Some(first));
    assert_ne!(first, second);
    eventually(
        "the new active runs the controllers",
        Duration::from_secs(30),
        || (leader_metric(ops[second].as_ref().expect("running")) == Some(true)).then_some(()),
    );
    // The killed pod still says "true" (nobody unlabels a dead process;
    // its failing readiness keeps it out of the Service) until its process
    // restarts, which labels it "false" at once.
    ops[first] = Some(start(first));
    eventually(
        "the restarted pod says false",
        Duration::from_secs(30),
        || (labels(&s.op_ns)[first] == "false").then_some(()),
    );
    assert_eq!(one_active(&s.op_ns, None), second);

    // SIGTERM of the active: it seals and takes its label off on the way out.
    if let Some(op) = ops[second].take() {
        op.stop();
    }
    eventually(
        "the stopped active says false",
        Duration::from_secs(30),
        || (labels(&s.op_ns)[second] == "false").then_some(()),
    );
    let third = one_active(&s.op_ns, Some(second));
    assert_ne!(third, second);
    drop(ops);
    c.must(&[
        "delete",
        "pods",
        "-l",
        "lockbox-test=ha",
        "-n",
        &s.op_ns,
        "--wait=false",
    ]);
}
