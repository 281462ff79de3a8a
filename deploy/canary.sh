# shellcheck shell=bash
# Canary rollout for deploy/cloudrun.sh --canary (sourced by it: uses its run, die,
# DRY_RUN, SERVICE, PROJECT_ID and REGION).
#
# 1. Note the revision serving now: the one to roll back to.
# 2. Deploy the new revision with no traffic, tagged "canary" (it gets its own URL,
#    https://canary---<service host>, which reaches only it).
# 3. For each step in CANARY_STEPS (5 25 50 100): send that share of traffic to it,
#    read its /metrics before and after CANARY_STEP_SECONDS, and compute the share of
#    its requests in between that were answered 5xx. Above CANARY_MAX_ERROR_RATE, or
#    when /metrics cannot be read, send all traffic back to the previous revision and
#    fail.
#
# /metrics counts per instance: the tag URL reaches one instance of the new revision at
# a time, which is a sample of it, not all of it. Counters that went down (an instance
# restarted) count from zero.

CANARY_STEPS="${CANARY_STEPS:-5 25 50 100}"
CANARY_STEP_SECONDS="${CANARY_STEP_SECONDS:-300}"
CANARY_MAX_ERROR_RATE="${CANARY_MAX_ERROR_RATE:-0.005}"
CANARY_MIN_REQUESTS="${CANARY_MIN_REQUESTS:-20}"
CANARY_METRICS_URL="${CANARY_METRICS_URL:-}"
CANARY_METRICS_TOKEN="${CANARY_METRICS_TOKEN:-}"

# "TOTAL ERRORS" of stonepot_http_requests_total in a Prometheus text on stdin.
canary_counts() {
    awk '/^stonepot_http_requests_total\{/ {
            n = $NF + 0
            total += n
            if ($0 ~ /status="5[0-9][0-9]"/) errors += n
        }
        END { printf "%d %d\n", total, errors }'
}

# Reads the new revision's /metrics; prints "TOTAL ERRORS", fails when unreadable.
canary_scrape() {
    local args=(-fsS --max-time 10)
    [ -n "$CANARY_METRICS_TOKEN" ] && args+=(-H "Authorization: Bearer $CANARY_METRICS_TOKEN")
    local text
    text="$(curl "${args[@]}" "$CANARY_METRICS_URL")" || return 1
    grep -q '^stonepot_http_requests_total{' <<<"$text" || return 1
    canary_counts <<<"$text"
}

# Whether ERRORS / TOTAL is above the limit (false when TOTAL is 0).
canary_over() {
    awk -v e="$2" -v t="$1" -v max="$CANARY_MAX_ERROR_RATE" 'BEGIN { exit !(t > 0 && e / t > max) }'
}

canary_rollback() {
    local previous="$1" why="$2"
    echo "canary: rolling back to $previous: $why" >&2
    run gcloud run services update-traffic "$SERVICE" --project "$PROJECT_ID" --region "$REGION" \
        --to-revisions "$previous=100"
}

# Deploys with the `gcloud run deploy ...` command in "$@", then steps traffic over.
canary_deploy() {
    local scope=(--project "$PROJECT_ID" --region "$REGION")
    case "$CANARY_MAX_ERROR_RATE" in
        "" | *[!0-9.]* | *.*.*) die "CANARY_MAX_ERROR_RATE must be a fraction such as 0.005" ;;
    esac
    case "$CANARY_STEP_SECONDS$CANARY_MIN_REQUESTS" in
        *[!0-9]*) die "CANARY_STEP_SECONDS and CANARY_MIN_REQUESTS must be whole numbers" ;;
    esac
    local pct last=""
    for pct in $CANARY_STEPS; do
        case "$pct" in
            "" | *[!0-9]*) die "CANARY_STEPS: '$pct' is not a percentage" ;;
        esac
        { [ "$pct" -ge 1 ] && [ "$pct" -le 100 ]; } || die "CANARY_STEPS: $pct is not between 1 and 100"
        [ -z "$last" ] || [ "$pct" -gt "$last" ] || die "CANARY_STEPS must increase"
        last="$pct"
    done
    [ "$last" = 100 ] || die "CANARY_STEPS must end at 100"

    local previous new url
    if [ "$DRY_RUN" = 1 ]; then
        previous="PREVIOUS_REVISION"
        new="NEW_REVISION"
        run gcloud run services describe "$SERVICE" "${scope[@]}" --format 'value(status.latestReadyRevisionName)'
    else
        previous="$(gcloud run services describe "$SERVICE" "${scope[@]}" \
            --format 'value(status.latestReadyRevisionName)')" ||
            die "cannot read service $SERVICE (a canary needs a revision already serving)"
        [ -n "$previous" ] || die "service $SERVICE has no ready revision; deploy once without --canary"
    fi

    run "$@" --no-traffic --tag canary

    if [ "$DRY_RUN" = 0 ]; then
        new="$(gcloud run services describe "$SERVICE" "${scope[@]}" \
            --format 'value(status.latestCreatedRevisionName)')" || die "cannot read the new revision"
        if [ -z "$new" ] || [ "$new" = "$previous" ]; then
            die "no new revision was created (still $previous)"
        fi
        if [ -z "$CANARY_METRICS_URL" ]; then
            url="$(gcloud run services describe "$SERVICE" "${scope[@]}" --format 'value(status.url)')" ||
                die "cannot read the service URL"
            case "$url" in
                https://*) CANARY_METRICS_URL="https://canary---${url#https://}/metrics" ;;
                *) die "unexpected service URL '$url'; set CANARY_METRICS_URL" ;;
            esac
        fi
        echo "canary: $new (previous $previous), watching $CANARY_METRICS_URL"
    fi

    local before after total errors tries
    for pct in $CANARY_STEPS; do
        run gcloud run services update-traffic "$SERVICE" "${scope[@]}" --to-revisions "$new=$pct"
        if [ "$DRY_RUN" = 1 ]; then
            echo "# watch the 5xx rate of $new on /metrics for ${CANARY_STEP_SECONDS}s; above $CANARY_MAX_ERROR_RATE:"
            echo "#   gcloud run services update-traffic $SERVICE --to-revisions $previous=100"
            continue
        fi
        before="$(canary_scrape)" || {
            canary_rollback "$previous" "cannot read $CANARY_METRICS_URL"
            return 1
        }
        tries=0
        while :; do
            sleep "$CANARY_STEP_SECONDS"
            after="$(canary_scrape)" || {
                canary_rollback "$previous" "cannot read $CANARY_METRICS_URL"
                return 1
            }
            # A counter that went down is a restarted instance: count from zero.
            if [ "${after% *}" -lt "${before% *}" ] || [ "${after#* }" -lt "${before#* }" ]; then
                before="0 0"
            fi
            total=$((${after% *} - ${before% *}))
            errors=$((${after#* } - ${before#* }))
            if [ "$total" -lt "$CANARY_MIN_REQUESTS" ] && [ "$tries" -lt 2 ]; then
                tries=$((tries + 1))
                echo "canary: $pct%: only $total requests so far; watching longer"
                continue
            fi
            break
        done
        if canary_over "$total" "$errors"; then
            canary_rollback "$previous" "$errors of $total requests failed at $pct% (limit $CANARY_MAX_ERROR_RATE)"
            return 1
        fi
        echo "canary: $pct%: $errors of $total requests failed (limit $CANARY_MAX_ERROR_RATE)"
    done
    echo "canary: $new serves 100%"
}
