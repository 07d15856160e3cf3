#!/bin/sh
# Bootstraps everything the demo and the tests need on a fresh machine:
# a virtualenv with the package and its dev extras, and mosquitto (plus shellcheck for the
# init-script test, zbar-tools for the QR code scan test, chromium and chromium-driver for the
# web display's browser tests) from the distribution when
# missing. Idempotent; safe to run every time.
set -eu
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

have_mosquitto() {
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || [ -x /usr/local/sbin/mosquitto ]
}

apt_install() {
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        return 1
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! have_mosquitto; then
    echo "setup: installing mosquitto (apt-get)" >&2
    if ! apt_install mosquitto || ! have_mosquitto; then
        echo "setup: mosquitto is missing and could not be installed (need root or sudo with apt-get);" >&2
        echo "setup: install the 'mosquitto' broker package by hand, then run this again." >&2
        exit 1
    fi
fi
if ! command -v shellcheck >/dev/null 2>&1; then
    apt_install shellcheck || echo "setup: shellcheck not installed; the init-script lint test will skip" >&2
fi
if ! command -v zbarimg >/dev/null 2>&1; then
    apt_install zbar-tools || echo "setup: zbar-tools not installed; the QR code scan test will skip" >&2
fi
if ! command -v chromedriver >/dev/null 2>&1; then
    echo "setup: installing chromium and chromium-driver (apt-get) for the web display's browser tests" >&2
    apt_install chromium chromium-driver || echo "setup: chromium not installed; the browser tests will skip" >&2
fi

stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e '.[dev,host]'
    touch "$stamp"
fi
