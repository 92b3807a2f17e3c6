#!/usr/bin/env bash
# Entrypoint of the Airflow stand-in (written for this project). It keeps the parts of the
# official image's entrypoint that the chart relies on, in the same order:
#   1. unless CONNECTION_CHECK_MAX_COUNT is 0, `airflow db check` is retried up to that many
#      times (default 20), CONNECTION_CHECK_SLEEP_TIME seconds apart (default 3); then exit 1;
#   2. _AIRFLOW_DB_MIGRATE (or the older _AIRFLOW_DB_UPGRADE) non-empty: `airflow db migrate`;
#   3. first argument `bash` or `python`: that program runs the other arguments (after the DB
#      check, as in the official image);
#   4. otherwise the arguments are an airflow command, with or without a leading `airflow`;
#      no arguments: `airflow --help`.
# Not kept: creating a passwd entry for arbitrary uids, _AIRFLOW_WWW_USER_CREATE,
# _PIP_ADDITIONAL_REQUIREMENTS, the Celery broker wait.
set -euo pipefail

max_count=${CONNECTION_CHECK_MAX_COUNT:-20}
sleep_time=${CONNECTION_CHECK_SLEEP_TIME:-3}

wait_for_db() {
  local attempt=0 output
  while true; do
    if output=$(airflow db check 2>&1); then
      return 0
    fi
    attempt=$((attempt + 1))
    if ((attempt >= max_count)); then
      echo "entrypoint: the metadata database did not answer after ${attempt} checks:" >&2
      echo "$output" | tail -5 >&2
      exit 1
    fi
    echo "entrypoint: waiting for the metadata database (${attempt}/${max_count})" >&2
    sleep "$sleep_time"
  done
}

if ((max_count > 0)); then
  wait_for_db
fi
if [[ -n "${_AIRFLOW_DB_MIGRATE:-}" || -n "${_AIRFLOW_DB_UPGRADE:-}" ]]; then
  airflow db migrate
fi

case "${1:-}" in
  bash | python)
    program=$1
    shift
    exec "$program" "$@"
    ;;
  airflow) shift ;;
  "") set -- --help ;;
esac
exec airflow "$@"
