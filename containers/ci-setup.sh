#!/usr/bin/env bash
# CI: Docker engine + compose + debootstrap, a running daemon, and every image built once.
# Images are cached by the daemon between runs on the same machine: containers/build.sh only
# rebuilds what is missing or whose inputs changed. Called by .ci/run before the integration stage.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

need=()
command -v /usr/bin/docker >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci-setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

containers/dockerd.sh
/usr/bin/docker version --format 'ci-setup: docker engine {{.Server.Version}}'
(docker-compose version --short 2>/dev/null || /usr/bin/docker compose version --short) | sed 's/^/ci-setup: compose /'

containers/build.sh all
echo "ci-setup: ready in $(( $(date +%s) - started ))s"
