#!/usr/bin/env bash
# Install Debian's chromium for the browser widget test (tests/browser/), only when it is missing.
# Idempotent: exits 0 at once when /usr/bin/chromium is already there. Never runs `playwright install`:
# the test drives this system chromium through the pip package `playwright`.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "installing chromium with apt-get (about 30 s, ~120 MB)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
