#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 in a temp directory, as a non-root user.
#
#   source scripts/postgres.sh && pg_start   # exports STONEPOT_TEST_POSTGRES_URL
#   pg_stop                                  # stops it and removes the directory
#
# Fails loudly when PostgreSQL is not installed: the store tests must run on both
# backends, never skip one.

pg_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return
        fi
    done
    return 1
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_start() {
    local bindir
    if ! bindir="$(pg_bindir)"; then
        echo "error: PostgreSQL is not installed (Debian: apt-get install postgresql); .ci/run installs it" >&2
        return 1
    fi
    PG_DIR="$(mktemp -d /tmp/stonepot-pg.XXXXXX)"
    PG_PORT="$(pg_free_port)"
    PG_RUN=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root: use an unprivileged account.
        id stonepot-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin stonepot-pg
        chown stonepot-pg "$PG_DIR"
        PG_RUN=(runuser -u stonepot-pg --)
    fi
    "${PG_RUN[@]}" "$bindir/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        return 1
    }
    "${PG_RUN[@]}" "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off -c max_connections=300" \
        start >/dev/null || {
        cat "$PG_DIR/server.log" >&2
        return 1
    }
    PG_BINDIR="$bindir"
    export PG_DIR PG_PORT PG_BINDIR
    export STONEPOT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    export PATH="$bindir:$PATH"
    echo "postgres: started on 127.0.0.1:$PG_PORT ($PG_DIR)"
}

pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        "${PG_RUN[@]}" "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
        echo "postgres: stopped"
    fi
}
