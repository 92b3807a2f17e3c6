#!/usr/bin/env bash
# The load test's image for `make load`: images/load/Dockerfile built like `make images` builds
# the others (the Python base, or its stand-in where none can be pulled: scripts/images/
# standins.sh python), tagged by its image id (an unchanged build keeps its tag), and, with
# --push, pushed to the kind cluster's registry (make cluster starts it on localhost:5001).
# Prints the reference a Job should run: localhost:5001/forest-mlops/load:<id> with --push,
# else forest-mlops/load:<id>. Needs a Docker engine that answers (make docker-engine).
#   FOREST_REGISTRY   the registry the nodes pull from (default localhost:5001)
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")/../.."

say() { echo "load image: $*" >&2; }

build() {
  local docker_bin=$1 python_image=$2 log
  log=$(mktemp /tmp/forest-mlops-load-image.XXXXXX)
  if ! DOCKER_BUILDKIT=1 "$docker_bin" build --network host --progress plain \
    -f images/load/Dockerfile --build-arg "PYTHON_IMAGE=$python_image" \
    -t forest-mlops/load:dev . >"$log" 2>&1; then
    tail -40 "$log" >&2
    say "build failed (log: $log)"
    exit 1
  fi
  rm -f "$log"
}

main() {
  local push=false
  [[ "${1:-}" == --push ]] && push=true
  bash scripts/require-engine.sh
  local docker_bin bases python_image id ref
  docker_bin=$(bash scripts/docker-engine.sh --client)
  bases=$(bash scripts/images/standins.sh python)
  python_image=$(sed -n 's/^PYTHON_IMAGE=//p' <<<"$bases")
  build "$docker_bin" "$python_image"
  id=$("$docker_bin" image inspect --format '{{ .Id }}' forest-mlops/load:dev)
  ref="forest-mlops/load:${id:7:12}"
  "$docker_bin" tag forest-mlops/load:dev "$ref"
  if [[ "$push" == true ]]; then
    ref="${FOREST_REGISTRY:-localhost:5001}/$ref"
    "$docker_bin" tag forest-mlops/load:dev "$ref"
    "$docker_bin" push "$ref" >&2
  fi
  say "built from $python_image: $ref"
  echo "$ref"
}

main "$@"
