# shellcheck shell=bash
# shellcheck disable=SC2034  # sourced: the variables are used by the scripts that source it
# Shared by the scripts in scripts/cluster/: paths, versions, the cache directory, phase timing.
# Source it; it sets nothing outside these variables and functions.

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$CLUSTER_DIR/../.." && pwd)
# shellcheck source=recipe/versions.sh
source "$CLUSTER_DIR/recipe/versions.sh"

CLUSTER_NAME=forest-mlops
CACHE_ROOT=${FOREST_CLUSTER_CACHE_ROOT:-/var/cache/forest-mlops}
export PATH="/usr/local/go/bin:$PATH"
DOCKER=$(bash "$REPO_DIR/scripts/docker-engine.sh" --client)
export DOCKER_BUILDKIT=1

# Everything under recipe/ is the recipe: a change there is a new toolchain in a new directory.
recipe_hash() {
  (cd "$CLUSTER_DIR/recipe" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
    sha256sum | cut -c1-12
}
CACHE_DIR="$CACHE_ROOT/cluster-$K8S_VERSION-$(recipe_hash)"
# The single completeness marker: written last by build-toolchain.sh, after every piece is in.
CACHE_MARKER="$CACHE_DIR/COMPLETE"
BIN_DIR="$CACHE_DIR/bin"
NODE_IMAGE_NAME="$LOCAL_REPO/kind-node:$K8S_VERSION"
NODE_IMAGE_TAR="$CACHE_DIR/kind-node-image.tar"
TEST_IMAGE_NAME="$LOCAL_REPO/busybox:$BUSYBOX_TAG"
TEST_IMAGE_TAR="$CACHE_DIR/images/forest-mlops-local_busybox_$BUSYBOX_TAG.tar"
KIND="$BIN_DIR/kind"
# The cluster's local registry (registry.sh): a container on the `kind` network, published on
# the host's loopback. Nodes and host both call it localhost:5001 (the nodes' containerd maps
# that name to the container); images pushed there are what the chart's pods pull.
REGISTRY_CONTAINER=forest-mlops-registry
REGISTRY_VOLUME=forest-mlops-registry
REGISTRY_PORT=5001
REGISTRY=localhost:$REGISTRY_PORT
KUBECTL="$BIN_DIR/kubectl"

say() { echo "cluster: $*" >&2; }
die() {
  echo "cluster: ERROR: $*" >&2
  exit 1
}

# phase NAME COMMAND...: runs COMMAND, prints its start and how long it took.
phase() {
  local name=$1 start rc
  shift
  start=$(date +%s)
  say "[$name] started $(date -u +%H:%M:%S)"
  "$@" && rc=0 || rc=$?
  local outcome="done"
  ((rc == 0)) || outcome="FAILED (exit $rc)"
  say "[$name] $outcome in $(($(date +%s) - start)) s"
  return "$rc"
}

# run_logged LOG COMMAND...: a long go build, niced, its output in LOG, with a progress line
# every 30 s (the package go is compiling and the elapsed time) so a long step is never silent.
run_logged() {
  local log=$1 pid start rc
  shift
  start=$(date +%s)
  nice -n 10 "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null || break
    say "  ... $(($(date +%s) - start)) s, $(wc -l <"$log") log lines, last: $(tail -n 1 "$log" | cut -c1-100)"
  done
  wait "$pid" && rc=0 || rc=$?
  if ((rc != 0)); then
    say "command failed (exit $rc); last lines of $log:"
    tail -n 30 "$log" >&2
  fi
  return "$rc"
}
