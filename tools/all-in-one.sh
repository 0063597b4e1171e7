#!/bin/bash
# The README's first command: on a Debian 12 machine, as root, install what
# is needed (Debian packages of bindep.txt, tox and the tox virtualenv), then
# run the whole system on this machine -- libvirt + a QEMU guest doing I/O,
# RabbitMQ, PostgreSQL + Gnocchi, Ceilometer's polling and notification
# agents with this plugin -- print what Gnocchi received, plot it, stop
# everything.  Arguments go to the runner, e.g. --duration 600; --help lists
# them.  See doc/all-in-one.rst.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

if [ "$(id -u)" != 0 ]; then
    echo "all-in-one.sh: run as root (apt-get, a private libvirtd," \
         "RabbitMQ, PostgreSQL's own user)" >&2
    exit 2
fi

# NOTE: a fresh Debian 12 has no pip, and marks its python3 as externally
# managed (PEP 668), which makes install-deps.sh's `pip install tox bindep`
# fail; PIP_BREAK_SYSTEM_PACKAGES is Debian's documented override.
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "all-in-one.sh: apt-get install python3-pip python3-venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends python3-pip python3-venv
fi
export PIP_BREAK_SYSTEM_PACKAGES=1

tools/install-deps.sh test
# The tox environment (the functional tests' one, .tox/shared):
# created or updated, not run, so that the runner below gets the signals
# itself (^C stops every service it started; tox would kill it).
python3 -m tox -e all-in-one --notest
python=$(python3 -m tox config -e all-in-one -k env_python |
         sed -n 's/^env_python = //p')
if [ ! -x "$python" ]; then
    echo "all-in-one.sh: no python in the tox environment all-in-one" \
         "(is [testenv:all-in-one] in tox.ini?)" >&2
    exit 1
fi
ready=$(date +%s)
echo "all-in-one.sh: installed in $((ready - started)) s"

status=0
"$python" -m ceilometer_blockacct.harness.allinone "$@" || status=$?
end=$(date +%s)
echo "all-in-one.sh: total $((end - started)) s (install $((ready - started))" \
     "s, run $((end - ready)) s), exit status $status"
exit $status
