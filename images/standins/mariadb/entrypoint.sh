#!/usr/bin/env bash
# shellcheck disable=SC2119,SC2120  # docker_process_sql takes options when init scripts pass them
# Entrypoint of the MariaDB stand-in (written for this project), honouring the conventions of the
# official mysql image that the chart relies on:
#   - an empty datadir (wherever the configuration puts it) is initialised once: root gets
#     MYSQL_ROOT_PASSWORD (required) at MYSQL_ROOT_HOST (default %; the chart says localhost),
#     MYSQL_DATABASE is created, MYSQL_USER/MYSQL_PASSWORD get ALL on it;
#   - then /docker-entrypoint-initdb.d/* in name order: *.sql (and *.sql.gz) run inside
#     MYSQL_DATABASE, executable *.sh run, other *.sh are sourced with docker_process_sql
#     defined (SQL on stdin, as root over the init server's socket);
#   - a failing init step stops the container (set -e); as in the official image, the datadir
#     is then left as it is (delete the volume to start over);
#   - the init server listens on the socket only; the real server is exec'd afterwards.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }

if [[ "${1:-}" == -* ]]; then
  set -- mariadbd "$@"
fi
if [[ "${1:-}" != mariadbd && "${1:-}" != mysqld ]]; then
  exec "$@"
fi

# The datadir the server will really use (the chart sets one in conf.d).
datadir=$("$1" "${@:2}" --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')
datadir=${datadir%/}
socket=/run/mysqld/mysqld.sock

docker_process_sql() {
  local database=()
  if [[ "${1:-}" == --database=* ]]; then
    database=("${1#--database=}")
    shift
  elif [[ -n "${MYSQL_DATABASE:-}" ]]; then
    database=("$MYSQL_DATABASE")
  fi
  mariadb --protocol=socket --socket="$socket" -uroot --password="$MYSQL_ROOT_PASSWORD" \
    --comments "$@" "${database[@]}"
}

sql_string() {
  local value="${1//\\/\\\\}"
  printf "'%s'" "${value//\'/\'\'}"
}

if [[ ! -d "$datadir/mysql" ]]; then
  : "${MYSQL_ROOT_PASSWORD:?the datadir is empty: MYSQL_ROOT_PASSWORD must be set to initialise it}"
  log "initialising $datadir"
  mkdir -p "$datadir"
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null
  "$1" "${@:2}" --skip-networking --socket="$socket" &
  pid=$!
  for _ in $(seq 60); do
    mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1 && break
    sleep 1
  done
  mariadb-admin --socket="$socket" -uroot ping >/dev/null
  root_host=${MYSQL_ROOT_HOST:-%}
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
    if [[ "$root_host" != localhost ]]; then
      echo "CREATE USER 'root'@$(sql_string "$root_host") IDENTIFIED BY $(sql_string "$MYSQL_ROOT_PASSWORD");"
      echo "GRANT ALL ON *.* TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;"
    fi
    echo "DROP USER IF EXISTS ''@'localhost';"
    if [[ -n "${MYSQL_DATABASE:-}" ]]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
    fi
    if [[ -n "${MYSQL_USER:-}" && -n "${MYSQL_PASSWORD:-}" ]]; then
      echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
      [[ -n "${MYSQL_DATABASE:-}" ]] && echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"
    fi
  } | mariadb --protocol=socket --socket="$socket" -uroot
  for file in /docker-entrypoint-initdb.d/*; do
    [[ -e "$file" ]] || continue
    case "$file" in
      *.sh)
        if [[ -x "$file" ]]; then
          log "running $file"
          "$file"
        else
          log "sourcing $file"
          # shellcheck disable=SC1090
          . "$file"
        fi
        ;;
      *.sql) log "running $file"; docker_process_sql <"$file" ;;
      *.sql.gz) log "running $file"; gunzip -c "$file" | docker_process_sql ;;
      *) log "ignoring $file" ;;
    esac
  done
  mariadb-admin --socket="$socket" -uroot --password="$MYSQL_ROOT_PASSWORD" shutdown
  wait "$pid" || true
  log "initialisation done"
fi

exec "$@"
