#!/usr/bin/env bash
# Tests deploy/cloudrun.sh --canary against a fake `gcloud` and a fake `curl` on PATH:
# the fake gcloud records every call and which share of traffic the new revision has;
# the fake curl plays the new revision's /metrics, adding 100 requests per read with as
# many 5xx as the scenario sets for the current share. Scenarios: a healthy rollout
# (5 -> 25 -> 50 -> 100), errors above 0.5% at 25% (rolled back, never reaches 50), a
# /metrics that cannot be read (rolled back at 5%), and too few requests to judge.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

cat >"$tmp/bin/gcloud" <<'FAKE'
#!/usr/bin/env bash
# Fake gcloud: records its arguments, answers describe, tracks the canary's share.
set -euo pipefail
printf '%s\n' "$*" >>"$FAKE_DIR/gcloud.log"
case "$*" in
    "run services describe"*latestReadyRevisionName*) echo "stonepot-00001-old" ;;
    "run services describe"*latestCreatedRevisionName*) echo "stonepot-00002-new" ;;
    "run services describe"*status.url*) echo "https://stonepot-abc123-uc.a.run.app" ;;
    "run deploy"*) echo "Deploying... done" >&2 ;;
    "run services update-traffic"*)
        for a in "$@"; do
            case "$a" in
                stonepot-00002-new=*) echo "${a#*=}" >"$FAKE_DIR/share" ;;
                stonepot-00001-old=100) echo 0 >"$FAKE_DIR/share" ;;
            esac
        done
        ;;
    *)
        echo "fake gcloud: unexpected call: $*" >&2
        exit 2
        ;;
esac
FAKE

cat >"$tmp/bin/curl" <<'FAKE'
#!/usr/bin/env bash
# Fake curl for the canary's /metrics: 100 more requests per read, FAKE_ERRORS_<share>
# of them 5xx; FAKE_DOWN=1 fails like an unreachable host.
set -euo pipefail
url="${*: -1}"
printf '%s\n' "$url" >>"$FAKE_DIR/curl.log"
[ "${FAKE_DOWN:-0}" = 1 ] && exit 7
[ "$url" = "https://canary---stonepot-abc123-uc.a.run.app/metrics" ] || {
    echo "fake curl: unexpected URL $url" >&2
    exit 22
}
share="$(cat "$FAKE_DIR/share" 2>/dev/null || echo 0)"
read -r ok bad <"$FAKE_DIR/counts" 2>/dev/null || { ok=0; bad=0; }
var="FAKE_ERRORS_$share"
errors="${!var:-0}"
per_read="${FAKE_PER_READ:-100}"
ok=$((ok + per_read - errors))
bad=$((bad + errors))
echo "$ok $bad" >"$FAKE_DIR/counts"
cat <<METRICS
# TYPE stonepot_http_requests_total counter
stonepot_http_requests_total{route="/api/conversations/{id}/messages",method="POST",status="200"} $ok
stonepot_http_requests_total{route="/api/conversations/{id}/messages",method="POST",status="502"} $bad
stonepot_http_requests_total{route="/health",method="GET",status="200"} 3
stonepot_http_requests_in_flight 1
METRICS
FAKE
chmod +x "$tmp/bin/gcloud" "$tmp/bin/curl"

fail() {
    printf 'FAIL  canary: %s\n' "$1"
    [ -f "$FAKE_DIR/gcloud.log" ] && sed 's/^/      gcloud /' "$FAKE_DIR/gcloud.log" >&2
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      /' >&2
    exit 1
}

# Runs the canary in a fresh fake world; extra VAR=VALUE arguments set the scenario.
# Sets RC and OUT.
scenario() {
    FAKE_DIR="$tmp/$1"
    shift
    rm -rf "$FAKE_DIR"
    mkdir -p "$FAKE_DIR"
    RC=0
    OUT="$(env -i PATH="$tmp/bin:$PATH" HOME="$HOME" FAKE_DIR="$FAKE_DIR" \
        IMAGE=example/stonepot:new PROJECT_ID=proj REGION=us-central1 \
        CANARY_STEP_SECONDS=0 "$@" deploy/cloudrun.sh --canary 2>&1)" || RC=$?
}

traffic() { grep -o -- '--to-revisions [^ ]*' "$FAKE_DIR/gcloud.log" | cut -d' ' -f2 | tr '\n' ' '; }

# ---- a healthy rollout ----------------------------------------------------------------
scenario healthy
[ "$RC" -eq 0 ] || fail "healthy rollout exited $RC" "$OUT"
grep -q -- '^run deploy stonepot .*--image example/stonepot:new .*--no-traffic --tag canary$' "$FAKE_DIR/gcloud.log" ||
    fail "the new revision was not deployed with --no-traffic --tag canary"
want="stonepot-00002-new=5 stonepot-00002-new=25 stonepot-00002-new=50 stonepot-00002-new=100 "
[ "$(traffic)" = "$want" ] || fail "healthy rollout moved traffic as '$(traffic)', want '$want'" "$OUT"
grep -q 'serves 100%' <<<"$OUT" || fail "healthy rollout did not report completion" "$OUT"

# ---- 3% errors at 25%: rolled back, never reaches 50% -----------------------------------
scenario failing FAKE_ERRORS_25=3
[ "$RC" -eq 1 ] || fail "a failing canary exited $RC, want 1" "$OUT"
want="stonepot-00002-new=5 stonepot-00002-new=25 stonepot-00001-old=100 "
[ "$(traffic)" = "$want" ] || fail "failing canary moved traffic as '$(traffic)', want '$want'" "$OUT"
grep -q 'rolling back to stonepot-00001-old: 3 of 100 requests failed at 25%' <<<"$OUT" ||
    fail "the rollback does not say why" "$OUT"

# ---- 0.4% errors (under the 0.5% limit) pass; 0.6% do not ------------------------------
scenario under FAKE_PER_READ=1000 FAKE_ERRORS_50=4
[ "$RC" -eq 0 ] || fail "0.4% errors rolled back (limit 0.5%)" "$OUT"
scenario over FAKE_PER_READ=1000 FAKE_ERRORS_50=6
[ "$RC" -eq 1 ] || fail "0.6% errors were not rolled back (limit 0.5%)" "$OUT"
grep -q -- 'stonepot-00001-old=100' "$FAKE_DIR/gcloud.log" || fail "0.6% errors: no rollback" "$OUT"

# ---- /metrics unreadable: rolled back at the first step --------------------------------
scenario down FAKE_DOWN=1
[ "$RC" -eq 1 ] || fail "an unreadable /metrics exited $RC, want 1" "$OUT"
want="stonepot-00002-new=5 stonepot-00001-old=100 "
[ "$(traffic)" = "$want" ] || fail "unreadable /metrics moved traffic as '$(traffic)', want '$want'" "$OUT"

# ---- too few requests: watched three times per step, then judged -----------------------
scenario quiet FAKE_PER_READ=5
[ "$RC" -eq 0 ] || fail "a quiet canary exited $RC" "$OUT"
reads="$(wc -l <"$FAKE_DIR/curl.log")"
[ "$reads" -eq 16 ] || fail "a quiet canary read /metrics $reads times, want 16 (4 steps x (1 + 3))" "$OUT"

# ---- bad settings are refused before anything is deployed ------------------------------
scenario badsteps CANARY_STEPS="5 50 25 100"
if [ "$RC" -eq 0 ] || ! grep -q 'must increase' <<<"$OUT"; then
    fail "decreasing CANARY_STEPS were accepted" "$OUT"
fi
[ ! -s "$FAKE_DIR/gcloud.log" ] || fail "gcloud was called despite bad CANARY_STEPS"

echo "ok    canary: healthy rollout 5/25/50/100, rollback above 0.5% and on unreadable /metrics (fake gcloud)"
