#!/usr/bin/env bash
# `make images`: the four project images, built the way skaffold.yaml builds them (same
# Dockerfiles and context: the repository root), and the load test's image (images/load/
# Dockerfile, `make load`), tagged forest-mlops/<name>:dev and
# forest-mlops/<name>:<image id> (a content tag: an unchanged build keeps it). Before them, the
# base images (official when pullable, else stand-ins: scripts/images/standins.sh) and the
# MariaDB and S3 stand-ins the container tests and local runs use.
#
# api-data's dataset (DATASET_SOURCE of images/api-data/Dockerfile):
#   DATASET_SOURCE=download|synthetic|file   default: file when a dataset file is found, else
#                                            synthetic (download needs the UCI site, offline here)
#   FOREST_DATASET_FILE=PATH                 the file for `file`; default
#                                            ../shared/data/covertype_dev.csv.gz when present
# FOREST_IMAGES_NO_CACHE=1 builds the project images as a first build would, no step from
# BuildKit's cache (a cold build; the stand-ins are still reused). Prints what was built or
# reused and how long each took.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/require-engine.sh
docker_bin=$(bash scripts/docker-engine.sh --client)
export DOCKER_BUILDKIT=1
tag=${FOREST_IMAGE_TAG:-dev}
started=$SECONDS

log_dir=$(mktemp -d /tmp/forest-mlops-images.XXXXXX)
bases=$(bash scripts/images/standins.sh bases 2>"$log_dir/bases.err") || { cat "$log_dir/bases.err" >&2; exit 1; }
cat "$log_dir/bases.err" >&2
services=$(bash scripts/images/standins.sh services 2>"$log_dir/services.err") || { cat "$log_dir/services.err" >&2; exit 1; }
cat "$log_dir/services.err" >&2
built=$(cat "$log_dir"/*.err | grep -c ': built in\|imported' || true)
reused=$(cat "$log_dir"/*.err | grep -c ': reused' || true)
PYTHON_IMAGE=$(sed -n 's/^PYTHON_IMAGE=//p' <<<"$bases")
AIRFLOW_IMAGE=$(sed -n 's/^AIRFLOW_IMAGE=//p' <<<"$bases")
echo "images: bases and stand-ins ready in $((SECONDS - started)) s: $(tr '\n' ' ' <<<"$bases"$'\n'"$services")"

dataset_file=${FOREST_DATASET_FILE:-../shared/data/covertype_dev.csv.gz}
if [[ -z "${DATASET_SOURCE:-}" ]]; then
  if [[ -f "$dataset_file" ]]; then DATASET_SOURCE="file"; else DATASET_SOURCE="synthetic"; fi
fi
dataset_args=(--build-arg "DATASET_SOURCE=$DATASET_SOURCE")
if [[ "$DATASET_SOURCE" == file ]]; then
  dataset_image=$(bash scripts/images/dataset-image.sh "$dataset_file")
  dataset_args+=(--build-arg "DATASET_IMAGE=$dataset_image")
fi
echo "images: api-data dataset: $DATASET_SOURCE${dataset_image:+ ($dataset_file)}"

# Cold: a new COLD_BUILD_ID misses the cache from each Dockerfile's first steps on, so every
# step runs once, as in a first build. Not `--no-cache`: that would build the services' shared
# `base` stage once per Dockerfile, and the three images would no longer share its layers.
cache_args=()
[[ -n "${FOREST_IMAGES_NO_CACHE:-}" ]] && cache_args=(--build-arg "COLD_BUILD_ID=$(date +%s%N)")

# build NAME [ARGS...]: images/NAME/Dockerfile
build() {
  local name=$1
  shift
  local t0=$SECONDS
  if ! "$docker_bin" build --network host --progress plain "${cache_args[@]}" -f "images/$name/Dockerfile" \
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" "$@" \
    -t "forest-mlops/$name:$tag" . >"$log_dir/$name.log" 2>&1; then
    tail -40 "$log_dir/$name.log" >&2
    echo "images: forest-mlops/$name failed (log: $log_dir/$name.log)" >&2
    exit 1
  fi
  local id steps cached
  id=$("$docker_bin" image inspect --format '{{ .Id }}' "forest-mlops/$name:$tag")
  "$docker_bin" tag "forest-mlops/$name:$tag" "forest-mlops/$name:${id:7:12}"
  steps=$(grep -c '^#[0-9]* \[' "$log_dir/$name.log" || true)
  cached=$(grep -c '^#[0-9]* CACHED' "$log_dir/$name.log" || true)
  echo "images: forest-mlops/$name:$tag = forest-mlops/$name:${id:7:12} in $((SECONDS - t0)) s ($cached of $steps steps cached)"
}

# The order of skaffold.yaml's artifacts.
build airflow --build-arg "AIRFLOW_IMAGE=$AIRFLOW_IMAGE"
build mlflow
build api-data "${dataset_args[@]}"
build inference
# Not a skaffold artifact: `make load` builds and pushes it (scripts/load/image.sh).
build load
rm -rf "$log_dir"
# The builds these replaced are tagged too: keep the engine's disk flat across edits.
bash scripts/images/prune.sh
if ((built > 0)); then kind=cold; else kind=warm; fi
echo "images: done in $((SECONDS - started)) s ($kind: $built stand-in(s) built, $reused reused; cached steps above)"
