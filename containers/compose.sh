#!/usr/bin/env bash
# `make up|down|logs|ps|wait|config ENV=dev|test|prod [GPU=1]`: the right -f files, project name
# and images, with `docker compose` (v2) or, where that is missing, `docker-compose` (v1).
#
# Usage: containers/compose.sh ACTION [extra compose args]
#   up      build the app image if its inputs changed, start detached, wait until healthy
#   down    stop and remove (test: volumes too)
#   logs    follow logs          ps   list services       wait   wait until healthy
#   config  print the merged file          exec-compose ARGS...   any compose command
# Env: ENV (dev), GPU (0/1), MONITORING (0/1: Prometheus + Alertmanager overlay),
#      KEEL_IMAGE (keel:latest), UP_TIMEOUT (seconds, 180),
#      POSTGRES_IMAGE / REDIS_IMAGE / NGINX_IMAGE (default: the official pinned images, or the
#      offline kit's when only those are present here), KEEL_SKIP_BUILD=1, KEEL_AGE_KEY_FILE.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

ENV="${ENV:-dev}"
GPU="${GPU:-0}"
ACTION="${1:-ps}"
[ $# -gt 0 ] && shift
DOCKER="${DOCKER:-/usr/bin/docker}"
[ -x "$DOCKER" ] || DOCKER=docker
OFFLINE_PREFIX="${KEEL_OFFLINE_PREFIX:-keel-offline}"

case "$ENV" in
  dev | test | prod) ;;
  *) echo "compose.sh: ENV=$ENV: use dev, test or prod (local runs without Docker: make run)" >&2; exit 2 ;;
esac

export APP_ENV="$ENV"
export KEEL_IMAGE="${KEEL_IMAGE:-keel:latest}"
PROJECT="${COMPOSE_PROJECT_NAME:-keel-$ENV}"
FILES=(-f compose.yaml -f "configs/$ENV/compose.yaml")
[ "$GPU" = 1 ] && FILES+=(-f compose.gpu.yaml)
[ "${MONITORING:-0}" = 1 ] && FILES+=(-f configs/monitoring/compose.yaml)

if "$DOCKER" compose version >/dev/null 2>&1; then
  COMPOSE=("$DOCKER" compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE=(docker-compose)
else
  echo "compose.sh: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed" >&2
  exit 1
fi
compose() { "${COMPOSE[@]}" -p "$PROJECT" "${FILES[@]}" "$@"; }

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# pick_image VAR OFFICIAL OFFLINE: keep VAR if set; else the official image when present or
# pullable is assumed; the offline kit's image when only that one is here.
pick_image() {
  local var="$1" official="$2" offline="$3"
  if [ -n "${!var:-}" ]; then return; fi
  if ! have_image "$official" && have_image "$offline"; then
    export "$var=$offline"
  fi
}
pick_image POSTGRES_IMAGE postgres:15.8-bookworm "$OFFLINE_PREFIX/postgres:15"
pick_image REDIS_IMAGE redis:7.2.5-bookworm "$OFFLINE_PREFIX/redis:7"
pick_image NGINX_IMAGE nginxinc/nginx-unprivileged:1.26.2-bookworm "$OFFLINE_PREFIX/nginx:1.22"

key_file() {
  if [ -n "${KEEL_AGE_KEY_FILE:-}" ]; then echo "$KEEL_AGE_KEY_FILE"
  elif [ "$ENV" = test ]; then echo "$ROOT/secrets/keys/test.agekey"
  else echo "${XDG_CONFIG_HOME:-$HOME/.config}/keel/keys/$ENV.agekey"
  fi
}

check_secrets() {
  local key secrets_file="secrets/$ENV.yaml" missing=()
  key="$(key_file)"
  [ -f "$secrets_file" ] || missing+=("$secrets_file")
  [ -f "$key" ] || missing+=("the $ENV age key $key")
  if [ ${#missing[@]} -gt 0 ]; then
    {
      echo "compose.sh: missing ${missing[*]}."
      echo "  Create them with: make secrets-init ENV=$ENV"
      echo "  (or point KEEL_AGE_KEY_FILE at the $ENV key you were given)"
    } >&2
    exit 1
  fi
  stage_key "$key"
}

# The key reaches the containers as a bind-mounted compose secret that keeps its host owner and
# mode (compose ignores secret uid/mode outside Swarm), so a 0600 key of your user is unreadable
# for uid 10001 in the container. Stage a copy the container can read, inside a 0700 directory
# of yours on tmpfs when there is one: other host users still cannot reach it.
stage_key() {
  local src="$1" base dir
  base="${XDG_RUNTIME_DIR:-/tmp}/keel-$(id -u)"
  dir="$base/$PROJECT"
  mkdir -p "$base" && chmod 0700 "$base"
  if [ ! -O "$base" ] || [ -L "$base" ] || [ "$(stat -c %a "$base")" != 700 ]; then
    echo "compose.sh: $base must be a directory owned by you with mode 0700" >&2
    exit 1
  fi
  mkdir -p "$dir" && chmod 0700 "$dir"
  if ! cmp -s "$src" "$dir/age_key" 2>/dev/null; then
    install -m 0644 "$src" "$dir/age_key.tmp" && mv -f "$dir/age_key.tmp" "$dir/age_key"
  fi
  export KEEL_AGE_KEY_FILE="$dir/age_key"
}

# One line per container: service name, state, health ("-" when it has no healthcheck), exit code.
states() {
  local ids
  ids="$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086
  "$DOCKER" inspect --format \
    '{{index .Config.Labels "com.docker.compose.service"}} {{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' \
    $ids
}

# Wait until every long-running container is healthy and every one-shot exited 0.
wait_healthy() {
  local timeout="${UP_TIMEOUT:-180}" start now service name state health code pending failed
  local waiting reported=0
  start=$(date +%s)
  echo "compose.sh: waiting for $PROJECT to be healthy (up to ${timeout}s)"
  while true; do
    pending=0
    failed=""
    waiting=""
    while read -r service name state health code; do
      [ -n "$service" ] || continue
      if [ "$state" = exited ] || [ "$state" = dead ]; then
        [ "$code" = 0 ] || failed+=" $service(${name#/}: exit $code)"
      elif [ "$health" = "-" ]; then
        [ "$state" = running ] || { pending=$((pending + 1)); waiting+=" $service($state)"; }
      elif [ "$health" != healthy ]; then
        pending=$((pending + 1))
        waiting+=" $service($health)"
      fi
    done < <(states)
    # A short progress line every 10 s, so a slow start does not look like a hang.
    now=$(date +%s)
    if [ -n "$waiting" ] && [ $((now - start)) -ge $((reported + 10)) ]; then
      reported=$((now - start))
      echo "compose.sh: ${reported}s, still waiting for:$waiting"
    fi
    if [ -n "$failed" ]; then
      echo "compose.sh: failed:$failed" >&2
      return 1
    fi
    if [ "$pending" = 0 ] && [ -n "$(states)" ]; then
      now=$(date +%s)
      echo "compose.sh: $PROJECT healthy after $((now - start))s"
      return 0
    fi
    now=$(date +%s)
    if [ $((now - start)) -ge "$timeout" ]; then
      echo "compose.sh: $PROJECT not healthy after ${timeout}s:" >&2
      states >&2
      return 1
    fi
    sleep 0.5
  done
}

dump_logs() {
  echo "---- $PROJECT container states ----" >&2
  states >&2 || true
  echo "---- $PROJECT logs (last 80 lines per service) ----" >&2
  compose logs --no-color --tail=80 >&2 || true
}

case "$ACTION" in
  up)
    check_secrets
    if [ "${KEEL_SKIP_BUILD:-0}" != 1 ]; then
      for var in POSTGRES_IMAGE REDIS_IMAGE NGINX_IMAGE; do
        case "${!var:-}" in "$OFFLINE_PREFIX"/*) containers/build.sh offline; break ;; esac
      done
      KEEL_IMAGE="$KEEL_IMAGE" containers/build.sh app
      if [ "${MONITORING:-0}" = 1 ]; then containers/build.sh monitoring; fi
    fi
    for var in POSTGRES_IMAGE REDIS_IMAGE; do
      image="${!var:-}"
      if [ -n "$image" ] && ! have_image "$image"; then
        echo "compose.sh: $var=$image is not here (no registry?): run make images-offline" >&2
      fi
    done
    compose up -d --no-build --remove-orphans "$@" || { dump_logs; exit 1; }
    wait_healthy || { dump_logs; exit 1; }
    compose ps
    ;;
  wait) wait_healthy || { dump_logs; exit 1; } ;;
  down)
    # Containers keep their mounts; the staged key goes with the stack.
    trap 'rm -rf "${XDG_RUNTIME_DIR:-/tmp}/keel-$(id -u)/$PROJECT"' EXIT
    if [ "$ENV" = test ]; then compose down -v --remove-orphans "$@"; else compose down --remove-orphans "$@"; fi
    ;;
  logs) compose logs -f --tail=200 "$@" ;;
  ps) compose ps "$@" ;;
  config) compose config "$@" ;;
  dump-logs) dump_logs ;;
  exec-compose) compose "$@" ;;
  *) echo "compose.sh: unknown action $ACTION (up down logs ps wait config dump-logs exec-compose)" >&2; exit 2 ;;
esac
