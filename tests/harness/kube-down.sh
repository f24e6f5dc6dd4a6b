#!/usr/bin/env bash
# Stops the etcd and kube-apiserver (and the watchdog) that kube-up.sh DIR started.
# Removes only the pid files; the state under DIR (logs, etcd data, kubeconfigs)
# stays for inspection. Idempotent: a DIR with nothing running is fine.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
[ -d "$1" ] || { echo "[kube-down] $1 does not exist, nothing to stop" >&2; exit 0; }
DIR="$(cd "$1" && pwd)"

stop() { # name
  local f="$DIR/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  # Only signal the process if it is still ours: its command line names DIR
  # (guards against a recycled pid).
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIR"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "[kube-down] $1 ($pid) did not stop in 10s, sending SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

# The watchdog first so it does not race us; the apiserver before its etcd.
stop watchdog
stop kube-apiserver
stop etcd
