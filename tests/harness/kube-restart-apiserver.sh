#!/usr/bin/env bash
# Stops the kube-apiserver that kube-up.sh DIR started and starts it again
# with the same command line (same etcd, port, flags, serving certificate in
# DIR/certs), for chaos tests.
#
#   tests/harness/kube-restart-apiserver.sh DIR [SIGNAL] [DOWN_SECONDS]
#
# SIGNAL (default KILL) is sent to the running apiserver; the script waits
# for it to exit, stays down DOWN_SECONDS (default 0, fractions allowed),
# starts it again, writes DIR/kube-apiserver.pid and exits 0 once /readyz
# answers 200 with the admin token (the kubeconfigs stay valid). The
# watchdog of kube-up.sh reads DIR/kube-apiserver.pid, so it stops the new
# process when its owner dies. etcd and its data are untouched.
set -euo pipefail

die() { echo "[kube-restart-apiserver] error: $*" >&2; exit 1; }
log() { echo "[kube-restart-apiserver] $*" >&2; }

[ $# -ge 1 ] && [ $# -le 3 ] || die "usage: $0 DIR [SIGNAL] [DOWN_SECONDS]"
[ -d "$1" ] || die "$1 does not exist"
DIR="$(cd "$1" && pwd)"
SIGNAL="${2:-KILL}"
DOWN="${3:-0}"
TIMEOUT="${KUBE_UP_TIMEOUT:-90}"
[ -f "$DIR/env" ] || die "$DIR/env not found: was $DIR started by kube-up.sh?"
# shellcheck disable=SC1091
source "$DIR/env"

pid="$(cat "$DIR/kube-apiserver.pid" 2>/dev/null || true)"
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || die "no kube-apiserver running for $DIR"
# Only ours: its command line names DIR (guards against a recycled pid).
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$DIR" \
  || die "pid $pid in $DIR/kube-apiserver.pid is not this DIR's kube-apiserver"
mapfile -d '' -t argv <"/proc/$pid/cmdline"
[ "${#argv[@]}" -gt 1 ] || die "cannot read the command line of pid $pid"

kill "-$SIGNAL" "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then
  log "kube-apiserver ($pid) still running 10 s after SIG$SIGNAL, sending SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
fi
sleep "$DOWN"

start() {
  setsid "${argv[@]}" </dev/null >>"$DIR/kube-apiserver.log" 2>&1 &
  echo $! >"$DIR/kube-apiserver.pid"
}
start
deadline=$((SECONDS + TIMEOUT))
code=""
while [ $SECONDS -lt $deadline ]; do
  newpid="$(cat "$DIR/kube-apiserver.pid")"
  if ! kill -0 "$newpid" 2>/dev/null; then
    # The old listener's port may take a moment to free up: try again.
    if tail -n 20 "$DIR/kube-apiserver.log" | grep -qi 'address already in use'; then
      sleep 0.5
      start
      continue
    fi
    tail -n 40 "$DIR/kube-apiserver.log" >&2 || true
    die "the restarted kube-apiserver exited (log: $DIR/kube-apiserver.log)"
  fi
  code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$KUBE_CA" \
    -H "Authorization: Bearer $KUBE_ADMIN_TOKEN" "$KUBE_APISERVER_URL/readyz" 2>/dev/null || true)"
  if [ "$code" = 200 ]; then
    log "kube-apiserver restarted ($newpid) at $KUBE_APISERVER_URL"
    exit 0
  fi
  sleep 0.3
done
die "the restarted kube-apiserver was not ready after ${TIMEOUT}s (last /readyz: ${code:-none})"
