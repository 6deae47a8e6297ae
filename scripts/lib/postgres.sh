#!/usr/bin/env bash
# Sourceable. Throwaway PostgreSQL 15 cluster for tests:
#   pg_start DIR   create a cluster in DIR (made by the caller), start it, export PG* vars
#   pg_stop DIR    stop it at once (safe to call twice)
# The cluster speaks TLS with certificates made here by a throwaway CA (pg_ssl_certs),
# and has roles that may log in only with TLS, only without it, or only with a client
# certificate, so tests can prove what each sslmode does (see pg_start's pg_hba lines).
# The caller's shell is expected to run with `set -euo pipefail`.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# Ask the kernel for N distinct free TCP ports on 127.0.0.1 (all sockets are
# held open until every port is known, so the N ports differ). Random ports,
# not fixed ones, so that parallel runs and a developer's own servers never clash.
_sv_free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# initdb and postgres refuse to run as root, so as root run them as the
# `postgres` OS user (runuser: no password, no PAM session, keeps the env).
# cd into DIR first so the tools never start in a cwd they cannot read (/root).
_pg_run() {
  local dir=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

# The password of role stackvault_ssl (a test fixture, not a secret).
PG_SSL_PASSWORD=ssl-Secret-7

# pg_ssl_certs DIR: in DIR, a CA (ca.crt), a server certificate it signed for
# localhost and 127.0.0.1 (server.crt/.key; 127.0.0.2, where the server also
# listens, is deliberately not in it), a client certificate for role stackvault_cert
# (client.crt/.key), and a second, unrelated CA (wrong-ca.crt). EC P-256 keys: made
# in milliseconds. Made at test time so no key is ever committed and none expires.
pg_ssl_certs() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    for ca in ca wrong-ca; do
      openssl req -x509 "${key[@]}" -keyout "$ca.key" -out "$ca.crt" -days 3 \
        -subj "/CN=stackvault test $ca" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    done
    openssl req -new "${key[@]}" -keyout server.key -out server.csr -subj /CN=localhost
    printf '%s\n' subjectAltName=DNS:localhost,IP:127.0.0.1 basicConstraints=CA:FALSE \
      keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
      -extfile server.ext -out server.crt
    # libpq's cert authentication: the certificate's CN is the role name.
    openssl req -new "${key[@]}" -keyout client.key -out client.csr -subj /CN=stackvault_cert
    printf '%s\n' basicConstraints=CA:FALSE keyUsage=critical,digitalSignature \
      extendedKeyUsage=clientAuth >client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
      -extfile client.ext -out client.crt
    # libpq and PostgreSQL refuse private keys that others can read.
    chmod 600 ./*.key
  ) >"$d/openssl.log" 2>&1 || {
    echo "pg_ssl_certs: openssl failed:" >&2
    cat "$d/openssl.log" >&2
    return 1
  }
}

pg_start() {
  local dir=$1 port sock
  dir=$(cd "$dir" && pwd)
  sock=$dir/socket
  port=$(_sv_free_ports 1)
  mkdir -p "$dir/socket"
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$dir"
    chmod 755 "$dir"
    if ! runuser -u postgres -- test -x "$dir"; then
      echo "pg_start: user postgres cannot traverse $dir; make its parents world-executable (chmod 755)" >&2
      return 1
    fi
  fi

  if ! _pg_run "$dir" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust \
    -E UTF8 --no-locale --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
    echo "pg_start: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    return 1
  fi
  pg_ssl_certs "$dir/ssl" || return 1
  # Everyone is trusted (with or without TLS) except these roles, so tests can prove
  # that passwords and TLS settings reach both pg_dump and stackvault's own connections
  # (pg_hba is first-match: these lines go before initdb's trust lines):
  #   stackvault_pw     must log in with a password
  #   stackvault_secret must log in with a password (the secrets test's own role)
  #   stackvault_ssl    password, and over TLS only: refused on the socket and without TLS
  #   stackvault_nossl  refused over TLS: libpq's sslmode=prefer falls back to plain
  #   stackvault_cert   TLS with a client certificate signed by the test CA only
  {
    cat <<'HBA'
local     all stackvault_pw                 scram-sha-256
host      all stackvault_pw    127.0.0.1/32 scram-sha-256
local     all stackvault_secret             scram-sha-256
local     all stackvault_ssl                reject
hostnossl all stackvault_ssl   all          reject
hostssl   all stackvault_ssl   127.0.0.0/8  scram-sha-256
hostssl   all stackvault_nossl all          reject
host      all stackvault_nossl 127.0.0.0/8  trust
local     all stackvault_cert               reject
hostnossl all stackvault_cert  all          reject
hostssl   all stackvault_cert  127.0.0.0/8  cert
HBA
    cat "$dir/data/pg_hba.conf"
  } >"$dir/pg_hba.conf.new"
  mv "$dir/pg_hba.conf.new" "$dir/data/pg_hba.conf"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/data/pg_hba.conf"

  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir/ssl"
  # Throwaway cluster: TCP on loopback only (127.0.0.2 too: an address the server
  # certificate does not name), socket inside DIR, durability off, TLS on.
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1,127.0.0.2'
ssl = on
ssl_cert_file = '$dir/ssl/server.crt'
ssl_key_file = '$dir/ssl/server.key'
ssl_ca_file = '$dir/ssl/ca.crt'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

  # pg_ctl -w notices at once if the postmaster dies (e.g. port taken);
  # pg_isready then confirms it accepts connections on the socket.
  if ! _pg_run "$dir" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start >/dev/null ||
    ! "$PG_BIN/pg_isready" -q -t 10 -h "$sock" -p "$port" -U postgres -d postgres; then
    echo "pg_start: PostgreSQL failed to start on 127.0.0.1:$port (30 s limit); server log:" >&2
    cat "$dir/postgres.log" >&2 || true
    pg_stop "$dir"
    return 1
  fi

  # Cluster-wide roles for the TLS tests, made once here rather than by tests that run
  # in parallel; tests grant them what they need on their own databases.
  if ! "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE stackvault_ssl LOGIN PASSWORD '$PG_SSL_PASSWORD'" \
    -c "CREATE ROLE stackvault_nossl LOGIN" -c "CREATE ROLE stackvault_cert LOGIN" \
    >"$dir/roles.log" 2>&1; then
    echo "pg_start: cannot create the TLS test roles:" >&2
    cat "$dir/roles.log" >&2
    pg_stop "$dir"
    return 1
  fi

  export PGHOST=$sock PGPORT=$port PGUSER=postgres
  export STACKVAULT_TEST_PGHOST=$sock STACKVAULT_TEST_PGPORT=$port STACKVAULT_TEST_PGUSER=postgres
  # The TLS fixtures: the CA that signed the server certificate, an unrelated CA, the
  # client certificate of stackvault_cert, the TLS-only role and its password, and an
  # address of the server that its certificate does not name.
  export STACKVAULT_TEST_PGSSLROOTCERT=$dir/ssl/ca.crt STACKVAULT_TEST_PGSSLWRONGCA=$dir/ssl/wrong-ca.crt
  export STACKVAULT_TEST_PGSSLCERT=$dir/ssl/client.crt STACKVAULT_TEST_PGSSLKEY=$dir/ssl/client.key
  export STACKVAULT_TEST_PGSSLCERTUSER=stackvault_cert
  export STACKVAULT_TEST_PGSSLUSER=stackvault_ssl STACKVAULT_TEST_PGSSLPASSWORD=$PG_SSL_PASSWORD
  export STACKVAULT_TEST_PGHOST_NOT_IN_CERT=127.0.0.2
}

pg_stop() {
  local dir=$1
  # No postmaster.pid: never started, or already stopped.
  [ -f "$dir/data/postmaster.pid" ] || return 0
  _pg_run "$dir" "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}
