#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first:
#   - hvac (the Python Vault client) for the client-compatibility test.
# Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import hvac' 2>/dev/null; then
  echo "[tests] installing hvac (Python Vault client) for the compatibility test" >&2
  python3 -m pip install --quiet --disable-pip-version-check hvac >&2
fi

# Style gates first: they are cheap and CI should fail fast on them.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# Plugin binaries first: integration tests run them as real processes.
cargo build --workspace --bins
cargo test --workspace "$@"
