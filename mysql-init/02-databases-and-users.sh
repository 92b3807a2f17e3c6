#!/usr/bin/env bash
# The platform's databases and users, each limited to what it needs:
#   train     ALL on `${MYSQL_DATABASE}` (train_data: ingestion, training)
#   mlflow    ALL on `mlflow`            (MLflow's backend store)
#   inference INSERT on `${MYSQL_DATABASE}`.inference_log only
# Airflow's metadata database is not here: it is PostgreSQL (the chart's postgresql subchart),
# since Airflow supports MySQL 8 but not MariaDB, this server's offline stand-in.
# `${MYSQL_DATABASE}` itself is created by the image's entrypoint (MYSQL_DATABASE=train_data),
# which runs the *.sql files inside it. If the entrypoint also made MYSQL_USER=train, the
# CREATE USER IF NOT EXISTS below leaves that user's password alone.
#
# Passwords come from the environment (the chart feeds them from the Secret `R-mysql`); none is
# committed. Every input is checked before anything is created: a missing password stops the
# initialisation with a message naming it (the MySQL image then exits instead of starting).
#
# The MySQL entrypoint sources *.sh files that are not executable (then docker_process_sql is
# defined) and runs executable ones; both work. Outside the image (tests), MYSQL_INIT_CLIENT is
# the client command to run, e.g. "mysql -h127.0.0.1 -uroot". Names may be overridden
# (MLFLOW_DB_NAME, *_DB_USER) so tests can use throw-away ones; the defaults
# are the names in docs/ARCHITECTURE.md. Runs after 01-train-data-schema.sql because the
# inference grant names a table.
#
# No `set -u`/`set -e` here: when sourced they would change the entrypoint's own shell. Errors
# are returned explicitly, and the entrypoint (set -e) stops on them.

forest_init_main() {
    local missing=()
    local var
    for var in MYSQL_DATABASE TRAIN_DB_PASSWORD MLFLOW_DB_PASSWORD INFERENCE_DB_PASSWORD; do
        if [ -z "${!var:-}" ]; then
            missing+=("$var")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "02-databases-and-users.sh: missing required environment variable(s): ${missing[*]}" >&2
        echo "  (set them from the chart's Secret <release>-mysql; no default passwords)" >&2
        return 1
    fi

    local train_user="${TRAIN_DB_USER:-train}"
    local mlflow_db="${MLFLOW_DB_NAME:-mlflow}" mlflow_user="${MLFLOW_DB_USER:-mlflow}"
    local inference_user="${INFERENCE_DB_USER:-inference}"
    local name
    for name in "$train_user" "$mlflow_db" "$mlflow_user" "$inference_user" "$MYSQL_DATABASE"; do
        if ! [[ "$name" =~ ^[A-Za-z0-9_]+$ ]]; then
            echo "02-databases-and-users.sh: invalid database or user name: '$name'" >&2
            return 1
        fi
    done

    # One client call: a failing statement stops it with a non-zero status.
    if ! forest_init_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`${mlflow_db}\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '${train_user}'@'%' IDENTIFIED BY '$(forest_sql_string "$TRAIN_DB_PASSWORD")';
CREATE USER IF NOT EXISTS '${mlflow_user}'@'%' IDENTIFIED BY '$(forest_sql_string "$MLFLOW_DB_PASSWORD")';
CREATE USER IF NOT EXISTS '${inference_user}'@'%' IDENTIFIED BY '$(forest_sql_string "$INFERENCE_DB_PASSWORD")';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}\`.* TO '${train_user}'@'%';
GRANT ALL PRIVILEGES ON \`${mlflow_db}\`.* TO '${mlflow_user}'@'%';
GRANT INSERT ON \`${MYSQL_DATABASE}\`.\`inference_log\` TO '${inference_user}'@'%';
FLUSH PRIVILEGES;
SQL
    then
        echo "02-databases-and-users.sh: creating the databases and users failed" >&2
        return 1
    fi
    echo "02-databases-and-users.sh: database ${mlflow_db} and users" \
        "${train_user}, ${mlflow_user}, ${inference_user} ready"
}

# A password as the body of a single-quoted SQL string: backslashes and quotes doubled.
forest_sql_string() {
    local value="${1//\\/\\\\}"
    printf '%s' "${value//\'/\'\'}"
}

forest_init_sql() {
    if [ -n "${MYSQL_INIT_CLIENT:-}" ]; then
        # shellcheck disable=SC2086  # a command line on purpose
        ${MYSQL_INIT_CLIENT}
    elif declare -F docker_process_sql >/dev/null; then
        # Inside the MySQL image's entrypoint: root over the init server's socket.
        docker_process_sql
    else
        mysql --protocol=socket -uroot --password="${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is not set}"
    fi
}

forest_init_main || { [ "${BASH_SOURCE[0]}" != "$0" ] && return 1; exit 1; }
