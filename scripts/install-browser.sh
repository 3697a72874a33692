#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test, if it is missing and we can.
# Idempotent: does nothing (quickly) when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "install-browser: /usr/bin/chromium is already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: skipped, /usr/bin/chromium is missing and we are not root" \
        "(install the 'chromium' package, or the browser test will skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: skipped, /usr/bin/chromium is missing and apt-get is not available"
    exit 0
fi
echo "install-browser: installing Debian's chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
