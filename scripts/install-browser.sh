#!/usr/bin/env bash
# Installs the headless browser used by tests/serve/test_dashboard_browser.py: Debian's `chromium`
# and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver). Nothing is downloaded outside
# the apt repositories. A no-op when chromium is already there, or when apt-get cannot be used
# (not Debian/Ubuntu, or not root and no password-less sudo); the browser test then skips itself.
set -uo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "install-browser: chromium and chromedriver already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; skipping (the browser test will be skipped)"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-browser: not root and no password-less sudo; skipping (the browser test will be skipped)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver; }; then
    echo "install-browser: apt-get failed; continuing without a browser (the browser test will be skipped)" >&2
    exit 0
fi
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium installed')"
