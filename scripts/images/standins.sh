#!/usr/bin/env bash
# Base images for the project's Dockerfiles, and the stand-ins for local runs.
#   standins.sh bases    the Python and Airflow base images: the official ones when present or
#                        pullable, else stand-ins built here. Prints PYTHON_IMAGE=... and
#                        AIRFLOW_IMAGE=... (the --build-arg values of images/*/Dockerfile).
#   standins.sh services the MariaDB, PostgreSQL, S3 and Prometheus stand-ins for the chart's
#                        mysql, postgresql, minio and prometheus (always built: MySQL 8.4,
#                        postgres:17, MinIO and quay.io's Prometheus cannot be had here). Prints
#                        MYSQL_IMAGE=..., POSTGRES_IMAGE=..., S3_IMAGE=... and PROMETHEUS_IMAGE=...
#   standins.sh registry the kind cluster's local registry (scripts/cluster/registry.sh): the
#                        official registry image when present or pullable, else Debian's
#                        docker-registry (distribution 2.8). Prints REGISTRY_IMAGE=...
# A stand-in is never tagged with the name of the image it replaces: forest-mlops-standin/*.
# Each is keyed by its recipe (its folder under images/standins/, its base's image id, and
# whatever else it is built from), kept as the label forest-mlops.recipe: an unchanged recipe
# reuses the image, and the script says which it did.
set -euo pipefail
cd "$(dirname "$0")/../.."
docker_bin=$(bash scripts/docker-engine.sh --client)
export DOCKER_BUILDKIT=1

OFFICIAL_PYTHON=python:3.11.14-slim-bookworm
OFFICIAL_AIRFLOW=apache/airflow:3.3.2-python3.11
STANDIN_DEBIAN=forest-mlops-standin/debian:bookworm-minbase
STANDIN_PYTHON=forest-mlops-standin/python:3.11-bookworm
STANDIN_AIRFLOW=forest-mlops-standin/airflow:3.3.2-python3.11
STANDIN_MARIADB=forest-mlops-standin/mariadb:10.11-bookworm
STANDIN_POSTGRES=forest-mlops-standin/postgres:15-bookworm
STANDIN_S3=forest-mlops-standin/s3:moto-5.2.5
STANDIN_PROMETHEUS=forest-mlops-standin/prometheus:2.42-bookworm
OFFICIAL_REGISTRY=registry:2.8.3
STANDIN_REGISTRY=forest-mlops-standin/registry:2.8-bookworm
# The build machine's CA bundle: PyPI is reached through an intercepting proxy on these machines.
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

say() { echo "images: $*" >&2; }

# shellcheck source=recipe.sh
source scripts/images/recipe.sh
image_id() { "$docker_bin" image inspect --format '{{ .Id }}' "$1"; }

# Present locally, or pulled: the official image.
have_official() {
  "$docker_bin" image inspect "$1" >/dev/null 2>&1 && return 0
  "$docker_bin" pull --quiet "$1" >/dev/null 2>&1
}

debian_base() { bash scripts/images/debian-base.sh "$STANDIN_DEBIAN"; }

# build_standin NAME FOLDER BASE_ARG BASE_IMAGE [EXTRA_FILE...]: the folder plus the CA bundle
# (and the extra files) as the build context.
build_standin() {
  local name=$1 folder=$2 base_arg=$3 base=$4
  shift 4
  local files=("$folder"/* "$CA_BUNDLE" "$@")
  local key
  key=$(recipe_digest "${files[@]}" "$(image_id "$base")")
  if [[ "$(recipe_of "$name")" == "$key" ]]; then
    say "$name: reused (recipe $key)"
    return
  fi
  say "$name: building (recipe $key)"
  local ctx
  ctx=$(mktemp -d)
  cp "${files[@]}" "$ctx/"
  local started=$SECONDS
  if ! "$docker_bin" build --network host --build-arg "$base_arg=$base" \
    --label "forest-mlops.recipe=$key" -t "$name" "$ctx" >"$ctx.log" 2>&1; then
    tail -30 "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    return 1
  fi
  rm -rf "$ctx" "$ctx.log"
  say "$name: built in $((SECONDS - started)) s"
}

python_base() {
  if have_official "$OFFICIAL_PYTHON"; then
    say "$OFFICIAL_PYTHON: available, no stand-in needed"
    echo "$OFFICIAL_PYTHON"
    return
  fi
  say "$OFFICIAL_PYTHON: cannot be pulled, using a stand-in"
  debian_base
  build_standin "$STANDIN_PYTHON" images/standins/python BASE "$STANDIN_DEBIAN"
  echo "$STANDIN_PYTHON"
}

case "${1:-}" in
  bases)
    python_image=$(python_base)
    echo "PYTHON_IMAGE=$python_image"
    if have_official "$OFFICIAL_AIRFLOW"; then
      say "$OFFICIAL_AIRFLOW: available, no stand-in needed"
      echo "AIRFLOW_IMAGE=$OFFICIAL_AIRFLOW"
    else
      say "$OFFICIAL_AIRFLOW: cannot be pulled, using a stand-in"
      build_standin "$STANDIN_AIRFLOW" images/standins/airflow PYTHON_BASE "$python_image" \
        pyproject.toml uv.lock
      echo "AIRFLOW_IMAGE=$STANDIN_AIRFLOW"
    fi
    ;;
  services)
    debian_base
    build_standin "$STANDIN_MARIADB" images/standins/mariadb BASE "$STANDIN_DEBIAN"
    echo "MYSQL_IMAGE=$STANDIN_MARIADB"
    build_standin "$STANDIN_POSTGRES" images/standins/postgres BASE "$STANDIN_DEBIAN"
    echo "POSTGRES_IMAGE=$STANDIN_POSTGRES"
    python_image=$(python_base)
    build_standin "$STANDIN_S3" images/standins/s3 PYTHON_BASE "$python_image"
    echo "S3_IMAGE=$STANDIN_S3"
    build_standin "$STANDIN_PROMETHEUS" images/standins/prometheus BASE "$STANDIN_DEBIAN"
    echo "PROMETHEUS_IMAGE=$STANDIN_PROMETHEUS"
    ;;
  registry)
    if have_official "$OFFICIAL_REGISTRY"; then
      say "$OFFICIAL_REGISTRY: available, no stand-in needed"
      echo "REGISTRY_IMAGE=$OFFICIAL_REGISTRY"
    else
      say "$OFFICIAL_REGISTRY: cannot be pulled, using a stand-in"
      debian_base
      build_standin "$STANDIN_REGISTRY" images/standins/registry BASE "$STANDIN_DEBIAN"
      echo "REGISTRY_IMAGE=$STANDIN_REGISTRY"
    fi
    ;;
  *)
    echo "usage: standins.sh bases|services|registry" >&2
    exit 2
    ;;
esac
