#!/usr/bin/env bash
# Installs Debian's chromium package when it is missing (the UI test and `make ui-check` look at the
# Prefect and MLflow UIs with it). Needs root or password-less sudo; otherwise says what to run and
# leaves the rest of the setup alone: the demo does not need a browser. Tries apt once per venv
# (stamp: .venv/.chromium-tried), so a machine without the package is not slowed down each time.
set -u
STAMP="${1:-.venv/.chromium-tried}"
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if [ -e "$STAMP" ]; then
    echo "setup: chromium is still missing (apt was tried before; delete $STAMP to try again): the UI test needs it" >&2
    exit 0
fi
touch "$STAMP"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup: chromium is missing and apt needs root: run 'sudo apt-get install chromium' (only the UI test needs it)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: chromium is missing and this is not a Debian system: install chromium by hand (only the UI test needs it)" >&2
    exit 0
fi
echo "setup: installing Debian's chromium package (for the UI test)"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || echo "setup: apt-get install chromium failed: the UI test will fail until chromium is installed" >&2
exit 0
