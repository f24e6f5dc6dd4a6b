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
# PG_TLS=1 (when the cluster is created): TLS only over TCP. A throwaway CA
# and a server certificate for 127.0.0.1 and localhost are generated with
# openssl into DIR/tls (ca.pem, server.crt, server.key), `ssl=on`, and
# pg_hba.conf has `hostssl` lines only, so a plaintext TCP login is refused
# ("no pg_hba.conf entry ... no encryption"). The script then also prints
# PGSSLROOTCERT=DIR/tls/ca.pem. A restart keeps the cluster's mode.
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
  if [ "${PG_TLS:-0}" = 1 ]; then
    command -v openssl >/dev/null 2>&1 || { echo "pg-up.sh: PG_TLS=1 needs openssl" >&2; exit 1; }
    tls=$dir/tls
    mkdir -p "$tls"
    {
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj "/CN=lockbox pg-up test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr"
      printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tls/server.ext"
      openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 7 -extfile "$tls/server.ext" -out "$tls/server.crt"
    } >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; exit 1; }
    chmod 600 "$tls/server.key" "$tls/ca.key"
    chmod 644 "$tls/ca.pem" "$tls/server.crt"
    chmod 755 "$tls"
    if [ "$(id -u)" = 0 ]; then chown postgres "$tls/server.key" "$tls/server.crt"; fi
    cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
CONF
    cat >"$dir/data/pg_hba.conf" <<HBA
local   all all                trust
hostssl all all 127.0.0.1/32   scram-sha-256
hostssl all all ::1/128        scram-sha-256
HBA
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir/data/pg_hba.conf"; fi
  fi
  echo "$port" > "$dir/port"
fi
# PG_MAX_CONNECTIONS: max_connections for this start (default PostgreSQL's,
# 100); the HA benchmark runs four nodes, each with its own pool.
max_conn=""
if [ -n "${PG_MAX_CONNECTIONS:-}" ]; then max_conn=" -c max_connections=$PG_MAX_CONNECTIONS"; fi
as_pg "'$bindir/pg_ctl' -D '$dir/data' -w -t 60 -l '$dir/log' -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1$max_conn\" start >/dev/null" \
  || { cat "$dir/log" >&2; exit 1; }
echo "$bindir" > "$dir/bindir"
echo "PGPORT=$port"
echo "PGHOST=$dir"
if [ -f "$dir/tls/ca.pem" ]; then echo "PGSSLROOTCERT=$dir/tls/ca.pem"; fi
