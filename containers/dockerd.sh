#!/bin/sh
# Make sure a Docker daemon answers; start one when none runs (hosts without systemd, CI).
# Never starts a second daemon: a running dockerd that does not answer yet is waited for.
set -eu
DOCKER="${DOCKER:-/usr/bin/docker}"
LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
TIMEOUT="${DOCKERD_TIMEOUT:-60}"

if "$DOCKER" info >/dev/null 2>&1; then
  exit 0
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "dockerd.sh: no Docker daemon answers and starting one needs root" >&2
    exit 1
  fi
  rm -f /var/run/docker.pid
  nohup dockerd >"$LOG" 2>&1 </dev/null &
fi
# Poll in 0.2 s steps up to TIMEOUT seconds.
steps=$((TIMEOUT * 5))
i=0
while [ "$i" -lt "$steps" ]; do
  if "$DOCKER" info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.2
  i=$((i + 1))
done
echo "dockerd.sh: Docker daemon did not answer within ${TIMEOUT}s; last lines of $LOG:" >&2
tail -n 40 "$LOG" >&2 || true
exit 1
