#!/usr/bin/env bash
# Sourceable. The Prometheus project's Python client, whose text-format parser the
# metrics test reads vault-ledger's output with (the reference implementation of the
# format, rather than a parser of our own):
#   prom_parser   install prometheus-client into $REPO/.venv if needed, export STACKVAULT_TEST_PYTHON
# The caller's shell is expected to run with `set -euo pipefail`.

# shellcheck source=SCRIPTDIR/venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
PROMETHEUS_CLIENT_VERSION=${PROMETHEUS_CLIENT_VERSION:-0.26.0}

_prom_present() { "$1/bin/python" -c "import prometheus_client"; }

prom_parser() {
  venv_install prometheus "prometheus-client==$PROMETHEUS_CLIENT_VERSION" _prom_present || return 1
  export STACKVAULT_TEST_PYTHON=$SV_VENV/bin/python
}
