#!/usr/bin/env bash
# Checks the files in deploy/ with the real tools, one line per check; stops at the
# first failure with a non-zero exit. Needs caddy, shellcheck and systemd-analyze
# (Debian: apt-get install caddy shellcheck systemd); python3 with PyYAML is used for the
# compose file when present. Docker cannot build here, so the Dockerfile gets static
# checks only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ok() { printf 'ok    %s\n' "$*"; }
warn() { printf 'warn  %s\n' "$*"; }
fail() {
    printf 'FAIL  %s\n' "$1"
    if [ $# -gt 1 ] && [ -n "$2" ]; then
        printf '%s\n' "$2" | sed 's/^/      /' >&2
    fi
    exit 1
}

# Required tools, with the Debian package that provides each.
missing=()
for pair in caddy:caddy shellcheck:shellcheck systemd-analyze:systemd; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair%%:*} (Debian package: ${pair#*:})")
done
if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do
        printf 'FAIL  required tool missing: %s\n' "$m"
    done
    echo "      install with: apt-get install caddy shellcheck systemd" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# ---- Caddyfile ------------------------------------------------------------------------
# No SITE_ADDRESS/UPSTREAM: the placeholders' defaults must be enough. Caddy's storage
# goes to the temp directory rather than the caller's home.
caddy_validate() {
    env -u SITE_ADDRESS -u UPSTREAM XDG_DATA_HOME="$tmp/xdg-data" XDG_CONFIG_HOME="$tmp/xdg-config" \
        caddy validate --adapter caddyfile --config "$1" 2>&1
}
caddy_version="$(caddy version 2>/dev/null | sed -nE '1s/^v?([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/p')"
if out="$(caddy_validate deploy/Caddyfile)"; then
    ok "caddy validate deploy/Caddyfile (caddy ${caddy_version:-?})"
else
    # stream_close_delay arrived in Caddy 2.7 (the caddy:2 images have it); Debian 12
    # ships 2.6.2. On an older caddy, validate everything else and say so.
    major="${caddy_version%%.*}"
    minor="${caddy_version#*.}"
    minor="${minor%%.*}"
    if [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] && [ "$major" -eq 2 ] && [ "$minor" -lt 7 ] &&
        grep -q 'unrecognized subdirective stream_close_delay' <<<"$out"; then
        grep -vE '^[[:space:]]*stream_close_delay[[:space:]]' deploy/Caddyfile >"$tmp/Caddyfile"
        caddyfile_checked="$tmp/Caddyfile"
        out="$(caddy_validate "$tmp/Caddyfile")" || fail "caddy validate deploy/Caddyfile" "$out"
        ok "caddy validate deploy/Caddyfile (caddy $caddy_version predates stream_close_delay, which needs 2.7+: validated without that line)"
    else
        fail "caddy validate deploy/Caddyfile" "$out"
    fi
fi

# The compose file's two-instance UPSTREAM must parse as two upstreams.
out="$(UPSTREAM="stonepot-1:8080 stonepot-2:8080" XDG_DATA_HOME="$tmp/xdg-data" XDG_CONFIG_HOME="$tmp/xdg-config" \
    caddy adapt --adapter caddyfile --config "${caddyfile_checked:-deploy/Caddyfile}" 2>&1)" ||
    fail "caddy adapt deploy/Caddyfile with two upstreams" "$out"
grep -q '"dial":"stonepot-2:8080"' <<<"$out" ||
    fail "caddy adapt deploy/Caddyfile: UPSTREAM with two instances did not give two upstreams" "$out"
ok "deploy/Caddyfile balances across UPSTREAM=\"stonepot-1:8080 stonepot-2:8080\" (caddy adapt)"

# ---- shell scripts --------------------------------------------------------------------
shopt -s nullglob
scripts=(deploy/*.sh scripts/*.sh)
shopt -u nullglob
[ -f .ci/run ] && scripts+=(.ci/run)
out="$(shellcheck -x "${scripts[@]}" 2>&1)" || fail "shellcheck ${scripts[*]}" "$out"
ok "shellcheck ${scripts[*]}"

# ---- systemd unit ---------------------------------------------------------------------
# verify checks that ExecStart's binary exists, and it will not on a build machine:
# verify a copy whose ExecStart points at a stand-in executable instead. verify reports
# unknown keys and bad values as warnings with exit status 0, so any output fails.
unit=deploy/stonepot.service
mkdir -p "$tmp/unit"
printf '#!/bin/sh\nexit 0\n' >"$tmp/stonepot"
chmod +x "$tmp/stonepot"
sed "s#^ExecStart=/usr/local/bin/stonepot #ExecStart=$tmp/stonepot #" "$unit" >"$tmp/unit/stonepot.service"
if cmp -s "$unit" "$tmp/unit/stonepot.service"; then
    fail "systemd-analyze verify $unit" "ExecStart no longer starts with /usr/local/bin/stonepot; update scripts/check-deploy.sh"
fi
rc=0
out="$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$tmp/unit/stonepot.service" 2>&1)" || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    fail "systemd-analyze verify $unit" "$out"
fi
ok "systemd-analyze verify $unit (ExecStart pointed at a stand-in binary)"

# The hardening must keep the exposure score at 2.0 or below ("OK" is under 5.0).
rc=0
out="$(systemd-analyze security --offline=true --threshold=20 --no-pager "$tmp/unit/stonepot.service" 2>&1)" || rc=$?
score="$(sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p' <<<"$out")"
[ "$rc" -eq 0 ] || fail "systemd-analyze security $unit: exposure ${score:-?} is over 2.0" "$out"
ok "systemd-analyze security --offline $unit (exposure $score, limit 2.0)"

# ---- Cloud Run script -----------------------------------------------------------------
# A clean environment, so the caller's IMAGE/PROJECT_ID do not change what is printed.
rc=0
out="$(env -i PATH="$PATH" HOME="$HOME" deploy/cloudrun.sh --dry-run 2>&1)" || rc=$?
[ "$rc" -eq 0 ] || fail "deploy/cloudrun.sh --dry-run exited $rc" "$out"
for want in 'gcloud builds submit' 'gcloud run deploy' '--timeout 3600' '--session-affinity' \
    '--port 8080' '--set-secrets'; do
    # Whole words only: --timeout 36000 or --session-affinity=false must not pass.
    grep -qE -- "(^|[[:space:]])${want}([[:space:]]|\$)" <<<"$out" ||
        fail "deploy/cloudrun.sh --dry-run does not print '$want'" "$out"
done
ok "deploy/cloudrun.sh --dry-run prints gcloud run deploy with --timeout 3600 and --session-affinity"

# The canary mode, end to end against a fake gcloud and a fake /metrics.
out="$(scripts/check-canary.sh 2>&1)" || fail "scripts/check-canary.sh" "$out"
printf '%s\n' "$out"

# ---- compose file ---------------------------------------------------------------------
compose=deploy/docker-compose.prod.yml
if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' >/dev/null 2>&1; then
    out="$(python3 - "$compose" <<'PY' 2>&1
import sys
import yaml

with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
services = doc.get("services") or {}
problems = []
instances = [n for n in ("stonepot-1", "stonepot-2") if n in services]
if len(instances) != 2:
    problems.append("want two stonepot instances, stonepot-1 and stonepot-2")
for name in ("postgres", "nats", "caddy"):
    if name not in services:
        problems.append(f"no service {name}")
for name in instances:
    app = services[name]
    if "stonepot" not in str((app.get("healthcheck") or {}).get("test")):
        problems.append(f"{name} has no health check using the binary")
    deps = app.get("depends_on") or {}
    for dep in ("postgres", "nats"):
        if not isinstance(deps, dict) or (deps.get(dep) or {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for a healthy {dep}")
    env = app.get("environment") or {}
    for secret in ("SIGNING_KEY", "JWT_SECRET", "NATS_TOKEN"):
        if ":?" not in str(env.get(secret, "")):
            problems.append(f"{name}: {secret} is not required with ${{{secret}:?...}}")
    if not str(env.get("DATABASE_URL", "")).startswith("postgres://"):
        problems.append(f"{name} does not use PostgreSQL")
    if env.get("NATS_URL") != "nats://nats:4222":
        problems.append(f"{name} does not use the nats service")
upstream = str(((services.get("caddy") or {}).get("environment") or {}).get("UPSTREAM", ""))
if sorted(upstream.split()) != sorted(f"{n}:8080" for n in instances):
    problems.append(f"caddy's UPSTREAM '{upstream}' does not list every instance")
if problems:
    sys.exit("\n".join(problems))
print(" ".join(sorted(services)))
PY
)" || fail "$compose" "$out"
    ok "$compose parses as YAML (services: $out)"
else
    warn "$compose not parsed: python3 with PyYAML is not available (Debian: apt-get install python3-yaml)"
fi

# ---- Dockerfile (static: no Docker engine here) ---------------------------------------
dockerfile=deploy/Dockerfile
froms="$(grep -cE '^FROM[[:space:]]' "$dockerfile" || true)"
[ "$froms" -ge 2 ] || fail "$dockerfile has $froms FROM lines; want a multi-stage build (2 or more)"
grep -qE '^HEALTHCHECK[[:space:]]' "$dockerfile" || fail "$dockerfile has no HEALTHCHECK"
user="$(sed -nE 's/^USER[[:space:]]+([^[:space:]]+).*/\1/p' "$dockerfile" | tail -n 1)"
case "${user%%:*}" in
    "") fail "$dockerfile has no USER: the container would run as root" ;;
    root | 0) fail "$dockerfile runs as root (USER $user)" ;;
esac
[ -f "$dockerfile.dockerignore" ] || fail "$dockerfile.dockerignore is missing"
grep -qE '^/?target/?$' "$dockerfile.dockerignore" || fail "$dockerfile.dockerignore does not exclude target/"
ok "$dockerfile: $froms FROM stages, HEALTHCHECK, USER $user; $dockerfile.dockerignore excludes target/"
# The dependency layer copies each member's manifest by hand: it must list them all.
members="$(sed -nE 's/^members = \[(.*)\]/\1/p' Cargo.toml | tr -d '" ' | tr ',' ' ')"
for member in $members; do
    grep -qE "^COPY[[:space:]]+$member/Cargo.toml" "$dockerfile" ||
        fail "$dockerfile does not copy $member/Cargo.toml (a workspace member) into its dependency layer"
done
ok "$dockerfile copies the manifest of every workspace member ($members)"

echo "deploy checks passed"
