#!/usr/bin/env bash
# Renders the Helm chart with its default values into plain manifests:
#
#   scripts/render-deploy.sh          # writes deploy/lockbox.yaml and deploy/rbac/
#   scripts/render-deploy.sh DIR      # writes them under DIR (tests compare with deploy/)
#
# deploy/lockbox.yaml = a Namespace `lockbox-system` that enforces the
# restricted Pod Security Standard, the CRDs, and `helm template` of
# charts/lockbox (release `lockbox`, namespace `lockbox-system`, no test hooks).
# deploy/rbac/operator-clusterrole.yaml = the chart's ClusterRole and Role
# alone, named lockbox-operator and without a namespace, for running the
# operator outside the cluster (README.md, "The operator").
# Run it after every change to charts/lockbox; tests/packaging fails while
# deploy/ is stale. Uses helm from PATH, or the one tests/harness/install-kube.sh
# installs (set HELM to choose another).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-deploy}"
[ -d "$out" ] || { echo "render-deploy: $out is not a directory" >&2; exit 1; }
helm="${HELM:-}"
if [ -z "$helm" ]; then
  if command -v helm >/dev/null 2>&1; then helm="$(command -v helm)"
  else helm="${LOCKBOX_CACHE:-$HOME/.cache/lockbox}/bin/helm"; fi
fi
[ -x "$helm" ] || { echo "render-deploy: helm not found (run tests/harness/install-kube.sh, or set HELM)" >&2; exit 1; }

# Charts' crds/ must be the generated ones (lockbox crds --write crds/).
for f in crds/*.yaml; do
  cmp -s "$f" "charts/lockbox/crds/$(basename "$f")" || {
    echo "render-deploy: charts/lockbox/crds/ differs from crds/: cp crds/*.yaml charts/lockbox/crds/" >&2
    exit 1
  }
done

rendered="$("$helm" template lockbox charts/lockbox --namespace lockbox-system \
  --include-crds --skip-tests --no-hooks)"

rbac="$("$helm" template lockbox-operator charts/lockbox --show-only templates/rbac.yaml \
  --set fullnameOverride=lockbox-operator)"

mkdir -p "$out/rbac"
tmp="$(mktemp "$out/.lockbox.yaml.XXXXXX")"
tmp_rbac="$(mktemp "$out/rbac/.operator-clusterrole.yaml.XXXXXX")"
trap 'rm -f "$tmp" "$tmp_rbac"' EXIT
{
  cat <<'HEADER'
# lockbox: plain manifests rendered from charts/lockbox with default values
# (scripts/render-deploy.sh; do not edit by hand). Apply with
#   kubectl apply --server-side -f deploy/
# Before that: build and push the image (Dockerfile) and set the image of the
# StatefulSet, and create the TLS Secret `lockbox-tls` (see README.md,
# "Install on Kubernetes").
---
apiVersion: v1
kind: Namespace
metadata:
  name: lockbox-system
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
HEADER
  printf '%s\n' "$rendered"
} >"$tmp"

{
  cat <<'HEADER'
# Least-privilege RBAC of `lockbox operator run`, rendered from
# charts/lockbox/templates/rbac.yaml by scripts/render-deploy.sh (do not edit
# by hand; the chart is the source). The Helm chart and deploy/lockbox.yaml
# create these rules and their bindings themselves; this file is for running
# the operator outside the cluster.
#
#   ClusterRole lockbox-operator       cluster-wide: the lockbox.dev resources
#                                      it watches, finalizes and reports on,
#                                      and events about them.
#   Role lockbox-operator              in the operator's own namespace only:
#                                      its Secrets (unseal key, root token,
#                                      env values of catalog entries) and its
#                                      leader-election Lease.
#
# The Role has no namespace here: apply it into the operator's namespace,
#   kubectl apply --server-side -n lockbox-system -f deploy/rbac/operator-clusterrole.yaml
# and bind both to the operator's identity (a ClusterRoleBinding for the
# ClusterRole, a RoleBinding in that namespace for the Role).
HEADER
  # Keep the ClusterRole and the Role (not the bindings), without namespace.
  printf '%s\n' "$rbac" | awk '
    function flush() { if (keep && doc != "") printf "---\n%s", doc; doc = ""; keep = 0 }
    /^---/ { flush(); next }
    /^kind: (ClusterRole|Role)$/ { keep = 1 }
    /^  namespace: / { next }
    /^# Source: / { next }
    { doc = doc $0 "\n" }
    END { flush() }'
} >"$tmp_rbac"

mv "$tmp" "$out/lockbox.yaml"
mv "$tmp_rbac" "$out/rbac/operator-clusterrole.yaml"
trap - EXIT
