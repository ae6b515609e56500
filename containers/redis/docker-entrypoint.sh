#!/bin/sh
# redis-server with the official image's defaults; REDIS_PASSWORD_FILE -> requirepass via stdin.
set -eu
if [ "${1#-}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
  shift
  password=""
  if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    if [ ! -r "$REDIS_PASSWORD_FILE" ]; then
      echo "error: REDIS_PASSWORD_FILE=$REDIS_PASSWORD_FILE is not a readable file" >&2
      exit 1
    fi
    password="$(cat "$REDIS_PASSWORD_FILE")"
  fi
  if [ -n "$password" ]; then
    exec redis-server - --bind '* -::*' --protected-mode no --dir /data "$@" <<CONF
requirepass "$password"
CONF
  fi
  exec redis-server --bind '* -::*' --protected-mode no --dir /data "$@"
fi
exec "$@"
