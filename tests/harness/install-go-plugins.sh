#!/usr/bin/env bash
# Builds the Go binaries the tests run, every one pinned by a go.mod + go.sum
# under tests/go/:
#
#   vault-plugin-secrets-kv        upstream kv (version 1 and 2) secrets plugin  tests/go/upstream/secrets-kv
#   vault-plugin-auth-kubernetes   upstream Kubernetes auth plugin               tests/go/upstream/auth-kubernetes
#   lockbox-testplugin             our Go test plugin, secrets engine            tests/go/testplugin
#   lockbox-testplugin-auth        the same backend as an auth method            tests/go/testplugin
#   lockbox-testplugin-v2          lockbox-testplugin reporting version v2.0.0   tests/go/testplugin
#                                  (a second binary for upgrade/reload tests)
#   mock                           the seed walkthrough's mock secrets engine    tests/go/mock
#   kstatus                        sigs.k8s.io/cli-utils kstatus verdicts        tests/go/kstatus
#   consumer                       a minimal External Secrets Operator (ESO's    tests/go/consumer
#                                  Vault provider client calls, kv v2)
#
#   tests/harness/install-go-plugins.sh     # prints the directory holding them
#
# That directory also holds SHA256SUMS (for `plugin register -sha256=...`) and
# VERSIONS (module versions and the Go version). It is
# $LOCKBOX_CACHE/go-plugins/<key> (LOCKBOX_CACHE defaults to ~/.cache/lockbox),
# <key> a hash of the Go version, every go.mod/go.sum, our Go sources and the
# build flags, so a second run takes well under a second and any change
# rebuilds. GOMODCACHE and GOCACHE live under $LOCKBOX_CACHE/go (shared with
# install-kube-current.sh), so a rebuild after a small change takes seconds.
# Idempotent and safe to run concurrently (a lock serializes builds).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
GO_DIR="$(cd "$HERE/../go" && pwd)"
CACHE="${LOCKBOX_CACHE:-$HOME/.cache/lockbox}"
mkdir -p "$CACHE" && CACHE="$(cd "$CACHE" && pwd)" # Go wants absolute cache paths
log() { echo "[install-go-plugins] $*" >&2; }
die() { echo "[install-go-plugins] error: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is required (Go 1.26 or newer)"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"

export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
unset GOWORK GOOS GOARCH || true
LDFLAGS="-s -w"

# name|module dir|package|extra ldflags
TARGETS=(
  "vault-plugin-secrets-kv|upstream/secrets-kv|github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv|"
  "vault-plugin-auth-kubernetes|upstream/auth-kubernetes|github.com/hashicorp/vault-plugin-auth-kubernetes/cmd/vault-plugin-auth-kubernetes|"
  "lockbox-testplugin|testplugin|./cmd/lockbox-testplugin|"
  "lockbox-testplugin-auth|testplugin|./cmd/lockbox-testplugin-auth|"
  "lockbox-testplugin-v2|testplugin|./cmd/lockbox-testplugin|-X lockbox.test/testplugin/backend.Version=v2.0.0"
  "mock|mock|./cmd/mock|"
  "kstatus|kstatus|.|"
  "consumer|consumer|.|"
)
MODULES=(upstream/secrets-kv upstream/auth-kubernetes testplugin mock kstatus consumer)

go_version="$(go env GOVERSION)"
key="$(
  cd "$GO_DIR"
  {
    echo "$go_version $LDFLAGS $GOFLAGS"
    printf '%s\n' "${TARGETS[@]}"
    for m in "${MODULES[@]}"; do
      find "$m" -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -not -path '*/testdata/*' | LC_ALL=C sort |
        while read -r f; do echo "$f $(sha256sum <"$f" | cut -c1-64)"; done
    done
  } | sha256sum | cut -c1-16
)"
OUT="$CACHE/go-plugins/$key"
mkdir -p "$CACHE/go-plugins"

if [ -f "$OUT/SHA256SUMS" ]; then
  echo "$OUT"
  exit 0
fi

exec 9>"$CACHE/go-plugins/.lock"
flock 9
if [ -f "$OUT/SHA256SUMS" ]; then # built by a concurrent run while we waited
  echo "$OUT"
  exit 0
fi

log "building into $OUT ($go_version; GOMODCACHE and GOCACHE under $CACHE/go)"
tmp="$OUT.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
total=$SECONDS
for t in "${TARGETS[@]}"; do
  IFS='|' read -r name mod pkg extra <<<"$t"
  start=$SECONDS
  (cd "$GO_DIR/$mod" && go build -ldflags "$LDFLAGS${extra:+ $extra}" -o "$tmp/$name" "$pkg") >&2 ||
    die "building $name ($pkg in tests/go/$mod) failed"
  log "built $name in $((SECONDS - start))s ($(du -h "$tmp/$name" | cut -f1))"
done

{
  echo "go $go_version"
  for m in "${MODULES[@]}"; do
    (cd "$GO_DIR/$m" && go list -m all) |
      grep -E '^(github.com/hashicorp/vault-plugin-[a-z-]+|github.com/hashicorp/vault/sdk|sigs.k8s.io/cli-utils|k8s.io/apimachinery|github.com/hashicorp/vault/api(/auth/kubernetes)?|k8s.io/client-go) ' |
      sed "s|^|tests/go/$m: |" || true
  done
} >"$tmp/VERSIONS"
(cd "$tmp" && sha256sum -- $(printf '%s\n' "${TARGETS[@]}" | cut -d'|' -f1) >SHA256SUMS)
rm -rf "$OUT" && mv "$tmp" "$OUT"
log "done in $((SECONDS - total))s"
echo "$OUT"
