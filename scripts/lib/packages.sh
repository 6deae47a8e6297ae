# shellcheck shell=bash
# Debian packages the tests drive as real programs: shellcheck and systemd-analyze check
# the wrappers and units, docker-compose (with Debian's python3-yaml/jsonschema) the compose
# files, jq and flock are used by the wrappers, age proves the break-glass decryption.
# A fresh machine of the CI kind has none of them; install what is missing, once.

# need_packages COMMAND=PACKAGE ...: installs PACKAGE for every COMMAND not on PATH.
need_packages() {
  local spec missing=()
  for spec in "$@"; do
    command -v "${spec%%=*}" >/dev/null 2>&1 || missing+=("${spec#*=}")
  done
  # Debian's own python3 (not a pyenv one on PATH) validates the compose files.
  if ! /usr/bin/python3 -c 'import yaml, jsonschema' >/dev/null 2>&1; then
    missing+=(python3-yaml python3-jsonschema)
  fi
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test: missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "scripts/test: installing Debian packages: ${missing[*]}" >&2
  # A fresh machine may have no package lists yet.
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
