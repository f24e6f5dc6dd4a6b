#!/usr/bin/env bash
# Builds lockbox and the example plugins, then starts a dev server with the
# plugins registered (mock, passgen, userpass) and root token "root".
# Extra arguments go to `lockbox server`, e.g. --dev-listen-address 127.0.0.1:8300.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lockbox -p lockbox-plugin-mock -p lockbox-plugin-passgen -p lockbox-plugin-userpass
plugins=target/dev-plugins
rm -rf "$plugins" && mkdir -p "$plugins"
cp target/release/lockbox-plugin-mock target/release/lockbox-plugin-passgen target/release/lockbox-plugin-userpass "$plugins/"
exec target/release/lockbox server --dev --dev-root-token-id root --dev-plugin-dir "$plugins" "$@"
