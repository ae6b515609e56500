#!/usr/bin/env bash
# CI: `make test-integration` on the real stack. Always tears every test project down; on
# failure prints the state and logs of every container first. Called by .ci/run after
# containers/ci-setup.sh.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DOCKER=/usr/bin/docker
PROJECTS=(keel-it keel-it-prod keel-it-dev keel-it-backup)

dump() {
  for project in "${PROJECTS[@]}"; do
    ids=$($DOCKER ps -aq --filter "label=com.docker.compose.project=$project")
    [ -n "$ids" ] || continue
    echo "==== $project: containers ===="
    # shellcheck disable=SC2086
    $DOCKER inspect --format '{{.Name}} {{.State.Status}} health={{if .State.Health}}{{.State.Health.Status}}{{end}} exit={{.State.ExitCode}}' $ids
    for id in $ids; do
      echo "==== $project: logs of $($DOCKER inspect --format '{{.Name}}' "$id") (last 100 lines) ===="
      $DOCKER logs --tail 100 "$id" 2>&1
    done
  done
}

teardown() {
  for project in "${PROJECTS[@]}"; do
    ids=$($DOCKER ps -aq --filter "label=com.docker.compose.project=$project")
    # shellcheck disable=SC2086
    [ -z "$ids" ] || $DOCKER rm -f -v $ids >/dev/null 2>&1 || true
    vols=$($DOCKER volume ls -q --filter "label=com.docker.compose.project=$project")
    # shellcheck disable=SC2086
    [ -z "$vols" ] || $DOCKER volume rm -f $vols >/dev/null 2>&1 || true
    $DOCKER network rm "${project}_default" >/dev/null 2>&1 || true
  done
}

teardown  # leftovers of an interrupted run
make test-integration "$@"
status=$?
if [ $status -ne 0 ]; then
  echo "ci-integration: make test-integration failed ($status); container state and logs:" >&2
  dump >&2
fi
teardown
exit $status
