#!/usr/bin/env bash
# Plugin-image benchmarks (BENCHMARKS.md, section `oci`): pull throughput of a
# 20 MiB plugin from a registry on loopback, and the time from registering an
# image-based plugin to "usable" with a cold and a warm cache, for the
# standalone server (API call) and the operator (kubectl apply → Ready).
#
#   scripts/bench-oci.sh [RUNS]        # default 5 runs per measurement
#
# Needs: target/release/lockbox and target/release/lockbox-plugin-mock
# (`cargo build --release -p lockbox -p lockbox-plugin-mock`), Debian's
# docker-registry, curl, and for the operator part the kube-apiserver harness
# (tests/harness/install-kube.sh). LOCKBOX_BIN / MOCK_BIN override the
# binaries. Prints a Markdown results block on stdout; progress on stderr.
# A benchmark, not a test: it never judges the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
BIN="$(realpath "${LOCKBOX_BIN:-target/release/lockbox}")"
MOCK="$(realpath "${MOCK_BIN:-target/release/lockbox-plugin-mock}")"
SIZE=$((20 * 1024 * 1024))
log() { echo "[bench-oci] $*" >&2; }
die() { echo "[bench-oci] error: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN not found: cargo build --release -p lockbox -p lockbox-plugin-mock"
[ -x "$MOCK" ] || die "$MOCK not found"
command -v docker-registry >/dev/null || die "docker-registry not found: apt-get install -y docker-registry"

WORK="$(mktemp -d /tmp/lockbox-bench-oci.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
# median min max of numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %s %s\n", m, a[1], a[NR]}'; }

# --- registry ---------------------------------------------------------------
REG_PORT="$(free_port)"
REG="127.0.0.1:$REG_PORT"
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$REG/v2/" >/dev/null || die "registry did not start: $(tail -5 "$WORK/registry.log")"

# A 20 MiB plugin: the mock plugin padded with random bytes (an ELF with
# bytes appended still runs), one variant per cold run so no cache helps.
variant() { # N -> path
  local f="$WORK/plugin-$1"
  if [ ! -f "$f" ]; then
    cp "$MOCK" "$f"
    local pad=$((SIZE - $(stat -c %s "$MOCK")))
    [ "$pad" -gt 0 ] || die "the mock plugin is already larger than 20 MiB"
    head -c "$pad" /dev/urandom >>"$f"
    chmod 755 "$f"
  fi
  echo "$f"
}
push() { # FILE REF -> manifest digest
  "$BIN" plugin push -format=json -insecure-registry="$REG" "$1" "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])'
}

log "push and pull throughput ($RUNS runs, $((SIZE / 1024 / 1024)) MiB)"
PUSH_MS=(); PULL_MS=()
DIGESTS=()
for i in $(seq "$RUNS"); do
  f="$(variant "$i")"
  t=$(now_ns); d="$(push "$f" "$REG/bench/p$i:v1")"; PUSH_MS+=("$(ms_since "$t")")
  DIGESTS+=("$d")
  t=$(now_ns)
  "$BIN" plugin pull -insecure-registry="$REG" -output="$WORK/pulled-$i" "$REG/bench/p$i@$d" >/dev/null
  PULL_MS+=("$(ms_since "$t")")
  cmp -s "$f" "$WORK/pulled-$i" || die "pulled binary differs"
done
mbps() { awk -v ms="$1" -v size="$SIZE" 'BEGIN { printf "%.0f", size / 1048576 / (ms / 1000) }'; }
read -r PUSH_MED PUSH_MIN PUSH_MAX < <(printf '%s\n' "${PUSH_MS[@]}" | stats)
read -r PULL_MED PULL_MIN PULL_MAX < <(printf '%s\n' "${PULL_MS[@]}" | stats)

# --- standalone server: register cold / warm ---------------------------------
log "standalone server: register cold and warm"
API_PORT="$(free_port)"
"$BIN" server --dev --dev-no-store-token --dev-root-token-id root --dev-listen-address "127.0.0.1:$API_PORT" \
  --insecure-registry "$REG" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
API="http://127.0.0.1:$API_PORT"
for _ in $(seq 100); do curl -fs "$API/v1/sys/health" >/dev/null && break; sleep 0.1; done
register() { # NAME REF -> ms
  local t; t=$(now_ns)
  local code
  code=$(curl -s -o "$WORK/reg.out" -w '%{http_code}' -X PUT -H 'X-Vault-Token: root' \
    -d "{\"oci_image\": \"$2\"}" "$API/v1/sys/plugins/catalog/secret/$1")
  [ "$code" = 204 ] || die "register $1 failed: $code $(cat "$WORK/reg.out")"
  ms_since "$t"
}
SRV_COLD=(); SRV_WARM=()
for i in $(seq "$RUNS"); do
  SRV_COLD+=("$(register "cold-$i" "$REG/bench/p$i@${DIGESTS[$((i - 1))]}")")
  SRV_WARM+=("$(register "warm-$i" "$REG/bench/p$i@${DIGESTS[$((i - 1))]}")")
done
read -r SC_MED SC_MIN SC_MAX < <(printf '%s\n' "${SRV_COLD[@]}" | stats)
read -r SW_MED SW_MIN SW_MAX < <(printf '%s\n' "${SRV_WARM[@]}" | stats)

# --- operator: kubectl apply → Ready, cold / warm ------------------------------
OP_LINES=""
if [ -x "${LOCKBOX_KUBE_BIN:-$HOME/.cache/lockbox/bin}/kube-apiserver" ] && command -v kubectl >/dev/null; then
  log "operator: apply → Ready, cold and warm (starting a kube-apiserver)"
  tests/harness/kube-up.sh "$WORK/kube" >/dev/null
  export KUBECONFIG="$WORK/kube/kubeconfig"
  kubectl apply --server-side -f crds/ >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  kubectl create namespace bench-op >/dev/null
  mkdir -p "$WORK/op-plugins"
  "$BIN" operator run --data-dir "$WORK/op-data" --plugin-directory "$WORK/op-plugins" \
    --namespace bench-op --api-address 127.0.0.1:0 --health-address 127.0.0.1:0 \
    --insecure-registry "$REG" --log-format standard >"$WORK/operator.out" 2>"$WORK/operator.log" &
  PIDS+=($!)
  HEALTH=""
  for _ in $(seq 300); do
    HEALTH="$(sed -n 's/^health address: //p' "$WORK/operator.out" | head -1)"
    [ -n "$HEALTH" ] && curl -fs "http://$HEALTH/metrics" 2>/dev/null | grep -q 'lockbox_operator_leader 1' && break
    sleep 0.1
  done
  curl -fs "http://$HEALTH/metrics" | grep -q 'lockbox_operator_leader 1' || die "operator did not become leader: $(tail -5 "$WORK/operator.log")"
  apply_ready() { # NAME REF -> ms
    local t; t=$(now_ns)
    kubectl apply -f - >/dev/null <<EOF
apiVersion: lockbox.dev/v1alpha1
kind: PluginCatalogEntry
metadata:
  name: $1
spec:
  type: secret
  version: "1.0.0"
  image:
    reference: "$2"
EOF
    kubectl wait --for=condition=Ready "pce/$1" --timeout=120s >/dev/null
    ms_since "$t"
  }
  OP_COLD=(); OP_WARM=()
  for i in $(seq "$RUNS"); do
    # Fresh variants: the server part above already cached the first ones.
    j=$((RUNS + i)); f="$(variant "$j")"; d="$(push "$f" "$REG/bench/p$j:v1")"
    OP_COLD+=("$(apply_ready "op-cold-$i" "$REG/bench/p$j@$d")")
    OP_WARM+=("$(apply_ready "op-warm-$i" "$REG/bench/p$j@$d")")
  done
  read -r OC_MED OC_MIN OC_MAX < <(printf '%s\n' "${OP_COLD[@]}" | stats)
  read -r OW_MED OW_MIN OW_MAX < <(printf '%s\n' "${OP_WARM[@]}" | stats)
  kubectl delete pce --all --wait=false >/dev/null 2>&1 || true
  OP_LINES="| operator: \`kubectl apply\` of an image-based PluginCatalogEntry → \`Ready\` (cold cache) | $OC_MED | $OC_MIN | $OC_MAX |
| operator: same digest under a new name → \`Ready\` (warm cache) | $OW_MED | $OW_MIN | $OW_MAX |"
else
  log "skipping the operator part: no kube-apiserver harness (tests/harness/install-kube.sh)"
fi

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cat <<EOF
- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(nproc) CPUs ($CPU), load average after the run $(cut -d' ' -f1-3 /proc/loadavg)
- lockbox: commit $(git rev-parse --short=12 HEAD)$(git diff --quiet || echo -dirty), $BIN
- plugin: the mock plugin padded to $((SIZE / 1024 / 1024)) MiB with random bytes, a fresh variant (new digest) per cold run; $RUNS runs per row
- registry: Debian docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null || echo '?') on $REG (plain HTTP, filesystem storage in /tmp)

| measurement | median (ms) | min (ms) | max (ms) |
|---|---:|---:|---:|
| \`lockbox plugin push\` (hash + upload + manifest) | $PUSH_MED | $PUSH_MIN | $PUSH_MAX |
| \`lockbox plugin pull\` (manifest + blob, verified, written out) | $PULL_MED | $PULL_MIN | $PULL_MAX |
| server: \`PUT sys/plugins/catalog\` with \`oci_image\` (cold cache: pull + verify + cache) | $SC_MED | $SC_MIN | $SC_MAX |
| server: the same digest again (warm cache: index + re-hash, no registry) | $SW_MED | $SW_MIN | $SW_MAX |
$OP_LINES

Pull throughput (median run): **$(mbps "$PULL_MED") MiB/s**; push: $(mbps "$PUSH_MED") MiB/s.
EOF
