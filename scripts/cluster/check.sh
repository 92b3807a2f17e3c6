#!/usr/bin/env bash
# `make cluster-check`: pushes the test image to the cluster's local registry (the nodes pull it
# from there, as they pull every image of the platform), then runs tests/cluster (pytest, marker
# `cluster`) against the running cluster.
# Usage: check.sh PYTEST [PYTEST_ARGS...]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
pytest=$1
shift
[[ -x "$KIND" && -x "$KUBECTL" ]] || die "no toolchain in $CACHE_DIR: run make cluster first"
"$KIND" get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME" || die "no cluster $CLUSTER_NAME: run make cluster first"
test_image="$REGISTRY/$TEST_IMAGE_NAME"
"$DOCKER" tag "$TEST_IMAGE_NAME" "$test_image"
phase "docker push $test_image" "$DOCKER" push -q "$test_image"
export FOREST_CLUSTER_KUBECTL="$KUBECTL" FOREST_CLUSTER_TEST_IMAGE="$test_image"
export FOREST_CLUSTER_REGISTRY="$REGISTRY"
export FOREST_CLUSTER_CONTEXT="kind-$CLUSTER_NAME"
phase "cluster checks (pytest -m cluster)" "$pytest" -m cluster -p no:cacheprovider "$REPO_DIR/tests/cluster" "$@"
