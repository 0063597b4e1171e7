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

# The Linux test guest (ceilometer_blockacct/tests/functional/fixtures/
# linux_guest.py): Debian's cloud kernel and busybox-static, downloaded
# with apt-get and unpacked with dpkg-deb -x under build/ (ignored by git),
# never installed: installing a kernel would run this host's boot hooks.
# Done once: remove that directory to fetch the current kernel again.
guest_dir=${BLOCKACCT_LINUX_GUEST_DIR:-$(pwd)/build/linux-guest}
if [ "$profile" = test ] && [ ! -e "$guest_dir/.unpacked" ]; then
    if [ -z "${apt_updated:-}" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    # NOTE: awk reads to the end: an early exit would make apt-cache
    # die of SIGPIPE, which pipefail turns into a failure.
    kernel=$(apt-cache depends linux-image-cloud-amd64 \
             | awk '/Depends: linux-image-/ && !found {print $2; found=1}')
    if [ -z "$kernel" ]; then
        echo "install-deps: no kernel package behind" \
             "linux-image-cloud-amd64" >&2
        exit 1
    fi
    echo "install-deps: apt-get download $kernel busybox-static" \
         "(unpacked in $guest_dir)"
    download=$(mktemp -d)
    # NOTE: apt drops root to _apt for downloads: let it write there.
    chmod 755 "$download"
    chown _apt "$download" 2>/dev/null || true
    (cd "$download" && apt-get download -qq "$kernel" busybox-static)
    rm -rf "$guest_dir"
    mkdir -p "$guest_dir"
    dpkg-deb -x "$download"/linux-image-*.deb "$guest_dir/kernel"
    dpkg-deb -x "$download"/busybox-static_*.deb "$guest_dir/busybox"
    rm -rf "$download"
    touch "$guest_dir/.unpacked"
fi
