#!/usr/bin/env bash
# Starts etcd + the current kube-apiserver (from install-kube-current.sh) on
# loopback in a scratch directory, checks what the operator tests need from a
# current Kubernetes, and stops both again:
#   1. /readyz answers 200 over verified TLS;
#   2. a CRD with an x-kubernetes-validations (CEL) rule: a bad object is
#      refused at apply time with the rule's message, a good one is accepted;
#   3. a ServiceAccount token from the TokenRequest API (kubectl create token)
#      is accepted by the TokenReview API, a garbage token is not.
#
#   tests/harness/check-kube-current.sh [KUBE_BIN_DIR]
#
# LOCKBOX_KUBE_CHECK_KEEP=1 keeps the scratch directory (logs, etcd data).
# KUBE_BIN_DIR holds kube-apiserver and etcd (default: what
# install-kube-current.sh prints). kubectl comes from install-kube.sh
# (~/.cache/lockbox/bin/kubectl). The flags are the ones documented in
# tests/harness/README.md; keep both in sync.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${LOCKBOX_CACHE:-$HOME/.cache/lockbox}"
log() { echo "[check-kube-current] $*" >&2; }
die() { echo "[check-kube-current] error: $*" >&2; exit 1; }

BIN="${1:-$(bash "$HERE/install-kube-current.sh")}"
KUBECTL="$CACHE/bin/kubectl"
[ -x "$KUBECTL" ] || KUBECTL="$(bash "$HERE/install-kube.sh")/kubectl"
for b in "$BIN/kube-apiserver" "$BIN/etcd" "$KUBECTL"; do [ -x "$b" ] || die "$b is missing"; done

DIR="$(mktemp -d "${TMPDIR:-/tmp}/lockbox-kube-check.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  # The apiserver first, then its etcd.
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ] || [ "${LOCKBOX_KUBE_CHECK_KEEP:-0}" = 1 ]; then
    [ $rc -eq 0 ] || for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "---- last lines of $f ----" >&2; tail -n 30 "$f" >&2; }; done
    if [ $rc -ne 0 ]; then log "FAILED (state kept in $DIR)"; else log "state kept in $DIR"; fi
  else
    rm -rf "$DIR"
  fi
}
trap cleanup EXIT
# A signal exits through cleanup with its status (the servers are stopped and
# the state kept), not with the status of whatever command it interrupted.
trap 'exit 130' INT
trap 'exit 143' TERM

read -r ETCD_PORT PEER_PORT API_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
ADMIN_TOKEN="$(openssl rand -hex 16)"
(umask 077 && echo "$ADMIN_TOKEN,admin,admin,system:masters" >"$DIR/tokens.csv")

log "etcd: $("$BIN/etcd" --version | head -n1)"
"$BIN/etcd" --name lockbox-check --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "lockbox-check=http://127.0.0.1:$PEER_PORT" \
  --log-level warn </dev/null >"$DIR/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"' && break
  sleep 0.2
done
curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"' || die "etcd is not healthy"

log "kube-apiserver: $("$BIN/kube-apiserver" --version)"
start=$SECONDS
"$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" \
  --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --cert-dir="$DIR/certs" \
  --token-auth-file="$DIR/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-key-file="$DIR/sa.pub" \
  --service-account-signing-key-file="$DIR/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.96.0.0/16 \
  </dev/null >"$DIR/kube-apiserver.log" 2>&1 &
pids+=($!)
URL="https://127.0.0.1:$API_PORT"
CA="$DIR/certs/apiserver.crt"
code=""
for _ in $(seq 240); do
  kill -0 "${pids[1]}" 2>/dev/null || die "kube-apiserver exited"
  if [ -s "$CA" ]; then
    code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$CA" \
      -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/readyz" 2>/dev/null || true)"
    [ "$code" = 200 ] && break
  fi
  sleep 0.5
done
[ "$code" = 200 ] || die "kube-apiserver not ready (last /readyz status: ${code:-none})"
log "ok: /readyz 200 after $((SECONDS - start))s"

cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: check
  cluster: {server: "$URL", certificate-authority: "$CA"}
users:
- name: admin
  user: {token: "$ADMIN_TOKEN"}
contexts:
- name: admin@check
  context: {cluster: check, user: admin}
current-context: admin@check
EOF
k() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }
k version >&2

# 2. CEL validation at apply time.
cat >"$DIR/crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.check.lockbox.dev
spec:
  group: check.lockbox.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              sha256: {type: string}
              binary: {type: string}
              image: {type: string}
            x-kubernetes-validations:
            - rule: "has(self.binary) != has(self.image)"
              message: "exactly one of binary and image must be set"
            - rule: "!has(self.sha256) || self.sha256.matches('^[0-9a-f]{64}$')"
              message: "sha256 must be 64 lower-case hex digits"
EOF
k apply --server-side -f "$DIR/crd.yaml" >&2
k wait --for=condition=Established --timeout=60s crd/widgets.check.lockbox.dev >&2
bad='apiVersion: check.lockbox.dev/v1
kind: Widget
metadata: {name: bad, namespace: default}
spec: {binary: a, image: b, sha256: nothex}'
if out="$(echo "$bad" | k apply --server-side -f - 2>&1)"; then die "the bad Widget was accepted: $out"; fi
echo "$out" | grep -q "exactly one of binary and image must be set" || die "unexpected refusal: $out"
echo "$out" | grep -q "sha256 must be 64 lower-case hex digits" || die "unexpected refusal: $out"
log "ok: bad object refused by CEL: $(echo "$out" | tr '\n' ' ' | cut -c1-300)"
good="apiVersion: check.lockbox.dev/v1
kind: Widget
metadata: {name: good, namespace: default}
spec: {binary: a, sha256: $(printf '%064d' 0 | tr 0 a)}"
echo "$good" | k apply --server-side -f - >&2
k get widget good -o name >&2
log "ok: good object accepted"

# 3. TokenRequest + TokenReview.
k create serviceaccount checker -n default >&2
sa_token="$(k create token checker -n default --duration=10m)"
[ -n "$sa_token" ] || die "kubectl create token gave nothing"
review() { # token
  k create --raw /apis/authentication.k8s.io/v1/tokenreviews -f - <<EOF
{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"$1"}}
EOF
}
out="$(review "$sa_token")"
python3 - "$out" <<'PY' || die "TokenReview did not authenticate the ServiceAccount token: $out"
import json, sys
st = json.loads(sys.argv[1])["status"]
assert st.get("authenticated") is True, st
assert st["user"]["username"] == "system:serviceaccount:default:checker", st
print("[check-kube-current] ok: TokenReview authenticated", st["user"]["username"], "audiences", st.get("audiences"), file=sys.stderr)
PY
out="$(review garbage)"
python3 - "$out" <<'PY' || die "TokenReview accepted a garbage token: $out"
import json, sys
st = json.loads(sys.argv[1])["status"]
assert not st.get("authenticated"), st
print("[check-kube-current] ok: TokenReview refused a garbage token:", st.get("error"), file=sys.stderr)
PY
log "all checks passed"
