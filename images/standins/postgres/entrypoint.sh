#!/usr/bin/env bash
# Entrypoint of the PostgreSQL stand-in (written for this project), honouring the conventions of
# the official postgres image that the chart relies on:
#   - an empty PGDATA is initialised once (initdb): superuser POSTGRES_USER (default postgres)
#     with POSTGRES_PASSWORD (required), database POSTGRES_DB (default: the user's name),
#     scram-sha-256 for every TCP client, listening on every address;
#   - then /docker-entrypoint-initdb.d/* in name order: *.sql run in POSTGRES_DB through psql,
#     *.sh are sourced; a failing step stops the container and leaves PGDATA as it is;
#   - the init server listens on the socket only; the real server is exec'd afterwards.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }

if [[ "${1:-}" == -* ]]; then
  set -- postgres "$@"
fi
if [[ "${1:-}" != postgres ]]; then
  exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  : "${POSTGRES_PASSWORD:?PGDATA is empty: POSTGRES_PASSWORD must be set to initialise it}"
  log "initialising $PGDATA"
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  # The password reaches initdb through a pipe, never argv or a file.
  initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >&2
  printf '\nlisten_addresses = '"'*'"'\n' >>"$PGDATA/postgresql.conf"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >&2
  psql_init=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$user")
  if [[ $database != postgres ]]; then
    "${psql_init[@]}" --dbname postgres --set db="$database" \
      <<<'CREATE DATABASE :"db";' >&2
  fi
  # shellcheck disable=SC1090  # init scripts are the user's, sourced as the image does
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e $f ]] || continue
    case $f in
      *.sql) log "running $f"; "${psql_init[@]}" --dbname "$database" -f "$f" >&2 ;;
      *.sh) log "sourcing $f"; . "$f" ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >&2
  log "initialised; starting the server"
fi

exec "$@"
