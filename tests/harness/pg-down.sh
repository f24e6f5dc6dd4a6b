#!/usr/bin/env bash
# Stops the cluster tests/harness/pg-up.sh started in DIR (immediate mode:
# also how the tests simulate a crash).
set -euo pipefail
dir=${1:?usage: pg-down.sh DIR}
[ -f "$dir/bindir" ] || exit 0
bindir=$(cat "$dir/bindir")
if [ "$(id -u)" = 0 ]; then
  su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
else
  "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
fi
