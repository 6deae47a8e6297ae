#!/usr/bin/env bash
# Sourceable. Throwaway PostgreSQL 15 cluster for tests:
#   pg_start DIR   create a cluster in DIR (made by the caller), start it, export PG* vars
#   pg_stop DIR    stop it at once (safe to call twice)
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
  # Everyone is trusted except the role stackvault_pw, which must log in with a password,
  # so tests can prove that passwords reach pg_dump and the counting connection (pg_hba is
  # first-match: these lines go before initdb's trust lines).
  {
    printf 'local all stackvault_pw scram-sha-256\nhost all stackvault_pw 127.0.0.1/32 scram-sha-256\n'
    cat "$dir/data/pg_hba.conf"
  } >"$dir/pg_hba.conf.new"
  mv "$dir/pg_hba.conf.new" "$dir/data/pg_hba.conf"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/data/pg_hba.conf"

  # Throwaway cluster: TCP on loopback only, socket inside DIR, durability off.
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
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

  export PGHOST=$sock PGPORT=$port PGUSER=postgres
  export STACKVAULT_TEST_PGHOST=$sock STACKVAULT_TEST_PGPORT=$port STACKVAULT_TEST_PGUSER=postgres
}

pg_stop() {
  local dir=$1
  # No postmaster.pid: never started, or already stopped.
  [ -f "$dir/data/postmaster.pid" ] || return 0
  _pg_run "$dir" "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
}
