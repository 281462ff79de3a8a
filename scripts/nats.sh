#!/usr/bin/env bash
# Starts a throwaway nats-server with JetStream on 127.0.0.1, its store in a temp directory.
#
#   source scripts/nats.sh && nats_start   # exports STONEPOT_TEST_NATS_URL (and _NATS_BIN)
#   nats_stop                              # stops it and removes the directory
#
# Fails loudly when nats-server is not installed: CI always runs the JetStream tests.
# The multi-instance tests stop and restart their own nats-server; STONEPOT_TEST_NATS_BIN
# tells them which binary to use.

nats_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

nats_start() {
    local bin
    if ! bin="$(command -v nats-server)"; then
        echo "error: nats-server is not installed (Debian: apt-get install nats-server); .ci/run installs it" >&2
        return 1
    fi
    NATS_DIR="$(mktemp -d /tmp/stonepot-nats.XXXXXX)"
    NATS_PORT="$(nats_free_port)"
    "$bin" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_DIR/js" -l "$NATS_DIR/server.log" &
    NATS_PID=$!
    local _
    for _ in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $NATS_PORT), 0.2)" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if ! kill -0 "$NATS_PID" 2>/dev/null; then
        cat "$NATS_DIR/server.log" >&2
        return 1
    fi
    export NATS_DIR NATS_PORT NATS_PID
    export STONEPOT_TEST_NATS_URL="nats://127.0.0.1:$NATS_PORT"
    export STONEPOT_TEST_NATS_BIN="$bin"
    echo "nats: started on 127.0.0.1:$NATS_PORT with JetStream ($NATS_DIR)"
}

nats_stop() {
    if [ -n "${NATS_PID:-}" ]; then
        kill "$NATS_PID" 2>/dev/null || true
        wait "$NATS_PID" 2>/dev/null || true
        rm -rf "$NATS_DIR"
        echo "nats: stopped"
    fi
}
