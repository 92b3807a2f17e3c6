#!/usr/bin/env bash
# The real end-to-end test of the platform, for a machine with Docker, kind, skaffold, kubectl,
# helm, curl and python3:
#
#   create the kind cluster -> skaffold run (build, load into kind, helm install, k8s/)
#   -> wait for the rollouts -> port-forward -> unpause and trigger the DAGs through Airflow's
#   REST API -> wait for a champion in the MLflow registry -> call the inference API
#   -> run a retraining Job (forest-mlops retrain --wait --follow) -> tear down.
#
# Usage: scripts/e2e-kind.sh [--dry-run] [--keep-cluster] [--reuse-cluster]
#   --dry-run        print the steps and commands, run nothing (tests/platform checks this)
#   --keep-cluster   do not delete the cluster at the end (to look around afterwards)
#   --reuse-cluster  use the cluster if it already exists instead of creating it
# Environment: E2E_CHAMPION_TIMEOUT (s, default 2400), E2E_ROLLOUT_TIMEOUT (s, default 900).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=forest-mlops
CONTEXT="kind-$CLUSTER"
NAMESPACE=forest-mlops
RELEASE=forest-mlops
MODEL=forest-cover-type
INGESTION_DAG=forest_cover_data_extraction
CHAMPION_TIMEOUT=${E2E_CHAMPION_TIMEOUT:-2400}
ROLLOUT_TIMEOUT=${E2E_ROLLOUT_TIMEOUT:-900}
AIRFLOW_URL=http://127.0.0.1:8080
MLFLOW_URL=http://127.0.0.1:5000
INFERENCE_URL=http://127.0.0.1:8001
API_DATA_URL=http://127.0.0.1:8000

DRY_RUN=0
KEEP_CLUSTER=0
REUSE_CLUSTER=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --keep-cluster) KEEP_CLUSTER=1 ;;
    --reuse-cluster) REUSE_CLUSTER=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

LOG_DIR=""
((DRY_RUN)) || LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/forest-e2e.XXXXXX")
PORT_FORWARD_PIDS=()
STEP=0

step() {
  STEP=$((STEP + 1))
  printf '\n== step %d: %s\n' "$STEP" "$*"
}

# The command as a shell would read it back: words with spaces or quotes in single quotes.
show() {
  local word out=()
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      out+=("$word")
    else
      out+=("'${word//\'/\'\\\'\'}'")
    fi
  done
  printf '%s' "${out[*]}"
}

# Run a command, or only show it with --dry-run.
run() {
  if ((DRY_RUN)); then
    printf '+ %s\n' "$(show "$@")"
  else
    "$@"
  fi
}

# capture VAR command...: VAR=$(command), or a placeholder with --dry-run.
capture() {
  local var=$1
  shift
  if ((DRY_RUN)); then
    # shellcheck disable=SC2016 # the $( ) is printed, not run
    printf '+ %s=$(%s)\n' "$var" "$(show "$@")"
    printf -v "$var" '<%s>' "$var"
  else
    local output
    output=$("$@") # a failure stops the script (set -e), as for every other command
    printf -v "$var" '%s' "$output"
  fi
}

# wait_until SECONDS DESCRIPTION command...: poll every 10 s until the command succeeds.
wait_until() {
  local timeout=$1 what=$2
  shift 2
  if ((DRY_RUN)); then
    printf '+ until %s; do sleep 10; done  # %s, at most %s s\n' "$(show "$@")" "$what" "$timeout"
    return 0
  fi
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${timeout} s waiting for: $what" >&2
      return 1
    fi
    sleep 10
  done
}

kube() {
  run kubectl --context "$CONTEXT" --namespace "$NAMESPACE" "$@"
}

json_field() { # json_field EXPR: evaluate a Python expression on the JSON of stdin (as `d`)
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

teardown() {
  local status=$?
  step "tear down"
  if ((status != 0)) && ((!DRY_RUN)); then
    echo "failed (exit $status); cluster state for the record:" >&2
    kubectl --context "$CONTEXT" -n "$NAMESPACE" get pods -o wide >&2 || true
    kubectl --context "$CONTEXT" -n "$NAMESPACE" get events --sort-by=.lastTimestamp 2>/dev/null |
      tail -n 40 >&2 || true
  fi
  for pid in "${PORT_FORWARD_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if ((KEEP_CLUSTER)); then
    echo "keeping the cluster: kind delete cluster --name $CLUSTER"
  else
    run kind delete cluster --name "$CLUSTER"
  fi
  if [[ -n $LOG_DIR ]]; then
    if ((status == 0)); then rm -rf "$LOG_DIR"; else echo "port-forward logs: $LOG_DIR" >&2; fi
  fi
  exit "$status"
}
trap teardown EXIT

step "check the tools"
for tool in docker kind skaffold kubectl helm curl python3; do
  if ((DRY_RUN)); then
    printf '+ command -v %s\n' "$tool"
  elif ! command -v "$tool" >/dev/null; then
    echo "$tool is not installed (docs/KUBERNETES.md lists what the cluster path needs)" >&2
    exit 1
  fi
done
run docker info --format '{{.ServerVersion}}'

step "create the kind cluster $CLUSTER"
if ((REUSE_CLUSTER)) && ((!DRY_RUN)) && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "reusing the existing cluster $CLUSTER"
else
  run kind create cluster --config kind-config.yaml --wait 180s
fi

step "build the images, load them into kind and deploy (skaffold run)"
run skaffold run --kube-context "$CONTEXT"

step "wait for the rollouts"
kube rollout status statefulset/"$RELEASE"-mysql --timeout="${ROLLOUT_TIMEOUT}s"
kube rollout status statefulset/"$RELEASE"-minio --timeout="${ROLLOUT_TIMEOUT}s"
kube wait --for=condition=complete job/"$RELEASE"-minio-buckets --timeout="${ROLLOUT_TIMEOUT}s"
for deployment in mlflow api-data airflow-api-server airflow-scheduler airflow-dag-processor; do
  kube rollout status deployment/"$RELEASE-$deployment" --timeout="${ROLLOUT_TIMEOUT}s"
done
# inference becomes Ready only with a champion (its readiness probe): checked further down.

step "port-forward Airflow, MLflow, inference and the data API"
for forward in airflow-api-server:8080 mlflow:5000 inference:8001 api-data:8000; do
  service=${forward%%:*} port=${forward##*:}
  if ((DRY_RUN)); then
    printf '+ kubectl --context %s --namespace %s port-forward svc/%s %s:%s &\n' \
      "$CONTEXT" "$NAMESPACE" "$RELEASE-$service" "$port" "$port"
  else
    kubectl --context "$CONTEXT" --namespace "$NAMESPACE" port-forward \
      "svc/$RELEASE-$service" "$port:$port" >"$LOG_DIR/port-forward-$service.log" 2>&1 &
    PORT_FORWARD_PIDS+=($!)
  fi
done
wait_until 60 "the port-forwards" curl -fsS "$MLFLOW_URL/health"
wait_until 60 "the data API" curl -fsS "$API_DATA_URL/health"

step "log in to Airflow (admin password from Secret $RELEASE-airflow)"
capture ADMIN_PASSWORD kubectl --context "$CONTEXT" --namespace "$NAMESPACE" get secret \
  "$RELEASE-airflow" -o 'jsonpath={.data.admin-password}'
if ((!DRY_RUN)); then
  ADMIN_PASSWORD=$(printf '%s' "$ADMIN_PASSWORD" | base64 --decode)
fi
wait_until 300 "the Airflow API server" curl -fsS "$AIRFLOW_URL/api/v2/monitor/health"
# The password goes through stdin, never on a command line (ps would show it).
if ((DRY_RUN)); then
  printf '+ %s\n' "printf '{\"username\": \"admin\", \"password\": ...}' | curl -fsS -X POST $AIRFLOW_URL/auth/token -H 'Content-Type: application/json' -d @-"
  TOKEN='<TOKEN>'
else
  TOKEN=$(ADMIN_PASSWORD=$ADMIN_PASSWORD python3 -c \
    'import json, os; print(json.dumps({"username": "admin", "password": os.environ["ADMIN_PASSWORD"]}))' |
    curl -fsS -X POST "$AIRFLOW_URL/auth/token" -H 'Content-Type: application/json' -d @- |
    json_field 'd["access_token"]')
fi
AUTH=(-H "Authorization: Bearer $TOKEN")

step "unpause the DAGs and trigger $INGESTION_DAG (Airflow REST API /api/v2)"
wait_until 600 "the DAGs to be parsed" \
  curl -fsS "${AUTH[@]}" "$AIRFLOW_URL/api/v2/dags/$INGESTION_DAG"
capture DAGS_JSON curl -fsS "${AUTH[@]}" "$AIRFLOW_URL/api/v2/dags?tags=forest-mlops&limit=100"
if ((DRY_RUN)); then
  DAG_IDS=("$INGESTION_DAG" "<the other forest-mlops DAGs>")
else
  mapfile -t DAG_IDS < <(printf '%s' "$DAGS_JSON" | json_field '"\n".join(x["dag_id"] for x in d["dags"])')
fi
for dag_id in "${DAG_IDS[@]}"; do
  run curl -fsS -X PATCH "${AUTH[@]}" -H 'Content-Type: application/json' \
    -d '{"is_paused": false}' "$AIRFLOW_URL/api/v2/dags/$dag_id" -o /dev/null
done
run curl -fsS -X POST "${AUTH[@]}" -H 'Content-Type: application/json' \
  -d '{"logical_date": null, "note": "scripts/e2e-kind.sh"}' \
  "$AIRFLOW_URL/api/v2/dags/$INGESTION_DAG/dagRuns"

step "wait for a champion in the MLflow registry ($MODEL@champion)"
wait_until "$CHAMPION_TIMEOUT" "the champion alias" curl -fsS \
  "$MLFLOW_URL/api/2.0/mlflow/registered-models/alias?name=$MODEL&alias=champion"
capture CHAMPION_JSON curl -fsS \
  "$MLFLOW_URL/api/2.0/mlflow/registered-models/alias?name=$MODEL&alias=champion"
if ((!DRY_RUN)); then
  echo "champion: version $(printf '%s' "$CHAMPION_JSON" | json_field 'd["model_version"]["version"]')"
fi

step "call the inference API"
kube rollout status deployment/"$RELEASE"-inference --timeout="${ROLLOUT_TIMEOUT}s"
wait_until 120 "inference to load the champion" curl -fsS "$INFERENCE_URL/ready"
# One record of the course data (tests/platform checks it against forest_mlops.schema).
SAMPLE_RECORD='{"Elevation": 2596, "Aspect": 51, "Slope": 3, "Horizontal_Distance_To_Hydrology": 258, "Vertical_Distance_To_Hydrology": 0, "Horizontal_Distance_To_Roadways": 510, "Hillshade_9am": 221, "Hillshade_Noon": 232, "Hillshade_3pm": 148, "Horizontal_Distance_To_Fire_Points": 6279, "Wilderness_Area": "Rawah", "Soil_Type": "C7745"}'
run curl -fsS -X POST -H 'Content-Type: application/json' -d "$SAMPLE_RECORD" \
  "$INFERENCE_URL/predict"
((DRY_RUN)) || echo

step "retrain with a Kubernetes Job (forest-mlops retrain --wait --follow)"
if [[ -x .venv/bin/forest-mlops ]]; then
  FOREST_MLOPS=.venv/bin/forest-mlops
else
  FOREST_MLOPS=forest-mlops
fi
run "$FOREST_MLOPS" retrain --context "$CONTEXT" --namespace "$NAMESPACE" --wait --follow
run curl -fsS "$MLFLOW_URL/api/2.0/mlflow/registered-models/alias?name=$MODEL&alias=champion" \
  -o /dev/null

step "end-to-end passed"
