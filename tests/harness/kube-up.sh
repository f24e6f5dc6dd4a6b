#!/usr/bin/env bash
# Starts a real etcd + kube-apiserver on free loopback ports, all state under DIR.
#
#   tests/harness/kube-up.sh DIR      # then: source DIR/env; kubectl get ns
#   tests/harness/kube-down.sh DIR
#
# What it writes under DIR:
#   etcd/, certs/          etcd data and the apiserver's self-signed serving cert
#   sa.key, sa.pub         service-account signing keypair
#   tokens.csv             an admin token (group system:masters) and a plain
#                          user `lockbox-operator-test` with no groups (for RBAC tests)
#   kubeconfig             admin; TLS verified against certs/apiserver.crt
#   kubeconfig-operator    the plain user, same cluster
#   env                    shell variables: KUBECONFIG, KUBE_APISERVER_URL,
#                          KUBE_ADMIN_TOKEN, KUBE_OPERATOR_TOKEN, KUBE_CA,
#                          ETCD_PID, KUBE_APISERVER_PID, KUBE_WATCHDOG_PID
#   *.pid, *.log           one per process
#
# Guarantees:
#   - Parallel-safe: nothing is shared between two DIRs (ports are picked free,
#     tokens are random per DIR). Running it twice on the same DIR is refused
#     while the first one is still up.
#   - Exits 0 only once /readyz answers 200 over verified TLS with the admin token;
#     otherwise exits non-zero after stopping what it started, printing the last
#     log lines.
#   - No orphans when the owner dies: a small watchdog (plain bash) polls the
#     owner process (default: the caller, $PPID; override with
#     KUBE_UP_OWNER_PID=PID, or KUBE_UP_OWNER_PID=none for servers that must
#     outlive the caller) and stops etcd and kube-apiserver within about a
#     second after it is gone, even when the owner was SIGKILLed. Without a
#     watchdog, only kube-down.sh stops them. Mind who the caller is: run from a
#     subshell that exits right away (`( kube-up.sh DIR & )`), the servers stop
#     with it; pass KUBE_UP_OWNER_PID=$$ (or none) in that case.
#   - The servers run in their own session (setsid), so a Ctrl-C in the caller's
#     terminal reaches them only through the watchdog, after the caller exits.
#
# Versions: the kube-apiserver of install-kube-current.sh (1.37.2, with etcd
# 3.7.3) by default; any release from 1.20 on works (the flags that differ
# between releases are chosen from `kube-apiserver --version`).
#
# Environment:
#   LOCKBOX_KUBE_BIN   directory with kube-apiserver and etcd (default: what
#                      tests/harness/install-kube-current.sh prints; it is run
#                      here, 0.1 s when cached, ~20 min the first time on a
#                      machine). The 1.20 build of `LOCKBOX_KUBE_120=1
#                      install-kube.sh` is in ~/.cache/lockbox/bin.
#   KUBE_UP_TIMEOUT    seconds to wait for /readyz (default 90)
#   KUBE_UP_OWNER_PID  see above
set -euo pipefail

die() { echo "[kube-up] error: $*" >&2; exit 1; }
log() { echo "[kube-up] $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 DIR"
mkdir -p "$1"
DIR="$(cd "$1" && pwd)"
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -n "${LOCKBOX_KUBE_BIN:-}" ]; then
  BIN="$LOCKBOX_KUBE_BIN"
else
  BIN="$(bash "$HERE/install-kube-current.sh")" || die "install-kube-current.sh failed (set LOCKBOX_KUBE_BIN to a directory with kube-apiserver and etcd)"
fi
TIMEOUT="${KUBE_UP_TIMEOUT:-90}"
OWNER="${KUBE_UP_OWNER_PID:-$PPID}"

APISERVER="$BIN/kube-apiserver"
ETCD="$BIN/etcd"
[ -x "$APISERVER" ] || die "$APISERVER not found: run tests/harness/install-kube-current.sh (or set LOCKBOX_KUBE_BIN)"
[ -x "$ETCD" ] || ETCD="$(command -v etcd || true)"
if [ -z "$ETCD" ] || [ ! -x "$ETCD" ]; then die "etcd not found in $BIN: run tests/harness/install-kube-current.sh"; fi
command -v openssl >/dev/null || die "openssl is required"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required (to pick free ports)"

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }
for p in etcd kube-apiserver; do
  if alive "$p"; then die "$p from an earlier kube-up.sh is still running in $DIR (run kube-down.sh $DIR)"; fi
done

# Stop whatever this script started if it fails part-way.
started=()
cleanup_on_error() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${started[@]}"; do
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$DIR"/*.pid
  fi
}
trap cleanup_on_error EXIT

tail_log() {
  echo "---- last lines of $1 ----" >&2
  tail -n "${2:-25}" "$1" >&2 || true
  echo "----" >&2
}

# Three distinct free ports, all picked while held, so they differ from each other.
# Another process may still grab one before we bind it; startup retries for that.
free_ports() {
  python3 - <<'PY'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

rand_hex() { openssl rand -hex 16; }

# Flags that differ between releases: --insecure-port exists up to 1.23
# (and must be 0 there, or 1.20 serves plain HTTP on 8080); from 1.24 on it
# is an unknown flag. With the loopback --advertise-address, 1.37 refuses the
# default endpoint reconciler (1.20 only logged it); nothing runs Pods here,
# so the `kubernetes` Service needs no endpoints: `none` on every release.
KUBE_VERSION="$("$APISERVER" --version 2>/dev/null | sed -n 's/^Kubernetes v\([0-9]*\.[0-9]*\).*/\1/p')"
[ -n "$KUBE_VERSION" ] || die "cannot read the version of $APISERVER (kube-apiserver --version)"
VERSION_FLAGS=(--endpoint-reconciler-type=none)
if [ "${KUBE_VERSION%%.*}" = 1 ] && [ "${KUBE_VERSION#*.}" -lt 24 ]; then
  VERSION_FLAGS+=(--insecure-port=0)
fi

# Credentials, once per DIR.
if [ ! -f "$DIR/sa.key" ]; then
  openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
fi
ADMIN_TOKEN="$(rand_hex)"
OPERATOR_TOKEN="$(rand_hex)"
umask 077
cat >"$DIR/tokens.csv" <<EOF
$ADMIN_TOKEN,admin,admin,system:masters
$OPERATOR_TOKEN,lockbox-operator-test,lockbox-operator-test
EOF
umask 022

start_etcd() {
  rm -rf "$DIR/etcd"
  setsid "$ETCD" --name lockbox-test --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "lockbox-test=http://127.0.0.1:$PEER_PORT" \
    --log-level warn \
    </dev/null >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
  started+=($!)
}

start_apiserver() {
  mkdir -p "$DIR/certs"
  setsid "$APISERVER" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --secure-port="$API_PORT" "${VERSION_FLAGS[@]}" \
    --advertise-address=127.0.0.1 \
    --cert-dir="$DIR/certs" \
    --token-auth-file="$DIR/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-key-file="$DIR/sa.pub" \
    --service-account-signing-key-file="$DIR/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-cluster-ip-range=10.96.0.0/16 \
    </dev/null >"$DIR/kube-apiserver.log" 2>&1 &
  echo $! >"$DIR/kube-apiserver.pid"
  started+=($!)
}

stop_started() {
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  started=()
}

# Waits until etcd answers /health; returns 2 if its port was taken (retry), 1 on other failure.
wait_etcd() {
  local deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ]; do
    if curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; then
      return 0
    fi
    if ! alive etcd; then
      grep -qi 'address already in use' "$DIR/etcd.log" && return 2
      return 1
    fi
    sleep 0.2
  done
  return 1
}

CA="$DIR/certs/apiserver.crt"
URL=""
wait_apiserver() {
  local deadline=$((SECONDS + TIMEOUT)) code=""
  while [ $SECONDS -lt $deadline ]; do
    if ! alive kube-apiserver; then
      grep -qi 'address already in use' "$DIR/kube-apiserver.log" && return 2
      return 1
    fi
    if [ -s "$CA" ]; then
      code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$CA" \
        -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/readyz" 2>/dev/null || true)"
      [ "$code" = 200 ] && return 0
    fi
    sleep 0.5
  done
  log "kube-apiserver not ready after ${TIMEOUT}s (last /readyz status: ${code:-none})"
  return 1
}

up=0
for attempt in 1 2 3; do
  read -r ETCD_PORT PEER_PORT API_PORT < <(free_ports)
  URL="https://127.0.0.1:$API_PORT"
  rm -rf "$DIR/certs"
  start_etcd
  rc=0; wait_etcd || rc=$?
  if [ $rc -ne 0 ]; then
    stop_started
    if [ $rc -eq 2 ]; then log "etcd port taken, retrying ($attempt)"; continue; fi
    tail_log "$DIR/etcd.log"
    die "etcd did not become healthy on 127.0.0.1:$ETCD_PORT"
  fi
  start_apiserver
  rc=0; wait_apiserver || rc=$?
  if [ $rc -ne 0 ]; then
    if [ $rc -eq 2 ]; then stop_started; log "apiserver port taken, retrying ($attempt)"; continue; fi
    tail_log "$DIR/kube-apiserver.log" 40
    alive etcd || tail_log "$DIR/etcd.log"
    stop_started
    die "kube-apiserver did not become ready at $URL (logs: $DIR/kube-apiserver.log)"
  fi
  up=1
  break
done
[ $up = 1 ] || die "could not find free ports after 3 attempts"

write_kubeconfig() { # file user token
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lockbox-test
  cluster:
    server: $URL
    certificate-authority: $CA
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@lockbox-test
  context:
    cluster: lockbox-test
    user: $2
current-context: $2@lockbox-test
EOF
  chmod 600 "$1"
}
write_kubeconfig "$DIR/kubeconfig" admin "$ADMIN_TOKEN"
write_kubeconfig "$DIR/kubeconfig-operator" lockbox-operator-test "$OPERATOR_TOKEN"

# Watchdog: stops both servers once the owner is gone; exits by itself when they are.
WATCHDOG_PID=""
if [ "$OWNER" != none ] && [ "$OWNER" != 0 ]; then
  kill -0 "$OWNER" 2>/dev/null || die "owner process $OWNER is not running"
  # The apiserver's pid is re-read from its file each time, so an apiserver
  # restarted by kube-restart-apiserver.sh is stopped as well.
  # shellcheck disable=SC2016 # expanded by the inner bash, from its environment
  ETCD_PID="$(cat "$DIR/etcd.pid")" API_PID="$(cat "$DIR/kube-apiserver.pid")" OWNER="$OWNER" \
    PID_FILE="$DIR/kube-apiserver.pid" setsid bash -c '
      trap "" HUP INT
      while kill -0 "$OWNER" 2>/dev/null; do
        API_PID="$(cat "$PID_FILE" 2>/dev/null || echo "$API_PID")"
        kill -0 "$API_PID" 2>/dev/null || kill -0 "$ETCD_PID" 2>/dev/null || exit 0
        sleep 1
      done
      API_PID="$(cat "$PID_FILE" 2>/dev/null || echo "$API_PID")"
      kill "$API_PID" 2>/dev/null; sleep 1; kill "$ETCD_PID" 2>/dev/null
      sleep 5; kill -9 "$API_PID" "$ETCD_PID" 2>/dev/null
      exit 0' "lockbox-kube-watchdog:$DIR" </dev/null >/dev/null 2>&1 &
  WATCHDOG_PID=$!
  echo "$WATCHDOG_PID" >"$DIR/watchdog.pid"
fi

cat >"$DIR/env" <<EOF
export KUBECONFIG='$DIR/kubeconfig'
export KUBE_APISERVER_URL='$URL'
export KUBE_ADMIN_TOKEN='$ADMIN_TOKEN'
export KUBE_OPERATOR_TOKEN='$OPERATOR_TOKEN'
export KUBE_OPERATOR_KUBECONFIG='$DIR/kubeconfig-operator'
export KUBE_CA='$CA'
export ETCD_URL='http://127.0.0.1:$ETCD_PORT'
export ETCD_PID='$(cat "$DIR/etcd.pid")'
export KUBE_APISERVER_PID='$(cat "$DIR/kube-apiserver.pid")'
export KUBE_WATCHDOG_PID='$WATCHDOG_PID'
EOF
chmod 600 "$DIR/env"
trap - EXIT
log "kube-apiserver v$KUBE_VERSION ready at $URL (state in $DIR; source $DIR/env)"
