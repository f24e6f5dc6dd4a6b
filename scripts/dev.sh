#!/usr/bin/env bash
# Builds lockbox and the example plugins, then starts a dev server with the
# plugins registered (mock, passgen, userpass, database) and root token "root".
# With Go on the machine it also builds Vault's own kv and Kubernetes auth
# plugins at their pinned versions (tests/go/upstream, cached in
# ~/.cache/lockbox) and puts them in the plugin directory: the dev server
# then mounts secret/ as kv version 2 (as Vault's does) and registers the
# `kubernetes` auth method. Without Go, secret/ is the built-in kv version 1.
# Extra arguments go to `lockbox server`, e.g. --dev-listen-address 127.0.0.1:8300.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lockbox -p lockbox-plugin-mock -p lockbox-plugin-passgen -p lockbox-plugin-userpass -p lockbox-plugin-database
plugins=target/dev-plugins
rm -rf "$plugins" && mkdir -p "$plugins"
cp target/release/lockbox-plugin-mock target/release/lockbox-plugin-passgen target/release/lockbox-plugin-userpass target/release/lockbox-plugin-database "$plugins/"
if command -v go >/dev/null 2>&1; then
  if go_plugins=$(bash tests/harness/install-go-plugins.sh); then
    cp "$go_plugins/vault-plugin-secrets-kv" "$go_plugins/vault-plugin-auth-kubernetes" "$plugins/"
  else
    echo "dev.sh: building Vault's plugins failed (see above); secret/ will be kv version 1" >&2
  fi
else
  echo "dev.sh: no Go on this machine; secret/ will be the built-in kv version 1" >&2
fi
exec target/release/lockbox server --dev --dev-root-token-id root --dev-plugin-dir "$plugins" "$@"
