#!/bin/bash
# The README's test command: install what the tests need, then run them all
# (style, unit, and functional tests against real libvirt/QEMU, PostgreSQL,
# Gnocchi, RabbitMQ, Ceilometer's agents and CloudKitty), then the fault
# matrix on the real chain (tox -e faults, doc/reliability.rst).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/env.sh
tools/install-deps.sh test
"$TOX" -e pep8,py3,functional,faults "$@"
