#!/bin/sh
# Build Keel's images with caching: an image is rebuilt only when it is missing or its inputs
# (the files that define it, its build args and its parent image) changed. The inputs hash is
# stored in the image label org.keel.inputs.
#
# Usage: containers/build.sh [TARGET...]   (default: offline)
#   base      Debian bookworm minbase from debootstrap      -> $KEEL_OFFLINE_PREFIX/debian:bookworm
#   python    Python 3.11 from Debian packages              -> .../python:3.11
#   postgres  PostgreSQL 15 (official env contract)         -> .../postgres:15
#   redis     Redis 7 (password from a file)                -> .../redis:7
#   nginx     nginx, unprivileged on 8080                   -> .../nginx:1.22
#   registry  image registry (docker-registry), for Swarm   -> .../registry:2
#   monitoring  Prometheus 2.42 + Alertmanager 0.25         -> .../prometheus:2.42
#   offline   all of the above
#   app       the Containerfile image                       -> $KEEL_IMAGE (keel:latest)
#   all       offline + app
# Env: KEEL_IMAGE, KEEL_OFFLINE_PREFIX (keel-offline), BASE_IMAGE (app base; default the offline
# python image), FORCE=1 (rebuild), DOCKER (/usr/bin/docker: one client, one build cache).
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DOCKER="${DOCKER:-/usr/bin/docker}"
PREFIX="${KEEL_OFFLINE_PREFIX:-keel-offline}"
KEEL_IMAGE="${KEEL_IMAGE:-keel:latest}"
BASE="$PREFIX/debian:bookworm"
PYTHON="$PREFIX/python:3.11"
APP_BASE="${BASE_IMAGE:-$PYTHON}"
FORCE="${FORCE:-0}"

log() { printf '%s build.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# hash_inputs WORDS... : sha256 over the given files/dirs (content and path) and literal words.
hash_inputs() {
  {
    for item in "$@"; do
      if [ -d "$item" ]; then
        find "$item" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print | LC_ALL=C sort |
          while IFS= read -r f; do printf '%s ' "$f"; sha256sum <"$f"; done
      elif [ -f "$item" ]; then
        printf '%s ' "$item"; sha256sum <"$item"
      else
        printf 'word %s\n' "$item"
      fi
    done
  } | sha256sum | cut -c1-32
}

image_id() { "$DOCKER" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
image_inputs() {
  "$DOCKER" image inspect --format '{{index .Config.Labels "org.keel.inputs"}}' "$1" 2>/dev/null || true
}

# up_to_date IMAGE HASH: 0 when IMAGE exists with that inputs hash (and FORCE is not set).
up_to_date() {
  [ "$FORCE" != 1 ] && [ "$(image_inputs "$1")" = "$2" ]
}

build_base() {
  hash="$(hash_inputs containers/base "${MIRROR:-deb.debian.org}")"
  if up_to_date "$BASE" "$hash"; then log "$BASE up to date"; return; fi
  log "building $BASE (debootstrap, ~30 s)"
  containers/base/mkrootfs.sh "$BASE" "$hash"
}

# build_dir NAME IMAGE: containers/NAME/Containerfile on top of the offline base.
build_dir() {
  name="$1"; image="$2"; parent="${3:-$BASE}"
  hash="$(hash_inputs "containers/$name" "$(image_id "$parent")")"
  if up_to_date "$image" "$hash"; then log "$image up to date"; return; fi
  log "building $image"
  "$DOCKER" build -q -f "containers/$name/Containerfile" --build-arg "BASE_IMAGE=$parent" \
    --label "org.keel.inputs=$hash" -t "$image" "containers/$name" >/dev/null
}

sync_ca_certs() {
  # Extra CAs of this host (TLS-intercepting proxy) so builds can reach PyPI.
  for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$crt" ] || continue
    cmp -s "$crt" "containers/ca-certificates/$(basename "$crt")" ||
      cp "$crt" "containers/ca-certificates/$(basename "$crt")"
  done
}

build_app() {
  if [ "$APP_BASE" = "$PYTHON" ]; then build_python; fi
  sync_ca_certs
  parent_id="$(image_id "$APP_BASE")"
  if [ -z "$parent_id" ]; then
    log "base image $APP_BASE is not here; set BASE_IMAGE or run: containers/build.sh python"
    exit 1
  fi
  # configs/ minus the Compose overlays and proxy config, which never enter the image.
  # shellcheck disable=SC2046
  hash="$(hash_inputs Containerfile .dockerignore pyproject.toml uv.lock README.md src \
    $(find configs -type f ! -name compose.yaml ! -name nginx.conf | LC_ALL=C sort) \
    secrets containers/app containers/ca-certificates "$parent_id")"
  if up_to_date "$KEEL_IMAGE" "$hash"; then log "$KEEL_IMAGE up to date"; return; fi
  log "building $KEEL_IMAGE on $APP_BASE"
  revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)"
  created="$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)"
  build_log="${BUILD_LOG:-/tmp/keel-image-build.log}"
  log "full build output: $build_log"
  "$DOCKER" build -f Containerfile \
    --build-arg "BASE_IMAGE=$APP_BASE" \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
    --label "org.keel.inputs=$hash" -t "$KEEL_IMAGE" . >"$build_log" 2>&1 &
  build_pid=$!
  # A short progress line every 15 s (the build's last step), so minutes of silence do not
  # look like a hang.
  waited=0
  while kill -0 "$build_pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if [ $((waited % 15)) = 0 ] && kill -0 "$build_pid" 2>/dev/null; then
      log "still building $KEEL_IMAGE (${waited}s): $(grep -E '^(#[0-9]+ \[|Step )' "$build_log" | tail -n1 | cut -c1-80)"
    fi
  done
  wait "$build_pid" || {
      tail -n 60 "$build_log" >&2
      exit 1
    }
  log "built $KEEL_IMAGE ($("$DOCKER" image inspect --format '{{.Size}}' "$KEEL_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_python() { build_base; build_dir python "$PYTHON"; }

[ $# -gt 0 ] || set -- offline
for target in "$@"; do
  case "$target" in
    base) build_base ;;
    python) build_python ;;
    postgres) build_base; build_dir postgres "$PREFIX/postgres:15" ;;
    redis) build_base; build_dir redis "$PREFIX/redis:7" ;;
    nginx) build_base; build_dir nginx "$PREFIX/nginx:1.22" ;;
    registry) build_base; build_dir registry "$PREFIX/registry:2" ;;
    monitoring) build_base; build_dir prometheus "$PREFIX/prometheus:2.42" ;;
    offline)
      build_python
      build_dir postgres "$PREFIX/postgres:15"
      build_dir redis "$PREFIX/redis:7"
      build_dir nginx "$PREFIX/nginx:1.22"
      build_dir registry "$PREFIX/registry:2"
      build_dir prometheus "$PREFIX/prometheus:2.42"
      ;;
    app) build_app ;;
    all) "$0" offline; build_app ;;
    *) echo "build.sh: unknown target $target (base python postgres redis nginx registry monitoring offline app all)" >&2; exit 2 ;;
  esac
done
