#!/usr/bin/env bash
# Base images for the project's Dockerfiles, and the stand-ins for local runs.
#   standins.sh bases    the Python and Airflow base images: the official ones when present or
#                        pullable, else stand-ins built here. Prints PYTHON_IMAGE=... and
#                        AIRFLOW_IMAGE=... (the --build-arg values of images/*/Dockerfile).
#   standins.sh python   the Python base alone (PYTHON_IMAGE=...), for images that need no
#                        Airflow (images/load/Dockerfile): the Airflow stand-in's recipe holds
#                        uv.lock, so `bases` may rebuild it.
#   standins.sh services the MariaDB, PostgreSQL, S3, Prometheus, StatsD exporter,
#                        kube-state-metrics and Perses stand-ins for the chart's mysql, postgresql,
#                        minio and prometheus (always built: MySQL 8.4, postgres:17, MinIO, quay.io's
#                        Prometheus, prom/statsd-exporter, registry.k8s.io's kube-state-metrics and
#                        persesdev/perses cannot be had here; the exporters and Perses are the same
#                        releases, built from their Go modules (Perses' UI from its npm lock) into
#                        the machine's cache by scripts/build-*.sh). Prints MYSQL_IMAGE=...,
#                        POSTGRES_IMAGE=..., S3_IMAGE=..., PROMETHEUS_IMAGE=...,
#                        STATSD_EXPORTER_IMAGE=..., KUBE_STATE_METRICS_IMAGE=... and PERSES_IMAGE=...
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
STANDIN_STATSD_EXPORTER=forest-mlops-standin/statsd-exporter:0.29.0
STANDIN_KUBE_STATE_METRICS=forest-mlops-standin/kube-state-metrics:2.20.0
STANDIN_PERSES=forest-mlops-standin/perses:0.52.0
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
  python)
    echo "PYTHON_IMAGE=$(python_base)"
    ;;
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
    # The Go binaries: built once per version into the machine's cache (minutes the first time),
    # then copied into the image; their contents are part of the recipe key.
    statsd_bin=$(PATH="/usr/local/go/bin:$PATH" STATSD_EXPORTER_VERSION=v0.29.0 bash scripts/build-statsd-exporter.sh)
    build_standin "$STANDIN_STATSD_EXPORTER" images/standins/statsd-exporter BASE "$STANDIN_DEBIAN" "$statsd_bin"
    echo "STATSD_EXPORTER_IMAGE=$STANDIN_STATSD_EXPORTER"
    ksm_bin=$(PATH="/usr/local/go/bin:$PATH" KUBE_STATE_METRICS_VERSION=v2.20.0 bash scripts/build-kube-state-metrics.sh)
    build_standin "$STANDIN_KUBE_STATE_METRICS" images/standins/kube-state-metrics BASE "$STANDIN_DEBIAN" "$ksm_bin"
    echo "KUBE_STATE_METRICS_IMAGE=$STANDIN_KUBE_STATE_METRICS"
    # Perses: server, plugin archives and CUE cache from the machine's cache (about 7 minutes
    # the first time: an npm and a Go build).
    perses_dir=$(PATH="/usr/local/go/bin:$PATH" PERSES_VERSION=v0.52.0 bash scripts/build-perses.sh)
    build_standin "$STANDIN_PERSES" images/standins/perses BASE "$STANDIN_DEBIAN" "$perses_dir/perses" \
      "$perses_dir"/plugins-archive/*.tar.gz "$perses_dir/cue-cache.tar"
    echo "PERSES_IMAGE=$STANDIN_PERSES"
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
