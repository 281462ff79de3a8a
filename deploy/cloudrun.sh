#!/usr/bin/env bash
# Deploys Stonepot to Google Cloud Run. See usage() or run with -h.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: deploy/cloudrun.sh [--dry-run] [--canary] [-h|--help]

Deploys the stonepot image to Cloud Run. With IMAGE unset, first builds the image from
deploy/Dockerfile with Cloud Build and pushes it to Artifact Registry.

Options:
  --dry-run   print the gcloud commands (and the Cloud Build config) instead of running
              them; needs neither gcloud nor credentials
  --canary    deploy the new revision with no traffic (tagged "canary"), then move
              traffic to it in steps (CANARY_STEPS), watching its error rate on
              /metrics for CANARY_STEP_SECONDS at each step; above CANARY_MAX_ERROR_RATE
              (or when /metrics cannot be read) all traffic goes back to the revision
              that served before and the script exits 1
  -h, --help  show this help

Environment (all optional; defaults in brackets):
  PROJECT_ID          Google Cloud project [gcloud config get-value project]
  REGION              Cloud Run and Artifact Registry region [us-central1]
  SERVICE             Cloud Run service name [stonepot]
  IMAGE               image to deploy; when unset one is built:
                      REGION-docker.pkg.dev/PROJECT_ID/AR_REPOSITORY/stonepot:TAG
  AR_REPOSITORY       Artifact Registry repository for built images [stonepot]
  TAG                 tag for a built image [git commit, else a UTC timestamp]
  BUILD_MACHINE_TYPE  Cloud Build machine [E2_HIGHCPU_8]
  MIN_INSTANCES       [1]     (keeps one instance warm for WebSocket clients)
  MAX_INSTANCES       [10]
  CONCURRENCY         requests (open sockets count) per instance [250]
  CPU                 [1]
  MEMORY              [512Mi]
  ALLOWED_ORIGINS     comma-separated browser origins allowed to call the API [none]
  TRUSTED_PROXIES     proxies whose X-Forwarded-For is believed [169.254.0.0/16, the
                      link-local range Cloud Run's front end connects from; check the
                      peer address in your logs]
  LOG_LEVEL           [info]
  NATS_URL            nats:// URL of a NATS server [unset: no bus]
  SIGNING_KEY_SECRET  Secret Manager secret for SIGNING_KEY  [stonepot-signing-key]
  JWT_SECRET_SECRET   Secret Manager secret for JWT_SECRET   [stonepot-jwt-secret]
  DATABASE_URL_SECRET Secret Manager secret for DATABASE_URL [stonepot-database-url]
  EXTRA_SECRETS       more ENV=secret:version pairs, comma-separated, e.g.
                      NATS_TOKEN=stonepot-nats-token:latest
  CLOUDSQL_INSTANCES  Cloud SQL connection names to attach (for a unix-socket
                      DATABASE_URL)
  SERVICE_ACCOUNT     runtime service account (needs roles/secretmanager.secretAccessor)
  ALLOW_UNAUTHENTICATED  1 = public service, 0 = IAM-authenticated callers only [1]

Canary (with --canary):
  CANARY_STEPS           traffic percentages, in order [5 25 50 100]
  CANARY_STEP_SECONDS    how long each step is watched [300]
  CANARY_MAX_ERROR_RATE  5xx share of the new revision's requests that rolls back
                         [0.005, i.e. 0.5%]
  CANARY_MIN_REQUESTS    fewer requests than this in a step are too few to judge; the
                         step is watched again, up to 3 times, then judged as it is [20]
  CANARY_METRICS_URL     the new revision's /metrics [its tag URL + /metrics]
  CANARY_METRICS_TOKEN   bearer token for /metrics, if it is protected [none]

DATABASE_URL must be durable (postgres://...): an instance's disk is in memory and
disappears with it. Create the secrets once, e.g.
  openssl rand -hex 32 | gcloud secrets create stonepot-signing-key --data-file=-
and the Artifact Registry repository once:
  gcloud artifacts repositories create stonepot --repository-format=docker --location=REGION
USAGE
}

DRY_RUN=0
CANARY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --canary) CANARY=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "error: unknown argument: $1" >&2
            usage >&2
            exit 2
            ;;
    esac
    shift
done

die() {
    echo "error: $*" >&2
    exit 1
}

# Quotes one word for a shell only when it needs it.
shell_word() {
    case "$1" in
        "" | *[!A-Za-z0-9_./:=,@%+-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
        *) printf '%s' "$1" ;;
    esac
}

# Runs a command, or in dry-run mode prints it so it can be pasted into a shell.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        local out="+" arg
        for arg in "$@"; do
            out+=" $(shell_word "$arg")"
        done
        printf '%s\n' "$out"
    else
        "$@"
    fi
}

# Joins KEY=VALUE items for a gcloud dictionary flag. gcloud splits on commas, so when
# a value has one (ALLOWED_ORIGINS), switch to gcloud's ^DELIM^ alternate-delimiter form.
gcloud_dict() {
    local joined delim
    joined="$(IFS=,; printf '%s' "$*")"
    case "$*" in
        *,*) ;;
        *)
            printf '%s' "$joined"
            return
            ;;
    esac
    # A value with a comma: use a delimiter that appears in no item.
    for delim in '@' '|' ';' '#' '~'; do
        case "$*" in
            *"$delim"*) continue ;;
        esac
        joined="$(IFS="$delim"; printf '%s' "$*")"
        printf '^%s^%s' "$delim" "$joined"
        return
    done
    die "cannot pick a delimiter for: $*"
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$DRY_RUN" = 0 ]; then
    command -v gcloud >/dev/null 2>&1 ||
        die "gcloud is not installed (Google Cloud SDK); use --dry-run to only print the commands"
fi

PROJECT_ID="${PROJECT_ID:-}"
if [ -z "$PROJECT_ID" ]; then
    if [ "$DRY_RUN" = 1 ]; then
        PROJECT_ID="PROJECT_ID"
        echo "note: PROJECT_ID is not set; printing a placeholder" >&2
    else
        PROJECT_ID="$(gcloud config get-value project 2>/dev/null || true)"
        [ -n "$PROJECT_ID" ] || die "set PROJECT_ID or run: gcloud config set project NAME"
    fi
fi
REGION="${REGION:-us-central1}"
SERVICE="${SERVICE:-stonepot}"
MIN_INSTANCES="${MIN_INSTANCES:-1}"
MAX_INSTANCES="${MAX_INSTANCES:-10}"
CONCURRENCY="${CONCURRENCY:-250}"
CPU="${CPU:-1}"
MEMORY="${MEMORY:-512Mi}"
TRUSTED_PROXIES="${TRUSTED_PROXIES:-169.254.0.0/16}"
LOG_LEVEL="${LOG_LEVEL:-info}"
ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-}"
NATS_URL="${NATS_URL:-}"
SIGNING_KEY_SECRET="${SIGNING_KEY_SECRET:-stonepot-signing-key}"
JWT_SECRET_SECRET="${JWT_SECRET_SECRET:-stonepot-jwt-secret}"
DATABASE_URL_SECRET="${DATABASE_URL_SECRET:-stonepot-database-url}"
EXTRA_SECRETS="${EXTRA_SECRETS:-}"
CLOUDSQL_INSTANCES="${CLOUDSQL_INSTANCES:-}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-}"
ALLOW_UNAUTHENTICATED="${ALLOW_UNAUTHENTICATED:-1}"

# ---- image ----------------------------------------------------------------------------
IMAGE="${IMAGE:-}"
if [ -z "$IMAGE" ]; then
    TAG="${TAG:-$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}"
    IMAGE="${REGION}-docker.pkg.dev/${PROJECT_ID}/${AR_REPOSITORY:-stonepot}/stonepot:${TAG}"

    # `gcloud builds submit --tag` only builds a Dockerfile at the root of the upload, so
    # describe the build in a config instead. The upload skips what .gitignore lists
    # (target/, data/) when there is no .gcloudignore.
    build_config="$(mktemp "${TMPDIR:-/tmp}/stonepot-cloudbuild.XXXXXX.yaml")"
    trap 'rm -f "$build_config"' EXIT
    cat >"$build_config" <<CONFIG
steps:
  - name: gcr.io/cloud-builders/docker
    env: ["DOCKER_BUILDKIT=1"]
    args: ["build", "-f", "deploy/Dockerfile", "-t", "\$_IMAGE", "."]
images: ["\$_IMAGE"]
timeout: 3600s
options:
  machineType: ${BUILD_MACHINE_TYPE:-E2_HIGHCPU_8}
CONFIG
    if [ "$DRY_RUN" = 1 ]; then
        echo "# Cloud Build config ($build_config):"
        sed 's/^/#   /' "$build_config"
    fi
    run gcloud builds submit "$ROOT" \
        --project "$PROJECT_ID" \
        --config "$build_config" \
        --substitutions "_IMAGE=$IMAGE"
fi

# ---- service --------------------------------------------------------------------------
# Cloud Run allows 10 seconds between SIGTERM and SIGKILL, so drain for less than that.
env_vars=("ENVIRONMENT=production" "LOG_LEVEL=$LOG_LEVEL" "TRUSTED_PROXIES=$TRUSTED_PROXIES"
    "SHUTDOWN_GRACE=8s")
[ -n "$ALLOWED_ORIGINS" ] && env_vars+=("ALLOWED_ORIGINS=$ALLOWED_ORIGINS")
[ -n "$NATS_URL" ] && env_vars+=("NATS_URL=$NATS_URL")

secrets="SIGNING_KEY=${SIGNING_KEY_SECRET}:latest"
secrets+=",JWT_SECRET=${JWT_SECRET_SECRET}:latest"
secrets+=",DATABASE_URL=${DATABASE_URL_SECRET}:latest"
[ -n "$EXTRA_SECRETS" ] && secrets+=",$EXTRA_SECRETS"

deploy=(
    gcloud run deploy "$SERVICE"
    --project "$PROJECT_ID"
    --region "$REGION"
    --image "$IMAGE"
    --port 8080
    # WebSocket and SSE connections live as long as a request may: 60 minutes at most.
    --timeout 3600
    # Send a client's requests to the same instance while it lives (reconnects land
    # where the session's state is).
    --session-affinity
    --min-instances "$MIN_INSTANCES"
    --max-instances "$MAX_INSTANCES"
    --concurrency "$CONCURRENCY"
    --cpu "$CPU"
    --memory "$MEMORY"
    --set-env-vars "$(gcloud_dict "${env_vars[@]}")"
    --set-secrets "$secrets"
)
[ -n "$CLOUDSQL_INSTANCES" ] && deploy+=(--add-cloudsql-instances "$CLOUDSQL_INSTANCES")
[ -n "$SERVICE_ACCOUNT" ] && deploy+=(--service-account "$SERVICE_ACCOUNT")
if [ "$ALLOW_UNAUTHENTICATED" = 1 ]; then
    deploy+=(--allow-unauthenticated)
else
    deploy+=(--no-allow-unauthenticated)
fi

if [ "$CANARY" = 1 ]; then
    # shellcheck source=deploy/canary.sh
    . "$ROOT/deploy/canary.sh"
    canary_deploy "${deploy[@]}"
    exit $?
fi

run "${deploy[@]}"

if [ "$DRY_RUN" = 0 ]; then
    url="$(gcloud run services describe "$SERVICE" --project "$PROJECT_ID" --region "$REGION" \
        --format 'value(status.url)')"
    echo "deployed $IMAGE to $url"
fi
