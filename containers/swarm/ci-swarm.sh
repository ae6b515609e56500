#!/usr/bin/env bash
# CI: `make test-swarm` on a three-node swarm made from nothing (containers/swarm/cluster.sh),
# within its own time budget (SWARM_BUDGET seconds, 1500). Always removes the cluster; on
# failure prints the swarm's services, tasks and recent logs first. Called by .ci/run after
# containers/ci-setup.sh (which starts the host daemon and builds the images).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
BUDGET="${SWARM_BUDGET:-1500}"
DOCKER=/usr/bin/docker

need=()
for tool in ip:iproute2 nsenter:util-linux wrk:wrk curl:curl dockerd:docker.io; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "ci-swarm: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

dump() {
  local manager
  manager="$(containers/swarm/cluster.sh host 1)"
  $DOCKER -H "$manager" node ls 2>&1
  $DOCKER -H "$manager" service ls 2>&1
  for service in $($DOCKER -H "$manager" service ls -q 2>/dev/null); do
    $DOCKER -H "$manager" service ps --no-trunc "$service" 2>&1 | head -n 12
    $DOCKER -H "$manager" service logs --tail 40 "$service" 2>&1 | tail -n 40
  done
}

containers/swarm/cluster.sh down >/dev/null 2>&1 || true  # leftovers of an interrupted run
containers/build.sh registry
timeout --kill-after=30 "$BUDGET" make test-swarm "$@"
status=$?
if [ $status -ne 0 ]; then
  echo "ci-swarm: make test-swarm failed ($status; 124 = over the ${BUDGET}s budget); swarm state:" >&2
  dump >&2
fi
containers/swarm/cluster.sh down || status=1
exit $status
