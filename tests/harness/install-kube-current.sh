#!/usr/bin/env bash
# Builds a current kube-apiserver from the k8s.io/kubernetes Go module through
# the Go module proxy, and the etcd it runs against, both pinned by wrapper
# modules (go.mod + go.sum): tests/go/kube and tests/go/etcd.
#
#   tests/harness/install-kube-current.sh    # prints the directory holding
#                                            # kube-apiserver and etcd
#
# Cached under $LOCKBOX_CACHE (default ~/.cache/lockbox):
#   go/mod, go/build                  GOMODCACHE and GOCACHE (shared with
#                                     install-go-plugins.sh)
#   kube-current/kube-apiserver-<v>-<hash>/   one directory per build, keyed by
#   kube-current/etcd-<v>-<hash>/             the version and a hash of the
#                                             wrapper's go.mod and go.sum
#   kube-current/<v>+etcd-<v>-<hash>/         what this script prints: symlinks
#                                             to the binaries above
# A second run takes seconds; a version bump rebuilds only what changed.
# Idempotent and safe to run concurrently (a lock serializes builds).
#
# Environment:
#   LOCKBOX_KUBE_ETCD=module    (default) etcd built from tests/go/etcd (3.7, the
#                               release Kubernetes 1.37 is tested with)
#   LOCKBOX_KUBE_ETCD=debian    Debian's etcd-server package (3.4) instead: no
#                               build; it passes check-kube-current.sh, but 3.4 is
#                               outside what Kubernetes supports and the apiserver
#                               logs that etcd lacks RequestWatchProgress
#   LOCKBOX_KUBE_CONTROLLER_MANAGER=1   also build kube-controller-manager
#
# Run them with the flags in tests/harness/README.md ("A current
# kube-apiserver"); tests/harness/check-kube-current.sh does and checks CEL
# validation and TokenRequest/TokenReview.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
GO_DIR="$(cd "$HERE/../go" && pwd)"
CACHE="${LOCKBOX_CACHE:-$HOME/.cache/lockbox}"
mkdir -p "$CACHE" && CACHE="$(cd "$CACHE" && pwd)" # Go wants absolute cache paths
ETCD_MODE="${LOCKBOX_KUBE_ETCD:-module}"
log() { echo "[install-kube-current] $*" >&2; }
die() { echo "[install-kube-current] error: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is required (Go 1.26 or newer)"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
case "$ETCD_MODE" in module | debian) ;; *) die "LOCKBOX_KUBE_ETCD must be module or debian, not '$ETCD_MODE'" ;; esac

export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
unset GOWORK GOOS GOARCH || true

mkdir -p "$CACHE/kube-current"
exec 9>"$CACHE/kube-current/.lock"
flock 9

modversion() { (cd "$GO_DIR/$1" && go list -m -f '{{.Version}}' "$2"); }
modhash() { cat "$GO_DIR/$1/go.mod" "$GO_DIR/$1/go.sum" | sha256sum | cut -c1-12; }

# build MODULE_DIR PACKAGE OUTPUT_DIR NAME LDFLAGS: builds into OUTPUT_DIR/NAME
# unless it is there already; the directory appears only once complete.
build() {
  local mod=$1 pkg=$2 out=$3 name=$4 ldflags=$5 start
  [ -x "$out/$name" ] && return 0
  log "building $name ($pkg) from the module proxy; cold, this takes minutes"
  start=$SECONDS
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  (cd "$GO_DIR/$mod" && go build -ldflags "$ldflags" -o "$out.tmp/$name" "$pkg") >&2
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - start))s ($(du -h "$out/$name" | cut -f1))"
}

KUBE_VERSION="$(modversion kube k8s.io/kubernetes)"
[ -n "$KUBE_VERSION" ] || die "k8s.io/kubernetes is not required by tests/go/kube/go.mod"
KUBE_OUT="$CACHE/kube-current/kube-apiserver-$KUBE_VERSION-$(modhash kube)"
kube_ldflags="-s -w"
major="${KUBE_VERSION#v}"; minor="${major#*.}"; major="${major%%.*}"; minor="${minor%%.*}"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
done
build kube k8s.io/kubernetes/cmd/kube-apiserver "$KUBE_OUT" kube-apiserver "$kube_ldflags"
if [ "${LOCKBOX_KUBE_CONTROLLER_MANAGER:-0}" = 1 ]; then
  build kube k8s.io/kubernetes/cmd/kube-controller-manager "$KUBE_OUT-kcm" kube-controller-manager "$kube_ldflags"
fi

if [ "$ETCD_MODE" = module ]; then
  ETCD_VERSION="$(modversion etcd go.etcd.io/etcd/server/v3)"
  ETCD_OUT="$CACHE/kube-current/etcd-$ETCD_VERSION-$(modhash etcd)"
  build etcd go.etcd.io/etcd/server/v3 "$ETCD_OUT" etcd "-s -w"
  ETCD_BIN="$ETCD_OUT/etcd"
else
  if ! command -v etcd >/dev/null 2>&1; then
    log "installing Debian's etcd-server"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
  fi
  ETCD_BIN="$(command -v etcd)"
  ETCD_VERSION="debian-$(dpkg-query -W -f '${Version}' etcd-server 2>/dev/null || echo unknown)"
fi

OUT="$CACHE/kube-current/$KUBE_VERSION+etcd-$ETCD_VERSION-$(printf '%s\n' "$KUBE_OUT" "$ETCD_BIN" "${LOCKBOX_KUBE_CONTROLLER_MANAGER:-0}" | sha256sum | cut -c1-8)"
mkdir -p "$OUT"
ln -sfn "$KUBE_OUT/kube-apiserver" "$OUT/kube-apiserver"
ln -sfn "$ETCD_BIN" "$OUT/etcd"
if [ "${LOCKBOX_KUBE_CONTROLLER_MANAGER:-0}" = 1 ]; then
  ln -sfn "$KUBE_OUT-kcm/kube-controller-manager" "$OUT/kube-controller-manager"
fi
echo "$OUT"
