#!/usr/bin/env bash
# Get Keel's images onto Swarm nodes without a public registry.
#
# Usage: containers/swarm/images.sh ACTION [IMAGE...]
#   registry        run the cluster's registry (containers/registry, Debian's docker-registry) as
#                   the service keel-registry on the node labelled keel.registry=true; wait for it
#   push IMAGE...   tag each local IMAGE as $REGISTRY/NAME:TAG and push it; prints the new refs
#   load IMAGE...   the fallback without a registry: docker save | docker load on every node
#   pull REF        pull REF on every node (measures distribution; deploys pull by themselves)
# Env: DOCKER (/usr/bin/docker), LOCAL_HOST (the daemon holding the built images: the host's),
#      MANAGER_HOST (a manager's DOCKER_HOST; default: the test cluster's node 1),
#      PUSH_HOST (the daemon that pushes; default MANAGER_HOST, since this machine's own daemon
#      cannot reach the test cluster's network), REGISTRY (host:port; default: node 1:5000),
#      NODE_HOSTS (space-separated DOCKER_HOSTs of every node, for load/pull; default: the test
#      cluster's nodes).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DOCKER="${DOCKER:-/usr/bin/docker}"
CLUSTER="$HERE/cluster.sh"
LOCAL_HOST="${LOCAL_HOST:-unix:///var/run/docker.sock}"
MANAGER_HOST="${MANAGER_HOST:-$("$CLUSTER" host 1)}"
PUSH_HOST="${PUSH_HOST:-$MANAGER_HOST}"
REGISTRY="${REGISTRY:-$("$CLUSTER" addr 1):5000}"
REGISTRY_IMAGE="${REGISTRY_IMAGE:-${KEEL_OFFLINE_PREFIX:-keel-offline}/registry:2}"
if [ -z "${NODE_HOSTS:-}" ]; then
  NODE_HOSTS=""
  for n in $(seq 1 "${KSW_NODES:-3}"); do NODE_HOSTS+="$("$CLUSTER" host "$n") "; done
fi

say() { printf '%s images.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }
at() { local host="$1"; shift; "$DOCKER" -H "$host" "$@"; }
image_id() { at "$1" image inspect --format '{{.Id}}' "$2" 2>/dev/null || true; }

# copy IMAGE HOST: docker save | docker load, skipped when HOST already has that image id.
copy() {
  local image="$1" host="$2" id
  id="$(image_id "$LOCAL_HOST" "$image")"
  [ -n "$id" ] || die "$image is not on $LOCAL_HOST: build it first (containers/build.sh all)"
  if [ "$(image_id "$host" "$image")" = "$id" ]; then return; fi
  at "$LOCAL_HOST" save "$image" | at "$host" load -q >/dev/null ||
    die "could not load $image into $host"
}

registry_answers() {
  # From the cluster's network (the test cluster's node 1 namespace when it exists): the
  # registry listens there only.
  local enter=()
  [ -e /run/netns/ksw1 ] && enter=(nsenter --net=/run/netns/ksw1)
  "${enter[@]}" bash -c "exec 3<>/dev/tcp/${REGISTRY%:*}/${REGISTRY#*:} && printf 'GET /v2/ HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3" \
    >/dev/null 2>&1
}

registry() {
  local node
  node="$(at "$MANAGER_HOST" node ls -q --filter node.label=keel.registry=true | head -n1)"
  [ -n "$node" ] || die "no node has the label keel.registry=true: docker node update --label-add keel.registry=true NODE"
  # The registry image itself cannot come from the registry.
  for host in $NODE_HOSTS; do
    if [ "$(at "$host" info --format '{{.Swarm.NodeID}}' 2>/dev/null)" = "$node" ]; then copy "$REGISTRY_IMAGE" "$host"; fi
  done
  copy "$REGISTRY_IMAGE" "$MANAGER_HOST"
  if ! at "$MANAGER_HOST" service inspect keel-registry >/dev/null 2>&1; then
    at "$MANAGER_HOST" service create -d --no-resolve-image --name keel-registry \
      --constraint node.labels.keel.registry==true \
      --publish "mode=host,target=5000,published=${REGISTRY#*:}" \
      --mount type=volume,source=keel-registry,target=/var/lib/registry \
      --read-only --cap-drop ALL --restart-condition any \
      --health-cmd "bash -c 'exec 3<>/dev/tcp/127.0.0.1/5000 && printf \"GET /v2/ HTTP/1.0\\r\\n\\r\\n\" >&3 && grep -q \" 200 \" <&3'" \
      --health-interval 2s --health-retries 5 \
      "$REGISTRY_IMAGE" >/dev/null
  fi
  local i
  for i in $(seq 1 60); do
    registry_answers && { say "registry at $REGISTRY answers"; return; }
    sleep 0.5
  done
  at "$MANAGER_HOST" service ps --no-trunc keel-registry >&2 || true
  die "registry $REGISTRY does not answer after 30 s (service keel-registry)"
}

push() {
  [ $# -gt 0 ] || die "push needs IMAGE arguments"
  local image name ref
  for image in "$@"; do
    name="${image%%:*}"; name="${name##*/}"
    # A tag per content: a release is an immutable reference (the image id), never :latest.
    ref="$REGISTRY/$name:$(image_id "$LOCAL_HOST" "$image" | cut -c8-19)"
    [ "$ref" != "$REGISTRY/$name:" ] || die "$image is not on $LOCAL_HOST: build it first"
    if [ "$PUSH_HOST" != "$LOCAL_HOST" ]; then copy "$image" "$PUSH_HOST"; fi
    at "$PUSH_HOST" tag "$image" "$ref"
    if ! out="$(at "$PUSH_HOST" push "$ref" 2>&1)"; then
      die "push of $ref failed: registry $REGISTRY not reachable from $PUSH_HOST? ($(printf '%s' "$out" | tail -n1))"
    fi
    echo "$ref"
  done
}

load() {
  [ $# -gt 0 ] || die "load needs IMAGE arguments"
  local image host started
  for image in "$@"; do
    for host in $NODE_HOSTS; do
      started=$(date +%s.%N)
      copy "$image" "$host"
      say "$image on $host in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s"
    done
  done
}

pull() {
  [ $# = 1 ] || die "pull needs one REF"
  local host started
  for host in $NODE_HOSTS; do
    started=$(date +%s.%N)
    at "$host" pull -q "$1" >/dev/null || die "node $host cannot pull $1 from $REGISTRY"
    say "$1 pulled on $host in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s"
  done
}

cd "$ROOT"
ACTION="${1:-}"
[ $# -gt 0 ] && shift
case "$ACTION" in
  registry) registry ;;
  push) push "$@" ;;
  load) load "$@" ;;
  pull) pull "$@" ;;
  *) die "usage: images.sh registry | push IMAGE... | load IMAGE... | pull REF" ;;
esac
