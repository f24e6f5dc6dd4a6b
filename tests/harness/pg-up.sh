#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster in DIR (created if missing) on a free
# loopback port, for the database engine's tests.
#   bash tests/harness/pg-up.sh DIR      prints PGPORT=<port> and PGHOST=<DIR>
#   bash tests/harness/pg-down.sh DIR    stops it
# Run again on a DIR whose cluster was stopped, it starts the same cluster on
# the same port (a database outage and its end, in tests).
# The socket lives in DIR; logins over the socket are trusted (the tests'
# superuser `postgres`), logins over TCP need a password (scram-sha-256), so
# generated credentials are really checked. PostgreSQL refuses to run as
# root: as root, the cluster belongs to the `postgres` user.
set -euo pipefail
dir=${1:?usage: pg-up.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$d/initdb" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ]; then
  command -v initdb >/dev/null 2>&1 || { echo "pg-up.sh: initdb not found (apt-get install postgresql)" >&2; exit 1; }
  bindir=$(dirname "$(command -v initdb)")
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi

if [ -f "$dir/port" ] && [ -d "$dir/data" ]; then
  port=$(cat "$dir/port")
else
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "'$bindir/initdb' -D '$dir/data' -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >'$dir/initdb.log' 2>&1" \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  echo "$port" > "$dir/port"
fi
as_pg "'$bindir/pg_ctl' -D '$dir/data' -w -t 60 -l '$dir/log' -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1\" start >/dev/null" \
  || { cat "$dir/log" >&2; exit 1; }
echo "$bindir" > "$dir/bindir"
echo "PGPORT=$port"
echo "PGHOST=$dir"
