#!/usr/bin/env bash
# `make cluster-check`: loads the test image into the cluster (`kind load docker-image`), then
# runs tests/cluster (pytest, marker `cluster`) against the running cluster.
# Usage: check.sh PYTEST [PYTEST_ARGS...]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
pytest=$1
shift
[[ -x "$KIND" && -x "$KUBECTL" ]] || die "no toolchain in $CACHE_DIR: run make cluster first"
"$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || die "no cluster $CLUSTER_NAME: run make cluster first"
PATH="$(dirname "$DOCKER"):$PATH" phase "kind load docker-image $TEST_IMAGE_NAME" \
  "$KIND" load docker-image "$TEST_IMAGE_NAME" --name "$CLUSTER_NAME"
export FOREST_CLUSTER_KUBECTL="$KUBECTL" FOREST_CLUSTER_TEST_IMAGE="$TEST_IMAGE_NAME"
export FOREST_CLUSTER_CONTEXT="kind-$CLUSTER_NAME"
phase "cluster checks (pytest -m cluster)" "$pytest" -m cluster -p no:cacheprovider "$REPO_DIR/tests/cluster" "$@"
