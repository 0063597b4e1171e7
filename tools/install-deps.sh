#!/bin/bash
# Install what the tests and the all-in-one need on Debian 12, as root:
# the Debian packages listed in bindep.txt (through bindep) and tox.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-test}
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root (apt-get, libvirtd and PostgreSQL's" \
         "own user need it)" >&2
    exit 2
fi
python3 -m pip install --quiet --disable-pip-version-check 'tox>=4' bindep
missing=$(bindep -b "$profile" || true)
if [ -n "$missing" ]; then
    echo "install-deps: apt-get install $missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
