# Sourced by the tools/*.sh scripts: where the tools (tox, bindep) live.
# NOTE: a virtualenv of our own, because Debian's python3 has no pip and is
# externally managed (PEP 668); tox then builds the test virtualenvs.
TOOLS_VENV=${BLOCKACCT_TOOLS_VENV:-$(pwd)/.tools-venv}
TOX="$TOOLS_VENV/bin/tox"
BINDEP="$TOOLS_VENV/bin/bindep"
