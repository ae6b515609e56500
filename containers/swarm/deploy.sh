#!/usr/bin/env bash
# `make deploy ENV=prod [GPU=1]` / `make undeploy ENV=prod`: push the images to the cluster's
# registry, then `keel stack deploy` with those immutable references (docs/cluster.md).
#
# Usage: containers/swarm/deploy.sh deploy|undeploy ENV [--gpu]
# Env: DOCKER_HOST (a manager; default: the test cluster's node 1), REGISTRY (see images.sh),
#      KEEL_IMAGE (keel:latest), IMAGES=load (docker save|load per node instead of the
#      registry), SKIP_PUSH=1 (use KEEL_IMAGE/POSTGRES_IMAGE/... as given), KEEL (keel command).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ACTION="${1:-}"
ENV_NAME="${2:-}"
shift 2 || true
KEEL="${KEEL:-uv run --frozen keel}"
PREFIX="${KEEL_OFFLINE_PREFIX:-keel-offline}"
export DOCKER_HOST="${DOCKER_HOST:-$("$HERE/cluster.sh" host 1)}"

say() { printf '%s deploy.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

case "$ENV_NAME" in
  dev | test | prod) ;;
  *) say "ENV='$ENV_NAME': use dev, test or prod"; exit 2 ;;
esac

if [ "$ACTION" = undeploy ]; then
  exec $KEEL stack rm "$ENV_NAME"
fi
[ "$ACTION" = deploy ] || { say "usage: deploy.sh deploy|undeploy ENV [--gpu]"; exit 2; }

if [ "${SKIP_PUSH:-0}" != 1 ]; then
  local_images=("${KEEL_IMAGE:-keel:latest}" "$PREFIX/postgres:15" "$PREFIX/redis:7" "$PREFIX/nginx:1.22")
  if [ "${IMAGES:-registry}" = load ]; then
    # Fallback without a registry: every node gets the images from this host.
    "$HERE/images.sh" load "${local_images[@]}"
    refs=("${local_images[@]}")
  else
    mapfile -t refs < <(LOCAL_HOST=unix:///var/run/docker.sock MANAGER_HOST="$DOCKER_HOST" "$HERE/images.sh" push "${local_images[@]}")
    [ ${#refs[@]} = 4 ] || { say "push did not return the four image references"; exit 1; }
  fi
  export KEEL_IMAGE="${refs[0]}" POSTGRES_IMAGE="${refs[1]}" REDIS_IMAGE="${refs[2]}" NGINX_IMAGE="${refs[3]}"
  export KEEL_GPU_IMAGE="${KEEL_GPU_IMAGE:-$KEEL_IMAGE}"
fi
say "deploying $ENV_NAME to $DOCKER_HOST with $KEEL_IMAGE"
cd "$ROOT"
exec $KEEL stack deploy "$ENV_NAME" "$@"
