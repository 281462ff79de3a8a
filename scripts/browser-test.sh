#!/usr/bin/env bash
# Runs the headless-Chromium page tests (display, kiosk with text and voice, kitchen,
# storefront) against a freshly started server, and the kiosk's relay-mode barge-in
# against a second one in relay mode (with a fake realtime model the test runs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    echo "error: Chromium is not installed (Debian: apt-get install chromium)" >&2
    exit 1
fi
(cd tests/browser && npm install --no-audit --no-fund --silent)
node tests/browser/kiosk_worklet.test.mjs
node tests/browser/kiosk_player.test.mjs
cargo build --locked -p stonepot-server
dir="$(mktemp -d /tmp/stonepot-browser.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
key="sp_browser_$RANDOM$RANDOM"
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/stonepot"
# The kitchen test also signs in with a staff token, issued by the CLI with the same secret.
export JWT_SECRET="browser-test-jwt-secret-$RANDOM$RANDOM$RANDOM"
(cd "$dir" && STONEPOT_DEMO_KEY="$key" LOG_LEVEL=warn exec "$bin" serve --demo --port "$port" >"$dir/server.log" 2>&1) &
server=$!
# A second server in relay voice mode, talking to the fake OpenAI Realtime server that
# kiosk_relay_barge_in.test.mjs runs on $fake_port (the server connects to it only when
# the page starts voice). Its text-model URL is a closed port: nothing leaves the machine.
relay_dir="$(mktemp -d /tmp/stonepot-browser-relay.XXXXXX)"
relay_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fake_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(cd "$relay_dir" && STONEPOT_DEMO_KEY="$key" LOG_LEVEL=warn VOICE_MODE=relay REALTIME_PROVIDER=openai \
    OPENAI_API_KEY=sk-browser-fake OPENAI_BASE_URL=http://127.0.0.1:9 \
    OPENAI_REALTIME_URL="ws://127.0.0.1:$fake_port/v1/realtime" \
    exec "$bin" serve --demo --port "$relay_port" >"$relay_dir/server.log" 2>&1) &
relay_server=$!
cleanup() {
    kill "$server" "$relay_server" 2>/dev/null || true
    wait "$server" "$relay_server" 2>/dev/null || true
    rm -rf "$dir" "$relay_dir"
}
trap cleanup EXIT
for p in "$port" "$relay_port"; do
    for _ in $(seq 100); do
        python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$p/health', timeout=1)" 2>/dev/null && break
        sleep 0.1
    done
done
STONEPOT_URL="http://127.0.0.1:$port" STONEPOT_KEY="$key" node tests/browser/display.test.mjs
STONEPOT_URL="http://127.0.0.1:$port" node tests/browser/kiosk.test.mjs
# Speaks to the kiosk through Chromium's fake microphone (espeak-ng, the server's
# pocketsphinx: scripts/install-test-deps.sh).
STONEPOT_URL="http://127.0.0.1:$port" node tests/browser/kiosk_voice.test.mjs
# Barge-in in relay mode: the page's player stops on `interrupted` and reports what it played.
STONEPOT_URL="http://127.0.0.1:$relay_port" STONEPOT_REALTIME_PORT="$fake_port" \
    node tests/browser/kiosk_relay_barge_in.test.mjs
staff_token="$(cd "$dir" && "$bin" token --role staff --tenant demo-restaurant --subject browser-tablet --ttl 600)"
STONEPOT_URL="http://127.0.0.1:$port" STONEPOT_KEY="$key" STONEPOT_STAFF_TOKEN="$staff_token" \
    node tests/browser/kitchen.test.mjs
STONEPOT_URL="http://127.0.0.1:$port" STONEPOT_KEY="$key" node tests/browser/storefront.test.mjs
