#!/usr/bin/env bash
# End-to-end run on a real cluster with Docker and kind: builds the image,
# loads it into a kind cluster, installs the Helm chart as a user would
# (README "Install on Kubernetes") and runs the operator scenarios of
# tests/operator against the pod: walkthrough, digest mismatch, upgrade by
# editing the catalog entry under a read loop, pinned version, path
# conflict, Retain vs Delete, drift correction, restart with data intact.
#
# Needs: docker, kind, kubectl, helm, openssl, cargo. Our CI machines have no
# Docker engine, so CI runs the same scenarios against a kube-apiserver
# harness instead (tests/operator, tests/packaging); this script is for
# machines that have one.
#
# Usage: bash tests/e2e/kind/run.sh [--keep]   (--keep: leave the cluster up)
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=tests/e2e/kind
cluster=lockbox-e2e
image=lockbox:e2e
ns=lockbox-system
keep=${1:-}
work=$(mktemp -d)

for tool in docker kind kubectl helm openssl cargo; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done
cleanup() {
  kill "${pf_pid:-0}" 2>/dev/null || true
  [ "$keep" = --keep ] || kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { echo; echo "=== $*"; }
fail() { echo "FAIL: $*" >&2; kubectl logs -n "$ns" statefulset/lockbox --tail=50 >&2 || true; exit 1; }

step "cluster, image, plugin digests"
kind create cluster --config "$here/kind-config.yaml" --name "$cluster" --wait 120s
docker build -t "$image" .
docker build --target plugin-digests --output "type=local,dest=$work" .
kind load docker-image "$image" --name "$cluster"
cargo build --release -p lockbox
lockbox=$PWD/target/release/lockbox
sha_of() { awk -v f="$1" '$2 == f {print $1}' "$work/SHA256SUMS"; }
mock_sha=$(sha_of lockbox-plugin-mock)
[ -n "$mock_sha" ] || fail "no digest for lockbox-plugin-mock in SHA256SUMS"

step "install (README: namespace, TLS, helm install, helm test)"
kubectl create namespace "$ns"
kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=lockbox \
  -addext basicConstraints=critical,CA:FALSE \
  -addext "subjectAltName=DNS:lockbox.$ns.svc,IP:127.0.0.1" \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
kubectl create secret tls lockbox-tls -n "$ns" --cert="$work/tls.crt" --key="$work/tls.key"
kubectl apply -n "$ns" -f deploy/examples/persistentvolumeclaim-plugins.yaml
helm install lockbox charts/lockbox -n "$ns" --set image.repository=lockbox --set image.tag=e2e \
  --set image.pullPolicy=Never \
  --set plugins.volume.persistentVolumeClaim.claimName=lockbox-plugins \
  --set 'operator.allowedPathPrefixes.team-b={shared}'
kubectl rollout status statefulset/lockbox -n "$ns" --timeout=5m
helm test lockbox -n "$ns"

forward() {
  kill "${pf_pid:-0}" 2>/dev/null || true
  kubectl port-forward -n "$ns" svc/lockbox 18200:8200 >/dev/null 2>&1 &
  pf_pid=$!
  for _ in $(seq 50); do curl -sk https://127.0.0.1:18200/v1/sys/health >/dev/null && return; sleep 0.2; done
  fail "port-forward did not come up"
}
forward
export LOCKBOX_ADDR=https://127.0.0.1:18200 LOCKBOX_CACERT=$work/tls.crt
LOCKBOX_TOKEN=$(kubectl get secret -n "$ns" lockbox-root-token -o jsonpath='{.data.token}' | base64 -d)
export LOCKBOX_TOKEN
entry() { # name path sha version [extra yaml]
  printf 'apiVersion: lockbox.dev/v1alpha1\nkind: PluginCatalogEntry\nmetadata:\n  name: %s\nspec:\n  type: secret\n  version: "%s"\n  binary:\n    path: %s\n    sha256: "%s"\n%s' \
    "$1" "$4" "$2" "$3" "${5:-}" | kubectl apply -f -
}
mount() { # namespace name plugin [extra yaml]
  printf 'apiVersion: lockbox.dev/v1alpha1\nkind: SecretsMount\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  plugin: %s\n%s' \
    "$2" "$1" "$3" "${4:-}" | kubectl apply -f -
}
ready() { kubectl wait --for=condition=Ready "$@" --timeout=90s; }
reason() { kubectl get "$@" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}'; }

step "walkthrough: catalog entry + mount -> Ready -> write/read -> delete"
kubectl apply -f deploy/examples/namespace-team-a.yaml
kubectl create namespace team-b
sed "s/0\{64\}/$mock_sha/" deploy/examples/plugincatalogentry-mock.yaml | kubectl apply -f -
kubectl apply -f deploy/examples/secretsmount-kv.yaml
ready plugincatalogentry/mock
ready secretsmount/kv -n team-a
"$lockbox" write team-a/kv/db password=s3cret
"$lockbox" read -field=password team-a/kv/db | grep -qx s3cret || fail "read back"

step "digest mismatch: refused, never run"
entry bad lockbox-plugin-mock "$(printf '0%.0s' $(seq 64))" v1
kubectl wait --for=condition=Verified=false plugincatalogentry/bad --timeout=60s
[ "$(reason plugincatalogentry/bad)" = DigestMismatch ] || fail "no DigestMismatch"

step "pinned version, path conflict, Retain vs Delete, drift correction"
mount team-a pinned mock "  pluginVersion: v0.1.0\n"
ready secretsmount/pinned -n team-a
mount team-b clash mock "  path: team-a/kv\n"
for _ in $(seq 30); do [ "$(reason secretsmount/clash -n team-b)" = PathConflict ] && break; sleep 1; done
[ "$(reason secretsmount/clash -n team-b)" = PathConflict ] || fail "no PathConflict"
ready secretsmount/kv -n team-a
mount team-b shared mock "  path: shared/b\n  deletionPolicy: Delete\n"
ready secretsmount/shared -n team-b
"$lockbox" secrets disable team-a/pinned
for _ in $(seq 60); do "$lockbox" secrets list -format=json | grep -q '"team-a/pinned/"' && break; sleep 1; done
"$lockbox" secrets list -format=json | grep -q '"team-a/pinned/"' || fail "drift not corrected"
kubectl delete secretsmount shared -n team-b --timeout=60s
"$lockbox" secrets list -format=json | grep -q '"shared/b/"' && fail "Delete left the mount"
kubectl delete secretsmount pinned -n team-a --timeout=60s
"$lockbox" secrets list -format=json | grep -q '"team-a/pinned/"' || fail "Retain removed the mount"

step "upgrade by editing the catalog entry, under a read loop"
# v2: the same plugin with bytes appended (another sha256), copied into the
# plugin volume by a pod that passes the restricted standard.
docker run --rm --entrypoint cat "$image" /usr/lib/lockbox/plugins/lockbox-plugin-mock > "$work/v2"
printf 'lockbox-e2e-v2' >> "$work/v2"
v2_sha=$(sha256sum "$work/v2" | cut -d' ' -f1)
kubectl run filler -n "$ns" --image=busybox:1.36 --restart=Never --overrides='{
  "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"}},
    "volumes": [{"name": "p", "persistentVolumeClaim": {"claimName": "lockbox-plugins"}}],
    "containers": [{"name": "filler", "image": "busybox:1.36", "command": ["sleep", "600"],
      "volumeMounts": [{"name": "p", "mountPath": "/p"}],
      "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}'
kubectl wait --for=condition=Ready pod/filler -n "$ns" --timeout=120s
kubectl cp "$work/v2" "$ns/filler:/p/lockbox-plugin-mock-v2"
kubectl exec -n "$ns" filler -- chmod 0555 /p/lockbox-plugin-mock-v2
old_sha=$(kubectl get secretsmount kv -n team-a -o jsonpath='{.status.runningSha256}')
errors=0
( for _ in $(seq 300); do "$lockbox" read team-a/kv/db >/dev/null 2>&1 || echo err; sleep 0.05; done ) > "$work/loop" &
loop=$!
kubectl patch plugincatalogentry mock --type=merge \
  -p "{\"spec\":{\"version\":\"v0.2.0\",\"binary\":{\"path\":\"extra/lockbox-plugin-mock-v2\",\"sha256\":\"$v2_sha\"}}}"
kubectl wait --for=jsonpath='{.status.runningSha256}'="$v2_sha" secretsmount/kv -n team-a --timeout=90s
wait "$loop"
errors=$(grep -c err "$work/loop" || true)
[ "$errors" = 0 ] || fail "$errors reads failed during the upgrade"
[ "$old_sha" != "$v2_sha" ] || fail "sha256 did not change"

step "restart: pod deleted, data and mounts intact, no duplicates"
before=$("$lockbox" secrets list -format=json | grep -o '"team-[ab]/[a-z]*/"' | sort)
kubectl delete pod lockbox-0 -n "$ns"
kubectl rollout status statefulset/lockbox -n "$ns" --timeout=5m
forward
after=$("$lockbox" secrets list -format=json | grep -o '"team-[ab]/[a-z]*/"' | sort)
[ "$before" = "$after" ] || fail "mounts changed across the restart: $before vs $after"
"$lockbox" read -field=password team-a/kv/db | grep -qx s3cret || fail "data lost across the restart"

step "uninstall (README)"
kubectl delete pod filler -n "$ns" --wait=false
kubectl delete secretsmount --all -A --timeout=60s
kubectl delete plugincatalogentry --all --timeout=60s
helm uninstall lockbox -n "$ns"
echo; echo "kind e2e: all scenarios passed"
