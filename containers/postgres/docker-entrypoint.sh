#!/bin/sh
# The official postgres image's env contract, POSIX sh, run as the postgres user.
set -eu

# file_env VAR: VAR or VAR_FILE (a file holding the value), never both.
file_env() {
  var="$1"
  default="${2:-}"
  eval "val=\${$var:-}"
  eval "file=\${${var}_FILE:-}"
  if [ -n "$val" ] && [ -n "$file" ]; then
    echo "error: both $var and ${var}_FILE are set (but are exclusive)" >&2
    exit 1
  fi
  if [ -n "$file" ]; then
    if [ ! -r "$file" ]; then
      echo "error: ${var}_FILE=$file is not a readable file" >&2
      exit 1
    fi
    val="$(cat "$file")"
  fi
  [ -n "$val" ] || val="$default"
  export "$var=$val"
  unset "${var}_FILE"
}

if [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
    cat >&2 <<'MSG'
error: database is uninitialized and superuser password is not specified.
  Set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or POSTGRES_HOST_AUTH_METHOD=trust,
  which lets anyone connect without a password; never for anything real).
MSG
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA" 2>/dev/null || true
  # The password goes through stdin, never the command line or a file.
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list by contract
  printf '%s\n' "$POSTGRES_PASSWORD" | initdb --username="$POSTGRES_USER" --pwfile=/dev/stdin \
    --auth-local=trust --auth-host="$auth" --locale=C.UTF-8 --encoding=UTF8 \
    $POSTGRES_INITDB_ARGS >/dev/null
  {
    echo "listen_addresses = '*'"
    echo "password_encryption = scram-sha-256"
  } >>"$PGDATA/postgresql.conf"
  echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"

  # Socket-only while initialising: nothing can connect over TCP (and healthchecks stay red).
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
      --set db="$POSTGRES_DB" <<'SQL' >/dev/null
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    # shellcheck disable=SC1090 # init scripts are the user's, by contract
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --no-psqlrc -U "$POSTGRES_USER" -d "$POSTGRES_DB" ;;
      *) echo "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset POSTGRES_PASSWORD
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
