#!/usr/bin/env bash
# Sourceable. The Prometheus project's Python client, whose text-format parser the
# metrics test reads vault-ledger's output with (the reference implementation of the
# format, rather than a parser of our own):
#   prom_parser   install prometheus-client into $REPO/.venv if needed, export STACKVAULT_TEST_PYTHON
# The caller's shell is expected to run with `set -euo pipefail`.

_SV_PROM_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROMETHEUS_CLIENT_VERSION=${PROMETHEUS_CLIENT_VERSION:-0.26.0}

prom_parser() {
  local venv=$_SV_PROM_REPO/.venv
  {
    flock 9
    if [ ! -x "$venv/bin/python" ]; then
      echo "prometheus: creating venv $venv" >&2
      python3 -m venv "$venv" >&2 || return 1
    fi
    if ! "$venv/bin/python" -c "import prometheus_client" 2>/dev/null; then
      echo "prometheus: pip install prometheus-client==$PROMETHEUS_CLIENT_VERSION" >&2
      "$venv/bin/python" -m pip install -q "prometheus-client==$PROMETHEUS_CLIENT_VERSION" >&2 || return 1
    fi
  } 9<"$_SV_PROM_REPO"
  export STACKVAULT_TEST_PYTHON=$venv/bin/python
}
