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
. tools/env.sh
started=$(date +%s)

if [ "$(id -u)" != 0 ]; then
    echo "all-in-one.sh: run as root (apt-get, a private libvirtd," \
         "RabbitMQ, PostgreSQL's own user)" >&2
    exit 2
fi

tools/install-deps.sh test
# The tox environment (.tox/all-in-one):
# created or updated, not run, so that the runner below gets the signals
# itself (^C stops every service it started; tox would kill it).
"$TOX" -e all-in-one --notest
python=$("$TOX" config -e all-in-one -k env_python |
         sed -n 's/^env_python = //p')
if [ ! -x "$python" ]; then
    echo "all-in-one.sh: no python in the tox environment all-in-one" \
         "(is [testenv:all-in-one] in tox.ini?)" >&2
    exit 1
fi
ready=$(date +%s)
echo "all-in-one.sh: installed in $((ready - started)) s"

status=0
"$python" -m tools.allinone "$@" || status=$?
end=$(date +%s)
echo "all-in-one.sh: total $((end - started)) s (install $((ready - started))" \
     "s, run $((end - ready)) s), exit status $status"
exit $status
