#!/usr/bin/env bash
# The whole test suite: what the README's second command runs and what CI calls.
#
# Starts a throwaway PostgreSQL and a nats-server with JetStream (unless
# STONEPOT_TEST_POSTGRES_URL / STONEPOT_TEST_NATS_URL are already set), checks
# the deploy files with their real tools, then runs every Rust test on both store backends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
# shellcheck source=scripts/nats.sh
source scripts/nats.sh
cleanup() {
    pg_stop
    nats_stop
}
trap cleanup EXIT
if [ -z "${STONEPOT_TEST_POSTGRES_URL:-}" ]; then
    pg_start
fi
if [ -z "${STONEPOT_TEST_NATS_URL:-}" ]; then
    nats_start
fi

echo "== deploy files"
scripts/check-deploy.sh

echo "== cargo test"
cargo test --workspace --locked "$@"

echo "== browser"
scripts/browser-test.sh

echo "== all tests passed"
