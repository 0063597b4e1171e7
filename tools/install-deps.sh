#!/bin/bash
# Install what the tests and the all-in-one need on Debian 12, as root:
# a virtualenv with tox and bindep, then the Debian packages bindep.txt
# lists for the given profile (default: test).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/env.sh

profile=${1:-test}
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root (apt-get, libvirtd and PostgreSQL's" \
         "own user need it)" >&2
    exit 2
fi
apt_install() {
    echo "install-deps: apt-get install $*"
    if [ -z "${apt_updated:-}" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@"
}
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3-venv python3-pip
fi
if [ ! -x "$TOX" ] || [ ! -x "$BINDEP" ]; then
    python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check \
        'tox>=4' bindep
fi
missing=$("$BINDEP" -b "$profile" || true)
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt_install $missing
fi
