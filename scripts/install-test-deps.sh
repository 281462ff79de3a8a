#!/usr/bin/env bash
# Installs what the test suite needs from Debian and PyPI when it is missing:
# PostgreSQL (store tests on the second backend), nats-server (JetStream log and the
# multi-instance tests), caddy, shellcheck and systemd-analyze
# (deploy-file checks), Chromium (display page tests), procps (kill, for the signal
# tests), espeak-ng (test speech, also the kiosk's fake-microphone browser test, and offline
# text-to-speech), the official openai and
# stripe Python packages (independent clients), pocketsphinx (the offline recognizer;
# the wheel bundles its English model) and moto (an S3-compatible server).
# Does nothing when everything is present.
set -euo pipefail

packages=(postgresql nats-server caddy shellcheck systemd chromium procps espeak-ng)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
        exit 1
    fi
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "installing from Debian: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -c 'import yaml, openai, stripe' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml 'openai>=1.50,<3' 'stripe>=7,<17'
python3 -c 'import pocketsphinx' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'pocketsphinx>=5,<6'
# moto's server mode: the S3-compatible bucket of tests/objects_s3.rs.
python3 -c 'import moto.server, flask' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
